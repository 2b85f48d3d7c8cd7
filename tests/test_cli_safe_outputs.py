"""Nothing lost, ever: outputs default under runs/ (git-ignored), earlier output is refused
unless --force (or --resume), one writer at a time holds an output's lock, Ctrl-C or
SIGTERM during `charlm compare` keeps what ran and --resume continues it; and --threads,
chosen for the machine by default, is recorded in the logs."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import charlm.experiments
from charlm.cli import build_parser, main
from charlm.commands import common
from charlm.data import builtin_corpus
from charlm.io import LOCK_NAME, OutputLocked, earlier_output, lock_path, output_lock

REPO = Path(__file__).resolve().parent.parent
TEXT = builtin_corpus(seed=4, n_chars=6000)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "stories.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def one_line_error(capsys, argv, *needles):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


# --- the lock ---

def test_a_second_writer_is_refused_at_once_naming_the_first_pid(tmp_path):
    with output_lock(tmp_path / "out"):
        assert (tmp_path / "out" / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputLocked, match=f"pid {os.getpid()}"):
            with output_lock(tmp_path / "out"):
                pass
    with output_lock(tmp_path / "out"):  # released: the next writer gets it
        pass


def test_the_lock_is_removed_and_so_is_an_empty_folder_it_made(tmp_path):
    with output_lock(tmp_path / "new" / "out"):
        pass
    assert not (tmp_path / "new" / "out").exists()
    (tmp_path / "kept").mkdir()
    with output_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "a.csv").write_text("x")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["a.csv"]


def test_a_stale_lock_whose_pid_is_dead_is_taken_over(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    pid = dead_pid()
    (folder / LOCK_NAME).write_text(f"{pid}\n")  # left by a killed run
    with output_lock(folder):
        assert (folder / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert earlier_output(folder) == []


def test_a_file_output_locks_beside_itself(tmp_path):
    target = tmp_path / "table.csv"
    with output_lock(target, "file"):
        assert lock_path(target, "file").is_file()
        with pytest.raises(OutputLocked):
            with output_lock(target, "file"):
                pass
    assert list(tmp_path.iterdir()) == []


def test_the_lock_file_is_not_earlier_output(tmp_path):
    with output_lock(tmp_path):
        assert earlier_output(tmp_path) == []


# --- train ---

TRAIN = ["train", "--model", "rnn", "--hidden", "16", "--embed", "8", "--seq-len", "10",
         "--batch-size", "4", "--steps", "3", "--val-every", "2", "--device", "cpu",
         "--no-progress", "--threads", "1"]


def test_train_into_a_folder_another_run_is_writing_fails_at_once(capsys, tmp_path, corpus):
    out = tmp_path / "run"
    with output_lock(out):  # the first run, still writing
        one_line_error(capsys, [*TRAIN, "--data", str(corpus), "--out", str(out)],
                       f"pid {os.getpid()}", str(out))
    assert earlier_output(out) == []  # the second wrote nothing


def test_train_records_the_thread_count_in_its_log(capsys, tmp_path, corpus):
    assert main([*TRAIN, "--data", str(corpus), "--out", str(tmp_path)]) == 0
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log["threads"]) == [1, 1, 1]
    assert "1 CPU thread(s)" in capsys.readouterr().out


# --- threads ---

TORCH_COMMANDS = ["train", "generate", "flops", "depth", "predict-time", "attention",
                  "gru-step", "compare", "report", "calibrate", "sweep", "check-answers"]


@pytest.mark.parametrize("name", TORCH_COMMANDS)
def test_every_command_that_runs_torch_takes_threads(name, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert "--threads N" in capsys.readouterr().out


def test_threads_must_be_positive(capsys):
    one_line_error(capsys, ["gru-step", "--threads", "0"], "--threads must be a positive")


@pytest.mark.parametrize("cpus, load, expected", [
    (1, (0.0, 0, 0), 1), (2, (0.0, 0, 0), 1),  # at most 2 cores: 1
    (16, (0.2, 0, 0), 8),  # idle: torch's default (8 here)
    (16, (13.5, 0, 0), 2),  # 13.5 of 16 cores busy: what is left
    (16, (40.0, 0, 0), 1),  # overloaded: at least 1
])
def test_the_default_thread_count_leaves_busy_cores_alone(monkeypatch, cpus, load, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(os, "getloadavg", lambda: load)
    assert common.default_threads(8) == expected


# --- compare ---

def test_compare_writes_under_runs_by_default():
    args = build_parser().parse_args(["compare", "--experiment", "rnn-vs-gru"])
    assert Path(args.out).parts[0] == "runs"
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{args.out}/rnn-vs-gru/x.csv"],
                             cwd=REPO)
    assert ignored.returncode == 0  # git ignores what it writes


# the subprocess's experiment: rnn-vs-gru at tiny sizes, each step slowed so that a signal
# sent after the first progress line of a run lands while that run trains
TINY = textwrap.dedent("""
    from dataclasses import replace
    import charlm.experiments as e
    from charlm.train import TrainConfig
    def tiny(model):
        return TrainConfig(model=model, embed=8, hidden=16, seq_len=10, batch_size=4,
                           steps=60)
    exp = e.EXPERIMENTS["rnn-vs-gru"]
    TINY = replace(exp, runs=tuple(replace(r, config=tiny(r.config.model)) for r in exp.runs))
""")
SLOW = TINY + textwrap.dedent("""
    import sys, time
    e.EXPERIMENTS["rnn-vs-gru"] = TINY
    train = e.train
    e.train = lambda cfg, **kw: train(cfg, on_step=lambda *a: time.sleep(0.03), **kw)
    from charlm.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture
