"""prediction_summary on hand-made frames: every figure of its table and findings derived
by hand in the comments (analysis.predict.error_stats' definitions)."""

import numpy as np
import pandas as pd

from analysis.report import summaries as S

STATS = ["rows", "median factor", "median APE", "MAPE", "within 10%", "within 25%",
         "within 1.5x", "within 2x", "median predicted/measured"]


def _row(id_, variant, phase, t, m, p, regime=None):
    r = {"id": id_, "variant": variant, "phase": phase, "T": t, "median_s": m, "predicted_s": p}
    if regime is not None:
        r["regime"] = regime
    return r


def _main_frame():
    # ratio p/m, factor max(p/m, m/p), APE |p - m| / m per kept row:
    #   t-f-16 3.0, 3.0, 2.0 | t-f-32 0.8, 1.25, 0.2 | t-f-64 1.0, 1.0, 0.0
    #   r-t-16 1.8, 1.8, 0.8 | r-f-16 1.04, 1.04, 0.04 | r-f-32 1.3, 1.3, 0.3
    # g-f-16 (median 0), g-f-32 (no prediction) and the CUDA-graph replay are left out
    tf = "transformer-flash"
    return pd.DataFrame([
        _row("t-f-16", tf, "forward", 16, 1.0, 3.0, "compute"),
        _row("t-f-32", tf, "forward", 32, 2.0, 1.6, "bandwidth"),
        _row("t-f-64", tf, "forward", 64, 4.0, 4.0, "compute"),
        _row("r-t-16", "rnn", "train", 16, 1.0, 1.8, "launch/overhead"),
        _row("r-f-16", "rnn", "forward", 16, 1.0, 1.04, "launch/overhead"),
        _row("r-f-32", "rnn", "forward", 32, 1.0, 1.3, "launch/overhead"),
        _row("g-f-16", "gru", "forward", 16, 0.0, 1.0, "compute"),
        _row("g-f-32", "gru", "forward", 32, 1.0, np.nan, "compute"),
        _row("r-f-16+cuda-graph", "rnn+cuda-graph", "forward", 16, 0.1, 1.0, "compute"),
    ])


def test_prediction_summary_table_per_variant_and_phase_in_order_of_appearance():
    s = S.prediction_summary(_main_frame())
    expected = pd.DataFrame([
        # factors 3, 1.25, 1: median 1.25; APE 2, 0.2, 0: median 0.2, mean 2.2/3; within
        # 10% 1/3, 25% 2/3, 1.5x 2/3, 2x 2/3; median ratio 1.0; regime compute 2 of 3
        {"variant": "transformer-flash", "phase": "forward", "rows": 3, "median factor": 1.25,
         "median APE": 0.2, "MAPE": 2.2 / 3, "within 10%": 1 / 3, "within 25%": 2 / 3,
         "within 1.5x": 2 / 3, "within 2x": 2 / 3, "median predicted/measured": 1.0,
         "regime": "compute"},
        {"variant": "rnn", "phase": "train", "rows": 1, "median factor": 1.8,
         "median APE": 0.8, "MAPE": 0.8, "within 10%": 0.0, "within 25%": 0.0,
         "within 1.5x": 0.0, "within 2x": 1.0, "median predicted/measured": 1.8,
         "regime": "launch/overhead"},
        # factors 1.04, 1.3: geometric median sqrt(1.352); APE 0.04, 0.3: 0.17
        {"variant": "rnn", "phase": "forward", "rows": 2, "median factor": 1.352 ** 0.5,
         "median APE": 0.17, "MAPE": 0.17, "within 10%": 0.5, "within 25%": 0.5,
         "within 1.5x": 1.0, "within 2x": 1.0, "median predicted/measured": 1.352 ** 0.5,
         "regime": "launch/overhead"},
    ])
    pd.testing.assert_frame_equal(s.table, expected)


