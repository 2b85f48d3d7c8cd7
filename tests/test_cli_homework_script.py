"""scripts/train_homework.py: titled by the steps it really ran, checkpoints under --results
when given, and a --help that is not cut mid-sentence."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "train_homework.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_homework", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_is_whole(script):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    # the docstring's sentences arrive whole, up to its last one
    assert "2000 steps unless --steps says otherwise." in text
    assert "A rerun replaces both." in text


def test_default_folders_are_named_by_the_steps(script):
    results, checkpoints = script.folders(50, None)
    assert (results.parts[-2:], checkpoints.parts[-2:]) == (
        ("results", "homework_50_steps"), ("runs", "homework_50_steps"))
    assert script.folders(50, "/tmp/r") == (Path("/tmp/r"), Path("/tmp/r/checkpoints"))


def test_a_short_run_is_titled_by_its_steps_and_keeps_checkpoints_in_results(
        script, tmp_path, monkeypatch):
    import charlm.train
    from charlm.data import builtin_corpus

    small = builtin_corpus(seed=1, n_chars=20_000)  # the full 2M characters take too long
    monkeypatch.setattr(charlm.train, "load_corpus", lambda *a, **k: small)
    script.main(["--steps", "3", "--results", str(tmp_path), "--no-progress"])
    summary = (tmp_path / "summary.md").read_text()
    assert summary.splitlines()[0] == "# 3 steps of the homework's RNN and GRU on the built-in " \
                                      "corpus"
    assert "2000" not in summary.splitlines()[0]
    for model in ("rnn", "gru"):
        assert (tmp_path / "checkpoints" / model / "checkpoint.pt").is_file()
        assert len((tmp_path / model / "log.csv").read_text().splitlines()) == 1 + 3
    script.main(["--steps", "2", "--results", str(tmp_path), "--no-progress"])  # a rerun
    assert (tmp_path / "summary.md").read_text().startswith("# 2 steps")
