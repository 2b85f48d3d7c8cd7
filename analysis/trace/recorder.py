"""The one op tracer of charlm: a `TorchDispatchMode` that records an `OpEvent` per aten op.

`trace(fn, model)` runs any callable (a forward, a train step, a generation loop) under a
`Tracer` and returns a `Trace` (`analysis.trace.events`). It runs on whatever tensors `fn`
makes: real ones, fake ones (inside `analysis.workloads.shapes_only`) or meta ones; the
events are the same aten ops with the same shapes (tested), only values are missing.
Every analysis reads this trace: FLOPs (`analysis.counters`), bytes, depth
(`analysis.depth`), peak memory (`analysis.timing.peak_memory`), the ops the calibration
replays (`analysis.calibrate`) and predicted time (`analysis.predict`).

Options, each costing only when asked for:

- ``model``: name modules (`OpEvent.module`, by PyTorch's `ModuleTracker`, so backward ops
  are attributed as `FlopCounterMode` attributes them) and the model's parameters
  (`OpEvent.params`); ``modules=False`` skips the module tracker (its hooks allocate a few
  hundred bytes, which a peak-memory measurement must not see).
- ``memory``: track the bytes of storages made during the trace (`OpEvent.live_bytes`,
  `Trace.peak_bytes`): each new storage is counted when an op returns it and subtracted
  when it is freed. Without it every tensor the run makes is kept until the trace ends, so
  that `id()` stays unique; with it tensors die as they would and their ids are dropped.
- ``first_calls``: keep the first call (op, arguments) of each op without a FLOP formula,
  for the calibration to replay (`Tracer.first_calls`).
- ``meta_shortcut``: on the meta device, answer a pointwise op whose tensor inputs share
  one shape, one floating dtype and a contiguous layout with an empty tensor of that shape
  directly (a few microseconds, against ~100 us for the Python reference its meta kernel
  runs; tested against it op by op). The event is recorded all the same.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from analysis.trace.events import OpEvent, Trace
from analysis.trace.formulas import shape_formulas

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
SCAN_OPS = frozenset({"cumsum", "cumsum_", "cumprod", "cumprod_", "logcumsumexp",
                      "_logcumsumexp", "cummax", "cummin", "_cummax_helper", "_cummin_helper"})
# the two operands of a matrix product, by position in the op's arguments
PRODUCT_OPERANDS = {"mm": (0, 1), "matmul": (0, 1), "bmm": (0, 1), "addmm": (1, 2),
                    "_addmm_activation": (1, 2), "baddbmm": (1, 2)}
_aten = torch.ops.aten
META_POINTWISE = frozenset({
    _aten.add.Tensor, _aten.sub.Tensor, _aten.mul.Tensor, _aten.div.Tensor,
    _aten.add.Scalar, _aten.mul.Scalar, _aten.rsub.Scalar, _aten.neg.default,
    _aten.sigmoid.default, _aten.tanh.default, _aten.exp.default,
    _aten.sigmoid_backward.default, _aten.tanh_backward.default})


def op_name(func) -> str:
    """'aten.addmm.default' -> 'addmm'."""
    return func._schema.name.split("::")[-1]


def is_view_op(func, name: str) -> bool:
    """A metadata-only op: marked a view in its schema, or one of VIEW_NAMES."""
    return bool(getattr(func, "is_view", False)) or name in VIEW_NAMES


def tensors_in(obj, into: list | None = None) -> list:
    """The tensors in an op's arguments or outputs (nested tuples, lists and dict values, in
    order): what torch.utils._pytree.tree_flatten finds, at a fraction of its cost."""
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


def shapes_of(obj):
    """`obj` with every tensor replaced by its shape, plain tuples, lists and dicts rebuilt
    around them (what PyTorch's `shape_wrapper` does with pytree's tree_map)."""
    if isinstance(obj, torch.Tensor):
        return obj.shape
    kind = type(obj)
    if kind is tuple or kind is list:
        return kind(shapes_of(x) for x in obj)
    if kind is dict:
        return {k: shapes_of(v) for k, v in obj.items()}
    return obj


def storage_key(t: torch.Tensor) -> int | None:
    """Identity of a tensor's storage (shared by its views), on real, fake and meta tensors
    alike; None for a tensor without one."""
    try:
        storage = t.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return None
    return storage._cdata if storage.nbytes() else None


def scan_steps(n: int) -> int:
    """ceil(log2 n): combining steps on the critical path of a parallel scan over n positions
    (0 for n = 1)."""
    return max(int(n) - 1, 0).bit_length()


def _scan_weight(name: str, args, kwargs) -> int:
    if name not in SCAN_OPS:
        return 0
    x = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return 0
    return scan_steps(x.shape[dim])


def scan_layout(name: str, args, kwargs) -> str:
    """A scan op's access: "c" when the scanned dim is the innermost one in memory (stride
    1: each scanned row is contiguous), "s" when the scan steps across a stride (a scan over
    T of a (B, T, D) tensor); "" for any other op or a tensor without strides."""
    if name not in SCAN_OPS:
        return ""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return ""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    try:
        stride = x.stride(dim)
    except (RuntimeError, NotImplementedError, IndexError):
        return ""
    return "c" if stride == 1 or x.shape[dim] == 1 else "s"


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


def _meta_shortcut(func, args, kwargs):
    """An empty meta tensor standing for a pointwise op's output, or None (see the module
    docstring)."""
    if func not in META_POINTWISE or (kwargs and set(kwargs) != {"alpha"}):
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    first = tensors[0] if tensors else None
    if (first is not None and first.is_meta and first.dtype.is_floating_point
            and all(isinstance(a, (torch.Tensor, float, int)) and not isinstance(a, bool)
                    for a in args)
            and all(t.is_meta and t.shape == first.shape and t.dtype == first.dtype
                    and t.is_contiguous() for t in tensors)):
        return torch.empty(first.shape, dtype=first.dtype, device="meta")
    return None


_new_event = tuple.__new__  # builds a named tuple from a tuple, without keyword handling
_FUSED = "charlm.fused"  # autograd-node metadata key: made inside a fused recurrence


class _OpInfo:
    """What the tracer needs of an op overload, worked out once per overload."""

    __slots__ = ("name", "view", "formula", "on_shapes", "alloc", "arguments", "scan")

    def __init__(self, func, formulas: dict):
        self.name = op_name(func)
        self.view = is_view_op(func, self.name)
        self.formula, self.on_shapes = formulas.get(func.overloadpacket, (None, False))
        self.alloc = self.name in ALLOC_NAMES
        self.scan = self.name in SCAN_OPS
        # the arguments that can hold tensors: (position or None for keyword-only, name,
        # written)
        self.arguments = tuple(
            (None if a.kwarg_only else i, a.name,
             a.alias_info is not None and a.alias_info.is_write)
            for i, a in enumerate(func._schema.arguments) if "Tensor" in str(a.type))

    def flops(self, args, kwargs, out) -> int:
        if self.formula is None:
            return 0
        if self.on_shapes:
            return int(self.formula(*shapes_of(args), out_shape=shapes_of(out),
                                    **shapes_of(kwargs)))
        return int(self.formula(*args, **kwargs, out_val=out))


class Tracer(TorchDispatchMode):
    """Records an `OpEvent` per dispatched aten op (see the module docstring). Use through
    `trace()`, which also installs the module and optimizer hooks the events name."""

    def __init__(self, params: Mapping[str, torch.Tensor] | None = None, *,
                 memory: bool = False, first_calls: bool = False,
                 meta_shortcut: bool = False):
        super().__init__()
        self.events: list[OpEvent] = []
        self.memory = memory
        self.meta_shortcut = meta_shortcut
        self.first_calls: dict[str, tuple] | None = {} if first_calls else None
        self._formulas = shape_formulas()
        self._info: dict = {}
        self._where: dict[int, tuple[int, int]] = {}  # id(tensor) -> (event, output)
        self._writer: dict[int, tuple[int, int]] = {}  # storage key -> last in-place write
        self._depth: dict[tuple[int, int], int] = {}  # (event, output) -> kernel depth
        self._alive: list = []  # without memory tracking: keeps ids unique
        self._refs: dict[int, weakref.ref] = {}  # with it: drops an id when its tensor dies
        self._params = {storage_key(t): name for name, t in (params or {}).items()}
        self._params.pop(None, None)
        self.flops = 0  # FLOPs of the events so far (read by a progress watcher)
        self.current = 0  # bytes of storages made during the trace and alive now
        self.peak = 0
        self._live: dict[int, tuple] = {}  # storage key -> (bytes, weak reference)
        # set by trace()'s hooks
        self.module_tracker = None
        self.module_prefix = ""
        self._module_names: dict = {}  # the tracker's active set -> (names, innermost)
        self.module_calls = 0
        self.fused_calls = 0
        self.fused_depth = 0
        self.optimizer_depth = 0

    # -- dispatch --------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = _meta_shortcut(func, args, kwargs) if self.meta_shortcut else None
        if out is None:
            out = func(*args, **kwargs)
        if func.namespace != "prim":  # device/layout queries fake tensors dispatch
            self._record(func, args, kwargs, out)
        return out

    def _record(self, func, args, kwargs, out):
        info = self._info.get(func)
        if info is None:
            info = self._info[func] = _OpInfo(func, self._formulas)
        named, written = [], []  # (argument name, tensor); positions written
        for position, arg_name, writes in info.arguments:
            if position is not None and position < len(args):
                value = args[position]
            elif arg_name in kwargs:
                value = kwargs[arg_name]
            else:
                continue
            for t in tensors_in(value):
                if writes:
                    written.append(len(named))
                named.append((arg_name, t))
        inputs = [t for _, t in named]
        outputs = tensors_in(out)
        index = len(self.events)
        flops = info.flops(args, kwargs, out)
        self.flops += flops
        if info.formula is not None:
            kind = "matmul"
        elif info.alloc:
            kind = "alloc"
        elif info.view or not outputs and not inputs:
            kind = "view"
        else:
            kind = "elementwise"
        moves = kind in ("matmul", "elementwise")
        read = wrote = 0
        fresh = ()
        if moves:
            seen = set()
            for t in inputs:
                if id(t) not in seen:
                    seen.add(id(t))
                    read += t.nbytes
            given = set(seen)  # in place, or out=: written, not allocated
            for t in outputs:
                if id(t) not in seen:
                    seen.add(id(t))
                    wrote += t.nbytes
            fresh = tuple(t.nbytes for t in outputs if id(t) not in given)
        # storages matter once a write happened (reads after it depend on it), for naming
        # parameters and for memory; a run without them skips the lookups
        if self._writer or written or self._params or self.memory:
            keys = [storage_key(t) for t in inputs]
        else:
            keys = [None] * len(inputs)
        if self._writer:
            sources = tuple(self._source(t, key) for t, key in zip(inputs, keys))
        else:  # no write yet: a tensor holds what its maker made
            where = self._where
            sources = tuple(where.get(id(t)) for t in inputs)
        depths = self._depth
        depth = max((depths.get(s, 0) for s in sources if s is not None), default=0)
        depth += 1 if moves else 0
        results = len(outputs) or int(bool(written))
        for i, t in enumerate(outputs):
            self._bind(t, (index, i))
            self._depth[(index, i)] = depth
        for position in written:  # each written tensor and its storage now hold the result
            self._bind(inputs[position], (index, 0))
            if keys[position] is not None:
                self._writer[keys[position]] = (index, 0)
        if not outputs and written:
            self._depth[(index, 0)] = depth
        if self.memory:
            self._track(outputs, keys)
        phase, records_graph = self._phase(inputs)
        fused = self._fused(phase, records_graph, outputs)
        modules, module = self._modules()
        self.events.append(_new_event(OpEvent, (  # positional, in OpEvent's field order
            index, info.name, kind, flops, read + wrote,
            # plain tuples, not torch.Size: a trace sent between processes pickles 5x faster
            tuple(tuple(t.shape) for t in inputs),
            tuple(tuple(t.shape) for t in outputs), depth, module, phase, fused,
            matmul_layout(info.name, args) if kind == "matmul"
            else scan_layout(info.name, args, kwargs) if info.scan else "", fresh,
            records_graph, tuple(t.dtype for t in inputs), read, wrote,
            tuple(zip([name for name, _ in named], sources)), tuple(written), results,
            _scan_weight(info.name, args, kwargs) if info.scan else 0,
            tuple(dict.fromkeys(self._params[k] for k in keys if k in self._params))
            if self._params else (),
            modules, self.current if self.memory else None)))
        if self.first_calls is not None and info.formula is None:
            self.first_calls.setdefault(info.name, (func, args, kwargs, info.view))

    def _source(self, t: torch.Tensor, key: int | None):
        """(event, output) whose result `t` holds now: its maker or a later in-place write
        to its storage, whichever came last; None for a tensor made outside the trace."""
        own = self._where.get(id(t))
        written = self._writer.get(key) if key is not None else None
        if own is None:
            return written
        if written is None or written[0] <= own[0]:
            return own
        return written

    def _bind(self, t: torch.Tensor, where: tuple[int, int]):
        key = id(t)
        self._where[key] = where
        if not self.memory:
            self._alive.append(t)
        elif key not in self._refs:
            self._refs[key] = weakref.ref(t, lambda _, key=key: self._forget(key))

    def _forget(self, key: int):
        self._where.pop(key, None)
        self._refs.pop(key, None)

    def _track(self, outputs, input_keys):
        given = set(input_keys)
        for t in outputs:
            if t.layout != torch.strided:
                continue
            try:
                storage = t.untyped_storage()
            except (RuntimeError, NotImplementedError):
                continue
            nbytes = storage.nbytes()
            key = storage._cdata
            if not nbytes or key in given or key in self._live:
                continue
            # a weak reference with a callback: a tenth of weakref.finalize's cost
            self._live[key] = (nbytes, weakref.ref(storage, lambda _, key=key: self._freed(key)))
            self.current += nbytes
            self.peak = max(self.peak, self.current)

    def _freed(self, key: int):
        nbytes, _ = self._live.pop(key, (0, None))
        self.current -= nbytes
        self._writer.pop(key, None)

    def _phase(self, inputs) -> tuple[str, bool]:
        if torch._C._current_graph_task_id() != -1:
            return "backward", False
        if self.optimizer_depth:
            return "optimizer", False
        return "forward", torch.is_grad_enabled() and any(t.requires_grad for t in inputs)

    def _fused(self, phase: str, records_graph: bool, outputs) -> bool:
        """Inside a fused torch.nn recurrence: its forward ops run inside its module call;
        their autograd nodes are marked, and a backward op belongs to it when the engine
        runs a marked node."""
        if not self.fused_calls:
            return False
        if phase == "backward":
            node = torch._C._current_autograd_node()
            return node is not None and node.metadata.get(_FUSED, False)
        if self.fused_depth <= 0:
            return False
        if records_graph:
            for t in outputs:
                if t.grad_fn is not None:
                    t.grad_fn.metadata[_FUSED] = True
        return True

    def _modules(self) -> tuple[frozenset, str]:
        tracker = self.module_tracker
        if tracker is None:
            return frozenset(), ""
        raw = frozenset(tracker.parents)
        found = self._module_names.get(raw)
        if found is None:
            prefix = self.module_prefix
            names = frozenset(n[len(prefix):] for n in raw if n.startswith(prefix))
            found = self._module_names[raw] = (
                names, max(names, key=lambda n: n.count(".") + 1, default=""))
        return found


class _Root(nn.Module):
    """Roots the module tracker at the traced model: the tracker names a module's subtree
    when it is first entered, and a generation loop or a train step need not call the model
    itself, so without this root its blocks would be named by class and merged."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn):
        return fn()


