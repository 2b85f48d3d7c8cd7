"""Elman RNNs as in the homework: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

Parameter names match the notebook (`embedding`, `W_ih`, `W_hh`, `fc`), so its
state_dicts load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from charlm.models.recurrent import RecurrentLM


class SimpleRNN(RecurrentLM):
    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.W_ih = nn.Linear(embed_size, hidden_size)
        self.W_hh = nn.Linear(hidden_size, hidden_size)
        self.fc = nn.Linear(hidden_size, vocab_size)
        self.tanh = nn.Tanh()

    def forward(self, x_token, hidden=None):
        """One step: (B,) ids, (B, D) hidden -> (B, V) logits, (B, D) hidden. None means zeros."""
        if hidden is None:
            hidden = self.init_hidden(x_token.size(0))
        x_emb = self.embedding(x_token)  # (B, E)
        hidden = self.tanh(self.W_ih(x_emb) + self.W_hh(hidden))
        return self.fc(hidden), hidden

    def init_hidden(self, batch_size):
        return torch.zeros(batch_size, self.hidden_size, device=self._device())


class MultiLayerRNN(RecurrentLM):
    """L stacked Elman layers; layer l reads layer l-1's state at the same step."""

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=2):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.W_ih = nn.ModuleList(
            [nn.Linear(embed_size, hidden_size)]
            + [nn.Linear(hidden_size, hidden_size) for _ in range(num_layers - 1)]
        )
        self.W_hh = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in range(num_layers)])
        self.fc = nn.Linear(hidden_size, vocab_size)
        self.tanh = nn.Tanh()

    def forward(self, x_token, hidden=None):
        """One step: (B,) ids, list of L (B, D) states -> (B, V) logits, new list of states."""
        if hidden is None:
            hidden = self.init_hidden(x_token.size(0))
        layer_input = self.embedding(x_token)
        new_hidden = []
        for layer in range(self.num_layers):
            h = self.tanh(self.W_ih[layer](layer_input) + self.W_hh[layer](hidden[layer]))
            new_hidden.append(h)
            layer_input = h
        return self.fc(new_hidden[-1]), new_hidden

    def init_hidden(self, batch_size):
        return [
            torch.zeros(batch_size, self.hidden_size, device=self._device())
            for _ in range(self.num_layers)
        ]
