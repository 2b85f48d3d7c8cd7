"""Sympy formulas for the bytes the dominant ops of a forward pass move, one `BytesModel` per
architecture (attached to its entry of `analysis.architectures`, beside its FLOP and depth
models; same symbols as `analysis.formulas`): float32 (4 bytes per element), unfused, each
op's inputs read plus outputs written, as `analysis.optrace` measures them.

Matmul terms count the activations read, the weights (and bias) read and the output written
of every call: y = x W^T (+ b) over m rows, x (m x k), W (n x k), moves
4 (mk + kn + [n] + mn) bytes (`linear_bytes`). A Linear on a (B, T, k) input is one call
over B T rows (its input is contiguous, so PyTorch flattens it as a view); a recurrent model
calls its Linears once per position, over B rows.

The attention term is the traffic of everything the attention module runs besides its
projections, the traffic that separates the kernels:

- manual: q k^T and att @ v read q, k and v and write the output (4 B T D floats); the
  B x H x T x T scores are written by q k^T, scaled, masked, softmaxed (each read and
  written) and read again by att @ v (8 B H T^2 floats); the boolean T x T mask is negated
  and read (3 T^2 bytes). Copies where a layout asks for one (each B T D floats read and
  written): q, k and v are strided slices of c_attn's output, and matmul folds their
  (B, H) batch dimensions with a copy unless B = 1 or H = 1; the (B, H, T, hs) output is
  made (B, T, H, hs)-contiguous with a copy unless H = 1 or T = 1. With B, H, T > 1 that is
  12 B T D + 8 B H T^2 floats + 3 T^2 bytes;
- flash (CPU SDPA kernel): q, k, v read, the output (already laid out (B, T, H, hs)) and its
  log-sum-exp (B H T) written: 4 B T D + B H T floats, no T x T matrix at all.

Each term's ops are found in a trace by module path: the architecture table's
`term_modules` names the modules, the bytes model's `kinds` which of their ops the formula
covers (matmuls unless it says otherwise); `measured_terms` sums them over per-op records.
The elementwise rest is reported measured only (`analysis.reconcile.reconcile_bytes`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import sympy as sp

from analysis.formulas import KERNELS, B, D, E, H, L, T, Terms, V

BYTES_PER_ELEMENT = 4  # float32
F = BYTES_PER_ELEMENT
CONVENTION = ("bytes moved, float32, unfused: every op's inputs read plus outputs written "
              "(views and allocations move none)")
MATMUL_ONLY = ("matmul",)


def above_one(*sizes) -> sp.Expr:
    """1 where every size is above 1, else 0 (sympy): a copy a size-1 dimension avoids."""
    return sp.Piecewise((1, sp.And(*(s > 1 for s in sizes))), (0, True))


def linear_bytes(rows, k, n, bias: bool = False) -> sp.Expr:
    """Bytes of one y = x W^T (+ b) call: x (rows x k) and W (n x k) read, the bias (n)
    read, y (rows x n) written."""
    return F * (rows * k + k * n + (n if bias else 0) + rows * n)


class BytesModel:
    """Bytes of the dominant terms of one forward pass over (B, T). `kinds`: term -> the op
    kinds of its modules that the term covers (default matmuls only)."""

    kinds: Mapping[str, tuple[str, ...]] = {}

    def forward(self, kernel: str | None = None) -> Terms:
        """The terms (sympy) for the attention `kernel` (manual or flash; None: flash, the
        registry's default; a model without attention ignores it)."""
        if kernel is not None and kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        return Terms("forward_bytes", self._forward(kernel or "flash"), CONVENTION,
                     {"kernel": kernel})

    def _forward(self, kernel: str) -> dict[str, sp.Expr]:
        raise NotImplementedError


class ElmanBytes(BytesModel):
    """Per position and layer, W_ih (E -> D at layer 0, D -> D above) and W_hh (D -> D), both
    with biases, over B rows (addmm); fc (D -> V, biased) on the top state."""

    def __init__(self, layers=L):
        self.layers = layers

    def _forward(self, kernel):
        upper = self.layers - 1
        return {
            "W_ih": T * (linear_bytes(B, E, D, bias=True)
                         + upper * linear_bytes(B, D, D, bias=True)),
            "W_hh": T * self.layers * linear_bytes(B, D, D, bias=True),
            "fc": T * linear_bytes(B, D, V, bias=True),
        }


class GatedBytes(BytesModel):
    """A gated cell without biases (GRU: 3 gates, LSTM: 4): per position, layer and gate one
    input Linear (term W_x: E -> D at layer 0, D -> D above) and one hidden Linear (term W_h,
    D -> D, reading the layer's state: zeros at position 0, still multiplied), over B rows
    (mm); fc (D -> V, biased) on the top state."""

    def __init__(self, gates: int):
        self.gates = gates

    def _forward(self, kernel):
        k = self.gates
        return {
            "W_x": T * k * (linear_bytes(B, E, D) + (L - 1) * linear_bytes(B, D, D)),
            "W_h": T * k * L * linear_bytes(B, D, D),
            "fc": T * linear_bytes(B, D, V, bias=True),
        }


class MinGRUBytes(BytesModel):
    """The scan path (`MinGRULM.forward_sequence`): per layer W_xz and W_xh (D -> D, no bias)
    once over all B T rows of the normed stream (term W_x); fc (D -> V, biased) once over
    B T rows. The scan itself (cumsum, logcumsumexp) and the layer norms are elementwise."""

    def _forward(self, kernel):
        return {
            "W_x": 2 * L * linear_bytes(B * T, D, D),
            "fc": linear_bytes(B * T, D, V, bias=True),
        }


class TransformerBytes(BytesModel):
    """Per block over B T rows: c_attn (D -> 3D), the attention (module docstring), c_proj
    (D -> D), the MLP's two Linears (D -> 4D -> D, biased); lm_head (D -> V, tied, no bias)."""

    kinds = {"attention": ("matmul", "elementwise")}

    def _forward(self, kernel):
        rows = B * T
        if kernel == "manual":
            copies = 3 * above_one(B, H) + above_one(H, T)  # q, k, v folded; output laid out
            attention = F * ((4 + 2 * copies) * rows * D + 8 * B * H * T**2) + 3 * T**2
        else:
            attention = F * (4 * rows * D + B * H * T)
        return {
            "qkv": L * linear_bytes(rows, D, 3 * D),
            "attention": L * attention,
            "out_proj": L * linear_bytes(rows, D, D),
            "mlp": L * (linear_bytes(rows, D, 4 * D, bias=True)
                        + linear_bytes(rows, 4 * D, D, bias=True)),
            "lm_head": linear_bytes(rows, D, V),
        }


def measured_terms(ops: Iterable, patterns: Mapping[str, str],
                   kinds: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, int]:
    """Bytes per term of per-op records (anything with `module`, `kind` and `bytes`, as
    `analysis.trace.OpEvent`): an op counts toward a term when its module path matches the
    term's regex in `patterns` and its kind is one of the term's `kinds` (default matmul)."""
    kinds = kinds or {}
    compiled = {t: (re.compile(p), kinds.get(t, MATMUL_ONLY)) for t, p in patterns.items()}
    out = dict.fromkeys(compiled, 0)
    for op in ops:
        if not op.module:
            continue
        for term, (pattern, covered) in compiled.items():
            if op.kind in covered and pattern.search(op.module):
                out[term] += op.bytes
    return out


__all__ = ["BYTES_PER_ELEMENT", "BytesModel", "CONVENTION", "ElmanBytes", "GatedBytes",
           "MinGRUBytes", "TransformerBytes", "linear_bytes", "measured_terms"]
