"""The report's summaries on small hand-made tables whose answers are known by hand: a
flipped count, an inverted slope or a fraction off by 10x fails here."""

import numpy as np
import pandas as pd
import pytest

from analysis.report import summaries as S


def _timing(rows):
    base = {"status": "ok", "suite": "test_model_phase", "sweep": "T", "phase": "forward",
            "noisy": False}
    return pd.DataFrame([{**base, **r} for r in rows])


def _sweep(variant, model, ts, time, flops, depth):
    return [{"variant": variant, "model": model, "T": t, "median_s": time(t),
             "predicted_flops": flops(t), "predicted_depth": depth(t),
             "seconds_per_token": time(t) / (4 * t), "id": f"{variant}-T{t}"} for t in ts]


TS = (16, 32, 64, 128)


def test_loglog_slope_recovers_known_exponents():
    t = np.array(TS, float)
    assert S.loglog_slope(t, 3e-6 * t**2) == pytest.approx(2.0, abs=1e-9)
    assert S.loglog_slope(t, 5.0 / t) == pytest.approx(-1.0, abs=1e-9)
    assert S.loglog_slope(t, np.full(4, 7.0)) == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(S.loglog_slope([8], [1.0]))


# --- reproducibility (repeat_summary) and the A/A pairs (repeated_timings), by hand


def _repeat_frame(pace=True):
    """Four ratios timed in two processes: moved 20% (intervals disjoint, pace moved 1.2x),
    exactly 5% (not beyond the tolerance), 10% (pace 1.05x: not "moved"), and 0%."""
    rows = [
        ("flash vs manual", "time", "T=256", 1.5, 1.8, 0.20, False, 0.02, 1.20),
        ("kv vs no cache", "time", "N=64", 2.0, 2.1, 0.05, True, 0.04, 1.00),
        ("x vs y", "memory", "B=1", 3.0, 3.3, 0.10, True, 0.06, 1.05),
        ("u vs v", "time", "B=2", 1.0, 1.0, 0.00, True, 0.01, 1.00),
    ]
    frame = pd.DataFrame(rows, columns=["comparison", "measure", "configuration", "ratio_1",
                                        "ratio_2", "relative_difference", "intervals_overlap",
                                        "median_ci_half_width", "pace_spread"])
    return frame if pace else frame.drop(columns="pace_spread")


PACE_SENTENCE = (
    "Where the machine's pace (the yardstick timed around each ratio) moved between the runs, "
    "the two sides of a ratio can slow by different factors (on this project's VM, KV-cache "
    "generation 1.75x where the loop without the cache slowed 1.49x), so such a ratio depends "
    "on the machine's state, which a shared VM does not hold still.")


def test_repeat_summary_states_every_figure_and_names_what_moved():
    s = S.repeat_summary(_repeat_frame())
    # within 5%: 0.05 and 0.00 of four (0.05 <= 0.05 counts) = 50%; overlapping intervals
    # 3 of 4 = 75%; half-widths 0.01, 0.02, 0.04, 0.06: median (0.02 + 0.04) / 2 = 3.0%
    assert s.findings == [
        "Reproducibility (2 runs in separate processes): 50% of 4 ratios agree within 5% "
        "between runs, the intervals of 75% overlap, and the median interval half-width is "
        "3.0%.",
        # beyond 5%, largest first: 20% then 10%; only the first one's pace moved past 1.05x
        "Still dependent on the machine's state between processes (beyond 5%): flash vs manual "
        "T=256 (time) 1.5/1.8, intervals disjoint, pace moved 1.20x; x vs y B=1 (memory) "
        "3/3.3.",
        PACE_SENTENCE,
    ]
    expected = _repeat_frame()[["comparison", "measure", "configuration",
                                "relative_difference", "intervals_overlap"]]
    pd.testing.assert_frame_equal(s.table, expected)


def test_repeat_summary_with_another_tolerance_three_runs_and_no_pace():
    frame = _repeat_frame(pace=False).assign(ratio_3=[1.6, 2.0, 3.1, 1.0])
    s = S.repeat_summary(frame, tolerance=0.1)
    # within 10%: 0.05, 0.10, 0.00 = 75%; only the 20% one moved; no pace column, no sentence
    assert s.findings == [
        "Reproducibility (3 runs in separate processes): 75% of 4 ratios agree within 10% "
        "between runs, the intervals of 75% overlap, and the median interval half-width is "
        "3.0%.",
        "Still dependent on the machine's state between processes (beyond 10%): flash vs "
        "manual T=256 (time) 1.5/1.8/1.6, intervals disjoint.",
    ]
    # nothing beyond the tolerance, pace moved or not: the first sentence alone
    steady = S.repeat_summary(_repeat_frame(), tolerance=0.25)
    assert len(steady.findings) == 1 and steady.findings[0].startswith(
        "Reproducibility (2 runs in separate processes): 100% of 4 ratios agree within 25%")
    assert S.repeat_summary(None).findings == [] and S.repeat_summary(None).table.empty
    assert S.repeat_summary(_repeat_frame().iloc[:0]).findings == []


def test_repeat_summary_leaves_out_the_pace_sentence_when_no_moved_ratio_had_a_pace_move():
    # the 20% ratio's pace held (1.0x); the 10% one's moved 1.06x, just past 1.05x
    frame = _repeat_frame().assign(pace_spread=[1.0, 1.0, 1.06, 1.0])
    s = S.repeat_summary(frame)
    assert s.findings[1:] == [
        "Still dependent on the machine's state between processes (beyond 5%): flash vs manual "
        "T=256 (time) 1.5/1.8, intervals disjoint; x vs y B=1 (memory) 3/3.3, pace moved "
        "1.06x.",
        PACE_SENTENCE,
    ]
    held = S.repeat_summary(_repeat_frame().assign(pace_spread=1.0))
    assert len(held.findings) == 2  # moved ratios named, no pace sentence


