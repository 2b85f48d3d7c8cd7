"""Model registry: one `ModelConfig` describes any model; `build_model` makes it.

Names: rnn (SimpleRNN), mlrnn (MultiLayerRNN), gru (GRULM), lstm (LSTMLM), mingru (MinGRULM),
transformer (Transformer).
Sizes left as None take the homework's defaults for that model. A model is one `ModelSpec`
(`register_model` adds one): how to build it, its defaults, and what it accepts. The
analysis side (cost and depth models, counters' module patterns) lives in
`analysis.architectures`, which registers the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from torch import nn

from charlm.models.gru import GRULM
from charlm.models.lstm import LSTMLM
from charlm.models.mingru import MinGRULM
from charlm.models.rnn import MultiLayerRNN, SimpleRNN
from charlm.models.transformer import Transformer, TransformerConfig
from charlm.validate import lookup, positive_int

ATTENTION_KINDS = ("flash", "manual")
SIZE_FIELDS = ("vocab_size", "embed", "hidden", "layers", "heads", "block_size")


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    recurrent: runs one `forward` per position (generation keeps O(1) state per token).
    embed_is_hidden: the embedding width is the hidden width (no separate `embed`).
    max_layers: the largest `layers` the class can take (None: any).
    attention_kinds: kernels it offers (`attention` must be one of them), () for none.
    windowed: it has a context window (`block_size`).
    """

    name: str
    description: str
    build: Callable[[ModelConfig], nn.Module]
    defaults: dict = field(default_factory=dict)
    recurrent: bool = True
    embed_is_hidden: bool = False
    max_layers: int | None = None
    attention_kinds: tuple[str, ...] = ()
    windowed: bool = False


@dataclass(frozen=True)
class ModelConfig:
    model: str
    vocab_size: int
    embed: int | None = None
    hidden: int | None = None
    layers: int | None = None
    heads: int | None = None
    block_size: int | None = None
    attention: str | None = None

    def __post_init__(self):
        spec = get_spec(self.model)
        for key, value in spec.defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if spec.embed_is_hidden and self.embed is None:
            object.__setattr__(self, "embed", self.hidden)
        for key in SIZE_FIELDS:
            positive_int(key, getattr(self, key), allow_none=True)
        if spec.max_layers is not None and self.layers > spec.max_layers:
            stacked = ", ".join(n for n, s in MODELS.items() if s.max_layers is None)
            count = "one layer" if spec.max_layers == 1 else f"at most {spec.max_layers} layers"
            raise ValueError(f"model {self.model!r} has {count}, got layers={self.layers}; "
                             f"models that stack layers: {stacked}")
        if spec.embed_is_hidden and self.embed != self.hidden:
            raise ValueError(f"the {self.model}'s embedding width is its hidden width: embed "
                             f"{self.embed} != hidden {self.hidden}")
        if self.heads is not None and self.hidden % self.heads:
            raise ValueError(f"hidden (n_embd) {self.hidden} must be divisible by heads "
                             f"{self.heads}")
        if spec.attention_kinds and self.attention not in spec.attention_kinds:
            raise ValueError(f"attention must be one of {', '.join(spec.attention_kinds)}, "
                             f"got {self.attention!r}")

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.model)

    @property
    def recurrent(self) -> bool:
        return self.spec.recurrent

    def with_(self, **changes) -> ModelConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def check_seq_len(self, seq_len: int) -> None:
        positive_int("seq_len", seq_len)
        if self.block_size is not None and seq_len > self.block_size:
            raise ValueError(f"seq_len {seq_len} exceeds block_size {self.block_size}")


def _transformer(cfg: ModelConfig) -> nn.Module:
    return Transformer(
        TransformerConfig(
            vocab_size=cfg.vocab_size,
            n_embd=cfg.hidden,
            block_size=cfg.block_size,
            n_layer=cfg.layers,
            n_head=cfg.heads,
            flash=cfg.attention == "flash",
        )
    )


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, replace_existing: bool = False) -> ModelSpec:
    """Add `spec` under its name (ValueError if the name is taken, unless replace_existing)."""
    if spec.name in MODELS and not replace_existing and MODELS[spec.name] is not spec:
        raise ValueError(f"model {spec.name!r} is already registered")
    MODELS[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    MODELS.pop(name, None)


for _spec in (
    ModelSpec("rnn", "Elman RNN, one layer (SimpleRNN)",
              lambda c: SimpleRNN(c.vocab_size, c.embed, c.hidden),
              dict(embed=64, hidden=256, layers=1), max_layers=1),
    ModelSpec("mlrnn", "Elman RNN, L stacked layers (MultiLayerRNN)",
              lambda c: MultiLayerRNN(c.vocab_size, c.embed, c.hidden, c.layers),
              dict(embed=64, hidden=256, layers=2)),
    ModelSpec("gru", "GRU language model, reset-after form, L layers (GRULM)",
              lambda c: GRULM(c.vocab_size, c.embed, c.hidden, c.layers),
              dict(embed=64, hidden=256, layers=1)),
    ModelSpec("lstm", "LSTM language model, four gates, L layers (LSTMLM)",
              lambda c: LSTMLM(c.vocab_size, c.embed, c.hidden, c.layers),
              dict(embed=64, hidden=256, layers=1)),
    ModelSpec("mingru", "minGRU (Feng et al. 2024), parallel scan, L residual layers "
              "(MinGRULM)", lambda c: MinGRULM(c.vocab_size, c.hidden, c.layers),
              dict(hidden=256, layers=1), embed_is_hidden=True),
    ModelSpec("transformer", "nanoGPT-style causal Transformer (Transformer)", _transformer,
              dict(hidden=128, layers=1, heads=4, block_size=100, attention="flash"),
              recurrent=False, embed_is_hidden=True, attention_kinds=ATTENTION_KINDS,
              windowed=True),
):
    register_model(_spec)


def get_spec(name: str) -> ModelSpec:
    return lookup(MODELS, name, "model")


def build_model(cfg: ModelConfig) -> nn.Module:
    return get_spec(cfg.model).build(cfg)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied weight counts once), as `model.parameters()` yields them."""
    return sum(p.numel() for p in model.parameters())
