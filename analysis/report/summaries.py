"""The report's summaries: pure functions from the tables the stages write (DataFrames) to a
small table and the findings computed from its numbers. No files, no figures: every
summary is unit-tested on hand-made DataFrames with known answers.

A new summary is one function here returning a `Summary` plus one `section(...)` call in
`analysis.report.render`. Thresholds and conventions come from their owners (the noise
threshold from `analysis.timing`, the FLOP convention from `analysis.formulas`), and the
model families from the architecture table's flags (`family`: `loop`, `scan`,
`has_attention`), never from
model names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.timing import NOISE_THRESHOLD

MIB = 2**20


@dataclass
class Summary:
    """A section's key table and the findings its numbers support (full sentences)."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    findings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- helpers


def _known(model) -> bool:
    from analysis.architectures import ARCHITECTURES

    return model in ARCHITECTURES


def _arch(model: str):
    from analysis.architectures import architecture

    return architecture(model)


FAMILIES = {"loop": "recurrent loops", "scan": "parallel scans", "attention": "attention models"}


def family(model) -> str | None:
    """How a model's forward pass runs over T, from the architecture table's flags: "loop"
    (one dependent step per position), "scan" (a parallel scan, log depth in T) or
    "attention"; None for a name the table does not know."""
    if not _known(model):
        return None
    arch = _arch(model)
    return ("attention" if arch.has_attention else "scan" if arch.scan
            else "loop" if arch.loop else None)


def by_family(frame: pd.DataFrame, column: str = "model") -> dict[str, pd.DataFrame]:
    """The rows of each family (FAMILIES order) that has any."""
    kinds = frame[column].map(family) if not frame.empty else pd.Series(dtype=object)
    return {k: frame[kinds.eq(k)] for k in FAMILIES if kinds.eq(k).any()}


def loglog_slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x): the exponent k in y ~ x^k."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(np.log(x)) == 0:
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _ok(frame: pd.DataFrame | None) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    return frame[frame["status"].eq("ok")] if "status" in frame.columns else frame


def _flag(series: pd.Series) -> pd.Series:
    """A boolean column read back from CSV (True/False, "True"/"False", 1/0, blanks)."""
    return series.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))


def _range(lo: float, hi: float, fmt: str) -> str:
    a, b = format(lo, fmt), format(hi, fmt)
    return a if a == b else f"{a} to {b}"


def _names(values: Iterable) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values))


def growth_words(slope: float) -> str:
    """How an exponent reads: the words a finding uses for time ~ T^slope."""
    if not np.isfinite(slope):
        return "not measured"
    if slope < 0.15:
        return "about flat"
    if slope < 0.85:
        return "sublinear"
    if slope <= 1.15:
        return "about linear"
    if slope < 1.85:
        return "between linear and quadratic"
    if slope <= 2.15:
        return "about quadratic"
    return "faster than quadratic"


def _growth_range(lo: float, hi: float) -> str:
    a, b = growth_words(lo), growth_words(hi)
    return a if a == b else f"from {a} to {b}"


# ---------------------------------------------------------------------------- FLOPs


def measured_columns(flops: pd.DataFrame) -> list[str]:
    """The counters' columns of a reconciliation table: measured_torch, then measured_<name>
    of every second counter it holds (analysis.counters.FORWARD_COUNTERS when written)."""
    return [c for c in flops.columns if c.startswith("measured_")]


def second_counter_columns(flops: pd.DataFrame) -> list[str]:
    return [c for c in measured_columns(flops) if c != "measured_torch"]


def counter_description(column: str) -> str:
    """Who counted `column` (measured_<name>) and how: the registered counter's description,
    else its name."""
    from analysis.counters import FORWARD_COUNTERS

    name = column.removeprefix("measured_")
    counter = FORWARD_COUNTERS.get(name)
    return counter.description if counter is not None else name


def flops_summary(flops: pd.DataFrame | None, counter_notes: Sequence[str] = ()) -> Summary:
    """Predicted against measured FLOPs per model and quantity. `counter_notes`: how the
    PyTorch counter was configured (analysis.trace.counter_notes(), or the notes
    recorded with the rows); the finding says that CPU flash rows rely on it."""
    ok = _ok(flops)
    if ok.empty or "verdict" not in ok.columns:
        return Summary()
    exact = ok["verdict"].eq("exact")
    table = (ok.assign(exact=exact)
             .groupby(["model", "quantity"], sort=False)
             .agg(rows=("exact", "size"), exact=("exact", "sum"),
                  ratio_min=("ratio_torch", "min"), ratio_max=("ratio_torch", "max"))
             .reset_index())
    findings = [f"FLOPs: {int(exact.sum())} of {len(ok)} reconciliation rows "
                f"({ok['model'].nunique()} models, {ok['quantity'].nunique()} quantities) have "
                "predicted matmul FLOPs equal to PyTorch's counter exactly (ratio "
                f"{_range(ok['ratio_torch'].min(), ok['ratio_torch'].max(), '.6f')})."]
    sizes = [s for s in ("B", "T", "D", "L") if s in ok.columns and ok[s].notna().any()]
    if sizes:
        findings[0] += " Grid: " + ", ".join(
            f"{s} {_range(ok[s].min(), ok[s].max(), '.0f')}" for s in sizes) + "."
    cpu = ok["env_device"].eq("cpu") if "env_device" in ok.columns else pd.Series(True, ok.index)
    flash = ok["attention"].astype(str).eq("flash") if "attention" in ok.columns else cpu & False
    if (flash & cpu).any():
        n = int((flash & cpu).sum())
        note = "; ".join(dict.fromkeys(counter_notes)) or "no counter note recorded"
        findings.append(f"The {n} CPU flash-attention rows are counted with the project's SDPA "
                        "mapping (PyTorch's raw counter gives 0 FLOPs for CPU flash SDPA): "
                        f"{note}.")
    for column in second_counter_columns(ok):
        counted = ok.dropna(subset=[column])
        if counted.empty:
            continue
        same = int((counted[column] == counted["predicted"]).sum())
        findings.append(f"The forward counts of {counter_description(column)} equal the "
                        f"prediction on {same} of {len(counted)} rows.")
    failed = len(flops) - len(ok) if flops is not None else 0
    if failed:
        findings.append(f"{failed} reconciliation cells failed (see flops_reconciliation.csv).")
    return Summary(table, findings)


# ---------------------------------------------------------------------------- time


def t_sweep_forward(timing: pd.DataFrame | None) -> pd.DataFrame:
    """The forward-pass T sweep of the models (suite test_model_phase)."""
    ok = _ok(timing)
    if ok.empty:
        return ok
    return ok[ok["suite"].eq("test_model_phase") & ok["sweep"].eq("T") & ok["phase"].eq("forward")]


def _timed(row: pd.Series, column: str):
    """row[column], a time or a time per token of a timing row, to the digits the row's 95%
    interval of its median supports (the number itself where the row has no interval)."""
    value = row[column]
    if pd.isna(row.get("ci_low_s")) or pd.isna(row.get("ci_high_s")) or not row["median_s"] > 0:
        return value
    scale = value / row["median_s"]
    return supported(value, row["ci_low_s"] * scale, row["ci_high_s"] * scale, interval=False)


