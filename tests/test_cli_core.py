"""`charlm train` and `charlm generate`: a real round trip, run folders, signals, and
one-line errors (exit 2) that name the flags."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlm.cli import main
from charlm.data import builtin_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "stories.txt"
    path.write_text(builtin_corpus(seed=2, n_chars=5000), encoding="utf-8")
    return path


TRAIN = ["train", "--hidden", "16", "--embed", "8", "--seq-len", "10", "--batch-size", "4",
         "--steps", "3", "--val-every", "2", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main([*TRAIN, "--model", "gru", "--data", str(corpus), "--out", str(out)]) == 0
    return out


def test_train_writes_checkpoint_and_log(run_dir, capsys):
    assert (run_dir / "checkpoint.pt").is_file()
    log = (run_dir / "log.csv").read_text().splitlines()
    assert log[0] == "step,train_loss,val_loss,elapsed_s,tokens_per_s,threads" and len(log) == 4


def test_train_into_an_existing_run_is_refused(run_dir, corpus, capsys):
    before = (run_dir / "checkpoint.pt").read_bytes()
    err = one_line_error(capsys, [*TRAIN, "--model", "gru", "--data", str(corpus), "--out",
                                  str(run_dir)], "already holds a run")
    assert "--resume" in err and "--force" in err
    assert (run_dir / "checkpoint.pt").read_bytes() == before


def test_force_replaces_an_existing_run(corpus, tmp_path, capsys):
    argv = [*TRAIN, "--model", "rnn", "--data", str(corpus), "--out", str(tmp_path)]
    assert main(argv) == 0
    argv[argv.index("--steps") + 1] = "2"
    assert main([*argv, "--force"]) == 0
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 2


def test_train_resume_extends_the_run(run_dir, corpus, capsys):
    args = [*TRAIN, "--model", "gru", "--data", str(corpus), "--out", str(run_dir), "--resume"]
    args[args.index("--steps") + 1] = "5"
    assert main(args) == 0
    assert "step 5:" in capsys.readouterr().out


def test_generate_prints_prompt_and_continuation(run_dir, capsys):
    args = ["generate", str(run_dir / "checkpoint.pt"), "--prompt", "Lily", "--length", "30",
            "--seed", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("Lily") and len(first.rstrip("\n")) == 34
    assert main(args) == 0
    assert capsys.readouterr().out == first  # same seed, same text
    assert main(["generate", str(run_dir), "--greedy", "--top-k", "3", "--temperature",
                 "0.5", "--length", "5"]) == 0


def test_generate_use_cache_for_transformer(corpus, tmp_path, capsys):
    assert main([*TRAIN, "--model", "transformer", "--embed", "16", "--heads", "2",
                 "--block-size", "10", "--data", str(corpus), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    outs = []
    for extra in ([], ["--use-cache"]):
        assert main(["generate", str(tmp_path), "--prompt", "The", "--length", "25",
                     "--greedy", *extra]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def one_line_error(capsys, argv, needle):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors exit directly
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert needle in err, err
    return err


@pytest.mark.parametrize("extra, needle", [
    (["--model", "transformer", "--heads", "5"], "divisible by --heads 5"),
    (["--model", "transformer", "--seq-len", "101"], "--seq-len 101 exceeds --block-size 100"),
    (["--hidden", "0"], "--hidden must be a positive integer"),
    (["--steps", "-1"], "--steps must be a positive integer"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--val-every", "0"], "--val-every must be a positive integer"),
    (["--data-chars", "0"], "--data-chars must be a positive integer"),
    (["--model", "mamba"], "invalid choice: 'mamba'"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--lr", "0"],
     "cuda" if not torch.cuda.is_available() else "lr must be"),
])
def test_train_bad_input_is_one_line(capsys, tmp_path, extra, needle):
    one_line_error(capsys, ["train", "--out", str(tmp_path), "--no-progress", *extra], needle)


def test_resume_with_another_width_names_the_default(corpus, tmp_path, capsys):
    argv = [*TRAIN, "--model", "gru", "--data", str(corpus), "--out", str(tmp_path)]
    argv.remove("--hidden"), argv.remove("16")  # the default width: 256
    assert main(argv) == 0
    one_line_error(capsys, [*argv, "--hidden", "128", "--resume"],
                   "--hidden: the checkpoint has 256, now 128")


def test_out_that_is_a_file_is_one_line_naming_it(corpus, tmp_path, capsys):
    path = tmp_path / "short.txt"
    path.write_text("keep")
    one_line_error(capsys, [*TRAIN, "--data", str(corpus), "--out", str(path)], str(path))
    assert path.read_text() == "keep"


def test_train_corpus_shorter_than_one_sequence(capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("tiny", encoding="utf-8")
    one_line_error(capsys, ["train", "--data", str(short), "--out", str(tmp_path / "r"),
                            "--no-progress"], "corpus too short: 4 characters")


def test_train_bad_utf8_and_missing_corpus(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\xc3(")
    one_line_error(capsys, ["train", "--data", str(bad), "--no-progress"], "byte offset 2")
    one_line_error(capsys, ["train", "--data", str(tmp_path / "none.txt"), "--no-progress"],
                   "no such corpus")


def test_generate_errors_are_one_line(run_dir, tmp_path, capsys):
    one_line_error(capsys, ["generate", str(tmp_path / "missing.pt")], "no checkpoint at")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    one_line_error(capsys, ["generate", str(junk)], "junk.pt is not a PyTorch file")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    one_line_error(capsys, ["generate", str(empty)], "empty.pt is empty (0 bytes)")
    one_line_error(capsys, ["generate", str(run_dir), "--prompt", "Lily\u00a7~"],
                   "characters not in the vocabulary: '~', '\u00a7'")
    one_line_error(capsys, ["generate", str(run_dir), "--temperature", "0"], "temperature")
    one_line_error(capsys, ["generate", str(run_dir), "--use-cache"], "transformer only")


def test_error_from_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "charlm", "generate", str(tmp_path / "x.pt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("charlm generate: error: no checkpoint at")
    assert proc.stderr.count("\n") == 1


def test_sigterm_saves_says_how_to_resume_and_resume_works(corpus, tmp_path):
    """A real `python -m charlm train` stopped by SIGTERM after its first progress line."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "charlm", "train", "--model", "rnn", "--hidden", "16",
            "--embed", "8", "--seq-len", "10", "--batch-size", "4", "--steps", "100000",
            "--val-every", "1000", "--device", "cpu", "--data", str(corpus), "--out", str(out)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=Path(__file__).resolve().parent.parent)
    try:
        first = proc.stderr.readline()  # not a terminal: a plain progress line, at step 1
        assert first.startswith("rnn: 1/100000 steps"), first
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "(SIGTERM)" in lines[0] and "Traceback" not in stderr
    assert lines[0].rstrip().endswith("--resume")
    stopped = int(lines[0].split("interrupted at step ")[1].split()[0])
    assert (out / "checkpoint.pt").is_file() and stopped >= 1
    resumed = [*argv[3:]]
    resumed[resumed.index("--steps") + 1] = str(stopped + 2)
    assert main([*resumed, "--resume", "--no-progress"]) == 0
    log = (out / "log.csv").read_text().splitlines()
    assert log[-1].startswith(f"{stopped + 2},") and len(log) == 1 + stopped + 2