def test_repeated_timings_pairs_first_and_second_medians_of_each_workload():
    nan = float("nan")
    timing = pd.DataFrame([
        # workload w: timed three times, 1.0, 3.0, 2.0 s: first 1, second 3, spread 3 / 1
        {"kind": "model", "variant": "rnn", "phase": "forward", "B": 1, "T": 8, "H": nan,
         "median_s": 1.0},
        {"kind": "model", "variant": "gru", "phase": "forward", "B": 1, "T": 8, "H": nan,
         "median_s": 9.0},  # once: no pair
        {"kind": "model", "variant": "rnn", "phase": "forward", "B": 1, "T": 8, "H": nan,
         "median_s": 3.0},
        # another phase of the same model is another workload: 4.0 then 2.0, spread 2
        {"kind": "model", "variant": "rnn", "phase": "train", "B": 1, "T": 8, "H": nan,
         "median_s": 4.0},
        {"kind": "model", "variant": "rnn", "phase": "forward", "B": 1, "T": 8, "H": nan,
         "median_s": 2.0},
        {"kind": "model", "variant": "rnn", "phase": "train", "B": 1, "T": 8, "H": nan,
         "median_s": 2.0},
        # a different size: its own workload, once
        {"kind": "model", "variant": "rnn", "phase": "forward", "B": 2, "T": 8, "H": nan,
         "median_s": 5.0},
    ])
    expected = pd.DataFrame([[1.0, 3.0, 3.0], [4.0, 2.0, 2.0]],
                            columns=["first_s", "second_s", "spread"])
    pd.testing.assert_frame_equal(S.repeated_timings(timing), expected)
    # no workload twice, no key column, no median: an empty frame with the three columns
    for frame in (timing.iloc[[0, 1, 3, 6]], timing[["median_s"]],
                  timing.drop(columns="median_s")):
        empty = S.repeated_timings(frame)
        assert empty.empty and list(empty.columns) == ["first_s", "second_s", "spread"]
    # the configuration columns that tell workloads apart, each one by itself
    for key in ("kind", "variant", "phase", "B", "T", "D", "E", "L", "H", "N", "seq_len"):
        two = pd.DataFrame({key: [1, 2], "median_s": [1.0, 2.0]})
        assert S.repeated_timings(two).empty, key
        same = pd.DataFrame({key: [1, 1], "median_s": [1.0, 2.0]})
        assert S.repeated_timings(same)["spread"].tolist() == [2.0], key


def test_slope_summary_reads_exponents_and_says_which_family_grows_faster():
    # recurrent: time and depth linear in T; attention: time and FLOPs quadratic, depth flat
    timing = _timing(_sweep("rnn", "rnn", TS, lambda t: 1e-4 * t, lambda t: 1000 * t,
                            lambda t: t + 1)
                     + _sweep("transformer-flash", "transformer", TS, lambda t: 1e-6 * t**2,
                              lambda t: 10 * t**2, lambda t: 7))
    s = S.slope_summary(timing)
    slopes = dict(zip(s.table["variant"], s.table["time slope"]))
    assert slopes == {"rnn": pytest.approx(1.0), "transformer-flash": pytest.approx(2.0)}
    depth = dict(zip(s.table["variant"], s.table["depth slope"]))
    assert depth["transformer-flash"] == 0.0
    text = s.findings[0]
    assert "recurrent loops (rnn): time ~ T^1.00 (about linear)" in text
    assert "attention models (transformer-flash): time ~ T^2.00 (about quadratic)" in text
    assert "Every variant's time follows its FLOPs" in text
    assert "The attention models' time grows faster (by T^1.00 on average)" in text
    assert "loops' time grows faster" not in text


def test_slope_summary_when_the_recurrent_time_grows_faster():
    timing = _timing(_sweep("gru", "gru", TS, lambda t: 1e-5 * t**1.5, lambda t: 100 * t,
                            lambda t: t + 1)
                     + _sweep("transformer-manual", "transformer", TS, lambda t: 1e-4 * t**0.5,
                              lambda t: 100 * t, lambda t: 7))
    timing = pd.concat([timing, _timing(_sweep("rnn", "rnn", TS, lambda t: 1e-4 * t**0.1,
                                               lambda t: 100 * t, lambda t: t + 1))])
    text = S.slope_summary(timing).findings[0]
    assert "recurrent loops (gru, rnn): time ~ T^0.10 to 1.50 (from about flat to between " \
           "linear and quadratic)" in text
    assert "The recurrent loops' time grows faster (by T^0.30 on average)" in text
    assert "as their longer chain (depth exponent higher by 0.9" in text
    assert "Time grows slower than the FLOPs for transformer-manual (T^0.50 against FLOPs " \
           "T^1.00)" in text
    assert "Time grows faster than the FLOPs for gru (T^1.50 against FLOPs T^1.00)" in text
    assert "Time grows slower than the FLOPs for transformer-manual (T^0.50 against FLOPs " \
           "T^1.00), rnn (T^0.10 against FLOPs T^1.00)" in text


def test_slope_summary_when_both_families_grow_alike():
    timing = _timing(_sweep("rnn", "rnn", TS, lambda t: 1e-4 * t, lambda t: 10 * t,
                            lambda t: t + 1)
                     + _sweep("transformer-flash", "transformer", TS, lambda t: 2e-5 * t**1.1,
                              lambda t: 10 * t, lambda t: 7))
    text = S.slope_summary(timing).findings[0]
    assert "Both families grow alike (mean exponents within 0.10)" in text
    assert "does not show as a faster growth" in text


def test_noise_summary_counts_flagged_timings():
    timing = _timing([{"variant": "rnn", "noisy": v} for v in
                      (True, "True", False, "False", True, False, False)])
    s = S.noise_summary(timing)
    assert "Noise: 3 of 7 timings have IQR/median above 10%" in s.findings[0]
    assert s.table.to_dict("records") == [{"variant": "rnn", "timings": 7, "noisy": 3}]
    assert "above 25%" in S.noise_summary(timing, threshold=0.25).findings[0]


