"""analysis.sweep's plumbing on hand-built sweep folders: the plan, submit, resume, collect,
the local executor and the SLURM polling, with pytest's collection, sbatch and squeue
replaced by fakes (the real ones run in tests/test_slurm.py). Expected values are worked
out by hand from the docstrings."""

import datetime as dt
import json
import re
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import analysis.predict  # noqa: F401  (imported once at collection, not in a test)
import analysis.sweep as sweep
from analysis.merge import bench_files
from analysis.sweep import SweepConfig

REPO = Path(__file__).resolve().parent.parent
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
A, B, C, D = (f"test_m.py::t[{x}]" for x in "abcd")


def bench(key, total=0.03):
    return {"fullname": f"bench/{key}", "stats": {"total": total}}


def shard(keys, *, commit="abc1234", device_name="x86_64", failures=(), **block):
    return {
        "benchmarks": [bench(k) for k in keys],
        "charlm": {
            "commit": commit,
            "backends": {"threads": 1},
            "env": {"cpu": {"device_name": device_name, "torch": "2.13.0"}},
            **block,
        },
        "charlm_failures": [{"test": f"bench/{k}", "error": "X"} for k in failures],
    }


def sweep_dir(tmp_path, keys=(A, B, C, D), files=None, **config):
    """A sweep folder as `plan` leaves it, written by hand."""
    out = tmp_path / "sw"
    (out / "shards").mkdir(parents=True)
    (out / "logs").mkdir()
    (out / "workloads.txt").write_text("".join(f"{k}\n" for k in keys))
    manifest = {"config": {"out": str(out), **config}, "commit": "abc1234", "attempts": []}
    (out / "sweep.json").write_text(json.dumps(manifest))
    for name, data in (files or {}).items():
        (out / "shards" / name).write_text(json.dumps(data))
    return out


class Fake:
    """subprocess.run stand-in: records each call, answers with the next result."""

    def __init__(self, *results):
        self.results, self.calls = list(results), []

    def __call__(self, cmd, **kw):
        self.calls.append((cmd, kw))
        rc, stdout, stderr = self.results.pop(0)
        return SimpleNamespace(returncode=rc, stdout=stdout, stderr=stderr)


# ---------------------------------------------------------------------------- shards


def test_parse_shard_bounds_and_messages():
    assert parse(("1/3", "3/3", "1/1")) == [(1, 3), (3, 3), (1, 1)]
    with pytest.raises(
        ValueError,
        match=r"^--charlm-shard must be K/N \(e\.g\. 2/3\), "
        r"got 'a/b'$",
    ):
        sweep.parse_shard("a/b")
    with pytest.raises(ValueError, match=r"^--charlm-shard K/N needs 1 <= K <= N, got '0/2'$"):
        sweep.parse_shard("0/2")


def parse(texts):
    return [sweep.parse_shard(t) for t in texts]


def test_assign_counts_a_key_without_a_cost_as_zero():
    # count 3, by hand: a(1) -> shard 1; c(0.5) -> 2; z (no cost, 0) last -> 3
    assert sweep.assign(["a", "c", "z"], 3, {"a": 1, "c": 0.5}) == [["a"], ["c"], ["z"]]
    # count 2: a(5) -> 1; b(4) -> 2; z (0) -> 2 (4 < 5), load still 4; zz -> 2 again
    assert sweep.assign(["a", "b", "z", "zz"], 2, {"a": 5, "b": 4}) == [["a"], ["b", "z", "zz"]]


def test_assign_takes_the_longest_first_not_the_first_name():
    # c (2) -> shard 1; a (1) -> 2 (0 < 2); b (1) -> 2 (1 < 2): [c], [a, b]; taken by
    # name (a, b, c) it would be [a, c], [b]
    assert sweep.assign(["a", "b", "c"], 2, {"a": 1, "b": 1, "c": 2}) == [["c"], ["a", "b"]]


def test_assign_counts_a_cost_far_below_a_second():
    # a (1e-20) -> shard 1; b (0) -> 2; c (0) -> 2, whose load 0 is below 1e-20
    assert sweep.assign(["a", "b", "c"], 2, {"a": 1e-20}) == [["a"], ["b", "c"]]


def test_assign_keeps_the_first_of_repeated_keys_and_checks_the_count():
    assert sweep.assign(["b", "a", "b"], 1) == [["b", "a"]]
    assert sweep.assign(["b", "a", "b"], 1, {"a": 1, "b": 2}) == [["b", "a"]]
    with pytest.raises(ValueError, match="^shards must be a positive integer, got 0$"):
        sweep.assign(["a"], 0)


