"""Exact, hand-derived answers for the report's depth, timing-quality, failure, training and
attention summaries: every expected table and sentence below is worked out in the comments
from the hand-made input, never copied from the code's output."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.report import summaries as S

LN2 = math.log(2.0)
INTRO = "Time per FLOP vs sequential depth "
CAVEAT = (" Deep workloads here are also the ones with small matmuls, so this is a "
          "correlation, not a measurement of the chain's cost alone.")


def _empty(s):
    assert isinstance(s, S.Summary)
    assert s.table.empty and list(s.table.columns) == [] and s.findings == []


# ---------------------------------------------------------------------------- depth_time


def _depth_rows(log2_spf, depths=(1.0, 2.0, 4.0, 8.0), flops=(1e6, 3e6, 5e5, 2e6)):
    """Model workloads at depth 2^k (k = 0..3) with seconds per FLOP 1e-9 * 2^y: in log2
    units the fit of y against k is done by hand below, and slope and R^2 do not depend on
    the logarithm's base (the intercept does: ln(1e-9) + ln2 * intercept in log2 units)."""
    return [{"status": "ok", "suite": "test_model_phase", "predicted_depth": d,
             "predicted_flops": f, "median_s": f * 1e-9 * 2.0**y, "ci_low_s": 0.0}
            for d, f, y in zip(depths, flops, log2_spf)]


def _fit_table(points, slope, intercept2, r2, depth):
    return pd.DataFrame([{"points": points, "exponent": slope,
                          "intercept": math.log(1e-9) + LN2 * intercept2, "R^2": r2,
                          "depth": depth}])


def test_depth_time_summary_poor_fit_growing_exponent_with_rows_left_out():
    # y = 0, 1, 0, 1 at k = 0, 1, 2, 3: kbar 1.5, ybar 0.5; Sxy = .75 - .25 - .25 + .75 = 1,
    # Sxx = 5: slope 0.2; intercept 0.5 - 0.2 * 1.5 = 0.2; SStot = 4 * .25 = 1,
    # SSreg = 0.04 * 5 = 0.2: R^2 = 0.2 (below 0.3: a poor fit)
    rows = _depth_rows([0, 1, 0, 1])
    left_out = [
        # another suite, a failed row, a missing depth, flops or median, zero depth, zero flops
        {**rows[0], "suite": "test_attention", "median_s": 1.0},
        {**rows[1], "status": "failed: boom", "median_s": 1.0},
        {**rows[2], "predicted_depth": np.nan},
        {**rows[2], "predicted_flops": np.nan},
        {**rows[2], "median_s": np.nan},
        {**rows[3], "predicted_depth": 0.0},
        {**rows[3], "predicted_flops": 0.0, "median_s": 1.0},
        {**rows[3], "predicted_depth": -2.0},
        {**rows[3], "predicted_flops": -1.0},
    ]
    # a NaN in a column the fit does not read keeps the row
    rows[1]["ci_low_s"] = np.nan
    timing = pd.DataFrame(left_out[:3] + rows[:2] + left_out[3:] + rows[2:])
    s = S.depth_time_summary(timing)
    pd.testing.assert_frame_equal(s.table, _fit_table(4, 0.2, 0.2, 0.2, "1..8"),
                                  check_exact=False, rtol=1e-9)
    assert s.findings == [
        INTRO + "(4 model workloads, depth 1..8): seconds per FLOP grow as depth^0.20: the "
        "workloads with longer chains of dependent matmuls get fewer FLOPs done per second; "
        "R^2 = 0.20 (a poor fit)." + CAVEAT]


def test_depth_time_summary_loose_fit():
    # y = 0, 2, 1, 3: ybar 1.5; Sxy = 2.25 - .25 - .25 + 2.25 = 4, slope 4 / 5 = 0.8;
    # intercept 1.5 - 0.8 * 1.5 = 0.3; SStot = 5, SSreg = 0.64 * 5 = 3.2: R^2 = 0.64
    s = S.depth_time_summary(pd.DataFrame(_depth_rows([0, 2, 1, 3])))
    pd.testing.assert_frame_equal(s.table, _fit_table(4, 0.8, 0.3, 0.64, "1..8"),
                                  check_exact=False, rtol=1e-9)
    assert s.findings == [
        INTRO + "(4 model workloads, depth 1..8): seconds per FLOP grow as depth^0.80: the "
        "workloads with longer chains of dependent matmuls get fewer FLOPs done per second; "
        "R^2 = 0.64 (a loose fit)." + CAVEAT]


def test_depth_time_summary_falling_close_fit():
    # y = 3, 2, 1, 0 at k = 0..3: slope -1 exactly, intercept 3, R^2 = 1 (a close fit);
    # depth 3, 6, 12, 24 (k read as log2(depth / 3): the same slope and R^2, intercept
    # 3 + log2(3) in log2 units of depth 1)
    s = S.depth_time_summary(pd.DataFrame(_depth_rows([3, 2, 1, 0],
                                                      depths=(3.0, 6.0, 12.0, 24.0))))
    pd.testing.assert_frame_equal(s.table, _fit_table(4, -1.0, 3 + math.log2(3), 1.0, "3..24"),
                                  check_exact=False, rtol=1e-9)
    assert s.findings == [
        INTRO + "(4 model workloads, depth 3..24): seconds per FLOP fall as depth^-1.00: the "
        "deeper workloads run their FLOPs faster here; R^2 = 1.00 (a close fit)." + CAVEAT]


