"""`charlm train`: train a model on a corpus, log losses, save a resumable checkpoint."""

from __future__ import annotations

import math
import sys

from charlm.commands.common import add_model_args
from charlm.train import DEVICES, TrainConfig, train


def register(subparsers):
    p = subparsers.add_parser("train", help="train a model (Adam; the homework's defaults)",
                              description=__doc__)
    add_model_args(p, model_default="rnn")
    d = TrainConfig()
    p.add_argument("--steps", type=int, default=d.steps, help="total optimizer steps")
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="characters per sequence (T)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="sequences per step (B)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--data", default=d.data,
                   help="builtin (generated stories), tinystories, hf:NAME_OR_PATH, or a UTF-8 "
                        "file/folder")
    p.add_argument("--data-chars", type=int,
                   help="corpus size in characters (builtin: 2,000,000; tinystories: 10,000,000)")
    p.add_argument("--val-every", type=int, default=d.val_every, help="steps between val losses")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", choices=DEVICES, default=d.device)
    p.add_argument("--out", help="run directory for checkpoint.pt and log.csv (default runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = TrainConfig(
        model=args.model, embed=args.embed, hidden=args.hidden, layers=args.layers,
        heads=args.heads, block_size=args.block_size, attention=args.attention,
        steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, device=args.device, data=args.data, data_chars=args.data_chars,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every,
        out=args.out or f"runs/{args.model}", resume=args.resume,
    )
    result = train(cfg, progress=not args.no_progress)
    h = result.history
    val = h.dropna(subset=["val_loss"])
    print(f"{cfg.model}: {result.params:,} parameters, {len(result.dataset):,} training "
          f"sequences of {cfg.seq_len}, device {result.device}")
    if len(h):
        print(f"step {int(h.step.iloc[-1])}: train loss {h.train_loss.iloc[0]:.4f} -> "
              f"{h.train_loss.iloc[-1]:.4f}, val loss {val.val_loss.iloc[0]:.4f} -> "
              f"{val.val_loss.iloc[-1]:.4f}, {h.elapsed_s.iloc[-1]:.1f} s")
    print(f"checkpoint {result.checkpoint}, log {result.log}")
    if result.interrupted:
        print(f"charlm train: interrupted at step {int(h.step.iloc[-1])}; continue with "
              f"--resume --out {cfg.out}", file=sys.stderr)
        return 130
    return 0 if math.isfinite(h.train_loss.iloc[-1]) else 1
