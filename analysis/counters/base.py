"""The interface of a second FLOP counter: an engine of its own that counts a forward pass
`model(*inputs)` (PyTorch's counter, the primary one, counts any callable over the op trace;
a second counter's independence from that trace is its point).

A counter is a `ForwardCounter`; what it counted is a `Count`. Counters are registered in
`analysis.counters.FORWARD_COUNTERS`, by name; every consumer (reconciliation columns, the
profile's JSON keys, the bench's extra_info, the report) loops over that registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

from torch import nn


@dataclass(frozen=True)
class Count:
    """One counter's count of one forward pass.

    total: matrix-product FLOPs at 2 per multiply-add, None when not counted (`note` says
    why); by_module: the same per module path (its submodules' included), paths as in the
    counted model's `named_modules()`; unsupported: operators doing work the counter has no
    handle for (counted 0), with their call counts, None when not counted; elementwise: its
    other work in the counter's own units, None when it counts none; by_operator: its
    per-operator counts in its own units.
    """

    total: int | None
    by_module: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] | None = None
    elementwise: int | None = None
    note: str | None = None
    by_operator: dict[str, int] = field(default_factory=dict)

    @classmethod
    def not_counted(cls, note: str) -> Count:
        return cls(total=None, note=note)

    def under(self, prefix: str) -> Count:
        """The count with its module paths read below `prefix` (a wrapper's attribute
        holding the model): "prefix.a.b" becomes "a.b", "prefix" the whole model ""; paths
        outside it are left out."""
        by_module = {}
        for name, n in self.by_module.items():
            if name == prefix or name.startswith(prefix + "."):
                by_module[name.removeprefix(prefix).removeprefix(".")] = n
        return replace(self, by_module=by_module)


class ForwardCounter(ABC):
    """A second counter of forward FLOPs.

    name: its key in the registry and in column names (`measured_<name>`, `flops_<name>`);
    description: who counts what, and in which convention (a noun phrase, e.g. "X's count of
    a traced forward, its multiply-adds doubled"); absent: why there is no count when
    `available()` is false; package: the distribution whose version a run records, if any.
    """

    name: str
    description: str
    absent: str
    package: str | None = None

    @abstractmethod
    def available(self) -> bool:
        """Whether the counter can count here (its package installed, say)."""

    @abstractmethod
    def count(self, model: nn.Module, inputs: tuple) -> Count:
        """The count of `model(*inputs)`; `model` returns one tensor (the caller wraps a
        model that returns more), and may be on the meta device with meta inputs (the
        reconciliation counts shapes only). Called only when `available()`."""

    def measure(self, model: nn.Module, inputs: tuple) -> Count:
        """`count`, or a Count saying `absent` when the counter is not available."""
        if not self.available():
            return Count.not_counted(self.absent)
        return self.count(model, inputs)

    def version(self) -> str | None:
        """The installed version of `package`, None without one or when not available."""
        if self.package is None or not self.available():
            return None
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.package)
        except PackageNotFoundError:
            return None


__all__ = ["Count", "ForwardCounter"]
