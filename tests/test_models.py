"""The models against their equations written out by hand, against the notebook's classes,
and their generation paths."""

import io
import math

import pytest
import torch
from torch.nn import functional as F

from charlm.models import (
    GRULM,
    ModelConfig,
    MultiLayerRNN,
    SimpleRNN,
    Transformer,
    TransformerConfig,
    build_model,
)
from tests import notebook_reference as nb

V, E, D, B, T = 11, 6, 8, 3, 7



def ids(batch=B, steps=T, vocab=V, seed=0):
    return torch.randint(0, vocab, (batch, steps), generator=torch.Generator().manual_seed(seed))


def lin(layer, x):
    """A Linear layer by hand: x W^T (+ b)."""
    y = x @ layer.weight.T
    return y if layer.bias is None else y + layer.bias


# ------------------------------------------------------------------ recurrences by hand


def test_elman_step_matches_tanh_formula():
    m = SimpleRNN(V, E, D)
    x = ids()
    logits, h_last = m.forward_sequence(x)
    h = torch.zeros(B, D)
    for t in range(T):
        e = m.embedding.weight[x[:, t]]
        h = torch.tanh(e @ m.W_ih.weight.T + m.W_ih.bias + h @ m.W_hh.weight.T + m.W_hh.bias)
        torch.testing.assert_close(logits[:, t], h @ m.fc.weight.T + m.fc.bias)
    torch.testing.assert_close(h_last, h)


def test_multilayer_rnn_feeds_each_layer_the_one_below_at_the_same_step():
    L = 3
    m = MultiLayerRNN(V, E, D, num_layers=L)
    x = ids()
    logits, states = m.forward_sequence(x)
    hs = [torch.zeros(B, D) for _ in range(L)]
    for t in range(T):
        inp = m.embedding.weight[x[:, t]]
        for layer in range(L):
            hs[layer] = torch.tanh(lin(m.W_ih[layer], inp) + lin(m.W_hh[layer], hs[layer]))
            inp = hs[layer]
        torch.testing.assert_close(logits[:, t], lin(m.fc, hs[-1]))
    for got, want in zip(states, hs):
        torch.testing.assert_close(got, want)


def gru_by_hand(cell, x, h):
    w = {n: getattr(cell, n).weight for n in ("W_xr", "W_hr", "W_xz", "W_hz", "W_xn", "W_hn")}
    r = torch.sigmoid(x @ w["W_xr"].T + h @ w["W_hr"].T)
    z = torch.sigmoid(x @ w["W_xz"].T + h @ w["W_hz"].T)
    n = torch.tanh(x @ w["W_xn"].T + r * (h @ w["W_hn"].T))
    return (1 - z) * n + z * h


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_matches_reset_after_equations(layers):
    m = GRULM(V, E, D, num_layers=layers)
    x = ids()
    logits, state = m.forward_sequence(x)
    hs = [torch.zeros(B, D) for _ in range(layers)]
    for t in range(T):
        inp = m.embedding.weight[x[:, t]]
        for layer, cell in enumerate(m.cells()):
            hs[layer] = gru_by_hand(cell, inp, hs[layer])
            inp = hs[layer]
        torch.testing.assert_close(logits[:, t], lin(m.fc, hs[-1]))
    torch.testing.assert_close(state if layers > 1 else [state], hs)


def layer_norm_by_hand(ln, x):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def transformer_by_hand(m, idx):
    cfg = m.config
    Bn, Tn = idx.shape
    hd = cfg.n_embd // cfg.n_head
    x = m.transformer.token_embedding.weight[idx] + m.transformer.position_embedding.weight[:Tn]
    future = torch.triu(torch.ones(Tn, Tn, dtype=torch.bool), diagonal=1)
    for blk in m.transformer.blocks:
        a = layer_norm_by_hand(blk.ln_1, x)
        q, k, v = (a @ blk.attn.c_attn.weight.T).split(cfg.n_embd, dim=2)
        heads = []
        for h in range(cfg.n_head):
            sl = slice(h * hd, (h + 1) * hd)
            s = (q[..., sl] @ k[..., sl].transpose(1, 2)) / math.sqrt(hd)  # (B, T, T)
            s = s.masked_fill(future, float("-inf"))
            p = torch.exp(s - s.amax(-1, keepdim=True))
            heads.append((p / p.sum(-1, keepdim=True)) @ v[..., sl])
        x = x + torch.cat(heads, dim=-1) @ blk.attn.c_proj.weight.T
        u = lin(blk.mlp[0], layer_norm_by_hand(blk.ln_2, x))
        u = 0.5 * u * (1 + torch.erf(u / math.sqrt(2)))  # exact GELU
        x = x + lin(blk.mlp[2], u)
    return layer_norm_by_hand(m.transformer.ln_f, x) @ m.lm_head.weight.T


