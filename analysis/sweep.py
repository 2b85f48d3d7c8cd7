"""Sweeps past one machine: shards of a bench grid, their merge, SLURM job arrays, resume.

Shards (`assign`): every benchmark key (`analysis.merge.item_key`) in exactly one shard; by
count (sorted keys dealt round-robin) or, given predicted seconds per key, longest first onto
the least-loaded shard. The shards' JSONs are merged by `analysis.merge`.

Sweep folder (`charlm sweep --out DIR`): sweep.json (the plan), grid.toml (a copy of the
grid), workloads.txt (every key), attempt<R>.sbatch, logs/, shards/attempt<R>-shard<K>.json,
merged.json, and report/ (built by the command, `charlm.commands.sweep`). SLURM tasks are
submitted as one job array from a generated sbatch script (no dependency beyond sbatch
itself; the script is kept in DIR to read or resubmit).
"""

from __future__ import annotations

import datetime as _dt
import heapq
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from analysis.merge import Merged, bench_files, item_key, merge_files
from charlm.validate import check_device, positive_int

REPO = Path(__file__).resolve().parents[1]
EXECUTORS = ("slurm", "local")
MANIFEST = "sweep.json"


# ---------------------------------------------------------------------------- shards


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """"K/N" -> (K, N) with 1 <= K <= N; None stays None."""
    if text is None:
        return None
    try:
        k, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--charlm-shard must be K/N (e.g. 2/3), got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--charlm-shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def assign(keys: list[str], count: int, costs: dict[str, float] | None = None
           ) -> list[list[str]]:
    """Split `keys` into `count` shards, each returned in the order of `keys`. Without costs:
    sorted keys dealt round-robin (sizes differ by at most one). With costs (seconds per
    key): longest first onto the shard with the least total (ties: lower shard, then key).
    Depends only on the set of keys, not their order."""
    positive_int("shards", count)
    unique = sorted(set(keys))
    owner: dict[str, int] = {}
    if costs is None:
        for i, key in enumerate(unique):
            owner[key] = i % count
    else:
        loads = [(0.0, i) for i in range(count)]
        for key in sorted(unique, key=lambda k: (-float(costs.get(k, 0.0)), k)):
            load, i = heapq.heappop(loads)
            owner[key] = i
            heapq.heappush(loads, (load + float(costs.get(key, 0.0)), i))
    shards: list[list[str]] = [[] for _ in range(count)]
    seen = set()
    for key in keys:
        if key not in seen:
            seen.add(key)
            shards[owner[key]].append(key)
    return shards


def _param_workloads(grid) -> dict[str, object]:
    """Bench param id ("<workload id>-<device>") -> Workload, over every set and device."""
    from analysis.workloads import WORKLOAD_SETS

    out = {}
    for device in ("cpu", "cuda"):
        for make in WORKLOAD_SETS.values():
            for w in make(grid, device):
                out.setdefault(f"{w.id}-{device}", w)
    return out


# Seconds a benchmark costs beside its timed rounds (set-up, FLOP counting, peak memory):
# about 0.3 to 2 s per tiny workload measured on the project's 2-core CPU machine.
BENCH_OVERHEAD_S = 0.5
PILOT_ROUNDS = 8  # rounds the harness times before deciding how many to run


