"""Predicted depth and launches equal the traced ones exactly, on a grid of sizes."""

import pytest
import sympy as sp

from analysis.architectures import architecture, depth_model
from analysis.depth import measure_depth
from analysis.formulas import L, N, P, T


def _cfg(model, layers, attention="flash"):
    sizes = {"V": 7, "E": 3, "D": 4, "L": layers, "H": 2, "C": 5}
    return architecture(model).config(sizes, attention)


GRID = [
    ("rnn", 1, 1), ("rnn", 1, 3),
    ("mlrnn", 2, 1), ("mlrnn", 3, 2),
    ("gru", 1, 2), ("gru", 2, 3),
    ("transformer", 1, 2), ("transformer", 2, 4),
]


@pytest.mark.parametrize("quantity", ["forward", "backward", "train", "generate"])
@pytest.mark.parametrize("model,layers,t", GRID, ids=[f"{m}-L{n}-T{t}" for m, n, t in GRID])
@pytest.mark.parametrize("head", [True, False], ids=["head", "nohead"])
def test_measured_depth_equals_predicted(model, layers, t, quantity, head):
    sizes = dict(B=2, T=t, P=t, N=3, L=layers)
    got = measure_depth(_cfg(model, layers), quantity, sizes, head=head)
    want = depth_model(model).quantity(quantity, head=head).evaluate(sizes)
    assert got.matmul_depth == want["depth"]
    if head:  # without the head the tracer still counts the head's weight-gradient launches
        assert got.matmul_launches == want["launches"]


@pytest.mark.parametrize("attention", ["flash", "manual"])
def test_transformer_generation_with_kv_cache_matches_prediction(attention):
    sizes = dict(B=1, P=2, N=5, L=2)  # P + N > block_size: the cache is re-filled once
    got = measure_depth(_cfg("transformer", 2, attention), "generate", sizes, kv_cache=True)
    want = depth_model("transformer").generate(kv_cache=True).evaluate(sizes)
    assert (got.matmul_depth, got.matmul_launches) == (want["depth"], want["launches"])


def test_recurrent_forward_is_a_wavefront_not_a_product():
    assert depth_model("mlrnn").forward(head=False).depth == T + L - 1


def test_recurrent_generation_feeds_each_sample_back():
    assert sp.expand(depth_model("mlrnn").generate().depth
                     - (P + L) - (N - 1) * (L + 1)) == 0


def test_transformer_depth_is_six_per_layer_and_independent_of_t():
    fwd = depth_model("transformer").forward(head=False).depth
    assert fwd == 6 * L and T not in fwd.free_symbols
    assert depth_model("transformer").generate(head=False).depth == 6 * L * N


def test_missing_size_is_a_value_error():
    with pytest.raises(ValueError, match="needs sizes"):
        depth_model("mlrnn").forward().evaluate({"T": 3})
    with pytest.raises(ValueError, match="unknown"):
        depth_model("mamba")
