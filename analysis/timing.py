"""Timers and peak-memory meters shared by the bench and the report.

Conventions, stated once:
- A timing is a set of rounds of one call each, after warm-up rounds that are not kept.
  CPU rounds are timed with `time.perf_counter` around synchronous work; CUDA rounds with
  a pair of CUDA events per round, synchronized before the elapsed time is read.
- Every summary gives the median, the inter-quartile range (IQR), the coefficient of
  variation (standard deviation / mean) and flags the measurement as noisy when
  IQR / median exceeds 10% (the threshold `torch.utils.benchmark.Timer` warns at).
- Backend flags that change what a GPU computes (`cudnn.benchmark`, TF32 for matmul and
  for cuDNN) are set explicitly by `configure_backends` and recorded with the result;
  the CPU thread count is set there too.
- Peak memory is measured, not derived from shapes: on CUDA `max_memory_allocated` after a
  reset, minus what was allocated before the call; on CPU the peak of bytes held by tensor
  storages created during the call, tracked by the op trace (`analysis.trace`, memory on),
  which sees every op's outputs, and a finalizer on each new storage that sees it freed.
  Scratch memory a kernel allocates and frees inside itself (not returned as a tensor) is
  not a tensor and is not seen on CPU; the CUDA caching allocator sees it.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from analysis.trace import Trace, trace

NOISE_THRESHOLD = 0.10  # IQR / median above which a measurement is flagged noisy


# ---------------------------------------------------------------------------- backends


MALLOC_THRESHOLD = 2**30  # bytes: glibc's mmap and trim thresholds, pinned (pin_malloc)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)


def pin_malloc(threshold: int = MALLOC_THRESHOLD) -> str:
    """Pin glibc malloc's mmap and trim thresholds at `threshold` bytes (mallopt), and say
    what was done. By default glibc serves a block above its mmap threshold with a fresh
    mapping, and raises that threshold as large blocks are freed, so whether a round's
    large outputs page-fault depends on the process's history: manual/flash attention at
    B8 T256 D128 measured 2.1-2.5 in three processes, 1.49-1.51 in three with the thresholds
    pinned. Pinned, every block below `threshold` comes from the heap and stays there: after
    the warm-up no round page-faults, in any process. Not glibc (or no libc found): nothing
    changed, and the text says so."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "unchanged (not glibc)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1 and \
            libc.mallopt(_M_TRIM_THRESHOLD, int(threshold)) == 1
    except (OSError, AttributeError):
        return "unchanged (mallopt not found)"
    return f"glibc mmap and trim thresholds pinned at {threshold} bytes" if ok else \
        "unchanged (mallopt refused)"


