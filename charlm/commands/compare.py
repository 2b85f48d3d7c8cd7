"""charlm compare: rerun the homework's training comparisons (RNN vs GRU, RNN depth, GRU vs an
8-layer Transformer), and compare five architectures (RNN, GRU, LSTM, minGRU, Transformer) at
matched parameter counts, on one corpus, and write loss curves, parameter counts, time per
step, tokens/s, final losses and samples under OUT/EXPERIMENT/ (default OUT: runs/compare,
git-ignored).

An OUT/EXPERIMENT/ that holds earlier output is refused unless --resume or --force, and one
that another compare is writing (its lock) is refused at once. Ctrl-C or SIGTERM stops as
`charlm train` does (the current step finishes and is saved; exit 130 or 143): the finished
runs and the stopped run's checkpoint stay in OUT/EXPERIMENT/, and --resume continues: the
finished runs are kept, the stopped one resumes from its checkpoint, the others run."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from charlm.commands.common import (
    DEVICES,
    FORMATS,
    add_threads_arg,
    check_out_path,
    emit,
    fit,
    format_table,
    resume_command,
    use_threads,
)

# charlm.experiments.EXPERIMENTS' names, here so that building the parser imports no torch
# (a test checks they agree)
EXPERIMENT_NAMES = ("rnn-vs-gru", "rnn-vs-gru-long", "rnn-layers", "gru-vs-transformer-8l",
                    "architectures")
ALL = "all"
TABLE_COLUMNS = ["model", "params", "steps", "seq_len", "time_per_step_ms", "tokens_per_s",
                 "final_train_loss", "final_val_loss", "homework_loss", "homework_steps"]
# csv and json add whether each run learned (see charlm.experiments.LEARN_MARGIN)
COLUMNS = [*TABLE_COLUMNS, "unigram_entropy", "learned", "init", "threads"]
DEFAULT_OUT = "runs/compare"
# the table's headings (csv and json keep the column names above)
HEADINGS = {"seq_len": "T", "time_per_step_ms": "ms/step", "tokens_per_s": "tokens/s",
            "final_train_loss": "train loss", "final_val_loss": "val loss",
            "homework_loss": "homework loss", "homework_steps": "at step"}

EXAMPLE = """examples:
  charlm compare --experiment rnn-vs-gru --steps 200 --out runs/compare
  charlm compare --experiment rnn-vs-gru --steps 200 --out runs/compare --resume
  charlm compare --experiment all --format json"""


def register(subparsers):
    p = subparsers.add_parser("compare", help="the homework's model comparisons (loss curves)",
                              description=__doc__, epilog=EXAMPLE)
    p.add_argument("--experiment", choices=[*EXPERIMENT_NAMES, ALL], required=True,
                   help="which comparison (all: every one)")
    p.add_argument("--steps", type=int,
                   help="cap every run at this many steps (default: the homework's 2000/3000)")
    p.add_argument("--data", default="builtin",
                   help="builtin, tinystories, hf:NAME_OR_PATH, or a UTF-8 file/folder")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to train: cpu, cuda, or auto (cuda when available)")
    p.add_argument("--seed", type=int, default=2025, help="seed of every run")
    add_threads_arg(p)
    p.add_argument("--val-batches", type=int, default=20,
                   help="validation batches per evaluation")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="output folder, one subfolder per experiment")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue an interrupted comparison in OUT: keep its finished runs "
                            "(and finished experiments), resume the stopped run, run the rest")
    again.add_argument("--force", action="store_true",
                       help="replace the experiment's earlier output in OUT")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="also keep each run's checkpoint.pt under OUT/EXPERIMENT/RUN/")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="output: an aligned table to read, or csv / json with every detail")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress output (a bar on a terminal, else a line every few "
                        "seconds)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_out_path(args.out, "folder")
    from charlm.validate import check_device, positive_int

    for flag in ("steps", "threads", "val_batches"):  # before any corpus or model is made
        positive_int("--" + flag.replace("_", "-"), getattr(args, flag), allow_none=True)
    check_device(args.device)  # before any folder is made
    from charlm.experiments import experiment_names
    from charlm.io import output_lock

    names = experiment_names(args.experiment)
    with ExitStack() as locks:  # every experiment's folder, before any work
        for name in names:
            folder = locks.enter_context(output_lock(Path(args.out) / name))
            check_out_path(folder, "folder", args.force, args.resume)
        return _compare(args, names)


def _compare(args, names: list[str]) -> int:
    import pandas as pd

    from analysis.env import environment
    from analysis.plots import training_curves
    from charlm.data import load_corpus
    from charlm.experiments import run_experiment, write_experiment, written_summary
    from charlm.train import resolve_device

    threads = use_threads(args.threads)
    device = resolve_device(args.device)
    env = environment(device)
    text = load_corpus(args.data)
    tables = []
    for name in names:
        def announce(spec, i, n, name=name):
            if not args.no_progress:
                print(f"[{name}] {i + 1}/{n}: {spec.label}", file=sys.stderr, flush=True)

        done = written_summary(args.out, name) if args.resume else None
        if done is not None:  # complete before the interruption: kept as it is
            table = done.reindex(columns=COLUMNS).assign(experiment=name)
            if args.format == "table":
                print(fit([f"== {name}: complete in {Path(args.out) / name}, kept",
                           format_table(table_rows(table))]))
            tables.append(table)
            continue
        try:
            result = run_experiment(name, text, steps=args.steps, device=args.device,
                                    seed=args.seed, val_batches=args.val_batches,
                                    out=args.out, progress=not args.no_progress,
                                    on_run=announce, resume=args.resume)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: what ran is kept, say how on
            where = f": {exc}" if str(exc) else ""
            command = resume_command("compare", args.argv or [],
                                     {"--experiment": args.experiment, "--out": args.out})
            print(f"charlm compare: interrupted{where}; continue with: {command}",
                  file=sys.stderr)
            return getattr(exc, "exit_status", 130)
        files = write_experiment(result, args.out, env=_env_line(env),
                                 keep_checkpoints=args.keep_checkpoints, plot=training_curves)
        table = result.summary()[COLUMNS].assign(experiment=name)
        if args.format == "table":
            lines = [f"== {name}: {result.experiment.description} ({threads} CPU thread(s))"]
            lines.append(format_table(table_rows(table)))
            if result.matching:
                m = result.matching
                lines.append(f"hidden widths solved for the parameter count closest to "
                             f"{m['target_label']}'s {m['target_params']:,} (vocabulary of "
                             f"{m['vocab_size']}):")
                lines.append(format_table(result.summary()[["model", "hidden", "params"]]))
            lines += result.notes()
            lines.append(f"wrote {files['summary_md']} and {files['figure']}")
            print(fit(lines))
        tables.append(table)
    if args.format != "table":  # one CSV / JSON document for all experiments
        emit(pd.concat(tables, ignore_index=True), args.format)
    return 0


def table_rows(table) -> list[dict]:
    """The summary's rows under the table's short headings; the homework's step count only
    where it has a loss."""
    rows = []
    for row in table[TABLE_COLUMNS].to_dict(orient="records"):
        if row.get("homework_loss") is None or row["homework_loss"] != row["homework_loss"]:
            row["homework_steps"] = None
        rows.append({HEADINGS.get(k, k): v for k, v in row.items()})
    return rows


def _env_line(env: dict) -> dict:
    keys = ("device", "device_name", "torch", "threads", "git_commit", "date")
    return {k: env[k] for k in keys if k in env}
