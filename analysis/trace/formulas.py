"""FLOP formulas of the op trace: PyTorch's own (`torch.utils.flop_counter`'s registry, 2 FLOPs
per multiply-add) plus the project's mapping of the CPU flash-attention kernels.

On CPU, `F.scaled_dot_product_attention` runs `aten._scaled_dot_product_flash_attention_for_cpu`
(and `..._backward`), which PyTorch's counter has no formula for and counts as 0. The trace
gives them PyTorch's own SDPA formulas (the full T x T square; backward 5 matmuls), guarded
for torch 2.4-2.13.

One definition of a matmul for every analysis: an op with a formula here (the trace's
event kind "matmul"). Fused attention kernels have one too; depth weighs them by the
matmuls they stand for (`analysis.depth`).
"""

from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import flop_registry, shape_wrapper


@functools.lru_cache(maxsize=1)
def cpu_sdpa_mapping() -> dict:
    """{op overload packet: formula over shapes} for the CPU flash-attention kernels, in the
    form `FlopCounterMode(custom_mapping=...)` takes. Empty where this torch has neither the
    kernels nor the formulas (`counter_notes()` then says so)."""
    try:  # not in torch.utils.flop_counter.__all__: guard the import
        from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count
    except ImportError:
        return {}
    aten = torch.ops.aten
    fwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)

    def forward_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    def backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args,
                       out_shape=None, **kwargs):
        return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)

    mapping = {}
    if fwd is not None:
        mapping[fwd] = forward_flops
    if bwd is not None:
        mapping[bwd] = backward_flops
    return mapping


def counter_notes() -> list[str]:
    """What the trace's FLOP count adds to PyTorch's counter, in one line each."""
    if len(cpu_sdpa_mapping()) == 2:
        return ["CPU flash-attention kernels counted with torch's SDPA formulas (full square)"]
    return ["this torch lacks the CPU SDPA kernels or formulas: flash attention may count 0 on "
            "CPU"]


@functools.lru_cache(maxsize=1)
def flop_formulas() -> dict:
    """{op overload packet: formula(*args, **kwargs, out_val=out) -> FLOPs}."""
    formulas = dict(flop_registry)
    for op, fn in cpu_sdpa_mapping().items():
        formulas[op] = shape_wrapper(fn)
    return formulas


@functools.lru_cache(maxsize=1)
def shape_formulas() -> dict:
    """{op overload packet: (formula, on_shapes)}. on_shapes: the formula before PyTorch's
    `shape_wrapper` (which maps every argument to its shape with pytree), to be called on
    the shapes (`recorder.shapes_of` maps them at a fraction of pytree's cost); otherwise
    (a formula registered raw) it is called on the tensors as they are."""
    out = {}
    for op, fn in flop_formulas().items():
        raw = getattr(fn, "__wrapped__", None)
        out[op] = (raw, True) if raw is not None else (fn, False)
    return out


__all__ = ["counter_notes", "cpu_sdpa_mapping", "flop_formulas", "shape_formulas"]
