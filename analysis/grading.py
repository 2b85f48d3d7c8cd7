"""Batch grading of cost-answer submissions: points per question, a grade sheet, per-student
feedback and Gradescope's autograder `results.json`.

A submission is one file a student handed in, read by `analysis.submissions
.read_submission`: an answers TOML, a notebook or its export. Its answers are checked one by
one with `analysis.checker.check_answers`, so one answer that cannot be read costs that answer only.

What is graded is a `Scheme`: the question ids, their points and the partial credit:

- without a points file, every question of the bank (the homework's, or a course's own
  `--questions FILE`) is worth 1 point;
- a points file (TOML) maps question ids to points (`"rnn.train.flops" = 2`, numbers >= 0)
  and then lists exactly the graded questions; its optional table `[credit]` gives the
  fraction of a question's points a verdict other than correct earns (only `asymptotic`, an
  `O(...)` answer with the right leading term: `[credit] asymptotic = 0.5`).

Points per answer: the question's points for `correct`, the credited fraction for
`asymptotic`, 0 for everything else (`incorrect`, `unparsed`, `missing`: no answer to the
question, `error`: the checker itself failed on it). A submission that cannot be read at
all is a summary row with the reason in `error` and a score of 0, never an exception.

Outputs (`grade_all` into a folder): `grades.csv` (GRADE_FIELDS, one row per submission and
graded question), `summary.csv` (SUMMARY_FIELDS, one row per submission) and, per submission,
`<name>/results.json` (Gradescope's format, `results_json`) and `<name>/feedback.md`
(`feedback_markdown`). Student text reaches these only as data: JSON strings, Markdown code
spans, Gradescope output in its plain "text" format.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from analysis.submissions import FORMATS, Submission
from analysis.submissions import read_submission as read_any
from analysis.verdicts import Verdict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Verdict strings. CORRECT and INCORRECT are the checker's; UNPARSED and ASYMPTOTIC the
# parser's (taken from analysis.verdicts when it has them); MISSING and ERROR are grading's.
CORRECT = str(Verdict.CORRECT)
INCORRECT = str(Verdict.INCORRECT)
UNPARSED = str(getattr(Verdict, "UNPARSED", "unparsed"))
ASYMPTOTIC = str(getattr(Verdict, "ASYMPTOTIC", "asymptotic"))
MISSING = "missing"
ERROR = "error"
CREDITABLE = (ASYMPTOTIC,)  # verdicts a points file's [credit] table may give a fraction to

VISIBILITIES = ("visible", "after_published", "hidden", "after_due_date")  # Gradescope's

GRADE_FIELDS = ("submission", "id", "answer", "verdict", "points", "max_points", "extracted",
                "derived", "counterexample", "reasoning")
SUMMARY_FIELDS = ("submission", "score", "max_score", "correct", "asymptotic", "incorrect",
                  "unparsed", "missing", "error", "problems", "not_graded", "seconds", "path")

# What a folder's submission files are: by suffix, in the order an autograder prefers one
# when a student's folder holds several (the notebook over its exports).
AUTOGRADER_PREFERENCE = (".ipynb", ".toml", ".md", ".markdown", ".txt", ".html", ".htm",
                         ".pdf")
RESULTS_FILE, FEEDBACK_FILE = "results.json", "feedback.md"
GRADES_FILE, SUMMARY_FILE = "grades.csv", "summary.csv"
MAX_SHOWN = 2000  # characters of a student's text shown in feedback (the rest elided)


# ------------------------------------------------------------------------------ scheme


@dataclass(frozen=True)
class Scheme:
    """What is graded: points per question id (in order), each question's text, the partial
    credit per verdict, and the question bank handed to the checker (None: the homework's)."""

    points: dict[str, float]
    questions: dict[str, str]
    credit: dict[str, float] = field(default_factory=dict)
    bank: dict | None = None

    @property
    def max_score(self) -> float:
        return sum(self.points.values())


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        raise ValueError(f"{what} must be a number >= 0, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def load_points(path, known: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """({id: points}, {verdict: fraction}) from a points TOML; ValueError naming the file for
    an id not in `known`, a value that is no number >= 0, or a [credit] entry other than
    `asymptotic` = a fraction in [0, 1]."""
    from analysis.questions import flatten

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--points {path}: no such file")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError(f"--points {path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--points {path}: not valid TOML: {exc}") from None
    credit_table = table.pop("credit", {})
    if not isinstance(credit_table, dict):
        raise ValueError(f"--points {path}: credit must be a table, e.g. [credit] "
                         "asymptotic = 0.5")
    credit = {}
    for verdict, value in credit_table.items():
        if verdict not in CREDITABLE:
            raise ValueError(f"--points {path}: [credit] {verdict!r}: only "
                             f"{', '.join(CREDITABLE)} can earn partial credit")
        credit[verdict] = _number(value, f"--points {path}: [credit] {verdict}")
        if credit[verdict] > 1:
            raise ValueError(f"--points {path}: [credit] {verdict} is a fraction of the "
                             f"question's points, at most 1, got {value!r}")
    points = {}
    for key_path, value in flatten(table):
        qid = ".".join(key_path)
        if qid not in known:
            raise ValueError(f"--points {path}: {qid!r} is not a question id; "
                             "`charlm check-answers --list` shows the ids")
        points[qid] = _number(value, f"--points {path}: {qid}")
    if not points:
        raise ValueError(f"--points {path}: no question ids with points")
    return points, credit


def load_scheme(points_path=None, questions_path=None) -> Scheme:
    """The graded questions: those of `questions_path` (a course's bank) or the homework's
    (its cost questions and the checks of other families, `analysis.checker.EXTRA_CHECKS`),
    1 point each or as `points_path` says (`load_points`)."""
    from analysis import checker

    if questions_path is not None:
        if not Path(questions_path).is_file():
            raise ValueError(f"--questions {questions_path}: no such file")
        from analysis.questions import load_questions

        bank = load_questions(questions_path, kinds=checker.DERIVATIONS)
        known = {qid: q.question for qid, q in bank.items()}
    else:
        bank = checker.homework_questions()
        known = {qid: q.question for qid, q in bank.items()}
        for extra in checker.EXTRA_CHECKS.values():
            known.update({q["id"]: q["question"] for q in extra.questions()})
    if points_path is None:
        points, credit = dict.fromkeys(known, 1), {}
    else:
        points, credit = load_points(points_path, known)
    return Scheme(points=points, questions={q: known[q] for q in points}, credit=credit,
                  bank=bank)


# ------------------------------------------------------------------------------ reading


def read_submission(path) -> Submission:
    """One submission file read (`analysis.submissions.read_submission`: an answers TOML, a
    notebook or its export). ValueError when it cannot be read, a folder included."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a submission file")
    return read_any(path)


def submission_suffixes() -> tuple[str, ...]:
    """The suffixes a folder's submission files have: those the reader reads."""
    return tuple(FORMATS)


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "~$")) and path.name != "__MACOSX"


