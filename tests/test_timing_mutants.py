"""Tests aimed at analysis/timing.py's mutation survivors (issue 22): messages, constants,
boundaries of median_ci and plan_rounds, machine_load, recorded_environment. Every expected
value is derived by hand in a comment or from a second method (NormalDist, math.comb)."""

import io
import math
import statistics
import warnings

import pytest

import analysis.timing as timing
from analysis.timing import (
    MEDIAN_CI_FACTOR,
    WARM_CALLS,
    Z95,
    CudaEventClock,
    bootstrap_ci,
    drift,
    iterations_for,
    load_between,
    machine_load,
    median_ci,
    paired_ratio,
    plan_rounds,
    recorded_environment,
    summarize,
    time_call,
    time_once,
)

# ------------------------------------------------------------------------------ constants


def test_z95_and_the_median_factor_are_the_normal_quantile_and_sqrt_pi_over_2():
    z = statistics.NormalDist().inv_cdf(0.975)  # 1.9599639845...
    assert Z95 == pytest.approx(z, abs=1e-6)
    assert MEDIAN_CI_FACTOR == pytest.approx(z * math.sqrt(math.pi / 2), rel=1e-6)


def test_round_costs_makes_exactly_warm_calls_calls_before_measuring(monkeypatch):
    import analysis.workloads as workloads

    calls = []

    class P:
        def fn(self):
            calls.append("call")

    monkeypatch.setattr(workloads, "prepare", lambda w, d: P())
    monkeypatch.setattr(
        timing, "prepared_costs", lambda p, d: {"calls_before": len(calls), "device": d}
    )
    assert WARM_CALLS == 2  # Adam's moments exist after the first step, caches after two
    assert timing.round_costs("w", "cpu") == {"calls_before": 2, "device": "cpu"}


# ------------------------------------------------------------------------------ messages


def test_error_messages_name_the_bad_values():
    with pytest.raises(ValueError, match=r"^summarize needs at least one sample$"):
        summarize([])
    with pytest.raises(ValueError, match=r"^timing samples must be non-negative$"):
        summarize([1.0, -0.5])
    with pytest.raises(ValueError, match=r"^rounds must be >= 1 and warmup >= 0, got 0, 2$"):
        time_call(lambda: None, rounds=0)
    with pytest.raises(ValueError, match=r"^rounds must be >= 1 and warmup >= 0, got 3, -1$"):
        time_call(lambda: None, rounds=3, warmup=-1)
    with pytest.raises(ValueError, match=r"^threads must be >= 1, got 0$"):
        timing.configure_backends("cpu", threads=0)
    with pytest.raises(ValueError, match=r"^median_ci needs at least one sample$"):
        median_ci([])
    with pytest.raises(ValueError, match=r"^bootstrap_ci needs at least one sample$"):
        bootstrap_ci([])
    with pytest.raises(
        ValueError,
        match=r"^paired_ratio needs equal, non-empty samples; "
        r"got 2 and 1$",
    ):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"got 0 and 0$"):
        paired_ratio([], [])
    with pytest.raises(ValueError, match=r"^paired_ratio needs positive B samples$"):
        paired_ratio([1.0, 2.0], [1.0, 0.0])
    for kw in (
        {"min_rounds": 0, "budget_s": 1.0},
        {"min_rounds": 1, "budget_s": 0.0},
        {"min_rounds": 1, "budget_s": 1.0, "target": 0.0},
    ):
        with pytest.raises(
            ValueError,
            match=r"^min_rounds, budget_s and target must be "
            r"positive$",
        ):
            plan_rounds([1.0, 1.0], 1, **kw)


def test_time_call_accepts_the_smallest_legal_counts():
    clock = [0.0]

    def tick():
        clock[0] += 1.0
        return clock[0]

    stats = time_call(lambda: None, rounds=1, warmup=0, clock=tick)  # each round: 2 ticks
    assert (stats.rounds, stats.median) == (1, 1.0)


# ------------------------------------------------------------------------------ median_ci


