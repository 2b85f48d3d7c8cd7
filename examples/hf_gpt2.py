"""A model factory for `charlm profile`: Hugging Face's GPT-2 built from a config, with
random weights (no download, no network, no tokenizer). Needs the `hf` extra:
`pip install -e ".[hf]"`.

    charlm profile examples/hf_gpt2.py:gpt2 --size T=128 --size D=96
"""

import torch


def gpt2(B=1, T=64, D=128, L=2, H=2, V=256):
    """GPT2LMHeadModel of L blocks, width D, H heads, a V-token vocabulary and a T-position
    context, on a (B, T) batch of token ids."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=V, n_positions=T, n_embd=D, n_layer=L, n_head=H,
                        bos_token_id=V - 1, eos_token_id=V - 1)
    model = GPT2LMHeadModel(config)
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))
    return model, ids
