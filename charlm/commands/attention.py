"""charlm attention: heatmaps of the attention weights a trained Transformer computes on a
text, one panel per layer and head (position embeddings included)."""

from __future__ import annotations

from charlm.commands.common import DEVICES, add_force_arg, add_threads_arg, use_threads, writes_out

EXAMPLE = """example:
  charlm attention runs/tf --text "Lily said," --out attention.png"""


def register(subparsers):
    p = subparsers.add_parser("attention", help="attention heatmaps (layer x head) for a text",
                              description=__doc__, epilog=EXAMPLE)
    p.add_argument("checkpoint", help="a transformer checkpoint.pt (or its run folder)")
    p.add_argument("--text", default="Lily said,", help="input text")
    p.add_argument("--layer", type=int, action="append",
                   help="layer to show (0-based; repeat for several; default: all)")
    p.add_argument("--out", required=True,
                   help="figure to write; its suffix names the format (.png, .pdf, .svg, ...)")
    add_force_arg(p)
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where to run: cpu, cuda, or auto (cuda when available)")
    add_threads_arg(p)
    p.set_defaults(func=run)


@writes_out("figure")
def run(args) -> int:
    use_threads(args.threads)
    from analysis.plots import plot_attention_grid
    from charlm.attention import attention_for_text
    from charlm.train import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint, device=args.device)
    maps = attention_for_text(ckpt.model, args.text, ckpt.stoi)  # (L, H, T, T)
    layers = args.layer or list(range(maps.size(0)))
    bad = [i for i in layers if not 0 <= i < maps.size(0)]
    if bad:
        raise ValueError(f"layer {bad[0]} out of range: the model has {maps.size(0)} layers "
                         f"(0..{maps.size(0) - 1})")
    path = plot_attention_grid(maps[layers].numpy(), args.text, args.out, layers=layers,
                               title=f"Attention on {args.text!r} ({ckpt.path})")
    L, H, T, _ = maps.shape
    print(f"{L} layers x {H} heads x {T} x {T} weights; wrote layers {layers} to {path}")
    return 0
