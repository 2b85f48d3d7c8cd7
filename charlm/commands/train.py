"""charlm train: train one model on a corpus with Adam (the homework's defaults), log its
losses to OUT/log.csv and save a resumable OUT/checkpoint.pt.

Ctrl-C or SIGTERM (a scheduler's stop, kill PID) finishes the current step, saves the
checkpoint and prints how to continue; the exit status is then 130 (Ctrl-C) or 143
(SIGTERM). A second Ctrl-C stops at once without saving. An OUT folder that already holds a
run is refused: continue it with --resume, or replace it with --force; so is one that another
run is writing (it holds OUT's lock), at once. OUT/log.csv records each step's thread count.
"""

from __future__ import annotations

import math
import sys

from charlm.commands.common import (
    DEVICES,
    add_model_args,
    add_threads_arg,
    check_out_path,
    resume_command,
    use_threads,
)

# TrainConfig's defaults, here so that building the parser imports no torch
# (tests/test_cli_help.py checks them against charlm.train.TrainConfig)
DEFAULTS = dict(steps=2000, seq_len=20, batch_size=32, lr=1e-3, seed=2025, device="auto",
                data="builtin", val_every=100, checkpoint_every=500)
EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report

EXAMPLE = """examples:
  charlm train --model gru --steps 2000 --out runs/gru
  charlm train --model transformer --layers 2 --seq-len 100 --out runs/tf
  charlm train --model gru --steps 4000 --out runs/gru --resume"""


def register(subparsers):
    p = subparsers.add_parser("train", help="train a model (Adam; the homework's defaults)",
                              description=__doc__, epilog=EXAMPLE)
    add_model_args(p, model_default="rnn")
    d = DEFAULTS
    p.add_argument("--steps", type=int, default=d["steps"],
                   help="total optimizer steps, counting those before a --resume")
    p.add_argument("--seq-len", type=int, default=d["seq_len"],
                   help="characters per training sequence (T)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help="sequences per step (B)")
    p.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate")
    p.add_argument("--data", default=d["data"],
                   help="builtin (generated stories, offline), tinystories, hf:NAME_OR_PATH, "
                        "or a UTF-8 text file or folder of *.txt files")
    p.add_argument("--data-chars", type=int,
                   help="corpus size in characters (default: builtin 2,000,000; "
                        "tinystories 10,000,000; a file: all of it)")
    p.add_argument("--val-every", type=int, default=d["val_every"],
                   help="steps between validation losses")
    p.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"],
                   help="steps between checkpoint saves (the last step always saves)")
    p.add_argument("--seed", type=int, default=d["seed"],
                   help="seed of the weights and the batch order (the homework's)")
    p.add_argument("--device", choices=DEVICES, default=d["device"],
                   help="where to train: cpu, cuda, or auto (cuda when available)")
    add_threads_arg(p)
    p.add_argument("--out", help="run folder for checkpoint.pt and log.csv "
                                 "(default: runs/MODEL)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from its checkpoint")
    p.add_argument("--force", action="store_true",
                   help="replace a run that OUT already holds (its checkpoint and log)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress output (a bar on a terminal, else a line every few "
                        "seconds)")
    p.set_defaults(func=run)


def run(args) -> int:
    from charlm.train import TrainConfig, train

    out = args.out or f"runs/{args.model}"
    check_out_path(out, "folder")  # an existing run: train() refuses it, under OUT's lock
    threads = use_threads(args.threads)
    cfg = TrainConfig(
        model=args.model, embed=args.embed, hidden=args.hidden, layers=args.layers,
        heads=args.heads, block_size=args.block_size, attention=args.attention,
        steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, device=args.device, data=args.data, data_chars=args.data_chars,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every,
        out=out, resume=args.resume, force=args.force,
    )
    result = train(cfg, progress=not args.no_progress)
    h = result.history
    val = h.dropna(subset=["val_loss"])
    print(f"{cfg.model}: {result.params:,} parameters, {len(result.dataset):,} training "
          f"sequences of {cfg.seq_len}, device {result.device}, {threads} CPU thread(s)")
    if len(h):
        line = (f"step {int(h.step.iloc[-1])}: train loss {h.train_loss.iloc[0]:.4f} -> "
                f"{h.train_loss.iloc[-1]:.4f}")
        if len(val):
            line += f", val loss {val.val_loss.iloc[0]:.4f} -> {val.val_loss.iloc[-1]:.4f}"
        print(f"{line}, {h.elapsed_s.iloc[-1]:.1f} s")
    print(f"checkpoint {result.checkpoint}, log {result.log}")
    if result.interrupted:
        step = int(h.step.iloc[-1]) if len(h) else 0
        print(f"charlm train: interrupted at step {step} ({result.signal}); checkpoint saved; "
              f"continue with: {continue_command(args, out)}", file=sys.stderr)
        return EXIT_STATUS.get(result.signal, 130)
    return 0 if len(h) and math.isfinite(h.train_loss.iloc[-1]) else 1


def continue_command(args, out: str) -> str:
    """The command line that continues this run: the same flags, --resume, no --force."""
    return resume_command("train", args.argv or [], {"--model": args.model, "--out": out})
