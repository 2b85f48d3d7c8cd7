"""Time predicted from the counts: an op trace (`analysis.optrace`) and a calibrated machine
(`analysis.calibrate.Machine`).

Per op: compute = FLOPs / throughput(shape, operand layout) (matmul-like ops), memory = bytes /
bandwidth(bytes), fixed = the op's fixed cost (a data-moving op: `op_fixed_s`; a matmul:
`matmul_fixed_s`; a view or an `empty`: `view_fixed_s`; an op the autograd engine runs:
`op_backward_s`; a non-matmul op whose own replayed cost `op_fixed_by_name` is larger: that;
plus `op_autograd_s` for an op that records a graph). An elementwise op
with a calibrated per-element cost (tanh, exp, softmax, layer norm...) takes the larger of
that and its bytes; a fused CPU recurrence layer (mkldnn) gets its matmul FLOPs from its
weight shapes (PyTorch's counter counts it as 0). Each nn.Module call
adds `module_call_s` (Python overhead beyond its ops). On CUDA a fused torch.nn recurrence
(cuDNN) costs one launch per call, its ops only their GPU time.

- CPU (one eager thread runs the ops one after another): time = sum over ops of
  max(compute, memory) + alloc + fixed, alloc the page faults of a large fresh output
  (`Machine.fresh_output_s`, counted in the memory term), plus the workload's own code per
  op (`Machine.code_s_per_op`, by `Trace.code`) times its ops.
- CUDA: each kernel's GPU time is max(compute, memory, min_kernel_s); the host issues the
  ops one by one (launch cost per kernel, view cost per view, module calls and the code's
  own per op), and host and GPU run as a pipeline (`cuda_pipeline`: a kernel starts when it
  is issued and the one before it is done; a `.item()` makes the host wait), so the total
  is the pipeline's end, or the critical-path depth x min_kernel_s when that is longer. The
  bound says which of the summed host and GPU times is larger (or depth).

Regime: ``launch/overhead`` when the fixed costs (CPU) or the host bound (CUDA) dominate,
else ``compute`` or ``memory`` by which of the summed per-op terms is larger. ``terms`` gives
each term's seconds and share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.calibrate import Machine
from analysis.trace import OpEvent, Trace
from charlm.validate import lookup

REGIMES = ("launch/overhead", "memory", "compute")


def matmul_shape(op: OpEvent) -> tuple[int, int, int]:
    """(m, k, n) an op's FLOPs are spread over: m x k @ k x n with 2mkn = FLOPs; the batch of
    a bmm folds into m; attention kernels read as (B H T, head dim, S)."""
    shapes = [s for s in op.shapes if len(s) >= 1]
    name = op.name
    try:
        if name in ("mm", "matmul") and len(shapes) >= 2:
            (m, k), n = shapes[0][-2:], shapes[1][-1]
        elif name in ("addmm", "_addmm_activation") and len(shapes) >= 3:
            (m, k), n = shapes[1][-2:], shapes[2][-1]
        elif name == "bmm" and len(shapes) >= 2:
            b, m, k = shapes[0][-3:]
            m, n = b * m, shapes[1][-1]
        elif name == "baddbmm" and len(shapes) >= 3:
            b, m, k = shapes[1][-3:]
            m, n = b * m, shapes[2][-1]
        elif "attention" in name and len(shapes) >= 3:
            q, key = shapes[0], shapes[1]
            rows = 1
            for d in q[:-1]:
                rows *= d
            m, k, n = rows, q[-1], key[-2]
        else:
            raise ValueError
    except (ValueError, IndexError):
        m = k = n = max(1, round((op.flops / 2) ** (1 / 3))) if op.flops else 1
    return max(1, int(m)), max(1, int(k)), max(1, int(n))


@dataclass(frozen=True)
class OpTime:
    compute_s: float
    memory_s: float
    fixed_s: float
    kernel: bool
    alloc_s: float = 0.0  # allocating its outputs (page faults of fresh large blocks)


def fused_rnn_flops(op: OpEvent) -> int:
    """Matmul FLOPs of a fused CPU recurrence layer (`mkldnn_rnn_layer`, which PyTorch's
    counter counts as 0): 2 (T B) (input weights + hidden weights) forward, twice that for
    its backward. 0 for any other op."""
    if not op.name.startswith("mkldnn_rnn_layer") or len(op.shapes) < 3:
        return 0
    x, w_ih, w_hh = op.shapes[:3]
    rows = 1
    for d in x[:-1]:
        rows *= d
    flops = 2 * rows * (w_ih[0] * w_ih[-1] + w_hh[0] * w_hh[-1])
    return 2 * flops if op.name.endswith("backward") else flops


def fused_rnn_seconds(op: OpEvent, machine: Machine) -> float:
    """Compute seconds of a fused CPU recurrence layer (`mkldnn_rnn_layer`, x of shape
    (T, B, E)): its FLOPs at the machine's measured fused-LSTM rate for its batch, width and
    steps (`Machine.fused_rnn_flops_per_s`) when calibrated; else from the matmul table: oneDNN
    multiplies the input weights into every step at once, one
    (T B) x E @ E x (G D) product, and the hidden weights step by step, T products
    B x D @ D x (G D); each at the calibrated throughput of its own shape. A backward
    does both products twice (input and weight gradients)."""
    from analysis.calibrate import interpolate_log

    x, w_ih, w_hh = op.shapes[:3]
    rows = 1
    for d in x[:-1]:
        rows *= d
    batch = x[1] if len(x) > 2 else 1
    fused = machine.fused_rnn_flops_per_s
    if fused:  # the layer's own measured rate, by batch, width (and steps)
        phase = "backward" if op.name.endswith("backward") else "forward"
        steps = x[0] if len(x) > 2 else rows
        if "T" in fused:  # by steps too (an older machine file's table is at T = 16 only)
            rate = interpolate_log([fused["B"], fused["D"], fused["T"]], fused[phase],
                                   (batch, w_hh[-1], steps))
        else:
            rate = interpolate_log([fused["B"], fused["D"]], fused[phase], (batch, w_hh[-1]))
        return fused_rnn_flops(op) / rate

    def seconds(m, k, n):
        return 2 * rows * k * n / min(machine.throughput(m, k, n), machine.ceiling_flops_per_s)

    total = seconds(rows, w_ih[-1], w_ih[0]) + seconds(batch, w_hh[-1], w_hh[0])
    return 2 * total if op.name.endswith("backward") else total


def attention_seconds(op: OpEvent, machine: Machine) -> float | None:
    """Compute seconds of a CPU attention kernel call (`calibrate.ATTENTION_OPS`) at the
    machine's measured attention rate (`Machine.attention_flops_per_s`): the causal-square
    table of its phase when its queries are as many as its keys, else the "decode" table at
    B x H x queries rows; None when the machine has no such table or the op is no such
    call."""
    from analysis.calibrate import ATTENTION_OPS, interpolate_log

    table = machine.attention_flops_per_s
    phase = ATTENTION_OPS.get(op.name)
    if not table or phase is None or not op.flops:
        return None
    shapes = op.shapes[1:3] if phase == "backward" else op.shapes[:2]
    if len(shapes) < 2 or len(shapes[0]) < 2 or len(shapes[1]) < 2:
        return None
    (queries, width), keys = shapes[0][-2:], shapes[1][-2]
    heads_rows = 1
    for d in shapes[0][:-2]:
        heads_rows *= d
    if queries != keys:
        phase, heads_rows = "decode", heads_rows * queries
    rate = interpolate_log([table["BH"], table["T"], table["hd"]], table[phase],
                           (heads_rows, keys, width))
    return op.flops / rate


def op_time(op: OpEvent, machine: Machine, cache: dict | None = None) -> OpTime:
    """The op's compute, memory and fixed seconds on `machine` (`cache`: shape -> FLOP/s)."""
    compute = 0.0
    rnn_flops = 0 if op.flops else fused_rnn_flops(op)
    attention = None if rnn_flops else attention_seconds(op, machine)
    if rnn_flops:
        compute = fused_rnn_seconds(op, machine)
    elif attention is not None:
        compute = attention
    elif op.flops:
        key = (*matmul_shape(op), op.layout or "nn")
        rate = None if cache is None else cache.get(key)
        if rate is None:
            rate = min(machine.throughput(*key), machine.ceiling_flops_per_s)
            if cache is not None:
                cache[key] = rate
        compute = op.flops / rate
    memory = op.bytes / machine.bandwidth(op.bytes) if op.bytes else 0.0
    per_element = machine.elementwise_s_per_element.get(f"{op.name}:{op.layout}") \
        if op.layout and not op.flops else None
    per_element = per_element or machine.elementwise_s_per_element.get(op.name)
    if per_element and op.shapes:
        elements = 1
        for d in op.shapes[0]:
            elements *= d
        compute = max(compute, elements * per_element)
    kernel = op.kind in ("matmul", "elementwise")
    if kernel and op.phase == "backward" and machine.op_backward_s is not None:
        fixed = machine.op_backward_s
    else:
        fixed = {"matmul": machine.matmul_fixed_s, "elementwise": machine.op_fixed_s}.get(
            op.kind, machine.view_fixed_s)
    if op.kind != "matmul":  # an op whose own tiny call costs more than the generic one
        fixed = max(fixed, machine.op_fixed_by_name.get(op.name, 0.0))
    if op.records_graph:
        fixed += machine.op_autograd_s
    alloc = sum(machine.fresh_output_s(b) for b in op.fresh) if op.fresh else 0.0
    return OpTime(compute, memory, fixed, kernel, alloc)


