"""charlm accuracy: the time prediction checked where it was never fitted. Each configuration
of analysis.accuracy.HELD_OUT (sizes no built-in grid uses; forward, train and generation
with and without the KV cache) is predicted from its op trace and a machine file, then two
freshly prepared copies of it are timed in alternating rounds: copy A against the prediction
(scaled to the pace the yardstick shows around the timing), copy B against copy A (the A/A
noise floor: no prediction can be closer than a second measurement). Prints each
configuration, then the errors as the field states them (median and worst factor, median
and mean absolute percentage error, within +-10%/+-25%/1.5x/2x) for both. About 2 s a
configuration on one CPU thread. --ops WORKLOAD_ID: where one configuration's time goes, per
aten op, the prediction against torch.profiler's self CPU time."""

from __future__ import annotations

import sys

from charlm.commands.common import add_format_arg, add_threads_arg, emit, format_table, writes_out

EXAMPLE = """examples:
  charlm accuracy
  charlm accuracy --only transformer --budget 0.5
  charlm accuracy --machine machine.json --out runs/accuracy.csv
  charlm accuracy --ops mingru-forward-B6-T200-D96-L3"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "accuracy", help="predicted vs measured time on configurations outside every grid, "
                         "beside the A/A noise floor",
        description=__doc__, epilog=EXAMPLE)
    p.add_argument("--machine", help="machine file (charlm calibrate --out); default: the "
                                     "cached calibration of this device, made if missing")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    add_threads_arg(p, default=1, help="CPU threads of the calibration and the timing")
    p.add_argument("--only", metavar="TEXT",
                   help="only the configurations whose id contains TEXT")
    p.add_argument("--budget", type=float, default=1.0, metavar="S",
                   help="seconds of timed rounds per copy (default 1.0)")
    p.add_argument("--ops", metavar="ID",
                   help="instead: one configuration's per-op breakdown (an id of --list)")
    p.add_argument("--list", action="store_true", help="list the configurations and stop")
    p.add_argument("--out", help="CSV of the per-configuration rows")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    add_format_arg(p)
    p.set_defaults(func=run)


def _chosen(args):
    from analysis.accuracy import HELD_OUT

    chosen = [w for w in HELD_OUT if not args.only or args.only in w.id]
    if not chosen:
        raise ValueError(f"--only {args.only!r} matches none of the {len(HELD_OUT)} "
                         f"configurations (charlm accuracy --list)")
    return chosen


@writes_out()
def run(args) -> int:
    from analysis.accuracy import HELD_OUT
    from charlm.commands.predict_time import machine_for
    from charlm.validate import check_device, positive_int

    positive_int("threads", args.threads)
    if not args.budget > 0:
        raise ValueError(f"--budget must be positive, got {args.budget}")
    if args.list:
        emit([{"id": w.id} for w in HELD_OUT], args.format)
        return 0
    check_device(args.device)
    if args.ops:
        found = [w for w in HELD_OUT if w.id == args.ops]
        if not found:
            raise ValueError(f"--ops {args.ops!r} is not a configuration id (charlm accuracy "
                             f"--list)")
    chosen = _chosen(args)
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    machine = machine_for(args)
    if args.ops:
        return _ops(args, machine, found[0])
    from analysis.accuracy import accuracy_table, held_out_frame
    from charlm.io import atomic_to_csv

    frame = held_out_frame(machine, chosen, args.device, args.budget,
                           progress=lambda text: print(f"timing {text}", file=sys.stderr))
    if args.out:
        atomic_to_csv(frame, args.out)
    table = accuracy_table(frame)
    if args.format != "table":
        emit({"rows": frame.to_dict(orient="records"),
              "accuracy": table.to_dict(orient="records")} if args.format == "json"
             else frame, args.format)
        return 0
    shown = pd.DataFrame({
        "configuration": frame["id"],
        "predicted ms": frame["predicted_s"] * 1e3,
        "measured ms [95% CI]": [f"{m * 1e3:.3g} [{lo * 1e3:.3g}, {hi * 1e3:.3g}]" for m, lo, hi
                                 in zip(frame["median_s"], frame["median_lo"],
                                        frame["median_hi"])],
        "meas/pred": (frame["median_s"] / frame["predicted_s"]).round(2),
        "B/A": (frame["aa_median_s"] / frame["median_s"]).round(2),
        "pace": frame["pace_factor"].round(2)})
    print(format_table(shown))
    print()
    print(format_table(stats_rows(table)))
    print(f"machine file: {machine.device} {machine.name}, torch {machine.torch}, "
          f"{machine.threads} thread(s), calibrated {machine.date}; medians of alternating "
          f"rounds with their 95% intervals; prediction scaled by the yardstick's pace")
    return 0


def stats_rows(table) -> list[dict]:
    """The accuracy table turned: one row per statistic, a column per comparison; factors
    to two decimals, shares and percentage errors as whole percents."""
    rows = []
    for stat in table.columns:
        if stat == "comparison":
            continue
        row = {"statistic": stat}
        for _, r in table.iterrows():
            v = r[stat]
            row[r["comparison"]] = (f"{int(v)}" if stat == "rows" else
                                    f"{v:.2f}" if "factor" in stat or "/" in stat
                                    else f"{v:.0%}")
        rows.append(row)
    return rows


def _ops(args, machine, workload) -> int:
    from analysis.accuracy import op_breakdown

    frame = op_breakdown(workload, machine, device=args.device)
    if args.out:
        from charlm.io import atomic_to_csv

        atomic_to_csv(frame, args.out)
    if args.format != "table":
        emit(frame, args.format)
        return 0
    shown = frame.head(25).assign(predicted_ms=frame["predicted_s"] * 1e3,
                                  profiled_ms=frame["profiled_s"] * 1e3,
                                  gap_ms=frame["gap_s"] * 1e3)
    print(format_table(shown[["op", "predicted_ops", "predicted_ms", "profiled_ops",
                              "profiled_ms", "gap_ms"]]))
    total_p, total_m = frame["predicted_s"].sum(), frame["profiled_s"].sum()
    print(f"per call: predicted {total_p * 1e3:.3g} ms, profiled self time {total_m * 1e3:.3g}"
          f" ms (the profiler adds a few us per op)")
    return 0
