"""analysis.graphs: CUDA-graph and torch.compile rounds. What runs without a GPU is checked
here (compiling with the tracing-only backends); the captures need CUDA and skip cleanly
without it."""

import pytest
import torch

from analysis.graphs import capture, compiled_round, graphable, graphed_round
from analysis.workloads import (
    COMPILE_PHASES,
    GRAPH_PHASES,
    Workload,
    compiled_workloads,
    graph_workloads,
    model_workloads,
    prepare,
)

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


# ---------------------------------------------------------------------------- torch.compile


def test_compiled_workloads_are_the_cuda_forward_and_train_rounds_without_a_position_loop():
    assert compiled_workloads("quick", "cpu") == []
    on_cuda = compiled_workloads("quick", "cuda")
    expected = [w for w in model_workloads("quick") if w.phase in ("forward", "train")
                and w.variant.split("-")[0] not in ("rnn", "gru", "lstm", "rnn2")]
    assert set(COMPILE_PHASES) == {"forward", "train"}
    assert on_cuda and {w.id for w in on_cuda} <= {w.id for w in expected}
    # the Transformer's rounds are there, the recurrent loops' are not
    assert any(w.variant.startswith("transformer") for w in on_cuda)
    assert not any(w.arch.loop for w in on_cuda)
    assert any(w.arch.loop for w in model_workloads("quick") if w.phase == "forward")


def _recording(graphs):
    """A torch.compile backend that keeps each FX graph dynamo hands it and runs it as is."""
    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    return backend


def _transformer(phase, seed=0):
    return prepare(Workload("transformer-flash", phase, batch=2, seq_len=6, hidden=16,
                            layers=1), seed=seed)


def test_a_compiled_forward_is_traced_once_and_gives_the_eager_logits():
    p = _transformer("forward")
    eager_fn = p.fn
    graphs = []
    compiled = compiled_round(p, backend=_recording(graphs))
    assert p.fn is eager_fn  # the bench counts FLOPs on the eager round
    traced = len(graphs)
    assert traced >= 1  # the warm-up compiled it
    out = compiled()
    assert len(graphs) == traced  # the timed calls do not compile again
    torch.testing.assert_close(out, eager_fn())
    ops = {str(n.target) for g in graphs for n in g.graph.nodes if n.op == "call_function"}
    assert any("linear" in o or "matmul" in o for o in ops), ops


def test_a_compiled_train_step_takes_the_eager_steps():
    # the same seeded model trained three steps eagerly and three times compiled (two in the
    # warm-up): the third loss and the weights after it agree
    eager, comp = _transformer("train"), _transformer("train")
    losses = [eager.fn().item() for _ in range(3)]
    compiled = compiled_round(comp, backend="aot_eager", warmup=2)
    third = compiled().item()
    assert third == pytest.approx(losses[2], rel=1e-5)
    assert losses[2] < losses[0]  # the steps did train
    for a, b in zip(eager.model.parameters(), comp.model.parameters()):
        torch.testing.assert_close(a, b)


def test_each_compiled_round_gets_its_own_graphs_past_dynamo_recompile_limit():
    # every round shares compiled_round's code: without the reset, the ninth model would hit
    # dynamo's default limit of 8 recompiles and silently run eager
    graphs = []
    for seed in range(10):
        compiled_round(_transformer("forward", seed), backend=_recording(graphs), warmup=1)
        assert graphs, f"round {seed} was not compiled"
        graphs.clear()


def test_compiled_round_refuses_no_warm_up():
    with pytest.raises(ValueError, match="warmup must be >= 1"):
        compiled_round(_transformer("forward"), backend="eager", warmup=0)
