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


# ---------------------------------------------------------------------------- devices


def _dev(device, model, variant, times, B=None, ts=(16, 64, 256)):
    rows = [{"device_label": device, "model": model, "variant": variant, "status": "ok",
             "suite": "test_model_phase", "sweep": "T", "phase": "forward", "T": t,
             "median_s": m} for t, m in zip(ts, times)]
    return [{**r, "B": B} for r in rows] if B is not None else rows


LINEAR = (1e-3, 4e-3, 16e-3)  # T 16, 64, 256: x4 per x4 in T, exponent 1
FLAT = (2e-3, 2e-3, 2e-3)  # exponent 0
HALF = (1e-3, 2e-3, 4e-3)  # x2 per x4 in T, exponent 0.5


def test_device_slopes_table_in_input_order_with_three_point_ranges():
    # three equally spaced log T points: the least-squares slope is
    # (log y3 - log y1) / (log 256 - log 16) = log 6 / log 16 = 0.6462 -> 0.65
    # groups in an order sorting would change (GPU Y before CPU X, transformer before rnn),
    # each group's rows from the largest T down; a training row and a failed row left out
    rows = (_dev("GPU Y", "transformer", "transformer-flash", (1e-3, 2e-3, 6e-3), B=8)[::-1]
            + _dev("GPU Y", "rnn", "rnn", LINEAR, B=8)[::-1]
            + _dev("CPU X", "rnn", "rnn", FLAT, B=4)[::-1])
    rows += [{**rows[0], "phase": "train", "median_s": 9.0},
             {**rows[0], "status": "failed", "T": 512}]
    frame = pd.DataFrame(rows)
    table = S.device_slopes(frame)
    expected = pd.DataFrame({
        "device": ["GPU Y", "GPU Y", "CPU X"],
        "variant": ["transformer-flash", "rnn", "rnn"],
        "model": ["transformer", "rnn", "rnn"], "B": ["8", "8", "4"],
        "T": ["16..256"] * 3, "time slope": [0.65, 1.0, 0.0],
        "s at min T": [1e-3, 1e-3, 2e-3], "s at max T": [6e-3, 16e-3, 2e-3]})
    pd.testing.assert_frame_equal(table, expected)


def test_device_slopes_without_a_batch_column_or_without_device_labels():
    table = S.device_slopes(pd.DataFrame(_dev("CPU X", "rnn", "rnn", HALF)))
    assert table.to_dict("records") == [
        {"device": "CPU X", "variant": "rnn", "model": "rnn", "B": "", "T": "16..256",
         "time slope": 0.5, "s at min T": 1e-3, "s at max T": 4e-3}]
    unlabelled = pd.DataFrame(_dev("CPU X", "rnn", "rnn", HALF)).drop(columns="device_label")
    assert S.device_slopes(unlabelled).equals(pd.DataFrame())
    assert S.device_slopes(None).equals(pd.DataFrame())


def _sentence(device, loop, att):
    return (f"on {device} the recurrent loops' forward time grows as T^{loop} and the "
            f"attention models' as T^{att}")


DEPTH = ("time follows the sequential depth (T steps for a loop, a constant for the "
         "Transformer), as the homework argues")
FLOPS = ("both grow about linearly, as their FLOPs do: time follows the FLOPs, not the "
         "depth")


