"""How long the default reconciliation grid takes to count (a performance goal: <= 60 s on 2
CPU cores, both used, as `charlm flops --grid default` uses them): formulas evaluated,
PyTorch's counter on every quantity, fvcore on every forward. Every row must stay exact.
Timed with perf_counter around the one call, so the goal is checked in smoke mode too.

    pytest bench/test_reconcile_speed.py --benchmark-only
"""

import time

import pytest

from analysis import counters
from analysis.parallel import count_workers
from analysis.reconcile import default_grid, reconcile

GOAL_S = 60.0


@pytest.mark.benchmark(group="reconcile")
def test_default_grid_is_counted_within_budget(benchmark):
    points = default_grid()
    seconds = []

    def count():
        start = time.perf_counter()
        frame = reconcile(points, workers=count_workers())
        seconds.append(time.perf_counter() - start)
        return frame

    frame = benchmark.pedantic(count, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        points=len(points), rows=len(frame), exact=int(frame["verdict"].eq("exact").sum()),
        fvcore=counters.fvcore_available(), seconds=seconds[0])
    assert frame["verdict"].eq("exact").all()
    if counters.fvcore_available():  # fvcore traces the meta device: every forward row
        forward = frame["quantity"].eq("forward")
        assert frame.loc[forward, "measured_fvcore"].notna().all()
    assert seconds[0] <= GOAL_S, f"default grid took {seconds[0]:.1f} s (goal {GOAL_S} s)"