def test_prediction_summary_findings_totals_and_the_five_worst_rows():
    s = S.prediction_summary(_main_frame())
    # six rows: factors sorted 1, 1.04, 1.25, 1.3, 1.8, 3 -> within 1.5x 4/6, 2x 5/6,
    # median sqrt(1.25 * 1.3) = 1.27; APE sorted 0, 0.04, 0.2, 0.3, 0.8, 2 -> within 10%
    # 2/6, 25% 3/6, median 0.25, mean 3.34 / 6 = 0.557; ratios sorted 0.8, 1, 1.04, 1.3,
    # 1.8, 3 -> median sqrt(1.04 * 1.3) = 1.16. No pace columns, no workload timed twice.
    assert s.findings == [
        "Time predicted from the counts (this run): 67% of 6 rows within 1.5x of the measured "
        "median, 83% within 2x; 33% within +-10% and 50% within +-25%; median absolute "
        "percentage error 25%, MAPE 56%; median factor 1.27, median predicted/measured 1.16 "
        "(machine constants from calibration microbenchmarks only).",
        # |log ratio|: 3 > 1.8 > 1.3 > 1/0.8 > 1.04 > 1 (t-f-64, the sixth, left out)
        "Worst rows: t-f-16 predicted 3x the measured (compute); r-t-16 predicted 1.8x the "
        "measured (launch/overhead); r-f-32 predicted 1.3x the measured (launch/overhead); "
        "t-f-32 predicted 0.8x the measured (bandwidth); r-f-16 predicted 1x the measured "
        "(launch/overhead)."]
    assert S.prediction_summary(_main_frame(), label="CPU X").findings[0].startswith(
        "Time predicted from the counts (CPU X): 67% of 6 rows")


def test_prediction_summary_is_empty_without_predictions():
    for frame in (None, pd.DataFrame(), _main_frame().drop(columns="predicted_s"),
                  _main_frame().iloc[6:]):  # only dropped rows left
        s = S.prediction_summary(frame)
        assert s.table.empty and s.findings == []


def _paced_frame():
    # five rows predicted exactly (p = m = 1); at the calibration's pace 1, 1.8, 3 on the
    # rows with both columns; p-4 lacks the calibrated time, p-5 the pace
    frame = pd.DataFrame([_row(f"p-{i}", "rnn", "forward", 16 * i, 1.0, 1.0, "compute")
                          for i in range(1, 6)])
    return frame.assign(predicted_calibrated_s=[1.0, 1.8, 3.0, np.nan, 1.0],
                        pace_factor=[1.2, 1.5, 2.0, 9.0, np.nan])


def test_prediction_summary_at_the_calibrations_pace():
    findings = S.prediction_summary(_paced_frame()).findings
    # paced rows p-1..p-3: pace median 1.5, range 1.2-2; factors 1, 1.8, 3: within 1.5x 1/3,
    # 2x 2/3, median 1.8; APE 0, 0.8, 2: MAPE 2.8 / 3 = 93%
    assert findings[1] == (
        "The rows ran at 1.50x the calibration's yardstick time (median; 1.20-2.00x), "
        "measured around each benchmark; at the calibration's pace instead, 33% within 1.5x, "
        "67% within 2x, MAPE 93%, median factor 1.80.")
    assert findings[0].startswith("Time predicted from the counts (this run): 100% of 5 rows")
    assert len(findings) == 3 and findings[2].startswith("Worst rows: p-1 predicted 1x")


def test_prediction_summary_says_nothing_of_the_pace_when_it_is_one_or_half_recorded():
    frame = _paced_frame()
    plain = S.prediction_summary(frame.drop(columns=["predicted_calibrated_s",
                                                     "pace_factor"])).findings
    assert len(plain) == 2
    assert S.prediction_summary(frame.assign(pace_factor=1.0)).findings == plain
    assert S.prediction_summary(frame.drop(columns="pace_factor")).findings == plain
    assert S.prediction_summary(frame.drop(columns="predicted_calibrated_s")).findings == plain
    # a pace of 2 everywhere is not the calibration's: the sentence is there
    two = S.prediction_summary(frame.assign(pace_factor=2.0)).findings
    assert two[1].startswith("The rows ran at 2.00x the calibration's yardstick time "
                             "(median; 2.00-2.00x)")


