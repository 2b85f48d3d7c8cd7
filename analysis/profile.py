"""What any PyTorch model costs at given sizes: `profile(model, inputs)`.

The model is called as `model(*inputs)` (`inputs` a tensor or a tuple of arguments); a model
returning a tuple, a dict or a Hugging Face `ModelOutput` is read by its first tensor. The
quantity is one call:

- ``forward``: `model(*inputs)` under `torch.no_grad()`;
- ``train``: forward, then backward of the output (of its sum when it is not a scalar), with
  a `torch.optim.Adam` step after it when ``optimizer="adam"`` (a fresh optimizer: its state
  is made in the step, as in a run's first step).

The model's train/eval mode is left as the caller set it. One op trace of the call
(`analysis.trace`) gives PyTorch's FLOPs (its formulas with the CPU SDPA mapping), bytes,
per-module counts and the matmul and scan depth (`analysis.depth`); a second, with memory
tracking, the peak (`analysis.timing.peak_memory`); every second counter counts the
forward on its own engine (`analysis.counters.FORWARD_COUNTERS`); a machine file
(`analysis.calibrate`) gives the predicted time (`analysis.predict`), and `measure_time` the
measured median with its 95% interval (`analysis.timing`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from analysis.calibrate import Machine, load_machine
from analysis.counters import FORWARD_COUNTERS, Count, forward_counts, not_counted
from analysis.depth import depth_of
from analysis.factories import OPTIMIZERS, QUANTITIES, check_call, first_tensor
from analysis.factories import call as runner
from analysis.predict import predict_trace
from analysis.timing import median_ci, peak_memory, recorded_environment, time_call
from analysis.trace import counter_notes, trace
from charlm.models.registry import count_parameters
from charlm.validate import check_device, lookup, positive_int

CONVENTIONS = (
    "FLOPs: 2 per multiply-add, matrix products only (PyTorch's formulas; the second "
    "counters' below); elementwise work is not counted",
    "attention: the full T x T square as the kernels compute it (no causal halving)",
    "bytes: inputs read + outputs written by every op, unfused (the op trace)",
    "peak memory: bytes of tensors made during one call and alive at once (parameters, "
    "inputs and what existed before the call not included)",
)


def module_columns() -> list[str]:
    """The columns of ProfileResult.modules: flops_<name> for every second counter."""
    return ["module", "level", "params", "flops", *(f"flops_{n}" for n in FORWARD_COUNTERS),
            "bytes"]


@dataclass(frozen=True)
class ProfileResult:
    """The cost of one call of a model (see the module docstring).

    modules: one row per module of `model.named_modules()` ("" the whole model): its nesting
    level, parameters and, with its submodules', the FLOPs and bytes of its forward ops
    (`forward_by_module`; for train too: the totals hold the backward) and each second
    counter's FLOPs, `flops_<name>` (None when it did not count).
    forward_counts: the second counters' counts (`analysis.counters.FORWARD_COUNTERS`) by
    name; a forward only (for train, a Count saying so).
    terms: the predicted time's terms (seconds, share), empty without a machine.
    unsupported: per counter ("torch" and each second counter's name), ops doing work it has
    no formula or handle for (counted 0), with their call counts; None: not counted.
    measured_ci: the 95% interval of the measured median (order statistics).
    """

    quantity: str
    optimizer: str | None
    modules: pd.DataFrame
    params: int
    flops: int
    forward_counts: dict[str, Count]
    bytes: int
    matmul_depth: int
    scan_depth: int
    depth: int
    peak_bytes: int
    unsupported: dict
    terms: pd.DataFrame
    predicted_s: float | None = None
    regime: str | None = None
    bound: str | None = None
    machine: str | None = None
    measured_s: float | None = None
    measured_ci: tuple[float, float] | None = None
    rounds: int = 0
    conventions: tuple[str, ...] = CONVENTIONS
    notes: tuple[str, ...] = ()
    environment: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Everything, JSON-ready: the frames as lists of rows; `flops_<name>` each second
        counter's total."""
        return {
            "quantity": self.quantity, "optimizer": self.optimizer, "params": self.params,
            "flops": self.flops,
            **{f"flops_{name}": c.total for name, c in self.forward_counts.items()},
            "bytes": self.bytes,
            "depth": {"matmul": self.matmul_depth, "scan": self.scan_depth,
                      "total": self.depth},
            "peak_bytes": self.peak_bytes, "predicted_s": self.predicted_s,
            "regime": self.regime, "bound": self.bound, "machine": self.machine,
            "terms": {r.term: {"seconds": r.seconds, "share": r.share}
                      for r in self.terms.itertuples()},
            "measured_s": self.measured_s,
            "measured_ci": list(self.measured_ci) if self.measured_ci else None,
            "rounds": self.rounds, "unsupported": self.unsupported,
            "modules": self.modules.astype(object).where(self.modules.notna(), None)
            .to_dict(orient="records"),
            "conventions": list(self.conventions), "notes": list(self.notes),
            "environment": self.environment,
        }


class _FirstTensor(nn.Module):
    """`model(*args)` reduced to its first tensor, for the second counters (a TorchScript
    trace, say)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args):
        return first_tensor(self.model(*args))


def _probe(model: nn.Module, args: tuple, grad: bool) -> tuple[torch.Tensor, list[str]]:
    """Run the forward once (outside any tracer): the output a profile reads, and a note on
    how it was read; ValueError when the call fails."""
    try:
        with torch.set_grad_enabled(grad):
            out = model(*args)
    except Exception as exc:  # noqa: BLE001 - the caller's model: its error, in one line
        raise ValueError(f"model(*inputs) raised {type(exc).__name__}: {exc}") from exc
    tensor = first_tensor(out)
    notes = [] if isinstance(out, torch.Tensor) else [
        f"the model returns {type(out).__name__}: its first tensor, of shape "
        f"{tuple(tensor.shape)}, is the output"]
    return tensor, notes


def _machine(machine, device: str) -> Machine | None:
    if machine is None or isinstance(machine, Machine):
        found = machine
    elif isinstance(machine, (str, os.PathLike)):
        found = load_machine(machine)
    else:
        raise ValueError(f"machine must be a Machine or a machine file path, got "
                         f"{type(machine).__name__}")
    if found is not None and found.device != torch.device(device).type:
        raise ValueError(f"machine is a {found.device} machine file; the model runs on "
                         f"{device}")
    return found


def second_counts(model: nn.Module, args: tuple, quantity: str) -> dict[str, Count]:
    """The second counters' counts of a forward `model(*args)` by name (paths the model's
    own); for train, Counts saying they count a forward only."""
    if quantity != "forward":
        return not_counted(lambda name: f"{name} counts a forward pass only")
    counts = forward_counts(_FirstTensor(model), args)
    return {name: c.under("model") for name, c in counts.items()}


def forward_by_module(tr, field: str = "flops") -> dict[str, int]:
    """Per module path, `field` summed over the forward ops run inside it, its submodules'
    included (a container never called itself, e.g. an nn.ModuleList, too); "" is the
    whole forward. Backward ops are left out: PyTorch's module tracker places them on
    whatever modules its hooks left active (a Dropout of p = 0 stays active to the end)."""
    out: Counter = Counter()
    for op in tr.ops:
        value = getattr(op, field)
        if value and op.phase == "forward":
            parts = op.module.split(".") if op.module else []
            for i in range(len(parts) + 1):
                out[".".join(parts[:i])] += value
    return dict(out)


def module_table(model: nn.Module, tr, counts: dict[str, Count]) -> pd.DataFrame:
    """One row per module (see ProfileResult.modules); counts: the second counters'."""
    flops, bytes_ = forward_by_module(tr), forward_by_module(tr, "bytes")
    rows = []
    for name, module in model.named_modules():
        rows.append({"module": name, "level": name.count(".") + 1 if name else 0,
                     "params": count_parameters(module), "flops": flops.get(name, 0),
                     **{f"flops_{n}": c.by_module.get(name, 0) if c.total is not None
                        else None for n, c in counts.items()},
                     "bytes": bytes_.get(name, 0)})
    return pd.DataFrame(rows, columns=module_columns())


