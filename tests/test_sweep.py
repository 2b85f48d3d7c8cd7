"""Shards, merges and SLURM scripts of analysis.sweep, on hand-made bench JSONs (the real
runs through pytest and sbatch are in tests/test_slurm.py)."""

import itertools
import json
import random
from pathlib import Path

import pytest

from analysis.merge import item_key, merge
from analysis.sweep import (
    BENCH_OVERHEAD_S,
    SweepConfig,
    assign,
    collect,
    machine_costs,
    parse_shard,
    sbatch_script,
)
from charlm.cli import main

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def test_parse_shard():
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--charlm-shard"):
            parse_shard(bad)


def test_item_key_drops_directories_only():
    assert item_key("bench/test_models.py::test_x[a-b/c]") == "test_models.py::test_x[a-b/c]"
    assert item_key("/abs/bench/test_a.py::t") == "test_a.py::t"
    assert item_key("test_a.py::t") == "test_a.py::t"


@pytest.mark.parametrize(("n_keys", "count"), [(0, 1), (1, 3), (6, 3), (7, 3), (10, 4)])
def test_every_key_in_exactly_one_shard_balanced_by_count(n_keys, count):
    keys = [f"k{i:02d}" for i in range(n_keys)]
    shards = assign(keys, count)
    assert len(shards) == count
    flat = [k for s in shards for k in s]
    assert sorted(flat) == keys  # each key once
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    # the same shards whatever order the keys come in (each process collects its own)
    shuffled = keys[:]
    random.Random(0).shuffle(shuffled)
    assert [sorted(s) for s in assign(shuffled, count)] == [sorted(s) for s in shards]


def test_balance_by_predicted_time_is_longest_first():
    # by hand: a(5) -> shard 1; b(4) -> 2; c(3) -> 2 (4 < 5); d(3) -> 1 (5 < 7);
    # e(3) -> 2 (7 < 8): totals 8 and 10
    costs = {"a": 5, "b": 4, "c": 3, "d": 3, "e": 3}
    assert assign(list(costs), 2, costs) == [["a", "d"], ["b", "c", "e"]]
    # the longest-first bound: largest total <= 4/3 of the best split's (9 here: ab | cde)
    totals = [sum(costs[k] for k in s) for s in assign(list(costs), 2, costs)]
    assert max(totals) <= 4 / 3 * 9


def test_balance_by_time_beats_count_on_skewed_costs():
    costs = {f"k{i}": (100.0 if i < 2 else 1.0) for i in range(8)}
    by_time = [sum(costs[k] for k in s) for s in assign(list(costs), 2, costs)]
    assert by_time == [103.0, 103.0]
    best_count_split = min(
        max(sum(costs[k] for k in part), sum(costs.values()) - sum(costs[k] for k in part))
        for part in itertools.combinations(costs, 4))
    assert max(by_time) <= best_count_split


def bench(key, median=0.01):
    return {"fullname": f"bench/{key}", "name": key.split("::")[1],
            "stats": {"median": median, "rounds": 3, "total": 3 * median},
            "extra_info": {}}


def shard_json(keys, grid, *, commit="abc1234", device_name="x86_64", torch="2.13.0",
               threads=1, index=1, count=2, failures=()):
    return {
        "machine_info": {"node": "n1"}, "commit_info": {"id": commit + "ffff"},
        "benchmarks": [bench(k) for k in keys],
        "charlm": {"grid": "g.toml", "commit": commit, "backends": {"threads": threads},
                   "env": {"cpu": {"device_name": device_name, "torch": torch}},
                   "shard": {"index": index, "count": count}, "node": f"node{index}",
                   "status": "complete", "grid_workloads": grid, "workloads": list(keys)},
        "charlm_failures": [{"test": f"bench/{k}", "error": "X"} for k in failures],
    }


GRID = ["test_m.py::t[a]", "test_m.py::t[b]", "test_m.py::t[c]", "test_m.py::t[d]"]


def test_merge_unions_shards_drops_duplicates_and_lists_missing():
    a = shard_json(GRID[:2], GRID, index=1)
    b = shard_json([GRID[1]], GRID, index=2, failures=[GRID[3]])  # b duplicates a's second
    merged = merge([("a.json", a), ("b.json", b)])
    keys = [item_key(x["fullname"]) for x in merged.data["benchmarks"]]
    assert keys == GRID[:2]
    assert merged.duplicates == 1
    assert merged.missing == GRID[2:]  # c never ran; d failed
    assert merged.data["charlm"]["missing"] == GRID[2:]
    assert [f["test"] for f in merged.data["charlm_failures"]] == [f"bench/{GRID[3]}"]
    assert [s["node"] for s in merged.sources] == ["node1", "node2"]
    assert [s["timed"] for s in merged.sources] == [2, 0]