def slope_summary(timing: pd.DataFrame | None) -> Summary:
    """Exponents of time, FLOPs and predicted depth against T (forward pass), per variant,
    and what they say: recurrent loops (their chain grows with T) against attention models,
    with the parallel scans (log depth) apart from both."""
    fwd = t_sweep_forward(timing)
    if fwd.empty:
        return Summary()
    rows = []
    for variant, sub in fwd.groupby("variant", sort=False):
        sub = sub.sort_values("T")
        rows.append({
            "variant": variant, "model": sub["model"].iloc[0],
            "T": f"{int(sub['T'].iloc[0])}..{int(sub['T'].iloc[-1])}",
            "time slope": loglog_slope(sub["T"], sub["median_s"]),
            "FLOP slope": loglog_slope(sub["T"], sub["predicted_flops"]),
            "depth slope": loglog_slope(sub["T"], sub["predicted_depth"]),
            "s/token at min T": _timed(sub.iloc[0], "seconds_per_token"),
            "s/token at max T": _timed(sub.iloc[-1], "seconds_per_token"),
        })
    table = pd.DataFrame(rows)
    for col in ("time slope", "FLOP slope", "depth slope"):
        table[col] = table[col].round(2) + 0.0  # + 0.0: no "-0"
    measured = table.dropna(subset=["time slope"])
    if measured.empty:
        return Summary(table.drop(columns="model"))
    groups = by_family(measured)
    parts = []
    for kind, g in groups.items():
        t_lo, t_hi = g["time slope"].min(), g["time slope"].max()
        parts.append(
            f"{FAMILIES[kind]} ({_names(g['variant'])}): time ~ T^{_range(t_lo, t_hi, '.2f')} "
            f"({_growth_range(t_lo, t_hi)}), FLOPs ~ T^"
            f"{_range(g['FLOP slope'].min(), g['FLOP slope'].max(), '.2f')}, depth ~ T^"
            f"{_range(g['depth slope'].min(), g['depth slope'].max(), '.2f')}")
    text = (f"Time vs T (forward pass, T {measured['T'].iloc[0]}): " + "; ".join(parts)
            + ".")
    gap = measured["time slope"] - measured["FLOP slope"]
    slower, faster = measured[gap < -0.15], measured[gap > 0.15]
    if slower.empty and faster.empty and gap.notna().any():
        text += " Every variant's time follows its FLOPs (exponents within 0.15)."

    def listed(frame):
        return ", ".join(f"{r['variant']} (T^{r['time slope']:.2f} against FLOPs "
                         f"T^{r['FLOP slope']:.2f})" for _, r in frame.iterrows())

    if not slower.empty:
        text += (f" Time grows slower than the FLOPs for {listed(slower)}: costs that do not "
                 "grow with T (per-call overhead) weigh at these sizes.")
    if not faster.empty:
        text += (f" Time grows faster than the FLOPs for {listed(faster)}: the FLOP count "
                 "does not explain it (check the noisy flags).")
    if "loop" in groups and "attention" in groups:
        text += _loops_against_attention(groups["loop"], groups["attention"])
    return Summary(table.drop(columns="model"), [text])


def _loops_against_attention(rec: pd.DataFrame, att: pd.DataFrame) -> str:
    """Whether the loops' time grows faster with T than the attention models' (mean
    exponents), and what the depth and FLOP exponents say about it."""
    gap = rec["time slope"].mean() - att["time slope"].mean()
    chain = rec["depth slope"].mean() - att["depth slope"].mean()
    work = att["FLOP slope"].mean() - rec["FLOP slope"].mean()
    if gap > 0.25:
        return (f" The recurrent loops' time grows faster (by T^{gap:.2f} on average)"
                + (", as their longer chain (depth exponent higher by "
                   f"{chain:.2f}) predicts." if chain > 0.25 else "."))
    if gap < -0.25:
        return (f" The attention models' time grows faster (by T^{-gap:.2f} on average)"
                + (f": their FLOPs grow faster with T (exponent higher by {work:.2f}); the "
                   "recurrent chain does not show." if work > 0.1 else
                   ", which their FLOP exponents do not explain."))
    return (f" Both families grow alike (mean exponents within {abs(gap):.2f})"
            + (f": on this device the recurrent chain, whose depth exponent is higher "
               f"by {chain:.2f}, does not show as a faster growth." if chain > 0.25 else "."))


def noise_summary(timing: pd.DataFrame | None, threshold: float = NOISE_THRESHOLD) -> Summary:
    """How many timings the bench flagged noisy (IQR/median above the threshold), per variant."""
    ok = _ok(timing)
    if ok.empty or "noisy" not in ok.columns:
        return Summary()
    noisy = _flag(ok["noisy"])
    table = (ok.assign(noisy=noisy).groupby("variant", sort=False)
             .agg(timings=("noisy", "size"), noisy=("noisy", "sum")).reset_index())
    finding = (f"Noise: {int(noisy.sum())} of {len(ok)} timings have IQR/median above "
               f"{threshold:.0%} (flagged `noisy` in timing.csv, hollow markers in the "
               "figures); read those with care.")
    return Summary(table, [finding])


def failure_summary(timing: pd.DataFrame | None) -> Summary:
    if timing is None or timing.empty:
        return Summary()
    failed = timing[~timing["status"].eq("ok")]
    if failed.empty:
        return Summary()
    n, shown = len(failed), ", ".join(failed["id"].astype(str).head(5))
    more = f" and {n - 5} more" if n > 5 else ""
    what = ("1 bench configuration failed and is listed in timing.csv with its error"
            if n == 1 else
            f"{n} bench configurations failed and are listed in timing.csv with their error")
    return Summary(failed[["id", "status"]].reset_index(drop=True), [f"{what}: {shown}{more}."])


def missing_summary(timing: pd.DataFrame | None, expected_ids: Sequence[str],
                    grid: str) -> Summary:
    """Workloads of the grid with no row in timing.csv (a truncated or interrupted bench).
    Ids are compared as multisets: a workload timed by two suites (the homework loop in the
    model sweep and in the torch.nn comparison) is expected twice."""
    have = Counter(timing["id"].astype(str)) if timing is not None and "id" in timing else {}
    missing = []
    for i, n in Counter(map(str, expected_ids)).items():
        missing += [i] * max(0, n - have.get(i, 0))
    total = len(expected_ids)
    if not missing:
        return Summary(findings=[f"Bench complete: all {total} workloads of the `{grid}` grid "
                                 "have a row in timing.csv."])
    table = pd.DataFrame({"workload without timing": missing})
    return Summary(table, [f"Truncated bench: {len(missing)} of {total} workloads of the "
                           f"`{grid}` grid have no timing (listed under Bench coverage); the "
                           "figures and slopes use only the rest."])


@dataclass(frozen=True)
class Ceiling:
    """The device's FLOP/s ceiling, the one every table, sentence and figure of the report
    uses: an n^3 matmul timed in the run (ceiling.csv), its median round's rate (the statistic
    of every workload's time) with the median's 95% interval, the fastest round beside it."""

    flops_per_second: float
    ci: tuple[float, float] | None = None
    n: int | None = None
    dtype: str = "float32"
    rounds: int | None = None
    peak: float | None = None

    def rate(self) -> str:
        """The rate in words, to the digits its interval supports."""
        if self.ci is None:
            return f"{self.flops_per_second:.2g} FLOP/s"
        return f"{supported(self.flops_per_second, *self.ci)} FLOP/s"

    def describe(self) -> str:
        """What the ceiling is, for the report's text."""
        if self.ci is None:  # a run made before the median rule
            return (f"Ceiling: a {self.n}^3 {self.dtype} matmul ran at {self.rate()} in its "
                    "fastest round.")
        return (f"Ceiling: a {self.n}^3 {self.dtype} matmul ran at {self.rate()} (median of "
                f"{self.rounds} rounds, 95% interval; the fastest round {self.peak:.2g}). "
                "Every fraction, figure and roof of this report uses the median: the same "
                "statistic as each workload's time.")


