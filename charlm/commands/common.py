"""Flags shared by several subcommands, their conversion into configs, and the one table
formatter every command prints with.

Nothing heavy is imported at module level: `charlm --help` builds every subcommand's parser,
and must not wait for torch or pandas. The choices below are static lists;
tests/test_cli_help.py checks them against the registries they mirror.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from pathlib import Path

# mirrors charlm.models.registry.MODELS and ATTENTION_KINDS (checked by a test)
MODEL_NAMES = ("rnn", "mlrnn", "gru", "lstm", "mingru", "transformer")
ATTENTION_KINDS = ("flash", "manual")
# mirrors charlm.train.DEVICES
DEVICES = ("auto", "cpu", "cuda")
FORMATS = ("table", "csv", "json")
# Cost-model symbols that reach messages ("size B must be ..."), and their flags.
SYMBOL_FLAGS = {"B": "batch", "T": "seq_len", "P": "prompt_len", "N": "new_tokens",
                "V": "vocab", "L": "layers", "D": "hidden", "E": "embed", "H": "heads"}
TABLE_WIDTH = 100


def add_model_args(parser: argparse.ArgumentParser, vocab: bool = False, model_default=None):
    """--model and the size flags; unset sizes take the model's homework defaults."""
    parser.add_argument("--model", choices=MODEL_NAMES, default=model_default,
                        required=model_default is None, help="architecture")
    parser.add_argument("--layers", type=int,
                        help="number of layers L (default: the model's homework default)")
    parser.add_argument("--hidden", type=int,
                        help="hidden width D, n_embd for the transformer (default: 256 for the "
                             "recurrent models, 128 for the transformer)")
    parser.add_argument("--embed", type=int,
                        help="embedding width E of the recurrent models (default 64)")
    parser.add_argument("--heads", type=int, help="attention heads H of the transformer "
                                                  "(default 4)")
    parser.add_argument("--block-size", type=int,
                        help="context length of the transformer (default 100)")
    parser.add_argument("--attention", choices=ATTENTION_KINDS,
                        help="attention kernel of the transformer (default flash)")
    if vocab:
        parser.add_argument("--vocab", type=int, default=65, help="vocabulary size V")


def add_workload_args(parser: argparse.ArgumentParser):
    """The sizes of one measured workload: T, B and, for generation, P, N and the KV cache."""
    parser.add_argument("--seq-len", type=int,
                        help="sequence length T (default: the block size for the transformer, "
                             "20 for recurrent models)")
    parser.add_argument("--batch", type=int, default=1, help="batch size B")
    parser.add_argument("--prompt-len", type=int, default=1,
                        help="prompt length P, for --quantity generate")
    parser.add_argument("--new-tokens", type=int, default=1,
                        help="new tokens N, for --quantity generate")
    parser.add_argument("--kv-cache", action=argparse.BooleanOptionalAction, default=False,
                        help="transformer generation with a KV cache")


def refuse_unused_sizes(args) -> None:
    """ValueError for a size flag the user set that --quantity does not use (--new-tokens
    with --quantity train). Which quantity uses which size is one table:
    analysis.quantities.REQUIRED_SIZES; a flag left at its default is never refused."""
    from analysis.quantities import REQUIRED_SIZES

    for symbol, dest in SYMBOL_FLAGS.items():
        users = [q for q, sizes in REQUIRED_SIZES.items() if symbol in sizes]
        if dest in args.given and users and args.quantity not in users:
            raise ValueError(f"--{dest.replace('_', '-')} applies only to --quantity "
                             f"{', '.join(users)}")


def model_config_from_args(args, vocab_size: int | None = None):
    from charlm.models.registry import ModelConfig

    return ModelConfig(
        model=args.model,
        vocab_size=vocab_size if vocab_size is not None else args.vocab,
        embed=args.embed,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        block_size=args.block_size,
        attention=args.attention,
    )


def add_format_arg(parser: argparse.ArgumentParser, default: str = "table"):
    parser.add_argument("--format", choices=FORMATS, default=default,
                        help="output: an aligned table to read, or csv / json with every "
                             "detail")


