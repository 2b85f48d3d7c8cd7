"""charlm profile: what any PyTorch model costs at your sizes. Parameters; FLOPs by PyTorch's
counter and by every second counter (forward), per module; bytes moved; matmul and scan
depth; peak memory; the time predicted on a calibrated machine with its regime; with --time,
the measured median beside it.

TARGET is a model factory, FILE.py:FUNC: a Python function taking sizes as keyword
arguments and returning (model, inputs), the model called as model(*inputs) (inputs a
tensor or a tuple). FILE is your own code: it is loaded and run, as by `python FILE.py`,
because you ask for it. TARGET may also be a built-in model (rnn, mlrnn, gru, lstm, mingru,
transformer), whose factory is its architecture table entry.
"""

from __future__ import annotations

from charlm.commands.common import (
    MODEL_NAMES,
    add_threads_arg,
    emit,
    fit,
    format_number,
    format_table,
    parse_pairs,
    use_threads,
)

QUANTITIES = ("forward", "train")
EXAMPLE = """examples:
  charlm profile examples/hf_gpt2.py:gpt2 --size T=128 --size D=96
  charlm profile examples/hf_gpt2.py:gpt2 --quantity train --optimizer adam --time
  charlm profile gru --size T=64 --size B=8 --format json"""
MODULE_DEPTH = 3  # module levels the table shows, as a flop_count_table does


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "profile", help="FLOPs (two counters), bytes, depth, memory, predicted and measured "
                        "time of any model", description=__doc__, epilog=EXAMPLE)
    p.add_argument("target", metavar="TARGET",
                   help=f"FILE.py:FUNC (a model factory), or one of {', '.join(MODEL_NAMES)}")
    p.add_argument("--size", action="append", default=[], metavar="NAME=N",
                   help="a size for the factory, as its keyword argument (repeat the flag); "
                        "unset sizes take the factory's defaults")
    p.add_argument("--quantity", choices=QUANTITIES, default="forward",
                   help="forward (no grad), or train: forward + backward of the output (its "
                        "sum if not a scalar)")
    p.add_argument("--optimizer", choices=("adam",),
                   help="with --quantity train: a torch.optim.Adam step after the backward")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model runs")
    p.add_argument("--machine", help="machine file (charlm calibrate --out); default: the "
                                     "cached calibration of this device, made if missing")
    p.add_argument("--time", action="store_true",
                   help="also time the call: median of 21 rounds and its 95%% interval")
    p.add_argument("--module-depth", type=int, default=MODULE_DEPTH, metavar="N",
                   help="module levels the table shows (json has every module)")
    add_threads_arg(p)
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output: an aligned table to read, or json with every detail")
    p.set_defaults(func=run)


def parse_sizes(items: list[str]) -> dict[str, int]:
    """['T=128', 'D=96'] -> {'T': 128, 'D': 96}; ValueError naming --size."""
    return parse_pairs(items, "--size")


def run(args) -> int:
    from charlm.validate import check_device, positive_int

    positive_int("--module-depth", args.module_depth)
    sizes = parse_sizes(args.size)
    if args.optimizer and args.quantity != "train":
        raise ValueError("--optimizer applies only to --quantity train")
    if args.time or not args.machine:  # both run on the device; a file alone does not
        check_device(args.device)
    threads = use_threads(args.threads)
    from analysis.factories import build, check_call, load_factory
    from analysis.profile import profile

    factory, label = load_factory(args.target)
    model, inputs = build(factory, label, sizes)
    from charlm.commands.predict_time import machine_for

    check_call(model, inputs)
    args.threads = threads  # the machine file of this thread count
    result = profile(model, inputs, args.quantity, args.optimizer, machine=machine_for(args),
                     measure_time=args.time, device=args.device)
    if args.format == "json":
        emit({"target": label, "sizes": sizes, **result.to_dict()}, "json")
    else:
        print(profile_table(result, label, sizes, args.module_depth))
    return 0


def _unsupported(ops: dict | None) -> str:
    if ops is None:
        return "not counted"
    return ", ".join(f"{k} x{v}" for k, v in ops.items()) or "none"


def profile_table(result, label: str, sizes: dict, module_depth: int = MODULE_DEPTH) -> str:
    """The result as text at most 100 columns wide: a heading, the totals, the time, the
    unsupported ops, the module tree (down to `module_depth` levels), conventions, notes."""
    r = result
    words = " ".join(f"{k}={v}" for k, v in sizes.items())
    step = f" + {r.optimizer} step" if r.optimizer else ""
    second = "".join(
        f", {format_number(c.total) if c.total is not None else 'not counted'} ({name})"
        for name, c in r.forward_counts.items())
    env = r.environment
    lines = [f"{label} {r.quantity}{step}  {words}".rstrip(),
             f"params {format_number(r.params)}  FLOPs {format_number(r.flops)} (PyTorch)"
             f"{second}  bytes {format_number(r.bytes)}  peak memory "
             f"{format_number(r.peak_bytes)} B",
             f"depth: {r.matmul_depth} matmuls, {r.scan_depth} scan steps ({r.depth} on the "
             f"longest chain of both)"]
    if r.predicted_s is not None:
        shares = ", ".join(f"{t.term} {t.share:.0%}" for t in r.terms.itertuples())
        lines.append(f"predicted {format_number(r.predicted_s)} s, regime {r.regime} "
                     f"({shares}) on {r.machine}")
    if r.measured_s is not None:
        low, high = r.measured_ci
        lines.append(f"measured {format_number(r.measured_s)} s median, 95% interval "
                     f"[{format_number(low)}, {format_number(high)}] over {r.rounds} rounds")
    lines.append("unsupported (counted 0): " + "; ".join(
        f"{'PyTorch' if name == 'torch' else name}: {_unsupported(ops)}"
        for name, ops in r.unsupported.items()))
    shown = r.modules[r.modules["level"] <= module_depth]
    counted = [name for name, c in r.forward_counts.items() if c.total is not None]
    rows = [{"module": " " * m["level"] + (m["module"] or "model"), "params": m["params"],
             "FLOPs": m["flops"], **{f"FLOPs {name}": m[f"flops_{name}"] for name in counted},
             "bytes": m["bytes"]}
            for m in shown.to_dict(orient="records")]
    hidden = len(r.modules) - len(shown)
    table = ["per module, submodules included"
             + ("; its forward ops only" if r.quantity == "train" else "")
             + (f"; {hidden} modules below level {module_depth} not shown" if hidden else "")
             + ":", format_table(rows)]
    tail = [*r.conventions, *(f"note: {n}" for n in r.notes),
            f"environment: {env.get('device')} {env.get('device_name')}, torch "
            f"{env.get('torch')}, {env.get('threads')} thread(s)"]
    return fit(lines) + "\n" + "\n".join(table) + "\n" + fit(tail)