def ceiling_of(ceiling: pd.DataFrame | None) -> Ceiling | None:
    """The ceiling ceiling.csv holds (None where the run has none)."""
    if ceiling is None or ceiling.empty or "flops_per_second" not in ceiling.columns:
        return None
    c = ceiling.iloc[0]
    ci = ((float(c["flops_per_second_ci_low"]), float(c["flops_per_second_ci_high"]))
          if "flops_per_second_ci_low" in ceiling.columns else None)
    rounds, peak = c.get("rounds"), c.get("peak_flops_per_second")
    return Ceiling(float(c["flops_per_second"]), ci, int(c["n"]), str(c["dtype"]),
                   None if pd.isna(rounds) else int(rounds),
                   None if pd.isna(peak) else float(peak))


FAMILY_ONE = {"loop": "recurrent-loop", "scan": "parallel-scan", "attention": "attention"}


def ceiling_summary(timing: pd.DataFrame | None, ceiling: Ceiling | None) -> Summary:
    """Best achieved FLOP/s (model FLOPs) per variant as a fraction of the measured matmul
    ceiling, both medians; with the intervals of both, the fraction's interval, and every
    number to the digits its interval supports."""
    ok = _ok(timing)
    if ok.empty or ceiling is None or not ceiling.flops_per_second > 0:
        return Summary()
    models = ok[ok["suite"].eq("test_model_phase")].dropna(subset=["flops_per_second"])
    if models.empty:
        return Summary()
    best = models.loc[models.groupby(["variant", "model"], sort=False)["flops_per_second"]
                      .idxmax()].reset_index(drop=True)
    c = ceiling.flops_per_second
    best["fraction"] = best["flops_per_second"] / c
    if ceiling.ci is not None and "ci_low_s" in best.columns:
        rate_lo = best["flops_per_second"] * best["median_s"] / best["ci_high_s"]
        rate_hi = best["flops_per_second"] * best["median_s"] / best["ci_low_s"]
        best["lo"], best["hi"] = rate_lo / ceiling.ci[1], rate_hi / ceiling.ci[0]
        rates = [supported(r, lo, hi) for r, lo, hi in
                 zip(best["flops_per_second"], rate_lo, rate_hi)]
        shown = [supported(f, lo, hi, percent=True)
                 for f, lo, hi in zip(best["fraction"], best["lo"], best["hi"])]
        values = [supported(f, lo, hi, percent=True, interval=False)
                  for f, lo, hi in zip(best["fraction"], best["lo"], best["hi"])]
    else:
        rates = [f"{r:.2g}" for r in best["flops_per_second"]]
        shown = values = [f"{f:.0%}" for f in best["fraction"]]
    best = best.assign(shown=shown, value=values)
    parts = []
    for kind, g in by_family(best).items():
        top = g.loc[g["fraction"].idxmax()]
        low = g.loc[g["fraction"].idxmin()]
        spread = (f" (per variant {low['value']} to {top['value']})" if len(g) > 1 else
                  f" ({top['variant']})")
        parts.append(f"the best {FAMILY_ONE[kind]} workload reaches {top['shown']}{spread}")
    text = (f"Achieved FLOP/s against the measured matmul ceiling of {ceiling.rate()} (the "
            "median of its rounds, ceiling.csv): " + ", ".join(parts) + ".")
    fam = best["model"].map(family)
    loops, att = best[fam.eq("loop")]["fraction"], best[fam.eq("attention")]["fraction"]
    if not loops.empty and not att.empty and loops.max() < att.max():
        text += (" The recurrent loops issue many small (B x D) @ (D x D) matmuls one after "
                 "another, which keeps them further from the ceiling.")
    if best["fraction"].max() > 1:
        text += (" A workload above 100% means the ceiling round ran while the machine was "
                 "busier than during that workload: the ceiling is a measurement too.")
    table = pd.DataFrame({"variant": best["variant"], "best FLOP/s [95% CI]": rates,
                          "fraction of ceiling [95% CI]": best["shown"]})
    return Summary(table, [text])


def depth_time_summary(timing: pd.DataFrame | None) -> Summary:
    """Seconds per FLOP (the inverse of achieved FLOP/s) against predicted sequential depth:
    a least-squares line in log-log over every model workload. A positive exponent means
    workloads with a longer chain of dependent matmuls get less done per second."""
    ok = _ok(timing)
    if ok.empty:
        return Summary()
    data = ok[ok["suite"].eq("test_model_phase")].dropna(
        subset=["predicted_depth", "predicted_flops", "median_s"])
    data = data[(data["predicted_depth"] > 0) & (data["predicted_flops"] > 0)]
    if len(data) < 2:
        return Summary()
    x = np.log(data["predicted_depth"].astype(float))
    y = np.log(data["median_s"].astype(float) / data["predicted_flops"].astype(float))
    if np.ptp(x) == 0:
        return Summary()
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    r2 = 1 - float((resid**2).sum()) / float(((y - y.mean()) ** 2).sum() or np.inf)
    table = pd.DataFrame([{"points": len(data), "exponent": slope, "intercept": intercept,
                           "R^2": r2,
                           "depth": f"{int(data['predicted_depth'].min())}.."
                                    f"{int(data['predicted_depth'].max())}"}])
    if slope > 0.1:
        what = (f"seconds per FLOP grow as depth^{slope:.2f}: the workloads with longer "
                "chains of dependent matmuls get fewer FLOPs done per second")
    elif slope < -0.1:
        what = (f"seconds per FLOP fall as depth^{slope:.2f}: the deeper workloads run their "
                "FLOPs faster here")
    else:
        what = f"seconds per FLOP barely change with depth (exponent {slope:.2f})"
    strength = "a close fit" if r2 >= 0.7 else "a loose fit" if r2 >= 0.3 else "a poor fit"
    text = (f"Time per FLOP vs sequential depth ({len(data)} model workloads, depth "
            f"{table['depth'].iloc[0]}): {what}; R^2 = {r2:.2f} ({strength}). Deep workloads "
            "here are also the ones with small matmuls, so this is a correlation, not a "
            "measurement of the chain's cost alone.")
    return Summary(table, [text])


def reference_summary(ref: pd.DataFrame | None) -> Summary:
    """The two sides' medians (the ratio itself is measured in pairs: ratio_summary)."""
    if ref is None or ref.empty:
        return Summary()
    return Summary(ref.drop(columns=[c for c in ("speedup",) if c in ref.columns]))


# ---------------------------------------------------------------------------- ratios


def sig2(x: float) -> str:
    """Two significant figures, the precision a ratio measured to a few percent carries."""
    return f"{float(x):.2g}"


def with_interval(x, lo, hi, digits: int = 2) -> str:
    """'1.9 [1.8, 2.0]': a value with its 95% interval, each to `digits` significant figures,
    trailing zeros kept ('3.0 [2.9, 3.2]', not '3 [2.9, 3.2]')."""
    def show(v) -> str:
        text = f"{float(v):#.{digits}g}"
        return text.rstrip(".") if "e" not in text else text

    return f"{show(x)} [{show(lo)}, {show(hi)}]"


def target_text(targets) -> str:
    """' (+-2%)': the precision target(s) the medians were timed to (the half-width of the
    median's 95% interval, as a fraction of it), ' (+-2% to +-5%)' if they differ, '' where
    none was recorded (bench JSON older than the record)."""
    values = sorted({float(t) for t in targets if t is not None and np.isfinite(float(t))})
    if not values:
        return ""
    shown = [f"+-{v:.0%}" if round(v * 100, 6).is_integer() else f"+-{v:.1%}" for v in values]
    return f" ({shown[0]})" if len(shown) == 1 else f" ({shown[0]} to {shown[-1]})"


