"""Machine calibration: the constants the time prediction (`analysis.predict`) uses, measured
by microbenchmarks only (never fitted to the bench grid's own timings).

A `Machine` holds:

- ``matmul``: float32 matmul time by shape on a log-spaced (m, k, n) table, stored as the
  achieved compute throughput ``2mkn / (t - fixed)`` (the op's fixed cost taken out, floored
  at 5% of t); `Machine.throughput(m, k, n)` interpolates log throughput trilinearly in
  (log m, log k, log n) and clamps outside the table;
- ``matmul_layouts``: the same table for the other operand layouts ("nt": the right operand
  transposed, as `nn.Linear` computes x @ W.t(); "tn": the left one, as its weight gradient
  g.t() @ x), measured alike; `throughput(m, k, n, layout)` reads the layout's table, the
  "nn" one when the machine has none for it;
- ``bandwidth_bytes_per_s``: streaming bandwidth, bytes read plus written, the slower of a
  large copy and a large elementwise add;
- ``op_fixed_s``: the fixed cost of one data-moving op: on CPU the eager dispatch cost (a
  chain of tiny out-of-place adds, timed with `time.perf_counter`); on CUDA the launch cost
  as the stream sees it (a chain of tiny adds, timed with CUDA events: the host issues them
  one by one);
- ``view_fixed_s``: the dispatch cost of a metadata-only op (a chain of views); no kernel;
- ``matmul_fixed_s``: the fixed cost of a matmul call (the smallest matmul of the table);
- ``min_kernel_s`` (CUDA): the shortest GPU time of a kernel (the tiny-add chain replayed in a
  CUDA graph, so no launch gaps); 0 on CPU;
- ``ceiling_flops_per_s``: the largest matmul of the table's throughput (the compute roof);
- ``module_call_s``: the Python cost of one `nn.Module` call beyond its ops (a chain of tiny
  `nn.Linear` calls minus the fixed costs of the ops each dispatches);
- ``op_autograd_s``: the extra cost of an op that records an autograd graph (a chain of tiny
  adds on a tensor requiring grad, minus op_fixed_s);
- ``op_backward_s``: the fixed cost of an op the autograd engine runs (the backward of a
  chain of tiny multiplies, per op it dispatches);
- ``bandwidth_by_size``: elementwise bandwidth by bytes moved (cache-resident ops are faster);
- ``elementwise_s_per_element``: seconds per element of common elementwise ops (tanh, exp,
  softmax, layer norm, cumulative sums, where, comparisons...), which cost more than their
  bytes; a scan op also keyed "name:s", scanning across a stride (over T of a (B, T, D)
  tensor: minGRU's logcumsumexp ran 1.5x its row-wise per-element cost there);
- ``op_fixed_by_name``: the fixed cost of each aten op by name (`measure_replayed_ops`: the
  ops of a tiny run of every bench variant and phase, each call replayed); a prediction
  charges an op the larger of this and the generic fixed cost of its kind (op_fixed_s,
  view_fixed_s): in a model's sequence of ops an op costs more than alone in a tight loop
  (charging simple ops their replayed cost, below the tiny add's, predicted worse), while a
  GELU, a concatenation, a layer norm or a flash-attention step costs more than a tiny add;
- ``attention_flops_per_s`` (CPU): the flash-attention kernel's own FLOP rate by batch x
  heads, keys and head width (causal square forward, its backward, one query over the keys),
  since at a model's small sizes its blocking and buffers cost several times its FLOPs at a
  matmul's rate;
- ``code_s_per_op``: each bench workload's own Python per op beyond the constants above,
  by variant and phase (`analysis.predict.measure_code_costs`, measured last; on CUDA part
  of the host's time);
- ``fresh_output_by_size``: seconds per byte that allocating an op's output adds, by the
  output's size (a fresh `torch.add(x, 1)` minus the same add into an existing tensor). On
  glibc a block of 32 MiB or more is mapped fresh from the kernel on every allocation, so
  each of its pages faults on first write: on this project's CPU VM a 64 MiB output cost
  5x the add itself; below the threshold the allocator reuses memory and it costs nothing;
- ``yardstick_s``: the seconds of a fixed small workload (`yardstick`) at the pace every
  constant holds for: each microbenchmark is taken between two yardsticks and rescaled to
  their median, and a bench row timed at another pace scales its prediction by its own
  yardstick over this one (`analysis.predict.pace_factor`);
- ``sources``: where each constant came from.

Timing statistic: each microbenchmark is repeated and the median per-call time kept, the
statistic the bench reports. Every microbenchmark runs in each of `passes` passes (default
PASSES) and each constant is the median of the passes; `pass_range` keeps each scalar's
spread. On one thread of this project's 2-core CPU VM, 3 passes took 40 s (7 s of a pass are
the three matmul tables, 2 s the attention table); `compare_machines` and `compare_tables` set a
short calibration against a long one's noise.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from analysis.env import device_name
from charlm.validate import check_device

if TYPE_CHECKING:
    import pandas as pd

MATMUL_FLOOR = 0.05  # net compute time is at least this share of a matmul's measured time
CPU_AXIS = (1, 8, 64, 256, 1024, 2048)
CUDA_AXIS = (1, 8, 64, 256, 1024, 4096, 8192)
LAYOUTS = ("nn", "nt", "tn", "tt")  # operand storage of a matmul ("t": transposed view)
MEASURED_LAYOUTS = ("nt", "tn")  # beside "nn": nn.Linear's product and its weight gradient
PASSES = 3  # each microbenchmark runs this many times, spread over the calibration
MATMUL_BUDGET_S = 0.008  # seconds of calls per matmul shape and layout in each pass
# the scalar constants of a Machine whose spread over the passes it records (pass_range)
TIMES = ("op_fixed_s", "view_fixed_s", "matmul_fixed_s", "min_kernel_s", "module_call_s",
         "op_autograd_s", "op_backward_s")
RATES = ("bandwidth_bytes_per_s", "ceiling_flops_per_s")
SCALARS = (*TIMES, *RATES, "yardstick_s")


# ---------------------------------------------------------------------------- interpolation


def _bracket(axis: Sequence[float], x: float) -> tuple[int, int, float]:
    """Indices (i, j) and weight w of x between axis[i] and axis[j] in log space, clamped."""
    logs = [math.log(a) for a in axis]
    lx = math.log(max(x, 1e-30))
    if len(axis) == 1 or lx <= logs[0]:
        return 0, 0, 0.0
    if lx >= logs[-1]:
        return len(axis) - 1, len(axis) - 1, 0.0
    for i in range(len(axis) - 1):
        if logs[i] <= lx <= logs[i + 1]:
            return i, i + 1, (lx - logs[i]) / (logs[i + 1] - logs[i])
    raise AssertionError("unreachable")


def interpolate_log(axes: Sequence[Sequence[float]], values, point: Sequence[float]) -> float:
    """Multilinear interpolation of log(values) in the log of each coordinate; `values` is
    nested lists indexed like the axes (values[i][j][k]); outside the table the edge holds."""
    brackets = [_bracket(axis, x) for axis, x in zip(axes, point)]
    total = 0.0
    for corner in range(2 ** len(axes)):
        weight, v = 1.0, values
        for d, (i, j, w) in enumerate(brackets):
            high = (corner >> d) & 1
            weight *= w if high else 1.0 - w
            v = v[j if high else i]
        if weight:
            total += weight * math.log(v)
    return math.exp(total)


def monotone_table(axes: dict, table: list) -> list:
    """The throughput table [m][k][n] with each shape's time capped by every larger shape's
    (time = 2mkn / throughput, made non-decreasing along m, k and n by a running minimum
    from the largest shape down): a matmul is never slower than a larger one, since it could
    be computed by it. Removes a library's bad-kernel outliers and timing noise spikes."""
    ms, ks, ns = axes["m"], axes["k"], axes["n"]
    time = [[[2 * m * k * n / table[i][j][c] for c, n in enumerate(ns)]
             for j, k in enumerate(ks)] for i, m in enumerate(ms)]
    for i in reversed(range(len(ms))):
        for j in reversed(range(len(ks))):
            for c in reversed(range(len(ns))):
                t = time[i][j][c]
                if i + 1 < len(ms):
                    t = min(t, time[i + 1][j][c])
                if j + 1 < len(ks):
                    t = min(t, time[i][j + 1][c])
                if c + 1 < len(ns):
                    t = min(t, time[i][j][c + 1])
                time[i][j][c] = t
    return [[[2 * m * k * n / time[i][j][c] for c, n in enumerate(ns)]
             for j, k in enumerate(ks)] for i, m in enumerate(ms)]


