"""The architecture table: everything the analysis knows about a model, one entry per name.

An `Architecture` ties a registered model (`charlm.models.registry.ModelSpec`) to its
cost model (`analysis.formulas`), its depth model (`analysis.depth_formulas`), its bytes
model (`analysis.bytes_formulas`), the module paths the counters and the op trace attribute
each formula term to, the module that projects to the vocabulary (what `head=False` drops),
how to read a config back from a model instance, how to draw sizes for the FLOP
reconciliation grid, and its fused torch.nn twin if any. Checker, workloads, bench,
reconcile, depth, report and CLI read this table; nothing outside it branches on a model's
name.

Adding an architecture: its model file (a class with `forward_sequence` and `generate`),
its cost, depth and bytes formulas, and one `register(Architecture(...))` (here for the
built-in ones; a test or a plug-in may register its own). `register` also registers the model
spec with `charlm.models.registry`, so `ModelConfig(name, ...)` and `build_model` know it.
What else a new built-in name touches (learned adding lstm and mingru): the CLI's static
`charlm.commands.common.MODEL_NAMES` (kept static so `--help` imports no torch; a test
checks it against the registry); weight names, since `charlm.train.initialise` reads
`W_x*`/`W_i*` as input and `W_h*` as hidden-to-hidden weights; a model whose embedding is
its hidden width sets `embed_is_hidden` (the samplers here honour it); a scan written with
torch's prefix ops (cumsum, logcumsumexp, ...) is weighed by `analysis.depth` without edits,
its depth model returns the scan steps as a third value; a twin that is not a torch.nn
module says what it is in `twin_label`.
"""

from __future__ import annotations

import copy
import functools
import inspect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from analysis.bytes_formulas import (
    BytesModel,
    ElmanBytes,
    GatedBytes,
    MinGRUBytes,
    TransformerBytes,
)
from analysis.depth_formulas import DepthModel, MinGRUDepth, RecurrentDepth, TransformerDepth
from analysis.formulas import (
    CostModel,
    ElmanCost,
    GRUCost,
    LSTMCost,
    MinGRUCost,
    TransformerCost,
)
from charlm.models import registry
from charlm.models.gru import GRULM
from charlm.models.lstm import GATES, LSTMLM
from charlm.models.mingru import MinGRULM, MinGRULoop
from charlm.models.registry import ModelConfig, ModelSpec, build_model
from charlm.models.rnn import MultiLayerRNN, SimpleRNN
from charlm.models.transformer import CausalSelfAttention, Transformer, TransformerConfig
from charlm.validate import lookup

# A reconciliation grid point as a sampler draws it: the config, the sizes B, T, P, N
# it is measured at, and which KV-cache settings its generation is measured with.
Sample = tuple[ModelConfig, dict, tuple]


@functools.cache
def _counts_scan_steps(depth: DepthModel) -> bool:
    """Whether a depth model's forward pass has parallel-scan steps (cached per model: the
    sympy forward is built once)."""
    return depth.forward().scan != 0


