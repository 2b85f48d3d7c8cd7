"""Sympy formulas for the bytes the dominant ops of a forward pass move, beside the FLOP
formulas of `analysis.formulas` (same symbols): float32 (4 bytes per element), unfused, each
op's inputs read plus outputs written, as `analysis.optrace` measures them.

Matmul terms count the activations read, the weights (and bias) read and the output written
of every call: an (m x k) @ (k x n) call with a bias moves 4 (mk + kn + n + mn) bytes.

The attention term is the traffic of everything the attention module runs besides its
projections, the traffic that separates the kernels:

- manual: q, k, v and the output made contiguous (4 copies of B T D read and written), the
  B x H x T x T scores written by q k^T, scaled, masked, softmaxed (each read and written)
  and read again by att @ v: 12 B T D + 8 B H T^2 floats, plus the boolean T x T mask
  negated and read (3 T^2 bytes);
- flash (CPU SDPA kernel): q, k, v read, the output and its log-sum-exp (B H T) written:
  4 B T D + B H T floats, no T x T matrix at all.

`measured_terms(cfg, sizes)` attributes a traced forward's ops to the same terms by module
path (the architecture table's `term_modules`), so each formula is checked against a
measurement (`analysis.reconcile.reconcile_bytes`); the elementwise rest is reported
measured only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sympy as sp

from analysis.formulas import B, D, E, H, L, T, V

BYTES_PER_ELEMENT = 4  # float32
F = BYTES_PER_ELEMENT


def _elman(layers) -> dict[str, sp.Expr]:
    return {
        "W_ih": F * T * ((B * E + E * D + D + B * D)
                         + (layers - 1) * (2 * B * D + D**2 + D)),
        "W_hh": F * T * layers * (2 * B * D + D**2 + D),
        "fc": F * T * (B * D + D * V + V + B * V),
    }


def _gru() -> dict[str, sp.Expr]:
    return {
        "W_x": F * T * 3 * ((B * E + E * D + B * D) + (L - 1) * (2 * B * D + D**2)),
        "W_h": F * T * 3 * L * (2 * B * D + D**2),
        "fc": F * T * (B * D + D * V + V + B * V),
    }


def _transformer(attention: str) -> dict[str, sp.Expr]:
    if attention == "manual":
        attn = L * (F * (12 * B * T * D + 8 * B * H * T**2) + 3 * T**2)
    elif attention == "flash":
        attn = L * F * (4 * B * T * D + B * H * T)
    else:
        raise ValueError(f"attention must be manual or flash, got {attention!r}")
    return {
        "qkv": L * F * (4 * B * T * D + 3 * D**2),
        "attention": attn,
        "out_proj": L * F * (2 * B * T * D + D**2),
        "mlp": L * F * (10 * B * T * D + 8 * D**2 + 5 * D),
        "lm_head": F * (B * T * D + D * V + B * T * V),
    }


# term -> regex on module paths whose own (exclusive) ops do that term
TERM_MODULES = {
    "rnn": {"W_ih": r"^W_ih(\.\d+)?$", "W_hh": r"^W_hh(\.\d+)?$", "fc": r"^fc$"},
    "gru": {"W_x": r"\.W_x[rzn]$", "W_h": r"\.W_h[rzn]$", "fc": r"^fc$"},
    "transformer": {"qkv": r"\.attn\.c_attn$", "attention": r"\.attn$",
                    "out_proj": r"\.attn\.c_proj$", "mlp": r"\.mlp\.[02]$",
                    "lm_head": r"^lm_head$"},
}
TERM_MODULES["mlrnn"] = TERM_MODULES["rnn"]
# which ops of a term's modules the formula covers: matmul terms their matmuls, attention
# everything that moves data
TERM_KINDS = {"attention": ("matmul", "elementwise")}


def forward_bytes(model: str, attention: str | None = None) -> dict[str, sp.Expr]:
    """Bytes of each dominant term of a forward pass (sympy, symbols of analysis.formulas)."""
    if model == "rnn":
        return _elman(1)
    if model == "mlrnn":
        return _elman(L)
    if model == "gru":
        return _gru()
    if model == "transformer":
        return _transformer(attention or "flash")
    raise ValueError(f"no bytes formulas for model {model!r}; "
                     f"known: {', '.join(sorted(TERM_MODULES))}")


def evaluate(terms: Mapping[str, sp.Expr], sizes: Mapping[str, int]) -> dict[str, int]:
    subs = {sp.Symbol(k, positive=True, integer=True): v for k, v in sizes.items()}
    return {name: int(sp.sympify(expr).subs(subs)) for name, expr in terms.items()}


def sizes_of(cfg, sizes: Mapping[str, int]) -> dict[str, int]:
    return {"B": sizes["B"], "T": sizes["T"], "D": cfg.hidden, "E": cfg.embed or cfg.hidden,
            "L": cfg.layers or 1, "H": cfg.heads or 1, "V": cfg.vocab_size}


def measured_terms(trace, model: str) -> dict[str, int]:
    """Bytes per term in a traced forward (ops attributed by their module path)."""
    patterns = {t: re.compile(p) for t, p in TERM_MODULES[model].items()}
    out = {t: 0 for t in patterns}
    for op in trace.ops:
        for term, pattern in patterns.items():
            if op.module and pattern.search(op.module) \
                    and op.kind in TERM_KINDS.get(term, ("matmul",)):
                out[term] += op.bytes
    return out


__all__ = ["BYTES_PER_ELEMENT", "TERM_MODULES", "evaluate", "forward_bytes", "measured_terms",
           "sizes_of"]