def test_machine_costs_from_medians_and_the_fill_of_unknown_keys(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps(
            {
                "benchmarks": [
                    {"fullname": f"bench/{A}", "stats": {"median": 0.25, "rounds": 4}},  # 1.0 s
                    {"fullname": f"x/{B}", "stats": {"median": 2.0}},  # no rounds: one, 2.0 s
                    {"fullname": f"bench/{C}", "stats": {}},  # nothing known
                    {"fullname": f"bench/{D}"},
                ]
            }
        )
    )
    costs = sweep.machine_costs(path, [A, B, C, D])
    # 0.5 s overhead each; two known (1.5, 2.5): the median index 2 // 2 = 1 fills, 2.5
    assert costs == pytest.approx({A: 1.5, B: 2.5, C: 2.5, D: 2.5})


def test_machine_costs_of_a_benchmark_without_a_name(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps(
            {"benchmarks": [{"stats": {"total": 1.0}}, {"fullname": "a", "stats": {"total": 3.0}}]}
        )
    )
    assert sweep.machine_costs(path, ["", "a"]) == pytest.approx({"": 1.5, "a": 3.5})


def test_machine_costs_that_predict_nothing(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"benchmarks": [{"fullname": A, "stats": {}}]}))
    with pytest.raises(
        ValueError,
        match=f"^machine file {re.escape(str(path))} predicts none of the grid's benchmarks$",
    ):
        sweep.machine_costs(path, [A])


def test_bench_overhead_is_half_a_second():
    # the fixed cost per benchmark the module's comment measures (0.3 to 2 s): 0.5 s
    assert sweep.BENCH_OVERHEAD_S == 0.5 and sweep.PILOT_ROUNDS == 8


def _calibration(tmp_path):
    from analysis.calibrate import Machine, save_machine

    machine = Machine(
        device="cpu",
        name="test",
        torch="x",
        threads=1,
        op_fixed_s=1e-3,
        view_fixed_s=0.0,
        matmul_fixed_s=1e-3,
        min_kernel_s=0.0,
        bandwidth_bytes_per_s=1e30,
        ceiling_flops_per_s=1e30,
        matmul_axes={"m": [1], "k": [1], "n": [1]},
        matmul_flops_per_s=[[[1e30]]],
    )
    save_machine(machine, tmp_path / "machine.json")
    return tmp_path / "machine.json"


KEY = "test_models.py::test_model_phase[rnn-forward-B1-T8-D24-L1-{}]"


def test_machine_costs_from_a_calibration_scale_with_the_rounds(tmp_path):
    # one round's predicted time x (rounds + warm-up + 8 pilot rounds), + 0.5 s: with
    # warm-up 1, rounds 2 and 5 cost (2 + 1 + 8) : (5 + 1 + 8) = 11 : 14 of the same round
    machine = _calibration(tmp_path)
    costs = []
    for rounds in (2, 5):
        grid = tmp_path / f"g{rounds}.toml"
        grid.write_text(
            f"batch = 1\nrounds = {rounds}\nwarmup = 1\n[models]\n"
            "variants = ['rnn']\nphases = ['forward']\nT = [8]\nD = [24]\n"
        )
        keys = [KEY.format("cpu"), KEY.format("cuda")]
        got = sweep.machine_costs(machine, keys, grid)
        costs.append([got[k] - 0.5 for k in keys])
    (cpu2, cuda2), (cpu5, cuda5) = costs
    assert cpu2 > 0 and cpu5 / cpu2 == pytest.approx(14 / 11)
    # a cuda key is a workload of the grid too (the same ops, on this machine's constants)
    assert cuda2 == pytest.approx(cpu2) and cuda5 == pytest.approx(cpu5)


def test_machine_costs_read_the_workload_after_the_last_bracket(tmp_path):
    # the param id is what the last "[" opens; "...-cpuX" names no workload: it gets the
    # median fill, the larger (T = 64) of the two known costs
    machine = _calibration(tmp_path)
    grid = tmp_path / "g.toml"
    grid.write_text(
        "batch = 1\nrounds = 1\n[models]\nvariants = ['rnn']\nphases = ['forward']\nT = [8, 64]\n"
    )
    short, long = (KEY.format("cpu").replace("T8-D24", f"T{t}-D256") for t in (8, 64))
    odd = short.replace("test_model_phase[", "test_model_phase[x][")
    unknown = short.replace("-cpu]", "-cpuX]")
    costs = sweep.machine_costs(machine, [short, long, unknown], grid)
    assert costs[long] > costs[short] and costs[unknown] == costs[long]
    assert sweep.machine_costs(machine, [odd], grid) == {odd: costs[short]}


def test_machine_costs_from_a_calibration_default_to_the_quick_grid(tmp_path):
    from analysis.workloads import get_grid

    quick = get_grid("quick")
    assert quick.rounds + quick.warmup > 0
    machine = _calibration(tmp_path)
    grid = tmp_path / "g.toml"
    grid.write_text(
        "batch = 1\nrounds = 1\n[models]\nvariants = ['rnn']\nphases = ['forward']"
        "\nT = [8]\nD = [24]\n"
    )
    key = KEY.format("cpu")  # D = 24: in this grid, not in the quick one
    assert sweep.machine_costs(machine, [key], grid)[key] > 0.5
    with pytest.raises(ValueError, match="predicts none of the grid's benchmarks"):
        sweep.machine_costs(machine, [key])


