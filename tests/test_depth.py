"""The dependency tracer on hand-built graphs (where the depth is obvious) and on each model."""

import pytest
import torch
from torch.nn import functional as F

from analysis.depth import measure_depth, trace
from analysis.trace import trace as trace_ops
from charlm.models.registry import ModelConfig, build_model
from charlm.models.transformer import CausalSelfAttention, TransformerConfig


def _w(n=4):
    return torch.randn(n, n)


def test_chain_of_matmuls_has_depth_equal_to_its_length():
    x, w = torch.randn(2, 4), _w()
    r = trace(lambda: x @ w @ w @ w)
    assert (r.matmul_depth, r.matmul_launches) == (3, 3)


def test_independent_matmuls_share_one_level():
    x, w1, w2 = torch.randn(2, 4), _w(), _w()
    r = trace(lambda: torch.tanh(x @ w1) + torch.tanh(x @ w2))
    assert (r.matmul_depth, r.matmul_launches) == (1, 2)


def test_elementwise_ops_weigh_zero_but_count_on_the_op_path():
    x = torch.randn(3)
    r = trace(lambda: torch.sigmoid(torch.tanh(x).exp()))
    assert r.matmul_depth == 0
    assert r.op_depth == 3


def test_views_and_cat_carry_dependencies():
    x, w = torch.randn(2, 4), _w()

    def fn():
        a = (x @ w).view(4, 2).t().reshape(2, 4)
        b = torch.cat([a, x], dim=0)  # depends on a (depth 1) and x (leaf)
        return b @ w

    assert trace(fn).matmul_depth == 2


def test_in_place_write_is_a_dependency_of_later_reads():
    x, w = torch.randn(2, 4), _w()

    def fn():
        buf = torch.zeros(2, 4)
        buf.add_(x @ w)
        return buf @ w

    assert trace(fn).matmul_depth == 2


def test_in_place_write_through_a_view_reaches_the_base():
    x, w = torch.randn(2, 4), _w()

    def fn():
        buf = torch.zeros(2, 4)
        buf[0].copy_((x @ w)[0])
        return buf @ w

    assert trace(fn).matmul_depth == 2


def test_out_argument_is_a_write():
    x, w = torch.randn(2, 4), _w()

    def fn():
        buf = torch.empty(2, 4)
        torch.mm(x, w, out=buf)
        return buf @ w

    assert trace(fn).matmul_depth == 2


def test_backward_ops_are_traced_with_their_dependencies():
    x = torch.randn(2, 4)
    w1, w2 = _w().requires_grad_(), _w().requires_grad_()

    def fn():
        # forward 2; backward: dh = g @ w2^T (3), dw1 = x^T @ dh (4); dw2 = h^T @ g (3)
        ((x @ w1) @ w2).sum().backward()

    r = trace(fn)
    assert (r.matmul_depth, r.matmul_launches) == (4, 5)


def test_zero_weight_parameter_matmuls_weigh_nothing_but_keep_the_chain():
    x, w, head = torch.randn(2, 4), _w(), _w()
    r = trace(lambda: (x @ head.t()) @ w, zero_weight=[head])
    assert (r.matmul_depth, r.matmul_launches) == (1, 1)


def test_critical_path_lists_the_matmuls_on_the_longest_chain():
    x, w = torch.randn(2, 4), _w()
    r = trace(lambda: torch.tanh(x @ w) @ w + x @ w)
    assert r.critical_path == ["mm", "mm"]


def test_tracer_records_every_op_in_order():
    x, w = torch.randn(2, 4), _w()
    t = trace_ops(lambda: torch.relu(x @ w))
    assert [e.name for e in t.ops] == ["mm", "relu"]
    assert [src for _, src in t.ops[1].inputs] == [(0, 0)]


def _attention_pair(T=5, C=8, heads=2):
    layers = []
    for flash in (True, False):
        torch.manual_seed(0)
        layers.append(CausalSelfAttention(TransformerConfig(
            vocab_size=5, n_embd=C, block_size=T, n_layer=1, n_head=heads, flash=flash)))
    return layers