def test_devices_summary_states_every_devices_verdict_in_input_order():
    missing = dict(zip((16, 64, 256), (np.nan, 2e-3, 4e-3)))  # NPU B's rnn: no time at T=16
    rows = (_dev("TPU Q", "rnn", "rnn", LINEAR, B=4)  # no attention model: left out
            + _dev("GPU Y", "rnn", "rnn", LINEAR, B=4)
            + _dev("GPU Y", "transformer", "transformer-flash", FLAT, B=4)
            + _dev("CPU X", "rnn", "rnn", LINEAR, B=4)
            + _dev("CPU X", "transformer", "transformer-flash", LINEAR, B=4)
            + _dev("CPU W", "rnn", "rnn", LINEAR, B=4)
            + _dev("CPU W", "transformer", "transformer-manual", LINEAR, B=4)
            + _dev("NPU A", "rnn", "rnn", HALF, B=4)
            + _dev("NPU A", "transformer", "transformer-flash", HALF, B=4)
            + [{**r, "median_s": missing[r["T"]]}
               for r in _dev("NPU B", "rnn", "rnn", HALF, B=4)]
            + _dev("NPU B", "transformer", "transformer-flash", HALF, B=4))
    s = S.devices_summary(pd.DataFrame(rows))
    # NPU B's rnn keeps its exponent 0.5 from T 64 and 256 (log 2 / log 4); its time at
    # min T is missing, which must not drop the device. Exponent 0.5 is below 0.75: neither.
    # Every device ran B 4: no batch-size sentence.
    assert s.findings == [
        "Devices side by side (forward pass over T known tokens): "
        + "; ".join([_sentence("GPU Y", "1.00", "0.00"), _sentence("CPU X", "1.00", "1.00"),
                     _sentence("CPU W", "1.00", "1.00"), _sentence("NPU A", "0.50", "0.50"),
                     _sentence("NPU B", "0.50", "0.50")])
        + f". On GPU Y {DEPTH}. On CPU X and CPU W {FLOPS}. On NPU A and NPU B the exponents "
        "follow neither the depth nor the FLOPs alone."]
    assert list(s.table.columns) == ["device", "variant", "B", "T", "time slope",
                                     "s at min T", "s at max T"]
    assert list(s.table["device"]) == (["TPU Q"] + ["GPU Y"] * 2 + ["CPU X"] * 2
                                       + ["CPU W"] * 2 + ["NPU A"] * 2 + ["NPU B"] * 2)


def test_devices_summary_says_when_the_devices_ran_different_batch_sizes():
    rows = (_dev("GPU Y", "rnn", "rnn", LINEAR, B=8)
            + _dev("GPU Y", "transformer", "transformer-flash", FLAT, B=8)
            + _dev("CPU X", "rnn", "rnn", LINEAR, B=4)
            + _dev("CPU X", "transformer", "transformer-flash", LINEAR, B=4))
    s = S.devices_summary(pd.DataFrame(rows))
    assert s.findings == [
        "Devices side by side (forward pass over T known tokens): "
        + _sentence("GPU Y", "1.00", "0.00") + "; " + _sentence("CPU X", "1.00", "1.00")
        + f". On GPU Y {DEPTH}. On CPU X {FLOPS}. The devices ran different batch sizes "
        "(B 8 on GPU Y; B 4 on CPU X): compare exponents, not times."]


def test_devices_summary_tables_without_the_model_when_nothing_compares():
    one = pd.DataFrame(_dev("CPU X", "rnn", "rnn", HALF, B=2))
    expected = pd.DataFrame({"device": ["CPU X"], "variant": ["rnn"], "B": ["2"],
                             "T": ["16..256"], "time slope": [0.5], "s at min T": [1e-3],
                             "s at max T": [4e-3]})
    s = S.devices_summary(one)
    assert s.findings == []
    pd.testing.assert_frame_equal(s.table, expected)
    # two devices, neither with an attention model: no finding, the same table per device
    two = pd.concat([one, one.assign(device_label="GPU Y")], ignore_index=True)
    s = S.devices_summary(two)
    assert s.findings == []
    pd.testing.assert_frame_equal(
        s.table, pd.concat([expected, expected.assign(device="GPU Y")], ignore_index=True))
    assert S.devices_summary(None).table.empty


# ---------------------------------------------------------------------------- flops_summary


def _flop(model, quantity, verdict, ratio, **over):
    return {"model": model, "quantity": quantity, "verdict": verdict, "ratio_torch": ratio,
            "status": "ok", **over}


