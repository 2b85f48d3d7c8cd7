"""The cost models: parameter counts against the models, published anchors, the homework's
formulas as special cases, derived backward, and generation against its control flow."""

import pytest
import sympy as sp
import torch

import analysis.formulas as formulas
from analysis.architectures import ARCHITECTURES, cost_model
from analysis.counters import measure_flops
from analysis.formulas import (
    B,
    C,
    D,
    E,
    ElmanCost,
    GRUCost,
    H,
    L,
    LSTMCost,
    MinGRUCost,
    N,
    P,
    T,
    Terms,
    TransformerCost,
    V,
    convention,
)
from charlm.models.registry import ModelConfig, build_model, count_parameters


@pytest.fixture(autouse=True)
def _no_cached_generation(monkeypatch):
    """Every test builds its generation formulas itself: a cache filled by an earlier test (or
    before a mutation run forks) would hide the code under test."""
    monkeypatch.setattr(formulas, "_GENERATE_CACHE", {})


HOMEWORK = {E: D, B: 1}  # the homework's assumptions (and no vocabulary head: head=False)


def _sizes(cfg: ModelConfig) -> dict:
    sizes = {"D": cfg.hidden, "E": cfg.embed, "L": cfg.layers, "V": cfg.vocab_size}
    if cfg.block_size is not None:
        sizes["C"] = cfg.block_size
    return sizes


PARAM_CONFIGS = [
    ModelConfig("rnn", 65),
    ModelConfig("rnn", 7, embed=3, hidden=5),
    ModelConfig("mlrnn", 11, embed=4, hidden=6, layers=3),
    ModelConfig("mlrnn", 65),
    ModelConfig("gru", 65),
    ModelConfig("gru", 9, embed=5, hidden=7, layers=4),
    ModelConfig("lstm", 65),
    ModelConfig("lstm", 9, embed=5, hidden=7, layers=3),
    ModelConfig("mingru", 65),
    ModelConfig("mingru", 9, hidden=7, layers=3),
    ModelConfig("transformer", 65),
    ModelConfig("transformer", 13, hidden=12, layers=3, heads=3, block_size=9),
]


@pytest.mark.parametrize("cfg", PARAM_CONFIGS, ids=lambda c: f"{c.model}-D{c.hidden}-L{c.layers}")
def test_params_formula_equals_model_parameter_count(cfg):
    terms = cost_model(cfg.model).params()
    needed = terms.free_symbols()
    value = terms.evaluate({k: v for k, v in _sizes(cfg).items() if k in needed})["total"]
    assert value == count_parameters(build_model(cfg))


def test_homework_transformer_parameter_count_matches_reference():
    # ANCHORS: the homework's 1-layer, 128-wide, 4-head Transformer at block 100 has 222,592
    # parameters; solved for V that is the homework's 92-character vocabulary.
    terms = cost_model("transformer").params()
    assert terms.evaluate({"V": 92, "D": 128, "L": 1, "C": 100})["total"] == 222_592


def test_gpt2_small_forward_anchor():
    # nanoGPT transformer_sizing: full square, head on every position
    fwd = cost_model("transformer").forward()
    sizes = {"B": 1, "T": 1024, "D": 768, "L": 12, "V": 50257}
    assert fwd.evaluate(sizes)["total"] == 291_648_307_200


def test_gru_forward_without_head_is_cudnn_count_when_embed_equals_hidden():
    fwd = cost_model("gru").forward(head=False).total
    assert sp.simplify(fwd.subs(E, D) - 12 * D**2 * T * B * L) == 0


@pytest.mark.parametrize("name", ["rnn", "mlrnn"])
def test_elman_forward_reduces_to_homework_4TLD2(name):
    fwd = cost_model(name).forward(head=False).total.subs(HOMEWORK)
    layers = 1 if name == "rnn" else L
    assert sp.simplify(fwd - 4 * T * layers * D**2) == 0


