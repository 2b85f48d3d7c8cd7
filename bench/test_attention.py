"""SDPA (flash) vs manual causal attention at growing T: time and peak memory.

Both kernels get the same weights and input, and their outputs must agree before timing.
"""

import torch

from analysis.workloads import attention_pair_outputs, prepare

WORKLOAD_SET = "attention"


def test_attention_kernel(measure, workload, device):
    flash, manual = attention_pair_outputs(workload, device)
    torch.testing.assert_close(flash, manual)
    info = measure(prepare(workload, device), device)
    assert info["peak_memory_bytes"] > 0
