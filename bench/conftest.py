"""pytest-benchmark suite of charlm: options, device parametrization, timers, metadata.

    pytest bench --benchmark-only --charlm-grid quick      # < 3 min on 2 CPU cores
    pytest bench --benchmark-only --charlm-grid default --charlm-device cuda

Every test is parametrized by `workload` (from analysis.workloads, chosen by the grid and
the module's WORKLOAD_SET) and `device` (cpu, and cuda when present). Each round is timed
in pedantic mode: perf_counter on CPU, a CUDA-event clock on GPU (so the saved JSON and
--benchmark-compare hold GPU time). Results go to runs/bench/<grid>-<device>.json (ignored by
git; committed references live under results/reference/ and are written only when asked)
unless --benchmark-json names another file; failures are recorded in that JSON under
"charlm_failures". To compare runs, save them with --benchmark-autosave and compare with
--benchmark-compare, both with --benchmark-storage=runs/bench/storage (`make bench` and
`make bench-compare` do this).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from analysis.timing import (
    CudaEventClock,
    configure_backends,
    peak_memory,
    recorded_environment,
    summarize,
    synchronize,
)
from analysis.workloads import GRIDS, WORKLOAD_SETS, Prepared, measured_flops, predictions

RESULTS = Path(__file__).resolve().parent.parent / "runs" / "bench"
FAILURES = pytest.StashKey[list]()
BACKENDS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("charlm")
    group.addoption("--charlm-grid", choices=list(GRIDS), default="quick",
                    help="size grid: quick (< 3 min on 2 CPU cores), default (< 15), full")
    group.addoption("--charlm-device", choices=["all", "cpu", "cuda"], default="all",
                    help="devices to run on (all: cpu, and cuda when present)")
    group.addoption("--charlm-threads", type=int, default=1,
                    help="CPU threads (torch.set_num_threads), recorded with every result; "
                         "default 1: these models' ops are too small to gain from more, and "
                         "one thread is not disturbed by other processes' load")


def devices(config) -> list[str]:
    choice = config.getoption("charlm_device")
    have_cuda = torch.cuda.is_available()
    if choice == "cuda" and not have_cuda:
        raise pytest.UsageError("--charlm-device cuda, but CUDA is not available")
    if choice == "all":
        return ["cpu", "cuda"] if have_cuda else ["cpu"]
    return [choice]


def pytest_configure(config):
    # Runs before pytest-benchmark's own (trylast) configure, which reads benchmark_json.
    if config.getoption("benchmark_json", None) is None and hasattr(config.option, "charlm_grid"):
        devs = devices(config)
        name = f"{config.getoption('charlm_grid')}-{'cuda' if 'cuda' in devs else 'cpu'}.json"
        RESULTS.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = RESULTS / name
    config.stash[FAILURES] = []
    config.stash[BACKENDS] = configure_backends(
        "cuda" if torch.cuda.is_available() else "cpu",
        threads=config.getoption("charlm_threads", None),
        cudnn_benchmark=False,
        tf32=False,
    )


def pytest_generate_tests(metafunc):
    if "workload" not in metafunc.fixturenames:
        return
    config = metafunc.config
    which = metafunc.module.WORKLOAD_SET
    grid = config.getoption("charlm_grid")
    params = []
    for device in devices(config):
        for w in WORKLOAD_SETS[which](grid, device):
            params.append(pytest.param(w, device, id=f"{w.id}-{device}"))
    metafunc.parametrize(("workload", "device"), params)


def pytest_collection_modifyitems(config, items):
    """Group each benchmark by workload family; on CUDA time with the CUDA-event clock."""
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is None or "workload" not in spec.params:
            continue
        kwargs = {"group": f"{spec.params['workload'].group}:{spec.params['device']}"}
        if spec.params["device"] == "cuda":
            kwargs["timer"] = CudaEventClock()
        item.add_marker(pytest.mark.benchmark(**kwargs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    spec = getattr(item, "callspec", None)
    if report.failed and spec is not None and "workload" in spec.params:
        message = str(call.excinfo.value).strip().splitlines() if call.excinfo else []
        item.config.stash[FAILURES].append({
            "test": item.nodeid,
            "config": spec.params["workload"].to_dict(),
            "device": spec.params["device"],
            "phase": report.when,
            "error": call.excinfo.typename if call.excinfo else "failed",
            "message": message[0][:300] if message else "",
        })


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["charlm"] = {
        "grid": config.getoption("charlm_grid"),
        "devices": devices(config),
        "backends": config.stash[BACKENDS],
        "env": {d: recorded_environment(d) for d in devices(config)},
    }
    output_json["charlm_failures"] = config.stash[FAILURES]


@pytest.fixture(scope="session")
def grid(request):
    return GRIDS[request.config.getoption("charlm_grid")]


@pytest.fixture(scope="session")
def env_by_device(request):
    backends = request.config.stash[BACKENDS]
    return {d: {**recorded_environment(d), **{k: v for k, v in backends.items() if k != "device"}}
            for d in devices(request.config)}


@pytest.fixture
def measure(benchmark, grid, env_by_device):
    """Time a prepared workload and fill benchmark.extra_info with its cost columns."""

    def run(p: Prepared, device: str) -> dict:
        w = p.workload
        benchmark.pedantic(p.fn, setup=lambda: synchronize(device), rounds=grid.rounds,
                           warmup_rounds=grid.warmup, iterations=1)
        peak = peak_memory(p.fn, device)
        measured = measured_flops(p)
        predicted = predictions(w)
        stats = summarize(benchmark.stats.stats.data) if benchmark.stats else None
        median = stats.median if stats else None
        flops = measured["torch"] if measured["torch"] else predicted["flops"]
        benchmark.extra_info.update({
            "config": w.to_dict(),
            "predicted_flops": predicted["flops"],
            "measured_flops": measured["torch"],
            "measured_flops_fvcore": measured["fvcore"],
            "flops_per_second": flops / median if flops and median else None,
            "predicted_depth": predicted["depth"],
            "tokens_per_second": w.tokens() / median if median else None,
            "peak_memory_bytes": peak,
            "timing": stats.to_dict() if stats else None,
            "env": env_by_device[device],
        })
        return benchmark.extra_info

    return run
