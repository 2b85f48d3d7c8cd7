"""charlm grade: a folder of generated submissions graded into a grade sheet, summaries,
feedback and Gradescope results.json (validated against a schema written here from
Gradescope's documentation), points and partial credit, submissions that cannot be read,
the --out rules, and the Gradescope entry point (--autograder, scripts/run_autograder).

The expected verdicts are derived by hand below (matmul FLOPs, 2 per multiply-add, the
homework's assumptions B = 1, E = D, head excluded), never taken from the checker."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from analysis import grading
from charlm.cli import main
from charlm.commands import grade as grade_command

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ hand-derived answers
# rnn.generate.flops: per token and layer h = tanh(W_x x + W_h h), two D x D matmuls (E = D),
#   2D^2 FLOPs each: 4D^2; T tokens, L layers: 4TLD^2. Extra terms of lower order (2TD: every
#   exponent at most those of TLD^2) are allowed by the homework.
# rnn.train.flops: forward 4TLD^2; the backward of each matmul is two matmuls of its size
#   (input and weight gradients), 8TLD^2, less the input gradient of W_h at the first step
#   (h_0 is no parameter's output): 2LD^2. Total 12TLD^2 - 2LD^2; 12TLD^2 is its leading term.
#   8TLD^2 is the backward alone.
# rnn.generate.sequential_matmuls: one W_h matmul per step and layer on the chain: TL.
# transformer.layer.mlp.flops: D -> 4D -> D on T tokens: 2 * (2 * T * D * 4D) = 16TD^2.
# transformer.layer.sequential_matmuls: Q (or K/V) projection, Q K^T, A V, the output
#   projection (4), then the MLP's two matmuls: 6.
# Unparsed: incomplete expressions (a dangling operator), whatever notation a parser learns.
C, X, U, M = "correct", "incorrect", "unparsed", "missing"
FORMS = {
    "rnn.generate.flops": [("4TLD^2", C), ("2TLD^2", X), ("4*T*L*D^2", C), ("4TD^2", X),
                           ("4TLD^2 + 2TD", C), ("4TLD^", U), (None, M), ("8TLD^2", X)],
    "rnn.train.flops": [("12TLD^2", C), ("8TLD^2", X), ("12TLD^2 - 2LD^2", C),
                        ("16TLD^2", X), (None, M), ("12TLD^2 +", U)],
    "rnn.generate.sequential_matmuls": [("TL", C), ("T", X), ("LT", C), ("2TL", X),
                                        (None, M)],
    "transformer.layer.mlp.flops": [("16TD^2", C), ("8TD^2", X), ("16 * T * D^2", C)],
    "transformer.layer.sequential_matmuls": [("6", C), ("4", X), ("2 +", U), (None, M)],
}
POINTS = {"rnn.generate.flops": 2, "rnn.train.flops": 3,
          "rnn.generate.sequential_matmuls": 1, "transformer.layer.mlp.flops": 1,
          "transformer.layer.sequential_matmuls": 0.5}
COUNT = 24


def chosen(k: int) -> dict[str, tuple[str | None, str]]:
    """Submission k's (answer, expected verdict) per question: its own mix of forms."""
    return {qid: forms[(k * (i + 1) + i) % len(forms)]
            for i, (qid, forms) in enumerate(FORMS.items())}


def write_submission(path: Path, answers: dict[str, str | None], extra: str = "") -> None:
    lines = [f"{json.dumps(q)} = {json.dumps(a)}" for q, a in answers.items() if a is not None]
    path.write_text("\n".join(lines) + "\n" + extra)


