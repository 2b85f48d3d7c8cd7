"""The one plotting module: seaborn on the headless Agg backend, PNG files.

Every figure comes as a pair: `draw_<name>(frame, ...)` takes DataFrames (the same tables
the report writes as CSV) and returns the matplotlib Figure (tests read its artists), and
`<name>(frame, ..., path)` draws, saves atomically and returns the path. Figures are grouped
by the part of the toolkit they show: cost (FLOPs), time, attention kernels, training.

One style per variant in every figure (`styles`: colour by architecture, shade, marker and
line style by variant, fixed by the architecture table's order); legends sit outside the
axes (`legend_outside`), never over data; log axes label ticks at 1-2-5 steps in
engineering units (`_readable_log`); timings the bench flagged noisy are ringed
(`_mark_noisy`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

DPI = 120
NOISY_LABEL = "noisy (IQR/median > {:.0%})"


def _save(fig, path) -> Path:
    """tight_layout, then save atomically (an interrupted run keeps the previous figure)."""
    from charlm.io import atomic_savefig

    path = Path(path)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=DPI)
    plt.close(fig)
    return path


def _require(frame: pd.DataFrame, columns, what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}")
    if frame.empty:
        raise ValueError(f"{what}: no rows to plot")
    return frame


def _sns_theme():
    sns.set_theme(style="whitegrid", context="notebook")


# ---------------------------------------------------------------------------- colours


MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.")


@functools.lru_cache(maxsize=1)
def _fixed_styles() -> dict[str, dict]:
    """One style per bench variant (analysis.workloads.variants()), the same in every figure:
    the colour tells the architecture (a tab20 hue pair per architecture, in table order:
    its variants alternate the dark and the light shade), the marker and line style the
    variant within it. A model's name takes its first variant's style (its default kernel)
    and a kernel name ("kernel:flash") that of the first variant with that kernel."""
    from analysis.architectures import ARCHITECTURES
    from analysis.workloads import variants

    pairs = sns.color_palette("tab20")
    hue = {name: i % 10 for i, name in enumerate(ARCHITECTURES)}
    fixed: dict[str, dict] = {}
    count: dict[str, int] = {}
    for v in variants().values():
        k = count[v.model] = count.get(v.model, -1) + 1
        fixed[v.name] = {"color": pairs[2 * hue[v.model] + k % 2],
                         "marker": MARKERS[k % len(MARKERS)],
                         "ls": LINESTYLES[k % len(LINESTYLES)]}
        fixed.setdefault(v.model, fixed[v.name])
        if v.attention is not None:
            fixed.setdefault(f"kernel:{v.attention}", fixed[v.name])
    return fixed


def styles(names, kernels: bool = False) -> dict[str, dict]:
    """Style (color, marker, ls) of each name: a variant, model or kernel of the architecture
    table keeps its fixed style; other names (run labels) get distinct colours from a second
    palette, in order, and markers in turn. kernels: the names are attention kernels."""
    fixed = _fixed_styles()
    taken = {tuple(st["color"]) for st in fixed.values()}
    spare = [c for c in sns.color_palette("Dark2") + sns.color_palette("Set1")
             if tuple(c) not in taken]
    out, i = {}, 0
    for name in dict.fromkeys(str(n) for n in names):
        key = f"kernel:{name}" if kernels else name
        if key in fixed:
            out[name] = fixed[key]
        else:
            out[name] = {"color": spare[i % len(spare)], "marker": MARKERS[i % len(MARKERS)],
                         "ls": "-"}
            i += 1
    return out


def palette(names, kernels: bool = False) -> dict[str, tuple]:
    """Colour of each name (see `styles`)."""
    return {name: st["color"] for name, st in styles(names, kernels).items()}


def in_table_order(names) -> list:
    """Distinct names, those of the architecture table first in its order (so legends list
    variants alike in every figure), then the others in order of appearance."""
    fixed = list(_fixed_styles())
    names = list(dict.fromkeys(names))
    known = sorted((n for n in names if str(n) in fixed), key=lambda n: fixed.index(str(n)))
    return known + [n for n in names if str(n) not in fixed]


def legend_outside(ax, handles=None, labels=None, **kw) -> None:
    """The legend right of the axes, outside them, so it covers no data; one entry per
    label. `handles`/`labels`: those to show (default: the axes' own)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.02, 1),
              borderaxespad=0, fontsize=kw.pop("fontsize", 8), **kw)


