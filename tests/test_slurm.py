"""Sweeps for real: shards submitted through `sbatch` to a SLURM cluster (the one-node
cluster of scripts/local_slurm.sh in CI), a shard cancelled with `scancel`, `--resume`, the
local executor, and SIGTERM in a shard. Each bench process imports torch, so these tests
take seconds each (about a minute in all on 2 cores); the grids are tiny.

Skipped only where `sbatch` is absent (the reason is printed); with CI=true an absent
`sbatch` fails instead: CI starts the cluster before `make test` (.ci/run)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.merge import bench_files, item_key
from analysis.sweep import read_keys
from charlm.cli import main

REPO = Path(__file__).resolve().parent.parent
# six of the fastest benchmarks: rnn forward at T 8 and 16 and generation, one attention
# layer under both kernels, and their pair
TINY = """
batch = 2
rounds = 2
[models]
variants = ["rnn"]
phases = ["forward", "generate"]
T = [8, 16]
N = [4]
prompt = 2
[attention]
T = [16]
"""
FAST = "--charlm-budget 0.05"  # adaptive rounds: at most 0.05 s of timed rounds each


def require_slurm():
    if shutil.which("sbatch") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the SLURM tests, but sbatch is absent "
                        "(bash scripts/local_slurm.sh start)")
        pytest.skip("sbatch not found: no SLURM here (bash scripts/local_slurm.sh start "
                    "installs and starts a one-node cluster, as root)")
    ping = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=30)
    assert ping.returncode == 0, ("sbatch is here but no SLURM controller answers "
                                  f"(bash scripts/local_slurm.sh start): {ping.stderr.strip()}")


def grid_file(tmp_path, text=TINY):
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def bench_cmd(grid, json_path, *extra):
    return [sys.executable, "-m", "pytest", *map(str, bench_files()), "--benchmark-only", "-v",
            "-p", "no:cacheprovider", f"--charlm-grid={grid}", "--charlm-device=cpu",
            f"--benchmark-json={json_path}", *FAST.split(), *extra]


def timed_keys(path):
    return {item_key(b["fullname"]) for b in json.loads(Path(path).read_text())["benchmarks"]}


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def job_id(out):
    return json.loads((out / "sweep.json").read_text())["attempts"][-1]["job_id"]


def test_three_shard_sweep_on_slurm_times_what_an_unsharded_run_times(tmp_path, capsys):
    require_slurm()
    start = time.perf_counter()
    grid, out = grid_file(tmp_path), tmp_path / "sweep"
    # the unsharded run of the same grid, here, while the cluster runs the shards
    whole = tmp_path / "whole.json"
    local = subprocess.Popen(bench_cmd(grid, whole), cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
    try:
        code = main(["sweep", "--grid", str(grid), "--shards", "3", "--executor", "slurm",
                     "--out", str(out), "--bench-args", FAST, "--no-report", "--allow-mixed"])
    finally:
        local.wait(timeout=300)
    text = capsys.readouterr().out
    assert code == 0, text
    assert local.returncode == 0
    expected = read_keys(out / "workloads.txt")
    assert len(expected) == 6
    merged = json.loads((out / "merged.json").read_text())
    assert merged["charlm"]["missing"] == []
    assert timed_keys(out / "merged.json") == timed_keys(whole) == set(expected)
    # a progress line per shard; each shard ran through SLURM on this node, exclusively
    assert [line.split(":")[0] for line in text.splitlines() if line.startswith("shard")] == \
        [f"shard {k}/3 (attempt 0)" for k in (1, 2, 3)]
    assert "#SBATCH --exclusive" in (out / "attempt0.sbatch").read_text()
    shards = [json.loads(p.read_text())["charlm"]
              for p in sorted((out / "shards").glob("*.json"))]
    assert sorted(s["shard"]["index"] for s in shards) == [1, 2, 3]
    assert all(s["slurm"]["SLURM_ARRAY_JOB_ID"] == job_id(out) for s in shards)
    assert all(s["node"] and s["status"] == "complete" for s in shards)
    assert all(s["backends"]["threads"] == 1 for s in shards)
    print(f"3-shard SLURM sweep test: {time.perf_counter() - start:.1f} s wall")


def test_scancelled_shard_is_missing_and_resume_fills_it_in(tmp_path, capsys):
    require_slurm()
    start = time.perf_counter()
    grid, out = grid_file(tmp_path), tmp_path / "sweep"
    assert main(["sweep", "--grid", str(grid), "--shards", "3", "--executor", "slurm",
                 "--shared", "--out", str(out), "--bench-args", FAST, "--no-wait"]) == 0
    job = job_id(out)
    log = out / "logs" / "attempt0-shard1.out"
    # cancel task 1 as soon as it runs: SIGTERM reaches its pytest mid-start-up or mid-bench
    wait_for(lambda: log.is_file() and "charlm sweep: shard 1/3" in log.read_text(), 120,
             "shard 1 to start")
    subprocess.run(["scancel", f"{job}_1"], check=True, timeout=30)
    wait_for(lambda: subprocess.run(["squeue", "-h", "-j", job], capture_output=True,
                                    text=True).stdout.strip() == "", 180, "the job array")
    capsys.readouterr()
    assert main(["sweep", "--collect", str(out), "--no-report", "--allow-mixed"]) == 1
    assert "missing" in capsys.readouterr().out
    merged = json.loads((out / "merged.json").read_text())
    shard1 = read_keys(out / "attempt0-shard1.txt")
    finished1 = set()
    if (out / "shards" / "attempt0-shard1.json").is_file():  # it finished some before SIGTERM
        block = json.loads((out / "shards" / "attempt0-shard1.json").read_text())["charlm"]
        assert block["status"] == "interrupted"
        finished1 = set(block["finished"])
    assert merged["charlm"]["missing"] == [k for k in shard1 if k not in finished1]
    assert merged["charlm"]["missing"]  # the cancelled shard did not finish everything
    # resume: only the missing workloads run again; then nothing is missing
    assert main(["sweep", "--resume", str(out), "--no-report", "--allow-mixed"]) == 0
    resumed = {k for p in out.glob("attempt1-shard*.txt") for k in read_keys(p)}
    assert resumed == set(merged["charlm"]["missing"])
    final = json.loads((out / "merged.json").read_text())
    assert final["charlm"]["missing"] == []
    assert timed_keys(out / "merged.json") == set(read_keys(out / "workloads.txt"))
    print(f"scancel + resume SLURM test: {time.perf_counter() - start:.1f} s wall")


def test_local_executor_runs_the_shards_one_after_another(tmp_path, capsys):
    # no SLURM needed; attention only: 2 kernels and their pair
    grid = grid_file(tmp_path, "batch = 2\nrounds = 2\n[attention]\nT = [16]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid", str(grid), "--shards", "2", "--executor", "local",
                 "--out", str(out), "--bench-args", FAST, "--allow-mixed"]) == 0
    text = capsys.readouterr().out
    assert "shard 1/2 (attempt 0): 2 of 2 timed" in text
    assert "shard 2/2 (attempt 0): 1 of 1 timed" in text
    assert timed_keys(out / "merged.json") == set(read_keys(out / "workloads.txt"))
    # and the report of the merge: its bench tables hold every workload
    assert "(environment done, bench done, markdown done)" in text
    timing = (out / "report" / "timing.csv").read_text()
    assert "attention-flash-forward-B2-T16-D128" in timing
    assert "attention-manual-forward-B2-T16-D128" in timing


def test_sigterm_in_a_shard_writes_what_it_finished(tmp_path):
    # the second benchmark is slow (a 1024-step recurrent loop, counted and traced), so
    # SIGTERM sent when the first has passed arrives while the second runs
    grid = grid_file(tmp_path, "batch = 1\nrounds = 2\n[models]\nvariants = ['rnn']\n"
                               "phases = ['forward']\nT = [8, 1024]\n")
    out = tmp_path / "shard.json"
    proc = subprocess.Popen(bench_cmd(grid, out), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "PASSED" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, "".join(lines) + rest  # pytest's "interrupted"
    data = json.loads(out.read_text())
    assert [b["param"] for b in data["benchmarks"]] == ["rnn-forward-B1-T8-D256-L1-cpu"]
    assert data["charlm"]["status"] == "interrupted"
    assert data["charlm"]["finished"] == [
        "test_models.py::test_model_phase[rnn-forward-B1-T8-D256-L1-cpu]"]
    assert len(data["charlm"]["grid_workloads"]) == 2
