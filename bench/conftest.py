"""pytest-benchmark suite of charlm: options, device parametrization, timers, metadata.

    pytest bench --benchmark-only --charlm-grid quick      # < 3 min on 2 CPU cores
    pytest bench --benchmark-only --charlm-grid default --charlm-device cuda
    pytest bench --benchmark-only --charlm-smoke            # every body once, no timing (CI)

Every test is parametrized by `workload` (from analysis.workloads, chosen by the grid and
the module's WORKLOAD_SET) and `device` (cpu, and cuda when present). Each round is timed
in pedantic mode: perf_counter on CPU, a CUDA-event clock on GPU (so the saved JSON and
--benchmark-compare hold GPU time). Results go to runs/bench/<grid>-<device>.json (ignored by
git; committed references live under results/reference/ and are written only when asked)
unless --benchmark-json names another file; failures are recorded in that JSON under
"charlm_failures". The run ends with charlm's own summary (what ran, how many medians met
the precision target, the ratios with their intervals, where the JSON is); pytest-benchmark's
tables are printed with --charlm-tables.

Smoke mode (--charlm-smoke, what CI runs): every benchmark body runs, its assertions
included, through the same fixtures, but with no warm-up, one call per round and the fewest
rounds an interval needs, so the whole quick grid takes seconds; its numbers mean nothing and
go to runs/bench/smoke-<grid>-<device>.json, never over a real run's JSON.

To compare runs, save them with --benchmark-autosave and compare with --benchmark-compare,
both with --benchmark-storage=runs/bench/storage (`make bench` and
`make bench-compare` do this).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from analysis.calibrate import yardstick
from analysis.timing import (
    CI_TARGET,
    EXTENSIONS,
    CudaEventClock,
    configure_backends,
    drift,
    iterations_for,
    load_between,
    machine_load,
    median_ci,
    paired_ratio,
    plan_rounds,
    prepared_costs,
    recorded_environment,
    robust_spread,
    round_costs,
    rounds_to_add,
    summarize,
    synchronize,
    time_once,
)
from analysis.workloads import (
    GRIDS,
    WORKLOAD_SETS,
    Prepared,
    executed_as,
    pair_workloads,
    predicted_flops,
    predictions,
)

pytest_plugins = ["analysis.bench_sharding"]  # grid files, shards, SIGTERM
RESULTS = Path(__file__).resolve().parent.parent / "runs" / "bench"
FAILURES = pytest.StashKey[list]()
RECORDS = pytest.StashKey[list]()  # (kind, extra_info) of every benchmark that ran
BACKENDS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("charlm")
    group.addoption("--charlm-grid", default="quick",  # checked by analysis.bench_sharding
                    help="size grid: quick (< 3 min on 2 CPU cores), default (< 15), full, "
                         "or a grid file FILE.toml (schema: analysis/grids.py)")
    group.addoption("--charlm-device", choices=["all", "cpu", "cuda"], default="all",
                    help="devices to run on (all: cpu, and cuda when present)")
    group.addoption("--charlm-ci-target", type=float, default=CI_TARGET,
                    help="adaptive rounds: run until the median's 95%% CI is within +-this "
                         "fraction of it (or the budget is spent)")
    group.addoption("--charlm-budget", type=float, default=1.0,
                    help="adaptive rounds: seconds of timed rounds per benchmark at most "
                         "(the grid's minimum rounds always run)")
    group.addoption("--charlm-smoke", action="store_true",
                    help="run every benchmark body once through the timing code, with no "
                         "warm-up and the fewest rounds (a test of the bench, not a timing)")
    group.addoption("--charlm-tables", action="store_true",
                    help="also print pytest-benchmark's own tables (wide: one row per "
                         "benchmark; always with --benchmark-compare)")
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
        if config.getoption("charlm_smoke"):
            name = "smoke-" + name
        RESULTS.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = RESULTS / name
    # --benchmark-compare defaults to [] (absent), True or a run's name when given
    tables = config.getoption("charlm_tables", False) or bool(
        config.getoption("benchmark_compare", None))
    if hasattr(config.option, "charlm_tables") and not tables:
        config.option.benchmark_quiet = True  # our summary instead; regressions still fail
    config.stash[FAILURES] = []
    config.stash[RECORDS] = []
    config.stash[BACKENDS] = configure_backends(
        "cuda" if torch.cuda.is_available() else "cpu",
        threads=config.getoption("charlm_threads", None),
        cudnn_benchmark=False,
        tf32=False,
    )


def pytest_generate_tests(metafunc):
    config = metafunc.config
    grid = config.getoption("charlm_grid")
    if "pair" in metafunc.fixturenames:
        params = [pytest.param(pr, device, id=f"{pr.id}-{device}")
                  for device in devices(config) for pr in pair_workloads(grid, device)]
        metafunc.parametrize(("pair", "device"), params)
        return
    if "workload" not in metafunc.fixturenames:
        return
    which = metafunc.module.WORKLOAD_SET
    params = []
    for device in devices(config):
        for w in WORKLOAD_SETS[which](grid, device):
            params.append(pytest.param(w, device, id=f"{w.id}-{device}"))
    metafunc.parametrize(("workload", "device"), params)


def pytest_collection_modifyitems(config, items):
    """Group each benchmark by workload family; on CUDA time with the CUDA-event clock."""
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is None or not ({"workload", "pair"} & set(spec.params)):
            continue
        what = spec.params.get("workload") or spec.params.get("pair")
        kwargs = {"group": f"{what.group}:{spec.params['device']}"}
        if spec.params["device"] == "cuda":
            kwargs["timer"] = CudaEventClock()
        item.add_marker(pytest.mark.benchmark(**kwargs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    spec = getattr(item, "callspec", None)
    if report.failed and spec is not None and ({"workload", "pair"} & set(spec.params)):
        message = str(call.excinfo.value).strip().splitlines() if call.excinfo else []
        what = spec.params.get("workload") or spec.params.get("pair")
        item.config.stash[FAILURES].append({
            "test": item.nodeid,
            "config": what.to_dict(),
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


PARALLEL_COSTS_MIN = 32  # workloads; fewer are measured in this process (0.1-0.5 s each)


def _cpu_workloads(items) -> list:
    """The CPU workloads whose costs the session's benchmarks record, in collection order:
    each timed workload, and both sides of a pair that records peak memory."""
    found: dict = {}
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("device") != "cpu":
            continue
        if "workload" in params:
            found.setdefault(params["workload"])
        pair = params.get("pair")
        if pair is not None and pair.memory:
            found.setdefault(pair.a)
            found.setdefault(pair.b)
    return list(found)


@pytest.fixture(scope="session")
def cpu_costs(request) -> dict:
    """FLOPs (both counters) and peak memory of every CPU workload this session times, by
    workload (`analysis.timing.round_costs`): counts and allocations, not times, so they are
    measured once, before the first benchmark is timed, in `count_workers()` processes (at
    most 2; in this one for fewer than PARALLEL_COSTS_MIN), instead of inside each
    benchmark. CUDA workloads are measured in place."""
    import functools

    from analysis.parallel import count_workers, ordered_map

    workloads = _cpu_workloads(request.session.items)
    # a worker process costs seconds to start (it imports torch): worth it for a grid only
    workers = count_workers() if len(workloads) >= PARALLEL_COSTS_MIN else 1
    costs = ordered_map(functools.partial(round_costs, device="cpu"), workloads,
                        workers=workers)
    return dict(zip(workloads, costs))


def costs_of(p: Prepared, device: str, cpu_costs: dict) -> dict:
    """The round costs of a prepared workload: measured before the session on CPU, now on
    CUDA (its allocator's peak is this process's)."""
    found = cpu_costs.get(p.workload) if device == "cpu" else None
    return found if found is not None else prepared_costs(p, device)


MIN_ROUND_S = {"cpu": 1e-3, "cuda": 1e-4}  # a round at least this long: the clock's noise
PILOT_ROUNDS = 8
WARMUP_S = 0.05  # warm-up calls continue until this much time has passed (caches, clocks)
MIN_CI_ROUNDS = 6  # the fewest rounds whose order statistics give a 95% CI of the median


SMOKE_BUDGET_S = 1e-9  # smoke mode: no round fits, so each benchmark runs its minimum


MIN_PILOT_ROUNDS = 3  # the fewest pilot rounds a spread is estimated from
PILOT_SHARE = 0.2  # pilot rounds past MIN_PILOT_ROUNDS stop at this share of the budget


def _pilot(fn, device, smoke: bool = False, enough_s: float = math.inf,
           max_s: float = math.inf) -> tuple[int, list[float]]:
    """Warm up (at least two calls and WARMUP_S, the last one timed to plan with), choose
    calls per round, and time PILOT_ROUNDS rounds of them, or as many (at least
    MIN_PILOT_ROUNDS) as fit in `max_s` seconds. A call so slow that the fewest rounds
    already fill the budget (`enough_s`: MIN_CI_ROUNDS calls at least that long) needs no
    pilot rounds: the plan is the fewest rounds whatever their spread, so the one timed
    call stands for them. Smoke: two calls, one call per round, two rounds."""
    import time

    start = time.perf_counter()
    fn()  # the first call: allocations, optimizer state, caches
    calls = 1
    while True:  # the last warm-up call is timed: it plans the rounds (not a sample)
        synchronize(device)
        one = time_once(fn, device)
        calls += 1
        if calls >= 2 and (smoke or time.perf_counter() - start >= WARMUP_S):
            break
    iterations = 1 if smoke else iterations_for(one, MIN_ROUND_S[torch.device(device).type])
    if not smoke and iterations == 1 and one >= enough_s:
        return 1, [one]
    if smoke:
        return iterations, [time_once(fn, device, iterations) for _ in range(2)]
    rounds: list[float] = []
    while len(rounds) < PILOT_ROUNDS and (len(rounds) < MIN_PILOT_ROUNDS
                                          or sum(rounds) < max_s):
        rounds.append(time_once(fn, device, iterations))
    return iterations, rounds


@pytest.fixture
def timing_options(request):
    c = request.config
    smoke = c.getoption("charlm_smoke")
    return {"target": c.getoption("charlm_ci_target"), "smoke": smoke,
            "budget": SMOKE_BUDGET_S if smoke else c.getoption("charlm_budget")}


def min_rounds(grid, timing_options) -> int:
    """The rounds every benchmark runs at least: the grid's, and enough for a 95% interval of
    the median (smoke mode: just that)."""
    return MIN_CI_ROUNDS if timing_options["smoke"] else max(grid.rounds, MIN_CI_ROUNDS)


@pytest.fixture(scope="session")
def machine(request):
    """The calibrated machine file named by --charlm-machine (analysis.calibrate), or None:
    with one, every benchmark records its predicted time beside the measured one."""
    path = request.config.getoption("charlm_machine", None)
    if path is None:
        return None
    from analysis.calibrate import load_machine

    try:
        return load_machine(path)
    except (ValueError, KeyError, TypeError):
        return None  # a bench JSON given for shard balancing, not a machine file


def prediction_info(w, machine, yardstick_s: float | None = None) -> dict:
    """predicted_s (scaled to the pace the benchmark ran at), the prediction at the machine
    file's pace, its regime and term shares (analysis.predict), or why it failed."""
    if machine is None:
        return {}
    from analysis.predict import pace_factor, predict_workload

    try:
        p = predict_workload(w, machine)
    except Exception as exc:  # noqa: BLE001 - a prediction failure must not lose the timing
        return {"predict_error": f"{type(exc).__name__}: {exc}"[:300]}
    pace = pace_factor(yardstick_s, machine)
    return {"predicted_s": p["predicted_s"] * pace, "predicted_calibrated_s": p["predicted_s"],
            "pace_factor": pace, "predicted_regime": p["regime"], "predicted_terms": p["terms"]}


