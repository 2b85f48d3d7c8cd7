"""The report's stage pipeline: stages and resume (`analysis.report.config` holds the
configuration and the context the stages share).

Stages (in order): environment, ceiling (a large matmul: the device's FLOP/s ceiling),
bench (pytest-benchmark suite, or a saved JSON of it) -> timing/attention/torch-reference
tables, flops (reconciliation of predicted and measured FLOPs), depth (predicted and traced
sequential depth), check (the homework's answers), derive (each built-in's formulas derived
from counts beside the hand-written ones), training (a short run of each model),
calibrate (machine constants; every timing row's predicted time), figures, markdown.

Outputs: a run writes under `ReportConfig.out`, by default `runs/report/<device>` (git
ignores runs/). The committed references under `results/reference/<device>/` are written
only when asked (`reference=True`, `charlm report --reference`), and a quick run refuses a
folder that holds a full run.

Safety and resuming: a stage replaces its outputs atomically (charlm.io) only after it
succeeds, so an interrupted or failing stage leaves the previous outputs as they were. The
bench writes its JSON and log beside the final names and renames them only when pytest
finished. A stage whose outputs exist and whose settings match the last completed run is
skipped unless `force`. Stages that loop over configurations (flops, depth, training) keep
their finished cells in `.partial/<table>.<settings>.csv` and skip them when resumed; the
table itself is replaced when every cell has run. A failing cell (e.g. out of memory) or
stage is recorded with its error and the run goes on.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.merge import BENCH_DIR, BENCH_FILES
from analysis.parallel import count_workers, ordered_map
from analysis.report.config import (
    FULL_GRID,
    REFERENCE_DIR,
    REPO,
    STAGES_FILE,
    Context,
    ReportConfig,
    default_out,
    read_csv,
)
from analysis.report.progress import Progress, Silent, parse_bench_log
from analysis.report.render import draw_figures, render
from charlm.io import atomic_to_csv, atomic_write_text


def _error(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"failed: {type(exc).__name__}: {first[:200]}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


PARTIAL_EVERY_S = 2.0  # a loop's partial file is saved at most this often, and on any stop


def _run_cell(fn: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame | None, str | None]:
    """(the cell's frame, None), or (None, why it failed): a failure travels back from a
    worker process as text."""
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - recorded as the cell's result
        return None, _error(exc)


def _cell_results(todo: list, workers: int):
    """(key, frame) of each cell in order, a failing cell's frame its one error row; with
    workers > 1 the cells run in that many fresh processes (analysis.parallel: each cell's
    fn must pickle, a module-level function or a functools.partial of one)."""
    results = ordered_map(_run_cell, [fn for _, fn in todo], workers)
    for (key, _), (frame, error) in zip(todo, results):
        yield key, (frame.assign(cell=key, status="ok") if error is None
                    else pd.DataFrame([{"cell": key, "status": error}]))


def run_cells(ctx: Context, name: str,
              cells: list[tuple[str, Callable[[], pd.DataFrame]]],
              every_s: float = PARTIAL_EVERY_S, workers: int = 1) -> pd.DataFrame:
    """Run each (key, fn) cell whose key has no "ok" row yet, saving the rows so far
    atomically to a partial file every `every_s` seconds and whenever the loop stops early
    (an exception, Ctrl-C, SIGTERM: only a kill loses the cells since the last save), and
    leaving the table `name` as it was. (Saving after every cell rewrote the growing file
    258 times in the flops stage: about 10 s.) `workers` > 1: the cells run in that many
    processes (`_cell_results`), for stages whose results do not depend on time. When every
    cell has run, the table is replaced (atomically) and the partial file removed. A cell
    that raises gets one row with status "failed: ..."; the others go on. Resumes from the
    partial file of the same settings, or from the table when the last run of the stage had
    the same settings."""
    partial = ctx.partial_path(name)
    done = None
    if not ctx.cfg.force:
        done = read_csv(partial)
        if done is None and ctx.resume_table:
            done = ctx.read(name)
    if done is None or "cell" not in done.columns or "status" not in done.columns:
        done = pd.DataFrame()
    keep = done[done["status"].eq("ok")] if not done.empty else done
    finished = set(keep["cell"]) if not keep.empty else set()
    frames = [keep] if not keep.empty else []
    saved, last_save, complete = len(frames), time.monotonic(), False
    todo = [(key, fn) for key, fn in cells if key not in finished]
    try:
        for _, frame in _cell_results(todo, workers):
            frames.append(frame)
            if time.monotonic() - last_save >= every_s:
                atomic_to_csv(pd.concat(frames, ignore_index=True), partial)
                saved, last_save = len(frames), time.monotonic()
        complete = True
    finally:
        if not complete and len(frames) > saved:
            atomic_to_csv(pd.concat(frames, ignore_index=True), partial)
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    atomic_to_csv(result, ctx.path(name))
    for stale in partial.parent.glob(f"{Path(name).stem}.*.csv"):
        stale.unlink()
    if partial.parent.is_dir() and not any(partial.parent.iterdir()):
        partial.parent.rmdir()
    return result


# ---------------------------------------------------------------------------- stages


def stage_environment(ctx: Context) -> None:
    """environment.json: what the numbers depend on. A re-run that finds the same environment
    keeps the file (and its date): the date is the data's, not the re-run's."""
    from analysis.timing import configure_backends, recorded_environment

    backends = configure_backends(ctx.cfg.device, threads=ctx.cfg.threads)
    env = {**recorded_environment(ctx.cfg.device), **backends}
    old_path = ctx.path("environment.json")
    if old_path.is_file():
        try:
            old = json.loads(old_path.read_text())
        except ValueError:
            old = {}
        if {k: v for k, v in old.items() if k != "date"} == {k: v for k, v in env.items()
                                                            if k != "date"}:
            return
    atomic_write_text(old_path, json.dumps(env, indent=2) + "\n")


def stage_ceiling(ctx: Context) -> None:
    from analysis.timing import matmul_ceiling

    n = ctx.cfg.ceiling_n or (1024 if ctx.cfg.quick else None)
    row = matmul_ceiling(ctx.cfg.device, n=n)
    atomic_to_csv(pd.DataFrame([{"device": ctx.cfg.device, **row}]), ctx.path("ceiling.csv"))


def bench_json_path(cfg: ReportConfig) -> Path:
    return cfg.out / "bench" / f"{cfg.grid}-{cfg.device}.json"


def bench_command(cfg: ReportConfig, json_path: Path,
                  files: tuple[str, ...] = BENCH_FILES) -> list[str]:
    extra = (["-k", cfg.only] if cfg.only else []) + (
        [f"--charlm-budget={cfg.budget}"] if cfg.budget is not None else []) + (
        [f"--charlm-ci-target={cfg.ci_target}"] if cfg.ci_target is not None else [])
    return [sys.executable, "-m", "pytest", *(str(BENCH_DIR / f) for f in files),
            "--benchmark-only", f"--charlm-grid={cfg.grid}", f"--charlm-device={cfg.device}",
            f"--charlm-threads={cfg.threads}", f"--benchmark-json={json_path}",
            "-v", "-p", "no:cacheprovider", "--benchmark-disable-gc", *extra]


def watch(cmd: list[str], log: Path, progress: Progress, poll: float = 0.5) -> int:
    """Run `cmd` with its output streamed to `log`; while it runs, pass the bench progress
    read from the log to `progress`. Returns the exit code; the child is stopped if this
    process is interrupted."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w", encoding="utf-8") as stream:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT,
                                text=True, env=env)
        try:
            while True:
                try:
                    code = proc.wait(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    progress.bench(parse_bench_log(log.read_text(encoding="utf-8",
                                                                 errors="replace")))
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
    progress.bench(parse_bench_log(log.read_text(encoding="utf-8", errors="replace")))
    return code


def run_bench(cfg: ReportConfig, json_path: Path, progress: Progress | None = None,
              command: Callable[[Path], list[str]] | None = None) -> int:
    """The bench suite in a child pytest (exit 1 = some configurations failed: recorded).
    The JSON and log are written under temporary names and renamed over `json_path` and its
    .log only when pytest finished, so an interrupted bench leaves the previous ones.
    `command(tmp_json)`: the command line (default: the bench suite; tests pass a fake)."""
    if command is None and not BENCH_DIR.is_dir():
        raise FileNotFoundError(f"bench suite not found at {BENCH_DIR} "
                                "(run from a source checkout)")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = json_path.with_name(f".{json_path.name}.running")
    tmp_log = json_path.with_name(f".{json_path.stem}.log.running")
    tmp_json.unlink(missing_ok=True)
    cmd = command(tmp_json) if command is not None else bench_command(cfg, tmp_json)
    code = watch(cmd, tmp_log, progress or Silent())
    if code not in (0, 1) or not tmp_json.is_file():
        tail = tmp_log.read_text(encoding="utf-8").strip().splitlines()[-3:]
        tmp_json.unlink(missing_ok=True)
        raise RuntimeError(f"bench run failed (exit {code}): {' | '.join(tail)} "
                           f"(log: {tmp_log})")
    os.replace(tmp_json, json_path)
    os.replace(tmp_log, json_path.with_suffix(".log"))
    return code


def _fresh_bench_json(path: Path) -> bool:
    """A saved bench JSON is reused only when it was made at the current commit."""
    from analysis.env import git_commit

    if not path.is_file():
        return False
    made_at = (json.loads(path.read_text()).get("commit_info") or {}).get("id") or ""
    commit = git_commit()
    return bool(commit) and made_at.startswith(commit)


def stage_bench(ctx: Context) -> None:
    from analysis.report.ingest import bench_tables

    cfg = ctx.cfg
    if isinstance(cfg.bench_json, tuple):  # several: merged (refused if mixed)
        from analysis.merge import merge_files

        merged = merge_files(cfg.bench_json)
        path, data = Path(" + ".join(map(str, cfg.bench_json))), merged.data
        ctx.note("bench", f"bench results merged from {path} ({merged.duplicates} duplicates "
                          f"dropped, {len(merged.missing)} workloads missing)")
    else:
        path = cfg.bench_json or bench_json_path(cfg)
        if cfg.bench_json is None and (cfg.force or not _fresh_bench_json(path)):
            run_bench(cfg, path, ctx.progress)
        else:
            ctx.note("bench", f"bench results read from {path}")
        data = json.loads(path.read_text())
    grid = (data.get("charlm") or {}).get("grid")
    if grid not in (None, cfg.grid):
        if cfg.bench_json is None:
            raise ValueError(f"{path} holds grid {grid!r}, not {cfg.grid!r}")
        ctx.note("bench", f"{path} holds grid {grid!r}, the report was asked for {cfg.grid!r}")
    tables = bench_tables(data)  # every table is built before any is replaced
    for name, frame in tables.items():
        atomic_to_csv(frame, ctx.path(name))


def stage_flops(ctx: Context) -> None:
    from analysis.reconcile import GRIDS, reconcile

    points = GRIDS[ctx.cfg.grid]()
    cells = [(f"{i:03d}-{p.cfg.model}", functools.partial(reconcile, [p]))
             for i, p in enumerate(points)]
    run_cells(ctx, "flops_reconciliation.csv", cells, workers=count_workers())


DEPTH_SIZES = {"quick": {"T": (4, 8), "L": (1, 2)},
               "default": {"T": (4, 8, 16, 32), "L": (1, 2, 3)}}
DEPTH_WIDTH = {"V": 16, "E": 16, "D": 16, "H": 2}


def depth_cells(grid: str) -> list[tuple[str, Callable[[], pd.DataFrame]]]:
    """One cell per architecture x attention variant x layers x T x quantity; the models,
    their variants and whether they stack layers come from the architecture table."""
    from analysis.architectures import ARCHITECTURES
    from analysis.depth import depth_report

    sizes = DEPTH_SIZES[grid]
    cells = []
    for name, arch in ARCHITECTURES.items():
        for _, attention in arch.variants:
            for n_layers in (sizes["L"] if arch.stacked else (1,)):
                for t in sizes["T"]:
                    model_cfg = arch.config({**DEPTH_WIDTH, "L": n_layers, "T": t, "C": 2 * t},
                                            attention=attention)
                    for quantity in ("forward", "train", "generate"):
                        size_kw = ({"prompt_len": 2, "new_tokens": t} if quantity == "generate"
                                   else {"seq_len": t})

                        def cell(cfg=model_cfg, quantity=quantity, size_kw=size_kw, t=t):
                            row = depth_report(cfg, quantity, batch=1, **size_kw)
                            row = {k: v for k, v in row.items()
                                   if k not in ("sizes", "critical_path", "env")}
                            return pd.DataFrame([{**row, "T": t, "L": cfg.layers}])

                        key = f"{name}-{attention or ''}-L{n_layers}-T{t}-{quantity}"
                        cells.append((key, cell))
    return cells


def stage_depth(ctx: Context) -> None:
    run_cells(ctx, "depth.csv", depth_cells(ctx.cfg.grid))


def stage_check(ctx: Context) -> None:
    from analysis.checker import GRID, QUICK_GRID, check_file
    from analysis.questions import HOMEWORK_ANSWERS

    frame = check_file(HOMEWORK_ANSWERS, QUICK_GRID if ctx.cfg.quick else GRID)
    atomic_to_csv(frame, ctx.path("homework_check.csv"))


# the derive stage: (quantity, measure, kv_cache) per grid, and the sizes each varies (those
# the model takes); a quick run derives the FLOPs of forward alone (about 5 s of counting)
DERIVE_CASES = {
    "quick": (("forward", "flops", False),),
    # backward alone is left to tests/test_derive.py: train is forward + backward (+ Adam's
    # elementwise step), and the report's time goal is the bench's and the counts'
    "default": (("params", "params", False), ("forward", "flops", False),
                ("train", "flops", False),
                ("generate", "flops", False), ("generate", "flops", True),
                ("forward", "depth", False)),
}
# V enters only the head's one linear term (tested for every quantity in
# tests/test_derive.py): the report varies it in params and forward alone, which keeps the
# full run's cells to about a third of their cost with V varied everywhere
DERIVE_VARY = {"params": ("D", "L", "V"), "generate": ("P", "N", "D", "L"),
               "train": ("T", "D", "L")}
DERIVE_VARY_DEFAULT = ("T", "D", "L", "V")


def hand_written_formula(model: str, quantity: str, measure: str, kv_cache: bool = False,
                         kernel: str | None = None):
    """The hand-written total a derivation is compared with (sympy): the cost model's
    (analysis.reconcile.formula_for: FLOPs, parameters) or the depth model's (matmuls plus
    scan steps). A Piecewise (the windowed transformer's generate: the context window fits
    the prompt and new tokens, or it slides) is read in its first branch, the regime a
    derivation counts (no context window given: one that fits)."""
    import sympy as sp

    from analysis.architectures import architecture
    from analysis.reconcile import formula_for

    if measure == "depth":
        total = architecture(model).depth.quantity(quantity, kv_cache=kv_cache).total
    else:
        total = formula_for(model, quantity, kernel, kv_cache)[0].total
    return total.replace(sp.Piecewise, lambda *args: args[0][0])


def derived_formula_row(model: str, quantity: str, measure: str,
                        kv_cache: bool = False) -> pd.DataFrame:
    """One row of derived_formulas.csv: `model`'s `quantity` (`measure`) derived from counts
    (analysis.derive, the sizes of DERIVE_VARY the model takes varied, the others held at
    the source's defaults), beside the hand-written formula at the same held sizes, and
    whether the two are equal (their expanded difference is zero)."""
    import sympy as sp

    from analysis.architectures import architecture
    from analysis.counters import single_thread
    from analysis.derive import builtin_source, derive, reading
    from analysis.formulas import SYMBOLS

    arch = architecture(model)
    kernel = arch.attention_kinds[0] if arch.has_attention else None
    source = builtin_source(model, quantity, measure, kv_cache, kernel)
    varied = [v for v in DERIVE_VARY.get(quantity, DERIVE_VARY_DEFAULT) if v in source.sizes]
    with single_thread():
        found = derive(source, varied)
    hand = hand_written_formula(model, quantity, measure, kv_cache, kernel)
    hand = hand.xreplace({SYMBOLS[k]: sp.Integer(v) for k, v in found.fixed.items()
                          if k in SYMBOLS})
    difference = sp.expand(found.formula - hand)
    return pd.DataFrame([{
        "model": model, "attention": kernel or "", "quantity": quantity, "measure": measure,
        "kv_cache": kv_cache, "varied": ", ".join(varied),
        "fixed": ", ".join(f"{k}={v}" for k, v in found.fixed.items()),
        "derived": found.reading(), "hand_written": reading(hand),
        "equal": difference == 0, "difference": "" if difference == 0 else reading(difference),
        "verified": found.verified, "held_out": len(found.held_out),
        "failure": _failure_text(found.failures[0]) if found.failures else "",
        "points": found.points, "seconds": round(found.seconds, 2),
        "convention": found.convention}])


def _failure_text(failure: dict) -> str:
    """A derivation's first failure in words: where a held-out count and the formula
    differ, or why a size's counts are no low-degree polynomial."""
    if "counted" in failure:
        at = ", ".join(f"{k}={v}" for k, v in failure["sizes"].items())
        return (f"at {at}: {failure['what']} counted {failure['counted']}, the formula "
                f"gives {failure['formula']}")
    return str(failure.get("message", failure))


def derive_cells(grid: str) -> list[tuple[str, Callable[[], pd.DataFrame]]]:
    """One cell per built-in model x (quantity, measure, kv_cache) of DERIVE_CASES[grid]
    (the KV cache where the architecture has one), each a picklable partial."""
    from analysis.architectures import ARCHITECTURES

    cells = []
    for quantity, measure, kv_cache in DERIVE_CASES[grid]:
        for name, arch in ARCHITECTURES.items():
            if kv_cache and not arch.kv_cache:
                continue
            key = f"{name}-{quantity}{'-kv' if kv_cache else ''}-{measure}"
            cells.append((key, functools.partial(derived_formula_row, name, quantity,
                                                 measure, kv_cache)))
    return cells


def stage_derive(ctx: Context) -> None:
    """derived_formulas.csv: each built-in's formulas derived from counts (analysis.derive)
    and compared with the hand-written ones. A full run counts in count_workers() processes
    (counts do not depend on time; 37 cells: 47 s against 61 s in one); a quick one in this
    process (6 cells: 5 s, against 10 s in two fresh processes that each import and warm
    up torch first)."""
    run_cells(ctx, "derived_formulas.csv", derive_cells(ctx.cfg.grid),
              workers=1 if ctx.cfg.quick else count_workers())


def stage_training(ctx: Context) -> None:
    from charlm.train import TrainConfig, train

    steps = ctx.cfg.steps
    every = max(1, steps // 6)

    def cell(model):
        tc = TrainConfig(model=model, steps=steps, device=ctx.cfg.device, val_every=every,
                         checkpoint_every=steps, val_batches=5)
        result = train(tc, progress=False)
        return result.history.assign(model=model, params=result.params, seed=tc.seed,
                                     data=tc.data)

    run_cells(ctx, "training_curves.csv", [(m, lambda m=m: cell(m)) for m in ctx.cfg.models])


def _environment(folder: Path) -> dict:
    path = folder / "environment.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def other_devices(cfg: ReportConfig) -> list[Path]:
    """The report folders set beside this run: cfg.compare_with, or every committed
    reference (results/reference/*/) of another device type holding a timing.csv."""
    if cfg.compare_with is not None:
        return list(cfg.compare_with)
    if not REFERENCE_DIR.is_dir():
        return []
    return [d for d in sorted(REFERENCE_DIR.iterdir())
            if (d / "timing.csv").is_file() and _environment(d).get("device") != cfg.device]


def _device_label(folder: Path, fallback: str) -> str:
    env = _environment(folder)
    return str(env.get("cpu_model") if env.get("device") == "cpu" and env.get("cpu_model")
               else env.get("device_name") or env.get("device") or fallback)


def stage_devices(ctx: Context) -> None:
    """devices_timing.csv and devices_ratios.csv: this run's timings and paired ratios beside
    those of the other devices' report folders, each row labelled with its device."""
    frames, ratio_frames = [], []
    folders = [(ctx.cfg.out, "this run")] + [(d, d.name) for d in other_devices(ctx.cfg)]
    labels: set[str] = set()
    for folder, name in folders:
        label = _device_label(folder, name)
        if label in labels:  # two runs on one kind of device: tell them apart
            label = f"{label} ({name})"
        labels.add(label)
        timing = read_csv(folder / "timing.csv")
        if timing is not None:
            frames.append(timing.assign(device_label=label, source=name))
        ratios = read_csv(folder / "ratios.csv")
        if ratios is not None and not ratios.empty:
            ratio_frames.append(ratios.assign(device_label=label, source=name))
    if len(frames) < 2:
        ctx.note("devices", "no other device's report to set beside this run")
    atomic_to_csv(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
                  ctx.path("devices_timing.csv"))
    atomic_to_csv(pd.concat(ratio_frames, ignore_index=True) if ratio_frames
                  else pd.DataFrame(), ctx.path("devices_ratios.csv"))


def stage_repeat(ctx: Context) -> None:
    """The reproducibility check: the paired comparisons run `repeat` times, each in its own
    pytest process; repeat.csv sets every ratio's runs side by side (analysis.repro)."""
    from analysis.report.ingest import ratio_rows
    from analysis.repro import compare_runs

    cfg = ctx.cfg
    if cfg.repeat < 2:
        ctx.note("repeat", "not asked for (--repeat N with N >= 2)")
        atomic_to_csv(pd.DataFrame(), ctx.path("repeat.csv"))
        return
    runs = []
    for k in range(cfg.repeat):
        path = cfg.out / "bench" / f"pairs-{cfg.grid}-{cfg.device}-run{k + 1}.json"
        run_bench(cfg, path, ctx.progress,
                  command=lambda tmp: bench_command(cfg, tmp, ("test_pairs.py",)))
        runs.append(ratio_rows(json.loads(path.read_text())))
    atomic_to_csv(compare_runs(runs), ctx.path("repeat.csv"))


def stage_calibrate(ctx: Context) -> None:
    """machine.json (this device calibrated by microbenchmarks: analysis.calibrate, cached
    under runs/machine/ per device name, torch, threads and passes: 1 for a quick run) and
    prediction.csv (every timing.csv row with its predicted time, regime and term shares:
    analysis.predict);
    prediction_other.csv: the same for each other device's report folder that holds a
    machine.json beside its timing.csv (e.g. results/reference/gpu-h200/)."""
    from analysis.calibrate import default_cache_path, load_machine, save_machine
    from analysis.predict import predict_rows

    passes = ctx.cfg.calibration_passes
    cache = REPO / default_cache_path(ctx.cfg.device, ctx.cfg.threads, passes)
    if ctx.cfg.force or not cache.is_file():
        # in a fresh process, as the bench runs: what allocating a large output costs
        # depends on the allocator's history (in the report's own process, after the
        # training stage, a fresh 64 MiB output cost nothing; in a new one 0.4 ms per MiB)
        # --force: replaces the cached file when the report is forced
        cmd = [sys.executable, "-m", "charlm", "calibrate", "--device", ctx.cfg.device,
               "--threads", str(ctx.cfg.threads), "--passes", str(passes),
               "--out", str(cache), "--format", "json", "--force"]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"charlm calibrate failed (exit {done.returncode}): {tail[0]}")
    machine = load_machine(cache)
    save_machine(machine, ctx.path("machine.json"))
    timing = ctx.read("timing.csv")
    ok = timing[timing["status"].eq("ok")] if timing is not None and "status" in timing \
        else timing
    folders = other_devices(ctx.cfg)
    if ctx.cfg.quick and folders:  # ~150 traces of the full grid's workloads: 30 s
        ctx.note("calibrate", "quick run: the other devices' timing rows are not predicted "
                              "(a full run predicts them)")
        folders = []
    tables = []  # (folder, its ok rows, its machine file); folder None: this run
    for folder in folders:
        other_timing = read_csv(folder / "timing.csv")
        if other_timing is None or not (folder / "machine.json").is_file():
            continue
        tables.append((folder, other_timing[other_timing["status"].eq("ok")],
                       load_machine(folder / "machine.json")))
    if ok is not None and not ok.empty:
        tables.insert(0, (None, ok, machine))
    # one trace per workload, whichever device's rows it serves, traced in parallel
    traces = trace_workloads([rows for _, rows, _ in tables], count_workers())
    frame = pd.DataFrame()
    others = []
    for folder, rows, their_machine in tables:
        predicted = predict_rows(rows, their_machine, traces=traces)
        if folder is None:
            frame = predicted
        else:
            others.append(predicted.assign(source=folder.name,
                                           device_label=_device_label(folder, folder.name)))
    if frame.empty:
        ctx.note("calibrate", "no timing.csv rows to predict")
    atomic_to_csv(frame, ctx.path("prediction.csv"))
    atomic_to_csv(pd.concat(others, ignore_index=True) if others else pd.DataFrame(),
                  ctx.path("prediction_other.csv"))


def _trace_or_none(workload):
    from analysis.optrace import trace_workload
    from analysis.predict import PREDICT_ERRORS

    try:
        return trace_workload(workload)
    except PREDICT_ERRORS:
        return None  # predict_rows traces it again and records the error on its rows


def trace_workloads(tables: list[pd.DataFrame], workers: int = 1) -> dict:
    """{Workload: OpTrace} for every distinct workload the timing tables' rows describe,
    traced in `workers` processes (a trace depends on the code only, not on time or the
    machine); a row that names no workload, or a trace that fails, is left to predict_rows,
    which records why."""
    from analysis.predict import workload_from_row

    todo: dict = {}
    for rows in tables:
        for _, row in rows.iterrows():
            try:
                todo.setdefault(workload_from_row(row), None)
            except (ValueError, KeyError, TypeError):
                continue
    work = list(todo)
    traced = ordered_map(_trace_or_none, work, workers, chunksize=4)
    return {w: t for w, t in zip(work, traced) if t is not None}


def stage_figures(ctx: Context) -> None:
    draw_figures(ctx)


def stage_markdown(ctx: Context) -> None:
    atomic_write_text(ctx.path("REPORT.md"), render(ctx, STAGES))


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Context], None]
    outputs: tuple[str, ...]
    always: bool = False  # cheap stages that reflect everything before them: never skipped


