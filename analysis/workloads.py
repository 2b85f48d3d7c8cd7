"""Bench workloads: what the bench times, built from grids, run by the runners of
`analysis.quantities`.

A workload: a `Workload` names a variant (a registered model with its attention
kernel, the model's fused torch.nn twin, or one attention layer), a phase (forward, train,
generate, generate_cache) and sizes; `prepare` builds it. Variants and grids come from the
architecture table (`analysis.architectures`), so a registered architecture is benchmarked
without edits here. A grid file is read by `analysis.grids` and checked here (`load_grid`:
every workload it names must build).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from analysis.architectures import ARCHITECTURES, Architecture, architecture
from analysis.counters import FORWARD_COUNTERS, count_flops_torch, count_forward
from analysis.grids import (
    GPU_ATTENTION_T,  # noqa: F401  (re-exported)
    GridSpec,
    builtin_grids,
    is_grid_path,
    read_grid,
    source_name,
)
from analysis.quantities import runner, token_ids
from charlm.models.registry import ModelConfig, build_model
from charlm.validate import lookup

# bench phase -> (quantity, KV cache)
PHASES = {"forward": ("forward", False), "train": ("train", False),
          "generate": ("generate", False), "generate_cache": ("generate", True)}


# ---------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A runnable thing: a registered model (with its attention kernel), the fused torch.nn
    twin of a homework model, or a single attention layer."""

    name: str
    model: str
    attention: str | None = None
    impl: str = "homework"  # homework | torch
    kind: str = "model"  # model | reference | attention


def variants() -> dict[str, Variant]:
    """Every bench variant of the registered architectures, by name."""
    out: dict[str, Variant] = {}

    def add(v: Variant):
        if v.name in out:
            raise ValueError(f"two architectures define the bench variant {v.name!r}")
        out[v.name] = v

    for arch in ARCHITECTURES.values():
        for name, kernel in arch.variants:
            add(Variant(name, arch.name, kernel))
    for arch in ARCHITECTURES.values():
        if arch.torch_twin is not None:
            add(Variant(f"{arch.name}-{arch.twin_label}", arch.name, impl="torch",
                        kind="reference"))
    for arch in ARCHITECTURES.values():
        if arch.attention_layer is not None:
            for kernel in arch.attention_kinds:
                add(Variant(f"attention-{kernel}", arch.name, kernel, kind="attention"))
    return out


def model_variants() -> tuple[str, ...]:
    return tuple(v.name for v in variants().values() if v.kind == "model")


@dataclass(frozen=True)
class Workload:
    variant: str
    phase: str
    batch: int = 4
    seq_len: int = 32  # T for forward/train; the prompt length P for generation
    hidden: int | None = None
    embed: int | None = None
    layers: int | None = None
    heads: int | None = None
    vocab: int = 65
    new_tokens: int = 0  # N, generation only
    sweep: str = "base"  # which axis this workload varies: base, T, D, L, N

    def __post_init__(self):
        known = variants()
        if self.variant not in known:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {', '.join(known)}")
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}; choose from {', '.join(PHASES)}")
        if self.generates and self.new_tokens < 1:
            raise ValueError("a generate workload needs new_tokens >= 1")
        if self.phase == "generate_cache" and not self.arch.kv_cache:
            with_cache = [a.name for a in ARCHITECTURES.values() if a.kv_cache]
            raise ValueError(f"generate_cache (KV cache) applies to {', '.join(with_cache)} only")
        if self.kind == "attention" and self.phase != "forward":
            raise ValueError("attention workloads time the forward pass only")
        self.model_config()  # validates sizes

    @property
    def spec(self) -> Variant:
        return variants()[self.variant]

    @property
    def arch(self) -> Architecture:
        return architecture(self.spec.model)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def generates(self) -> bool:
        return PHASES[self.phase][0] == "generate"

    @property
    def quantity(self) -> tuple[str, bool]:
        """(cost-model quantity, KV cache) this phase measures."""
        return PHASES[self.phase]

    @property
    def context(self) -> int:
        """Longest sequence the model sees: T, or P + N for generation."""
        return self.seq_len + self.new_tokens

    def model_config(self) -> ModelConfig:
        spec = self.spec
        return ModelConfig(
            model=spec.model,
            vocab_size=self.vocab,
            embed=self.embed,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            block_size=self.context if self.arch.windowed else None,
            attention=spec.attention,
        )

    def sizes(self) -> dict:
        """The cost-model symbols' values (B, T, D, E, L, H, V, C; N and P when generating)."""
        cfg = self.model_config()
        sizes = {
            "B": self.batch,
            "T": self.context if self.generates else self.seq_len,
            "D": cfg.hidden,
            "E": cfg.embed,
            "L": cfg.layers if self.kind != "attention" else 1,
            "H": cfg.heads if cfg.heads is not None else 1,
            "V": self.vocab,
            "C": cfg.block_size if cfg.block_size is not None else self.context,
        }
        if self.generates:
            sizes.update(N=self.new_tokens, P=self.seq_len)
        return sizes

    def tokens(self) -> int:
        """Tokens processed per round: B*T for forward/train, B*N generated."""
        return self.batch * (self.new_tokens if self.generates else self.seq_len)

    @property
    def id(self) -> str:
        s = self.sizes()
        parts = [self.variant, self.phase, f"B{s['B']}", f"T{self.seq_len}", f"D{s['D']}"]
        if self.kind != "attention":
            parts.append(f"L{s['L']}")
        if self.generates:
            parts.append(f"N{self.new_tokens}")
        return "-".join(parts)

    @property
    def group(self) -> str:
        return f"{self.kind}:{self.spec.model}:{self.phase}"

    def to_dict(self) -> dict:
        cfg = self.model_config()
        return {
            **asdict(self),
            "id": self.id,
            "kind": self.kind,
            "model": cfg.model,
            "attention": cfg.attention,
            "impl": self.spec.impl,
            **self.sizes(),
        }