def test_fused_attention_weighs_what_the_manual_kernel_does_forward():
    x = torch.randn(2, 5, 8)
    reports = [trace(lambda m=m: m(x)) for m in _attention_pair()]
    assert {(r.matmul_depth, r.matmul_launches) for r in reports} == {(4, 4)}
    assert reports[0].ops < reports[1].ops  # the fused kernel really is fewer ops


def test_fused_attention_weighs_what_the_manual_kernel_does_in_backward():
    x = torch.randn(2, 5, 8, requires_grad=True)
    reports = [trace(lambda m=m: m(x)[0].sum().backward()) for m in _attention_pair()]
    # forward c_attn, 2, c_proj; backward c_proj, dO -> dQ 2, c_attn
    assert reports[0].matmul_depth == reports[1].matmul_depth == 4 + 4
    # backward: 2 per Linear, 4 for the attention matmuls
    assert reports[0].matmul_launches == reports[1].matmul_launches == 4 + (2 + 4 + 2)


@pytest.mark.parametrize("quantity", ["forward", "train", "generate"])
def test_flash_and_manual_transformers_have_the_same_depth(quantity):
    sizes = dict(B=1, T=4, P=3, N=2)
    got = [measure_depth(ModelConfig("transformer", 7, hidden=8, layers=2, heads=2,
                                     block_size=8, attention=a), quantity, sizes)
           for a in ("flash", "manual")]
    assert got[0].matmul_depth == got[1].matmul_depth
    assert got[0].matmul_launches == got[1].matmul_launches


@pytest.mark.parametrize("model", ["rnn", "mlrnn", "gru"])
def test_recurrent_forward_depth_grows_with_t(model):
    cfg = ModelConfig(model, 7, embed=4, hidden=4)
    d = [measure_depth(cfg, "forward", dict(B=1, T=t)).matmul_depth for t in (2, 5)]
    assert d[1] - d[0] == 3


def test_transformer_forward_depth_does_not_grow_with_t():
    cfg = ModelConfig("transformer", 7, hidden=8, layers=1, heads=2, block_size=8)
    d = {measure_depth(cfg, "forward", dict(B=1, T=t)).matmul_depth for t in (1, 8)}
    assert len(d) == 1


def test_generation_sees_the_sampling_dependency():
    """Each sampled token feeds the next step: depth adds a full step per token."""
    cfg = ModelConfig("rnn", 7, embed=4, hidden=4)
    d = [measure_depth(cfg, "generate", dict(B=1, P=1, N=n)).matmul_depth for n in (1, 4)]
    assert d[1] - d[0] == 3 * 2  # L + head per fed-back token


def test_model_trace_does_not_change_results():
    torch.manual_seed(0)
    model = build_model(ModelConfig("gru", 7, embed=4, hidden=4))
    idx = torch.randint(0, 7, (2, 3))
    expected = model.forward_sequence(idx)[0]
    got = []
    trace_ops(lambda: got.append(model.forward_sequence(idx)[0]))
    got = got[0]
    torch.testing.assert_close(got, expected)
    F.cross_entropy(got.reshape(-1, 7), idx.reshape(-1))  # still a usable tensor


def test_unknown_quantity_is_a_value_error():
    with pytest.raises(ValueError, match="quantity"):
        measure_depth(ModelConfig("rnn", 7), "sideways", dict(B=1, T=2))


def test_depth_command_reports_predicted_and_measured_json(capsys):
    import json

    from charlm.cli import main

    code = main(["depth", "--model", "mlrnn", "--layers", "3", "--hidden", "8", "--embed", "8",
                 "--vocab", "7", "--seq-len", "5", "--quantity", "train", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["predicted"] == report["measured"] == 2 * (5 + 3)
    assert report["matmul_launches"] == report["predicted_launches"]
    assert report["formula"] == "2*L + 2*T"


def test_depth_command_rejects_bad_sizes_in_one_line(capsys):
    from charlm.cli import main

    assert main(["depth", "--model", "transformer", "--block-size", "4", "--seq-len", "9"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_in_place_op_returning_nothing_still_writes():
    x, w = torch.randn(2, 4), _w()

    def fn():
        bufs = [torch.zeros(2, 4), torch.zeros(2, 4)]
        torch._foreach_add_(bufs, [x @ w, x])
        return bufs[0] @ w

    assert trace(fn).matmul_depth == 2
