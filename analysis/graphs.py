"""A bench round captured in a CUDA graph: the GPU's launch floor taken away.

Eager small models on a GPU are launch-bound: the host issues each kernel one by one (about
12 us an op on the H200 of `results/reference/gpu-h200/`), so a forward of a few hundred
tiny kernels takes milliseconds of host time and microseconds of GPU time. A CUDA graph
(`torch.cuda.CUDAGraph`) records the kernels of one round once and replays them with one
launch; the runtime model's `--no-fixed-cost` prediction (every fixed cost zero) is the floor
such a replay can approach.

- `GRAPH_PHASES` and `graph_workloads(grid, device)` (in `analysis.workloads`): the phases
  captured, forward, a train step (forward, backward and Adam: PyTorch's whole-network
  capture, with `capturable=True` Adam so its step counter lives on the GPU) and generation
  with the KV cache (greedy: argmax and cat, no host sync; each step's shapes are fixed by
  P and N, so the whole loop is one graph); the bench's model workloads of those phases, on
  CUDA only (none on CPU: `bench/test_graphs.py` then collects nothing and is skipped).
- `graphable(p)`: the prepared round made capturable (a train step's Adam rebuilt with
  capturable=True, its learning rate kept).
- `capture(fn, device)`: warm `fn` on a side stream, record one call in a graph, return the
  replay (a callable). ValueError on a device that is not CUDA.

PyTorch's rules for capture (docs, "CUDA Graphs"): no host synchronisation inside (no
`.item()`, no `.cpu()`), static shapes, the warm-up on a side stream before capture, and
every replay reads and writes the same memory: a graph replays one fixed batch, as the
bench's rounds do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from analysis.workloads import GRAPH_PHASES, Prepared, graph_workloads

WARMUP_CALLS = 3  # side-stream calls before capture (PyTorch's example uses 3)


def graphable(p: Prepared) -> Prepared:
    """`p` with its round made capturable: a TrainStep's Adam rebuilt with capturable=True
    (the same parameters and learning rate; its state is empty, as before the first round);
    other rounds as they are."""
    from charlm.steps import TrainStep

    fn = p.fn
    if isinstance(fn, TrainStep):
        lr = fn.optimizer.param_groups[0]["lr"]
        fn.optimizer = torch.optim.Adam(fn.model.parameters(), lr=lr, capturable=True)
    return p


def capture(fn: Callable[[], object], device: str | torch.device = "cuda",
            warmup: int = WARMUP_CALLS) -> Callable[[], None]:
    """The replay of one call of `fn` captured in a CUDA graph, after `warmup` calls on a
    side stream (which also makes a train step's optimizer state and gradients, so that the
    captured call allocates the same tensors every replay)."""
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"a CUDA graph needs a CUDA device, got {device.type!r}")
    if warmup < 1:
        raise ValueError(f"warmup must be >= 1, got {warmup}")
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    torch.cuda.synchronize(device)
    return graph.replay


def graphed_round(p: Prepared, device: str | torch.device = "cuda") -> Callable[[], None]:
    """One round of the prepared workload as a CUDA-graph replay (`graphable`, `capture`)."""
    return capture(graphable(p).fn, device)


__all__ = ["GRAPH_PHASES", "capture", "graph_workloads", "graphable", "graphed_round"]
