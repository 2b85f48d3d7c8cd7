"""charlm derive on models charlm did not write: PyTorch's own nn.TransformerEncoder
(examples/torch_encoder.py) and Hugging Face's GPT-2 (examples/hf_gpt2.py). Each derived
formula must equal a hand count written here, and both are set beside Kaplan et al. 2020's
C_forward, term by term.

Conventions of every count below: matmul FLOPs, 2 per multiply-add, batch B = 1 (one
sequence of T tokens), the attention square full (all T x T query-key pairs, as the kernels
compute them; a causal mask does not halve it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy as sp
import torch
from torch.utils.flop_counter import FlopCounterMode

from analysis.derive import derive, factored, factory_source, symbol
from analysis.factories import load_factory
from analysis.trace import trace
from charlm.cli import main

ROOT = Path(__file__).resolve().parent.parent
ENCODER = f"{ROOT / 'examples' / 'torch_encoder.py'}:encoder"
GPT2 = f"{ROOT / 'examples' / 'hf_gpt2.py'}:gpt2"
T, D, L, V, F = (symbol(n) for n in "TDLVF")


def encoder_layer(T, D, F):
    """One nn.TransformerEncoderLayer (d_model D, H heads of D/H, dim_feedforward F) on one
    sequence of T, by hand, as PyTorch runs it in train mode (F.multi_head_attention_forward,
    the unfused path):
    - QKV in-projection, one (T x D) @ (D x 3D) addmm: 2 T D 3D = 6TD^2;
    - scores Q K^T, H heads of (T x D/H) @ (D/H x T): 2 T^2 D; weights @ V, H heads of
      (T x T) @ (T x D/H): 2 T^2 D; together 4T^2D;
    - out-projection (T x D) @ (D x D): 2TD^2;
    - FFN linear1 (T x D) @ (D x F) and linear2 (T x F) @ (F x D): 4TDF."""
    return 6 * T * D**2 + 4 * T**2 * D + 2 * T * D**2 + 4 * T * D * F


def kaplan_c_forward(n_layer, d_model, n_ctx, d_attn, d_ff):
    """Kaplan et al. 2020 (arXiv:2001.08361), Table 1: forward FLOPs per token,
    C_forward = 2N + 2 n_layer n_ctx d_attn, with N = 2 n_layer d_model (2 d_attn + d_ff) the
    non-embedding parameters (12 n_layer d_model^2 at d_attn = d_model, d_ff = 4 d_model).
    The embedding and the de-embedding (2 d_model n_vocab) are outside C_forward."""
    n = 2 * n_layer * d_model * (2 * d_attn + d_ff)
    return 2 * n + 2 * n_layer * n_ctx * d_attn


def parse(text: str) -> sp.Expr:
    """A formula derive wrote (JSON: sympy's own syntax), in derive's symbols."""
    return sp.sympify(text, locals={n: symbol(n) for n in "BTDLVFH"})


def encoder_at(T=8, D=16, L=2, train=True):
    factory, _ = load_factory(ENCODER)
    model, x = factory(T=T, D=D, L=L, H=2)
    return model.train(train), x


# ------------------------------------------------------------------ nn.TransformerEncoder


def test_the_encoder_derives_the_hand_count_through_the_cli(capsys):
    # fake tensors cannot run it: nn.TransformerEncoder deep-copies its layer, and a
    # deep-copied fake parameter belongs to another FakeTensorMode ("Mixing fake modes"), so
    # the model runs on real tensors (tiny at derive's sizes)
    assert main(["derive", ENCODER, "--vary", "T,D,L", "--step", "D=2", "--tensors", "real",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verified"] and out["failures"] == []
    assert out["fixed"] == {"B": 1, "H": 2, "F": None}  # F None: dim_feedforward = 4D
    # F = 4D: L(8TD^2 + 4T^2D + 16TD^2) = 24LTD^2 + 4LT^2D
    assert sp.expand(parse(out["formula"]) - L * encoder_layer(T, D, 4 * D)) == 0
    assert out["reading"] == "24LTD^2 + 4LT^2D"
    terms = {k: parse(v["formula"]) for k, v in out["terms"].items()}
    # F.multi_head_attention_forward uses in_proj_weight and out_proj.weight itself (the
    # out_proj module is never called): the ops all run in self_attn, and the terms split
    # them by the weight each reads: in-projection 6TD^2, out-projection 2TD^2 and the
    # products of activations alone (scores and values) 4T^2D per layer
    assert terms == {"layers.*.self_attn.in_proj": 6 * L * T * D**2,
                     "layers.*.self_attn.out_proj": 2 * L * T * D**2,
                     "layers.*.self_attn (activations)": 4 * L * T**2 * D,
                     "layers.*.linear1": 8 * L * T * D**2, "layers.*.linear2": 8 * L * T * D**2}


def test_the_encoder_in_f_and_kaplan():
    factory, label = load_factory(ENCODER)
    found = derive(factory_source(factory, label, tensors="real"), ["T", "D", "L", "F"],
                   steps={"D": 2}, held_out=2)
    assert found.verified and found.degrees == {"T": 2, "D": 2, "L": 1, "F": 1}
    assert sp.expand(found.formula - L * encoder_layer(T, D, F)) == 0
    # per token: the sequence's count over T; Kaplan's 2N with d_attn = D and d_ff = F is
    # 8LD^2 + 4LDF, equal to the derived projections and FFN exactly; the attention over the
    # context is 4LTD derived against Kaplan's 2LTD: the derived count holds both T x T
    # products (scores and weighted values, 2TD each per token and layer), Kaplan's term
    # one of them
    per_token = sp.expand(found.formula / T)
    assert per_token == 8 * L * D**2 + 4 * L * D * F + 4 * L * T * D
    assert sp.expand(per_token - kaplan_c_forward(L, D, T, D, F)) == 2 * L * T * D


def test_the_encoders_train_step_is_three_forwards_less_one_input_gradient():
    factory, label = load_factory(ENCODER)
    found = derive(factory_source(factory, label, "train", tensors="real"), ["T", "D", "L"],
                   steps={"D": 2}, held_out=2)
    # the backward of each product Y = X W is two products of its size (dX = dY W^T and
    # dW = X^T dY; the attention's two bmm's likewise: dA and dV, dQ and dK), so backward =
    # 2 x forward; but the input x does not require grad, so autograd skips dX of the first
    # layer's in-projection (6TD^2 once, not per layer)
    forward = L * encoder_layer(T, D, 4 * D)
    assert found.verified
    assert sp.expand(found.formula - (3 * forward - 6 * T * D**2)) == 0
    assert factored(found.formula) == "L(72TD^2 + 12T^2D) - 6TD^2"


def test_the_fast_path_in_eval_mode_is_one_fused_op_counted_zero():
    # What PyTorch's own counter (FlopCounterMode, not charlm's trace) counts, per mode, for
    # L = 2 layers at T = 8, D = 16, F = 4D:
    hand = int((L * encoder_layer(T, D, 4 * D)).subs({L: 2, T: 8, D: 16}))
    attention_square = 2 * 4 * 8**2 * 16  # 4T^2D per layer

    def counted(train: bool, grad: bool) -> int:
        model, x = encoder_at(train=train)
        with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(grad):
            model(x)
        return counter.get_total_flops()

    # train mode (derive's forward: the module's default mode, under no_grad): the unfused
    # path; attention dropout p = 0.1 sends SDPA to its math path, two bmm's, all counted
    assert counted(train=True, grad=False) == counted(train=True, grad=True) == hand
    # eval mode under no_grad: TransformerEncoderLayer's fast path, one
    # _transformer_encoder_layer_fwd per layer, which no FLOP formula covers: 0
    assert counted(train=False, grad=False) == 0
    # eval mode with grad on: unfused, but SDPA runs the CPU flash kernel, which
    # FlopCounterMode counts 0 (charlm's trace gives it PyTorch's SDPA formula)
    assert counted(train=False, grad=True) == hand - attention_square
    model, x = encoder_at(train=False)

    def run():
        with torch.enable_grad():
            return model(x)

    assert trace(run, model).flops == hand
    model, x = encoder_at(train=False)
    with torch.no_grad():
        fast = trace(lambda: model(x), model)
    assert fast.flops == 0 and fast.unsupported() == {"_transformer_encoder_layer_fwd": 2}
    # nn.MultiheadAttention on its own has a fast path of its own (eval mode, no_grad): one
    # _native_multi_head_attention, counted 0 too; in train mode its 6TD^2 + 4T^2D + 2TD^2
    attention = torch.nn.MultiheadAttention(16, 2, batch_first=True)

    def attend():
        with torch.no_grad():
            return attention(x, x, x, need_weights=False)

    assert trace(attend, attention).flops == 6 * 8 * 16**2 + 4 * 8**2 * 16 + 2 * 8 * 16**2
    attention.eval()
    fused = trace(attend, attention)
    assert fused.flops == 0 and fused.unsupported() == {"_native_multi_head_attention": 1}


def test_derive_refuses_a_count_that_leaves_a_fused_kernel_out(tmp_path, capsys):
    # the eval-mode encoder's forward counts 0 at every size: a "verified" 0 would be wrong
    file = tmp_path / "eval_encoder.py"
    file.write_text(
        "import torch\n"
        "def encoder(B=1, T=8, D=16, L=2, H=2):\n"
        "    layer = torch.nn.TransformerEncoderLayer(D, H, 4 * D, batch_first=True)\n"
        "    model = torch.nn.TransformerEncoder(layer, L, enable_nested_tensor=False)\n"
        "    return model.eval(), torch.randn(B, T, D)\n")
    assert main(["derive", f"{file}:encoder", "--vary", "T,D", "--step", "D=2", "--tensors",
                 "real"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("charlm derive: error: ")
    assert "_transformer_encoder_layer_fwd x2" in err[0] and "--step" not in err[0]


# ------------------------------------------------------------------ Hugging Face GPT-2


@pytest.fixture(scope="module")
def gpt2_forward():
    pytest.importorskip("transformers")
    factory, label = load_factory(GPT2)
    # real tensors: the same counts as fake ones (the CLI's default), 3x faster at these sizes
    return derive(factory_source(factory, label, tensors="real"), ["T", "D", "L", "V"],
                  steps={"D": 2}, held_out=2)


def test_gpt2_derives_the_hand_count(gpt2_forward):
    found = gpt2_forward
    # per block: c_attn (Conv1D D -> 3D) 6TD^2; scores and weighted values 2T^2D each (SDPA,
    # the full square though GPT-2 is causal); c_proj 2TD^2; mlp c_fc D -> 4D and c_proj
    # 4D -> D 8TD^2 each: 24TD^2 + 4T^2D. The token and position embeddings are lookups,
    # no matmul; the LM head (tied to the token embedding) is (T x D) @ (D x V): 2TDV
    assert found.verified and found.fixed == {"B": 1, "H": 2}
    assert sp.expand(found.formula - (24 * L * T * D**2 + 4 * L * T**2 * D
                                      + 2 * T * D * V)) == 0
    assert found.terms["lm_head"] == 2 * T * D * V
    assert found.terms["transformer.h.*.attn (activations)"] == 4 * L * T**2 * D
    assert found.terms["transformer.h.*.attn.c_attn"] == 6 * L * T * D**2
    factory, _ = load_factory(GPT2)
    model, _ = factory(T=4, D=8, L=1, H=2, V=11)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied: no parameters of its own


def test_gpt2_beside_kaplan(gpt2_forward):
    found = gpt2_forward
    per_token = sp.expand(found.formula / T)
    head = sp.expand(found.terms["lm_head"] / T)
    assert head == 2 * D * V  # Kaplan's de-embedding, outside C_forward
    body = sp.expand(per_token - head)
    assert body == 24 * L * D**2 + 4 * L * T * D
    kaplan = sp.expand(kaplan_c_forward(L, D, T, D, 4 * D))
    assert kaplan == 24 * L * D**2 + 2 * L * T * D
    # 2N = 24LD^2 exactly; the attention over the context differs by one T x T product per
    # token and layer, 2TD: the derived attention is twice Kaplan's term
    assert sp.expand(body - kaplan) == 2 * L * T * D
    assert sp.expand(found.terms["transformer.h.*.attn (activations)"] / T) == 2 * (2 * L * T * D)


# ------------------------------------------------------------------ printing


def test_a_negative_tail_and_a_ceil_log2_factor_read_as_written_by_hand():
    from analysis.derive import _ceil_log2_expr, reading

    lg = _ceil_log2_expr(T)
    assert factored(72 * L * T * D**2 + 12 * L * T**2 * D - 6 * T * D**2) == \
        "L(72TD^2 + 12T^2D) - 6TD^2"
    assert reading(2 * L * lg + L + 1) == "2L ceil(log2 T) + L + 1"
    assert factored(2 * L * lg + L + 1) == "L(2 ceil(log2 T) + 1) + 1"