@dataclass(frozen=True)
class Architecture:
    """One model family as the analysis sees it (see the module docstring).

    spec: the model registry entry (build, defaults, what sizes it accepts).
    model_class: the class `spec.build` makes (to find the entry for a model instance).
    cost, depth, bytes: its FLOP, depth and bytes formulas.
    head_module: module path of the vocabulary projection.
    term_modules: formula term (of the FLOP or the bytes model) -> regex on module paths
        whose own ops do that term; FLOP terms sharing a regex are compared as their sum.
    read_config: model instance -> ModelConfig (the registry's inverse).
    sample: (rng, i) -> Sample, one random reconciliation grid point.
    anchors: named realistic sizes for the reconciliation grid, as (label, config kwargs,
        sizes) (counted on fake tensors: no memory is allocated; a fake op costs about as
        much Python time as a real small one, so recurrent anchors keep T moderate: their
        counts are linear in T, and the wide matrices are what the anchors add).
    torch_twin: homework model -> the same network through a fused torch.nn module with
        copied weights, exposing `forward_sequence` (None: no twin).
    twin_label: what the twin is, for naming its bench variant `<name>-<twin_label>`:
        "torch" for a fused torch.nn module; "loop" where the twin is the model's own
        sequential loop (minGRU, whose homework variant runs the parallel scan).
    attention_layer: (n_embd, n_head, T, kernel) -> one attention layer, for the
        flash-vs-manual bench (None: no attention); attention_layer_terms: the forward
        terms (at L = 1, no head) that layer does.
    """

    spec: ModelSpec
    model_class: type
    cost: CostModel
    depth: DepthModel
    bytes: BytesModel
    head_module: str
    term_modules: Mapping[str, str]
    read_config: Callable[[nn.Module], ModelConfig]
    sample: Callable[[random.Random, int], Sample]
    anchors: tuple[tuple[str, dict, dict], ...] = ()
    torch_twin: Callable[[nn.Module], nn.Module] | None = None
    twin_label: str = "torch"
    twin_comparison: str = "homework loop/torch.nn"  # how the report names A/B of the pair
    attention_layer: Callable[[int, int, int, str], nn.Module] | None = None
    attention_layer_terms: tuple[str, ...] = ()

    # ------------------------------------------------------------------ flags
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def recurrent(self) -> bool:
        return self.spec.recurrent

    @property
    def has_attention(self) -> bool:
        return bool(self.spec.attention_kinds)

    @property
    def scan(self) -> bool:
        """Its forward pass runs the sequence as a parallel scan (log depth in T: its depth
        model counts scan steps), not as a loop over positions."""
        return _counts_scan_steps(self.depth)

    @property
    def loop(self) -> bool:
        """Its forward pass is a loop over positions: one dependent step per token."""
        return self.recurrent and not self.scan

    @property
    def attention_kinds(self) -> tuple[str, ...]:
        return self.spec.attention_kinds

    @property
    def stacked(self) -> bool:
        """Takes more than one layer (`layers` is a size that can be swept)."""
        return self.spec.max_layers is None or self.spec.max_layers > 1

    @property
    def kv_cache(self) -> bool:
        """Generation has a KV-cache path (`generate(..., use_cache=True)`)."""
        return self.has_attention and not self.recurrent

    @property
    def windowed(self) -> bool:
        return self.spec.windowed

    @property
    def variants(self) -> tuple[tuple[str, str | None], ...]:
        """(variant name, attention kernel) of the homework model as the bench runs it:
        one per attention kernel (name-kernel), or the name alone."""
        if self.attention_kinds:
            return tuple((f"{self.name}-{k}", k) for k in self.attention_kinds)
        return ((self.name, None),)

    # ------------------------------------------------------------------ configs
    def config(self, sizes: Mapping[str, int], attention: str | None = None) -> ModelConfig:
        """The ModelConfig for cost-model symbol sizes: V, D, E, L, H, C (and T, P, N to
        size the context window when C is not given). Sizes a model does not take are
        ignored; E defaults to D."""
        kw: dict = {"model": self.name, "vocab_size": sizes["V"], "hidden": sizes["D"]}
        if self.stacked:
            kw["layers"] = sizes["L"]
        if not self.spec.embed_is_hidden:
            kw["embed"] = sizes.get("E", sizes["D"])
        if self.has_attention:
            kw["heads"] = sizes.get("H")
            kw["attention"] = attention or self.attention_kinds[0]
        if self.windowed:
            kw["block_size"] = sizes.get("C") or max(
                sizes.get("T", 1), sizes.get("P", 0) + sizes.get("N", 0), 1)
        return ModelConfig(**kw)

    def head(self, model: nn.Module) -> nn.Module:
        return model.get_submodule(self.head_module)

    # ------------------------------------------------------------------ factory
    @property
    def factory_sizes(self) -> dict[str, int | None]:
        """The sizes its model factory takes, with their defaults: B, T, V, D and, where the
        entry has them, E, L, H and C (None: a context window that fits T)."""
        defaults = self.spec.defaults
        sizes: dict[str, int | None] = {"B": 1, "T": 20, "V": 65, "D": defaults["hidden"]}
        if not self.spec.embed_is_hidden:
            sizes["E"] = defaults["embed"]
        if self.stacked:
            sizes["L"] = defaults["layers"]
        if self.has_attention:
            sizes["H"] = defaults["heads"]
        if self.windowed:
            sizes["C"] = None
        return sizes

    @property
    def factory(self) -> Callable[..., tuple[nn.Module, torch.Tensor]]:
        """Its model factory: sizes as keyword arguments (`factory_sizes`, the signature says
        which) -> (model, inputs), the model called as `model(inputs)` for the logits of all
        T positions (`LogitsOnly`), the inputs (B, T) seeded token ids."""
        defaults = self.factory_sizes

        def build(**sizes):
            unknown = sorted(set(sizes) - set(defaults))
            if unknown:
                raise TypeError(f"{self.name}() got unexpected size(s) {', '.join(unknown)}")
            sizes = {**defaults, **sizes}
            cfg = self.config(sizes)
            cfg.check_seq_len(sizes["T"])
            gen = torch.Generator().manual_seed(0)
            idx = torch.randint(0, sizes["V"], (sizes["B"], sizes["T"]), generator=gen)
            return LogitsOnly(build_model(cfg)), idx

        build.__signature__ = inspect.Signature(
            [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
             for k, v in defaults.items()])
        build.__name__ = build.__qualname__ = self.name
        return build