def test_read_and_write_keys(tmp_path):
    path = tmp_path / "k.txt"
    sweep.write_keys(path, [A, B])
    assert path.read_text() == f"{A}\n{B}\n"
    path.write_text(f"  {A} \n\n{B}\n   \n")
    assert sweep.read_keys(path) == [A, B]
    with pytest.raises(
        FileNotFoundError, match=f"^workload list not found: {re.escape(str(tmp_path / 'no.txt'))}$"
    ):
        sweep.read_keys(tmp_path / "no.txt")


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"threads": 0}, "threads must be a positive integer, got 0"),
        ({"gpus_per_task": 0}, "gpus_per_task must be a positive integer, got 0"),
        ({"time_min": 0}, "time must be a positive integer, got 0"),
        ({"executor": "local", "gpus": 0}, "gpus must be a positive integer, got 0"),
        ({"device": "tpu"}, "device must be cpu or cuda, got 'tpu'"),
        (
            {"executor": "local", "gpus_per_task": 1},
            "--partition, --gpus-per-task and --time are "
            "SLURM options; --executor local takes --gpus",
        ),
        (
            {"executor": "local", "time_min": 5},
            "--partition, --gpus-per-task and --time are "
            "SLURM options; --executor local takes --gpus",
        ),
        (
            {"executor": "slurm", "gpus": 1},
            "--gpus is for --executor local; on SLURM use --gpus-per-task",
        ),
    ],
)
def test_sweep_config_messages(tmp_path, kw, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SweepConfig(out=tmp_path, **kw)


def test_sweep_config_normalizes_and_checks_the_local_device(tmp_path, monkeypatch):
    checked = []
    monkeypatch.setattr(sweep, "check_device", checked.append)
    cfg = SweepConfig(out=str(tmp_path), pytest_args=["-k", "rnn"], device="cuda")
    assert cfg.out == tmp_path and cfg.pytest_args == ("-k", "rnn") and checked == []
    local = SweepConfig(out=tmp_path, executor="local", device="cuda", gpus=2)
    assert checked == ["cuda"] and local.gpus == 2


def test_sweep_config_defaults_and_is_frozen(tmp_path):
    # one shard of the default grid on SLURM, one CPU thread, each task alone on its node
    cfg = SweepConfig(out=tmp_path)
    assert (cfg.grid, cfg.shards, cfg.executor, cfg.device, cfg.threads, cfg.exclusive) == (
        "default",
        1,
        "slurm",
        "cpu",
        1,
        True,
    )
    with pytest.raises(AttributeError, match="cannot assign to field 'shards'"):
        cfg.shards = 2


def test_config_of_a_manifest(tmp_path):
    cfg = sweep.config_of({"config": {"out": str(tmp_path), "shards": 3, "pytest_args": ["-x"]}})
    assert cfg == SweepConfig(out=tmp_path, shards=3, pytest_args=("-x",))
    assert sweep.config_of({"config": {"out": "o", "pytest_args": None}}).pytest_args == ()


# ---------------------------------------------------------------------------- commands


def test_shard_command(tmp_path):
    cfg = SweepConfig(out=tmp_path, device="cuda", threads=3, pytest_args=("-x", "-k", "rnn"))
    assert sweep.shard_command(cfg, tmp_path / "o", "r.json", "keys.txt") == [
        sys.executable,
        "-m",
        "pytest",
        *map(str, bench_files()),
        "--benchmark-only",
        "-v",
        "-p",
        "no:cacheprovider",
        f"--charlm-grid={tmp_path / 'o' / 'grid.toml'}",
        "--charlm-device=cuda",
        "--charlm-threads=3",
        "--charlm-workloads=keys.txt",
        "--benchmark-json=r.json",
        "-x",
        "-k",
        "rnn",
    ]


def test_collect_keys_from_pytests_collection(tmp_path, monkeypatch):
    fake = Fake(
        (0, f"bench/{A}\n\nbench/sub/{B}\n2 tests collected in 0.1s\n", ""),
        (5, f"{C}\n", "warning"),
    )
    monkeypatch.setattr(sweep.subprocess, "run", fake)
    cfg = SweepConfig(out=tmp_path, device="cuda", pytest_args=("-k", "rnn"))
    assert sweep.collect_keys(cfg, tmp_path) == [A, B]
    assert sweep.collect_keys(cfg, tmp_path) == [C]  # exit 5: nothing collected, no error
    cmd, kw = fake.calls[0]
    assert cmd == [
        sys.executable,
        "-m",
        "pytest",
        *map(str, bench_files()),
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--charlm-grid={tmp_path / 'grid.toml'}",
        "--charlm-device=cuda",
        "-k",
        "rnn",
    ]
    assert kw == {"cwd": sweep.REPO, "capture_output": True, "text": True, "timeout": 600}
    assert sweep.REPO == REPO


@pytest.mark.parametrize(("rc", "stdout"), [(1, f"{A}\none\ntwo\n"), (0, "one\ntwo\n")])
def test_collect_keys_failing(tmp_path, monkeypatch, rc, stdout):
    monkeypatch.setattr(sweep.subprocess, "run", Fake((rc, stdout, "three\nfour\n")))
    with pytest.raises(
        ValueError, match=r"^collecting the grid's benchmarks failed: two \| three \| four$"
    ):
        sweep.collect_keys(SweepConfig(out=tmp_path), tmp_path)


def test_sbatch_script_in_full(tmp_path):
    out = tmp_path / "sw"
    cfg = SweepConfig(out=out, threads=2, exclusive=False)
    task = "${SLURM_ARRAY_TASK_ID}"
    cmd = sweep.shard_command(
        cfg, out, f"{out}/shards/attempt1-shard{task}.json", f"{out}/attempt1-shard{task}.txt"
    )
    assert sweep.sbatch_script(cfg, out, 1, 4) == "\n".join(
        [
            "#!/bin/bash",
            f"# charlm sweep {out}: attempt 1, 4 shards",
            "#SBATCH --job-name=charlm-sweep-sw",
            "#SBATCH --array=1-4",
            f"#SBATCH --output={out}/logs/attempt1-shard%a.out",
            "#SBATCH --cpus-per-task=2",
            f"#SBATCH --chdir={REPO}",
            "export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2",
            f"export CHARLM_SWEEP_SHARD={task}/4",
            f'echo "charlm sweep: shard {task}/4 on $(hostname), job ${{SLURM_JOB_ID}}"',
            "# exec: SIGTERM (scancel, time limit, preemption) reaches pytest, which then writes",
            "# the JSON of the benchmarks it finished",
            "exec " + " ".join(cmd),
            "",
        ]
    )


def test_sbatch_script_quotes_a_folder_with_a_space(tmp_path):
    # the shell must see each argument whole, the task id still expanded in it
    out = tmp_path / "my sweep"
    cfg = SweepConfig(out=out, pytest_args=("-k", "rnn and not gru"))
    words = shlex.split(sweep.sbatch_script(cfg, out, 0, 2).splitlines()[-1])
    assert words[0] == "exec" and words[-2:] == ["-k", "rnn and not gru"]
    assert f"--charlm-grid={out}/grid.toml" in words
    assert f"--charlm-workloads={out}/attempt0-shard${{SLURM_ARRAY_TASK_ID}}.txt" in words
    assert f"--benchmark-json={out}/shards/attempt0-shard${{SLURM_ARRAY_TASK_ID}}.json" in words


# ---------------------------------------------------------------------------- manifest


def test_now_is_utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC-05:30")  # a local time 5.5 h off UTC
    time.tzset()
    try:
        stamp = sweep._now()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert STAMP.match(stamp)
    then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - then).total_seconds()) < 5


