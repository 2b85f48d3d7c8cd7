"""Model factories: any model, at any sizes, as `charlm profile` and `charlm derive` take it.

A factory is a Python function taking sizes as keyword arguments and returning
`(model, inputs)`, the model called as `model(*inputs)` (inputs a tensor or a tuple of
arguments). A TARGET names one: `FILE.py:FUNC` (FILE is the user's own code, loaded by path
and run, as by `python FILE.py`, because they ask for it), or a built-in model's name, whose
factory is its architecture table entry (`analysis.architectures.Architecture.factory`).

One call of a factory's model is a quantity (`call`):

- ``forward``: `model(*inputs)` under `torch.no_grad()`;
- ``train``: forward, then backward of the output (of its sum when it is not a scalar), with
  a `torch.optim.Adam` step after it when ``optimizer="adam"`` (a fresh optimizer: its state
  is made in the step, as in a run's first step).

Below the analyses that take a factory (`analysis.derive`, `analysis.profile`) and the CLI.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from analysis.architectures import ARCHITECTURES, architecture
from analysis.trace import tensors_in

QUANTITIES = ("forward", "train")
OPTIMIZERS = {None: None, "adam": torch.optim.Adam}


def load_factory(target: str) -> tuple[Callable, str]:
    """(factory, label) for TARGET: a built-in model's table entry, or FUNC of FILE.py
    (FILE loaded by path and run). ValueError for a missing file or function."""
    if target in ARCHITECTURES:
        return architecture(target).factory, target
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(f"TARGET {target!r}: give FILE.py:FUNC (a model factory) or a "
                         f"built-in model: {', '.join(ARCHITECTURES)}")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"TARGET {target!r}: no file {file}")
    module = _load_file(file)
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(k for k, v in vars(module).items()
                       if inspect.isfunction(v) and v.__module__ == module.__name__)
        raise ValueError(f"TARGET {target!r}: {file} has no function {name}"
                         + (f"; its functions: {', '.join(found)}" if found else ""))
    return factory, target


def _load_file(file: Path):
    spec = importlib.util.spec_from_file_location(f"charlm_factory_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {file} as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: its error, in one line
        raise ValueError(f"loading {file} raised {type(exc).__name__}: {exc}") from exc
    return module


def factory_sizes(factory: Callable) -> dict[str, object] | None:
    """The sizes a factory takes by keyword, with their defaults (inspect.Parameter.empty
    for a size it needs); None when it takes **kwargs (any name)."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name: p.default for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def takes_text(label: str, named: dict) -> str:
    return ", ".join(f"{k}={v}" if v is not inspect.Parameter.empty else k
                     for k, v in named.items()) or "none"


def check_sizes(factory: Callable, label: str, sizes: dict, flag: str = "--size") -> None:
    """ValueError for a size the factory's signature does not take, or a size it needs
    that `sizes` does not give (`flag`: how the user gives a size, for the message)."""
    named = factory_sizes(factory)
    if named is None:
        return
    unknown = [k for k in sizes if k not in named]
    if unknown:
        raise ValueError(f"{flag} {unknown[0]}: {label} takes no size {unknown[0]}; its "
                         f"sizes: {takes_text(label, named)}")
    missing = [k for k, d in named.items() if d is inspect.Parameter.empty and k not in sizes]
    if missing:
        raise ValueError(f"{label} needs {flag} {missing[0]}=N; its sizes: "
                         f"{takes_text(label, named)}")


def build(factory: Callable, label: str, sizes: dict, flag: str = "--size") -> tuple:
    """(model, inputs) the factory returns; ValueError when it raises or returns anything
    else."""
    check_sizes(factory, label, sizes, flag)
    try:
        made = factory(**sizes)
    except Exception as exc:  # noqa: BLE001 - the user's factory: its error, in one line
        raise ValueError(f"{label} raised {type(exc).__name__}: {exc}") from exc
    if not (isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], nn.Module)):
        got = type(made[0] if isinstance(made, tuple) and made else made).__name__
        raise ValueError(f"{label} must return (model, inputs) with model a torch.nn.Module, "
                         f"got {got}")
    return made


def check_call(model, inputs) -> tuple:
    """The arguments `model(*args)` takes: `inputs` as a tuple; ValueError for a model that
    is not an nn.Module or inputs that are neither a tensor nor a tuple."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, tuple):
        return inputs
    raise ValueError(f"inputs must be a tensor or a tuple of arguments for model(*inputs), "
                     f"got {type(inputs).__name__}")


def first_tensor(out) -> torch.Tensor:
    """The output a quantity reads: `out` if a tensor, else the first tensor in it."""
    found = tensors_in(out)
    if not found:
        raise ValueError(f"the model returned {type(out).__name__} with no tensor in it")
    return found[0]


def call(model: nn.Module, args: tuple, quantity: str, optimizer: str | None = None
         ) -> Callable[[], object]:
    """One call of `quantity` (see the module docstring); train makes a fresh optimizer."""
    if quantity == "forward":
        def forward():
            with torch.no_grad():
                return model(*args)
        return forward
    if quantity != "train":
        raise ValueError(f"unknown quantity {quantity!r} for a model factory; choose from "
                         f"{', '.join(QUANTITIES)}")
    opt = OPTIMIZERS[optimizer](model.parameters()) if optimizer else None

    zero_grad = opt.zero_grad if opt is not None else model.zero_grad

    def train():
        zero_grad(set_to_none=True)
        out = first_tensor(model(*args))
        (out if out.dim() == 0 else out.sum()).backward()
        if opt is not None:
            opt.step()
    return train


__all__ = ["OPTIMIZERS", "QUANTITIES", "build", "call", "check_call", "check_sizes",
           "factory_sizes", "first_tensor", "load_factory"]
