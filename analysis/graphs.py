"""Bench rounds without eager's launch floor: captured in a CUDA graph, or torch.compile'd.

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

- `COMPILE_PHASES` and `compiled_workloads(grid, device)` (in `analysis.workloads`): forward
  and train step of the models whose forward is not a loop over positions (the Transformers
  and the minGRU's scan), on CUDA only. `compiled_round(p, backend, mode)`: the round
  `torch.compile`d (dynamo traces the whole call: a train step's forward and backward become
  fused kernels, with a graph break at `backward()`, and Adam's step its own graph), called
  `COMPILE_WARMUP` times so that compiling is done before any timing. `p.fn` itself stays
  eager, so the bench counts FLOPs and memory on the same eager ops as for every row.
  Inductor (the default backend) fuses elementwise chains into fewer kernels: it removes
  launches rather than launch cost, so a compiled round sits between eager and a replay;
  mode="reduce-overhead" adds CUDA graphs on top.

PyTorch's rules for capture (docs, "CUDA Graphs"): no host synchronisation inside (no
`.item()`, no `.cpu()`), static shapes, the warm-up on a side stream before capture, and
every replay reads and writes the same memory: a graph replays one fixed batch, as the
bench's rounds do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from analysis.workloads import (
    COMPILE_PHASES,
    GRAPH_PHASES,
    Prepared,
    compiled_workloads,
    graph_workloads,
)

WARMUP_CALLS = 3  # side-stream calls before capture (PyTorch's example uses 3)
COMPILE_BACKEND = "inductor"  # torch.compile's default; "eager"/"aot_eager" only trace
COMPILE_WARMUP = 2  # calls before timing: the first compiles, the second runs compiled


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


def compiled_round(p: Prepared, backend: str = COMPILE_BACKEND, mode: str | None = None,
                   warmup: int = COMPILE_WARMUP) -> Callable[[], object]:
    """One round of the prepared workload torch.compile'd with `backend` and `mode`, called
    `warmup` times (compiling happens there, not in what is timed). Dynamo's caches are
    cleared first (`torch.compiler.reset`): every round shares this function's code, so
    without it the bench's later workloads would be guard failures, and after dynamo's
    recompile limit they would silently run eager."""
    if warmup < 1:
        raise ValueError(f"warmup must be >= 1 (the first call compiles), got {warmup}")
    fn = p.fn
    torch.compiler.reset()
    compiled = torch.compile(lambda: fn(), backend=backend, mode=mode, dynamic=False)
    with warnings.catch_warnings():
        # torch >= 2.13's dynamo meets its own deprecated torch.jit.script_method while
        # tracing Adam's step; under pytest's "error" filter that notice would stop the trace
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script_method.*deprecated",
                                category=DeprecationWarning)
        for _ in range(warmup):
            compiled()
    return compiled


__all__ = ["COMPILE_PHASES", "GRAPH_PHASES", "capture", "compiled_round", "compiled_workloads",
           "graph_workloads", "graphable", "graphed_round"]
