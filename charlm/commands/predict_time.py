"""charlm predict-time: the time of one model and quantity predicted from its op trace (FLOPs,
bytes moved, ops) and a calibrated machine file: per op max(compute, memory) plus a fixed
cost; summed on CPU; on CUDA bounded below by the launches the host issues one by one. Says
the regime (launch/overhead, memory, compute) and each term's share."""

from __future__ import annotations

from charlm.commands.calibrate import announce, stale_reason
from charlm.commands.common import (
    add_format_arg,
    add_model_args,
    add_threads_arg,
    add_workload_args,
    emit,
    format_number,
    format_table,
    model_config_from_args,
    refuse_unused_sizes,
)

QUANTITIES = ("forward", "backward", "train", "generate")
EXAMPLE = """examples:
  charlm predict-time --model gru --seq-len 64 --batch 8
  charlm predict-time --model transformer --quantity train --seq-len 64 --format json
  charlm predict-time --model rnn --device cuda --machine results/reference/gpu-h200/machine.json"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict-time", help="time predicted from FLOPs, bytes and ops on a calibrated machine",
        description=__doc__, epilog=EXAMPLE)
    add_model_args(p, vocab=True, model_default="transformer")
    p.add_argument("--quantity", choices=QUANTITIES, default="forward",
                   help="forward, backward, train (one Adam step), or generate "
                        "(--new-tokens after --prompt-len)")
    add_workload_args(p)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="machine model to predict for")
    p.add_argument("--machine", help="machine file (charlm calibrate --out); default: the "
                                     "cached calibration of this device, made if missing")
    add_threads_arg(p, default=1, help="CPU threads of the calibration")
    p.add_argument("--no-fixed-cost", action="store_true",
                   help="set every fixed cost to zero (the bound for CUDA graphs/compiling)")
    p.add_argument("--pace", choices=("calibration", "now"), default="calibration",
                   help="the machine's pace to predict at: the calibration's, or now (times "
                        "the yardstick here and scales by it over the machine file's)")
    add_format_arg(p)
    p.set_defaults(func=run)


def machine_for(args):
    """The --machine file, or this device's cached calibration (made, and said so, when
    missing)."""
    from analysis.calibrate import cached_machine, default_cache_path, load_machine, stale_fields
    from analysis.predict import measure_code_costs

    if args.machine:
        machine = load_machine(args.machine)
        if machine.device != args.device:
            raise ValueError(f"--machine {args.machine} is a {machine.device} machine file; "
                             f"pass --device {machine.device}")
        return machine
    path = default_cache_path(args.device, args.threads)
    stale = stale_fields(path)
    if stale:
        announce(args.device, stale_reason(path, stale))
    elif not path.is_file():
        announce(args.device, f"no machine file at {path}; saved there for next time, "
                              f"or give --machine FILE from charlm calibrate --out FILE")
    return cached_machine(args.device, args.threads, path=path, code_costs=measure_code_costs)


def run(args) -> int:
    from analysis.optrace import trace_quantity
    from analysis.predict import predict_trace
    from charlm.validate import check_device, positive_int

    if args.pace == "now" or not args.machine:  # both run on the device; a file alone not
        check_device(args.device)
    positive_int("threads", args.threads)
    refuse_unused_sizes(args)
    cfg = model_config_from_args(args)
    if args.seq_len is None:
        args.seq_len = cfg.block_size if cfg.block_size else 20
    sizes = {"B": args.batch, "T": args.seq_len, "P": args.prompt_len, "N": args.new_tokens}
    trace = trace_quantity(cfg, args.quantity, sizes, args.kv_cache)  # checks the sizes
    machine = machine_for(args)
    result = predict_trace(trace, machine, fixed=not args.no_fixed_cost)
    result["pace_factor"] = 1.0
    if args.pace == "now":
        from analysis.calibrate import yardstick
        from analysis.predict import pace_factor

        if machine.yardstick_s is None:
            raise ValueError("--pace now needs a machine file with a yardstick (calibrate "
                             "again with this version)")
        factor = pace_factor(yardstick(args.device), machine)
        result["pace_factor"] = factor
        result["predicted_s"] *= factor
        for term in result["terms"].values():
            term["seconds"] *= factor
    result["machine"] = {k: v for k, v in machine.to_dict().items()
                         if k not in ("matmul_axes", "matmul_flops_per_s", "matmul_layouts")}
    result["model"], result["quantity"] = cfg.model, args.quantity
    result["sizes"] = {k: v for k, v in sizes.items()
                       if k in (("B", "P", "N") if args.quantity == "generate" else ("B", "T"))}
    result["convention"] = ("float32; FLOPs 2 per multiply-add (PyTorch's counter); bytes = "
                            "inputs read + outputs written per op, unfused")
    if args.format == "json":
        emit(result, "json")
        return 0
    if args.format == "csv":
        row = {k: v for k, v in result.items() if not isinstance(v, dict)}
        row.update({f"{k}_s": v["seconds"] for k, v in result["terms"].items()})
        emit([row], "csv")
        return 0
    sizes_text = " ".join(f"{k}={v}" for k, v in result["sizes"].items())
    print(f"{cfg.model} {args.quantity}  {sizes_text}  on {machine.device} {machine.name} "
          f"(torch {machine.torch}, {machine.threads} thread(s))")
    if args.pace == "now":
        print(f"at the pace now: the yardstick took {result['pace_factor']:.2f}x its time at "
              f"calibration")
    print(f"predicted {format_number(result['predicted_s'])} s, regime {result['regime']} "
          f"(bound: {result['bound']}); {result['ops']} ops, {result['kernels']} kernels, "
          f"depth {result['depth']}, {format_number(result['flops'])} FLOPs, "
          f"{format_number(result['bytes'])} bytes")
    print(format_table([{"term": k, "seconds": v["seconds"], "share": round(v["share"], 2)}
                        for k, v in result["terms"].items()]))
    print(result["convention"])
    return 0
