"""How long the default reconciliation grid takes to count (the issue asks < 60 s on 2 CPU
cores): formulas evaluated, PyTorch's counter on every quantity, fvcore on every forward.

    pytest bench/test_reconcile_speed.py --benchmark-only
"""

import pytest

from analysis import counters
from analysis.reconcile import default_grid, reconcile

BUDGET_S = 60.0


@pytest.mark.benchmark(group="reconcile")
def test_default_grid_is_counted_within_budget(benchmark):
    points = default_grid()
    frame = benchmark.pedantic(reconcile, args=(points,), rounds=1, iterations=1,
                               warmup_rounds=0)
    seconds = benchmark.stats.stats.max
    benchmark.extra_info.update(
        points=len(points), rows=len(frame), exact=int(frame["verdict"].eq("exact").sum()),
        fvcore=counters.fvcore_available(), seconds=seconds)
    assert frame["verdict"].eq("exact").all()
    assert seconds < BUDGET_S, f"default grid took {seconds:.1f} s (budget {BUDGET_S} s)"