def _failed_then_resumed():
    """Two attempts' shard JSONs, built by hand: attempt 1 timed a, failed c and d; the
    resume (attempt 2) timed b and c, failed d again."""
    first = {
        "machine_info": {"node": "n1"}, "commit_info": {"id": "abc1234ffff"},
        "benchmarks": [bench(GRID[0])],
        "charlm": {"grid": "g.toml", "commit": "abc1234", "backends": {"threads": 1},
                   "env": {"cpu": {"device_name": "x86_64", "torch": "2.13.0"}},
                   "shard": {"index": 1, "count": 1}, "node": "node1", "status": "complete",
                   "grid_workloads": GRID, "workloads": GRID},
        "charlm_failures": [{"test": f"bench/{GRID[2]}", "error": "RuntimeError: oom"},
                            {"test": f"bench/{GRID[3]}", "error": "X"}],
    }
    resumed = {**first, "benchmarks": [bench(GRID[1]), bench(GRID[2])],
               "charlm_failures": [{"test": f"bench/{GRID[3]}", "error": "Y"}]}
    return first, resumed


@pytest.mark.parametrize("order", ["failed first", "timed first"])
def test_a_failure_another_shard_timed_is_no_failure_after_the_merge(order):
    # c is timed by the resume: neither a failure nor missing after the merge, whichever
    # file comes first; d failed in both: one failure, and missing
    first, resumed = _failed_then_resumed()
    shards = [("attempt1.json", first), ("attempt2.json", resumed)]
    if order == "timed first":
        shards.reverse()
    merged = merge(shards)
    assert [f["test"] for f in merged.data["charlm_failures"]] == [f"bench/{GRID[3]}"]
    assert merged.missing == [GRID[3]]
    assert sorted(merged.data["charlm"]["finished"]) == sorted(GRID[:3])


def test_collecting_a_resumed_sweep_drops_the_failure_the_resume_timed(tmp_path):
    # the same two attempts as a sweep directory: merged.json lists only d as failed
    first, resumed = _failed_then_resumed()
    (tmp_path / "shards").mkdir()
    (tmp_path / "sweep.json").write_text(json.dumps({"commit": "abc1234"}))
    (tmp_path / "workloads.txt").write_text("".join(f"{k}\n" for k in GRID))
    (tmp_path / "shards" / "attempt1-shard1.json").write_text(json.dumps(first))
    (tmp_path / "shards" / "attempt2-shard1.json").write_text(json.dumps(resumed))
    merged = collect(tmp_path, emit=lambda line: None)
    assert merged.missing == [GRID[3]]
    written = json.loads((tmp_path / "merged.json").read_text())
    assert [f["test"] for f in written["charlm_failures"]] == [f"bench/{GRID[3]}"]


def test_merge_with_expected_lists_a_shard_that_wrote_nothing():
    # a shard killed before it wrote its JSON: only the sweep's list of every key knows it
    a = shard_json(GRID[:2], GRID[:2])
    assert merge([("a.json", a)]).missing == []
    assert merge([("a.json", a)], expected=GRID).missing == GRID[2:]


@pytest.mark.parametrize(("field", "kw", "shown"), [
    ("commit", {"commit": "def5678"}, "abc1234"),
    ("devices", {"device_name": "NVIDIA H100"}, "cpu x86_64"),
    ("torch", {"torch": "2.11.0"}, "2.13.0"),
    ("threads", {"threads": 4}, "1"),
])
def test_merge_refuses_mixed_runs_in_one_line(field, kw, shown):
    a, b = shard_json(GRID[:2], GRID), shard_json(GRID[2:], GRID, index=2, **kw)
    with pytest.raises(ValueError) as err:
        merge([("a.json", a), ("b.json", b)])
    text = str(err.value)
    assert text.startswith(f"refusing to merge: {field} differs: a.json has {shown}, b.json has")
    assert "--allow-mixed" in text and "\n" not in text
    merged = merge([("a.json", a), ("b.json", b)], allow_mixed=True)
    assert merged.missing == [] and merged.data["charlm"]["mixed"] is True


def test_merge_of_two_machines_keeps_each_machines_timing():
    a = shard_json(GRID, GRID)
    b = shard_json(GRID[:2], GRID, device_name="Other CPU")
    merged = merge([("a.json", a), ("b.json", b)], allow_mixed=True)
    assert merged.timed == 6 and merged.duplicates == 0 and merged.missing == []
    again = merge([("a.json", a), ("a2.json", a)])
    assert again.timed == 4 and again.duplicates == 4