STAGES: dict[str, Stage] = {
    s.name: s
    for s in [
        Stage("environment", stage_environment, ("environment.json",), always=True),
        Stage("ceiling", stage_ceiling, ("ceiling.csv",)),
        Stage("bench", stage_bench, ("timing.csv", "attention.csv", "torch_reference.csv",
                                     "ratios.csv")),
        Stage("repeat", stage_repeat, ("repeat.csv",)),
        Stage("flops", stage_flops, ("flops_reconciliation.csv",)),
        Stage("depth", stage_depth, ("depth.csv",)),
        Stage("check", stage_check, ("homework_check.csv",)),
        Stage("derive", stage_derive, ("derived_formulas.csv",)),
        Stage("training", stage_training, ("training_curves.csv",)),
        Stage("devices", stage_devices, ("devices_timing.csv", "devices_ratios.csv"),
              always=True),
        Stage("calibrate", stage_calibrate, ("machine.json", "prediction.csv",
                                             "prediction_other.csv")),
        Stage("figures", stage_figures, (), always=True),
        Stage("markdown", stage_markdown, ("REPORT.md",), always=True),
    ]
}
STATUS_COLUMNS = ["stage", "status", "seconds", "finished", "settings"]


def _load_status(ctx: Context) -> pd.DataFrame:
    frame = ctx.read(STAGES_FILE)
    if frame is None:
        return pd.DataFrame(columns=STATUS_COLUMNS)
    for col in STATUS_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    return frame