def _repeat_frame():
    # four workloads timed twice (same variant, phase, T), first and second medians
    # (1, 1.25), (2, 3), (1, 0.5), (1, 1); every prediction 1.4x its row's median
    medians = [("a1", 16, 1.0), ("b1", 32, 2.0), ("c1", 64, 1.0), ("d1", 128, 1.0),
               ("a2", 16, 1.25), ("b2", 32, 3.0), ("c2", 64, 0.5), ("d2", 128, 1.0)]
    return pd.DataFrame([_row(i, "rnn", "forward", t, m, 1.4 * m) for i, t, m in medians])


def test_prediction_summary_states_the_aa_noise_floor_by_hand():
    # the A/A sentence names the run as the first finding does
    assert S.prediction_summary(_repeat_frame(), label="GPU Y").findings[1].startswith(
        "The A/A noise floor (GPU Y): 4 workloads")
    s = S.prediction_summary(_repeat_frame())
    # A/A, first as the prediction of the second: APE 0.25/1.25 = 0.2, 1/3, 0.5/0.5 = 1, 0:
    # median (0.2 + 1/3) / 2 = 27%, mean 1.533 / 4 = 38%, within 10% 1 of 4; factors 1.25,
    # 1.5, 2, 1: median sqrt(1.25 * 1.5) = 1.37; spreads 1.25, 1.5, 2, 1: 2 at 1.5 or more.
    # The prediction's median APE 0.4 over 0.2667 = 1.5x.
    assert s.findings == [
        "Time predicted from the counts (this run): 100% of 8 rows within 1.5x of the measured "
        "median, 100% within 2x; 0% within +-10% and 0% within +-25%; median absolute "
        "percentage error 40%, MAPE 40%; median factor 1.40, median predicted/measured 1.40 "
        "(machine constants from calibration microbenchmarks only).",
        "The A/A noise floor (this run): 4 workloads the grid times twice (in two suites "
        "minutes apart), the first median taken as a prediction of the second: median "
        "absolute percentage error 27%, MAPE 38%, 25% within +-10%, median factor 1.37 "
        "(largest 2.00; 2 of 4 by 1.5x or more). The prediction's median error is 1.5x the "
        "A/A's; no prediction can be closer to every measurement than two measurements are "
        "to each other.",
        # every row 1.4x off: the first five in the frame's order, no regime column
        "Worst rows: a1 predicted 1.4x the measured (); b1 predicted 1.4x the measured (); "
        "c1 predicted 1.4x the measured (); d1 predicted 1.4x the measured (); a2 predicted "
        "1.4x the measured ()."]
    assert s.table["regime"].tolist() == [""]
    assert s.table["rows"].tolist() == [8]


def test_prediction_summary_aa_floor_of_zero_makes_the_ratio_infinite():
    frame = pd.DataFrame([_row("x1", "rnn", "forward", 16, 1.0, 2.0),
                          _row("y1", "rnn", "forward", 32, 2.0, 2.0),
                          _row("x2", "rnn", "forward", 16, 1.0, 2.0),
                          _row("y2", "rnn", "forward", 32, 2.0, 2.0)])
    # pairs (1, 1) and (2, 2): no A/A error; the prediction's median APE is (0 + 1) / 2
    assert S.prediction_summary(frame).findings[1] == (
        "The A/A noise floor (this run): 2 workloads the grid times twice (in two suites "
        "minutes apart), the first median taken as a prediction of the second: median "
        "absolute percentage error 0%, MAPE 0%, 100% within +-10%, median factor 1.00 "
        "(largest 1.00; 0 of 2 by 1.5x or more). The prediction's median error is infx the "
        "A/A's; no prediction can be closer to every measurement than two measurements are "
        "to each other.")


