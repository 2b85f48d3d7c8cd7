"""The checker's two grids of sizes, GRID and QUICK_GRID, read through what they decide: how
many points an answer is measured on and which point is its counterexample (the smallest,
by the sum of its sizes, where the answer and the derivation differ; a symbolic search from
1 when they agree on the whole grid). Each answer below is the derived expression plus a
term that vanishes on all sizes but one, so its counterexample names that size's value in
the grid; every number is worked out by hand from the grids as the module documents them:
GRID T (2, 5), D (4, 8), L (1, 2, 3), H (1, 2), V (5); QUICK_GRID T (2, 3), D (4), L (1, 2),
H (1, 2), V (5)."""

import pytest

from analysis.checker import GRID, QUICK_GRID, check_question, homework_questions
from analysis.verdicts import Verdict

DEPTH = "rnn.generate.sequential_matmuls"  # derived L*T (mlrnn: T, D and L are varied)
PER_HEAD = "transformer.layer.qkv_per_head.flops"  # derived 6*D^2*T/H (T, D and H varied)


def _check(qid, answer, grid):
    return check_question(homework_questions()[qid], answer, grid)


@pytest.mark.parametrize(("grid", "points"), [(GRID, 2 * 2 * 3), (QUICK_GRID, 2 * 1 * 2)])
def test_a_right_answer_is_measured_on_every_point_of_the_grid(grid, points):
    row = _check(DEPTH, "L*T", grid)
    assert row["verdict"] == Verdict.CORRECT and row["counterexample"] is None
    assert row["measured_points"] == points
    assert f"derived agrees with measurement on {points} grid points" in row["reasoning"]


# (answer, GRID's counterexample, QUICK_GRID's): sizes, answered, derived and measured (the
# derived value where the point is on the grid, so measured there; None where it was searched)
CASES = [
    # zero at T = 2 only: the first point with T = 5 (quick: T = 3)
    ("L*T + T^2 - 2*T", ({"D": 4, "L": 1, "T": 5}, 5 + 25 - 10, 5, 5),
     ({"D": 4, "L": 1, "T": 3}, 3 + 9 - 6, 3, 3)),
    # zero at T = 5 only: T = 2 first on both grids
    ("L*T + T^2 - 5*T", ({"D": 4, "L": 1, "T": 2}, 2 + 4 - 10, 2, 2),
     ({"D": 4, "L": 1, "T": 2}, 2 + 4 - 10, 2, 2)),
    # zero at D = 4 only: D = 8; the quick grid has only D = 4, so it is searched from 1
    ("L*T + D - 4", ({"D": 8, "L": 1, "T": 2}, 2 + 4, 2, 2),
     ({"D": 1, "L": 1, "T": 1}, 1 - 3, 1, None)),
    ("L*T + D - 8", ({"D": 4, "L": 1, "T": 2}, 2 - 4, 2, 2),
     ({"D": 4, "L": 1, "T": 2}, 2 - 4, 2, 2)),
    # zero at L = 1 and 2: L = 3; not on the quick grid: searched, D = 1, L = 3, T = 1 first
    ("L*T + (L-1)*(L-2)*D", ({"D": 4, "L": 3, "T": 2}, 6 + 2 * 4, 6, 6),
     ({"D": 1, "L": 3, "T": 1}, 3 + 2, 3, None)),
    # zero at L = 1 and 3: L = 2 first on both
    ("L*T + (L-1)*(L-3)*D", ({"D": 4, "L": 2, "T": 2}, 4 - 4, 4, 4),
     ({"D": 4, "L": 2, "T": 2}, 4 - 4, 4, 4)),
    # zero at L = 2 and 3: L = 1
    ("L*T + (L-2)*(L-3)*D", ({"D": 4, "L": 1, "T": 2}, 2 + 2 * 4, 2, 2),
     ({"D": 4, "L": 1, "T": 2}, 2 + 2 * 4, 2, 2)),
    # zero at V = 5, the only vocabulary on both grids: searched from 1 in D, L, T, V
    ("L*T + (V-5)*D", ({"D": 1, "L": 1, "T": 1, "V": 1}, 1 - 4, 1, None),
     ({"D": 1, "L": 1, "T": 1, "V": 1}, 1 - 4, 1, None)),
]


@pytest.mark.parametrize(("answer", "on_grid", "on_quick"), CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("which", ["grid", "quick"])
def test_the_counterexample_is_the_smallest_point_where_the_answer_differs(
        answer, on_grid, on_quick, which):
    grid, (sizes, answered, derived, measured) = {"grid": (GRID, on_grid),
                                                  "quick": (QUICK_GRID, on_quick)}[which]
    row = _check(DEPTH, answer, grid)
    assert row["verdict"] == Verdict.INCORRECT
    assert row["counterexample"] == {"sizes": sizes, "answered": answered, "derived": derived,
                                     "measured": measured}


@pytest.mark.parametrize("which", ["grid", "quick"])
def test_the_heads_of_both_grids_decide_a_per_head_counterexample(which):
    grid = {"grid": GRID, "quick": QUICK_GRID}[which]
    # 6 D^2 T / H at T = 2, D = 4: 192 / H. Zero at H = 1 only: the first point with H = 2
    row = _check(PER_HEAD, "6*D^2*T/H + (H-1)*D^2", grid)
    assert row["counterexample"] == {"sizes": {"D": 4, "H": 2, "T": 2}, "answered": 96 + 16,
                                     "derived": 96, "measured": 96}
    # zero at H = 2 only: H = 1 first
    row = _check(PER_HEAD, "6*D^2*T/H + (H-2)*D^2", grid)
    assert row["counterexample"] == {"sizes": {"D": 4, "H": 1, "T": 2}, "answered": 192 - 16,
                                     "derived": 192, "measured": 192}
    # T x D x H: 2 x 2 x 2 on GRID, 2 x 1 x 2 on QUICK_GRID
    assert row["measured_points"] == {"grid": 8, "quick": 4}[which]
