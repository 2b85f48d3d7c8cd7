"""analysis.timing.rounds_to_add, the top-up of a paired measurement whose interval is still
wider than its target: the arithmetic of an interval that narrows as 1/sqrt(rounds), worked
out by hand, the budget's cap and the cases that add nothing."""

import pytest

from analysis.timing import EXTENSIONS, rounds_to_add


def test_rounds_grow_with_the_square_of_the_width_over_the_target():
    # 9 rounds at +-6% for a 2% target: 9 * (6 / 2)^2 = 81 in all, 72 more
    assert rounds_to_add(9, 0.06, 0.02, round_s=0.01, budget_left_s=1.0) == 72
    # 10 at +-3%: 10 * 2.25 = 22.5, rounded up to 23: 13 more
    assert rounds_to_add(10, 0.03, 0.02, round_s=0.001, budget_left_s=1.0) == 13
    # just outside the target still adds one: ceil(9 * (0.0201 / 0.02)^2) = ceil(9.09) = 10
    assert rounds_to_add(9, 0.0201, 0.02, round_s=0.001, budget_left_s=1.0) == 1


def test_the_budget_left_caps_the_rounds_added():
    # 72 wanted, but 1 s left at 50 ms a round buys 20
    assert rounds_to_add(9, 0.06, 0.02, round_s=0.05, budget_left_s=1.0) == 20
    # 0.99 s left at 0.1 s a round: 9 whole rounds
    assert rounds_to_add(9, 0.06, 0.02, round_s=0.1, budget_left_s=0.99) == 9


@pytest.mark.parametrize(("half_width", "round_s", "left"), [
    (0.02, 0.01, 1.0),   # exactly at the target: converged
    (0.01, 0.01, 1.0),   # inside it
    (0.06, 0.0, 1.0),    # rounds of no measured length
    (0.06, 0.01, 0.0),   # no budget left
    (0.06, 0.01, -0.5),  # the planned rounds overran it
    (0.06, 2.0, 1.0),    # not one more round fits
])
def test_nothing_is_added_when_converged_or_out_of_budget(half_width, round_s, left):
    assert rounds_to_add(9, half_width, 0.02, round_s=round_s, budget_left_s=left) == 0


def test_bad_counts_and_targets_are_refused():
    with pytest.raises(ValueError, match="done >= 1 and target > 0"):
        rounds_to_add(0, 0.06, 0.02, 0.01, 1.0)
    with pytest.raises(ValueError, match="done >= 1 and target > 0"):
        rounds_to_add(9, 0.06, 0.0, 0.01, 1.0)


def test_a_pair_is_topped_up_at_most_twice():
    assert EXTENSIONS == 2