def legend_for_all(axes) -> None:
    """One legend for a row of panels, right of the last: every panel's entries once."""
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    legend_outside(axes[-1], handles, labels)


# ---------------------------------------------------------------------------- axes


def _log_T_axis(ax, values) -> None:
    """Log base 2 x axis with a plain label at each measured T (no crowded minor labels)."""
    ticks = sorted({int(v) for v in values})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()


def _readable_log(ax, values, axis: str = "y", unit: str = "") -> None:
    """A log axis whose labelled ticks let a reader read values: at 1-2-5 steps (every
    integer step for a range under 10x, explicit ticks for one under 2x), labelled in
    engineering form with the unit ("20 µs", "5 GFLOP/s"), limits from the data."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    set_scale = ax.set_yscale if axis == "y" else ax.set_xscale
    set_scale("log")
    if v.size == 0:
        return
    lo, hi = float(v.min()) / 1.25, float(v.max()) * 1.25
    span = hi / lo
    subs = ((1.0,) if span > 1e4 else (1.0, 2.0, 5.0) if span > 10
            else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0))
    ticks = [t for t in mticker.LogLocator(base=10, subs=subs).tick_values(lo, hi)
             if lo <= t <= hi]
    if len(ticks) < 3:  # add in-between ticks, none within 15% of another (labels collide)
        for t in sorted({float(f"{t:.2g}") for t in np.geomspace(lo, hi, 4)[1:-1]}):
            if all(max(t, k) / min(t, k) > 1.15 for k in ticks):
                ticks.append(t)
        ticks.sort()
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(mticker.FixedLocator(ticks))
    target.set_minor_locator(mticker.NullLocator())
    plain = unit in ("MiB", "ratio")  # numbers a reader reads as they are: no SI prefix
    target.set_major_formatter(mticker.FuncFormatter(lambda x, _: f"{x:g}") if plain
                               else mticker.EngFormatter(unit=unit, sep=" "))
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


def _mark_noisy(ax, data: pd.DataFrame, x: str, y: str) -> None:
    """Hollow black rings around the points the bench flagged noisy (IQR/median above the
    threshold of analysis.timing)."""
    from analysis.timing import NOISE_THRESHOLD

    if "noisy" not in data.columns:
        return
    flag = data["noisy"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    sub = data[flag]
    if sub.empty:
        return
    ax.scatter(sub[x], sub[y], s=110, facecolors="none", edgecolors="black", linewidths=1.1,
               zorder=5, label=NOISY_LABEL.format(NOISE_THRESHOLD), gid="noisy")


def _lines(ax, data: pd.DataFrame, x: str, y: str, hue: str, looks: dict,
           style: str | None = None) -> None:
    """One line per `hue` value in its fixed style (`looks`: styles()); with `style`, one
    per `style` value too, told apart by line style; the label names the style only when
    there is more than one."""
    styles_ = list(dict.fromkeys(data[style])) if style else [None]
    for name in in_table_order(data[hue]):
        look = looks[str(name)]
        for k, st in enumerate(styles_):
            sub = data[data[hue].eq(name) & (data[style].eq(st) if style else True)]
            if sub.empty:
                continue
            sub = sub.sort_values(x)
            label = str(name) if len(styles_) == 1 else f"{name} ({st})"
            ls = look["ls"] if style is None else LINESTYLES[k % len(LINESTYLES)]
            ax.plot(sub[x], sub[y], marker=look["marker"], ms=4.5, lw=1.4, ls=ls,
                    color=look["color"], label=label)


def _points(ax, data: pd.DataFrame, x: str, y: str, hue: str) -> None:
    """One scatter per `hue` value in its fixed colour and marker, in table order."""
    looks = styles(data[hue])
    for name in in_table_order(data[hue]):
        sub = data[data[hue].eq(name)]
        look = looks[str(name)]
        ax.scatter(sub[x], sub[y], s=26, color=look["color"], marker=look["marker"],
                   label=str(name), alpha=0.85, gid=str(name))


# ---------------------------------------------------------------------------- cost


def draw_flops_predicted_vs_measured(frame: pd.DataFrame, hue: str = "model",
                                     style: str | None = "counter"):
    """Predicted FLOPs (x) against measured FLOPs (y) on log-log axes with the identity line;
    points on the line agree exactly. Columns: predicted, measured, `hue`[, `style`]."""
    _require(frame, ["predicted", "measured", hue], "flops_predicted_vs_measured")
    data = frame[(frame["predicted"] > 0) & (frame["measured"] > 0)]
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    sns.scatterplot(data=data, x="predicted", y="measured", hue=hue,
                    palette=palette(data[hue]),
                    style=style if style in data.columns else None, ax=ax, s=40, alpha=0.8)
    both = pd.concat([data["predicted"], data["measured"]])
    ax.plot([both.min() / 2, both.max() * 2], [both.min() / 2, both.max() * 2], color="black",
            lw=1, ls="--", label="measured = predicted")
    _readable_log(ax, both, "x", "FLOP")
    _readable_log(ax, both, "y", "FLOP")
    ax.set(xlabel="predicted FLOPs (cost model)", ylabel="measured FLOPs (counter)",
           title="Predicted vs measured FLOPs")
    legend_outside(ax)
    return fig


def flops_predicted_vs_measured(frame: pd.DataFrame, path, hue: str = "model",
                                style: str | None = "counter") -> Path:
    return _save(draw_flops_predicted_vs_measured(frame, hue, style), path)


# ---------------------------------------------------------------------------- time


def draw_time_per_token_vs_T(frame: pd.DataFrame):
    """Seconds per token (median round / tokens) against T, one line per model variant,
    one panel per phase, log-log; noisy timings ringed. Columns: T, seconds_per_token,
    variant, phase[, noisy]."""
    _require(frame, ["T", "seconds_per_token", "variant", "phase"], "time_per_token_vs_T")
    _sns_theme()
    phases = list(dict.fromkeys(frame["phase"]))
    looks = styles(frame["variant"])
    fig, axes = plt.subplots(1, len(phases), figsize=(4.6 * len(phases) + 1.8, 4.4),
                             squeeze=False)
    for ax, phase in zip(axes[0], phases):
        sub = frame[frame["phase"] == phase].sort_values("T")
        _lines(ax, sub, "T", "seconds_per_token", "variant", looks)
        _mark_noisy(ax, sub, "T", "seconds_per_token")
        ax.set(title=phase, xlabel="sequence length T", ylabel="seconds per token")
        _readable_log(ax, sub["seconds_per_token"], "y", "s")
        _log_T_axis(ax, sub["T"])
    legend_for_all(list(axes[0]))
    return fig


def time_per_token_vs_T(frame: pd.DataFrame, path) -> Path:
    return _save(draw_time_per_token_vs_T(frame), path)


def draw_sequence_time_vs_T(frame: pd.DataFrame):
    """Median seconds per round against T (log-log), one line per variant (and line style
    per phase when there are several): a recurrent loop grows linearly with T (its steps
    are sequential). Columns: T, median_s, variant, phase[, noisy]."""
    _require(frame, ["T", "median_s", "variant", "phase"], "sequence_time_vs_T")
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8, 5))
    phases = list(dict.fromkeys(frame["phase"]))
    _lines(ax, frame, "T", "median_s", "variant", styles(frame["variant"]),
           style="phase" if len(phases) > 1 else None)
    _mark_noisy(ax, frame, "T", "median_s")
    ax.set(xlabel="sequence length T", ylabel="seconds per round",
           title="Time per sequence vs T" + (f" ({phases[0]})" if len(phases) == 1 else ""))
    _readable_log(ax, frame["median_s"], "y", "s")
    _log_T_axis(ax, frame["T"])
    legend_outside(ax)
    return fig


def sequence_time_vs_T(frame: pd.DataFrame, path) -> Path:
    return _save(draw_sequence_time_vs_T(frame), path)


def draw_devices_time_vs_T(frame: pd.DataFrame):
    """Forward time against T on each device, one panel per device (log-log), one line per
    variant in its fixed colour: the homework's depth argument made visible where the
    loops grow with T and the Transformer stays flat. Columns: device_label, T, median_s,
    variant."""
    _require(frame, ["device_label", "T", "median_s", "variant"], "devices_time_vs_T")
    _sns_theme()
    devices = list(dict.fromkeys(frame["device_label"]))
    fig, axes = plt.subplots(1, len(devices), figsize=(4.6 * len(devices) + 1.8, 4.6),
                             squeeze=False)
    looks = styles(frame["variant"])
    for ax, device in zip(axes[0], devices):
        sub = frame[frame["device_label"] == device].sort_values("T")
        _lines(ax, sub, "T", "median_s", "variant", looks)
        _mark_noisy(ax, sub, "T", "median_s")
        ax.set(xlabel="sequence length T", ylabel="seconds per forward pass", title=device)
        _readable_log(ax, sub["median_s"], "y", "s")
        _log_T_axis(ax, sub["T"])
    legend_for_all(list(axes[0]))
    fig.suptitle("Forward time vs T on each device")
    fig.tight_layout()
    return fig


def devices_time_vs_T(frame: pd.DataFrame, path) -> Path:
    return _save(draw_devices_time_vs_T(frame), path)


def draw_time_vs_depth(frame: pd.DataFrame, fit: tuple[float, float] | None = None):
    """Seconds per FLOP (median time / predicted FLOPs, the inverse of achieved FLOP/s)
    against the predicted sequential matmul depth, log-log: one colour per variant, one
    marker per phase, noisy timings ringed, and the least-squares line `fit` = (exponent,
    intercept) of log(s/FLOP) against log(depth) when given. Columns: predicted_depth,
    predicted_flops, median_s, variant, phase[, noisy]."""
    _require(frame, ["predicted_depth", "predicted_flops", "median_s", "variant", "phase"],
             "time_vs_depth")
    data = frame.dropna(subset=["predicted_depth", "predicted_flops"])
    data = data[(data["predicted_depth"] > 0) & (data["predicted_flops"] > 0)]
    if data.empty:
        raise ValueError("time_vs_depth: no rows with a predicted depth and FLOPs")
    data = data.assign(s_per_flop=data["median_s"] / data["predicted_flops"])
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8.5, 5))
    sns.scatterplot(data=data, x="predicted_depth", y="s_per_flop", hue="variant",
                    hue_order=in_table_order(data["variant"]),
                    palette=palette(data["variant"]), style="phase", ax=ax, s=45, alpha=0.85)
    _mark_noisy(ax, data, "predicted_depth", "s_per_flop")
    if fit is not None:
        slope, intercept = fit
        xs = np.geomspace(data["predicted_depth"].min(), data["predicted_depth"].max(), 50)
        ax.plot(xs, np.exp(intercept) * xs**slope, color="black", ls="--", lw=1.2,
                label=f"fit: s/FLOP ~ depth^{slope:.2f}", gid="fit")
    _readable_log(ax, data["predicted_depth"], "x")
    _readable_log(ax, data["s_per_flop"], "y", "s")
    ax.set(xlabel="predicted critical-path matmul depth", ylabel="seconds per FLOP",
           title="Time per FLOP vs sequential depth")
    legend_outside(ax, fontsize=7)
    return fig


def time_vs_depth(frame: pd.DataFrame, path, fit: tuple[float, float] | None = None) -> Path:
    return _save(draw_time_vs_depth(frame, fit), path)


PHASE_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _ceiling_band(ax, ci: tuple[float, float] | None) -> None:
    """The measured matmul ceiling's 95% interval as a grey band."""
    if ci is not None:
        ax.axhspan(ci[0], ci[1], color="black", alpha=0.1, lw=0, gid="ceiling_ci",
                   label="ceiling's 95% interval")