def test_manifest_round_trip(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=f"^no sweep in {re.escape(str(tmp_path))} "
        r"\(sweep.json not found\)$",
    ):
        sweep.read_manifest(tmp_path)
    manifest = {"config": {"out": "x"}, "attempts": [{"attempt": 0}]}
    sweep.write_manifest(str(tmp_path), manifest)
    assert (tmp_path / "sweep.json").read_text() == json.dumps(manifest, indent=1)
    assert sweep.read_manifest(str(tmp_path)) == manifest


def test_find_machine(tmp_path, monkeypatch):
    from analysis.calibrate import default_cache_path

    with pytest.raises(FileNotFoundError, match="^machine file not found: "):
        sweep.find_machine(SweepConfig(out=tmp_path, machine=str(tmp_path / "none.json")))
    given = tmp_path / "given.json"
    given.write_text("{}")
    assert sweep.find_machine(SweepConfig(out=tmp_path, machine=str(given))) == given
    here, repo = tmp_path / "here", tmp_path / "repo"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr(sweep, "REPO", repo)
    cfg = SweepConfig(out=tmp_path, threads=3)
    assert sweep.find_machine(cfg) is None
    relative = default_cache_path("cpu", 3)
    (repo / relative).parent.mkdir(parents=True)
    (repo / relative).write_text("{}")
    assert sweep.find_machine(cfg) == repo / relative
    (here / relative).parent.mkdir(parents=True)
    (here / relative).write_text("{}")
    assert sweep.find_machine(cfg) == here / relative  # the working folder's first
    assert sweep.find_machine(SweepConfig(out=tmp_path, threads=2)) is None


