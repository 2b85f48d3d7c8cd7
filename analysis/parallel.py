"""One way to spread work that does not depend on time (counts, traces) over the cores:
fresh processes (spawn: nothing inherited from a parent holding threads or a dispatch mode),
results in the order of the inputs. Timings never run here: they need a quiet machine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator


def count_workers() -> int:
    """Processes for work that only counts: one per core, at most 2 (this project's machine
    kind has 2), each of which sets its own single intra-op thread where it counts."""
    return max(1, min(2, os.cpu_count() or 1))


def ordered_map(fn: Callable, items: Iterable, workers: int = 1,
                chunksize: int = 1) -> Iterator:
    """fn(item) for each item, in order; with workers > 1 in that many spawned processes
    (fn and the items must pickle: a module-level function, a functools.partial of one).
    An exception in fn is raised here when its item's turn comes."""
    items = list(items)
    if workers <= 1 or len(items) < 2:
        yield from (fn(item) for item in items)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(fn, items, chunksize=chunksize)


__all__ = ["count_workers", "ordered_map"]