def op_times(trace: Trace, machine: Machine) -> list[OpTime]:
    """op_time of every op of the trace, computed once per distinct op: a recurrent loop
    repeats the same op, shapes and phase at every step. The key holds every field op_time
    reads (not the op's index, depth or module)."""
    rates: dict = {}
    seen: dict = {}
    out = []
    for op in trace.ops:
        key = (op.name, op.kind, op.flops, op.bytes, op.shapes, op.out_shapes, op.phase,
               op.records_graph, op.layout, op.fresh)
        t = seen.get(key)
        if t is None:
            t = seen[key] = op_time(op, machine, rates)
        out.append(t)
    return out


SYNC_OPS = ("_local_scalar_dense",)  # the host reads the result (`.item()`): it waits


def cuda_pipeline(trace: Trace, times: list[OpTime], machine: Machine, per_op_s: float,
                  fixed: bool = True) -> tuple[float, float, float]:
    """(summed GPU time, the kernels' minimum-time floor above their own work, the end of the
    last op) of a trace on CUDA with the host and the device as a pipeline: the host issues
    the ops one by one, each after its fixed cost plus `per_op_s` (module calls and the
    code's own, spread evenly); a kernel starts once it is issued and the one before it has
    finished, and runs max(compute, memory, min_kernel_s); an op in SYNC_OPS makes the host
    wait for the GPU. GPU-bound, this is the GPU's time plus the first launch; host-bound,
    the host's plus the last kernel; between the two, more than either alone."""
    issued = done = gpu = floor = 0.0
    for op, t in zip(trace.ops, times):
        if fixed:
            issued += max(0.0, t.fixed_s + per_op_s)
        if op.name in SYNC_OPS:
            issued = max(issued, done)
        if t.kernel:
            busy = max(t.compute_s, t.memory_s)
            run = max(busy, machine.min_kernel_s)
            gpu += run
            floor += max(0.0, machine.min_kernel_s - busy)
            done = max(done, issued) + run
    return gpu, floor, max(issued, done)