def supported_digits(value, lo, hi, most: int = 3) -> int:
    """Significant digits of `value` that its 95% interval [lo, hi] supports: the last digit
    printed is the first one the interval's half-width reaches (1 to `most`; `most` for an
    interval of zero width, 2 where there is none)."""
    v, half = abs(float(value)), (float(hi) - float(lo)) / 2
    if not (np.isfinite(v) and v > 0 and np.isfinite(half) and half >= 0):
        return 2
    if half == 0:
        return most
    return int(min(most, max(1, np.floor(np.log10(v)) - np.floor(np.log10(half)) + 1)))


def _to_place(x: float, digits: int, of: float) -> str:
    """x rounded at the decimal place of the last of `digits` significant digits of `of`
    (at least one significant digit of x), printed without trailing zeros or exponents
    a reader would not expect ("80", not "8e+01")."""
    x = float(x)
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    own = digits - int(np.floor(np.log10(abs(of))) - np.floor(np.log10(abs(x))))
    return f"{float(f'{x:.{max(1, own)}g}'):g}"


def supported(value, lo, hi, percent: bool = False, interval: bool = True) -> str:
    """A measured value to the digits its interval supports, its interval rounded at the
    same decimal place: '0.27 [0.24, 0.29]', or as percentages '27% [24%, 29%]'."""
    k, unit = (100, "%") if percent else (1, "")
    digits = supported_digits(value, lo, hi)
    shown = [_to_place(float(x) * k, digits, float(value) * k) + unit for x in (value, lo, hi)]
    return f"{shown[0]} [{shown[1]}, {shown[2]}]" if interval else shown[0]


def ratio_summary(ratios: pd.DataFrame | None) -> Summary:
    """Every paired ratio with its 95% interval (two significant figures), and per comparison
    the range over its configurations and how many intervals met the precision target."""
    if ratios is None or ratios.empty:
        return Summary()
    table = pd.DataFrame({
        "comparison": ratios["comparison"], "measure": ratios["measure"],
        "configuration": ratios["configuration"], "device": ratios["device"],
        "A/B [95% CI]": [with_interval(r, lo, hi) for r, lo, hi in
                         zip(ratios["ratio"], ratios["ci_low"], ratios["ci_high"])],
        "pairs": ratios["pairs"].astype(int),
        "CI within target": ratios["converged"],
    })
    findings = []
    for (comparison, measure), g in ratios.groupby(["comparison", "measure"], sort=False):
        lo_row, hi_row = g.loc[g["ratio"].idxmin()], g.loc[g["ratio"].idxmax()]
        span = (with_interval(lo_row["ratio"], lo_row["ci_low"], lo_row["ci_high"])
                if len(g) == 1 else
                f"from {with_interval(lo_row['ratio'], lo_row['ci_low'], lo_row['ci_high'])} "
                f"({lo_row['configuration']}) to "
                f"{with_interval(hi_row['ratio'], hi_row['ci_low'], hi_row['ci_high'])} "
                f"({hi_row['configuration']})")
        text = f"{comparison}, {measure}: A/B {span}"
        if measure == "time":
            wide = int((~g["converged"].astype(bool)).sum())
            text += (f"; {wide} of {len(g)} intervals wider than the precision target"
                     if wide else "")
        findings.append(text + ".")
    return Summary(table, findings)


def timing_quality_summary(timing: pd.DataFrame | None) -> Summary:
    """How many medians met the precision target, how many drifted, and the machine's load
    (load average and CPU time stolen by the hypervisor) while the bench ran."""
    ok = _ok(timing)
    if ok.empty or "ci_low_s" not in ok.columns or ok["ci_low_s"].isna().all():
        return Summary()
    n = len(ok)
    converged = int(_flag(ok["converged"]).sum())
    drifted = int(_flag(ok["drifted"]).sum())
    width = ((ok["ci_high_s"] - ok["ci_low_s"]) / 2 / ok["median_s"]).dropna()
    load = pd.concat([ok["load_before"], ok["load_after"]]).dropna()
    steal = ok["steal_fraction"].dropna()
    table = pd.DataFrame([{
        "timings": n, "CI within target": converged, "drifted": drifted,
        "median CI half-width": f"{width.median():.1%}" if not width.empty else "",
        "rounds": f"{int(ok['rounds'].min())}..{int(ok['rounds'].max())}",
        "load average": (f"{load.min():.2f}..{load.max():.2f}" if not load.empty else ""),
        "max CPU steal": f"{steal.max():.1%}" if not steal.empty else "",
    }])
    targets = ok["ci_target"] if "ci_target" in ok.columns else ()
    half = (f"median half-width {width.median():.1%}" if not width.empty
            else "no interval with both ends")
    text = (f"Timing quality: {converged} of {n} medians have a 95% interval within the "
            f"precision target{target_text(targets)} ({half}); {drifted} of {n} "
            "drifted during their run (first and last quarter of rounds with disjoint "
            "intervals)")
    if not load.empty:
        text += f"; the 1-minute load average was {load.min():.2f} to {load.max():.2f}"
    if not steal.empty:
        text += f"{', ' if not load.empty else '; '}CPU steal at most {steal.max():.1%}"
    return Summary(table, [text + "."])


# ---------------------------------------------------------------------------- attention


def attention_summary(att: pd.DataFrame | None) -> Summary:
    """Flash (SDPA) against manual attention per T: times, peak memory in MiB, ratios and
    how each grows with T."""
    ok = _ok(att)
    if ok.empty:
        return Summary()
    wide = ok.pivot_table(index="T", columns="kernel", values=["median_s", "peak_memory_bytes"])
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    wide = wide.reset_index()
    need = {"median_s_flash", "median_s_manual", "peak_memory_bytes_flash",
            "peak_memory_bytes_manual"}
    if not need <= set(wide.columns):
        return Summary(wide)
    table = pd.DataFrame({
        "T": wide["T"].astype(int),
        "flash s": wide["median_s_flash"], "manual s": wide["median_s_manual"],
        "flash MiB": wide["peak_memory_bytes_flash"] / MIB,
        "manual MiB": wide["peak_memory_bytes_manual"] / MIB,
    })
    if len(table) < 2:
        return Summary(table)
    mf = loglog_slope(table["T"], table["flash MiB"])
    mm = loglog_slope(table["T"], table["manual MiB"])
    text = (f"Attention's peak memory grows as T^{round(mm, 2) + 0.0:.2f} with the manual "
            f"kernel and T^{round(mf, 2) + 0.0:.2f} with SDPA")  # + 0.0: no "-0.00"
    text += (": the manual path materializes the (B, H, T, T) scores, SDPA does not "
             "(the time and memory ratios are under Paired ratios)."
             if mm > mf + 0.3 else " (the ratios are under Paired ratios).")
    return Summary(table, [text])


# ---------------------------------------------------------------------------- depth


def depth_summary(depth: pd.DataFrame | None) -> Summary:
    ok = _ok(depth)
    if ok.empty or "verdict" not in ok.columns:
        return Summary()
    exact = ok["verdict"].eq("exact")
    table = (ok.assign(exact=exact)
             .groupby(["model", "attention", "quantity"], dropna=False, sort=False)
             .agg(rows=("exact", "size"), exact=("exact", "sum"), formula=("formula", "first"))
             .reset_index())
    findings = [f"Depth: predicted and traced critical-path matmul depth agree on "
                f"{int(exact.sum())} of {len(ok)} rows."]
    fwd = ok[ok["quantity"].eq("forward")]
    grows, flat = [], []
    for (model, attention), sub in fwd.groupby(["model", "attention"], dropna=False, sort=False):
        name = model if pd.isna(attention) or attention == "" else f"{model}-{attention}"
        per_l = [g for _, g in sub.groupby("L") if g["T"].nunique() > 1]
        if not per_l:
            continue
        varies = any(g.sort_values("T")["measured"].nunique() > 1 for g in per_l)
        (grows if varies else flat).append(name)
    if grows or flat:
        findings.append("The forward pass's traced depth "
                        + (f"grows with T for {', '.join(grows)}" if grows else "")
                        + ("; " if grows and flat else "")
                        + (f"does not change with T for {', '.join(flat)}" if flat else "")
                        + ".")
    return Summary(table, findings)


