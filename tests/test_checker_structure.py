"""How the checker is put together: one import direction to the GRU exercises, typed
verdicts, question kinds from one source, and no branching on a model's name."""

import ast
import csv
import importlib
import inspect
import json
import sys

import pytest

import analysis
from analysis import checker, gru_exercises
from analysis.verdicts import Verdict
from charlm.cli import main

TINY = {"T": (2,), "D": (4,), "L": (1,), "H": (2,), "V": (5,)}


def _imported_names(module) -> set[str]:
    """Every module name `module`'s source imports, however (import, from, __import__,
    importlib.import_module with a constant)."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("__import__", "importlib.import_module", "import_module"):
                names.add(str(node.args[0].value))
    return names


def test_gru_exercises_import_nothing_from_the_checker():
    assert not any(n == "analysis.checker" or n.startswith("analysis.checker.")
                   for n in _imported_names(gru_exercises))


def test_the_checker_imports_the_gru_table_plainly():
    source = inspect.getsource(checker)
    assert "__import__" not in source and "import_module" not in source
    assert "analysis.gru_exercises" in _imported_names(checker)
    extra = checker.EXTRA_CHECKS[gru_exercises.PREFIX]
    assert extra.check is gru_exercises.check_answer and extra.questions is gru_exercises.questions


def test_importing_the_gru_exercises_alone_does_not_import_the_checker(monkeypatch):
    for name in ("analysis.checker", "analysis.gru_exercises"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    # keep the package attributes as they were once the test is over
    monkeypatch.setattr(analysis, "gru_exercises", gru_exercises)
    monkeypatch.setattr(analysis, "checker", checker)
    fresh = importlib.import_module("analysis.gru_exercises")
    assert fresh is not gru_exercises
    assert "analysis.checker" not in sys.modules


def test_cost_verdicts_are_the_enum_and_files_carry_its_strings(tmp_path, capsys):
    q = checker.homework_questions()["transformer.layer.sequential_matmuls"]
    assert checker.check_question(q, "6", TINY)["verdict"] is Verdict.CORRECT
    assert checker.check_question(q, "7", TINY)["verdict"] is Verdict.INCORRECT
    path = tmp_path / "a.toml"
    path.write_text('"transformer.layer.sequential_matmuls" = "7"\n'
                    '"gru.exercise3.memory" = "update_weight = 3"\n')
    out = tmp_path / "v.csv"
    assert main(["check-answers", str(path), "--grid", "quick", "--format", "json",
                 "--out", str(out)]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in rows] == ["incorrect", "correct"]
    with open(out, newline="") as fh:
        assert [r["verdict"] for r in csv.DictReader(fh)] == ["incorrect", "correct"]


def test_question_kinds_come_from_the_derivations(tmp_path):
    assert set(checker.DERIVATIONS) == set(checker.MEASUREMENTS)
    bad = tmp_path / "q.toml"
    bad.write_text('[questions."x.y"]\nsection = "s"\nquestion = "q"\nkind = "speed"\n'
                   'model = "transformer"\n')
    with pytest.raises(ValueError, match="kind must be one of flops, depth, sublayer_depth, "
                                         "derived, got 'speed'"):
        checker.homework_questions(bad)


def test_the_checker_does_not_branch_on_model_names():
    """Flags come from the architecture table (analysis.architectures), not from names."""
    tree = ast.parse(inspect.getsource(checker))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            constants = [c.value for c in [node.left, *node.comparators]
                         if isinstance(c, ast.Constant)]
            assert not any(isinstance(v, str) and v.startswith(("transformer", "rnn", "gru",
                                                                   "mlrnn"))
                           for v in constants), ast.unparse(node)