def test_depth_time_summary_falling_poor_fit_and_barely_changing():
    # y = 1, 0, 1, 0: the mirror of 0, 1, 0, 1: slope -0.2, R^2 0.2
    s = S.depth_time_summary(pd.DataFrame(_depth_rows([1, 0, 1, 0])))
    assert s.findings == [
        INTRO + "(4 model workloads, depth 1..8): seconds per FLOP fall as depth^-0.20: the "
        "deeper workloads run their FLOPs faster here; R^2 = 0.20 (a poor fit)." + CAVEAT]
    # y = 0, .1, 0, .1: Sxy = 0.1, slope 0.02; SStot 0.01, SSreg 0.0004 * 5: R^2 0.2
    s = S.depth_time_summary(pd.DataFrame(_depth_rows([0, 0.1, 0, 0.1])))
    assert s.table["exponent"].iloc[0] == pytest.approx(0.02, rel=1e-9)
    assert s.findings == [
        INTRO + "(4 model workloads, depth 1..8): seconds per FLOP barely change with depth "
        "(exponent 0.02); R^2 = 0.20 (a poor fit)." + CAVEAT]
    # y = .1, 0, .1, 0: the mirror of 0, .1, 0, .1: slope -0.02, R^2 0.2
    s = S.depth_time_summary(pd.DataFrame(_depth_rows([0.1, 0, 0.1, 0])))
    assert s.findings[0].startswith(
        INTRO + "(4 model workloads, depth 1..8): seconds per FLOP barely change with depth "
        "(exponent -0.02); R^2 = 0.20")


def test_depth_time_summary_two_points_and_a_constant_time_per_flop():
    # two workloads are enough for a line: depth 2 and 8 (k = 1, 3), y = 0 and 1: slope 0.5,
    # intercept in log2 units 0 - 0.5 * 1 = -0.5, R^2 = 1; a workload of a single FLOP counts
    rows = _depth_rows([0, 1], depths=(2.0, 8.0), flops=(1.0, 4.0))
    s = S.depth_time_summary(pd.DataFrame(rows))
    pd.testing.assert_frame_equal(s.table, _fit_table(2, 0.5, -0.5, 1.0, "2..8"),
                                  check_exact=False, rtol=1e-9)
    assert s.findings[0] == (
        INTRO + "(2 model workloads, depth 2..8): seconds per FLOP grow as depth^0.50: the "
        "workloads with longer chains of dependent matmuls get fewer FLOPs done per second; "
        "R^2 = 1.00 (a close fit)." + CAVEAT)
    # the same seconds per FLOP at every depth: SStot = 0, read as R^2 = 1 (no spread to
    # explain), slope 0
    # (equal FLOPs too, so that every log(median / FLOPs) is the very same float)
    flat = S.depth_time_summary(pd.DataFrame(_depth_rows([0, 0, 0, 0], flops=(1e6,) * 4)))
    assert flat.table["R^2"].iloc[0] == 1.0
    assert flat.table["exponent"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert flat.findings[0].endswith("R^2 = 1.00 (a close fit)." + CAVEAT)


def test_depth_time_summary_is_empty_without_two_usable_depths():
    rows = _depth_rows([0, 1, 0, 1])
    _empty(S.depth_time_summary(None))
    _empty(S.depth_time_summary(pd.DataFrame()))
    _empty(S.depth_time_summary(pd.DataFrame(rows[:1])))  # one point
    _empty(S.depth_time_summary(pd.DataFrame(rows).assign(status="failed")))
    _empty(S.depth_time_summary(pd.DataFrame(rows).assign(suite="test_attention")))
    # one depth for every point: no line through them
    _empty(S.depth_time_summary(pd.DataFrame(rows).assign(predicted_depth=4.0)))
    # one good point and one with zero depth (or zero FLOPs): fewer than two usable
    _empty(S.depth_time_summary(pd.DataFrame([rows[0], {**rows[1], "predicted_depth": 0.0}])))
    _empty(S.depth_time_summary(pd.DataFrame([rows[0], {**rows[1], "predicted_flops": 0.0}])))


# ---------------------------------------------------------------------------- failures


def _bench(statuses):
    return pd.DataFrame({"id": [f"w{i}" for i in range(len(statuses))], "status": statuses,
                         "median_s": [1.0] * len(statuses)})


def test_failure_summary_lists_up_to_five_failed_ids_and_marks_more():
    # w0 and w3 are ok; w1, w2, w4..w7 failed: six, so the first five and "and 1 more"
    timing = _bench(["ok", "failed: OOM", "error", "ok", "failed: x", "OK", "skipped", "fail"])
    s = S.failure_summary(timing)
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "id": ["w1", "w2", "w4", "w5", "w6", "w7"],
        "status": ["failed: OOM", "error", "failed: x", "OK", "skipped", "fail"]}))
    # the first five, then how many more: 6 - 5 = 1
    assert s.findings == ["6 bench configurations failed and are listed in timing.csv with "
                          "their error: w1, w2, w4, w5, w6 and 1 more."]


