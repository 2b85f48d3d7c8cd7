"""charlm calibrate: measure this machine's constants for the time prediction (matmul
throughput by shape, streaming bandwidth, per-op fixed cost) from microbenchmarks only, and
write them as a machine file (JSON). On one CPU thread of this project's 2-core VM (others
working beside it) the command took 26 s with the default 3 passes, 10-11 s with --passes 1
(what `charlm report --quick` runs)."""

from __future__ import annotations

import sys
from pathlib import Path

from charlm.commands.common import add_format_arg, add_threads_arg, emit, format_number, writes_out

EXAMPLE = """examples:
  charlm calibrate --device cpu
  charlm calibrate --device cuda --out machine-cuda.json
  charlm calibrate --passes 1 --out short.json      # what `charlm report --quick` runs
  charlm calibrate --compare short.json long.json   # short's constants in long's noise"""
PASSES = 3  # mirrors analysis.calibrate.PASSES (checked by a test): --help imports no torch


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="measure matmul throughput, bandwidth and per-op cost (machine file)",
        description=__doc__, epilog=EXAMPLE)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="device to calibrate")
    add_threads_arg(p, default=1, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--passes", type=int, metavar="N",
                   help=f"passes through every microbenchmark, the median kept (default: "
                        f"{PASSES}; another count is cached under its own name, ...-p<N>.json)")
    p.add_argument("--out", help="machine file to write (default: runs/machine/<device>-<name>-"
                                 "torch<version>-t<threads>.json, reused unless --force)")
    p.add_argument("--compare", nargs=2, metavar=("SHORT", "LONG"),
                   help="calibrate nothing: compare two machine files of this machine, each "
                        "scalar constant of SHORT (at LONG's pace) against LONG's value and "
                        "its range over LONG's passes, and their matmul tables' |log ratio|")
    p.add_argument("--force", action="store_true",
                   help="calibrate again even if cached; replace an existing --out file "
                        "(without it an existing --out is refused)")
    add_format_arg(p)
    p.set_defaults(func=run)


def summary(machine) -> list[dict]:
    """The constants as rows: name, value, unit, lowest and highest over the passes (empty
    for one pass), source."""
    rows = []
    units = {"op_fixed_s": "s", "view_fixed_s": "s", "matmul_fixed_s": "s",
             "min_kernel_s": "s", "bandwidth_bytes_per_s": "B/s",
             "ceiling_flops_per_s": "FLOP/s", "module_call_s": "s", "op_autograd_s": "s",
             "op_backward_s": "s", "yardstick_s": "s"}
    for key, unit in units.items():
        low, high = machine.pass_range.get(key, (None, None))
        rows.append({"constant": key, "value": getattr(machine, key), "unit": unit,
                     "pass_min": low, "pass_max": high,
                     "source": machine.sources.get(key, "")})
    return rows


def announce(device: str, why: str, passes: int = PASSES) -> None:
    """The line on stderr before a calibration: why, and its planned length."""
    from analysis.calibrate import planned_seconds

    print(f"calibrating this machine ({why}): at least "
          f"{planned_seconds(device, passes=passes):.0f} s of timed matmuls in "
          f"{passes_text(passes)}, and the other microbenchmarks", file=sys.stderr)


def stale_reason(path, stale: list[str]) -> str:
    return (f"the machine file at {path} predates {', '.join(stale)}; rewritten with them")


def passes_text(passes: int | None) -> str:
    return "passes unrecorded" if passes is None else \
        f"{passes} pass{'es' * (passes != 1)}"


def compare(args) -> int:
    """--compare SHORT LONG: the two tables of analysis.calibrate.compare_machines and
    compare_tables (json: {"constants": rows, "matmul": rows}; csv: the rows of both)."""
    import pandas as pd

    from analysis.calibrate import compare_machines, compare_tables, load_machine

    mixed = sorted({"out", "force", "passes", "device", "threads"} & args.given)
    if mixed:
        raise ValueError(f"--compare reads two machine files and calibrates nothing; leave "
                         f"out --{mixed[0]}")
    machines = []
    for path in args.compare:
        try:
            machines.append(load_machine(path))
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"--compare: {exc}") from None
    short, long = machines
    constants, tables = compare_machines(short, long), compare_tables(short, long)
    if args.format == "json":
        emit({"constants": constants.to_dict("records"), "matmul": tables.to_dict("records")},
             "json")
        return 0
    if args.format == "csv":
        emit(pd.concat([constants, tables], ignore_index=True), "csv")
        return 0
    for label, path, m in zip(("short", "long"), args.compare, machines):
        print(f"{label}: {path} ({passes_text(m.passes)}, {m.date or 'undated'}, "
              f"yardstick {format_number(m.yardstick_s)} s)")
    emit(constants, "table")
    print()
    emit(tables, "table")
    return 0


def run(args) -> int:
    return compare(args) if args.compare else measure(args)


@writes_out("file")
def measure(args) -> int:
    """Calibrate into --out, or into the cache (reused unless --force)."""
    from charlm.validate import check_device, positive_int

    check_device(args.device)
    positive_int("threads", args.threads)
    passes = positive_int("passes", PASSES if args.passes is None else args.passes)
    from analysis.calibrate import cached_machine, default_cache_path, stale_fields
    from analysis.predict import measure_code_costs

    path = Path(args.out or default_cache_path(args.device, args.threads, passes))
    stale = stale_fields(path)
    fresh = args.force or bool(args.out) or not path.is_file() or bool(stale)
    if fresh:
        announce(args.device, f"into {path}" if args.force or args.out
                 else stale_reason(path, stale) if stale
                 else f"no machine file at {path} yet", passes)
    machine = cached_machine(args.device, args.threads, path=path, force=fresh, passes=passes,
                             code_costs=measure_code_costs)
    if not fresh:
        print(f"reusing the machine file {path} (calibrated {machine.date}); calibrate again "
              f"with charlm calibrate --force", file=sys.stderr)
    if args.format == "table":
        print(f"machine {machine.device} {machine.name}, torch {machine.torch}, "
              f"threads {machine.threads}, float32, {passes_text(machine.passes)}, "
              f"{machine.date}: {path}")
    emit(summary(machine), args.format)
    return 0
