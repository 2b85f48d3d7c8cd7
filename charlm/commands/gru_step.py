"""charlm gru-step: one step of the homework's 2-D GRU cell (unit 0 carries data, unit 1 the
control signal) for the values of the notebook's eight sliders: the input x, the previous
hidden state h, the gates r and z, the candidate n and the new state h_new."""

from __future__ import annotations

from charlm.commands.common import (
    add_force_arg,
    add_format_arg,
    add_threads_arg,
    emit,
    use_threads,
    writes_out,
)

# The notebook's sliders: name, low, high, default (charlm.gru_explorer.SLIDERS and
# GRUSettings, here so that building the parser imports no torch; a test checks they agree)
SLIDERS = (
    ("data_input", "input x[0] (data)", -2.0, 2.0, 0.0),
    ("control_input", "input x[1] (control)", -2.0, 2.0, 2.0),
    ("data_hidden", "hidden h[0] (data)", -2.0, 2.0, 0.0),
    ("control_hidden", "hidden h[1] (control)", -2.0, 2.0, 0.0),
    ("reset_weight", "reset weight W_xr = W_hr [0,1]", -3.0, 3.0, 3.0),
    ("update_weight", "update weight W_xz = W_hz [0,1]", -3.0, 3.0, -3.0),
    ("new_input_weight", "new-content weight W_xn[0,0]", -3.0, 3.0, 3.0),
    ("new_hidden_weight", "new-content weight W_hn[0,0]", -3.0, 3.0, 3.0),
)

EXAMPLE = """examples:
  charlm gru-step --control-input 2 --new-hidden-weight -3
  charlm gru-step --format json --out gru.png"""


def register(subparsers):
    p = subparsers.add_parser("gru-step", help="the homework's 2-D GRU cell for slider values",
                              description=__doc__, epilog=EXAMPLE)
    for name, label, low, high, default in SLIDERS:
        p.add_argument("--" + name.replace("_", "-"), type=float, default=default,
                       help=f"{label}; the slider spans [{low:g}, {high:g}]")
    p.add_argument("--out", help="also write the bar chart to this figure (its suffix names "
                                 "the format: .png, .pdf, .svg, ...)")
    add_force_arg(p)
    add_threads_arg(p)
    add_format_arg(p)
    p.set_defaults(func=run)


@writes_out("figure")
def run(args) -> int:
    use_threads(args.threads)
    from charlm.gru_explorer import GRUSettings, gru_2d_step, save_gru_step_figure

    settings = GRUSettings(**{name: getattr(args, name) for name, *_ in SLIDERS})
    step = gru_2d_step(settings)
    if args.format == "json":
        emit(step.to_dict(), "json")
    else:
        rows = [dict(quantity=k, data=v[0], control=v[1]) for k, v in step.to_dict().items()]
        emit(rows, args.format)
    if args.out:
        save_gru_step_figure(settings, args.out)
    return 0