def test_plan_writes_the_sweep_folder(tmp_path, monkeypatch):
    import analysis.env
    from analysis.grids import grid_file

    monkeypatch.setattr(analysis.env, "git_commit", lambda: "c0ffee1")
    asked = []
    monkeypatch.setattr(sweep, "collect_keys", lambda c, o: asked.append((c, o)) or [B, A, C])
    out = tmp_path / "a" / "sw"
    (out / "shards").mkdir(parents=True)  # a folder left by an earlier try: reused
    (out / "logs").mkdir()
    machine = tmp_path / "m.json"
    machine.write_text('{"benchmarks": []}')
    cfg = SweepConfig(out=out, grid="quick", shards=2, machine=str(machine))
    manifest = sweep.plan(cfg)
    assert asked == [(cfg, out)]
    assert STAMP.match(manifest.pop("created"))
    assert manifest == {
        "config": {
            **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
            "out": str(out),
            "pytest_args": (),
        },
        "commit": "c0ffee1",
        "workloads": 3,
        "balance": f"predicted time ({machine})",
        "attempts": [],
    }
    assert (out / "grid.toml").read_text() == grid_file("quick").read_text()
    assert (out / "workloads.txt").read_text() == f"{B}\n{A}\n{C}\n"
    assert (out / "machine.json").read_text() == '{"benchmarks": []}'
    written = json.loads((out / "sweep.json").read_text())
    assert written["workloads"] == 3 and written["config"]["out"] == str(out)
    with pytest.raises(
        ValueError,
        match=f"^{re.escape(str(out))} already holds a sweep: "
        f"charlm sweep --collect {re.escape(str(out))} or "
        f"--resume {re.escape(str(out))}$",
    ):
        sweep.plan(cfg)


def test_plan_without_a_machine_balances_by_count(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "collect_keys", lambda cfg, out: [A])
    monkeypatch.setattr(sweep, "find_machine", lambda cfg: None)
    out = tmp_path / "new" / "sw"  # nothing there yet: made with its parents
    manifest = sweep.plan(SweepConfig(out=out, grid="quick"))
    assert manifest["balance"] == "count" and not (out / "machine.json").exists()
    assert (out / "shards").is_dir() and (out / "logs").is_dir()


def test_plan_of_a_bad_grid_makes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="grid file not found"):
        sweep.plan(SweepConfig(out=tmp_path / "sw", grid=str(tmp_path / "no.toml")))
    assert not (tmp_path / "sw").exists()


# ---------------------------------------------------------------------------- submit


def test_submit_local_splits_by_count(tmp_path):
    out = sweep_dir(tmp_path, keys=(C, A, B), executor="local", shards=2)
    before = time.time()
    record = sweep.submit(out)
    # sorted a, b, c dealt round-robin: a, c -> shard 1 and b -> 2, each in the list's order
    assert (out / "attempt0-shard1.txt").read_text() == f"{C}\n{A}\n"
    assert (out / "attempt0-shard2.txt").read_text() == f"{B}\n"
    assert before <= record.pop("t0") <= time.time()
    assert STAMP.match(record.pop("submitted"))
    assert record == {"attempt": 0, "shards": 2, "executor": "local", "keys": 3, "job_id": None}
    attempts = json.loads((out / "sweep.json").read_text())["attempts"]
    assert [a["attempt"] for a in attempts] == [0]
    # a second attempt on two keys, asked for five shards: two, numbered 1
    again = sweep.submit(out, keys=[D, A], shards=5)
    assert again["attempt"] == 1 and again["shards"] == 2 and again["keys"] == 2
    assert (out / "attempt1-shard1.txt").read_text() == f"{A}\n"
    assert (out / "attempt1-shard2.txt").read_text() == f"{D}\n"
    assert len(json.loads((out / "sweep.json").read_text())["attempts"]) == 2
    assert not list(out.glob("*.sbatch"))


def test_submit_balances_by_the_sweeps_machine_file(tmp_path):
    out = sweep_dir(tmp_path, executor="local", shards=2)
    (out / "machine.json").write_text(
        json.dumps({"benchmarks": [bench(A, 9.0), bench(B, 1.0), bench(C, 2.0), bench(D, 3.0)]})
    )
    sweep.submit(out)
    # a 9.5 -> 1; d 3.5 -> 2; c 2.5 -> 2 (3.5 < 9.5); b 1.5 -> 2 (6 < 9.5)
    assert (out / "attempt0-shard1.txt").read_text() == f"{A}\n"
    assert (out / "attempt0-shard2.txt").read_text() == f"{B}\n{C}\n{D}\n"


def test_submit_balances_by_a_calibration_on_the_sweeps_grid(tmp_path):
    # the grid copy of the sweep (D = 24: not in the quick grid) says what the keys are
    keys = [KEY.format("cpu").replace("T8", f"T{t}") for t in (8, 64)]
    out = sweep_dir(tmp_path, keys=keys, executor="local", shards=2)
    _calibration(out)
    (out / "grid.toml").write_text(
        "batch = 1\nrounds = 1\n[models]\nvariants = ['rnn']\nphases = ['forward']\n"
        "T = [8, 64]\nD = [24]\n"
    )
    assert sweep.submit(out)["shards"] == 2
    assert (out / "attempt0-shard1.txt").read_text() == f"{keys[1]}\n"  # the longer first
    assert (out / "attempt0-shard2.txt").read_text() == f"{keys[0]}\n"