def test_ceiling_summary_gives_the_fraction_of_the_ceiling():
    timing = _timing([{"variant": "rnn", "model": "rnn", "flops_per_second": 2.5e8},
                      {"variant": "rnn", "model": "rnn", "flops_per_second": 1e8},
                      {"variant": "gru", "model": "gru", "flops_per_second": 1e8},
                      {"variant": "transformer-flash", "model": "transformer",
                       "flops_per_second": 8e8}])
    s = S.ceiling_summary(timing, S.Ceiling(1e9))
    fractions = dict(zip(s.table["variant"], s.table["fraction of ceiling [95% CI]"]))
    assert fractions == {"rnn": "25%", "gru": "10%", "transformer-flash": "80%"}
    text = s.findings[0]
    assert "the best recurrent-loop workload reaches 25% (per variant 10% to 25%)" in text
    assert "the best attention workload reaches 80% (transformer-flash)" in text
    assert "above 100%" not in text
    assert "above 100%" in S.ceiling_summary(timing, S.Ceiling(5e8)).findings[0]


def test_ceiling_summary_prints_the_digits_the_intervals_support():
    # rate 2.5e8 at median 1 s, interval 0.9..1.1 s: 2.27e8..2.78e8 FLOP/s; against the
    # ceiling's interval 0.8e9..1.25e9: 2.27e8 / 1.25e9 = 18.2%, 2.78e8 / 0.8e9 = 34.7%;
    # half-width 8.3 points reaches the second digit of 25%
    timing = _timing([{"variant": "rnn", "model": "rnn", "flops_per_second": 2.5e8,
                       "median_s": 1.0, "ci_low_s": 0.9, "ci_high_s": 1.1}])
    s = S.ceiling_summary(timing, S.Ceiling(1e9, (0.8e9, 1.25e9)))
    row = s.table.iloc[0]
    assert row["fraction of ceiling [95% CI]"] == "25% [18%, 35%]"
    assert row["best FLOP/s [95% CI]"] == "2.5e+08 [2.3e+08, 2.8e+08]"
    assert "the best recurrent-loop workload reaches 25% [18%, 35%] (rnn)" in s.findings[0]
    assert "ceiling of 1e+09 [8e+08, 1.2e+09] FLOP/s" in s.findings[0]


def test_ceiling_summary_reports_the_scan_apart_from_the_loops():
    timing = _timing([{"variant": "rnn", "model": "rnn", "flops_per_second": 2e8},
                      {"variant": "gru", "model": "gru", "flops_per_second": 3e8},
                      {"variant": "mingru", "model": "mingru", "flops_per_second": 6e8},
                      {"variant": "transformer-flash", "model": "transformer",
                       "flops_per_second": 8e8}])
    text = S.ceiling_summary(timing, S.Ceiling(1e9)).findings[0]
    assert "the best recurrent-loop workload reaches 30% (per variant 20% to 30%)" in text
    assert "the best parallel-scan workload reaches 60% (mingru)" in text


def test_one_ceiling_is_read_from_ceiling_csv_with_its_interval():
    frame = pd.DataFrame([{"device": "cpu", "n": 2048, "dtype": "float32", "rounds": 10,
                           "flops_per_second": 1.5e11, "flops_per_second_ci_low": 1.4e11,
                           "flops_per_second_ci_high": 1.6e11,
                           "peak_flops_per_second": 1.62e11}])
    c = S.ceiling_of(frame)
    assert (c.flops_per_second, c.ci, c.n, c.rounds) == (1.5e11, (1.4e11, 1.6e11), 2048, 10)
    # half-width 1e10 reaches the second digit of 1.5e11
    assert c.rate() == "1.5e+11 [1.4e+11, 1.6e+11] FLOP/s"
    assert "median of 10 rounds" in c.describe() and "uses the median" in c.describe()
    assert S.ceiling_of(None) is None and S.ceiling_of(pd.DataFrame()) is None


@pytest.mark.parametrize("value, lo, hi, digits", [
    (0.268, 0.24, 0.29, 2),        # half-width 0.025 reaches the second digit
    (1.546e11, 1.468e11, 1.598e11, 3),  # 6.5e9 reaches the third
    (0.808, 0.66, 0.86, 1),        # 0.1 reaches the first
    (2.0, 2.0, 2.0, 3),            # zero width: the most
])
def test_supported_digits(value, lo, hi, digits):
    assert S.supported_digits(value, lo, hi) == digits


def test_supported_rounds_value_and_interval_at_one_place():
    assert S.supported(0.808, 0.66, 0.86, percent=True) == "80% [70%, 90%]"
    assert S.supported(0.95, 0.73, 1.1) == "0.9 [0.7, 1.1]"
    assert S.supported(0.0012345, 0.0012, 0.00127, interval=False) == "0.00123"


def test_missing_summary_lists_workloads_without_a_timing():
    timing = pd.DataFrame({"id": ["a", "b", "b"], "status": ["ok", "ok", "failed: x"]})
    s = S.missing_summary(timing, ["a", "b", "b", "c", "d", "d"], "quick")
    assert list(s.table["workload without timing"]) == ["c", "d", "d"]
    assert s.findings == ["Truncated bench: 3 of 6 workloads of the `quick` grid have no "
                          "timing (listed under Bench coverage); the figures and slopes use "
                          "only the rest."]
    done = S.missing_summary(timing, ["a", "b"], "quick")
    assert done.table.empty and done.findings[0].startswith("Bench complete: all 2 workloads")


