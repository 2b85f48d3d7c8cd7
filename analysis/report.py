"""`charlm report`: run the bench and the analyses in stages and write CSVs, figures and
REPORT.md under one folder.

Stages (in order): environment, ceiling (a large matmul: the device's FLOP/s ceiling),
bench (pytest-benchmark suite, or a saved JSON of it) -> timing/attention/torch-reference
tables, flops (reconciliation of predicted and measured FLOPs), depth (predicted and traced
sequential depth), check (the homework's answers), training (a short run of each model),
figures, markdown.

Resuming: every CSV is written atomically (charlm.io). A stage whose outputs exist and whose
settings match the last completed run is skipped unless `force`; stages that loop over
configurations (flops, depth, training) keep one row set per cell and skip finished cells.
A failing cell (e.g. out of memory) or stage is recorded with its error and the run goes on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from charlm.io import atomic_to_csv, atomic_write_text

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
BENCH_FILES = ("test_models.py", "test_reference.py", "test_attention.py")
STAGES_FILE = "stages.csv"


@dataclass(frozen=True)
class ReportConfig:
    out: Path = Path("results")
    device: str = "cpu"
    quick: bool = False
    force: bool = False
    threads: int = 1
    bench_json: Path | None = None  # build from this saved bench JSON instead of running it
    train_steps: int | None = None  # default: 300, quick: 40
    train_models: tuple[str, ...] = ("rnn", "mlrnn", "gru", "transformer")
    ceiling_n: int | None = None  # matmul size; default per device
    stages: tuple[str, ...] | None = None  # a subset of STAGES (None: all)

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.train_steps is not None and self.train_steps < 1:
            raise ValueError(f"train_steps must be >= 1, got {self.train_steps}")
        if self.bench_json is not None:
            object.__setattr__(self, "bench_json", Path(self.bench_json))
            if not self.bench_json.is_file():
                raise FileNotFoundError(f"bench JSON not found: {self.bench_json}")
        if self.stages is not None:
            unknown = set(self.stages) - set(STAGES)
            if unknown:
                raise ValueError(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")

    @property
    def grid(self) -> str:
        return "quick" if self.quick else "default"

    @property
    def steps(self) -> int:
        return self.train_steps or (40 if self.quick else 300)

    def settings(self, stage: str) -> str:
        """What a stage's result depends on (code version and machine included); a change
        discards the saved result instead of mixing it with new cells."""
        from analysis.env import device_name, git_commit

        common = {"device": self.device, "device_name": device_name(self.device),
                  "threads": self.threads, "grid": self.grid, "commit": git_commit()}
        extra = {"training": {"steps": self.steps, "models": list(self.train_models)},
                 "bench": {"bench_json": str(self.bench_json) if self.bench_json else None},
                 "ceiling": {"n": self.ceiling_n}}.get(stage, {})
        return json.dumps({**common, **extra}, sort_keys=True)


@dataclass
class Context:
    cfg: ReportConfig
    notes: dict[str, list[str]] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.cfg.out / name

    def read(self, name: str) -> pd.DataFrame | None:
        p = self.path(name)
        return pd.read_csv(p) if p.is_file() and p.stat().st_size > 0 else None

    def note(self, stage: str, text: str) -> None:
        self.notes.setdefault(stage, []).append(text)


def _error(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"failed: {type(exc).__name__}: {first[:200]}"


def run_cells(ctx: Context, name: str, cells: list[tuple[str, Callable[[], pd.DataFrame]]]) -> pd.DataFrame:
    """Run each (key, fn) cell whose key has no "ok" rows in CSV `name` yet; after each,
    rewrite the CSV atomically, so an interruption loses at most the cell in flight. A cell
    that raises gets one row with status "failed: ..."; the others go on."""
    done = ctx.read(name)
    if done is None or ctx.cfg.force or "cell" not in done.columns:
        done = pd.DataFrame()
    keep = done[done["status"].eq("ok")] if not done.empty else done
    finished = set(keep["cell"]) if not keep.empty else set()
    frames = [keep] if not keep.empty else []
    for key, fn in cells:
        if key in finished:
            continue
        try:
            frame = fn().assign(cell=key, status="ok")
        except Exception as exc:  # noqa: BLE001 - recorded as the cell's result
            frame = pd.DataFrame([{"cell": key, "status": _error(exc)}])
        frames.append(frame)
        atomic_to_csv(pd.concat(frames, ignore_index=True), ctx.path(name))
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if result.empty:
        atomic_to_csv(result, ctx.path(name))
    return result


# ---------------------------------------------------------------------------- stages


def stage_environment(ctx: Context) -> None:
    from analysis.timing import configure_backends, recorded_environment

    backends = configure_backends(ctx.cfg.device, threads=ctx.cfg.threads)
    env = {**recorded_environment(ctx.cfg.device), **backends}
    atomic_write_text(ctx.path("environment.json"), json.dumps(env, indent=2) + "\n")


def stage_ceiling(ctx: Context) -> None:
    from analysis.timing import matmul_ceiling

    n = ctx.cfg.ceiling_n or (1024 if ctx.cfg.quick else None)
    row = matmul_ceiling(ctx.cfg.device, n=n)
    atomic_to_csv(pd.DataFrame([{"device": ctx.cfg.device, **row}]), ctx.path("ceiling.csv"))


def bench_json_path(cfg: ReportConfig) -> Path:
    return cfg.out / "bench" / f"{cfg.grid}-{cfg.device}.json"


def run_bench(cfg: ReportConfig, json_path: Path) -> subprocess.CompletedProcess:
    """The bench suite in a child pytest (exit 1 = some configurations failed: recorded)."""
    if not BENCH_DIR.is_dir():
        raise FileNotFoundError(f"bench suite not found at {BENCH_DIR} (run from a source checkout)")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", *(str(BENCH_DIR / f) for f in BENCH_FILES),
           "--benchmark-only", f"--charlm-grid={cfg.grid}", f"--charlm-device={cfg.device}",
           f"--charlm-threads={cfg.threads}", f"--benchmark-json={json_path}",
           "-q", "-p", "no:cacheprovider", "--benchmark-disable-gc"]
    log = json_path.with_suffix(".log")
    with open(log, "w", encoding="utf-8") as stream:  # streamed, so a long run can be watched
        done = subprocess.run(cmd, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT, text=True)
    if done.returncode not in (0, 1) or not json_path.is_file():
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-3:]
        raise RuntimeError(f"bench run failed (exit {done.returncode}): {' | '.join(tail)}")
    return done


def bench_tables(data: dict) -> dict[str, pd.DataFrame]:
    """timing (every benchmark and every failed configuration), attention (flash vs manual),
    torch_reference (homework loop vs torch.nn) from a bench JSON."""
    rows = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        cfg = info.get("config") or {}
        if not cfg:  # not a charlm workload, or interrupted before its columns were filled
            continue
        stats = b.get("stats", {})
        timing = info.get("timing") or {}
        median = timing.get("median", stats.get("median"))
        env = info.get("env") or {}
        rows.append({
            **{k: cfg.get(k) for k in ("id", "kind", "variant", "model", "attention", "impl",
                                       "phase", "sweep", "B", "T", "D", "E", "L", "H", "V", "N",
                                       "P", "seq_len")},
            "device": env.get("device"),
            "test": b.get("name"),
            "suite": str(b.get("name", "")).split("[")[0],
            "status": "ok",
            "median_s": median,
            "iqr_s": timing.get("iqr", stats.get("iqr")),
            "cv": timing.get("cv"),
            "noisy": timing.get("noisy"),
            "rounds": timing.get("rounds", stats.get("rounds")),
            "tokens": (cfg.get("B") or 0) * ((cfg.get("N") if str(cfg.get("phase", "")).startswith("generate") else cfg.get("seq_len")) or 0),
            "seconds_per_token": None,
            "tokens_per_second": info.get("tokens_per_second"),
            "predicted_flops": info.get("predicted_flops"),
            "measured_flops": info.get("measured_flops"),
            "measured_flops_fvcore": info.get("measured_flops_fvcore"),
            "flops_per_second": info.get("flops_per_second"),
            "predicted_depth": info.get("predicted_depth"),
            "peak_memory_bytes": info.get("peak_memory_bytes"),
            "threads": env.get("threads"),
            "device_name": env.get("device_name"),
        })
    for f in data.get("charlm_failures", []):
        cfg = f.get("config") or {}
        rows.append({**{k: cfg.get(k) for k in ("id", "kind", "variant", "model", "attention",
                                                "impl", "phase", "sweep", "B", "T", "D", "E",
                                                "L", "H", "V", "N", "P", "seq_len")},
                     "device": f.get("device"), "test": f.get("test"),
                     "suite": str(f.get("test", "")).split("::")[-1].split("[")[0],
                     "status": f"failed: {f.get('error')}: {f.get('message', '')}"[:300]})
    timing = pd.DataFrame(rows)
    if timing.empty:
        raise ValueError("the bench JSON holds no benchmarks")
    ok = timing["status"].eq("ok")
    timing.loc[ok, "seconds_per_token"] = timing.loc[ok, "median_s"] / timing.loc[ok, "tokens"]
    timing = timing.drop_duplicates(subset=["test", "device", "status"])
    attention = timing[timing["kind"].eq("attention")].assign(
        kernel=lambda f: f["attention"])[["device", "kernel", "B", "T", "D", "H", "status",
                                          "median_s", "iqr_s", "noisy", "peak_memory_bytes",
                                          "measured_flops", "flops_per_second"]]
    ref = timing[timing["suite"].eq("test_homework_loop_and_torch_nn") & ok]
    pairs = ref.pivot_table(index=["device", "model", "phase", "B", "T", "D", "L"],
                            columns="impl", values="median_s").reset_index()
    if {"homework", "torch"} <= set(pairs.columns):
        pairs = pairs.rename(columns={"homework": "homework_s", "torch": "torch_s"})
        pairs["speedup"] = pairs["homework_s"] / pairs["torch_s"]
    return {"timing.csv": timing, "attention.csv": attention, "torch_reference.csv": pairs}


def _fresh_bench_json(path: Path) -> bool:
    """A saved bench JSON is reused only when it was made at the current commit."""
    from analysis.env import git_commit

    if not path.is_file():
        return False
    made_at = (json.loads(path.read_text()).get("commit_info") or {}).get("id") or ""
    commit = git_commit()
    return bool(commit) and made_at.startswith(commit)


def stage_bench(ctx: Context) -> None:
    cfg = ctx.cfg
    path = cfg.bench_json or bench_json_path(cfg)
    if cfg.bench_json is None and (cfg.force or not _fresh_bench_json(path)):
        run_bench(cfg, path)
    else:
        ctx.note("bench", f"bench results read from {path}")
    data = json.loads(path.read_text())
    meta = data.get("charlm", {})
    if cfg.bench_json is None and meta.get("grid") not in (None, cfg.grid):
        raise ValueError(f"{path} holds grid {meta.get('grid')!r}, not {cfg.grid!r}")
    for name, frame in bench_tables(data).items():
        atomic_to_csv(frame, ctx.path(name))


def stage_flops(ctx: Context) -> None:
    from analysis.reconcile import GRIDS, reconcile

    points = GRIDS[ctx.cfg.grid]()
    cells = [(f"{i:03d}-{p.cfg.model}", lambda p=p: reconcile([p])) for i, p in enumerate(points)]
    run_cells(ctx, "flops_reconciliation.csv", cells)


DEPTH_SIZES = {"quick": {"T": (4, 8), "L": (1, 2)}, "default": {"T": (4, 8, 16, 32), "L": (1, 2, 3)}}


def stage_depth(ctx: Context) -> None:
    from analysis.depth import depth_report
    from charlm.models.registry import ModelConfig

    grid = DEPTH_SIZES[ctx.cfg.grid]
    cells = []
    for model, attention in (("rnn", None), ("mlrnn", None), ("gru", None),
                             ("transformer", "flash"), ("transformer", "manual")):
        layers = (1,) if model == "rnn" else grid["L"]
        for n_layers in layers:
            for t in grid["T"]:
                for quantity in ("forward", "train", "generate"):
                    kw = dict(model=model, vocab_size=16, embed=16, hidden=16, layers=n_layers,
                              attention=attention)
                    if model == "transformer":
                        kw.update(embed=None, heads=2, block_size=2 * t)
                    cfg = ModelConfig(**kw)
                    size_kw = ({"prompt_len": 2, "new_tokens": t} if quantity == "generate"
                               else {"seq_len": t})

                    def cell(cfg=cfg, quantity=quantity, size_kw=size_kw, t=t):
                        row = depth_report(cfg, quantity, batch=1, **size_kw)
                        row = {k: v for k, v in row.items()
                               if k not in ("sizes", "critical_path", "env")}
                        return pd.DataFrame([{**row, "T": t, "L": cfg.layers}])

                    key = f"{model}-{attention or ''}-L{n_layers}-T{t}-{quantity}"
                    cells.append((key, cell))
    run_cells(ctx, "depth.csv", cells)


def stage_check(ctx: Context) -> None:
    from analysis.checker import GRID, QUICK_GRID, check_file
    from analysis.questions import HOMEWORK_ANSWERS

    frame = check_file(HOMEWORK_ANSWERS, QUICK_GRID if ctx.cfg.quick else GRID)
    atomic_to_csv(frame, ctx.path("homework_check.csv"))


def stage_training(ctx: Context) -> None:
    from charlm.train import TrainConfig, train

    steps = ctx.cfg.steps
    every = max(1, steps // 6)

    def cell(model):
        tc = TrainConfig(model=model, steps=steps, device=ctx.cfg.device, val_every=every,
                         checkpoint_every=steps, val_batches=5)
        result = train(tc, progress=False)
        return result.history.assign(model=model, params=result.params)

    run_cells(ctx, "training_curves.csv", [(m, lambda m=m: cell(m)) for m in ctx.cfg.train_models])


def stage_figures(ctx: Context) -> None:
    from analysis import plots

    made = []

    def attempt(name, fn):
        try:
            made.append(fn(ctx.path(f"figures/{name}.png")))
        except (ValueError, KeyError) as exc:
            ctx.note("figures", f"{name}: not drawn ({exc})")

    flops = ctx.read("flops_reconciliation.csv")
    if flops is not None and "predicted" in flops.columns:
        long = flops[flops["status"].eq("ok") & flops["quantity"].ne("params")].melt(
            id_vars=["model", "quantity", "predicted"],
            value_vars=[c for c in ("measured_torch", "measured_fvcore") if c in flops.columns],
            var_name="counter", value_name="measured").dropna(subset=["measured"])
        long["counter"] = long["counter"].str.replace("measured_", "", regex=False)
        attempt("flops_predicted_vs_measured", lambda p: plots.flops_predicted_vs_measured(long, p))
    timing = ctx.read("timing.csv")
    if timing is not None:
        ok = timing[timing["status"].eq("ok")]
        models = ok[ok["suite"].eq("test_model_phase")]
        t_sweep = models[models["sweep"].eq("T")]
        attempt("time_per_token_vs_T", lambda p: plots.time_per_token_vs_T(t_sweep, p))
        attempt("sequence_time_vs_T",
                lambda p: plots.sequence_time_vs_T(t_sweep[t_sweep["phase"].eq("forward")], p))
        attempt("time_vs_depth", lambda p: plots.time_vs_depth(models, p))
        ceiling = ctx.read("ceiling.csv")
        if ceiling is not None:
            attempt("achieved_flops", lambda p: plots.achieved_flops(
                models, float(ceiling["flops_per_second"].iloc[0]), p))
    attention = ctx.read("attention.csv")
    if attention is not None:
        attempt("attention_flash_vs_manual",
                lambda p: plots.attention_time_memory(attention[attention["status"].eq("ok")], p))
    ref = ctx.read("torch_reference.csv")
    if ref is not None and "speedup" in ref.columns:
        attempt("homework_vs_torch", lambda p: plots.homework_vs_torch(ref, p))
    curves = ctx.read("training_curves.csv")
    if curves is not None and "train_loss" in curves.columns:
        attempt("training_curves",
                lambda p: plots.training_curves(curves[curves["status"].eq("ok")], p))


def stage_markdown(ctx: Context) -> None:
    atomic_write_text(ctx.path("REPORT.md"), render(ctx))


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
        Stage("bench", stage_bench, ("timing.csv", "attention.csv", "torch_reference.csv")),
        Stage("flops", stage_flops, ("flops_reconciliation.csv",)),
        Stage("depth", stage_depth, ("depth.csv",)),
        Stage("check", stage_check, ("homework_check.csv",)),
        Stage("training", stage_training, ("training_curves.csv",)),
        Stage("figures", stage_figures, (), always=True),
        Stage("markdown", stage_markdown, ("REPORT.md",), always=True),
    ]
}


def _load_status(ctx: Context) -> pd.DataFrame:
    frame = ctx.read(STAGES_FILE)
    return frame if frame is not None else pd.DataFrame(columns=["stage", "status", "seconds", "settings"])


def _is_complete(ctx: Context, status: pd.DataFrame, stage: Stage) -> bool:
    if ctx.cfg.force or stage.always:
        return False
    row = status[status["stage"].eq(stage.name)]
    return (not row.empty and row["status"].iloc[-1] == "done"
            and row["settings"].iloc[-1] == ctx.cfg.settings(stage.name)
            and all(ctx.path(o).is_file() for o in stage.outputs))


def _discard_stale(ctx: Context, status: pd.DataFrame, stage: Stage) -> None:
    """Outputs recorded under other settings (another commit, device, grid...) are removed,
    so their cells are not mixed into this run's tables."""
    row = status[status["stage"].eq(stage.name)]
    if not stage.always and not row.empty and row["settings"].iloc[-1] != ctx.cfg.settings(stage.name):
        for name in stage.outputs:
            ctx.path(name).unlink(missing_ok=True)