def test_failure_summary_with_exactly_five_and_with_one_failure():
    s = S.failure_summary(_bench(["failed"] * 5 + ["ok"]))
    assert s.findings == ["5 bench configurations failed and are listed in timing.csv with "
                          "their error: w0, w1, w2, w3, w4."]
    one = S.failure_summary(pd.DataFrame({"id": [7, 8], "status": ["ok", "boom"]}))
    pd.testing.assert_frame_equal(one.table, pd.DataFrame({"id": [8], "status": ["boom"]}))
    assert one.findings == ["1 bench configuration failed and is listed in timing.csv with "
                            "its error: 8."]


def test_failure_summary_is_empty_when_nothing_failed():
    _empty(S.failure_summary(None))
    _empty(S.failure_summary(pd.DataFrame()))
    _empty(S.failure_summary(_bench(["ok", "ok"])))


# ---------------------------------------------------------------------------- depth table


def _trace(model, attention, quantity, L, T, measured, verdict="exact", formula="f",
           status="ok"):
    return {"model": model, "attention": attention, "quantity": quantity, "L": L, "T": T,
            "measured": measured, "verdict": verdict, "formula": formula, "status": status}


def test_depth_summary_table_counts_and_both_kinds_of_forward_depth():
    rows = [
        _trace("rnn", None, "forward", 1, 4, 5, formula="T + 1"),
        _trace("rnn", None, "forward", 1, 8, 9, "mismatch", formula="T + 1"),
        _trace("rnn", None, "train", 1, 4, 10, formula="2*T + 2"),
        _trace("transformer", "flash", "forward", 1, 4, 7, formula="6*L + 1"),
        _trace("transformer", "flash", "forward", 1, 8, 7, formula="other"),
        _trace("transformer", "manual", "forward", 2, 4, 13, "mismatch", formula="6*L + 1"),
        _trace("transformer", "manual", "forward", 2, 8, 13, "mismatch", formula="6*L + 1"),
        _trace("gru", "", "forward", 1, 4, 5, formula="T + 1"),
        _trace("gru", "", "forward", 1, 8, 9, formula="T + 1"),
        _trace("rnn", None, "forward", 1, 16, 99, formula="x", status="failed: y"),
    ]
    s = S.depth_summary(pd.DataFrame(rows))
    # nine ok rows, six exact; groups in order of first appearance, the formula the first
    expected = pd.DataFrame({
        "model": ["rnn", "rnn", "transformer", "transformer", "gru"],
        "attention": [None, None, "flash", "manual", ""],
        "quantity": ["forward", "train", "forward", "forward", "forward"],
        "rows": [2, 1, 2, 2, 2], "exact": [1, 1, 2, 0, 2],
        "formula": ["T + 1", "2*T + 2", "6*L + 1", "6*L + 1", "T + 1"]})
    pd.testing.assert_frame_equal(s.table, expected, check_dtype=False)
    # rnn (no attention) and gru (blank attention) grow; both transformers stay
    assert s.findings == [
        "Depth: predicted and traced critical-path matmul depth agree on 6 of 9 rows.",
        "The forward pass's traced depth grows with T for rnn, gru; does not change with T "
        "for transformer-flash, transformer-manual."]


def test_depth_summary_only_growing_only_flat_or_no_sweep_in_T():
    grow = [_trace("rnn", None, "forward", 1, t, t + 1) for t in (4, 8)]
    assert S.depth_summary(pd.DataFrame(grow)).findings == [
        "Depth: predicted and traced critical-path matmul depth agree on 2 of 2 rows.",
        "The forward pass's traced depth grows with T for rnn."]
    flat = [_trace("transformer", "flash", "forward", 1, t, 7, "wrong") for t in (4, 8)]
    assert S.depth_summary(pd.DataFrame(flat)).findings == [
        "Depth: predicted and traced critical-path matmul depth agree on 0 of 2 rows.",
        "The forward pass's traced depth does not change with T for transformer-flash."]
    # the depth changes only between layer counts, one T each: no T sweep, no sentence; and
    # only the forward pass is read (the train rows sweep T)
    layers = [_trace("rnn", None, "forward", 1, 4, 5), _trace("rnn", None, "forward", 2, 8, 18),
              _trace("rnn", None, "train", 1, 4, 5), _trace("rnn", None, "train", 1, 8, 9)]
    assert S.depth_summary(pd.DataFrame(layers)).findings == [
        "Depth: predicted and traced critical-path matmul depth agree on 4 of 4 rows."]
    # a model without a T sweep does not stop the ones after it from being read
    later = layers + [_trace("gru", None, "forward", 1, t, t + 1, "x") for t in (4, 8)]
    assert S.depth_summary(pd.DataFrame(later)).findings == [
        "Depth: predicted and traced critical-path matmul depth agree on 4 of 6 rows.",
        "The forward pass's traced depth grows with T for gru."]
    # within one L the depth grows; another L stays flat: it grows
    mixed = [_trace("gru", None, "forward", 1, t, 3) for t in (4, 8)] + \
            [_trace("gru", None, "forward", 2, t, t) for t in (4, 8)]
    assert S.depth_summary(pd.DataFrame(mixed)).findings[1] == (
        "The forward pass's traced depth grows with T for gru.")