def test_attention_summary_gives_memory_in_mib_and_growth():
    rows = []
    for t in (64, 128, 256):
        rows += [{"T": t, "kernel": "flash", "status": "ok", "median_s": 1e-3 * t / 64,
                  "peak_memory_bytes": 2**20 * t / 64},
                 {"T": t, "kernel": "manual", "status": "ok", "median_s": 3e-3 * (t / 64)**2,
                  "peak_memory_bytes": 2**20 * (t / 64) ** 2}]
    s = S.attention_summary(pd.DataFrame(rows))
    last = s.table.iloc[-1]
    assert last["flash MiB"] == pytest.approx(4.0) and last["manual MiB"] == pytest.approx(16.0)
    assert "time manual/flash" not in s.table  # ratios come from pairs only
    assert "peak memory grows as T^2.00 with the manual kernel and T^1.00 with SDPA" \
        in s.findings[0]


def test_depth_time_summary_fits_seconds_per_flop_against_depth():
    depth = np.array([2, 4, 8, 16, 32], float)
    flops = np.array([1e6, 3e6, 1e5, 7e6, 2e6])
    timing = _timing([{"variant": "rnn", "model": "rnn", "predicted_depth": d,
                       "predicted_flops": f, "median_s": f * 1e-9 * d**0.5}
                      for d, f in zip(depth, flops)])
    s = S.depth_time_summary(timing)
    row = s.table.iloc[0]
    assert row["exponent"] == pytest.approx(0.5) and row["R^2"] == pytest.approx(1.0)
    assert row["intercept"] == pytest.approx(np.log(1e-9))
    assert "seconds per FLOP grow as depth^0.50" in s.findings[0]
    assert "R^2 = 1.00 (a close fit)" in s.findings[0]


def test_flops_summary_counts_exact_rows_and_names_the_cpu_flash_mapping():
    flops = pd.DataFrame([
        {"model": "rnn", "quantity": "forward", "verdict": "exact", "ratio_torch": 1.0,
         "status": "ok", "attention": None, "env_device": "cpu", "T": 4, "D": 8,
         "predicted": 100, "measured_fvcore": 100},
        {"model": "transformer", "quantity": "forward", "verdict": "exact", "ratio_torch": 1.0,
         "status": "ok", "attention": "flash", "env_device": "cpu", "T": 8, "D": 16,
         "predicted": 200, "measured_fvcore": 200},
        {"model": "transformer", "quantity": "train", "verdict": "mismatch",
         "ratio_torch": 0.5, "status": "ok", "attention": "manual", "env_device": "cpu",
         "T": 2, "D": 16, "predicted": 300, "measured_fvcore": None},
        {"model": "transformer", "quantity": "train", "status": "failed: MemoryError: x"},
    ])
    s = S.flops_summary(flops, ["CPU flash kernels counted with SDPA formulas"])
    assert s.findings[0].startswith("FLOPs: 2 of 3 reconciliation rows (2 models, 2 "
                                    "quantities) have predicted matmul FLOPs equal to "
                                    "PyTorch's counter exactly (ratio 0.500000 to 1.000000).")
    assert "Grid: T 2 to 8, D 8 to 16." in s.findings[0]
    assert any("The 1 CPU flash-attention rows are counted with the project's SDPA mapping "
               "(PyTorch's raw counter gives 0 FLOPs for CPU flash SDPA): CPU flash kernels "
               "counted with SDPA formulas." == f for f in s.findings)
    assert any("equal the prediction on 2 of 2 rows" in f for f in s.findings)
    assert any(f.startswith("1 reconciliation cells failed") for f in s.findings)
    no_flash = flops[flops["attention"].ne("flash")]
    assert not any("SDPA" in f for f in S.flops_summary(no_flash, ["n"]).findings)


def _depth_rows():
    rows = []
    for t in (4, 8):
        rows += [{"model": "rnn", "attention": None, "quantity": "forward", "L": 1, "T": t,
                  "measured": t + 1, "verdict": "exact", "formula": "T + 1", "status": "ok"},
                 {"model": "rnn", "attention": None, "quantity": "train", "L": 1, "T": t,
                  "measured": 2 * t + 2, "verdict": "exact", "formula": "2*T + 2",
                  "status": "ok"},
                 {"model": "transformer", "attention": "flash", "quantity": "forward", "L": 1,
                  "T": t, "measured": 7, "verdict": "mismatch" if t == 8 else "exact",
                  "formula": "6*L + 1", "status": "ok"}]
    return pd.DataFrame(rows)


def test_depth_summary_counts_agreement_and_which_depths_grow_with_T():
    s = S.depth_summary(_depth_rows())
    assert s.findings[0] == ("Depth: predicted and traced critical-path matmul depth agree "
                             "on 5 of 6 rows.")
    assert s.findings[1] == ("The forward pass's traced depth grows with T for rnn; does not "
                             "change with T for transformer-flash.")


def test_counterexample_is_formatted_without_evaluating_it():
    raw = "{'sizes': {'D': 4, 'L': 1, 'T': 2}, 'answered': 256, 'derived': 352, 'measured': 352}"
    assert S.format_counterexample(raw) == ("at D=4, L=1, T=2: answered 256, derived 352, "
                                            "measured 352")
    assert S.format_counterexample(float("nan")) == ""
    words = ("{'sizes': {'sliders': \"x[0]=h[0]=0, control 2 vs 0\"}, 'answered': 'less on the "
             "input', 'derived': 'the claimed direction', 'measured': 'claim fails'}")
    assert S.format_counterexample(words) == ("at sliders=x[0]=h[0]=0, control 2 vs 0: answered "
                                              "less on the input, derived the claimed "
                                              "direction, measured claim fails")
    assert S.format_counterexample("__import__('os')") == "__import__('os')"


