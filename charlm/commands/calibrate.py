"""charlm calibrate: measure this machine's constants for the time prediction (matmul
throughput by shape, streaming bandwidth, per-op fixed cost) from microbenchmarks only, and
write them as a machine file (JSON). Under 60 s on one CPU thread."""

from __future__ import annotations

import sys
from pathlib import Path

from charlm.commands.common import add_format_arg, add_threads_arg, emit, writes_out

EXAMPLE = """examples:
  charlm calibrate --device cpu
  charlm calibrate --device cuda --out machine-cuda.json"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="measure matmul throughput, bandwidth and per-op cost (machine file)",
        description=__doc__, epilog=EXAMPLE)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="device to calibrate")
    add_threads_arg(p, default=1, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--out", help="machine file to write (default: runs/machine/<device>-<name>-"
                                 "torch<version>-t<threads>.json, reused unless --force)")
    p.add_argument("--force", action="store_true",
                   help="calibrate again even if cached; replace an existing --out file "
                        "(without it an existing --out is refused)")
    add_format_arg(p)
    p.set_defaults(func=run)


def summary(machine) -> list[dict]:
    """The constants as rows: name, value, unit, source."""
    rows = []
    units = {"op_fixed_s": "s", "view_fixed_s": "s", "matmul_fixed_s": "s",
             "min_kernel_s": "s", "bandwidth_bytes_per_s": "B/s",
             "ceiling_flops_per_s": "FLOP/s", "module_call_s": "s", "op_autograd_s": "s",
             "op_backward_s": "s", "yardstick_s": "s"}
    for key, unit in units.items():
        rows.append({"constant": key, "value": getattr(machine, key), "unit": unit,
                     "source": machine.sources.get(key, "")})
    return rows


def announce(device: str, why: str) -> None:
    """The line on stderr before a calibration: why, and its planned length."""
    from analysis.calibrate import planned_seconds

    print(f"calibrating this machine ({why}): at least {planned_seconds(device):.0f} s of "
          f"timed matmuls, and the other microbenchmarks", file=sys.stderr)


@writes_out("file")
def run(args) -> int:
    from charlm.validate import check_device, positive_int

    check_device(args.device)
    positive_int("threads", args.threads)
    from analysis.calibrate import cached_machine, default_cache_path

    path = Path(args.out or default_cache_path(args.device, args.threads))
    fresh = args.force or bool(args.out) or not path.is_file()
    if fresh:
        announce(args.device, f"into {path}" if path.is_file() or args.out
                 else f"no machine file at {path} yet")
    machine = cached_machine(args.device, args.threads, path=path, force=fresh)
    if not fresh:
        print(f"reusing the machine file {path} (calibrated {machine.date}); calibrate again "
              f"with charlm calibrate --force", file=sys.stderr)
    if args.format == "table":
        print(f"machine {machine.device} {machine.name}, torch {machine.torch}, "
              f"threads {machine.threads}, float32, {machine.date}: {path}")
    emit(summary(machine), args.format)
    return 0