def test_flops_summary_full_table_grid_notes_and_second_counters():
    flops = pd.DataFrame([
        _flop("transformer", "forward", "exact", 1.0, attention="flash", env_device="cpu",
              B=1, T=8, D=16, L=2, predicted=200, measured_aaa=np.nan, measured_zzz=200),
        _flop("transformer", "forward", "exact", 1.0, attention="flash", env_device="cuda",
              B=2, T=16, D=16, L=2, predicted=400, measured_aaa=np.nan, measured_zzz=400),
        _flop("rnn", "forward", "mismatch", 0.5, attention=None, env_device="cpu",
              B=1, T=4, D=8, L=1, predicted=100, measured_aaa=np.nan, measured_zzz=90),
        _flop("transformer", "train", "exact", 1.0, attention="flash", env_device="cpu",
              B=1, T=8, D=16, L=2, predicted=600, measured_aaa=np.nan, measured_zzz=np.nan),
        {"model": "rnn", "quantity": "train", "status": "failed: MemoryError"},
    ])
    s = S.flops_summary(flops, ["note a", "note b", "note a"])
    # ok rows 0-3: 3 exact of 4, 2 models, 2 quantities, ratios 0.5..1; CPU flash rows: 0
    # and 3 (row 1 ran on cuda); measured_aaa counted nothing (skipped, not the end of the
    # loop); measured_zzz counted rows 0-2 and equals the prediction on rows 0 and 1.
    assert s.findings == [
        "FLOPs: 3 of 4 reconciliation rows (2 models, 2 quantities) have predicted matmul "
        "FLOPs equal to PyTorch's counter exactly (ratio 0.500000 to 1.000000). Grid: B 1 "
        "to 2, T 4 to 16, D 8 to 16, L 1 to 2.",
        "The 2 CPU flash-attention rows are counted with the project's SDPA mapping "
        "(PyTorch's raw counter gives 0 FLOPs for CPU flash SDPA): note a; note b.",
        "The forward counts of zzz equal the prediction on 2 of 3 rows.",
        "1 reconciliation cells failed (see flops_reconciliation.csv)."]
    expected = pd.DataFrame({
        "model": ["transformer", "rnn", "transformer"],
        "quantity": ["forward", "forward", "train"],
        "rows": [2, 1, 1], "exact": [2, 0, 1],
        "ratio_min": [1.0, 0.5, 1.0], "ratio_max": [1.0, 0.5, 1.0]})
    pd.testing.assert_frame_equal(s.table, expected)


def test_flops_summary_without_a_device_column_takes_every_row_as_cpu():
    flops = pd.DataFrame([
        _flop("transformer", "forward", "exact", 1.0, attention="manual"),
        _flop("transformer", "forward", "exact", 1.0, attention="flash"),
        _flop("transformer", "forward", "mismatch", np.inf, attention="flash"),
    ]).drop(columns="status")
    s = S.flops_summary(flops)
    # no sizes: no grid; a ratio of inf (the raw counter counted 0) is printed as "inf"
    assert s.findings == [
        "FLOPs: 2 of 3 reconciliation rows (1 models, 1 quantities) have predicted matmul "
        "FLOPs equal to PyTorch's counter exactly (ratio 1.000000 to inf).",
        "The 2 CPU flash-attention rows are counted with the project's SDPA mapping "
        "(PyTorch's raw counter gives 0 FLOPs for CPU flash SDPA): no counter note recorded."]
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "model": ["transformer"], "quantity": ["forward"], "rows": [3], "exact": [2],
        "ratio_min": [1.0], "ratio_max": [np.inf]}))


def test_flops_summary_without_an_attention_column_has_no_flash_rows():
    flops = pd.DataFrame([_flop("rnn", "forward", "exact", 1.0, env_device="cpu"),
                          _flop("rnn", "train", "exact", 1.0, env_device="cpu")])
    assert S.flops_summary(flops, ["n"]).findings == [
        "FLOPs: 2 of 2 reconciliation rows (1 models, 2 quantities) have predicted matmul "
        "FLOPs equal to PyTorch's counter exactly (ratio 1.000000)."]