def _exact_ranks(n, level):
    """Largest j <= n/2 with 2 P(Bin(n, 1/2) <= j - 1) <= 1 - level, from cumulative sums."""
    best, cum = 0, 0
    for j in range(1, n // 2 + 1):
        cum += math.comb(n, j - 1)  # cum = sum_{i < j} C(n, i)
        if 2 * cum <= (1 - level) * 2**n:
            best = j
    return best


@pytest.mark.parametrize("level", [0.90, 0.95, 0.99])
def test_median_ci_matches_the_exact_binomial_ranks_up_to_200(level):
    for n in list(range(1, 41)) + list(range(190, 201)):
        xs = [float(k) for k in range(n, 0, -1)]
        j = _exact_ranks(n, level)
        expected = (1.0, float(n)) if j < 1 else (float(j), float(n + 1 - j))
        assert median_ci(xs, level=level) == expected, (n, level)


def test_median_ci_small_samples_by_hand():
    assert median_ci([7.0]) == (7.0, 7.0)
    assert median_ci([2.0, 1.0]) == (1.0, 2.0)
    # n=10 at 99%: P(Bin(10,1/2) <= 0) = 1/1024 <= 0.005 < P(<= 1) = 11/1024: j = 1, the range
    assert median_ci([float(k) for k in range(1, 11)], level=0.99) == (1.0, 10.0)
    # n=10 at 90%: P(<= 1) = 11/1024 = 0.011 <= 0.05 < P(<= 2) = 56/1024: j = 2
    assert median_ci([float(k) for k in range(1, 11)], level=0.90) == (2.0, 9.0)
    # n=6 at 90%: P(<= 0) = 1/64 = 0.016 <= 0.05 < P(<= 1) = 7/64 = 0.11: j = 1, x_(1), x_(6)
    assert median_ci([float(k) for k in range(1, 7)], level=0.90) == (1.0, 6.0)


def test_median_ci_at_200_is_exact_and_above_it_normal():
    # n = 200 exact: j = _exact_ranks; the normal rule would give int((200 - 1.96 * 14.142)
    # / 2) = int(86.14) = 86; the exact tables give P(Bin(200,1/2) <= 85) = 0.0200 <= 0.025
    # < P(<= 86) = 0.0284, so j = 86 too: both agree, and j is [x_(86), x_(115)]
    assert _exact_ranks(200, 0.95) == 86
    assert median_ci([float(k) for k in range(1, 201)]) == (86.0, 115.0)
    # n = 201: exact j = 87 (P(<= 86) = 0.024), the normal rule 86: the normal rule is used
    assert _exact_ranks(201, 0.95) == 87
    assert median_ci([float(k) for k in range(1, 202)]) == (86.0, 116.0)
    # n = 10000: (10000 - 1.959964 * 100) / 2 = 4902.0018 -> j = 4902: [x_(4902), x_(5099)]
    assert median_ci([float(k) for k in range(1, 10001)]) == (4902.0, 5099.0)


# ------------------------------------------------------------------------------ plan_rounds


def test_plan_rounds_records_the_pilot_and_honours_a_given_spread():
    pilot = [0.5, 0.5, 0.5, 0.5]  # median 0.5 s, no spread of its own
    # spread 0.1 at +-2%: (MEDIAN_CI_FACTOR * 0.1 / 0.02)^2 = (2.45645 * 5)^2 = 150.85 -> 151
    plan = plan_rounds(pilot, 7, min_rounds=3, budget_s=1000.0, spread=0.1)
    assert plan.to_dict() == {
        "rounds": 151,
        "iterations": 7,
        "pilot_round_s": 0.5,
        "pilot_spread": 0.1,
        "needed_rounds": 151,
        "budget_limited": False,
    }
    # target 4%: a quarter of the rounds, (2.45645 * 2.5)^2 = 37.71 -> 38
    assert plan_rounds(pilot, 1, 3, 1000.0, target=0.04, spread=0.1).rounds == 38
    # 10 s at 0.5 s a round affords exactly 20 rounds
    short = plan_rounds(pilot, 1, 3, 10.0, spread=0.1)
    assert (short.rounds, short.needed_rounds, short.budget_limited) == (20, 151, True)
    # needed exactly affordable: not limited. spread 0 -> needed = max(1, 0 + 1) = 1
    calm = plan_rounds(pilot, 1, 1, 0.5)
    assert (calm.rounds, calm.needed_rounds, calm.budget_limited) == (1, 1, False)
    # min_rounds above both needed and affordable: the minimum runs, and needed (1) is not
    # more than max(affordable 1, min 5): not budget-limited
    assert plan_rounds(pilot, 1, 5, 0.5).to_dict()["rounds"] == 5
    assert plan_rounds(pilot, 1, 5, 0.5).budget_limited is False


def test_plan_rounds_budget_limited_only_when_needed_exceeds_what_runs():
    pilot = [1.0, 1.0, 1.0]
    # needed 151 (spread 0.1); budget 200 s affords 200: 151 runs
    assert plan_rounds(pilot, 1, 3, 200.0, spread=0.1).budget_limited is False
    # budget 151 s affords 151 = needed: not limited; 150 s: limited
    assert plan_rounds(pilot, 1, 3, 151.0, spread=0.1).budget_limited is False
    p = plan_rounds(pilot, 1, 3, 150.0, spread=0.1)
    assert (p.rounds, p.budget_limited) == (150, True)
    # min_rounds 151 covers needed even with a 1 s budget: runs 151, not limited
    m = plan_rounds(pilot, 1, 151, 1.0, spread=0.1)
    assert (m.rounds, m.budget_limited) == (151, False)
    m = plan_rounds(pilot, 1, 150, 1.0, spread=0.1)
    assert (m.rounds, m.budget_limited) == (150, True)


def test_plan_rounds_with_a_zero_time_pilot_runs_what_is_needed():
    plan = plan_rounds([0.0, 0.0, 0.0], 1, 2, 1.0, spread=0.1)  # affordable = needed = 151
    assert (plan.rounds, plan.needed_rounds, plan.budget_limited) == (151, 151, False)


# ------------------------------------------------------------------------------ small helpers


def test_iterations_for_boundaries():
    assert iterations_for(0.0, 1e-3) == 1000
    assert iterations_for(-1.0, 1e-3) == 1000
    assert iterations_for(0.25, 1.0) == 4  # exactly 4 calls make 1 s: no fifth
    assert iterations_for(0.3, 1.0) == 4  # 3.33 rounds up
    assert iterations_for(2.0, 1.0) == 1
    assert iterations_for(1.0, 0.0) == 1  # never fewer than one call


def test_load_between_without_proc_or_elapsed_time():
    empty = {"loadavg_1m": None, "jiffies_total": None, "jiffies_steal": None}
    full = {"loadavg_1m": 2.0, "jiffies_total": 100, "jiffies_steal": 5}
    assert load_between(empty, full) == {
        "load_before": None,
        "load_after": 2.0,
        "steal_fraction": None,
    }
    assert load_between(full, empty)["steal_fraction"] is None
    assert load_between({}, {}) == {"load_before": None, "load_after": None, "steal_fraction": None}
    assert load_between(full, full)["steal_fraction"] == 0.0  # no jiffies elapsed


def _fake_proc(monkeypatch, files):
    def fake_open(path, encoding=None):
        assert encoding == "ascii"
        if path not in files:
            raise FileNotFoundError(path)
        return io.StringIO(files[path])

    monkeypatch.setattr(timing, "open", fake_open, raising=False)


def test_machine_load_reads_loadavg_and_the_first_eight_cpu_fields(monkeypatch):
    _fake_proc(
        monkeypatch,
        {
            "/proc/loadavg": "0.52 0.40 0.30 1/123 4567\n",
            # user nice system idle iowait irq softirq steal guest guest_nice
            "/proc/stat": "cpu  10 20 30 40 50 60 70 80 90 100\ncpu0 1 1 1 1 1 1 1 1 1 1\n",
        },
    )
    # total = 10 + 20 + ... + 80 = 360 (guest time is already in user), steal = 80
    assert machine_load() == {"loadavg_1m": 0.52, "jiffies_total": 360, "jiffies_steal": 80}


def test_machine_load_old_kernel_without_a_steal_field(monkeypatch):
    _fake_proc(monkeypatch, {"/proc/loadavg": "1.5 1 1 1/1 1\n", "/proc/stat": "cpu 1 2 3 4\n"})
    assert machine_load() == {"loadavg_1m": 1.5, "jiffies_total": 10, "jiffies_steal": 0}


def test_machine_load_without_proc_or_with_garbage(monkeypatch):
    _fake_proc(monkeypatch, {})
    assert machine_load() == {"loadavg_1m": None, "jiffies_total": None, "jiffies_steal": None}
    _fake_proc(monkeypatch, {"/proc/loadavg": "2.5 x\n", "/proc/stat": "cpu a b\n"})
    assert machine_load() == {"loadavg_1m": 2.5, "jiffies_total": None, "jiffies_steal": None}
    _fake_proc(monkeypatch, {"/proc/loadavg": "\n"})
    assert machine_load()["loadavg_1m"] is None


def test_recorded_environment_records_each_distinct_warning_once(monkeypatch):
    import analysis.env as env

    def noisy(device):
        warnings.warn("b flag is deprecated", UserWarning, stacklevel=1)
        warnings.warn("a flag is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("b flag is deprecated", UserWarning, stacklevel=1)
        return {"device": str(device)}

    monkeypatch.setattr(env, "environment", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none escapes
        out = recorded_environment("cpu")
    assert out == {"device": "cpu", "env_warnings": "a flag is deprecated; b flag is deprecated"}
    monkeypatch.setattr(env, "environment", lambda device: {"device": "meta"})
    assert recorded_environment("meta") == {"device": "meta"}


def test_configure_backends_records_backend_warnings_and_the_malloc_choice(monkeypatch):
    import torch

    flags = timing.configure_backends("cpu", malloc=False)
    assert flags["malloc"] == "unchanged"
    assert (flags["cudnn_benchmark"], flags["tf32_matmul"], flags["tf32_cudnn"]) == (
        False,
        False,
        False,
    )
    try:
        on = timing.configure_backends(torch.device("cpu"), cudnn_benchmark=1, tf32=1, malloc=False)
        assert (on["cudnn_benchmark"], on["tf32_matmul"], on["tf32_cudnn"]) == (True, True, True)
        assert on["device"] == "cpu"
    finally:
        timing.configure_backends("cpu", malloc=False)


def test_pin_malloc_reports_the_threshold_it_pinned():
    import platform

    out = timing.pin_malloc()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert out == "glibc mmap and trim thresholds pinned at 1073741824 bytes"  # 2**30
    else:
        assert out == "unchanged (not glibc)"


# ------------------------------------------------------------------------------ summaries


def test_summarize_of_one_sample_and_of_zeros():
    s = summarize([3.0])
    assert (s.median, s.q1, s.q3, s.iqr, s.stdev, s.cv, s.rounds, s.noisy) == (
        3.0,
        3.0,
        3.0,
        0.0,
        0.0,
        0.0,
        1,
        False,
    )
    z = summarize([0.0, 0.0, 0.0])
    assert (z.cv, z.noisy) == (0.0, False)
    # IQR / median exactly at the threshold is not noisy: [9, 10, 11]: inclusive q1 9.5,
    # q3 10.5, IQR 1 = 10% of 10
    assert summarize([9.0, 10.0, 11.0], noise_threshold=0.1).noisy is False
    assert summarize([9.0, 10.0, 11.0], noise_threshold=0.09).noisy is True
    assert summarize([9.0, 10.0, 11.0]).to_dict()["iqr"] == 1.0


def test_drift_window_is_a_quarter_with_at_least_six():
    # 12 rounds: k = 6, two halves 1.0 and 2.0 (each quarter's CI is its range): drifted
    xs = [1.0] * 6 + [2.0] * 6
    assert drift(xs) == {"drift_rel": (2.0 - 1.0) / 1.5, "drifted": True}
    # 40 rounds: k = 10; the first 10 are 1.0, the last 10 are 3.0, the middle 2.0
    ys = [1.0] * 10 + [2.0] * 20 + [3.0] * 10
    assert drift(ys) == {"drift_rel": (3.0 - 1.0) / 2.0, "drifted": True}
    # a speed-up is drift too (last below first)
    assert drift(list(reversed(ys)))["drifted"] is True
    assert drift([0.0] * 12) == {"drift_rel": 0.0, "drifted": False}
    # 13 rounds: k = 6, quarters are the first and last 6 (the middle one is in neither)
    assert drift([1.0] * 6 + [9.0] + [1.0] * 6) == {"drift_rel": 0.0, "drifted": False}


def test_paired_ratio_is_the_median_of_pair_ratios():
    est = paired_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 1.0])  # ratios 2, 3, 4: median 3
    assert (est.ratio, est.pairs) == (3.0, 3)
    assert est.to_dict()["ratio"] == 3.0
    assert 2.0 <= est.ci_low <= est.ci_high <= 4.0


def test_time_once_calls_fn_calls_times_between_two_clock_reads():
    reads, calls = [], []

    def clock():
        reads.append(len(calls))
        return float(len(reads))

    assert time_once(lambda: calls.append(1), calls=3, clock=clock) == 1.0
    assert reads == [0, 3]


def test_cuda_event_clock_names_itself_and_starts_at_zero():
    timer = CudaEventClock(lambda: None)
    assert timer.__name__ == "cuda_event_clock"


class _FakeLibc:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.answer


def _glibc(monkeypatch, libc):
    import ctypes
    import platform

    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.35"))
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)


