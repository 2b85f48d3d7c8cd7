"""The homework's GRU exercises (sections 6.1-6.5), checked numerically on the 2-D cell.

Each check states the slider settings it uses, sweeps the data sliders over their whole range
on the slider grid (step 0.1 in [-2, 2]) and measures what the exercise claims. A verdict
is CORRECT when the measurement meets the claim, INCORRECT otherwise; nothing here knows
the expected verdicts. "Almost" in the exercises is read as within TOL of the claimed value,
with n and h_new on their natural scale (n lies in [-1, 1], h_new in [-2, 2]).

Answers are text, as a student writes them, and are parsed (regular expressions only, no
eval) into slider settings or claims, then checked:

- gru.exercise1.sum, gru.exercise2.difference, gru.exercise3.memory, gru.exercise4.pure_input:
  slider settings, e.g. "W_hn[0,0] = -3.0, W_xn[0,0] = 3.0"; chained "W_xz[0,1] = W_hz[0,1]
  = 3"; alternatives joined by "or" (each must work). Names: W_xr/W_hr (reset slider),
  W_xz/W_hz (update), W_xn, W_hn, x[0], x[1], h[0], h[1], or the slider names.
- gru.control.zero_input: claimed gate values at control input 0, e.g. "r[0] = z[0] = 0.50",
  checked in every configuration the homework's answers to exercises 1-4 give.
- gru.control.dependence: a sentence saying whether the output depends "less"/"more" on the
  input and on the hidden state; checked by finite differences in the same configurations.

The homework's own answers are the gru.* entries of analysis/data/homework_answers.toml.
Rows have the keys of the homework check table (`id`, `question`, `answer`, `verdict`, `derived`,
`counterexample`, `reasoning`) plus `settings`, with `verdict` an `analysis.verdicts.Verdict`.
`analysis.checker` imports `check_answer` and `questions` for the ids starting with PREFIX, so
`charlm check-answers` checks them in the same table; this module imports nothing from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.verdicts import Verdict
from charlm.gru_explorer import GRUSettings, gru_2d_batch, gru_2d_step

PREFIX = "gru."  # the ids of these questions
TOL = 0.05  # "almost": within 0.05 of the claimed value (2.5% of a slider's span of 4)
GRID = np.round(np.linspace(-2.0, 2.0, 41), 10)  # the data sliders' positions (step 0.1)
HIGH = 2.0  # "both high (e.g., 2.0)"

BASE = GRUSettings()  # the sliders' defaults: control 2.0, reset 3, update -3, W_xn = W_hn = 3


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
    derived = (f"z[0]={z:.4f}; max abs(h_new[0] - h[0]) over the grid = {worst:.4f} "
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
    derived = (f"r[0]={r:.4f}; max abs(n(x0,h0) - n(x0,0)) over the grid = {worst:.4f} at "
               f"x0={x0:g}, h0={h0:g} (tolerance {tol:g}); n's range over x[0] = {span:.3f}")
    return Measurement(holds, derived, "" if holds else f"x0={x0:g}, h0={h0:g}: {worst:.4f}")


def sensitivity(s: GRUSettings, slider: str, eps: float = 1e-4) -> float:
    """d h_new[0] / d slider at x[0] = h[0] = 0 (central difference)."""
    at = s.with_(data_input=0.0, data_hidden=0.0)
    plus = gru_2d_step(at, **{slider: eps}).h_new[0]
    minus = gru_2d_step(at, **{slider: -eps}).h_new[0]
    return (plus - minus) / (2 * eps)


# ------------------------------------------------------------------------------ answers

_NAMES = {
    "w_xr": ("reset_weight", "[0,1]"), "w_hr": ("reset_weight", "[0,1]"),
    "w_xz": ("update_weight", "[0,1]"), "w_hz": ("update_weight", "[0,1]"),
    "w_xn": ("new_input_weight", "[0,0]"), "w_hn": ("new_hidden_weight", "[0,0]"),
    "x[0]": ("data_input", ""), "x[1]": ("control_input", ""),
    "h[0]": ("data_hidden", ""), "h[1]": ("control_hidden", ""),
    **{name: (name, "") for name in BASE.to_dict()},
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_NAME = r"[A-Za-z_]+(?:\s*\[\s*\d\s*(?:,\s*\d\s*)?\])?"
_CLAUSE = re.compile(rf"^\s*((?:{_NAME}\s*=\s*)+)({_NUMBER})\s*$")
_SEPARATOR = r"[,;](?![^\[]*\])|\band\b"  # a comma inside [0,1] does not separate
MAX_ANSWER = 500


def _check_length(text: str) -> None:
    if not isinstance(text, str):
        raise ValueError(f"an answer must be text, got {type(text).__name__}")
    if len(text) > MAX_ANSWER:
        raise ValueError(f"answer longer than {MAX_ANSWER} characters")


def _slider(name: str) -> str:
    key = re.sub(r"\s+", "", name).lower()
    base, _, index = key.partition("[")
    index = "[" + index if index else ""
    if base in ("x", "h"):
        base, index = key, ""
    if base not in _NAMES:
        raise ValueError(f"unknown name {name.strip()!r}; use W_xr, W_hr, W_xz, W_hz, W_xn, "
                         "W_hn, x[0], x[1], h[0], h[1] or a slider name")
    slider, placement = _NAMES[base]
    if index and index != placement:
        given = name.strip().split("[")[0]
        raise ValueError(f"{name.strip()}: the explorer only has {given}{placement}")
    return slider


def parse_settings(text: str) -> list[dict[str, float]]:
    """"W_xr[0,1] = W_hr[0,1] = -3.0 or W_hn[0,0] = 0" -> [{reset_weight: -3.0},
    {new_hidden_weight: 0.0}]. ValueError (naming the clause) for anything else."""
    _check_length(text)
    alternatives = []
    for alt in re.split(r"\bor\b", text):
        values: dict[str, float] = {}
        for clause in filter(str.strip, re.split(_SEPARATOR, alt)):
            m = _CLAUSE.match(clause)
            if not m:
                raise ValueError(f"cannot read {clause.strip()!r}: write NAME = NUMBER "
                                 "(e.g. W_hn[0,0] = -3.0)")
            value = float(m.group(2))
            for name in filter(str.strip, m.group(1).split("=")):
                slider = _slider(name)
                if values.get(slider, value) != value:
                    raise ValueError(f"{slider} set to both {values[slider]:g} and {value:g} "
                                     "(tied weights share one slider)")
                values[slider] = value
        if not values:
            raise ValueError("no settings in the answer")
        alternatives.append(values)
    return alternatives


def parse_gates(text: str) -> dict[str, float]:
    """"r[0] = z[0] = 0.50" -> {"r": 0.5, "z": 0.5}."""
    _check_length(text)
    gates: dict[str, float] = {}
    for clause in filter(str.strip, re.split(_SEPARATOR, text)):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(f"cannot read {clause.strip()!r}: write r[0] = z[0] = NUMBER")
        for name in filter(str.strip, m.group(1).split("=")):
            gate = re.sub(r"\s+", "", name).lower()
            if gate not in ("r", "z", "r[0]", "z[0]"):
                raise ValueError(f"unknown gate {name.strip()!r}; use r[0] or z[0]")
            gates[gate[0]] = float(m.group(2))
    return gates


def parse_dependence(text: str) -> dict[str, str]:
    """Reads "less/more ... input" and "less/more ... hidden" -> {"input": "less", ...}."""
    _check_length(text)
    claims = {}
    for target in ("input", "hidden"):
        m = re.search(rf"\b(less|more)\b(?:\W+\w+){{0,4}}?\W+{target}\b", text.lower())
        if m:
            claims[target] = m.group(1)
    if not claims:
        raise ValueError("say whether the output depends less or more on the input and on the "
                         "hidden state")
    return claims


def homework_answers() -> dict[str, str]:
    """The homework's answers to the GRU questions (the gru.* ids of the homework file)."""
    from analysis.questions import HOMEWORK_ANSWERS, load_answers

    return {k: v for k, v in load_answers(HOMEWORK_ANSWERS).items() if k.startswith(PREFIX)}