def test_merge_command_writes_the_merge_and_refuses_mixed_commits(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(shard_json(GRID[:1], GRID)))
    b.write_text(json.dumps(shard_json(GRID[1:2], GRID, index=2)))
    out = tmp_path / "m.json"
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "merged 2 of 4 benchmarks (0 duplicates dropped)" in text
    assert f"missing 2: {GRID[2]}, {GRID[3]}" in text
    assert len(json.loads(out.read_text())["benchmarks"]) == 2
    b.write_text(json.dumps(shard_json(GRID[1:2], GRID, index=2, commit="0000000")))
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "n.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "commit differs" in err
    assert not (tmp_path / "n.json").exists()


def test_machine_costs_from_a_bench_json(tmp_path):
    path = tmp_path / "machine.json"
    path.write_text(json.dumps({"benchmarks": [bench(GRID[0], 0.5), bench(GRID[1], 0.1),
                                               bench(GRID[2], 0.2)]}))
    costs = machine_costs(path, GRID)
    # totals are 3 rounds x median, plus the harness's fixed cost per benchmark; the unknown
    # key gets the median of the others, 3 x 0.2 + the fixed cost
    fixed = BENCH_OVERHEAD_S
    assert costs == pytest.approx({GRID[0]: 1.5 + fixed, GRID[1]: 0.3 + fixed,
                                   GRID[2]: 0.6 + fixed, GRID[3]: 0.6 + fixed})


def test_sbatch_script_runs_one_shard_per_array_task(tmp_path):
    cfg = SweepConfig(out=tmp_path / "sw", grid="quick", shards=3, partition="gpu",
                      gpus_per_task=1, time_min=30, threads=4, device="cuda")
    script = sbatch_script(cfg, cfg.out, attempt=0, shards=3)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for opt in ("--array=1-3", "--exclusive", "--partition=gpu", "--gpus-per-task=1",
                "--time=30", "--cpus-per-task=4",
                f"--output={cfg.out}/logs/attempt0-shard%a.out"):
        assert f"#SBATCH {opt}" in lines
    assert "export OMP_NUM_THREADS=4 MKL_NUM_THREADS=4" in lines
    assert "export CHARLM_SWEEP_SHARD=${SLURM_ARRAY_TASK_ID}/3" in lines
    run = lines[-1]
    assert run.startswith("exec ") and "--charlm-device=cuda" in run
    assert f"--charlm-workloads={cfg.out}/attempt0-shard${{SLURM_ARRAY_TASK_ID}}.txt" in run
    shared = SweepConfig(out=tmp_path / "sw", exclusive=False)
    assert "#SBATCH --exclusive" not in sbatch_script(shared, shared.out, 0, 2)


@pytest.mark.parametrize(("kw", "message"), [
    ({"executor": "local", "partition": "gpu"}, "SLURM options"),
    ({"executor": "slurm", "gpus": 2}, "--gpus is for --executor local"),
    ({"executor": "pbs"}, "unknown executor 'pbs'"),
    ({"shards": 0}, "shards must be a positive integer"),
])
def test_sweep_config_errors(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        SweepConfig(out=tmp_path, **kw)


def test_report_from_several_bench_jsons_equals_the_report_from_their_union(tmp_path):
    from analysis.report import ReportConfig, build_report

    sample = json.loads((REPO / "tests" / "data" / "bench_sample.json").read_text())
    half = len(sample["benchmarks"]) // 2
    parts = []
    for i, chunk in enumerate((sample["benchmarks"][:half], sample["benchmarks"][half:])):
        path = tmp_path / f"part{i}.json"
        path.write_text(json.dumps({**sample, "benchmarks": chunk}))
        parts.append(path)
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(sample))
    build_report(ReportConfig(out=tmp_path / "one", bench_json=whole, stages=("bench",)))
    status = build_report(ReportConfig(out=tmp_path / "two", bench_json=tuple(parts),
                                       stages=("bench",)))
    assert status["status"].eq("done").all()
    tables = sorted(p.name for p in (tmp_path / "one").glob("*.csv") if p.name != "stages.csv")
    assert tables
    for name in tables:
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text()


SHARD_MODULE = '''
from analysis.workloads import prepare

WORKLOAD_SET = "attention"


def test_layer(workload, device):
    pass
'''


