"""Measured sequential depth: the dependency graph of the ops a model really runs.

The op trace (`analysis.trace`) sees every aten op PyTorch dispatches, the ops autograd runs in
backward and the sampling ops of generation included, and records which earlier op produced
each input tensor. From that graph, `depth_of(trace)` gives:

- ``matmul_depth``: the critical-path matmul depth, the largest number of matrix
  multiplications on any dependency chain. Matmul-like ops (the ones with a FLOP formula,
  the trace's event kind "matmul": mm, addmm, bmm, baddbmm, convolutions) weigh 1;
  elementwise, reduction, view, indexing and sampling ops weigh 0. A fused attention kernel
  (SDPA, flash, efficient, cuDNN, and their backwards) weighs the dependent matmuls it
  stands for, per (input, output) pair, so that the fused and the manual kernels give the
  same depth (tested):

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

Identity (the trace's): every tensor an op returns maps to (event, output index). Tensors made
outside the trace (parameters, inputs) are leaves at depth 0. In-place and ``out=`` ops
(schema arguments with a write alias) make a new result, and the tensor and its storage are
re-pointed to it, so every alias read afterwards (views included) depends on the write.

``zero_params``: names of parameters (as the trace records them, `OpEvent.params`) whose
matmuls weigh 0 for depth (and are not counted as launches): used to measure a model
"without the vocabulary projection", as the homework asks. A matmul weighs 0 when one of its
inputs is such a parameter or a view of it (forward and the input-gradient matmul in
backward). The head's weight-gradient matmul still counts
as a launch; it ends at a leaf gradient, so it never lies on the critical path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from analysis.trace import Trace
from analysis.trace import trace as trace_ops

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


def depth_of(tr: Trace, zero_params: Iterable[str] = ()) -> DepthReport:
    """Depths and launches of a trace's dependency graph (see the module docstring)."""
    zero = frozenset(zero_params)
    mm: dict = {}  # (event, output) -> matmul depth
    op: dict = {}  # -> depth counting every op as 1
    pred: dict = {}  # -> the predecessor on its longest matmul chain
    scan: dict = {}  # -> scan-step depth
    both: dict = {}  # -> matmul + scan-step depth
    launches = 0
    for ev in tr.ops:
        index, sources = ev.index, [src for _, src in ev.inputs]
        kind = _attention_kind(ev.name)
        if kind is not None:
            roles = [_input_role(name) for name, _ in ev.inputs]
            table = _ATTN_FORWARD if kind == "forward" else _ATTN_BACKWARD
            weights = [[table.get(_output_role(kind, i), {}).get(r, 0) for r in roles]
                       for i in range(ev.results)]
            launches += ATTENTION_LAUNCHES[kind]
        else:
            w = int(ev.kind == "matmul" and not zero.intersection(ev.params))
            weights = [[w] * len(sources) for _ in range(ev.results)]
            launches += w
        op_in = max((op[s] for s in sources if s is not None), default=0)
        for i in range(ev.results):
            key = (index, i)
            candidates = [((mm[src] if src is not None else 0) + w, src)
                          for src, w in zip(sources, weights[i])]
            best = max((d for d, _ in candidates), default=0)
            pred[key] = next((src for d, src in candidates if d == best and src is not None),
                             None)
            mm[key], op[key] = best, op_in + 1
            scan[key] = ev.scan + max((scan[s] for s in sources if s is not None), default=0)
            both[key] = max(((both[src] if src is not None else 0) + w + ev.scan
                             for src, w in zip(sources, weights[i])), default=ev.scan)
        if not ev.results:  # no tensor out (e.g. .item()): a sink, still on the all-ops path
            op[(index, 0)] = op_in + 1
    if not mm:
        return DepthReport(0, launches, max(op.values(), default=0), len(tr.ops))
    end = max(mm, key=lambda k: (mm[k], -k[0]))
    return DepthReport(
        matmul_depth=mm[end], matmul_launches=launches, op_depth=max(op.values()),
        ops=len(tr.ops), critical_path=_path(tr, mm, pred, end),
        scan_depth=max(scan.values(), default=0), depth=max(both.values(), default=0))


def _path(tr: Trace, mm: dict, pred: dict, key) -> list[str]:
    """Matmul-weighted ops on the chain that ends at `key`, first to last."""
    names = []
    while key is not None:
        before = pred[key]
        if mm[key] - (mm[before] if before is not None else 0):
            names.append(tr.ops[key[0]].name)
        key = before
    return names[::-1]


def trace(fn: Callable[[], object], zero_weight: Iterable[torch.Tensor] = ()) -> DepthReport:
    """Trace `fn()` (`analysis.trace`) and report its depths; the matmuls reading a
    `zero_weight` tensor (or a view of it) weigh 0."""
    marked = {f"zero_weight.{i}": t for i, t in enumerate(zero_weight)}
    return depth_of(trace_ops(fn, params=marked), marked)


def measure_depth(cfg, quantity: str, sizes: dict, kv_cache: bool = False, head: bool = True,
                  model: torch.nn.Module | None = None) -> DepthReport:
    """Trace `quantity` as `analysis.quantities.runner` runs it: forward, train (forward +
    backward + Adam step), generate (N greedy tokens after a P-token prompt) and backward
    (the cross-entropy's backward alone, its forward run before the trace, so the forward's
    tensors are leaves and backward depth = train depth - forward depth).

    sizes: B, T for forward/backward/train; B, P, N for generate. `head=False` gives the
    vocabulary projection's matmuls zero weight (its dependency is kept).
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