def test_pin_malloc_sets_mmap_then_trim_threshold_through_mallopt(monkeypatch):
    libc = _FakeLibc(1)
    _glibc(monkeypatch, libc)
    # glibc's malloc.h: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3
    assert timing.pin_malloc(4096) == "glibc mmap and trim thresholds pinned at 4096 bytes"
    assert libc.calls == [(-3, 4096), (-1, 4096)]
    libc.calls.clear()
    timing.pin_malloc()
    assert libc.calls == [(-3, 2**30), (-1, 2**30)]


def test_pin_malloc_says_when_nothing_changed(monkeypatch):
    import ctypes
    import platform

    refusing = _FakeLibc(0)
    _glibc(monkeypatch, refusing)
    assert timing.pin_malloc(4096) == "unchanged (mallopt refused)"
    assert refusing.calls == [(-3, 4096)]  # the second is not tried after a refusal

    def missing(name):
        raise OSError(name)

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert timing.pin_malloc() == "unchanged (mallopt not found)"
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # no mallopt attribute
    assert timing.pin_malloc() == "unchanged (mallopt not found)"
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert timing.pin_malloc() == "unchanged (not glibc)"
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.35"))
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert timing.pin_malloc() == "unchanged (not glibc)"


def test_configure_backends_sets_the_thread_count_it_records():
    import torch

    before = torch.get_num_threads()
    try:
        assert timing.configure_backends("cpu", threads=1, malloc=False)["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_drift_window_size_and_small_medians():
    # 40 rounds: k = 40 // 4 = 10. The first 10 are five 1s and five 5s (median 3), the last
    # 10 are 3s: no drift. (A window of 8 would see five 1s and three 5s, median 1.)
    ys = [1.0] * 5 + [5.0] * 5 + [2.0] * 20 + [3.0] * 10
    assert drift(ys)["drift_rel"] == 0.0
    # medians below 1 still give a relative drift: (1.0 - 0.5) / 0.75
    assert drift([0.5] * 6 + [1.0] * 6)["drift_rel"] == pytest.approx(2 / 3)


def test_robust_spread_of_zero_times_is_zero():
    assert timing.robust_spread([0.0, 0.0, 0.0]) == 0.0


def test_machine_load_with_exactly_seven_or_eight_cpu_fields(monkeypatch):
    _fake_proc(monkeypatch, {"/proc/loadavg": "1 1 1\n", "/proc/stat": "cpu 1 2 3 4 5 6 7\n"})
    assert machine_load()["jiffies_total"] == 28 and machine_load()["jiffies_steal"] == 0
    _fake_proc(monkeypatch, {"/proc/loadavg": "1 1 1\n", "/proc/stat": "cpu 1 2 3 4 5 6 7 8\n"})
    assert machine_load()["jiffies_total"] == 36 and machine_load()["jiffies_steal"] == 8


def test_load_between_over_a_single_jiffy():
    before = {"loadavg_1m": 1.0, "jiffies_total": 10, "jiffies_steal": 0}
    after = {"loadavg_1m": 1.0, "jiffies_total": 11, "jiffies_steal": 1}
    assert load_between(before, after)["steal_fraction"] == 1.0  # 1 stolen of 1


def test_cuda_event_clock_first_read_is_zero():
    events = []

    class Ev:
        def record(self):
            events.append("record")

    assert CudaEventClock(lambda: Ev())() == 0.0  # start of the first round: nothing yet
    assert events == ["record"]


def test_recorded_environment_defaults_to_the_cpu(monkeypatch):
    import analysis.env as env

    monkeypatch.setattr(env, "environment", lambda device: {"device": device})
    assert recorded_environment() == {"device": "cpu"}


def test_matmul_ceiling_defaults_cpu_2048_float32_ten_rounds_after_two(monkeypatch):
    import torch

    made, fn_calls, timed = [], [], []

    def fake_randn(*shape, device=None, dtype=None):
        made.append((shape, torch.device(device), dtype))
        return torch.ones(1, 1)  # a 1x1 stand-in: nothing of 2048^2 is allocated

    def fake_time_once(fn, device="cpu", calls=1, clock=None):
        timed.append(torch.device(device))
        return 1e-3 * len(timed)  # 1, 2, ..., 10 ms

    monkeypatch.setattr(torch, "randn", fake_randn)
    monkeypatch.setattr(timing, "time_once", fake_time_once)
    monkeypatch.setattr(timing, "synchronize", lambda device: fn_calls.append("sync"))
    c = timing.matmul_ceiling()
    cpu = torch.device("cpu")
    assert made == [((2048, 2048), cpu, torch.float32)] * 2
    assert timed == [cpu] * 10  # ten timed rounds by default
    assert (c["n"], c["dtype"], c["flops"], c["rounds"]) == (2048, "float32", 2 * 2048**3, 10)
    assert c["median_s"] == pytest.approx(5.5e-3)  # median of 1..10 ms


# ------------------------------------------- fake CUDA events, defaults, seeds (2026-12-02)


class _TimingEvent:
    """torch.cuda.Event stand-in that refuses to time unless built with enable_timing=True
    (as CUDA does: elapsed_time on an event without timing raises). Each record() is one
    tick later than the last; elapsed_time is in milliseconds, 4 ms a tick."""

    made: list = []
    ticks = 0

    def __init__(self, enable_timing=False):
        self.enable_timing = enable_timing
        self.t = None
        _TimingEvent.made.append(self)

    def record(self):
        _TimingEvent.ticks += 1
        self.t = _TimingEvent.ticks

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        if not (self.enable_timing is True and end.enable_timing is True):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'")
        return 4.0 * (end.t - self.t)


@pytest.fixture
def fake_cuda(monkeypatch):
    import torch

    _TimingEvent.made, _TimingEvent.ticks = [], 0
    monkeypatch.setattr(torch.cuda, "Event", _TimingEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    return _TimingEvent


def test_cuda_timers_make_their_events_with_timing_enabled(fake_cuda):
    # time_once on "cuda": a start and an end event recorded one tick apart: 4 ms = 4e-3 s
    assert time_once(lambda: None, "cuda") == pytest.approx(4e-3)
    # CudaEventClock with its default factory: start then end event, 4 ms per round
    clock = CudaEventClock()
    assert clock() == 0.0
    assert clock() == pytest.approx(4e-3)
    assert [e.enable_timing for e in fake_cuda.made] == [True] * 4


def test_time_call_on_cuda_times_rounds_with_events_not_the_clock(fake_cuda):
    def clock():
        raise AssertionError("the CPU clock is not read on CUDA")

    # each round: start and end events recorded one tick apart, 4 ms
    stats = time_call(lambda: None, "cuda", rounds=3, warmup=0, clock=clock)
    assert (stats.rounds, stats.median) == (3, pytest.approx(4e-3))


def test_time_call_defaults_to_ten_rounds_after_two_warmups():
    calls = []
    ticks = iter(range(100))
    stats = time_call(lambda: calls.append(1), clock=lambda: float(next(ticks)))
    assert stats.rounds == 10 and len(calls) == 12  # 2 warm-up + 10 timed


def test_summarize_of_two_samples_and_a_mean_below_one():
    # two samples, inclusive quartiles by linear interpolation between them: q1 at 1/4 of
    # the way, q3 at 3/4: [0.25, 0.75] -> 0.375 and 0.625; stdev |0.75-0.25|/sqrt(2)
    s = summarize([0.75, 0.25])
    assert (s.q1, s.q3, s.median, s.mean) == pytest.approx((0.375, 0.625, 0.5, 0.5))
    assert s.stdev == pytest.approx(0.5 / math.sqrt(2))
    assert s.cv == pytest.approx(0.5 / math.sqrt(2) / 0.5)  # 0.707: a mean below 1 second


@pytest.mark.parametrize("level, ranks", [(0.625, (2, 4)), (0.6, (2, 4)), (0.626, (1, 5))])
def test_median_ci_at_a_level_met_exactly_by_an_inner_pair(level, ranks):
    # n = 5: [x_(2), x_(4)] covers the median with 1 - 2 P(Bin(5, 1/2) <= 1) = 1 - 2 * 6/32
    # = 0.625 exactly (representable in binary), so it is the interval at level <= 0.625;
    # above it only the range [x_(1), x_(5)] (coverage 1 - 2/32) is left
    xs = [50.0, 10.0, 40.0, 20.0, 30.0]
    assert median_ci(xs, level=level) == (10.0 * ranks[0], 10.0 * ranks[1])


def test_bootstrap_ci_is_seeded_and_resamples_2000_times():
    xs = [1.0 + 0.37 * i + (0.05 * i) ** 2 for i in range(40)]  # skewed, all distinct
    assert bootstrap_ci(xs) == bootstrap_ci(xs) == bootstrap_ci(xs, n_boot=2000, seed=0)

    # the median's bootstrap values are data points (or midpoints), so its percentiles
    # rarely move with the draws; the mean's take a new value for nearly every resample
    def mean(a, axis):
        return a.mean(axis=axis)

    default = bootstrap_ci(xs, statistic=mean)
    assert default == bootstrap_ci(xs, statistic=mean, n_boot=2000, seed=0)
    assert bootstrap_ci(xs, statistic=mean, seed=1) != default
    assert bootstrap_ci(xs, statistic=mean, n_boot=2001) != default


def test_paired_ratio_interval_is_the_seeded_bootstrap_of_the_pair_ratios():
    a = [2.0 + 0.1 * i + 0.01 * i * i for i in range(30)]
    b = [1.0 + 0.02 * i for i in range(30)]
    ratios = [x / y for x, y in zip(a, b)]
    for seed in (0, 7):
        est = paired_ratio(a, b, seed=seed)
        assert (est.ci_low, est.ci_high) == bootstrap_ci(ratios, seed=seed)
    assert paired_ratio(a, b) == paired_ratio(a, b, seed=0)


def test_configure_backends_defaults_cpu_no_benchmark_no_tf32_pinned_malloc():
    flags = timing.configure_backends()
    try:
        assert flags["device"] == "cpu"
        assert (flags["cudnn_benchmark"], flags["tf32_matmul"], flags["tf32_cudnn"]) == (
            False,
            False,
            False,
        )
        assert flags["malloc"] == timing.pin_malloc() != "unchanged"
    finally:
        timing.configure_backends("cpu", malloc=False)


def test_configure_backends_records_each_flag_warning_once_sorted(monkeypatch):
    import torch

    class Warns:
        """A backend whose flags warn when set (as newer torch builds may)."""

        def __init__(self, message):
            self.message = message
            self._v = {}

        def __setattr__(self, name, value):
            if name in ("benchmark", "allow_tf32"):
                warnings.warn(self.message, UserWarning, stacklevel=2)
                self._v[name] = value
            else:
                object.__setattr__(self, name, value)

        def __getattr__(self, name):
            return self.__dict__["_v"][name]

    class Cuda:
        matmul = Warns("b: matmul flag")

    monkeypatch.setattr(torch.backends, "cudnn", Warns("a: cudnn flag"))
    monkeypatch.setattr(torch.backends, "cuda", Cuda())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes: every warning is recorded
        flags = timing.configure_backends("cpu", malloc=False)
    # cudnn warns twice (benchmark, allow_tf32), matmul once: two distinct, sorted, "; "
    assert flags["backend_warnings"] == "a: cudnn flag; b: matmul flag"
    assert (flags["cudnn_benchmark"], flags["tf32_matmul"], flags["tf32_cudnn"]) == (
        False,
        False,
        False,
    )


def test_matmul_ceiling_on_cuda_times_a_times_b_at_8192_with_its_warmups(monkeypatch):
    import torch

    made, timed, products = [], [], []

    def fake_randn(*shape, device=None, dtype=None):
        made.append((shape, torch.device(device)))
        return torch.full((1, 1), float(len(made) + 1))  # 2, then 3

    def fake_time_once(fn, device="cpu", calls=1, clock=None):
        timed.append(torch.device(device))
        products.append(fn())
        return 1e-3

    calls = []
    monkeypatch.setattr(torch, "randn", fake_randn)
    monkeypatch.setattr(timing, "time_once", fake_time_once)
    monkeypatch.setattr(timing, "synchronize", lambda device: calls.append("sync"))
    c = timing.matmul_ceiling("cuda", rounds=3, warmup=5)
    cuda = torch.device("cuda")
    assert made == [((8192, 8192), cuda)] * 2 and c["n"] == 8192
    assert timed == [cuda] * 3
    assert [p.item() for p in products] == [6.0] * 3  # a @ b = 2 * 3, not nothing
    assert c["estimator"].startswith("median")
    # warm-up calls run fn outside time_once: count them through the product's inputs
    warm = []
    monkeypatch.setattr(timing, "time_once", lambda fn, *a, **k: 1e-3)
    monkeypatch.setattr(torch, "randn", lambda *s, **k: _Counted(warm))
    timing.matmul_ceiling("cpu", n=4, rounds=3, warmup=5)
    assert len(warm) == 5
    warm.clear()
    timing.matmul_ceiling("cpu", n=4, rounds=3)
    assert len(warm) == 2  # the default: two warm-up calls


class _Counted:
    """A matmul operand that counts the products it takes part in (as the left operand)."""

    def __init__(self, log):
        self.log = log

    def __matmul__(self, other):
        self.log.append(1)
        return 0.0


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 95])
def test_interval_functions_reject_a_level_outside_zero_one(level):
    with pytest.raises(ValueError, match=r"between 0 and 1 \(exclusive\), got "):
        median_ci([1.0, 2.0, 3.0], level=level)
    with pytest.raises(ValueError, match=r"between 0 and 1 \(exclusive\), got "):
        bootstrap_ci([1.0, 2.0, 3.0], level=level)