class LogitsOnly(nn.Module):
    """A language model called as `model(idx)` -> the logits of every position
    (`forward_sequence(idx)[0]`): what a second counter (a TorchScript trace, say) or a
    profile calls."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, idx):
        return self.model.forward_sequence(idx)[0]


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture, replace_existing: bool = False) -> Architecture:
    """Add `arch` to the table and its model spec to the model registry."""
    if arch.name in ARCHITECTURES and not replace_existing:
        raise ValueError(f"architecture {arch.name!r} is already registered")
    terms = set(arch.cost.quantity("forward").names) | set(arch.bytes.forward().names)
    missing = sorted(terms - set(arch.term_modules))
    if missing:
        raise ValueError(f"architecture {arch.name!r}: no module pattern for forward term(s) "
                         f"{', '.join(missing)}")
    registry.register_model(arch.spec, replace_existing=replace_existing)
    ARCHITECTURES[arch.name] = arch
    return arch


def unregister(name: str) -> None:
    ARCHITECTURES.pop(name, None)
    registry.unregister_model(name)


def architecture(name: str) -> Architecture:
    return lookup(ARCHITECTURES, name, "model")


def cost_model(name: str) -> CostModel:
    """The cost model of a registered architecture."""
    return architecture(name).cost


def depth_model(name: str) -> DepthModel:
    """The depth model of a registered architecture."""
    return architecture(name).depth


def architecture_of(model: nn.Module) -> Architecture:
    """The entry whose class built `model` (exact type)."""
    for arch in ARCHITECTURES.values():
        if type(model) is arch.model_class:
            return arch
    raise ValueError(f"no cost model for {type(model).__name__}; known: "
                     f"{', '.join(a.model_class.__name__ for a in ARCHITECTURES.values())}")


def config_from_model(model: nn.Module) -> ModelConfig:
    return architecture_of(model).read_config(model)


# ---------------------------------------------------------------------------- samplers


def recurrent_sampler(name: str, layers: tuple[int, ...]) -> Callable[[random.Random, int], Sample]:
    """Small random sizes for a recurrent model: counts depend only on shapes."""

    def sample(rng: random.Random, i: int) -> Sample:
        embed, hidden = rng.choice([3, 8, 16]), rng.choice([4, 8, 16, 24])
        if registry.get_spec(name).embed_is_hidden:
            embed = hidden
        cfg = ModelConfig(name, vocab_size=rng.choice([5, 11, 29]), embed=embed,
                          hidden=hidden, layers=rng.choice(layers))
        sizes = dict(B=rng.choice([1, 2, 3]), T=rng.choice([1, 2, 3, 5, 8]),
                     P=rng.choice([1, 2, 4]), N=rng.choice([1, 2, 3]))
        return cfg, sizes, (False,)

    return sample


def windowed_attention_sampler(name: str) -> Callable[[random.Random, int], Sample]:
    """Small random sizes for a windowed attention model, kernels alternating, prompts in all
    three generation regimes: inside, crossing and beyond the window."""

    def sample(rng: random.Random, i: int) -> Sample:
        spec = registry.get_spec(name)
        heads = rng.choice([1, 2, 4])
        block = rng.choice([6, 8, 12])
        cfg = ModelConfig(name, vocab_size=rng.choice([5, 11, 29]),
                          hidden=heads * rng.choice([2, 4, 6]), layers=rng.choice([1, 2]),
                          heads=heads, block_size=block,
                          attention=spec.attention_kinds[i % len(spec.attention_kinds)])
        prompt = [rng.randint(1, block // 2), rng.randint(1, block - 1),
                  block + rng.randint(0, 2)][i % 3]
        sizes = dict(B=rng.choice([1, 2, 3]), T=rng.randint(1, block), P=prompt,
                     N=rng.randint(1, block))
        return cfg, sizes, (False, True)

    return sample


# ---------------------------------------------------------------------------- torch twins


class TorchRecurrentLM(nn.Module):
    """A homework recurrent LM re-expressed with a fused torch.nn recurrence (cuDNN on GPU),
    holding copies of the homework model's weights: same embedding, same recurrence, same
    head, one fused call over the whole sequence."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.RNNBase, fc: nn.Linear):
        super().__init__()
        self.embedding = copy.deepcopy(embedding)
        self.rnn = rnn
        self.fc = copy.deepcopy(fc)

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def forward_sequence(self, idx, state=None):
        out, h = self.rnn(self.embedding(idx), state)  # (B, T, D), (L, B, D)
        return self.fc(out), h


