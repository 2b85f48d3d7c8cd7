"""The homework's GRU exercises (sections 6.1-6.5), checked numerically on the 2-D cell.

Each check states the slider settings it uses, sweeps the data sliders over their whole range
on the slider grid (step 0.1 in [-2, 2]) and measures what the exercise claims. A verdict
is `correct` when the measurement meets the claim, `incorrect` otherwise; nothing here knows
the expected verdicts. "Almost" in the exercises is read as within TOL of the claimed value,
with n and h_new on their natural scale (n lies in [-1, 1], h_new in [-2, 2]).

Row ids: gru.exercise1.sum, gru.exercise2.difference, gru.exercise3.memory,
gru.exercise4.pure_input, gru.exercise4.pure_input_no_hidden_weight,
gru.control.zero_input, gru.control.dependence. Every row has the keys of the homework check
table (`id`, `question`, `answer`, `verdict`, `derived`, `counterexample`) plus `settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from charlm.gru_explorer import GRUSettings, gru_2d_batch, gru_2d_step

TOL = 0.05  # "almost": within 0.05 of the claimed value (2.5% of a slider's span of 4)
GRID = np.round(np.linspace(-2.0, 2.0, 41), 10)  # the data sliders' positions (step 0.1)
HIGH = 2.0  # "both high (e.g., 2.0)"

# The settings each exercise's answer gives; everything else stays at the sliders' defaults
# (control input 2.0, control hidden 0, reset 3, update -3, W_xn 3, W_hn 3).
BASE = GRUSettings()
CONFIGS = {
    "exercise1": BASE,
    "exercise2": BASE.with_(new_hidden_weight=-3.0),
    "exercise3": BASE.with_(update_weight=3.0),
    "exercise4": BASE.with_(reset_weight=-3.0),
    "exercise4_no_hidden_weight": BASE.with_(new_hidden_weight=0.0),
}


@dataclass(frozen=True)
class Measurement:
    holds: bool
    derived: str
    counterexample: str = ""


def _sweep(settings: GRUSettings, name: str, quantity: str, **fixed) -> np.ndarray:
    """The data dimension of `quantity` as data slider `name` moves over GRID."""
    s = settings.with_(**fixed)
    x0 = GRID if name == "data_input" else np.full_like(GRID, s.data_input)
    h0 = GRID if name == "data_hidden" else np.full_like(GRID, s.data_hidden)
    return gru_2d_batch(s, x0, h0)[quantity][:, 0].numpy()


def _plane(settings: GRUSettings) -> dict[str, np.ndarray]:
    """Every quantity's data dimension on the (x[0], h[0]) slider grid, shape (41, 41)."""
    x0, h0 = np.meshgrid(GRID, GRID, indexing="ij")
    out = gru_2d_batch(settings, x0, h0)
    return {k: v[:, 0].numpy().reshape(x0.shape) for k, v in out.items()}


def _direction(values: np.ndarray) -> str:
    steps = np.diff(values)
    if np.all(steps > 0):
        return "same"
    if np.all(steps < 0):
        return "opposite"
    if np.all(np.abs(steps) < 1e-12):
        return "none"
    return "mixed"


def _at(settings: GRUSettings, x0: float, h0: float):
    return gru_2d_step(settings, data_input=x0, data_hidden=h0)


def check_sum(s: GRUSettings, tol: float = TOL) -> Measurement:
    """Exercise 1: n and h_new move with x[0] and with h[0]; both high -> n and h_new high."""
    dirs = {
        f"{q} vs {slider}": _direction(_sweep(s, slider, q, **{other: 0.0}))
        for q in ("n", "h_new")
        for slider, other in (("data_input", "data_hidden"), ("data_hidden", "data_input"))
    }
    both = _at(s, HIGH, HIGH)
    n_high, h_high = both.n[0], both.h_new[0]
    holds = all(d == "same" for d in dirs.values()) and n_high >= 1 - tol and h_high >= 1 - tol
    derived = "; ".join(f"{k}: {v}" for k, v in dirs.items())
    derived += f"; at x0=h0={HIGH:g}: n={n_high:.4f}, h_new={h_high:.4f}"
    bad = [k for k, v in dirs.items() if v != "same"]
    return Measurement(holds, derived, f"direction not 'same' for {bad}" if bad else "")


