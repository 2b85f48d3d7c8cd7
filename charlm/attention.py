"""Attention weights as the model computes them, for every layer and head.

The homework's `plot_attention_patterns` recomputes layer 0 from
`ln_1(token_embedding(x))`: it leaves out the position embedding and the causal mask, so
its maps are not what the model attends with. Here each `CausalSelfAttention` gets a
`weights_hook` for one forward pass; while it is set the manual kernel runs (flash models
included: SDPA does not expose its weights) and hands over the softmax it multiplies the
values with. The hooks are removed afterwards, even on error.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from charlm.data import encode


def _attention_modules(model: nn.Module) -> list:
    blocks = getattr(getattr(model, "transformer", None), "blocks", None)
    if blocks is None:
        raise ValueError(
            f"{type(model).__name__} has no attention layers; attention maps need a Transformer"
        )
    return [block.attn for block in blocks]


@contextmanager
def capture_attention(model: nn.Module):
    """Within the block, every forward pass appends, per layer, the softmax (B, nh, T, S) to
    the yielded list of lists: captured[layer] == [weights of call 1, call 2, ...]."""
    modules = _attention_modules(model)
    captured: list[list[torch.Tensor]] = [[] for _ in modules]

    def hook_for(layer):
        def hook(_module, weights):
            captured[layer].append(weights.detach())

        return hook

    try:
        for i, attn in enumerate(modules):
            attn.weights_hook = hook_for(i)
        yield captured
    finally:
        for attn in modules:
            attn.weights_hook = None


def attention_maps(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Token ids (T,) or (1, T) -> the attention weights (layers, heads, T, T) of one forward
    pass over the whole sequence (no cache), in float32 on the CPU."""
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)
    if idx.dim() != 2 or idx.size(0) != 1:
        raise ValueError(f"expected one sequence of token ids, got shape {tuple(idx.shape)}")
    if idx.size(1) == 0:
        raise ValueError("the text is empty")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), capture_attention(model) as captured:
            model.forward_sequence(idx)
    finally:
        model.train(was_training)
    return torch.stack([layer[0][0] for layer in captured]).float().cpu()


def attention_for_text(model: nn.Module, text: str, stoi: dict[str, int]) -> torch.Tensor:
    """The maps (layers, heads, T, T) for `text`; T is len(text), at most the block size.
    Characters outside the vocabulary are named in a ValueError."""
    _attention_modules(model)  # a recurrent model fails here, before the text is read
    idx = encode(text, stoi).to(next(model.parameters()).device)
    block = model.config.block_size
    if idx.numel() > block:
        raise ValueError(f"text has {idx.numel()} characters; the model's block size is {block}")
    return attention_maps(model, idx)