def draw_achieved_flops(frame: pd.DataFrame, ceiling: float,
                        ceiling_ci: tuple[float, float] | None = None):
    """Achieved FLOP/s of every timed workload against the device's ceiling (a large matmul
    timed in the same run: its median, and its 95% interval as a band): one column and
    colour per variant, one marker per phase. Columns: variant, phase, flops_per_second[,
    noisy]."""
    _require(frame, ["variant", "phase", "flops_per_second"], "achieved_flops")
    data = frame[frame["flops_per_second"] > 0]
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8, 5))
    variants = list(dict.fromkeys(data["variant"]))
    phases = list(dict.fromkeys(data["phase"]))
    colors = palette(variants)
    width = 0.7 / max(1, len(phases))
    for i, variant in enumerate(variants):
        for j, phase in enumerate(phases):
            sub = data[data["variant"].eq(variant) & data["phase"].eq(phase)]
            if sub.empty:
                continue
            x = np.full(len(sub), i - 0.35 + width * (j + 0.5))
            ax.scatter(x, sub["flops_per_second"], color=colors[variant], s=28, alpha=0.85,
                       marker=PHASE_MARKERS[j % len(PHASE_MARKERS)], gid=f"{variant}|{phase}")
            _mark_noisy(ax, sub.assign(_x=x), "_x", "flops_per_second")
    for j, phase in enumerate(phases):
        ax.scatter([], [], color="grey", marker=PHASE_MARKERS[j % len(PHASE_MARKERS)],
                   label=phase)
    ax.axhline(ceiling, color="black", ls="--", lw=1, label="matmul ceiling (median)",
               gid="ceiling")
    _ceiling_band(ax, ceiling_ci)
    ax.set_xticks(range(len(variants)), variants, rotation=20)
    _readable_log(ax, pd.concat([data["flops_per_second"],
                                 pd.Series([ceiling, *(ceiling_ci or ())])]), "y", "FLOP/s")
    ax.set(ylabel="achieved FLOP/s (measured FLOPs / median time)", xlabel="",
           title="Achieved FLOP/s vs the device ceiling")
    legend_outside(ax)  # one "noisy" entry
    return fig