def configurations() -> dict[str, GRUSettings]:
    """The settings of the homework's answers to exercises 1-4 (every alternative)."""
    configs = {}
    for qid, text in homework_answers().items():
        if qid.startswith("gru.exercise"):
            alts = parse_settings(text)
            for i, alt in enumerate(alts):
                name = qid.split(".")[1] + (f" alt {i + 1}" if len(alts) > 1 else "")
                configs[name] = BASE.with_(**alt)
    return configs


def check_gates(claimed: dict[str, float], configs: dict[str, GRUSettings],
                tol: float = 0.005) -> Measurement:
    """At control input 0, do r[0] and z[0] equal the claimed values (to 2 decimals)?"""
    parts, bad = [], []
    for name, s in configs.items():
        st = gru_2d_step(s, control_input=0.0)
        got = {"r": st.r[0], "z": st.z[0]}
        parts.append(f"{name}: r={got['r']:.4f}, z={got['z']:.4f}")
        if any(abs(got[g] - v) > tol for g, v in claimed.items()):
            bad.append(name)
    return Measurement(not bad, "; ".join(parts), f"differs in {bad}" if bad else "")


def check_dependence_claim(claims: dict[str, str], configs: dict[str, GRUSettings]
                           ) -> Measurement:
    """Does |d h_new/d x[0]| (input) and |d h_new/d h[0]| (hidden) at x = h = 0 go the claimed
    way when the control input drops from its setting to 0, in every configuration?"""
    parts, bad = [], []
    for name, s in configs.items():
        low = s.with_(control_input=0.0)
        measured = {}
        for target, slider in (("input", "data_input"), ("hidden", "data_hidden")):
            hi, lo = abs(sensitivity(s, slider)), abs(sensitivity(low, slider))
            measured[target] = "less" if lo < hi else "more" if lo > hi else "same"
            parts.append(f"{name}: abs(dh_new/d{target}) {hi:.3f}->{lo:.3f}")
        if any(measured[t] != c for t, c in claims.items()):
            bad.append(f"{name} ({', '.join(f'{t} {m}' for t, m in measured.items())})")
    return Measurement(not bad, "; ".join(parts),
                       f"claim fails for {'; '.join(bad)}" if bad else "")