def test_submit_to_slurm(tmp_path, monkeypatch):
    out = sweep_dir(tmp_path, shards=3, threads=2)
    fake = Fake((0, "4242;cluster\n", ""))
    monkeypatch.setattr(sweep.subprocess, "run", fake)
    record = sweep.submit(out)
    assert record["job_id"] == "4242" and record["executor"] == "slurm"
    script = out / "attempt0.sbatch"
    cfg = SweepConfig(out=out, shards=3, threads=2)
    assert script.read_text() == sweep.sbatch_script(cfg, out, 0, 3)
    assert fake.calls == [
        (
            ["sbatch", "--parsable", str(script)],
            {"capture_output": True, "text": True, "timeout": 60},
        )
    ]
    assert json.loads((out / "sweep.json").read_text())["attempts"][0]["job_id"] == "4242"


@pytest.mark.parametrize(
    ("stdout", "stderr", "shown"),
    [("out", " no partition \n", "no partition"), (" queue full \n", "", "queue full")],
)
def test_submit_to_slurm_failing(tmp_path, monkeypatch, stdout, stderr, shown):
    out = sweep_dir(tmp_path)
    monkeypatch.setattr(sweep.subprocess, "run", Fake((1, stdout, stderr)))
    with pytest.raises(RuntimeError, match=f"^sbatch failed: {shown}$"):
        sweep.submit(out)
    assert json.loads((out / "sweep.json").read_text())["attempts"] == []


# ---------------------------------------------------------------------------- progress


def test_shard_line(tmp_path):
    out = tmp_path
    record = {"shards": 3, "attempt": 1, "t0": time.time() - 42.3}
    assert sweep.shard_line(out, record, 2) == (
        "shard 2/3 (attempt 1): no results (failed, cancelled or killed before any benchmark "
        f"finished; log: {out}/logs/attempt1-shard2.out), 42 s since submission"
    )
    (out / "shards").mkdir()
    (out / "shards" / "attempt1-shard2.json").write_text(
        json.dumps(
            {
                "charlm": {
                    "finished": [A, B],
                    "workloads": [A, B, C],
                    "status": "complete",
                    "node": "n7",
                },
                "charlm_failures": [{"test": C}],
            }
        )
    )
    assert sweep.shard_line(out, record, 2) == (
        "shard 2/3 (attempt 1): 2 of 3 timed, 1 failed, complete on n7, 42 s since submission"
    )
    (out / "shards" / "attempt1-shard3.json").write_text(json.dumps({"benchmarks": []}))
    assert sweep.shard_line(out, record, 3) == (
        "shard 3/3 (attempt 1): 0 of 0 timed, 0 failed, None on None, 42 s since submission"
    )


CHILD = """
import json, os, sys, time
time.sleep(float(sys.argv[3]))
print("env", os.environ.get("OMP_NUM_THREADS"), os.environ.get("PYTHONUNBUFFERED"),
      os.environ.get("CHARLM_SWEEP_SHARD"), os.environ.get("CUDA_VISIBLE_DEVICES"))
print("cwd", os.getcwd())
print("to stderr", file=sys.stderr)
open(sys.argv[1], "w").write(json.dumps({"charlm": {"workloads": open(sys.argv[2]).read()
    .split(), "finished": [], "status": "complete", "node": "here"}}))
"""


def _fake_shards(monkeypatch, sleeps):
    calls = []

    def command(cfg, out, json_path, keys_file):
        calls.append((cfg, json_path, keys_file))
        assert out == cfg.out
        return [sys.executable, "-c", CHILD, json_path, keys_file, str(sleeps[len(calls) - 1])]

    monkeypatch.setattr(sweep, "shard_command", command)
    naps = []
    real_sleep = time.sleep

    def nap(s):
        naps.append(s)
        real_sleep(0.01)

    monkeypatch.setattr(sweep.time, "sleep", nap)
    return calls, naps


