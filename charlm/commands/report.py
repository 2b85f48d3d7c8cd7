"""`charlm report`: run the bench and the analyses in stages; write CSVs, figures and
REPORT.md under --out (default runs/report/<device>, git-ignored). The committed reference
results/reference/<device>/ is refreshed only with --reference. An --out that holds an
earlier report is refused unless --resume (skip its finished stages and cells) or --force
(redo them), and one that another report is writing (its lock) at once; an interrupted stage
leaves its previous outputs intact."""

from __future__ import annotations

import sys
from pathlib import Path

from charlm.commands.common import add_threads_arg, check_out_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="bench + analyses -> CSVs, figures and REPORT.md", description=__doc__)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path,
                       help="output folder (default runs/report/<device>, quick: "
                            "runs/report/<device>-quick)")
    where.add_argument("--reference", action="store_true",
                       help="refresh the committed reference results/reference/<device>/ "
                            "(a full run; not with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run (< 3 min on 2 CPU cores)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the report in --out: skip its finished stages and cells")
    again.add_argument("--force", action="store_true", help="redo finished stages and cells")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    add_threads_arg(p, default=1, help="CPU threads for timing (default 1)")
    p.add_argument("--bench-json", type=Path, nargs="+", metavar="JSON",
                   help="build the report from saved bench JSON(s) instead of running the "
                        "bench; several are merged as charlm merge does (not mixed)")
    p.add_argument("--train-steps", type=int, help="steps of each training run (300; quick 40)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="reproducibility check: run the paired comparisons N >= 2 times, "
                        "each in its own process, and compare the ratios (repeat.csv)")
    p.add_argument("--only", metavar="EXPR",
                   help="bench only the benchmarks matching this pytest -k expression")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="seconds of timed rounds per benchmark at most (default 1; the "
                        "minimum rounds always run)")
    p.add_argument("--compare-with", type=Path, nargs="+", metavar="DIR",
                   help="other devices' report folders to set beside this run (default: "
                        "every committed reference under results/reference/)")
    p.add_argument("--stages", nargs="+", metavar="STAGE",
                   help="run only these stages (environment ceiling bench repeat flops depth "
                        "check derive training devices calibrate figures markdown)")
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.report import Progress, ReportConfig, build_report
    from charlm.commands.common import format_table
    from charlm.validate import check_device

    check_device(args.device)
    cfg = ReportConfig(out=args.out, device=args.device, quick=args.quick, force=args.force,
                       threads=args.threads, bench_json=args.bench_json,
                       train_steps=args.train_steps, reference=args.reference,
                       repeat=args.repeat, only=args.only, budget=args.budget,
                       compare_with=tuple(args.compare_with) if args.compare_with else None,
                       stages=tuple(args.stages) if args.stages else None)
    from charlm.io import output_lock

    check_only(cfg)
    with output_lock(cfg.out):
        check_out_path(cfg.out, "folder", args.force, args.resume)
        status = build_report(cfg, progress=Progress(sys.stdout))
    print(format_table(status[["stage", "status", "seconds"]]))
    print(f"report: {cfg.out / 'REPORT.md'}")
    return 0 if status["status"].eq("done").all() else 1


def check_only(cfg) -> None:
    """ValueError, before any stage runs, when --only matches no benchmark the bench would
    time (pytest collects them: a few seconds) or is no -k expression; the message lists the
    words the benchmarks' names are made of."""
    if not cfg.only or cfg.bench_json is not None or \
            (cfg.stages is not None and not {"bench", "repeat"} & set(cfg.stages)):
        return
    code, ids, text = _collect(cfg, ["-k", cfg.only])
    if code == 0 and ids:
        return
    if code != 5:  # pytest's "no tests collected"; anything else: the expression is wrong
        lines = [ln for ln in text.splitlines() if ln.startswith("ERROR")] or [text.strip()]
        raise ValueError(f"--only {cfg.only!r}: {lines[0]}")
    _, ids, _ = _collect(cfg, [])
    words = sorted({w for i in ids for w in i.split("-") if w.isalpha()})
    raise ValueError(f"--only {cfg.only!r} matches no benchmark of the {cfg.grid} grid on "
                     f"{cfg.device}; a pytest -k expression of the words in their names: "
                     f"{', '.join(words)} (e.g. --only 'gru and train')")


def _collect(cfg, extra: list[str]) -> tuple[int, list[str], str]:
    """pytest's exit code, the benchmark ids and its output for the bench's command line
    (without its -k) collecting only."""
    import re
    import subprocess
    import tempfile
    from dataclasses import replace

    from analysis.report.config import REPO
    from analysis.report.pipeline import bench_command

    with tempfile.TemporaryDirectory() as tmp:
        cmd = bench_command(replace(cfg, only=None), Path(tmp) / "collect.json")
        proc = subprocess.run([*cmd, "--collect-only", "-q", *extra], cwd=REPO, text=True,
                              capture_output=True)
    text = proc.stdout + proc.stderr
    return proc.returncode, re.findall(r"\[([^\]\s]+)\]", proc.stdout), text