def test_flops_summary_needs_a_verdict_column():
    assert S.flops_summary(None).findings == []
    s = S.flops_summary(pd.DataFrame([{"model": "rnn", "quantity": "forward", "status": "ok",
                                       "ratio_torch": 1.0}]))
    assert s.table.empty and s.findings == []


# ---------------------------------------------------------------------------- graph_summary


def test_graph_summary_skips_unmatched_and_zero_replays_and_keeps_the_phases_order():
    rows = [  # id, variant, phase, median_s, predicted_nofixed_s
        ("t-forward-B16+cuda-graph", "t+cuda-graph", "forward", 1e-3, 1e-4),  # no eager twin
        ("t-train-B8", "t", "train", 9e-3, 1e-3),
        ("t-train-B8+cuda-graph", "t+cuda-graph", "train", 3e-3, 1e-3),
        ("r-forward-B8+cuda-graph", "r+cuda-graph", "forward", 0.0, 1e-4),  # no time: skipped
        ("t-forward-B8", "t", "forward", 4e-3, 2.5e-4),
        ("t-forward-B8+cuda-graph", "t+cuda-graph", "forward", 5e-4, 2.5e-4),
        ("r-forward-B8", "r", "forward", 2e-3, 1e-4),
        ("u-forward-B8", "u", "forward", 6e-3, 0.0),
        ("u-forward-B8+cuda-graph", "u+cuda-graph", "forward", 2e-3, 0.0),  # no floor
    ]
    frame = pd.DataFrame(rows, columns=["id", "variant", "phase", "median_s",
                                        "predicted_nofixed_s"])
    s = S.graph_summary(frame)
    # train: 9 / 3 = 3x, at 3 / 1 = 3x the floor; forward: t 4 / 0.5 = 8x at 0.5 / 0.25 = 2x,
    # u 6 / 2 = 3x with a zero floor (no ratio)
    expected = pd.DataFrame({
        "execution": ["cuda-graph"] * 3,
        "id": ["t-train-B8", "t-forward-B8", "u-forward-B8"], "variant": ["t", "t", "u"],
        "phase": ["train", "forward", "forward"], "eager_s": [9e-3, 4e-3, 6e-3],
        "run_s": [3e-3, 5e-4, 2e-3], "speed-up": [3.0, 8.0, 3.0],
        "floor_s": [1e-3, 2.5e-4, 0.0], "run/floor": [3.0, 2.0, np.nan]})
    pd.testing.assert_frame_equal(s.table, expected)
    # forward speed-ups 8 and 3: range 3-8, median 5.5; floors: only t's 2
    assert s.findings == [
        "CUDA graphs, train: 1 rounds replayed 3-3x faster than eager (median 3x), at 3-3x "
        "the runtime model's no-fixed-cost floor (median 3x).",
        "CUDA graphs, forward: 2 rounds replayed 3-8x faster than eager (median 5.5x), at "
        "2-2x the runtime model's no-fixed-cost floor (median 2x)."]


def test_graph_summary_without_a_floor_column_states_only_the_speed_up():
    frame = pd.DataFrame({"id": ["t-forward-B8", "t-forward-B8+cuda-graph"],
                          "variant": ["t", "t+cuda-graph"], "phase": ["forward", "forward"],
                          "median_s": [4e-3, 1e-3]})
    s = S.graph_summary(frame)
    expected = pd.DataFrame([{"execution": "cuda-graph", "id": "t-forward-B8",
                              "variant": "t", "phase": "forward",
                              "eager_s": 4e-3, "run_s": 1e-3, "speed-up": 4.0,
                              "floor_s": None, "run/floor": np.nan}])
    pd.testing.assert_frame_equal(s.table, expected)
    assert s.findings == ["CUDA graphs, forward: 1 rounds replayed 4-4x faster than eager "
                          "(median 4x)."]