def test_depth_summary_is_empty_without_verdicts():
    _empty(S.depth_summary(None))
    _empty(S.depth_summary(pd.DataFrame()))
    frame = pd.DataFrame([_trace("rnn", None, "forward", 1, 4, 5)])
    _empty(S.depth_summary(frame.drop(columns="verdict")))
    _empty(S.depth_summary(frame.assign(status="failed")))


# ---------------------------------------------------------------------------- training

NAN = float("nan")
TRAIN_CAVEAT = ("; not converged, and one seed cannot separate models whose losses are "
                "close): final validation loss ")


def _curves():
    cols = ["model", "step", "params", "train_loss", "val_loss", "tokens_per_s", "seed",
            "data", "status"]
    rows = [
        # rnn: the last row has no validation loss, so the final one is step 20's (whose
        # throughput is missing); params read from the first row; tokens/s median of 100, 200
        ("rnn", 1, 10, 4.0, 4.1, 100.0, 1, "tiny", "ok"),
        ("rnn", 20, 99, 3.0, 2.6, NAN, 1, "tiny", "ok"),
        ("rnn", 40, 10, 2.0, NAN, 200.0, 1, "tiny", "ok"),
        ("gru", 1, 20, 4.2, 4.0, 300.0, 2, "tiny", "ok"),
        ("gru", 30, 20, 1.8, 2.2, 500.0, 2, "tiny", "ok"),
        # a failed row is no part of the run
        ("rnn", 50, 10, 0.1, 0.1, 900.0, 3, "other", "failed: OOM"),
        # lstm: no throughput recorded at all, and the lowest validation loss (the last of
        # three)
        ("lstm", 1, 30, 4.3, 3.9, NAN, 1, "tiny", "ok"),
        ("lstm", 20, 30, 2.4, 2.5, NAN, 1, "tiny", "ok"),
        ("lstm", 40, 30, 1.7, 2.0, NAN, 1, "tiny", "ok"),
    ]
    return pd.DataFrame(rows, columns=cols)


def test_training_summary_table_and_sentence_with_two_seeds():
    s = S.training_summary(_curves(), data="ignored")
    expected = pd.DataFrame({
        "model": ["rnn", "gru", "lstm"], "params": [10, 20, 30], "steps": [40, 30, 40],
        "final train loss": [2.0, 1.8, 1.7], "final val loss": [2.6, 2.2, 2.0],
        "tokens/s": [150.0, 400.0, NAN]})
    pd.testing.assert_frame_equal(s.table, expected)
    # seeds 1 and 2 (the failed row's 3 is not counted); steps per model 40, 30, 40
    assert s.findings == [
        "Training (short runs: 2 seeds, 40, 30 steps, corpus tiny" + TRAIN_CAVEAT
        + "rnn 2.600, gru 2.200, lstm 2.000 nats/char; lowest lstm."]


def test_training_summary_without_seed_corpus_or_validation_columns():
    curves = _curves()[lambda f: f["model"].eq("gru")].drop(
        columns=["seed", "data", "val_loss", "status"])
    s = S.training_summary(curves)
    expected = pd.DataFrame({
        "model": ["gru"], "params": [20], "steps": [30], "final train loss": [1.8],
        "final val loss": [NAN], "tokens/s": [400.0]})
    pd.testing.assert_frame_equal(s.table, expected)
    # no seed column: one seed; no corpus recorded nor given: unrecorded; no validation
    # loss: printed as nan and no lowest model
    assert s.findings == ["Training (short runs: one seed, 30 steps, corpus unrecorded"
                          + TRAIN_CAVEAT + "gru nan nats/char."]
    given = S.training_summary(curves, data="builtin")
    assert given.findings == [
        "Training (short runs: one seed, 30 steps, corpus builtin (the generated, synthetic "
        "children's stories)" + TRAIN_CAVEAT + "gru nan nats/char."]
    other = S.training_summary(curves, data="shakespeare")
    assert other.findings == ["Training (short runs: one seed, 30 steps, corpus shakespeare"
                              + TRAIN_CAVEAT + "gru nan nats/char."]


