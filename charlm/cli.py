"""charlm: train small character-level language models (the models below), sample from them,
and measure what they cost: FLOPs beside their formulas, sequential depth, timings, and
verdicts on written cost answers.

Run "charlm COMMAND --help" for a command's flags and an example.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from charlm import __version__
from charlm.commands.common import MODEL_NAMES, SYMBOL_FLAGS

COMMANDS = [
    "charlm.commands.train",
    "charlm.commands.generate",
    "charlm.commands.flops",
    "charlm.commands.depth",
    "charlm.commands.check_answers",
    "charlm.commands.compare",
    "charlm.commands.attention",
    "charlm.commands.gru_step",
    "charlm.commands.report",
    "charlm.commands.sweep",
    "charlm.commands.merge",
    "charlm.commands.calibrate",
    "charlm.commands.predict_time",
    "charlm.commands.accuracy",
    "charlm.commands.profile",
    "charlm.commands.derive",
    "charlm.commands.grade",
]

# An example for the commands whose modules do not give one (their epilog wins).
EXAMPLES = {
    "check-answers": "charlm check-answers analysis/data/homework_answers.toml\n"
                     "  charlm check-answers --list",
    "report": "charlm report --quick --out /tmp/charlm-report",
}

# Help for flags a command module left without one, by destination name.
FLAG_HELP = {
    "format": "output: an aligned table to read, or csv / json with every detail",
    "device": "where to run: cpu, cuda, or auto (cuda when available)",
    "seed": "random seed",
    "quantity": "what to count",
    "grid": "which grid of sizes",
    "list": "list the choices and exit",
    "out": "where to write the output",
    "file": "input file",
}

# Config field names that reach messages under another name than their flag.
FIELD_ALIASES = {"vocab_size": "vocab", "n_chars": "data_chars", "max_new_tokens": "length"}

OOM_PATTERN = re.compile(r"out of memory|not enough memory|can't allocate|cannot allocate"
                         r"|could not allocate|failed to allocate|tried to allocate",
                         re.IGNORECASE)
SIZE_FLAGS = ("--batch-size", "--batch", "--seq-len", "--hidden", "--layers", "--block-size",
              "--vocab", "--new-tokens")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each flag's help (unless unset, a switch, or already said), text
    kept as written (examples stay on their lines), Markdown backticks dropped."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or "default" in text.lower()
                or not action.option_strings or isinstance(default, bool)):
            return text
        return text + " (default: %(default)s)"

    def _format_text(self, text):
        return super()._format_text(text.replace("`", "") if text else text)

    def _expand_help(self, action):
        return super()._expand_help(action).replace("`", "")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), without the usage block."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's parser. Imports no torch or pandas: those load in the command run."""
    models = ", ".join(MODEL_NAMES)
    parser = Parser(prog="charlm", description=f"{__doc__}\nmodels (--model): {models}")
    parser.add_argument("--version", action="version", version=f"charlm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    for name, command in sub.choices.items():
        if not command.epilog and name in EXAMPLES:
            command.epilog = "example:\n  " + EXAMPLES[name]
        for action in command._actions:
            if action.help is None:
                action.help = FLAG_HELP.get(action.dest, action.dest.replace("_", " "))
    return parser


def flag_names(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Config field names in a library message replaced by the command's flags:
    `batch_size must be ...` -> `--batch-size must be ...`, `hidden: ...` -> `--hidden: ...`,
    `resume=True` -> `--resume`, `device='cuda'` -> `--device cuda`. Only a name followed by
    what a message says about a value (must, a number, =, :, a bracket) is replaced, so prose
    and paths stay as they are."""
    if parser is None:
        return message
    flags = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs:
            flags[action.dest] = longs[0]
    for field, dest in FIELD_ALIASES.items():
        if dest in flags:
            flags.setdefault(field, flags[dest])
    if not flags:
        return message
    names = "|".join(sorted((re.escape(k) for k in flags), key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w\-/.'\"])({names})"
                         rf"(=True\b|='([\w.:+-]+)'|(?= must\b| -?\d| ?=| \(|:))")

    def swap(match):
        flag = flags[match.group(1)]
        if match.group(3) is not None:
            return f"{flag} {match.group(3)}"
        return flag if match.group(2) == "=True" else flag + match.group(2)

    message = pattern.sub(swap, message)
    symbols = {k: flags[v] for k, v in SYMBOL_FLAGS.items() if v in flags}
    if symbols:
        message = re.sub(rf"\b({'|'.join(symbols)})(?= must\b)",
                         lambda m: f"{symbols[m.group(1)]} ({m.group(1)})", message)
    return message


def given_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the flags `argv` sets itself, not by their defaults: `argv`
    parsed again with every default suppressed (so abbreviations and --flag=value count)."""
    defaults = {action: action.default for action in parser._actions}
    try:
        for action in defaults:
            action.default = argparse.SUPPRESS
        given, _ = parser.parse_known_args(argv)
    finally:
        for action, default in defaults.items():
            action.default = default
    return {a.dest for a in parser._actions if a.option_strings and hasattr(given, a.dest)}


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and bool(OOM_PATTERN.search(str(exc)))


def _oom_line(exc: BaseException, parser) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(first) > 160:
        first = first[:157] + "..."
    own = [] if parser is None else [s for a in parser._actions for s in a.option_strings]
    sizes = [f for f in SIZE_FLAGS if f in own] or ["the sizes"]
    on_gpu = type(exc).__name__ == "OutOfMemoryError" or "cuda" in str(exc).lower()
    return (f"out of memory ({first}); try smaller {', '.join(sizes[:4])}"
            + (" or --device cpu" if on_gpu and "--device" in own else ""))


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Output into a pipe closed early (`| head`) ends the
    command quietly with 141 (128 + SIGPIPE, as a shell reports a writer the pipe killed)."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # inside the try: a pipe closed early shows up here
    except BrokenPipeError:
        # Python's advice (library/signal.html, "Note on SIGPIPE"): point stdout at devnull,
        # so that the flush at exit finds no broken pipe either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _run(argv: list[str] | None) -> int:
    command, sub = "", None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        sub = parser._subparsers._group_actions[0].choices.get(command)
        raw = list(sys.argv[1:] if argv is None else argv)
        args.argv = raw[raw.index(command) + 1:] if command in raw else []
        args.given = given_flags(sub, args.argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # one line, also during start-up; says where if it can
        where = f": {exc}" if str(exc) else ""
        print(f"charlm{' ' + command if command else ''}: interrupted{where}", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    except (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            FileExistsError, PermissionError) as exc:
        print(f"charlm {command}: error: {flag_names(_one_line(exc), sub)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if not _is_out_of_memory(exc):
            raise
        print(f"charlm {command}: error: {_oom_line(exc, sub)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) if str(exc) else type(exc).__name__
    return text


if __name__ == "__main__":
    raise SystemExit(main())
