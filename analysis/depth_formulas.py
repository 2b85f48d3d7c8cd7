"""Predicted sequential depth and matmul launches, one model per architecture, beside the FLOP
cost models of `analysis.formulas` (same symbols, same quantities).

Conventions (what `analysis.depth` measures; every prediction carries them):

* ``depth``: matmuls on the longest dependency chain. A matmul weighs 1, a fused attention
  kernel the dependent matmuls it stands for (scores then weighted values: 2 forward);
  elementwise ops, reductions, lookups and sampling weigh 0.
* ``launches``: matmuls a serial executor issues (fused attention counts as the manual
  path's matmuls: 2 forward, 4 backward).
* ``head=False`` drops the vocabulary projection's matmuls (the homework's "don't worry about
  the final projection"); the dependency through it stays (a token must still be sampled).
* The workloads (`analysis.depth.measure_depth`): forward over T known tokens; backward of a
  cross-entropy over all T positions, traced alone (the forward's tensors are its leaves, so
  backward = train - forward); train = forward + backward + Adam step (the step adds no
  matmul); generate = N greedy tokens after a P-token prompt.

Derivations (h = 1 with the head, 0 without):

Recurrent (Elman, GRU): cell (t, l) waits for (t-1, l) and (t, l-1), one matmul level each
(the input and hidden matmuls of a cell run side by side; the GRU's three hidden matmuls
too). So the forward over a known sequence is a wavefront: depth(t, l) = t + l + 1 (0-based),
the last logits at T + L - 1 + h. Backward mirrors it: the loss gradient reaches every
position's head at once, then flows back through W_hh (in t) and W_ih (in l), one level each,
T + L - 2 levels from (T-1, L-1) to (0, 0), plus the input-gradient matmul of the head and the
weight-gradient matmul at (0, 0): T + L - 1 + h more. Generation cannot overlap steps: the
prompt is a wavefront (P + L - 1 + h), then each of the N - 1 fed-back samples runs L layers
and the head in sequence (L + h each).
Launches per cell: k_x input and k_h hidden matmuls (Elman 1 + 1, GRU 3 + 3), per step k_x +
k_h per layer and h for the head. Backward: each matmul once for its weight gradient and once
for its input gradient, except the hidden matmuls at step 0 (h0 is a constant); the head 2
per step.

Scans (minGRU): a parallel scan over n positions weighs s(n) = ceil(log2 n) combining steps
on the critical path (a work-efficient parallel scan, Blelloch's or Hillis-Steele's, needs
that many dependent combining rounds; stated once, as fused attention weighs the matmuls it
replaces). Scan steps are not matmuls: ``scan`` is their depth, reported apart from the
matmul ``depth``, and ``total`` = depth + scan (the chain that carries the most matmuls
carries the most scan steps here). Models without a scan have scan = 0.
minGRU layer l: W_xz and W_xh read LayerNorm(x_l) side by side (1 level), then the log-space
scan runs two scans in sequence (A = cumsum(log a), then logcumsumexp(log b - A)): 2 s(T)
steps; the state has no matmul. Forward over T: L + h matmuls, 2 L s(T) scan steps.
Backward: the loss gradient enters the head's input-gradient matmul (h), then per layer,
top down, the logcumsumexp's backward (itself a reversed logcumsumexp, 1 scan), the cumsum's
(a reversed cumsum, 1 scan) and W_xz's input-gradient matmul; the last layer's weight-gradient
matmul ends the chain: L + h matmuls, 2 L s(T) scan steps. Generation scans the P-token
prompt (L + h, 2 L s(P)), then each of the N - 1 fed-back samples runs L layers and the head
one position at a time (L + h each, no scan): N (L + h) and 2 L s(P). Launches: one matmul
per Linear per pass (the scan runs all positions in one call): forward 2L + h, backward
2 (2L + h), generation N (2L + h).

LSTM: as the GRU with four input and four hidden matmuls per cell; the cell state c passes
from step to step through elementwise ops only, so it adds no matmul level.

Transformer: per layer c_attn, attention (2), c_proj, MLP up and down: 6 dependent matmuls,
whatever T is; forward 6L + h. Backward walks the same chain in reverse (MLP down, up, c_proj,
attention dO -> dQ (2), c_attn): 6L + h, and every Linear issues 2 matmuls, attention 4.
Generation runs one forward per new token, each waiting for the previous sample: N (6L + h),
with or without the KV cache (the cache shortens each forward's rows, not its chain).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from analysis.formulas import SYMBOLS, L, N, P, T

QUANTITIES = ("forward", "backward", "train", "generate")
SCAN_CONVENTION = ("scan depth = parallel-scan combining steps on the critical path, "
                   "ceil(log2 n) per scan over n positions")
CONVENTION = ("depth = matmuls on the longest dependency chain (fused attention = 2 forward); "
              "launches = matmuls issued (fused attention = 2 forward, 4 backward)")


@dataclass(frozen=True)
class DepthPrediction:
    quantity: str
    depth: sp.Expr
    launches: sp.Expr
    assumptions: dict = field(default_factory=dict)
    convention: str = CONVENTION
    scan: sp.Expr = sp.Integer(0)  # parallel-scan combining steps (SCAN_CONVENTION)

    @property
    def total(self) -> sp.Expr:
        """Matmuls and scan steps on the critical path."""
        return self.depth + self.scan

    def evaluate(self, sizes: Mapping) -> dict[str, int]:
        """{"depth": int, "launches": int} for concrete sizes ({"T": 8, ...}), with
        "scan_depth" and "total_depth" for a model with a scan."""
        subs = {}
        for key, value in sizes.items():
            name = key.name if isinstance(key, sp.Symbol) else str(key)
            if name in SYMBOLS and value is not None:
                subs[SYMBOLS[name]] = sp.Integer(value)
        out = {}
        exprs = [("depth", self.depth), ("launches", self.launches)]
        if self.scan != 0:
            exprs += [("scan_depth", self.scan), ("total_depth", self.total)]
        for label, expr in exprs:
            missing = {s.name for s in expr.free_symbols} - {s.name for s in subs}
            if missing:
                raise ValueError(f"{self.quantity} {label} needs sizes "
                                 f"{', '.join(sorted(missing))}")
            out[label] = int(expr.xreplace(subs))
        return out


class DepthModel:
    name = ""

    def quantity(self, name: str, head: bool = True, kv_cache: bool = False) -> DepthPrediction:
        if name not in QUANTITIES:
            raise ValueError(f"unknown quantity {name!r}; choose from {', '.join(QUANTITIES)}")
        depth, launches, *scan = getattr(self, f"_{name}")(sp.Integer(1 if head else 0))
        return DepthPrediction(name, sp.expand(depth), sp.expand(launches),
                               {"head": head, "kv_cache": kv_cache, "model": self.name},
                               scan=sp.expand(scan[0]) if scan else sp.Integer(0))

    def forward(self, head: bool = True) -> DepthPrediction:
        return self.quantity("forward", head)

    def backward(self, head: bool = True) -> DepthPrediction:
        return self.quantity("backward", head)

    def train(self, head: bool = True) -> DepthPrediction:
        return self.quantity("train", head)

    def generate(self, head: bool = True, kv_cache: bool = False) -> DepthPrediction:
        return self.quantity("generate", head, kv_cache)

    def _train(self, h):
        fd, fl, *fs = self._forward(h)
        bd, bl, *bs = self._backward(h)
        if fs or bs:
            return fd + bd, fl + bl, (fs or [0])[0] + (bs or [0])[0]
        return fd + bd, fl + bl


def scan_steps(n: sp.Expr) -> sp.Expr:
    """ceil(log2 n): combining steps of a parallel scan over n positions."""
    return sp.ceiling(sp.log(n, 2))


class MinGRUDepth(DepthModel):
    """minGRU through its log-space scan (see the module docstring)."""

    name = "mingru"
    SCANS_PER_LAYER = 2  # cumsum, then logcumsumexp of a tensor that reads it
    MATMULS_PER_LAYER = 2  # W_xz, W_xh (side by side)

    def _pass(self, h):
        return L + h, self.MATMULS_PER_LAYER * L + h

    def _forward(self, h):
        depth, launches = self._pass(h)
        return depth, launches, self.SCANS_PER_LAYER * L * scan_steps(T)

    def _backward(self, h):
        depth, launches = self._pass(h)
        return depth, 2 * launches, self.SCANS_PER_LAYER * L * scan_steps(T)

    def _generate(self, h):
        depth, launches = self._pass(h)
        return N * depth, N * launches, self.SCANS_PER_LAYER * L * scan_steps(P)


class RecurrentDepth(DepthModel):
    def __init__(self, name: str, k_x: int, k_h: int, layers: sp.Expr = L):
        self.name = name
        self.k_x = k_x  # input matmuls per cell
        self.k_h = k_h  # hidden matmuls per cell
        self.layers = layers

    def _forward(self, h):
        return T + self.layers - 1 + h, T * ((self.k_x + self.k_h) * self.layers + h)

    def _backward(self, h):
        per_layer = (self.k_x + self.k_h) * T + self.k_x * T + self.k_h * (T - 1)
        return T + self.layers - 1 + h, self.layers * per_layer + 2 * h * T

    def _generate(self, h):
        steps = P + N - 1
        depth = (P + self.layers - 1 + h) + (N - 1) * (self.layers + h)
        return depth, steps * ((self.k_x + self.k_h) * self.layers + h)


class TransformerDepth(DepthModel):
    name = "transformer"
    # Dependent matmuls per block: c_attn, scores, weighted values, c_proj, MLP up, MLP down.
    SUBLAYERS = {"attention": 4, "mlp": 2}
    PER_LAYER = sum(SUBLAYERS.values())
    LAUNCHES_BACKWARD = {"attention": 2 * 2 + 4, "mlp": 2 * 2}  # Linears 2 each, kernel 4

    def _forward(self, h):
        return self.PER_LAYER * L + h, self.PER_LAYER * L + h

    def _backward(self, h):
        return self.PER_LAYER * L + h, sum(self.LAUNCHES_BACKWARD.values()) * L + 2 * h

    def _generate(self, h):
        return N * (self.PER_LAYER * L + h), N * (self.PER_LAYER * L + h)

    def sublayer(self, name: str) -> int:
        """Depth (= launches) of one block's attention or MLP sub-layer, forward."""
        try:
            return self.SUBLAYERS[name]
        except KeyError:
            raise ValueError(f"unknown sub-layer {name!r}; choose from "
                             f"{', '.join(self.SUBLAYERS)}") from None