def test_training_summary_one_recorded_seed_and_two_corpora():
    curves = _curves()[lambda f: f["status"].eq("ok")].assign(seed=7)
    curves.loc[curves["model"].eq("gru"), "data"] = "builtin"
    s = S.training_summary(curves)
    # corpora in order of first appearance: tiny, builtin (not "builtin" alone: no note)
    assert s.findings == [
        "Training (short runs: one seed, 40, 30 steps, corpus tiny, builtin" + TRAIN_CAVEAT
        + "rnn 2.600, gru 2.200, lstm 2.000 nats/char; lowest lstm."]


def test_training_summary_is_empty_without_train_losses():
    _empty(S.training_summary(None))
    _empty(S.training_summary(pd.DataFrame()))
    _empty(S.training_summary(_curves().drop(columns="train_loss")))
    _empty(S.training_summary(_curves().assign(status="failed")))


# ---------------------------------------------------------------------------- timing quality

QUALITY_COLS = ["status", "median_s", "ci_low_s", "ci_high_s", "converged", "drifted",
                "rounds", "load_before", "load_after", "steal_fraction", "ci_target"]
DRIFT = ("drifted during their run (first and last quarter of rounds with disjoint "
         "intervals)")


def _quality():
    rows = [
        # half-widths 0.02 / 1, 0.1 / 2, 0.4 / 4: 2%, 5%, 10%; the fourth has no interval
        ("ok", 1.0, 0.98, 1.02, True, "False", 10, 0.25, NAN, 0.0, 0.02),
        ("ok", 2.0, 1.9, 2.1, "True", "True", 40, 1.5, 0.75, 0.025, 0.02),
        ("ok", 4.0, 3.6, 4.4, "False", 0, 7, NAN, 2.25, NAN, 0.05),
        ("ok", 1.0, NAN, NAN, 1, "", 12, 0.5, 0.5, 0.0, NAN),
        # a failed configuration counts nowhere
        ("failed: x", 9.0, 1.0, 100.0, True, True, 1000, 9.0, 9.0, 0.9, 0.5),
    ]
    return pd.DataFrame(rows, columns=QUALITY_COLS)


def test_timing_quality_summary_reads_flags_widths_load_and_steal():
    s = S.timing_quality_summary(_quality())
    # converged: True, "True", "False", 1 -> 3; drifted: "False", "True", 0, "" -> 1;
    # median half-width of 2%, 5%, 10%: 5.0%; rounds 7..40; load over both columns
    # 0.25, 1.5, 0.5, 0.75, 2.25, 0.5: 0.25..2.25; steal at most 0.025
    pd.testing.assert_frame_equal(s.table, pd.DataFrame([{
        "timings": 4, "CI within target": 3, "drifted": 1, "median CI half-width": "5.0%",
        "rounds": "7..40", "load average": "0.25..2.25", "max CPU steal": "2.5%"}]))
    assert s.findings == [
        "Timing quality: 3 of 4 medians have a 95% interval within the precision target "
        "(+-2% to +-5%) (median half-width 5.0%); 1 of 4 " + DRIFT + "; the 1-minute load "
        "average was 0.25 to 2.25, CPU steal at most 2.5%."]


def test_timing_quality_summary_without_load_steal_or_targets():
    quiet = _quality().drop(columns="ci_target").assign(steal_fraction=NAN)
    s = S.timing_quality_summary(quiet)
    assert s.table["max CPU steal"].tolist() == [""]
    assert s.findings == [
        "Timing quality: 3 of 4 medians have a 95% interval within the precision target "
        "(median half-width 5.0%); 1 of 4 " + DRIFT + "; the 1-minute load average was 0.25 "
        "to 2.25."]
    unloaded = _quality().drop(columns="ci_target").assign(load_before=NAN, load_after=NAN)
    s = S.timing_quality_summary(unloaded)
    assert s.table[["load average", "max CPU steal"]].to_dict("records") == [
        {"load average": "", "max CPU steal": "2.5%"}]
    assert s.findings == [
        "Timing quality: 3 of 4 medians have a 95% interval within the precision target "
        "(median half-width 5.0%); 1 of 4 " + DRIFT + "; CPU steal at most 2.5%."]
    # a lower end without upper ends: no half-width to show, in the table or the sentence
    lopsided = S.timing_quality_summary(_quality().assign(ci_high_s=NAN))
    assert lopsided.table["median CI half-width"].tolist() == [""]
    assert lopsided.findings == [
        "Timing quality: 3 of 4 medians have a 95% interval within the precision target "
        "(+-2% to +-5%) (no interval with both ends); 1 of 4 " + DRIFT + "; the 1-minute load "
        "average was 0.25 to 2.25, CPU steal at most 2.5%."]


def test_timing_quality_summary_is_empty_without_intervals():
    _empty(S.timing_quality_summary(None))
    _empty(S.timing_quality_summary(pd.DataFrame()))
    _empty(S.timing_quality_summary(_quality().drop(columns="ci_low_s")))
    _empty(S.timing_quality_summary(_quality().assign(ci_low_s=NAN)))
    _empty(S.timing_quality_summary(_quality().assign(status="failed")))


# ---------------------------------------------------------------------------- attention

MEM_GROWTH = ": the manual path materializes the (B, H, T, T) scores, SDPA does not (the " \
             "time and memory ratios are under Paired ratios)."