def configure_backends(
    device: str | torch.device = "cpu",
    threads: int | None = None,
    cudnn_benchmark: bool = False,
    tf32: bool = False,
    malloc: bool = True,
) -> dict:
    """Set the flags a timing depends on and return them as recorded values.

    TF32 is off by default for both matmul and cuDNN, so GPU numbers are float32 numbers
    (PyTorch's own defaults differ: matmul TF32 off, cuDNN TF32 on). `cudnn.benchmark`
    is off by default so every shape runs the same algorithm from its first call. `malloc`:
    pin glibc's allocator thresholds (`pin_malloc`), so large blocks never page-fault after
    a warm-up, whatever the process did before.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    # Newer torch builds may warn that these flags have a newer API (fp32_precision); the
    # legacy flags still work on torch 2.4-2.13, so any such warning is recorded, not raised.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = bool(tf32)
        flags = {
            "device": torch.device(device).type,
            "threads": torch.get_num_threads(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "malloc": pin_malloc() if malloc else "unchanged",
        }
    if caught:
        flags["backend_warnings"] = "; ".join(sorted({str(w.message) for w in caught}))
    return flags


def recorded_environment(device: str | torch.device = "cpu") -> dict:
    """analysis.env.environment, with any warning its flag reads raise recorded in the dict."""
    from analysis.env import environment

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = environment(device)
    if caught:
        env["env_warnings"] = "; ".join(sorted({str(w.message) for w in caught}))
    return env


def synchronize(device: str | torch.device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class TimingStats:
    """Summary of per-call times in seconds."""

    median: float
    q1: float
    q3: float
    iqr: float
    mean: float
    stdev: float
    cv: float
    min: float
    max: float
    rounds: int
    noisy: bool

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(samples, noise_threshold: float = NOISE_THRESHOLD) -> TimingStats:
    """Median, quartiles (inclusive method, as numpy's default linear interpolation), CV."""
    samples = [float(s) for s in samples]
    if not samples:
        raise ValueError("summarize needs at least one sample")
    if any(s < 0 for s in samples):
        raise ValueError("timing samples must be non-negative")
    median = statistics.median(samples)
    if len(samples) > 1:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        stdev = statistics.stdev(samples)
    else:
        q1 = q3 = samples[0]
        stdev = 0.0
    mean = statistics.fmean(samples)
    iqr = q3 - q1
    return TimingStats(
        median=median,
        q1=q1,
        q3=q3,
        iqr=iqr,
        mean=mean,
        stdev=stdev,
        cv=stdev / mean if mean > 0 else 0.0,
        min=min(samples),
        max=max(samples),
        rounds=len(samples),
        noisy=bool(median > 0 and iqr / median > noise_threshold),
    )


# ---------------------------------------------------------------------------- timers


def time_call(
    fn: Callable[[], object],
    device: str | torch.device = "cpu",
    rounds: int = 10,
    warmup: int = 2,
    setup: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    record: list | None = None,
) -> TimingStats:
    """Time `fn()` for `rounds` rounds after `warmup` untimed ones; `setup()` runs before
    each round, outside the timing. On CUDA each round is bracketed by CUDA events (and
    `clock` is unused); on CPU by `clock`, which a test may replace with a fake. `record`:
    a list the per-round seconds are appended to."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be >= 1 and warmup >= 0, got {rounds}, {warmup}")
    device = torch.device(device)
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    synchronize(device)
    samples = []
    for _ in range(rounds):
        if setup is not None:
            setup()
        samples.append(time_once(fn, device, clock=clock))
    if record is not None:
        record.extend(samples)
    return summarize(samples)


class CudaEventClock:
    """A timer for pytest-benchmark's pedantic mode that returns GPU time.

    Pedantic mode calls its timer exactly twice per round (start, end) and keeps
    end - start. On each first call this records a start event; on each second it records
    an end event, synchronizes on it, adds the elapsed GPU time to a running total and
    returns the total. So end - start of every round is that round's GPU time, in seconds.
    (Do not use it in pytest-benchmark's automatic mode, which calls the timer many
    times to calibrate.)
    """

    def __init__(self, event_factory: Callable[[], object] | None = None):
        self._event = event_factory or (lambda: torch.cuda.Event(enable_timing=True))
        self._start = None
        self._total = 0.0
        self.__name__ = "cuda_event_clock"  # how pytest-benchmark names the timer in its JSON

    def __call__(self) -> float:
        if self._start is None:
            self._start = self._event()
            self._start.record()
            return self._total
        end = self._event()
        end.record()
        end.synchronize()
        self._total += self._start.elapsed_time(end) / 1e3
        self._start = None
        return self._total


# ---------------------------------------------------------------------------- memory


def peak_memory(fn: Callable[[], object], device: str | torch.device = "cpu") -> int:
    """Bytes of the highest memory use during `fn()` above what was allocated before it."""
    return traced_call(fn, device)[1]


def traced_call(fn: Callable[[], object], device: str | torch.device = "cpu"
                ) -> tuple[Trace, int]:
    """One call of `fn()` under the op trace (`analysis.trace`, memory tracking on, module
    hooks off): its events (FLOPs, bytes) and its peak memory in bytes above what was
    allocated before it, so one call measures both. On CUDA the peak is the caching
    allocator's (`max_memory_allocated` after a reset, minus what was allocated before),
    on CPU the trace's count of tensor storages. The trace keeps no tensor alive and its
    formulas allocate nothing, so the peak is the plain call's (tested)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda:
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    tr = trace(fn, memory=True, modules=False)
    if not cuda:
        return tr, int(tr.peak_bytes)
    synchronize(device)
    return tr, int(torch.cuda.max_memory_allocated(device) - before)


def prepared_costs(p, device: str | torch.device = "cpu") -> dict:
    """What one round of a prepared bench workload (`analysis.workloads.prepare`) costs
    besides its time: "peak" memory bytes, "torch" FLOPs (PyTorch's formulas over one
    traced call, `traced_call`) and "forward": each second counter's count by name
    (`workloads.measured_flops`)."""
    from analysis.workloads import measured_flops

    traced, peak = traced_call(p.fn, device)
    return {"peak": peak, **measured_flops(p, traced.flops)}


WARM_CALLS = 2  # calls before a round's costs are measured: Adam's moments made, caches warm


def round_costs(workload, device: str = "cpu") -> dict:
    """`prepared_costs` of a freshly prepared copy of a bench workload, after WARM_CALLS
    calls: the state a timed round runs in (tested equal to measuring after the timing).
    Shapes and allocations, not times: the bench measures them before it times anything,
    in parallel processes (`bench/conftest.py`), one CPU thread each."""
    from analysis.counters import single_thread
    from analysis.workloads import prepare

    with single_thread():
        p = prepare(workload, device)
        for _ in range(WARM_CALLS):
            p.fn()
        synchronize(device)
        return prepared_costs(p, device)


# ---------------------------------------------------------------------------- ceiling


def matmul_ceiling(
    device: str | torch.device = "cpu",
    n: int | None = None,
    dtype: torch.dtype = torch.float32,
    rounds: int = 10,
    warmup: int = 2,
) -> dict:
    """Achieved FLOP/s of an n x n x n matmul (2 n^3 FLOPs), the device's practical ceiling
    for the dtype the models run in. n defaults to 2048 on CPU and 8192 on CUDA.
    `flops_per_second` uses the median round, the same statistic as every workload's time
    (so a fraction of the ceiling compares like with like), with the median's 95% interval;
    the fastest round's rate is kept beside it as `peak_flops_per_second`."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    samples = []
    stats = time_call(lambda: a @ b, device, rounds=rounds, warmup=warmup,
                      record=samples)
    lo, hi = median_ci(samples)
    flops = 2 * n**3
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "flops": flops,
        "median_s": stats.median,
        "min_s": stats.min,
        "iqr_s": stats.iqr,
        "noisy": stats.noisy,
        "rounds": stats.rounds,
        "flops_per_second": flops / stats.median,
        "flops_per_second_ci_low": flops / hi,
        "flops_per_second_ci_high": flops / lo,
        "peak_flops_per_second": flops / stats.min,
        "estimator": "median (fastest round beside it)",
    }


# ---------------------------------------------------------------------------- intervals

CI_LEVEL = 0.95
CI_TARGET = 0.02  # adaptive rounds stop once the median's 95% CI is within +-2% of it
# The median's asymptotic standard error is sqrt(pi/2) sigma / sqrt(n) for normal data; times
# 1.96 for a 95% interval: the rounds needed for a relative half-width h at relative spread c
# are (MEDIAN_CI_FACTOR * c / h)^2.
MEDIAN_CI_FACTOR = 1.959964 * 1.2533141
Z95 = 1.959964


def _binomial_cdf(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) <= k)."""
    import math

    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"a confidence level is between 0 and 1 (exclusive), got {level}")


