"""Figures for the experiments and attention maps (issue 6).

These belong in `analysis/plots.py` (issue 5's plotting module); they live here until that
module exists and then move to its end, in a section marked "experiments and attention".
Same conventions: seaborn, Agg backend, PNG; each function takes data and a path and returns
the path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from charlm.io import atomic_write  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def smoothing_window(steps: int) -> int:
    """Rolling-mean window for a curve of `steps` points: about 2% of the run, at least 1."""
    return max(1, steps // 50)


def plot_loss_curves(curves: pd.DataFrame, path, title: str = "Training loss") -> Path:
    """Overlaid loss curves. `curves` is long-form with columns run, step, train_loss,
    val_loss (NaN where not evaluated). The per-step training loss is drawn faintly with its
    rolling mean on top; validation losses are markers of the same colour."""
    required = {"run", "step", "train_loss", "val_loss"}
    if not required <= set(curves.columns):
        raise ValueError(f"curves need columns {sorted(required)}, got {list(curves.columns)}")
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 5))
    runs = list(dict.fromkeys(curves["run"]))
    palette = dict(zip(runs, sns.color_palette(n_colors=len(runs))))
    for run in runs:
        df = curves[curves["run"] == run].sort_values("step")
        window = smoothing_window(len(df))
        color = palette[run]
        ax.plot(df["step"], df["train_loss"], color=color, alpha=0.2, linewidth=0.8)
        ax.plot(df["step"], df["train_loss"].rolling(window, min_periods=1).mean(),
                color=color, linewidth=1.8, label=f"{run} train (mean of {window})")
        val = df.dropna(subset=["val_loss"])
        ax.plot(val["step"], val["val_loss"], "o--", color=color, markersize=4, linewidth=1,
                label=f"{run} validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


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
    return _save(fig, path)
