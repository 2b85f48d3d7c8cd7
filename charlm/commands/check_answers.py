"""`charlm check-answers FILE.toml`: check cost answers (a student's or the homework's own)
against the toolkit's derivations and measurements. Exit 0 when every answer is correct, 1
when any is incorrect, 2 when the file is unusable (missing, not TOML, unknown id, an answer
that does not parse)."""

from __future__ import annotations

import json
from pathlib import Path

from charlm.commands.common import emit


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check-answers", help="verdicts on cost answers (TOML: question id = answer)",
        description=__doc__)
    p.add_argument("file", nargs="?", help="answers TOML, e.g. analysis/data/homework_answers.toml")
    p.add_argument("--list", action="store_true", help="show the question ids and symbols")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--grid", choices=["default", "quick"], default="default",
                   help="sizes the derivations are measured on")
    p.add_argument("--out", help="also write the verdicts as CSV here, and a Markdown table "
                                 "beside it (same name, .md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.checker import GRID, QUICK_GRID, check_file, list_questions

    if args.list:
        emit(list_questions(), args.format)
        return 0
    if not args.file:
        raise ValueError("give an answers FILE.toml (or --list)")
    frame = check_file(args.file, QUICK_GRID if args.grid == "quick" else GRID)
    if args.out:
        write_results(frame, args.out, source=args.file)
    if args.format == "json":
        emit(frame, "json")
    else:
        flat = _flat(frame)
        if args.format == "csv":
            emit(flat, "csv")
        else:
            emit(flat[["id", "answer", "verdict", "derived", "counterexample"]], "table")
            for row in frame.itertuples():
                print(f"{row.id} ({row.verdict}): {row.reasoning}")
    return 0 if frame["verdict"].eq("correct").all() else 1


def _flat(frame):
    flat = frame.copy()
    flat["counterexample"] = [json.dumps(c) if c else "" for c in flat["counterexample"]]
    return flat


def write_results(frame, out: str, source: str) -> None:
    """CSV at `out` and a Markdown table beside it."""
    from charlm.io import atomic_to_csv, atomic_write_text

    out = Path(out)
    atomic_to_csv(_flat(frame), out)
    atomic_write_text(out.with_suffix(".md"), markdown(frame, source))


def markdown(frame, source: str) -> str:
    from analysis.env import environment

    env = environment("cpu")
    counts = frame["verdict"].value_counts().to_dict()
    lines = [
        f"# Cost answers checked: `{source}`",
        "",
        f"`charlm check-answers {source}`: {counts.get('correct', 0)} correct, "
        f"{counts.get('incorrect', 0)} incorrect. torch {env['torch']}, {env['date']}, "
        f"commit {env['git_commit']}.",
        "",
        "| id | answer | verdict | derived | counterexample |",
        "|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        ce = ""
        if r.counterexample:
            c = r.counterexample
            sizes = ", ".join(f"{k}={v}" for k, v in c["sizes"].items())
            ce = f"{sizes}: answered {c['answered']}, derived {c['derived']}, measured {c['measured']}"
        lines.append(f"| `{r.id}` | `{r.answer}` | {r.verdict} | `{r.derived}` | {ce} |")
    lines += ["", "## Reasoning", ""]
    lines += [f"- `{r.id}` ({r.verdict}): {r.reasoning}" for r in frame.itertuples()]
    return "\n".join(lines) + "\n"