def write_points(path: Path, points=POINTS, credit: str = "") -> Path:
    path.write_text("".join(f"{json.dumps(q)} = {p}\n" for q, p in points.items()) + credit)
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ Gradescope's format
# From "Autograder Specifications" (gradescope-autograders.readthedocs.io/en/latest/specs/):
# results.json is an object with an optional top-level score (required when the tests do not
# all carry one), execution_time (seconds), output, output_format, test_output_format,
# test_name_format, visibility, stdout_visibility, extra_data, tests and leaderboard; a test
# has score, max_score, status (passed | failed), name, name_format, number (a string such
# as "1.1"), output, output_format, tags (strings), visibility and extra_data. Visibility is
# one of hidden, after_due_date, after_published, visible; a format one of text,
# simple_format, html, md, ansi. charlm promises more than the minimum: a top-level score and
# tests each with name, score, max_score, output and visibility, so those are required here.
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "simple_format", "html", "md", "ansi"]}
TEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "score", "max_score", "output", "visibility"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "status": {"enum": ["passed", "failed"]},
        "name": {"type": "string", "minLength": 1},
        "name_format": FORMAT,
        "number": {"type": "string"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
}
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST},
        "leaderboard": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"],
            "properties": {"name": {"type": "string"}, "value": {},
                           "order": {"enum": ["asc", "desc"]}}}},
    },
}


def validate(document: dict) -> None:
    jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(document)