def _last(status: pd.DataFrame, stage: str) -> pd.Series | None:
    row = status[status["stage"].eq(stage)]
    return None if row.empty else row.iloc[-1]


def _is_complete(ctx: Context, status: pd.DataFrame, stage: Stage) -> bool:
    if ctx.cfg.force or stage.always:
        return False
    row = _last(status, stage.name)
    return (row is not None and row["status"] == "done"
            and row["settings"] == ctx.cfg.settings(stage.name)
            and all(ctx.path(o).is_file() for o in stage.outputs))


def recorded_grid(status: pd.DataFrame) -> str | None:
    """The grid of the data stages the folder holds (from their recorded settings)."""
    grids = set()
    for _, row in status.iterrows():
        if row["stage"] in STAGES and not STAGES[row["stage"]].always \
                and row["status"] == "done" and isinstance(row["settings"], str):
            try:
                grids.add(json.loads(row["settings"]).get("grid"))
            except ValueError:
                continue
    return FULL_GRID if FULL_GRID in grids else (grids.pop() if grids else None)


def check_destination(cfg: ReportConfig, status: pd.DataFrame) -> None:
    """A quick run never writes into a folder that holds a full run."""
    if cfg.quick and recorded_grid(status) == FULL_GRID:
        raise ValueError(f"{cfg.out} holds a full ({FULL_GRID} grid) report; a --quick run "
                         f"would replace it: choose another --out (default "
                         f"{default_out(cfg.device, quick=True)})")