def predict_trace(trace: Trace, machine: Machine, fixed: bool = True) -> dict:
    """predicted_s, regime and terms of a trace on a machine (see the module docstring);
    `fixed=False` sets every fixed cost (and the host bound) to zero: the bound that CUDA
    graphs or compilation could reach."""
    times = op_times(trace, machine)
    if machine.device == "cuda":
        # a fused recurrence is one cuDNN call: its ops run back to back on the GPU, the
        # host launches it once (counted below), not each op of the CPU decomposition
        times = [OpTime(t.compute_s, t.memory_s, 0.0, t.kernel) if op.fused else t
                 for op, t in zip(trace.ops, times)]
    compute = sum(t.compute_s for t in times if t.compute_s >= t.memory_s)
    memory = sum(t.memory_s for t in times if t.compute_s < t.memory_s)
    memory += sum(t.alloc_s for t in times)
    kernels = sum(1 for t in times if t.kernel)
    calls = trace.module_calls * machine.module_call_s
    if machine.device == "cuda":
        calls += trace.fused_calls * machine.op_fixed_s
    code = len(times) * machine.code_s_per_op.get(trace.code, 0.0)
    if machine.device == "cpu":
        overhead = max(0.0, sum(t.fixed_s for t in times) + calls + code) if fixed else 0.0
        total = compute + memory + overhead
        terms = {"compute": compute, "memory": memory, "launch/overhead": overhead}
        bound = "sum"
    else:
        host = max(0.0, sum(t.fixed_s for t in times) + calls + code) if fixed else 0.0
        gpu, floor, pipeline = cuda_pipeline(trace, times, machine,
                                             (calls + code) / len(times)
                                             if fixed and times else 0.0, fixed)
        depth = trace.depth * machine.min_kernel_s
        total = max(pipeline, depth)
        bound = "depth" if depth > pipeline else "host" if host > gpu else "gpu"
        # shares: the host (launch) term is what exceeds the GPU's own time
        overhead = max(0.0, total - gpu) + floor
        terms = {"compute": compute, "memory": memory, "launch/overhead": overhead}
    denom = sum(terms.values()) or 1.0
    regime = max(REGIMES, key=lambda r: terms[r])
    return {
        "predicted_s": total, "regime": regime, "bound": bound,
        "terms": {k: {"seconds": v, "share": v / denom} for k, v in terms.items()},
        "ops": len(trace.ops), "kernels": kernels, "depth": trace.depth,
        "flops": trace.flops, "bytes": trace.bytes,
    }


