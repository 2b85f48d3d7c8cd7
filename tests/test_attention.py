import math

import pytest
import torch
from torch.nn import functional as F

from charlm.attention import attention_for_text, attention_maps, capture_attention
from charlm.models import GRULM
from charlm.models.transformer import Transformer, TransformerConfig

VOCAB = list(" ,Ladilsty")
STOI = {c: i for i, c in enumerate(VOCAB)}


def model(flash: bool, layers=3, heads=4, n_embd=16, block=12) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=len(VOCAB), n_embd=n_embd,
                                         block_size=block, n_layer=layers, n_head=heads,
                                         flash=flash)).eval()


def manual_softmax(m: Transformer, idx: torch.Tensor) -> torch.Tensor:
    """Each layer's attention recomputed from that layer's real input ln_1(x), with the
    position embedding in x and the causal mask: softmax(q k^T / sqrt(hs)) per head."""
    inputs = []
    handles = [b.attn.register_forward_pre_hook(lambda _m, a: inputs.append(a[0]))
               for b in m.transformer.blocks]
    with torch.no_grad():
        m.forward_sequence(idx[None])
    for h in handles:
        h.remove()
    maps = []
    T, nh = idx.numel(), m.config.n_head
    for block, x in zip(m.transformer.blocks, inputs):
        q, k, _ = block.attn.c_attn(x).split(m.config.n_embd, dim=2)
        q = q.view(1, T, nh, -1).transpose(1, 2)
        k = k.view(1, T, nh, -1).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        maps.append(F.softmax(scores, dim=-1)[0])
    return torch.stack(maps)


TEXT = "Lily said,"


@pytest.mark.parametrize("flash", [False, True], ids=["manual", "flash"])
def test_maps_equal_the_manual_softmax_in_every_layer_and_head(flash):
    m = model(flash)
    idx = torch.tensor([STOI[c] for c in TEXT])
    maps = attention_for_text(m, TEXT, STOI)
    assert maps.shape == (3, 4, len(TEXT), len(TEXT))
    torch.testing.assert_close(maps, manual_softmax(m, idx), rtol=0, atol=1e-6)


def test_flash_and_manual_models_give_the_same_maps():
    flash, manual = model(True), model(False)
    manual.load_state_dict(flash.state_dict())
    torch.testing.assert_close(attention_for_text(flash, TEXT, STOI),
                               attention_for_text(manual, TEXT, STOI), rtol=0, atol=1e-6)


def test_maps_are_causal_distributions():
    maps = attention_for_text(model(True), TEXT, STOI)
    T = len(TEXT)
    torch.testing.assert_close(maps.sum(-1), torch.ones(3, 4, T))
    assert torch.all(maps.masked_select(~torch.ones(T, T, dtype=torch.bool).tril()) == 0)


def test_capture_leaves_the_output_unchanged_and_removes_its_hooks():
    m = model(True)
    idx = torch.tensor([[STOI[c] for c in TEXT]])
    with torch.no_grad():
        plain, _ = m.forward_sequence(idx)
        with capture_attention(m) as captured:
            hooked, _ = m.forward_sequence(idx)
    torch.testing.assert_close(hooked, plain, rtol=0, atol=1e-5)
    assert [len(layer) for layer in captured] == [1, 1, 1]
    assert all(b.attn.weights_hook is None for b in m.transformer.blocks)


def test_hooks_are_removed_after_an_error():
    m = model(False)
    with pytest.raises(RuntimeError), capture_attention(m):
        raise RuntimeError("boom")
    assert all(b.attn.weights_hook is None for b in m.transformer.blocks)


def test_homework_helper_differs_because_it_drops_positions_and_the_mask():
    """The notebook's plot_attention_patterns: layer 0 from ln_1(token_embedding(x)), no mask."""
    m = model(False)
    idx = torch.tensor([[STOI[c] for c in TEXT]])
    block, T = m.transformer.blocks[0], len(TEXT)
    with torch.no_grad():
        q, k, _ = block.attn.c_attn(block.ln_1(m.transformer.token_embedding(idx))).split(
            m.config.n_embd, dim=2)
        q = q.view(1, T, 4, -1).transpose(1, 2)
        k = k.view(1, T, 4, -1).transpose(1, 2)
        notebook = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.size(-1)), dim=-1)[0]
    real = attention_maps(m, idx)[0]
    assert (notebook - real).abs().max() > 0.01
    assert notebook.triu(1).sum() > 0  # it attends to future characters


def test_text_outside_the_vocabulary_is_named():
    with pytest.raises(ValueError, match="'Q'.*'!'|'!'.*'Q'"):
        attention_for_text(model(True), "Lily said Q!", STOI)


def test_text_longer_than_the_block_is_a_value_error():
    with pytest.raises(ValueError, match="block size is 12"):
        attention_for_text(model(True), "Lily said, Lily", STOI)


def test_empty_text_is_a_value_error():
    with pytest.raises(ValueError, match="empty"):
        attention_for_text(model(True), "", STOI)


def test_recurrent_models_have_no_attention_maps():
    with pytest.raises(ValueError, match="Transformer"):
        attention_maps(GRULM(len(VOCAB), 4, 8), torch.tensor([0, 1]))


def test_training_mode_is_restored():
    m = model(True).train()
    attention_for_text(m, TEXT, STOI)
    assert m.training
