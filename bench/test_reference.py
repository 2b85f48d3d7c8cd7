"""The homework's per-step loops beside torch.nn.RNN / torch.nn.GRU holding the same weights.

The torch.nn twin's logits must equal the homework model's before either is timed; the
homework side of each pair is timed here too, at the same sizes, so both sit in one group.
"""

import torch

from analysis.workloads import prepare

WORKLOAD_SET = "reference"


def test_homework_loop_and_torch_nn(measure, workload, device):
    p = prepare(workload, device)
    if p.outputs is not None:
        homework, fused = p.outputs
        torch.testing.assert_close(fused, homework)
    measure(p, device)
