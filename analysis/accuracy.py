"""How good the time prediction is, stated as the field states it, beside what the machine
allows: the errors of predicted against measured times, and the A/A noise floor (the same
workload timed twice) in the same terms.

- the errors are `analysis.predict.error_stats` (factor, MAPE, +-10%/+-25% bands), the one
  definition the report uses too.
- `HELD_OUT`: configurations outside every built-in grid (batch, width, depth and length
  none of the grids uses; generation with and without the KV cache), so no constant can
  have been tuned to them.
- `time_twice(w)`: two independently prepared copies of a workload timed in alternating
  rounds (A B A B ...), each copy's median with its 95% interval, the yardstick around them
  (the machine's pace right then).
- `held_out_frame(machine)`: every held-out workload predicted (at the calibration's pace and
  at the pace of its measurement) and timed twice; `accuracy_table(frame)`: the prediction's
  error_stats beside the A/A's (copy A as a "prediction" of copy B).
- `op_breakdown(w, machine)`: where the time goes, per aten op: the prediction's seconds
  against torch.profiler's self CPU time (profiled calls cost a few microseconds more per op:
  read small ops' gaps with that in mind).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import numpy as np
import pandas as pd

from analysis.predict import error_stats
from analysis.workloads import Workload


def _w(variant, phase, **kw) -> Workload:
    return Workload(variant=variant, phase=phase, sweep="held-out", **kw)


# Sizes none of the built-in grids uses: B 3, 6, 12 (grids: 4, 8, 16), D 96, 160, 192
# (grids: 64-1024 in powers of two), L 3, T 40, 48, 80, 96, 200 and N 24 (grids: powers of
# two, N 16/64/256); tests/test_accuracy.py checks none is a grid workload.
HELD_OUT: tuple[Workload, ...] = (
    _w("transformer-flash", "forward", batch=6, seq_len=96, hidden=192, layers=3),
    _w("transformer-manual", "forward", batch=3, seq_len=200, hidden=96, layers=2),
    _w("transformer-flash", "train", batch=6, seq_len=48, hidden=96, layers=3),
    _w("transformer-flash", "generate", batch=3, seq_len=12, new_tokens=24, hidden=96,
       layers=3),
    _w("transformer-flash", "generate_cache", batch=3, seq_len=12, new_tokens=24, hidden=96,
       layers=3),
    _w("rnn", "train", batch=12, seq_len=80, hidden=192),
    _w("mlrnn", "forward", batch=6, seq_len=48, hidden=96, layers=3),
    _w("gru", "forward", batch=6, seq_len=48, hidden=192),
    _w("gru", "train", batch=6, seq_len=48, hidden=96),
    _w("gru", "generate", batch=3, seq_len=12, new_tokens=24, hidden=96),
    _w("lstm", "forward", batch=12, seq_len=40, hidden=160),
    _w("mingru", "forward", batch=6, seq_len=200, hidden=96, layers=3),
    _w("gru-torch", "forward", batch=6, seq_len=96, hidden=192),
    _w("lstm-torch", "train", batch=6, seq_len=80, hidden=160),
)

MIN_ROUND_S = 0.002  # calls per round so that a round lasts at least this long
MIN_ROUNDS = 9  # per copy


def time_twice(w: Workload, device: str = "cpu", budget_s: float = 1.0,
               clock: Callable[[], float] | None = None) -> dict:
    """Two copies of `w`, each prepared afresh (its own weights, inputs and allocations),
    warmed, then timed in alternating rounds until each has about `budget_s` seconds of
    rounds (at least MIN_ROUNDS each): {"a": (median, lo, hi), "b": ..., "rounds",
    "calls_per_round", "yardstick_s"} in seconds per call, the yardstick the geometric mean of
    one before and one after."""
    import time

    from analysis.calibrate import yardstick
    from analysis.timing import WARM_CALLS, iterations_for, median_ci, synchronize, time_once
    from analysis.workloads import prepare

    if budget_s <= 0:
        raise ValueError(f"budget_s must be positive, got {budget_s}")
    clock = clock or time.perf_counter
    copies = [prepare(w, device), prepare(w, device)]
    for p in copies:
        for _ in range(WARM_CALLS):
            p.fn()
    synchronize(device)
    pilot = min(time_once(copies[0].fn, device, clock=clock) for _ in range(2))
    calls = iterations_for(pilot, MIN_ROUND_S)
    rounds = max(MIN_ROUNDS, min(200, int(budget_s / max(pilot * calls, 1e-9))))
    before = yardstick(device)
    samples: list[list[float]] = [[], []]
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)  # neither copy always runs first
        for k in order:
            samples[k].append(time_once(copies[k].fn, device, calls, clock=clock) / calls)
    after = yardstick(device)
    out = {"rounds": rounds, "calls_per_round": calls,
           "yardstick_s": math.sqrt(before * after)}
    for key, xs in zip("ab", samples):
        lo, hi = median_ci(xs)
        out[key] = (float(np.median(xs)), lo, hi)
    return out


def held_out_frame(machine, workloads: Sequence[Workload] = HELD_OUT, device: str = "cpu",
                   budget_s: float = 1.0, progress: Callable[[str], None] | None = None
                   ) -> pd.DataFrame:
    """One row per workload: its id and sizes, predicted_calibrated_s (the calibration's
    pace), pace_factor (the yardstick around its timing over the machine file's),
    predicted_s (= predicted_calibrated_s x pace_factor: the prediction at the pace it was
    measured at), median_s with median_lo/median_hi (copy A), aa_median_s with its interval
    (copy B), rounds, calls_per_round, regime, ops."""
    from analysis.counters import single_thread
    from analysis.optrace import trace_workload
    from analysis.predict import pace_factor, predict_trace
    from analysis.timing import pin_malloc

    pin_malloc()  # as the bench and the calibration do
    rows = []
    for i, w in enumerate(workloads):
        if progress is not None:
            progress(f"{i + 1} of {len(workloads)}: {w.id}")
        pred = predict_trace(trace_workload(w), machine)
        with single_thread() if device == "cpu" and machine.threads == 1 else nullcontext():
            timed = time_twice(w, device, budget_s)
        pace = pace_factor(timed["yardstick_s"], machine)
        s = w.sizes()
        rows.append({
            "id": w.id, "variant": w.variant, "phase": w.phase,
            **{k: s.get(k) for k in ("B", "T", "D", "L", "N")},
            "predicted_calibrated_s": pred["predicted_s"], "pace_factor": pace,
            "predicted_s": pred["predicted_s"] * pace,
            "median_s": timed["a"][0], "median_lo": timed["a"][1], "median_hi": timed["a"][2],
            "aa_median_s": timed["b"][0], "aa_lo": timed["b"][1], "aa_hi": timed["b"][2],
            "rounds": timed["rounds"], "calls_per_round": timed["calls_per_round"],
            "regime": pred["regime"], "ops": pred["ops"],
        })
    return pd.DataFrame(rows)


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """error_stats of the prediction at the measurement's pace, at the calibration's pace,
    and of the A/A floor (copy A's median as a prediction of copy B's), one row each."""
    rows = [("predicted, pace now", frame["predicted_s"], frame["median_s"]),
            ("predicted, calibration pace", frame["predicted_calibrated_s"],
             frame["median_s"]),
            ("A/A: copy A vs B", frame["median_s"],
             frame["aa_median_s"])]
    return pd.DataFrame([{"comparison": name, **error_stats(p, m)} for name, p, m in rows])


def op_breakdown(w: Workload, machine, calls: int = 5, device: str = "cpu") -> pd.DataFrame:
    """Per aten op name: ops per call and predicted seconds per call (the prediction's
    max(compute, memory) + alloc + fixed), profiled calls and self CPU seconds per call
    (torch.profiler over `calls` calls after warming), and the gap profiled - predicted;
    sorted by the gap's size. Ops only the profiler sees are composites (linear, matmul)
    and a kernel's inner calls, which the dispatch-level trace does not see separately."""
    from torch.profiler import ProfilerActivity, profile

    from analysis.optrace import trace_workload
    from analysis.predict import op_times
    from analysis.timing import WARM_CALLS
    from analysis.workloads import prepare

    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    trace = trace_workload(w)
    predicted: dict[str, list] = {}
    for op, t in zip(trace.ops, op_times(trace, machine)):
        entry = predicted.setdefault(op.name, [0, 0.0])
        entry[0] += 1
        entry[1] += max(t.compute_s, t.memory_s) + t.alloc_s + t.fixed_s
    p = prepare(w, device)
    for _ in range(WARM_CALLS):
        p.fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            p.fn()
    profiled: dict[str, list] = {}
    for e in prof.key_averages():
        name = e.key.removeprefix("aten::")
        profiled[name] = [e.count / calls, e.self_cpu_time_total / 1e6 / calls]
    rows = []
    for name in set(predicted) | set(profiled):
        n_pred, s_pred = predicted.get(name, (0, 0.0))
        n_prof, s_prof = profiled.get(name, (0, 0.0))
        rows.append({"op": name, "predicted_ops": n_pred, "predicted_s": s_pred,
                     "profiled_ops": n_prof, "profiled_s": s_prof,
                     "gap_s": s_prof - s_pred})
    frame = pd.DataFrame(rows)
    return frame.reindex(frame["gap_s"].abs().sort_values(ascending=False).index
                         ).reset_index(drop=True)