def _hw(variant, model, phase, p, nofixed, share, ops, regime, kind="model", t=16, n=None,
        m=1.0):
    return {"variant": variant, "model": model, "kind": kind, "phase": phase, "T": t, "N": n,
            "median_s": m, "predicted_s": p, "predicted_nofixed_s": nofixed,
            "share_overhead": share, "trace_ops": ops, "regime": regime}


def _hw_frame():
    tf, lo = "transformer-flash", "launch/overhead"
    return pd.DataFrame([
        _hw(tf, "transformer", "forward", 1.0, 0.5, 0.2, 50, "bandwidth"),
        _hw(tf, "transformer", "forward", 2.0, 0.5, 0.1, 70, "bandwidth", t=64),
        _hw("rnn", "rnn", "forward", 3.0, 1.0, 0.6, 100, lo),
        # not a model workload: left out (it would make the loops' share 75% and 10x)
        _hw("rnn", "rnn", "forward", 10.0, 1.0, 0.9, 5, "compute", kind="reference")])


def test_homework_time_summary_table_and_findings_by_hand():
    s = S.homework_time_summary(_hw_frame())
    # transformer-flash forward: shares 0.2, 0.1 -> 0.15; ops 50, 70 -> 60; speed-ups
    # 1 / 0.5 = 2 and 2 / 0.5 = 4 -> 3; rnn forward: 0.6, 100, 3 / 1 = 3
    expected = pd.DataFrame([
        {"variant": "transformer-flash", "phase": "forward", "overhead share": 0.15,
         "ops per round": 60.0, "no-fixed-cost speed-up": 3.0, "regime": "bandwidth"},
        {"variant": "rnn", "phase": "forward", "overhead share": 0.6,
         "ops per round": 100.0, "no-fixed-cost speed-up": 3.0,
         "regime": "launch/overhead"}])
    pd.testing.assert_frame_equal(s.table, expected)
    assert s.findings == [
        "The recurrent loops' rounds are 60% fixed per-op cost (median): time is steps x ops "
        "per step x the fixed cost, so it follows depth times ops, not FLOPs.",
        "The Transformer's forward is not compute-bound anywhere in this grid.",
        # speed-ups 2, 4, 3 over the model rows
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 2-4x "
        "faster rounds."]
    # without a kind column every row counts as a model workload
    no_kind = S.homework_time_summary(_hw_frame().iloc[:3].drop(columns="kind"))
    pd.testing.assert_frame_equal(no_kind.table, expected)
    assert no_kind.findings == s.findings


def test_homework_time_summary_without_attention_rows_or_no_fixed_cost_column():
    s = S.homework_time_summary(_hw_frame().iloc[2:3])
    assert s.findings == [
        "The recurrent loops' rounds are 60% fixed per-op cost (median): time is steps x ops "
        "per step x the fixed cost, so it follows depth times ops, not FLOPs.",
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 3-3x "
        "faster rounds."]
    for frame in (None, pd.DataFrame(), _hw_frame().drop(columns="predicted_nofixed_s")):
        empty = S.homework_time_summary(frame)
        assert empty.table.empty and empty.findings == []


def test_homework_time_summary_kv_cache_takes_the_median_of_repeated_rows():
    tf, lo = "transformer-flash", "launch/overhead"
    # generate at N 32 measured 1, 1, 4 s (median 1, mean 2), with the cache 0.5 s:
    # measured 1 / 0.5 = 2x (a mean would say 4x); predicted 1 / 0.5 = 2x
    frame = pd.DataFrame([
        _hw(tf, "transformer", "generate", 1.0, 0.5, 0.3, 40, lo, n=32, m=1.0),
        _hw(tf, "transformer", "generate", 1.0, 0.5, 0.3, 40, lo, n=32, m=1.0),
        _hw(tf, "transformer", "generate", 1.0, 0.5, 0.3, 40, lo, n=32, m=4.0),
        _hw(tf, "transformer", "generate_cache", 0.5, 0.25, 0.3, 40, lo, n=32, m=0.5)])
    assert S.homework_time_summary(frame).findings == [
        "The KV cache: measured 2-2x faster, predicted 2-2x.",
        "Without fixed costs (CUDA graphs or compilation at best) the model predicts 2-2x "
        "faster rounds."]


