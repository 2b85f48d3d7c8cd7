"""The language-model objective and one optimisation step, in one home: training, the
FLOP counters, the depth tracer and the bench all run exactly these.

`lm_loss` is the mean cross-entropy of next-character prediction over all B*T positions of
`model.forward_sequence(idx)`; `TrainStep` is one Adam step on it (zero_grad, forward,
backward, step), the homework's update (Adam, lr 1e-3).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_LR = 1e-3  # the homework's Adam learning rate


def lm_loss(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over all B*T positions of forward_sequence(idx) against targets."""
    logits, _ = model.forward_sequence(idx)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


class TrainStep:
    """One training step of `model` on a fixed batch, or on the batch passed to the call.

    step() -> the loss tensor (before the update); the optimizer is Adam unless one is given.
    """

    def __init__(self, model: nn.Module, idx: torch.Tensor | None = None,
                 targets: torch.Tensor | None = None, lr: float = DEFAULT_LR,
                 optimizer: torch.optim.Optimizer | None = None):
        self.model = model
        self.idx, self.targets = idx, targets
        self.optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)

    def __call__(self, idx: torch.Tensor | None = None,
                 targets: torch.Tensor | None = None) -> torch.Tensor:
        idx = self.idx if idx is None else idx
        targets = self.targets if targets is None else targets
        self.optimizer.zero_grad(set_to_none=True)
        loss = lm_loss(self.model, idx, targets)
        loss.backward()
        self.optimizer.step()
        return loss
