"""minGRU (Feng et al., 2024, "Were RNNs All We Needed?", arXiv:2410.01201): a GRU whose gates
read only the input, so the recurrence is linear in h and runs as a parallel scan.

One minGRU layer, for inputs u_t (D wide):

    z_t = sigmoid(W_xz u_t)         h~_t = g(W_xh u_t)        (no biases, as the homework's GRU)
    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t,        h_0 = 0

with the paper's g(x) = x + 0.5 for x >= 0, sigmoid(x) otherwise (its appendix B.3), which keeps
h~ > 0 so the recurrence can run in log space.

Stacking (stated: our choice, after the residual/normalisation blocks of the paper's language
models as lucidrains/minGRU-pytorch's minGRULM implements them, without their feed-forward
sub-layer, so that one layer here is one recurrent cell like a GRU or LSTM layer): the
embedding is D wide (E = D), layer l computes x_{l+1} = x_l + minGRU_l(LayerNorm_l(x_l)), and
the head reads LayerNorm_f(x_L).

Two paths that compute the same function (tested within 1e-5):

* `forward(token, hidden)`: one position, the state is the L vectors h_{t-1} (O(1) per token);
  `generate` feeds sampled tokens through it, and `forward_loop` runs it over a sequence.
* `forward_sequence(idx)`: all T positions at once with a parallel scan, used for training,
  the forward pass and the prompt of `generate`. The scan is Heinsen's log-space form
  (Heinsen 2023, "Efficient Parallelization of a Ubiquitous Sequential Computation", the one
  the paper's appendix B gives): with a_t = 1 - z_t and b_t = z_t h~_t,
  log h_t = A_t + logcumsumexp_t(log b_t - A_t), A_t = cumsum_t(log a_t). Why log space: the
  direct form h_t = P_t * cumsum(b_t / P_t) with P_t = cumprod(a_t) divides by products that
  underflow after a few dozen steps; in log space both prefix operations are sums of logs
  and logsumexps, stable at any T. Why torch.cumsum / torch.logcumsumexp rather than a
  hand-written Blelloch scan: they are single ops PyTorch parallelises over T (on the GPU
  as a parallel scan), and the depth tracer weighs each one ceil(log2 T) combining steps.
  The two scans run one after the other (the second reads the first), so one layer's scan
  depth is 2 ceil(log2 T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from charlm.models.recurrent import RecurrentLM


def g(x: torch.Tensor) -> torch.Tensor:
    """The paper's positive activation for the candidate state."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x), computed stably (log(x + 0.5) for x >= 0, -softplus(-x) otherwise)."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def log_space_scan(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t from h_0 = 0 along dim 1, given log a and log b: (B, T, D)."""
    a_star = torch.cumsum(log_a, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))


class MinGRUCell(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xz = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_xh = nn.Linear(hidden_size, hidden_size, bias=False)

    def step(self, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One position: (B, D) input and state -> new state."""
        z = torch.sigmoid(self.W_xz(u))
        return (1 - z) * h + z * g(self.W_xh(u))

    def scan(self, u: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """All positions: (B, T, D) inputs -> (B, T, D) states, from h0 (None: zeros)."""
        k, v = self.W_xz(u), self.W_xh(u)
        log_a = -F.softplus(k)  # log(1 - z)
        log_b = -F.softplus(-k) + log_g(v)  # log z + log h~
        if h0 is None:
            return log_space_scan(log_a, log_b)
        # h0 > 0 (every state is a convex mix of h~ > 0 and h0): prepend it as b_0 = h0
        log_a = F.pad(log_a, (0, 0, 1, 0))
        log_b = torch.cat([torch.log(h0).unsqueeze(1), log_b], dim=1)
        return log_space_scan(log_a, log_b)[:, 1:]


class MinGRULM(RecurrentLM):
    """Embedding (D wide), L residual minGRU layers with pre-LayerNorm, final LayerNorm, `fc`
    to the vocabulary. The state is a list of L (B, D) tensors h_{t-1} (zeros at the start)."""

    def __init__(self, vocab_size, hidden_size, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.norms = nn.ModuleList([nn.LayerNorm(hidden_size) for _ in range(num_layers)])
        self.cells = nn.ModuleList([MinGRUCell(hidden_size) for _ in range(num_layers)])
        self.norm_f = nn.LayerNorm(hidden_size)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, hidden=None):
        """One step (the sequential path): (B,) ids and L (B, D) states -> (B, V) logits and
        the new states."""
        if hidden is None:
            hidden = self.init_hidden(x.size(0))
        stream = self.embedding(x)
        new_hidden = []
        for norm, cell, h in zip(self.norms, self.cells, hidden):
            h = cell.step(norm(stream), h)
            new_hidden.append(h)
            stream = stream + h
        return self.fc(self.norm_f(stream)), new_hidden

    def forward_sequence(self, idx: torch.Tensor, state=None):
        """(B, T) ids -> ((B, T, V) logits, final states), every layer one parallel scan."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        states = state if state is not None else [None] * self.num_layers
        stream = self.embedding(idx)
        final = []
        for norm, cell, h0 in zip(self.norms, self.cells, states):
            h = cell.scan(norm(stream), h0)
            final.append(h[:, -1])
            stream = stream + h
        return self.fc(self.norm_f(stream)), final

    def forward_loop(self, idx: torch.Tensor, state=None):
        """The sequential path over a sequence: one `forward` step per position."""
        return RecurrentLM.forward_sequence(self, idx, state)

    def init_hidden(self, batch_size):
        return [torch.zeros(batch_size, self.hidden_size, device=self._device())
                for _ in range(self.num_layers)]


class MinGRULoop(nn.Module):
    """A minGRU run by its sequential step over the sequence (the homework's loop), holding a
    copy of the scanned model's weights: the loop-vs-scan pair of the bench."""

    def __init__(self, model: MinGRULM):
        super().__init__()
        import copy

        self.model = copy.deepcopy(model)

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    def forward_sequence(self, idx, state=None):
        return self.model.forward_loop(idx, state)