def _ceiling_timing(rates):
    rows = [{"status": "ok", "suite": "test_model_phase", "variant": v, "model": m,
             "flops_per_second": r, "median_s": 1.0, "ci_low_s": 0.9, "ci_high_s": 1.1,
             "note": np.nan} for v, m, r in rates]
    return pd.DataFrame(rows)


def test_ceiling_summary_without_the_ceilings_interval_whole_sentence():
    timing = _ceiling_timing([("rnn", "rnn", 2.5e8), ("rnn", "rnn", np.nan),
                              ("transformer-flash", "transformer", 6e8)])
    s = S.ceiling_summary(timing, S.Ceiling(5e8))
    # 2.5e8 / 5e8 = 50%, 6e8 / 5e8 = 120%; no ceiling interval: plain two figures
    assert s.table.to_dict("records") == [
        {"variant": "rnn", "best FLOP/s [95% CI]": "2.5e+08",
         "fraction of ceiling [95% CI]": "50%"},
        {"variant": "transformer-flash", "best FLOP/s [95% CI]": "6e+08",
         "fraction of ceiling [95% CI]": "120%"}]
    assert s.findings == [
        "Achieved FLOP/s against the measured matmul ceiling of 5e+08 FLOP/s (the median of "
        "its rounds, ceiling.csv): the best recurrent-loop workload reaches 50% (rnn), the "
        "best attention workload reaches 120% (transformer-flash). The recurrent loops issue "
        "many small (B x D) @ (D x D) matmuls one after another, which keeps them further "
        "from the ceiling. A workload above 100% means the ceiling round ran while the "
        "machine was busier than during that workload: the ceiling is a measurement too."]


def test_ceiling_summary_at_exactly_the_ceiling_and_without_one():
    timing = _ceiling_timing([("transformer-flash", "transformer", 1e9)])
    assert S.ceiling_summary(timing, S.Ceiling(1e9)).findings == [
        "Achieved FLOP/s against the measured matmul ceiling of 1e+09 FLOP/s (the median of "
        "its rounds, ceiling.csv): the best attention workload reaches 100% "
        "(transformer-flash)."]
    # a ceiling of 1 FLOP/s is still a ceiling: 0.5 / 1 = 50%
    half = _ceiling_timing([("rnn", "rnn", 0.5)])
    assert S.ceiling_summary(half, S.Ceiling(1.0)).table[
        "fraction of ceiling [95% CI]"].tolist() == ["50%"]
    for ceiling in (None, S.Ceiling(0.0)):
        s = S.ceiling_summary(timing, ceiling)
        assert s.table.empty and s.findings == []


def test_ceiling_summary_scales_the_rates_interval_by_the_median():
    # 2e8 FLOP/s at median 2 s, interval 1.6..2.5 s: rate 2e8 * 2 / 2.5 = 1.6e8 to
    # 2e8 * 2 / 1.6 = 2.5e8; over the ceiling 1e9 [0.8e9, 1.25e9]: 1.6e8 / 1.25e9 = 12.8%
    # to 2.5e8 / 0.8e9 = 31.25%: "20% [13%, 31%]"
    timing = _ceiling_timing([("rnn", "rnn", 2e8)]).assign(median_s=2.0, ci_low_s=1.6,
                                                           ci_high_s=2.5)
    s = S.ceiling_summary(timing, S.Ceiling(1e9, (0.8e9, 1.25e9)))
    assert s.table.to_dict("records") == [
        {"variant": "rnn", "best FLOP/s [95% CI]": "2e+08 [1.6e+08, 2.5e+08]",
         "fraction of ceiling [95% CI]": "20% [13%, 31%]"}]


TS = (16, 32, 64, 128)


