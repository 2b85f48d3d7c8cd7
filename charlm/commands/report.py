"""`charlm report`: run the bench and the analyses in stages; write CSVs, figures and
REPORT.md under --out (default runs/report/<device>, git-ignored). The committed reference
results/reference/<device>/ is refreshed only with --reference. A re-run skips finished
stages and cells unless --force; an interrupted stage leaves its previous outputs intact."""

from __future__ import annotations

import sys
from pathlib import Path


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
    p.add_argument("--force", action="store_true", help="redo finished stages and cells")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for timing (default 1)")
    p.add_argument("--bench-json", type=Path,
                   help="build the report from this saved bench JSON instead of running the bench")
    p.add_argument("--train-steps", type=int, help="steps of each training run (300; quick 40)")
    p.add_argument("--stages", nargs="+", metavar="STAGE",
                   help="run only these stages (environment ceiling bench flops depth check "
                        "training figures markdown)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from analysis.report import Progress, ReportConfig, build_report

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but CUDA is not available")
    cfg = ReportConfig(out=args.out, device=args.device, quick=args.quick, force=args.force,
                       threads=args.threads, bench_json=args.bench_json,
                       train_steps=args.train_steps, reference=args.reference,
                       stages=tuple(args.stages) if args.stages else None)
    status = build_report(cfg, progress=Progress(sys.stdout))
    for row in status.itertuples(index=False):
        print(f"{row.stage:12s} {row.status:10.200s} {row.seconds:8.1f} s")
    print(f"report: {cfg.out / 'REPORT.md'}")
    return 0 if status["status"].eq("done").all() else 1
