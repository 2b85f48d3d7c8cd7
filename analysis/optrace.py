"""A dispatch-mode op trace: every aten op a workload runs, with its FLOPs, bytes and shapes.

`OpTracer` (a `TorchDispatchMode`) records, for each dispatched op:

- ``flops``: PyTorch's own formulas (`torch.utils.flop_counter`'s registry, 2 per
  multiply-add), with the project's CPU SDPA mapping (`analysis.counters.cpu_sdpa_mapping`),
  so the trace's total equals what `FlopCounterMode` counts;
- ``bytes``: inputs read plus outputs written, unfused: the storage bytes (numel x item size)
  of every distinct tensor argument and every distinct returned tensor. A view (no data
  moved), an `empty` (nothing written) and size queries move 0 bytes;
- ``kind``: "matmul" (an op with a FLOP formula), "view" (metadata only: no kernel on a
  GPU) or "elementwise" (everything else that moves data: pointwise, reductions, copies,
  indexing, optimizer updates); "alloc" for `empty`-like ops;
- the input shapes of tensor arguments (for the matmul throughput by shape),
- ``layout`` (matmuls): "n" or "t" per operand of the product, "t" when it is a transposed
  view (column-major: what `nn.Linear` passes, `x @ W.t()`, and its weight gradient
  `g.t() @ x`); BLAS libraries run the layouts at different speeds (on one CPU thread
  x @ W.t() with 8 rows took 1.5-2x the time of x @ W);
- ``fresh`` (matmul and elementwise ops): the bytes of each output the op allocates (not an
  input written in place or an `out=` tensor): a large fresh block costs page faults on CPU
  (see `analysis.calibrate.measure_fresh_outputs`);
- ``phase``: forward, autograd (the op records a graph) or backward (the engine runs it);
- ``fused``: run inside a fused torch.nn recurrence (`nn.RNNBase`: one cuDNN call on CUDA;
  a CPU trace sees its per-step decomposition);
- ``depth``: the op's place on the longest chain of data-moving ops (views weigh 0): the
  critical-path depth in kernels that a GPU could not shorten.

Run a workload on fake tensors (`analysis.quantities.shapes_only`) to trace any size without
allocating: the tracer is entered inside the fake mode, as `analysis.counters` does with
`FlopCounterMode`, and sees the same aten ops as with real tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, shape_wrapper

# metadata-only ops the schema does not always mark as views
VIEW_NAMES = frozenset({
    "_unsafe_view", "_reshape_alias", "detach", "alias", "lift_fresh", "view", "t",
    "transpose", "permute", "expand", "unsqueeze", "squeeze", "select", "slice", "as_strided",
    "unfold", "split", "split_with_sizes", "chunk", "unbind", "_unsafe_view_copy",
    "set_", "resize_", "_has_compatible_shallow_copy_type", "sym_size", "sym_stride",
    "sym_numel", "sym_storage_offset", "size", "stride", "dim", "is_same_size",
})
ALLOC_NAMES = frozenset({"empty", "empty_like", "empty_strided", "new_empty",
                         "new_empty_strided"})
KINDS = ("matmul", "elementwise", "view", "alloc")


def op_name(func) -> str:
    """'aten.addmm.default' -> 'addmm'."""
    return func._schema.name.split("::")[-1]


def is_view_op(func, name: str) -> bool:
    """A metadata-only op: marked a view in its schema, or one of VIEW_NAMES."""
    return bool(getattr(func, "is_view", False)) or name in VIEW_NAMES


def _flop_formulas() -> dict:
    from analysis.counters import cpu_sdpa_mapping

    formulas = dict(flop_registry)
    for op, fn in cpu_sdpa_mapping().items():
        formulas[op] = shape_wrapper(fn)
    return formulas


@dataclass(frozen=True)
class OpRecord:
    """One dispatched op (see the module docstring)."""

    index: int
    name: str
    kind: str
    flops: int
    bytes: int
    shapes: tuple  # input tensor shapes, in argument order
    out_shapes: tuple
    depth: int
    module: str = ""  # innermost module running the op (path in the traced model), "" if none
    phase: str = "forward"  # forward | autograd (recording a graph) | backward (the engine)
    fused: bool = False  # inside a fused torch.nn recurrence (nn.RNN/GRU/LSTM: cuDNN on GPU)
    layout: str = ""  # matmuls: "nn", "nt", "tn" or "tt" (operands as stored); else ""
    fresh: tuple = ()  # bytes of each output the op allocates (matmul and elementwise ops)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shapes"] = [list(s) for s in self.shapes]
        d["out_shapes"] = [list(s) for s in self.out_shapes]
        d["fresh"] = list(self.fresh)
        return d


# the two operands of a matrix product, by position in the op's arguments
PRODUCT_OPERANDS = {"mm": (0, 1), "matmul": (0, 1), "bmm": (0, 1), "addmm": (1, 2),
                    "_addmm_activation": (1, 2), "baddbmm": (1, 2)}


def _transposed(t) -> bool:
    """A matrix (the last two dims) stored column-major: a transposed view of a contiguous
    one. A vector-like matrix (one row or column) counts as not transposed."""
    if not isinstance(t, torch.Tensor) or t.dim() < 2 or t.size(-2) < 2 or t.size(-1) < 2:
        return False
    return t.stride(-2) == 1 and t.stride(-1) != 1


def matmul_layout(name: str, args) -> str:
    """'nn', 'nt', 'tn' or 'tt' for a matrix product op ("t": that operand is transposed);
    '' for any other op."""
    where = PRODUCT_OPERANDS.get(name)
    if where is None or len(args) <= max(where):
        return ""
    return "".join("t" if _transposed(args[i]) else "n" for i in where)


def tensors_in(obj, into: list | None = None) -> list:
    """The tensors in an op's arguments or outputs (nested tuples, lists and dict values, in
    order): what torch.utils._pytree.tree_flatten finds, at a fraction of its cost, which
    was a quarter of a trace's time."""
    into = [] if into is None else into
    if isinstance(obj, torch.Tensor):
        into.append(obj)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            tensors_in(item, into)
    elif isinstance(obj, dict):
        for item in obj.values():
            tensors_in(item, into)
    return into