def timing_info(samples, plan, load: dict, target: float) -> dict:
    """Median, minimum, the median's 95% CI, whether it met the target, drift, load."""
    stats = summarize(samples)
    lo, hi = median_ci(samples)
    return {**stats.to_dict(), "ci_low": lo, "ci_high": hi, "ci_target": target,
            "converged": (hi - lo) / 2 <= target * stats.median,
            "calls_per_round": plan.iterations, "plan": plan.to_dict(),
            "rounds_rule": "pilot-decided (analysis.timing.RoundPlan)",
            **drift(samples), **load}


@pytest.fixture
def measure(request, benchmark, grid, env_by_device, timing_options, machine, cpu_costs):
    """Time a prepared workload with adaptive rounds and fill benchmark.extra_info with its
    statistics and cost columns."""

    def run(p: Prepared, device: str, timed=None, execution: str = "eager") -> dict:
        """`timed`: the callable timed instead of p.fn (a CUDA-graph replay of it, whose
        FLOPs and memory are p.fn's); `execution` names it in the row ("cuda-graph": its
        variant and id gain "+cuda-graph", so its rows never mix with eager ones)."""
        w = p.workload
        fn = timed or p.fn
        before = machine_load()
        synchronize(device)
        pace_before = yardstick(device)
        fewest = min_rounds(grid, timing_options)
        budget = timing_options["budget"]
        iterations, pilot = _pilot(fn, device, timing_options["smoke"], budget / fewest,
                                   PILOT_SHARE * budget)
        plan = plan_rounds(pilot, iterations, fewest,
                           timing_options["budget"], timing_options["target"])
        # no setup hook (pedantic refuses one with iterations > 1): on CUDA the event clock
        # times each round in stream order, so queued work before it is not counted
        benchmark.pedantic(fn, rounds=plan.rounds, warmup_rounds=0, iterations=iterations)
        # the machine's pace while this ran (analysis.calibrate.yardstick): a prediction is
        # scaled by it over the machine file's
        pace = math.sqrt(pace_before * yardstick(device))
        load = {**load_between(before, machine_load()), "yardstick_s": pace}
        measured = costs_of(p, device, cpu_costs)
        peak = measured["peak"]
        predicted = predictions(w)
        samples = benchmark.stats.stats.data if benchmark.stats else []
        info = timing_info(samples, plan, load, timing_options["target"]) if samples else None
        median = info["median"] if info else None
        hardware = measured["torch"] if measured["torch"] else predicted["flops"]
        model = predicted_flops(w, attention_count="causal", kernel="manual")
        config = w.to_dict()
        config.update(variant=executed_as(w.variant, execution),
                      id=executed_as(w.id, execution))
        benchmark.extra_info.update({
            "config": {**config, "execution": execution},
            "predicted_flops": predicted["flops"],
            "measured_flops": measured["torch"],
            **{f"measured_flops_{name}": n for name, n in measured["forward"].items()},
            "model_flops": model,
            "flops_per_second": model / median if model and median else None,
            "hardware_flops_per_second": hardware / median if hardware and median else None,
            "predicted_depth": predicted["depth"],
            "tokens_per_second": w.tokens() / median if median else None,
            "peak_memory_bytes": peak,
            "timing": info,
            "env": env_by_device[device],
            **prediction_info(w, machine, pace),
        })
        request.config.stash[RECORDS].append(("timing", benchmark.extra_info))
        return benchmark.extra_info

    return run


