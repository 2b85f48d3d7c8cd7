"""`charlm depth`: predicted and measured sequential matmul depth (the longest dependency
chain of matmuls) and matmul launches of one model and quantity."""

from __future__ import annotations

from charlm.commands.common import (
    add_format_arg,
    add_model_args,
    add_workload_args,
    emit,
    model_config_from_args,
)

QUANTITIES = ("forward", "backward", "train", "generate")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "depth", help="critical-path matmul depth and launches, predicted vs traced",
        description=__doc__)
    add_model_args(p, vocab=True, model_default="transformer")
    p.add_argument("--quantity", choices=QUANTITIES, default="forward")
    add_workload_args(p)
    add_format_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.depth import depth_report

    report = depth_report(model_config_from_args(args), args.quantity, batch=args.batch,
                          seq_len=args.seq_len, prompt_len=args.prompt_len,
                          new_tokens=args.new_tokens, kv_cache=args.kv_cache)
    if args.format == "json":
        emit(report, "json")
    else:
        row = {k: v for k, v in report.items() if k not in ("environment", "sizes")}
        row.update(report["sizes"])
        if args.format == "table":
            print(report["convention"])
            row.pop("convention")
        emit([row], args.format)
    return 0 if report["verdict"] == "exact" else 1
