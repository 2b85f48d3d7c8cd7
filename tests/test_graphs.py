"""analysis.graphs: CUDA-graph rounds. What runs without a GPU is checked here; the captures
themselves need CUDA and skip cleanly without it."""

import pytest
import torch

from analysis.graphs import capture, graphable, graphed_round
from analysis.workloads import GRAPH_PHASES, Workload, graph_workloads, model_workloads, prepare

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_graph_workloads_are_the_cuda_model_rounds_of_three_phases():
    assert graph_workloads("quick", "cpu") == []
    on_cuda = graph_workloads("quick", "cuda")
    expected = [w for w in model_workloads("quick")
                if w.phase in ("forward", "train", "generate_cache")]
    assert on_cuda == expected and len(on_cuda) > 0
    assert set(GRAPH_PHASES) == {w.phase for w in on_cuda}


def test_capture_refuses_a_device_that_is_not_cuda():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        capture(lambda: None, "cpu")


def test_a_train_step_gets_a_capturable_adam_with_its_learning_rate():
    p = prepare(Workload("rnn", "train", batch=2, seq_len=3, hidden=4))
    before = p.fn.optimizer
    params = [id(q) for q in p.model.parameters()]
    graphable(p)
    after = p.fn.optimizer
    assert after is not before and after.defaults["capturable"] is True
    assert after.param_groups[0]["lr"] == before.param_groups[0]["lr"] == 1e-3
    assert [id(q) for g in after.param_groups for q in g["params"]] == params


def test_other_rounds_are_left_as_they_are():
    p = prepare(Workload("rnn", "forward", batch=2, seq_len=3, hidden=4))
    fn = p.fn
    assert graphable(p).fn is fn


@CUDA
def test_a_replay_recomputes_into_the_captured_output():
    x = torch.ones(4, device="cuda")
    out = torch.empty_like(x)

    def fn():
        torch.mul(x, 2.0, out=out)

    replay = capture(fn, "cuda")
    x.fill_(3.0)
    replay()
    torch.cuda.synchronize()
    assert out.tolist() == [6.0] * 4  # the replay read the new input


@CUDA
@pytest.mark.parametrize("phase", GRAPH_PHASES)
def test_each_graphed_phase_replays(phase):
    extra = {"new_tokens": 3, "seq_len": 2} if phase == "generate_cache" else {"seq_len": 4}
    w = Workload("transformer-flash", phase, batch=2, hidden=16, layers=1, **extra)
    p = prepare(w, "cuda")
    replay = graphed_round(p, "cuda")
    for _ in range(2):
        replay()
    torch.cuda.synchronize()
