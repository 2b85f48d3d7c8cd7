"""charlm grade SUBMISSION... --out DIR: grade many students' cost answers at once. Each
SUBMISSION is a file (an answers TOML, or a notebook or its export where charlm reads those)
or a folder whose submission files are graded, each as one submission (subfolders are not
searched). Every answer is checked as charlm check-answers checks it; each question is worth
1 point, or what --points says. Writes DIR/grades.csv (one row per submission and question),
DIR/summary.csv (one row per submission), and per submission DIR/NAME/results.json
(Gradescope's autograder format) and DIR/NAME/feedback.md (for the student). A submission
that cannot be read is a summary row with the reason. Exit 0 when every submission was
graded, 1 when one could not be read or the checker failed on an answer, 2 on bad usage.

--autograder runs as Gradescope's autograder: SUBMISSION (default /autograder/submission) is
one student's folder, the file graded in it is chosen (a notebook before its PDF export), and
--out (default /autograder/results) receives results.json; scripts/run_autograder calls it."""

from __future__ import annotations

import sys
from pathlib import Path

from charlm.commands.common import (
    add_threads_arg,
    format_table,
    use_threads,
    writes_out,
)

# mirrors analysis.grading.VISIBILITIES (checked by a test): Gradescope's visibility values
VISIBILITIES = ("visible", "after_published", "hidden", "after_due_date")
AUTOGRADER_SUBMISSION = "/autograder/submission"
AUTOGRADER_RESULTS = "/autograder/results"
SHOWN = ("submission", "score", "max_score", "correct", "incorrect", "unparsed", "missing",
         "error")

EPILOG = """examples:
  charlm grade submissions/ --out grades/
  charlm grade submissions/ --out grades/ --points points.toml --visibility after_due_date
  charlm grade alice.toml bob.toml --out grades/ --questions course_questions.toml
  charlm grade --autograder /autograder/submission --out /autograder/results"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "grade", help="grade many submissions: a grade sheet, feedback and Gradescope JSON",
        description=__doc__, epilog=EPILOG)
    p.add_argument("submissions", nargs="*", metavar="SUBMISSION",
                   help="submission files, or folders of them")
    p.add_argument("--out", metavar="DIR",
                   help="the folder the grade sheet, summaries and per-submission files go "
                        "to (required; with --autograder default /autograder/results)")
    p.add_argument("--points", metavar="FILE",
                   help="TOML of question id = points; it lists the graded questions, and "
                        "an optional [credit] table gives asymptotic answers a fraction "
                        "(asymptotic = 0.5); default: every question, 1 point each")
    p.add_argument("--questions", metavar="FILE",
                   help="a course's own questions TOML, as charlm check-answers takes it "
                        "(default: the homework's)")
    p.add_argument("--visibility", choices=VISIBILITIES, default="visible",
                   help="when Gradescope shows students the tests (the reasoning names the "
                        "derived expression: after_due_date keeps it until the deadline)")
    p.add_argument("--grid", choices=["default", "quick"], default="default",
                   help="sizes the derivations are measured on")
    p.add_argument("--autograder", action="store_true",
                   help="run as Gradescope's autograder: one submission folder in, "
                        "results.json out")
    p.add_argument("--force", action="store_true",
                   help="grade into an --out that already holds output: files of the same "
                        "name are replaced and submission folders an earlier run left are "
                        "removed (without it such an --out is refused)")
    add_threads_arg(p)
    p.set_defaults(func=run)


def _grid(name: str) -> dict:
    from analysis.checker import GRID, QUICK_GRID

    return QUICK_GRID if name == "quick" else GRID


def run(args) -> int:
    if args.autograder:
        return run_autograder(args)
    if not args.submissions:
        raise ValueError("give the SUBMISSION files or folders to grade")
    if not args.out:
        raise ValueError("give --out DIR, the folder the grades are written to")
    return _batch(args)


@writes_out("folder")
def _batch(args) -> int:
    use_threads(args.threads)
    from analysis.grading import find_submissions, grade_all, load_scheme, summary_rows
    from charlm.progress import Progress

    scheme = load_scheme(args.points, args.questions)
    files, notes = find_submissions(args.submissions)
    for note in notes:
        print(f"charlm grade: {note}", file=sys.stderr)
    if not files:
        raise ValueError("no submissions to grade in " + ", ".join(args.submissions))
    with Progress(total=len(files), desc="grade", unit="submission", every_s=5.0) as bar:
        done = grade_all(files, args.out, scheme, _grid(args.grid), args.visibility,
                         on_graded=lambda g: bar.update(1, last=g.name,
                                                        score=f"{g.score:g}/"
                                                              f"{g.max_score:g}"))
    summary = summary_rows(done)
    print(format_table(summary[list(SHOWN)]))
    failed = [g for g in done if g.error]
    out = Path(args.out)
    print(f"\n{len(done)} submission{'s' * (len(done) != 1)} graded, "
          f"{len(failed)} with an error; wrote {out / 'grades.csv'}, {out / 'summary.csv'} "
          f"and {out}/NAME/results.json, feedback.md")
    return 1 if failed else 0


def run_autograder(args) -> int:
    """One Gradescope submission folder graded into OUT/results.json (written even when the
    submission cannot be read: then its output says why)."""
    import json

    from analysis.grading import (
        RESULTS_FILE,
        Graded,
        autograder_file,
        grade_submission,
        load_scheme,
        results_json,
    )
    from charlm.io import atomic_write_text, output_lock

    if len(args.submissions) > 1:
        raise ValueError("--autograder grades one submission folder; give one SUBMISSION")
    folder = Path(args.submissions[0] if args.submissions else AUTOGRADER_SUBMISSION)
    out = Path(args.out or AUTOGRADER_RESULTS)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is an existing file; give a folder for --out")
    use_threads(args.threads)
    scheme = load_scheme(args.points, args.questions)
    try:
        path = autograder_file(folder)
    except ValueError as exc:
        graded = Graded("submission", str(folder), [], 0, scheme.max_score, {},
                        error=" ".join(str(exc).split()))
    else:
        graded = grade_submission(path, scheme, _grid(args.grid), name=path.stem)
    with output_lock(out / RESULTS_FILE, "file"):
        atomic_write_text(out / RESULTS_FILE,
                          json.dumps(results_json(graded, args.visibility), indent=2) + "\n")
    where = graded.path if not graded.error or graded.rows else folder
    print(f"{where}: {graded.score:g} of {graded.max_score:g} points"
          + (f"; {graded.error}" if graded.error else "") + f"; wrote {out / RESULTS_FILE}")
    return 0
