"""charlm check-answers FILE: check cost answers (a student's or the homework's own)
against the toolkit's derivations and measurements. FILE is an answers TOML or a submitted
notebook (.ipynb) or its export (.md, .txt, .html, .pdf): its answers are read by the
homework's answer template, and --format json/csv show the block each came from. Every
answer gets a verdict: correct, incorrect, asymptotic (an O(...) bound with the right leading
terms), unparsed (the reason is given), missing (blank, or not found in a notebook) or
unknown id. Exit 0 when every answer is correct, 1 when any is not, 2 only when the file
itself is unusable (missing, a folder, not UTF-8, not TOML or a notebook, an id given twice,
no id of it a question here)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from charlm.commands.common import (
    FORMATS,
    TABLE_WIDTH,
    add_force_arg,
    add_threads_arg,
    check_out_path,
    emit,
    use_threads,
    writes_out,
)

EPILOG = """examples:
  charlm check-answers analysis/data/homework_answers.toml
  charlm check-answers homework.ipynb --format json
  charlm check-answers my_answers.toml --format json
  charlm check-answers --list"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check-answers", help="verdicts on cost answers (TOML: question id = answer)",
        description=__doc__, epilog=EPILOG)
    p.add_argument("file", nargs="?",
                   help="answers TOML (e.g. analysis/data/homework_answers.toml), or a "
                        "submitted notebook (.ipynb) or its export (.md, .txt, .html, .pdf), "
                        "read by the homework's answer template")
    p.add_argument("--list", action="store_true",
                   help="show the question ids, their assumptions and the symbols")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table: fits 100 columns, long cells wrapped; csv / json: every "
                        "field in full")
    p.add_argument("--questions", metavar="FILE",
                   help="a course's own questions TOML in the homework file's format "
                        "(analysis/data/homework_questions.toml); kind = \"derived\" takes "
                        "its reference from charlm derive (a model FILE.py:FUNC there is "
                        "loaded and run, as charlm derive runs it); default: the homework's")
    p.add_argument("--grid", choices=["default", "quick"], default="default",
                   help="sizes the derivations are measured on")
    p.add_argument("--out", help="also write the verdicts as CSV here, and a Markdown table "
                                 "beside it (same name, .md)")
    add_force_arg(p, help="replace the CSV and Markdown files --out already names (without "
                          "it they are refused)")
    add_threads_arg(p)
    p.set_defaults(func=run)


@writes_out("file")
def run(args) -> int:
    if args.out:  # the Markdown table beside the CSV
        check_out_path(Path(args.out).with_suffix(".md"), "file", args.force)
    use_threads(args.threads)
    from analysis.checker import GRID, QUICK_GRID, check_file, list_questions
    from analysis.verdicts import Verdict

    if args.list:
        frame = list_questions()
        if args.format == "table":
            print(list_text(frame))
        else:
            emit(frame, args.format)
        return 0
    if not args.file:
        raise ValueError("give an answers FILE.toml (or --list)")
    if args.questions and not Path(args.questions).is_file():
        raise ValueError(f"--questions {args.questions}: no such file")
    frame = check_file(args.file, QUICK_GRID if args.grid == "quick" else GRID,
                       questions_path=args.questions)
    if args.out:
        write_results(frame, args.out, source=args.file)
    if args.format == "json":
        emit(frame, "json")
    elif args.format == "csv":
        emit(_flat(frame), "csv")
    else:
        print(table_text(frame))
    return 0 if frame["verdict"].eq(Verdict.CORRECT).all() else 1


def _wrap(text: str, width: int = TABLE_WIDTH, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=True,
                         break_on_hyphens=False)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def short_counterexample(c) -> str:
    """A counterexample in a few words: `T=2, D=4: answered 64, derived 96, measured 96`,
    or, where it is not at sizes (the GRU cell), what was measured."""
    if not c:
        return ""
    sizes = c.get("sizes") or {}
    if all(isinstance(v, (int, float)) for v in sizes.values()):
        where = ", ".join(f"{k}={v}" for k, v in sizes.items())
        return (f"{where}: answered {c['answered']}, derived {c['derived']}, "
                f"measured {c['measured']}")
    return f"measured: {c['measured']}"


def _cells(text: str, width: int, max_lines: int) -> list[str]:
    """`text` wrapped to `width`, at most `max_lines` lines (the last one clipped with …)."""
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _clip(lines[-1] + " …", width) if len(lines[-1]) + 2 <= width \
            else lines[-1][: width - 1] + "…"
    return lines