def test_graph_summary_is_empty_without_variants_ids_or_a_matching_eager_round():
    frame = pd.DataFrame({"id": ["t-forward-B8", "t-forward-B8+cuda-graph"],
                          "variant": ["t", "t+cuda-graph"], "phase": ["forward", "forward"],
                          "median_s": [4e-3, 1e-3]})
    for data in (None, pd.DataFrame(), frame.drop(columns="variant"),
                 frame.drop(columns="id"), frame.iloc[1:]):
        s = S.graph_summary(data)
        assert s.table.empty and s.findings == []


# ---------------------------------------------------------------------------- device ratios


def _r(device, configuration, comparison="c", ratio=2.0, lo=1.8, hi=2.2):
    return {"comparison": comparison, "measure": "time", "configuration": configuration,
            "device_label": device, "ratio": ratio, "ci_low": lo, "ci_high": hi}


def test_device_ratios_on_one_device_is_its_own_wide_table():
    s = S.device_ratios_summary(pd.DataFrame([_r("A", "B4-T32")]))
    expected = pd.DataFrame({"comparison": ["c"], "measure": ["time"],
                             "configuration": ["B4-T32"], "A": ["2.0 [1.8, 2.2]"]})
    pd.testing.assert_frame_equal(s.table, expected)  # columns unnamed, B kept
    assert s.findings == []
    assert S.device_ratios_summary(None).table.empty


def test_device_ratios_with_the_same_batch_size_everywhere_match_whole_configurations():
    s = S.device_ratios_summary(pd.DataFrame([_r("CPU", "rnn forward B4-T32"),
                                              _r("GPU", "rnn forward B4-T32", ratio=9.0,
                                                 lo=8.5, hi=9.5)]))
    assert s.table.to_dict("records") == [
        {"comparison": "c", "measure": "time", "configuration": "rnn forward B4-T32",
         "CPU": "2.0 [1.8, 2.2]", "GPU": "9.0 [8.5, 9.5]"}]
    assert s.findings == [
        "1 paired ratios were measured on both CPU and GPU (the same comparison, measure and "
        "configuration); they are set side by side below."]


def test_device_ratios_on_three_devices_and_only_the_first_batch_size_is_dropped():
    three = pd.DataFrame([_r("A", "x"), _r("B", "x"), _r("C", "x")])
    assert S.device_ratios_summary(three).findings == [
        "1 paired ratios were measured on every one of A, B, C (the same comparison, measure "
        "and configuration); they are set side by side below."]
    s = S.device_ratios_summary(pd.DataFrame([_r("CPU", "mix B4-T32 B2-D8"),
                                              _r("GPU", "mix B8-T32 B2-D8")]))
    assert list(s.table["configuration"]) == ["mix T32 B2-D8"]
    assert s.findings == [
        "1 paired ratios were measured on both CPU and GPU (matched on everything but the "
        "batch size: B 4 on CPU; B 8 on GPU); they are set side by side below."]


def test_device_ratios_say_in_full_why_nothing_pairs():
    tail = ("each device's ratios are under its own Paired ratios (devices_ratios.csv holds "
            "them all).")
    s = S.device_ratios_summary(pd.DataFrame([_r("CPU", "x"), _r("GPU", "x", "d")]))
    assert s.table.empty
    assert s.findings == [
        "No paired ratio was measured on both CPU and GPU (the same comparison, measure and "
        f"configuration): they share no comparison; {tail}"]
    s = S.device_ratios_summary(pd.DataFrame([_r("CPU", "x"), _r("GPU", "y")]))
    assert s.findings == [
        "No paired ratio was measured on both CPU and GPU (the same comparison, measure and "
        f"configuration): they share the comparisons c but no configuration; {tail}"]
