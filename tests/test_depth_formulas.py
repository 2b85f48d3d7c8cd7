"""Predicted depth and launches equal the traced ones exactly, on a grid of sizes; hand
counts from the module docstring for every architecture; evaluate, assumptions and errors."""

import dataclasses

import pytest
import sympy as sp

from analysis.architectures import architecture, depth_model
from analysis.depth import measure_depth
from analysis.depth_formulas import DepthModel, DepthPrediction, RecurrentDepth
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


# Hand counts from the module docstring's derivations (h = 1 with the head, 0 without).
HAND = {
    # LSTM, L=2, T=3, P=2, N=3, k_x = k_h = 4. forward: wavefront T + L - 1 + h = 5; launches
    # T (8 L + h) = 3 x 17 = 51. backward: 5 again; per layer 8 T + 4 T + 4 (T - 1) = 44, so
    # 2 x 44 + 2 h T = 94. train 10, 145. generate: (P + L - 1 + h) + (N - 1)(L + h) = 4 + 6
    # = 10; launches (P + N - 1)(8 L + h) = 4 x 17 = 68.
    ("lstm", True): {"forward": (5, 51), "backward": (5, 94), "train": (10, 145),
                     "generate": (10, 68)},
    # without the head: forward 4, 3 x 16 = 48; backward 4, 88; train 8, 136;
    # generate 3 + 2 x 2 = 7, 4 x 16 = 64.
    ("lstm", False): {"forward": (4, 48), "backward": (4, 88), "train": (8, 136),
                      "generate": (7, 64)},
    # transformer, L=2, N=3: forward 6 L + h = 13 (launches the same); backward 13, every
    # Linear 2 and attention 4: 12 L + 2 h = 26; train 26, 39; generate N (6 L + h) = 39.
    ("transformer", True): {"forward": (13, 13), "backward": (13, 26), "train": (26, 39),
                            "generate": (39, 39)},
    ("transformer", False): {"forward": (12, 12), "backward": (12, 24), "train": (24, 36),
                             "generate": (36, 36)},
}


@pytest.mark.parametrize("model,head", list(HAND), ids=[f"{m}-{h}" for m, h in HAND])
def test_depth_and_launches_by_hand(model, head):
    sizes = {"L": 2, "T": 3, "P": 2, "N": 3}
    got = {q: depth_model(model).quantity(q, head=head).evaluate(sizes) for q in HAND[model, head]}
    assert {q: (g["depth"], g["launches"]) for q, g in got.items()} == HAND[model, head]


def test_lstm_depth_and_launches_equal_the_trace():
    sizes = dict(B=2, T=3, P=2, N=3, L=2)
    for quantity in ("forward", "backward", "generate"):
        got = measure_depth(_cfg("lstm", 2), quantity, sizes)
        assert (got.matmul_depth, got.matmul_launches) == HAND["lstm", True][quantity]


# minGRU, L=2, T=5, P=3, N=4, s(n) = ceil(log2 n): s(5) = 3, s(3) = 2. forward: L + h = 3
# matmuls, 2 L + h = 5 launches, 2 L s(T) = 12 scan steps, total 15. backward: 3, 2 x 5 = 10,
# 12, 15. train: 6, 15, 24, 30. generate: N (L + h) = 12, N (2 L + h) = 20, 2 L s(P) = 8, 20.
MINGRU = {
    True: {"forward": (3, 5, 12, 15), "backward": (3, 10, 12, 15), "train": (6, 15, 24, 30),
           "generate": (12, 20, 8, 20)},
    # h = 0: forward 2, 4; backward 2, 8; train 4, 12; generate 8, 16 (scans unchanged)
    False: {"forward": (2, 4, 12, 14), "backward": (2, 8, 12, 14), "train": (4, 12, 24, 28),
            "generate": (8, 16, 8, 16)},
}


@pytest.mark.parametrize("head", [True, False], ids=["head", "nohead"])
def test_mingru_depth_launches_and_scan_by_hand(head):
    sizes = {"L": 2, "T": 5, "P": 3, "N": 4}
    keys = ("depth", "launches", "scan_depth", "total_depth")
    for quantity, want in MINGRU[head].items():
        got = depth_model("mingru").quantity(quantity, head=head).evaluate(sizes)
        assert got == dict(zip(keys, want)), quantity


def test_mingru_depth_and_scan_equal_the_trace():
    sizes = dict(B=2, T=5, P=3, N=4, L=2)
    for quantity in ("forward", "backward", "train"):
        got = measure_depth(_cfg("mingru", 2), quantity, sizes)
        want = MINGRU[True][quantity]
        assert (got.matmul_depth, got.matmul_launches, got.scan_depth) == want[:3], quantity