@pytest.mark.parametrize("flash", [True, False], ids=["flash", "manual"])
def test_transformer_matches_block_equations_by_hand(flash):
    m = Transformer(TransformerConfig(V, n_embd=16, block_size=12, n_layer=2, n_head=4,
                                      flash=flash))
    idx = ids(steps=9)
    logits, none = m(idx)
    assert none is None
    torch.testing.assert_close(logits, transformer_by_hand(m, idx), atol=1e-5, rtol=1e-5)


def test_transformer_ties_token_embedding_and_head():
    m = Transformer(TransformerConfig(V, n_embd=16, block_size=8, n_head=2))
    assert m.transformer.token_embedding.weight is m.lm_head.weight


def test_flash_and_manual_attention_agree_within_1e_6():
    # the homework's check (cell [30]): same weights, flash vs manual, atol 1e-6, float32
    flash = Transformer(TransformerConfig(V, flash=True))
    manual = Transformer(TransformerConfig(V, flash=False))
    manual.load_state_dict(flash.state_dict())
    x = ids(batch=2, steps=100)
    assert torch.allclose(flash(x)[0], manual(x)[0], atol=1e-6)


# ------------------------------------------------------------------ state and caches


@pytest.mark.parametrize("model", ["rnn", "mlrnn", "gru"])
def test_hidden_none_means_zeros(model):
    m = build_model(ModelConfig(model, V, embed=E, hidden=D, layers=2 if model == "mlrnn" else 1))
    tok = ids()[:, 0]
    got, _ = m(tok, None)
    want, _ = m(tok, m.init_hidden(B))
    torch.testing.assert_close(got, want)


def test_forward_sequence_continues_from_state():
    m = GRULM(V, E, D, num_layers=2)
    x = ids()
    full, _ = m.forward_sequence(x)
    first, state = m.forward_sequence(x[:, :3])
    rest, _ = m.forward_sequence(x[:, 3:], state)
    torch.testing.assert_close(torch.cat([first, rest], 1), full)