# ---------------------------------------------------------------------------- homework check

_STRING = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
_VALUE = rf"({_STRING}|-?[0-9][0-9.eE+-]*)"
_PAIR = re.compile(r"""['"](\w+)['"]\s*:\s*""" + _VALUE)
_SIZES = re.compile(r"""['"]sizes['"]\s*:\s*\{((?:""" + _STRING + r"""|[^}])*)\}""")


def _unquote(v: str) -> str:
    return v[1:-1] if v[:1] in "'\"" and v[-1:] == v[:1] else v


def format_counterexample(text) -> str:
    """The checker's counterexample record as one readable phrase ("at D=4, L=1, T=2: answered
    256, derived 352, measured 352"); read with regular expressions, never evaluated."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or str(text).strip() == "":
        return ""
    text = str(text)
    sizes = _SIZES.search(text)
    if sizes is None:
        return text
    pairs = [f"{k}={_unquote(v)}" for k, v in _PAIR.findall(sizes.group(1))]
    rest = text[:sizes.start()] + text[sizes.end():]
    values = dict(_PAIR.findall(rest))
    shown = [f"{k} {_unquote(values[k])}" for k in ("answered", "derived", "measured")
             if k in values]
    return f"at {', '.join(pairs)}: " + ", ".join(shown)


HEAD_MATMULS = {"forward": 1, "backward": 1, "train": 2}  # the vocabulary head on the chain


def _expr(text):
    from analysis.expr_parser import parse_answer

    try:
        return parse_answer(str(text))
    except ValueError:
        return None


def depth_vs_homework(check: pd.DataFrame | None, depth: pd.DataFrame | None) -> list[str]:
    """Why the depth table's formula for a model and quantity differs from the homework's
    derived sequential-matmul count: the difference, computed, at the depth table's layers."""
    import sympy as sp

    from analysis.formulas import SYMBOLS

    if check is None or depth is None or check.empty or "formula" not in _ok(depth).columns:
        return []
    ok = _ok(depth)
    out = []
    for _, row in check.iterrows():
        parts = str(row["id"]).split(".")
        if len(parts) != 3 or parts[2] != "sequential_matmuls":
            continue
        model, quantity = parts[0], parts[1]
        rows = ok[ok["model"].eq(model) & ok["quantity"].eq(quantity)]
        if rows.empty:
            continue
        ours, theirs = _expr(rows["formula"].iloc[0]), _expr(row["derived"])
        if ours is None or theirs is None:
            continue
        layers = sorted(set(rows["L"].astype(int)))
        fixed = {SYMBOLS["L"]: layers[0]} if len(layers) == 1 else {}
        diff = sp.simplify((ours - theirs).xreplace(fixed))
        if diff == 0:
            continue
        at = f" at L = {layers[0]}" if fixed else ""
        text = (f"`{row['id']}`: the depth table's {model} {quantity} depth "
                f"`{rows['formula'].iloc[0]}` and the homework's derived `{row['derived']}` "
                f"differ by {diff}{at}")
        if diff.is_Integer and int(diff) == HEAD_MATMULS.get(quantity):
            text += (": the depth table traces the whole model, vocabulary head included "
                     f"({int(diff)} matmul(s) on the chain), while the homework's question "
                     "leaves the vocabulary head (the classifier) out.")
        else:
            text += "."
        out.append(text)
    return out


def check_summary(check: pd.DataFrame | None, depth: pd.DataFrame | None = None) -> Summary:
    if check is None or check.empty:
        return Summary()
    cols = [c for c in ("id", "answer", "verdict", "derived") if c in check.columns]
    table = check[cols].copy()
    if "counterexample" in check.columns:
        table["counterexample"] = check["counterexample"].map(format_counterexample)
    correct = check["verdict"].eq("correct")
    wrong = check[~correct]
    findings = [f"Homework answers: {int(correct.sum())} of {len(check)} hold; not correct: "
                f"{', '.join(wrong['id']) if not wrong.empty else 'none'}."]
    findings += depth_vs_homework(check, depth)
    return Summary(table, findings)


# ---------------------------------------------------------------------------- derived formulas

MEASURE_WORDS = {"flops": "FLOPs", "params": "parameters", "bytes": "bytes", "depth": "depth"}


def _derived_label(row: pd.Series, kv: bool) -> str:
    quantity = str(row["quantity"]) + (" (KV cache)" if kv else "")
    measure = MEASURE_WORDS.get(str(row["measure"]), str(row["measure"]))
    return f"{row['model']} {quantity} {measure}"


def derived_summary(derived: pd.DataFrame | None) -> Summary:
    """The formulas derived from counts (derived_formulas.csv) beside the hand-written ones:
    how many are equal (expanded difference zero) and verified on held-out sizes; every
    formula that differs is named with its difference, every unverified one with where its
    held-out count failed, and every derivation that failed with its error."""
    if derived is None or derived.empty:
        return Summary()
    ok = _ok(derived)
    failed = derived[~derived["status"].eq("ok")] if "status" in derived.columns \
        else derived.iloc[:0]
    findings = []
    table = pd.DataFrame()
    if not ok.empty:
        kv = _flag(ok["kv_cache"]) if "kv_cache" in ok.columns else pd.Series(False, ok.index)
        equal, verified = _flag(ok["equal"]), _flag(ok["verified"])
        labels = pd.Series([_derived_label(r, k) for (_, r), k in zip(ok.iterrows(), kv)],
                           index=ok.index)
        table = pd.DataFrame({
            "model": ok["model"],
            "quantity": [str(q) + (" (KV cache)" if k else "") for q, k in zip(ok["quantity"],
                                                                             kv)],
            "measure": ok["measure"].map(lambda m: MEASURE_WORDS.get(str(m), str(m))),
            "varied": ok["varied"], "fixed": ok["fixed"], "derived": ok["derived"],
            "hand-written": ok["hand_written"], "equal": equal.map({True: "yes", False: "NO"}),
            "verified": verified.map({True: "yes", False: "NO"}), "points": ok["points"],
            "seconds": ok["seconds"]})
        if not equal.all():
            table.insert(7, "derived - hand-written", ok["difference"].fillna(""))
        if not verified.all():
            table["failure"] = ok["failure"].fillna("")
        n = len(ok)
        held = _names(ok["held_out"].astype(int)) if "held_out" in ok.columns else "?"
        def listed(one: str, many: str, values: pd.Series) -> str:
            names = list(dict.fromkeys(values))
            return f"{one if len(names) == 1 else many} {', '.join(map(str, names))}"

        models = ok["model"].nunique()
        scope = (f"{models} model{'s' if models != 1 else ''}; "
                 f"{listed('quantity', 'quantities', table['quantity'])}; "
                 f"{listed('measure', 'measures', table['measure'])}")
        counted = (f"{int(ok['points'].sum()):,} sizes counted in "
                   f"{float(ok['seconds'].sum()):.0f} s of counting")
        if equal.all() and verified.all():
            findings.append(f"Derived formulas: {n} of {n} formulas derived from counts alone "
                            f"({scope}) equal the hand-written ones, and all {n} were "
                            f"verified on {held} held-out sizes each ({counted}).")
        else:
            text = (f"Derived formulas: {int(equal.sum())} of {n} formulas derived from counts "
                    f"alone ({scope}) equal the hand-written ones")
            if not equal.all():
                text += "; not equal: " + "; ".join(
                    f"{labels[i]} (derived - hand-written = {ok.loc[i, 'difference']})"
                    for i in ok.index[~equal])
            findings.append(text + ".")
            if verified.all():
                findings.append(f"All {n} were verified on {held} held-out sizes each "
                                f"({counted}).")
            else:
                findings.append(
                    f"{int(verified.sum())} of {n} were verified on {held} held-out sizes "
                    "each; not verified: " + "; ".join(
                        f"{labels[i]} ({ok.loc[i, 'failure']})"
                        for i in ok.index[~verified]) + f" ({counted}).")
    if not failed.empty:
        findings.append(f"{len(failed)} derivation(s) failed (see derived_formulas.csv): "
                        + "; ".join(f"{r['cell']}: {r['status']}" for _, r in
                                    failed.iterrows()) + ".")
    return Summary(table, findings)