def test_run_local_one_shard_after_another(tmp_path, monkeypatch):
    for name in ("CUDA_VISIBLE_DEVICES", "PYTHONUNBUFFERED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the shards run in the repository, not here
    out = sweep_dir(tmp_path, executor="local", shards=2, threads=3)
    record = sweep.submit(out)
    calls, naps = _fake_shards(monkeypatch, [0.3, 0])  # one at a time: 1 still ends first
    lines = []
    sweep.run_local(out, record, lines.append)
    assert [(c.threads, j, k) for c, j, k in calls] == [
        (3, str(out / "shards" / f"attempt0-shard{k}.json"), str(out / f"attempt0-shard{k}.txt"))
        for k in (1, 2)
    ]
    assert [line.split(",")[0] for line in lines] == [
        "shard 1/2 (attempt 0): 0 of 2 timed",
        "shard 2/2 (attempt 0): 0 of 2 timed",
    ]
    for k in (1, 2):
        log = (out / "logs" / f"attempt0-shard{k}.out").read_text().splitlines()
        assert sorted(log) == sorted([f"env 3 1 {k}/2 None", f"cwd {REPO}", "to stderr"])
    assert naps and set(naps) == {0.2}


def test_run_local_one_shard_per_gpu(tmp_path, monkeypatch):
    out = sweep_dir(tmp_path, executor="local", shards=2, gpus=2)
    record = sweep.submit(out)
    _fake_shards(monkeypatch, [0.5, 0])  # both at once: shard 2 ends first
    lines = []
    sweep.run_local(out, record, lines.append)
    assert [line[:9] for line in lines] == ["shard 2/2", "shard 1/2"]
    for k in (1, 2):
        log = (out / "logs" / f"attempt0-shard{k}.out").read_text()
        assert f"env 1 1 {k}/2 {k - 1}\n" in log  # shard k on GPU k - 1


def test_run_local_stops_the_running_shards_when_interrupted(tmp_path, monkeypatch):
    out = sweep_dir(tmp_path, keys=(A, B, C), executor="local", shards=3, gpus=2)
    record = sweep.submit(out)
    calls, _ = _fake_shards(monkeypatch, [0, 5, 0])

    def stop(line):
        raise KeyboardInterrupt

    start = time.time()
    with pytest.raises(KeyboardInterrupt):
        sweep.run_local(out, record, stop)
    assert time.time() - start < 4  # shard 2 was terminated, not waited for
    assert len(calls) == 2 and not (out / "shards" / "attempt0-shard2.json").exists()


def test_queued_tasks(monkeypatch):
    fake = Fake((0, "3\n 5\nx\n", ""), (1, "", "slurm_load_jobs error: Invalid job id"))
    monkeypatch.setattr(sweep.subprocess, "run", fake)
    assert sweep.queued_tasks("77") == {3, 5}
    assert sweep.queued_tasks("77") == set()
    assert fake.calls[0] == (
        ["squeue", "-h", "-r", "-j", "77", "-o", "%K"],
        {"capture_output": True, "text": True, "timeout": 60},
    )


def test_wait_slurm_reports_each_task_as_it_leaves(tmp_path, monkeypatch):
    polls = [{1, 2, 3}, {2}, set()]
    asked = []

    def queued(job):
        asked.append(job)
        return polls.pop(0)

    naps = []
    monkeypatch.setattr(sweep, "queued_tasks", queued)
    monkeypatch.setattr(sweep.time, "sleep", naps.append)
    record = {"shards": 3, "job_id": "9"}

    def line(out, rec, k):
        assert (out, rec) == (tmp_path, record)
        return f"line {k}"

    monkeypatch.setattr(sweep, "shard_line", line)
    lines = []
    sweep.wait_slurm(tmp_path, record, lines.append)
    assert lines == ["line 1", "line 3", "line 2"] and asked == ["9"] * 3
    assert naps == [1.0, 1.0]  # between polls, not after the last


# ---------------------------------------------------------------------------- merge


def test_collect_messages(tmp_path):
    keys = [f"test_m.py::t[{i}]" for i in range(8)]
    out = sweep_dir(
        tmp_path,
        keys=keys,
        files={
            "attempt0-shard1.json": shard(keys[:1]),
            "attempt1-shard1.json": shard(keys[:2]),
            "other.json": shard(keys[2:]),
        },
    )  # not a shard file: left out
    lines = []
    merged = sweep.collect(out, emit=lines.append)
    assert merged.timed == 2 and merged.missing == keys[2:]
    assert lines == [
        f"merged 2 of 8 benchmarks from 2 shard files (1 duplicates dropped, commit abc1234)"
        f" -> {out}/merged.json",
        f"missing 6: {', '.join(keys[2:7])} ... (charlm sweep --resume {out})",
    ]
    assert len(json.loads((out / "merged.json").read_text())["benchmarks"]) == 2


def test_collect_five_missing_and_mixed_machines(tmp_path):
    keys = [f"test_m.py::t[{i}]" for i in range(6)]
    out = sweep_dir(
        tmp_path,
        keys=keys,
        files={
            "attempt0-shard1.json": shard(keys[:1]),
            "attempt0-shard2.json": shard(keys[:1], device_name="other"),
        },
    )
    with pytest.raises(ValueError, match="devices differs"):
        sweep.collect(out, emit=lambda line: None)
    lines = []
    merged = sweep.collect(out, True, lines.append)
    assert merged.timed == 2 and merged.duplicates == 0
    assert lines[1] == f"missing 5: {', '.join(keys[1:])} (charlm sweep --resume {out})"


def test_collect_without_results(tmp_path):
    out = sweep_dir(tmp_path)
    with pytest.raises(
        ValueError,
        match=f"^no shard of {re.escape(str(out))} wrote results "
        f"yet \\(see {re.escape(str(out / 'logs'))}\\)$",
    ):
        sweep.collect(str(out), emit=lambda line: None)


def _record_calls(monkeypatch, *names):
    calls = []
    for name in names:
        monkeypatch.setattr(
            sweep, name, lambda *a, _n=name, **k: calls.append((_n, a, k)) or f"{_n} result"
        )
    return calls


def test_finish_local(tmp_path, monkeypatch):
    calls = _record_calls(monkeypatch, "run_local", "wait_slurm", "collect")
    record = {"executor": "local", "job_id": None, "shards": 2}
    emit = [].append
    assert sweep.finish(tmp_path, record, False, emit, True) == "collect result"
    assert calls == [
        ("run_local", (tmp_path, record, emit), {}),
        ("collect", (tmp_path, True, emit), {}),
    ]


def test_finish_slurm(tmp_path, monkeypatch):
    calls = _record_calls(monkeypatch, "run_local", "wait_slurm", "collect")
    record = {"executor": "slurm", "job_id": "12", "shards": 2}
    lines = []
    assert sweep.finish(tmp_path, record, False, lines.append) is None
    assert calls == [] and lines == [
        f"submitted job array 12 (2 shards); later: charlm sweep --collect {tmp_path}"
    ]
    lines.clear()
    assert sweep.finish(tmp_path, record, True, lines.append) == "collect result"
    assert lines == [
        "submitted job array 12 (2 shards), waiting (Ctrl-C stops waiting, not the jobs)"
    ]
    assert calls == [
        ("wait_slurm", (tmp_path, record, lines.append), {}),
        ("collect", (tmp_path, False, lines.append), {}),
    ]


def test_sweep_plans_submits_and_finishes(tmp_path, monkeypatch):
    import socket

    cfg = SweepConfig(out=tmp_path, grid="quick", executor="local")
    planned = []
    monkeypatch.setattr(
        sweep, "plan", lambda c: planned.append(c) or {"workloads": 7, "balance": "count"}
    )
    monkeypatch.setattr(sweep, "submit", lambda out: {"shards": 3, "out": out})
    calls = _record_calls(monkeypatch, "finish")
    lines = []
    assert sweep.sweep(cfg, False, lines.append, True) == "finish result"
    assert planned == [cfg]
    assert lines == [
        f"sweep {tmp_path}: grid quick, 7 benchmarks in 3 shards balanced by "
        f"count, executor local on {socket.gethostname()}"
    ]
    assert calls == [
        ("finish", (tmp_path, {"shards": 3, "out": tmp_path}, False, lines.append, True), {})
    ]
    calls.clear()
    sweep.sweep(cfg, emit=lines.append)  # by default: wait, refuse mixed shards
    assert calls == [
        ("finish", (tmp_path, {"shards": 3, "out": tmp_path}, True, lines.append, False), {})
    ]


def test_resume_submits_the_missing_keys(tmp_path, monkeypatch):
    mixed = {
        "attempt0-shard1.json": shard([C]),
        "attempt0-shard2.json": shard([A], device_name="other", failures=[B]),
    }
    out = sweep_dir(tmp_path, files=mixed, executor="local", shards=3)
    submitted = []
    monkeypatch.setattr(
        sweep,
        "submit",
        lambda o, keys, shards: submitted.append((o, keys, shards)) or {"shards": 2},
    )
    calls = _record_calls(monkeypatch, "finish")
    lines = []
    with pytest.raises(ValueError, match="devices differs"):
        sweep.resume(out, emit=lines.append)
    assert sweep.resume(str(out), False, lines.append, True) == "finish result"
    assert submitted == [(out, [B, D], 3)]
    assert lines == [f"resuming {out}: 2 missing benchmarks in 2 shards"]
    assert calls == [("finish", (out, {"shards": 2}, False, lines.append, True), {})]


def test_resume_before_any_result_submits_every_key(tmp_path, monkeypatch):
    out = sweep_dir(tmp_path, keys=(B, A), executor="local", shards=2)
    submitted = []
    monkeypatch.setattr(
        sweep, "submit", lambda o, keys, shards: submitted.append((keys, shards)) or {"shards": 2}
    )
    calls = _record_calls(monkeypatch, "finish")
    emit = [].append
    sweep.resume(out, emit=emit)
    assert submitted == [([B, A], 2)]
    # by default: wait, refuse mixed shards
    assert calls == [("finish", (out, {"shards": 2}, True, emit, False), {})]


def test_resume_with_nothing_missing_collects(tmp_path, monkeypatch):
    two = {
        "attempt0-shard1.json": shard([B]),
        "attempt0-shard2.json": shard([A], device_name="other"),
    }
    out = sweep_dir(tmp_path, keys=(A, B), files=two)
    monkeypatch.setattr(sweep, "submit", lambda *a, **k: pytest.fail("submitted"))
    lines = []
    merged = sweep.resume(out, True, lines.append, True)  # two machines, merged anyway
    assert merged.timed == 2 and merged.missing == []
    assert lines[0] == f"nothing missing in {out}: all 2 benchmarks timed"
    assert lines[1].startswith("merged 2 of 2 benchmarks from 2 shard files")
