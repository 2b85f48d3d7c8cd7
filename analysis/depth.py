"""Measured sequential depth: the dependency graph of the ops a model really runs.

A `TorchDispatchMode` (`DepthTracer`) sees every aten op PyTorch dispatches, the ops autograd
runs in backward and the sampling ops of generation included, and records which earlier op
produced each input tensor. From that graph, `DepthTracer.report()` gives:

- ``matmul_depth``: the critical-path matmul depth, the largest number of matrix
  multiplications on any dependency chain. Matmul-like ops (mm, addmm, bmm, baddbmm, mv, dot,
  linear, matmul, ...) weigh 1; elementwise, reduction, view, indexing and sampling ops weigh
  0. A fused attention kernel (SDPA, flash, efficient, cuDNN, and their backwards) weighs the
  dependent matmuls it stands for, per (input, output) pair, so that the fused and the manual
  kernels give the same depth (tested):

  forward ``O = softmax(Q K^T) V``: Q, K -> O is 2 (scores, then weighted values), V -> O is 1,
  Q, K -> logsumexp is 1. Backward, as the manual path runs it (dV = P^T dO, dP = dO V^T,
  dS = softmax'(dP), dQ = dS K, dK = dS^T Q): dO -> dQ, dK is 2, dO -> dV is 1, Q, K, V -> dQ,
  dK is 2 (P, or dP, then dS times K or Q), Q, K -> dV is 2 (P then P^T dO), out and
  logsumexp -> any gradient is 1 (they enter dS elementwise). Other pairs weigh 0.
- ``matmul_launches``: matmul launches a serial executor issues; a fused attention kernel
  counts as the matmuls of the manual path it replaces (forward 2, backward 4), so flash
  and manual agree here too.
- ``scan_depth``: the critical-path depth in parallel-scan combining steps. A scan op
  (cumsum, cumprod, logcumsumexp, cummax, cummin: prefix operations PyTorch parallelises
  over the scanned dimension) over n positions weighs ceil(log2 n) combining steps on every
  edge, as a work-efficient parallel scan has (Blelloch's up-sweep, or Hillis-Steele),
  the way a fused attention kernel weighs the matmuls it replaces; every other op weighs 0.
  Scans are reported apart from matmuls: a combining step is an elementwise op, not a
  matmul. ``depth`` is the critical path with both weights (a matmul 1, a scan ceil(log2 n)),
  which is matmul_depth + scan_depth when one chain carries both maxima (as in minGRU).
- ``op_depth``: the critical path counting every dispatched op as 1 (views and sampling
  included). This one does depend on the kernel and on how PyTorch decomposes ops.

Identity: every tensor an op returns is kept alive for the trace, so ``id()`` is unique and
maps it to (node, output index). Tensors made outside the trace (parameters, inputs) are
leaves at depth 0. In-place and ``out=`` ops (schema arguments with a write alias) make a new
node, and the tensor and its storage are re-pointed to it, so every alias read afterwards
(views included) depends on the write.

``zero_weight``: parameters whose matmuls weigh 0 for depth (and are not counted as
launches): used to measure a model "without the vocabulary projection", as the homework
asks. A matmul weighs 0 when one of its inputs is such a parameter or a view of it (forward
and the input-gradient matmul in backward). The head's weight-gradient matmul still counts
as a launch; it ends at a leaf gradient, so it never lies on the critical path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from analysis.optrace import tensors_in

try:  # a private module, present from torch 2.0 through 2.13 at least
    from torch.utils._python_dispatch import TorchDispatchMode
except ImportError as exc:  # pragma: no cover - a torch without it
    raise ImportError(f"analysis.depth needs torch's TorchDispatchMode: {exc}") from exc

MATMUL_OPS = frozenset(
    {
        "mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "mv", "addmv",
        "dot", "vdot", "_addmm_activation", "_int_mm", "_scaled_mm",
    }
)

# Per-edge weights of fused attention: output role -> input role -> matmuls on that edge.
_ATTN_FORWARD = {
    "out": {"q": 2, "k": 2, "v": 1, "mask": 1},
    "lse": {"q": 1, "k": 1},
}
_DQ = {"dO": 2, "q": 2, "k": 2, "v": 2, "O": 1, "lse": 1, "mask": 1}
_ATTN_BACKWARD = {
    "dq": _DQ,
    "dk": _DQ,
    "dv": {"dO": 1, "q": 2, "k": 2, "lse": 1, "mask": 1},
    "dbias": {"dO": 1, "q": 1, "k": 1, "v": 1},
}
ATTENTION_LAUNCHES = {"forward": 2, "backward": 4}
SCAN_OPS = frozenset({"cumsum", "cumsum_", "cumprod", "cumprod_", "logcumsumexp",
                      "_logcumsumexp", "cummax", "cummin", "_cummax_helper", "_cummin_helper"})


def scan_steps(n: int) -> int:
    """ceil(log2 n): combining steps on the critical path of a parallel scan over n positions
    (0 for n = 1)."""
    return max(int(n) - 1, 0).bit_length()


def _scan_weight(name: str, args, kwargs) -> int:
    """Combining steps of a scan op over its scanned dimension (0 for any other op)."""
    if name not in SCAN_OPS:
        return 0
    x = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return 0
    return scan_steps(x.shape[dim])


def _attention_kind(name: str) -> str | None:
    """'forward' / 'backward' for a fused attention kernel's aten name, else None."""
    if "scaled_dot_product" in name or name in (
        "_flash_attention_forward", "_efficient_attention_forward",
        "_flash_attention_backward", "_efficient_attention_backward",
    ):
        if name == "scaled_dot_product_attention":  # composite; kept for completeness
            return "forward"
        return "backward" if name.endswith("backward") else "forward"
    return None