# ---------------------------------------------------------------------------- training


def training_summary(curves: pd.DataFrame | None, data: str | None = None) -> Summary:
    """Final losses of the short training runs, with the caveat the data carries: seeds,
    steps and corpus (`data`: the corpus of runs that did not record theirs)."""
    ok = _ok(curves)
    if ok.empty or "train_loss" not in ok.columns:
        return Summary()
    rows = []
    for model, sub in ok.groupby("model", sort=False):
        val = sub.dropna(subset=["val_loss"]) if "val_loss" in sub else sub.iloc[:0]
        rows.append({"model": model, "params": int(sub["params"].iloc[0]),
                     "steps": int(sub["step"].max()),
                     "final train loss": sub["train_loss"].iloc[-1],
                     "final val loss": val["val_loss"].iloc[-1] if not val.empty else np.nan,
                     "tokens/s": sub["tokens_per_s"].median()})
    table = pd.DataFrame(rows)
    seeds = ok["seed"].nunique() if "seed" in ok.columns else 1
    corpus = _names(ok["data"]) if "data" in ok.columns else (data or "unrecorded")
    steps = _names(table["steps"])
    caveat = (f"{'one seed' if seeds == 1 else f'{seeds} seeds'}, {steps} steps, "
              f"corpus {corpus}")
    if corpus == "builtin":
        caveat += " (the generated, synthetic children's stories)"
    ranked = table.dropna(subset=["final val loss"]).sort_values("final val loss")
    text = (f"Training (short runs: {caveat}; not converged, and one seed cannot separate "
            "models whose losses are close): final validation loss "
            + ", ".join(f"{r['model']} {r['final val loss']:.3f}" for _, r in table.iterrows())
            + " nats/char")
    text += (f"; lowest {ranked['model'].iloc[0]}." if not ranked.empty else ".")
    return Summary(table, [text])


# ---------------------------------------------------------------------------- devices


def device_slopes(devices_timing: pd.DataFrame | None) -> pd.DataFrame:
    """Forward time against T per variant on each device: the batch size, the log-log
    exponent and the time at the smallest and largest T (to the digits their intervals
    support)."""
    fwd = t_sweep_forward(devices_timing)
    if fwd.empty or "device_label" not in fwd.columns:
        return pd.DataFrame()
    rows = []
    for (device, variant), sub in fwd.groupby(["device_label", "variant"], sort=False):
        sub = sub.sort_values("T")
        batch = _names(sub["B"].astype(int)) if "B" in sub.columns else ""
        rows.append({"device": device, "variant": variant, "model": sub["model"].iloc[0],
                     "B": batch, "T": f"{int(sub['T'].iloc[0])}..{int(sub['T'].iloc[-1])}",
                     "time slope": round(loglog_slope(sub["T"], sub["median_s"]), 2) + 0.0,
                     "s at min T": _timed(sub.iloc[0], "median_s"),
                     "s at max T": _timed(sub.iloc[-1], "median_s")})
    return pd.DataFrame(rows)


def _slopes(g: pd.DataFrame) -> str:
    return "T^" + _range(g["time slope"].min(), g["time slope"].max(), ".2f")


def _follows(groups: dict[str, pd.DataFrame]) -> str | None:
    """What a device's forward time follows: "depth" where the loops grow about linearly
    and the attention models stay about flat, "FLOPs" where both grow about linearly."""
    if "loop" not in groups or "attention" not in groups:
        return None
    loops, att = groups["loop"]["time slope"], groups["attention"]["time slope"]
    if loops.min() >= 0.75 and att.max() <= 0.25:
        return "depth"
    if loops.min() >= 0.75 and att.min() >= 0.75:
        return "FLOPs"
    return None


FOLLOWS = {"depth": "time follows the sequential depth (T steps for a loop, a constant for "
                    "the Transformer), as the homework argues",
           "FLOPs": "both grow about linearly, as their FLOPs do: time follows the FLOPs, "
                    "not the depth"}


def devices_summary(devices_timing: pd.DataFrame | None) -> Summary:
    """The homework's depth argument on every device: per device, how the recurrent loops'
    forward time grows with T against the parallel scan's and the attention models', and
    which of depth or FLOPs the exponents follow there."""
    table = device_slopes(devices_timing)
    if table.empty or table["device"].nunique() < 2:
        return Summary(table.drop(columns="model") if not table.empty else table)
    parts, verdicts = [], {}
    for device, g in table.dropna(subset=["time slope"]).groupby("device", sort=False):
        groups = by_family(g)
        if "loop" not in groups or "attention" not in groups:
            continue
        scan = (f", the parallel scan's ({_names(groups['scan']['variant'])}) as "
                f"{_slopes(groups['scan'])}" if "scan" in groups else "")
        parts.append(f"on {device} the recurrent loops' forward time grows as "
                     f"{_slopes(groups['loop'])}{scan} and the attention models' as "
                     f"{_slopes(groups['attention'])}")
        verdicts.setdefault(_follows(groups), []).append(device)
    if not parts:
        return Summary(table.drop(columns="model"))
    text = "Devices side by side (forward pass over T known tokens): " + "; ".join(parts) + "."
    for key in FOLLOWS:
        if key in verdicts:
            text += f" On {' and '.join(verdicts[key])} {FOLLOWS[key]}."
    if None in verdicts:
        text += (f" On {' and '.join(verdicts[None])} the exponents follow neither the depth "
                 "nor the FLOPs alone.")
    batches = table.groupby("device", sort=False)["B"].first()
    if batches.nunique() > 1:
        text += (" The devices ran different batch sizes (" + "; ".join(
            f"B {b} on {d}" for d, b in batches.items()) + "): compare exponents, not times.")
    return Summary(table.drop(columns="model"), [text])


BATCH = re.compile(r"(?<![A-Za-z0-9])B(\d+)-")


def _batch_sizes(configurations: pd.Series) -> set[str]:
    return {m.group(1) for c in configurations.astype(str) for m in [BATCH.search(c)] if m}


