"""What the bench and the report time: a `Workload` names a model variant, a phase and sizes,
and `prepare` turns it into a model and a zero-argument callable that runs one round.

Variants: the homework's models (rnn, mlrnn, gru, transformer-flash, transformer-manual),
the same recurrent networks run through torch.nn.RNN / torch.nn.GRU with the homework
model's weights (what a user would reach for instead), and one causal self-attention layer
with the SDPA or the manual kernel.
Phases: forward (no grad), train (forward + backward + Adam step on cross-entropy),
generate (N new tokens after a P-token prompt, greedy; for the Transformer without and with
the KV cache).
Grids: named lists of workloads (quick, default, full) sweeping T, D and, for the models
that stack layers, L.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from charlm.models.registry import ModelConfig, build_model
from charlm.models.transformer import CausalSelfAttention, TransformerConfig

PHASES = ("forward", "train", "generate", "generate_cache")
KINDS = ("model", "reference", "attention")


@dataclass(frozen=True)
class Variant:
    """A runnable thing: a registry model (with its attention kernel), the torch.nn fused
    equivalent of a homework recurrent model, or a single attention layer."""

    name: str
    model: str
    attention: str | None = None
    impl: str = "homework"  # homework | torch
    kind: str = "model"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("rnn", "rnn"),
        Variant("mlrnn", "mlrnn"),
        Variant("gru", "gru"),
        Variant("transformer-flash", "transformer", "flash"),
        Variant("transformer-manual", "transformer", "manual"),
        Variant("rnn-torch", "rnn", impl="torch", kind="reference"),
        Variant("mlrnn-torch", "mlrnn", impl="torch", kind="reference"),
        Variant("gru-torch", "gru", impl="torch", kind="reference"),
        Variant("attention-flash", "transformer", "flash", kind="attention"),
        Variant("attention-manual", "transformer", "manual", kind="attention"),
    ]
}


@dataclass(frozen=True)
class Workload:
    variant: str
    phase: str
    batch: int = 4
    seq_len: int = 32  # T for forward/train; the prompt length P for generation
    hidden: int | None = None
    embed: int | None = None
    layers: int | None = None
    heads: int | None = None
    vocab: int = 65
    new_tokens: int = 0  # N, generation only
    sweep: str = "base"  # which axis this workload varies: base, T, D, L, N

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {', '.join(VARIANTS)}")
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}; choose from {', '.join(PHASES)}")
        if self.phase.startswith("generate") and self.new_tokens < 1:
            raise ValueError("a generate workload needs new_tokens >= 1")
        if self.phase == "generate_cache" and self.spec.model != "transformer":
            raise ValueError("generate_cache (KV cache) applies to the transformer only")
        if self.spec.kind == "attention" and self.phase != "forward":
            raise ValueError("attention workloads time the forward pass only")
        self.model_config()  # validates sizes

    @property
    def spec(self) -> Variant:
        return VARIANTS[self.variant]

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def context(self) -> int:
        """Longest sequence the model sees: T, or P + N for generation."""
        return self.seq_len + self.new_tokens

    def model_config(self) -> ModelConfig:
        spec = self.spec
        return ModelConfig(
            model=spec.model,
            vocab_size=self.vocab,
            embed=self.embed,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            block_size=self.context if spec.model == "transformer" else None,
            attention=spec.attention,
        )

    def sizes(self) -> dict:
        """The cost-model symbols' values (B, T, D, E, L, H, V, C; N and P when generating)."""
        cfg = self.model_config()
        gen = self.phase.startswith("generate")
        sizes = {
            "B": self.batch,
            "T": self.seq_len if not gen else self.context,
            "D": cfg.hidden,
            "E": cfg.embed,
            "L": cfg.layers if self.kind != "attention" else 1,
            "H": cfg.heads if cfg.heads is not None else 1,
            "V": self.vocab,
            "C": cfg.block_size if cfg.block_size is not None else self.context,
        }
        if gen:
            sizes.update(N=self.new_tokens, P=self.seq_len)
        return sizes

    def tokens(self) -> int:
        """Tokens processed per round: B*T for forward/train, B*N generated."""
        return self.batch * (self.new_tokens if self.phase.startswith("generate") else self.seq_len)

    @property
    def id(self) -> str:
        s = self.sizes()
        parts = [self.variant, self.phase, f"B{s['B']}", f"T{self.seq_len}", f"D{s['D']}"]
        if self.kind != "attention":
            parts.append(f"L{s['L']}")
        if self.phase.startswith("generate"):
            parts.append(f"N{self.new_tokens}")
        return "-".join(parts)

    @property
    def group(self) -> str:
        return f"{self.kind}:{self.variant.split('-')[0]}:{self.phase}"

    def to_dict(self) -> dict:
        cfg = self.model_config()
        return {
            **asdict(self),
            "id": self.id,
            "kind": self.kind,
            "model": cfg.model,
            "attention": cfg.attention,
            "impl": self.spec.impl,
            **{k: v for k, v in self.sizes().items()},
        }


