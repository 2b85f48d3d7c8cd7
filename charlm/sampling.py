"""Choosing the next token from logits: the one sampling rule every model's `generate` uses."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None) -> None:
    """Validate generation arguments once, with messages a CLI can print as they are."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, V) logits -> (B, 1) token ids."""
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    # multinomial's generator must live on the logits' device; fall back to the global RNG.
    if generator is not None and generator.device != probs.device:
        generator = None
    return torch.multinomial(probs, num_samples=1, generator=generator)


def has_values(t: torch.Tensor) -> bool:
    """False for tensors that carry shapes only (meta, or the fake tensors FLOPs are counted
    on): their values cannot be read, so value checks are skipped for them."""
    if t.device.type == "meta":
        return False
    try:  # private, present from torch 2.0 on
        from torch._subclasses.fake_tensor import is_fake
    except ImportError:  # pragma: no cover
        return True
    return not is_fake(t)


def start_tokens(
    prompt_ids: torch.Tensor | None,
    vocab_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The (B, P) ids a generation starts from: the prompt, or one random token as the homework
    does."""
    if prompt_ids is None:
        # draw on the generator's device: randint refuses a CUDA generator for a CPU tensor
        where = generator.device if generator is not None else "cpu"
        return torch.randint(0, vocab_size, (1, 1), generator=generator, device=where).to(device)
    if prompt_ids.dim() != 2 or prompt_ids.size(1) == 0:
        raise ValueError(f"prompt_ids must have shape (B, P) with P >= 1, got "
                         f"{tuple(prompt_ids.shape)}")
    if prompt_ids.dtype != torch.long:
        raise ValueError(f"prompt_ids must be a LongTensor, got {prompt_ids.dtype}")
    if has_values(prompt_ids) and (
            int(prompt_ids.min()) < 0 or int(prompt_ids.max()) >= vocab_size):
        raise ValueError(f"prompt_ids must lie in [0, {vocab_size}), got values outside")
    return prompt_ids.to(device)
