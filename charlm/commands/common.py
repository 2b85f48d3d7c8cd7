"""Flags shared by several subcommands, and their conversion into configs."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from charlm.models.registry import ATTENTION_KINDS, MODELS, ModelConfig


def add_model_args(parser: argparse.ArgumentParser, vocab: bool = False, model_default=None):
    """--model and the size flags; unset sizes take the model's homework defaults."""
    parser.add_argument("--model", choices=list(MODELS), default=model_default,
                        required=model_default is None, help="architecture")
    parser.add_argument("--layers", type=int, help="number of layers (L)")
    parser.add_argument("--hidden", type=int, help="hidden width / n_embd (D)")
    parser.add_argument("--embed", type=int, help="embedding width (E); recurrent models")
    parser.add_argument("--heads", type=int, help="attention heads (H); transformer")
    parser.add_argument("--block-size", type=int, help="context length; transformer")
    parser.add_argument("--attention", choices=ATTENTION_KINDS, help="transformer kernel")
    if vocab:
        parser.add_argument("--vocab", type=int, default=65, help="vocabulary size (V)")


def add_workload_args(parser: argparse.ArgumentParser):
    """The sizes of one measured workload: T, B and, for generation, P, N and the KV cache."""
    parser.add_argument("--seq-len", type=int,
                        help="T (default: block_size; 20 for recurrent models)")
    parser.add_argument("--batch", type=int, default=1, help="B")
    parser.add_argument("--prompt-len", type=int, default=1, help="P, for --quantity generate")
    parser.add_argument("--new-tokens", type=int, default=1, help="N, for --quantity generate")
    parser.add_argument("--kv-cache", action=argparse.BooleanOptionalAction, default=False,
                        help="transformer generation with a KV cache")


def model_config_from_args(args, vocab_size: int | None = None) -> ModelConfig:
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
    parser.add_argument("--format", choices=["table", "csv", "json"], default=default)


def emit(frame: pd.DataFrame | list | dict, fmt: str, stream=None) -> None:
    """Print a result as an aligned table, CSV or JSON."""
    stream = stream or sys.stdout
    if fmt == "json":
        data = frame.to_dict(orient="records") if isinstance(frame, pd.DataFrame) else frame
        stream.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame if isinstance(frame, list) else [frame])
    if fmt == "csv":
        frame.to_csv(stream, index=False)
    else:
        with pd.option_context("display.width", 200, "display.max_columns", None,
                               "display.max_colwidth", 60):
            stream.write(frame.to_string(index=False) + "\n")
