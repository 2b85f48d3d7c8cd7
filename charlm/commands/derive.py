"""charlm derive: the exact formula of a model's cost in its sizes, derived from counts.

For a fixed architecture, matmul FLOPs, parameters and bytes are polynomials in the sizes,
and the counters give them exactly. derive finds each varied size's degree (finite
differences), counts on a grid of sizes, solves for the coefficients in exact rational
arithmetic, and checks the formula on held-out random sizes: it says "verified" only when
every held-out count matches exactly, and otherwise which size failed. Depth (critical-path
matmuls plus scan steps) has ceil(log2 T) in its basis.

TARGET is a built-in model (rnn, mlrnn, gru, lstm, mingru, transformer) or a model factory,
FILE.py:FUNC: a Python function taking sizes as keyword arguments and returning
(model, inputs), as charlm profile takes it. FILE is your own code: it is loaded and run,
as by `python FILE.py`, because you ask for it.
"""

from __future__ import annotations

import sys

from charlm.commands.common import (
    MODEL_NAMES,
    add_threads_arg,
    emit,
    fit,
    parse_pairs,
    use_threads,
)

BUILTIN_QUANTITIES = ("params", "forward", "backward", "train", "generate")
MEASURES = ("flops", "params", "bytes", "depth")
EXAMPLE = """examples:
  charlm derive examples/hf_gpt2.py:gpt2 --vary T,D,L
  charlm derive transformer --vary T,D,L,V
  charlm derive gru --vary T,D --quantity train --format json
  charlm derive mingru --vary T,L --measure depth"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "derive", help="the exact formula of a model's FLOPs, parameters, bytes or depth in "
                       "its sizes, derived from counts and verified", description=__doc__,
        epilog=EXAMPLE)
    p.add_argument("target", metavar="TARGET",
                   help=f"one of {', '.join(MODEL_NAMES)}, or FILE.py:FUNC (a model factory)")
    p.add_argument("--vary", required=True, metavar="T,D,...",
                   help="the sizes the formula is in, comma-separated (a built-in's: B, T, "
                        "D, E, L, H, V, C; P and N for generate; a factory's keyword "
                        "arguments)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=N",
                   help="hold a size at a value (repeat the flag); sizes neither varied nor "
                        "fixed take the model's defaults, printed with the formula")
    p.add_argument("--step", action="append", default=[], metavar="NAME=K",
                   help="a varied size the model takes only in multiples of K (D of the "
                        "heads; a built-in transformer's D steps by H without it)")
    p.add_argument("--quantity", default="forward",
                   help="built-in: params, forward, backward, train, generate; factory: "
                        "forward or train")
    p.add_argument("--measure", choices=MEASURES, default="flops",
                   help="matmul FLOPs, parameters, bytes (read + written, unfused), or depth")
    p.add_argument("--kv-cache", action="store_true",
                   help="generate with the KV cache (a built-in transformer)")
    p.add_argument("--kernel", choices=("flash", "manual"),
                   help="a built-in transformer's attention kernel (default: flash)")
    p.add_argument("--optimizer", choices=("adam",),
                   help="a factory's train quantity: an Adam step after the backward")
    p.add_argument("--tensors", choices=("fake", "real"), default="fake",
                   help="a factory's model runs on fake tensors (shapes only) or real ones "
                        "(for a model that reads its tensors' values)")
    p.add_argument("--held-out", type=int, default=4, metavar="N",
                   help="random sizes the formula is verified at")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out sizes")
    add_threads_arg(p)
    p.add_argument("--format", choices=("text", "json", "latex"), default="text",
                   help="output: text to read, json with every detail, or the LaTeX formula")
    p.set_defaults(func=run)


def parse_vary(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not n.isidentifier()]
    if not names or bad:
        raise ValueError(f"--vary {text!r}: give size names separated by commas, e.g. "
                         "--vary T,D,L")
    return names


def source_for(args):
    """The derivation's Source for TARGET (analysis.derive)."""
    from analysis.derive import builtin_source, factory_source

    if args.target in MODEL_NAMES:
        if args.quantity not in BUILTIN_QUANTITIES:
            raise ValueError(f"--quantity {args.quantity!r}: a built-in model has "
                             f"{', '.join(BUILTIN_QUANTITIES)}")
        if args.optimizer or args.tensors != "fake":
            raise ValueError("--optimizer and --tensors apply to a model factory; a built-in's "
                             "train is the homework's step (Adam included)")
        return builtin_source(args.target, args.quantity, args.measure, args.kv_cache,
                              args.kernel)
    if args.kv_cache or args.kernel:
        raise ValueError("--kv-cache and --kernel apply to a built-in model")
    from analysis.factories import load_factory

    factory, label = load_factory(args.target)
    return factory_source(factory, label, args.quantity, args.measure, args.optimizer,
                          args.tensors)


def run(args) -> int:
    variables = parse_vary(args.vary)
    fixed = parse_pairs(args.fix, "--fix", "V=65")
    steps = parse_pairs(args.step, "--step", "D=4")
    threads = use_threads(args.threads)
    from analysis.derive import derive

    source = source_for(args)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    found = derive(source, variables, fixed, steps, held_out=args.held_out, seed=args.seed,
                   progress=progress)
    if args.format == "json":
        emit({**found.to_dict(), "environment": _environment(threads)}, "json")
    elif args.format == "latex":
        print(found.latex())
    else:
        print(text(found, threads))
    return 0 if found.verified else 1


def _environment(threads: int) -> dict:
    import torch

    return {"torch": torch.__version__, "threads": threads}


def text(found, threads: int) -> str:
    """The derivation to read: formula, factored form, terms, verification, conventions."""
    from analysis.derive import reading

    fixed = ", ".join(f"{k}={v}" for k, v in found.fixed.items()) or "none"
    lines = [f"charlm derive {found.label}: {found.quantity}, {found.measure}, in "
             f"{', '.join(found.variables)} (fixed: {fixed})",
             f"  {found.reading()}"]
    if found.factored() != found.reading():
        lines.append(f"  factored: {found.factored()}")
    if found.terms:
        lines.append("  terms: " + "; ".join(f"{k} {reading(v)}"
                                              for k, v in found.terms.items()))
    if found.verified:
        ranges = ", ".join(f"{v} {min(p[v] for p in found.held_out)}.."
                           f"{max(p[v] for p in found.held_out)}" for v in found.variables)
        lines.append(f"  verified: {len(found.held_out)} held-out sizes counted exactly "
                     f"({ranges})")
    else:
        lines.append("  NOT verified:")
        for f in found.failures[:5]:
            if "sizes" in f and "counted" in f:
                shown = ", ".join(f"{k}={v}" for k, v in f["sizes"].items())
                lines.append(f"    at {shown}: {f['what']} counted {f['counted']}, the "
                             f"formula gives {f['formula']}")
            else:
                lines.append(f"    {f.get('message', f)}")
    grid = ", ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in found.grid.items())
    lines.append(f"  points: {found.points} sizes counted in {found.seconds:.1f} s (grid: "
                 f"{grid}; {found.tensors} tensors; torch {_environment(threads)['torch']}, "
                 f"{threads} thread{'s' if threads != 1 else ''})")
    lines.append(f"  convention: {found.convention}")
    lines += [f"  note: {n}" for n in found.notes]
    return fit(lines)
