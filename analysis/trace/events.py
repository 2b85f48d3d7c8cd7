"""The events of an op trace (`analysis.trace.recorder`) and the totals every analysis reads.

One `OpEvent` per dispatched aten op:

- ``name`` ("addmm"), ``kind``: "matmul" (an op with a FLOP formula: `trace.formulas`),
  "view" (metadata only: no kernel on a GPU), "alloc" (`empty`-like: nothing written) or
  "elementwise" (everything else that moves data: pointwise, reductions, copies, indexing,
  optimizer updates);
- ``flops``: PyTorch's formula with the project's CPU SDPA mapping, 2 per multiply-add;
- ``bytes``: inputs read plus outputs written, unfused, the storage bytes (numel x item
  size) of every distinct tensor argument and returned tensor (``read_bytes`` and
  ``written_bytes`` apart); views, allocations and size queries move 0;
- ``fresh``: bytes of each output the op allocates (not an input written in place, not an
  ``out=`` tensor), for matmul and elementwise ops;
- ``shapes``, ``dtypes`` (tensor arguments, in order), ``out_shapes``;
- ``layout``: matmuls, "n" or "t" per operand of the product, "t" for a transposed view;
  scan ops (cumsum, logcumsumexp...), "c" for a scan along the innermost dim in memory, "s"
  for one across a stride;
- ``inputs``: per tensor argument, (schema argument name, producer) where the producer is
  (event index, output index) of the op whose result the tensor holds now (its maker, or a
  later in-place write to its storage), None for a tensor made outside the trace; ``written``:
  the positions in ``inputs`` the op writes (in place, ``out=``); ``results``: the results it
  makes (outputs, or 1 for an in-place op returning nothing);
- ``depth``: the op's place on the longest chain of data-moving ops (views weigh 0);
- ``scan``: combining steps of a parallel-scan op (ceil(log2 n) over n positions), else 0;
- ``params``: names of the traced model's parameters among its arguments (views included);
- ``phase``: forward, backward (the autograd engine runs it) or optimizer (inside an
  `Optimizer.step`); ``records_graph``: a forward op that records an autograd graph;
- ``module``: the innermost module of the traced model running it ("" for none; backward
  ops as PyTorch's module tracker attributes them), ``modules``: every module active;
- ``fused``: inside a fused torch.nn recurrence (`nn.RNNBase`: one cuDNN call on CUDA);
- ``live_bytes``: with memory tracking, bytes of storages made during the trace and alive
  after the op (None without).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

KINDS = ("matmul", "elementwise", "view", "alloc")

# ops that do multiply-adds where the trace has no formula for them: counted 0 by PyTorch's
# counter, so named as unsupported rather than left silently at 0
UNCOUNTED_PRODUCT = re.compile(r"(^|_)(mv|addmv|dot|vdot|addr|ger|outer|addbmm|einsum|"
                               r"tensordot|linear|matmul|int_mm|conv|attention|rnn|lstm|gru|transformer)"
                               r"(_|$)")


class OpEvent(NamedTuple):
    """One dispatched op (see the module docstring). A named tuple: a trace makes one per
    op, and a tuple is made several times faster than a frozen dataclass."""

    index: int
    name: str
    kind: str
    flops: int
    bytes: int
    shapes: tuple  # input tensor shapes, in argument order
    out_shapes: tuple
    depth: int
    module: str = ""
    phase: str = "forward"  # forward | backward | optimizer
    fused: bool = False
    layout: str = ""  # matmuls: "nn", "nt", "tn", "tt" (operands as stored); scans "c"/"s"
    fresh: tuple = ()
    records_graph: bool = False
    dtypes: tuple = ()
    read_bytes: int = 0
    written_bytes: int = 0
    inputs: tuple = ()  # ((argument name, (event, output) | None), ...)
    written: tuple = ()  # positions in `inputs` the op writes
    results: int = 0
    scan: int = 0
    params: tuple = ()
    modules: frozenset = frozenset()
    live_bytes: int | None = None

    def to_dict(self) -> dict:
        d = self._asdict()
        d["shapes"] = [list(s) for s in self.shapes]
        d["out_shapes"] = [list(s) for s in self.out_shapes]
        d["fresh"] = list(self.fresh)
        d["dtypes"] = [str(t).removeprefix("torch.") for t in self.dtypes]
        d["inputs"] = [[name, list(src) if src else None] for name, src in self.inputs]
        d["written"] = list(self.written)
        d["params"] = list(self.params)
        d["modules"] = sorted(self.modules)
        return d


@dataclass(frozen=True)
class Trace:
    """The ops of one run, in dispatch order, with totals."""

    ops: tuple[OpEvent, ...]
    module_calls: int = 0  # nn.Module forward calls during the run (Python-side overhead)
    fused_calls: int = 0  # calls of fused torch.nn recurrences (one cuDNN call each on CUDA)
    peak_bytes: int | None = None  # highest live_bytes (memory tracking), else None
    tensors: str = "real"  # real | fake | meta: what the traced run held
    # the Python code that issued the ops, when known (a bench workload's "variant:phase"):
    # the key of its measured per-op interpreter cost (`Machine.code_s_per_op`)
    code: str = ""

    @property
    def flops(self) -> int:
        return sum(op.flops for op in self.ops)

    @property
    def bytes(self) -> int:
        return sum(op.bytes for op in self.ops)

    def count(self, kind: str) -> int:
        return sum(1 for op in self.ops if op.kind == kind)

    @property
    def kernels(self) -> int:
        """Data-moving ops (matmul + elementwise): at least one GPU kernel each."""
        return self.count("matmul") + self.count("elementwise")

    @property
    def depth(self) -> int:
        """Longest chain of data-moving ops (views weigh 0)."""
        return max((op.depth for op in self.ops), default=0)

    def bytes_of(self, kind: str) -> int:
        return sum(op.bytes for op in self.ops if op.kind == kind)

    def by_module(self, field: str = "flops") -> dict[str, int]:
        """Per module path, `field` summed over the ops it ran, its submodules' included
        (backward too, as PyTorch's counter attributes it); "" is the whole run."""
        out: Counter = Counter()
        for op in self.ops:
            value = getattr(op, field)
            if value:
                out[""] += value
                for name in op.modules:
                    out[name] += value
        return dict(out)

    def by_phase(self, field: str = "flops") -> dict[str, int]:
        """Per phase (forward, backward, optimizer), `field` summed over the ops it ran; a
        phase that ran no op is absent."""
        out: Counter = Counter()
        for op in self.ops:
            out[op.phase] += getattr(op, field)
        return dict(out)

    def by_operator(self, field: str = "flops") -> dict[str, int]:
        out: Counter = Counter()
        for op in self.ops:
            value = getattr(op, field)
            if value:
                out[op.name] += value
        return dict(out)

    def unsupported(self) -> dict[str, int]:
        """Calls of ops that do multiply-adds the FLOP formulas do not cover (counted 0), by
        name: e.g. `mkldnn_rnn_layer` (a fused CPU recurrence), `mv`, `dot`, or
        `_transformer_encoder_layer_fwd` (torch.nn's fused encoder layer in eval mode)."""
        return dict(Counter(op.name for op in self.ops
                            if op.kind != "matmul" and UNCOUNTED_PRODUCT.search(op.name)))

    def summary(self) -> dict:
        return {"ops": len(self.ops), "kernels": self.kernels, "depth": self.depth,
                "module_calls": self.module_calls,
                "flops": self.flops, "bytes": self.bytes,
                **{f"{k}_ops": self.count(k) for k in KINDS},
                **{f"{k}_bytes": self.bytes_of(k) for k in ("matmul", "elementwise")}}


__all__ = ["KINDS", "OpEvent", "Trace", "UNCOUNTED_PRODUCT"]