def _attention(ts, flash_mem, manual_mem):
    rows = []
    for t in ts:
        rows += [{"T": float(t), "kernel": "flash", "status": "ok", "median_s": 1e-3 * t,
                  "peak_memory_bytes": S.MIB * flash_mem(t)},
                 {"T": float(t), "kernel": "manual", "status": "ok", "median_s": 2e-3 * t,
                  "peak_memory_bytes": S.MIB * manual_mem(t)}]
    return rows


def test_attention_summary_table_and_the_manual_kernels_faster_memory_growth():
    # flash 1, 2, 4 MiB (T^1), manual 1, 4, 16 MiB (T^2) at T = 64, 128, 256; a failed
    # row's huge numbers are left out
    rows = _attention((64, 128, 256), lambda t: t / 64, lambda t: (t / 64) ** 2)
    rows.append({"T": 64.0, "kernel": "manual", "status": "failed: OOM", "median_s": 99.0,
                 "peak_memory_bytes": 1e12})
    s = S.attention_summary(pd.DataFrame(rows))
    expected = pd.DataFrame({"T": [64, 128, 256], "flash s": [0.064, 0.128, 0.256],
                             "manual s": [0.128, 0.256, 0.512], "flash MiB": [1.0, 2.0, 4.0],
                             "manual MiB": [1.0, 4.0, 16.0]})
    pd.testing.assert_frame_equal(s.table, expected)
    assert s.findings == ["Attention's peak memory grows as T^2.00 with the manual kernel and "
                          "T^1.00 with SDPA" + MEM_GROWTH]


def test_attention_summary_when_both_kernels_grow_alike_and_on_two_lengths():
    # both linear in T: no claim about the scores
    s = S.attention_summary(pd.DataFrame(_attention((64, 128, 256), lambda t: t / 64,
                                                    lambda t: 3 * t / 64)))
    assert s.findings == ["Attention's peak memory grows as T^1.00 with the manual kernel and "
                          "T^1.00 with SDPA (the ratios are under Paired ratios)."]
    # two lengths are enough for an exponent: manual 1 -> 8 MiB over T 64 -> 128 is T^3
    two = S.attention_summary(pd.DataFrame(_attention((64, 128), lambda t: t / 64,
                                                      lambda t: (t / 64) ** 3)))
    assert two.table["T"].tolist() == [64, 128]
    assert two.findings == ["Attention's peak memory grows as T^3.00 with the manual kernel "
                            "and T^1.00 with SDPA" + MEM_GROWTH]


def test_attention_summary_one_length_or_one_kernel_gives_only_a_table():
    one = S.attention_summary(pd.DataFrame(_attention((64,), lambda t: 2.0, lambda t: 8.0)))
    pd.testing.assert_frame_equal(one.table, pd.DataFrame({
        "T": [64], "flash s": [0.064], "manual s": [0.128], "flash MiB": [2.0],
        "manual MiB": [8.0]}))
    assert one.findings == []
    flash = [r for r in _attention((64, 128), lambda t: t / 64, lambda t: 1.0)
             if r["kernel"] == "flash"]
    only = S.attention_summary(pd.DataFrame(flash))
    pd.testing.assert_frame_equal(only.table, pd.DataFrame({
        "T": [64.0, 128.0], "median_s_flash": [0.064, 0.128],
        "peak_memory_bytes_flash": [float(S.MIB), 2.0 * S.MIB]}))
    assert only.findings == []
    _empty(S.attention_summary(None))
    _empty(S.attention_summary(pd.DataFrame()))
    _empty(S.attention_summary(pd.DataFrame(flash).assign(status="failed")))


# ---------------------------------------------------------------------------- loops vs attention


def _slopes(time, depth=(0.0,), flops=(1.0,)):
    return pd.DataFrame({"time slope": time, "depth slope": depth, "FLOP slope": flops})


def test_loops_against_attention_when_the_loops_grow_faster():
    # time means 1.25 and 0.75: gap 0.5; depth means 1.0 and 0.25: chain 0.75
    rec = _slopes([1.0, 1.5], depth=[1.0, 1.0], flops=[1.0, 1.0])
    att = _slopes([0.5, 1.0], depth=[0.0, 0.5], flops=[2.0, 2.0])
    assert S._loops_against_attention(rec, att) == (
        " The recurrent loops' time grows faster (by T^0.50 on average), as their longer chain "
        "(depth exponent higher by 0.75) predicts.")
    # chain exactly 0.25 is not above 0.25: no claim about the chain
    assert S._loops_against_attention(_slopes([1.5], depth=[0.25]), _slopes([1.0])) == (
        " The recurrent loops' time grows faster (by T^0.50 on average).")