def profile(model: nn.Module, inputs, quantity: str = "forward", optimizer: str | None = None,
            machine: Machine | str | os.PathLike | None = None, measure_time: bool = False,
            device: str = "cpu", rounds: int = 21, warmup: int = 3) -> ProfileResult:
    """Profile one call of `quantity` on `model(*inputs)` (see the module docstring).

    machine: a Machine or a machine file for the predicted time (None: no prediction);
    measure_time: time `rounds` calls after `warmup` untimed ones; device: where the model
    and the tensors of `inputs` are moved to before anything runs."""
    args = check_call(model, inputs)
    lookup(dict.fromkeys(QUANTITIES), quantity, "quantity")
    lookup(OPTIMIZERS, optimizer, "optimizer", [k for k in OPTIMIZERS if k])
    if optimizer and quantity != "train":
        raise ValueError(f"optimizer={optimizer!r} applies only to quantity 'train'")
    check_device(device)
    if measure_time:
        positive_int("rounds", rounds)
    found_machine = _machine(machine, device)
    model = model.to(device)
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    out, notes = _probe(model, args, grad=quantity == "train")
    if quantity == "train":
        if not out.requires_grad:
            raise ValueError("quantity 'train' needs an output that depends on parameters "
                             "requiring grad; the model's output does not")
        if out.dim():
            notes.append(f"train: backward of the output's sum (the output has shape "
                         f"{tuple(out.shape)}, not a scalar)")
        notes.append("per module: the forward ops only; the totals include the backward")
    tr = trace(runner(model, args, quantity, optimizer), model)
    depth = depth_of(tr)
    counts = second_counts(model, args, quantity)
    notes += [f"no {name} count: {c.note}" for name, c in counts.items() if c.total is None]
    predicted = predict_trace(tr, found_machine) if found_machine is not None else None
    measured: list[float] = []
    stats = None
    if measure_time:
        stats = time_call(runner(model, args, quantity, optimizer), device, rounds=rounds,
                  warmup=warmup, record=measured)
    return ProfileResult(
        quantity=quantity, optimizer=optimizer,
        modules=module_table(model, tr, counts),
        params=count_parameters(model), flops=tr.flops, forward_counts=counts, bytes=tr.bytes,
        matmul_depth=depth.matmul_depth, scan_depth=depth.scan_depth, depth=depth.depth,
        peak_bytes=peak_memory(runner(model, args, quantity, optimizer), device),
        unsupported={"torch": tr.unsupported(),
                     **{name: c.unsupported for name, c in counts.items()}},
        terms=pd.DataFrame(
            [{"term": k, **v} for k, v in (predicted or {}).get("terms", {}).items()],
            columns=["term", "seconds", "share"]),
        predicted_s=predicted["predicted_s"] if predicted else None,
        regime=predicted["regime"] if predicted else None,
        bound=predicted["bound"] if predicted else None,
        machine=(f"{found_machine.device} {found_machine.name}, torch {found_machine.torch}, "
                 f"{found_machine.threads} thread(s)") if found_machine else None,
        measured_s=stats.median if stats else None,
        measured_ci=median_ci(measured) if measured else None, rounds=len(measured),
        conventions=(*CONVENTIONS, *(f"{name}: {c.description}"
                                     for name, c in FORWARD_COUNTERS.items()),
                     *counter_notes()), notes=tuple(notes),
        environment=recorded_environment(device))


__all__ = ["CONVENTIONS", "ProfileResult", "QUANTITIES", "check_call", "first_tensor",
           "forward_by_module", "module_columns", "module_table", "profile", "runner",
           "second_counts"]