# ---------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class Machine:
    """Calibrated constants of one device (see the module docstring)."""

    device: str  # cpu | cuda
    name: str
    torch: str
    threads: int
    op_fixed_s: float
    view_fixed_s: float
    matmul_fixed_s: float
    min_kernel_s: float
    bandwidth_bytes_per_s: float
    ceiling_flops_per_s: float
    matmul_axes: dict  # {"m": [...], "k": [...], "n": [...]}
    matmul_flops_per_s: list  # [m][k][n]
    sources: dict = field(default_factory=dict)
    date: str = ""
    # bytes moved by one op -> bytes/s of an elementwise add that size (cache effects);
    # empty: bandwidth_bytes_per_s at every size
    bandwidth_by_size: dict = field(default_factory=dict)  # {"bytes": [...], "per_s": [...]}
    module_call_s: float = 0.0  # Python cost of one nn.Module call beyond its ops
    op_autograd_s: float = 0.0  # extra cost of an op that records an autograd graph
    op_backward_s: float | None = None  # fixed cost of an op the autograd engine runs
    # aten op name (or "name:layout", the trace's layout of a scan op) -> seconds per
    # element beyond its fixed cost (transcendental and reduction ops cost more than their
    # bytes); missing: bytes / bandwidth only
    elementwise_s_per_element: dict = field(default_factory=dict)
    # operand layout ("nt", "tn", ...) -> a throughput table like matmul_flops_per_s;
    # missing: the "nn" table
    matmul_layouts: dict = field(default_factory=dict)
    # the yardstick's seconds at the pace these constants hold for (None: not measured)
    yardstick_s: float | None = None
    # output bytes -> seconds per byte its allocation adds (page faults of a fresh mapping);
    # empty: none
    fresh_output_by_size: dict = field(default_factory=dict)  # {"bytes", "s_per_byte"}
    # aten op name -> its fixed cost (a tiny call replayed); missing: op_fixed_s/view_fixed_s
    op_fixed_by_name: dict = field(default_factory=dict)
    # the fused CPU LSTM's FLOP/s by batch, width and steps (`measure_fused_rnn`): {"B",
    # "D", "T": [...], "forward", "backward": [[[...]]]} (an older file: no "T", tables
    # [b][d] at T = 16); empty: the matmul table's rates
    fused_rnn_flops_per_s: dict = field(default_factory=dict)
    # CPU attention's FLOP/s by batch x heads, keys and head width (`measure_attention`):
    # {"BH", "T", "hd": [...], "forward", "backward", "decode": [[[...]]]}; empty: the
    # matmul table's rate at the kernel's (B H T, hd, T) product
    attention_flops_per_s: dict = field(default_factory=dict)
    # a bench workload's code ("variant:phase", `Trace.code`) -> the seconds per op its own
    # Python adds beyond the per-op costs above (negative: its ops cost less, issued from
    # C++); `analysis.predict.measure_code_costs`; missing: 0
    code_s_per_op: dict = field(default_factory=dict)
    passes: int | None = None  # passes each constant is the median of (None: not recorded)
    # scalar constant (SCALARS) -> [min, max] over the passes, at the reference pace (the
    # yardstick: each pass's median yardstick, as measured); empty: one pass, or not recorded
    pass_range: dict = field(default_factory=dict)
    # matmul layout -> [median, max] over the table's shapes of log(max / min) of the passes'
    # throughputs (each pass's table capped as the kept one); empty as pass_range
    matmul_pass_spread: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"machine device must be cpu or cuda, got {self.device!r}")
        for name in ("op_fixed_s", "view_fixed_s", "matmul_fixed_s", "min_kernel_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"machine {name} must be >= 0, got {getattr(self, name)}")
        for name in ("bandwidth_bytes_per_s", "ceiling_flops_per_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"machine {name} must be > 0, got {getattr(self, name)}")
        axes = [self.matmul_axes.get(a) for a in "mkn"]
        if any(not a for a in axes):
            raise ValueError("machine matmul_axes needs non-empty m, k and n")
        shape = (len(axes[0]), len(axes[1]), len(axes[2]))
        tables = {"nn": self.matmul_flops_per_s, **self.matmul_layouts}
        for layout, table in tables.items():
            if layout not in LAYOUTS:
                raise ValueError(f"machine matmul layout must be one of {', '.join(LAYOUTS)}, "
                                 f"got {layout!r}")
            if (len(table) != shape[0] or any(len(r) != shape[1] for r in table)
                    or any(len(c) != shape[2] for r in table for c in r)):
                raise ValueError(f"machine matmul table {layout} must be "
                                 f"{shape[0]}x{shape[1]}x{shape[2]} (m x k x n)")
            if any(not v > 0 for r in table for c in r for v in c):
                raise ValueError("machine matmul throughputs must be > 0")

        if self.passes is not None:
            from charlm.validate import positive_int

            positive_int("machine passes", self.passes)
        for name, pair in {**self.pass_range, **self.matmul_pass_spread}.items():
            if len(pair) != 2 or not pair[0] <= pair[1]:
                raise ValueError(f"machine pass range of {name} must be [low, high] with "
                                 f"low <= high, got {pair!r}")
        fresh = self.fresh_output_by_size
        if fresh and (len(fresh.get("bytes", ())) != len(fresh.get("s_per_byte", ()))
                      or list(fresh["bytes"]) != sorted(fresh["bytes"])
                      or any(not v >= 0 for v in fresh["s_per_byte"])):
            raise ValueError("machine fresh_output_by_size needs ascending bytes and as many "
                             "s_per_byte values >= 0")

    def throughput(self, m: float, k: float, n: float, layout: str = "nn") -> float:
        """FLOP/s of an (m x k) @ (k x n) float32 matmul with operands stored as `layout`
        (interpolated in log space; the "nn" table for a layout not measured)."""
        axes = [self.matmul_axes[a] for a in "mkn"]
        table = self.matmul_layouts.get(layout, self.matmul_flops_per_s)
        return interpolate_log(axes, table, (m, k, n))

    def bandwidth(self, nbytes: float) -> float:
        """Bytes/s of an op moving `nbytes` (interpolated in log space; streaming above)."""
        table = self.bandwidth_by_size
        if not table or not table.get("bytes"):
            return self.bandwidth_bytes_per_s
        return interpolate_log([table["bytes"]], table["per_s"], (max(nbytes, 1.0),))

    def fresh_output_s(self, nbytes: float) -> float:
        """Seconds allocating an output of `nbytes` adds: nbytes x the per-byte cost of the
        largest measured size not above it (a step: the cost appears at an allocator
        threshold, so interpolating across it would smear it); 0 below the smallest."""
        table = self.fresh_output_by_size
        cost = 0.0
        for size, per_byte in zip(table.get("bytes", ()), table.get("s_per_byte", ())):
            if size <= nbytes:
                cost = per_byte
        return nbytes * cost

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Machine:
        known = {f for f in cls.__dataclass_fields__}
        optional = {"sources", "date", "bandwidth_by_size", "module_call_s", "op_autograd_s",
                    "op_backward_s", "elementwise_s_per_element", "matmul_layouts",
                    "yardstick_s", "fresh_output_by_size", "op_fixed_by_name", "passes",
                    "pass_range", "matmul_pass_spread", "fused_rnn_flops_per_s",
                    "attention_flops_per_s", "code_s_per_op"}
        missing = sorted(known - set(data) - optional)
        if missing:
            raise ValueError(f"machine file lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> Machine:
        d = self.to_dict()
        d.update(changes)
        return Machine.from_dict(d)


def save_machine(machine: Machine, path) -> Path:
    from charlm.io import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(machine.to_dict(), indent=1) + "\n")
    return path


def load_machine(path) -> Machine:
    from charlm.io import read_json_object

    return Machine.from_dict(read_json_object(path, "machine file"))


def cache_name(device: str, name: str, threads: int, passes: int = PASSES) -> str:
    """'cpu-x86_64-torch2.13.0+cpu-t1.json': one file per device name, torch and threads;
    '...-t1-p1.json' for a calibration of another pass count than PASSES (a short one is never
    taken for the default)."""
    safe = "".join(c if c.isalnum() or c in "._+-" else "_" for c in name)
    suffix = "" if passes == PASSES else f"-p{passes}"
    return f"{device}-{safe}-torch{torch.__version__}-t{threads}{suffix}.json"


def default_cache_path(device: str, threads: int, passes: int = PASSES) -> Path:
    return Path("runs") / "machine" / cache_name(device, device_name(device), threads, passes)


# ---------------------------------------------------------------------------- timers


def _cpu_time(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def _cuda_time(fn: Callable[[], object], calls: int) -> float:
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / calls


def per_call(fn: Callable[[], object], device: str, calls: int, repeats: int = 3) -> float:
    """Median over `repeats` of the mean per-call time of `calls` back-to-back calls (the
    bench's statistic is the median too)."""
    import statistics

    timer = _cuda_time if device == "cuda" else _cpu_time
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return statistics.median(timer(fn, calls) for _ in range(repeats))


def _graphed(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` captured in a CUDA graph (replay runs its kernels without launch gaps)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


# ---------------------------------------------------------------------------- yardstick


YARDSTICK = ("100 out-of-place adds on 8 floats, then 20 products x @ W.t() with x 8 x 256 "
             "and W 256 x 256 (nn.Linear's layout); median of 25 runs")


def yardstick(device: str = "cpu", repeats: int = 25) -> float:
    """Seconds of one fixed small workload (see YARDSTICK): the machine's pace right now.

    A shared machine's speed drifts: on this project's 2-core VM the same workloads ran up
    to 1.6x slower for tens of seconds at a time, while their time divided by the
    yardstick's, measured around them, stayed within 2-8%. The calibration measures it
    around each of its microbenchmarks and the bench around each benchmark, so that a
    prediction can be scaled to the pace its measurement ran at."""
    import torch.nn.functional as F

    x = torch.zeros(8, device=device)
    a = torch.randn(8, 256, device=device)
    w = torch.randn(256, 256, device=device)

    def run():
        for _ in range(100):
            torch.add(x, 1.0)
        for _ in range(20):
            F.linear(a, w)

    with torch.no_grad():
        return per_call(run, device, 1, repeats)


class Paced:
    """Measurements each taken between two yardsticks, rescaled to one reference pace (the
    median of every yardstick taken): a time measured while the machine ran at pace p is
    multiplied by reference / p, a rate by p / reference."""

    def __init__(self, device: str):
        self.device = device
        self.paces: list[float] = []

    def around(self, measure: Callable[[], object]) -> tuple[object, float]:
        before = yardstick(self.device)
        value = measure()
        after = yardstick(self.device)
        self.paces += [before, after]
        return value, math.sqrt(before * after)

    @property
    def reference(self) -> float:
        import statistics

        return statistics.median(self.paces)

    def time(self, seconds: float, pace: float) -> float:
        return seconds * self.reference / pace

    def rate(self, per_s: float, pace: float) -> float:
        return per_s * pace / self.reference

    def times(self, seconds: dict, pace: float) -> dict:
        return {k: self.time(v, pace) for k, v in seconds.items()}


# ---------------------------------------------------------------------------- measurements


def measure_op_costs(device: str, chain: int = 400) -> dict:
    """Fixed costs per op: a tiny out-of-place add (data-moving), a view, a 1x1x1 matmul;
    on CUDA also the tiny add's GPU time inside a CUDA graph (minimum kernel time)."""
    x = torch.zeros(8, device=device)
    a = torch.zeros(1, 1, device=device)

    def adds():
        for _ in range(chain):
            torch.add(x, 1.0)

    def views():
        for _ in range(chain):
            x.view(2, 4)

    def mms():
        for _ in range(chain):
            torch.mm(a, a)

    out = {"op_fixed_s": per_call(adds, device, 1, 5) / chain,
           "view_fixed_s": per_call(views, "cpu", 1, 5) / chain,
           "matmul_fixed_s": per_call(mms, device, 1, 5) / chain,
           "min_kernel_s": 0.0}
    if device == "cuda":
        y = torch.zeros(8, device=device)

        def inplace():
            for _ in range(chain):
                y.add_(1.0)

        out["min_kernel_s"] = per_call(_graphed(inplace), device, 1, 5) / chain
    return out


def measure_overheads(device: str, costs: dict, chain: int = 300) -> dict:
    """module_call_s, op_autograd_s, op_backward_s (see the module docstring)."""
    from analysis.trace import trace

    lin = torch.nn.Linear(4, 4).to(device)
    x = torch.zeros(1, 4, device=device)
    with torch.no_grad():
        one = trace(lambda: lin(x))
        fixed = sum({"matmul": costs["matmul_fixed_s"], "elementwise": costs["op_fixed_s"]}
                    .get(op.kind, costs["view_fixed_s"]) for op in one.ops)

        def calls():
            for _ in range(chain):
                lin(x)

        module_call = max(0.0, per_call(calls, device, 1, 5) / chain - fixed)
    leaf = torch.zeros(8, device=device, requires_grad=True)

    def recorded():
        for _ in range(chain):
            torch.add(leaf, 1.0)

    with torch.enable_grad():
        autograd = max(0.0, per_call(recorded, device, 1, 5) / chain - costs["op_fixed_s"])

        def graph():
            y = leaf
            for _ in range(chain):
                y = y * 1.0001
            return y.sum()

        backward_ops = sum(1 for op in trace(lambda: graph().backward()).ops
                           if op.phase == "backward" and op.kind != "view")
        timer = _cuda_time if device == "cuda" else _cpu_time
        samples = []
        for _ in range(5):
            loss = graph()
            samples.append(timer(loss.backward, 1))
        backward = min(samples) / max(1, backward_ops)
    return {"module_call_s": module_call, "op_autograd_s": autograd,
            "op_backward_s": backward}


def measure_bandwidth(device: str, nbytes: int | None = None) -> dict:
    """Bytes read + written per second of a large copy and a large add (float32)."""
    if nbytes is None:
        nbytes = 2**28 if device == "cuda" else 2**26
    x = torch.ones(nbytes // 4, device=device)
    y = torch.empty_like(x)
    moved = 2 * nbytes
    copy = per_call(lambda: y.copy_(x), device, 3, 3)
    add = per_call(lambda: torch.add(x, 1.0, out=y), device, 3, 3)
    return {"copy_bytes_per_s": moved / copy, "add_bytes_per_s": moved / add}


def _elementwise_ops(device: str, n: int) -> dict:
    """aten op name -> (a call dispatching that op, elements it reads)."""
    import torch.nn.functional as F

    x = torch.rand(n, device=device) + 0.5
    m = x.view(-1, 256)
    # a scan across a stride, as over T of a (B, T, D) tensor: the trace's layout "s"
    across = x.view(-1, 256, 64)
    # a log-space scan's inputs rise along it (partial sums: minGRU's log b - cumsum log a):
    # logcumsumexp on rising values costs 1.3-1.4x what it does on random ones
    rising_rows, rising_across = m.cumsum(-1), across.cumsum(1)
    mask = torch.rand(256, device=device) > 0.5
    cond = x > 1.0
    y = torch.empty_like(x)
    # the backward ops training runs on activations: a gradient and what the forward kept
    aten = torch.ops.aten
    g, gm = torch.rand_like(x), torch.rand_like(m)
    soft = torch.softmax(m, -1)
    w, b = torch.ones(256, device=device), torch.zeros(256, device=device)
    _, mean, rstd = aten.native_layer_norm(m, (256,), w, b, 1e-5)
    return {
        "tanh": (lambda: torch.tanh(x, out=y), n),
        "sigmoid": (lambda: torch.sigmoid(x, out=y), n),
        "exp": (lambda: torch.exp(x, out=y), n),
        "log": (lambda: torch.log(x, out=y), n),
        "softplus": (lambda: F.softplus(x), n),
        "gelu": (lambda: F.gelu(x), n),
        "_softmax": (lambda: torch.softmax(m, -1), n),
        "_log_softmax": (lambda: torch.log_softmax(m, -1), n),
        "native_layer_norm": (lambda: F.layer_norm(m, (256,)), n),
        "masked_fill": (lambda: m.masked_fill(mask, 0.0), n),
        "cumsum": (lambda: torch.cumsum(m, -1), n),
        "logcumsumexp": (lambda: torch.logcumsumexp(rising_rows, -1), n),
        "cumsum:s": (lambda: torch.cumsum(across, 1), n),
        "logcumsumexp:s": (lambda: torch.logcumsumexp(rising_across, 1), n),
        "where": (lambda: torch.where(cond, x, y), n),
        "ge": (lambda: torch.ge(x, 1.0), n),
        "mul": (lambda: torch.mul(x, x, out=y), n),
        "add": (lambda: torch.add(x, x, out=y), n),
        "sqrt": (lambda: torch.sqrt(x, out=y), n),  # Adam's step, on every parameter
        "gelu_backward": (lambda: aten.gelu_backward(g, x), n),
        "tanh_backward": (lambda: aten.tanh_backward(g, x), n),
        "sigmoid_backward": (lambda: aten.sigmoid_backward(g, x), n),
        "_softmax_backward_data": (lambda: aten._softmax_backward_data(
            gm, soft, -1, torch.float32), n),
        "native_layer_norm_backward": (lambda: aten.native_layer_norm_backward(
            gm, m, (256,), mean, rstd, w, b, [True, True, True]), n),
    }


def measure_elementwise(device: str, fixed_s: float, n: int = 2**18) -> dict:
    """Seconds per element of common elementwise ops on 2^18 float32 elements (1 MiB), their
    fixed cost taken out."""
    out = {}
    for name, (fn, elements) in _elementwise_ops(device, n).items():
        t = per_call(fn, device, 5, 3)
        out[name] = max(t - fixed_s, MATMUL_FLOOR * t) / elements
    return out


def measure_bandwidth_by_size(device: str, sizes=(2**12, 2**15, 2**18, 2**21, 2**24)) -> dict:
    """Bytes read + written per second of an elementwise add moving each total size (cache
    effects: small working sets move faster than streaming); the op's fixed cost taken out."""
    fixed = measure_op_costs(device, 200)["op_fixed_s"]
    per_s = []
    for total in sizes:
        n = max(1, total // 8)
        x = torch.ones(n, device=device)
        y = torch.empty_like(x)
        calls = max(1, min(200, int(0.01 / max(total / 1e10, 1e-6))))
        t = per_call(lambda x=x, y=y: torch.add(x, 1.0, out=y), device, calls, 3)
        per_s.append(8 * n / max(t - fixed, MATMUL_FLOOR * t))
    return {"bytes": [8 * max(1, s // 8) for s in sizes], "per_s": per_s}


def operand(rows: int, cols: int, transposed: bool, device: str) -> torch.Tensor:
    """A rows x cols float32 matrix, stored row-major, or column-major (a transposed view)."""
    if transposed:
        return torch.randn(cols, rows, device=device).t()
    return torch.randn(rows, cols, device=device)


def tiny_workloads() -> list:
    """A tiny workload (B 2, T 4, D 16, two new tokens) of every bench variant and phase it
    runs: the ops a prediction meets, at sizes where each op costs its fixed cost."""
    from analysis.architectures import architecture
    from analysis.workloads import PHASES, Workload, variants

    out = []
    for v in variants().values():
        arch = architecture(v.model)
        phases = {"attention": ("forward",), "reference": ("forward", "train")}.get(
            v.kind, tuple(PHASES))
        for phase in phases:
            kw = dict(variant=v.name, phase=phase, batch=2, seq_len=4, hidden=16,
                      new_tokens=2 if phase.startswith("generate") else 0)
            if v.kind == "attention" or arch.has_attention:
                kw["heads"] = 2
            if v.kind != "attention" and arch.stacked:
                kw["layers"] = 2
            try:
                out.append(Workload(**kw))
            except ValueError:  # a phase this variant does not run (no KV cache)
                continue
    return out


def _replay_time(call: tuple, device: str, calls: int) -> float | None:
    func, args, kwargs = call[:3]

    def replay():
        func(*args, **kwargs)

    try:
        replay()
    except Exception:  # noqa: BLE001 - an op that cannot run out of context is skipped
        return None
    return per_call(replay, device, calls, 3)


def _elements(call: tuple) -> int:
    """Elements of a kept call's first tensor argument (0 when it has none)."""
    first = next((a for a in call[1] if isinstance(a, torch.Tensor)), None)
    return 0 if first is None else first.numel()


def measure_replayed_ops(device: str, costs: dict, per_element: dict | None = None,
                         calls: int = 50) -> dict:
    """Fixed cost of each aten op (by name) the bench's workloads dispatch, matmuls aside:
    every tiny workload (`tiny_workloads`) runs once while its first call of each op is
    kept, then each kept call is replayed `calls` times back to back without autograd
    (median of 3). A replay goes through the op's Python handle, which costs more than the
    C++ calls a model makes; that extra, measured by replaying the calibration's own tiny
    add and view, is taken out: fixed = replay - (replayed add - op_fixed_s), or for a view
    replay - (replayed view - view_fixed_s). An op with a per-element cost (`per_element`,
    `measure_elementwise`) has that cost of its first input's elements taken out too, which
    the prediction adds back at each call's own size: the first call is not always tiny (an
    Adam sqrt on a 65 x 64 weight replayed in 10 us, 1.3 us of it fixed). Tiny ops of
    different kinds differ: on one CPU thread a GELU of 4096 floats took 15 us, an add 6 us,
    a flash attention step 28 us."""
    per_element = per_element or {}
    from analysis.trace import Tracer, trace
    from analysis.workloads import prepare

    recorder = Tracer(first_calls=True)  # the first call of each op without a FLOP formula
    for w in tiny_workloads():
        p = prepare(w, device)
        with torch.enable_grad():  # the calibration runs under no_grad
            trace(p.fn, tracer=recorder)
    anchors = Tracer(first_calls=True)
    x = torch.zeros(8, device=device)
    with torch.no_grad():
        trace(lambda: (torch.add(x, 1.0), x.view(2, 4)), tracer=anchors)
    with torch.no_grad():
        extra = {False: _replay_time(anchors.first_calls["add"], device, calls)
                 - costs["op_fixed_s"],
                 True: _replay_time(anchors.first_calls["view"], device, calls)
                 - costs["view_fixed_s"]}
        out = {}
        for name, call in sorted(recorder.first_calls.items()):
            t = _replay_time(call, device, calls)
            if t is not None:
                t -= per_element.get(name, 0.0) * _elements(call)
                out[name] = max(0.0, t - extra[call[3]])
    return out


FRESH_SIZES = (2**20, 2**22, 2**24, 2**25, 2**26)  # bytes: around glibc's 32 MiB mmap cap


def measure_fresh_outputs(device: str, sizes=FRESH_SIZES) -> dict:
    """Seconds per byte that allocating the output adds to an elementwise add, by output
    size: (add into a fresh tensor - add into an existing one) / bytes, at least 0."""
    per_byte = []
    for nbytes in sizes:
        x = torch.ones(nbytes // 4, device=device)
        y = torch.empty_like(x)
        into = per_call(lambda x=x, y=y: torch.add(x, 1.0, out=y), device, 3, 3)
        fresh = per_call(lambda x=x: torch.add(x, 1.0), device, 3, 3)
        per_byte.append(max(0.0, fresh - into) / nbytes)
        del x, y
    return {"bytes": list(sizes), "s_per_byte": per_byte}


def measure_matmuls(device: str, axis: Sequence[int], fixed_s: float,
                    budget_s: float = 0.02, layout: str = "nn",
                    ms: Sequence[int] | None = None, repeats: int = 3) -> list:
    """Throughput [m][k][n] of float32 matmuls on the table `ms` x `axis` x `axis` (`ms`
    default: `axis`), the operands stored as `layout` ("nt": the right one a transposed
    view, and so on)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    torch.manual_seed(0)
    table = []
    for m in (axis if ms is None else ms):
        rows = []
        for k in axis:
            row = []
            for n in axis:
                a = operand(m, k, layout[0] == "t", device)
                b = operand(k, n, layout[1] == "t", device)
                flops = 2 * m * k * n
                def fn(a=a, b=b):
                    return torch.mm(a, b)

                if device == "cuda":
                    try:
                        fn = _graphed(fn)
                    except RuntimeError:  # no graphs: eager, fixed cost taken out below
                        pass
                guess = max(flops / (2e13 if device == "cuda" else 5e10), fixed_s, 1e-6)
                calls = max(1, min(200, int(budget_s / guess)))
                t = per_call(fn, device, calls, repeats)
                net = t - (0.0 if device == "cuda" else fixed_s)
                row.append(flops / max(net, MATMUL_FLOOR * t))
            rows.append(row)
        table.append(rows)
    return table




FUSED_RNN_B = (1, 8, 32)  # batch rows per step of the fused LSTM table
FUSED_RNN_D = (32, 128, 512)  # its width (input width E = D)
FUSED_RNN_T = (4, 16, 64)  # its steps: the layer's fixed cost and input product amortize


def measure_fused_rnn(device: str, batches: Sequence[int] | None = None,
                      widths: Sequence[int] | None = None,
                      steps: Sequence[int] | None = None) -> dict:
    """FLOP/s of the fused CPU recurrence (nn.LSTM: one `mkldnn_rnn_layer` call and its
    backward), by batch B, width D (E = D) and steps T: its matmul FLOPs,
    2 T B (4D E + 4D D) forward and twice that backward, over the time of a forward that
    records the graph (as in training) and of its backward (forward + backward less the
    forward). oneDNN runs the input product for all steps at once and keeps its gate
    weights packed, so its rate is not the matmul table's (LSTM train rows predicted 1.5-3x
    their time from it); the rate grows with T (B 8, D 160 on one thread of this project's
    VM: 6, 18, 40 GFLOP/s forward at T 4, 16, 64), as the layer's call cost and its input
    product amortize over more steps. {"B", "D", "T", "forward", "backward"}: tables
    [b][d][t]; CUDA (cuDNN): {}. Axes left None: FUSED_RNN_B, FUSED_RNN_D, FUSED_RNN_T."""
    if device != "cpu":
        return {}
    batches, widths, steps = (FUSED_RNN_B if batches is None else batches,
                              FUSED_RNN_D if widths is None else widths,
                              FUSED_RNN_T if steps is None else steps)
    fwd_rates, bwd_rates = [], []
    with torch.enable_grad():
        for b in batches:
            fwd_plane, bwd_plane = [], []
            for d in widths:
                fwd_row, bwd_row = [], []
                for t in steps:
                    torch.manual_seed(0)
                    lstm = torch.nn.LSTM(d, d)
                    x = torch.randn(t, b, d, requires_grad=True)
                    flops = 2 * t * b * (4 * d * d + 4 * d * d)
                    calls = max(1, min(20, int(2e7 / flops)))

                    def forward(lstm=lstm, x=x):
                        return lstm(x)[0]

                    def both(lstm=lstm, x=x):
                        lstm(x)[0].sum().backward()

                    t_fwd = per_call(forward, device, calls, 3)
                    t_both = per_call(both, device, calls, 3)
                    fwd_row.append(flops / t_fwd)
                    bwd_row.append(2 * flops / max(t_both - t_fwd, MATMUL_FLOOR * t_both))
                fwd_plane.append(fwd_row)
                bwd_plane.append(bwd_row)
            fwd_rates.append(fwd_plane)
            bwd_rates.append(bwd_plane)
    return {"B": list(batches), "D": list(widths), "T": list(steps), "forward": fwd_rates,
            "backward": bwd_rates}


ATTENTION_BH = (1, 4, 16, 64)  # batch x heads of the flash-attention tables
ATTENTION_T = (4, 16, 64, 256)  # keys per query (queries = keys in the causal square)
ATTENTION_HD = (16, 32, 64)  # head width
RATE_TABLES = ("forward", "backward", "decode")  # the tables of a rate table, beside its axes
# the CPU attention kernel's aten ops -> the table of `Machine.attention_flops_per_s` each
# reads when its queries are as many as its keys (fewer: the "decode" table)
ATTENTION_OPS = {"_scaled_dot_product_flash_attention_for_cpu": "forward",
                 "_scaled_dot_product_flash_attention_for_cpu_backward": "backward"}


def _counted_flops(fn: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from analysis.trace import cpu_sdpa_mapping

    with FlopCounterMode(display=False, custom_mapping=cpu_sdpa_mapping()) as counter:
        fn()
    return counter.get_total_flops()


def measure_attention(device: str, fixed_s: float, heads_rows: Sequence[int] | None = None,
                      lengths: Sequence[int] | None = None,
                      widths: Sequence[int] | None = None) -> dict:
    """FLOP/s of CPU attention (`F.scaled_dot_product_attention`, PyTorch's flash kernel for
    CPU) by batch x heads BH, keys T and head width hd, each call's FLOPs as PyTorch's
    counter counts them (the trace's count), its time less `fixed_s` (a matmul call's fixed
    cost, which the prediction adds; floored at MATMUL_FLOOR of the time): "forward" the
    causal square (T queries), "backward" its backward alone (forward and backward recording
    the graph, less that forward), "decode" one query over T keys (a KV-cache step; BH then
    counts B x H x queries). Its rate is not a matmul's: at small sizes the kernel's blocking,
    buffers and inner copies cost several times its FLOPs (a (3, 4, 12, 24) causal call took
    23 us on one thread of this project's VM, 28x a 1x1x1 matmul). Tables [bh][t][hd];
    {} on CUDA (its kernels are timed as launches). Axes left None: ATTENTION_BH,
    ATTENTION_T, ATTENTION_HD."""
    import torch.nn.functional as F

    from analysis.trace import cpu_sdpa_mapping

    if device != "cpu" or not cpu_sdpa_mapping():  # a torch without the kernels' formulas
        return {}  # counts them 0 FLOPs: nothing to take a rate of
    heads_rows, lengths, widths = (ATTENTION_BH if heads_rows is None else heads_rows,
                                   ATTENTION_T if lengths is None else lengths,
                                   ATTENTION_HD if widths is None else widths)
    out: dict = {"BH": list(heads_rows), "T": list(lengths), "hd": list(widths),
                 "forward": [], "backward": [], "decode": []}

    def rate(flops, seconds):
        return flops / max(seconds - fixed_s, MATMUL_FLOOR * seconds)

    for bh in heads_rows:
        planes = {k: [] for k in ("forward", "backward", "decode")}
        for t in lengths:
            rows = {k: [] for k in planes}
            for hd in widths:
                torch.manual_seed(0)
                q, k, v = (torch.randn(bh, 1, t, hd) for _ in range(3))
                one = q[:, :, -1:]

                def fwd(q=q, k=k, v=v):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)

                def decode(one=one, k=k, v=v):
                    return F.scaled_dot_product_attention(one, k, v)

                with torch.enable_grad():
                    qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
                    grad = torch.ones_like(q)

                    def recorded(qg=qg, kg=kg, vg=vg):
                        return F.scaled_dot_product_attention(qg, kg, vg, is_causal=True)

                    def both(qg=qg, kg=kg, vg=vg, grad=grad):
                        torch.autograd.grad(recorded(qg, kg, vg), (qg, kg, vg), grad)

                    f_fwd, f_both = _counted_flops(fwd), _counted_flops(both)
                    calls = max(1, min(50, int(2e7 / max(f_both, 1))))
                    t_rec = per_call(recorded, device, calls, 3)
                    t_both = per_call(both, device, calls, 3)
                f_dec = _counted_flops(decode)
                rows["forward"].append(rate(f_fwd, per_call(fwd, device, calls, 3)))
                # a backward timed as nothing (noise) is floored at 5% of forward + backward
                rows["backward"].append((f_both - f_fwd) / max(
                    t_both - t_rec - fixed_s, MATMUL_FLOOR * t_both))
                rows["decode"].append(rate(f_dec, per_call(
                    decode, device, max(1, min(50, int(2e7 / max(f_dec, 1)))), 3)))
            for key in planes:
                planes[key].append(rows[key])
        for key in planes:
            out[key].append(planes[key])
    return out


def measure_pass(device: str, axis: Sequence[int], paced: Paced, budget_s: float) -> dict:
    """One pass over every microbenchmark, each between two yardsticks: {name: (value,
    pace)}, the matmul tables as {layout: [(m slab, pace), ...]}."""
    out = {}
    costs, pace = paced.around(lambda: measure_op_costs(device))
    out["costs"] = (costs, pace)
    out["overheads"] = paced.around(lambda: measure_overheads(device, costs))
    out["bw"] = paced.around(lambda: measure_bandwidth(device))
    out["tables"] = {layout: [paced.around(lambda m=m, layout=layout: measure_matmuls(
        device, axis, costs["matmul_fixed_s"], budget_s, layout=layout, ms=[m], repeats=1)[0])
        for m in axis] for layout in ("nn", *MEASURED_LAYOUTS)}
    out["by_size"] = paced.around(lambda: measure_bandwidth_by_size(device))
    out["per_element"] = paced.around(lambda: measure_elementwise(device, costs["op_fixed_s"]))
    # CUDA's caching allocator reuses freed blocks: a fresh output costs nothing there
    out["fresh"] = paced.around(lambda: measure_fresh_outputs(device) if device == "cpu"
                                else {"bytes": [], "s_per_byte": []})
    out["replayed"] = paced.around(lambda: measure_replayed_ops(
        device, costs, out["per_element"][0]))
    out["fused_rnn"] = paced.around(lambda: measure_fused_rnn(device))
    out["attention"] = paced.around(lambda: measure_attention(device,
                                                              costs["matmul_fixed_s"]))
    return out


def rescale_pass(raw: dict, paced: Paced) -> dict:
    """A pass's values at the reference pace: times x reference / pace, rates x pace /
    reference."""
    (costs, c_pace), (overheads, o_pace) = raw["costs"], raw["overheads"]
    bw, bw_pace = raw["bw"]
    by_size, s_pace = raw["by_size"]
    fresh, f_pace = raw["fresh"]
    return {
        "costs": paced.times(costs, c_pace), "overheads": paced.times(overheads, o_pace),
        "bw": {k: paced.rate(v, bw_pace) for k, v in bw.items()},
        "tables": {layout: [[[paced.rate(v, pace) for v in row] for row in slab]
                            for slab, pace in slabs]
                   for layout, slabs in raw["tables"].items()},
        "by_size": {"bytes": by_size["bytes"],
                    "per_s": [paced.rate(v, s_pace) for v in by_size["per_s"]]},
        "per_element": paced.times(*raw["per_element"]),
        "fresh": {"bytes": fresh["bytes"],
                  "s_per_byte": [paced.time(v, f_pace) for v in fresh["s_per_byte"]]},
        "replayed": paced.times(*raw["replayed"]),
        "fused_rnn": _rescale_rates(*raw["fused_rnn"], paced),
        "attention": _rescale_rates(*raw["attention"], paced),
    }


def _rescale_rates(table: dict, pace: float, paced: Paced) -> dict:
    """A table of rates (`measure_fused_rnn`, `measure_attention`: axes as lists of sizes,
    its tables nested lists of FLOP/s) at the reference pace."""
    def rescale(v):
        return [rescale(x) for x in v] if isinstance(v, list) else paced.rate(v, pace)

    return {k: rescale(v) if k in RATE_TABLES else v for k, v in table.items()}


def median_nested(items: list):
    """The element-wise median of equally shaped nested dicts / lists of numbers (a dict key
    missing from some items: the median of those that have it)."""
    import statistics

    first = items[0]
    if isinstance(first, dict):
        keys = dict.fromkeys(k for it in items for k in it)
        return {k: median_nested([it[k] for it in items if k in it]) for k in keys}
    if isinstance(first, (list, tuple)):
        return [median_nested([it[i] for it in items]) for i in range(len(first))]
    return statistics.median(items)


def pass_scalars(c: dict) -> dict:
    """The scalar constants (SCALARS but the yardstick) of a rescaled pass (`rescale_pass`),
    or of the median of several."""
    costs, bw = c["costs"], c["bw"]
    return {**{k: costs[k] for k in ("op_fixed_s", "view_fixed_s", "matmul_fixed_s",
                                     "min_kernel_s")},
            **c["overheads"],
            "bandwidth_bytes_per_s": min(bw["copy_bytes_per_s"], bw["add_bytes_per_s"]),
            "ceiling_flops_per_s": c["tables"]["nn"][-1][-1][-1]}


def value_ranges(passes: list[dict]) -> dict:
    """{name: [min, max]} of each value over the passes (dicts of numbers); {} for one pass."""
    if len(passes) < 2:
        return {}
    return {k: [min(p[k] for p in passes), max(p[k] for p in passes)] for k in passes[0]}


def table_spread(tables: list[list]) -> list[float]:
    """[median, max] over the shapes of log(max / min) of equally shaped [m][k][n] tables."""
    import statistics

    flat = [[v for plane in t for row in plane for v in row] for t in tables]
    logs = [math.log(max(cell) / min(cell)) for cell in zip(*flat)]
    return [statistics.median(logs), max(logs)]


def calibrate(device: str = "cpu", threads: int | None = None,
              axis: Sequence[int] | None = None, passes: int = PASSES,
              budget_s: float = MATMUL_BUDGET_S,
              code_costs: Callable[[Machine, Paced], dict] | None = None) -> Machine:
    """Measure this machine (see the module docstring). float32, TF32 off on CUDA.
    `passes`: times each microbenchmark runs, spread over the calibration (the median is
    kept); `budget_s`: seconds of calls per matmul shape in each pass; `code_costs`: the
    last step, each workload's own code per op measured against the machine built so far
    (`analysis.predict.measure_code_costs`, which needs the prediction, a layer this
    module sits below); None: no `code_s_per_op`."""
    import statistics

    from charlm.validate import positive_int

    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    check_device(device)
    positive_int("passes", passes)
    if threads is not None:
        torch.set_num_threads(positive_int("threads", threads))
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    from analysis.timing import pin_malloc

    malloc = pin_malloc()  # as the bench does: large blocks page-fault only when fresh
    axis = tuple(axis or (CUDA_AXIS if device == "cuda" else CPU_AXIS))
    axes = {"m": list(axis), "k": list(axis), "n": list(axis)}
    paced = Paced(device)
    raw, paces = [], []  # each pass's measurements, and its median yardstick
    with torch.no_grad():
        for _ in range(passes):
            start = len(paced.paces)
            raw.append(measure_pass(device, axis, paced, budget_s))
            paces.append(statistics.median(paced.paces[start:]))
    # every pass rescaled to the reference pace (the median yardstick of all), then the
    # median of the passes: each constant is measured at `passes` moments apart
    each = [rescale_pass(r, paced) for r in raw]
    c = median_nested(each)
    scalars = pass_scalars(c)
    pass_range = value_ranges([{**pass_scalars(p), "yardstick_s": y}
                               for p, y in zip(each, paces)])
    spread = {layout: table_spread([monotone_table(axes, p["tables"][layout]) for p in each])
              for layout in c["tables"]} if passes > 1 else {}
    by_size, per_element, fresh = c["by_size"], c["per_element"], c["fresh"]
    replayed, fused = c["replayed"], c.get("fused_rnn") or {}
    attention = c.get("attention") or {}
    table = monotone_table(axes, c["tables"].pop("nn"))
    layouts = {layout: monotone_table(axes, t) for layout, t in c["tables"].items()}
    timer = "CUDA events" if device == "cuda" else "time.perf_counter"
    mm_how = ("CUDA-graph replay (GPU time, no launch gaps)" if device == "cuda"
              else "eager, minus matmul_fixed_s")
    sources = {
        "op_fixed_s": f"chain of tiny out-of-place adds, {timer}, median of 5",
        "view_fixed_s": "chain of tiny views, time.perf_counter, median of 5",
        "matmul_fixed_s": f"chain of 1x1x1 matmuls, {timer}, median of 5",
        "min_kernel_s": ("chain of tiny in-place adds in a CUDA graph" if device == "cuda"
                         else "0 on CPU"),
        "bandwidth_bytes_per_s": "the slower of a large copy and a large add (median of 3), "
                                 "bytes read + written",
        "matmul_flops_per_s": f"torch.mm float32 on the table, {mm_how}, "
                              f"each time capped by every larger shape's",
        "passes": f"each constant is the median of {passes} passes through every "
                  f"microbenchmark, each taken between two yardsticks and rescaled to the "
                  f"reference pace (yardstick_s)",
        "pass_range": "each scalar constant's lowest and highest value over the passes, "
                      "rescaled alike (yardstick_s: each pass's median yardstick); empty "
                      "for one pass",
        "matmul_pass_spread": "per layout, the median and the largest over the table's "
                              "shapes of log(max / min) of the passes' throughputs",
        "matmul_layouts": "as matmul_flops_per_s, one operand a transposed view (nt: the "
                          "right one, tn: the left one)",
        "ceiling_flops_per_s": "the table's largest matmul",
        "op_fixed_by_name": "each non-matmul aten op of a tiny run of every bench variant "
                            "and phase, its first call replayed 50 times (median of 3), "
                            "minus the replay handle's extra (a replayed tiny add or view "
                            "minus op_fixed_s or view_fixed_s)",
        "fresh_output_by_size": ("an add of 1-64 MiB into a fresh tensor minus the same add "
                                 "into an existing one, per byte (median of 3)"
                                 if device == "cpu" else "none on CUDA (caching allocator)"),
        "yardstick_s": f"{YARDSTICK}, taken before and after each microbenchmark (each "
                       f"m row of a matmul table); the median of all, the pace every "
                       f"constant here is rescaled to",
        "module_call_s": "chain of tiny nn.Linear calls minus their ops' fixed costs",
        "malloc": malloc,
        "op_autograd_s": "chain of tiny adds recording autograd, minus op_fixed_s",
        "op_backward_s": "backward of a chain of tiny multiplies, per op it dispatches",
        "elementwise_s_per_element": "each op on 2^18 float32 elements, minus op_fixed_s",
        "fused_rnn_flops_per_s": ("nn.LSTM (one mkldnn_rnn_layer) by batch, width and "
                                  "steps, forward recording the graph, and its backward, "
                                  "median of 3" if device == "cpu" else "none on CUDA"),
        "attention_flops_per_s": ("F.scaled_dot_product_attention (the CPU flash kernel) "
                                  "by batch x heads, keys and head width: the causal square "
                                  "forward, its backward (forward + backward recording the "
                                  "graph, less that forward) and one query over the keys, "
                                  "PyTorch's FLOP count over the time less matmul_fixed_s, "
                                  "median of 3" if device == "cpu" else "none on CUDA"),
        "bandwidth_by_size": "elementwise add of 4 KiB..16 MiB moved, minus op_fixed_s, "
                             "median of 3",
    }
    machine = Machine(
        device=device, name=device_name(device), torch=torch.__version__,
        threads=torch.get_num_threads(), **scalars,
        matmul_axes=axes, matmul_flops_per_s=table, matmul_layouts=layouts, sources=sources,
        bandwidth_by_size=by_size,
        elementwise_s_per_element=per_element, yardstick_s=paced.reference,
        fresh_output_by_size=fresh, op_fixed_by_name=replayed, passes=passes,
        fused_rnn_flops_per_s=fused, attention_flops_per_s=attention, pass_range=pass_range,
        matmul_pass_spread=spread,
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if code_costs is None:
        return machine
    # last, as it sets each tiny workload's time against this machine's prediction of it
    costs = code_costs(machine, paced)
    sources = {**machine.sources, "code_s_per_op": (
        "a tiny run (B 2, T 4, D 16) of every bench variant and phase, timed between two "
        "yardsticks (median of 3, rescaled to yardstick_s), less this machine's prediction "
        "of it, over its ops")}
    return machine.replace(code_s_per_op=costs, sources=sources)


def planned_seconds(device: str = "cpu", axis: Sequence[int] | None = None,
                    passes: int = PASSES, budget_s: float = MATMUL_BUDGET_S) -> float:
    """The seconds of matmul calls `calibrate` budgets (each shape of the table, in each
    layout, in each pass): a lower bound of its length, which the other microbenchmarks, the
    yardsticks and the large shapes' single calls about double on this project's CPU VM."""
    axis = axis or (CUDA_AXIS if device == "cuda" else CPU_AXIS)
    return passes * (1 + len(MEASURED_LAYOUTS)) * len(axis) ** 3 * budget_s


def stale_fields(path) -> list[str]:
    """The constants this charlm measures that the machine file at `path` lacks (a file an
    older calibration wrote; it still loads, each missing constant at its fallback); [] for
    a current file or none."""
    import json as _json

    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = _json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # load_machine says what is wrong with it
    return sorted(set(Machine.__dataclass_fields__) - set(data)) if isinstance(data, dict) \
        else []


def cached_machine(device: str = "cpu", threads: int = 1, path=None,
                   force: bool = False, passes: int = PASSES,
                   code_costs: Callable[[Machine, Paced], dict] | None = None) -> Machine:
    """The machine file at `path` (default runs/machine/<device>-<name>-torch<v>-t<n>.json,
    `cache_name`), calibrating (`passes` passes, `code_costs` as `calibrate` takes it) and
    writing it when missing, when an older calibration wrote it (`stale_fields`) or when
    `force`."""
    path = Path(path) if path is not None else default_cache_path(device, threads, passes)
    if path.is_file() and not force and not stale_fields(path):
        return load_machine(path)
    machine = calibrate(device, threads, passes=passes, code_costs=code_costs)
    save_machine(machine, path)
    return machine


# ---------------------------------------------------------------------------- comparison


def pace_ratio(of: Machine, to: Machine) -> float:
    """`to`'s yardstick over `of`'s (1 when either lacks one): a time constant of `of` times
    this, a rate divided by it, is what a prediction with `of` effectively uses at `to`'s
    pace."""
    return to.yardstick_s / of.yardstick_s if of.yardstick_s and to.yardstick_s else 1.0


def compare_machines(short: Machine, long: Machine) -> pd.DataFrame:
    """Each scalar constant (SCALARS) of two calibrations of one machine, the `short` one
    rescaled to the `long` one's pace (its yardstick_s; the yardstick itself as measured):
    long, the long one's pass range (long_min, long_max; empty without one), short, ratio
    short / long, and inside: whether short lies in [long_min, long_max]. With the range of
    3 passes, even a value drawn from the same distribution falls outside half the time."""
    import pandas as pd

    rows = []
    for name in SCALARS:
        a, b = getattr(short, name), getattr(long, name)
        if a is None or b is None:
            continue
        pace = pace_ratio(short, long)
        a = a * pace if name in TIMES else a / pace if name in RATES else a
        low, high = long.pass_range.get(name, (None, None))
        rows.append({"constant": name, "long": b, "long_min": low, "long_max": high,
                     "short": a, "ratio": a / b if b else None,
                     "inside": None if low is None else bool(low <= a <= high)})
    return pd.DataFrame(rows)


def compare_tables(short: Machine, long: Machine) -> pd.DataFrame:
    """Each matmul layout both machines hold, over the table's shapes, `short` rescaled to
    `long`'s pace: the median and the largest |log(short / long)| of the throughput
    (abs_log_median, abs_log_max), the shape m x k x n of the largest (worst_shape), and the
    long one's own spread over its passes (spread_median, spread_max: its
    matmul_pass_spread, the median and largest log(max / min); empty without one).
    ValueError when their tables' axes differ."""
    import statistics

    import pandas as pd

    if short.matmul_axes != long.matmul_axes:
        raise ValueError("the two machines' matmul tables have different axes")
    axes = [long.matmul_axes[a] for a in "mkn"]
    shapes = [(m, k, n) for m in axes[0] for k in axes[1] for n in axes[2]]
    pace = pace_ratio(short, long)
    rows = []
    for layout in ("nn", *sorted(set(short.matmul_layouts) & set(long.matmul_layouts))):
        logs = [abs(math.log(short.throughput(*s, layout) / pace
                             / long.throughput(*s, layout))) for s in shapes]
        worst = max(range(len(shapes)), key=logs.__getitem__)
        spread = long.matmul_pass_spread.get(layout, (None, None))
        rows.append({"layout": layout, "shapes": len(shapes),
                     "abs_log_median": statistics.median(logs), "abs_log_max": logs[worst],
                     "worst_shape": "x".join(map(str, shapes[worst])),
                     "spread_median": spread[0], "spread_max": spread[1]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- H200 from probe


def machine_from_probe(probe2: dict, ceiling_flops_per_s: float,
                       launch_s: float | None = None) -> Machine:
    """A CUDA machine file from a `probe2.json` (see ../shared/gpu/2026-11-28-h200/):

    - matmul throughput: `matmul_by_shape` graph-replayed times (GPU time per mm; the probe's
      table has k = n, so the (m, k, n) table takes (m, sqrt(k n)) from it);
    - bandwidth: the slower of its copy and add (bytes read + written);
    - op_fixed_s (launch cost): `launch.tiny_op_eager_s` (or `launch_s`);
    - min_kernel_s: `launch.tiny_op_graph_s`;
    - matmul_fixed_s: the eager minus graph time of the probe's smallest matmul (1x64x64);
    - view_fixed_s: not measured by the probe: 0;
    - ceiling_flops_per_s: given (the run's ceiling.csv)."""
    rows = probe2.get("matmul_by_shape")
    if not isinstance(rows, list) or not rows:
        raise ValueError("probe2 has no matmul_by_shape table")
    ms = sorted({r["m"] for r in rows})
    kns = sorted({r["k"] for r in rows})
    by = {(r["m"], r["k"]): 2 * r["m"] * r["k"] * r["n"] / r["graph_s"] for r in rows}
    if any((m, kn) not in by for m in ms for kn in kns):
        raise ValueError("probe2 matmul_by_shape is not a full m x k table")
    two_d = [[by[(m, kn)] for kn in kns] for m in ms]
    table = [[[interpolate_log([ms, kns], two_d, (m, math.sqrt(k * n))) for n in kns]
              for k in kns] for m in ms]
    table = monotone_table({"m": ms, "k": kns, "n": kns}, table)
    smallest = min(rows, key=lambda r: r["m"] * r["k"] * r["n"])
    launch = probe2["launch"]
    bw = probe2["bandwidth"]
    return Machine(
        device="cuda", name=probe2.get("device", "cuda"), torch=probe2.get("torch", ""),
        threads=1, op_fixed_s=float(launch_s if launch_s is not None
                                    else launch["tiny_op_eager_s"]),
        view_fixed_s=0.0,
        matmul_fixed_s=max(0.0, smallest["eager_s"] - smallest["graph_s"]),
        min_kernel_s=float(launch["tiny_op_graph_s"]),
        bandwidth_bytes_per_s=min(bw["copy_bytes_per_s"], bw["add_bytes_per_s"]),
        ceiling_flops_per_s=float(ceiling_flops_per_s),
        matmul_axes={"m": ms, "k": kns, "n": kns}, matmul_flops_per_s=table,
        sources={
            "op_fixed_s": "probe2.json launch.tiny_op_eager_s (chain of 1000 tiny in-place "
                          "adds, CUDA events, min of 5)",
            "view_fixed_s": "not measured by the probe: 0",
            "module_call_s": "not measured by the probe: 0",
            "op_autograd_s": "not measured by the probe: 0",
            "op_backward_s": "not measured by the probe: op_fixed_s",
            "elementwise_s_per_element": "not measured by the probe: bytes / bandwidth only",
            "matmul_fixed_s": "probe2.json: eager minus graph time of the 1x64x64 matmul",
            "min_kernel_s": "probe2.json launch.tiny_op_graph_s (the chain in a CUDA graph)",
            "bandwidth_bytes_per_s": "probe2.json bandwidth: min of copy and add (1 GiB fp32)",
            "matmul_flops_per_s": "probe2.json matmul_by_shape graph_s (k = n in the probe: "
                                  "(m, k, n) read at (m, sqrt(k n))), each time capped by "
                                  "every larger shape's (the probe's 8x128x128 took 52 us, "
                                  "10x its neighbours)",
            "ceiling_flops_per_s": "the run's ceiling.csv (8192^3 fp32 matmul, median)",
        },
        date="2026-11-28")


__all__ = ["Machine", "cache_name", "calibrate", "cached_machine", "compare_machines",
           "compare_tables", "default_cache_path", "interpolate_log", "load_machine",
           "machine_from_probe", "monotone_table", "planned_seconds", "save_machine"]
