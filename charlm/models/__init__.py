"""The homework's models, with their notebook names, signatures and parameter names."""

from charlm.models.gru import GRULM, GRUCell
from charlm.models.registry import (
    MODELS,
    ModelConfig,
    ModelSpec,
    build_model,
    count_parameters,
    get_spec,
)
from charlm.models.rnn import MultiLayerRNN, SimpleRNN
from charlm.models.transformer import (
    Block,
    CausalSelfAttention,
    KVCache,
    Transformer,
    TransformerConfig,
)

__all__ = [
    "MODELS",
    "Block",
    "CausalSelfAttention",
    "GRUCell",
    "GRULM",
    "KVCache",
    "ModelConfig",
    "ModelSpec",
    "MultiLayerRNN",
    "SimpleRNN",
    "Transformer",
    "TransformerConfig",
    "build_model",
    "count_parameters",
    "get_spec",
]