def test_check_summary_explains_the_depth_tables_head_against_the_homework():
    check = pd.DataFrame([
        {"id": "rnn.train.sequential_matmuls", "answer": "2TL", "verdict": "incorrect",
         "derived": "2*L + 2*T - 2",
         "counterexample": "{'sizes': {'L': 1, 'T': 3}, 'answered': 6, 'derived': 6}"},
        {"id": "transformer.forward.sequential_matmuls", "answer": "6L", "verdict": "correct",
         "derived": "6*L", "counterexample": None},
    ])
    s = S.check_summary(check, _depth_rows())
    assert list(s.table.columns) == ["id", "answer", "verdict", "derived", "counterexample"]
    assert s.table["counterexample"].iloc[0] == "at L=1, T=3: answered 6, derived 6"
    assert s.findings[0] == ("Homework answers: 1 of 2 hold; not correct: "
                             "rnn.train.sequential_matmuls.")
    rnn = next(f for f in s.findings if f.startswith("`rnn.train"))
    assert "`2*T + 2` and the homework's derived `2*L + 2*T - 2` differ by 2 at L = 1" in rnn
    assert "vocabulary head included (2 matmul(s) on the chain)" in rnn
    tf = next(f for f in s.findings if f.startswith("`transformer.forward"))
    assert "differ by 1" in tf and "vocabulary head included (1 matmul(s)" in tf


def test_training_summary_carries_its_caveat():
    curves = pd.DataFrame([
        {"model": m, "step": s, "train_loss": loss, "val_loss": val, "params": p,
         "tokens_per_s": 1000.0, "seed": 2025, "data": "builtin", "status": "ok"}
        for m, p, rows in (("rnn", 10, ((1, 4.1, 4.0), (40, 2.0, 2.5))),
                           ("gru", 20, ((1, 4.2, 4.1), (40, 1.5, 1.9))))
        for s, loss, val in rows])
    s = S.training_summary(curves)
    assert s.table[["model", "steps", "final val loss"]].to_dict("records") == [
        {"model": "rnn", "steps": 40, "final val loss": 2.5},
        {"model": "gru", "steps": 40, "final val loss": 1.9}]
    text = s.findings[0]
    assert "one seed, 40 steps, corpus builtin (the generated, synthetic" in text
    unrecorded = S.training_summary(curves.drop(columns=["data"]), data="builtin")
    assert "corpus builtin (the generated" in unrecorded.findings[0]
    assert "rnn 2.500, gru 1.900 nats/char; lowest gru." in text


def test_reference_summary_keeps_medians_and_states_no_unpaired_ratio():
    ref = pd.DataFrame({"model": ["rnn"], "homework_s": [3.0], "twin_s": [1.0],
                        "speedup": [3.0]})
    s = S.reference_summary(ref)
    assert list(s.table.columns) == ["model", "homework_s", "twin_s"] and not s.findings


def _ratios():
    return pd.DataFrame([
        {"comparison": "attention manual/flash", "measure": "time", "configuration": "B4-T64",
         "device": "cpu", "ratio": 1.4049, "ci_low": 1.3812, "ci_high": 1.4231, "pairs": 300,
         "converged": True},
        {"comparison": "attention manual/flash", "measure": "time", "configuration": "B4-T512",
         "device": "cpu", "ratio": 2.6412, "ci_low": 2.381, "ci_high": 3.139, "pairs": 22,
         "converged": False},
        {"comparison": "attention manual/flash", "measure": "memory", "configuration": "B4-T64",
         "device": "cpu", "ratio": 1.40625, "ci_low": 1.40625, "ci_high": 1.40625, "pairs": 1,
         "converged": True},
    ])


def test_ratio_summary_prints_two_significant_figures_with_the_interval():
    s = S.ratio_summary(_ratios())
    assert list(s.table["A/B [95% CI]"]) == ["1.4 [1.4, 1.4]", "2.6 [2.4, 3.1]",
                                             "1.4 [1.4, 1.4]"]
    assert s.findings[0] == ("attention manual/flash, time: A/B from 1.4 [1.4, 1.4] (B4-T64) "
                             "to 2.6 [2.4, 3.1] (B4-T512); 1 of 2 intervals wider than the "
                             "precision target.")
    assert s.findings[1] == "attention manual/flash, memory: A/B 1.4 [1.4, 1.4]."


def test_ratio_summary_reads_each_ratio_as_a_over_b_as_recorded():
    # A ran in half of B's time at T64 (A/B 0.50, interval 0.40..0.55: lopsided, so an
    # inverted ratio reads 2.0 [1.8, 2.5]) and in 12x B's time at T512 (a ratio scaled by 10
    # reads 5.0 and 120); the T512 row comes first, so the range's ends are found, not read
    # in order; memory: A held 3x B's peak
    def row(measure, configuration, ratio, lo, hi, pairs):
        return {"comparison": "homework loop/torch.nn", "measure": measure,
                "configuration": configuration, "device": "cpu", "ratio": ratio,
                "ci_low": lo, "ci_high": hi, "pairs": pairs, "converged": True}

    ratios = pd.DataFrame([row("time", "B4-T512", 12.0, 11.0, 14.0, 40),
                           row("time", "B4-T64", 0.5, 0.4, 0.55, 60),
                           row("memory", "B4-T64", 3.0, 3.0, 3.0, 1)])
    s = S.ratio_summary(ratios)
    assert list(s.table["A/B [95% CI]"]) == ["12 [11, 14]", "0.50 [0.40, 0.55]",
                                             "3.0 [3.0, 3.0]"]
    assert list(s.table["pairs"]) == [40, 60, 1]
    assert s.findings == ["homework loop/torch.nn, time: A/B from 0.50 [0.40, 0.55] (B4-T64) "
                          "to 12 [11, 14] (B4-T512).",
                          "homework loop/torch.nn, memory: A/B 3.0 [3.0, 3.0]."]