# Seconds each stage takes on this project's CI machine kind (2 cores, torch 2.13.0 CPU, one
# thread; measured 2026-12-01 from fresh clones), for the time-left estimate of the progress
# lines when the folder holds no earlier run of the stage on the same grid. derive: the stage
# alone, on the same machine kind under other load (quick 5 s in one process; full 47 s in
# two, its cells' counting 81 s in all).
EXPECTED_S = {
    "quick": {"environment": 0.1, "ceiling": 0.2, "bench": 52, "repeat": 0.1, "flops": 3,
              "depth": 1.3, "check": 0.7, "derive": 5, "training": 7, "devices": 0.1,
              "calibrate": 19, "figures": 3, "markdown": 0.3},
    "default": {"environment": 0.1, "ceiling": 1.3, "bench": 225, "repeat": 0.1,
                "flops": 30, "depth": 11, "check": 2.5, "derive": 47, "training": 37,
                "devices": 0.1, "calibrate": 55, "figures": 3.2, "markdown": 0.3},
}


def expected_seconds(cfg: ReportConfig, status: pd.DataFrame, names: list[str]) -> dict:
    """Per stage to run, its expected seconds: this folder's last run of it on the same grid
    and repeat count, else EXPECTED_S."""
    table = EXPECTED_S.get(cfg.grid, EXPECTED_S["default"])
    out = {}
    for name in names:
        row = _last(status, name)
        same = False
        if row is not None and row["status"] == "done" and isinstance(row["settings"], str):
            try:
                old, new = json.loads(row["settings"]), json.loads(cfg.settings(name))
                same = all(old.get(k) == new.get(k) for k in ("grid", "repeat", "only",
                                                               "stages", "steps"))
            except ValueError:
                same = False
        out[name] = float(row["seconds"]) if same else float(table.get(name, 1.0))
    return out