# ---------------------------------------------------------------------------- torch.nn refs


class TorchRecurrentLM(nn.Module):
    """A homework recurrent LM re-expressed with torch.nn.RNN / torch.nn.GRU (cuDNN on GPU),
    holding copies of the homework model's weights: same embedding, same recurrence, same
    head, one fused call over the whole sequence."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.RNNBase, fc: nn.Linear):
        super().__init__()
        self.embedding = copy.deepcopy(embedding)
        self.rnn = rnn
        self.fc = copy.deepcopy(fc)

    def forward_sequence(self, idx, state=None):
        out, h = self.rnn(self.embedding(idx), state)  # (B, T, D), (L, B, D)
        return self.fc(out), h


def _as_list(m):
    return list(m) if isinstance(m, nn.ModuleList) else [m]


def _torch_elman(model) -> TorchRecurrentLM:
    w_ih, w_hh = _as_list(model.W_ih), _as_list(model.W_hh)
    rnn = nn.RNN(w_ih[0].in_features, model.hidden_size, num_layers=len(w_ih),
                 nonlinearity="tanh", bias=True, batch_first=True)
    with torch.no_grad():
        for k, (ih, hh) in enumerate(zip(w_ih, w_hh)):
            getattr(rnn, f"weight_ih_l{k}").copy_(ih.weight)
            getattr(rnn, f"bias_ih_l{k}").copy_(ih.bias)
            getattr(rnn, f"weight_hh_l{k}").copy_(hh.weight)
            getattr(rnn, f"bias_hh_l{k}").copy_(hh.bias)
    return TorchRecurrentLM(model.embedding, rnn, model.fc)


def _torch_gru(model) -> TorchRecurrentLM:
    cells = model.cells()
    rnn = nn.GRU(cells[0].W_xr.in_features, model.hidden_size, num_layers=len(cells),
                 bias=False, batch_first=True)
    with torch.no_grad():
        for k, c in enumerate(cells):  # torch.nn.GRU stacks gates in the order r, z, n
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.cat([c.W_xr.weight, c.W_xz.weight, c.W_xn.weight]))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.cat([c.W_hr.weight, c.W_hz.weight, c.W_hn.weight]))
    return TorchRecurrentLM(model.embedding, rnn, model.fc)


TORCH_EQUIVALENTS: dict[str, Callable[[nn.Module], TorchRecurrentLM]] = {
    "rnn": _torch_elman,
    "mlrnn": _torch_elman,
    "gru": _torch_gru,
}


def torch_equivalent(model_name: str, model: nn.Module) -> TorchRecurrentLM:
    try:
        return TORCH_EQUIVALENTS[model_name](model)
    except KeyError:
        raise ValueError(f"no torch.nn equivalent for model {model_name!r}") from None


# ---------------------------------------------------------------------------- prepare


@dataclass
class Prepared:
    """A workload ready to run: `fn()` is one round; `model` is what FLOPs are counted on;
    `outputs` holds (homework logits, torch.nn logits) for a reference workload, to be
    compared before timing."""

    workload: Workload
    model: nn.Module
    fn: Callable[[], object]
    outputs: tuple[torch.Tensor, torch.Tensor] | None = None


def _inputs(w: Workload, device, generator) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(0, w.vocab, (w.batch, w.seq_len), generator=generator).to(device)
    targets = torch.randint(0, w.vocab, (w.batch, w.seq_len), generator=generator).to(device)
    return idx, targets


def _phase_fn(w: Workload, model, idx, targets) -> Callable[[], object]:
    if w.phase == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                return model.forward_sequence(idx)[0]

        return forward
    if w.phase == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def train_step():
            opt.zero_grad(set_to_none=True)
            logits, _ = model.forward_sequence(idx)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            loss.backward()
            opt.step()
            return loss

        return train_step
    kwargs = {"use_cache": True} if w.phase == "generate_cache" else {}
    if w.spec.model == "transformer" and w.phase == "generate":
        kwargs = {"use_cache": False}
    return lambda: model.generate(idx, w.new_tokens, greedy=True, **kwargs)


def prepare(w: Workload, device: str | torch.device = "cpu", seed: int = 0) -> Prepared:
    """Build the workload's model with seeded weights on `device` and its round callable.

    For a torch.nn reference the homework model is built with the same seed, its weights
    copied into torch.nn.RNN/GRU, and the logits of both compared (`outputs`); the
    caller asserts they agree before timing.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    idx, targets = _inputs(w, device, generator)
    spec = w.spec
    if spec.kind == "attention":
        cfg = w.model_config()
        layer = CausalSelfAttention(TransformerConfig(
            vocab_size=w.vocab, n_embd=cfg.hidden, block_size=w.seq_len, n_layer=1,
            n_head=cfg.heads, flash=spec.attention == "flash")).to(device).eval()
        x = torch.randn(w.batch, w.seq_len, cfg.hidden, generator=generator).to(device)

        def attend():
            with torch.no_grad():
                return layer(x)[0]

        return Prepared(w, layer, attend)
    homework = build_model(w.model_config()).to(device)
    if spec.impl == "homework":
        return Prepared(w, homework, _phase_fn(w, homework, idx, targets))
    ref = torch_equivalent(spec.model, homework).to(device)
    with torch.no_grad():
        outputs = (homework.eval().forward_sequence(idx)[0], ref.eval().forward_sequence(idx)[0])
    return Prepared(w, ref, _phase_fn(w, ref, idx, targets), outputs)


