"""The homework models' forward and train step torch.compile'd (`analysis.graphs`), beside
their eager rounds in bench/test_models.py and their CUDA-graph replays in
bench/test_graphs.py. Their rows are the variant "<variant>+compiled"; the report compares
them with their eager round and with `predicted_nofixed_s` (every fixed cost zero, `charlm
predict-time --no-fixed-cost`): eager's kernels without their fixed costs (inductor's
fusion also saves memory traffic, so a compiled round may go below it). CUDA only
(`analysis.workloads.compiled_workloads` says why): on a machine without CUDA nothing is
collected and the file is skipped."""

from analysis.graphs import compiled_round
from analysis.workloads import COMPILED, prepare

WORKLOAD_SET = "compiled"


def test_model_phase_compiled(measure, workload, device):
    p = prepare(workload, device)
    info = measure(p, device, timed=compiled_round(p), execution=COMPILED)
    assert info["config"]["execution"] == COMPILED
    assert info["measured_flops"] > 0