def build_report(cfg: ReportConfig, progress: bool = False) -> pd.DataFrame:
    """Run the stages; return the stage table (stage, status, seconds, settings) that is also
    written to stages.csv. Never raises for a failing stage: its status says why."""
    from tqdm.auto import tqdm

    cfg.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(cfg)
    status = _load_status(ctx)
    names = [n for n in STAGES if cfg.stages is None or n in cfg.stages]
    bar = tqdm(names, desc="charlm report", unit="stage", disable=not progress)
    for name in bar:
        stage = STAGES[name]
        bar.set_postfix_str(name)
        if _is_complete(ctx, status, stage):
            result = "done"
            ctx.note(name, "skipped: complete from an earlier run (use --force to redo)")
            seconds = float(status[status["stage"].eq(name)]["seconds"].iloc[-1])
        else:
            _discard_stale(ctx, status, stage)
            start = time.perf_counter()
            try:
                stage.run(ctx)
                result = "done"
            except Exception as exc:  # noqa: BLE001 - a failing stage is recorded, the run goes on
                result = _error(exc)
            seconds = round(time.perf_counter() - start, 2)
        status = pd.concat([status[~status["stage"].eq(name)],
                            pd.DataFrame([{"stage": name, "status": result, "seconds": seconds,
                                           "settings": cfg.settings(name)}])], ignore_index=True)
        atomic_to_csv(status, ctx.path(STAGES_FILE))
    _write_notes(ctx)
    if "markdown" in names:  # the REPORT.md shows the final stage table and notes
        stage_markdown(ctx)
    return status


