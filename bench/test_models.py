"""Each homework model x phase x size: time, FLOPs predicted and measured, depth, memory."""

from analysis.workloads import prepare

WORKLOAD_SET = "model"


def test_model_phase(measure, workload, device):
    info = measure(prepare(workload, device), device)
    assert info["peak_memory_bytes"] > 0
    assert info["measured_flops"] > 0
