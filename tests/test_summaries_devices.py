"""derived_summary, devices_summary, device_slopes, device_ratios_summary, graph_summary and
flops_summary on hand-made frames: every expected table and sentence below is written out
by hand from the functions' documented behaviour, never pasted from a run."""

import numpy as np
import pandas as pd

from analysis.report import summaries as S

# ---------------------------------------------------------------------------- derived_summary


def _derived(**over):
    row = {"model": "rnn", "quantity": "forward", "measure": "flops", "varied": "T, D",
           "fixed": "B=1", "derived": "2TD", "hand_written": "2TD", "equal": True,
           "verified": True, "points": 1000, "seconds": 6.2, "difference": "",
           "failure": "", "held_out": 4}
    return {**row, **over}


def test_derived_summary_of_nothing_is_empty():
    for frame in (None, pd.DataFrame()):
        s = S.derived_summary(frame)
        assert s.table.empty and s.findings == []


def test_derived_summary_all_equal_and_verified_without_status_or_kv_columns():
    # two models, one quantity (singular), two measures (plural, one unknown to
    # MEASURE_WORDS so it is shown as recorded); no kv_cache column: no "(KV cache)".
    frame = pd.DataFrame([
        _derived(),
        _derived(model="transformer", measure="energy", derived="4T", hand_written="4T",
                 points=234, seconds=6.6, varied="T", fixed="B=2"),
    ])
    s = S.derived_summary(frame)
    # points 1000 + 234 = 1,234; seconds 6.2 + 6.6 = 12.8 -> "13"; held-out 4 and 4 -> "4"
    assert s.findings == [
        "Derived formulas: 2 of 2 formulas derived from counts alone (2 models; quantity "
        "forward; measures FLOPs, energy) equal the hand-written ones, and all 2 were verified "
        "on 4 held-out sizes each (1,234 sizes counted in 13 s of counting)."]
    expected = pd.DataFrame({
        "model": ["rnn", "transformer"], "quantity": ["forward", "forward"],
        "measure": ["FLOPs", "energy"], "varied": ["T, D", "T"], "fixed": ["B=1", "B=2"],
        "derived": ["2TD", "4T"], "hand-written": ["2TD", "4T"], "equal": ["yes", "yes"],
        "verified": ["yes", "yes"], "points": [1000, 234], "seconds": [6.2, 6.6]})
    pd.testing.assert_frame_equal(s.table, expected)


def test_derived_summary_names_every_difference_failure_and_failed_cell():
    frame = pd.DataFrame([
        {"status": "failed: ValueError: boom", "cell": "gru-train-params"},
        _derived(model="transformer", quantity="generate", kv_cache=True, equal=False,
                 difference="2TD", failure=np.nan, points=10, seconds=1.5, held_out=4),
        _derived(model="transformer", quantity="forward", measure="params", kv_cache=False,
                 verified=False, difference=np.nan, failure="at T=3: derived 5, counted 6",
                 points=20, seconds=1.0, held_out=6),
        _derived(model="transformer", quantity="train", measure="bytes", kv_cache="False",
                 equal=False, verified=False, difference="-L", failure="at L=2: x",
                 points=30, seconds=0.4, held_out=4),
        {"status": "failed: timeout", "cell": "rnn-forward-depth"},
    ]).assign(status=lambda f: f["status"].fillna("ok"))
    s = S.derived_summary(frame)
    # equal: only the forward row (1 of 3); verified: only the generate row (1 of 3);
    # one model, three quantities, three measures; points 60, seconds 2.9 -> "3";
    # held-out sizes 4, 6, 4 -> "4, 6" (first appearance order, no repeats)
    assert s.findings == [
        "Derived formulas: 1 of 3 formulas derived from counts alone (1 model; quantities "
        "generate (KV cache), forward, train; measures FLOPs, parameters, bytes) equal the "
        "hand-written ones; not equal: transformer generate (KV cache) FLOPs (derived - "
        "hand-written = 2TD); transformer train bytes (derived - hand-written = -L).",
        "1 of 3 were verified on 4, 6 held-out sizes each; not verified: transformer forward "
        "parameters (at T=3: derived 5, counted 6); transformer train bytes (at L=2: x) "
        "(60 sizes counted in 3 s of counting).",
        "2 derivation(s) failed (see derived_formulas.csv): gru-train-params: failed: "
        "ValueError: boom; rnn-forward-depth: failed: timeout."]
    expected = pd.DataFrame({
        "model": ["transformer"] * 3,
        "quantity": ["generate (KV cache)", "forward", "train"],
        "measure": ["FLOPs", "parameters", "bytes"], "varied": ["T, D"] * 3,
        "fixed": ["B=1"] * 3, "derived": ["2TD"] * 3, "hand-written": ["2TD"] * 3,
        "derived - hand-written": ["2TD", "", "-L"],
        "equal": ["NO", "yes", "NO"], "verified": ["yes", "NO", "NO"],
        "points": [10.0, 20.0, 30.0], "seconds": [1.5, 1.0, 0.4],
        "failure": ["", "at T=3: derived 5, counted 6", "at L=2: x"]}, index=[1, 2, 3])
    pd.testing.assert_frame_equal(s.table, expected)


def test_derived_summary_without_held_out_column_says_question_mark_and_all_verified():
    frame = pd.DataFrame([_derived(equal=False, difference="T"), _derived(quantity="train")])
    frame = frame.drop(columns="held_out")
    s = S.derived_summary(frame)
    assert s.findings == [
        "Derived formulas: 1 of 2 formulas derived from counts alone (1 model; quantities "
        "forward, train; measure FLOPs) equal the hand-written ones; not equal: rnn forward "
        "FLOPs (derived - hand-written = T).",
        "All 2 were verified on ? held-out sizes each (2,000 sizes counted in 12 s of "
        "counting)."]
    assert list(s.table.columns) == [
        "model", "quantity", "measure", "varied", "fixed", "derived", "hand-written",
        "derived - hand-written", "equal", "verified", "points", "seconds"]


def test_derived_summary_when_every_derivation_failed_has_an_empty_table():
    frame = pd.DataFrame([{"status": "failed: x", "cell": "c"}])
    s = S.derived_summary(frame)
    assert isinstance(s.table, pd.DataFrame) and s.table.empty
    assert s.findings == ["1 derivation(s) failed (see derived_formulas.csv): c: failed: x."]
