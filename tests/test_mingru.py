"""minGRU (charlm.models.mingru): the scan equals the sequential step, the log-space scan
equals the recurrence, checkpoints and O(1)-state generation, and its cost and depth models
against the counters (its scan depth grows with log T)."""

import math

import pytest
import torch

from analysis.architectures import architecture, cost_model
from analysis.depth import measure_depth
from analysis.reconcile import GridPoint, reconcile_row
from charlm.data import builtin_corpus
from charlm.models.mingru import MinGRULM, g, log_g, log_space_scan
from charlm.models.registry import ModelConfig, build_model, count_parameters
from charlm.train import TrainConfig, initialise, load_checkpoint, train


def _model(layers=3, vocab=11, hidden=8, seed=0):
    torch.manual_seed(seed)
    return MinGRULM(vocab, hidden, layers)


def test_g_is_positive_and_log_g_is_its_log():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    assert (g(x) > 0).all()
    torch.testing.assert_close(log_g(x), torch.log(g(x)))
    torch.testing.assert_close(g(torch.tensor([-1.0, 0.0, 2.0])),
                               torch.tensor([1 / (1 + math.e), 0.5, 2.5]))


def test_log_space_scan_is_the_linear_recurrence():
    torch.manual_seed(1)
    a = torch.rand(2, 40, 3, dtype=torch.float64)
    b = torch.rand(2, 40, 3, dtype=torch.float64) + 0.1
    h, want = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(40):  # h_t = a_t h_{t-1} + b_t from h_0 = 0, step by step
        h = a[:, t] * h + b[:, t]
        want.append(h)
    torch.testing.assert_close(log_space_scan(a.log(), b.log()), torch.stack(want, 1))


@pytest.mark.parametrize("layers, t", [(1, 1), (3, 64)])
def test_scan_equals_the_sequential_step_within_1e_5(layers, t):
    m = _model(layers)
    idx = torch.randint(0, 11, (2, t))
    scanned, s_states = m.forward_sequence(idx)
    looped, l_states = m.forward_loop(idx)
    assert (scanned - looped).abs().max() < 1e-5
    assert max((a - b).abs().max() for a, b in zip(s_states, l_states)) < 1e-5
    scanned.square().sum().backward()  # and the scan trains: gradients reach every weight
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_a_sequence_continues_from_a_carried_state():
    m = _model()
    idx = torch.randint(0, 11, (2, 20))
    whole, _ = m.forward_sequence(idx)
    _, state = m.forward_sequence(idx[:, :7])
    rest, _ = m.forward_sequence(idx[:, 7:], state)
    assert (rest - whole[:, 7:]).abs().max() < 1e-5


def test_the_loop_twin_is_the_sequential_path_with_the_same_weights():
    arch = architecture("mingru")
    assert arch.twin_label == "loop"
    m = _model()
    twin = arch.torch_twin(m)
    idx = torch.randint(0, 11, (2, 12))
    assert (twin.forward_sequence(idx)[0] - m.forward_sequence(idx)[0]).abs().max() < 1e-5
    assert twin.vocab_size == 11


def test_greedy_generation_steps_the_state_like_rescanning_the_prefix():
    m = _model().eval()
    prompt = torch.tensor([[1, 4, 2, 9]])
    out = m.generate(prompt, 8, greedy=True)
    seq = prompt
    with torch.no_grad():
        for _ in range(8):  # independent: scan the whole prefix again each time
            nxt = m.forward_sequence(seq)[0][:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(out, seq)
    _, state = m(seq[:, -1], m.init_hidden(1))
    assert [tuple(h.shape) for h in state] == [(1, 8)] * 3  # O(1) per token: L vectors


def test_checkpoint_round_trip_and_generation(tmp_path):
    cfg = TrainConfig(model="mingru", layers=2, hidden=16, seq_len=10, batch_size=4, steps=2,
                      val_every=2, val_batches=2, device="cpu", out=str(tmp_path))
    r = train(cfg, progress=False, text=builtin_corpus(seed=1, n_chars=6000))
    ck = load_checkpoint(r.checkpoint)
    assert isinstance(ck.model, MinGRULM) and ck.model_config.embed == 16
    for k, v in r.model.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v)
    a = ck.generate("Lily", 12, seed=3)
    assert a.startswith("Lily") and len(a) == 16 and a == ck.generate("Lily", 12, seed=3)


