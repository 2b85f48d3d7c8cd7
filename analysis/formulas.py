"""Symbolic cost models, one per architecture in `charlm.models`: parameters and FLOPs as sums
of named sympy terms.

Conventions (carried in every `Terms` as `.convention`, and into every table built on it):

* A multiply-add is 2 FLOPs: an (m x k) @ (k x n) matmul costs 2*m*k*n.
* The primary tier is matmul FLOPs ("model FLOPs"): every Linear (bias excluded), the attention
  scores q @ k^T and the weighted values att @ v. This is what
  `torch.utils.flop_counter.FlopCounterMode` counts, and the reconciliation holds the two equal.
* Attention square: "full" (default) counts every query x key pair, T*T for a sequence of T,
  as PyTorch's counter, nanoGPT and PaLM do; "causal" counts only the unmasked pairs,
  T*(T+1)/2 (a query at absolute position i sees i+1 keys).
* Elementwise work (bias adds, tanh/sigmoid, gate products, LayerNorm, softmax, GELU, residual
  adds) is a second tier, `CostModel.elementwise()`, never added into the first. Its per-element
  costs are a stated convention (ELEMENTWISE_COST), not a measurement.
* Embedding lookups, cross-entropy and the optimizer step are not matmuls (0 FLOPs here).

Symbols (positive integers): B batch, T sequence length, D hidden width / n_embd,
E embedding width (recurrent models; the transformer has E = D), L layers, H heads (matmul
counts do not depend on H: the heads split D), V vocabulary, N new tokens generated,
P prompt length, C context window (the transformer's block_size).

API (stable; other modules and the homework checker import it):

    analysis.architectures.cost_model(name) -> CostModel   # the table's entry for a name
    cm.params()                            # = sum(p.numel() for p in model.parameters())
    cm.forward(attention_count="full", head=True)
    cm.backward(attention_count="full", head=True, kernel="manual")
    cm.train(attention_count="full", head=True, kernel="manual")   # forward + backward
    cm.generate(kv_cache=False, attention_count="full", head=True) # N tokens after P
    cm.elementwise()                       # second tier, forward pass
    terms.total, terms.evaluate({"B": 1, "T": 8, ...}) -> {"qkv": ..., "total": ...}

`head=False` drops the vocabulary projection (the homework's "don't count the final projection").
`kernel` only matters for the transformer's backward: "flash" (SDPA) recomputes the scores
in its backward (5 attention matmuls against the forward's 2, as FlashAttention does and
PyTorch's counter counts), "manual" does not (4 against 2).

Backward is derived per matmul, not assumed to be 2x forward: each Linear y = x W^T costs its
forward once for the weight gradient and once more for the input gradient only when x needs a
gradient. The recurrent models start from a constant h0 = 0, so at step 0 the hidden-to-hidden
matmuls (W_hh; GRU W_hr, W_hz, W_hn) get no input gradient; everything else does (the embedding
output needs its gradient to reach the embedding table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp

B, T, D, E, L, H, V, N, P, C = sp.symbols("B T D E L H V N P C", positive=True, integer=True)
SYMBOLS: dict[str, sp.Symbol] = {s.name: s for s in (B, T, D, E, L, H, V, N, P, C)}
SYMBOL_MEANING = {
    "B": "batch size",
    "T": "sequence length",
    "D": "hidden width (n_embd)",
    "E": "embedding width",
    "L": "layers",
    "H": "attention heads",
    "V": "vocabulary size",
    "N": "new tokens generated",
    "P": "prompt length",
    "C": "context window (block_size)",
}

ATTENTION_COUNTS = ("full", "causal")
KERNELS = ("manual", "flash")
FLOPS_PER_MULTIPLY_ADD = 2


def convention(attention_count: str | None = "full", tier: str = "matmul") -> str:
    """The one-line statement of what a number counts; every output carries it.
    attention_count None: a model without attention (no square to state)."""
    square = {"full": ", full T^2 attention square", "causal": ", causal T(T+1)/2 attention pairs",
              None: ""}[attention_count]
    if tier == "matmul":
        return f"matmul FLOPs (model FLOPs), 2 per multiply-add{square}, bias/elementwise excluded"
    if tier == "elementwise":
        return "elementwise FLOPs, per-element costs of analysis.formulas.ELEMENTWISE_COST"
    return "parameter count (tied weights once)"


@dataclass(frozen=True)
class Terms:
    """Ordered named sympy terms; `total` is their sum."""

    quantity: str
    terms: dict[str, sp.Expr]
    convention: str
    assumptions: dict = field(default_factory=dict)

    @property
    def total(self) -> sp.Expr:
        return sp.Add(*self.terms.values())

    @property
    def names(self) -> list[str]:
        return list(self.terms)

    def formula(self) -> str:
        return str(sp.factor_terms(sp.expand(self.total)) if not self.total.has(sp.Piecewise)
                   else self.total)

    def free_symbols(self) -> set[str]:
        return {s.name for s in self.total.free_symbols}

    def evaluate(self, sizes: Mapping) -> dict[str, int]:
        """Integer value of every term and of "total" for concrete sizes ({"T": 8} or {T: 8})."""
        subs = _substitution(sizes, self.free_symbols())
        out = {name: _as_int(expr.xreplace(subs), name) for name, expr in self.terms.items()}
        out["total"] = sum(out.values())
        return out

    def __add__(self, other: Terms) -> Terms:
        merged = dict(self.terms)
        for name, expr in other.terms.items():
            merged[name] = merged.get(name, sp.Integer(0)) + expr
        return Terms(f"{self.quantity}+{other.quantity}", merged, self.convention,
                     {**self.assumptions, **other.assumptions})


def _substitution(sizes: Mapping, needed: set[str]) -> dict:
    subs = {}
    for key, value in sizes.items():
        name = key.name if isinstance(key, sp.Symbol) else str(key)
        if name not in SYMBOLS:
            raise ValueError(f"unknown size {name!r}; sizes are {', '.join(SYMBOLS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"size {name} must be a positive integer, got {value!r}")
        subs[SYMBOLS[name]] = sp.Integer(value)
    missing = sorted(needed - {s.name for s in subs})
    if missing:
        raise ValueError(f"missing sizes: {', '.join(missing)} "
                         f"({', '.join(SYMBOL_MEANING[m] for m in missing)})")
    return subs


def _as_int(expr: sp.Expr, name: str) -> int:
    value = expr if expr.is_Integer else sp.simplify(expr)
    if not value.is_Integer:
        raise ValueError(f"term {name} did not evaluate to an integer: {value}")
    return int(value)


def _check(attention_count: str, kernel: str = "manual") -> None:
    if attention_count not in ATTENTION_COUNTS:
        raise ValueError(f"attention_count must be one of {ATTENTION_COUNTS}, "
                         f"got {attention_count!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def _scale(terms: Mapping[str, sp.Expr], factor) -> dict[str, sp.Expr]:
    return {k: factor * v for k, v in terms.items()}


def _sum_terms(*parts: Mapping[str, sp.Expr]) -> dict[str, sp.Expr]:
    out: dict[str, sp.Expr] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, sp.Integer(0)) + v
    return out


# Elementwise tier: FLOPs per output element of each kind of op (a convention, stated once).
ELEMENTWISE_COST = {
    "add": 1,  # bias add, residual add, sum of two matmul outputs
    "mul": 1,  # gate product, attention scale
    "activation": 1,  # tanh, sigmoid, GELU: one evaluation per element
    "layernorm": 5,  # mean, subtract, variance, normalise, affine (fvcore's count per element)
    "softmax": 3,  # exp, sum, divide per element (masking not counted)
    "scan_add": 1,  # a prefix sum (cumsum): one add per element, whatever the scan's depth
    "logaddexp": 3,  # a prefix log-sum-exp step: max-shifted exp, add, log per element
}


_GENERATE_CACHE: dict[tuple, Terms] = {}


class CostModel:
    """Formulas for one architecture. Subclasses define the per-step / per-pass matmul terms."""

    name: str = ""
    description: str = ""
    has_attention: bool = False

    def _convention(self, attention_count: str) -> str:
        return convention(attention_count if self.has_attention else None)

    def params(self) -> Terms:
        return Terms("params", self._params(), convention(tier="params"))

    def forward(self, attention_count: str = "full", head: bool = True) -> Terms:
        _check(attention_count)
        return Terms("forward", self._forward(attention_count, head),
                     self._convention(attention_count), {"head": head})

    def backward(self, attention_count: str = "full", head: bool = True,
                 kernel: str = "manual") -> Terms:
        _check(attention_count, kernel)
        return Terms("backward", self._backward(attention_count, head, kernel),
                     self._convention(attention_count), {"head": head, "kernel": kernel})

    def train(self, attention_count: str = "full", head: bool = True,
              kernel: str = "manual") -> Terms:
        """One training step: forward + backward (Adam's update has no matmuls)."""
        total = self.forward(attention_count, head) + self.backward(attention_count, head, kernel)
        return Terms("train", total.terms, total.convention, total.assumptions)

    def generate(self, kv_cache: bool = False, attention_count: str = "full",
                 head: bool = True) -> Terms:
        """FLOPs for `model.generate` to produce N >= 1 tokens after a (B, P) prompt."""
        _check(attention_count)
        key = (self.name, bool(kv_cache), attention_count, bool(head))
        if key not in _GENERATE_CACHE:  # closed-form summation takes sympy a while: build once
            _GENERATE_CACHE[key] = Terms(
                "generate", self._generate(kv_cache, attention_count, head),
                self._convention(attention_count), {"head": head, "kv_cache": kv_cache})
        return _GENERATE_CACHE[key]

    def elementwise(self) -> Terms:
        """Second tier: elementwise FLOPs of one forward pass over (B, T)."""
        return Terms("forward_elementwise", self._elementwise(), convention(tier="elementwise"))

    def quantity(self, name: str, **kw) -> Terms:
        """The quantity by name: params, forward, backward, train, generate."""
        methods: dict[str, Callable[..., Terms]] = {
            "params": self.params, "forward": self.forward, "backward": self.backward,
            "train": self.train, "generate": self.generate, "elementwise": self.elementwise,
        }
        if name not in methods:
            raise ValueError(f"unknown quantity {name!r}; choose from {', '.join(methods)}")
        return methods[name](**kw)


class RecurrentCost(CostModel):
    """Models that run one `forward` per position: forward = T x one step (h0 = 0 is still
    multiplied), generation = P + N - 1 steps (prompt, then N - 1 fed-back samples)."""

    def _step(self, head: bool) -> dict[str, sp.Expr]:
        """Matmul FLOPs of one step over B rows."""
        raise NotImplementedError

    def _hidden_terms(self) -> tuple[str, ...]:
        """Terms whose input at step 0 is the constant h0 (no input gradient there)."""
        raise NotImplementedError

    def _forward(self, attention_count, head):
        return _scale(self._step(head), T)

    def _backward(self, attention_count, head, kernel):
        # weight grad every step + input grad every step, except hidden matmuls at step 0
        step = self._step(head)
        return {k: (2 * T - 1) * v if k in self._hidden_terms() else 2 * T * v
                for k, v in step.items()}

    def _generate(self, kv_cache, attention_count, head):
        return _scale(self._step(head), P + N - 1)


class ElmanCost(RecurrentCost):
    """h_t^l = tanh(W_ih^l x + b_ih + W_hh^l h_{t-1}^l + b_hh); layer 0 reads the E-wide
    embedding, layers 1.. read D; fc projects the top state to V."""

    def __init__(self, name: str, layers=L):
        self.name = name
        self.layers = layers
        self.description = "Elman RNN" + (", one layer" if layers == 1 else ", L layers")

    def _step(self, head):
        nl = self.layers
        terms = {"W_ih": 2 * B * (E * D + (nl - 1) * D**2), "W_hh": 2 * B * nl * D**2}
        if head:
            terms["fc"] = 2 * B * D * V
        return terms

    def _hidden_terms(self):
        return ("W_hh",)

    def _params(self):
        nl = self.layers
        return {"embedding": V * E, "W_ih": E * D + D + (nl - 1) * (D**2 + D),
                "W_hh": nl * (D**2 + D), "fc": D * V + V}

    def _elementwise(self):
        nl, c = self.layers, ELEMENTWISE_COST
        per_state = B * T * nl * D
        return {
            "bias_add": 2 * c["add"] * per_state,
            "sum_ih_hh": c["add"] * per_state,
            "tanh": c["activation"] * per_state,
            "fc_bias": c["add"] * B * T * V,
        }


class GatedCost(RecurrentCost):
    """A gated cell without biases, `gates` of them: per layer one input matmul per gate (term
    W_x, reading the E-wide embedding at layer 0 and D after) and one hidden matmul per gate
    (term W_h); fc projects to V. h0 = 0, so the hidden matmuls at step 0 get no input
    gradient."""

    gates = 0

    def _step(self, head):
        k = self.gates
        terms = {"W_x": 2 * B * k * (E * D + (L - 1) * D**2), "W_h": 2 * B * k * L * D**2}
        if head:
            terms["fc"] = 2 * B * D * V
        return terms

    def _hidden_terms(self):
        return ("W_h",)

    def _params(self):
        k = self.gates
        return {"embedding": V * E, "W_x": k * E * D + k * (L - 1) * D**2,
                "W_h": k * L * D**2, "fc": D * V + V}


class GRUCost(GatedCost):
    """Reset-after GRU: three gates r, z, n (W_xr, W_xz, W_xn: term W_x; W_hr, W_hz, W_hn:
    term W_h)."""

    name = "gru"
    description = "GRU (reset-after), L layers"
    gates = 3

    def _elementwise(self):
        c = ELEMENTWISE_COST
        per_state = B * T * L * D
        return {
            "gate_sums": 3 * c["add"] * per_state,  # W_x* x + W_h* h for r, z, n
            "sigmoid_tanh": 3 * c["activation"] * per_state,
            "reset_product": c["mul"] * per_state,
            "update_mix": 4 * per_state,  # (1 - z) * n + z * h: sub, mul, mul, add
            "fc_bias": c["add"] * B * T * V,
        }


class LSTMCost(GatedCost):
    """LSTM: four gates i, f, g, o (W_xi, W_xf, W_xg, W_xo: term W_x; W_hi, W_hf, W_hg, W_ho:
    term W_h). h0 = c0 = 0; c carries no matmul."""

    name = "lstm"
    description = "LSTM, L layers"
    gates = 4

    def _elementwise(self):
        c = ELEMENTWISE_COST
        per_state = B * T * L * D
        return {
            "gate_sums": 4 * c["add"] * per_state,  # W_x* x + W_h* h for i, f, g, o
            "gates": 4 * c["activation"] * per_state,  # sigmoid x3, tanh
            "cell_update": 3 * per_state,  # f * c + i * g: mul, mul, add
            "output": (c["activation"] + c["mul"]) * per_state,  # o * tanh(c)
            "fc_bias": c["add"] * B * T * V,
        }


class MinGRUCost(RecurrentCost):
    """minGRU (charlm.models.mingru), embedding width D (E = D): per layer two matmuls on the
    layer's input, W_xz and W_xh (term W_x), and none on the state (the recurrence is
    elementwise), so every matmul's input gets a gradient at every position (backward = 2 x
    forward). The
    parallel scan over a sequence does the same matmuls as T sequential steps: forward = T
    steps, generation = P + N - 1 positions (the prompt scanned, N - 1 steps). The scan's
    prefix sums are elementwise work (`elementwise`)."""

    name = "mingru"
    description = "minGRU (parallel scan), L residual layers"

    def _step(self, head):
        terms = {"W_x": 2 * B * 2 * L * D**2}
        if head:
            terms["fc"] = 2 * B * D * V
        return terms

    def _hidden_terms(self):
        return ()

    def _params(self):
        return {"embedding": V * D, "W_x": 2 * L * D**2,
                "layernorm": (L + 1) * 2 * D, "fc": D * V + V}

    def _elementwise(self):
        """Forward over (B, T) through the scan path, per element of each (B, T, D) state:
        layer norm; log(1 - z) = -softplus(k) and log z = -softplus(-k) (neg, activation,
        neg each); log g(v) (activation); log b = log z + log g (add); A = cumsum (one add per
        element, `scan_add`); log b - A (add); logcumsumexp (one log-add-exp per element,
        `logaddexp`); A + it (add); exp (activation); residual (add)."""
        c = ELEMENTWISE_COST
        per_state = B * T * L * D
        return {
            "layernorm": c["layernorm"] * B * T * D * (L + 1),
            "gates_log_space": (2 * (2 * c["mul"] + c["activation"]) + c["activation"]
                                + c["add"]) * per_state,
            "scan": (c["scan_add"] + c["logaddexp"] + 2 * c["add"]) * per_state,
            "exp": c["activation"] * per_state,
            "residual": c["add"] * per_state,
            "fc_bias": c["add"] * B * T * V,
        }


class TransformerCost(CostModel):
    """nanoGPT block: qkv (D -> 3D), scores, weighted values, out_proj (D -> D), MLP (D -> 4D ->
    D), lm_head (D -> V, tied to the token embedding). Forward runs T queries over T keys;
    generation runs the windows `Transformer.generate` runs (see `generate`)."""

    name = "transformer"
    description = "nanoGPT-style Transformer"
    has_attention = True

    @staticmethod
    def _pairs(tq, s, attention_count):
        """Query x key pairs for tq queries that are the last tq of s positions."""
        if attention_count == "full":
            return tq * s
        return tq * (s - tq) + tq * (tq + 1) / 2

    def _pass(self, tq, s, attention_count, head):
        """One forward call over tq new positions attending to s keys (s - tq cached)."""
        pairs = self._pairs(tq, s, attention_count)
        terms = {
            "qkv": L * 6 * B * tq * D**2,
            "scores": L * 2 * B * pairs * D,
            "weighted_values": L * 2 * B * pairs * D,
            "out_proj": L * 2 * B * tq * D**2,
            "mlp": L * 16 * B * tq * D**2,
        }
        if head:
            terms["lm_head"] = 2 * B * tq * D * V
        return terms

    def _forward(self, attention_count, head):
        return self._pass(T, T, attention_count, head)

    def _backward(self, attention_count, head, kernel):
        fwd = self._pass(T, T, attention_count, head)
        # every Linear's input needs a gradient (the embeddings are trained): 2x each
        terms = _scale(fwd, 2)
        if kernel == "flash":
            # the fused kernel recomputes q @ k^T in backward: 5 attention matmuls, not 4
            terms = {**terms, "scores_recompute": fwd["scores"]}
        return terms

    def _generate(self, kv_cache, attention_count, head):
        """`Transformer.generate`: step i has P + i tokens.

        No cache: each step re-runs the last min(P + i, C) tokens with logits for all of them.
        With a cache: step 0 runs the prompt window; each later step runs one query over the
        cache plus itself while the cache is shorter than C; a step that finds the cache full
        re-runs the whole C window, and the cache stays full, so every step after that does.
        Regimes: P + N - 1 <= C (never cropped), P >= C (always a full window), else both.
        """
        c, i = sp.symbols("c i", positive=True, integer=True)
        window = self._pass(c, c, attention_count, head)
        one = self._pass(1, P + i, attention_count, head)
        full = self._pass(C, C, attention_count, head)

        def windows(lo, hi):  # sum of full windows of lengths lo..hi
            return {k: sp.summation(v, (c, lo, hi)) for k, v in window.items()}

        def singles(count):  # single-token steps i = 1..count
            return {k: sp.summation(v, (i, 1, count)) for k, v in one.items()}

        if kv_cache:
            prompt = {k: v.subs(c, P) for k, v in window.items()}
            short = _sum_terms(prompt, singles(N - 1))
            long = _sum_terms(prompt, singles(C - P), _scale(full, N - 1 - (C - P)))
        else:
            short = windows(P, P + N - 1)
            long = _sum_terms(windows(P, C), _scale(full, N - 1 - (C - P)))
        always_full = _scale(full, N)
        return {
            k: sp.Piecewise(
                (sp.expand(short[k]), P + N - 1 <= C),
                (sp.expand(always_full[k]), P >= C),
                (sp.expand(long[k]), True),
            )
            for k in window
        }

    def _params(self):
        return {
            "token_embedding": V * D,  # shared with lm_head (weight tying): counted once
            "position_embedding": C * D,
            "attention": L * 4 * D**2,
            "mlp": L * (8 * D**2 + 5 * D),
            "layernorm": (2 * L + 1) * 2 * D,
        }

    def _elementwise(self):
        c = ELEMENTWISE_COST
        rows = B * T
        return {
            "embedding_add": c["add"] * rows * D,
            "layernorm": c["layernorm"] * rows * D * (2 * L + 1),
            "attention_scale": c["mul"] * L * B * H * T * T,  # every score times 1/sqrt(hd)
            "softmax": c["softmax"] * L * B * H * T * T,
            "mlp_bias": c["add"] * L * rows * 5 * D,
            "gelu": c["activation"] * L * rows * 4 * D,
            "residual": c["add"] * L * rows * 2 * D,
        }
