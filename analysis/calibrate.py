"""Machine calibration: the constants the time prediction (`analysis.predict`) uses, measured
by microbenchmarks only (never fitted to the bench grid's own timings).

A `Machine` holds:

- ``matmul``: float32 matmul time by shape on a log-spaced (m, k, n) table, stored as the
  achieved compute throughput ``2mkn / (t - fixed)`` (the op's fixed cost taken out, floored
  at 5% of t); `Machine.throughput(m, k, n)` interpolates log throughput trilinearly in
  (log m, log k, log n) and clamps outside the table;
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
  softmax, layer norm, cumulative sums...), which cost more than their bytes;
- ``sources``: where each constant came from.

Timing statistic: each microbenchmark is repeated and the median per-call time kept, the
statistic the bench reports. A calibration runs in well under 60 s.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

MATMUL_FLOOR = 0.05  # net compute time is at least this share of a matmul's measured time
CPU_AXIS = (1, 8, 64, 256, 1024, 2048)
CUDA_AXIS = (1, 8, 64, 256, 1024, 4096, 8192)


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
    # aten op name -> seconds per element beyond its fixed cost (transcendental and
    # reduction ops cost more than their bytes); missing: bytes / bandwidth only
    elementwise_s_per_element: dict = field(default_factory=dict)

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
        table = self.matmul_flops_per_s
        if (len(table) != shape[0] or any(len(r) != shape[1] for r in table)
                or any(len(c) != shape[2] for r in table for c in r)):
            raise ValueError(f"machine matmul table must be {shape[0]}x{shape[1]}x{shape[2]} "
                             f"(m x k x n)")
        if any(not v > 0 for r in table for c in r for v in c):
            raise ValueError("machine matmul throughputs must be > 0")

    def throughput(self, m: float, k: float, n: float) -> float:
        """FLOP/s of an (m x k) @ (k x n) float32 matmul (interpolated in log space)."""
        axes = [self.matmul_axes[a] for a in "mkn"]
        return interpolate_log(axes, self.matmul_flops_per_s, (m, k, n))

    def bandwidth(self, nbytes: float) -> float:
        """Bytes/s of an op moving `nbytes` (interpolated in log space; streaming above)."""
        table = self.bandwidth_by_size
        if not table or not table.get("bytes"):
            return self.bandwidth_bytes_per_s
        return interpolate_log([table["bytes"]], table["per_s"], (max(nbytes, 1.0),))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Machine:
        known = {f for f in cls.__dataclass_fields__}
        optional = {"sources", "date", "bandwidth_by_size", "module_call_s", "op_autograd_s",
                    "op_backward_s", "elementwise_s_per_element"}
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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"machine file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"machine file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"machine file {path} holds no object")
    return Machine.from_dict(data)


def cache_name(device: str, name: str, threads: int) -> str:
    """'cpu-x86_64-torch2.13.0+cpu-t1.json': one file per device name, torch and threads."""
    safe = "".join(c if c.isalnum() or c in "._+-" else "_" for c in name)
    return f"{device}-{safe}-torch{torch.__version__}-t{threads}.json"


def default_cache_path(device: str, threads: int) -> Path:
    return Path("runs") / "machine" / cache_name(device, device_name(device), threads)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    import platform

    from analysis.report.pipeline import cpu_model_name

    return cpu_model_name() or platform.machine() or "cpu"


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
    from analysis.optrace import trace_ops

    lin = torch.nn.Linear(4, 4).to(device)
    x = torch.zeros(1, 4, device=device)
    with torch.no_grad():
        one = trace_ops(lambda: lin(x))
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

        backward_ops = sum(1 for op in trace_ops(lambda: graph().backward()).ops
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
    mask = torch.rand(256, device=device) > 0.5
    y = torch.empty_like(x)
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
        "logcumsumexp": (lambda: torch.logcumsumexp(m, -1), n),
        "mul": (lambda: torch.mul(x, x, out=y), n),
        "add": (lambda: torch.add(x, x, out=y), n),
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


def measure_matmuls(device: str, axis: Sequence[int], fixed_s: float,
                    budget_s: float = 0.02) -> list:
    """Throughput [m][k][n] of float32 matmuls on the table `axis` x `axis` x `axis`."""
    torch.manual_seed(0)
    table = []
    for m in axis:
        rows = []
        for k in axis:
            row = []
            for n in axis:
                a = torch.randn(m, k, device=device)
                b = torch.randn(k, n, device=device)
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
                t = per_call(fn, device, calls, 3)
                net = t - (0.0 if device == "cuda" else fixed_s)
                row.append(flops / max(net, MATMUL_FLOOR * t))
            rows.append(row)
        table.append(rows)
    return table


def calibrate(device: str = "cpu", threads: int | None = None,
              axis: Sequence[int] | None = None) -> Machine:
    """Measure this machine (see the module docstring). float32, TF32 off on CUDA."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: CUDA is not available here; use --device cpu")
    if threads is not None:
        from charlm.validate import positive_int

        torch.set_num_threads(positive_int("threads", threads))
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    axis = tuple(axis or (CUDA_AXIS if device == "cuda" else CPU_AXIS))
    with torch.no_grad():
        costs = measure_op_costs(device)
        overheads = measure_overheads(device, costs)
        bw = measure_bandwidth(device)
        axes = {"m": list(axis), "k": list(axis), "n": list(axis)}
        table = monotone_table(axes, measure_matmuls(device, axis, costs["matmul_fixed_s"]))
        by_size = measure_bandwidth_by_size(device)
        per_element = measure_elementwise(device, costs["op_fixed_s"])
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
        "matmul_flops_per_s": f"torch.mm float32 on the table, {mm_how}, median of 3, "
                              f"each time capped by every larger shape's",
        "ceiling_flops_per_s": "the table's largest matmul",
        "module_call_s": "chain of tiny nn.Linear calls minus their ops' fixed costs",
        "op_autograd_s": "chain of tiny adds recording autograd, minus op_fixed_s",
        "op_backward_s": "backward of a chain of tiny multiplies, per op it dispatches",
        "elementwise_s_per_element": "each op on 2^18 float32 elements, minus op_fixed_s",
        "bandwidth_by_size": "elementwise add of 4 KiB..16 MiB moved, minus op_fixed_s, "
                             "median of 3",
    }
    return Machine(
        device=device, name=device_name(device), torch=torch.__version__,
        threads=torch.get_num_threads(), op_fixed_s=costs["op_fixed_s"],
        view_fixed_s=costs["view_fixed_s"], matmul_fixed_s=costs["matmul_fixed_s"],
        min_kernel_s=costs["min_kernel_s"],
        bandwidth_bytes_per_s=min(bw["copy_bytes_per_s"], bw["add_bytes_per_s"]),
        ceiling_flops_per_s=table[-1][-1][-1],
        matmul_axes=axes, matmul_flops_per_s=table, sources=sources,
        bandwidth_by_size=by_size, **overheads,
        elementwise_s_per_element=per_element,
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def cached_machine(device: str = "cpu", threads: int = 1, path=None,
                   force: bool = False) -> Machine:
    """The machine file at `path` (default runs/machine/<device>-<name>-torch<v>-t<n>.json),
    calibrating and writing it when missing or when `force`."""
    path = Path(path) if path is not None else default_cache_path(device, threads)
    if path.is_file() and not force:
        return load_machine(path)
    machine = calibrate(device, threads)
    save_machine(machine, path)
    return machine


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


__all__ = ["Machine", "cache_name", "calibrate", "cached_machine", "default_cache_path",
           "interpolate_log", "load_machine", "machine_from_probe", "monotone_table",
           "save_machine"]
