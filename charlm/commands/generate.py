"""`charlm generate`: sample text from a trained checkpoint."""

from __future__ import annotations

from charlm.train import DEVICES, load_checkpoint


def register(subparsers):
    p = subparsers.add_parser("generate", help="sample text from a checkpoint",
                              description=__doc__)
    p.add_argument("checkpoint", help="checkpoint.pt, or the run directory holding it")
    p.add_argument("--prompt", default="",
                   help="text to continue (default: one random character, as the homework)")
    p.add_argument("--length", type=int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, help="sample among the k most likely characters")
    p.add_argument("--greedy", action="store_true", help="always take the most likely character")
    p.add_argument("--seed", type=int, help="seed for reproducible sampling")
    p.add_argument("--use-cache", action="store_true", help="KV cache (transformer only)")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.set_defaults(func=run)


def run(args) -> int:
    ckpt = load_checkpoint(args.checkpoint, device=args.device)
    text = ckpt.generate(
        args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
        greedy=args.greedy, seed=args.seed, use_cache=True if args.use_cache else None,
    )
    print(text)
    return 0
