import statistics

import pytest
import torch

from analysis.timing import (
    NOISE_THRESHOLD,
    CudaEventClock,
    TensorMemoryTracker,
    configure_backends,
    matmul_ceiling,
    peak_memory,
    summarize,
    time_call,
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
    with TensorMemoryTracker() as tracker:
        x = torch.randn(500, 500)
        y = x @ x
        del x, y
    assert tracker.current == 0
    assert tracker.peak == 2 * 500 * 500 * 4


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


def test_matmul_ceiling_reports_two_n_cubed_flops_over_the_fastest_round():
    n = 128
    c = matmul_ceiling("cpu", n=n, rounds=3, warmup=1)
    assert c["flops"] == 2 * n**3
    assert c["flops_per_second"] == pytest.approx(c["flops"] / c["min_s"])
    assert c["median_flops_per_second"] == pytest.approx(c["flops"] / c["median_s"])


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
