"""Input checks shared by configs, the library API and the command line (one home).

Library code raises ValueError with the name the caller used; the CLI maps it to one line.
"""

from __future__ import annotations


def positive_int(name: str, value, *, allow_none: bool = False):
    """`value` if it is a positive int (not a bool), else ValueError naming `name`.

    allow_none: None passes through (an unset size that takes a default)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def lookup(table, name, what: str = "name", choices=None):
    """table[name], or ValueError "unknown <what> 'x'; choose from a, b" (choices: the names
    to list, default the table's keys)."""
    try:
        return table[name]
    except (KeyError, TypeError):
        listed = ", ".join(choices if choices is not None else table)
        raise ValueError(f"unknown {what} {name!r}; choose from {listed}") from None


def check_device(device: str) -> str:
    """`device` if this torch can run there, else ValueError saying why: 'cuda' (and
    'cuda:N') need a torch built with CUDA and a visible GPU. Imports torch only for cuda."""
    if str(device).split(":")[0] != "cuda":
        return device
    import torch

    if not torch.cuda.is_available():
        why = ("built without CUDA" if torch.version.cuda is None
               else f"built for CUDA {torch.version.cuda}, but no GPU is visible")
        raise ValueError(f"device={str(device)!r}, but CUDA is not available in this torch "
                         f"({torch.__version__}, {why})")
    return device