def find_submissions(paths: Iterable) -> tuple[list[Path], list[str]]:
    """(submission files, notes) for command-line paths: a file is one submission (whatever
    its suffix: one that cannot be read is graded as an error); a folder contributes the
    submission files directly inside it (by suffix, hidden files aside, sorted by name;
    subfolders are not searched and a note says how many were skipped). A path that does
    not exist is kept: it is graded as an error ("no such file")."""
    files, notes = [], []
    suffixes = submission_suffixes()
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():  # a file, or a path that is not there: graded as an error
            files.append(path)
            continue
        inside = sorted((p for p in path.iterdir() if _visible(p)), key=lambda p: p.name)
        found = [p for p in inside if p.is_file() and p.suffix.lower() in suffixes]
        folders = [p for p in inside if p.is_dir()]
        if folders:
            notes.append(f"{path}: {len(folders)} subfolder{'s' * (len(folders) != 1)} not "
                         "searched (give them on the command line)")
        if not found:
            notes.append(f"{path}: no submission files ({', '.join(suffixes)})")
        files += found
    return list(dict.fromkeys(files)), notes


def autograder_file(folder) -> Path:
    """The one file graded in a Gradescope submission folder: the submission files found in
    it and its subfolders, by AUTOGRADER_PREFERENCE (a notebook before its PDF export).
    ValueError, said to the student, when there is none or two of the preferred kind."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such submission folder")
    suffixes = submission_suffixes()
    found = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in suffixes
                   and all(_visible(part) for part in p.relative_to(folder).parents
                           if part.name) and _visible(p))
    for suffix in AUTOGRADER_PREFERENCE:
        same = [p for p in found if p.suffix.lower() == suffix]
        if len(same) > 1:
            names = ", ".join(str(p.relative_to(folder)) for p in same)
            raise ValueError(f"the submission holds {len(same)} {suffix} files ({names}); "
                             "submit one")
        if same:
            return same[0]
    raise ValueError(f"the submission holds no file charlm reads ({', '.join(suffixes)})")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def submission_names(files: list[Path]) -> list[str]:
    """A folder name per submission: the file's stem, characters other than letters,
    digits, `.`, `_`, `-` replaced by `_`, no dot or `_` at either end (never a hidden
    folder); a name given twice (letter case aside), or that of a file written beside the
    folders (grades.csv), gets -2, -3, ... in order."""
    names = []
    seen = {GRADES_FILE: True, SUMMARY_FILE: True}  # the files beside the folders
    for path in files:
        base = _UNSAFE.sub("_", Path(path).stem).strip("._") or "submission"
        name, k = base, 1
        while name.lower() in seen:
            k += 1
            name = f"{base}-{k}"
        seen[name.lower()] = True
        names.append(name)
    return names


# ------------------------------------------------------------------------------ grading


@dataclass
class Graded:
    """One submission graded: its grade-sheet rows and its summary."""

    name: str
    path: str
    rows: list[dict]
    score: float
    max_score: float
    counts: dict[str, int]
    error: str = ""
    problems: list[str] = field(default_factory=list)
    not_graded: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"submission": self.name, "score": self.score, "max_score": self.max_score,
                **{k: self.counts.get(k, 0) for k in (CORRECT, ASYMPTOTIC, INCORRECT,
                                                       UNPARSED, MISSING)},
                "error": self.error, "problems": "; ".join(self.problems),
                "not_graded": ", ".join(self.not_graded), "seconds": round(self.seconds, 3),
                "path": self.path}


def _round(x: float) -> float:
    x = round(x, 6)
    return int(x) if float(x).is_integer() else x


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def counterexample_text(c) -> str:
    """A counterexample in a few words: `T=2, D=4: answered 64, derived 96, measured 96`, or
    the text a check gave (the GRU exercises')."""
    if not c or (isinstance(c, float) and math.isnan(c)):
        return ""
    if not isinstance(c, dict):
        return str(c)
    sizes = c.get("sizes") or {}
    where = ", ".join(f"{k}={v}" for k, v in sizes.items())
    parts = [f"{k} {c[k]}" for k in ("answered", "derived", "measured")
             if c.get(k) is not None]
    return f"{where}: {', '.join(parts)}" if where else ", ".join(parts)


def check_one(qid: str, text: str, grid: dict, bank) -> dict:
    """The checker's row for one answer; an answer the checker refuses (ValueError: it does
    not parse) is an `unparsed` row with the reason, and any other failure of the checker an
    `error` row (the toolkit's fault, not the student's)."""
    from analysis.checker import check_answers

    try:
        row = check_answers({qid: text}, grid, questions=bank).iloc[0].to_dict()
    except ValueError as exc:
        return {"verdict": UNPARSED, "reasoning": f"the answer could not be read: "
                                                  f"{_first_line(exc)}"}
    except Exception as exc:  # noqa: BLE001 - one answer never stops the batch
        return {"verdict": ERROR, "reasoning": f"the checker failed on this answer "
                                               f"({type(exc).__name__}: {_first_line(exc)}); "
                                               "tell the course staff"}
    row["verdict"] = str(row["verdict"])
    return row


def points_for(verdict: str, max_points: float, credit: dict[str, float]) -> float:
    if verdict == CORRECT:
        return max_points
    return max_points * credit.get(verdict, 0)


def grade_submission(path, scheme: Scheme, grid: dict | None = None, name: str | None = None,
                     read: Callable = read_submission) -> Graded:
    """One submission graded against `scheme` (never raises for the submission's content:
    a file that cannot be read is a Graded with `error` set and score 0)."""
    from analysis.checker import GRID

    grid = GRID if grid is None else grid
    start = time.perf_counter()
    path = Path(path)
    name = name or submission_names([path])[0]
    try:
        sub = read(path)
    except Exception as exc:  # noqa: BLE001 - a reader's failure is the submission's row
        reason = _first_line(exc) if isinstance(exc, (ValueError, OSError)) \
            else f"{type(exc).__name__}: {_first_line(exc)}"
        return Graded(name, str(path), [], 0, scheme.max_score, {}, error=reason,
                      seconds=time.perf_counter() - start)
    rows, counts, score = [], {}, 0.0
    for qid, max_points in scheme.points.items():
        text = sub.answers.get(qid)
        if text is None:
            checked = {"verdict": MISSING, "question": scheme.questions.get(qid, ""),
                       "reasoning": "no answer to this question was found in the submission"}
        else:
            checked = check_one(qid, str(text), grid, scheme.bank)
        verdict = checked["verdict"]
        got = _round(points_for(verdict, max_points, scheme.credit))
        score += got
        counts[verdict] = counts.get(verdict, 0) + 1
        rows.append({
            "submission": name, "id": qid, "answer": "" if text is None else str(text),
            "verdict": verdict, "points": got, "max_points": max_points,
            "extracted": str(sub.extracted.get(qid, "")),
            "derived": str(checked.get("derived") or ""),
            "counterexample": counterexample_text(checked.get("counterexample")),
            "reasoning": str(checked.get("reasoning") or ""),
            "question": checked.get("question") or scheme.questions.get(qid, ""),
        })
    not_graded = sorted(set(sub.answers) - set(scheme.points))
    errors = [r["id"] for r in rows if r["verdict"] == ERROR]
    return Graded(name, str(path), rows, _round(score), scheme.max_score, counts,
                  error=f"the checker failed on {', '.join(errors)}" if errors else "",
                  problems=list(sub.problems), not_graded=not_graded,
                  seconds=time.perf_counter() - start)


# ------------------------------------------------------------------------------ outputs


def gradescope_output(row: dict) -> str:
    """A Gradescope test's `output` (plain text): the question, the answer (and the text it
    was read from), the verdict, the counterexample and the reasoning."""
    lines = []
    if row.get("question"):
        lines.append(f"Question: {row['question']}")
    if row["verdict"] == MISSING:
        lines.append("Your answer: (none found)")
    else:
        lines.append(f"Your answer: {_clip(row['answer'])}")
        if row.get("extracted") and row["extracted"] != row["answer"]:
            lines.append(f"Read from: {_clip(row['extracted'])}")
    lines.append(f"Verdict: {row['verdict']} ({_show(row['points'])} of "
                 f"{_show(row['max_points'])} points)")
    if row.get("counterexample"):
        lines.append(f"Counterexample: {row['counterexample']}")
    if row.get("reasoning"):
        lines.append(f"Why: {row['reasoning']}")
    return "\n".join(lines)


def _clip(text: str, limit: int = MAX_SHOWN) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text) - limit} more " \
                                                          "characters)"


