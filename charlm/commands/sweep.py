"""charlm sweep: time a bench grid in shards, on a SLURM cluster (one job array, from a
generated sbatch script kept in DIR) or here (one shard after another, or one per GPU);
wait with a line per finished shard, merge the shards' JSON into DIR/merged.json (missing
workloads listed) and build the report's bench tables and REPORT.md under DIR/report.
Each shard runs alone on its node (--exclusive, the default), with its thread count set,
and records its node. A shard stopped by SIGTERM (scancel, time limit, preemption) writes
what it finished; --resume DIR resubmits only the workloads no shard timed. While it runs, the
command holds DIR's lock: a second sweep, collect or resume of DIR is refused at once."""

from __future__ import annotations

import shlex
from pathlib import Path

from charlm.commands.common import add_threads_arg

EXAMPLE = """examples:
  charlm sweep --grid default --shards 8 --executor slurm --partition gpu --gpus-per-task 1 \\
      --device cuda --time 60 --out runs/sweep/gpu
  charlm sweep --grid my_grid.toml --shards 3 --executor local --out runs/sweep/here
  charlm sweep --collect runs/sweep/gpu       # after --no-wait
  charlm sweep --resume runs/sweep/gpu        # only the missing workloads"""


def register(subparsers):
    p = subparsers.add_parser("sweep", help="sharded bench sweeps on SLURM or here; merge, resume",
                              description=__doc__, epilog=EXAMPLE)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--out", type=Path, help="new sweep folder (plan, logs, shard JSONs, "
                                               "merged.json, report/)")
    what.add_argument("--collect", type=Path, metavar="DIR",
                      help="merge and report a sweep submitted with --no-wait")
    what.add_argument("--resume", type=Path, metavar="DIR",
                      help="resubmit only the workloads no shard of DIR timed")
    p.add_argument("--grid", default="default",
                   help="quick, default, full, or a grid file FILE.toml (analysis/grids.py)")
    p.add_argument("--shards", type=int, default=1, help="how many shards (array tasks)")
    p.add_argument("--executor", choices=["slurm", "local"], default="slurm",
                   help="slurm: one job array through sbatch; local: here, one at a time")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    add_threads_arg(p, default=1, help="CPU threads of each shard (torch and OMP_NUM_THREADS; "
                                       "SLURM --cpus-per-task)")
    p.add_argument("--partition", help="SLURM partition (default: the cluster's default)")
    p.add_argument("--gpus-per-task", type=int, help="SLURM GPUs per shard")
    p.add_argument("--time", type=int, metavar="MIN", help="SLURM time limit per shard, minutes")
    p.add_argument("--exclusive", action="store_true", default=True,
                   help="each shard alone on its node (the default)")
    p.add_argument("--shared", dest="exclusive", action="store_false",
                   help="let shards share nodes (timings may disturb each other)")
    p.add_argument("--gpus", type=int, help="local: run this many shards at once, one per GPU")
    p.add_argument("--machine", type=Path,
                   help="a bench JSON of the machine: shards balanced by its times "
                        "(default: by count)")
    p.add_argument("--bench-args", default="",
                   help="extra arguments of each shard's pytest, one string "
                        "(e.g. \"--charlm-budget 0.2\")")
    p.add_argument("--no-wait", action="store_true",
                   help="SLURM: submit and return; later charlm sweep --collect DIR")
    p.add_argument("--no-report", action="store_true", help="merge only, no report")
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge shards of different commits, devices, torch versions or threads")
    p.set_defaults(func=run)


def run(args) -> int:
    from charlm.io import output_lock

    folder = args.collect or args.resume or args.out
    if folder is None:
        raise ValueError("give --out DIR for a new sweep, or --collect / --resume DIR")
    with output_lock(folder):
        return _sweep(args)


def _sweep(args) -> int:
    from analysis.sweep import SweepConfig, collect, resume, sweep

    folder = args.collect or args.resume or args.out
    if args.collect is not None:
        merged = collect(args.collect, allow_mixed=args.allow_mixed)
    elif args.resume is not None:
        merged = resume(args.resume, wait=not args.no_wait, allow_mixed=args.allow_mixed)
    else:
        cfg = SweepConfig(out=args.out, grid=args.grid, shards=args.shards,
                          executor=args.executor, device=args.device, threads=args.threads,
                          partition=args.partition, gpus_per_task=args.gpus_per_task,
                          time_min=args.time, exclusive=args.exclusive, gpus=args.gpus,
                          machine=str(args.machine) if args.machine else None,
                          pytest_args=tuple(shlex.split(args.bench_args)))
        merged = sweep(cfg, wait=not args.no_wait, allow_mixed=args.allow_mixed)
    if merged is not None and not args.no_report:
        _report(Path(folder))
    return 1 if merged is not None and merged.missing else 0


def _report(folder: Path) -> None:
    """The report's bench tables and REPORT.md of the merged shards, under DIR/report."""
    from analysis.report import ReportConfig, build_report

    status = build_report(ReportConfig(out=folder / "report", bench_json=folder / "merged.json",
                                       stages=("environment", "bench", "markdown")))
    print(f"report: {folder / 'report' / 'REPORT.md'} "
          f"({', '.join(f'{r.stage} {r.status}' for r in status.itertuples())})")