def test_a_prediction_records_its_assumptions_and_convention():
    got = depth_model("gru").generate(head=False, kv_cache=True)
    assert got.quantity == "generate"
    assert got.assumptions == {"head": False, "kv_cache": True, "model": "gru"}
    assert got.convention.startswith("depth = matmuls on the longest dependency chain")
    assert got.scan == 0
    assert depth_model("rnn").forward().assumptions == {"head": True, "kv_cache": False,
                                                        "model": "rnn"}


def test_evaluate_takes_symbols_or_names_and_skips_none_and_unknown_sizes():
    fwd = depth_model("mlrnn").forward()  # T + L, launches T (2 L + 1)
    assert fwd.evaluate({T: 3, L: 2}) == {"depth": 5, "launches": 15}
    assert fwd.evaluate({"T": 3, "L": 2, "N": None, "depth": 9}) == {"depth": 5, "launches": 15}
    assert "scan_depth" not in depth_model("transformer").forward().evaluate({"L": 1})


def test_missing_size_names_the_quantity_the_field_and_every_missing_size():
    with pytest.raises(ValueError, match=r"^forward depth needs sizes L, T$"):
        depth_model("mlrnn").forward().evaluate({"N": 3})
    with pytest.raises(ValueError, match=r"^forward depth needs sizes T$"):
        depth_model("mlrnn").forward().evaluate({"L": 3, "T": None})
    with pytest.raises(ValueError, match=r"^generate scan_depth needs sizes P$"):
        depth_model("mingru").generate().evaluate({"L": 2, "N": 3})


def test_an_unknown_quantity_is_a_value_error():
    with pytest.raises(ValueError, match=r"^unknown quantity 'params'; choose from forward, "
                                         r"backward, train, generate$"):
        depth_model("gru").quantity("params")


def test_transformer_sublayers():
    model = depth_model("transformer")
    assert (model.sublayer("attention"), model.sublayer("mlp")) == (4, 2)
    with pytest.raises(ValueError, match=r"^unknown sub-layer 'ffn'; choose from attention, "
                                         r"mlp$"):
        model.sublayer("ffn")


def test_a_recurrent_depth_model_built_with_its_own_sizes():
    # a one-layer GRU-shaped model: forward T + h = 4 at T = 3, launches T (6 + 1) = 21;
    # backward launches 6 T + 3 T + 3 (T - 1) + 2 T = 18 + 9 + 6 + 6 = 39
    model = RecurrentDepth("x", 3, 3, layers=1)
    assert model.forward().evaluate({"T": 3}) == {"depth": 4, "launches": 21}
    assert model.backward().evaluate({"T": 3}) == {"depth": 4, "launches": 39}
    assert model.forward().assumptions["model"] == "x"


def test_the_quantity_methods_default_to_the_head_and_no_cache():
    sizes = {"L": 2, "T": 3, "P": 2, "N": 3}
    model = depth_model("lstm")
    for head, calls in [(True, (model.forward(), model.backward(), model.train(),
                                model.generate())),
                        (False, (model.forward(False), model.backward(False),
                                 model.train(False), model.generate(False)))]:
        got = {p.quantity: (p.evaluate(sizes)["depth"], p.evaluate(sizes)["launches"])
               for p in calls}
        assert got == HAND["lstm", head]
        assert [p.assumptions["head"] for p in calls] == [head] * 4
    assert model.generate().assumptions["kv_cache"] is False


def test_a_prediction_built_without_a_scan_has_none_and_is_frozen():
    pred = DepthPrediction("forward", L + 1, 2 * L)
    assert pred.scan == 0 and pred.total == L + 1
    assert pred.evaluate({"L": 3}) == {"depth": 4, "launches": 6}
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'depth'"):
        pred.depth = L


def test_a_size_given_as_any_symbol_is_matched_by_its_name():
    # a Dummy prints as "_T" but is named "T": the name decides
    assert depth_model("rnn").forward().evaluate({sp.Dummy("T"): 4}) == {"depth": 5,
                                                                         "launches": 12}


class _ScanIn(DepthModel):
    """A model whose forward alone has a scan (or, with `backward_scan`, whose backward alone
    has): train adds the one scan it has."""

    def __init__(self, backward_scan=False):
        self.backward_scan = backward_scan

    def _forward(self, h):
        return (sp.Integer(2), sp.Integer(3)) + (() if self.backward_scan else (sp.Integer(5),))

    def _backward(self, h):
        return (sp.Integer(7), sp.Integer(11)) + ((sp.Integer(13),) if self.backward_scan else ())


def test_train_adds_a_scan_that_only_one_pass_has():
    assert _ScanIn().train().evaluate({}) == {"depth": 9, "launches": 14, "scan_depth": 5,
                                              "total_depth": 14}
    assert _ScanIn(backward_scan=True).train().evaluate({}) == {
        "depth": 9, "launches": 14, "scan_depth": 13, "total_depth": 22}