def test_elman_backward_is_homework_8TLD2_less_the_h0_boundary():
    # The homework counts 8 D^2 per token and layer; at step 0 h0 is a constant, so W_hh's
    # input-gradient matmul (2 D^2 per layer) is never run.
    bwd = cost_model("mlrnn").backward(head=False).total.subs(HOMEWORK)
    assert sp.expand(bwd - 8 * T * L * D**2) == -2 * L * D**2


def test_transformer_forward_reduces_to_homework_per_layer_count():
    fwd = cost_model("transformer").forward(head=False).total.subs(B, 1)
    assert sp.simplify(fwd - L * (24 * T * D**2 + 4 * T**2 * D)) == 0


def test_transformer_manual_backward_is_homework_48_8():
    bwd = cost_model("transformer").backward(head=False, kernel="manual").total
    assert sp.simplify(bwd.subs(B, 1) - (48 * L * T * D**2 + 8 * L * T**2 * D)) == 0


def test_flash_backward_adds_one_score_recompute():
    # the fused kernel recomputes Q K^T (B x H heads of T x J @ J x T) once per layer in backward
    cm = cost_model("transformer")
    flash = cm.backward(kernel="flash")
    assert sp.simplify(flash.total - cm.backward(kernel="manual").total
                       - 2 * B * L * T**2 * D) == 0


def test_causal_count_is_lower_triangle_including_diagonal():
    cm = cost_model("transformer")
    causal = cm.forward(attention_count="causal").terms["scores"]
    assert sp.simplify(causal - 2 * B * L * D * T * (T + 1) / 2) == 0
    assert cm.forward().terms["scores"] == 2 * B * L * D * T**2


# Small configs of every cost model, measured with PyTorch's FLOP counter (an independent count).
COUNTED = [
    ModelConfig("rnn", 7, embed=3, hidden=5),
    ModelConfig("mlrnn", 7, embed=3, hidden=5, layers=2),
    ModelConfig("gru", 7, embed=3, hidden=5, layers=2),
    ModelConfig("lstm", 7, embed=3, hidden=5, layers=2),
    ModelConfig("mingru", 7, hidden=5, layers=2),
    ModelConfig("transformer", 7, hidden=8, layers=2, heads=2, block_size=6, attention="manual"),
]


def _counted(cfg, quantity, sizes):
    torch.manual_seed(0)
    return measure_flops(cfg, quantity, sizes, second_counters=False, model=build_model(cfg)).torch


def test_every_cost_model_is_counted_here():
    assert {c.model for c in COUNTED} == set(ARCHITECTURES)


@pytest.mark.parametrize("cfg", COUNTED, ids=lambda c: c.model)
def test_train_step_formula_equals_the_counter(cfg):
    """One training step (forward, backward, Adam) as the counter sees it."""
    sizes = {"B": 2, "T": 5}
    terms = cost_model(cfg.model).train(kernel="manual")
    formula = terms.evaluate({k: v for k, v in {**_sizes(cfg), **sizes}.items()
                              if k in terms.free_symbols()})["total"]
    assert formula == _counted(cfg, "train", sizes)


@pytest.mark.parametrize("cfg", [c for c in COUNTED if c.model != "transformer"],
                         ids=lambda c: c.model)
@pytest.mark.parametrize("P_,N_", [(1, 1), (2, 3), (4, 2)])
def test_recurrent_generate_formula_equals_the_counter(cfg, P_, N_):
    sizes = {"B": 2, "P": P_, "N": N_}
    terms = cost_model(cfg.model).generate()
    formula = terms.evaluate({k: v for k, v in {**_sizes(cfg), **sizes}.items()
                              if k in terms.free_symbols()})["total"]
    assert formula == _counted(cfg, "generate", sizes)


