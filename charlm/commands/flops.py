"""`charlm flops`: predicted and measured FLOPs of one model and quantity, or the reconciliation
grid written as CSV (`--grid default --out results/flops_reconciliation.csv`)."""

from __future__ import annotations

from charlm.commands.common import (
    add_format_arg,
    add_model_args,
    add_workload_args,
    emit,
    model_config_from_args,
)

QUANTITIES = ("params", "forward", "backward", "train", "generate")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flops", help="predicted vs measured FLOPs (formulas, PyTorch's counter, fvcore)",
        description=__doc__)
    add_model_args(p, vocab=True, model_default="transformer")
    p.add_argument("--quantity", choices=QUANTITIES, default="forward")
    add_workload_args(p)
    p.add_argument("--attention-count", choices=("full", "causal"), default="full",
                   help="attention square convention (counters count the full square)")
    p.add_argument("--no-measure", action="store_true", help="formulas only, no counters")
    p.add_argument("--grid", choices=("default", "quick"),
                   help="reconcile a whole grid instead of one model; needs --out")
    p.add_argument("--out", help="CSV path for --grid, e.g. results/flops_reconciliation.csv")
    add_format_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.grid:
        return _run_grid(args)
    from analysis.flops_api import flops_report, report_frame

    report = flops_report(
        model_config_from_args(args), args.quantity, batch=args.batch, seq_len=args.seq_len,
        prompt_len=args.prompt_len, new_tokens=args.new_tokens, kv_cache=args.kv_cache,
        attention_count=args.attention_count, measure=not args.no_measure)
    if args.format == "json":
        emit(report, "json")
    elif args.format == "csv":
        emit(report_frame(report), "csv")
    else:  # table: the shared columns once, above the terms
        frame = report_frame(report)
        sizes = " ".join(f"{k}={v}" for k, v in report["sizes"].items())
        print(f"{report['model']} {report['quantity']}  {sizes}")
        for tier, conv in frame.groupby("tier", sort=False)["convention"].first().items():
            print(f"{tier}: {conv}")
        print(f"formula: {report['formula']}")
        emit(frame.drop(columns=["model", "quantity", "convention"]).dropna(axis=1, how="all"),
             "table")
    return 0 if report["verdict"] in ("exact", "not measured") or \
        report["verdict"].startswith("not compared") else 1


def _run_grid(args) -> int:
    from analysis.reconcile import GRIDS, reconcile, summary, write_reconciliation

    if not args.out:
        raise ValueError("--grid needs --out PATH for the CSV")
    if args.no_measure:
        raise ValueError("--grid measures every size; drop --no-measure")
    frame = reconcile(GRIDS[args.grid]())
    write_reconciliation(frame, args.out)
    emit(summary(frame), args.format)
    return 0 if frame["verdict"].eq("exact").all() else 1