CODE_ROUND_S = 0.005  # calls per timed round of a tiny workload: at least this long


def measure_code_costs(machine: Machine, paced=None, workloads=None) -> dict:
    """What each bench workload's own Python code costs per op beyond the machine's per-op
    costs ({`Trace.code`: seconds per op}): its tiny run (`calibrate.tiny_workloads`: B 2,
    T 4, D 16, where an op costs its fixed cost) timed (median of 3 rounds of at least
    CODE_ROUND_S), rescaled to the machine's pace by `paced` (`calibrate.Paced`: the
    yardstick around it), less `machine`'s prediction of the same run, over its ops. The
    interpreter's work between ops (shape arithmetic, attribute lookups, a KV cache's
    bookkeeping, a generation step's slicing and sampling) shows as a positive cost; ops
    that a torch.nn recurrence issues from C++ cost less than ones called from Python (the
    per-op costs' measure), which shows as a negative one. Sizes none of the grids use."""
    import torch

    from analysis.calibrate import tiny_workloads

    out = {}
    for w in tiny_workloads() if workloads is None else workloads:
        with torch.enable_grad():  # as the bench runs a workload (the calibration: no_grad)
            out.update(_code_cost(w, machine, paced))
    return out


def _code_cost(w, machine: Machine, paced) -> dict:
    from analysis.calibrate import per_call
    from analysis.optrace import trace_workload
    from analysis.timing import WARM_CALLS, iterations_for
    from analysis.workloads import prepare

    trace = trace_workload(w)
    if not trace.ops:
        return {}
    p = prepare(w, machine.device)
    for _ in range(WARM_CALLS):
        p.fn()
    calls = iterations_for(per_call(p.fn, machine.device, 1, 3), CODE_ROUND_S)
    if paced is None:
        seconds = per_call(p.fn, machine.device, calls, 3)
    else:
        seconds, pace = paced.around(lambda: per_call(p.fn, machine.device, calls, 3))
        if machine.yardstick_s:
            seconds *= machine.yardstick_s / pace
    predicted = predict_trace(trace, machine.replace(code_s_per_op={}))["predicted_s"]
    return {trace.code: (seconds - predicted) / len(trace.ops)}