def device_ratios_summary(devices_ratios: pd.DataFrame | None) -> Summary:
    """The paired ratios measured on every device, side by side. Where each device ran its
    pairs at one batch size and the sizes differ, configurations are matched on everything
    but B (and the finding says so); ratios some device lacks are counted, not tabled."""
    if devices_ratios is None or devices_ratios.empty:
        return Summary()
    d = devices_ratios.assign(cell=[with_interval(r, lo, hi) for r, lo, hi in zip(
        devices_ratios["ratio"], devices_ratios["ci_low"], devices_ratios["ci_high"])])
    devices = list(dict.fromkeys(d["device_label"]))
    batches = {dev: _batch_sizes(g["configuration"]) for dev, g in d.groupby("device_label")}
    but_b = (all(len(b) == 1 for b in batches.values())
             and len(set().union(*batches.values())) > 1)
    if but_b:
        d["configuration"] = d["configuration"].astype(str).map(
            lambda c: BATCH.sub("", c, count=1))
    wide = d.pivot_table(index=["comparison", "measure", "configuration"],
                         columns="device_label", values="cell", aggfunc="first").reset_index()
    wide.columns.name = None
    if len(devices) < 2:
        return Summary(wide)
    wide = wide[["comparison", "measure", "configuration", *devices]]
    both = wide.dropna(subset=devices).reset_index(drop=True)
    names = (f"both {devices[0]} and {devices[1]}" if len(devices) == 2
             else f"every one of {', '.join(devices)}")
    matched = ("matched on everything but the batch size: " + "; ".join(
        f"B {next(iter(batches[dev]))} on {dev}" for dev in devices) if but_b
        else "the same comparison, measure and configuration")
    rest = len(wide) - len(both)
    if both.empty:
        common = set.intersection(*(set(g["comparison"]) for _, g in d.groupby("device_label")))
        why = ("they share no comparison" if not common else
               f"they share the comparisons {_names(sorted(common))} but no configuration")
        return Summary(pd.DataFrame(), [
            f"No paired ratio was measured on {names} ({matched}): {why}; each device's "
            "ratios are under its own Paired ratios (devices_ratios.csv holds them all)."])
    text = (f"{len(both)} paired ratios were measured on {names} ({matched}); they are "
            "set side by side below")
    text += (f"; {rest} more were measured on only one of them (devices_ratios.csv)." if rest
             else ".")
    return Summary(both, [text])


def repeat_summary(repeat: pd.DataFrame | None, tolerance: float = 0.05) -> Summary:
    """The reproducibility check: how many ratios agree between runs within `tolerance`,
    how many runs' intervals overlap, and the intervals' median half-width."""
    from analysis.repro import agreement

    if repeat is None or repeat.empty:
        return Summary()
    a = agreement(repeat, tolerance)
    runs = len([c for c in repeat.columns if c.startswith("ratio_")])
    table = repeat[["comparison", "measure", "configuration", "relative_difference",
                    "intervals_overlap"]]
    text = (f"Reproducibility ({runs} runs in separate processes): {a['within']:.0%} of "
            f"{a['ratios']} ratios agree within {tolerance:.0%} between runs, the intervals "
            f"of {a['overlap']:.0%} overlap, and the median interval half-width is "
            f"{a['median_ci_half_width']:.1%}.")
    findings = [text]
    moved = repeat[repeat["relative_difference"] > tolerance].sort_values(
        "relative_difference", ascending=False)
    if not moved.empty:
        ratio_cols = [c for c in repeat.columns if c.startswith("ratio_")]
        findings.append(
            "Still dependent on the machine's state between processes (beyond "
            f"{tolerance:.0%}): " + "; ".join(
                f"{r['comparison']} {r['configuration']} ({r['measure']}) "
                + "/".join(f"{r[c]:.3g}" for c in ratio_cols)
                + ("" if r["intervals_overlap"] else ", intervals disjoint")
                + (f", pace moved {r['pace_spread']:.2f}x" if r.get("pace_spread", 0) > 1.05
                   else "")
                for _, r in moved.iterrows()) + ".")
        if "pace_spread" in moved.columns and (moved["pace_spread"] > 1.05).any():
            findings.append(
                "Where the machine's pace (the yardstick timed around each ratio) moved "
                "between the runs, the two sides of a ratio can slow by different factors "
                "(on this project's VM, KV-cache generation 1.75x where the loop without the "
                "cache slowed 1.49x), so such a ratio depends on the machine's state, which "
                "a shared VM does not hold still.")
    return Summary(table, findings)


# ---------------------------------------------------------------------------- time prediction


def _replayed(variants: pd.Series) -> pd.Series:
    from analysis.workloads import eager_name

    return variants.astype(str).map(eager_name) != variants.astype(str)


def eager_rows(pred: pd.DataFrame) -> pd.DataFrame:
    """The rows of eager rounds: CUDA-graph replays and compiled rounds (`graph_summary`)
    left out, since the runtime model predicts eager execution."""
    if "variant" not in pred.columns:
        return pred
    return pred[~_replayed(pred["variant"])]


TABLE_STATS = ("rows", "median factor", "median APE", "MAPE", "within 10%", "within 25%",
               "within 1.5x", "within 2x", "median predicted/measured")


def _stats(predicted, measured) -> dict:
    from analysis.predict import error_stats

    stats = error_stats(predicted, measured)
    return {k: stats[k] for k in TABLE_STATS}


REPEAT_KEYS = ("kind", "variant", "phase", "B", "T", "D", "E", "L", "H", "N", "seq_len")


def repeated_timings(timing: pd.DataFrame) -> pd.DataFrame:
    """The A/A pairs of a run: for each workload timed more than once (same configuration
    columns), its first and its second median in the frame's order ("first_s",
    "second_s") and the largest over the smallest of all its medians ("spread")."""
    keys = [k for k in REPEAT_KEYS if k in timing.columns]
    empty = pd.DataFrame(columns=["first_s", "second_s", "spread"], dtype=float)
    if not keys or "median_s" not in timing.columns:
        return empty
    groups = timing.groupby(keys, dropna=False, sort=False)["median_s"]
    pairs = [(g.iloc[0], g.iloc[1], g.max() / g.min()) for _, g in groups if len(g) > 1]
    if not pairs:
        return empty
    return pd.DataFrame(pairs, columns=["first_s", "second_s", "spread"])


def _pct(x: float) -> str:
    return f"{x:.0%}"