def table_text(frame, width: int = TABLE_WIDTH, max_lines: int = 3) -> str:
    """The verdicts as a table no wider than `width` (id and verdict whole; answer and derived
    wrapped, at most `max_lines` lines each), then one wrapped paragraph per answer with its
    counterexample and reasoning. `--format json` / `csv` keep every field in full."""
    ids = [str(i) for i in frame["id"]]
    verdicts = [str(v) for v in frame["verdict"]]
    answers = [str(a) for a in frame["answer"]]
    derived = [str(d) for d in frame["derived"]]
    id_w = max(len(x) for x in ids + ["id"])
    verdict_w = max(len(x) for x in verdicts + ["verdict"])
    rest = max(width - id_w - verdict_w - 6, 20)
    answer_w = min(max(len(x) for x in answers + ["answer"]), max(rest * 2 // 5, 10))
    derived_w = rest - answer_w
    widths = (id_w, verdict_w, answer_w, derived_w)
    lines = ["  ".join(h.ljust(w) for h, w in zip(("id", "verdict", "answer", "derived"),
                                                   widths)).rstrip()]
    for row in zip(ids, verdicts, answers, derived):
        cells = [[row[0]], [row[1]], _cells(row[2], answer_w, max_lines),
                 _cells(row[3], derived_w, max_lines)]
        for k in range(max(len(c) for c in cells)):
            lines.append("  ".join((c[k] if k < len(c) else "").ljust(w)
                                   for c, w in zip(cells, widths)).rstrip())
    lines.append("")
    for row in frame.itertuples():
        ce = short_counterexample(row.counterexample)
        ce = f"counterexample {ce}; " if ce else ""
        lines += _wrap(f"{row.id} ({row.verdict}): {ce}{row.reasoning}", width)
    return "\n".join(lines)


def list_text(frame, width: int = TABLE_WIDTH) -> str:
    """--list as text: the assumptions every cost question shares and the symbols, once;
    then one line per question (id, marks for its own assumptions, the question clipped to
    the width). `--format json` has every field of every row in full."""
    from analysis.checker import homework_questions

    cost = list(homework_questions().values())
    shared = [a for a in cost[0].assumptions if all(a in q.assumptions for q in cost)]
    extra = list(dict.fromkeys(a for q in cost for a in q.assumptions if a not in shared))
    marks = {a: "*" * (i + 1) for i, a in enumerate(extra)}
    own = {q.id: "".join(marks[a] for a in q.assumptions if a in marks) for q in cost}
    lines = _wrap("Every cost question assumes: " + "; ".join(shared) + ".", width)
    lines += [ln for a, m in marks.items() for ln in _wrap(f"{m} also: {a}.", width)]
    families: dict[str, list[str]] = {}
    for qid, symbols in zip(frame["id"], frame["symbols"]):
        families.setdefault(symbols, []).append(qid)
    for symbols, ids in families.items():
        prefixes = ", ".join(dict.fromkeys(i.split(".")[0] + ".*" for i in ids))
        lines += _wrap(f"Symbols for {prefixes}: {symbols}.", width)
    ids = [f"{qid}{own.get(qid, '')}" for qid in frame["id"]]
    id_width = max(len(i) for i in ids + ["id"])
    text_width = max(width - id_width - 2, 10)
    lines += ["", f"{'id'.ljust(id_width)}  question"]
    lines += [f"{i.ljust(id_width)}  {_clip(q, text_width)}".rstrip()
              for i, q in zip(ids, frame["question"])]
    lines += ["", "Every field in full: charlm check-answers --list --format json"]
    return "\n".join(lines)


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
    from analysis.verdicts import ANSWER_VERDICTS, Verdict

    env = environment("cpu")
    counts = frame["verdict"].value_counts().to_dict()
    tally = ", ".join([f"{counts.get(Verdict.CORRECT, 0)} correct",
                       f"{counts.get(Verdict.INCORRECT, 0)} incorrect"]
                      + [f"{counts[v]} {v}" for v in ANSWER_VERDICTS[2:] if counts.get(v)])
    lines = [
        f"# Cost answers checked: `{source}`",
        "",
        f"`charlm check-answers {source}`: {tally}. torch {env['torch']}, {env['date']}, "
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
            ce = (f"{sizes}: answered {c['answered']}, derived {c['derived']}, "
                  f"measured {c['measured']}")
        lines.append(f"| `{r.id}` | `{_cell(r.answer)}` | {r.verdict} | `{r.derived}` | {ce} |")
    lines += ["", "## Reasoning", ""]
    lines += [f"- `{r.id}` ({r.verdict}): {r.reasoning}" for r in frame.itertuples()]
    return "\n".join(lines) + "\n"


def _cell(text) -> str:
    """An answer as one Markdown table cell inside backticks (a LaTeX answer may span lines
    or hold a | or a backtick)."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")