def _input_role(arg_name: str) -> str:
    if arg_name.startswith("grad_out"):
        return "dO"
    if arg_name in ("query", "key", "value"):
        return arg_name[0]
    if arg_name in ("out", "output"):
        return "O"
    if "logsumexp" in arg_name or "lse" in arg_name:
        return "lse"
    if "mask" in arg_name or "bias" in arg_name:
        return "mask"
    return "aux"


def _output_role(kind: str, index: int) -> str:
    roles = ("out", "lse") if kind == "forward" else ("dq", "dk", "dv", "dbias")
    return roles[index] if index < len(roles) else "aux"


def op_name(func) -> str:
    """'aten.mm.default' -> 'mm'."""
    return func._schema.name.split("::")[-1]


@dataclass
class Node:
    """One dispatched op: its name and, per output, the (producer node, output) of each input
    with the matmul weight of that edge."""

    index: int
    name: str
    inputs: list  # [(node index, output index) | None for a leaf]
    edge_weights: list  # per output: list of weights aligned with inputs
    launches: int
    n_outputs: int


@dataclass
class DepthReport:
    matmul_depth: int
    matmul_launches: int
    op_depth: int
    ops: int
    critical_path: list = field(default_factory=list)  # matmul op names on one longest chain
    scan_depth: int = 0  # parallel-scan combining steps on the longest scan-weighted chain
    depth: int | None = None  # matmuls + scan steps on the longest chain (None: matmul_depth)

    def __post_init__(self):
        if self.depth is None:
            self.depth = self.matmul_depth

    def to_dict(self) -> dict:
        return {
            "matmul_depth": self.matmul_depth,
            "matmul_launches": self.matmul_launches,
            "op_depth": self.op_depth,
            "ops": self.ops,
            "scan_depth": self.scan_depth,
            "depth": self.depth,
        }