def check_out_path(path, kind: str = "file", force: bool | None = None,
                   resume: bool | None = None) -> Path:
    """Refuse an --out that cannot be what the command writes, before any work is done:
    a file path that is an existing folder, a folder path that is an existing file, a path
    below an existing file, or a figure ("figure": a file) whose suffix is no format
    matplotlib writes. With `force` False (the command's --force not given) and no `resume`,
    also refuse earlier output: an existing file, or a folder holding anything; `resume`
    None: the command has no --resume. ValueError names the user's path."""
    from charlm.io import earlier_output

    path = Path(path)
    if kind in ("file", "figure") and path.is_dir():
        raise ValueError(f"{path} is a folder; give a file path for --out")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ValueError(f"{path} is an existing file; give a folder for --out")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    if kind == "figure":
        from charlm.io import figure_format

        try:
            figure_format(path)
        except ValueError as exc:
            raise ValueError(f"--out {exc}") from None
    if force is None or force or resume:
        return path
    held = earlier_output(path) if kind == "folder" else [path.name] * path.exists()
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        what = "already exists" if kind != "folder" else f"already holds output ({shown})"
        hint = "" if resume is None else "continue it with --resume or "
        raise ValueError(f"{path} {what}: {hint}replace it with --force, or choose "
                         f"another --out")
    return path


FORCE_HELP = "replace what --out already holds (without it an existing --out is refused)"


def add_force_arg(parser: argparse.ArgumentParser, help: str = FORCE_HELP):
    parser.add_argument("--force", action="store_true", help=help)


def writes_out(kind: str = "file"):
    """Decorate a command's run(args): when args.out is set, refuse it as check_out_path
    does (args.force, args.resume where the command has them) and hold its lock
    (charlm.io.output_lock) while run writes; a second writer fails at once."""
    import functools

    def decorate(run):
        @functools.wraps(run)
        def wrapper(args):
            if not getattr(args, "out", None):
                return run(args)
            from charlm.io import output_lock

            check_out_path(args.out, kind)  # the wrong kind, before the lock makes folders
            with output_lock(args.out, "folder" if kind == "folder" else "file"):
                check_out_path(args.out, kind, args.force, getattr(args, "resume", None))
                return run(args)
        return wrapper
    return decorate


def resume_command(command: str, argv: list[str], required: dict[str, str]) -> str:
    """The command line that continues an interrupted run: the same flags (argv), the
    `required` flags that argv lacks ({"--out": "runs/x"}), --resume, no --force."""
    import shlex

    argv = [a for a in argv if a not in ("--force", "--resume")]
    for flag, value in required.items():
        if flag not in argv and not any(a.startswith(flag + "=") for a in argv):
            argv += [flag, value]
    return f"charlm {command} " + " ".join(shlex.quote(a) for a in argv + ["--resume"])


# ------------------------------------------------------------------------ threads

def add_threads_arg(parser: argparse.ArgumentParser, default: int | None = None,
                    help: str = ""):
    """--threads N: torch's CPU threads (torch.set_num_threads); default None: chosen for the
    machine (`default_threads`)."""
    text = help or "torch CPU threads"
    if default is None:
        text += (" (default: 1 on a machine of at most 2 cores, else torch's default less "
                 "the cores that the load average shows busy)")
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=text)


def default_threads(torch_default: int) -> int:
    """The thread count for torch here. Under contention torch's intra-op threads wait on each
    other at every op: on a 2-core machine with other work running (load 1.6), 30 steps of
    the homework's GRU took 22-51 s at torch's default of 2 threads and 0.7-1.7 s at 1, and
    these models are too small to gain much from a second thread anyway. So: 1
    on at most 2 cores, else torch's default less the cores the 1-minute load average shows
    busy (at least 1)."""
    cpus = os.cpu_count() or 1
    if cpus <= 2:
        return 1
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average on this platform
        return torch_default
    return max(1, min(torch_default, int(cpus - busy)))


def use_threads(threads: int | None) -> int:
    """Set torch's CPU threads to `threads` (None: `default_threads`) and return the count
    torch then uses. ValueError names --threads."""
    import torch

    from charlm.validate import positive_int

    if threads is None:
        threads = default_threads(torch.get_num_threads())
    torch.set_num_threads(positive_int("--threads", threads))
    return torch.get_num_threads()


# ------------------------------------------------------------------------ output


def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:  # pandas' NA and NaT, without importing pandas
        return type(value).__name__ in ("NAType", "NaTType")
    except Exception:  # noqa: BLE001
        return False


_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"))


def format_number(value) -> str:
    """A number as a person reads it in a table: blank when empty; integers below a million in
    full with thousands separators, larger ones with an SI suffix to 3 significant digits
    (1.23M, 85.0M, 4.56G); floats to 4 significant digits, never in e-notation between 1e-3 and
    1e6, and in engineering form (12.3e-6) below. Booleans and text pass through."""
    if _is_empty(value):
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
            try:
                return format_number(value.item())
            except (TypeError, ValueError):
                pass
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    size = abs(value)
    for k, (scale, suffix) in enumerate(_SI):
        if size >= scale:
            text = f"{value / scale:#.3g}"  # 3 digits: 85.0M, 1.06G
            if "e" in text and k > 0:  # 999.9995M rounds to 1000M: one unit up
                scale, suffix = _SI[k - 1]
                text = f"{value / scale:#.3g}"
            return text.rstrip(".") + suffix
    if isinstance(value, int):
        return f"{value:,}"
    if size == 0:
        return "0"
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 1e-3:
        return f"{value:.4g}"
    exponent = 3 * math.floor(math.log10(size) / 3)
    return f"{value / 10 ** exponent:.3g}e{exponent}"