# ---------------------------------------------------------------------------- prepare


@dataclass
class Prepared:
    """A workload ready to run: `fn()` is one round; `model` is what FLOPs are counted on;
    `outputs` holds (homework logits, torch.nn logits) for a reference workload, to be
    compared before timing."""

    workload: Workload
    model: nn.Module
    fn: Callable[[], object]
    outputs: tuple[torch.Tensor, torch.Tensor] | None = None


def prepare(w: Workload, device: str | torch.device = "cpu", seed: int = 0) -> Prepared:
    """Build the workload's model with seeded weights on `device` and its round callable.

    For a torch.nn reference the homework model is built with the same seed, its weights
    copied into the fused twin, and the logits of both compared (`outputs`); the caller
    asserts they agree before timing.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    spec, arch = w.spec, w.arch
    if spec.kind == "attention":
        cfg = w.model_config()
        layer = arch.attention_layer(cfg.hidden, cfg.heads, w.seq_len, spec.attention)
        layer = layer.to(device).eval()
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(w.batch, w.seq_len, cfg.hidden, generator=gen).to(device)

        def attend():
            with torch.no_grad():
                return layer(x)[0]

        return Prepared(w, layer, attend)
    quantity, kv_cache = w.quantity
    homework = build_model(w.model_config()).to(device)
    if spec.impl == "homework":
        return Prepared(w, homework, runner(homework, quantity, w.sizes(), kv_cache, device, seed))
    twin = arch.torch_twin(homework).to(device)
    idx, _ = token_ids(w.vocab, w.batch, w.seq_len, seed, device)
    with torch.no_grad():
        outputs = (homework.eval().forward_sequence(idx)[0], twin.eval().forward_sequence(idx)[0])
    return Prepared(w, twin, runner(twin, quantity, w.sizes(), kv_cache, device, seed), outputs)


def attention_pair_outputs(w: Workload, device="cpu", seed: int = 0) -> list[torch.Tensor]:
    """Outputs of the attention layer under each kernel, same seeded weights and input, for
    checking they agree before timing any."""
    return [prepare(replace(w, variant=f"attention-{kernel}"), device, seed).fn()
            for kernel in w.arch.attention_kinds]


# ---------------------------------------------------------------------------- grids


# Grids are files (analysis/data/grids/*.toml, schema in analysis.grids); a grid argument
# below is a built-in name (quick, default, full), a path to a grid file, or a GridSpec.
class _Grids(dict):
    """The built-in grids by name; GRIDS["path/to/grid.toml"] reads (and checks) that file."""

    def __missing__(self, key):
        if isinstance(key, (str, Path)) and is_grid_path(key):
            return load_grid(key)
        raise KeyError(key)


GRIDS: dict[str, GridSpec] = _Grids(builtin_grids())


def get_grid(grid: str | Path | GridSpec) -> GridSpec:
    """A built-in grid by name, a grid file (read and checked), or a GridSpec as it is."""
    if isinstance(grid, GridSpec):
        return grid
    if isinstance(grid, str) and grid in GRIDS:
        return GRIDS[grid]
    if is_grid_path(grid):
        return load_grid(grid)
    return lookup(GRIDS, grid, "grid", choices=[*GRIDS, "FILE.toml"])


def _grid_workload(g: GridSpec, key: str, value, **kw) -> Workload:
    """Workload(**kw), or ValueError naming the grid key whose size the model cannot take."""
    try:
        return Workload(**kw)
    except ValueError as exc:
        where = Path(g.source).name if g.source else g.name
        raise ValueError(f"grid {where}: {key} = {value}: {kw['variant']} cannot take it: "
                         f"{exc}") from None


def _chosen(g: GridSpec, key: str, asked, kind: str) -> list[Variant]:
    """The variants of `kind` a grid asks for (names of variants or architectures)."""
    pool = [v for v in variants().values() if v.kind == kind]
    if asked is None:
        return pool
    out = []
    for name in asked:
        hit = [v for v in pool if name in (v.name, v.model)]
        if not hit:
            where = Path(g.source).name if g.source else g.name
            choices = sorted({v.name for v in pool} | {v.model for v in pool})
            raise ValueError(f"grid {where}: {key}: unknown model {name!r}; "
                             f"choose from {', '.join(choices)}")
        out += [v for v in hit if v not in out]
    return out


def _unique(ws):
    seen, out = set(), []
    for w in ws:
        if w.id not in seen:
            seen.add(w.id)
            out.append(w)
    return out


def model_workloads(grid) -> list[Workload]:
    """Every model variant x phase: T sweep (forward, train) at default width, D and L sweeps
    (forward, train) at the middle T (L only for models that stack layers), generation at
    each N (with and without the KV cache where there is one); restricted to the grid's
    variants and phases when it names them."""
    g = get_grid(grid)
    if not g.T:
        return []
    if g.phases is not None:
        for phase in g.phases:
            if phase not in PHASES:
                where = Path(g.source).name if g.source else g.name
                raise ValueError(f"grid {where}: models.phases: unknown phase {phase!r}; "
                                 f"choose from {', '.join(PHASES)}")
    wanted = set(g.phases if g.phases is not None else PHASES)
    t_mid = g.T[len(g.T) // 2]
    ws = []
    for v in _chosen(g, "models.variants", g.variants, "model"):
        arch = architecture(v.model)
        common = {"variant": v.name, "batch": g.batch}
        for phase in ("forward", "train"):
            if phase not in wanted:
                continue
            ws += [_grid_workload(g, "models.T", t, **common, phase=phase, seq_len=t,
                                  sweep="T") for t in g.T]
            ws += [_grid_workload(g, "models.D", d, **common, phase=phase, seq_len=t_mid,
                                  hidden=d, sweep="D") for d in g.D]
            if arch.stacked:
                ws += [_grid_workload(g, "models.L", n, **common, phase=phase,
                                      seq_len=t_mid, layers=n, sweep="L") for n in g.L]
        for phase in ("generate", "generate_cache") if arch.kv_cache else ("generate",):
            if phase in wanted:
                ws += [_grid_workload(g, "models.N", n, **common, phase=phase,
                                      seq_len=g.prompt, new_tokens=n, sweep="N")
                       for n in g.N]
    return _unique(ws)


def reference_workloads(grid) -> list[Workload]:
    """Homework loop and its torch.nn fused twin, same sizes, forward and train."""
    g = get_grid(grid)
    ws = []
    if not g.reference_T:
        return ws
    for v in _chosen(g, "reference.variants", g.reference_variants, "reference"):
        for name in (v.model, v.name):
            for phase in ("forward", "train"):
                ws += [_grid_workload(g, "reference.T", t, variant=name, phase=phase,
                                      batch=g.batch, seq_len=t, sweep="T")
                       for t in g.reference_T]
    return _unique(ws)


def attention_workloads(grid, device: str = "cpu") -> list[Workload]:
    """One attention layer (width 128, 4 heads) at growing T, every kernel."""
    g = get_grid(grid)
    key = "attention.T" if torch.device(device).type == "cpu" else "attention.cuda_T"
    ts = g.attention_T if key == "attention.T" else g.attention_cuda_T
    if not g.attention_T:  # no [attention] table: no attention workloads on any device
        return []
    names = [v.name for v in variants().values() if v.kind == "attention"]
    return [_grid_workload(g, key, t, variant=name, phase="forward", batch=g.batch,
                           seq_len=t, hidden=128, heads=4, sweep="T")
            for t in ts for name in names]


@dataclass(frozen=True)
class Pair:
    """Two workloads whose time ratio A/B the report states, measured as interleaved pairs
    (same seed, so the same weights and inputs). `memory`: the peak-memory ratio too."""

    comparison: str
    configuration: str  # what the two share, e.g. "rnn forward B8-T64-D256-L1"
    a: Workload
    b: Workload
    memory: bool = False

    @property
    def id(self) -> str:
        name = f"{self.comparison} {self.configuration}"
        return name.replace("/", "_vs_").replace(" ", "-")

    @property
    def group(self) -> str:
        return f"pair:{self.comparison}"

    def to_dict(self) -> dict:
        return {"comparison": self.comparison, "configuration": self.configuration,
                "a": self.a.id, "b": self.b.id, "id": self.id, "phase": self.a.phase,
                "model": self.a.spec.model, **{k: v for k, v in self.a.sizes().items()}}


def pair_workloads(grid: str, device: str = "cpu") -> list[Pair]:
    """Every ratio the report states: manual/flash attention (time and memory) at each T,
    each homework loop against its torch.nn twin (forward and train), and generation
    without against with the KV cache at each N."""
    def sizes_of(w: Workload) -> str:
        return w.id.split(f"-{w.phase}-", 1)[1]

    pairs = []
    by_t: dict[int, dict[str, Workload]] = {}
    for w in attention_workloads(grid, device):
        by_t.setdefault(w.seq_len, {})[w.spec.attention] = w
    for kernels in by_t.values():
        if {"manual", "flash"} <= set(kernels):
            pairs.append(Pair("attention manual/flash", sizes_of(kernels["manual"]),
                              kernels["manual"], kernels["flash"], memory=True))
    for w in reference_workloads(grid):
        if w.spec.impl == "torch":
            pairs.append(Pair(w.arch.twin_comparison, f"{w.spec.model} {w.phase} {sizes_of(w)}",
                              replace(w, variant=w.spec.model), w))
    for w in model_workloads(grid):
        if w.phase == "generate_cache":
            pairs.append(Pair("generate no-cache/cache", f"{w.variant} {sizes_of(w)}",
                              replace(w, phase="generate"), w))
    return pairs


GRAPH_PHASES = ("forward", "train", "generate_cache")  # captured in CUDA graphs
CUDA_GRAPH = "cuda-graph"  # the execution of a replayed round (bench/test_graphs.py)
# torch.compile'd (bench/test_compiled.py): fixed shapes only, so no generation (its cache
# grows by one position a step: a recompile per step)
COMPILE_PHASES = ("forward", "train")
COMPILED = "compiled"
# how the report names each execution other than eager, and what its rounds did
EXECUTIONS = {CUDA_GRAPH: ("CUDA graphs", "replayed"), COMPILED: ("torch.compile", "ran")}


def executed_as(name: str, execution: str = "eager") -> str:
    """A variant name or workload id as a bench row of that execution records it:
    "<name>+<execution>" for any but eager, so its rows never mix with eager ones."""
    return name if execution == "eager" else f"{name}+{execution}"


def eager_name(name: str) -> str:
    """The eager variant or id a row's name stands for (`executed_as` undone)."""
    return str(name).split("+", 1)[0]