def test_timing_quality_counts_converged_and_drifted_and_states_load():
    timing = pd.DataFrame({
        "status": ["ok"] * 4, "median_s": [1.0, 2.0, 4.0, 1.0],
        "ci_low_s": [0.99, 1.9, 3.0, 0.98], "ci_high_s": [1.01, 2.1, 5.0, 1.02],
        "converged": [True, False, False, True], "drifted": [False, True, False, False],
        "rounds": [6, 50, 9, 12], "load_before": [0.5, 0.7, 1.0, 0.6],
        "load_after": [0.6, 1.9, 1.1, 0.6], "steal_fraction": [0.0, 0.01, 0.0, 0.0]})
    s = S.timing_quality_summary(timing)
    # half-widths 1%, 5%, 25%, 2%: median 3.5%
    assert s.findings[0] == ("Timing quality: 2 of 4 medians have a 95% interval within the "
                             "precision target (median half-width 3.5%); 1 of 4 drifted during "
                             "their run (first and last quarter of rounds with disjoint "
                             "intervals); the 1-minute load average was 0.50 to 1.90, CPU steal "
                             "at most 1.0%.")
    assert s.table.iloc[0]["rounds"] == "6..50"
    # the target each median was timed to is named once recorded (a quick run's is wider)
    quick = S.timing_quality_summary(timing.assign(ci_target=0.05)).findings[0]
    assert "within the precision target (+-5%) (median half-width 3.5%)" in quick
    mixed = S.timing_quality_summary(timing.assign(ci_target=[0.02, 0.05, 0.05, 0.02]))
    assert "precision target (+-2% to +-5%)" in mixed.findings[0]


@pytest.mark.parametrize("slope,words", [(0.05, "about flat"), (0.75, "sublinear"),
                                         (1.0, "about linear"), (1.5, "between linear and "
                                                                      "quadratic"),
                                         (2.0, "about quadratic"), (3.0, "faster than "
                                                                        "quadratic")])
def test_growth_words(slope, words):
    assert S.growth_words(slope) == words


def _device_rows(device, model, variant, k, base=1e-3):
    return [{"device_label": device, "model": model, "variant": variant, "status": "ok",
             "suite": "test_model_phase", "sweep": "T", "phase": "forward", "T": t,
             "median_s": base * (t / 16) ** k} for t in (16, 64, 256)]


def test_devices_summary_gives_each_devices_exponents():
    frame = pd.DataFrame(_device_rows("CPU X", "rnn", "rnn", 1.0)
                         + _device_rows("CPU X", "transformer", "transformer-flash", 1.0)
                         + _device_rows("GPU Y", "rnn", "rnn", 1.0)
                         + _device_rows("GPU Y", "transformer", "transformer-flash", 0.0))
    s = S.devices_summary(frame)
    slopes = s.table.set_index(["device", "variant"])["time slope"]
    assert slopes[("GPU Y", "transformer-flash")] == 0.0 and slopes[("GPU Y", "rnn")] == 1.0
    assert ("on CPU X the recurrent loops' forward time grows as T^1.00 and the attention "
            "models' as T^1.00; on GPU Y the recurrent loops' forward time grows as T^1.00 and "
            "the attention models' as T^0.00") in s.findings[0]


def test_devices_summary_needs_two_devices():
    frame = pd.DataFrame(_device_rows("CPU X", "rnn", "rnn", 1.0))
    assert S.devices_summary(frame).findings == []


def test_device_ratios_summary_puts_each_device_in_a_column():
    rows = [{"comparison": "c", "measure": "time", "configuration": "x", "device_label": d,
             "ratio": r, "ci_low": r * 0.9, "ci_high": r * 1.1} for d, r in (("A", 2.0),
                                                                            ("B", 1.2))]
    s = S.device_ratios_summary(pd.DataFrame(rows))
    assert s.table.iloc[0]["A"] == "2.0 [1.8, 2.2]" and s.table.iloc[0]["B"] == "1.2 [1.1, 1.3]"
    assert s.findings == ["1 paired ratios were measured on both A and B (the same "
                          "comparison, measure and configuration); they are set side by side "
                          "below."]


def _ratio(device, configuration, ratio=2.0, comparison="homework loop/torch.nn"):
    return {"comparison": comparison, "measure": "time", "configuration": configuration,
            "device_label": device, "ratio": ratio, "ci_low": ratio, "ci_high": ratio}


def test_device_ratios_match_on_everything_but_the_batch_size_when_it_differs():
    frame = pd.DataFrame([_ratio("CPU", "rnn forward B4-T32-D256-L1", 2.0),
                          _ratio("CPU", "B4-T64-D128", 1.5, "attention manual/flash"),
                          _ratio("GPU", "rnn forward B8-T32-D256-L1", 9.0),
                          _ratio("GPU", "gru forward B8-T32-D256-L1", 11.0)])
    s = S.device_ratios_summary(frame)
    assert s.table.to_dict("records") == [{
        "comparison": "homework loop/torch.nn", "measure": "time",
        "configuration": "rnn forward T32-D256-L1", "CPU": "2.0 [2.0, 2.0]",
        "GPU": "9.0 [9.0, 9.0]"}]
    assert s.findings == [
        "1 paired ratios were measured on both CPU and GPU (matched on everything but the "
        "batch size: B 4 on CPU; B 8 on GPU); they are set side by side below; 2 more were "
        "measured on only one of them (devices_ratios.csv)."]


def test_device_ratios_say_plainly_when_nothing_matches_and_print_no_table():
    frame = pd.DataFrame([_ratio("CPU", "rnn forward B4-T32-D256-L1"),
                          _ratio("GPU", "B8-T64-D128", comparison="attention manual/flash")])
    s = S.device_ratios_summary(frame)
    assert s.table.empty
    assert s.findings[0].startswith("No paired ratio was measured on both CPU and GPU")
    assert "they share no comparison" in s.findings[0]
    same = pd.DataFrame([_ratio("CPU", "rnn forward B4-T32-D256-L1"),
                         _ratio("GPU", "gru forward B8-T32-D256-L1")])
    assert ("they share the comparisons homework loop/torch.nn but no configuration"
            in S.device_ratios_summary(same).findings[0])


