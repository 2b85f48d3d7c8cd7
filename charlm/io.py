"""Atomic file writes: write to a temporary file beside the target, then rename over it,
so an interrupted run never leaves a half-written checkpoint or table.

A target that cannot be written (an existing folder, a path below an existing file, a folder
without write permission, a full disk) is a ValueError that names the target path as the
caller gave it, never the temporary file's name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _refuse(path: Path) -> None:
    """ValueError when `path` cannot become a file: it is a folder, or lies below a file."""
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder, and a file is expected there")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write {path}: {parent} is a file, not a folder")
            return


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` then move tmp_path to `path` in one rename."""
    path = Path(path)
    _refuse(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        # mkstemp creates 0600; results and checkpoints are ordinary files (0644 less umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_to_csv(frame, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame as CSV atomically."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def figure_format(path: str | os.PathLike) -> str:
    """The format `path`'s suffix names among those matplotlib writes (png, pdf, svg, ...),
    else ValueError naming the path and listing them."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = Path(path).suffix
    if suffix.lower().lstrip(".") not in formats:
        what = f"{suffix} is not a figure format" if suffix else "no suffix names its format"
        raise ValueError(f"{path}: {what}; matplotlib writes "
                         f"{', '.join('.' + f for f in formats)}")
    return suffix.lower().lstrip(".")


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically, in the format its suffix names."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=figure_format(path),
                                                      **kwargs))


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
