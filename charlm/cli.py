"""The `charlm` command line: a thin layer that parses flags into configs and calls the library.

Each subcommand lives in its own module under `charlm.commands` and exposes
`register(subparsers)`; adding a command is adding its module name to COMMANDS.
Errors the user can fix (ValueError, missing files) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), without the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="charlm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"charlm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"charlm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