@pytest.fixture
def measure_pair(request, benchmark, grid, env_by_device, timing_options, cpu_costs):
    """Time two prepared workloads as interleaved pairs: each round runs A and B once each
    (the same number of calls), in an order drawn per round from a seeded generator, on the
    same device clock. The ratio A/B is the median of per-round ratios with its bootstrap 95%
    interval. pytest-benchmark records the pair rounds (A + B) as the benchmark's own time."""

    def run(pair, a: Prepared, b: Prepared, device: str) -> dict:
        import random

        before = machine_load()
        synchronize(device)
        pace_before = yardstick(device)
        share = PILOT_SHARE * timing_options["budget"] / 2  # the budget's share, per side
        ia, pa = _pilot(a.fn, device, timing_options["smoke"], max_s=share)
        ib, pb = _pilot(b.fn, device, timing_options["smoke"], max_s=share)
        iterations = max(ia, ib)  # both sides' rounds long enough for the clock
        # the pilots ran with their own calls per round: per call, then as planned
        pa, pb = [x / ia * iterations for x in pa], [x / ib * iterations for x in pb]
        plan = plan_rounds([x + y for x, y in zip(pa, pb)], iterations,
                           min_rounds(grid, timing_options),
                           timing_options["budget"], timing_options["target"],
                           spread=robust_spread([x / y for x, y in zip(pa, pb)]))
        order = random.Random(0)
        a_s, b_s, first = [], [], []

        def pair_round():
            a_first = order.random() < 0.5
            first.append("a" if a_first else "b")
            for side in ("a", "b") if a_first else ("b", "a"):
                fn = a.fn if side == "a" else b.fn
                (a_s if side == "a" else b_s).append(time_once(fn, device, iterations))

        benchmark.pedantic(pair_round, rounds=plan.rounds, warmup_rounds=0, iterations=1)
        # top up the rounds where the pairs' own interval is still wider than the target and
        # budget is left (the pilot under-plans a ratio); pytest-benchmark's statistics keep
        # the planned rounds, the ratio and its interval take all of them
        added, estimate = 0, paired_ratio(a_s, b_s)
        for _ in range(0 if timing_options["smoke"] else EXTENSIONS):
            spent = sum(a_s) + sum(b_s)
            extra = rounds_to_add(len(a_s),
                                  (estimate.ci_high - estimate.ci_low) / 2 / estimate.ratio,
                                  timing_options["target"], spent / len(a_s),
                                  timing_options["budget"] - spent)
            if not extra:
                break
            for _ in range(extra):
                pair_round()
            added += extra
            estimate = paired_ratio(a_s, b_s)  # the interval of all rounds so far
        # the machine's pace around the pairs: two runs of a ratio whose sides are in
        # different regimes (launch-bound against compute-bound) differ when it moved
        load = {**load_between(before, machine_load()),
                "yardstick_s": math.sqrt(pace_before * yardstick(device))}
        info = {
            **pair.to_dict(),
            "device": device,
            **estimate.to_dict(),
            "a_median_s": summarize(a_s).median / iterations,
            "b_median_s": summarize(b_s).median / iterations,
            "calls_per_round": iterations,
            "a_first_rounds": first.count("a"),
            "converged": (estimate.ci_high - estimate.ci_low) / 2
            <= timing_options["target"] * estimate.ratio,
            "plan": plan.to_dict(),
            "added_rounds": added,
            **load,
        }
        if pair.memory:
            ma = costs_of(a, device, cpu_costs)["peak"]
            mb = costs_of(b, device, cpu_costs)["peak"]
            info.update(a_peak_memory_bytes=ma, b_peak_memory_bytes=mb,
                        memory_ratio=ma / mb if mb else None)
        benchmark.extra_info.update({"pair": info, "env": env_by_device[device]})
        request.config.stash[RECORDS].append(("pair", info))
        return info

    return run


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """charlm's summary of the run, at most 100 columns (bench_summary.summary_lines)."""
    if not hasattr(config.option, "charlm_grid") or RECORDS not in config.stash:
        return
    from analysis.bench_summary import summary_lines

    stats = terminalreporter.stats
    counts = {k: len(stats.get(k, [])) for k in ("passed", "failed", "error", "skipped")}
    lines = summary_lines(config.stash[RECORDS], counts, grid=config.getoption("charlm_grid"),
                          devices=devices(config), smoke=config.getoption("charlm_smoke"),
                          json_path=config.getoption("benchmark_json", None),
                          threads=config.stash[BACKENDS].get("threads"))
    terminalreporter.section("charlm bench", sep="-")
    for line in lines:
        terminalreporter.write_line(line)
