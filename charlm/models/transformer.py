"""nanoGPT-style Transformer from the homework: pre-LayerNorm blocks, GELU MLP, learned
positions, tied token embedding and LM head, causal self-attention with a flash (SDPA) or
manual kernel. Parameter names match the notebook's. The notebook's causal-mask buffer
`attn.bias` is not kept in the state_dict here (it is a constant), so loading a notebook
checkpoint with strict=False reports exactly those keys as unexpected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from charlm.sampling import check_sampling, sample_next, start_tokens


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    n_embd: int = 128  # the homework's width, chosen to roughly match its GRU
    block_size: int = 100
    n_layer: int = 1
    n_head: int = 4
    flash: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "n_embd", "block_size", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )


@dataclass
class KVCache:
    """Per-layer keys and values, each (B, nh, T_cached, hs)."""

    layers: list

    @property
    def length(self) -> int:
        return self.layers[0][0].size(2) if self.layers else 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(
                f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})"
            )
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.config = config
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.flash = config.flash
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)
        # Set by charlm.attention to capture the softmax of every forward pass.
        self.weights_hook = None

    def forward(self, x, past=None):
        """x (B, T, C), past keys/values or None -> y (B, T, C), (k, v) including the past."""
        B, T, C = x.size()
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, nh, T_past + T, hs)
            v = torch.cat([past[1], v], dim=2)
        offset = k.size(2) - T  # absolute position of the first query
        y = self._attend(q, k, v, offset)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), (k, v)

    def _attend(self, q, k, v, offset):
        T, S = q.size(2), k.size(2)
        if self.flash and self.weights_hook is None:
            if offset == 0:
                return F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=True)
            if T == 1:  # one new query sees every cached key: no mask needed
                return F.scaled_dot_product_attention(q, k, v, dropout_p=0.0)
            mask = self.causal_mask[offset : offset + T, :S]
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, T, S)
        att = att.masked_fill(~self.causal_mask[offset : offset + T, :S], float("-inf"))
        att = F.softmax(att, dim=-1)
        if self.weights_hook is not None:
            self.weights_hook(self, att)
        return att @ v


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
        )

    def forward(self, x, past=None):
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.transformer = nn.ModuleDict(
            dict(
                token_embedding=nn.Embedding(config.vocab_size, config.n_embd),
                position_embedding=nn.Embedding(config.block_size, config.n_embd),
                blocks=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd),
            )
        )
        self.config = config
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.token_embedding.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def forward(self, idx):
        """(B, T) ids -> ((B, T, V) logits, None), as the notebook's model returns."""
        logits, _ = self.forward_sequence(idx)
        return logits, None

    def forward_sequence(self, idx, state: KVCache | None = None):
        """(B, T) ids continuing after `state`'s cached positions -> (logits, updated cache)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        B, T = idx.size()
        offset = state.length if state is not None else 0
        if offset + T > self.config.block_size:
            raise ValueError(
                f"sequence length {offset + T} exceeds block_size {self.config.block_size}"
            )
        pos = torch.arange(offset, offset + T, dtype=torch.long, device=idx.device)
        x = self.transformer.token_embedding(idx) + self.transformer.position_embedding(pos)
        presents = []
        for i, block in enumerate(self.transformer.blocks):
            x, present = block(x, state.layers[i] if state is not None else None)
            presents.append(present)
        x = self.transformer.ln_f(x)
        return self.lm_head(x), KVCache(presents)

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: torch.Tensor | None,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        use_cache: bool = False,
    ) -> torch.Tensor:
        """Sample N tokens. Without a cache each step re-runs the last block_size tokens (the
        homework's loop, cropped). With one, each step runs only the new token; when the
        window would pass block_size the cache is re-filled from the cropped window, because
        learned positions shift as the window slides, so cached keys would be stale.
        """
        check_sampling(max_new_tokens, temperature, top_k)
        self.eval()
        ids = start_tokens(prompt_ids, self.vocab_size, self.lm_head.weight.device, generator)
        cache = None
        for _ in range(max_new_tokens):
            if use_cache and cache is not None and cache.length < self.config.block_size:
                logits, cache = self.forward_sequence(ids[:, -1:], cache)
            else:
                logits, cache = self.forward_sequence(ids[:, -self.config.block_size :])
            token = sample_next(logits[:, -1], temperature, top_k, greedy, generator)
            ids = torch.cat((ids, token), dim=1)
        return ids

    def generate_text(self, dataset, max_new_tokens: int = 100) -> str:
        ids = self.generate(None, max_new_tokens)
        return "".join(dataset.itos[i] for i in ids[0].tolist())