def test_elman_generate_by_hand():
    # P + N - 1 steps, each: embedding E -> D, recurrence D -> D, head D -> V, 2 per MAC
    B_, P_, N_, E_, D_, V_ = 2, 2, 3, 3, 5, 7
    by_hand = (P_ + N_ - 1) * 2 * B_ * (E_ * D_ + D_ * D_ + D_ * V_)
    terms = cost_model("rnn").generate()
    assert terms.evaluate({"B": B_, "P": P_, "N": N_, "E": E_, "D": D_, "V": V_})["total"] \
        == by_hand


def _simulated_generate(P_, N_, C_, kv_cache, sizes, attention_count="full", head=True):
    """Walk Transformer.generate's control flow, costing each call with the forward terms."""
    cm = cost_model("transformer")

    def window(t):  # a call on t fresh tokens, no cache
        return cm.forward(attention_count, head=head).evaluate({**sizes, "T": t})["total"]

    def one_token(keys):  # a call on one token over `keys` keys (cache + itself)
        per_pos = window(1)  # projections, head and attention over 1 key
        attention = 4 * sizes["B"] * sizes["L"] * sizes["D"]  # scores + values per key
        return per_pos + attention * (keys - 1)

    total, length, cache = 0, P_, None
    for _ in range(N_):
        if kv_cache and cache is not None and cache < C_:
            total += one_token(cache + 1)
            cache += 1
        else:
            cache = min(length, C_)
            total += window(cache)
        length += 1
    return total


@pytest.mark.parametrize("kv_cache", [False, True], ids=["no_cache", "kv_cache"])
@pytest.mark.parametrize(
    "P_,N_",
    [(1, 1), (2, 5), (3, 6), (8, 1), (3, 7), (5, 9), (8, 4), (11, 3), (1, 20)],
)
def test_transformer_generate_matches_simulated_loop_in_every_regime(P_, N_, kv_cache):
    # C = 8: P + N - 1 <= C (within), P >= C (always a full window), and crossing.
    sizes = {"B": 2, "D": 4, "L": 2, "V": 5}
    gen = cost_model("transformer").generate(kv_cache=kv_cache)
    value = gen.evaluate({**sizes, "C": 8, "P": P_, "N": N_})["total"]
    assert value == _simulated_generate(P_, N_, 8, kv_cache, sizes)


def test_kv_cache_is_cheaper_within_the_window_and_equal_beyond_it():
    cm = cost_model("transformer")
    sizes = {"B": 1, "D": 16, "L": 2, "V": 7, "C": 10}
    within = {**sizes, "P": 3, "N": 5}
    beyond = {**sizes, "P": 12, "N": 5}
    assert (cm.generate(kv_cache=True).evaluate(within)["total"]
            < cm.generate().evaluate(within)["total"])
    assert (cm.generate(kv_cache=True).evaluate(beyond)["total"]
            == cm.generate().evaluate(beyond)["total"])


def test_no_cache_generation_within_window_is_sum_of_growing_forwards():
    cm = cost_model("transformer")
    c = sp.Symbol("c", positive=True, integer=True)
    expected = sp.summation(cm.forward().total.subs(T, c), (c, P, P + N - 1))
    within = cm.generate().total.subs({C: P + N + 5})
    assert sp.simplify(within - expected) == 0


def test_head_false_drops_only_the_vocabulary_projection():
    for name, head_term in [("rnn", "fc"), ("gru", "fc"), ("transformer", "lm_head")]:
        cm = cost_model(name)
        assert head_term in cm.forward().names
        assert head_term not in cm.forward(head=False).names
        assert V not in cm.generate(head=False).total.free_symbols


def test_every_output_states_its_convention():
    fwd = cost_model("transformer").forward(attention_count="causal")
    assert "2 per multiply-add" in fwd.convention and "causal" in fwd.convention
    assert "elementwise" in cost_model("gru").elementwise().convention


def test_elementwise_tier_is_separate_from_matmul_terms():
    cm = cost_model("transformer")
    assert not set(cm.elementwise().names) & set(cm.forward().names)