def _write_notes(ctx: Context) -> None:
    atomic_write_text(ctx.path("notes.json"), json.dumps(ctx.notes, indent=2) + "\n")


def config_dict(cfg: ReportConfig) -> dict:
    d = asdict(cfg)
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


# ---------------------------------------------------------------------------- REPORT.md


def md_table(frame: pd.DataFrame, floatfmt: str = ".4g", max_rows: int = 40) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    if frame is None or frame.empty:
        return "_(no rows)_\n"
    frame = frame.head(max_rows)

    def cell(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else format(v, floatfmt)
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _fig(ctx: Context, name: str, caption: str) -> str:
    p = ctx.path(f"figures/{name}.png")
    return f"![{caption}](figures/{name}.png)\n\n*{caption}*\n" if p.is_file() else f"_(figure {name} not drawn)_\n"


def _slope(x, y) -> float:
    import numpy as np

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(lx, ly, 1)[0]) if len(lx) >= 2 else float("nan")


def _flops_section(ctx: Context, findings: list[str]) -> str:
    flops = ctx.read("flops_reconciliation.csv")
    text = "## Predicted vs measured FLOPs\n\n"
    text += _fig(ctx, "flops_predicted_vs_measured",
                 "Cost-model FLOPs against PyTorch's counter and fvcore (x2), log-log; the dashed line is equality")
    if flops is None or "verdict" not in flops.columns:
        return text + "\n_(reconciliation not available)_\n"
    ok = flops[flops["status"].eq("ok")]
    summary = (ok.assign(exact=ok["verdict"].eq("exact"))
               .groupby(["model", "quantity"], sort=False)
               .agg(rows=("exact", "size"), exact=("exact", "sum"),
                    ratio_min=("ratio_torch", "min"), ratio_max=("ratio_torch", "max"))
               .reset_index())
    text += "\n" + md_table(summary, ".6f")
    exact = int(ok["verdict"].eq("exact").sum())
    findings.append(f"FLOPs: {exact} of {len(ok)} reconciliation rows ({ok['model'].nunique()} models, "
                    f"{ok['quantity'].nunique()} quantities) have predicted matmul FLOPs equal to "
                    f"PyTorch's counter exactly (ratio {ok['ratio_torch'].min():.6f} to "
                    f"{ok['ratio_torch'].max():.6f}).")
    if "ratio_fvcore" in ok.columns and ok["ratio_fvcore"].notna().any():
        fv = ok.dropna(subset=["ratio_fvcore"])
        findings.append(f"fvcore's forward counts (doubled to 2 FLOPs per multiply-add) match on "
                        f"{int((fv['ratio_fvcore'] == 1).sum())} of {len(fv)} rows.")
    failed = flops[~flops["status"].eq("ok")]
    if not failed.empty:
        findings.append(f"{len(failed)} reconciliation cells failed (see flops_reconciliation.csv).")
    return text


