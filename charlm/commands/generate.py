"""charlm generate: sample text from a trained checkpoint (the prompt, then LENGTH new
characters)."""

from __future__ import annotations

from charlm.commands.common import DEVICES, add_threads_arg, use_threads

EXAMPLE = """examples:
  charlm generate runs/gru --prompt "Lily said, \\"" --length 200 --seed 0
  charlm generate runs/tf --prompt "Once" --greedy --use-cache"""


def register(subparsers):
    p = subparsers.add_parser("generate", help="sample text from a checkpoint",
                              description=__doc__, epilog=EXAMPLE)
    p.add_argument("checkpoint", help="checkpoint.pt, or the run folder holding it")
    p.add_argument("--prompt", default="",
                   help="text to continue (default: one random character, as the homework)")
    p.add_argument("--length", type=int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="divides the logits before sampling: below 1 is more conservative, "
                        "above 1 more varied")
    p.add_argument("--top-k", type=int, help="sample among the k most likely characters")
    p.add_argument("--greedy", action="store_true", help="always take the most likely character")
    p.add_argument("--seed", type=int, help="seed for reproducible sampling (default: random)")
    p.add_argument("--use-cache", action="store_true",
                   help="reuse attention keys and values (KV cache; transformer only)")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where to run: cpu, cuda, or auto (cuda when available)")
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    use_threads(args.threads)
    from charlm.train import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint, device=args.device)
    text = ckpt.generate(
        args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
        greedy=args.greedy, seed=args.seed, use_cache=True if args.use_cache else None,
    )
    print(text)
    return 0