def test_slope_summary_reports_the_parallel_scan_apart_from_the_loops():
    timing = _timing(_sweep("rnn", "rnn", TS, lambda t: 1e-4 * t, lambda t: 100 * t,
                            lambda t: t + 1)
                     + _sweep("mingru", "mingru", TS, lambda t: 1e-3, lambda t: 100 * t,
                              lambda t: 2 + 2 * np.log2(t))
                     + _sweep("transformer-flash", "transformer", TS, lambda t: 1e-3,
                              lambda t: 100 * t, lambda t: 7))
    text = S.slope_summary(timing).findings[0]
    assert "recurrent loops (rnn): time ~ T^1.00 (about linear)" in text
    assert "parallel scans (mingru): time ~ T^0.00 (about flat)" in text
    assert "attention models (transformer-flash): time ~ T^0.00" in text


def test_devices_summary_keeps_the_scan_out_of_the_loops_range_and_says_what_time_follows():
    frame = pd.DataFrame(_device_rows("CPU X", "rnn", "rnn", 1.0)
                         + _device_rows("CPU X", "transformer", "transformer-flash", 1.0)
                         + _device_rows("GPU Y", "rnn", "rnn", 1.0)
                         + _device_rows("GPU Y", "mingru", "mingru", 0.0)
                         + _device_rows("GPU Y", "transformer", "transformer-flash", 0.0))
    text = S.devices_summary(frame).findings[0]
    assert ("on GPU Y the recurrent loops' forward time grows as T^1.00, the parallel scan's "
            "(mingru) as T^0.00 and the attention models' as T^0.00") in text
    assert "On GPU Y time follows the sequential depth" in text
    assert "On CPU X both grow about linearly, as their FLOPs do" in text


def test_device_slopes_print_times_to_the_digits_their_intervals_support():
    rows = _device_rows("CPU X", "rnn", "rnn", 1.0)
    for r in rows:  # half-width 3.5e-5 s around 1.2345e-3 s reaches the third digit
        r.update(median_s=1.2345e-3, ci_low_s=1.2e-3, ci_high_s=1.27e-3, B=8)
    table = S.device_slopes(pd.DataFrame(rows))
    assert table["s at min T"].iloc[0] == "0.00123" and table["B"].iloc[0] == "8"


def test_homework_time_summary_counts_only_the_loops_fixed_costs():
    pred = pd.DataFrame({"variant": ["rnn", "rnn", "mingru"], "model": ["rnn", "rnn", "mingru"],
                         "kind": "model", "phase": "forward", "T": [16, 32, 16],
                         "median_s": 1.0, "predicted_s": 1.0, "predicted_nofixed_s": 0.5,
                         "regime": "launch/overhead", "share_overhead": [0.6, 0.7, 0.02],
                         "trace_ops": 100})
    findings = S.homework_time_summary(pred).findings
    # the loops alone: median of 0.6 and 0.7; with minGRU's scan it would be 0.6
    assert "The recurrent loops' rounds are 65% fixed per-op cost" in findings[0]


def test_a_ratio_keeps_its_second_significant_figure():
    from analysis.report.summaries import with_interval

    assert with_interval(3.0, 2.9, 3.2) == "3.0 [2.9, 3.2]"
    assert with_interval(3.6, 3.4, 4.0) == "3.6 [3.4, 4.0]"
    assert with_interval(12.3, 11.0, 14.0) == "12 [11, 14]"
    assert with_interval(0.671, 0.64, 0.68) == "0.67 [0.64, 0.68]"


def test_ceiling_summary_says_the_loops_sit_further_from_the_ceiling_only_when_they_do():
    def text(rnn_rate, transformer_rate):
        timing = _timing([{"variant": "rnn", "model": "rnn", "flops_per_second": rnn_rate},
                          {"variant": "transformer-flash", "model": "transformer",
                           "flops_per_second": transformer_rate}])
        return S.ceiling_summary(timing, S.Ceiling(1e9)).findings[0]

    why = "The recurrent loops issue many small (B x D) @ (D x D) matmuls one after another"
    below = text(2e8, 6e8)  # 2e8 / 1e9 = 20% against 6e8 / 1e9 = 60%
    assert ("the best recurrent-loop workload reaches 20% (rnn), the best attention workload "
            "reaches 60% (transformer-flash).") in below
    assert why in below
    assert why not in text(6e8, 2e8)  # the loops at 60%, attention at 20%
    assert why not in text(4e8, 4e8)  # both at 40%: the loops are not further


def test_ceiling_summary_divides_the_rates_interval_by_the_ceilings_other_end():
    # rnn: 2e8 FLOP/s at median 1 s, interval 0.8..1.25 s: rate 2e8/1.25 = 1.6e8 to
    # 2e8/0.8 = 2.5e8; gru: 4e8 at 0.9..1.1 s: 3.64e8 to 4.44e8. Ceiling 1e9 [0.8e9, 1.25e9].
    # Fraction's low end = low rate / high ceiling, high end = high rate / low ceiling:
    # rnn 1.6e8 / 1.25e9 = 12.8%, 2.5e8 / 0.8e9 = 31.25% (half-width 9.2 points: two
    # digits, 20% [13%, 31%]); gru 3.64e8 / 1.25e9 = 29.1%, 4.44e8 / 0.8e9 = 55.6%
    # (half-width 13 points: one digit, 40% [30%, 60%]). Low over low would give rnn
    # 1.6e8 / 0.8e9 = 20% to 2.5e8 / 1.25e9 = 20%.
    timing = _timing([{"variant": "rnn", "model": "rnn", "flops_per_second": 2e8,
                       "median_s": 1.0, "ci_low_s": 0.8, "ci_high_s": 1.25},
                      {"variant": "gru", "model": "gru", "flops_per_second": 4e8,
                       "median_s": 1.0, "ci_low_s": 0.9, "ci_high_s": 1.1}])
    s = S.ceiling_summary(timing, S.Ceiling(1e9, (0.8e9, 1.25e9)))
    assert s.table.to_dict("records") == [
        {"variant": "rnn", "best FLOP/s [95% CI]": "2e+08 [1.6e+08, 2.5e+08]",
         "fraction of ceiling [95% CI]": "20% [13%, 31%]"},
        {"variant": "gru", "best FLOP/s [95% CI]": "4e+08 [3.6e+08, 4.4e+08]",
         "fraction of ceiling [95% CI]": "40% [30%, 60%]"}]
    assert ("the best recurrent-loop workload reaches 40% [30%, 60%] (per variant 20% to 40%)"
            in s.findings[0])


