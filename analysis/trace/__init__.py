"""One op trace for every analysis (see `analysis.trace.recorder`): `trace(fn, model)` runs a
callable under the project's one dispatch-mode tracer and returns its events."""

from analysis.trace.events import KINDS, OpEvent, Trace
from analysis.trace.formulas import counter_notes, cpu_sdpa_mapping, flop_formulas
from analysis.trace.recorder import (
    Tracer,
    is_view_op,
    matmul_layout,
    op_name,
    scan_steps,
    storage_key,
    tensors_in,
    trace,
)

__all__ = ["KINDS", "OpEvent", "Trace", "Tracer", "counter_notes", "cpu_sdpa_mapping",
           "flop_formulas", "is_view_op", "matmul_layout", "op_name",
           "scan_steps", "storage_key", "tensors_in", "trace"]
