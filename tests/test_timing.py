import statistics

import pytest
import torch

from analysis.timing import (
    NOISE_THRESHOLD,
    CudaEventClock,
    configure_backends,
    matmul_ceiling,
    peak_memory,
    robust_spread,
    summarize,
    time_call,
    time_once,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class FakeClock:
    """A clock that only moves when told to: `advance(dt)`; reading it costs nothing."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def advance(self, dt):
        self.now += dt


def test_summarize_gives_median_quartiles_and_cv():
    samples = [1.0, 2.0, 3.0, 4.0, 5.0]
    s = summarize(samples)
    assert s.median == 3.0
    # inclusive quartiles of 1..5 are the 2nd and 4th values
    assert (s.q1, s.q3, s.iqr) == (2.0, 4.0, 2.0)
    assert s.cv == pytest.approx(statistics.stdev(samples) / statistics.fmean(samples))
    assert (s.min, s.max, s.rounds) == (1.0, 5.0, 5)


@pytest.mark.parametrize("spread, noisy", [(0.05, False), (0.30, True)])
def test_summarize_flags_iqr_over_ten_percent_of_median(spread, noisy):
    samples = [1.0 - spread, 1.0 - spread / 2, 1.0, 1.0 + spread / 2, 1.0 + spread]
    s = summarize(samples)
    assert s.iqr == pytest.approx(spread)
    assert s.noisy is noisy
    assert (s.iqr / s.median > NOISE_THRESHOLD) is noisy


def test_summarize_rejects_empty_and_negative_samples():
    with pytest.raises(ValueError, match="at least one"):
        summarize([])
    with pytest.raises(ValueError, match="non-negative"):
        summarize([1.0, -1.0])


def test_time_call_times_only_the_rounds_not_warmup_or_setup():
    clock = FakeClock()
    durations = iter([50.0, 60.0, 0.1, 0.2, 0.3, 0.4])  # two warm-up calls, then four rounds
    calls = {"fn": 0, "setup": 0}

    def fn():
        calls["fn"] += 1
        clock.advance(next(durations))

    def setup():
        calls["setup"] += 1
        clock.advance(1000.0)  # setup time must never be inside a sample

    s = time_call(fn, "cpu", rounds=4, warmup=2, setup=setup, clock=clock)
    assert calls == {"fn": 6, "setup": 6}
    assert s.rounds == 4
    assert s.min == pytest.approx(0.1) and s.max == pytest.approx(0.4)
    assert s.median == pytest.approx((0.2 + 0.3) / 2)


def test_time_call_rejects_bad_round_counts():
    with pytest.raises(ValueError, match="rounds"):
        time_call(lambda: None, rounds=0)


class FakeEvent:
    """Stands in for torch.cuda.Event: `record` stamps the fake clock; elapsed in ms."""

    def __init__(self, clock):
        self.clock = clock
        self.t = None
        self.synced = False

    def record(self):
        self.t = self.clock()

    def synchronize(self):
        self.synced = True

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


def test_cuda_event_clock_differences_are_per_round_gpu_times():
    clock = FakeClock()
    events = []

    def factory():
        events.append(FakeEvent(clock))
        return events[-1]

    timer = CudaEventClock(factory)
    measured = []
    for gpu_seconds in [0.5, 0.25, 2.0]:
        start = timer()  # pedantic mode: timer(), target(), timer()
        clock.advance(gpu_seconds)
        end = timer()
        measured.append(end - start)
    assert measured == pytest.approx([0.5, 0.25, 2.0])
    assert all(e.synced for e in events[1::2])  # every end event synchronized before reading


def test_peak_memory_counts_one_allocation_at_its_size():
    n = 1000
    assert peak_memory(lambda: torch.empty(n, dtype=torch.float32), "cpu") == n * 4


def test_peak_memory_is_max_not_sum_of_sequential_allocations():
    a, b = 3000, 2000

    def fn():
        x = torch.ones(a)
        del x
        y = torch.ones(b, dtype=torch.float64)
        del y

    assert peak_memory(fn, "cpu") == max(a * 4, b * 8)


def test_peak_memory_sums_allocations_alive_together():
    a, b = 3000, 2000

    def fn():
        x = torch.ones(a)
        y = torch.ones(b, dtype=torch.float64)
        return x, y

    assert peak_memory(fn, "cpu") == a * 4 + b * 8


def test_peak_memory_ignores_views_in_place_ops_and_existing_tensors():
    existing = torch.ones(10_000)

    def fn():
        v = existing.view(100, 100).t()
        existing.mul_(2.0)
        return v[0]

    assert peak_memory(fn, "cpu") == 0


def test_peak_memory_sees_matmul_outputs_and_backward_gradients():
    w = torch.randn(64, 32, requires_grad=True)
    x = torch.randn(16, 64)

    def fn():
        (x @ w).sum().backward()

    peak = peak_memory(fn, "cpu")
    # the (64, 32) weight gradient is made in backward (the (16, 32) product is freed after
    # .sum(), since neither sum's nor mm's backward keeps it)
    assert peak >= 64 * 32 * 4
    assert w.grad is not None


def test_tracker_current_returns_to_zero_when_everything_is_freed():
    from analysis.trace import Tracer, trace

    tracer = Tracer(memory=True)

    def run():
        x = torch.randn(500, 500)
        y = x @ x
        del x, y

    tr = trace(run, memory=True, tracer=tracer)
    assert tracer.current == 0
    assert tr.peak_bytes == tracer.peak == 2 * 500 * 500 * 4
    assert [e.live_bytes for e in tr.ops] == [500 * 500 * 4, 2 * 500 * 500 * 4]


def test_configure_backends_sets_and_records_flags():
    threads = torch.get_num_threads()
    try:
        rec = configure_backends("cpu", threads=1, cudnn_benchmark=True, tf32=False)
        assert rec["threads"] == torch.get_num_threads() == 1
        assert rec["cudnn_benchmark"] is True and torch.backends.cudnn.benchmark is True
        assert rec["tf32_matmul"] is False and rec["tf32_cudnn"] is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        configure_backends("cpu", threads=threads)
    with pytest.raises(ValueError, match="threads"):
        configure_backends("cpu", threads=0)


def test_matmul_ceiling_rates_come_from_the_median_and_its_interval(monkeypatch):
    import analysis.timing as timing

    # nine rounds of chosen, unequal, skewed times (ms); the median, the mean and the
    # fastest round all differ: sorted 1 2 3 4 5 6 8 10 20, median 5, mean 59/9 = 6.56
    rounds_ms = iter([5.0, 1.0, 8.0, 2.0, 20.0, 3.0, 4.0, 10.0, 6.0])

    def fake_time_once(fn, device="cpu", calls=1, clock=None):
        fn()
        return next(rounds_ms) * 1e-3

    monkeypatch.setattr(timing, "time_once", fake_time_once)
    n = 10
    c = matmul_ceiling("cpu", n=n, rounds=9, warmup=1)
    assert c["flops"] == 2000  # 2 n^3
    assert (c["median_s"], c["min_s"], c["rounds"]) == pytest.approx((5e-3, 1e-3, 9))
    # inclusive quartiles of the nine: positions 2 and 6 (0-based) of the sorted times
    assert c["iqr_s"] == pytest.approx(8e-3 - 3e-3) and c["noisy"] is True
    assert c["flops_per_second"] == pytest.approx(2000 / 5e-3)  # 4e5, not 2000 / 6.56 ms
    assert c["peak_flops_per_second"] == pytest.approx(2000 / 1e-3)  # 2e6
    # n=9: the median's interval is [x_(2), x_(8)] = [2 ms, 10 ms] (P(Bin(9, 1/2) <= 1) =
    # 10/512 <= 0.025 < P(<= 2) = 46/512): the slow end bounds the rate from below
    assert c["flops_per_second_ci_low"] == pytest.approx(2000 / 10e-3)  # 2e5
    assert c["flops_per_second_ci_high"] == pytest.approx(2000 / 2e-3)  # 1e6


def test_summarize_takes_the_median_of_skewed_samples_not_the_mean():
    # one slow round among fast ones: median 2, mean (1 + 1 + 2 + 3 + 43) / 5 = 10
    s = summarize([43.0, 1.0, 2.0, 1.0, 3.0])
    assert (s.median, s.mean) == (2.0, 10.0)
    # an even count: the middle two averaged, (2 + 4) / 2 = 3; mean 107 / 4 = 26.75
    even = summarize([100.0, 2.0, 1.0, 4.0])
    assert (even.median, even.mean) == (3.0, 26.75)
    # robust_spread and plan_rounds divide by the median too: IQR of 1 1 2 3 43 is 3 - 1
    assert robust_spread([43.0, 1.0, 2.0, 1.0, 3.0]) == pytest.approx(2 / 1.349 / 2)


def test_cpu_time_once_reads_the_clock_around_all_its_calls():
    clock = FakeClock()
    assert time_once(lambda: clock.advance(0.25), "cpu", calls=3, clock=clock) == \
        pytest.approx(0.75)


def test_cuda_time_once_converts_event_milliseconds_to_seconds(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(torch.cuda, "Event", lambda enable_timing=False: FakeEvent(clock))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    # two calls of 1.5 ms each: the events measure 3 ms, time_once returns 3e-3 s
    assert time_once(lambda: clock.advance(1.5e-3), "cuda", calls=2) == pytest.approx(3e-3)


@cuda
def test_cuda_peak_memory_is_the_allocation_size():
    nbytes = 1 << 20  # a whole number of the caching allocator's 512-byte blocks
    peak = peak_memory(lambda: torch.empty(nbytes, dtype=torch.uint8, device="cuda"), "cuda")
    assert peak == nbytes


@cuda
def test_cuda_time_call_uses_events():
    a = torch.randn(512, 512, device="cuda")
    s = time_call(lambda: a @ a, "cuda", rounds=3, warmup=1)
    assert s.median > 0


# ------------------------------------------------------------ intervals, pairs, drift, plans

from analysis.timing import (  # noqa: E402
    MEDIAN_CI_FACTOR,
    bootstrap_ci,
    drift,
    iterations_for,
    load_between,
    median_ci,
    paired_ratio,
    plan_rounds,
)


@pytest.mark.parametrize("n, ranks", [
    (6, (1, 6)),    # P(Bin(6,1/2) <= 0) = 1/64 <= 0.025 < P(<= 1) = 7/64
    (9, (2, 8)),    # P(<= 1) = 10/512 = 0.0195; P(<= 2) = 46/512 = 0.0898
    (20, (6, 15)),  # P(<= 5) = 0.0207; P(<= 6) = 0.0577 (binomial tables)
])
def test_median_ci_uses_the_binomial_order_statistics(n, ranks):
    samples = [10.0 * k for k in range(n, 0, -1)]  # unsorted on purpose
    assert median_ci(samples) == (10.0 * ranks[0], 10.0 * ranks[1])


def test_median_ci_of_too_few_samples_is_the_range():
    assert median_ci([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0)  # n=5 cannot reach 95%


def test_median_ci_above_200_samples_uses_the_normal_approximation():
    # n=400: j = int((400 - 1.959964 * sqrt(400)) / 2) = int((400 - 39.199) / 2) = 180, so
    # [x_(180), x_(221)] (the exact binomial agrees: P(Bin(400, 1/2) <= 179) = 0.0201 <=
    # 0.025 < P(<= 180) = 0.0255)
    assert median_ci([float(k) for k in range(400, 0, -1)]) == (180.0, 221.0)
    # n=1000: 1.959964 * sqrt(1000) = 61.980, (1000 - 61.980) / 2 = 469.01: [x_(469), x_(532)]
    assert median_ci([float(k) for k in range(1, 1001)]) == (469.0, 532.0)
    # just above the exact branch, n=201: (201 - 1.959964 * 14.177) / 2 = 86.61 -> j = 86
    assert median_ci([float(k) for k in range(1, 202)]) == (86.0, 116.0)


# The bootstrap median of n distinct values (n odd) is the resample's ((n + 1) / 2)-th order
# statistic, so P(median <= x_(j)) = P(Bin(n, j / n) >= (n + 1) / 2): the exact bootstrap
# distribution. For n = 17 (median = 9th of the resample) the binomial tails are
#   j = 4: 0.0082   j = 5: 0.0356   j = 6: 0.1041
# so the 2.5% point is x_(5) (0.0082 < 0.025 < 0.0356) and the 5% point x_(6); by symmetry
# (P(median <= x_(12)) = 1 - 0.0356, P(<= x_(13)) = 1 - 0.0082) the 97.5% point is x_(13)
# and the 95% point x_(12). With 20000 resamples a share near 0.0356 has a standard error
# of 0.0013: each boundary is 8 or more of them away (and seeds 0..29 all agree).
SQUARES = [float(k * k) for k in (9, 3, 14, 1, 17, 6, 11, 2, 16, 8, 5, 13, 10, 4, 15, 7, 12)]


def test_bootstrap_ci_of_the_median_is_its_exact_2_5_and_97_5_percent_points():
    assert sorted(SQUARES) == [float(k * k) for k in range(1, 18)]  # x_(j) = j^2
    assert bootstrap_ci(SQUARES, n_boot=20000) == (5.0**2, 13.0**2)
    # asked for 90%, the 5% and 95% points instead
    assert bootstrap_ci(SQUARES, level=0.90, n_boot=20000) == (6.0**2, 12.0**2)
    assert bootstrap_ci([4.0] * 7) == (4.0, 4.0)


def test_bootstrap_ci_of_a_two_valued_sample_follows_the_binomial():
    # seven 1.0s and two 3.0s: a resample's median is 3.0 when at least 5 of its 9 draws are
    # 3.0s, P = sum_{i>=5} C(9, i) 2^i 7^(9-i) / 9^9 = (126 * 76832 + 84 * 21952 + 36 * 6272
    # + 9 * 1792 + 512) / 387420489 = 11767232 / 387420489 = 0.0304: above 2.5% (the
    # 97.5% point is 3.0) but below 5% (a 90% interval's upper end stays at 1.0)
    xs = [1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0]
    assert bootstrap_ci(xs, n_boot=100_000) == (1.0, 3.0)
    assert bootstrap_ci(xs, level=0.90, n_boot=100_000) == (1.0, 1.0)


def test_paired_ratio_cancels_drift_common_to_both_sides():
    # the machine slows down 3x over the run; A is always exactly twice B within a pair
    b = [1e-3 * (1 + 2 * i / 29) for i in range(30)]
    a = [2 * x for x in b]
    est = paired_ratio(a, b)
    assert (est.ratio, est.ci_low, est.ci_high, est.pairs) == (2.0, 2.0, 2.0, 30)
    # unpaired, the same drift makes the ratio of two halves' medians wrong by ~1.6x
    assert statistics.median(a[15:]) / statistics.median(b[:15]) > 3


def test_paired_ratio_rejects_unequal_or_empty_samples():
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_ratio([1.0, 2.0], [1.0])


def test_drift_flags_quarters_whose_median_intervals_do_not_overlap():
    steady = [1.0, 1.1, 0.9, 1.0] * 6
    assert drift(steady) == {"drift_rel": 0.0, "drifted": False}
    slowing = [1.0, 1.02, 0.98] * 4 + [1.5, 1.52, 1.48] * 4
    out = drift(slowing)
    assert out["drifted"] is True
    assert out["drift_rel"] == pytest.approx((1.5 - 1.0) / 1.25)
    noisy_but_level = [1.0, 2.0] * 12  # wide spread, no trend: spread is not drift
    assert drift(noisy_but_level)["drifted"] is False
    assert drift([1.0] * 11) == {"drift_rel": None, "drifted": False}  # too few rounds


def test_robust_spread_is_iqr_over_1349_of_the_median():
    xs = [8.0, 9.0, 10.0, 11.0, 12.0]  # inclusive quartiles 9 and 11: IQR 2, median 10
    assert robust_spread(xs) == pytest.approx(2 / 1.349 / 10)


def test_plan_rounds_from_the_pilot_spread_and_budget():
    pilot = [8.0e-3, 9.0e-3, 10.0e-3, 11.0e-3, 12.0e-3]  # spread 0.1483, 10 ms per round
    c = 2 / 1.349 / 10
    needed = int((MEDIAN_CI_FACTOR * c / 0.02) ** 2) + 1  # about 332 rounds for +-2%
    plan = plan_rounds(pilot, 1, min_rounds=6, budget_s=100.0)
    assert (plan.rounds, plan.needed_rounds, plan.budget_limited) == (needed, needed, False)
    short = plan_rounds(pilot, 1, min_rounds=6, budget_s=1.0)  # 1 s affords 100 rounds
    assert (short.rounds, short.budget_limited) == (100, True)
    tiny = plan_rounds(pilot, 1, min_rounds=6, budget_s=0.01)  # the minimum always runs
    assert tiny.rounds == 6
    calm = plan_rounds([1e-3] * 8, 1, min_rounds=6, budget_s=1.0)  # no spread: the minimum
    assert calm.rounds == 6 and not calm.budget_limited


def test_iterations_make_a_round_long_enough_for_the_clock():
    assert iterations_for(1e-4, 1e-3) == 10
    assert iterations_for(3e-4, 1e-3) == 4
    assert iterations_for(5e-3, 1e-3) == 1


def test_load_between_gives_the_stolen_share_of_cpu_time():
    before = {"loadavg_1m": 0.5, "jiffies_total": 1000, "jiffies_steal": 10}
    after = {"loadavg_1m": 1.5, "jiffies_total": 1400, "jiffies_steal": 30}
    assert load_between(before, after) == {"load_before": 0.5, "load_after": 1.5,
                                           "steal_fraction": 20 / 400}


def test_round_costs_measured_apart_equal_those_after_the_timed_rounds():
    """The bench measures FLOPs and peak memory of each workload before timing, on a fresh
    copy after two calls: they must equal what the same copy gives after many calls (the
    state its timed rounds leave), for every variant and phase (tiny sizes)."""
    from analysis.calibrate import tiny_workloads
    from analysis.timing import prepared_costs, round_costs
    from analysis.workloads import prepare

    works = tiny_workloads()
    assert {w.phase for w in works} >= {"forward", "train", "generate"}
    for w in works:
        p = prepare(w)
        for _ in range(7):  # a pilot and a few timed rounds
            p.fn()
        after = prepared_costs(p)
        assert round_costs(w) == after, w.id
        assert after["peak"] > 0 and after["torch"] > 0


PAGE_FAULT_PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
if {pin}:
    from analysis.timing import pin_malloc
    print(pin_malloc(), file=sys.stderr)
block = bytearray(64 * 2**20)  # 64 MiB, zero-filled: every page touched
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = bytearray(64 * 2**20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc only")
def test_pinned_malloc_serves_a_second_large_block_without_page_faults():
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)

    def faults(pin: bool) -> int:
        out = subprocess.run([sys.executable, "-c", PAGE_FAULT_PROBE.format(root=root, pin=pin)],
                             capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    # 64 MiB is 16,384 pages of 4 KiB: by default glibc maps the first block, unmaps it,
    # then serves the second from fresh heap pages (each faults once); pinned, the first
    # block stays in the heap and the second reuses its pages
    assert faults(pin=False) > 8000
    assert faults(pin=True) < 1000
