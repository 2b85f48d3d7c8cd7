"""Whole tables and sentences of the report's findings (slopes, loops against attention,
failures, timing quality, attention memory, training, the ceiling) on hand-made frames, with
the thresholds probed at their exact boundaries. Every expected value is worked out by hand
in the comments, never pasted from a run."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.report import summaries as S

NAN = float("nan")
TS = (16, 32, 64, 128)


def _empty(s):
    assert isinstance(s, S.Summary)
    assert s.table.empty and list(s.table.columns) == [] and s.findings == []


# ---------------------------------------------------------------------------- loglog_slope


def test_loglog_slope_leaves_out_missing_zero_negative_and_infinite_points():
    # y = T^2 on T = 16..128 (slope 2); every other point has a missing, zero, negative or
    # infinite coordinate and must be left out (a log of 0 would give -inf)
    x = [16, None, 32, 0, 64, -4, 8, 8, 128, 256, math.inf, 512]
    y = [256, 1.0, 1024, 5.0, 4096, 2.0, 0.0, -1.0, 16384, None, 3.0, math.inf]
    assert S.loglog_slope(x, y) == pytest.approx(2.0, abs=1e-9)


def test_loglog_slope_keeps_sizes_at_and_below_one():
    # ln x = 0, a, 2a and ln y = 0, 2a, 2a (a = ln 2): mean ln x a, mean ln y 4a/3;
    # Sxy = (-a)(-4a/3) + 0 + a(2a/3) = 2a^2, Sxx = 2a^2: slope 1 (the last two alone: 0)
    assert S.loglog_slope([1, 2, 4], [1, 4, 4]) == pytest.approx(1.0, abs=1e-9)
    # x = 1 and e: ln x spans exactly 1; y = x^2
    assert S.loglog_slope([1, math.e], [1, math.e**2]) == pytest.approx(2.0, abs=1e-9)


def test_loglog_slope_of_two_points_and_of_too_few():
    # 1 -> 8 over 64 -> 128: 8 = 2^3, slope 3
    assert S.loglog_slope([64, 128], [1.0, 8.0]) == pytest.approx(3.0, abs=1e-9)
    assert np.isnan(S.loglog_slope([], []))
    assert np.isnan(S.loglog_slope([0, -1], [1.0, 1.0]))  # nothing left
    assert np.isnan(S.loglog_slope([8, 8], [1.0, 2.0]))  # one size twice: no spread
    assert np.isnan(S.loglog_slope([8, 8, 8], [1.0, 2.0, 3.0]))


# ---------------------------------------------------------------------------- growth_words


@pytest.mark.parametrize("slope, words", [
    (NAN, "not measured"), (math.inf, "not measured"),
    (0.1499, "about flat"), (0.15, "sublinear"),
    (0.8499, "sublinear"), (0.85, "about linear"),
    (1.15, "about linear"), (1.1501, "between linear and quadratic"),
    (1.8499, "between linear and quadratic"), (1.85, "about quadratic"),
    (2.15, "about quadratic"), (2.1501, "faster than quadratic"),
])
def test_growth_words_at_each_boundary(slope, words):
    assert S.growth_words(slope) == words


# ---------------------------------------------------------------------------- slope_summary


def _rows(variant, model, ts, time, flops, depth):
    base = {"status": "ok", "suite": "test_model_phase", "sweep": "T", "phase": "forward",
            "noisy": False}
    return [{**base, "variant": variant, "model": model, "T": t, "median_s": time(t),
             "predicted_flops": flops(t), "predicted_depth": depth(t),
             "seconds_per_token": time(t) / (4 * t), "id": f"{variant}-T{t}"} for t in ts]


def test_slope_summary_whole_table_and_sentence_when_every_variant_follows_its_flops():
    # rnn: time, FLOPs, depth ~ T (1, 1, 1); gru: time ~ T^1.1, FLOPs ~ T, no predicted
    # depth; transformer: time ~ T^1.996 (2.00 to two decimals), FLOPs ~ T^2, depth 7 (0);
    # lstm: one T only (a truncated sweep), no exponent
    rows = (_rows("rnn", "rnn", TS, lambda t: 1e-4 * t, lambda t: 100.0 * t, lambda t: t)
            + _rows("gru", "gru", TS, lambda t: 1e-4 * t**1.1, lambda t: 100.0 * t,
                    lambda t: NAN)
            + _rows("lstm", "lstm", (16,), lambda t: 2e-3, lambda t: 100.0 * t, lambda t: t)
            + _rows("transformer-flash", "transformer", TS, lambda t: 1e-6 * t**1.996,
                    lambda t: 10.0 * t**2, lambda t: 7))
    s = S.slope_summary(pd.DataFrame(rows))
    # seconds per token: time / 4T; rnn 1e-4 / 4 = 2.5e-5 at every T; gru 2.5e-5 T^0.1;
    # lstm 2e-3 / 64 = 3.125e-5; transformer 2.5e-7 T^0.996
    expected = pd.DataFrame({
        "variant": ["rnn", "gru", "lstm", "transformer-flash"],
        "T": ["16..128", "16..128", "16..16", "16..128"],
        "time slope": [1.0, 1.1, NAN, 2.0], "FLOP slope": [1.0, 1.0, NAN, 2.0],
        "depth slope": [1.0, NAN, NAN, 0.0],
        "s/token at min T": [2.5e-5, 2.5e-5 * 16**0.1, 3.125e-5, 2.5e-7 * 16**0.996],
        "s/token at max T": [2.5e-5, 2.5e-5 * 128**0.1, 3.125e-5, 2.5e-7 * 128**0.996]})
    pd.testing.assert_frame_equal(s.table, expected, rtol=1e-9)
    # gaps time - FLOPs: 0, 0.1, 0 (all within 0.15); loops' mean time (1 + 1.1) / 2 = 1.05
    # against 2: attention faster by 0.95; FLOP exponents 2 - 1 = 1 > 0.1
    assert s.findings == [
        "Time vs T (forward pass, T 16..128): recurrent loops (rnn, gru): time ~ T^1.00 to "
        "1.10 (about linear), FLOPs ~ T^1.00, depth ~ T^1.00; attention models "
        "(transformer-flash): time ~ T^2.00 (about quadratic), FLOPs ~ T^2.00, depth ~ T^0.00."
        " Every variant's time follows its FLOPs (exponents within 0.15). The attention "
        "models' time grows faster (by T^0.95 on average): their FLOPs grow faster with T "
        "(exponent higher by 1.00); the recurrent chain does not show."]


def test_slope_summary_names_slower_and_faster_variants_with_gaps_at_015_not_counted():
    # exponents (time, FLOPs): rnn (1, 1); gru (0.5, 1): slower by 0.5; lstm (0.1, 0.25):
    # gap exactly -0.15, not slower; transformer-flash (2, 1): faster by 1;
    # transformer-manual (0.25, 0.1): gap exactly +0.15, not faster
    rows = (_rows("rnn", "rnn", TS, lambda t: 1e-4 * t, lambda t: 1e3 * t, lambda t: t)
            + _rows("gru", "gru", TS, lambda t: 1e-4 * t**0.5, lambda t: 1e3 * t,
                    lambda t: t)
            + _rows("lstm", "lstm", TS, lambda t: 1e-4 * t**0.1, lambda t: 1e3 * t**0.25,
                    lambda t: t)
            + _rows("transformer-flash", "transformer", TS, lambda t: 1e-6 * t**2,
                    lambda t: 1e3 * t, lambda t: 7)
            + _rows("transformer-manual", "transformer", TS, lambda t: 1e-4 * t**0.25,
                    lambda t: 1e3 * t**0.1, lambda t: 7))
    s = S.slope_summary(pd.DataFrame(rows))
    # loops' mean time (1 + 0.5 + 0.1) / 3 = 0.533, attention's (2 + 0.25) / 2 = 1.125:
    # gap -0.592; FLOPs: attention (1 + 0.1) / 2 = 0.55 against (1 + 1 + 0.25) / 3 = 0.75
    assert s.findings == [
        "Time vs T (forward pass, T 16..128): recurrent loops (rnn, gru, lstm): time ~ "
        "T^0.10 to 1.00 (from about flat to about linear), FLOPs ~ T^0.25 to 1.00, depth ~ "
        "T^1.00; attention models (transformer-flash, transformer-manual): time ~ T^0.25 to "
        "2.00 (from sublinear to about quadratic), FLOPs ~ T^0.10 to 1.00, depth ~ T^0.00. "
        "Time grows slower than the FLOPs for gru (T^0.50 against FLOPs T^1.00): costs that "
        "do not grow with T (per-call overhead) weigh at these sizes. Time grows faster than "
        "the FLOPs for transformer-flash (T^2.00 against FLOPs T^1.00): the FLOP count does "
        "not explain it (check the noisy flags). The attention models' time grows faster (by "
        "T^0.59 on average), which their FLOP exponents do not explain."]


def test_slope_summary_with_only_a_faster_variant_says_nothing_of_following():
    # one variant, time ~ T^2 over FLOPs ~ T: faster, none slower
    rows = _rows("transformer-flash", "transformer", TS, lambda t: 1e-6 * t**2,
                 lambda t: 1e3 * t, lambda t: 7)
    assert S.slope_summary(pd.DataFrame(rows)).findings == [
        "Time vs T (forward pass, T 16..128): attention models (transformer-flash): time ~ "
        "T^2.00 (about quadratic), FLOPs ~ T^1.00, depth ~ T^0.00. Time grows faster than "
        "the FLOPs for transformer-flash (T^2.00 against FLOPs T^1.00): the FLOP count does "
        "not explain it (check the noisy flags)."]


def test_slope_summary_prints_a_tiny_negative_exponent_as_zero():
    # time ~ T^-0.001 rounds to -0.00: shown as 0.00, never "-0.00"
    rows = _rows("transformer-flash", "transformer", TS, lambda t: 1e-3 * t**-0.001,
                 lambda t: 1e3, lambda t: 7)
    s = S.slope_summary(pd.DataFrame(rows))
    assert not np.signbit(s.table["time slope"].iloc[0])
    assert s.findings == [
        "Time vs T (forward pass, T 16..128): attention models (transformer-flash): time ~ "
        "T^0.00 (about flat), FLOPs ~ T^0.00, depth ~ T^0.00. Every variant's time follows "
        "its FLOPs (exponents within 0.15)."]


def test_slope_summary_without_predicted_flops_or_depth_prints_nan_in_lower_case():
    # mingru's FLOPs and depth are not predicted: no exponent, printed as Python prints nan
    rows = _rows("mingru", "mingru", TS, lambda t: 1e-3, lambda t: NAN, lambda t: NAN)
    assert S.slope_summary(pd.DataFrame(rows)).findings == [
        "Time vs T (forward pass, T 16..128): parallel scans (mingru): time ~ T^0.00 (about "
        "flat), FLOPs ~ T^nan, depth ~ T^nan."]


def test_slope_summary_of_single_length_sweeps_is_a_table_without_findings():
    rows = (_rows("rnn", "rnn", (32,), lambda t: 1e-3, lambda t: 1e3, lambda t: t)
            + _rows("transformer-flash", "transformer", (64,), lambda t: 2e-3, lambda t: 1e3,
                    lambda t: 7))
    s = S.slope_summary(pd.DataFrame(rows))
    # s/token: 1e-3 / (4 * 32) = 7.8125e-6, 2e-3 / (4 * 64) = 7.8125e-6
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "variant": ["rnn", "transformer-flash"], "T": ["32..32", "64..64"],
        "time slope": [NAN, NAN], "FLOP slope": [NAN, NAN], "depth slope": [NAN, NAN],
        "s/token at min T": [7.8125e-6, 7.8125e-6],
        "s/token at max T": [7.8125e-6, 7.8125e-6]}))
    assert s.findings == []


# ---------------------------------------------------------------------------- loops vs attention


def _fam(time, depth=0.0, flops=1.0):
    return pd.DataFrame({"time slope": [time], "depth slope": [depth], "FLOP slope": [flops]})


@pytest.mark.parametrize("rec, att, text", [
    # gap 1.5 - 1 = 0.5; chain 1 - 0.5 = 0.5
    (_fam(1.5, depth=1.0), _fam(1.0, depth=0.5),
     " The recurrent loops' time grows faster (by T^0.50 on average), as their longer chain "
     "(depth exponent higher by 0.50) predicts."),
    # chain 0 and chain exactly 0.25: no claim about the chain
    (_fam(1.5), _fam(1.0), " The recurrent loops' time grows faster (by T^0.50 on average)."),
    (_fam(1.5, depth=1.25), _fam(1.0, depth=1.0),
     " The recurrent loops' time grows faster (by T^0.50 on average)."),
    # gap exactly +0.25 and -0.25: alike; chain 1 - 0 = 1
    (_fam(1.25, depth=1.0), _fam(1.0),
     " Both families grow alike (mean exponents within 0.25): on this device the recurrent "
     "chain, whose depth exponent is higher by 1.00, does not show as a faster growth."),
    (_fam(1.0, depth=0.5), _fam(1.25),
     " Both families grow alike (mean exponents within 0.25): on this device the recurrent "
     "chain, whose depth exponent is higher by 0.50, does not show as a faster growth."),
    # alike, chain 0 and chain exactly 0.25
    (_fam(1.0), _fam(1.125), " Both families grow alike (mean exponents within 0.12)."),
    (_fam(1.0, depth=0.25), _fam(1.0), " Both families grow alike (mean exponents within 0.00)."),
    # attention faster by 1; its FLOP exponent higher by 1.5 - 1 = 0.5
    (_fam(1.0, flops=1.0), _fam(2.0, flops=1.5),
     " The attention models' time grows faster (by T^1.00 on average): their FLOPs grow "
     "faster with T (exponent higher by 0.50); the recurrent chain does not show."),
    # FLOP exponent higher by exactly 0.2 - 0.1 = 0.1: not above 0.1
    (_fam(1.0, flops=0.1), _fam(2.0, flops=0.2),
     " The attention models' time grows faster (by T^1.00 on average), which their FLOP "
     "exponents do not explain."),
])
def test_loops_against_attention_whole_sentences(rec, att, text):
    assert S._loops_against_attention(rec, att) == text


# ---------------------------------------------------------------------------- _follows


def _groups(loops=None, att=None):
    g = {}
    if loops is not None:
        g["loop"] = pd.DataFrame({"time slope": loops})
    if att is not None:
        g["attention"] = pd.DataFrame({"time slope": att})
    return g


@pytest.mark.parametrize("groups, follows", [
    (_groups(loops=[1.0]), None), (_groups(att=[0.0]), None), ({}, None),
    # the loops' smallest exponent exactly 0.75 and attention's largest exactly 0.25
    (_groups([0.75, 1.0], [0.0, 0.25]), "depth"),
    (_groups([0.75, 1.0], [0.75, 1.0]), "FLOPs"),
    (_groups([0.5, 1.0], [1.0]), None),  # one loop below 0.75
    (_groups([1.0], [0.5]), None),  # attention between 0.25 and 0.75
])
def test_follows_at_its_boundaries(groups, follows):
    assert S._follows(groups) == follows


# ---------------------------------------------------------------------------- failure_summary


def test_failure_summary_of_seven_failures_under_a_shuffled_index():
    # ids 10..19 at index 100..109; "OK" is not "ok": failed; seven failed, two past five
    statuses = ["ok", "failed: OOM", "OK", "ok", "error", "skipped", "failed: x", "ok",
                "timeout", "failed: y"]
    timing = pd.DataFrame({"id": list(range(10, 20)), "status": statuses},
                          index=range(100, 110))
    s = S.failure_summary(timing)
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "id": [11, 12, 14, 15, 16, 18, 19],
        "status": ["failed: OOM", "OK", "error", "skipped", "failed: x", "timeout",
                   "failed: y"]}))
    assert s.findings == ["7 bench configurations failed and are listed in timing.csv with "
                          "their error: 11, 12, 14, 15, 16 and 2 more."]


def test_failure_summary_of_one_failure_among_many_and_of_none():
    timing = pd.DataFrame({"id": ["a", "b", "c"], "status": ["ok", "ok", "failed: boom"]})
    s = S.failure_summary(timing)
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({"id": ["c"],
                                                         "status": ["failed: boom"]}))
    assert s.findings == ["1 bench configuration failed and is listed in timing.csv with its "
                          "error: c."]
    _empty(S.failure_summary(timing.assign(status="ok")))


# ---------------------------------------------------------------------------- timing quality


def _quality(**over):
    frame = pd.DataFrame({
        "status": ["ok", "ok", "ok", "failed: x"],
        # half-widths 0.05 / 1 = 5%, 0.04 / 2 = 2%, 0.01 / 0.5 = 2%: median 2.0%
        "median_s": [1.0, 2.0, 0.5, 9.0], "ci_low_s": [0.95, 1.96, 0.49, 1.0],
        "ci_high_s": [1.05, 2.04, 0.51, 20.0],
        "converged": [True, True, False, True], "drifted": [False, False, True, True],
        "rounds": [10, 30, 20, 999], "load_before": [0.5, 1.0, 2.0, 9.0],
        "load_after": [0.25, 3.0, NAN, 9.0], "steal_fraction": [0.0, 0.02, 0.01, 0.9]})
    return frame.assign(**over)


def test_timing_quality_summary_whole_table_and_sentence():
    s = S.timing_quality_summary(_quality())
    # the failed row counts nowhere; load over both columns: 0.25..3.00; steal at most 2%
    pd.testing.assert_frame_equal(s.table, pd.DataFrame([{
        "timings": 3, "CI within target": 2, "drifted": 1, "median CI half-width": "2.0%",
        "rounds": "10..30", "load average": "0.25..3.00", "max CPU steal": "2.0%"}]))
    assert s.findings == [
        "Timing quality: 2 of 3 medians have a 95% interval within the precision target "
        "(median half-width 2.0%); 1 of 3 drifted during their run (first and last quarter "
        "of rounds with disjoint intervals); the 1-minute load average was 0.25 to 3.00, CPU "
        "steal at most 2.0%."]


def test_timing_quality_summary_with_no_upper_ends_load_or_steal_leaves_cells_blank():
    s = S.timing_quality_summary(_quality(ci_high_s=NAN, load_before=NAN, load_after=NAN,
                                          steal_fraction=NAN))
    pd.testing.assert_frame_equal(s.table, pd.DataFrame([{
        "timings": 3, "CI within target": 2, "drifted": 1, "median CI half-width": "",
        "rounds": "10..30", "load average": "", "max CPU steal": ""}]))
    assert s.findings == [
        "Timing quality: 2 of 3 medians have a 95% interval within the precision target (no "
        "interval with both ends); 1 of 3 drifted during their run (first and last quarter "
        "of rounds with disjoint intervals)."]


def test_timing_quality_summary_needs_a_lower_end():
    _empty(S.timing_quality_summary(_quality().drop(columns="ci_low_s")))
    _empty(S.timing_quality_summary(_quality(ci_low_s=NAN)))
    _empty(S.timing_quality_summary(None))


# ---------------------------------------------------------------------------- attention


def _att(ts, flash_mib, manual_mib, kernels=("flash", "manual")):
    rows = []
    for t in ts:
        for k, mib, s in (("flash", flash_mib, 1e-3), ("manual", manual_mib, 4e-3)):
            if k in kernels:
                rows.append({"T": float(t), "kernel": k, "status": "ok", "median_s": s,
                             "peak_memory_bytes": S.MIB * mib(t)})
    return pd.DataFrame(rows)


WHY = (": the manual path materializes the (B, H, T, T) scores, SDPA does not (the time "
       "and memory ratios are under Paired ratios).")


def test_attention_summary_on_two_lengths_gives_the_whole_table_and_sentence():
    # flash 2 MiB at both T (T^0), manual 1 -> 4 MiB over 128 -> 256 (T^2): 2 > 0 + 0.3
    s = S.attention_summary(_att((128, 256), lambda t: 2.0, lambda t: (t / 128) ** 2))
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "T": [128, 256], "flash s": [1e-3, 1e-3], "manual s": [4e-3, 4e-3],
        "flash MiB": [2.0, 2.0], "manual MiB": [1.0, 4.0]}))
    assert s.findings == ["Attention's peak memory grows as T^2.00 with the manual kernel and "
                          "T^0.00 with SDPA" + WHY]


@pytest.mark.parametrize("manual, slope", [
    (lambda t: t / 64, "1.00"),  # alike: 1 against 1
    (lambda t: (t / 64) ** 1.25, "1.25"),  # 1.25 is not above 1 + 0.3
])
def test_attention_summary_without_a_clear_memory_gap_makes_no_claim(manual, slope):
    s = S.attention_summary(_att((64, 128, 256), lambda t: t / 64, manual))
    assert s.findings == [f"Attention's peak memory grows as T^{slope} with the manual kernel "
                          "and T^1.00 with SDPA (the ratios are under Paired ratios)."]


def test_attention_summary_with_manual_memory_more_than_13_faster():
    # manual T^2 against flash T^1: the gap 1 is above 0.3 (a threshold of 1.3 would not be)
    s = S.attention_summary(_att((64, 128, 256), lambda t: t / 64, lambda t: (t / 64) ** 2))
    assert s.findings == ["Attention's peak memory grows as T^2.00 with the manual kernel and "
                          "T^1.00 with SDPA" + WHY]


def test_attention_summary_of_one_length_or_one_kernel_is_a_table():
    one = S.attention_summary(_att((64,), lambda t: 3.0, lambda t: 5.0))
    pd.testing.assert_frame_equal(one.table, pd.DataFrame({
        "T": [64], "flash s": [1e-3], "manual s": [4e-3], "flash MiB": [3.0],
        "manual MiB": [5.0]}))
    assert one.findings == []
    manual = S.attention_summary(_att((64, 128), lambda t: 1.0, lambda t: t / 64,
                                      kernels=("manual",)))
    pd.testing.assert_frame_equal(manual.table, pd.DataFrame({
        "T": [64.0, 128.0], "median_s_manual": [4e-3, 4e-3],
        "peak_memory_bytes_manual": [1.0 * S.MIB, 2.0 * S.MIB]}))
    assert manual.findings == []


# ---------------------------------------------------------------------------- training

CAVEAT = ("; not converged, and one seed cannot separate models whose losses are close): "
          "final validation loss ")


def _train(rows, columns=("model", "step", "params", "train_loss", "val_loss", "tokens_per_s",
                          "seed", "data")):
    return pd.DataFrame(rows, columns=list(columns)).assign(status="ok")


def test_training_summary_whole_table_and_sentence_with_three_seeds():
    frame = _train([
        # lstm: the last of three train and validation losses; step 20's throughput is
        # missing, so tokens/s is the median of 100 and 200
        ("lstm", 1, 30, 4.0, 4.1, 100.0, 1, "tiny"),
        ("lstm", 10, 30, 3.0, 3.2, 200.0, 1, "tiny"),
        ("lstm", 20, 30, 2.5, 2.7, NAN, 1, "tiny"),
        # gru: a single row
        ("gru", 5, 20, 3.5, 3.0, 400.0, 2, "tiny"),
        # rnn: the lowest validation loss, no throughput at all
        ("rnn", 1, 10, 4.2, NAN, NAN, 3, "tiny"),
        ("rnn", 20, 10, 2.0, 1.5, NAN, 3, "tiny"),
    ])
    s = S.training_summary(frame)
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "model": ["lstm", "gru", "rnn"], "params": [30, 20, 10], "steps": [20, 5, 20],
        "final train loss": [2.5, 3.5, 2.0], "final val loss": [2.7, 3.0, 1.5],
        "tokens/s": [150.0, 400.0, NAN]}))
    # seeds 1, 2, 3; step counts 20, 5 (each once, in order)
    assert s.findings == ["Training (short runs: 3 seeds, 20, 5 steps, corpus tiny" + CAVEAT
                          + "lstm 2.700, gru 3.000, rnn 1.500 nats/char; lowest rnn."]


def test_training_summary_without_seed_corpus_or_validation_losses():
    frame = _train([("rnn", 1, 10, 4.0, 50.0), ("rnn", 8, 10, 3.0, 70.0),
                    ("rnn", 16, 10, 2.5, 90.0)],
                   columns=("model", "step", "params", "train_loss", "tokens_per_s"))
    s = S.training_summary(frame)
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "model": ["rnn"], "params": [10], "steps": [16], "final train loss": [2.5],
        "final val loss": [NAN], "tokens/s": [70.0]}))
    assert s.findings == ["Training (short runs: one seed, 16 steps, corpus unrecorded"
                          + CAVEAT + "rnn nan nats/char."]


def test_training_summary_of_a_model_without_any_validation_loss():
    frame = _train([("gru", 1, 20, 4.0, NAN, 10.0, 7, "tiny"),
                    ("gru", 4, 20, 3.0, NAN, 10.0, 7, "tiny"),
                    ("rnn", 4, 10, 3.5, 3.25, 10.0, 7, "tiny")])
    s = S.training_summary(frame)
    assert s.table["final val loss"].tolist()[1] == 3.25
    assert np.isnan(s.table["final val loss"].iloc[0])
    assert s.findings == ["Training (short runs: one seed, 4 steps, corpus tiny" + CAVEAT
                          + "gru nan, rnn 3.250 nats/char; lowest rnn."]


def test_training_summary_needs_train_losses():
    _empty(S.training_summary(_train([("rnn", 1, 10, 4.0, 4.1, 1.0, 1, "tiny")])
                              .drop(columns="train_loss")))


# ---------------------------------------------------------------------------- ceiling_of


def test_ceiling_of_without_an_interval_rounds_or_peak():
    frame = pd.DataFrame([{"n": 1024, "dtype": "bfloat16", "flops_per_second": 2.5e11}])
    assert S.ceiling_of(frame) == S.Ceiling(2.5e11, None, 1024, "bfloat16", None, None)
    # rounds and peak recorded as blanks
    blank = frame.assign(rounds=NAN, peak_flops_per_second=NAN)
    assert S.ceiling_of(blank) == S.Ceiling(2.5e11, None, 1024, "bfloat16", None, None)
    full = frame.assign(rounds=7.0, peak_flops_per_second=3e11, flops_per_second_ci_low=2e11,
                        flops_per_second_ci_high=2.75e11)
    assert S.ceiling_of(full) == S.Ceiling(2.5e11, (2e11, 2.75e11), 1024, "bfloat16", 7, 3e11)
    assert S.ceiling_of(frame.drop(columns="flops_per_second")) is None


# ---------------------------------------------------------------------------- ceiling_summary


def _best(rows):
    base = {"status": "ok", "suite": "test_model_phase", "sweep": "T", "phase": "forward"}
    return pd.DataFrame([{**base, **r} for r in rows])


RNN = {"variant": "rnn", "model": "rnn"}


def test_ceiling_summary_needs_timings_and_a_positive_ceiling():
    timing = _best([{**RNN, "flops_per_second": 5e8}])
    _empty(S.ceiling_summary(timing, None))
    _empty(S.ceiling_summary(timing, S.Ceiling(0.0)))
    _empty(S.ceiling_summary(None, S.Ceiling(1e9)))
    _empty(S.ceiling_summary(pd.DataFrame(), S.Ceiling(1e9)))


def test_ceiling_summary_of_a_ceiling_of_one_flop_per_second():
    # 0.5 / 1 = 50%
    s = S.ceiling_summary(_best([{**RNN, "flops_per_second": 0.5}]), S.Ceiling(1.0))
    assert s.table["fraction of ceiling [95% CI]"].tolist() == ["50%"]


def test_ceiling_summary_scales_the_rates_interval_by_a_median_of_two_seconds():
    # rate 2.5e8 at median 2 s, interval 1.9..2.1 s: 2.5e8 * 2 / 2.1 = 2.381e8 to
    # 2.5e8 * 2 / 1.9 = 2.632e8 (half-width 1.3e7: two digits); against the ceiling's
    # 0.99e9..1.01e9: 2.381e8 / 1.01e9 = 23.6%, 2.632e8 / 0.99e9 = 26.6% (half-width 1.5
    # points: two digits). The ceiling's half-width 1e7 gives it three digits.
    timing = _best([{**RNN, "flops_per_second": 2.5e8, "median_s": 2.0, "ci_low_s": 1.9,
                     "ci_high_s": 2.1}])
    s = S.ceiling_summary(timing, S.Ceiling(1e9, (0.99e9, 1.01e9)))
    pd.testing.assert_frame_equal(s.table, pd.DataFrame({
        "variant": ["rnn"], "best FLOP/s [95% CI]": ["2.5e+08 [2.4e+08, 2.6e+08]"],
        "fraction of ceiling [95% CI]": ["25% [24%, 27%]"]}))
    assert s.findings == [
        "Achieved FLOP/s against the measured matmul ceiling of 1e+09 [9.9e+08, 1.01e+09] "
        "FLOP/s (the median of its rounds, ceiling.csv): the best recurrent-loop workload "
        "reaches 25% [24%, 27%] (rnn)."]


def test_ceiling_summary_uses_intervals_only_where_both_have_them():
    timing = _best([{**RNN, "flops_per_second": 2.5e8, "median_s": 2.0, "ci_low_s": 1.9,
                     "ci_high_s": 2.1}])
    plain = {"variant": ["rnn"], "best FLOP/s [95% CI]": ["2.5e+08"],
             "fraction of ceiling [95% CI]": ["25%"]}
    # the ceiling without an interval, and the timings without one
    pd.testing.assert_frame_equal(S.ceiling_summary(timing, S.Ceiling(1e9)).table,
                                  pd.DataFrame(plain))
    bare = timing.drop(columns=["ci_low_s", "ci_high_s"])
    pd.testing.assert_frame_equal(
        S.ceiling_summary(bare, S.Ceiling(1e9, (0.99e9, 1.01e9))).table, pd.DataFrame(plain))


def test_ceiling_summary_keeps_a_best_row_with_a_blank_in_another_column():
    # the 4e8 row lacks its predicted depth: it is still the best (40%, not 10%)
    timing = _best([{**RNN, "flops_per_second": 4e8, "predicted_depth": NAN},
                    {**RNN, "flops_per_second": 1e8, "predicted_depth": 17.0}])
    s = S.ceiling_summary(timing, S.Ceiling(1e9))
    assert s.table["fraction of ceiling [95% CI]"].tolist() == ["40%"]


def test_ceiling_summary_at_exactly_and_above_the_ceiling():
    at = S.ceiling_summary(_best([{**RNN, "flops_per_second": 1e9}]), S.Ceiling(1e9))
    assert at.findings == [
        "Achieved FLOP/s against the measured matmul ceiling of 1e+09 FLOP/s (the median of "
        "its rounds, ceiling.csv): the best recurrent-loop workload reaches 100% (rnn)."]
    above = S.ceiling_summary(_best([{**RNN, "flops_per_second": 1.2e9}]), S.Ceiling(1e9))
    assert above.findings == [
        "Achieved FLOP/s against the measured matmul ceiling of 1e+09 FLOP/s (the median of "
        "its rounds, ceiling.csv): the best recurrent-loop workload reaches 120% (rnn). A "
        "workload above 100% means the ceiling round ran while the machine was busier than "
        "during that workload: the ceiling is a measurement too."]
