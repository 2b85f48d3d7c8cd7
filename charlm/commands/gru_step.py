"""`charlm gru-step`: one step of the homework's 2-D GRU cell (data unit 0, control unit 1)."""

from __future__ import annotations

import pandas as pd

from charlm.commands.common import add_format_arg, emit
from charlm.gru_explorer import SLIDERS, GRUSettings, gru_2d_step, save_gru_step_figure


def register(subparsers):
    p = subparsers.add_parser("gru-step", help="the homework's 2-D GRU cell for slider values",
                              description=__doc__)
    defaults = GRUSettings()
    for s in SLIDERS:
        p.add_argument("--" + s.name.replace("_", "-"), type=float,
                       default=getattr(defaults, s.name),
                       help=f"{s.label} slider range [{s.low:g}, {s.high:g}] "
                            f"(default {getattr(defaults, s.name):g})")
    p.add_argument("--out", help="also write the bar chart as PNG")
    add_format_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    settings = GRUSettings(**{s.name: getattr(args, s.name) for s in SLIDERS})
    step = gru_2d_step(settings)
    if args.format == "json":
        emit(step.to_dict(), "json")
    else:
        rows = [dict(quantity=k, data=v[0], control=v[1]) for k, v in step.to_dict().items()]
        emit(pd.DataFrame(rows), args.format)
    if args.out:
        save_gru_step_figure(settings, args.out)
    return 0
