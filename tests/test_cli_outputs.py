"""Where commands write: an --out that is an existing file or folder of the wrong kind is one
line naming the user's path (never a temporary file's name), and the atomic writers report
the target path; progress goes to stderr as plain lines when stderr is not a terminal."""

import io

import pandas as pd
import pytest

from charlm.cli import main
from charlm.io import atomic_to_csv, atomic_write_text
from charlm.progress import Progress


def one_line(capsys, argv, *needles):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and ".tmp" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# --- the atomic writers ---

def test_atomic_write_onto_a_folder_names_the_target(tmp_path):
    target = tmp_path / "table.csv"
    target.mkdir()
    with pytest.raises(ValueError) as info:
        atomic_write_text(target, "x")
    assert str(target) in str(info.value) and "folder" in str(info.value)
    assert ".tmp" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary left behind


def test_atomic_write_below_a_file_names_the_file(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    with pytest.raises(ValueError, match=f"{blocker} is a file, not a folder"):
        atomic_to_csv(pd.DataFrame({"a": [1]}), blocker / "sub" / "t.csv")


def test_an_os_error_while_writing_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    import errno

    import charlm.io

    def replace(src, dst):  # what os.replace says when the target became a folder meanwhile
        raise IsADirectoryError(errno.EISDIR, "Is a directory", src)

    monkeypatch.setattr(charlm.io.os, "replace", replace)
    target = tmp_path / "t.txt"
    with pytest.raises(ValueError) as info:
        atomic_write_text(target, "x")
    assert str(info.value) == f"cannot write {target}: Is a directory"
    assert list(tmp_path.iterdir()) == []  # the temporary is removed


# --- commands ---

def test_compare_out_that_is_a_file(capsys, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("keep")
    one_line(capsys, ["compare", "--experiment", "rnn-vs-gru", "--steps", "1", "--out",
                      str(path)], str(path), "--out")
    assert path.read_text() == "keep"


def test_flops_grid_out_that_is_a_folder(capsys, tmp_path):
    one_line(capsys, ["flops", "--grid", "quick", "--out", str(tmp_path)], str(tmp_path),
             "is a folder")


def test_gru_step_out_below_a_file(capsys, tmp_path):
    blocker = tmp_path / "figs"
    blocker.write_text("a file")
    one_line(capsys, ["gru-step", "--out", str(blocker / "g.png")], str(blocker))


def test_attention_out_that_is_a_folder(capsys, tmp_path):
    one_line(capsys, ["attention", str(tmp_path / "none"), "--out", str(tmp_path)],
             str(tmp_path), "is a folder")


# --- progress ---

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_off_a_terminal_is_a_line_every_few_seconds():
    stream, clock = io.StringIO(), Clock()
    bar = Progress(10, desc="gru", stream=stream, tty=False, every_s=5.0, clock=clock)
    for step in range(1, 11):
        clock.now = float(step)  # one second per step
        bar.update(1, loss="1.000")
    lines = stream.getvalue().splitlines()
    # the first step, then 5 s after the last line (step 6), then the last step (10)
    assert [line.split()[1] for line in lines] == ["1/10", "6/10", "10/10"]
    assert lines[-1] == "gru: 10/10 steps (100%), 10.0 s, loss=1.000"
    assert "\r" not in stream.getvalue()


def test_progress_disabled_writes_nothing():
    stream = io.StringIO()
    with Progress(3, stream=stream, tty=False, enabled=False) as bar:
        bar.update(3)
    assert stream.getvalue() == ""


def test_progress_on_a_terminal_is_a_bar():
    stream = io.StringIO()
    with Progress(3, desc="gru", stream=stream, tty=True) as bar:
        bar.update(3)
    assert "\r" in stream.getvalue() and "3/3" in stream.getvalue()


def test_train_writes_plain_progress_lines_into_a_log(capsys, tmp_path):
    from charlm.data import builtin_corpus

    corpus = tmp_path / "c.txt"
    corpus.write_text(builtin_corpus(seed=1, n_chars=4000), encoding="utf-8")
    assert main(["train", "--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch-size",
                 "4", "--steps", "3", "--device", "cpu", "--data", str(corpus), "--out",
                 str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    assert "\r" not in err
    assert err.splitlines()[0].startswith("rnn: 1/3 steps (33%)")
    assert err.splitlines()[-1].startswith("rnn: 3/3 steps (100%)")
