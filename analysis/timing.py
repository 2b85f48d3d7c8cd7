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
  storages created during the call, tracked by a TorchDispatchMode that sees every op's
  outputs and a finalizer on each new storage that sees it freed. Scratch memory a kernel
  allocates and frees inside itself (not returned as a tensor) is not a tensor and is not
  seen on CPU; the CUDA caching allocator sees it.
"""

from __future__ import annotations

import statistics
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

NOISE_THRESHOLD = 0.10  # IQR / median above which a measurement is flagged noisy


# ---------------------------------------------------------------------------- backends


def configure_backends(
    device: str | torch.device = "cpu",
    threads: int | None = None,
    cudnn_benchmark: bool = False,
    tf32: bool = False,
) -> dict:
    """Set the flags a timing depends on and return them as recorded values.

    TF32 is off by default for both matmul and cuDNN, so GPU numbers are float32 numbers
    (PyTorch's own defaults differ: matmul TF32 off, cuDNN TF32 on). `cudnn.benchmark`
    is off by default so every shape runs the same algorithm from its first call.
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
) -> TimingStats:
    """Time `fn()` for `rounds` rounds after `warmup` untimed ones; `setup()` runs before
    each round, outside the timing. On CUDA each round is bracketed by CUDA events (and
    `clock` is unused); on CPU by `clock`, which a test may replace with a fake."""
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
        if device.type == "cuda":
            synchronize(device)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = clock()
            fn()
            samples.append(clock() - t0)
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


class TensorMemoryTracker(TorchDispatchMode):
    """Tracks bytes held by tensor storages created while the mode is active.

    Every op's outputs pass through `__torch_dispatch__`; an output whose storage is new
    (not one of the op's inputs' storages, so not a view or an in-place result, and not
    already tracked) is counted and given a finalizer that subtracts it when the storage
    is freed. `current` and `peak` are bytes above what existed when tracking began.
    """

    def __init__(self):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: dict[tuple, int] = {}

    @staticmethod
    def _key(storage) -> tuple:
        return (storage.device.type, storage.device.index, storage.data_ptr())

    def _freed(self, key):
        nbytes = self._live.pop(key, 0)
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {
            self._key(t.untyped_storage())
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor) and t.layout == torch.strided
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            try:
                storage = t.untyped_storage()
            except (RuntimeError, NotImplementedError):  # sparse or storage-less tensors
                continue
            nbytes = storage.nbytes()
            key = self._key(storage)
            if nbytes == 0 or key in inputs or key in self._live:
                continue
            self._live[key] = nbytes
            self.current += nbytes
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._freed, key)
        return out


def peak_memory(fn: Callable[[], object], device: str | torch.device = "cpu") -> int:
    """Bytes of the highest memory use during `fn()` above what was allocated before it."""
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    tracker = TensorMemoryTracker()
    with tracker:
        fn()
    return int(tracker.peak)


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
    `flops_per_second` uses the fastest round (a ceiling is the best the device did; on a
    shared machine the median is pulled down by other load); the median rate is kept too."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    stats = time_call(lambda: a @ b, device, rounds=rounds, warmup=warmup)
    flops = 2 * n**3
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "flops": flops,
        "median_s": stats.median,
        "min_s": stats.min,
        "iqr_s": stats.iqr,
        "noisy": stats.noisy,
        "flops_per_second": flops / stats.min,
        "median_flops_per_second": flops / stats.median,
    }
