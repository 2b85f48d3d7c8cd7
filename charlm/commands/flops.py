"""charlm flops: the FLOPs of one model and quantity, predicted by the cost formulas term by
term beside what the counters measure (PyTorch's; the second counters on a forward), with a
verdict; or, with --grid, the reconciliation of a whole grid of sizes written as CSV.

FLOPs are 2 per multiply-add and count matmuls (model FLOPs); elementwise work is a separate
tier, predicted only. The attention square is the full T x T unless --attention-count causal.
"""

from __future__ import annotations

import inspect

from charlm.commands.common import (
    TABLE_WIDTH,
    add_force_arg,
    add_format_arg,
    add_model_args,
    add_threads_arg,
    add_workload_args,
    emit,
    format_number,
    format_table,
    model_config_from_args,
    refuse_unused_sizes,
    use_threads,
    writes_out,
)

QUANTITIES = ("params", "forward", "backward", "train", "generate")
EXAMPLE = """examples:
  charlm flops --model transformer --quantity train --seq-len 64
  charlm flops --model transformer --no-head --seq-len 64     (Kaplan's C_forward)
  charlm flops --model gru --quantity generate --prompt-len 5 --new-tokens 20 --format json
  charlm flops --grid default --out flops_reconciliation.csv"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flops", help="predicted vs measured FLOPs (formulas and the counters)",
        description=__doc__, epilog=EXAMPLE)
    add_model_args(p, vocab=True, model_default="transformer")
    p.add_argument("--quantity", choices=QUANTITIES, default="forward",
                   help="params (the parameter count), forward, backward, train (forward + "
                        "backward), or generate (--new-tokens after --prompt-len)")
    add_workload_args(p)
    p.add_argument("--attention-count", choices=("full", "causal"), default="full",
                   help="attention square convention: full T x T (what the counters measure) "
                        "or causal (the lower triangle)")
    p.add_argument("--no-head", action="store_true",
                   help="leave out the LM head (the vocabulary projection), as Kaplan et al.'s "
                        "C_forward and the homework's questions do")
    p.add_argument("--no-measure", action="store_true", help="formulas only, no counters")
    p.add_argument("--grid", choices=("default", "quick"),
                   help="reconcile a whole grid of sizes instead of one model; needs --out")
    p.add_argument("--out", help="CSV file for --grid, e.g. flops_reconciliation.csv")
    add_force_arg(p)
    add_threads_arg(p)
    add_format_arg(p)
    p.set_defaults(func=run)


@writes_out("file")
def run(args) -> int:
    use_threads(args.threads)
    if args.grid:
        return _run_grid(args)
    from analysis.flops_api import flops_report

    refuse_unused_sizes(args)
    kw = {}
    if args.no_head:
        if "head" not in inspect.signature(flops_report).parameters:
            raise ValueError("--no-head needs analysis.flops_api.flops_report(head=...), "
                             "which this version lacks")
        kw["head"] = False
    report = flops_report(
        model_config_from_args(args), args.quantity, batch=args.batch, seq_len=args.seq_len,
        prompt_len=args.prompt_len, new_tokens=args.new_tokens, kv_cache=args.kv_cache,
        attention_count=args.attention_count, measure=not args.no_measure,
        progress=count_progress, **kw)
    if args.format == "json":
        emit(report, "json")
    elif args.format == "csv":
        from analysis.flops_api import report_frame

        emit(report_frame(report), "csv")
    else:
        print(flops_table(report))
    verdict = str(report["verdict"])
    return 0 if verdict in ("exact", "not measured") or verdict.startswith("not compared") \
        else 1


def count_progress(counted: int, predicted: int, seconds: float, stream=None) -> None:
    """The line a count running past counters.PROGRESS_EVERY_S prints (stderr): FLOPs
    counted so far against the prediction, and the time left at that pace."""
    import sys

    done = counted / predicted if predicted else 0.0
    left = f", about {seconds * (1 - done) / done:.0f} s left" if 0 < done < 1 else ""
    print(f"counting: {format_number(counted)} of {format_number(predicted)} predicted FLOPs "
          f"({done:.0%}) in {seconds:.0f} s{left}", file=stream or sys.stderr, flush=True)


def heading(report: dict) -> str:
    """'transformer forward  B=1 T=64 D=128 L=1 V=65 H=4 attention=flash': the sizes, and
    the heads and attention kernel wherever the model has them, so that tables of two
    kernels never look alike."""
    cfg = report.get("config") or {}
    sizes = dict(report.get("sizes") or {})
    if cfg.get("heads") is not None:
        sizes.setdefault("H", cfg["heads"])
    words = [f"{k}={v}" for k, v in sizes.items()]
    if cfg.get("attention"):
        words.append(f"attention={cfg['attention']}")
    if report.get("attention_count", "full") != "full":
        words.append(f"{report['attention_count']} attention count")
    if report.get("head") is False:
        words.append("LM head left out")
    if report.get("kv_cache"):
        words.append("KV cache")
    return f"{report['model']} {report['quantity']}  " + " ".join(words)


def elementwise_convention(text: str) -> str:
    """The elementwise tier's convention in words: the per-element costs themselves, not the
    name of the constant that holds them."""
    if "ELEMENTWISE_COST" not in text:
        return text
    from analysis.formulas import ELEMENTWISE_COST

    costs = ", ".join(f"{k} {v}" for k, v in ELEMENTWISE_COST.items())
    return f"elementwise FLOPs, predicted only; FLOPs per output element: {costs}"


def flops_table(report: dict, width: int = TABLE_WIDTH) -> str:
    """The report as text at most `width` wide: heading, conventions, formula, the matmul
    terms with every counter and the verdict, then the elementwise tier."""
    measured_terms = report.get("measured_terms") or {}
    group_of = {t: g for g in measured_terms for t in g.split("+")}
    measured = report.get("measured") or {}
    second = [name for name in measured if name != "torch"]
    rows = []
    for term, value in report["terms"].items():
        group = group_of.get(term)
        rows.append({"term": term, "predicted": value,
                     "torch": measured_terms.get(group) if group == term else None,
                     **dict.fromkeys(second), "ratio": None, "verdict": None,
                     "measured together": None if group in (None, term) else
                     f"{group}: {format_number(measured_terms[group])}"})
    ratio = (report.get("ratio") or {}).get("torch")
    rows.append({"term": "total", "predicted": report["predicted"],
                 "torch": measured.get("torch"), **{n: measured[n] for n in second},
                 "ratio": ratio, "verdict": str(report["verdict"]), "measured together": None})
    if not any(r["measured together"] for r in rows):
        for r in rows:
            r.pop("measured together")
    lines = [heading(report), str(report.get("convention", "")),
             f"formula: {report.get('formula', '')}", format_table(rows, width)]
    if report.get("elementwise"):
        lines += ["", elementwise_convention(report.get("elementwise_convention", "")),
                  format_table([{"term": k, "predicted": v}
                                for k, v in report["elementwise"].items()], width)]
    import textwrap

    out = []
    for line in lines:
        for part in line.splitlines() or [""]:
            out += [part] if len(part) <= width else \
                textwrap.wrap(part, width, subsequent_indent="  ")
    return "\n".join(out)


def _run_grid(args) -> int:
    if not args.out:
        raise ValueError("--grid needs --out PATH for the CSV")
    if args.no_measure:
        raise ValueError("--grid measures every size; drop --no-measure")
    from analysis.parallel import count_workers
    from analysis.reconcile import GRIDS, reconcile, summary, write_reconciliation
    from charlm.progress import Progress

    points = GRIDS[args.grid]()
    with Progress(len(points), desc=f"flops grid {args.grid}", unit="size") as bar:
        frame = reconcile(points, progress=lambda point: bar.update(1),
                          workers=count_workers())
    write_reconciliation(frame, args.out)
    emit(summary(frame), args.format)
    return 0 if frame["verdict"].eq("exact").all() else 1