def test_slope_summary_shows_seconds_per_token_at_the_smallest_and_largest_T():
    # time 1e-6 T^2 s over B x T = 4T tokens: 2.5e-7 T s/token, 4e-6 at T 16 and 3.2e-5 at
    # T 128 (where the median itself is 1e-6 * 128^2 = 1.6384e-2 s); rows given from the
    # largest T down, so the table must sort by T
    rows = _sweep("transformer-flash", "transformer", TS, lambda t: 1e-6 * t**2,
                  lambda t: 10 * t**2, lambda t: 7)
    row = S.slope_summary(_timing(rows[::-1])).table.iloc[0]
    assert row["T"] == "16..128"
    assert row["s/token at min T"] == pytest.approx(4e-6)
    assert row["s/token at max T"] == pytest.approx(3.2e-5)


def test_homework_time_summary_on_every_phase_gives_the_kv_caches_speed_up():
    def row(variant, model, phase, median, predicted, nofixed, share, regime, T=16, N=None):
        return {"variant": variant, "model": model, "kind": "model", "phase": phase, "T": T,
                "N": N, "median_s": median, "predicted_s": predicted,
                "predicted_nofixed_s": nofixed, "share_overhead": share, "trace_ops": 100,
                "regime": regime}

    lo, tf = "launch/overhead", "transformer-flash"
    pred = pd.DataFrame([
        row("rnn", "rnn", "forward", 1.0, 1.0, 0.5, 0.6, lo),
        row("rnn", "rnn", "train", 2.0, 2.0, 0.5, 0.8, lo),
        row("rnn", "rnn", "generate", 4.0, 4.0, 1.0, 0.7, lo, N=32),  # no KV cache
        row(tf, "transformer", "forward", 0.8, 0.8, 0.5, 0.2, "bandwidth"),
        row(tf, "transformer", "forward", 2.0, 2.0, 1.0, 0.1, "compute", T=64),
        row(tf, "transformer", "train", 1.0, 1.0, 0.5, 0.1, "compute"),
        row(tf, "transformer", "generate", 0.8, 0.6, 0.3, 0.3, lo, N=32),
        row(tf, "transformer", "generate_cache", 0.2, 0.3, 0.15, 0.5, lo, N=32),
        row(tf, "transformer", "generate", 1.6, 0.9, 0.45, 0.3, lo, N=64),
        row(tf, "transformer", "generate_cache", 0.2, 0.3, 0.15, 0.5, lo, N=64)])
    assert S.homework_time_summary(pred).findings == [
        # the loops' shares 0.6, 0.8, 0.7: median 70%
        "The recurrent loops' rounds are 70% fixed per-op cost (median): time is steps x ops "
        "per step x the fixed cost, so it follows depth times ops, not FLOPs.",
        "The Transformer's forward turns compute-bound from T = 64 in this grid.",
        # without / with the cache: measured 0.8 / 0.2 = 4 (N 32) and 1.6 / 0.2 = 8 (N 64),
        # predicted 0.6 / 0.3 = 2 and 0.9 / 0.3 = 3; inverted they would read 0.12-0.25x
        "The KV cache: measured 4-8x faster, predicted 2-3x.",
        # predicted over no-fixed-cost: 0.8 / 0.5 = 1.6 (least) to 2 / 0.5 = 4 (most)
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 1.6-4x "
        "faster rounds."]


def test_graph_summary_compares_each_replay_with_its_eager_round_and_the_floor():
    from analysis.report.summaries import graph_summary, prediction_summary

    frame = pd.DataFrame({
        "id": ["t-forward-B8", "t-forward-B8+cuda-graph", "t-train-B8",
               "t-train-B8+cuda-graph", "r-forward-B8"],
        "variant": ["t", "t+cuda-graph", "t", "t+cuda-graph", "r"],
        "phase": ["forward", "forward", "train", "train", "forward"],
        "median_s": [4e-3, 5e-4, 9e-3, 3e-3, 1e-3],
        "predicted_s": [4e-3, 4e-3, 9e-3, 9e-3, 1e-3],
        "predicted_nofixed_s": [2.5e-4, 2.5e-4, 1e-3, 1e-3, 1e-4],
        "regime": "launch/overhead"})
    s = graph_summary(frame)
    t = s.table.set_index("phase")
    # forward: eager 4 ms / replay 0.5 ms = 8x; replay 0.5 ms / floor 0.25 ms = 2x
    assert t.loc["forward", "speed-up"] == pytest.approx(8.0)
    assert t.loc["forward", "run/floor"] == pytest.approx(2.0)
    # train: 9 / 3 = 3x faster, at 3 / 1 = 3x the floor
    assert t.loc["train", "speed-up"] == pytest.approx(3.0)
    assert s.findings == [
        "CUDA graphs, forward: 1 rounds replayed 8-8x faster than eager (median 8x), at 2-2x "
        "the runtime model's no-fixed-cost floor (median 2x).",
        "CUDA graphs, train: 1 rounds replayed 3-3x faster than eager (median 3x), at 3-3x "
        "the runtime model's no-fixed-cost floor (median 3x)."]
    # the prediction's accuracy is stated on the eager rows only: 3 rows, all exact
    assert "100% of 3 rows within 1.5x" in prediction_summary(frame).findings[0]
    assert graph_summary(frame[~frame["variant"].str.contains("graph")]).table.empty
