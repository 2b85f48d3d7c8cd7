"""Op traces of bench workloads and model quantities, on the one tracer (`analysis.trace`).

`trace_workload(w)` traces one round of a bench workload, on real tensors when the round is
small and on fake ones otherwise; `trace_quantity(cfg, quantity, sizes)` traces a quantity of
a registered model on fake tensors (any size, nothing allocated). The events carry what
`analysis.trace.events` lists: FLOPs, bytes, shapes, layouts, phases, module paths, depth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from analysis.trace import Trace, trace


def workload_callable(workload) -> Callable[[], object]:
    """One round of a bench workload, built as `analysis.workloads.prepare` builds it but
    without moving to a device (so it also works inside `shapes_only`)."""
    from analysis.quantities import runner
    from charlm.models.registry import build_model

    w = workload
    torch.manual_seed(0)
    spec, arch = w.spec, w.arch
    if spec.kind == "attention":
        cfg = w.model_config()
        layer = arch.attention_layer(cfg.hidden, cfg.heads, w.seq_len, spec.attention).eval()
        x = torch.randn(w.batch, w.seq_len, cfg.hidden)

        def attend():
            with torch.no_grad():
                return layer(x)[0]

        return attend
    quantity, kv_cache = w.quantity
    model = build_model(w.model_config())
    if spec.impl != "homework":
        model = arch.torch_twin(model)
    return runner(model, quantity, w.sizes(), kv_cache)


REAL_TRACE_BYTES = 2**28  # below this estimated footprint a trace runs on real tensors


def footprint_estimate(workload) -> int:
    """Rough float32 bytes a round holds: 16 x the forward's weights + logits (weights,
    gradients, two Adam moments; activations), plus the attention squares."""
    from analysis.counters import forward_bytes_estimate

    w = workload
    cfg = w.model_config()
    sizes = w.sizes()
    base = 16 * forward_bytes_estimate(cfg, {"B": w.batch, "T": w.context})
    square = 4 * 8 * w.batch * (cfg.heads or 1) * w.context ** 2 if cfg.heads else 0
    return base + (cfg.layers or 1) * square + 4 * 64 * w.batch * w.context * sizes["D"]


def trace_workload(workload, fake: bool | None = None) -> Trace:
    """The ops of ONE round of a bench workload. fake None: real tensors when the round is
    small (`footprint_estimate` below REAL_TRACE_BYTES: a real small op runs faster than a
    fake one), else fake tensors (any size, nothing allocated; the same aten ops). A
    torch.nn twin (kind "reference") deep-copies weights, which fake tensors do not
    support: it always runs real."""
    import dataclasses

    from analysis.counters import single_thread
    from analysis.quantities import shapes_only

    if fake is None:
        fake = footprint_estimate(workload) >= REAL_TRACE_BYTES
    with single_thread():
        if not fake or workload.kind == "reference":
            out = trace(workload_callable(workload))
        else:
            with shapes_only():
                out = trace(workload_callable(workload), tensors="fake")
    return dataclasses.replace(out, code=code_key(workload))


def code_key(workload) -> str:
    """The key of a workload's own Python code (`Trace.code`, `Machine.code_s_per_op`): its
    variant and phase, which fix the code each round runs (its sizes do not)."""
    return f"{workload.variant}:{workload.phase}"


def trace_quantity(cfg, quantity: str, sizes: dict, kv_cache: bool = False) -> Trace:
    """The ops of `quantity` (forward, backward, train, generate) of the model `cfg`
    describes, on fake tensors (see `analysis.quantities.runner`)."""
    from analysis.counters import single_thread
    from analysis.quantities import check_request, runner, shapes_only
    from charlm.models.registry import build_model

    check_request(cfg, quantity, sizes, kv_cache)
    if quantity == "params":
        raise ValueError("params runs no ops; choose forward, backward, train or generate")
    with single_thread(), shapes_only():
        torch.manual_seed(0)
        model = build_model(cfg)
        out = trace(runner(model, quantity, sizes, kv_cache), model, tensors="fake")
    return dataclasses.replace(out, code=quantity_code(cfg, quantity, kv_cache))


def quantity_code(cfg, quantity: str, kv_cache: bool = False) -> str:
    """The code key (`code_key`) of the bench workload that runs `quantity` of the model
    `cfg` describes: the bench runs the same `analysis.quantities.runner`, so its measured
    per-op cost holds; "" when no bench workload runs it (a backward alone, an outside
    model)."""
    from analysis.workloads import PHASES, variants

    phase = next((p for p, q in PHASES.items() if q == (quantity, kv_cache)), None)
    if phase is None:
        return ""
    for v in variants().values():
        if (v.kind, v.impl, v.model, v.attention) == ("model", "homework", cfg.model,
                                                      cfg.attention):
            return f"{v.name}:{phase}"
    return ""


__all__ = ["code_key", "footprint_estimate", "quantity_code", "trace_quantity", "trace_workload",
           "workload_callable"]