def test_loops_against_attention_when_the_attention_models_grow_faster():
    # gap -1; FLOP exponents 2 against 1: work 1.0
    assert S._loops_against_attention(_slopes([1.0], flops=[1.0]),
                                      _slopes([2.0], flops=[2.0])) == (
        " The attention models' time grows faster (by T^1.00 on average): their FLOPs grow "
        "faster with T (exponent higher by 1.00); the recurrent chain does not show.")
    # work exactly 0.1 is not above 0.1; and the FLOPs of the loops growing faster (-1)
    for rec_flops, att_flops in ((0.0, 0.1), (2.0, 1.0)):
        assert S._loops_against_attention(_slopes([1.0], flops=[rec_flops]),
                                          _slopes([2.0], flops=[att_flops])) == (
            " The attention models' time grows faster (by T^1.00 on average), which their "
            "FLOP exponents do not explain.")


def test_loops_against_attention_when_both_grow_alike():
    # gap 0: the chain 1.0 deeper does not show
    assert S._loops_against_attention(_slopes([1.0], depth=[1.0]),
                                      _slopes([1.0], depth=[0.0])) == (
        " Both families grow alike (mean exponents within 0.00): on this device the recurrent "
        "chain, whose depth exponent is higher by 1.00, does not show as a faster growth.")
    # gaps of exactly +0.25 and -0.25 are still alike; chain 0.25 is no claim
    assert S._loops_against_attention(_slopes([1.25], depth=[0.25]), _slopes([1.0])) == (
        " Both families grow alike (mean exponents within 0.25).")
    assert S._loops_against_attention(_slopes([1.0]), _slopes([1.25])) == (
        " Both families grow alike (mean exponents within 0.25).")
    # the gap's size, not its sign: 1.0 - 1.2 reads 0.20
    assert S._loops_against_attention(_slopes([1.0]), _slopes([1.2])) == (
        " Both families grow alike (mean exponents within 0.20).")


# ---------------------------------------------------------------------------- depth vs homework

HEAD_NOTE = (": the depth table traces the whole model, vocabulary head included ({n} "
             "matmul(s) on the chain), while the homework's question leaves the vocabulary head "
             "(the classifier) out.")


def _depth_table():
    return pd.DataFrame([
        # rnn train at one layer count (L = 1), its formula written two ways: the first is shown
        _trace("rnn", None, "train", 1, 4, 10, formula="2*T + 2"),
        _trace("rnn", None, "train", 1, 8, 18, formula="2 + 2*T"),
        # the transformer at two layer counts: L stays a symbol
        _trace("transformer", "flash", "forward", 1, 4, 7, formula="6*L + 1"),
        _trace("transformer", "flash", "forward", 2, 4, 13, formula="6*L + 1"),
        _trace("gru", None, "forward", 1, 4, 8, formula="T + 4"),
        _trace("gru", None, "generate", 1, 4, 6, formula="T + 2"),
        _trace("lstm", None, "forward", 1, 4, 5, formula="not a formula (("),
        _trace("mamba", None, "forward", 1, 4, 5, formula="T", status="failed: x"),
    ])


def _check(pairs):
    return pd.DataFrame([{"id": i, "derived": d} for i, d in pairs])


def test_depth_vs_homework_explains_each_difference_and_skips_the_rest():
    check = _check([
        ("rnn.train.flops", "2*T"),                        # not a depth question
        ("rnn.train", "2*T"),                              # not three parts
        ("mamba.forward.sequential_matmuls", "T"),         # only a failed depth row
        ("rnn.forward.sequential_matmuls", "T"),           # no such depth row
        ("lstm.forward.sequential_matmuls", "T"),          # the depth formula does not parse
        ("gru.forward.sequential_matmuls", "(("),          # the derived one does not parse
        ("transformer.forward.sequential_matmuls", "6*L + 1"),  # no difference
        # (2T + 2) - (2L + 2T - 2) = 4 - 2L, at L = 1: 2, the train pass's two head matmuls
        ("rnn.train.sequential_matmuls", "2*L + 2*T - 2"),
        # (6L + 1) - 6L = 1, the forward head; two layer counts: no "at L"
        ("transformer.forward.sequential_matmuls", "6*L"),
        # (T + 4) - (T + 1) = 3: not the head's count
        ("gru.forward.sequential_matmuls", "T + 1"),
        # (6L + 1) - 4L = 2L + 1: not a number
        ("transformer.forward.sequential_matmuls", "4*L"),
        # (T + 2) - (T + 1) = 1 on a quantity without a head count
        ("gru.generate.sequential_matmuls", "T + 1"),
    ])
    assert S.depth_vs_homework(check, _depth_table()) == [
        "`rnn.train.sequential_matmuls`: the depth table's rnn train depth `2*T + 2` and the "
        "homework's derived `2*L + 2*T - 2` differ by 2 at L = 1" + HEAD_NOTE.format(n=2),
        "`transformer.forward.sequential_matmuls`: the depth table's transformer forward depth "
        "`6*L + 1` and the homework's derived `6*L` differ by 1" + HEAD_NOTE.format(n=1),
        "`gru.forward.sequential_matmuls`: the depth table's gru forward depth `T + 4` and the "
        "homework's derived `T + 1` differ by 3 at L = 1.",
        "`transformer.forward.sequential_matmuls`: the depth table's transformer forward depth "
        "`6*L + 1` and the homework's derived `4*L` differ by 2*L + 1.",
        "`gru.generate.sequential_matmuls`: the depth table's gru generate depth `T + 2` and "
        "the homework's derived `T + 1` differ by 1 at L = 1.",
    ]