def _timing_section(ctx: Context, findings: list[str]) -> str:
    timing = ctx.read("timing.csv")
    text = "## Time\n\n"
    if timing is None:
        return text + "_(bench not available)_\n"
    ok = timing[timing["status"].eq("ok")]
    text += _fig(ctx, "time_per_token_vs_T", "Seconds per token against T, per phase (log-log)")
    text += _fig(ctx, "sequence_time_vs_T", "Seconds per forward pass against T (log-log)")
    text += _fig(ctx, "time_vs_depth", "Seconds per round against the predicted sequential matmul depth of every timed workload (log-log)")
    fwd = ok[ok["suite"].eq("test_model_phase") & ok["sweep"].eq("T") & ok["phase"].eq("forward")]
    rows = []
    for variant, sub in fwd.groupby("variant", sort=False):
        sub = sub.sort_values("T")
        rows.append({"variant": variant, "T": f"{int(sub['T'].iloc[0])}..{int(sub['T'].iloc[-1])}",
                     "slope log(time)/log(T)": _slope(sub["T"], sub["median_s"]),
                     "s/token at min T": sub["seconds_per_token"].iloc[0],
                     "s/token at max T": sub["seconds_per_token"].iloc[-1],
                     "predicted depth at max T": sub["predicted_depth"].iloc[-1]})
    if rows:
        table = pd.DataFrame(rows)
        text += f"\nForward pass over T known tokens (batch {int(fwd['B'].iloc[0])}):\n\n" + md_table(table)
        rec = table[~table["variant"].str.startswith("transformer")]
        tr = table[table["variant"].str.startswith("transformer")]
        if not rec.empty and not tr.empty:
            slope = "slope log(time)/log(T)"
            r_lo, r_hi = rec[slope].min(), rec[slope].max()
            t_lo, t_hi = tr[slope].min(), tr[slope].max()
            text_ = (f"Time vs T (forward, T {table['T'].iloc[0]}): the recurrent loops' time grows "
                     f"as T^{r_lo:.2f} to T^{r_hi:.2f}, their dependency chain as T; the "
                     f"Transformer's time grows as T^{t_lo:.2f} to T^{t_hi:.2f} with a chain that "
                     "does not grow with T. ")
            if abs((r_lo + r_hi) / 2 - (t_lo + t_hi) / 2) < 0.25:
                text_ += ("Here both grow alike: time follows the FLOPs (linear in T at these "
                          "sizes), not the depth, so on this device the recurrent chain does "
                          "not show as a faster growth. Whether it does on a device that runs "
                          "wide matmuls in parallel (a GPU) is for a report made there "
                          "(bench/gpu_run.sh); this one does not say.")
            elif r_hi > t_hi:
                text_ += "The recurrent time grows faster, as its longer chain predicts."
            else:
                text_ += "The Transformer's time grows faster here (its T^2 attention terms)."
            findings.append(text_)
    noisy = ok[ok["noisy"].astype(str).eq("True")]
    findings.append(f"Noise: {len(noisy)} of {len(ok)} timings have IQR/median above 10% "
                    "(flagged `noisy` in timing.csv); read those with care.")
    failed = timing[~timing["status"].eq("ok")]
    if not failed.empty:
        findings.append(f"{len(failed)} bench configurations failed and are listed in timing.csv "
                        f"with their error: {', '.join(failed['id'].astype(str).head(5))}.")
    text += "\n" + _fig(ctx, "achieved_flops", "Achieved FLOP/s against the matmul ceiling measured in the same run")
    ceiling = ctx.read("ceiling.csv")
    if ceiling is not None and not ok.empty:
        c = float(ceiling["flops_per_second"].iloc[0])
        best = (ok[ok["suite"].eq("test_model_phase")].groupby("variant")["flops_per_second"].max() / c)
        text += (f"\nCeiling: a {int(ceiling['n'].iloc[0])}^3 {ceiling['dtype'].iloc[0]} matmul ran at "
                 f"{c:.3g} FLOP/s in its fastest round"
                 + (f" ({float(ceiling['median_flops_per_second'].iloc[0]):.3g} median)"
                    if "median_flops_per_second" in ceiling.columns else "") + ".\n\n")
        text += md_table(best.rename("best fraction of ceiling").reset_index(), ".3f")
        rec_best = best[~best.index.str.startswith("transformer")]
        tr_best = best[best.index.str.startswith("transformer")]
        findings.append(f"Achieved FLOP/s against a {c:.3g} FLOP/s matmul ceiling: the best "
                        f"recurrent workload reaches {rec_best.max():.1%} "
                        f"(per model {rec_best.min():.1%} to {rec_best.max():.1%}), the best "
                        f"Transformer workload {tr_best.max():.1%}; the recurrent loops issue "
                        "many small (B x D) @ (D x D) matmuls one after another."
                        + (" A workload above 100% means the ceiling round ran while the shared "
                           "machine was busier than during that workload: the ceiling is a "
                           "measurement too." if best.max() > 1 else ""))
    ref = ctx.read("torch_reference.csv")
    text += "\n### The homework's loops vs torch.nn.RNN / torch.nn.GRU (same weights, outputs checked equal)\n\n"
    text += _fig(ctx, "homework_vs_torch", "Homework loop time / torch.nn time")
    if ref is not None and "speedup" in ref.columns:
        text += md_table(ref)
        findings.append(f"torch.nn's fused recurrences run {ref['speedup'].min():.2f}x to "
                        f"{ref['speedup'].max():.2f}x the speed of the homework's per-step loops "
                        "with identical weights and outputs.")
    return text