def test_embedding_width_is_the_hidden_width():
    with pytest.raises(ValueError, match="embedding width is its hidden width"):
        ModelConfig("mingru", 11, embed=4, hidden=8)


def test_orthogonal_init_is_refused_there_are_no_hidden_to_hidden_weights():
    with pytest.raises(ValueError, match="MinGRULM has none"):
        initialise(_model(), "xavier-orthogonal")


def test_parameter_formula():
    cfg = ModelConfig("mingru", 11, hidden=8, layers=3)
    # by hand: embedding; per layer LayerNorm (2D) and W_xz, W_xh; final LayerNorm; head
    want = 11 * 8 + 3 * (2 * 8 + 2 * 8 * 8) + 2 * 8 + 8 * 11 + 11
    assert count_parameters(build_model(cfg)) == want
    assert cost_model("mingru").params().evaluate({"V": 11, "D": 8, "L": 3})["total"] == want


@pytest.mark.parametrize("quantity", ["forward", "backward", "train", "generate"])
@pytest.mark.parametrize("t", [1, 6])
def test_flops_equal_pytorchs_counter(quantity, t):
    point = GridPoint(ModelConfig("mingru", 11, hidden=8, layers=2), B=2, T=t, P=t, N=3)
    row = reconcile_row(point, quantity, second_counters=False)
    assert row["verdict"] == "exact", row["verdict_detail"]
    per_position = 2 * 2 * (2 * 2 * 8 * 8 + 8 * 11)  # 2 B (2 L D^2 + D V)
    want = {"forward": t, "backward": 2 * t, "train": 3 * t, "generate": t + 3 - 1}[quantity]
    assert row["predicted"] == want * per_position


@pytest.mark.parametrize("quantity", ["forward", "backward", "train", "generate"])
@pytest.mark.parametrize("layers, t", [(1, 1), (1, 5), (2, 8), (3, 3)])
@pytest.mark.parametrize("head", [True, False])
def test_traced_depths_equal_the_prediction(quantity, layers, t, head):
    sizes = dict(B=2, T=t, P=t, N=3, L=layers)
    got = measure_depth(ModelConfig("mingru", 7, hidden=4, layers=layers), quantity, sizes,
                        head=head)
    want = architecture("mingru").depth.quantity(quantity, head=head).evaluate(sizes)
    assert (got.matmul_depth, got.scan_depth, got.depth) == (
        want["depth"], want.get("scan_depth", 0), want.get("total_depth", want["depth"]))
    if head:
        assert got.matmul_launches == want["launches"]


def test_train_depth_grows_with_log_t_not_t():
    cfg = ModelConfig("mingru", 7, hidden=4, layers=1)
    short, long = (measure_depth(cfg, "train", dict(B=1, T=t)) for t in (16, 1024))
    assert short.matmul_depth == long.matmul_depth == 4  # forward 1 + head 1, backward too
    # per pass 2 scans of ceil(log2 T) steps: 4 passes' worth of 4 steps, then of 10
    assert (short.scan_depth, long.scan_depth) == (4 * 4, 4 * 10)
    assert long.depth / short.depth < 3


def test_the_scans_work_is_in_the_elementwise_tier_not_the_matmul_count():
    sizes = {"B": 2, "T": 16, "L": 3, "D": 8, "V": 11}
    ew = cost_model("mingru").elementwise().evaluate(sizes)
    # per state element: cumsum 1 add, logcumsumexp 3 (exp, add, log), two adds around them
    assert ew["scan"] == (1 + 3 + 2) * 2 * 16 * 3 * 8
    assert "scan" not in cost_model("mingru").forward().terms