def tiny_experiment(monkeypatch):
    space = {}
    exec(TINY, space)
    monkeypatch.setitem(charlm.experiments.EXPERIMENTS, "rnn-vs-gru", space["TINY"])


def compare_argv(corpus, out):
    return ["compare", "--experiment", "rnn-vs-gru", "--data", str(corpus), "--device", "cpu",
            "--val-batches", "1", "--threads", "1", "--out", str(out), "--format", "csv"]


def test_ctrl_c_during_compare_keeps_the_runs_and_resume_continues(
        tmp_path, corpus, capsys, tiny_experiment):
    out = tmp_path / "out"
    script = tmp_path / "slow_compare.py"
    script.write_text(SLOW)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script), *compare_argv(corpus, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=REPO)
    try:
        for line in proc.stderr:  # the GRU run's first progress line: the RNN has finished
            if line.startswith("gru: 1/"):
                break
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    said = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "Traceback" not in stderr, stderr
    assert "stopped run 'GRU'" in said[0] and said[0].rstrip().endswith("--resume")
    folder = out / "rnn-vs-gru"
    assert (folder / "gru" / "checkpoint.pt").is_file()  # the stopped run's checkpoint
    rnn_log = pd.read_csv(folder / "rnn" / "log.csv")  # the finished run
    assert len(rnn_log) == 60
    # without --resume or --force, what is there is refused
    one_line_error(capsys, compare_argv(corpus, out), "--resume", "--force")
    assert main([*compare_argv(corpus, out), "--resume", "--no-progress"]) == 0
    resumed = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(resumed.steps) == [60, 60] and list(resumed.threads) == [1, 1]
    rnn = pd.read_csv(folder / "rnn" / "loss.csv")
    assert list(rnn.elapsed_s) == list(rnn_log.elapsed_s)  # kept, not trained again
    # the same losses as a run never interrupted
    assert main([*compare_argv(corpus, tmp_path / "whole"), "--no-progress"]) == 0
    for run in ("rnn", "gru"):
        whole = pd.read_csv(tmp_path / "whole" / "rnn-vs-gru" / run / "loss.csv")
        again = pd.read_csv(folder / run / "loss.csv")
        assert list(again.step) == list(range(1, 61))
        assert list(again.train_loss) == list(whole.train_loss), run
    assert not list(folder.glob("*/checkpoint.pt"))  # dropped once complete
    # --resume of a complete experiment keeps it as it is
    before = (folder / "summary.csv").read_bytes()
    assert main([*compare_argv(corpus, out), "--resume", "--no-progress"]) == 0
    assert (folder / "summary.csv").read_bytes() == before


def test_compare_force_replaces_and_a_locked_experiment_is_refused(
        tmp_path, corpus, capsys, tiny_experiment):
    argv = [*compare_argv(corpus, tmp_path), "--steps", "2", "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--force"]) == 0
    capsys.readouterr()
    with output_lock(tmp_path / "rnn-vs-gru"):
        one_line_error(capsys, [*argv, "--force"], f"pid {os.getpid()}")


def test_compare_prints_tables_not_a_dict(tmp_path, corpus, capsys):
    argv = ["compare", "--experiment", "architectures", "--steps", "1", "--data", str(corpus),
            "--device", "cpu", "--val-batches", "1", "--threads", "1", "--out",
            str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "':" not in out, out
    widths = next(i for i, line in enumerate(out.splitlines()) if line.startswith("hidden wid"))
    assert out.splitlines()[widths + 1].split() == ["model", "hidden", "params"]


# --- other writers: a file or folder holding earlier output is refused without --force ---

@pytest.mark.parametrize("argv", [
    ["gru-step", "--out", "{out}.png"],  # a figure's suffix must name its format
    ["flops", "--grid", "quick", "--out", "{out}"],
    ["merge", "none.json", "--out", "{out}"],
    ["calibrate", "--out", "{out}"],
    ["attention", "none", "--out", "{out}.png"],
    ["check-answers", "none.toml", "--out", "{out}"],
])
def test_an_existing_out_file_is_refused_without_force(tmp_path, capsys, argv):
    path = next(a for a in argv if "{out}" in a).replace("{out}", str(tmp_path / "earlier.out"))
    target = Path(path)
    target.write_text("keep")
    argv = [a.replace("{out}", str(tmp_path / "earlier.out")) for a in argv]
    one_line_error(capsys, argv, str(target), "already exists", "--force")
    assert target.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no lock left


def test_gru_step_force_replaces_its_figure(tmp_path, capsys):
    target = tmp_path / "g.png"
    target.write_text("old")
    assert main(["gru-step", "--out", str(target), "--force"]) == 0
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_check_answers_refuses_the_markdown_beside_its_csv(tmp_path, capsys):
    (tmp_path / "v.md").write_text("keep")
    one_line_error(capsys, ["check-answers", "none.toml", "--out", str(tmp_path / "v.csv")],
                   "v.md already exists")


def test_report_refuses_an_earlier_report_unless_resumed_or_forced(tmp_path, capsys):
    (tmp_path / "stages.csv").write_text("stage\n")
    one_line_error(capsys, ["report", "--quick", "--out", str(tmp_path)], "--resume",
                   "--force", "stages.csv")


def test_a_sweep_folder_in_use_is_refused(tmp_path, capsys):
    with output_lock(tmp_path):
        one_line_error(capsys, ["sweep", "--collect", str(tmp_path)], f"pid {os.getpid()}")