def _as_list(m):
    return list(m) if isinstance(m, nn.ModuleList) else [m]


def _torch_elman(model) -> TorchRecurrentLM:
    w_ih, w_hh = _as_list(model.W_ih), _as_list(model.W_hh)
    rnn = nn.RNN(w_ih[0].in_features, model.hidden_size, num_layers=len(w_ih),
                 nonlinearity="tanh", bias=True, batch_first=True)
    with torch.no_grad():
        for k, (ih, hh) in enumerate(zip(w_ih, w_hh)):
            getattr(rnn, f"weight_ih_l{k}").copy_(ih.weight)
            getattr(rnn, f"bias_ih_l{k}").copy_(ih.bias)
            getattr(rnn, f"weight_hh_l{k}").copy_(hh.weight)
            getattr(rnn, f"bias_hh_l{k}").copy_(hh.bias)
    return TorchRecurrentLM(model.embedding, rnn, model.fc)


def _torch_gru(model) -> TorchRecurrentLM:
    cells = model.cells()
    rnn = nn.GRU(cells[0].W_xr.in_features, model.hidden_size, num_layers=len(cells),
                 bias=False, batch_first=True)
    with torch.no_grad():
        for k, c in enumerate(cells):  # torch.nn.GRU stacks gates in the order r, z, n
            getattr(rnn, f"weight_ih_l{k}").copy_(
                torch.cat([c.W_xr.weight, c.W_xz.weight, c.W_xn.weight]))
            getattr(rnn, f"weight_hh_l{k}").copy_(
                torch.cat([c.W_hr.weight, c.W_hz.weight, c.W_hn.weight]))
    return TorchRecurrentLM(model.embedding, rnn, model.fc)