def _attention_section(ctx: Context, findings: list[str]) -> str:
    att = ctx.read("attention.csv")
    text = "## Flash (SDPA) vs manual attention\n\n"
    text += _fig(ctx, "attention_flash_vs_manual", "One causal self-attention layer (width 128, 4 heads): time and measured peak memory against T")
    if att is None or att.empty:
        return text + "_(no attention rows)_\n"
    ok = att[att["status"].eq("ok")]
    wide = ok.pivot_table(index="T", columns="kernel", values=["median_s", "peak_memory_bytes"])
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    wide = wide.reset_index()
    if {"median_s_flash", "median_s_manual"} <= set(wide.columns):
        wide["time manual/flash"] = wide["median_s_manual"] / wide["median_s_flash"]
        wide["memory manual/flash"] = wide["peak_memory_bytes_manual"] / wide["peak_memory_bytes_flash"]
        last = wide.iloc[-1]
        findings.append(f"Attention at T={int(last['T'])}: the manual kernel takes "
                        f"{last['time manual/flash']:.2f}x the time and "
                        f"{last['memory manual/flash']:.2f}x the peak memory of SDPA; the manual "
                        "path materializes the (B, H, T, T) scores, SDPA does not.")
    return text + md_table(wide)


def _depth_section(ctx: Context, findings: list[str]) -> str:
    depth = ctx.read("depth.csv")
    text = "## Sequential depth\n\n"
    if depth is None or "verdict" not in depth.columns:
        return text + "_(depth not available)_\n"
    ok = depth[depth["status"].eq("ok")]
    summary = (ok.groupby(["model", "attention", "quantity"], dropna=False, sort=False)
               .agg(rows=("verdict", "size"), exact=("verdict", lambda v: int((v == "exact").sum())),
                    formula=("formula", "first")).reset_index())
    findings.append(f"Depth: predicted and traced critical-path matmul depth agree on "
                    f"{int(ok['verdict'].eq('exact').sum())} of {len(ok)} rows.")
    return text + md_table(summary)


