"""The reproducibility check: the same paired comparisons measured in separate runs
(separate processes), each ratio's runs set side by side.

Per ratio (comparison, configuration, device, measure): the ratio and 95% interval of every
run, whether all the intervals overlap (share a point), and the relative spread of the
ratios, (max - min) / median, and (when the runs recorded it) `pace_spread`, the largest
over the smallest yardstick timed around the ratio's runs. `agreement` summarises: the
fraction of ratios whose runs agree within a tolerance (5% by default) and the median
relative half-width of the intervals.
"""

from __future__ import annotations

import pandas as pd

KEY = ["comparison", "configuration", "device", "measure"]


def compare_runs(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per ratio measured in every run (ratios.csv frames, one per run)."""
    if len(runs) < 2:
        raise ValueError(f"a reproducibility check needs at least 2 runs, got {len(runs)}")
    merged = None
    for k, frame in enumerate(runs, start=1):
        cols = ["ratio", "ci_low", "ci_high"] + (["yardstick_s"] if "yardstick_s" in frame
                                                  else [])
        part = frame[KEY + cols].rename(columns={c: f"{c}_{k}" for c in cols})
        merged = part if merged is None else merged.merge(part, on=KEY, how="inner")
    n = len(runs)
    paces = [f"yardstick_s_{k}" for k in range(1, n + 1)]
    if all(c in merged.columns for c in paces):
        # how far the machine's pace moved between the runs of a ratio: the slowest run's
        # yardstick over the fastest's
        merged["pace_spread"] = merged[paces].max(axis=1) / merged[paces].min(axis=1)
    ratios = merged[[f"ratio_{k}" for k in range(1, n + 1)]]
    lows = merged[[f"ci_low_{k}" for k in range(1, n + 1)]]
    highs = merged[[f"ci_high_{k}" for k in range(1, n + 1)]]
    merged["intervals_overlap"] = lows.max(axis=1).to_numpy() <= highs.min(axis=1).to_numpy()
    merged["relative_difference"] = (ratios.max(axis=1) - ratios.min(axis=1)) / ratios.median(
        axis=1)
    half = (highs.to_numpy() - lows.to_numpy()) / 2 / ratios.to_numpy()
    merged["median_ci_half_width"] = pd.DataFrame(half).median(axis=1).to_numpy()
    return merged


def agreement(compared: pd.DataFrame, tolerance: float = 0.05) -> dict:
    """Fraction of ratios whose runs differ by at most `tolerance` (relative), fraction whose
    intervals overlap, and the median relative half-width of the intervals."""
    if compared.empty:
        return {"ratios": 0, "within": None, "overlap": None, "median_ci_half_width": None}
    return {"ratios": len(compared),
            "within": float((compared["relative_difference"] <= tolerance).mean()),
            "overlap": float(compared["intervals_overlap"].mean()),
            "median_ci_half_width": float(compared["median_ci_half_width"].median()),
            "tolerance": tolerance}
