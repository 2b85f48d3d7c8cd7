"""The LSTM (charlm.models.lstm): its equations, its fused twin torch.nn.LSTM, checkpoints,
generation with O(1) state, and its cost and depth models against the counters."""

import pytest
import torch

from analysis.architectures import architecture, cost_model
from analysis.depth import measure_depth
from analysis.reconcile import GridPoint, reconcile_row
from charlm.data import builtin_corpus
from charlm.models.lstm import LSTMLM
from charlm.models.registry import ModelConfig, build_model, count_parameters
from charlm.train import TrainConfig, initialise, load_checkpoint, train


def _model(layers=2, vocab=11, embed=5, hidden=7, seed=0):
    torch.manual_seed(seed)
    return LSTMLM(vocab, embed, hidden, layers)


def test_one_step_is_the_lstm_equations_by_hand():
    m = _model(layers=1)
    x = torch.tensor([3, 7])
    h0, c0 = torch.randn(2, 7), torch.randn(2, 7)
    cell = m.cells[0]
    e = m.embedding.weight[x]

    def gate(name):
        return e @ getattr(cell, f"W_x{name}").weight.T + h0 @ getattr(cell, f"W_h{name}").weight.T

    i, f, o = (torch.sigmoid(gate(n)) for n in "ifo")
    c = f * c0 + i * torch.tanh(gate("g"))
    h = o * torch.tanh(c)
    logits, [(h1, c1)] = m(x, [(h0, c0)])
    torch.testing.assert_close(c1, c)
    torch.testing.assert_close(h1, h)
    torch.testing.assert_close(logits, h @ m.fc.weight.T + m.fc.bias)


@pytest.mark.parametrize("layers", [1, 3])
def test_torch_nn_lstm_twin_gives_the_same_logits_states_and_gradients(layers):
    m = _model(layers)
    twin = architecture("lstm").torch_twin(m)
    assert isinstance(twin.rnn, torch.nn.LSTM)
    idx = torch.randint(0, 11, (3, 9))
    ours, states = m.forward_sequence(idx)
    fused, (h_n, c_n) = twin.forward_sequence(idx)
    assert (ours - fused).abs().max() < 1e-5
    assert (torch.stack([h for h, _ in states]) - h_n).abs().max() < 1e-5
    assert (torch.stack([c for _, c in states]) - c_n).abs().max() < 1e-5
    ours.square().sum().backward()
    fused.square().sum().backward()
    assert (m.embedding.weight.grad - twin.embedding.weight.grad).abs().max() < 1e-5


def test_greedy_generation_carries_the_state_like_rerunning_the_prefix():
    m = _model().eval()
    prompt = torch.tensor([[1, 4, 2]])
    out = m.generate(prompt, 6, greedy=True)
    seq = prompt
    with torch.no_grad():
        for _ in range(6):  # independent: the whole prefix again, argmax of the last position
            nxt = m.forward_sequence(seq)[0][:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(out, seq)
    _, state = m.forward_sequence(seq)
    assert [tuple(t.shape) for pair in state for t in pair] == [(1, 7)] * 4  # O(1) in T


def test_checkpoint_round_trip_and_generation(tmp_path):
    cfg = TrainConfig(model="lstm", layers=2, hidden=16, embed=8, seq_len=10, batch_size=4,
                      steps=2, val_every=2, val_batches=2, device="cpu", out=str(tmp_path))
    r = train(cfg, progress=False, text=builtin_corpus(seed=1, n_chars=6000))
    ck = load_checkpoint(r.checkpoint)
    assert ck.model_config.model == "lstm" and isinstance(ck.model, LSTMLM)
    for k, v in r.model.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v)
    a = ck.generate("Lily", 12, seed=3)
    assert a.startswith("Lily") and len(a) == 16 and a == ck.generate("Lily", 12, seed=3)


def test_xavier_orthogonal_init_finds_the_hidden_weights():
    m = _model(layers=1, hidden=6)
    initialise(m, "xavier-orthogonal")
    w = m.cells[0].W_hf.weight
    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)


def test_parameter_formula_counts_the_four_gates():
    cfg = ModelConfig("lstm", 11, embed=5, hidden=7, layers=3)
    # by hand: embedding, 4 gates x (input + hidden) per layer, head with bias
    want = 11 * 5 + 4 * (5 * 7 + 7 * 7) + 2 * 4 * (7 * 7 + 7 * 7) + 7 * 11 + 11
    assert count_parameters(build_model(cfg)) == want
    sizes = {"V": 11, "E": 5, "D": 7, "L": 3}
    assert cost_model("lstm").params().evaluate(sizes)["total"] == want


@pytest.mark.parametrize("quantity", ["forward", "backward", "train", "generate"])
def test_flops_equal_pytorchs_counter(quantity):
    point = GridPoint(ModelConfig("lstm", 11, embed=5, hidden=7, layers=2), B=2, T=4, P=3, N=2)
    row = reconcile_row(point, quantity, second_counters=False)
    assert row["verdict"] == "exact", row["verdict_detail"]
    if quantity == "forward":  # by hand: T steps x (4 input + 4 hidden matmuls per layer + head)
        assert row["predicted"] == 4 * 2 * 2 * (4 * (5 * 7 + 7 * 7) + 4 * 2 * 7 * 7 + 7 * 11)


@pytest.mark.parametrize("quantity", ["forward", "backward", "train", "generate"])
@pytest.mark.parametrize("layers, t", [(1, 3), (2, 5)])
def test_traced_depth_equals_the_prediction(quantity, layers, t):
    sizes = dict(B=2, T=t, P=t, N=3, L=layers)
    cfg = ModelConfig("lstm", 7, embed=3, hidden=4, layers=layers)
    got = measure_depth(cfg, quantity, sizes)
    want = architecture("lstm").depth.quantity(quantity).evaluate(sizes)
    assert (got.matmul_depth, got.matmul_launches) == (want["depth"], want["launches"])
    assert got.scan_depth == 0
    if quantity == "forward":  # the wavefront, as the GRU: T + L - 1 plus the head
        assert got.matmul_depth == t + layers