def _torch_lstm(model) -> TorchRecurrentLM:
    cells = list(model.cells)
    rnn = nn.LSTM(cells[0].W_xi.in_features, model.hidden_size, num_layers=len(cells),
                  bias=False, batch_first=True)
    with torch.no_grad():
        for k, c in enumerate(cells):  # torch.nn.LSTM stacks gates in the order i, f, g, o
            getattr(rnn, f"weight_ih_l{k}").copy_(
                torch.cat([getattr(c, f"W_x{g}").weight for g in GATES]))
            getattr(rnn, f"weight_hh_l{k}").copy_(
                torch.cat([getattr(c, f"W_h{g}").weight for g in GATES]))
    return TorchRecurrentLM(model.embedding, rnn, model.fc)


def _attention_layer(n_embd: int, n_head: int, seq_len: int, kernel: str) -> nn.Module:
    return CausalSelfAttention(TransformerConfig(
        vocab_size=1, n_embd=n_embd, block_size=seq_len, n_layer=1, n_head=n_head,
        flash=kernel == "flash"))


# ---------------------------------------------------------------------------- config readers


def _recurrent_config(name: str) -> Callable[[nn.Module], ModelConfig]:
    def read(model) -> ModelConfig:
        emb = model.embedding
        return ModelConfig(name, emb.num_embeddings, embed=emb.embedding_dim,
                           hidden=model.hidden_size, layers=getattr(model, "num_layers", 1))
    return read


def _transformer_config(model) -> ModelConfig:
    c = model.config
    return ModelConfig("transformer", c.vocab_size, hidden=c.n_embd, layers=c.n_layer,
                       heads=c.n_head, block_size=c.block_size,
                       attention="flash" if c.flash else "manual")


# ---------------------------------------------------------------------------- the table

ELMAN_TERMS = {"W_ih": r"^W_ih(\.\d+)?$", "W_hh": r"^W_hh(\.\d+)?$", "fc": r"^fc$"}
# The homework's own sizes (notebook cells: embed 64, hidden 256, seq 20, batch 32; the
# Transformer 128 wide, 4 heads, block 100) at its vocabulary of 65 characters.
HOMEWORK_RECURRENT = dict(vocab_size=65, embed=64, hidden=256)
HOMEWORK_SIZES = dict(B=32, T=20, P=1, N=20)