@pytest.mark.parametrize(
    "sizes,message",
    [
        ({"B": 1, "T": 2, "D": 3, "E": 3, "L": 1}, "missing sizes: V"),
        ({"B": 0, "T": 2, "D": 3, "E": 3, "L": 1, "V": 5}, "B must be a positive integer"),
        ({"B": 1, "T": 2.5, "D": 3, "E": 3, "L": 1, "V": 5}, "T must be a positive integer"),
        ({"B": 1, "T": 2, "D": 3, "E": 3, "L": 1, "V": 5, "Q": 1}, "unknown size 'Q'"),
    ],
)
def test_bad_sizes_raise_clear_errors(sizes, message):
    with pytest.raises(ValueError, match=message):
        cost_model("mlrnn").forward().evaluate(sizes)


def test_unknown_model_and_convention_raise():
    with pytest.raises(ValueError, match="unknown model 'mamba'"):
        cost_model("mamba")
    with pytest.raises(ValueError, match="attention_count"):
        cost_model("transformer").forward(attention_count="half")
    with pytest.raises(ValueError, match="kernel"):
        cost_model("transformer").backward(kernel="cudnn")


def test_transformer_softmax_covers_every_score_of_every_head():
    # one layer's attention weights are B x H x T x T: per batch row and head, every query
    # against every key (the causal mask sets entries to -inf, the softmax still runs over
    # all of them). The softmax costs 3 per element (exp, sum, divide: the stated
    # convention), the 1/sqrt(hd) scale 1 per element. L = 2, B = 3, H = 4, T = 5:
    # 2 * 3 * 4 * 5 * 5 = 600 elements, softmax 3 * 600 = 1800, scale 600
    terms = cost_model("transformer").elementwise().terms
    assert sp.expand(terms["softmax"] - 3 * L * B * H * T**2) == 0
    assert sp.expand(terms["attention_scale"] - L * B * H * T**2) == 0
    at = {L: 2, B: 3, H: 4, T: 5}
    assert (terms["softmax"].subs(at), terms["attention_scale"].subs(at)) == (1800, 600)
    # the model's own softmax, seen through the manual kernel's weights hook: 600 elements
    model = build_model(ModelConfig("transformer", 11, hidden=8, layers=2, heads=4,
                                    block_size=8, attention="manual"))
    seen = []
    for block in model.transformer.blocks:
        block.attn.weights_hook = lambda module, att: seen.append(att.numel())
    with torch.no_grad():
        model(torch.zeros(3, 5, dtype=torch.long))
    assert seen == [3 * 4 * 5 * 5] * 2


# The elementwise tier by hand at B = 2, T = 3, D = E = 4, L = 2, V = 5, H = 2, from the stated
# per-element costs (add, mul, activation 1; layer norm 5; softmax 3; prefix sum 1;
# log-add-exp 3). One (B, T, D) state per layer has 2 * 3 * 4 = 24 elements (48 over L = 2);
# the head's bias adds B * T * V = 30.
ELEMENTWISE_SIZES = {"B": 2, "T": 3, "D": 4, "E": 4, "L": 2, "V": 5, "H": 2}
ELEMENTWISE_BY_HAND = {
    # one tanh layer: two bias adds, the sum of the two matmul outputs, the tanh, per element
    "rnn": {"bias_add": 48, "sum_ih_hh": 24, "tanh": 24, "fc_bias": 30},
    "mlrnn": {"bias_add": 96, "sum_ih_hh": 48, "tanh": 48, "fc_bias": 30},
    # three gate sums, three sigmoid/tanh, the reset product, (1 - z) n + z h (4 per element)
    "gru": {"gate_sums": 144, "sigmoid_tanh": 144, "reset_product": 48, "update_mix": 192,
            "fc_bias": 30},
    # four gate sums, four activations, f c + i g (3 per element), o tanh(c) (2 per element)
    "lstm": {"gate_sums": 192, "gates": 192, "cell_update": 144, "output": 96, "fc_bias": 30},
    # layer norm on L + 1 = 3 states (5 x 24 x 3); log-space gates 2 x (neg, activation, neg)
    # + activation + add = 8 per element; scan: prefix sum 1 + log-add-exp 3 + 2 adds = 6
    "mingru": {"layernorm": 360, "gates_log_space": 384, "scan": 288, "exp": 48,
               "residual": 48, "fc_bias": 30},
    # rows B T = 6; 2L + 1 = 5 layer norms of 6 x 4; scores L B H T T = 72 (scale 1, softmax
    # 3 each); MLP biases 4D + D = 20 per row per layer, GELU 4D = 16, two residual adds of D
    "transformer": {"embedding_add": 24, "layernorm": 600, "attention_scale": 72,
                    "softmax": 216, "mlp_bias": 240, "gelu": 192, "residual": 96},
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE_BY_HAND))
def test_every_models_elementwise_tier_is_its_hand_count(name):
    tier = cost_model(name).elementwise()
    by_hand = ELEMENTWISE_BY_HAND[name]
    sizes = {k: v for k, v in ELEMENTWISE_SIZES.items() if k in tier.free_symbols()}
    assert tier.evaluate(sizes) == {**by_hand, "total": sum(by_hand.values())}
    assert tier.quantity == "forward_elementwise"


