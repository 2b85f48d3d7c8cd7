"""Quantities and their runners: what a cost model predicts, a counter measures and a tracer
traces, and the one callable each of them runs.

Quantities: params, forward (no grad, all T positions), backward (of the cross-entropy alone,
its forward run beforehand), train (one `charlm.steps.TrainStep`: forward, backward and Adam's
update) and generate (N greedy tokens after a P-token prompt, optionally with the KV cache).
`runner` turns a model and sizes into the zero-argument callable that runs one of them; every
measurement of this project runs exactly those callables. `shapes_only` runs them without
data (fake tensors; the meta device is the other way, see `analysis.trace`'s meta shortcut).

Below the counters, tracers and bench workloads (`analysis.workloads`), which all import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.utils._python_dispatch
from torch import nn

from analysis.architectures import ARCHITECTURES, architecture
from charlm.models.registry import ModelConfig
from charlm.steps import TrainStep, lm_loss
from charlm.validate import positive_int

QUANTITIES = ("params", "forward", "backward", "train", "generate")
REQUIRED_SIZES = {"params": (), "forward": ("B", "T"), "backward": ("B", "T"),
                  "train": ("B", "T"), "generate": ("B", "P", "N")}
def check_request(cfg: ModelConfig, quantity: str, sizes: dict, kv_cache: bool = False) -> None:
    """ValueError for a quantity or sizes the model cannot run."""
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; choose from {', '.join(QUANTITIES)}")
    for key in REQUIRED_SIZES[quantity]:
        positive_int(f"{quantity} size {key}", sizes.get(key))
    if quantity in ("forward", "backward", "train"):
        cfg.check_seq_len(sizes["T"])
    if kv_cache and not (architecture(cfg.model).kv_cache and quantity == "generate"):
        with_cache = [a.name for a in ARCHITECTURES.values() if a.kv_cache]
        raise ValueError(f"kv_cache=True (a KV cache) applies only to generate, of "
                         f"{', '.join(with_cache)}")


# ---------------------------------------------------------------------------- running


def token_ids(vocab: int, batch: int, length: int, seed: int = 0,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (B, length) input ids and targets, drawn on the CPU and moved to `device`."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, vocab, (batch, length), generator=gen)
    targets = torch.randint(0, vocab, (batch, length), generator=gen)
    return idx.to(device), targets.to(device)


def runner(model: nn.Module, quantity: str, sizes: dict, kv_cache: bool = False,
           device: str | torch.device = "cpu", seed: int = 0) -> Callable[[], object]:
    """The callable that runs `quantity` once on `model` (its train/eval mode set here).

    backward: the forward runs now, so the callable is `loss.backward` of the cross-entropy
    (only one call possible). train: a `TrainStep` on a fixed batch (callable repeatedly).
    """
    vocab = model.vocab_size
    if quantity == "generate":
        model.eval()
        prompt, _ = token_ids(vocab, sizes["B"], sizes["P"], seed, device)
        kw = {"use_cache": True} if kv_cache else {}
        return lambda: model.generate(prompt, sizes["N"], greedy=True, **kw)
    idx, targets = token_ids(vocab, sizes["B"], sizes["T"], seed, device)
    if quantity == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                return model.forward_sequence(idx)[0]

        return forward
    model.train()
    if quantity == "backward":
        return lm_loss(model, idx, targets).backward
    if quantity == "train":
        return TrainStep(model, idx, targets)
    raise ValueError(f"quantity {quantity!r} runs no code; choose from "
                     f"{', '.join(q for q in QUANTITIES if REQUIRED_SIZES[q])}")


@contextlib.contextmanager
def shapes_only() -> Iterator[object]:
    """Tensors made inside carry shapes, dtypes and devices but no data (PyTorch's fake
    tensors): models of any size are built and run without allocating, and ops dispatch to
    the same CPU kernels (SDPA included) as with real tensors, so dispatch-level counters and
    tracers see the same ops. Values cannot be read inside."""
    from torch._subclasses.fake_tensor import FakeTensorMode  # private, stable since 2.0

    with FakeTensorMode() as mode:
        yield mode