_PREFIX = "_Root.model."


def _module_tracker():
    try:  # torch >= 2.4
        from torch.utils.module_tracker import ModuleTracker
    except ImportError:  # pragma: no cover - an older torch: modules are not named
        return None
    return ModuleTracker()


def trace(fn: Callable[[], object], model: nn.Module | None = None, *,
          modules: bool = True, memory: bool = False, first_calls: bool = False,
          meta_shortcut: bool = False, params: Mapping[str, torch.Tensor] | None = None,
          tensors: str = "real", tracer: Tracer | None = None) -> Trace:
    """Run `fn()` under a `Tracer` and return its trace (see the module docstring).

    model: the module `fn` runs, for module paths and parameter names (`params` overrides
    the names: {name: tensor}); tensors: recorded as what the run held (real, fake, meta);
    tracer: a Tracer to record into (its first calls and progress read by the caller)."""
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    if params is None and model is not None:
        params = dict(model.named_parameters())
    if tracer is None:
        tracer = Tracer(params, memory=memory, first_calls=first_calls,
                        meta_shortcut=meta_shortcut)
    def enter(module, args):
        if isinstance(module, _Root):  # the tracer's own root, not the traced code's
            return
        tracer.module_calls += 1
        if isinstance(module, nn.RNNBase):
            tracer.fused_calls += 1
            tracer.fused_depth += 1

    def leave(module, args, out):
        if isinstance(module, nn.RNNBase):
            tracer.fused_depth -= 1

    def step_begins(optimizer, args, kwargs):
        tracer.optimizer_depth += 1

    def step_ends(optimizer, args, kwargs):
        tracer.optimizer_depth -= 1

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave),
               register_optimizer_step_pre_hook(step_begins),
               register_optimizer_step_post_hook(step_ends)]
    tracker = _module_tracker() if model is not None and modules else None
    try:
        if tracker is None:
            with tracer:
                fn()
        else:
            tracer.module_tracker, tracer.module_prefix = tracker, _PREFIX
            with tracker, tracer:
                _Root(model)(fn)
    finally:
        for h in handles:
            h.remove()
    return Trace(tuple(tracer.events), tracer.module_calls, tracer.fused_calls,
                 tracer.peak if memory else None, tensors)


__all__ = ["Tracer", "is_view_op", "matmul_layout", "op_name", "scan_layout", "scan_steps",
           "storage_key",
           "tensors_in", "trace"]
