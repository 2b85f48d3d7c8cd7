"""The homework's comparison on the built-in corpus: Elman RNN and GRU, hidden 256, embed 64,
seq 20, batch 32, Adam 1e-3 (notebook cells [16] and [23]), 2000 steps unless --steps says
otherwise.

Writes under the results folder (default results/homework_STEPS_steps/): MODEL/log.csv (the
training log), MODEL/samples.txt, summary.csv and summary.md (first and last losses, time per
100 steps, environment), all titled by the steps really run. Checkpoints go to
RESULTS/checkpoints/MODEL/ when --results is given, else to runs/homework_STEPS_steps/MODEL/
(not committed). A rerun replaces both.

    .venv/bin/python scripts/train_homework.py [--steps 2000] [--device auto] [--threads N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("rnn", "gru")
PROMPTS = ("", "Lily said, \"", "Once upon a time")


def per_100_steps(history) -> float:
    """Training seconds per 100 steps, the first step (one-off start-up) left out."""
    h = history.set_index("step")
    if len(h) < 2:
        return float("nan")
    return 100 * (h.elapsed_s.iloc[-1] - h.elapsed_s.iloc[0]) / (len(h) - 1)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="steps per model (default 2000)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="where to train (default auto: cuda when available)")
    ap.add_argument("--results",
                    help="results folder (default results/homework_STEPS_steps); checkpoints "
                         "then go to RESULTS/checkpoints/")
    ap.add_argument("--threads", type=int,
                    help="torch intra-op threads (default: torch's; 1 avoids oversubscription "
                         "on a shared machine)")
    ap.add_argument("--no-progress", action="store_true", help="no progress output")
    return ap


def folders(steps: int, results: str | None) -> tuple[Path, Path]:
    """(results folder, checkpoint folder) for a run of `steps` steps."""
    name = f"homework_{steps}_steps"
    if results is not None:
        return Path(results), Path(results) / "checkpoints"
    return ROOT / "results" / name, ROOT / "runs" / name


def title(steps: int) -> str:
    return f"# {steps} steps of the homework's RNN and GRU on the built-in corpus"


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    import pandas as pd
    import torch

    from analysis.env import environment
    from charlm.io import atomic_to_csv, atomic_write_text
    from charlm.train import TrainConfig, generate_text, train

    if args.threads:
        torch.set_num_threads(args.threads)
    results, checkpoints = folders(args.steps, args.results)
    rows, samples = [], []
    for name in MODELS:
        cfg = TrainConfig(model=name, embed=64, hidden=256, seq_len=20, batch_size=32, lr=1e-3,
                          steps=args.steps, device=args.device, out=str(checkpoints / name),
                          force=True)
        r = train(cfg, progress=not args.no_progress)
        atomic_to_csv(r.history, results / name / "log.csv")
        val = r.history.dropna(subset=["val_loss"])
        row = dict(
            model=name, params=r.params, steps=int(r.history.step.iloc[-1]),
            first_train_loss=r.history.train_loss.iloc[0],
            last_train_loss=r.history.train_loss.iloc[-1],
            mean_train_loss_last_100=r.history.train_loss.iloc[-100:].mean(),
            first_val_loss=val.val_loss.iloc[0], last_val_loss=val.val_loss.iloc[-1],
            s_per_100_steps=per_100_steps(r.history),
            train_chars=len(r.dataset) * cfg.seq_len, vocab=len(r.dataset.vocab),
        )
        rows.append(row)
        text = [f"## {name}: sampled, temperature 1.0, seed 0..2, 200 characters each"]
        for seed, prompt in enumerate(PROMPTS):
            out = generate_text(r.model, r.dataset.vocab, prompt, 200, seed=seed)
            text.append(f"--- prompt {prompt!r}, seed {seed}\n{out}")
        out = generate_text(r.model, r.dataset.vocab, "Once upon a time", 200, greedy=True)
        text.append(f"--- prompt 'Once upon a time', greedy\n{out}")
        atomic_write_text(results / name / "samples.txt", "\n\n".join(text) + "\n")
        samples.append("\n\n".join(text))
        print(json.dumps(row, default=float))
        print("\n\n".join(text), flush=True)
    summary = pd.DataFrame(rows)
    atomic_to_csv(summary, results / "summary.csv")
    env = environment(r.device)
    md = [
        title(int(summary.steps.max())),
        "",
        "Produced by `scripts/train_homework.py`; hidden 256, embed 64, seq 20, batch 32, "
        "Adam lr 1e-3, seed 2025, built-in corpus (2,000,000 characters, seed 0; last 10% held "
        "out for validation). Validation loss: mean over 640 evenly spaced held-out sequences. "
        "Time: training seconds per 100 steps, validation excluded.",
        "",
        summary.to_markdown(index=False, floatfmt=".4f") if _has_tabulate()
        else "```\n" + summary.to_string(index=False) + "\n```",
        "",
        "Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()),
        "",
        "Samples: see MODEL/samples.txt.",
    ]
    atomic_write_text(results / "summary.md", "\n".join(md) + "\n")
    print(summary.to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