@pytest.mark.parametrize("flash", [True, False], ids=["flash", "manual"])
def test_kv_cache_logits_match_full_recompute(flash):
    m = Transformer(TransformerConfig(V, n_embd=16, block_size=10, n_layer=2, n_head=2,
                                      flash=flash)).eval()
    x = ids(steps=10)
    full, _ = m.forward_sequence(x)
    part, cache = m.forward_sequence(x[:, :4])
    step, cache = m.forward_sequence(x[:, 4:5], cache)  # one query over the cache
    rest, cache = m.forward_sequence(x[:, 5:], cache)  # several queries over the cache
    assert cache.length == 10
    torch.testing.assert_close(torch.cat([part, step, rest], 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("flash", [True, False], ids=["flash", "manual"])
def test_kv_cache_greedy_generation_equals_no_cache_past_block_size(flash):
    block = 8
    m = Transformer(TransformerConfig(V, n_embd=16, block_size=block, n_layer=2, n_head=2,
                                      flash=flash))
    with torch.no_grad():  # sharpen the logits so near-ties cannot flip argmax
        m.lm_head.weight.mul_(20)
    prompt = ids(batch=2, steps=3)
    n = 3 * block
    plain = m.generate(prompt, n, greedy=True)
    cached = m.generate(prompt, n, greedy=True, use_cache=True)
    assert plain.shape == (2, 3 + n)
    assert torch.equal(plain, cached)


def test_transformer_rejects_sequence_longer_than_block_size():
    m = Transformer(TransformerConfig(V, n_embd=16, block_size=8, n_head=2))
    with pytest.raises(ValueError, match="exceeds block_size 8"):
        m(ids(steps=9))


# ------------------------------------------------------------------ notebook parity


def roundtrip(state_dict):
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


PAIRS = {
    "rnn": (lambda: nb.SimpleRNN(V, E, D), lambda: SimpleRNN(V, E, D)),
    "mlrnn": (lambda: nb.MultiLayerRNN(V, E, D, 3), lambda: MultiLayerRNN(V, E, D, 3)),
    "gru": (lambda: nb.GRULM(V, E, D), lambda: GRULM(V, E, D)),
    "transformer-flash": (lambda: nb.Transformer(nb.TransformerConfig(V, 16, 12, 2, 4, True)),
                          lambda: Transformer(TransformerConfig(V, 16, 12, 2, 4, True))),
    "transformer-manual": (lambda: nb.Transformer(nb.TransformerConfig(V, 16, 12, 2, 4, False)),
                           lambda: Transformer(TransformerConfig(V, 16, 12, 2, 4, False))),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_notebook_state_dict_loads_and_gives_the_notebooks_outputs(name):
    make_ref, make_ours = PAIRS[name]
    torch.manual_seed(1)
    ref = make_ref()
    ours = make_ours()
    report = ours.load_state_dict(roundtrip(ref.state_dict()), strict=False)
    assert report.missing_keys == []
    assert all(k.endswith(".attn.bias") for k in report.unexpected_keys)
    x = ids()
    if name.startswith("transformer"):
        assert len(report.unexpected_keys) == 2  # one mask buffer per layer
        torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=0, rtol=0)
        return
    assert report.unexpected_keys == []
    h_ref, h_ours = ref.init_hidden(B), ours.init_hidden(B)
    for t in range(T):
        out_ref, h_ref = ref(x[:, t], h_ref)
        out_ours, h_ours = ours(x[:, t], h_ours)
        torch.testing.assert_close(out_ours, out_ref, atol=0, rtol=0)


def test_parameter_names_and_shapes_are_the_notebooks():
    for make_ref, make_ours in PAIRS.values():
        ref = {k: v.shape for k, v in make_ref().state_dict().items() if not k.endswith(".bias")
               or "attn" not in k}
        ours = {k: v.shape for k, v in make_ours().state_dict().items()}
        assert ours == ref


def test_homework_transformer_parameter_count_formula():
    # tied embedding V*D + positions 100*D + per layer (two LayerNorms 4D, qkv 3D^2, proj D^2,
    # MLP 8D^2 + 5D) + ln_f 2D. The notebook prints 222592 on TinyStories, i.e. V = 92.
    Dn = 128
    for Vn in (65, 92):
        m = Transformer(TransformerConfig(Vn))
        want = Vn * Dn + 100 * Dn + (4 * Dn + 12 * Dn * Dn + 5 * Dn) + 2 * Dn
        assert sum(p.numel() for p in m.parameters()) == want
    assert want == 222592


# ------------------------------------------------------------------ generation


MODELS = {
    "rnn": ModelConfig("rnn", V, embed=E, hidden=D),
    "mlrnn": ModelConfig("mlrnn", V, embed=E, hidden=D, layers=2),
    "gru": ModelConfig("gru", V, embed=E, hidden=D, layers=2),
    "transformer": ModelConfig("transformer", V, hidden=16, heads=2, block_size=6),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_generate_shapes_prompt_and_determinism(name):
    m = build_model(MODELS[name])
    prompt = ids(batch=2, steps=3)
    a = m.generate(prompt, 9, generator=torch.Generator().manual_seed(5))
    b = m.generate(prompt, 9, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, 12)
    assert torch.equal(a[:, :3], prompt)
    assert torch.equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < V
    alone = m.generate(None, 4, generator=torch.Generator().manual_seed(5))
    assert alone.shape == (1, 5)
    assert m.generate(prompt, 0).shape == (2, 3)


@pytest.mark.parametrize("name", list(MODELS))
def test_top_k_one_is_greedy(name):
    m = build_model(MODELS[name])
    prompt = ids(batch=2, steps=3)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(m.generate(prompt, 6, top_k=1, generator=g),
                       m.generate(prompt, 6, greedy=True))


@pytest.mark.parametrize("kw, match", [
    (dict(temperature=0.0), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
])
def test_generate_rejects_bad_sampling_arguments(kw, match):
    m = build_model(MODELS["rnn"])
    args = dict(prompt_ids=ids(), max_new_tokens=3) | kw
    with pytest.raises(ValueError, match=match):
        m.generate(**args)


def test_generate_rejects_out_of_vocabulary_prompt_ids():
    with pytest.raises(ValueError, match="must lie in"):
        build_model(MODELS["gru"]).generate(torch.tensor([[V]]), 2)


# ------------------------------------------------------------------ configuration errors


@pytest.mark.parametrize("kw, match", [
    (dict(model="mamba"), "unknown model 'mamba'"),
    (dict(model="transformer", hidden=30, heads=4), "divisible by heads"),
    (dict(model="rnn", hidden=0), "hidden must be a positive integer"),
    (dict(model="gru", embed=-3), "embed must be a positive integer"),
    (dict(model="rnn", layers=2), "one layer"),
])
def test_model_config_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(vocab_size=V, **kw)


def test_sequence_longer_than_block_size_rejected_by_config():
    with pytest.raises(ValueError, match="exceeds block_size"):
        ModelConfig("transformer", V, block_size=16).check_seq_len(17)


def test_cross_entropy_of_uniform_logits_is_log_vocab():
    # sanity anchor for the loss values printed everywhere: ln V at initialisation scale
    logits = torch.zeros(4, V)
    assert F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)).item() == pytest.approx(
        math.log(V))