def tensor_bytes(t: torch.Tensor) -> int:
    return int(t.numel()) * int(t.element_size())


class OpTracer(TorchDispatchMode):
    """Records an `OpRecord` per dispatched aten op (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.records: list[OpRecord] = []
        self._formulas = _flop_formulas()
        self._depth: dict[int, int] = {}  # id(tensor) -> depth of its producer
        self._alive: list[torch.Tensor] = []  # keeps ids unique for the trace's lifetime
        self.modules: list[str] = []  # stack of module paths (set by trace_ops' hooks)
        self.module_calls = 0  # nn.Module forward calls seen (set by trace_ops' hooks)
        self.fused_calls = 0  # calls of fused recurrences (nn.RNNBase) seen
        self.fused_depth = 0  # > 0 while inside one
        self._fused_nodes: set[int] = set()  # autograd nodes of ops run inside one

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.namespace == "prim":  # device/layout queries fake tensors dispatch; real don't
            return out
        name = op_name(func)
        packet = func.overloadpacket
        inputs = tensors_in((args, kwargs))
        outputs = tensors_in(out)
        flops = 0
        formula = self._formulas.get(packet)
        if formula is not None:
            flops = int(formula(*args, **kwargs, out_val=out))
        is_view = is_view_op(func, name)
        if formula is not None:
            kind = "matmul"
        elif name in ALLOC_NAMES:
            kind = "alloc"
        elif is_view or not outputs and not inputs:
            kind = "view"
        else:
            kind = "elementwise"
        nbytes, fresh = 0, ()
        if kind in ("matmul", "elementwise"):
            seen = set()
            for t in inputs + outputs:
                key = id(t)
                if key not in seen:
                    seen.add(key)
                    nbytes += tensor_bytes(t)
            given = {id(t) for t in inputs}  # in place, or out=: written, not allocated
            fresh = tuple(tensor_bytes(t) for t in outputs if id(t) not in given)
        before = max((self._depth.get(id(t), 0) for t in inputs), default=0)
        depth = before + (1 if kind in ("matmul", "elementwise") else 0)
        for t in outputs:
            self._depth[id(t)] = depth
            self._alive.append(t)
        fused = self.fused_depth > 0
        if torch._C._current_graph_task_id() != -1:
            phase = "backward"
            node = torch._C._current_autograd_node()
            fused = node is not None and id(node) in self._fused_nodes
        elif torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
            phase = "autograd"
        else:
            phase = "forward"
        self.records.append(OpRecord(
            index=len(self.records), name=name, kind=kind, flops=flops, bytes=nbytes,
            shapes=tuple(tuple(t.shape) for t in inputs),
            out_shapes=tuple(tuple(t.shape) for t in outputs), depth=depth,
            module=self.modules[-1] if self.modules else "", phase=phase, fused=fused,
            layout=matmul_layout(name, args) if kind == "matmul" else "", fresh=fresh))
        if fused and phase == "autograd":  # its backward belongs to the fused call too
            for t in outputs:
                if t.grad_fn is not None:
                    self._fused_nodes.add(id(t.grad_fn))
                    self._alive.append(t.grad_fn)
        return out


@dataclass(frozen=True)
class OpTrace:
    """The ops of one run, in dispatch order, with totals."""

    ops: tuple[OpRecord, ...]
    module_calls: int = 0  # nn.Module forward calls during the run (Python-side overhead)
    fused_calls: int = 0  # calls of fused torch.nn recurrences (one cuDNN call each on CUDA)

    @property
    def flops(self) -> int:
        return sum(op.flops for op in self.ops)

    @property
    def bytes(self) -> int:
        return sum(op.bytes for op in self.ops)

    def count(self, kind: str) -> int:
        return sum(1 for op in self.ops if op.kind == kind)

    @property
    def kernels(self) -> int:
        """Data-moving ops (matmul + elementwise): at least one GPU kernel each."""
        return self.count("matmul") + self.count("elementwise")

    @property
    def depth(self) -> int:
        """Longest chain of data-moving ops (views weigh 0)."""
        return max((op.depth for op in self.ops), default=0)

    def bytes_of(self, kind: str) -> int:
        return sum(op.bytes for op in self.ops if op.kind == kind)

    def summary(self) -> dict:
        return {"ops": len(self.ops), "kernels": self.kernels, "depth": self.depth,
                "module_calls": self.module_calls,
                "flops": self.flops, "bytes": self.bytes,
                **{f"{k}_ops": self.count(k) for k in KINDS},
                **{f"{k}_bytes": self.bytes_of(k) for k in ("matmul", "elementwise")}}


def trace_ops(fn: Callable[[], object], model: torch.nn.Module | None = None) -> OpTrace:
    """Run `fn()` under an `OpTracer` and return its trace (nn.Module calls counted by global
    forward hooks); with `model`, each op also records the path of the innermost submodule
    of `model` running it."""
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )

    tracer = OpTracer()
    names = {id(m): name for name, m in model.named_modules()} if model is not None else {}

    def enter(module, args):
        tracer.module_calls += 1
        if isinstance(module, torch.nn.RNNBase):
            tracer.fused_calls += 1
            tracer.fused_depth += 1
        if id(module) in names:
            tracer.modules.append(names[id(module)])

    def leave(module, args, out):
        if isinstance(module, torch.nn.RNNBase):
            tracer.fused_depth -= 1
        if id(module) in names and tracer.modules:
            tracer.modules.pop()

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave)]
    try:
        with tracer:
            fn()
    finally:
        for h in handles:
            h.remove()
    return OpTrace(tuple(tracer.records), tracer.module_calls, tracer.fused_calls)


def workload_callable(workload) -> Callable[[], object]:
    """One round of a bench workload, built as `analysis.workloads.prepare` builds it but
    without moving to a device (so it also works inside `shapes_only`)."""
    from analysis.quantities import runner
    from charlm.models.registry import build_model

    w = workload
    torch.manual_seed(0)
    spec, arch = w.spec, w.arch
    if spec.kind == "attention":
        cfg = w.model_config()
        layer = arch.attention_layer(cfg.hidden, cfg.heads, w.seq_len, spec.attention).eval()
        x = torch.randn(w.batch, w.seq_len, cfg.hidden)

        def attend():
            with torch.no_grad():
                return layer(x)[0]

        return attend
    quantity, kv_cache = w.quantity
    model = build_model(w.model_config())
    if spec.impl != "homework":
        model = arch.torch_twin(model)
    return runner(model, quantity, w.sizes(), kv_cache)


REAL_TRACE_BYTES = 2**28  # below this estimated footprint a trace runs on real tensors


def footprint_estimate(workload) -> int:
    """Rough float32 bytes a round holds: 16 x the forward's weights + logits (weights,
    gradients, two Adam moments; activations), plus the attention squares."""
    from analysis.counters import forward_bytes_estimate

    w = workload
    cfg = w.model_config()
    sizes = w.sizes()
    base = 16 * forward_bytes_estimate(cfg, {"B": w.batch, "T": w.context})
    square = 4 * 8 * w.batch * (cfg.heads or 1) * w.context ** 2 if cfg.heads else 0
    return base + (cfg.layers or 1) * square + 4 * 64 * w.batch * w.context * sizes["D"]


def trace_workload(workload, fake: bool | None = None) -> OpTrace:
    """The ops of ONE round of a bench workload. fake None: real tensors when the round is
    small (`footprint_estimate` below REAL_TRACE_BYTES: a real small op runs faster than a
    fake one), else fake tensors (any size, nothing allocated; the same aten ops). A
    torch.nn twin (kind "reference") deep-copies weights, which fake tensors do not
    support: it always runs real."""
    from analysis.counters import single_thread
    from analysis.quantities import shapes_only

    if fake is None:
        fake = footprint_estimate(workload) >= REAL_TRACE_BYTES
    with single_thread():
        if not fake or workload.kind == "reference":
            return trace_ops(workload_callable(workload))
        with shapes_only():
            return trace_ops(workload_callable(workload))


def trace_quantity(cfg, quantity: str, sizes: dict, kv_cache: bool = False) -> OpTrace:
    """The ops of `quantity` (forward, backward, train, generate) of the model `cfg`
    describes, on fake tensors (see `analysis.quantities.runner`)."""
    from analysis.counters import single_thread
    from analysis.quantities import check_request, runner, shapes_only
    from charlm.models.registry import build_model

    check_request(cfg, quantity, sizes, kv_cache)
    if quantity == "params":
        raise ValueError("params runs no ops; choose forward, backward, train or generate")
    with single_thread(), shapes_only():
        torch.manual_seed(0)
        model = build_model(cfg)
        return trace_ops(runner(model, quantity, sizes, kv_cache), model)


__all__ = ["KINDS", "OpRecord", "OpTrace", "OpTracer", "op_name", "tensor_bytes",
           "trace_ops", "trace_quantity", "trace_workload", "workload_callable"]