def graph_workloads(grid, device: str) -> list[Workload]:
    """The model workloads of GRAPH_PHASES, timed as CUDA-graph replays
    (`analysis.graphs`): on CUDA only, [] on any other device."""
    if device != "cuda":
        return []
    return [w for w in model_workloads(grid) if w.phase in GRAPH_PHASES]


def compiled_workloads(grid, device: str) -> list[Workload]:
    """The model workloads of COMPILE_PHASES whose forward is not a loop over positions,
    timed torch.compile'd (`analysis.graphs.compiled_round`): on CUDA only, [] on any other
    device. A loop's forward would be unrolled into one graph of T steps (compile time
    growing with T). Not on the CPU: there one inductor compile takes about half a minute
    (a 2-layer Transformer forward at B=4, T=64 on this project's 2-core VM: 26.5 s, for
    2.1 -> 1.6 ms a round), dozens of them per bench run; compiling pays most on the
    launch-bound GPU."""
    if device != "cuda":
        return []
    return [w for w in model_workloads(grid)
            if w.phase in COMPILE_PHASES and not w.arch.loop]


def execution_of(name: str) -> str:
    """The execution a row's variant or id names ("eager" when it has no suffix)."""
    parts = str(name).split("+", 1)
    return parts[1] if len(parts) == 2 else "eager"


