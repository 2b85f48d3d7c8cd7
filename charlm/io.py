"""Atomic file writes: write to a temporary file beside the target, then rename over it, so
an interrupted run never leaves a half-written checkpoint or table. Output locks: one writer
at a time per output folder or file (`output_lock`). JSON files read with a clear error
(`read_json_object`).

A target that cannot be written (an existing folder, a path below an existing file, a folder
without write permission, a full disk) is a ValueError that names the target path as the
caller gave it, never the temporary file's name.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """The JSON object `path` holds. FileNotFoundError when there is no such file, ValueError
    when it is not JSON or holds something other than an object; each message names `what`
    the file should be ("machine file", "bench JSON") and the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not text"
        raise ValueError(f"{path}: not a {what}: not JSON ({reason})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a {what}: it holds a JSON {type(data).__name__}, "
                         "not an object")
    return data


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


# ------------------------------------------------------------------------ output locks

LOCK_NAME = ".charlm.lock"


class OutputLocked(ValueError):
    """Another live process holds the lock on an output (`pid`: its process id, or None)."""

    def __init__(self, target: Path, pid: int | None):
        self.target, self.pid = target, pid
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"{target} is being written by another charlm process ({who}); "
                         f"wait for it to finish, or write elsewhere")


def lock_path(path: str | os.PathLike, kind: str = "folder") -> Path:
    """The lock file of an output: LOCK_NAME inside a folder; .NAME.lock beside a file."""
    path = Path(path)
    return path / LOCK_NAME if kind == "folder" else path.parent / f".{path.name}.lock"


def earlier_output(folder: str | os.PathLike) -> list[str]:
    """The names of what `folder` holds (its lock file aside), sorted; [] when it is absent."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)


@contextmanager
def output_lock(path: str | os.PathLike, kind: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on the output `path` (a folder, or a file with kind="file")
    while the block writes it; raise OutputLocked at once when another process holds it.

    The lock is an advisory flock on `lock_path(path, kind)`, which holds the holder's pid
    for the message. The kernel drops a flock when its process dies, so a lock file left by
    a killed run (its pid dead) is simply taken over. A folder this call created is removed
    again if it is still empty at the end (a run that failed before writing anything)."""
    path = Path(path)
    folder = path if kind == "folder" else path.parent
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    lock = lock_path(path, kind)
    fd = _acquire(lock, path)
    try:
        yield path
    finally:
        os.unlink(lock)  # before the unlock: a waiter that opened it retries (see _acquire)
        os.close(fd)
        if created:
            try:
                folder.rmdir()  # only if still empty
            except OSError:
                pass


def _acquire(lock: Path, target: Path) -> int:
    """An open, flock-ed descriptor of `lock` holding our pid; OutputLocked when held."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # its folder, empty, was just removed by an earlier holder
            lock.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise OutputLocked(target, pid) from None
        try:  # the file we locked may have been released and unlinked in between: retry
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