def _show(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def results_json(graded: Graded, visibility: str = "visible") -> dict:
    """Gradescope's autograder results (docs: gradescope-autograders.readthedocs.io, "Autograder
    Specifications"): top-level `score` (the sum of the tests' scores), one test per graded
    question with `name`, `number`, `score`, `max_score`, `status`, `output` and
    `visibility`; outputs in Gradescope's plain "text" format so nothing a student wrote is
    rendered as HTML or Markdown."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, got "
                         f"{visibility!r}")
    tests = [{
        "name": row["id"],
        "number": str(k),
        "score": row["points"],
        "max_score": row["max_points"],
        "status": "passed" if row["verdict"] == CORRECT else "failed",
        "output": gradescope_output(row),
        "output_format": "text",
        "visibility": visibility,
        "extra_data": {"verdict": row["verdict"]},
    } for k, row in enumerate(graded.rows, 1)]
    overall = [f"{_show(graded.score)} of {_show(graded.max_score)} points: "
               + _counts_text(graded)]
    if graded.error:
        overall.append(("Your submission could not be graded: " if not graded.rows
                        else "") + graded.error)
    overall += [f"While reading: {p}" for p in graded.problems]
    if graded.not_graded:
        overall.append("Answers to ids that are not graded here (check the spelling): "
                       + ", ".join(graded.not_graded))
    return {"score": graded.score, "output": "\n".join(overall), "output_format": "text",
            "visibility": visibility, "tests": tests,
            "extra_data": {"submission": graded.name, "max_score": graded.max_score}}


def _counts_text(graded: Graded) -> str:
    order = (CORRECT, ASYMPTOTIC, INCORRECT, UNPARSED, MISSING, ERROR)
    parts = [f"{graded.counts[v]} {v}" for v in order if graded.counts.get(v)]
    return ", ".join(parts) if parts else "nothing graded"


def _code(text: str) -> str:
    """`text` as one Markdown code span (on one line; fenced past any backticks in it)."""
    text = " ".join(_clip(text).split())
    if not text:
        return ""
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0) + 1
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{'`' * ticks}{pad}{text}{pad}{'`' * ticks}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def feedback_markdown(graded: Graded, title: str = "Cost answers") -> str:
    """The feedback a student reads: the score, a table of the questions, then per question
    the verdict, the counterexample and the reasoning."""
    lines = [f"# {title}: feedback for {graded.name}", "",
             f"**Score: {_show(graded.score)} of {_show(graded.max_score)} points** "
             f"({_counts_text(graded)}).", ""]
    if graded.error and not graded.rows:
        lines += [f"Your submission could not be graded: {graded.error}", ""]
        return "\n".join(lines)
    if graded.error:
        lines += [f"Note: {graded.error}.", ""]
    lines += [f"- While reading your submission: {p}" for p in graded.problems]
    if graded.not_graded:
        lines += ["- Answers to ids that are not graded here (check the spelling): "
                  + ", ".join(_code(i) for i in graded.not_graded)]
    if graded.problems or graded.not_graded:
        lines.append("")
    lines += ["| question | your answer | verdict | points |", "|---|---|---|---|"]
    for r in graded.rows:
        lines.append(f"| {_cell(_code(r['id']))} | {_cell(_code(r['answer']))} | "
                     f"{r['verdict']} | {_show(r['points'])} / {_show(r['max_points'])} |")
    lines.append("")
    for r in graded.rows:
        lines += [f"## {r['id']}: {r['verdict']}", ""]
        if r.get("question"):
            lines += [r["question"], ""]
        if r["verdict"] != MISSING:
            lines.append(f"- Your answer: {_code(r['answer'])}")
            if r.get("extracted") and r["extracted"] != r["answer"]:
                lines.append(f"- Read from: {_code(r['extracted'])}")
        if r.get("counterexample"):
            lines.append(f"- Counterexample: {r['counterexample']}")
        if r.get("reasoning"):
            lines.append(f"- Why: {r['reasoning']}")
        lines.append("")
    return "\n".join(lines)


def grade_rows(graded: Iterable[Graded]):
    import pandas as pd

    rows = [{k: r[k] for k in GRADE_FIELDS} for g in graded for r in g.rows]
    return pd.DataFrame(rows, columns=list(GRADE_FIELDS))


def summary_rows(graded: Iterable[Graded]):
    import pandas as pd

    return pd.DataFrame([g.summary() for g in graded], columns=list(SUMMARY_FIELDS))


def write_submission(graded: Graded, folder, visibility: str = "visible") -> None:
    """`folder/results.json` and `folder/feedback.md` for one graded submission."""
    import json

    from charlm.io import atomic_write_text

    folder = Path(folder)
    atomic_write_text(folder / RESULTS_FILE,
                      json.dumps(results_json(graded, visibility), indent=2) + "\n")
    atomic_write_text(folder / FEEDBACK_FILE, feedback_markdown(graded))


def _stale_folders(out: Path, names: set[str]) -> list[Path]:
    """Submission folders of an earlier run into `out` (holding only RESULTS_FILE and
    FEEDBACK_FILE) that this run does not write."""
    if not out.is_dir():
        return []
    ours = {RESULTS_FILE, FEEDBACK_FILE}
    return [p for p in sorted(out.iterdir())
            if p.is_dir() and p.name not in names and any(p.iterdir())
            and {c.name for c in p.iterdir()} <= ours]


def grade_all(paths: Iterable, out, scheme: Scheme, grid: dict | None = None,
              visibility: str = "visible", on_graded: Callable[[Graded], None] | None = None
              ) -> list[Graded]:
    """Grade every submission `paths` name (files and folders, `find_submissions`) into the
    folder `out`: per submission `<name>/results.json` and `<name>/feedback.md` as it is
    graded, then `grades.csv` and `summary.csv`. Submission folders an earlier run left
    there (holding only those two files) are removed, so `out` shows this run only.
    `on_graded(graded)` is called after each submission (progress)."""
    from charlm.io import atomic_to_csv

    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, got "
                         f"{visibility!r}")
    files, _ = find_submissions(paths)
    names = submission_names(files)
    out = Path(out)
    done = []
    for path, name in zip(files, names):
        graded = grade_submission(path, scheme, grid, name=name)
        write_submission(graded, out / name, visibility)
        done.append(graded)
        if on_graded is not None:
            on_graded(graded)
    for stale in _stale_folders(out, set(names)):
        for child in stale.iterdir():
            child.unlink()
        stale.rmdir()
    atomic_to_csv(grade_rows(done), out / GRADES_FILE)
    atomic_to_csv(summary_rows(done), out / SUMMARY_FILE)
    return done


__all__ = ["ASYMPTOTIC", "CORRECT", "ERROR", "GRADE_FIELDS", "Graded", "INCORRECT", "MISSING",
           "SUMMARY_FIELDS", "Scheme", "Submission", "UNPARSED", "VISIBILITIES",
           "autograder_file", "check_one", "feedback_markdown", "find_submissions",
           "grade_all", "grade_submission", "load_points", "load_scheme", "points_for",
           "read_submission", "results_json", "submission_names", "write_submission"]
