"""The environment every printed number carries: device, library versions, threads, flags."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path

import torch

from charlm.validate import check_device

CPUINFO = Path("/proc/cpuinfo")


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def device_name(device: str | torch.device = "cpu", cpuinfo: Path | None = None) -> str:
    """What every record calls the device: a GPU's name; a CPU's marketing name ("model name"
    in /proc/cpuinfo, or `cpuinfo`), else its machine type (x86_64, arm64), else "cpu".
    ValueError for a CUDA device this torch cannot use."""
    device = torch.device(check_device(str(device)))
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model(cpuinfo or CPUINFO) or platform.machine() or "cpu"


def _cpu_model(cpuinfo: Path) -> str | None:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return " ".join(value.split())
    return None


def environment(device: str | torch.device = "cpu") -> dict:
    """A flat dict of what a measurement depends on."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "threads": torch.get_num_threads(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if cuda else None,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32 if cuda else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark if cuda else None,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