def prediction_summary(pred: pd.DataFrame | None, label: str = "this run") -> Summary:
    """Predicted (analysis.predict) vs measured time per variant and phase: the error
    statistics of `analysis.predict.error_stats` (TABLE_STATS) and the most common regime;
    findings: the totals (factor bands, MAPE, +-10%/+-25%), the same at the calibration's
    pace, the A/A noise floor of the same run (workloads the grid times twice, in two
    suites) in the same terms, and the five worst rows with their regime."""
    if pred is None or pred.empty or "predicted_s" not in pred.columns:
        return Summary()
    data = eager_rows(pred)
    data = data[data["predicted_s"].notna() & (data["median_s"] > 0)].copy()
    if data.empty:
        return Summary()
    data["ratio"] = data["predicted_s"] / data["median_s"]
    rows = []
    for (variant, phase), g in data.groupby(["variant", "phase"], sort=False):
        rows.append({"variant": variant, "phase": phase,
                     **_stats(g["predicted_s"], g["median_s"]),
                     "regime": g["regime"].mode().iloc[0] if "regime" in g else ""})
    table = pd.DataFrame(rows)
    total = _stats(data["predicted_s"], data["median_s"])
    findings = [
        f"Time predicted from the counts ({label}): {_pct(total['within 1.5x'])} of "
        f"{total['rows']} rows within 1.5x of the measured median, "
        f"{_pct(total['within 2x'])} within 2x; {_pct(total['within 10%'])} within +-10% "
        f"and {_pct(total['within 25%'])} within +-25%; median absolute percentage error "
        f"{_pct(total['median APE'])}, MAPE {_pct(total['MAPE'])}; median factor "
        f"{total['median factor']:.2f}, median predicted/measured "
        f"{total['median predicted/measured']:.2f} (machine constants from calibration "
        f"microbenchmarks only)."]
    if "predicted_calibrated_s" in data.columns and "pace_factor" in data.columns:
        paced = data[data["predicted_calibrated_s"].notna() & data["pace_factor"].notna()]
        if not paced.empty and not np.allclose(paced["pace_factor"], 1.0):
            fixed = _stats(paced["predicted_calibrated_s"], paced["median_s"])
            pace = paced["pace_factor"]
            findings.append(
                f"The rows ran at {pace.median():.2f}x the calibration's yardstick time "
                f"(median; {pace.min():.2f}-{pace.max():.2f}x), measured around each "
                f"benchmark; at the calibration's pace instead, {_pct(fixed['within 1.5x'])} "
                f"within 1.5x, {_pct(fixed['within 2x'])} within 2x, MAPE "
                f"{_pct(fixed['MAPE'])}, median factor {fixed['median factor']:.2f}.")
    repeats = repeated_timings(data)
    if not repeats.empty:
        aa = _stats(repeats["first_s"], repeats["second_s"])
        beyond = int((repeats["spread"] >= 1.5).sum())
        ratio = total["median APE"] / aa["median APE"] if aa["median APE"] > 0 \
            else float("inf")
        findings.append(
            f"The A/A noise floor ({label}): {len(repeats)} workloads the grid times twice "
            f"(in two suites minutes apart), the first median taken as a prediction of the "
            f"second: median absolute percentage error {_pct(aa['median APE'])}, MAPE "
            f"{_pct(aa['MAPE'])}, {_pct(aa['within 10%'])} within +-10%, median factor "
            f"{aa['median factor']:.2f} (largest {repeats['spread'].max():.2f}; {beyond} of "
            f"{len(repeats)} by 1.5x or more). The prediction's median error is "
            f"{ratio:.1f}x the A/A's; no prediction can be closer to every measurement than "
            f"two measurements are to each other.")
    worst = data.assign(err=np.abs(np.log(data["ratio"]))).nlargest(5, "err")
    findings.append("Worst rows: " + "; ".join(
        f"{r['id']} predicted {r['ratio']:.2g}x the measured ({r.get('regime', '')})"
        for _, r in worst.iterrows()) + ".")
    return Summary(table, findings)


def graph_summary(pred: pd.DataFrame | None) -> Summary:
    """Rounds run other than eager (CUDA-graph replays, bench/test_graphs.py; torch.compile,
    bench/test_compiled.py) against their eager rounds: per such row, its execution, the
    eager twin's median over its own (the speed-up) and its median over the runtime model's
    floor `predicted_nofixed_s` (every fixed cost zero): 1 means the round reached the
    floor. Findings per execution and phase, in order of appearance. Empty when every row is
    eager (any CPU run)."""
    if pred is None or pred.empty or "variant" not in pred.columns:
        return Summary()
    from analysis.workloads import EXECUTIONS, eager_name, execution_of

    other = pred[_replayed(pred["variant"])]
    if other.empty or "id" not in pred.columns:
        return Summary()
    eager = pred.drop(other.index).set_index("id")["median_s"]
    rows = []
    for _, r in other.iterrows():
        twin = eager_name(r["id"])
        if twin not in eager.index or not r["median_s"] > 0:
            continue
        rows.append({"execution": execution_of(r["variant"]), "id": twin,
                     "variant": eager_name(r["variant"]),
                     "phase": r["phase"], "eager_s": float(eager[twin]),
                     "run_s": float(r["median_s"]),
                     "speed-up": float(eager[twin]) / float(r["median_s"]),
                     "floor_s": r.get("predicted_nofixed_s"),
                     "run/floor": float(r["median_s"]) / r["predicted_nofixed_s"]
                     if r.get("predicted_nofixed_s", 0) > 0 else float("nan")})
    if not rows:
        return Summary()
    table = pd.DataFrame(rows)
    findings = []
    for (execution, phase), g in table.groupby(["execution", "phase"], sort=False):
        sp, fl = g["speed-up"], g["run/floor"].dropna()
        label, verb = EXECUTIONS.get(execution, (execution, "ran"))
        text = (f"{label}, {phase}: {len(g)} rounds {verb} "
                f"{sp.min():.2g}-{sp.max():.2g}x faster than eager (median {sp.median():.2g}x)")
        if not fl.empty:
            text += (f", at {fl.min():.2g}-{fl.max():.2g}x the runtime model's no-fixed-cost "
                     f"floor (median {fl.median():.2g}x)")
        findings.append(text + ".")
    return Summary(table, findings)


def homework_time_summary(pred: pd.DataFrame | None) -> Summary:
    """What the time model says about the homework's workloads: per variant and phase the
    median share of fixed costs, ops per round, the predicted time without fixed costs
    (the bound for CUDA graphs or compilation) as a speed-up, and the KV cache's predicted
    and measured speed-up."""
    if pred is None or pred.empty or "predicted_nofixed_s" not in pred.columns:
        return Summary()
    data = eager_rows(pred)
    data = data[data["predicted_s"].notna()].copy()
    data = data[data["kind"].eq("model")] if "kind" in data.columns else data
    if data.empty:
        return Summary()
    rows = []
    for (variant, phase), g in data.groupby(["variant", "phase"], sort=False):
        rows.append({"variant": variant, "phase": phase,
                     "overhead share": float(g["share_overhead"].median()),
                     "ops per round": float(g["trace_ops"].median()),
                     "no-fixed-cost speed-up": float((g["predicted_s"]
                                                      / g["predicted_nofixed_s"]).median()),
                     "regime": g["regime"].mode().iloc[0]})
    table = pd.DataFrame(rows)
    findings = []
    rec = data[data["model"].map(family).eq("loop")]
    if not rec.empty:
        share = rec["share_overhead"].median()
        findings.append(
            f"The recurrent loops' rounds are {share:.0%} fixed per-op cost (median): time "
            f"is steps x ops per step x the fixed cost, so it follows depth times ops, not "
            f"FLOPs.")
    att = data[data["model"].map(family).eq("attention") & data["phase"].eq("forward")]
    if not att.empty and "T" in att.columns:
        comp = att[att["regime"].eq("compute")]
        if not comp.empty:
            findings.append(f"The Transformer's forward turns compute-bound from T = "
                            f"{int(comp['T'].min())} in this grid.")
        else:
            findings.append("The Transformer's forward is not compute-bound anywhere in "
                            "this grid.")
    gen = data[data["phase"].isin(["generate", "generate_cache"])]
    if not gen.empty and gen["phase"].eq("generate_cache").any():
        key = [c for c in ("variant", "N") if c in gen.columns]
        wide = gen.pivot_table(index=key, columns="phase",
                               values=["median_s", "predicted_s"], aggfunc="median")
        if ("median_s", "generate_cache") in wide.columns:
            meas = (wide[("median_s", "generate")] / wide[("median_s", "generate_cache")])
            pred_ = (wide[("predicted_s", "generate")]
                     / wide[("predicted_s", "generate_cache")])
            findings.append(f"The KV cache: measured {meas.min():.2g}-{meas.max():.2g}x "
                            f"faster, predicted {pred_.min():.2g}-{pred_.max():.2g}x.")
    sp = (data["predicted_s"] / data["predicted_nofixed_s"])
    findings.append(f"Without fixed costs (CUDA graphs or compilation at best) the model "
                    f"predicts {sp.min():.2g}-{sp.max():.2g}x faster rounds.")
    return Summary(table, findings)
