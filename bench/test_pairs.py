"""Every ratio the report states, measured as interleaved pairs: manual/flash attention (time
and peak memory), each homework loop against its torch.nn twin, generation without against
with the KV cache. Both sides get the same seed (same weights and inputs); where they compute
the same function, their outputs must agree before timing."""

import torch

from analysis.workloads import prepare


def test_pair(measure_pair, pair, device):
    a, b = prepare(pair.a, device), prepare(pair.b, device)
    if b.outputs is not None:  # a torch.nn twin: its logits equal the homework model's
        homework, fused = b.outputs
        torch.testing.assert_close(fused, homework)
    if pair.a.kind == "attention":
        torch.testing.assert_close(a.fn(), b.fn(), rtol=1e-5, atol=1e-5)
    info = measure_pair(pair, a, b, device)
    assert info["ci_low"] <= info["ratio"] <= info["ci_high"]
