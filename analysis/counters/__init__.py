"""Measured FLOPs from independent counters, all reported as 2 FLOPs per multiply-add.

* PyTorch's counter, the primary one: PyTorch's FLOP formulas over the project's op trace
  (`analysis.trace`; sees every aten op of any callable: forward, backward, generation;
  counts only matmul-like ops). On CPU, `F.scaled_dot_product_attention` runs
  `aten._scaled_dot_product_flash_attention_for_cpu` (and `..._backward`), which PyTorch
  has no formula for and counts as 0; the trace maps them to PyTorch's own SDPA formulas
  (full square, backward 5 matmuls).
* The second counters (`FORWARD_COUNTERS`, the interface in `analysis.counters.base`): each
  an engine of its own counting a forward pass `model(*inputs)`, one module of this package
  each, listed in COUNTER_MODULES. A counter not installed here gives no count, and says so.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from analysis.architectures import LogitsOnly, architecture, cost_model
from analysis.counters import fvcore
from analysis.counters.base import Count, ForwardCounter
from analysis.quantities import check_request, runner, shapes_only, token_ids
from analysis.trace import Tracer, trace
from charlm.models.registry import ModelConfig, build_model, count_parameters
from charlm.validate import lookup

# ---------------------------------------------------------------------------------------------
# PyTorch's counter


PROGRESS_EVERY_S = 10.0  # a count running longer than this reports how far it got


def count_flops_torch(model: nn.Module | None, fn: Callable[[], object],
                      progress: Callable[[int, float], None] | None = None,
                      every_s: float = PROGRESS_EVERY_S, meta_shortcut: bool = False,
                      modules: bool = True) -> dict:
    """PyTorch's count of `fn()`: its FLOP formulas (with the CPU SDPA mapping) over the op
    trace (`analysis.trace`), which equals `FlopCounterMode`'s count (tested). Returns total,
    per-module (inclusive of submodules, backward included when the forward ran inside
    `fn`; paths as in `model.named_modules()`), per-operator and per-phase (forward,
    backward, optimizer: `OpEvent.phase`) counts and the unsupported ops
    (multiply-adds no formula covers, counted 0). With `progress`, every `every_s` seconds
    until `fn` returns it is called (from another thread) with the FLOPs counted so far and
    the seconds elapsed. meta_shortcut: see `analysis.trace.recorder`. modules=False: no
    per-module counts (by_module empty), without the module tracker's hooks (about a
    quarter of a train step's count)."""
    tracer = Tracer(meta_shortcut=meta_shortcut)  # parameters unnamed: not needed here
    with _watch(tracer, progress, every_s):
        tr = trace(fn, model, tracer=tracer, modules=modules)
    by_module = tr.by_module()
    by_module.pop("", None)
    return {"total": tr.flops, "by_module": by_module, "by_operator": tr.by_operator(),
            "by_phase": tr.by_phase(), "unsupported": tr.unsupported()}


