"""What every recurrent language model here shares: the per-step loop over a sequence and
generation.

A subclass provides `embedding`, `forward(x_token, hidden) -> (logits, hidden)` and
`init_hidden(batch_size)`. `forward_sequence` is the homework's training loop body
(`logits, h = model(x[:, t], h)` for each t), so anything measured on it is what the
homework's loop does.
"""

from __future__ import annotations

import torch
from torch import nn

from charlm.sampling import check_sampling, sample_next, start_tokens


class RecurrentLM(nn.Module):
    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def _device(self) -> torch.device:
        return self.embedding.weight.device

    def forward_sequence(self, idx: torch.Tensor, state=None):
        """(B, T) ids -> ((B, T, V) logits, final hidden state), one `forward` step per position."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        hidden = state if state is not None else self.init_hidden(idx.size(0))
        steps = []
        for t in range(idx.size(1)):
            logits, hidden = self(idx[:, t], hidden)
            steps.append(logits)
        return torch.stack(steps, dim=1), hidden

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: torch.Tensor | None,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Feed the prompt, then sample each new token and feed it back: P + N - 1 steps in all."""
        check_sampling(max_new_tokens, temperature, top_k)
        self.eval()
        ids = start_tokens(prompt_ids, self.vocab_size, self._device(), generator)
        if max_new_tokens == 0:
            return ids
        logits, hidden = self.forward_sequence(ids)
        logits = logits[:, -1]
        out = [ids]
        for i in range(max_new_tokens):
            token = sample_next(logits, temperature, top_k, greedy, generator)
            out.append(token)
            if i + 1 < max_new_tokens:
                logits, hidden = self(token[:, 0], hidden)
        return torch.cat(out, dim=1)

    def generate_text(self, dataset, length: int = 100) -> str:
        """The notebook's call: `length` characters starting from one random token."""
        ids = self.generate(None, length - 1)
        return "".join(dataset.itos[i] for i in ids[0].tolist())