def achieved_flops(frame: pd.DataFrame, ceiling: float, path,
                   ceiling_ci: tuple[float, float] | None = None) -> Path:
    return _save(draw_achieved_flops(frame, ceiling, ceiling_ci), path)


def draw_ratios(frame: pd.DataFrame):
    """Paired ratios A/B with their 95% intervals: one panel per comparison, one row per
    configuration (and device), the ratio as a point and its interval as a bar; the line at 1
    is parity. Columns: comparison, configuration, device, measure, ratio, ci_low, ci_high."""
    _require(frame, ["comparison", "configuration", "device", "measure", "ratio", "ci_low",
                     "ci_high"], "ratios")
    _sns_theme()
    data = frame.assign(label=frame["comparison"] + " (" + frame["measure"] + ")")
    labels = list(dict.fromkeys(data["label"]))
    heights = [max(1.2, 0.32 * (data["label"] == lab).sum() + 0.8) for lab in labels]
    fig, axes = plt.subplots(len(labels), 1, figsize=(8, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    devices = list(dict.fromkeys(data["device"]))
    colors = dict(zip(devices, sns.color_palette("colorblind", len(devices))))
    for ax, label in zip(axes[:, 0], labels):
        sub = data[data["label"] == label].reset_index(drop=True)
        y = list(range(len(sub)))[::-1]
        for (_, row), yy in zip(sub.iterrows(), y):
            ax.errorbar(row["ratio"], yy, xerr=[[row["ratio"] - row["ci_low"]],
                                                [row["ci_high"] - row["ratio"]]],
                        fmt="o", color=colors[row["device"]], capsize=3,
                        label=row["device"])
        ax.axvline(1.0, color="black", lw=1)
        ax.set_yticks(y, [f"{c} ({d})" if len(devices) > 1 else c
                          for c, d in zip(sub["configuration"], sub["device"])], fontsize=7)
        ax.set_title(f"{label}: A/B, 95% interval", fontsize=9)
        ax.set_xscale("log")
        _readable_log(ax, pd.concat([sub["ci_low"], sub["ci_high"], pd.Series([1.0])]), "x",
                      "ratio")
        if len(devices) > 1:
            legend_outside(ax, fontsize=7)
    fig.tight_layout()
    return fig


def ratios(frame: pd.DataFrame, path) -> Path:
    return _save(draw_ratios(frame), path)


# ---------------------------------------------------------------------------- attention


def draw_attention_time_memory(frame: pd.DataFrame):
    """Flash (SDPA) vs manual attention: time and peak memory (MiB) against T, log-log, each
    kernel in the colour of its Transformer variant; noisy timings ringed.
    Columns: T, kernel, median_s, peak_memory_bytes[, noisy]."""
    _require(frame, ["T", "kernel", "median_s", "peak_memory_bytes"], "attention_time_memory")
    _sns_theme()
    data = frame.sort_values("T").assign(peak_mib=frame["peak_memory_bytes"] / 2**20)
    looks = styles(data["kernel"], kernels=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.4))
    _lines(a, data, "T", "median_s", "kernel", looks)
    _mark_noisy(a, data, "T", "median_s")
    a.set(xlabel="sequence length T", ylabel="seconds per forward", title="Attention time")
    _readable_log(a, data["median_s"], "y", "s")
    _log_T_axis(a, data["T"])
    _lines(b, data, "T", "peak_mib", "kernel", looks)
    b.set(xlabel="sequence length T", ylabel="peak MiB (measured)",
          title="Attention peak memory")
    _readable_log(b, data["peak_mib"], "y", "MiB")
    _log_T_axis(b, data["T"])
    legend_for_all([a, b])
    return fig


def attention_time_memory(frame: pd.DataFrame, path) -> Path:
    return _save(draw_attention_time_memory(frame), path)


# ---------------------------------------------------------------------------- training


def draw_training_curves(frame: pd.DataFrame):
    """Training loss (lines) and validation loss (markers) against step, one colour per
    model, the validation entries in the same order as the training ones; y limits from
    every loss drawn (the first steps included). Columns: model, step, train_loss[, val_loss]."""
    _require(frame, ["model", "step", "train_loss"], "training_curves")
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    models = list(dict.fromkeys(frame["model"].astype(str)))
    colors = palette(models)
    losses = [frame["train_loss"]]
    for model in models:
        sub = frame[frame["model"].astype(str).eq(model)].sort_values("step")
        ax.plot(sub["step"], sub["train_loss"], color=colors[model], lw=1.2, label=model)
    if "val_loss" in frame.columns:
        val = frame.dropna(subset=["val_loss"])
        losses.append(val["val_loss"])
        for model in models:
            sub = val[val["model"].astype(str).eq(model)].sort_values("step")
            if not sub.empty:
                ax.plot(sub["step"], sub["val_loss"], "o--", color=colors[model], ms=4, lw=0.8,
                        label=f"{model} (val)")
    ax.set(xlabel="step", ylabel="cross-entropy (nats/char)", title="Training curves")
    finite = pd.concat(losses)
    finite = finite[np.isfinite(finite)]
    if not finite.empty:
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.04 * (hi - lo) if hi > lo else 0.1
        ax.set_ylim(lo - pad, hi + pad)
    legend_outside(ax, ncol=2 if len(models) > 3 else 1)
    return fig


def training_curves(frame: pd.DataFrame, path) -> Path:
    return _save(draw_training_curves(frame), path)


# ------------------------------------------------------------------------------------------
# Attention (issue 6): the layer x head grid of attention heatmaps of `charlm attention`.
# (`charlm compare` draws its overlaid loss curves with `training_curves` above.)
# ------------------------------------------------------------------------------------------


def _save_as_laid_out(fig, path) -> Path:
    """Save without tight_layout (the attention grid's colorbar needs the constrained layout
    engine, which tight_layout cannot replace), written atomically."""
    from charlm.io import atomic_savefig

    path = Path(path)
    atomic_savefig(fig, path, dpi=DPI)
    plt.close(fig)
    return path


def plot_attention_grid(maps, chars: str, path, title: str = "Attention weights",
                        layers: list[int] | None = None) -> Path:
    """Heatmaps of `maps` (layers, heads, T, T), one row per layer and one column per head,
    queries down and keys across, both labelled with the characters of the text. `layers`
    numbers the rows (when `maps` holds a subset of the model's layers)."""
    maps = np.asarray(maps)
    if maps.ndim != 4 or maps.shape[2] != maps.shape[3] or maps.shape[2] != len(chars):
        raise ValueError(f"maps must be (layers, heads, T, T) with T = len(chars) = {len(chars)},"
                         f" got {maps.shape}")
    n_layers, n_heads, T, _ = maps.shape
    layers = list(range(n_layers)) if layers is None else layers
    labels = [repr(c)[1:-1] if c != " " else "␣" for c in chars]
    size = max(2.2, 0.28 * T)
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(size * n_heads + 1.2, size * n_layers),
                             squeeze=False, layout="constrained")
    for i in range(n_layers):
        for h in range(n_heads):
            ax = axes[i, h]
            im = ax.imshow(maps[i, h], vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_xticks(range(T), labels, fontsize=7)
            ax.set_yticks(range(T), labels, fontsize=7)
            ax.set_title(f"layer {layers[i]} head {h}", fontsize=8)
            if h == 0:
                ax.set_ylabel("query")
            if i == n_layers - 1:
                ax.set_xlabel("key")
    fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
    fig.suptitle(title)
    return _save_as_laid_out(fig, path)


# ---------------------------------------------------------------------------- time prediction


def draw_time_predicted_vs_measured(frame: pd.DataFrame):
    """Predicted (analysis.predict) against measured median time, log-log, one colour per
    variant: the identity line and the band within 2x. Columns: variant, median_s,
    predicted_s."""
    _require(frame, ["variant", "median_s", "predicted_s"], "time_predicted_vs_measured")
    data = frame[(frame["median_s"] > 0) & (frame["predicted_s"] > 0)]
    if data.empty:
        raise ValueError("time_predicted_vs_measured: no rows with both times")
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8.5, 6))
    _points(ax, data, "median_s", "predicted_s", "variant")
    values = pd.concat([data["median_s"], data["predicted_s"]])
    lo, hi = float(values.min()) / 1.5, float(values.max()) * 1.5
    line = np.geomspace(lo, hi, 2)
    ax.plot(line, line, color="black", ls="--", lw=1, label="predicted = measured",
            gid="identity")
    ax.fill_between(line, line / 2, line * 2, color="grey", alpha=0.15, label="within 2x",
                    gid="band2x")
    _readable_log(ax, values, "x", "s")
    _readable_log(ax, values, "y", "s")
    ax.set(xlabel="measured median time per round", ylabel="predicted time",
           title="Time predicted from FLOPs, bytes and ops vs measured")
    legend_outside(ax)
    return fig


