"""The one plotting module: seaborn on the headless Agg backend, PNG files.

Every figure function takes DataFrames (the same tables the report writes as CSV) and an
output path, draws one figure, saves it and returns the path. Figures are grouped by the
part of the toolkit they show: cost (FLOPs), time, attention kernels, training.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

DPI = 120


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
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


def _log_T_axis(ax, values) -> None:
    """Log base 2 x axis with a plain label at each measured T (no crowded minor labels)."""
    ticks = sorted({int(v) for v in values})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()


# ---------------------------------------------------------------------------- cost


def flops_predicted_vs_measured(frame: pd.DataFrame, path, hue: str = "model",
                                style: str | None = "counter") -> Path:
    """Predicted FLOPs (x) against measured FLOPs (y) on log-log axes with the identity line;
    points on the line agree exactly. Columns: predicted, measured, `hue`[, `style`]."""
    _require(frame, ["predicted", "measured", hue], "flops_predicted_vs_measured")
    data = frame[(frame["predicted"] > 0) & (frame["measured"] > 0)]
    _sns_theme()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.scatterplot(data=data, x="predicted", y="measured", hue=hue,
                    style=style if style in data.columns else None, ax=ax, s=40, alpha=0.8)
    lo = float(min(data["predicted"].min(), data["measured"].min())) / 2
    hi = float(max(data["predicted"].max(), data["measured"].max())) * 2
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--", label="measured = predicted")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel="predicted FLOPs (cost model)", ylabel="measured FLOPs (counter)",
           title="Predicted vs measured FLOPs")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


# ---------------------------------------------------------------------------- time


def time_per_token_vs_T(frame: pd.DataFrame, path) -> Path:
    """Seconds per token (median round / tokens) against T, one line per model variant,
    one panel per phase, log-log. Columns: T, seconds_per_token, variant, phase."""
    _require(frame, ["T", "seconds_per_token", "variant", "phase"], "time_per_token_vs_T")
    _sns_theme()
    phases = list(dict.fromkeys(frame["phase"]))
    fig, axes = plt.subplots(1, len(phases), figsize=(5.2 * len(phases), 4.4), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        sub = frame[frame["phase"] == phase].sort_values("T")
        sns.lineplot(data=sub, x="T", y="seconds_per_token", hue="variant", marker="o", ax=ax,
                     errorbar=None)
        ax.set(yscale="log", title=phase, xlabel="sequence length T", ylabel="seconds per token")
        _log_T_axis(ax, sub["T"])
        ax.legend(fontsize=8)
    return _save(fig, path)


def sequence_time_vs_T(frame: pd.DataFrame, path) -> Path:
    """Median seconds per round against T (log-log), one line per variant and phase: a
    recurrent loop grows linearly with T (its steps are sequential)."""
    _require(frame, ["T", "median_s", "variant", "phase"], "sequence_time_vs_T")
    _sns_theme()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sns.lineplot(data=frame.sort_values("T"), x="T", y="median_s", hue="variant", style="phase",
                 marker="o", ax=ax, errorbar=None)
    ax.set(yscale="log", xlabel="sequence length T", ylabel="seconds per round",
           title="Time per sequence vs T")
    _log_T_axis(ax, frame["T"])
    ax.legend(fontsize=8)
    return _save(fig, path)


def time_vs_depth(frame: pd.DataFrame, path) -> Path:
    """Median seconds per round against the predicted sequential matmul depth (log-log), one
    colour per variant, one marker per phase. Columns: predicted_depth, median_s, variant, phase."""
    _require(frame, ["predicted_depth", "median_s", "variant", "phase"], "time_vs_depth")
    data = frame.dropna(subset=["predicted_depth"])
    data = data[data["predicted_depth"] > 0]
    _sns_theme()
    fig, ax = plt.subplots(figsize=(7, 5))
    sns.scatterplot(data=data, x="predicted_depth", y="median_s", hue="variant", style="phase",
                    ax=ax, s=45, alpha=0.85)
    ax.set(xscale="log", yscale="log", xlabel="predicted critical-path matmul depth",
           ylabel="seconds per round", title="Time vs sequential depth")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def achieved_flops(frame: pd.DataFrame, ceiling: float, path) -> Path:
    """Achieved FLOP/s of every timed workload against the device's ceiling (a large matmul
    timed in the same run). Columns: variant, phase, flops_per_second."""
    _require(frame, ["variant", "phase", "flops_per_second"], "achieved_flops")
    data = frame[frame["flops_per_second"] > 0]
    _sns_theme()
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.stripplot(data=data, x="variant", y="flops_per_second", hue="phase", dodge=True,
                  ax=ax, size=5, alpha=0.8)
    ax.axhline(ceiling, color="black", ls="--", lw=1, label=f"matmul ceiling {ceiling:.3g} FLOP/s")
    ax.set(yscale="log", ylabel="achieved FLOP/s (measured FLOPs / median time)", xlabel="",
           title="Achieved FLOP/s vs the device ceiling")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=8)
    return _save(fig, path)


def homework_vs_torch(frame: pd.DataFrame, path) -> Path:
    """Speed-up of torch.nn.RNN/GRU over the homework's per-step loop, same weights.
    Columns: model, phase, T, speedup."""
    _require(frame, ["model", "phase", "T", "speedup"], "homework_vs_torch")
    _sns_theme()
    data = frame.assign(size=frame["phase"] + " T=" + frame["T"].astype(str))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.barplot(data=data, x="model", y="speedup", hue="size", ax=ax)
    ax.axhline(1.0, color="black", lw=1)
    ax.set(ylabel="homework loop time / torch.nn time", xlabel="",
           title="torch.nn fused recurrence vs the homework loop")
    ax.legend(fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------------------- attention


def attention_time_memory(frame: pd.DataFrame, path) -> Path:
    """Flash (SDPA) vs manual attention: time and peak memory against T, log-log.
    Columns: T, kernel, median_s, peak_memory_bytes."""
    _require(frame, ["T", "kernel", "median_s", "peak_memory_bytes"], "attention_time_memory")
    _sns_theme()
    data = frame.sort_values("T").assign(peak_mib=frame["peak_memory_bytes"] / 2**20)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    sns.lineplot(data=data, x="T", y="median_s", hue="kernel", marker="o", ax=a, errorbar=None)
    a.set(yscale="log", xlabel="sequence length T", ylabel="seconds per forward",
          title="Attention time")
    _log_T_axis(a, data["T"])
    sns.lineplot(data=data, x="T", y="peak_mib", hue="kernel", marker="o", ax=b, errorbar=None)
    b.set(yscale="log", xlabel="sequence length T", ylabel="peak MiB (measured)",
          title="Attention peak memory")
    _log_T_axis(b, data["T"])
    return _save(fig, path)


# ---------------------------------------------------------------------------- training


def training_curves(frame: pd.DataFrame, path) -> Path:
    """Training loss (lines) and validation loss (markers) against step, one colour per model.
    Columns: model, step, train_loss[, val_loss]."""
    _require(frame, ["model", "step", "train_loss"], "training_curves")
    _sns_theme()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    sns.lineplot(data=frame, x="step", y="train_loss", hue="model", ax=ax, lw=1.2, errorbar=None)
    if "val_loss" in frame.columns:
        val = frame.dropna(subset=["val_loss"])
        if not val.empty:
            palette = dict(zip(frame["model"].unique(), sns.color_palette(n_colors=frame["model"].nunique())))
            for model, sub in val.groupby("model"):
                ax.plot(sub["step"], sub["val_loss"], "o--", color=palette[model], ms=4, lw=0.8,
                        label=f"{model} (val)")
    ax.set(xlabel="step", ylabel="cross-entropy (nats/char)", title="Training curves")
    finite = frame["train_loss"][np.isfinite(frame["train_loss"])]
    if not finite.empty:
        ax.set_ylim(top=float(finite.quantile(0.99)) * 1.05)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------
# Attention (issue 6): the layer x head grid of attention heatmaps of `charlm attention`.
# (`charlm compare` draws its overlaid loss curves with `training_curves` above.)
# ------------------------------------------------------------------------------------------


def _save_as_laid_out(fig, path) -> Path:
    """Save without tight_layout (the attention grid's colorbar needs the constrained layout
    engine, which tight_layout cannot replace), written atomically."""
    from charlm.io import atomic_write

    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
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