def test_charlm_shard_splits_the_collected_grid(pytester):
    # the bench's conftest (which registers analysis.bench_sharding) on a test module of
    # its own: six attention workloads (two kernels x three T), split three ways
    import analysis.bench_sharding  # noqa: F401  (imported once, not again in each run)
    import analysis.timing  # noqa: F401
    import analysis.workloads  # noqa: F401

    pytester.makeconftest((REPO / "bench" / "conftest.py").read_text())
    pytester.makepyfile(test_shard=SHARD_MODULE)
    grid = pytester.path / "g.toml"
    grid.write_text("batch = 1\nrounds = 1\n[attention]\nT = [8, 16, 32]\n")
    # (without the hypothesis and anyio plugins, which each in-process run would re-import)
    common = ["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
              "-p", "no:anyio", f"--charlm-grid={grid}", "--charlm-device=cpu"]

    def collected(*extra):
        result = pytester.runpytest(*common, *extra)
        return [line for line in result.outlines if line.startswith("test_shard.py::")]

    whole = collected()
    assert len(whole) == 6
    shards = [collected(f"--charlm-shard={k}/3") for k in (1, 2, 3)]
    assert sorted(k for s in shards for k in s) == sorted(whole)  # each exactly once
    assert [len(s) for s in shards] == [2, 2, 2]
    only = pytester.path / "keys.txt"
    only.write_text(f"{whole[0]}\n{whole[3]}\n")
    assert collected(f"--charlm-workloads={only}") == [whole[0], whole[3]]
    bad = pytester.runpytest(*common, "--charlm-shard=4/3")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--charlm-shard K/N needs 1 <= K <= N, got '4/3'" in "\n".join(bad.errlines)


INTERRUPTED_MODULE = '''
from analysis.bench_sharding import SIGTERM_MESSAGE

WORKLOAD_SET = "attention"


def landed_here():
    # as the SIGTERM handler does, wherever the signal lands
    raise KeyboardInterrupt(SIGTERM_MESSAGE)


def test_layer(workload, device):
    landed_here()
'''


def test_sigterm_interrupt_is_reported_from_the_plugin_not_where_it_landed(pytester):
    # A signal can land on a bytecode without a line number, and pytest's report of the
    # interrupt then fails (tb_lineno None) and exits 1; the plugin re-raises it without
    # those frames, so the run ends as interrupted (exit 2) and the report names the plugin
    import analysis.bench_sharding  # noqa: F401

    pytester.makeconftest((REPO / "bench" / "conftest.py").read_text())
    pytester.makepyfile(test_shard=INTERRUPTED_MODULE)
    grid = pytester.path / "g.toml"
    grid.write_text("batch = 1\nrounds = 1\n[attention]\nT = [8]\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                                "-p", "no:anyio", f"--charlm-grid={grid}",
                                "--charlm-device=cpu", "-k", "flash", "--full-trace",
                                no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = "\n".join(result.outlines + result.errlines)
    assert "KeyboardInterrupt: SIGTERM" in text and "bench_sharding.py" in text
    assert "landed_here" not in text  # the frames it landed in are gone


def test_machine_costs_from_a_calibration_grow_with_the_work(tmp_path):
    from analysis.calibrate import Machine, save_machine

    # a machine where only the fixed cost per op counts (1 ms), compute and memory are free
    machine = Machine(device="cpu", name="test", torch="x", threads=1, op_fixed_s=1e-3,
                      view_fixed_s=0.0, matmul_fixed_s=1e-3, min_kernel_s=0.0,
                      bandwidth_bytes_per_s=1e30, ceiling_flops_per_s=1e30,
                      matmul_axes={"m": [1], "k": [1], "n": [1]},
                      matmul_flops_per_s=[[[1e30]]])
    save_machine(machine, tmp_path / "machine.json")
    grid = tmp_path / "g.toml"
    grid.write_text("batch = 1\nrounds = 2\n[models]\nvariants = ['rnn']\nphases = ['forward']"
                    "\nT = [8, 32]\n")
    short = "test_models.py::test_model_phase[rnn-forward-B1-T8-D256-L1-cpu]"
    long = "test_models.py::test_model_phase[rnn-forward-B1-T32-D256-L1-cpu]"
    costs = machine_costs(tmp_path / "machine.json", [short, long, "test_x.py::other"], grid)
    # a recurrent loop runs ops per step: four times the steps, more than twice the ops
    assert costs[long] - BENCH_OVERHEAD_S > 2 * (costs[short] - BENCH_OVERHEAD_S) > 0
    assert costs["test_x.py::other"] in (costs[short], costs[long])  # the median fills in