def time_predicted_vs_measured(frame: pd.DataFrame, path) -> Path:
    return _save(draw_time_predicted_vs_measured(frame), path)


def draw_roofline(frame: pd.DataFrame, compute_roof: float, bandwidth: float,
                  roof_ci: tuple[float, float] | None = None):
    """Achieved FLOP/s (FLOPs / measured time) against arithmetic intensity (FLOPs / bytes
    moved, unfused), one point per workload in its variant's style (its model's where the
    frame has no variant), under the roofs min(compute_roof, intensity x bandwidth):
    compute_roof is the report's measured matmul ceiling, `roof_ci` its 95% interval (a
    band). Columns: variant or model, trace_flops, trace_bytes, median_s."""
    hue = "variant" if "variant" in frame.columns else "model"
    _require(frame, [hue, "trace_flops", "trace_bytes", "median_s"], "roofline")
    data = frame[(frame["trace_flops"] > 0) & (frame["trace_bytes"] > 0)
                 & (frame["median_s"] > 0)].copy()
    if data.empty:
        raise ValueError("roofline: no rows with FLOPs, bytes and a time")
    data["intensity"] = data["trace_flops"] / data["trace_bytes"]
    data["achieved"] = data["trace_flops"] / data["median_s"]
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8.5, 5))
    _points(ax, data, "intensity", "achieved", hue)
    x = np.geomspace(float(data["intensity"].min()) / 2, float(data["intensity"].max()) * 2, 50)
    ax.plot(x, np.minimum(compute_roof, x * bandwidth), color="black", lw=1.2,
            label=f"roofs: matmul ceiling (median), {bandwidth:.2g} B/s", gid="roof")
    _ceiling_band(ax, roof_ci)
    _readable_log(ax, x, "x")
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    _readable_log(ax, pd.concat([data["achieved"], pd.Series([compute_roof, *(roof_ci or ())])]),
                  "y", "FLOP/s")
    ax.set(xlabel="arithmetic intensity (FLOP per byte read + written, unfused)",
           ylabel="achieved FLOP/s (FLOPs / median time)",
           title="Roofline: every timed workload under the measured ceiling")
    legend_outside(ax, fontsize=7)
    return fig


def roofline(frame: pd.DataFrame, compute_roof: float, bandwidth: float, path,
             roof_ci: tuple[float, float] | None = None) -> Path:
    return _save(draw_roofline(frame, compute_roof, bandwidth, roof_ci), path)
