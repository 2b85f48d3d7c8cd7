"""Rendering: the report's figures (calls into analysis.plots) and REPORT.md (Markdown).

REPORT.md opens with the device, conventions and symbols (stated once), then the findings
every section computed, then one section per topic: figure, key table, and what to conclude
from them (the summaries' findings, computed from the numbers). Each section is one
`section(...)` call on one summary from `analysis.report.summaries`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.report import summaries as S
from analysis.report.config import STAGES_FILE, Context

# ---------------------------------------------------------------------------- tables


def _cell(v, floatfmt: str) -> str:
    if isinstance(v, (float, np.floating)):
        if pd.isna(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e9:
            return str(int(v))
        return format(float(v), floatfmt)
    if v is None or (isinstance(v, str) and v == "nan"):
        return ""
    return str(v).replace("|", "\\|").replace("\n", " ")


def md_table(frame: pd.DataFrame | None, floatfmt: str = ".4g", max_rows: int = 40,
             wrap: int = 70) -> str:
    """A GitHub Markdown table (no extra dependency). Empty cells are blank, integer-valued
    floats print as integers, and a cell longer than `wrap` characters is moved to a
    numbered details list under the table. Rows beyond `max_rows` are counted, not shown."""
    if frame is None or frame.empty:
        return "_(no rows)_\n"
    shown = frame.head(max_rows)
    details: list[str] = []

    def cell(v) -> str:
        text = _cell(v, floatfmt)
        if len(text) > wrap:
            details.append(text)
            return f"see [{len(details)}]"
        return text

    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in shown.itertuples(index=False)]
    text = "\n".join([head, rule, *body]) + "\n"
    if len(frame) > max_rows:
        text += f"\n_... and {len(frame) - max_rows} more rows._\n"
    if details:
        text += "\n" + "".join(f"{i}. {d}\n" for i, d in enumerate(details, 1))
    return text


def stages_table(status: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """The Stages table in words: settings shared by every stage are stated once (the
    returned line), each row keeps only its own."""
    if status is None or status.empty:
        return pd.DataFrame(), ""
    parsed = []
    for s in status.get("settings", pd.Series([None] * len(status))):
        try:
            parsed.append(json.loads(s) if isinstance(s, str) else {})
        except ValueError:
            parsed.append({})
    keys = set().union(*parsed) if parsed else set()
    common = {k: parsed[0].get(k) for k in sorted(keys)
              if all(k in p and p[k] == parsed[0].get(k) for p in parsed)}

    def words(d: dict) -> str:
        out = []
        for k, v in d.items():
            if isinstance(v, list):
                v = ", ".join(map(str, v))
            out.append(f"{k} {v if v is not None else 'default'}")
        return "; ".join(out)

    table = pd.DataFrame({
        "stage": status["stage"], "status": status["status"],
        "seconds": status["seconds"],
        "finished (UTC)": status["finished"].map(
            lambda v: str(v).replace("T", " ").rstrip("Z") if isinstance(v, str) else "")
        if "finished" in status else "",
        "settings": [words({k: v for k, v in p.items() if k not in common and v is not None})
                     for p in parsed],
    })
    return table, (f"Every stage: {words(common)}.\n" if common else "")


# ---------------------------------------------------------------------------- sections


@dataclass
class Data:
    """The tables the stages wrote, read once."""

    ctx: Context

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        frame = self.ctx.read(f"{name}.csv")
        setattr(self, name, frame)
        return frame


def figure(ctx: Context, name: str, caption: str) -> str:
    if ctx.path(f"figures/{name}.png").is_file():
        return f"![{caption}](figures/{name}.png)\n\n*{caption}*\n\n"
    return f"_(figure {name} not drawn)_\n\n"


def section(ctx: Context, title: str, summary: S.Summary, findings: list[str],
            figures: tuple[tuple[str, str], ...] = (), intro: str = "", level: int = 2,
            empty: str = "not available", **table_kw) -> str:
    """One section: heading, intro, figures, the summary's table and what it shows. The
    summary's findings are also collected into `findings` (the report's opening list)."""
    text = f"{'#' * level} {title}\n\n" + (f"{intro}\n\n" if intro else "")
    text += "".join(figure(ctx, n, c) for n, c in figures)
    if summary.table.empty and not summary.findings:
        return text + f"_({empty})_\n\n"
    if not summary.table.empty:
        text += md_table(summary.table, **table_kw) + "\n"
    if summary.findings:
        text += "**What this shows.** " + " ".join(summary.findings) + "\n\n"
        findings.extend(summary.findings)
    return text


def _counter_notes(flops: pd.DataFrame | None) -> list[str]:
    if flops is not None and "env_torch_notes" in flops.columns:
        notes = [str(n) for n in flops["env_torch_notes"].dropna().unique()]
        if notes:
            return notes
    from analysis.trace import counter_notes

    return counter_notes()


def _counter_names(flops: pd.DataFrame | None) -> list[str]:
    """The counters a reconciliation table holds a column of (measured_<name>)."""
    if flops is None:
        return ["torch"]
    return [c.removeprefix("measured_") for c in S.measured_columns(flops)]


def _grid(ctx: Context, timing: pd.DataFrame | None) -> str:
    if timing is not None and "grid" in timing.columns and timing["grid"].notna().any():
        return str(timing["grid"].dropna().iloc[0])
    return ctx.cfg.grid


def _model_rows(timing: pd.DataFrame | None) -> pd.DataFrame:
    if timing is None or timing.empty:
        return pd.DataFrame()
    ok = timing[timing["status"].eq("ok")]
    return ok[ok["suite"].eq("test_model_phase")]


def _ceiling(data: Data) -> S.Ceiling | None:
    return S.ceiling_of(data.ceiling)


def sections(ctx: Context, data: Data, findings: list[str]) -> list[str]:
    """Every section of REPORT.md, in order; each is one summary and one section call."""
    from analysis.report.ingest import expected_workload_ids

    grid = _grid(ctx, data.timing)
    out = [
        section(ctx, "Predicted vs measured FLOPs",
                S.flops_summary(data.flops_reconciliation,
                                _counter_notes(data.flops_reconciliation)),
                findings, (("flops_predicted_vs_measured",
                            "Cost-model FLOPs against the counters ("
                            + ", ".join(_counter_names(data.flops_reconciliation))
                            + "), log-log; the dashed line is equality"),),
                floatfmt=".6f"),
        section(ctx, "Formulas derived from counts", S.derived_summary(data.derived_formulas),
                findings, intro=_derived_intro(data.derived_formulas),
                empty="not derived (stage derive)", max_rows=60, wrap=120),
        "## Time\n\n",
        section(ctx, "Bench coverage",
                S.missing_summary(data.timing, expected_workload_ids(grid, ctx.cfg.device), grid)
                if data.timing is not None else S.Summary(),
                findings, level=3, empty="bench not available"),
        section(ctx, "Noise", S.noise_summary(data.timing), findings, level=3,
                intro="Timings per variant, and how many the bench flagged noisy."),
        section(ctx, "Failed configurations", S.failure_summary(data.timing), findings,
                level=3, empty="none"),
        section(ctx, "Time against T", S.slope_summary(data.timing), findings,
                (("time_per_token_vs_T", "Seconds per token against T, per phase (log-log)"),
                 ("sequence_time_vs_T", "Seconds per forward pass against T (log-log)")),
                intro="Forward pass over T known tokens: the exponent k of time ~ T^k (the "
                      "slope of the log-log line), beside the exponents of the predicted "
                      "FLOPs and sequential depth.", level=3),
        section(ctx, "Time against sequential depth", S.depth_time_summary(data.timing),
                findings, (("time_vs_depth", "Seconds per FLOP against the predicted "
                            "sequential matmul depth of every timed model workload, with the "
                            "least-squares line (log-log)"),), level=3),
        section(ctx, "Achieved FLOP/s", S.ceiling_summary(data.timing, _ceiling(data)),
                findings, (("achieved_flops", "Achieved FLOP/s against the matmul ceiling "
                            "measured in the same run (its median; the band is its 95% "
                            "interval)"),),
                intro=_ceiling(data).describe() if _ceiling(data) else "", level=3),
        section(ctx, "Timing quality", S.timing_quality_summary(data.timing), findings,
                level=3, intro="How far each timing's median is pinned down (its 95% "
                "interval), whether the level moved during the run (drift: the first and "
                "last quarter of rounds have disjoint intervals), and the machine's load."),
        section(ctx, "Paired ratios", S.ratio_summary(data.ratios), findings,
                (("ratios", "Every ratio as interleaved pairs: the median of per-pair ratios "
                  "A/B with its bootstrap 95% interval (log scale; 1 is parity)"),),
                level=3, empty="no paired comparisons",
                intro="Each ratio is measured as interleaved pairs in one process: A and B "
                      "alternate round by round in a seeded random order, with the same "
                      "weights and inputs. Ratios have two significant figures."),
        section(ctx, "The homework models beside their twins (medians)",
                S.reference_summary(data.torch_reference), findings, level=3,
                intro="Each homework model beside its twin with the same weights and equal "
                      "outputs (a fused torch.nn module, or for minGRU its sequential loop). "
                      "The ratio of the two is under Paired ratios."),
        section(ctx, "Flash (SDPA) vs manual attention", S.attention_summary(data.attention),
                findings, (("attention_flash_vs_manual", "One causal self-attention layer"
                            f"{_layer_size(data.attention)}: time and measured peak memory "
                            "against T"),),
                empty="no attention rows"),
        section(ctx, "Devices side by side", S.devices_summary(data.devices_timing), findings,
                (("devices_time_vs_T", "Forward time against T on each device (log-log): "
                  "this run beside the committed references of other devices"),),
                empty="no other device's report", floatfmt=".3g"),
        section(ctx, "Paired ratios on each device", S.device_ratios_summary(
            data.devices_ratios), findings, level=3, empty="no paired ratios"),
        section(ctx, "Reproducibility", S.repeat_summary(data.repeat), findings, level=3,
                empty="not run (charlm report --repeat 2)", floatfmt=".3f",
                intro="The paired comparisons measured again in separate processes."),
        section(ctx, "Sequential depth", S.depth_summary(data.depth), findings,
                intro="Critical-path matmul depth: how many matmuls must run one after "
                      "another, predicted by formula and traced from the dependency graph."),
        section(ctx, "The homework's cost answers", S.check_summary(data.homework_check,
                                                                   data.depth),
                findings, max_rows=80, wrap=60,
                intro="Each answer is compared with the toolkit's derivation under the "
                      "question's assumptions; an incorrect one comes with a counterexample "
                      "(sizes, the answer's value, the derived value, the measured value)."),
        section(ctx, "Time predicted from the counts", S.prediction_summary(
            data.prediction, "this run"), findings,
                (("time_predicted_vs_measured", "Predicted against measured time per round "
                  "(log-log): the dashed line is equality, the band within 2x"),
                 ("roofline", "Achieved FLOP/s against arithmetic intensity (FLOPs per byte "
                  "read + written, unfused), one point per workload, under the measured matmul "
                  "ceiling of Achieved FLOP/s (band: its 95% interval) and the calibrated "
                  "bandwidth")),
                intro=_prediction_intro(ctx), empty="not predicted (stage calibrate)",
                floatfmt=".3g"),
        section(ctx, "The prediction on the other devices' results", S.prediction_summary(
            data.prediction_other, _other_label(data.prediction_other)), findings, level=3,
                empty="no other device's results with a machine file", floatfmt=".3g"),
        section(ctx, "What the time model says about the homework",
                S.homework_time_summary(data.prediction), findings, level=3,
                empty="not predicted", floatfmt=".3g",
                intro="Per variant and phase: the share of the fixed per-op cost, the ops "
                      "one round dispatches, and the predicted speed-up with every fixed "
                      "cost set to zero (the upper bound for CUDA graphs or compilation)."),
        section(ctx, "CUDA graphs and torch.compile: the launch floor removed",
                S.graph_summary(data.prediction), findings, level=3,
                empty="no CUDA-graph or compiled rows (bench/test_graphs.py, "
                      "bench/test_compiled.py: CUDA only)", floatfmt=".3g",
                intro="Each replayed round (a forward, a train step, KV-cache generation "
                      "captured in one CUDA graph) and each compiled one (a forward or a "
                      "train step through torch.compile's inductor: fused kernels) against "
                      "its eager round, and against the runtime model's prediction with "
                      "every fixed cost zero."),
        section(ctx, "Training curves",
                S.training_summary(data.training_curves, data=_training_corpus()), findings,
                (("training_curves", "Training (lines) and validation (markers) loss of a "
                  "short default run of each model"),)),
    ]
    return out


def _derived_intro(derived: pd.DataFrame | None) -> str:
    """How a formula is derived and compared, and the conventions of its counts (those the
    rows name, once each)."""
    from analysis.derive import MAX_DEGREE

    measures = set() if derived is None or "measure" not in derived else set(derived["measure"])
    quantities = set() if derived is None or "quantity" not in derived \
        else set(derived["quantity"])
    text = ("Each built-in model's formula derived from exact counts alone (`charlm derive`, "
            "`analysis.derive`): the degree along each varied size from finite differences "
            f"(at most {MAX_DEGREE}"
            + ("; depth: linear, with ceil(log2 T) in the basis" if "depth" in measures
               else "")
            + "), the coefficients solved in exact rationals on a grid of sizes, and the "
            "formula verified on held-out random sizes, most outside the grid. The sizes not "
            "varied are held at the values shown; the hand-written formula "
            "(`analysis.formulas`, `analysis.depth_formulas`) is taken at the same values, "
            "and the two are equal when their expanded difference is zero.")
    if "generate" in quantities:
        text += (" Generate: the context window holds the prompt and every new token (the "
                 "hand-written formula's first branch: no sliding window).")
    if derived is None or not {"convention", "measure", "model"} <= set(derived.columns):
        return text
    rows = derived.dropna(subset=["convention", "measure"])
    parts = []
    for measure, sub in rows.groupby("measure", sort=False):
        kinds = sub.groupby("convention", sort=False)["model"].unique()
        word = S.MEASURE_WORDS.get(str(measure), str(measure))
        for convention, models in kinds.items():
            who = f" ({', '.join(map(str, models))})" if len(kinds) > 1 else ""
            parts.append(f"{word}{who}: {str(convention).rstrip('.')}")
    return text + (" Conventions: " + "; ".join(parts) + "." if parts else "")


def _prediction_intro(ctx: Context) -> str:
    path = ctx.path("machine.json")
    if not path.is_file():
        return ""
    m = json.loads(path.read_text())
    return (f"Per op: max(FLOPs / matmul throughput at its shape, bytes / bandwidth) plus a "
            f"fixed cost, from an op trace of one round and the machine file `machine.json` "
            f"(microbenchmarks only, never the grid's timings): fixed cost "
            f"{m['op_fixed_s'] * 1e6:.2g} us per op, {m['view_fixed_s'] * 1e6:.2g} us per "
            f"view, bandwidth {m['bandwidth_bytes_per_s']:.3g} B/s (streaming), matmul "
            f"throughput per shape from the calibration's own table of timed matmuls "
            f"(capped at its largest, {m['ceiling_flops_per_s']:.2g} FLOP/s: a constant of "
            f"the time model, not the ceiling of Achieved FLOP/s); summed on CPU, on CUDA "
            f"bounded below by the launches the host issues one by one. float32.")


def _other_label(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty or "device_label" not in frame.columns:
        return "other devices"
    return ", ".join(str(v) for v in frame["device_label"].dropna().unique())


def _layer_size(att: pd.DataFrame | None) -> str:
    if att is None or att.empty or not {"D", "H"} <= set(att.columns):
        return ""
    sizes = att[["D", "H"]].drop_duplicates()
    if len(sizes) != 1:
        return ""
    return f" (width {int(sizes['D'].iloc[0])}, {int(sizes['H'].iloc[0])} heads)"


def _training_corpus() -> str:
    """The corpus the training stage trains on (TrainConfig's default)."""
    from charlm.train import TrainConfig

    return TrainConfig().data


# ---------------------------------------------------------------------------- header


def symbols_line() -> str:
    from analysis.expr_parser import SYMBOL_MEANING as ANSWER_SYMBOLS
    from analysis.formulas import SYMBOL_MEANING

    names = {**{k: v for k, v in SYMBOL_MEANING.items()}, "J": ANSWER_SYMBOLS["J"]}
    order = ("B", "T", "D", "E", "L", "H", "J", "V", "N", "P", "C")
    return "Symbols: " + "; ".join(f"{k} = {names[k]}" for k in order if k in names) + "."


def data_dates(status: pd.DataFrame | None, stages: Mapping) -> str | None:
    """The dates the data stages finished (a re-run that skipped them keeps their dates);
    `stages`: the pipeline's stages by name (their `always` flag marks the others)."""
    if status is None or "finished" not in status.columns:
        return None
    data = status[status["stage"].map(lambda s: s in stages and not stages[s].always)
                  & status["status"].eq("done")]
    days = sorted({str(v)[:10] for v in data["finished"].dropna()})
    if not days:
        return None
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def device_label(env: dict, device: str) -> str:
    return env.get("cpu_model") or env.get("device_name") or device


def header(ctx: Context, env: dict, status: pd.DataFrame | None, grid: str,
           stages: Mapping) -> str:
    from analysis.formulas import convention
    from analysis.timing import NOISE_THRESHOLD

    cfg = ctx.cfg
    date = data_dates(status, stages) or str(env.get("date"))[:10]
    return (f"# charlm report\n\nDevice: **{device_label(env, cfg.device)}** ({cfg.device}), "
            f"torch {env.get('torch')}, {env.get('threads')} thread(s), grid `{grid}`, "
            f"git {env.get('git_commit')}, data of {date}.\n\n"
            f"Conventions: FLOPs are {convention('full')}; times are medians of pedantic "
            "pytest-benchmark rounds (perf_counter on CPU, CUDA events on GPU) after warm-up; "
            f"a timing is `noisy` when IQR/median > {NOISE_THRESHOLD:.0%}; peak memory is "
            "measured (CUDA allocator, or tensor storages tracked on CPU) and given in MiB "
            "(2^20 bytes).\n\n" + symbols_line() + "\n\n")


def render(ctx: Context, stages: Mapping) -> str:
    """REPORT.md: header, findings, sections, then the environment and the stage table
    (`stages`: the pipeline's stages by name)."""
    data = Data(ctx)
    findings: list[str] = []
    body = sections(ctx, data, findings)
    env_path = ctx.path("environment.json")
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    status = ctx.read(STAGES_FILE)
    text = header(ctx, env, status, _grid(ctx, data.timing), stages)
    text += "## Findings\n\n" + "".join(f"- {f}\n" for f in findings) + "\n"
    text += "".join(body)
    text += "## Environment\n\n" + md_table(
        pd.DataFrame([{"key": k, "value": v} for k, v in env.items()]))
    table, common = stages_table(status)
    text += "\n## Stages\n\n" + (common + "\n" if common else "") + md_table(table)
    notes = [f"- {stage}: {n}" for stage, ns in ctx.notes.items() for n in ns]
    if notes:
        text += "\nNotes:\n\n" + "\n".join(notes) + "\n"
    text += ("\nFiles: " + ", ".join(f"`{p.name}`" for p in sorted(ctx.cfg.out.glob("*.csv")))
             + ".\n")
    return text


# ---------------------------------------------------------------------------- figures


def draw_figures(ctx: Context) -> list:
    """Every figure the tables allow; a figure that cannot be drawn is noted, not fatal."""
    from analysis import plots

    made = []
    data = Data(ctx)
    ceiling = _ceiling(data)

    def attempt(name, fn):
        try:
            made.append(fn(ctx.path(f"figures/{name}.png")))
        except (ValueError, KeyError) as exc:
            ctx.note("figures", f"{name}: not drawn ({exc})")

    flops = data.flops_reconciliation
    if flops is not None and "predicted" in flops.columns:
        long = flops[flops["status"].eq("ok") & flops["quantity"].ne("params")].melt(
            id_vars=["model", "quantity", "predicted"],
            value_vars=S.measured_columns(flops),
            var_name="counter", value_name="measured").dropna(subset=["measured"])
        long["counter"] = long["counter"].str.replace("measured_", "", regex=False)
        attempt("flops_predicted_vs_measured", lambda p: plots.flops_predicted_vs_measured(long, p))
    models = _model_rows(data.timing)
    if not models.empty:
        t_sweep = models[models["sweep"].eq("T")]
        attempt("time_per_token_vs_T", lambda p: plots.time_per_token_vs_T(t_sweep, p))
        attempt("sequence_time_vs_T",
                lambda p: plots.sequence_time_vs_T(t_sweep[t_sweep["phase"].eq("forward")], p))
        fit = S.depth_time_summary(data.timing).table
        line = None if fit.empty else (float(fit["exponent"].iloc[0]),
                                       float(fit["intercept"].iloc[0]))
        attempt("time_vs_depth", lambda p: plots.time_vs_depth(models, p, fit=line))
        if ceiling is not None:
            attempt("achieved_flops", lambda p: plots.achieved_flops(
                models, ceiling.flops_per_second, p, ceiling.ci))
    attention = data.attention
    if attention is not None and not attention.empty:
        attempt("attention_flash_vs_manual",
                lambda p: plots.attention_time_memory(attention[attention["status"].eq("ok")], p))
    ratio_rows = data.ratios
    if ratio_rows is not None and not ratio_rows.empty:
        attempt("ratios", lambda p: plots.ratios(ratio_rows, p))
    fwd = S.t_sweep_forward(data.devices_timing)
    if not fwd.empty and fwd["device_label"].nunique() >= 2:
        attempt("devices_time_vs_T", lambda p: plots.devices_time_vs_T(fwd, p))
    pred = data.prediction
    if pred is not None and "predicted_s" in pred.columns:
        attempt("time_predicted_vs_measured",
                lambda p: plots.time_predicted_vs_measured(pred, p))
        machine_path = ctx.path("machine.json")
        if machine_path.is_file() and ceiling is not None:
            m = json.loads(machine_path.read_text())
            attempt("roofline", lambda p: plots.roofline(
                pred, ceiling.flops_per_second, m["bandwidth_bytes_per_s"], p, ceiling.ci))
    curves = data.training_curves
    if curves is not None and "train_loss" in curves.columns:
        attempt("training_curves",
                lambda p: plots.training_curves(curves[curves["status"].eq("ok")], p))
    return made