def _check_section(ctx: Context, findings: list[str]) -> str:
    check = ctx.read("homework_check.csv")
    text = "## The homework's cost answers\n\n"
    if check is None:
        return text + "_(check not available)_\n"
    wrong = check[check["verdict"].ne("correct")]
    findings.append(f"Homework answers: {int(check['verdict'].eq('correct').sum())} of {len(check)} "
                    f"hold; not correct: {', '.join(wrong['id']) if not wrong.empty else 'none'}.")
    return text + md_table(check[["id", "answer", "verdict", "derived"]], max_rows=60)


def _training_section(ctx: Context, findings: list[str]) -> str:
    curves = ctx.read("training_curves.csv")
    text = "## Training curves\n\n" + _fig(ctx, "training_curves", "Training (lines) and validation (markers) loss of a short default run of each model")
    if curves is None or "train_loss" not in curves.columns:
        return text + "_(training not available)_\n"
    ok = curves[curves["status"].eq("ok")]
    rows = []
    for model, sub in ok.groupby("model", sort=False):
        val = sub.dropna(subset=["val_loss"])
        rows.append({"model": model, "params": int(sub["params"].iloc[0]), "steps": int(sub["step"].max()),
                     "final train loss": sub["train_loss"].iloc[-1],
                     "final val loss": val["val_loss"].iloc[-1] if not val.empty else float("nan"),
                     "tokens/s": sub["tokens_per_s"].median()})
    table = pd.DataFrame(rows)
    if not table.empty:
        findings.append("Training (short runs, built-in corpus): final validation loss " + ", ".join(
            f"{r['model']} {r['final val loss']:.3f}" for r in rows) + " nats/char.")
    return text + md_table(table)