def test_elman_cost_describes_its_layers():
    one, many = ElmanCost("one", layers=1), ElmanCost("many")
    assert (one.name, one.layers, one.description) == ("one", 1, "Elman RNN, one layer")
    assert (many.name, many.layers, many.description) == ("many", L, "Elman RNN, L layers")


@pytest.mark.parametrize("kv_cache", [False, True], ids=["no_cache", "kv_cache"])
@pytest.mark.parametrize("P_,N_", [(2, 5), (8, 4), (5, 9)])
def test_causal_and_headless_generation_follow_the_loop(P_, N_, kv_cache):
    # C = 8: within, always full, crossing. A fresh TransformerCost, not the registry's: the
    # walk above prices each call with the same attention convention and head choice.
    sizes = {"B": 2, "D": 4, "L": 2, "V": 5}
    fresh = TransformerCost()
    for attention_count, head in [("causal", True), ("full", False), ("causal", False)]:
        gen = fresh.generate(kv_cache=kv_cache, attention_count=attention_count, head=head)
        used = {k: v for k, v in {**sizes, "C": 8, "P": P_, "N": N_}.items()
                if k in gen.free_symbols()}
        assert gen.evaluate(used)["total"] == _simulated_generate(
            P_, N_, 8, kv_cache, sizes, attention_count=attention_count, head=head)


def test_generation_is_cached_per_model_cache_convention_and_head():
    # one call of each kind, all in one process: none may return another's formula
    sizes = {"B": 1, "D": 4, "L": 1, "V": 5, "C": 4, "P": 2, "N": 2, "E": 3}
    tf = TransformerCost()
    kinds = {
        "plain": tf.generate(),
        "kv": tf.generate(kv_cache=True),
        "causal": tf.generate(attention_count="causal"),
        "headless": tf.generate(head=False),
    }
    totals = {k: t.evaluate({s: v for s, v in sizes.items() if s in t.free_symbols()})["total"]
              for k, t in kinds.items()}
    # step 0: the 2-token prompt; step 1: 3 tokens again (no cache) or 1 token over 3 keys.
    # per position 2 (3 D^2 + D^2 + 8 D^2) + 2 D V = 384 + 40 = 424; scores and values 4 D
    # = 16 per (query, key) pair. No cache, full square: 2 * 424 + 4 * 16 + 3 * 424 + 9 * 16
    assert totals["plain"] == 5 * 424 + 13 * 16
    assert totals["kv"] == 3 * 424 + 7 * 16  # 2 * 424 + 4 * 16, then 424 + 3 * 16
    assert totals["causal"] == 5 * 424 + 9 * 16  # 3 + 6 pairs
    assert totals["headless"] == 5 * 384 + 13 * 16
    assert tf.generate() is kinds["plain"]  # the cache returns the built formula
    gru = GRUCost().generate()  # another model, the same options: its own formula
    assert gru.evaluate({s: v for s, v in sizes.items() if s in gru.free_symbols()})[
        "total"] == 3 * 2 * (3 * 3 * 4 + 3 * 4 * 4 + 4 * 5)  # P + N - 1 = 3 steps
    assert (kinds["kv"].quantity, kinds["kv"].assumptions) == (
        "generate", {"head": True, "kv_cache": True})
    assert kinds["headless"].assumptions == {"head": False, "kv_cache": False}