def median_ci(samples, level: float = CI_LEVEL) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics: the
    interval [x_(j), x_(n+1-j)] (1-based, sorted) covers the population median with
    probability 1 - 2 P(Bin(n, 1/2) <= j - 1) >= level, j the largest such rank. Exact
    binomial for n <= 200, its normal approximation above. Fewer than 6 samples cannot
    reach 95%: the interval is then [min, max]."""
    xs = sorted(float(s) for s in samples)
    n = len(xs)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    _check_level(level)
    alpha = (1 - level) / 2
    if n <= 200:
        j = 0
        while j + 1 <= n // 2 and _binomial_cdf(j, n) <= alpha:
            j += 1
        # j is now the largest rank with P(Bin <= j - 1) <= alpha (j = 0: none)
    else:
        j = int((n - Z95 * n**0.5) / 2)
    if j < 1:
        return xs[0], xs[-1]
    return xs[j - 1], xs[n - j]


def bootstrap_ci(samples, statistic=None, level: float = CI_LEVEL, n_boot: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` (default: the median), resampling with
    replacement `n_boot` times from a seeded generator (deterministic)."""
    import numpy as np

    xs = np.asarray([float(s) for s in samples])
    if xs.size == 0:
        raise ValueError("bootstrap_ci needs at least one sample")
    _check_level(level)
    stat = statistic or (lambda a, axis: np.median(a, axis=axis))
    rng = np.random.default_rng(seed)
    draws = xs[rng.integers(0, xs.size, size=(n_boot, xs.size))]
    values = stat(draws, axis=1)
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio A/B from interleaved pairs: the median of per-pair ratios and its bootstrap
    95% interval."""

    ratio: float
    ci_low: float
    ci_high: float
    pairs: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_ratio(a_samples, b_samples, seed: int = 0) -> RatioEstimate:
    """A/B from pairs measured together (a_samples[i] beside b_samples[i])."""
    a, b = list(a_samples), list(b_samples)
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_ratio needs equal, non-empty samples; got {len(a)} and {len(b)}")
    if any(x <= 0 for x in b):
        raise ValueError("paired_ratio needs positive B samples")
    ratios = [x / y for x, y in zip(a, b)]
    lo, hi = bootstrap_ci(ratios, seed=seed)
    return RatioEstimate(statistics.median(ratios), lo, hi, len(ratios))


def drift(samples) -> dict:
    """Drift over a run, told apart from spread: the first and the last quarter of the rounds
    (at least 6 each, so each has a 95% CI of its median) are `drifted` when those two
    intervals do not overlap: the level moved during the run by more than either quarter's
    uncertainty. drift_rel = (last - first) / overall median; None when too few rounds."""
    xs = [float(s) for s in samples]
    k = max(6, len(xs) // 4)
    if len(xs) < 2 * k:
        return {"drift_rel": None, "drifted": False}
    (f_lo, f_hi), (l_lo, l_hi) = median_ci(xs[:k]), median_ci(xs[-k:])
    first, last = statistics.median(xs[:k]), statistics.median(xs[-k:])
    median = statistics.median(xs)
    return {"drift_rel": (last - first) / median if median > 0 else 0.0,
            "drifted": l_lo > f_hi or f_lo > l_hi}


# ---------------------------------------------------------------------------- adaptive rounds


@dataclass(frozen=True)
class RoundPlan:
    """How many rounds of how many calls a benchmark runs, decided from a pilot.

    The loop structure follows torch.utils.benchmark.Timer.adaptive_autorange: blocks
    ("rounds") of `iterations` calls, long enough for the clock; at least `min_rounds`;
    stop when the precision rule holds or the time budget is spent. Its rule (IQR/median
    below 10%) is replaced by this project's target, the median's 95% CI within +-target,
    and, since pytest-benchmark's pedantic mode takes its round count up front, the count
    is decided from the pilot's spread: rounds = (MEDIAN_CI_FACTOR * spread / target)^2,
    clipped to [min_rounds, budget / round time]."""

    rounds: int
    iterations: int
    pilot_round_s: float
    pilot_spread: float
    needed_rounds: int
    budget_limited: bool

    def to_dict(self) -> dict:
        return asdict(self)


def robust_spread(samples) -> float:
    """IQR / 1.349 / median: the relative standard deviation of normal data, robust to the
    odd slow round."""
    s = summarize(samples)
    return (s.iqr / 1.349) / s.median if s.median > 0 else 0.0


def iterations_for(call_s: float, min_round_s: float) -> int:
    """Calls per round so that one round lasts at least `min_round_s` (1 for slow calls)."""
    import math

    if call_s <= 0:
        return 1000
    return max(1, math.ceil(min_round_s / call_s))


def plan_rounds(pilot_round_s, iterations: int, min_rounds: int, budget_s: float,
                target: float = CI_TARGET, spread: float | None = None) -> RoundPlan:
    """The RoundPlan for rounds like the pilot's (`pilot_round_s`: per-round seconds).
    `spread`: the relative spread of the estimated quantity when it is not the round time
    itself (a ratio of paired rounds); default robust_spread(pilot_round_s)."""
    if min_rounds < 1 or budget_s <= 0 or target <= 0:
        raise ValueError("min_rounds, budget_s and target must be positive")
    stats = summarize(pilot_round_s)
    if spread is None:
        spread = robust_spread(pilot_round_s)
    needed = max(1, int((MEDIAN_CI_FACTOR * spread / target) ** 2) + 1)
    affordable = int(budget_s / stats.median) if stats.median > 0 else needed
    rounds = max(min_rounds, min(needed, affordable))
    return RoundPlan(rounds, iterations, stats.median, spread, needed,
                     budget_limited=needed > max(affordable, min_rounds))


EXTENSIONS = 2  # at most this many top-ups of a paired measurement (rounds_to_add)


def rounds_to_add(done: int, half_width: float, target: float, round_s: float,
                  budget_left_s: float) -> int:
    """Rounds to add to `done` rounds whose estimate's 95% interval is +-`half_width` of it
    (relative), to bring it to +-`target`: an interval narrows as 1/sqrt(rounds), so
    done * (half_width / target)^2 in all (rounded up), at most what `budget_left_s` buys
    at `round_s` a round, and none once within the target. The pilot plans from a few
    rounds and under-plans a ratio: on this project's VM 6-12 of the 28 pairs of a default
    run met the 2% target while using under half their budget. The rule reads the
    interval's width only, never the estimate itself."""
    import math

    if done < 1 or target <= 0:
        raise ValueError(f"rounds_to_add needs done >= 1 and target > 0, got {done}, {target}")
    if half_width <= target or round_s <= 0 or budget_left_s <= 0:
        return 0
    wanted = math.ceil(done * (half_width / target) ** 2) - done
    return max(0, min(wanted, int(budget_left_s / round_s)))