def check_difference(s: GRUSettings, tol: float = TOL) -> Measurement:
    """Exercise 2: n moves with x[0], against h[0]; both high -> n and h_new near zero."""
    with_x = _direction(_sweep(s, "data_input", "n", data_hidden=0.0))
    with_h = _direction(_sweep(s, "data_hidden", "n", data_input=0.0))
    both = _at(s, HIGH, HIGH)
    holds = (with_x == "same" and with_h == "opposite"
             and abs(both.n[0]) <= tol and abs(both.h_new[0]) <= tol)
    derived = (f"n vs x[0]: {with_x}; n vs h[0]: {with_h}; at x0=h0={HIGH:g}: "
               f"n={both.n[0]:.4f}, h_new={both.h_new[0]:.4f} (tolerance {tol:g})")
    ce = "" if holds else f"x0=h0={HIGH:g}: n={both.n[0]:.4f}, h_new={both.h_new[0]:.4f}"
    return Measurement(holds, derived, ce)


def _grid_max(values: np.ndarray) -> tuple[float, float, float]:
    """max of a (41, 41) array over the (x[0], h[0]) grid; returns (value, x0, h0)."""
    i, j = np.unravel_index(np.argmax(values), values.shape)
    return float(values[i, j]), float(GRID[i]), float(GRID[j])


def check_memory(s: GRUSettings, tol: float = TOL) -> Measurement:
    """Exercise 3: h_new copies h[0] (and ignores n) everywhere on the slider grid."""
    p = _plane(s)
    worst, x0, h0 = _grid_max(np.abs(p["h_new"] - p["h"]))
    z = gru_2d_step(s).z[0]
    holds = worst <= tol
    derived = (f"z[0]={z:.4f}; max |h_new[0] - h[0]| over the grid = {worst:.4f} "
               f"at x0={x0:g}, h0={h0:g} (tolerance {tol:g})")
    return Measurement(holds, derived, "" if holds else f"x0={x0:g}, h0={h0:g}: {worst:.4f}")


def check_pure_input(s: GRUSettings, tol: float = TOL) -> Measurement:
    """Exercise 4: n does not depend on h[0] (n(x0, h0) == n(x0, 0)) but does on x[0]."""
    n = _plane(s)["n"]
    zero_h = int(np.argmin(np.abs(GRID)))  # column h[0] = 0
    worst, x0, h0 = _grid_max(np.abs(n - n[:, zero_h : zero_h + 1]))
    span = np.ptp(_sweep(s, "data_input", "n", data_hidden=0.0))
    r = gru_2d_step(s).r[0]
    holds = worst <= tol and span >= 1.0
    derived = (f"r[0]={r:.4f}; max |n(x0,h0) - n(x0,0)| over the grid = {worst:.4f} at "
               f"x0={x0:g}, h0={h0:g} (tolerance {tol:g}); n's range over x[0] = {span:.3f}")
    return Measurement(holds, derived, "" if holds else f"x0={x0:g}, h0={h0:g}: {worst:.4f}")


def check_control_zero(configs: dict[str, GRUSettings], tol: float = 1e-12) -> Measurement:
    """Control input 0 (control hidden 0): r[0] = z[0] = 1/2 in every configuration."""
    parts, bad = [], []
    for name, s in configs.items():
        st = gru_2d_step(s, control_input=0.0)
        parts.append(f"{name}: r={st.r[0]:.4f}, z={st.z[0]:.4f}")
        if abs(st.r[0] - 0.5) > tol or abs(st.z[0] - 0.5) > tol:
            bad.append(name)
    return Measurement(not bad, "; ".join(parts), f"gates not 1/2 for {bad}" if bad else "")


def sensitivity(s: GRUSettings, slider: str, eps: float = 1e-4) -> float:
    """d h_new[0] / d slider at x[0] = h[0] = 0 (central difference)."""
    at = s.with_(data_input=0.0, data_hidden=0.0)
    plus = gru_2d_step(at, **{slider: eps}).h_new[0]
    minus = gru_2d_step(at, **{slider: -eps}).h_new[0]
    return (plus - minus) / (2 * eps)


