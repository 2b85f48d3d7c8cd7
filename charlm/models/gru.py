"""The homework's GRU (Cho et al., 2014), reset gate applied after the hidden matmul:

    r = sigmoid(W_xr x + W_hr h)        z = sigmoid(W_xz x + W_hz h)
    n = tanh(W_xn x + r * (W_hn h))     h' = (1 - z) * n + z * h

This is the form torch.nn.GRU and cuDNN use, so the three hidden matmuls of a step are
independent. No biases, as in the notebook.
"""

from __future__ import annotations

import torch
from torch import nn

from charlm.models.recurrent import RecurrentLM


class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xr = nn.Linear(input_size, hidden_size, bias=False)
        self.W_hr = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_xz = nn.Linear(input_size, hidden_size, bias=False)
        self.W_hz = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_xn = nn.Linear(input_size, hidden_size, bias=False)
        self.W_hn = nn.Linear(hidden_size, hidden_size, bias=False)
        self.sigmoid = nn.Sigmoid()
        self.tanh = nn.Tanh()

    def forward(self, x, hidden):
        """Returns (h_t, r_t, z_t, n_t) as the notebook's cell does."""
        r_t = self.sigmoid(self.W_xr(x) + self.W_hr(hidden))
        z_t = self.sigmoid(self.W_xz(x) + self.W_hz(hidden))
        n_t = self.tanh(self.W_xn(x) + r_t * self.W_hn(hidden))
        h_t = (1 - z_t) * n_t + z_t * hidden
        return h_t, r_t, z_t, n_t


class GRULM(RecurrentLM):
    """GRU language model. Layer 0 keeps the notebook's name `gru_cell`; layers 1.. live in
    `upper_cells`, which is empty for the notebook's single layer, so its checkpoints load.

    The hidden state is a (B, D) tensor for one layer (as in the notebook) and a list of
    L (B, D) tensors for several (as MultiLayerRNN's).
    """

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.gru_cell = GRUCell(embed_size, hidden_size)
        self.upper_cells = nn.ModuleList(
            [GRUCell(hidden_size, hidden_size) for _ in range(num_layers - 1)]
        )
        self.fc = nn.Linear(hidden_size, vocab_size)

    def cells(self):
        return [self.gru_cell, *self.upper_cells]

    def forward(self, x, hidden=None):
        if hidden is None:
            hidden = self.init_hidden(x.size(0))
        states = [hidden] if self.num_layers == 1 else hidden
        layer_input = self.embedding(x)  # (B, E)
        new_states = []
        for cell, h in zip(self.cells(), states):
            layer_input, _, _, _ = cell(layer_input, h)
            new_states.append(layer_input)
        logits = self.fc(layer_input)
        return logits, (new_states[0] if self.num_layers == 1 else new_states)

    def init_hidden(self, batch_size):
        zeros = [
            torch.zeros(batch_size, self.hidden_size, device=self._device())
            for _ in range(self.num_layers)
        ]
        return zeros[0] if self.num_layers == 1 else zeros