class DepthTracer(TorchDispatchMode):
    """Record every op with its data dependencies; depths are computed as ops arrive."""

    def __init__(self, zero_weight: Iterable[torch.Tensor] = ()):
        super().__init__()
        self.nodes: list[Node] = []
        self._where: dict[int, tuple[int, int]] = {}  # id(tensor) -> (node, output)
        self._storage_writer: dict[int, tuple[int, int]] = {}  # storage ptr -> last writer
        self._alive: list = []  # keeps every produced tensor alive so ids stay unique
        self._zero_storage: set[int] = {_storage_key(t) for t in zero_weight} - {None}
        # Running depths per (node, output): matmul depth, op depth, predecessor on the path.
        self._mm: dict[tuple[int, int], int] = {}
        self._op: dict[tuple[int, int], int] = {}
        self._pred: dict[tuple[int, int], tuple[int, int] | None] = {}
        self._scan: dict[tuple[int, int], int] = {}  # scan-step depth
        self._both: dict[tuple[int, int], int] = {}  # matmul + scan-step depth
        self.launches = 0

    # -- dispatch --------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._record(func, args, kwargs, out)
        return out

    def _record(self, func, args, kwargs, out):
        name = op_name(func)
        named = _named_tensor_args(func._schema, args, kwargs)  # [(arg name, tensor, written)]
        inputs = [self._source(t) for _, t, _ in named]
        outs = tensors_in(out)
        # An in-place op that returns nothing (the _foreach_*_ family) still has a result.
        results = len(outs) or int(any(written for _, _, written in named))
        kind = _attention_kind(name)
        index = len(self.nodes)
        zero = name in MATMUL_OPS and any(self._is_zero(t) for _, t, _ in named)
        if kind is not None:
            roles = [_input_role(n) for n, _, _ in named]
            table = _ATTN_FORWARD if kind == "forward" else _ATTN_BACKWARD
            weights = [
                [table.get(_output_role(kind, i), {}).get(r, 0) for r in roles]
                for i in range(results)
            ]
            launches = ATTENTION_LAUNCHES[kind]
        else:
            w = 1 if name in MATMUL_OPS and not zero else 0
            weights = [[w] * len(inputs) for _ in range(results)]
            launches = w
        scan = _scan_weight(name, args, kwargs)
        self.launches += launches
        self.nodes.append(Node(index, name, inputs, weights, launches, results))
        op_in = max((self._op[s] for s in inputs if s is not None), default=0)
        for i in range(results):
            key = (index, i)
            candidates = [((self._mm[src] if src is not None else 0) + w, src)
                          for src, w in zip(inputs, weights[i])]
            best = max((d for d, _ in candidates), default=0)
            pred = next((src for d, src in candidates if d == best and src is not None), None)
            self._mm[key], self._op[key], self._pred[key] = best, op_in + 1, pred
            self._scan[key] = scan + max((self._scan[s] for s in inputs if s is not None),
                                         default=0)
            self._both[key] = max(((self._both[src] if src is not None else 0) + w + scan
                                   for src, w in zip(inputs, weights[i])), default=scan)
            if i < len(outs):
                self._bind(outs[i], key, write_storage=False)
        # In-place / out=: each written tensor (and its storage) now holds this op's result; a
        # multi-tensor write (foreach) is bound to one result, which may over-connect its lists.
        for _, t, written in named:
            if written:
                self._bind(t, (index, 0), write_storage=True)
        if not results:  # no tensor out (e.g. .item()): a sink, still on the all-ops path
            self._op[(index, 0)] = op_in + 1

    def _bind(self, t: torch.Tensor, key, write_storage: bool):
        self._alive.append(t)
        self._where[id(t)] = key
        storage = _storage_key(t)
        if write_storage and storage is not None:
            self._storage_writer[storage] = key

    def _source(self, t: torch.Tensor):
        """The (node, output) whose result `t` holds now: its producer or a later in-place
        write to its storage, whichever is deeper; None for a leaf."""
        own = self._where.get(id(t))
        storage = _storage_key(t)
        written = self._storage_writer.get(storage) if storage is not None else None
        if own is None:
            return written
        if written is None or written[0] <= own[0]:
            return own
        return written

    def _is_zero(self, t: torch.Tensor) -> bool:
        """`t` is a zero-weight parameter or a view of one (they share its storage)."""
        return _storage_key(t) in self._zero_storage

    # -- results ---------------------------------------------------------------------------
    def report(self) -> DepthReport:
        if not self._mm:
            return DepthReport(0, self.launches, max(self._op.values(), default=0), len(self.nodes))
        end = max(self._mm, key=lambda k: (self._mm[k], -k[0]))
        return DepthReport(
            matmul_depth=self._mm[end],
            matmul_launches=self.launches,
            op_depth=max(self._op.values()),
            ops=len(self.nodes),
            critical_path=self._path(end),
            scan_depth=max(self._scan.values(), default=0),
            depth=max(self._both.values(), default=0),
        )

    def _path(self, key) -> list[str]:
        """Matmul-weighted ops on the chain that ends at `key`, first to last."""
        names = []
        while key is not None:
            pred = self._pred[key]
            gained = self._mm[key] - (self._mm[pred] if pred is not None else 0)
            if gained:
                names.append(self.nodes[key[0]].name)
            key = pred
        return names[::-1]


def _storage_key(t: torch.Tensor) -> int | None:
    try:
        storage = t.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return None
    if storage.nbytes() == 0:
        return None
    return storage.data_ptr()


