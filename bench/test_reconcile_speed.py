"""How long the default reconciliation grid takes to count (a performance goal: <= 60 s on 2
CPU cores, both used, as `charlm flops --grid default` uses them): formulas evaluated,
PyTorch's counter on every quantity, every second counter available here on every forward
(`counters.FORWARD_COUNTERS`). Every row must stay exact.
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
    available = {n: c.available() for n, c in counters.FORWARD_COUNTERS.items()}
    seconds = []

    def count():
        start = time.perf_counter()
        frame = reconcile(points, workers=count_workers())
        seconds.append(time.perf_counter() - start)
        return frame

    frame = benchmark.pedantic(count, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        points=len(points), rows=len(frame), exact=int(frame["verdict"].eq("exact").sum()),
        **available, seconds=seconds[0])
    assert frame["verdict"].eq("exact").all()
    forward = frame["quantity"].eq("forward")
    for name in (n for n, here in available.items() if here):  # every forward row
        assert frame.loc[forward, f"measured_{name}"].notna().all(), name
    assert seconds[0] <= GOAL_S, f"default grid took {seconds[0]:.1f} s (goal {GOAL_S} s)"
