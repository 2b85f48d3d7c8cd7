"""An LSTM language model in the homework's style (Hochreiter & Schmidhuber, 1997, with the
forget gate of Gers et al., 2000), one `forward` per position like the homework's RNN/GRU:

    i = sigmoid(W_xi x + W_hi h)        f = sigmoid(W_xf x + W_hf h)
    g = tanh(W_xg x + W_hg h)           o = sigmoid(W_xo x + W_ho h)
    c' = f * c + i * g                  h' = o * tanh(c')

No biases, as the homework's GRU. torch.nn.LSTM(bias=False) computes the same function (its
weights stack the gates in the order i, f, g, o), so it is this model's fused twin
(`analysis.architectures`).
"""

from __future__ import annotations

import torch
from torch import nn

from charlm.models.recurrent import RecurrentLM

GATES = ("i", "f", "g", "o")  # torch.nn.LSTM's order


class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        for gate in GATES:
            setattr(self, f"W_x{gate}", nn.Linear(input_size, hidden_size, bias=False))
            setattr(self, f"W_h{gate}", nn.Linear(hidden_size, hidden_size, bias=False))

    def forward(self, x, state):
        """(B, input) and (h, c), each (B, D) -> (h', c')."""
        h, c = state
        i = torch.sigmoid(self.W_xi(x) + self.W_hi(h))
        f = torch.sigmoid(self.W_xf(x) + self.W_hf(h))
        g = torch.tanh(self.W_xg(x) + self.W_hg(h))
        o = torch.sigmoid(self.W_xo(x) + self.W_ho(h))
        c = f * c + i * g
        return o * torch.tanh(c), c


class LSTMLM(RecurrentLM):
    """Embedding, L stacked LSTM cells (layer 0 reads the E-wide embedding, layers 1.. the
    D-wide state below), and `fc` to the vocabulary. The hidden state is a list of L (h, c)
    pairs of (B, D) tensors (zeros at the start)."""

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.cells = nn.ModuleList(
            [LSTMCell(embed_size if k == 0 else hidden_size, hidden_size)
             for k in range(num_layers)])
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, hidden=None):
        """One step: (B,) ids and L (h, c) pairs -> (B, V) logits and the new pairs."""
        if hidden is None:
            hidden = self.init_hidden(x.size(0))
        layer_input = self.embedding(x)
        new_hidden = []
        for cell, state in zip(self.cells, hidden):
            h, c = cell(layer_input, state)
            new_hidden.append((h, c))
            layer_input = h
        return self.fc(layer_input), new_hidden

    def init_hidden(self, batch_size):
        def zeros():
            return torch.zeros(batch_size, self.hidden_size, device=self._device())

        return [(zeros(), zeros()) for _ in range(self.num_layers)]
