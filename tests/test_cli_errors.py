"""Mistakes a new user makes, each a clean line: exit 2, one line on stderr naming the flag as
typed, no traceback, no work done first (issue 17)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlm.cli import main

ROOT = Path(__file__).resolve().parent.parent


def one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return captured


# --- 1. --device cuda on a torch without CUDA: one shared check, before any work ---

@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("argv", [
    ["predict-time", "--model", "rnn"],
    ["calibrate"],
    ["calibrate", "--out", "{tmp}/machine.json"],
    ["generate", "{tmp}/missing.pt"],
    ["attention", "{tmp}/missing.pt", "--out", "{tmp}/a.png"],
    ["train", "--out", "{tmp}/run", "--no-progress"],
    ["compare", "--experiment", "rnn-vs-gru", "--out", "{tmp}/cmp", "--no-progress"],
    ["report", "--quick", "--out", "{tmp}/report"],
    ["sweep", "--executor", "local", "--out", "{tmp}/sweep"],
], ids=lambda argv: " ".join(argv[:3]))
def test_cuda_without_cuda_is_one_line_naming_torch(no_cuda, capsys, tmp_path, argv):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--device", "cuda"]
    one_line_error(capsys, argv, "--device cuda", "CUDA is not available",
                   torch.__version__)
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing calibrated


def test_a_cuda_machine_file_predicts_without_cuda(no_cuda, capsys):
    machine = ROOT / "results/reference/gpu-h200/machine.json"
    assert main(["predict-time", "--model", "rnn", "--seq-len", "4", "--device", "cuda",
                 "--machine", str(machine)]) == 0
    assert "predicted" in capsys.readouterr().out


# --- 2. output into a pipe that closes early ---

def test_a_pipe_closed_early_ends_quietly():
    with subprocess.Popen([sys.executable, "-m", "charlm", "flops", "--model", "gru",
                           "--no-measure"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        proc.stdout.close()  # as `| head -c 10` does once it has what it wants
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141
    assert err == ""


# --- 3. a calibration says so before it starts; a reused machine file says which ---

def test_planned_seconds_is_the_matmul_budget():
    from analysis.calibrate import planned_seconds

    # 2 passes x 3 layouts (nn, nt, tn) x 2^3 shapes x 0.5 s
    assert planned_seconds("cpu", axis=(1, 8), passes=2, budget_s=0.5) == 24.0


@pytest.fixture
def fake_calibration(monkeypatch, tmp_path, capsys):
    """Calibration replaced by the committed CPU machine file; `said` holds what stderr had
    said when it started."""
    import analysis.calibrate as calibrate

    monkeypatch.chdir(tmp_path)
    said = []

    def calibrated(device, threads=None, **kw):
        said.append(capsys.readouterr().err)
        return calibrate.load_machine(ROOT / "results/reference/cpu/machine.json")

    monkeypatch.setattr(calibrate, "calibrate", calibrated)
    return said


@pytest.mark.parametrize("argv", [["predict-time", "--model", "rnn", "--seq-len", "4"],
                                  ["calibrate"]])
def test_a_calibration_is_announced_before_it_starts(fake_calibration, capsys, argv):
    from analysis.calibrate import default_cache_path, planned_seconds

    assert main(argv) == 0
    path = default_cache_path("cpu", 1)
    assert path.is_file()
    [line] = fake_calibration[0].splitlines()
    assert line.startswith(f"calibrating this machine (no machine file at {path}")
    assert f"at least {planned_seconds('cpu'):.0f} s" in line


def test_a_short_calibration_is_announced_and_cached_apart(fake_calibration, capsys,
                                                           monkeypatch):
    import analysis.calibrate as calibrate
    from analysis.calibrate import default_cache_path, planned_seconds

    asked, fake = [], calibrate.calibrate
    monkeypatch.setattr(calibrate, "calibrate", lambda *a, **kw: asked.append(kw) or fake(*a))
    assert main(["calibrate", "--passes", "1", "--format", "json"]) == 0
    assert [kw["passes"] for kw in asked] == [1]
    # the CLI's calibration measures the workloads' own code last
    from analysis.predict import measure_code_costs

    assert [kw["code_costs"] for kw in asked] == [measure_code_costs]
    path = default_cache_path("cpu", 1, passes=1)
    assert path.name.endswith("-t1-p1.json") and path.is_file()
    assert not default_cache_path("cpu", 1).exists()  # a full report never reuses it
    [line] = fake_calibration[0].splitlines()
    assert f"at least {planned_seconds('cpu', passes=1):.0f} s of timed matmuls in 1 pass," \
        in line


def test_a_pass_count_below_one_is_one_line(fake_calibration, capsys):
    one_line_error(capsys, ["calibrate", "--passes", "0"], "--passes must be a positive")
    assert fake_calibration == []


def test_calibrate_says_it_reuses_the_cached_file(fake_calibration, capsys):
    from analysis.calibrate import default_cache_path, load_machine

    assert main(["calibrate", "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--format", "json"]) == 0  # calibrates no more
    assert len(fake_calibration) == 1
    path = default_cache_path("cpu", 1)
    date = load_machine(path).date
    assert capsys.readouterr().err == (f"reusing the machine file {path} (calibrated {date}); "
                                       "calibrate again with charlm calibrate --force\n")


# --- 4. the report's --only is checked before any stage runs ---

@pytest.fixture
def no_report(monkeypatch):
    import analysis.report

    def build_report(cfg, progress=None):
        raise AssertionError("a stage ran")

    monkeypatch.setattr(analysis.report, "build_report", build_report)


def test_report_only_matching_nothing_is_refused_before_any_stage(no_report, capsys, tmp_path):
    one_line_error(capsys, ["report", "--quick", "--only", "NOMATCH", "--out", str(tmp_path)],
                   "--only 'NOMATCH' matches no benchmark", "gru", "transformer", "train")
    assert list(tmp_path.iterdir()) == []


def test_report_stage_table_stays_aligned_with_a_long_failure(monkeypatch, capsys, tmp_path):
    import pandas as pd

    import analysis.report

    failure = "failed: " + "pytest exited with 5: no benchmark matched " * 3
    status = pd.DataFrame([{"stage": "bench", "status": failure, "seconds": 80.25},
                           {"stage": "markdown", "status": "done", "seconds": 0.5}])
    monkeypatch.setattr(analysis.report, "build_report", lambda cfg, progress: status)
    assert main(["report", "--quick", "--out", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()[:-1]
    assert max(len(line) for line in lines) <= 100
    ends = {len(line) for line in lines if line.endswith(("80.25", "0.5", "seconds"))}
    assert len(ends) == 1, lines  # the seconds column is one column


# --- 5. merge takes bench JSONs only ---

@pytest.mark.parametrize("text, found", [
    (None, ("'benchmarks' list", "found keys device, name, torch")),  # a machine file
    ("[1, 2]", ("it holds a JSON list, not an object",)),
    ("{oops", ("not JSON",)),
])
def test_merge_of_what_is_no_bench_json_names_the_file(capsys, tmp_path, text, found):
    path = ROOT / "results/reference/cpu/machine.json"
    if text is not None:
        path = tmp_path / "other.json"
        path.write_text(text)
    one_line_error(capsys, ["merge", str(path), "--out", str(tmp_path / "m.json")],
                   f"{path}: not a bench JSON", *found)
    assert not (tmp_path / "m.json").exists()


# --- 6. a size flag the chosen quantity does not use ---

@pytest.mark.parametrize("argv, message", [
    (["flops", "--quantity", "train", "--new-tokens", "5"],
     "--new-tokens applies only to --quantity generate"),
    (["flops", "--quantity", "train", "--new-tokens", "1"],  # the default, but typed
     "--new-tokens applies only to --quantity generate"),
    (["flops", "--quantity", "forward", "--prompt=3"],  # abbreviated, with =
     "--prompt-len applies only to --quantity generate"),
    (["flops", "--quantity", "params", "--batch", "2"], "--batch applies only to --quantity"),
    (["flops", "--quantity", "generate", "--seq-len", "8"],
     "--seq-len applies only to --quantity forward, backward, train"),
    (["depth", "--quantity", "train", "--new-tokens", "5"],
     "--new-tokens applies only to --quantity generate"),
    (["predict-time", "--quantity", "train", "--new-tokens", "5"],
     "--new-tokens applies only to --quantity generate"),
    (["flops", "--quantity", "train", "--kv-cache"], "--kv-cache (a KV cache) applies only"),
])
def test_a_size_flag_the_quantity_does_not_use_is_refused(capsys, argv, message):
    one_line_error(capsys, [*argv, "--model", "gru", "--no-measure"]
                   if argv[0] == "flops" else [*argv, "--model", "gru"], message)


def test_only_flags_typed_count_as_given():
    from charlm.cli import build_parser, given_flags

    flops = build_parser()._subparsers._group_actions[0].choices["flops"]
    assert given_flags(flops, ["--model", "gru", "--new=3", "--kv-cache"]) == \
        {"model", "new_tokens", "kv_cache"}
    assert flops.get_default("new_tokens") == 1  # the defaults are back


# --- 7. a figure's --out names a format matplotlib writes ---

@pytest.mark.parametrize("name, needle", [("a.xyz", ".xyz is not a figure format"),
                                          ("attention", "no suffix names its format")])
def test_a_figure_out_that_names_no_format_is_refused(capsys, tmp_path, name, needle):
    out = tmp_path / name
    for argv in (["attention", str(tmp_path / "missing.pt")], ["gru-step"]):
        one_line_error(capsys, [*argv, "--out", str(out)], f"--out {out}: {needle}",
                       ".png", ".pdf", ".svg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".pdf", b"%PDF"),
                                           (".PNG", b"\x89PNG")])
def test_a_figure_is_written_in_the_format_its_suffix_names(capsys, tmp_path, suffix, magic):
    out = tmp_path / f"gru{suffix}"
    assert main(["gru-step", "--out", str(out)]) == 0
    assert magic in out.read_bytes()[:400]


# --- 8. API argument names reach messages as the flags ---

def test_generate_length_below_zero_names_the_flag(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--model", "gru", "--hidden", "8", "--embed", "4", "--seq-len", "8",
                 "--batch-size", "4", "--steps", "1", "--device", "cpu", "--no-progress",
                 "--out", str(run)]) == 0
    captured = one_line_error(capsys, ["generate", str(run), "--length", "-1"],
                              "--length must be >= 0, got -1")
    assert "max_new_tokens" not in captured.err


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "--threads must be a positive integer"),
    (["--batch", "0"], "--batch (B) must be a positive integer"),
])
def test_predict_time_checks_its_input_before_calibrating(fake_calibration, capsys, argv,
                                                          message):
    one_line_error(capsys, ["predict-time", "--model", "rnn", *argv], message)
    assert fake_calibration == []  # never calibrated


# --- 9. the out-of-memory hint fits the device that ran out ---

class OutOfMemoryError(RuntimeError):  # named as torch's (CUDA) OutOfMemoryError
    pass


@pytest.mark.parametrize("error, suggests_cpu", [
    (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 4e10 bytes"),
     False),
    (MemoryError(), False),
    (OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB"), True),
], ids=["cpu", "python", "cuda"])
def test_the_memory_hint_fits_the_device(monkeypatch, capsys, error, suggests_cpu):
    import charlm.commands.train as train

    def run(args):
        raise error

    monkeypatch.setattr(train, "run", run)
    err = one_line_error(capsys, ["train", "--device", "cpu"], "out of memory",
                         "try smaller --batch-size").err
    assert ("--device cpu" in err) == suggests_cpu