WORKLOAD_SETS: dict[str, Callable[..., list[Workload]]] = {
    "model": lambda grid, device: model_workloads(grid),
    "reference": lambda grid, device: reference_workloads(grid),
    "attention": attention_workloads,
    "graphed": graph_workloads,
    "compiled": compiled_workloads,
}


def check_grid(spec: GridSpec) -> GridSpec:
    """ValueError naming the key when the grid names an unknown model or phase, holds a size
    a model cannot take, or times nothing; the spec otherwise."""
    total = 0
    for device in ("cpu", "cuda"):
        for make in WORKLOAD_SETS.values():
            total += len(make(spec, device))
    if total == 0:
        raise ValueError(f"grid {source_name(spec.source)}: empty grid: it times no workload "
                         "(give sizes under [models], [reference] or [attention])")
    return spec


_LOADED: dict[tuple[str, float], GridSpec] = {}


def load_grid(path: str | Path) -> GridSpec:
    """Read and fully check a grid file (cached while the file is unchanged)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"grid file not found: {path}")
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _LOADED:
        _LOADED[key] = check_grid(read_grid(path))
    return _LOADED[key]



# ---------------------------------------------------------------------------- cost columns


def measured_flops(p: Prepared, counted: int | None = None) -> dict:
    """FLOPs of exactly what a round runs, by PyTorch's formulas over the op trace (with the
    CPU SDPA kernels given theirs), "torch"; and "forward": every second counter's forward
    count by name (`counters.FORWARD_COUNTERS`), None where it did not count.
    `counted`: the trace's FLOPs when the caller already traced a round (the bench traces
    one call for its FLOPs and peak memory together, `analysis.timing.traced_call`)."""

    w = p.workload
    torch_count = count_flops_torch(p.model, p.fn)["total"] if counted is None else counted
    forward = dict.fromkeys(FORWARD_COUNTERS)
    if w.kind == "model" and w.phase == "forward":
        # they count a meta copy built from the same config: counts depend on shapes only
        forward.update({name: c.total
                        for name, c in count_forward(w.model_config(), w.sizes()).items()})
    return {"torch": torch_count, "forward": forward}


def predictions(w: Workload) -> dict:
    """Predicted FLOPs (cost models of analysis.formulas) and sequential matmul depth
    (analysis.depth_formulas) of a workload; depth None for a lone attention layer."""
    return {"flops": predicted_flops(w), "depth": predicted_depth(w)}


def predicted_flops(w: Workload, attention_count: str = "full",
                    kernel: str | None = None) -> int:
    """Matmul FLOPs of one round (2 per multiply-add). Defaults: what the hardware runs and
    PyTorch's counter counts, the full attention square and, for training, the variant's
    kernel (flash recomputes the scores in its backward). attention_count="causal" with
    kernel="manual" gives model FLOPs: the causal work only, no recompute."""
    cm, sizes = w.arch.cost, w.sizes()
    if w.kind == "attention":
        terms = cm.forward(attention_count, head=False).evaluate({**sizes, "L": 1})
        return sum(terms[name] for name in w.arch.attention_layer_terms)
    quantity, kv_cache = w.quantity
    kw: dict = {"attention_count": attention_count} if quantity != "params" else {}
    if quantity == "generate":
        kw["kv_cache"] = kv_cache
    if quantity == "train" and w.spec.attention is not None:
        kw["kernel"] = kernel or w.spec.attention
    return cm.quantity(quantity, **kw).evaluate(sizes)["total"]


def predicted_depth(w: Workload) -> int | None:
    """Sequential steps on the longest dependency chain of one round (analysis.depth_formulas):
    matmuls, plus a parallel scan's ceil(log2 T) combining steps where the model has one;
    None for a lone attention layer."""
    if w.kind == "attention":
        return None
    quantity, kv_cache = w.quantity
    prediction = w.arch.depth.quantity(quantity, head=True, kv_cache=kv_cache).evaluate(
        w.sizes())
    return prediction.get("total_depth", prediction["depth"])  # a scan's steps included