def pace_factor(yardstick_s, machine: Machine) -> float:
    """How much slower the machine ran during a measurement than at its calibration: the
    yardstick timed around the measurement over the machine file's (1.0 when either is
    missing). A prediction times this is the time at the measurement's pace."""
    try:
        ratio = float(yardstick_s) / float(machine.yardstick_s)
    except (TypeError, ValueError, ZeroDivisionError):
        return 1.0
    return ratio if math.isfinite(ratio) and ratio > 0 else 1.0


def predict_workload(workload, machine: Machine, fixed: bool = True) -> dict:
    """Prediction for one bench workload (one round, traced on fake tensors): a dict with
    predicted_s, regime, terms (seconds and share of compute, memory, launch/overhead),
    ops, kernels, depth, flops, bytes."""
    from analysis.optrace import trace_workload

    return predict_trace(trace_workload(workload), machine, fixed=fixed)


def workload_from_row(row) -> object:
    """The bench Workload a timing.csv row describes (its config columns)."""
    from analysis.architectures import architecture
    from analysis.workloads import Workload, eager_name, variants

    def num(key):
        v = row.get(key)
        try:
            return None if v is None or v != v else int(v)
        except (TypeError, ValueError):
            return None

    # a CUDA-graph replay's row ("<variant>+cuda-graph") is the same workload
    variant = lookup(variants(), eager_name(row["variant"]), "variant")
    kw = dict(variant=variant.name, phase=row["phase"], batch=num("B"),
              seq_len=num("seq_len") or num("T"), hidden=num("D"), vocab=num("V") or 65,
              new_tokens=num("N") or 0, sweep=row.get("sweep") or "base")
    if variant.kind == "attention":
        kw["heads"] = num("H")
    else:
        kw.update(layers=num("L"),
                  heads=num("H") if architecture(variant.model).has_attention else None)
        if row.get("E") is not None and num("E") != num("D"):
            kw["embed"] = num("E")
    return Workload(**kw)


# what rebuilding or tracing a row's workload may raise: recorded on the row, not raised
PREDICT_ERRORS = (ValueError, RuntimeError, KeyError, AssertionError)


