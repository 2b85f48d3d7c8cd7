"""charlm depth: predicted and measured sequential matmul depth (the longest chain of matmuls
that must run one after another) and matmul launches of one model and quantity, traced from
the real dependency graph (forward, autograd's backward and sampling)."""

from __future__ import annotations

from itertools import groupby

from charlm.commands.common import (
    TABLE_WIDTH,
    add_format_arg,
    add_model_args,
    add_threads_arg,
    add_workload_args,
    emit,
    fit,
    format_table,
    model_config_from_args,
    refuse_unused_sizes,
    use_threads,
)

QUANTITIES = ("forward", "backward", "train", "generate")

EXAMPLE = """examples:
  charlm depth --model mlrnn --layers 3 --seq-len 6 --quantity train
  charlm depth --model transformer --quantity generate --prompt-len 4 --new-tokens 8"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "depth", help="critical-path matmul depth and launches, predicted vs traced",
        description=__doc__, epilog=EXAMPLE)
    add_model_args(p, vocab=True, model_default="transformer")
    p.add_argument("--quantity", choices=QUANTITIES, default="forward",
                   help="forward, backward, train (forward + backward), or generate "
                        "(--new-tokens after --prompt-len)")
    add_workload_args(p)
    add_threads_arg(p)
    add_format_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    use_threads(args.threads)
    from analysis.depth import depth_report

    refuse_unused_sizes(args)
    report = depth_report(model_config_from_args(args), args.quantity, batch=args.batch,
                          seq_len=args.seq_len, prompt_len=args.prompt_len,
                          new_tokens=args.new_tokens, kv_cache=args.kv_cache)
    if args.format == "json":
        emit(report, "json")
    elif args.format == "csv":
        row = {k: v for k, v in report.items() if k not in ("environment", "sizes")}
        row.update(report["sizes"])
        emit([row], "csv")
    else:
        print(depth_table(report))
    return 0 if report["verdict"] == "exact" else 1


def run_lengths(ops: str) -> str:
    """'addmm addmm mm' -> 'addmm x2, mm': the critical path's ops, repeats counted."""
    parts = []
    for op, group in groupby(ops.split()):
        n = len(list(group))
        parts.append(f"{op} x{n}" if n > 1 else op)
    return ", ".join(parts)


def depth_table(report: dict, width: int = TABLE_WIDTH) -> str:
    """The report as lines of at most `width` characters: a heading, the predicted-vs-measured
    table, the formulas, the critical path with repeats counted and the convention."""
    sizes = " ".join(f"{k}={v}" for k, v in report.get("sizes", {}).items())
    head = [report.get("model", ""), report.get("quantity", "")]
    if report.get("attention"):
        head.append(f"attention={report['attention']}")
    if report.get("kv_cache"):
        head.append("KV cache")
    lines = ["  ".join([" ".join(head), sizes]).strip()]
    rows = [{"": "matmul depth", "predicted": report.get("predicted"),
             "measured": report.get("measured")},
            {"": "matmul launches", "predicted": report.get("predicted_launches"),
             "measured": report.get("matmul_launches")}]
    lines.append(format_table(rows, width))
    shown = {"model", "quantity", "attention", "kv_cache", "sizes", "predicted", "measured",
             "predicted_launches", "matmul_launches", "environment", "critical_path",
             "convention"}
    extra = {"formula": "depth formula", "launches_formula": "launches formula",
             "verdict": "verdict", "op_depth": "depth counting every op",
             "ops": "ops traced"}
    for key, label in extra.items():
        if key in report:
            lines.append(f"{label}: {report[key]}")
    for key, value in report.items():
        if key not in shown and key not in extra:
            lines.append(f"{key.replace('_', ' ')}: {value}")
    if report.get("critical_path"):
        lines.append(f"critical path: {run_lengths(report['critical_path'])}")
    if report.get("convention"):
        lines.append(f"convention: {report['convention']}")
    return fit(lines, width)