def time_once(fn: Callable[[], object], device: str | torch.device = "cpu",
              calls: int = 1, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds for `calls` calls of fn (CUDA events on a GPU, `clock` on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = clock()
    for _ in range(calls):
        fn()
    return clock() - t0


# ---------------------------------------------------------------------------- machine load


def machine_load() -> dict:
    """1-minute load average and the cumulative CPU jiffies (total and steal) from /proc,
    or empty values where /proc is absent."""
    out = {"loadavg_1m": None, "jiffies_total": None, "jiffies_steal": None}
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            out["loadavg_1m"] = float(f.read().split()[0])
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        out["jiffies_total"] = sum(fields[:8])
        out["jiffies_steal"] = fields[7] if len(fields) > 7 else 0
    except (OSError, ValueError, IndexError):
        pass
    return out


def load_between(before: dict, after: dict) -> dict:
    """Load average before and after, and the share of CPU time stolen by the hypervisor
    in between (None where /proc gave nothing)."""
    steal = None
    if before.get("jiffies_total") is not None and after.get("jiffies_total") is not None:
        total = after["jiffies_total"] - before["jiffies_total"]
        steal = (after["jiffies_steal"] - before["jiffies_steal"]) / total if total > 0 else 0.0
    return {"load_before": before.get("loadavg_1m"), "load_after": after.get("loadavg_1m"),
            "steal_fraction": steal}