def test_recurrent_generation_is_one_step_per_prompt_and_fed_back_token():
    # minGRU at B = 1, D = 2, L = 1, V = 3: a step is W_xz, W_xh (2 x 2 D^2 = 16) + fc (2 D V
    # = 12); P = 3, N = 2: 4 steps. LSTM: 4 gates of E x D and D x D, E = 3.
    mg = MinGRUCost().generate()
    assert mg.evaluate({"B": 1, "D": 2, "L": 1, "V": 3, "P": 3, "N": 2}) == {
        "W_x": 64, "fc": 48, "total": 112}
    lstm = LSTMCost().generate(head=False)
    assert lstm.evaluate({"B": 1, "D": 2, "E": 3, "L": 1, "P": 3, "N": 2}) == {
        "W_x": 4 * 2 * 4 * 6, "W_h": 4 * 2 * 4 * 4, "total": 4 * 2 * 4 * 10}


def test_backward_spares_only_the_hidden_matmuls_at_step_0():
    # Elman, one layer, B = 1, T = 3, E = 2, D = 3, V = 4: per step W_ih 2 E D = 12, W_hh
    # 2 D^2 = 18, fc 2 D V = 24. Backward: weight gradient every step, input gradient every
    # step but W_hh's at step 0: W_ih 2 x 3 x 12, W_hh (2 x 3 - 1) x 18, fc 2 x 3 x 24.
    sizes = {"B": 1, "T": 3, "E": 2, "D": 3, "V": 4}
    elman = ElmanCost("rnn", layers=1)
    assert elman.backward().evaluate(sizes) == {"W_ih": 72, "W_hh": 90, "fc": 144, "total": 306}
    # the minGRU has no hidden matmul: every term is exactly twice its forward
    mg = MinGRUCost()
    at = {"B": 1, "T": 3, "D": 2, "L": 1, "V": 3}
    assert mg.backward().evaluate(at) == {k: 2 * v for k, v in mg.forward().evaluate(at).items()}
    train = elman.train(head=False, kernel="flash")
    assert train.quantity == "train"
    assert train.assumptions == {"head": False, "kernel": "flash"}
    assert train.evaluate(sizes) == {"W_ih": 36 + 72, "W_hh": 54 + 90, "total": 252}
    bwd = TransformerCost().backward(attention_count="causal", head=False, kernel="flash")
    assert (bwd.quantity, bwd.assumptions) == ("backward", {"head": False, "kernel": "flash"})
    assert bwd.convention == convention("causal")


def test_every_convention_line_is_stated_in_full():
    # the exact lines every table and output carries (the module docstring's conventions)
    assert convention("full") == ("matmul FLOPs (model FLOPs), 2 per multiply-add, full T^2 "
                                  "attention square, bias/elementwise excluded")
    assert convention("causal") == ("matmul FLOPs (model FLOPs), 2 per multiply-add, causal "
                                    "T(T+1)/2 attention pairs, bias/elementwise excluded")
    assert convention(None) == ("matmul FLOPs (model FLOPs), 2 per multiply-add, "
                                "bias/elementwise excluded")
    assert convention(tier="elementwise") == (
        "elementwise FLOPs, per-element costs of analysis.formulas.ELEMENTWISE_COST")
    assert convention(tier="params") == "parameter count (tied weights once)"
    # a model without attention states no square, whatever it was asked
    assert GRUCost().forward(attention_count="causal").convention == convention(None)
    assert TransformerCost().forward().convention == convention("full")
    fwd = TransformerCost().forward(attention_count="causal", head=False)
    assert (fwd.quantity, fwd.assumptions) == ("forward", {"head": False})
    assert ElmanCost("rnn").params().convention == convention(tier="params")
    assert MinGRUCost().elementwise().convention == convention(tier="elementwise")