class _FakeAllocator:
    """torch.cuda's memory counters for one device: 100 bytes held before, a peak of 350."""

    def __init__(self, monkeypatch):
        import torch

        self.calls = []
        for name, value in (
            ("reset_peak_memory_stats", None),
            ("memory_allocated", 100),
            ("max_memory_allocated", 350),
            ("synchronize", None),
        ):
            monkeypatch.setattr(torch.cuda, name, self._record(name, value))

    def _record(self, name, value):
        def call(device=None):
            self.calls.append((name, device))
            return value

        return call


def test_synchronize_waits_on_the_given_cuda_device_only(monkeypatch):
    import torch

    alloc = _FakeAllocator(monkeypatch)
    timing.synchronize("cpu")
    assert alloc.calls == []
    timing.synchronize("cuda:1")
    assert alloc.calls == [("synchronize", torch.device("cuda:1"))]


def test_cuda_peak_is_the_allocators_peak_above_what_was_held(monkeypatch):
    import torch

    alloc = _FakeAllocator(monkeypatch)
    dev = torch.device("cuda:1")
    tr, peak = timing.traced_call(lambda: torch.ones(4) * 2, "cuda:1")
    assert peak == 350 - 100
    assert alloc.calls == [
        ("synchronize", dev),
        ("reset_peak_memory_stats", dev),
        ("memory_allocated", dev),
        ("synchronize", dev),
        ("max_memory_allocated", dev),
    ]
    assert timing.peak_memory(lambda: None, "cuda:1") == 250