def attention_pair_outputs(w: Workload, device="cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of the flash and the manual attention layer with the same seeded weights and
    input, for checking they agree before timing either."""
    outs = []
    for kernel in ("flash", "manual"):
        p = prepare(replace(w, variant=f"attention-{kernel}"), device, seed)
        outs.append(p.fn())
    return outs[0], outs[1]


# ---------------------------------------------------------------------------- grids


@dataclass(frozen=True)
class GridSpec:
    batch: int
    T: tuple[int, ...]
    D: tuple[int, ...]
    L: tuple[int, ...]
    N: tuple[int, ...]
    prompt: int
    attention_T: tuple[int, ...]
    reference_T: tuple[int, ...]
    rounds: int
    warmup: int


GRIDS: dict[str, GridSpec] = {
    "quick": GridSpec(batch=4, T=(16, 64), D=(64,), L=(2,), N=(16,), prompt=4,
                      attention_T=(64, 256, 512), reference_T=(64,), rounds=3, warmup=1),
    "default": GridSpec(batch=8, T=(16, 32, 64, 128, 256), D=(64, 128, 512), L=(2, 4),
                        N=(16, 64), prompt=8, attention_T=(64, 128, 256, 512),
                        reference_T=(32, 128), rounds=9, warmup=2),
    "full": GridSpec(batch=16, T=(16, 32, 64, 128, 256, 512), D=(64, 128, 256, 512, 1024),
                     L=(2, 4, 8), N=(16, 64, 256), prompt=16,
                     attention_T=(64, 128, 256, 512, 1024, 2048), reference_T=(32, 128, 512),
                     rounds=10, warmup=3),
}
GPU_ATTENTION_T = (128, 256, 512, 1024, 2048)  # the SDPA vs manual sweep on CUDA
MODEL_VARIANTS = ("rnn", "mlrnn", "gru", "transformer-flash", "transformer-manual")
STACKED = ("mlrnn", "gru", "transformer-flash", "transformer-manual")


def get_grid(name: str) -> GridSpec:
    try:
        return GRIDS[name]
    except KeyError:
        raise ValueError(f"unknown grid {name!r}; choose from {', '.join(GRIDS)}") from None


def _unique(ws):
    seen, out = set(), []
    for w in ws:
        if w.id not in seen:
            seen.add(w.id)
            out.append(w)
    return out


def model_workloads(grid: str) -> list[Workload]:
    """Every model variant x phase: T sweep (forward, train) at default width, D and L sweeps
    (forward, train) at the middle T, generation at each N."""
    g = get_grid(grid)
    t_mid = g.T[len(g.T) // 2]
    ws = []
    for v in MODEL_VARIANTS:
        for phase in ("forward", "train"):
            ws += [Workload(v, phase, g.batch, t, sweep="T") for t in g.T]
            ws += [Workload(v, phase, g.batch, t_mid, hidden=d, embed=d if "transformer" in v else None,
                            heads=None, sweep="D") for d in g.D]
            if v in STACKED:
                ws += [Workload(v, phase, g.batch, t_mid, layers=n, sweep="L") for n in g.L]
        gen_phases = ("generate", "generate_cache") if v.startswith("transformer") else ("generate",)
        for phase in gen_phases:
            ws += [Workload(v, phase, g.batch, g.prompt, new_tokens=n, sweep="N") for n in g.N]
    return _unique(ws)


def reference_workloads(grid: str) -> list[Workload]:
    """Homework loop and torch.nn fused twin, same sizes, forward and train."""
    g = get_grid(grid)
    ws = []
    for model in ("rnn", "mlrnn", "gru"):
        for impl in (model, f"{model}-torch"):
            for phase in ("forward", "train"):
                ws += [Workload(impl, phase, g.batch, t, sweep="T") for t in g.reference_T]
    return _unique(ws)


def attention_workloads(grid: str, device: str = "cpu") -> list[Workload]:
    """One attention layer (width 128, 4 heads) at growing T, both kernels."""
    g = get_grid(grid)
    ts = g.attention_T if torch.device(device).type == "cpu" else GPU_ATTENTION_T
    return [Workload(f"attention-{k}", "forward", g.batch, t, hidden=128, heads=4, sweep="T")
            for t in ts for k in ("flash", "manual")]


WORKLOAD_SETS: dict[str, Callable[..., list[Workload]]] = {
    "model": lambda grid, device: model_workloads(grid),
    "reference": lambda grid, device: reference_workloads(grid),
    "attention": attention_workloads,
}


# ---------------------------------------------------------------------------- cost columns

QUANTITY = {"forward": "forward", "train": "train", "generate": "generate",
            "generate_cache": "generate"}
ATTENTION_TERMS = ("qkv", "scores", "weighted_values", "out_proj")


def measured_flops(p: Prepared) -> dict:
    """FLOPs of exactly what a round runs, by PyTorch's counter (with the CPU SDPA kernels
    given their formulas), and fvcore's forward count where fvcore is installed."""
    from analysis.counters import count_flops_torch, fvcore_available, measure_flops

    w = p.workload
    out = {"torch": count_flops_torch(p.model, p.fn)["total"], "fvcore": None}
    if w.kind == "model" and w.phase == "forward" and fvcore_available():
        # fvcore traces a CPU copy built from the same config: counts depend on shapes only,
        # and the counters' own inputs live on the CPU
        out["fvcore"] = measure_flops(w.model_config(), "forward", w.sizes())["fvcore"]
    return out