def test_the_schema_refuses_what_gradescope_would_not_read():
    good = {"score": 1, "tests": [{"name": "a", "score": 1, "max_score": 1, "output": "",
                                   "visibility": "visible"}]}
    validate(good)
    for broken in ({**good, "score": "1"},
                   {**good, "tests": [{**good["tests"][0], "visibility": "public"}]},
                   {**good, "tests": [{k: v for k, v in good["tests"][0].items()
                                       if k != "max_score"}]},
                   {**good, "tests": [{**good["tests"][0], "number": 1}]},
                   {**good, "colour": "red"}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


# ------------------------------------------------------------------ the batch


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """COUNT generated submissions in a folder (and a file beside them that is no TOML),
    graded once with the points above into OUT; (folder, out, exit code, stdout, stderr)."""
    base = tmp_path_factory.mktemp("grading")
    folder = base / "submissions"
    folder.mkdir()
    for k in range(COUNT):
        answers = {q: a for q, (a, _) in chosen(k).items()}
        extra = '"rnn.generat.flops" = "4TLD^2"\n' if k == 3 else ""  # a misspelt id
        write_submission(folder / f"student {k:02d}.toml", answers, extra)
    (folder / "notes.docx").write_text("no file charlm reads")
    (folder / "zz_broken.toml").write_text("this is = = not TOML\n")
    (folder / "later").mkdir()  # a subfolder: not searched
    points = write_points(base / "points.toml")
    out = base / "out"
    import contextlib
    import io

    err, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
        code = main(["grade", str(folder), "--out", str(out), "--points", str(points),
                     "--grid", "quick", "--visibility", "after_due_date"])
    return folder, out, code, stdout.getvalue(), err.getvalue()


def expected_score(k: int) -> float:
    return sum(POINTS[q] for q, (_, v) in chosen(k).items() if v == C)


def test_the_grade_sheet_has_every_hand_derived_verdict_and_points(graded):
    _, out, code, _, _ = graded
    rows = read_csv(out / "grades.csv")
    assert list(rows[0]) == list(grading.GRADE_FIELDS)
    assert len(rows) == COUNT * len(FORMS)  # the broken file has no rows, only a summary
    by_key = {(r["submission"], r["id"]): r for r in rows}
    verdicts = set()
    for k in range(COUNT):
        for qid, (answer, verdict) in chosen(k).items():
            row = by_key[(f"student_{k:02d}", qid)]
            assert row["verdict"] == verdict, (k, qid, answer, row["reasoning"])
            assert row["answer"] == (answer or "")
            assert float(row["max_points"]) == POINTS[qid]
            assert float(row["points"]) == (POINTS[qid] if verdict == C else 0)
            if verdict == X:
                assert "answered" in row["counterexample"] and row["reasoning"]
            if verdict == U:  # the parser's reason, whoever words it
                assert row["reasoning"] and not row["counterexample"]
            verdicts.add(verdict)
    assert verdicts == {C, X, U, M}  # every kind of row occurs
    assert code == 1  # the broken file could not be read


def test_the_summary_has_a_row_per_submission_and_one_for_the_unreadable(graded):
    _, out, _, stdout, stderr = graded
    rows = {r["submission"]: r for r in read_csv(out / "summary.csv")}
    assert set(rows) == {f"student_{k:02d}" for k in range(COUNT)} | {"zz_broken"}
    for k in range(COUNT):
        row, want = rows[f"student_{k:02d}"], chosen(k).values()
        assert float(row["score"]) == expected_score(k)
        assert float(row["max_score"]) == sum(POINTS.values()) == 7.5
        for verdict in (C, X, U, M):
            assert int(row[verdict]) == sum(v == verdict for _, v in want)
        assert row["error"] == ""
    assert rows["student_03"]["not_graded"] == "rnn.generat.flops"
    broken = rows["zz_broken"]
    assert "not valid TOML" in broken["error"] and float(broken["score"]) == 0
    assert "zz_broken" in stdout and "student_00" in stdout
    # progress on stderr, and the notes on what was not read
    assert f"grade: {COUNT + 1}/{COUNT + 1} submissions" in stderr
    assert "1 subfolder not searched" in stderr
    assert "notes" not in (out / "summary.csv").read_text()


def test_every_results_json_is_gradescopes_format_with_the_verdicts(graded):
    _, out, _, _, _ = graded
    for k in range(COUNT):
        doc = json.loads((out / f"student_{k:02d}" / "results.json").read_text())
        validate(doc)
        assert doc["score"] == expected_score(k)
        assert doc["score"] == sum(t["score"] for t in doc["tests"])
        assert [t["name"] for t in doc["tests"]] == list(FORMS)
        for test, (answer, verdict) in zip(doc["tests"], chosen(k).values()):
            assert test["visibility"] == "after_due_date"
            assert test["max_score"] == POINTS[test["name"]]
            assert f"Verdict: {verdict}" in test["output"]
            assert (test["status"] == "passed") == (verdict == C)
            if verdict == X:
                assert "Counterexample: " in test["output"] and "Why: " in test["output"]
            if answer is not None:
                assert f"Your answer: {answer}" in test["output"]
    broken = json.loads((out / "zz_broken" / "results.json").read_text())
    validate(broken)
    assert broken["score"] == 0 and broken["tests"] == []
    assert "could not be graded" in broken["output"] and "TOML" in broken["output"]


def test_the_feedback_a_student_reads(graded):
    _, out, _, _, _ = graded
    k = next(k for k in range(COUNT) if chosen(k)["rnn.train.flops"][1] == X)
    text = (out / f"student_{k:02d}" / "feedback.md").read_text()
    assert f"Score: {expected_score(k):g} of 7.5 points" in text
    answer = chosen(k)["rnn.train.flops"][0]
    assert f"| `rnn.train.flops` | `{answer}` | incorrect | 0 / 3 |" in text
    section = text.split("## rnn.train.flops: incorrect")[1].split("## ")[0]
    assert "Counterexample: " in section and "Why: " in section
    # 8TLD^2 is the backward pass alone; the checker says so (computed, not looked up)
    if answer == "8TLD^2":
        assert "backward" in section


def test_the_out_folder_is_refused_then_replaced_with_force(graded, tmp_path, capsys):
    folder, out, _, _, _ = graded
    code = main(["grade", str(folder / "student 00.toml"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "already holds output" in err and "--force" in err
    # --force: this run's files, and the earlier run's submission folders gone
    copy = tmp_path / "out"
    import shutil

    shutil.copytree(out, copy)
    (copy / "notes_by_staff.txt").write_text("keep me")
    points = write_points(tmp_path / "points.toml")
    code = main(["grade", str(folder / "student 00.toml"), "--out", str(copy), "--force",
                 "--points", str(points), "--grid", "quick"])
    capsys.readouterr()
    assert code == 0
    assert [r["submission"] for r in read_csv(copy / "summary.csv")] == ["student_00"]
    assert sorted(p.name for p in copy.iterdir()) == [
        "grades.csv", "notes_by_staff.txt", "student_00", "summary.csv"]


# ------------------------------------------------------------------ points and credit


@pytest.mark.parametrize("content,message", [
    ('"rnn.nope.flops" = 1\n', "'rnn.nope.flops' is not a question id"),
    ('"rnn.train.flops" = -1\n', "must be a number >= 0"),
    ('"rnn.train.flops" = "two"\n', "must be a number >= 0"),
    ('"rnn.train.flops" = 1\n[credit]\nincorrect = 0.5\n', "only asymptotic"),
    ('"rnn.train.flops" = 1\n[credit]\nasymptotic = 2\n', "at most 1"),
    ("[credit]\nasymptotic = 0.5\n", "no question ids"),
    ("= broken", "not valid TOML"),
])
def test_a_bad_points_file_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    points = tmp_path / "points.toml"
    points.write_text(content)
    sub = tmp_path / "a.toml"
    write_submission(sub, {"rnn.train.flops": "12TLD^2"})
    code = main(["grade", str(sub), "--out", str(tmp_path / "out"), "--points", str(points)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert err.startswith("charlm grade: error:")
    assert not (tmp_path / "out").exists()


def test_points_by_verdict_with_partial_credit_for_asymptotic(tmp_path):
    points, credit = grading.load_points(
        write_points(tmp_path / "p.toml", {"rnn.train.flops": 4},
                     "[credit]\nasymptotic = 0.25\n"), {"rnn.train.flops": "q"})
    assert points == {"rnn.train.flops": 4} and credit == {grading.ASYMPTOTIC: 0.25}
    assert grading.points_for(grading.CORRECT, 4, credit) == 4
    assert grading.points_for(grading.ASYMPTOTIC, 4, credit) == 1
    assert grading.points_for(grading.ASYMPTOTIC, 4, {}) == 0
    for verdict in (grading.INCORRECT, grading.UNPARSED, grading.MISSING, grading.ERROR):
        assert grading.points_for(verdict, 4, credit) == 0


def test_an_asymptotic_verdict_earns_its_credit_and_a_checker_failure_is_an_error_row(
        tmp_path, monkeypatch):
    """The checker stubbed: one answer asymptotic, one where it fails (a toolkit bug)."""
    import analysis.checker as checker

    def fake(answers, grid=None, questions=None):
        import pandas as pd

        (qid, text), = answers.items()
        if qid == "rnn.generate.sequential_matmuls":
            raise RuntimeError("derived disagrees with measurement")
        return pd.DataFrame([{"id": qid, "question": "q", "answer": text,
                              "verdict": "asymptotic", "derived": "x", "counterexample": None,
                              "reasoning": "leading term only"}])

    monkeypatch.setattr(checker, "check_answers", fake)
    scheme = grading.Scheme(points={"rnn.train.flops": 4,
                                    "rnn.generate.sequential_matmuls": 2},
                            questions={"rnn.train.flops": "?",
                                       "rnn.generate.sequential_matmuls": "?"},
                            credit={"asymptotic": 0.5})
    sub = tmp_path / "s.toml"
    write_submission(sub, {"rnn.train.flops": "O(TLD^2)", "rnn.generate.sequential_matmuls":
                           "TL"})
    graded = grading.grade_submission(sub, scheme)
    assert [r["verdict"] for r in graded.rows] == ["asymptotic", "error"]
    assert [r["points"] for r in graded.rows] == [2, 0]
    assert graded.score == 2 and graded.max_score == 6
    assert "RuntimeError" in graded.rows[1]["reasoning"]
    assert graded.error == "the checker failed on rnn.generate.sequential_matmuls"
    validate(grading.results_json(graded))


def test_the_cli_visibilities_mirror_the_library():
    assert grade_command.VISIBILITIES == grading.VISIBILITIES


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize("make,reason", [
    (lambda p: p.write_bytes(b"\x80\x00\xff" * 40), "not a UTF-8 text file"),
    (lambda p: p.write_text(""), "no answers in the file"),
    (lambda p: p.write_text('"a" = [1]\n'), "must be a string or a number"),
    (lambda p: None, "no such file"),
])
def test_a_submission_that_cannot_be_read_is_a_row_with_the_reason(tmp_path, make, reason):
    path = tmp_path / "s.toml"
    make(path)
    scheme = grading.Scheme(points={"rnn.train.flops": 1}, questions={"rnn.train.flops": "?"})
    graded = grading.grade_submission(path, scheme)
    assert reason in graded.error and graded.rows == [] and graded.score == 0
    assert graded.summary()["max_score"] == 1
    validate(grading.results_json(graded))
    assert reason in grading.feedback_markdown(graded)


def test_submission_names_are_safe_folder_names_and_unique():
    names = grading.submission_names([Path("a/Alice Smith.toml"), Path("b/Alice Smith.toml"),
                                      Path(".hidden.toml"), Path("x/../../evil.toml"),
                                      Path("alice smith.ipynb"), Path("ü.toml"),
                                      Path("summary.csv.toml")])
    assert names == ["Alice_Smith", "Alice_Smith-2", "hidden", "evil", "alice_smith-3",
                     "submission", "summary.csv-2"]


def test_student_text_stays_data_in_the_feedback(tmp_path):
    scheme = grading.Scheme(points={"rnn.train.flops": 1}, questions={"rnn.train.flops": "?"})
    sub = tmp_path / "s.toml"
    write_submission(sub, {"rnn.train.flops": "12TLD^2 | `rm` <b>x</b>"})
    graded = grading.grade_submission(sub, scheme, grading_grid())
    text = grading.feedback_markdown(graded)
    row = next(line for line in text.splitlines() if line.startswith("| `rnn.train.flops`"))
    assert "``12TLD^2 \\| `rm` <b>x</b>``" in row  # one code span, the pipe escaped
    doc = grading.results_json(graded)
    assert doc["output_format"] == "text" and doc["tests"][0]["output_format"] == "text"


def grading_grid():
    from analysis.checker import QUICK_GRID

    return QUICK_GRID


# ------------------------------------------------------------------ Gradescope entry point


def test_autograder_mode_grades_the_one_file_in_the_submission_folder(tmp_path, capsys):
    submission, results = tmp_path / "submission", tmp_path / "results"
    (submission / "hw").mkdir(parents=True)
    results.mkdir()
    (results / "stdout").write_text("Gradescope's own log")  # there before we run
    write_submission(submission / "hw" / "answers.toml", {"rnn.train.flops": "8TLD^2"})
    (submission / "README").write_text("hello")
    points = write_points(tmp_path / "points.toml", {"rnn.train.flops": 3})
    code = main(["grade", "--autograder", str(submission), "--out", str(results),
                 "--points", str(points), "--grid", "quick"])
    assert code == 0 and "0 of 3 points" in capsys.readouterr().out
    doc = json.loads((results / "results.json").read_text())
    validate(doc)
    assert doc["score"] == 0 and doc["tests"][0]["name"] == "rnn.train.flops"
    assert "Verdict: incorrect" in doc["tests"][0]["output"]
    assert (results / "stdout").read_text() == "Gradescope's own log"


@pytest.mark.parametrize("files,reason", [
    ([], "holds no file charlm reads"),
    (["a.toml", "sub/b.toml"], "holds 2 .toml files (a.toml, sub/b.toml); submit one"),
])
def test_autograder_mode_says_why_a_submission_folder_cannot_be_graded(
        tmp_path, capsys, files, reason):
    submission, results = tmp_path / "submission", tmp_path / "results"
    submission.mkdir()
    for name in files:
        (submission / name).parent.mkdir(parents=True, exist_ok=True)
        write_submission(submission / name, {"rnn.train.flops": "12TLD^2"})
    points = write_points(tmp_path / "points.toml", {"rnn.train.flops": 3})
    code = main(["grade", "--autograder", str(submission), "--out", str(results),
                 "--points", str(points)])
    capsys.readouterr()
    doc = json.loads((results / "results.json").read_text())
    validate(doc)
    assert code == 0 and doc["score"] == 0 and reason in doc["output"]


def _run_autograder(tmp_path, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    results = tmp_path / "results"
    full = {**os.environ, "CHARLM_SOURCE": str(tmp_path / "source"),
            "CHARLM_SUBMISSION": str(tmp_path / "submission"), "CHARLM_RESULTS": str(results),
            "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run_autograder")], env=full,
                          capture_output=True, text=True, timeout=120)
    return proc, json.loads((results / "results.json").read_text())


def test_run_autograder_grades_with_the_courses_points(tmp_path):
    import sys

    (tmp_path / "source").mkdir()
    write_points(tmp_path / "source" / "points.toml", {"transformer.layer.mlp.flops": 2})
    (tmp_path / "submission").mkdir()
    write_submission(tmp_path / "submission" / "mine.toml",
                     {"transformer.layer.mlp.flops": "16TD^2"})
    proc, doc = _run_autograder(tmp_path, {"CHARLM_PYTHON": sys.executable,
                                           "CHARLM_GRADE_ARGS": "--grid quick --visibility "
                                                                "hidden"})
    assert proc.returncode == 0, proc.stderr
    validate(doc)
    assert doc["score"] == 2 and [t["visibility"] for t in doc["tests"]] == ["hidden"]


def test_run_autograder_writes_results_even_when_charlm_does_not_run(tmp_path):
    (tmp_path / "submission").mkdir()
    proc, doc = _run_autograder(tmp_path, {"CHARLM_PYTHON": "false"})
    assert proc.returncode == 0
    validate(doc)
    assert doc["score"] == 0 and "exited with status 1" in doc["output"]


# ------------------------------------------------------------------ a course's own questions
# A course's model: (T, D) through Linear(D, 2D), a ReLU and Linear(2D, D), no biases.
# By hand: 2 * T * D * 2D + 2 * T * 2D * D = 8 T D^2 (the ReLU does no matmul).
COURSE_MODEL = '''
import torch
from torch import nn


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.up = nn.Linear(d, 2 * d, bias=False)
        self.down = nn.Linear(2 * d, d, bias=False)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def model(T=4, D=4):
    return Mlp(D), torch.randn(T, D)
'''
COURSE_QUESTIONS = '''
[questions."mlp.forward"]
section = "course, question 1"
question = "FLOPs of our MLP's forward on T tokens?"
kind = "derived"
model = "mlp.py:model"
phase = "forward"
derive = { vary = ["T", "D"] }
'''


def test_a_courses_own_question_is_derived_once_for_every_submission(tmp_path, capsys):
    from analysis import checker

    (tmp_path / "mlp.py").write_text(COURSE_MODEL)
    (tmp_path / "questions.toml").write_text(COURSE_QUESTIONS)
    subs = tmp_path / "subs"
    subs.mkdir()
    answers = {"a": ("8TD^2", C), "b": ("4TD^2", X), "c": ("8 T D^2 + T D", C),
               "d": ("8TD^", U)}
    for name, (text, _) in answers.items():
        write_submission(subs / f"{name}.toml", {"mlp.forward": text})
    before = checker._derivation.cache_info().misses
    code = main(["grade", str(subs), "--out", str(tmp_path / "out"), "--questions",
                 str(tmp_path / "questions.toml")])
    capsys.readouterr()
    assert code == 0
    assert checker._derivation.cache_info().misses - before == 1  # one question, one derive
    rows = {r["submission"]: r for r in read_csv(tmp_path / "out" / "grades.csv")}
    assert {k: r["verdict"] for k, r in rows.items()} == {k: v for k, (_, v) in
                                                          answers.items()}
    assert rows["b"]["counterexample"] and "derived from" in rows["b"]["reasoning"]
    assert [float(r["points"]) for r in rows.values()] == [1, 0, 1, 0]