def _cell(value) -> str:
    return format_number(value).replace("\n", " ")


def _numeric(values) -> bool:
    seen = [v for v in values if not _is_empty(v)]
    return bool(seen) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool)
        or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iuf") for v in seen)


def format_table(frame, width: int = TABLE_WIDTH) -> str:
    """Rows (a DataFrame, a list of dicts, or one dict) as aligned text no wider than `width`:
    numbers through `format_number` and right-aligned, empty cells blank, and text columns
    narrowed, their cells wrapped onto extra lines, until the table fits."""
    if isinstance(frame, dict):
        frame = [frame]
    if isinstance(frame, list):
        columns = list(dict.fromkeys(k for row in frame for k in row))
        rows = [[row.get(c) for c in columns] for row in frame]
    else:  # a DataFrame
        columns = [str(c) for c in frame.columns]
        rows = [list(r) for r in frame.itertuples(index=False, name=None)]
    if not columns:
        return ""
    numeric = [_numeric([r[i] for r in rows]) for i in range(len(columns))]
    cells = [[_cell(v) for v in r] for r in rows]
    natural = [max([len(columns[i])] + [len(r[i]) for r in cells]) for i in range(len(columns))]
    widths = list(natural)
    gap = 2
    # narrow the widest text column (or header) step by step until the table fits
    # numbers never wrap (a header may, at its spaces); text columns go down to 6 characters
    floor = [max([len(r[i]) for r in cells] + [len(w) for w in columns[i].split()])
             if numeric[i] else min(natural[i], 6) for i in range(len(columns))]
    while sum(widths) + gap * (len(widths) - 1) > width:
        candidates = [i for i in range(len(widths)) if widths[i] > floor[i]]
        if not candidates:
            break
        # first wrap the headers of number columns, then narrow the widest text column
        i = max(candidates, key=lambda j: (numeric[j], widths[j]))
        widths[i] -= 1

    def wrap(text, w):
        if len(text) <= w:
            return [text]
        return textwrap.wrap(text, w, break_long_words=True, break_on_hyphens=False) or [""]

    def render(values, is_header=False):
        parts = [wrap(v, widths[i]) for i, v in enumerate(values)]
        height = max(len(p) for p in parts)
        lines = []
        for k in range(height):
            out = []
            for i, p in enumerate(parts):
                text = p[k] if k < len(p) else ""
                out.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
            lines.append((" " * gap).join(out).rstrip())
        return lines

    lines = render(columns, True)
    for r in cells:
        lines += render(r)
    return "\n".join(lines)


def emit(frame, fmt: str, stream=None) -> None:
    """Print a result (DataFrame, list of dicts or dict) as a table (`format_table`), CSV or
    JSON. CSV and JSON keep every value as it is."""
    stream = stream or sys.stdout
    if fmt == "json":
        data = frame.to_dict(orient="records") if hasattr(frame, "to_dict") and \
            not isinstance(frame, dict) else frame
        stream.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame if isinstance(frame, list) else [frame])
        frame.to_csv(stream, index=False)
        return
    stream.write(format_table(frame) + "\n")


def fit(lines: list[str], width: int = TABLE_WIDTH) -> str:
    """Lines joined, each longer than `width` wrapped (later lines indented)."""
    import textwrap

    out = []
    for line in lines:
        for part in line.splitlines():
            out += [part] if len(part) <= width else \
                textwrap.wrap(part, width, subsequent_indent="  ")
    return "\n".join(out)


def parse_pairs(items: list[str], flag: str, example: str = "T=128") -> dict[str, int]:
    """['T=128', 'D=96'] given as `flag NAME=N` each -> {'T': 128, 'D': 96}; ValueError
    naming `flag` for a pair that is not NAME=INTEGER or a name given twice."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = int(value)
        except ValueError:
            number = None
        if not sep or not name.isidentifier() or number is None:
            raise ValueError(f"{flag} {item!r}: give NAME=INTEGER, e.g. {flag} {example}")
        if name in out:
            raise ValueError(f"{flag} {name} given twice")
        out[name] = number
    return out
