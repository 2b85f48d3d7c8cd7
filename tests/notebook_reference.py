"""The homework notebook's model classes, re-typed faithfully (cells [14], [17], [20], [22],
[30]) as a parity reference for tests only. Changes from the notebook, none in the maths:
DEVICE is the CPU; TransformerConfig's vocab_size default (len(dataset.vocab)) is a required
field; MultiLayerRNN's W_ih list, garbled in the notebook's printout, is written as its
evident intent ([embed->hidden] + [hidden->hidden] * (L-1)); generate_text methods are left out.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

DEVICE = torch.device("cpu")


class SimpleRNN(nn.Module):
    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.W_ih = nn.Linear(embed_size, hidden_size)
        self.W_hh = nn.Linear(hidden_size, hidden_size)
        self.fc = nn.Linear(hidden_size, vocab_size)
        self.tanh = nn.Tanh()
        self.to(DEVICE)

    def forward(self, x_token, hidden=None):
        x_emb = self.embedding(x_token)
        hidden = self.tanh(self.W_ih(x_emb) + self.W_hh(hidden))
        logits = self.fc(hidden)
        return logits, hidden

    def init_hidden(self, batch_size):
        return torch.zeros(batch_size, self.hidden_size, device=DEVICE)


class MultiLayerRNN(nn.Module):
    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=2):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.W_ih = nn.ModuleList(
            [nn.Linear(embed_size, hidden_size)]
            + [nn.Linear(hidden_size, hidden_size) for i in range(num_layers - 1)]
        )
        self.W_hh = nn.ModuleList(
            [nn.Linear(hidden_size, hidden_size) for i in range(num_layers)]
        )
        self.fc = nn.Linear(hidden_size, vocab_size)
        self.tanh = nn.Tanh()

    def forward(self, x_token, hidden=None):
        if hidden is None:
            hidden = self.init_hidden(x_token.size(0))
        x = self.embedding(x_token)
        new_hidden = []
        for layer in range(self.num_layers):
            layer_input = x if layer == 0 else new_hidden[-1]
            h = self.tanh(self.W_ih[layer](layer_input) + self.W_hh[layer](hidden[layer]))
            new_hidden.append(h)
        logits = self.fc(new_hidden[-1])
        return logits, new_hidden

    def init_hidden(self, batch_size):
        return [torch.zeros(batch_size, self.hidden_size, device=DEVICE)
                for _ in range(self.num_layers)]


class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xr = nn.Linear(input_size, hidden_size, bias=False)
        self.W_hr = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_xz = nn.Linear(input_size, hidden_size, bias=False)
        self.W_hz = nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_xn = nn.Linear(input_size, hidden_size, bias=False)
        self.W_hn = nn.Linear(hidden_size, hidden_size, bias=False)
        self.sigmoid = nn.Sigmoid()
        self.tanh = nn.Tanh()

    def forward(self, x, hidden):
        r_t = self.sigmoid(self.W_xr(x) + self.W_hr(hidden))
        z_t = self.sigmoid(self.W_xz(x) + self.W_hz(hidden))
        n_t = self.tanh(self.W_xn(x) + r_t * self.W_hn(hidden))
        h_t = (1 - z_t) * n_t + z_t * hidden
        return h_t, r_t, z_t, n_t


class GRULM(nn.Module):
    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.gru_cell = GRUCell(embed_size, hidden_size)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, hidden=None):
        if hidden is None:
            hidden = self.init_hidden(x.size(0))
        x_emb = self.embedding(x)
        h = hidden
        h, _, _, _ = self.gru_cell(x_emb, h)
        logits = self.fc(h)
        return logits, h

    def init_hidden(self, batch_size):
        return torch.zeros(batch_size, self.hidden_size, device=DEVICE)


class Transformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.transformer = nn.ModuleDict(
            dict(
                token_embedding=nn.Embedding(config.vocab_size, config.n_embd),
                position_embedding=nn.Embedding(config.block_size, config.n_embd),
                blocks=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd),
            )
        )
        self.config = config
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.token_embedding.weight = self.lm_head.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        device = idx.device
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=device)
        tok_emb = self.transformer.token_embedding(idx)
        pos_emb = self.transformer.position_embedding(pos)
        x = tok_emb + pos_emb
        for block in self.transformer.blocks:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        return logits, None


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
        )

    def forward(self, x):
        x = self.attn(self.ln_1(x)) + x
        x = self.mlp(self.ln_2(x)) + x
        return x


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.config = config
        self.register_buffer(
            "bias",
            torch.tril(torch.ones(config.block_size, config.block_size)).view(
                1, 1, config.block_size, config.block_size
            ),
        )

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.config.n_embd, dim=2)
        k = k.view(B, T, self.config.n_head, C // self.config.n_head).transpose(1, 2)
        q = q.view(B, T, self.config.n_head, C // self.config.n_head).transpose(1, 2)
        v = v.view(B, T, self.config.n_head, C // self.config.n_head).transpose(1, 2)
        if self.config.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0,
                                               is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        y = self.c_proj(y)
        return y


@dataclass
class TransformerConfig:
    vocab_size: int
    n_embd: int = 128
    block_size: int = 100
    n_layer: int = 1
    n_head: int = 4
    flash: bool = True


class NotebookCharLMDataset:
    """Cell [13]'s CharLMDataset, including its __len__ that can admit a short last chunk."""

    def __init__(self, text, seq_length=20):
        self.seq_length = seq_length
        self.vocab = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}
        self.itos = {i: ch for i, ch in enumerate(self.vocab)}
        self.encoded_text = [self.stoi[ch] for ch in text]
        self.encoded_text = self.encoded_text[
            : len(self.encoded_text) - (len(self.encoded_text) % (seq_length + 1))
        ]

    def __len__(self):
        return len(self.encoded_text) // self.seq_length

    def __getitem__(self, idx):
        chunk = self.encoded_text[idx * self.seq_length : (idx + 1) * self.seq_length + 1]
        x = torch.tensor(chunk[:-1], dtype=torch.long)
        y = torch.tensor(chunk[1:], dtype=torch.long)
        return x, y


def notebook_rnn_loss(model, x_batch, y_batch):
    """Cell [15]'s recurrent loss: the mean over t of criterion(logits_t, y_t)."""
    criterion = nn.CrossEntropyLoss()
    h = model.init_hidden(x_batch.size(0))
    loss = 0
    for t in range(x_batch.size(1)):
        logits, h = model(x_batch[:, t], h)
        loss += criterion(logits, y_batch[:, t])
    return loss / x_batch.size(1)