def test_terms_add_merges_names_and_states_both_quantities():
    a = Terms("forward", {"x": 2 * T, "y": D}, "conv-a", {"head": True, "kernel": "manual"})
    b = Terms("backward", {"y": 3 * D, "z": V}, "conv-b", {"kernel": "flash"})
    s = a + b
    assert s.quantity == "forward+backward"
    assert s.names == ["x", "y", "z"]
    assert s.terms == {"x": 2 * T, "y": 4 * D, "z": V}
    assert s.convention == "conv-a"
    assert s.assumptions == {"head": True, "kernel": "flash"}
    assert s.evaluate({"T": 2, "D": 3, "V": 5}) == {"x": 4, "y": 12, "z": 5, "total": 21}
    assert s.free_symbols() == {"T", "D", "V"}


def test_formula_is_factored_unless_piecewise():
    # 2 B T D + 2 B T V factors to 2 B T (D + V); a piecewise total is printed as it stands
    flat = Terms("forward", {"a": 2 * B * T * D, "b": 2 * B * T * V}, "c")
    assert flat.formula() == "2*B*T*(D + V)"
    pw = sp.Piecewise((2 * T * D + 2 * T * V, P <= C), (4 * C, True))
    piecewise = Terms("generate", {"a": pw}, "c")
    assert piecewise.formula() == str(pw)
    assert piecewise.formula() != str(sp.factor_terms(sp.expand(pw)))


def test_a_non_integer_term_is_reported_by_name():
    half = Terms("forward", {"half": T / 2}, "c")
    assert half.evaluate({"T": 4}) == {"half": 2, "total": 2}
    with pytest.raises(ValueError, match=r"^term half did not evaluate to an integer: 3/2$"):
        half.evaluate({"T": 3})
    with pytest.raises(ValueError, match=r"^missing sizes: D, V \(hidden width \(n_embd\), "
                                         r"vocabulary size\)$"):
        Terms("forward", {"a": D * V}, "c").evaluate({})
    with pytest.raises(ValueError, match=r"^size T must be a positive integer, got True$"):
        half.evaluate({"T": True})
    assert half.evaluate({T: 6})["total"] == 3  # a sympy symbol as key


def test_quantity_dispatches_by_name_and_rejects_others():
    cm = ElmanCost("rnn", layers=1)
    sizes = {"B": 1, "T": 2, "E": 2, "D": 3, "V": 4, "P": 1, "N": 2}
    for name in ("params", "forward", "backward", "train", "generate", "elementwise"):
        got = cm.quantity(name)
        assert got.formula() == getattr(cm, name)().formula()
        assert got.quantity == {"elementwise": "forward_elementwise"}.get(name, name)
    assert cm.quantity("forward", head=False).evaluate(sizes)["total"] == 2 * 2 * (6 + 9)
    with pytest.raises(ValueError, match=r"^unknown quantity 'flops'; choose from params, "
                                         r"forward, backward, train, generate, elementwise$"):
        cm.quantity("flops")
    with pytest.raises(ValueError, match=r"^attention_count must be one of \('full', "
                                         r"'causal'\), got 'half'$"):
        cm.generate(attention_count="half")
    with pytest.raises(ValueError, match=r"^kernel must be one of \('manual', 'flash'\), "
                                         r"got 'cudnn'$"):
        cm.train(kernel="cudnn")