def test_peak_memory_and_traced_call_default_to_the_cpu():
    import torch

    lin = torch.nn.Linear(3, 2)
    x = torch.ones(5, 3)
    tr, peak = timing.traced_call(lambda: lin(x))
    assert tr.flops == 2 * 5 * 3 * 2  # addmm: 2 FLOPs per multiply-add, 5x3 @ 3x2
    assert peak == timing.peak_memory(lambda: lin(x)) == 5 * 2 * 4  # one float32 output


def test_pin_malloc_loads_the_c_library_found_or_libc_so_6(monkeypatch):
    import ctypes
    import ctypes.util

    libc, names = _FakeLibc(1), []
    _glibc(monkeypatch, libc)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: names.append(name) or libc)
    monkeypatch.setattr(ctypes.util, "find_library", lambda n: f"lib{n}.so.7")
    timing.pin_malloc(4096)
    monkeypatch.setattr(ctypes.util, "find_library", lambda n: None)
    timing.pin_malloc(4096)
    assert names == ["libc.so.7", "libc.so.6"]


def test_prepared_costs_measure_on_the_workloads_device(monkeypatch):
    import types

    import torch

    alloc = _FakeAllocator(monkeypatch)
    a, b = torch.ones(5, 3), torch.ones(3, 2)
    attention = types.SimpleNamespace(kind="attention", phase="forward")
    p = types.SimpleNamespace(fn=lambda: a @ b, workload=attention, model=None)
    costs = timing.prepared_costs(p, "cuda:1")
    # the allocator's peak, not the CPU trace's; FLOPs from the same traced call: 2 * 5*3*2
    assert costs["peak"] == 250 and costs["torch"] == 60
    assert ("max_memory_allocated", torch.device("cuda:1")) in alloc.calls


def test_the_result_records_are_frozen():
    import dataclasses

    records = [
        summarize([1.0, 2.0]),
        paired_ratio([2.0], [1.0]),
        plan_rounds([1.0, 1.1, 0.9], iterations=1, min_rounds=3, budget_s=10.0),
    ]
    for record in records:
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.rounds = 0  # a summary is a value: nothing downstream may edit it
