"""`charlm compare`: rerun the homework's training comparisons and write curves, tables, samples."""

from __future__ import annotations

import sys

import pandas as pd
import torch

from charlm.commands.common import emit
from charlm.data import load_corpus
from charlm.experiments import ALL, EXPERIMENTS, experiment_names, run_experiment, write_experiment
from charlm.train import DEVICES, resolve_device

COLUMNS = ["model", "params", "steps", "seq_len", "time_per_step_ms", "tokens_per_s",
           "final_train_loss", "final_val_loss", "homework_loss", "homework_steps"]


def register(subparsers):
    p = subparsers.add_parser("compare", help="the homework's model comparisons (loss curves)",
                              description=__doc__)
    p.add_argument("--experiment", choices=[*EXPERIMENTS, ALL], required=True)
    p.add_argument("--steps", type=int,
                   help="cap every run at this many steps (default: the homework's 2000/3000)")
    p.add_argument("--data", default="builtin",
                   help="builtin (default), tinystories, hf:NAME_OR_PATH, or a UTF-8 file/folder")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--val-batches", type=int, default=20,
                   help="validation batches per evaluation (default 20)")
    p.add_argument("--out", default="results/experiments",
                   help="output folder (default results/experiments)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="also keep each run's checkpoint.pt under OUT/EXPERIMENT/RUN/")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    names = experiment_names(args.experiment)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be a positive integer, got {args.steps}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    from analysis.env import environment

    env = environment(device)
    text = load_corpus(args.data)
    tables = []
    for name in names:
        def announce(spec, i, n, name=name):
            if not args.no_progress:
                print(f"[{name}] {i + 1}/{n}: {spec.label}", file=sys.stderr)

        result = run_experiment(name, text, steps=args.steps, device=args.device,
                                seed=args.seed, val_batches=args.val_batches, out=args.out,
                                keep_checkpoints=args.keep_checkpoints,
                                progress=not args.no_progress, on_run=announce)
        files = write_experiment(result, args.out, env=_env_line(env))
        if args.format == "table":
            print(f"== {name}: {result.experiment.description}")
            if result.matching:
                for label, count in result.matching["params"].items():
                    print(f"parameters: {label}: {count:,}")
                print(f"matched hidden width: {result.matching['matched_hidden']}")
        table = result.summary()[COLUMNS].assign(experiment=name)
        if args.format == "table":
            emit(table, "table")
            print(f"wrote {files['summary_md']} and {files['figure']}")
        tables.append(table)
    if args.format != "table":  # one CSV / JSON document for all experiments
        emit(pd.concat(tables, ignore_index=True), args.format)
    return 0


def _env_line(env: dict) -> dict:
    keys = ("device", "device_name", "torch", "threads", "git_commit", "date")
    return {k: env[k] for k in keys if k in env}