def _sweep(variant, model, time, flops, depth, ts=TS):
    return [{"status": "ok", "suite": "test_model_phase", "sweep": "T", "phase": "forward",
             "variant": variant, "model": model, "T": t, "median_s": time(t),
             "predicted_flops": flops(t), "predicted_depth": depth(t),
             "seconds_per_token": time(t) / t} for t in ts]


def test_slope_summary_gaps_of_exactly_015_follow_the_flops():
    # rnn: time T^0.15, FLOPs flat, depth T; transformer: time flat, FLOPs T^0.15, depth
    # flat: gaps +0.15 and -0.15, neither beyond 0.15; mean time gap 0.15, depth gap 1
    timing = pd.DataFrame(
        _sweep("rnn", "rnn", lambda t: 1e-3 * t**0.15, lambda t: 100.0, lambda t: t)
        + _sweep("transformer-flash", "transformer", lambda t: 1e-3, lambda t: 100 * t**0.15,
                 lambda t: 7))
    assert S.slope_summary(timing).findings == [
        "Time vs T (forward pass, T 16..128): recurrent loops (rnn): time ~ T^0.15 "
        "(sublinear), FLOPs ~ T^0.00, depth ~ T^1.00; attention models (transformer-flash): "
        "time ~ T^0.00 (about flat), FLOPs ~ T^0.15, depth ~ T^0.00. Every variant's time "
        "follows its FLOPs (exponents within 0.15). Both families grow alike (mean exponents "
        "within 0.15): on this device the recurrent chain, whose depth exponent is higher by "
        "1.00, does not show as a faster growth."]


def test_slope_summary_rounds_to_two_places_and_keeps_one_point_variants():
    timing = pd.DataFrame(
        _sweep("rnn", "rnn", lambda t: 1e-3 * t**1.234, lambda t: 100 * t, lambda t: t)
        + _sweep("gru", "gru", lambda t: 1e-3, lambda t: 100.0, lambda t: t, ts=(16,)))
    s = S.slope_summary(timing)
    assert s.table["variant"].tolist() == ["rnn", "gru"]
    assert s.table["time slope"].tolist()[0] == 1.23
    assert np.isnan(s.table["time slope"].tolist()[1])
    assert s.table["T"].tolist() == ["16..128", "16..16"]
    assert "model" not in s.table.columns
    # the rnn alone measured: time T^1.234 against FLOPs T^1, gap 0.23 > 0.15
    assert s.findings == [
        "Time vs T (forward pass, T 16..128): recurrent loops (rnn): time ~ T^1.23 (between "
        "linear and quadratic), FLOPs ~ T^1.00, depth ~ T^1.00. Time grows faster than the "
        "FLOPs for rnn (T^1.23 against FLOPs T^1.00): the FLOP count does not explain it "
        "(check the noisy flags)."]
    only_one = S.slope_summary(pd.DataFrame(_sweep("gru", "gru", lambda t: 1e-3,
                                                   lambda t: 1.0, lambda t: t, ts=(16,))))
    assert only_one.findings == [] and only_one.table.columns.tolist() == [
        "variant", "T", "time slope", "FLOP slope", "depth slope", "s/token at min T",
        "s/token at max T"]


def test_slope_summary_when_only_time_grows_slower_and_depth_is_unmeasured():
    # flat time against FLOPs T^1: gap -1; a depth of 0 has no log-log slope (nan)
    timing = pd.DataFrame(_sweep("rnn", "rnn", lambda t: 1e-3, lambda t: 100 * t,
                                 lambda t: 0))
    assert S.slope_summary(timing).findings == [
        "Time vs T (forward pass, T 16..128): recurrent loops (rnn): time ~ T^0.00 (about "
        "flat), FLOPs ~ T^1.00, depth ~ T^nan. Time grows slower than the FLOPs for rnn "
        "(T^0.00 against FLOPs T^1.00): costs that do not grow with T (per-call overhead) "
        "weigh at these sizes."]