for _arch in (
    Architecture(
        spec=registry.get_spec("rnn"), model_class=SimpleRNN,
        cost=ElmanCost("rnn", layers=1), depth=RecurrentDepth("rnn", 1, 1, layers=1),
        bytes=ElmanBytes(layers=1),
        head_module="fc", term_modules=ELMAN_TERMS, read_config=_recurrent_config("rnn"),
        sample=recurrent_sampler("rnn", (1,)),
        anchors=(("homework", HOMEWORK_RECURRENT, HOMEWORK_SIZES),
                 ("D=2048", dict(vocab_size=65, embed=64, hidden=2048),
                  dict(B=8, T=64, P=1, N=2))),
        torch_twin=_torch_elman,
    ),
    Architecture(
        spec=registry.get_spec("mlrnn"), model_class=MultiLayerRNN,
        cost=ElmanCost("mlrnn"), depth=RecurrentDepth("mlrnn", 1, 1), bytes=ElmanBytes(),
        head_module="fc", term_modules=ELMAN_TERMS, read_config=_recurrent_config("mlrnn"),
        sample=recurrent_sampler("mlrnn", (2, 3)),
        anchors=(("homework, 2 layers", {**HOMEWORK_RECURRENT, "layers": 2}, HOMEWORK_SIZES),
                 ("4 layers, D=1024", dict(vocab_size=65, embed=64, hidden=1024, layers=4),
                  dict(B=8, T=64, P=4, N=4))),
        torch_twin=_torch_elman,
    ),
    Architecture(
        spec=registry.get_spec("gru"), model_class=GRULM,
        cost=GRUCost(), depth=RecurrentDepth("gru", 3, 3), bytes=GatedBytes(gates=3),
        head_module="fc",
        term_modules={"W_x": r"\.W_x[rzn]$", "W_h": r"\.W_h[rzn]$", "fc": r"^fc$"},
        read_config=_recurrent_config("gru"), sample=recurrent_sampler("gru", (1, 2, 3)),
        anchors=(("homework", HOMEWORK_RECURRENT, HOMEWORK_SIZES),
                 ("8 layers, D=2048", dict(vocab_size=65, embed=2048, hidden=2048, layers=8),
                  dict(B=8, T=32, P=1, N=2))),
        torch_twin=_torch_gru,
    ),
    Architecture(
        spec=registry.get_spec("lstm"), model_class=LSTMLM,
        cost=LSTMCost(), depth=RecurrentDepth("lstm", 4, 4), bytes=GatedBytes(gates=4),
        head_module="fc",
        term_modules={"W_x": r"\.W_x[ifgo]$", "W_h": r"\.W_h[ifgo]$", "fc": r"^fc$"},
        read_config=_recurrent_config("lstm"), sample=recurrent_sampler("lstm", (1, 2, 3)),
        anchors=(("homework", HOMEWORK_RECURRENT, HOMEWORK_SIZES),
                 ("8 layers, D=2048", dict(vocab_size=65, embed=2048, hidden=2048, layers=8),
                  dict(B=8, T=32, P=1, N=2))),
        torch_twin=_torch_lstm,
    ),
    Architecture(
        spec=registry.get_spec("mingru"), model_class=MinGRULM,
        cost=MinGRUCost(), depth=MinGRUDepth(), bytes=MinGRUBytes(),
        head_module="fc",
        term_modules={"W_x": r"\.W_x[zh]$", "fc": r"^fc$"},
        read_config=_recurrent_config("mingru"), sample=recurrent_sampler("mingru", (1, 2, 3)),
        # the scan runs a sequence in one op per layer, so long T costs little to count
        anchors=(("homework", dict(vocab_size=65, hidden=256), HOMEWORK_SIZES),
                 ("8 layers, D=2048, T=1024", dict(vocab_size=65, hidden=2048, layers=8),
                  dict(B=8, T=1024, P=64, N=2))),
        torch_twin=MinGRULoop, twin_label="loop",
        twin_comparison="parallel scan/sequential loop",
    ),
    Architecture(
        spec=registry.get_spec("transformer"), model_class=Transformer,
        cost=TransformerCost(), depth=TransformerDepth(), bytes=TransformerBytes(),
        head_module="lm_head",
        # "attention" is the bytes term: all the attention module's own ops
        term_modules={"qkv": r"\.attn\.c_attn$", "scores": r"\.attn$",
                      "weighted_values": r"\.attn$", "attention": r"\.attn$",
                      "out_proj": r"\.attn\.c_proj$", "mlp": r"\.mlp\.\d+$",
                      "lm_head": r"^lm_head$"},
        read_config=_transformer_config, sample=windowed_attention_sampler("transformer"),
        anchors=(
            ("homework", dict(vocab_size=65, hidden=128, layers=1, heads=4, block_size=100),
             dict(B=32, T=100, P=1, N=20)),
            ("GPT-2 small", dict(vocab_size=50257, hidden=768, layers=12, heads=12,
                                 block_size=1024), dict(B=1, T=1024, P=1, N=2)),
            ("GPT-2 medium", dict(vocab_size=50257, hidden=1024, layers=24, heads=16,
                                  block_size=1024), dict(B=1, T=1024, P=1, N=2)),
            ("D=2048, T=2048", dict(vocab_size=50257, hidden=2048, layers=4, heads=16,
                                    block_size=2048), dict(B=2, T=2048, P=8, N=2)),
        ),
        attention_layer=_attention_layer,
        attention_layer_terms=("qkv", "scores", "weighted_values", "out_proj"),
    ),
):
    register(_arch)


__all__ = ["ARCHITECTURES", "Architecture", "LogitsOnly", "TorchRecurrentLM", "architecture",
           "architecture_of", "config_from_model", "recurrent_sampler", "register",
           "unregister", "windowed_attention_sampler"]