def machine_costs(path: str | Path, keys: list[str], grid=None) -> dict[str, float]:
    """Predicted seconds per key from a machine file: a calibration (analysis.calibrate;
    per workload analysis.predict's time of one round x the grid's rounds, warm-up and the
    pilot rounds), or a bench JSON of the machine (each benchmark's total timed seconds
    there); plus BENCH_OVERHEAD_S each. A key neither covers gets the median of the
    others."""
    data = json.loads(Path(path).read_text())
    known: dict[str, float] = {}
    if isinstance(data, dict) and "benchmarks" in data:
        for b in data["benchmarks"]:
            stats = b.get("stats") or {}
            total = stats.get("total")
            if total is None and stats.get("median") is not None:
                total = stats["median"] * stats.get("rounds", 1)
            if total is not None:
                known[item_key(b.get("fullname", ""))] = BENCH_OVERHEAD_S + float(total)
    else:
        from analysis.calibrate import load_machine
        from analysis.predict import predict_workload
        from analysis.workloads import get_grid

        machine = load_machine(path)
        g = get_grid(grid if grid is not None else "quick")
        by_param = _param_workloads(g)
        for key in keys:
            w = by_param.get(key.rpartition("[")[2].rstrip("]"))
            if w is not None:
                seconds = predict_workload(w, machine)["predicted_s"]
                rounds = g.rounds + g.warmup + PILOT_ROUNDS
                known[key] = BENCH_OVERHEAD_S + float(seconds) * rounds
    if not known:
        raise ValueError(f"machine file {path} predicts none of the grid's benchmarks")
    values = sorted(known.values())
    fill = values[len(values) // 2]
    return {k: known.get(k, fill) for k in keys}


def read_keys(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"workload list not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def write_keys(path: Path, keys: list[str]) -> None:
    path.write_text("".join(f"{k}\n" for k in keys))


# ---------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class SweepConfig:
    out: Path
    grid: str = "default"
    shards: int = 1
    executor: str = "slurm"
    device: str = "cpu"
    threads: int = 1
    partition: str | None = None
    gpus_per_task: int | None = None
    time_min: int | None = None
    exclusive: bool = True
    gpus: int | None = None  # local: run this many shards at once, one per GPU
    machine: str | None = None
    pytest_args: tuple[str, ...] = ()

    def __post_init__(self):
        from charlm.validate import lookup

        object.__setattr__(self, "out", Path(self.out))
        positive_int("shards", self.shards)
        positive_int("threads", self.threads)
        positive_int("gpus_per_task", self.gpus_per_task, allow_none=True)
        positive_int("time", self.time_min, allow_none=True)
        positive_int("gpus", self.gpus, allow_none=True)
        lookup(dict.fromkeys(EXECUTORS), self.executor, "executor")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.executor == "local":  # SLURM's nodes may have the GPUs this one lacks
            check_device(self.device)
        if self.executor == "local" and (self.partition or self.gpus_per_task or self.time_min):
            raise ValueError("--partition, --gpus-per-task and --time are SLURM options; "
                             "--executor local takes --gpus")
        if self.executor == "slurm" and self.gpus:
            raise ValueError("--gpus is for --executor local; on SLURM use --gpus-per-task")
        object.__setattr__(self, "pytest_args", tuple(self.pytest_args))


def shard_command(cfg: SweepConfig, out: Path, json_path: str, keys_file: str) -> list[str]:
    """The pytest command line of one shard: the bench on the grid copy, restricted to the
    keys listed in `keys_file` (the shard's share, computed once when submitting)."""
    cmd = [sys.executable, "-m", "pytest", *map(str, bench_files()), "--benchmark-only",
           "-v", "-p", "no:cacheprovider", f"--charlm-grid={out / 'grid.toml'}",
           f"--charlm-device={cfg.device}", f"--charlm-threads={cfg.threads}",
           f"--charlm-workloads={keys_file}", f"--benchmark-json={json_path}"]
    return cmd + list(cfg.pytest_args)


def collect_keys(cfg: SweepConfig, out: Path) -> list[str]:
    """Every benchmark key of the grid, from pytest's own collection (what shards split)."""
    cmd = [sys.executable, "-m", "pytest", *map(str, bench_files()), "--collect-only", "-q",
           "-p", "no:cacheprovider", f"--charlm-grid={out / 'grid.toml'}",
           f"--charlm-device={cfg.device}", *cfg.pytest_args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    keys = [item_key(line.strip()) for line in proc.stdout.splitlines() if "::" in line]
    if proc.returncode not in (0, 5) or not keys:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise ValueError(f"collecting the grid's benchmarks failed: {' | '.join(tail)}")
    return keys


def sbatch_script(cfg: SweepConfig, out: Path, attempt: int, shards: int) -> str:
    """A job-array script: task K (1..shards) times the keys of attempt<R>-shard<K>.txt alone
    on its node (--exclusive unless turned off), with its thread count set."""
    logs = out / "logs"
    opts = [f"--job-name=charlm-sweep-{out.name}", f"--array=1-{shards}",
            f"--output={logs}/attempt{attempt}-shard%a.out",
            f"--cpus-per-task={cfg.threads}", f"--chdir={REPO}"]
    if cfg.exclusive:
        opts.append("--exclusive")
    if cfg.partition:
        opts.append(f"--partition={cfg.partition}")
    if cfg.gpus_per_task:
        opts.append(f"--gpus-per-task={cfg.gpus_per_task}")
    if cfg.time_min:
        opts.append(f"--time={cfg.time_min}")
    task = "${SLURM_ARRAY_TASK_ID}"
    cmd = shard_command(cfg, out, f"{out}/shards/attempt{attempt}-shard{task}.json",
                        f"{out}/attempt{attempt}-shard{task}.txt")
    # each word quoted whole, the task id left outside the quotes for the shell to expand
    quoted = " ".join(task.join(shlex.quote(p) for p in c.split(task)) for c in cmd)
    return "\n".join([
        "#!/bin/bash", f"# charlm sweep {out}: attempt {attempt}, {shards} shards",
        *(f"#SBATCH {o}" for o in opts),
        f"export OMP_NUM_THREADS={cfg.threads} MKL_NUM_THREADS={cfg.threads}",
        f"export CHARLM_SWEEP_SHARD={task}/{shards}",
        f'echo "charlm sweep: shard {task}/{shards} on $(hostname), job ${{SLURM_JOB_ID}}"',
        "# exec: SIGTERM (scancel, time limit, preemption) reaches pytest, which then writes",
        "# the JSON of the benchmarks it finished",
        f"exec {quoted}", ""])


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_manifest(out: Path) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no sweep in {out} ({MANIFEST} not found)")
    return json.loads(path.read_text())


def write_manifest(out: Path, manifest: dict) -> None:
    from charlm.io import atomic_write_text

    atomic_write_text(Path(out) / MANIFEST, json.dumps(manifest, indent=1))


def config_of(manifest: dict) -> SweepConfig:
    c = dict(manifest["config"])
    c["pytest_args"] = tuple(c.get("pytest_args") or ())
    return SweepConfig(**c)


def find_machine(cfg: SweepConfig) -> Path | None:
    """The machine file that balances shards: --machine, else this machine's calibration
    (analysis.calibrate's default path) when one exists, else None (balance by count)."""
    if cfg.machine:
        path = Path(cfg.machine)
        if not path.is_file():
            raise FileNotFoundError(f"machine file not found: {path}")
        return path
    from analysis.calibrate import default_cache_path

    relative = default_cache_path(cfg.device, cfg.threads)  # runs/machine/<...>.json
    for path in (Path.cwd() / relative, REPO / relative):
        if path.is_file():
            return path
    return None


def plan(cfg: SweepConfig) -> dict:
    """Write the sweep folder's plan: grid copy, every key, the manifest."""
    from analysis.grids import grid_file
    from analysis.workloads import get_grid

    out = cfg.out
    if (out / MANIFEST).exists():
        raise ValueError(f"{out} already holds a sweep: charlm sweep --collect {out} or "
                         f"--resume {out}")
    get_grid(cfg.grid)  # a bad grid fails here, naming its key
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    shutil.copyfile(grid_file(cfg.grid), out / "grid.toml")
    keys = collect_keys(cfg, out)
    write_keys(out / "workloads.txt", keys)
    from analysis.env import git_commit

    machine = find_machine(cfg)
    balance = "count"
    if machine is not None:
        shutil.copyfile(machine, out / "machine.json")
        balance = f"predicted time ({machine})"
    manifest = {"config": {**asdict(cfg), "out": str(out)}, "commit": git_commit(),
                "created": _now(), "workloads": len(keys), "balance": balance,
                "attempts": []}
    write_manifest(out, manifest)
    return manifest


def submit(out: Path, keys: list[str] | None = None, shards: int | None = None) -> dict:
    """Start one attempt on every key (attempt 0) or only `keys` (a resume): the keys are
    split into shards once, here (balanced by the sweep's machine file, else by count), and
    each shard's keys written to attempt<R>-shard<K>.txt. SLURM: sbatch a job array; local:
    the shards run in `finish`."""
    manifest = read_manifest(out)
    cfg = config_of(manifest)
    attempt = len(manifest["attempts"])
    keys = read_keys(out / "workloads.txt") if keys is None else keys
    shards = min(shards or cfg.shards, len(keys))
    machine = out / "machine.json"
    costs = (machine_costs(machine, keys, out / "grid.toml") if machine.is_file() else None)
    for k, part in enumerate(assign(keys, shards, costs), start=1):
        write_keys(out / f"attempt{attempt}-shard{k}.txt", part)
    record = {"attempt": attempt, "shards": shards, "executor": cfg.executor,
              "keys": len(keys), "submitted": _now(), "t0": time.time(), "job_id": None}
    if cfg.executor == "slurm":
        script = out / f"attempt{attempt}.sbatch"
        script.write_text(sbatch_script(cfg, out, attempt, shards))
        proc = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True,
                              text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch failed: {proc.stderr.strip() or proc.stdout.strip()}")
        record["job_id"] = proc.stdout.strip().split(";")[0]
    manifest["attempts"].append(record)
    write_manifest(out, manifest)
    return record


def shard_json(out: Path, attempt: int, k: int) -> Path:
    return out / "shards" / f"attempt{attempt}-shard{k}.json"


def shard_line(out: Path, record: dict, k: int) -> str:
    """One progress line for a finished shard, from its JSON (or its absence)."""
    shards, attempt = record["shards"], record["attempt"]
    path = shard_json(out, attempt, k)
    elapsed = time.time() - record["t0"]
    head = f"shard {k}/{shards} (attempt {attempt})"
    if not path.is_file():
        return (f"{head}: no results (failed, cancelled or killed before any benchmark "
                f"finished; log: {out / 'logs' / f'attempt{attempt}-shard{k}.out'}), "
                f"{elapsed:.0f} s since submission")
    block = json.loads(path.read_text()).get("charlm") or {}
    fails = len(json.loads(path.read_text()).get("charlm_failures") or [])
    return (f"{head}: {len(block.get('finished') or [])} of {len(block.get('workloads') or [])}"
            f" timed, {fails} failed, {block.get('status')} on {block.get('node')}, "
            f"{elapsed:.0f} s since submission")


def run_local(out: Path, record: dict, emit=print) -> None:
    """Run an attempt's shards here: one after another, or `gpus` at a time (one per GPU)."""
    cfg = config_of(read_manifest(out))
    attempt, shards = record["attempt"], record["shards"]
    slots = cfg.gpus or 1
    pending = list(range(1, shards + 1))
    running: dict[int, tuple[subprocess.Popen, object]] = {}
    try:
        while pending or running:
            while pending and len(running) < slots:
                k = pending.pop(0)
                slot = next(i for i in range(slots) if i not in
                            {s for _, (_, _, s) in running.items()})
                env = {**os.environ, "OMP_NUM_THREADS": str(cfg.threads),
                       "PYTHONUNBUFFERED": "1", "CHARLM_SWEEP_SHARD": f"{k}/{shards}"}
                if cfg.gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(slot)
                cmd = shard_command(cfg, out, str(shard_json(out, attempt, k)),
                                    str(out / f"attempt{attempt}-shard{k}.txt"))
                log = open(out / "logs" / f"attempt{attempt}-shard{k}.out", "w")
                running[k] = (subprocess.Popen(cmd, cwd=REPO, stdout=log,
                                               stderr=subprocess.STDOUT, env=env), log, slot)
            for k, (proc, log, _) in list(running.items()):
                if proc.poll() is not None:
                    log.close()
                    del running[k]
                    emit(shard_line(out, record, k))
            time.sleep(0.2)
    finally:
        for proc, log, _ in running.values():
            proc.terminate()
            proc.wait()
            log.close()


def queued_tasks(job_id: str) -> set[int]:
    """Array task ids of `job_id` still pending or running (squeue)."""
    proc = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%K"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:  # the job left the queue (squeue: invalid job id)
        return set()
    return {int(t) for t in proc.stdout.split() if t.isdigit()}


def wait_slurm(out: Path, record: dict, emit=print, poll: float = 1.0) -> None:
    """Until every task of the attempt's array has left the queue; a line per finished one."""
    done: set[int] = set()
    every = set(range(1, record["shards"] + 1))
    while done != every:
        left = queued_tasks(record["job_id"])
        for k in sorted(every - done - left):
            done.add(k)
            emit(shard_line(out, record, k))
        if done != every:
            time.sleep(poll)


def collect(out: Path, allow_mixed: bool = False, emit=print) -> Merged:
    """Merge every shard JSON of the sweep into DIR/merged.json (missing workloads listed)."""
    out = Path(out)
    manifest = read_manifest(out)
    expected = read_keys(out / "workloads.txt")
    paths = sorted((out / "shards").glob("attempt*-shard*.json"))
    if not paths:
        raise ValueError(f"no shard of {out} wrote results yet (see {out / 'logs'})")
    merged = merge_files(paths, out / "merged.json", allow_mixed, expected)
    emit(f"merged {merged.timed} of {len(expected)} benchmarks from {len(paths)} shard files "
         f"({merged.duplicates} duplicates dropped, commit {manifest.get('commit')}) -> "
         f"{out / 'merged.json'}")
    if merged.missing:
        shown = ", ".join(merged.missing[:5]) + (" ..." if len(merged.missing) > 5 else "")
        emit(f"missing {len(merged.missing)}: {shown} (charlm sweep --resume {out})")
    return merged


def finish(out: Path, record: dict, wait: bool, emit=print,
           allow_mixed: bool = False) -> Merged | None:
    if record["executor"] == "local":
        run_local(out, record, emit)
    elif not wait:
        emit(f"submitted job array {record['job_id']} ({record['shards']} shards); "
             f"later: charlm sweep --collect {out}")
        return None
    else:
        emit(f"submitted job array {record['job_id']} ({record['shards']} shards), "
             "waiting (Ctrl-C stops waiting, not the jobs)")
        wait_slurm(out, record, emit)
    return collect(out, allow_mixed, emit)


def sweep(cfg: SweepConfig, wait: bool = True, emit=print,
          allow_mixed: bool = False) -> Merged | None:
    """Plan, submit every shard, and (unless not waiting) wait and merge."""
    manifest = plan(cfg)
    record = submit(cfg.out)
    emit(f"sweep {cfg.out}: grid {cfg.grid}, {manifest['workloads']} benchmarks in "
         f"{record['shards']} shards balanced by {manifest['balance']}, executor "
         f"{cfg.executor} on {socket.gethostname()}")
    return finish(cfg.out, record, wait, emit, allow_mixed)


def resume(out: Path, wait: bool = True, emit=print,
           allow_mixed: bool = False) -> Merged | None:
    """Resubmit only the workloads no shard timed (failed, timed out, cancelled)."""
    out = Path(out)
    manifest = read_manifest(out)
    expected = read_keys(out / "workloads.txt")
    paths = sorted((out / "shards").glob("attempt*-shard*.json"))
    timed = (set(merge_files(paths, None, allow_mixed, expected).data["charlm"]["finished"])
             if paths else set())
    missing = [k for k in expected if k not in timed]
    if not missing:
        emit(f"nothing missing in {out}: all {len(expected)} benchmarks timed")
        return collect(out, allow_mixed, emit)
    record = submit(out, keys=missing, shards=config_of(manifest).shards)
    emit(f"resuming {out}: {len(missing)} missing benchmarks in {record['shards']} shards")
    return finish(out, record, wait, emit, allow_mixed)