def test_depth_vs_homework_needs_both_tables_and_the_formulas():
    check = _check([("gru.forward.sequential_matmuls", "T + 1")])
    depth = _depth_table()
    assert S.depth_vs_homework(check, depth) == [
        "`gru.forward.sequential_matmuls`: the depth table's gru forward depth `T + 4` and the "
        "homework's derived `T + 1` differ by 3 at L = 1."]
    assert S.depth_vs_homework(None, depth) == []
    assert S.depth_vs_homework(check, None) == []
    assert S.depth_vs_homework(check.iloc[:0], depth) == []
    assert S.depth_vs_homework(check, depth.drop(columns="formula")) == []
    assert S.depth_vs_homework(check, depth.assign(status="failed")) == []


@pytest.mark.parametrize("k,base", [(0.1, 0.5), (-0.1, 1.0)])
def test_depth_time_summary_an_exponent_of_exactly_a_tenth_barely_changes(k, base):
    # depth 1 and 8, seconds per FLOP base and base * 8^k: the exponent k = +-0.1, which
    # the least-squares fit returns exactly on this numpy; "grows" and "falls" need |slope|
    # above 0.1, so the expected sentence follows the rule on the slope actually fitted
    rows = [{"status": "ok", "suite": "test_model_phase", "predicted_depth": d,
             "predicted_flops": 2.0, "median_s": 2.0 * base * d**k} for d in (1.0, 8.0)]
    s = S.depth_time_summary(pd.DataFrame(rows))
    slope = s.table["exponent"].iloc[0]
    assert slope == pytest.approx(k, rel=1e-12)
    what = ("seconds per FLOP grow as depth^0.10: the workloads with longer chains of "
            "dependent matmuls get fewer FLOPs done per second" if slope > 0.1 else
            "seconds per FLOP fall as depth^-0.10: the deeper workloads run their FLOPs "
            "faster here" if slope < -0.1 else
            f"seconds per FLOP barely change with depth (exponent {k:.2f})")
    assert s.findings == [INTRO + f"(2 model workloads, depth 1..8): {what}; R^2 = 1.00 "
                          "(a close fit)." + CAVEAT]


def test_depth_time_summary_an_r2_of_exactly_seven_tenths_is_a_close_fit():
    # y = 0, 1, 0.5, 2.5 at k = 0..3: ybar 1; Sxy = 1.5 + 0 - 0.25 + 2.25 = 3.5, slope 0.7;
    # SStot = 1 + 0 + 0.25 + 2.25 = 3.5, SSreg = 0.49 * 5 = 2.45: R^2 = 0.7 (on this numpy
    # to the last bit); "a close fit" from R^2 0.7 up, so the expected words follow the rule
    # on the R^2 actually computed
    rows = [{"status": "ok", "suite": "test_model_phase", "predicted_depth": 2.0**k,
             "predicted_flops": 1.0, "median_s": 2.0**y} for k, y in enumerate([0, 1, 0.5, 2.5])]
    s = S.depth_time_summary(pd.DataFrame(rows))
    r2 = s.table["R^2"].iloc[0]
    assert r2 == pytest.approx(0.7, rel=1e-12)
    assert s.table["exponent"].iloc[0] == pytest.approx(0.7, rel=1e-12)
    strength = "a close fit" if r2 >= 0.7 else "a loose fit"
    assert s.findings == [
        INTRO + "(4 model workloads, depth 1..8): seconds per FLOP grow as depth^0.70: the "
        "workloads with longer chains of dependent matmuls get fewer FLOPs done per second; "
        f"R^2 = 0.70 ({strength})." + CAVEAT]


def test_attention_summary_a_gap_of_exactly_three_tenths_is_no_claim():
    # flash 1 MiB at T = 1 and 2 (T^0), manual 1 and 2^0.3 MiB (T^0.3): the manual kernel's
    # exponent is higher by 0.3, which is not above 0.3 (the fit returns 0.0 and 0.3 exactly
    # on this numpy; the expected words follow the rule on the exponents actually fitted)
    s = S.attention_summary(pd.DataFrame(_attention((1, 2), lambda t: 1.0,
                                                    lambda t: t ** 0.3)))
    mf = S.loglog_slope(s.table["T"], s.table["flash MiB"])
    mm = S.loglog_slope(s.table["T"], s.table["manual MiB"])
    assert (mf, mm) == (pytest.approx(0.0, abs=1e-12), pytest.approx(0.3, rel=1e-12))
    tail = MEM_GROWTH if mm > mf + 0.3 else " (the ratios are under Paired ratios)."
    assert s.findings == ["Attention's peak memory grows as T^0.30 with the manual kernel and "
                          "T^0.00 with SDPA" + tail]