def _named_tensor_args(schema, args, kwargs) -> list:
    """[(schema argument name, tensor, written)] for every tensor among the op's arguments,
    tensors inside lists (cat, stack) included."""
    found = []
    values = {}
    for i, a in enumerate(schema.arguments):
        if i < len(args) and not a.kwarg_only:
            values[a.name] = (args[i], a)
        elif a.name in kwargs:
            values[a.name] = (kwargs[a.name], a)
    for arg_name, (value, a) in values.items():
        written = a.alias_info is not None and a.alias_info.is_write
        for t in tensors_in(value):
            found.append((arg_name, t, written))
    return found


def trace(fn: Callable[[], object], zero_weight: Iterable[torch.Tensor] = ()) -> DepthReport:
    """Run `fn()` under a `DepthTracer` and report its depths."""
    with DepthTracer(zero_weight) as tracer:
        fn()
    return tracer.report()


def measure_depth(cfg, quantity: str, sizes: dict, kv_cache: bool = False, head: bool = True,
                  model: torch.nn.Module | None = None) -> DepthReport:
    """Trace `quantity` as `analysis.quantities.runner` runs it: forward, train (forward +
    backward + Adam step), generate (N greedy tokens after a P-token prompt) and backward
    (the cross-entropy's backward alone, its forward run before the trace, so the forward's
    tensors are leaves and backward depth = train depth - forward depth).

    sizes: B, T for forward/backward/train; B, P, N for generate. `head=False` gives the
    vocabulary projection's matmuls zero weight (its dependency is kept). Real tensors: the
    tracer tells tensors apart by their storage, which fake tensors do not have.
    """
    from analysis.architectures import architecture
    from analysis.quantities import check_request, runner
    from charlm.models.registry import build_model

    if quantity == "params":
        raise ValueError("params has no depth; choose from forward, backward, train, generate")
    check_request(cfg, quantity, sizes, kv_cache)
    if model is None:
        torch.manual_seed(0)
        model = build_model(cfg)
    fn = runner(model, quantity, sizes, kv_cache)
    zero = [] if head else list(architecture(cfg.model).head(model).parameters())
    return trace(fn, zero)


def depth_report(cfg, quantity: str, batch: int = 1, seq_len: int | None = None,
                 prompt_len: int = 1, new_tokens: int = 1, kv_cache: bool = False) -> dict:
    """Predicted (analysis.depth_formulas) beside measured (traced) depth and launches of one
    model and quantity, with the environment the measurement ran in."""
    from analysis.architectures import architecture
    from analysis.depth_formulas import CONVENTION, SCAN_CONVENTION
    from analysis.env import environment
    from analysis.verdicts import Verdict

    if seq_len is None:
        seq_len = cfg.block_size if cfg.block_size is not None else 20
    sizes = {"B": batch, "T": seq_len, "P": prompt_len, "N": new_tokens, "L": cfg.layers}
    if quantity == "generate":
        sizes.pop("T")
    else:
        sizes.pop("P"), sizes.pop("N")
    measured = measure_depth(cfg, quantity, sizes, kv_cache=kv_cache)
    prediction = architecture(cfg.model).depth.quantity(quantity, kv_cache=kv_cache)
    predicted = prediction.evaluate(sizes)
    scan_pred = predicted.get("scan_depth", 0)
    total_pred = predicted.get("total_depth", predicted["depth"])
    exact = (predicted["depth"], predicted["launches"], scan_pred, total_pred) == (
        measured.matmul_depth, measured.matmul_launches, measured.scan_depth, measured.depth)
    return {
        "model": cfg.model,
        "attention": cfg.attention,
        "quantity": quantity,
        "kv_cache": kv_cache,
        "sizes": sizes,
        "predicted": predicted["depth"],
        "measured": measured.matmul_depth,
        "predicted_launches": predicted["launches"],
        "matmul_launches": measured.matmul_launches,
        "predicted_scan_depth": scan_pred,
        "scan_depth": measured.scan_depth,
        "predicted_total_depth": total_pred,
        "total_depth": measured.depth,
        "op_depth": measured.op_depth,
        "ops": measured.ops,
        "formula": str(prediction.depth).replace("**", "^"),
        "scan_formula": str(prediction.scan).replace("**", "^"),
        "launches_formula": str(prediction.launches).replace("**", "^"),
        "verdict": str(Verdict.EXACT if exact else Verdict.MISMATCH),
        "critical_path": " ".join(measured.critical_path),
        "convention": f"{CONVENTION}; {SCAN_CONVENTION}",
        "environment": environment("cpu"),
    }
