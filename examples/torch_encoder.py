"""A model factory for `charlm derive` and `charlm profile`: PyTorch's own
`torch.nn.TransformerEncoder` (L post-norm `TransformerEncoderLayer`s of width D, H heads and
feed-forward width F), random weights, on a (B, T, D) batch of random vectors.

    charlm derive examples/torch_encoder.py:encoder --vary T,D,L --step D=2 --tensors real

Real tensors: nn.TransformerEncoder deep-copies its layer L times, and PyTorch's deep copy of
a fake tensor belongs to another FakeTensorMode, which the forward then refuses ("Mixing fake
modes"). At the sizes derive counts at the real model is tiny.

The model stays in its default train mode. In eval mode under no_grad each layer runs as one
fused op (`torch._transformer_encoder_layer_fwd`) that no FLOP formula covers, and charlm
derive refuses to give a formula from it; in train mode the layer runs unfused (its attention
dropout sends SDPA to its math path: two bmm's).
"""

import torch
from torch import nn


def encoder(B=1, T=16, D=32, L=2, H=2, F=None):
    """nn.TransformerEncoder of L layers (d_model=D, nhead=H, dim_feedforward=F, 4*D when F
    is None, batch_first) on a (B, T, D) input. D must be a multiple of H."""
    layer = nn.TransformerEncoderLayer(d_model=D, nhead=H, dim_feedforward=4 * D if F is None
                                       else F, batch_first=True)
    # no padding mask is passed, so the nested-tensor path never runs; off, an odd H does
    # not warn that it cannot
    model = nn.TransformerEncoder(layer, num_layers=L, enable_nested_tensor=False)
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(0))
    return model, x
