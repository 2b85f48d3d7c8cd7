"""Model registry: one `ModelConfig` describes any model; `build_model` makes it.

Names: rnn (SimpleRNN), mlrnn (MultiLayerRNN), gru (GRULM), transformer (Transformer).
Sizes left as None take the homework's defaults for that model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from torch import nn

from charlm.models.gru import GRULM
from charlm.models.rnn import MultiLayerRNN, SimpleRNN
from charlm.models.transformer import Transformer, TransformerConfig

ATTENTION_KINDS = ("flash", "manual")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[ModelConfig], nn.Module]
    defaults: dict = field(default_factory=dict)
    recurrent: bool = True


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
        if not spec.recurrent and self.embed is None:
            object.__setattr__(self, "embed", self.hidden)
        for key in ("vocab_size", "embed", "hidden", "layers", "heads", "block_size"):
            value = getattr(self, key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.model == "rnn" and self.layers != 1:
            raise ValueError("model 'rnn' (SimpleRNN) has one layer; use 'mlrnn' for more")
        if not spec.recurrent:
            if self.embed != self.hidden:
                raise ValueError(
                    f"the transformer's embedding width is its hidden width: embed "
                    f"{self.embed} != hidden {self.hidden}"
                )
            if self.hidden % self.heads:
                raise ValueError(
                    f"hidden (n_embd) {self.hidden} must be divisible by heads {self.heads}"
                )
            if self.attention not in ATTENTION_KINDS:
                raise ValueError(
                    f"attention must be one of {', '.join(ATTENTION_KINDS)}, got {self.attention!r}"
                )

    @property
    def recurrent(self) -> bool:
        return get_spec(self.model).recurrent

    def with_(self, **changes) -> ModelConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def check_seq_len(self, seq_len: int) -> None:
        if seq_len < 1:
            raise ValueError(f"seq_len must be a positive integer, got {seq_len}")
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


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "rnn",
            "Elman RNN, one layer (SimpleRNN)",
            lambda c: SimpleRNN(c.vocab_size, c.embed, c.hidden),
            dict(embed=64, hidden=256, layers=1),
        ),
        ModelSpec(
            "mlrnn",
            "Elman RNN, L stacked layers (MultiLayerRNN)",
            lambda c: MultiLayerRNN(c.vocab_size, c.embed, c.hidden, c.layers),
            dict(embed=64, hidden=256, layers=2),
        ),
        ModelSpec(
            "gru",
            "GRU language model, reset-after form, L layers (GRULM)",
            lambda c: GRULM(c.vocab_size, c.embed, c.hidden, c.layers),
            dict(embed=64, hidden=256, layers=1),
        ),
        ModelSpec(
            "transformer",
            "nanoGPT-style causal Transformer (Transformer)",
            _transformer,
            dict(hidden=128, layers=1, heads=4, block_size=100, attention="flash"),
            recurrent=False,
        ),
    ]
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def build_model(cfg: ModelConfig) -> nn.Module:
    return get_spec(cfg.model).build(cfg)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied weight counts once), as `model.parameters()` yields them."""
    return sum(p.numel() for p in model.parameters())