@contextlib.contextmanager
def _watch(tracer: Tracer, progress, every_s: float):
    """Call progress(FLOPs so far, seconds) every `every_s` seconds while the block runs."""
    if progress is None:
        yield
        return
    import threading
    import time

    stop, start = threading.Event(), time.perf_counter()

    def loop():
        while not stop.wait(every_s):
            progress(tracer.flops, time.perf_counter() - start)

    watcher = threading.Thread(target=loop, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def exclusive_module_flops(by_module: dict[str, int]) -> dict[str, int]:
    """Per-module FLOPs done by the module itself, not by a submodule (the counter's per-module
    counts include children)."""
    names = set(by_module)

    def parent(name: str) -> str | None:
        while "." in name:
            name = name.rsplit(".", 1)[0]
            if name in names:
                return name
        return None

    own = dict(by_module)
    for name in by_module:
        up = parent(name)
        if up is not None:
            own[up] -= by_module[name]
    return own


# ---------------------------------------------------------------------------------------------
# The second counters: a registry of ForwardCounters, one module each

COUNTER_MODULES = (fvcore,)  # a third counter: one module in this package, one entry here
FORWARD_COUNTERS: dict[str, ForwardCounter] = {m.COUNTER.name: m.COUNTER
                                               for m in COUNTER_MODULES}


def forward_counts(model: nn.Module, inputs: tuple) -> dict[str, Count]:
    """Every registered second counter's count of `model(*inputs)` (`model` returning one
    tensor), by name; a counter not available here gives a Count saying why."""
    return {name: c.measure(model, inputs) for name, c in FORWARD_COUNTERS.items()}


def not_counted(why: Callable[[str], str]) -> dict[str, Count]:
    """Every registered second counter's Count of a call it does not count; why(name): the
    note."""
    return {name: Count.not_counted(why(name)) for name in FORWARD_COUNTERS}


def count_forward(cfg: ModelConfig, sizes: dict, model: nn.Module | None = None,
                  tensors: str = "auto") -> dict[str, Count]:
    """The second counters' counts of a forward over (sizes B, T) of the model `cfg`
    describes, called as `LogitsOnly(model)(idx)` (paths read below the wrapper).

    Without `model`, they count a model built on the tensors `tensors` names: "real", or
    "meta" (a TorchScript trace records the same aten ops with the same shapes as on real
    tensors, tested, and nothing is computed, so any size counts in about a second); "auto"
    takes real ones where that is cheaper (`real_tensors_suffice`, as PyTorch's counter
    does: tiny real ops cost less than the meta device's Python kernels), else meta."""
    lookup(dict.fromkeys(("auto", "meta", "real")), tensors, "tensors")
    if model is not None:
        device = "cpu"
    elif tensors == "real" or tensors == "auto" and real_tensors_suffice(cfg, "forward", sizes):
        device = "cpu"
        with torch.random.fork_rng():  # the weights' values count for nothing: the caller's
            model = build_model(cfg)     # random stream is left as it was
    else:
        device = "meta"
        with torch.device("meta"):
            model = build_model(cfg)
    idx, _ = token_ids(model.vocab_size, sizes["B"], sizes["T"], device=device)
    was_training = model.training
    try:
        counts = forward_counts(LogitsOnly(model).eval(), (idx,))
    finally:
        model.train(was_training)
    return {name: c.under("model") for name, c in counts.items()}


# ---------------------------------------------------------------------------------------------
# One measurement of one quantity of one model

# Below both of these a count runs on real tensors, above either on meta or fake ones (see
# `tensors_for`): a tiny real op costs ~10-20 us under the counter, a fake one ~100-200 us of
# shape propagation, while a real matmul costs its FLOPs (~2e10 FLOP/s on one CPU thread).
# Measured on the default grid's 1,038 rows under 64 MiB (one thread, 2026-12-03): counting
# them took 33.9 s with the line at 1e8 FLOPs, 32.1 s at 2e9, 30.4 s at 3e9, 30.5 s at 5e9,
# 35.7 s at 1e10, against 29.1 s for the faster of the two row by row. 3e9 FLOPs is ~0.15 s
# of real work, about the shape propagation of the ~1,000 ops such a workload runs.
REAL_TENSOR_MAX_FLOPS = 3 * 10**9
REAL_TENSOR_MAX_BYTES = 2**26
TENSOR_KINDS = ("auto", "fake", "meta", "real")


@dataclass(frozen=True)
class FlopMeasurement:
    """Measured matmul FLOPs of one quantity (2 per multiply-add).

    torch: PyTorch's counter (for "params", the parameter count); by_module: its per-module
    counts (inclusive of submodules); forward_counts: the second counters' counts of a
    forward pass, by name (FORWARD_COUNTERS; empty when not asked for or not a forward);
    tensors: what PyTorch's counter ran on, "fake" or "meta" (shapes only, nothing
    allocated) or "real" (the counts are the same: tested); by_phase: its counts per phase
    of the run (forward, backward, optimizer; empty for "params").
    """

    torch: int
    by_module: dict = field(default_factory=dict)
    forward_counts: dict[str, Count] = field(default_factory=dict)
    tensors: str = "fake"
    by_phase: dict = field(default_factory=dict)


@contextlib.contextmanager
def single_thread():
    """One intra-op thread while counting: the matrices measured are tiny, and on a shared
    2-core machine a second OpenMP thread made each small matmul ~10x slower. Counts do not
    depend on it; the caller's setting is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def forward_bytes_estimate(cfg: ModelConfig, sizes: dict) -> int:
    """float32 bytes a real forward pass at `sizes` holds at least: the weights and the logits
    (B x T x V), the largest activations of these models. A lower bound, for deciding whether
    real tensors are cheap enough to count on."""
    params = cost_model(cfg.model).params().evaluate(
        {k: v for k, v in {"V": cfg.vocab_size, "E": cfg.embed, "D": cfg.hidden,
                           "L": cfg.layers, "C": cfg.block_size or 1}.items()})["total"]
    return 4 * (params + sizes.get("B", 1) * sizes.get("T", 1) * cfg.vocab_size)


def _count(model, quantity, sizes, kv_cache, device="cpu", progress=None, modules=True
           ) -> dict:
    was_training = model.training
    try:
        return count_flops_torch(model, runner(model, quantity, sizes, kv_cache, device=device),
                                 progress, meta_shortcut=device == "meta", modules=modules)
    finally:
        model.train(was_training)


def real_tensors_suffice(cfg: ModelConfig, quantity: str, sizes: dict,
                         kv_cache: bool = False) -> bool:
    """Whether counting `quantity` on real tensors costs less than on fake ones: its predicted
    matmul FLOPs and its forward's weights and logits are small (REAL_TENSOR_MAX_*). The
    prediction only picks the tensors; the count is measured either way."""
    if forward_bytes_estimate(cfg, sizes) > REAL_TENSOR_MAX_BYTES:
        return False
    kw = {"kv_cache": kv_cache} if quantity == "generate" else {}
    terms = cost_model(cfg.model).quantity(quantity, **kw)
    needed = {str(s) for s in terms.free_symbols()}
    known = {**_config_sizes(cfg), **sizes}
    if not needed <= set(known):
        return False
    return terms.evaluate({k: known[k] for k in needed})["total"] <= REAL_TENSOR_MAX_FLOPS


def tensors_for(cfg: ModelConfig, quantity: str, sizes: dict, kv_cache: bool = False,
                tensors: str = "auto") -> str:
    """The tensors PyTorch's counter runs `quantity` on: `tensors` if not "auto", else real
    where that is cheaper (`real_tensors_suffice`), else meta for a model without attention
    (shapes only, about 2x faster than fake), else fake (`quantities.shapes_only`). The meta
    device takes SDPA's math path, unlike the CPU's flash kernel, whose backward counts
    2.5x its forward; fake tensors dispatch as the CPU does, so an attention model never
    runs on meta."""
    lookup(dict.fromkeys(TENSOR_KINDS), tensors, "tensors")
    has_attention = architecture(cfg.model).has_attention
    if tensors == "meta" and has_attention:
        raise ValueError(f"{cfg.model} has attention, which the meta device runs by SDPA's "
                         "math path, not the CPU kernels: count it on fake or real tensors")
    if tensors != "auto":
        return tensors
    if real_tensors_suffice(cfg, quantity, sizes, kv_cache):
        return "real"
    return "fake" if has_attention else "meta"


def _config_sizes(cfg: ModelConfig) -> dict:
    sizes = {"V": cfg.vocab_size, "E": cfg.embed, "D": cfg.hidden, "L": cfg.layers,
             "H": cfg.heads, "C": cfg.block_size}
    return {k: v for k, v in sizes.items() if v is not None}


def measure_flops(cfg: ModelConfig, quantity: str, sizes: dict, kv_cache: bool = False,
                  second_counters: bool = True, model: nn.Module | None = None,
                  tensors: str = "auto", progress: Callable[[int, float], None] | None = None,
                  modules: bool = True) -> FlopMeasurement:
    """Measured count of `quantity` for the model `cfg` describes.

    Without `model`, PyTorch's counter runs on a model built from `cfg`, on the tensors
    `tensors_for` picks (`tensors` "auto") or `tensors` names: real, meta or fake; the counts
    are the same (tested), only the time differs.
    With `model` (a real instance), it runs on that model. With `second_counters`, every
    registered second counter counts a forward too (`count_forward`: a model built on real
    tensors where that is cheaper, else on the meta device, any size in about a second; or
    `model`).
    sizes: B, T for forward/backward/train; B, P, N for generate. progress and modules
    (False: no per-module counts, faster): see `count_flops_torch`.
    """
    check_request(cfg, quantity, sizes, kv_cache)
    lookup(dict.fromkeys(TENSOR_KINDS), tensors, "tensors")
    if quantity == "params":
        with shapes_only():
            n = count_parameters(model if model is not None else build_model(cfg))
        return FlopMeasurement(torch=n, tensors="real" if model is not None else "fake")
    kind = "real" if model is not None else tensors_for(cfg, quantity, sizes, kv_cache, tensors)
    with single_thread():
        if model is not None:
            measured = _count(model, quantity, sizes, kv_cache, progress=progress,
                              modules=modules)
        elif kind == "real":
            with torch.random.fork_rng():  # seeded weights; the caller's stream left as it was
                torch.manual_seed(0)
                measured = _count(build_model(cfg), quantity, sizes, kv_cache,
                                  progress=progress, modules=modules)
        elif kind == "meta":
            with torch.device("meta"):
                meta_model = build_model(cfg)
            measured = _count(meta_model, quantity, sizes, kv_cache, "meta", progress,
                              modules)
        else:
            with shapes_only():
                measured = _count(build_model(cfg), quantity, sizes, kv_cache,
                                  progress=progress, modules=modules)
        forward = (count_forward(cfg, sizes, model)
                   if second_counters and quantity == "forward" else {})
    return FlopMeasurement(torch=measured["total"], by_module=measured["by_module"],
                           forward_counts=forward, tensors=kind, by_phase=measured["by_phase"])


def backward_of(train: FlopMeasurement) -> FlopMeasurement:
    """The backward pass's count read off a train step's measurement (`measure_flops(...,
    "train")`): the FLOPs its trace ran in the backward phase. Those are the ops
    `loss.backward()` runs on its own (a step's gradients start as None, as a lone backward's
    do, so accumulation is the same), so one traced step measures both. No per-module
    counts: backward attributes modules unreliably (`analysis.reconcile`)."""
    if "optimizer" not in train.by_phase:
        raise ValueError("backward_of needs a train step's measurement (forward, backward and "
                         f"optimizer phases), not one with phases {sorted(train.by_phase)}")
    backward = train.by_phase.get("backward", 0)
    return FlopMeasurement(torch=backward, tensors=train.tensors, by_phase={"backward": backward})


def module_flops(by_module: dict[str, int], pattern: str) -> int:
    """Sum of exclusive FLOPs of the modules whose path (root name stripped) matches `pattern`."""
    own = exclusive_module_flops(by_module)
    regex = re.compile(pattern)
    return sum(n for name, n in own.items() if regex.search(name))