_SWEEP = "x[0] and h[0] swept over [-2, 2] step 0.1"


def _describe(s: GRUSettings, sweep: str) -> str:
    fixed = ", ".join(f"{k}={v:g}" for k, v in s.to_dict().items()
                      if k not in ("data_input", "data_hidden"))
    return f"{fixed}; {sweep}"


def _settings_check(measure):
    def check(text):
        alts = parse_settings(text)
        results = [measure(BASE.with_(**alt)) for alt in alts]
        settings = " ; or ".join(_describe(BASE.with_(**alt), _SWEEP) for alt in alts)
        holds = all(m.holds for m in results)
        derived = " ; or ".join(m.derived for m in results)
        ce = " ; or ".join(m.counterexample for m in results if m.counterexample)
        return Measurement(holds, derived, ce), settings
    return check


@dataclass(frozen=True)
class Exercise:
    id: str
    question: str
    criterion: str  # what the numbers must show
    check: Callable[[str], tuple[Measurement, str]]


def _gates(text):
    configs = configurations()
    return (check_gates(parse_gates(text), configs),
            "each configuration of the homework's answers to 6.1-6.4 with control_input=0")


def _dependence(text):
    configs = configurations()
    return (check_dependence_claim(parse_dependence(text), configs),
            "each configuration of the homework's answers to 6.1-6.4 at x[0]=h[0]=0, "
            "control input 2 vs 0, central differences")


EXERCISES = {
    e.id: e
    for e in (
        Exercise("gru.exercise1.sum",
                 "6.1: which settings make the cell an attenuated sum of x[0] and h[0]?",
                 "n and h_new rise with x[0] and with h[0]; at x[0]=h[0]=2 both >= 1 - tol",
                 _settings_check(check_sum)),
        Exercise("gru.exercise2.difference",
                 "6.2: which new-content weights make n the attenuated difference?",
                 "n rises with x[0], falls with h[0]; at x[0]=h[0]=2 abs(n), abs(h_new) <= tol",
                 _settings_check(check_difference)),
        Exercise("gru.exercise3.memory",
                 "6.3: which weights make h_new copy h[0] and ignore the new content?",
                 "max abs(h_new[0] - h[0]) over the slider grid <= tol",
                 _settings_check(check_memory)),
        Exercise("gru.exercise4.pure_input",
                 "6.4: which weights make n ignore h[0] and use only the input?",
                 "max abs(n(x0,h0) - n(x0,0)) over the grid <= tol and n spans >= 1 over x[0]",
                 _settings_check(check_pure_input)),
        Exercise("gru.control.zero_input",
                 "6.5: with control input 0.0, what are the gates r[0], z[0]?",
                 "measured r[0], z[0] within 0.005 of the claim in every configuration",
                 _gates),
        Exercise("gru.control.dependence",
                 "6.5: with control input 0.0, does h_new depend less/more on input and h?",
                 "the claimed direction of abs(dh_new/dx[0]) and abs(dh_new/dh[0]) in every "
                 "configuration",
                 _dependence),
    )
}


def check_answer(qid: str, text: str) -> dict:
    """One row of the homework check table for answer `text` to question `qid`."""
    try:
        ex = EXERCISES[qid]
    except KeyError:
        raise ValueError(f"unknown GRU question id {qid!r}; ids: {', '.join(EXERCISES)}") \
            from None
    try:
        m, settings = ex.check(text)
    except ValueError as exc:
        raise ValueError(f"{qid}: {exc}") from None
    return dict(
        id=qid, question=ex.question, answer=text,
        verdict=Verdict.CORRECT if m.holds else Verdict.INCORRECT,
        derived=m.derived,
        # the check table's counterexample schema: where, what was answered, what should
        # hold, what was measured there
        counterexample=dict(sizes={"sliders": settings}, answered=text, derived=ex.criterion,
                            measured=m.counterexample) if not m.holds else None,
        reasoning=f"checked numerically on the 2-D GRU cell: {ex.criterion} (tol {TOL:g})",
        settings=settings,
    )


def questions() -> list[dict]:
    return [dict(id=e.id, question=e.question, assumptions=e.criterion,
                 symbols="slider names: " + ", ".join(n for n in _NAMES if "_" in n))
            for e in EXERCISES.values()]


def exercise_rows(answers: dict[str, str] | None = None) -> list[dict]:
    """Rows for `answers` (id -> text); the homework's own answers by default."""
    answers = homework_answers() if answers is None else answers
    return [check_answer(qid, text) for qid, text in answers.items()]


def exercise_table(answers: dict[str, str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(exercise_rows(answers))