def check_dependence(configs: dict[str, GRUSettings]) -> Measurement:
    """The homework's answer to 6.5: with control 0 the output depends less on the input and
    more on the previous hidden state. Measured per configuration as |d h_new / d x[0]| and
    |d h_new / d h[0]| at control 2 against control 0."""
    parts, bad = [], []
    for name, s in configs.items():
        dx_hi, dh_hi = (abs(sensitivity(s, k)) for k in ("data_input", "data_hidden"))
        low = s.with_(control_input=0.0)
        dx_lo, dh_lo = (abs(sensitivity(low, k)) for k in ("data_input", "data_hidden"))
        parts.append(f"{name}: dh_new/dx {dx_hi:.3f}->{dx_lo:.3f}, "
                     f"dh_new/dh {dh_hi:.3f}->{dh_lo:.3f}, "
                     f"ratio dh/dx {dh_hi / dx_hi:.3g}->{dh_lo / dx_lo:.3g}")
        if not (dx_lo < dx_hi and dh_lo > dh_hi):
            bad.append(name)
    ce = f"claim fails for {', '.join(bad)}" if bad else ""
    return Measurement(not bad, "; ".join(parts), ce)


@dataclass(frozen=True)
class Exercise:
    id: str
    question: str
    answer: str  # the homework's stated answer
    settings: str  # the slider settings the check uses
    measure: Callable[[], Measurement]


def _describe(s: GRUSettings, sweep: str) -> str:
    fixed = ", ".join(f"{k}={v:g}" for k, v in s.to_dict().items()
                      if k not in ("data_input", "data_hidden"))
    return f"{fixed}; {sweep}"


_SWEEP = "x[0] and h[0] swept over [-2, 2] step 0.1"
_OTHER = {k: v for k, v in CONFIGS.items() if k != "exercise4_no_hidden_weight"}

EXERCISES = (
    Exercise(
        "gru.exercise1.sum",
        "6.1: with the default weights, do n and h_new follow x[0] and h[0]; both high?",
        "same direction for input and hidden; both high -> n and h_new high "
        "(attenuated sum, n in [-1, 1])",
        _describe(CONFIGS["exercise1"], _SWEEP),
        lambda: check_sum(CONFIGS["exercise1"]),
    ),
    Exercise(
        "gru.exercise2.difference",
        "6.2: which new-content weights make n the attenuated difference of x[0] and h[0]?",
        "W_hn[0,0] = -3.0, W_xn[0,0] = 3.0",
        _describe(CONFIGS["exercise2"], _SWEEP),
        lambda: check_difference(CONFIGS["exercise2"]),
    ),
    Exercise(
        "gru.exercise3.memory",
        "6.3: which weights make h_new copy h[0] and ignore the new content?",
        "W_xz[0,1] = W_hz[0,1] = 3.0 (update gate z -> 1)",
        _describe(CONFIGS["exercise3"], _SWEEP),
        lambda: check_memory(CONFIGS["exercise3"]),
    ),
    Exercise(
        "gru.exercise4.pure_input",
        "6.4: which weights make n ignore h[0] and use only the input?",
        "W_xr[0,1] = W_hr[0,1] = -3.0 (reset gate r -> 0)",
        _describe(CONFIGS["exercise4"], _SWEEP),
        lambda: check_pure_input(CONFIGS["exercise4"]),
    ),
    Exercise(
        "gru.exercise4.pure_input_no_hidden_weight",
        "6.4 (the answer's alternative): does W_hn[0,0] = 0 make n ignore h[0]?",
        "W_hn[0,0] = 0.0",
        _describe(CONFIGS["exercise4_no_hidden_weight"], _SWEEP),
        lambda: check_pure_input(CONFIGS["exercise4_no_hidden_weight"]),
    ),
    Exercise(
        "gru.control.zero_input",
        "6.5: with control input 0.0, what happens to the gates (each configuration above)?",
        "r[0] = z[0] = 0.50",
        "each exercise's settings with control_input=0 (control_hidden=0)",
        lambda: check_control_zero(CONFIGS),
    ),
    Exercise(
        "gru.control.dependence",
        "6.5: with control input 0.0, does the output depend less on the input, more on h?",
        "the final output became less dependent on the input, more on the previous hidden state",
        "each exercise 1-4 setting at x[0]=h[0]=0, control_input 2 vs 0; central differences",
        lambda: check_dependence(_OTHER),
    ),
)


def exercise_rows() -> list[dict]:
    """One row per check, in the homework check table's columns."""
    rows = []
    for ex in EXERCISES:
        m = ex.measure()
        rows.append(dict(
            id=ex.id,
            question=ex.question,
            answer=ex.answer,
            verdict="correct" if m.holds else "incorrect",
            derived=m.derived,
            counterexample=m.counterexample,
            settings=ex.settings,
        ))
    return rows


def exercise_table() -> pd.DataFrame:
    return pd.DataFrame(exercise_rows())
