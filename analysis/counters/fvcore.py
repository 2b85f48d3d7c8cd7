"""fvcore's `FlopCountAnalysis` as a second counter (a TorchScript trace of a forward pass).

It counts one per multiply-add, so its matmul operators (FVCORE_MATMUL_OPS) are doubled; it
has no handle for `aten::scaled_dot_product_attention`, so we add one (the full square); it
counts LayerNorm & co. as elementwise work, which is reported apart from its matmul
operators; unsupported operators are listed, not dropped. fvcore is optional (absent on the
GPU machines): its counts are not made there, and say so.
"""

from __future__ import annotations

import functools
import logging
import warnings

from torch import nn

from analysis.counters.base import Count, ForwardCounter
from analysis.formulas import FLOPS_PER_MULTIPLY_ADD

# fvcore operators that are matmuls (after `by_operator()` strips the "aten::" prefix).
FVCORE_MATMUL_OPS = frozenset(
    {"addmm", "bmm", "matmul", "mm", "linear", "einsum", "scaled_dot_product_attention"}
)

# The message torch (2.10+) gives when fvcore.nn's focal-loss module calls torch.jit.script at
# import ("`torch.jit.script` is deprecated. Please switch to ..."); older torch says nothing.
FVCORE_IMPORT_WARNING = r"`?torch\.jit\.script`? is deprecated"


@functools.lru_cache(maxsize=1)
def _fvcore_analysis_class():
    """fvcore's FlopCountAnalysis, or None when fvcore is not installed.

    `import fvcore.nn` emits "torch.jit.script is deprecated" DeprecationWarnings from its
    focal-loss module on recent torch; that message only is filtered, at import only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=FVCORE_IMPORT_WARNING,
                                category=DeprecationWarning)
        try:
            from fvcore.nn import FlopCountAnalysis
        except ImportError:
            return None
    return FlopCountAnalysis


def _sdpa_handle(inputs, outputs) -> int:
    """Multiply-adds of aten::scaled_dot_product_attention: q @ k^T and att @ v, full square."""
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    batch_heads = 1
    for n in q[:-2]:
        batch_heads *= n
    tq, hd, s, hdv = q[-2], q[-1], k[-2], v[-1]
    return batch_heads * tq * s * (hd + hdv)


def _matmul_flops(by_op: dict) -> int:
    return FLOPS_PER_MULTIPLY_ADD * sum(int(n) for op, n in by_op.items()
                                        if op in FVCORE_MATMUL_OPS)


class Fvcore(ForwardCounter):
    name = "fvcore"
    description = ("fvcore's FlopCountAnalysis (its own TorchScript trace of the forward; "
                   "its matmul operators, one per multiply-add, doubled to 2 FLOPs per "
                   "multiply-add)")
    absent = "fvcore is not installed"
    package = "fvcore"

    def available(self) -> bool:
        return _fvcore_analysis_class() is not None

    def count(self, model: nn.Module, inputs: tuple) -> Count:
        """fvcore's count: by_module its matmul operators doubled, elementwise its other
        handled operators (e.g. layer_norm at 5 per element, in fvcore's units: no
        multiply-adds there to double), by_operator in fvcore's units."""
        analysis = _fvcore_analysis_class()(model, inputs)
        analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_handle)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        fvcore_log = logging.getLogger("fvcore")
        level = fvcore_log.level
        fvcore_log.setLevel(logging.ERROR)  # tracing notes go to logging; we return them
        try:
            by_op = {op: int(n) for op, n in analysis.by_operator().items()}
            by_module = {m: _matmul_flops(ops)
                         for m, ops in analysis.by_module_and_operator().items()}
            unsupported = dict(sorted(analysis.unsupported_ops().items()))
        finally:
            fvcore_log.setLevel(level)
        return Count(total=_matmul_flops(by_op), by_module=by_module, unsupported=unsupported,
                     elementwise=sum(n for op, n in by_op.items()
                                     if op not in FVCORE_MATMUL_OPS),
                     by_operator=by_op)


COUNTER = Fvcore()