def render(ctx: Context) -> str:
    """REPORT.md: findings first, then each section's figure and key table, then the
    environment and the stage table."""
    findings: list[str] = []
    sections = [_flops_section(ctx, findings), _timing_section(ctx, findings),
                _attention_section(ctx, findings), _depth_section(ctx, findings),
                _check_section(ctx, findings), _training_section(ctx, findings)]
    env_path = ctx.path("environment.json")
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    cfg = ctx.cfg
    head = (f"# charlm report\n\nDevice: **{env.get('device_name', cfg.device)}** ({cfg.device}), "
            f"torch {env.get('torch')}, {env.get('threads')} thread(s), grid `{cfg.grid}`, "
            f"git {env.get('git_commit')}, {env.get('date')}.\n\n"
            "Conventions: 2 FLOPs per multiply-add; FLOPs are matmul FLOPs with the attention "
            "square counted in full; times are medians of pedantic pytest-benchmark rounds "
            "(perf_counter on CPU, CUDA events on GPU) after warm-up; a timing is `noisy` when "
            "IQR/median > 10%; peak memory is measured (CUDA allocator, or tensor storages "
            "tracked on CPU).\n\n## Findings\n\n" + "".join(f"- {f}\n" for f in findings) + "\n")
    stages = ctx.read(STAGES_FILE)
    tail = "## Environment\n\n" + md_table(pd.DataFrame([{"key": k, "value": v} for k, v in env.items()]))
    tail += "\n## Stages\n\n" + md_table(stages if stages is not None else pd.DataFrame())
    notes = [f"- {stage}: {n}" for stage, ns in ctx.notes.items() for n in ns]
    if notes:
        tail += "\nNotes:\n\n" + "\n".join(notes) + "\n"
    tail += ("\nFiles: " + ", ".join(f"`{p.name}`" for p in sorted(cfg.out.glob("*.csv"))) + ".\n")
    return head + "\n".join(sections) + "\n" + tail
