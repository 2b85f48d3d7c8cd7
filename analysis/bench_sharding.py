"""pytest plugin of the bench (registered by bench/conftest.py): grid files, shards, resume
lists, SIGTERM, and the sweep metadata of the saved JSON.

    pytest bench --benchmark-only --charlm-grid my.toml --charlm-shard 2/3 \
        --benchmark-json shard-2.json

- `--charlm-grid FILE.toml`: a grid file (schema: analysis.grids), checked before collection;
  a bad one is a one-line usage error naming the key.
- `--charlm-shard K/N` (K = 1..N): time only shard K of N. Every collected benchmark is in
  exactly one shard; shards are balanced by predicted time when `--charlm-machine` names a
  bench JSON of this machine, else by count (analysis.sweep.assign). Deterministic: the
  same grid, files and options give the same shards in every process.
- `--charlm-workloads FILE`: time only the benchmarks listed (one key a line; what
  `charlm sweep --resume` writes), sharded as above.
- SIGTERM (what SLURM sends before SIGKILL on scancel, time-out or preemption) ends the
  session as Ctrl-C does: the running benchmark is dropped and the JSON of the finished
  ones is written.
- The JSON's `charlm` block gains: commit, grid_name, grid_spec, shard {index, count},
  node, slurm ids, workloads (this shard's keys), grid_workloads (every key of the grid,
  before sharding), finished (keys timed), status (complete | interrupted).

This lives in the installed `analysis` package (not bench/) so that a copy of
bench/conftest.py elsewhere (the harness tests' pytester) still finds it.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

STATE = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("charlm")
    group.addoption("--charlm-shard", default=None, metavar="K/N",
                    help="time only shard K of N (K = 1..N) of the grid's benchmarks")
    group.addoption("--charlm-workloads", type=Path, default=None, metavar="FILE",
                    help="time only the benchmarks listed in FILE, one key a line "
                         "(what `charlm sweep --resume` writes)")
    group.addoption("--charlm-machine", type=Path, default=None, metavar="JSON",
                    help="a bench JSON of this machine: balance shards by its times "
                         "(default: by count)")


SIGTERM_MESSAGE = "SIGTERM"


def _sigterm(signum, frame):
    raise KeyboardInterrupt(SIGTERM_MESSAGE)  # pytest ends the session as on Ctrl-C


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    """Re-raise SIGTERM's interrupt from here, without the frames it landed in.

    A signal handler runs between bytecodes, and some of those (a loop's back jump, a
    generator's resume) carry no line number; pytest's report of the interrupt then fails
    on `tb_lineno - 1` (None) and the session ends as failed (exit 1) instead of interrupted
    (exit 2). Where the signal landed says nothing to the user, so it is dropped."""
    try:
        return (yield)
    except KeyboardInterrupt as exc:
        if exc.args != (SIGTERM_MESSAGE,):
            raise  # Ctrl-C: its traceback is the user's
        raise KeyboardInterrupt(SIGTERM_MESSAGE) from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not hasattr(config.option, "charlm_grid"):
        return
    from analysis.grids import is_grid_path
    from analysis.sweep import parse_shard, read_keys
    from analysis.workloads import get_grid

    grid = config.getoption("charlm_grid")
    try:
        spec = get_grid(grid)
        shard = parse_shard(config.getoption("charlm_shard"))
        only = config.getoption("charlm_workloads")
        only = read_keys(only) if only is not None else None
        machine = config.getoption("charlm_machine")
        if machine is not None and not machine.is_file():
            raise FileNotFoundError(f"--charlm-machine: no such file: {machine}")
    except (ValueError, FileNotFoundError) as exc:
        raise pytest.UsageError(" ".join(str(exc).split())) from None
    if config.getoption("benchmark_json", None) is None and is_grid_path(grid):
        # a grid file: runs/bench/<grid name>-<device>.json, as for a built-in grid
        import torch

        cuda = config.getoption("charlm_device") != "cpu" and torch.cuda.is_available()
        results = Path(__file__).resolve().parent.parent / "runs" / "bench"
        results.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = results / f"{spec.name}-{'cuda' if cuda else 'cpu'}.json"
    from analysis.env import git_commit

    state = {"spec": spec, "shard": shard, "only": only, "machine": machine,
             "commit": git_commit(),  # at the start: the code this session runs
             "grid_keys": [], "keys": [], "finished": [], "status": "complete",
             "previous_handler": None}
    try:
        state["previous_handler"] = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread: leave signals alone
        pass
    config.stash[STATE] = state
    config.pluginmanager.register(_EmptySets(), "charlm-empty-sets")


class _EmptySets:
    """A grid without workloads of a module's kind (e.g. no [reference] table) leaves that
    module an empty parameter set: drop its placeholder item before the harness reads it."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        def empty(item):
            spec = getattr(item, "callspec", None)
            return spec is not None and any(type(v).__name__ == "NotSetType"
                                            for v in spec.params.values())

        dropped = [it for it in items if empty(it)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [it for it in items if not empty(it)]


def pytest_unconfigure(config):
    state = config.stash.get(STATE, None)
    if state and state["previous_handler"] is not None:
        signal.signal(signal.SIGTERM, state["previous_handler"])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    state = config.stash.get(STATE, None)
    if state is None:
        return
    from analysis.merge import item_key
    from analysis.sweep import assign, machine_costs

    keys = [item_key(item.nodeid) for item in items]
    state["grid_keys"] = keys
    chosen = keys
    if state["only"] is not None:
        wanted = set(state["only"])
        chosen = [k for k in keys if k in wanted]
    if state["shard"] is not None:
        index, count = state["shard"]
        costs = (machine_costs(state["machine"], chosen, state["spec"]) if state["machine"]
                 else None)
        chosen = assign(chosen, count, costs)[index - 1]
    state["keys"] = chosen
    if len(chosen) == len(keys):
        return
    keep = set(chosen)
    selected = [it for it, k in zip(items, keys) if k in keep]
    deselected = [it for it, k in zip(items, keys) if k not in keep]
    config.hook.pytest_deselected(items=deselected)
    items[:] = selected


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    state = item.config.stash.get(STATE, None)
    if state is not None and report.when == "call" and report.passed:
        state["finished"].append(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash.get(STATE, None)
    if state is not None and int(exitstatus) == int(pytest.ExitCode.INTERRUPTED):
        state["status"] = "interrupted"
    yield


@pytest.hookimpl(trylast=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Sweep metadata in the `charlm` block (after bench/conftest.py's own), and only the
    benchmarks that finished (one stopped by SIGTERM mid-way is dropped)."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    from analysis.merge import item_key

    finished = {item_key(n) for n in state["finished"]}
    output_json["benchmarks"] = [b for b in output_json.get("benchmarks", [])
                                 if item_key(b.get("fullname", "")) in finished]
    spec, shard = state["spec"], state["shard"]
    if shard is None and os.environ.get("CHARLM_SWEEP_SHARD"):  # a task of `charlm sweep`
        from analysis.sweep import parse_shard

        shard = parse_shard(os.environ["CHARLM_SWEEP_SHARD"])
    block = output_json.setdefault("charlm", {})
    block.update({
        "commit": state["commit"],
        "grid_name": spec.name,
        "grid_spec": spec.to_dict(),
        "shard": {"index": shard[0], "count": shard[1]} if shard else None,
        "node": socket.gethostname(),
        "slurm": {k: os.environ[k] for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
                                             "SLURM_ARRAY_TASK_ID", "SLURM_JOB_PARTITION")
                  if k in os.environ} or None,
        "status": state["status"],
        "workloads": state["keys"],
        "grid_workloads": state["grid_keys"],
        "finished": sorted(finished),
    })