def predict_rows(timing, machine: Machine, progress=None, traces: dict | None = None):
    """timing.csv rows with the prediction beside each (one trace per row, on its config
    columns): predicted_s (at the pace the row ran at: times its pace_factor, from its
    yardstick_s column when it has one), predicted_calibrated_s (at the machine file's
    pace), pace_factor, predicted_nofixed_s (every fixed cost zero, at the row's pace),
    regime, bound, share_compute, share_memory, share_overhead, ratio (predicted_s /
    measured median_s), trace_ops, trace_kernels, trace_flops, trace_bytes, trace_depth. A
    row whose workload cannot be rebuilt gets its error in predict_error. `progress(i)`
    after each row. `traces`: a dict of traces by workload, filled and reused (a trace does
    not depend on the machine, so rows of several devices' tables share one)."""
    import pandas as pd

    from analysis.optrace import trace_workload

    out = []
    traces = {} if traces is None else traces
    for i, (_, row) in enumerate(timing.iterrows()):
        try:
            workload = workload_from_row(row)
            if workload not in traces:
                traces[workload] = trace_workload(workload)
            trace = traces[workload]
            p = predict_trace(trace, machine)
            pace = pace_factor(row.get("yardstick_s"), machine)
            rec = {"predicted_s": p["predicted_s"] * pace,
                   "predicted_calibrated_s": p["predicted_s"], "pace_factor": pace,
                   "predicted_nofixed_s": predict_trace(trace, machine, fixed=False)[
                       "predicted_s"] * pace,
                   "regime": p["regime"], "bound": p["bound"],
                   "share_compute": p["terms"]["compute"]["share"],
                   "share_memory": p["terms"]["memory"]["share"],
                   "share_overhead": p["terms"]["launch/overhead"]["share"],
                   "trace_ops": p["ops"], "trace_kernels": p["kernels"],
                   "trace_flops": p["flops"], "trace_bytes": p["bytes"],
                   "trace_depth": p["depth"], "predict_error": None}
        except PREDICT_ERRORS as exc:
            rec = {"predicted_s": float("nan"), "predict_error": f"{type(exc).__name__}: {exc}"}
        out.append(rec)
        if progress is not None:
            progress(i)
    frame = timing.reset_index(drop=True).copy()
    extra = pd.DataFrame(out, index=frame.index)
    for col in extra.columns:
        frame[col] = extra[col]
    if "median_s" in frame:
        frame["ratio"] = frame["predicted_s"] / frame["median_s"]
    return frame


BANDS = (0.10, 0.25)  # absolute percentage error bands (nn-Meter's is +-10%)
FACTORS = (1.5, 2.0)


def error_stats(predicted, measured) -> dict:
    """How far `predicted` times are from `measured` ones, as the field states it, over the
    pairs with both positive and finite. Per pair the factor max(p/m, m/p) and the absolute
    percentage error |p - m| / m; over the pairs: "rows", "median factor", "worst factor",
    "median APE", "MAPE" (the mean APE: nn-Meter, MobiSys 2021, and Habitat, USENIX ATC 2021,
    report it), "within 10%" and "within 25%" (APE bands), "within 1.5x" and "within 2x"
    (factor bands), "median predicted/measured" (the bias: < 1 predicts low). NaN for no
    pair."""
    import numpy as np

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape:
        raise ValueError(f"error_stats needs pairs; got {p.size} predicted, {m.size} measured")
    ok = np.isfinite(p) & np.isfinite(m) & (p > 0) & (m > 0)
    p, m = p[ok], m[ok]
    keys = ("median factor", "worst factor", "median APE", "MAPE",
            *(f"within {b:.0%}" for b in BANDS), *(f"within {f:g}x" for f in FACTORS),
            "median predicted/measured")
    if not p.size:
        return {"rows": 0, **{k: float("nan") for k in keys}}
    log_ratio = np.log(p / m)
    err = np.abs(log_ratio)
    ape = np.abs(p - m) / m
    values = [np.exp(np.median(err)), np.exp(err.max()), np.median(ape), ape.mean(),
              *((ape <= b).mean() for b in BANDS),
              *((err <= math.log(f)).mean() for f in FACTORS), np.exp(np.median(log_ratio))]
    return {"rows": int(p.size), **{k: float(v) for k, v in zip(keys, values)}}


__all__ = ["CODE_ROUND_S", "PREDICT_ERRORS", "REGIMES", "SYNC_OPS", "attention_seconds",
           "cuda_pipeline", "error_stats",
           "measure_code_costs", "matmul_shape", "op_time", "pace_factor",
           "predict_rows", "predict_trace", "predict_workload", "workload_from_row"]
