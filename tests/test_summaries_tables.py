"""flops_summary, derived_summary, graph_summary and homework_time_summary, with their helpers
(second_counter_columns, counter_description, _derived_label, supported_digits), on
hand-made frames shaped like the stages' CSVs: every expected table and sentence below is
written out by hand from the functions' documented behaviour (the arithmetic in comments),
never pasted from a run. The cases complement tests/test_summaries_devices.py and
tests/test_summaries_prediction.py: other orders, missing columns and edge values."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.counters import FORWARD_COUNTERS
from analysis.report import summaries as S


@pytest.fixture
def toy_counter(monkeypatch):
    """A second counter registered under "toy" with a known description."""
    monkeypatch.setitem(FORWARD_COUNTERS, "toy", SimpleNamespace(description="the toy counter"))


# ---------------------------------------------------------------------------- counters


def test_second_counter_columns_leave_out_torch_and_keep_the_frames_order():
    frame = pd.DataFrame(columns=["model", "measured_zeta", "predicted", "measured_torch",
                                  "measured_alpha", "ratio_torch"])
    assert S.second_counter_columns(frame) == ["measured_zeta", "measured_alpha"]
    assert S.second_counter_columns(pd.DataFrame(columns=["measured_torch"])) == []


def test_counter_description_reads_the_registry_else_the_name(toy_counter):
    assert S.counter_description("measured_toy") == "the toy counter"
    # not registered: the name without its prefix
    assert S.counter_description("measured_abacus") == "abacus"
    # only a leading "measured_" is the prefix
    assert S.counter_description("toy_measured_") == "toy_measured_"


# ---------------------------------------------------------------------------- supported_digits


@pytest.mark.parametrize("value, lo, hi, digits", [
    (0.0, -0.1, 0.1, 2),          # no digits of zero to support: the default 2
    (0.0, 0.0, 0.0, 2),           # zero, even with a zero-width interval
    (-0.0, -0.0, 0.0, 2),
    (1.0, 1.1, 1.0, 2),           # hi below lo: no interval
    (float("nan"), 0.9, 1.1, 2),
    (float("inf"), 0.9, 1.1, 2),
    (1.0, float("nan"), 1.1, 2),
    (1.0, 0.9, float("inf"), 2),
    (-0.268, -0.29, -0.24, 2),    # the sign does not matter: |v| 0.268, half-width 0.025
    (123.456, 123.4555, 123.4565, 3),  # floor(log10 123) 2 - floor(log10 5e-4) -4 + 1 = 7 > 3
    (1.0, -99.0, 101.0, 1),       # 0 - floor(log10 100) 2 + 1 = -1, at least 1
])
def test_supported_digits_edges(value, lo, hi, digits):
    assert S.supported_digits(value, lo, hi) == digits


def test_supported_digits_most_bounds_the_digits_and_a_zero_width_gets_it():
    assert S.supported_digits(123.456, 123.4555, 123.4565, most=10) == 7
    assert S.supported_digits(2.5, 2.5, 2.5, most=5) == 5
    assert S.supported_digits(0.0, 0.0, 0.0, most=5) == 2


# ---------------------------------------------------------------------------- flops_summary


FLOP_COLUMNS = ["model", "attention", "B", "T", "D", "L", "quantity", "predicted",
                "measured_torch", "measured_none", "measured_toy", "ratio_torch", "verdict",
                "env_device", "status"]


def _flops_frame():
    nan = np.nan
    return pd.DataFrame([
        # model, attention, B, T, D, L, quantity, predicted, torch, none, toy, ratio,
        # verdict, device, status
        ("transformer", "flash", 4, 64, 32, 2, "train", 800, 800, nan, 800, 1.0, "exact",
         "cuda", "ok"),
        ("rnn", nan, 1, 8, 16, 1, "forward", 100, 0, nan, 90, np.inf, "mismatch", "cpu", "ok"),
        ("transformer", "manual", 2, 16, 32, 3, "train", 400, 400, nan, nan, 1.0, "exact",
         "cpu", "ok"),
        ("rnn", nan, 8, 128, 16, 1, "forward", 50, 50, nan, 50, 1.0, "exact", "cpu", "ok"),
        ("rnn", nan, 2, 4, 8, 1, "train", nan, nan, nan, nan, nan, nan, "cpu",
         "failed: RuntimeError: out of memory"),
    ], columns=FLOP_COLUMNS)


def test_flops_summary_table_in_first_appearance_order_and_every_finding(toy_counter):
    s = S.flops_summary(_flops_frame(), ["a note"])
    # ok rows 0-3: exact 0, 2, 3 (3 of 4); models transformer, rnn; quantities train,
    # forward; ratios 1, inf, 1, 1 -> "1.000000 to inf"; B 1..8, T 8..128, D 16..32, L 1..3.
    # The only flash row ran on cuda: no CPU flash sentence. measured_none counted nothing
    # (skipped); measured_toy counted rows 0, 1, 3 and equals the prediction on 0 and 3.
    # measured_torch is PyTorch's own count, not a second counter. One cell failed.
    assert s.findings == [
        "FLOPs: 3 of 4 reconciliation rows (2 models, 2 quantities) have predicted matmul "
        "FLOPs equal to PyTorch's counter exactly (ratio 1.000000 to inf). Grid: B 1 to 8, "
        "T 8 to 128, D 16 to 32, L 1 to 3.",
        "The forward counts of the toy counter equal the prediction on 2 of 3 rows.",
        "1 reconciliation cells failed (see flops_reconciliation.csv)."]
    # (transformer, train): rows 0, 2, both exact, ratio 1; (rnn, forward): rows 1, 3, one
    # exact, ratios inf and 1
    expected = pd.DataFrame({
        "model": ["transformer", "rnn"], "quantity": ["train", "forward"],
        "rows": [2, 2], "exact": [2, 1], "ratio_min": [1.0, 1.0],
        "ratio_max": [1.0, np.inf]})
    pd.testing.assert_frame_equal(s.table, expected)


def _flash_frame():
    # no env_device column (an older CSV): every row is taken as a CPU row
    return pd.DataFrame({
        "model": ["transformer", "transformer", "transformer", "rnn"],
        "attention": ["flash", "flash", "flash", np.nan],
        "quantity": ["forward", "forward", "forward", "params"],
        "ratio_torch": [1.0, 1.0, 1.0, 1.0], "verdict": ["exact"] * 4, "status": ["ok"] * 4})


def test_flops_summary_without_a_device_column_counts_every_flash_row_with_its_notes():
    s = S.flops_summary(_flash_frame(), ["note one", "note two", "note one"])
    # rows 0, 1, 2 are flash; notes once each, in order; no sizes: no grid
    assert s.findings == [
        "FLOPs: 4 of 4 reconciliation rows (2 models, 2 quantities) have predicted matmul "
        "FLOPs equal to PyTorch's counter exactly (ratio 1.000000).",
        "The 3 CPU flash-attention rows are counted with the project's SDPA mapping "
        "(PyTorch's raw counter gives 0 FLOPs for CPU flash SDPA): note one; note two."]
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "model": ["transformer", "rnn"], "quantity": ["forward", "params"],
        "rows": [3, 1], "exact": [3, 1], "ratio_min": [1.0, 1.0], "ratio_max": [1.0, 1.0]}))


def test_flops_summary_says_when_no_counter_note_was_recorded():
    assert S.flops_summary(_flash_frame()).findings[1] == (
        "The 3 CPU flash-attention rows are counted with the project's SDPA mapping "
        "(PyTorch's raw counter gives 0 FLOPs for CPU flash SDPA): no counter note recorded.")


def test_flops_summary_without_device_or_attention_columns_has_no_flash_sentence():
    frame = _flash_frame().drop(columns="attention")
    assert S.flops_summary(frame, ["note"]).findings == [
        "FLOPs: 4 of 4 reconciliation rows (2 models, 2 quantities) have predicted matmul "
        "FLOPs equal to PyTorch's counter exactly (ratio 1.000000)."]


def test_flops_summary_of_rows_without_a_verdict_is_empty():
    frame = _flash_frame().drop(columns="verdict")
    for flops in (frame, None, pd.DataFrame(),
                  _flash_frame().assign(status="failed: x")):  # no ok row
        s = S.flops_summary(flops, ["n"])
        assert isinstance(s.table, pd.DataFrame) and s.table.empty and s.findings == []


# ---------------------------------------------------------------------------- derived_summary


def _formula(model, quantity, measure, derived, hand, equal, verified, difference, failure,
             points, seconds, **extra):
    return {"model": model, "attention": np.nan, "quantity": quantity, "measure": measure,
            **extra, "varied": "B, T", "fixed": "D=8", "derived": derived,
            "hand_written": hand, "equal": equal, "difference": difference,
            "verified": verified, "failure": failure, "points": points, "seconds": seconds}


def test_derived_summary_all_equal_without_status_or_kv_columns():
    frame = pd.DataFrame([
        _formula("rnn", "forward", "flops", "2BT", "2BT", True, True, np.nan, np.nan, 1000,
                 3.3, held_out=3),
        _formula("gru", "forward", "memory", "6BT", "6BT", True, True, np.nan, np.nan, 500,
                 4.4, held_out=5)])
    s = S.derived_summary(frame)
    # two models; one quantity; measures FLOPs and memory (not in MEASURE_WORDS: as
    # recorded); points 1000 + 500 = 1,500; seconds 3.3 + 4.4 = 7.7 -> "8"; held out 3, 5
    assert s.findings == [
        "Derived formulas: 2 of 2 formulas derived from counts alone (2 models; quantity "
        "forward; measures FLOPs, memory) equal the hand-written ones, and all 2 were "
        "verified on 3, 5 held-out sizes each (1,500 sizes counted in 8 s of counting)."]
    expected = pd.DataFrame({
        "model": ["rnn", "gru"], "quantity": ["forward", "forward"],
        "measure": ["FLOPs", "memory"], "varied": ["B, T", "B, T"], "fixed": ["D=8", "D=8"],
        "derived": ["2BT", "6BT"], "hand-written": ["2BT", "6BT"], "equal": ["yes", "yes"],
        "verified": ["yes", "yes"], "points": [1000, 500], "seconds": [3.3, 4.4]})
    pd.testing.assert_frame_equal(s.table, expected)


def _mixed_frame():
    nan = np.nan
    return pd.DataFrame([
        {"status": "failed: TimeoutError: 600 s", "cell": "transformer-generate-flops"},
        _formula("gru", "generate", "flops", "3BTD", "2BTD", False, False, "BTD",
                 "at T=5: derived 7, counted 8", 40, 2.25, kv_cache=True,
                 cell="gru-generate-flops", status="ok"),
        _formula("gru", "forward", "params", "D^2", "D^2", True, True, nan, nan, 25, 1.0,
                 kv_cache=False, cell="gru-forward-params", status="ok"),
        _formula("gru", "generate", "depth", "T - L", "T", "False", "False", "-L",
                 "at L=3: derived 9, counted 10", 2, 0.5, kv_cache="False",
                 cell="gru-generate-depth", status="ok"),
        {"status": "failed: KeyError: 'x'", "cell": "lstm-train-bytes"},
    ])


def test_derived_summary_names_each_difference_failure_and_failed_cell_in_order():
    s = S.derived_summary(_mixed_frame())
    # ok rows 1-3 (one model): equal only row 2 (1 of 3), verified only row 2 (1 of 3);
    # row 1 has the KV cache; points 40 + 25 + 2 = 67, seconds 2.25 + 1 + 0.5 = 3.75 -> "4";
    # no held_out column: "?"
    assert s.findings == [
        "Derived formulas: 1 of 3 formulas derived from counts alone (1 model; quantities "
        "generate (KV cache), forward, generate; measures FLOPs, parameters, depth) equal "
        "the hand-written ones; not equal: gru generate (KV cache) FLOPs (derived - "
        "hand-written = BTD); gru generate depth (derived - hand-written = -L).",
        "1 of 3 were verified on ? held-out sizes each; not verified: gru generate "
        "(KV cache) FLOPs (at T=5: derived 7, counted 8); gru generate depth (at L=3: "
        "derived 9, counted 10) (67 sizes counted in 4 s of counting).",
        "2 derivation(s) failed (see derived_formulas.csv): transformer-generate-flops: "
        "failed: TimeoutError: 600 s; lstm-train-bytes: failed: KeyError: 'x'."]
    expected = pd.DataFrame({
        "model": ["gru"] * 3,
        "quantity": ["generate (KV cache)", "forward", "generate"],
        "measure": ["FLOPs", "parameters", "depth"], "varied": ["B, T"] * 3,
        "fixed": ["D=8"] * 3, "derived": ["3BTD", "D^2", "T - L"],
        "hand-written": ["2BTD", "D^2", "T"], "derived - hand-written": ["BTD", "", "-L"],
        "equal": ["NO", "yes", "NO"], "verified": ["NO", "yes", "NO"],
        "points": [40.0, 25.0, 2.0], "seconds": [2.25, 1.0, 0.5],
        "failure": ["at T=5: derived 7, counted 8", "", "at L=3: derived 9, counted 10"]},
        index=[1, 2, 3])
    pd.testing.assert_frame_equal(s.table, expected)


def test_derived_summary_of_nothing_or_only_failures():
    for frame in (None, pd.DataFrame()):
        s = S.derived_summary(frame)
        assert isinstance(s.table, pd.DataFrame) and s.table.empty and s.findings == []
    s = S.derived_summary(_mixed_frame().iloc[[0, 4]])
    assert isinstance(s.table, pd.DataFrame) and s.table.empty
    assert s.findings == [
        "2 derivation(s) failed (see derived_formulas.csv): transformer-generate-flops: "
        "failed: TimeoutError: 600 s; lstm-train-bytes: failed: KeyError: 'x'."]


def test_derived_label_names_model_quantity_cache_and_measure():
    row = pd.Series({"model": "transformer", "quantity": "generate", "measure": "bytes"})
    assert S._derived_label(row, True) == "transformer generate (KV cache) bytes"
    assert S._derived_label(row, False) == "transformer generate bytes"
    other = pd.Series({"model": "lstm", "quantity": "train", "measure": "energy"})
    assert S._derived_label(other, False) == "lstm train energy"  # not in MEASURE_WORDS


# ---------------------------------------------------------------------------- graph_summary


GRAPH = "+cuda-graph"


def _graph_frame():
    rows = [  # id, variant, phase, median_s, predicted_nofixed_s
        ("gru-train-B8-T64" + GRAPH, "gru" + GRAPH, "train", 2e-3, 1e-3),  # no eager twin
        ("rnn-train-B8-T16", "rnn", "train", 8e-3, 1e-3),
        ("rnn-train-B8-T16" + GRAPH, "rnn" + GRAPH, "train", 2e-3, 1e-3),
        ("rnn-forward-B8-T16", "rnn", "forward", 3e-3, 2e-4),
        ("rnn-forward-B8-T16" + GRAPH, "rnn" + GRAPH, "forward", 0.0, 2e-4),  # no time
        ("lstm-train-B8-T16", "lstm", "train", 6e-3, 0.0),
        ("lstm-train-B8-T16" + GRAPH, "lstm" + GRAPH, "train", 1e-3, 0.0),  # no floor
        ("rnn-forward-B8-T32", "rnn", "forward", 6e-3, 5e-4),
        ("rnn-forward-B8-T32" + GRAPH, "rnn" + GRAPH, "forward", 1e-3, 5e-4),
        ("rnn-train-B8-T32", "rnn", "train", 9e-3, 2e-3),
        ("rnn-train-B8-T32" + GRAPH, "rnn" + GRAPH, "train", 3e-3, 2e-3),
    ]
    return pd.DataFrame(rows, columns=["id", "variant", "phase", "median_s",
                                       "predicted_nofixed_s"]).assign(kind="model")


def test_graph_summary_table_and_findings_per_phase_in_order_of_appearance():
    s = S.graph_summary(_graph_frame())
    # train: rnn T16 8 / 2 = 4x at 2 / 1 = 2x the floor; lstm 6 / 1 = 6x, zero floor (no
    # ratio); rnn T32 9 / 3 = 3x at 3 / 2 = 1.5x. forward: rnn T32 6 / 1 = 6x at
    # 1 / 0.5 = 2x (T16's replay has no time). The gru replay has no eager round.
    expected = pd.DataFrame({
        "execution": ["cuda-graph"] * 4,
        "id": ["rnn-train-B8-T16", "lstm-train-B8-T16", "rnn-forward-B8-T32",
               "rnn-train-B8-T32"],
        "variant": ["rnn", "lstm", "rnn", "rnn"],
        "phase": ["train", "train", "forward", "train"],
        "eager_s": [8e-3, 6e-3, 6e-3, 9e-3], "run_s": [2e-3, 1e-3, 1e-3, 3e-3],
        "speed-up": [4.0, 6.0, 6.0, 3.0], "floor_s": [1e-3, 0.0, 5e-4, 2e-3],
        "run/floor": [2.0, np.nan, 2.0, 1.5]})
    pd.testing.assert_frame_equal(s.table, expected)
    # train speed-ups 4, 6, 3: 3-6, median 4; floors 2, 1.5: 1.5-2, median 1.75 -> "1.8"
    assert s.findings == [
        "CUDA graphs, train: 3 rounds replayed 3-6x faster than eager (median 4x), at "
        "1.5-2x the runtime model's no-fixed-cost floor (median 1.8x).",
        "CUDA graphs, forward: 1 rounds replayed 6-6x faster than eager (median 6x), at "
        "2-2x the runtime model's no-fixed-cost floor (median 2x)."]


def test_graph_summary_without_a_floor_column_gives_no_floor():
    frame = _graph_frame().drop(columns="predicted_nofixed_s").iloc[1:4]
    s = S.graph_summary(frame)
    # rnn train 8 / 2 = 4x; no floor recorded
    pd.testing.assert_frame_equal(s.table, pd.DataFrame([
        {"execution": "cuda-graph", "id": "rnn-train-B8-T16", "variant": "rnn",
         "phase": "train", "eager_s": 8e-3, "run_s": 2e-3, "speed-up": 4.0, "floor_s": None,
         "run/floor": np.nan}]))
    assert s.findings == ["CUDA graphs, train: 1 rounds replayed 4-4x faster than eager "
                          "(median 4x)."]


def test_graph_summary_states_each_execution_apart_in_order_of_appearance():
    # one eager Transformer train round timed three ways: eager 8 ms, compiled 4 ms, a graph
    # replay 1 ms; the floor 0.5 ms. And a compiled forward: eager 6 ms, compiled 2 ms, no
    # floor. Findings per (execution, phase) as they first appear: compiled train, graph
    # train, compiled forward.
    frame = pd.DataFrame([
        ("t-train-B8", "t", "train", 8e-3, 5e-4),
        ("t-train-B8+compiled", "t+compiled", "train", 4e-3, 5e-4),
        ("t-train-B8" + GRAPH, "t" + GRAPH, "train", 1e-3, 5e-4),
        ("t-forward-B8", "t", "forward", 6e-3, 0.0),
        ("t-forward-B8+compiled", "t+compiled", "forward", 2e-3, 0.0),
    ], columns=["id", "variant", "phase", "median_s", "predicted_nofixed_s"])
    s = S.graph_summary(frame)
    assert s.table["execution"].tolist() == ["compiled", "cuda-graph", "compiled"]
    assert s.table["id"].tolist() == ["t-train-B8"] * 2 + ["t-forward-B8"]
    assert s.table["speed-up"].tolist() == [2.0, 8.0, 3.0]  # 8/4, 8/1, 6/2
    assert s.table["run/floor"].tolist()[:2] == [8.0, 2.0]  # 4/0.5, 1/0.5
    assert s.findings == [
        "torch.compile, train: 1 rounds ran 2-2x faster than eager (median 2x), at 8-8x the "
        "runtime model's no-fixed-cost floor (median 8x).",
        "CUDA graphs, train: 1 rounds replayed 8-8x faster than eager (median 8x), at 2-2x "
        "the runtime model's no-fixed-cost floor (median 2x).",
        "torch.compile, forward: 1 rounds ran 3-3x faster than eager (median 3x)."]


def test_graph_summary_is_empty_without_variants_ids_or_a_usable_replay():
    frame = _graph_frame()
    for data in (frame.drop(columns="variant"), frame.drop(columns="id"),
                 frame.iloc[[0, 3, 4]],  # a replay without a twin, one without a time
                 frame[~frame["variant"].str.endswith(GRAPH)]):
        s = S.graph_summary(data)
        assert isinstance(s.table, pd.DataFrame) and s.table.empty and s.findings == []


# ---------------------------------------------------------------------------- homework time


def _hw(variant, model, phase, median, predicted, nofixed, share, ops, regime, T=16,
        N=np.nan, kind="model"):
    return {"id": f"{variant}-{phase}-T{T}", "kind": kind, "variant": variant,
            "model": model, "phase": phase, "T": T, "N": N, "median_s": median,
            "predicted_s": predicted, "predicted_nofixed_s": nofixed, "regime": regime,
            "share_overhead": share, "trace_ops": ops}


LO = "launch/overhead"


def _hw_frame():
    tf = "transformer-flash"
    return pd.DataFrame([
        _hw(tf, "transformer", "train", 1.0, 1.0, 0.25, 0.5, 300, "bandwidth"),
        _hw("rnn", "rnn", "forward", 1.0, 3.0, 1.0, 0.6, 90, LO),
        _hw("rnn", "rnn", "forward", 2.0, 4.0, 0.5, 0.8, 110, LO, T=32),
        _hw("rnn", "rnn", "forward", 2.0, 5.0, 1.0, 0.9, 130, "compute", T=64),
        _hw("mingru", "mingru", "forward", 1.0, 2.0, 1.0, 0.1, 40, "bandwidth"),
        # a reference workload (not the homework's): left out
        _hw("rnn", "rnn", "forward", 1.0, 9.0, 0.1, 0.05, 7, "compute", kind="reference"),
        # a CUDA-graph replay: left out (eager rows only)
        _hw("rnn+cuda-graph", "rnn", "forward", 1.0, 8.0, 0.1, 0.05, 7, "compute"),
        # no prediction: left out
        _hw("gru", "gru", "forward", 1.0, np.nan, np.nan, np.nan, np.nan, LO),
    ])


def test_homework_time_summary_groups_in_order_and_leaves_out_other_rows():
    s = S.homework_time_summary(_hw_frame())
    # transformer-flash train: 0.5, 300, 1 / 0.25 = 4, bandwidth; rnn forward: shares
    # 0.6, 0.8, 0.9 -> 0.8; ops 90, 110, 130 -> 110; speed-ups 3, 8, 5 -> 5; regime LO
    # twice; mingru forward: 0.1, 40, 2 / 1 = 2
    expected = pd.DataFrame([
        {"variant": "transformer-flash", "phase": "train", "overhead share": 0.5,
         "ops per round": 300.0, "no-fixed-cost speed-up": 4.0, "regime": "bandwidth"},
        {"variant": "rnn", "phase": "forward", "overhead share": 0.8,
         "ops per round": 110.0, "no-fixed-cost speed-up": 5.0, "regime": LO},
        {"variant": "mingru", "phase": "forward", "overhead share": 0.1,
         "ops per round": 40.0, "no-fixed-cost speed-up": 2.0, "regime": "bandwidth"}])
    pd.testing.assert_frame_equal(s.table, expected)
    # the loop (rnn) shares 0.6, 0.8, 0.9: 80%; the only attention row is a train round:
    # no Transformer sentence; no generate rows; speed-ups 4, 3, 8, 5, 2: 2-8x
    assert s.findings == [
        "The recurrent loops' rounds are 80% fixed per-op cost (median): time is steps x ops "
        "per step x the fixed cost, so it follows depth times ops, not FLOPs.",
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 2-8x "
        "faster rounds."]


def test_homework_time_summary_when_the_transformers_forward_is_never_compute_bound():
    tf = "transformer-flash"
    frame = pd.DataFrame([
        _hw(tf, "transformer", "forward", 1.0, 1.5, 1.0, 0.4, 60, "bandwidth"),
        _hw(tf, "transformer", "forward", 1.0, 3.0, 1.0, 0.3, 80, LO, T=128),
        _hw(tf, "transformer", "train", 1.0, 2.0, 1.0, 0.2, 90, "compute")])
    # forward regimes bandwidth and LO: not compute-bound (the compute row is a train
    # round); speed-ups 1.5, 3, 2
    assert S.homework_time_summary(frame).findings == [
        "The Transformer's forward is not compute-bound anywhere in this grid.",
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 1.5-3x "
        "faster rounds."]


def test_homework_time_summary_kv_cache_is_the_median_over_repeated_rounds():
    tf = "transformer-flash"
    frame = pd.DataFrame([
        _hw(tf, "transformer", "generate", 1.0, 2.0, 1.0, 0.3, 40, LO, N=16),
        _hw(tf, "transformer", "generate", 1.0, 2.0, 1.0, 0.3, 40, LO, N=16),
        _hw(tf, "transformer", "generate", 7.0, 2.0, 1.0, 0.3, 40, LO, N=16),
        _hw(tf, "transformer", "generate_cache", 0.5, 1.0, 0.5, 0.3, 40, LO, N=16),
        _hw(tf, "transformer", "generate", 3.0, 6.0, 3.0, 0.3, 40, LO, N=64),
        _hw(tf, "transformer", "generate_cache", 1.0, 2.0, 1.0, 0.3, 40, LO, N=64)])
    # N 16: measured median(1, 1, 7) = 1 over 0.5 = 2x (the mean 3 would give 6x),
    # predicted 2 / 1 = 2x; N 64: measured 3 / 1 = 3x, predicted 6 / 2 = 3x.
    # Every round: predicted / no-fixed-cost = 2.
    assert S.homework_time_summary(frame).findings == [
        "The KV cache: measured 2-3x faster, predicted 2-3x.",
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 2-2x "
        "faster rounds."]


def test_homework_time_summary_is_empty_without_the_no_fixed_cost_prediction():
    for frame in (_hw_frame().drop(columns="predicted_nofixed_s"), None, pd.DataFrame(),
                  _hw_frame().iloc[5:]):  # reference, replay and unpredicted rows only
        s = S.homework_time_summary(frame)
        assert isinstance(s.table, pd.DataFrame) and s.table.empty and s.findings == []