def predictions(w: Workload) -> dict:
    """Predicted FLOPs (cost models of analysis.formulas) and sequential matmul depth
    (analysis.depth_formulas) of a workload; None where a model has no prediction."""
    return {"flops": predicted_flops(w), "depth": predicted_depth(w)}


def _quantity_kwargs(w: Workload) -> tuple[str, dict]:
    quantity = QUANTITY[w.phase]
    if quantity == "generate":
        return quantity, {"kv_cache": w.phase == "generate_cache"}
    return quantity, {}


def predicted_flops(w: Workload) -> int | None:
    """Matmul FLOPs of one round (2 per multiply-add, full attention square). Flash attention's
    backward recomputes the scores (kernel="flash"), as the counter counts it."""
    try:
        from analysis.formulas import cost_model
    except ImportError:
        return None
    cm = cost_model(w.spec.model)
    sizes = w.sizes()
    if w.kind == "attention":
        terms = cm.forward(head=False).evaluate({**sizes, "L": 1})
        return sum(terms[name] for name in ATTENTION_TERMS)
    quantity, kw = _quantity_kwargs(w)
    if quantity == "train" and w.spec.attention is not None:
        kw["kernel"] = w.spec.attention
    return cm.quantity(quantity, **kw).evaluate(sizes)["total"]


def predicted_depth(w: Workload) -> int | None:
    """Matmuls on the longest dependency chain of one round (analysis.depth_formulas); None
    for a lone attention layer."""
    try:
        from analysis.depth_formulas import depth_model
    except ImportError:
        return None
    if w.kind == "attention":
        return None
    quantity, kw = _quantity_kwargs(w)
    return depth_model(w.spec.model).quantity(quantity, head=True, **kw).evaluate(w.sizes())["depth"]
