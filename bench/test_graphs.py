"""The homework models' forward, train step and KV-cache generation as CUDA-graph replays
(`analysis.graphs`), beside their eager rounds in bench/test_models.py: the GPU's launch
floor removed. Their rows are the variant "<variant>+cuda-graph"; the report predicts them
as their eager workload, with `predicted_nofixed_s` (every fixed cost zero, `charlm
predict-time --no-fixed-cost`) the floor a replay can approach. CUDA only: on a machine
without CUDA nothing is collected and the file is skipped."""

from analysis.graphs import graphed_round
from analysis.workloads import CUDA_GRAPH, prepare

WORKLOAD_SET = "graphed"


def test_model_phase_cuda_graph(measure, workload, device):
    p = prepare(workload, device)
    info = measure(p, device, timed=graphed_round(p, device), execution=CUDA_GRAPH)
    assert info["config"]["execution"] == CUDA_GRAPH
    assert info["measured_flops"] > 0