def build_report(cfg: ReportConfig, progress: Progress | bool | None = None) -> pd.DataFrame:
    """Run the stages; return the stage table (stage, status, seconds, finished, settings)
    that is also written to stages.csv. Never raises for a failing stage: its status says
    why. Raises ValueError before writing anything when a quick run targets a folder that
    holds a full run, or when `cfg.stages` names a stage not in STAGES. `progress`: a
    Progress, True (a terminal bar/lines on stdout) or None/False (silent)."""
    if cfg.stages is not None:
        unknown = set(cfg.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
    if not isinstance(progress, Progress):
        progress = Progress() if progress else Silent()
    ctx = Context(cfg, progress=progress)
    status = _load_status(ctx)
    check_destination(cfg, status)
    cfg.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in STAGES if cfg.stages is None or n in cfg.stages]
    to_run = [n for n in names if not _is_complete(ctx, status, STAGES[n])]
    progress.plan(expected_seconds(cfg, status, to_run))
    try:
        status = _run_stages(ctx, status, names, progress)
    finally:
        progress.finish()
    _write_notes(ctx)
    if "markdown" in names:  # the REPORT.md shows the final stage table and notes
        stage_markdown(ctx)
    return status


def _run_stages(ctx: Context, status: pd.DataFrame, names: list[str],
                progress: Progress) -> pd.DataFrame:
    cfg = ctx.cfg
    for index, name in enumerate(names, 1):
        stage = STAGES[name]
        previous = _last(status, name)
        settings = cfg.settings(name)
        if _is_complete(ctx, status, stage):
            result, seconds, finished = "done", float(previous["seconds"]), previous["finished"]
            ctx.note(name, "skipped: complete from an earlier run (use --force to redo)")
            progress.line(f"stage {index} of {len(names)}: {name} skipped (complete)")
        else:
            ctx.stage_settings = settings
            ctx.resume_table = previous is not None and previous["settings"] == settings
            progress.stage_start(name, index, len(names))
            start = time.perf_counter()
            try:
                stage.run(ctx)
                result = "done"
            except Exception as exc:  # noqa: BLE001 - a failing stage is recorded, the run goes on
                result = _error(exc)
            seconds = round(time.perf_counter() - start, 2)
            finished = _now()
            progress.stage_end(name, result, seconds)
        row = pd.DataFrame([{"stage": name, "status": result, "seconds": seconds,
                             "finished": finished, "settings": settings}])
        status = pd.concat([status[~status["stage"].eq(name)].astype(object), row],
                           ignore_index=True)[STATUS_COLUMNS]
        atomic_to_csv(status, ctx.path(STAGES_FILE))
    return status


def _write_notes(ctx: Context) -> None:
    atomic_write_text(ctx.path("notes.json"), json.dumps(ctx.notes, indent=2) + "\n")
