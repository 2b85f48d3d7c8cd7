"""analysis.accuracy and `charlm accuracy`: held-out configurations outside every grid, two
copies timed in alternating rounds, and the accuracy table on hand-made frames."""

import pandas as pd
import pytest

from analysis.accuracy import HELD_OUT, accuracy_table, time_twice
from analysis.workloads import Workload, model_workloads, reference_workloads


def test_no_held_out_configuration_is_a_grid_workload():
    def key(w):  # the sweep label aside, the same configuration
        return (w.variant, w.phase, *sorted(w.sizes().items()))

    in_grids = {key(w) for g in ("quick", "default", "full")
                for w in model_workloads(g) + reference_workloads(g)}
    assert len(HELD_OUT) >= 10
    assert not [w.id for w in HELD_OUT if key(w) in in_grids]
    phases = {w.phase for w in HELD_OUT}
    assert {"forward", "train", "generate", "generate_cache"} <= phases


class Clock:
    """Each reading advances by the next step: round k of the run lasts steps[k]."""

    def __init__(self, steps):
        self.t, self.steps, self.reads = 0.0, iter(steps), 0

    def __call__(self):
        self.reads += 1
        if self.reads % 2 == 0:  # the end of a round: advance by its length
            self.t += next(self.steps)
        return self.t


def test_time_twice_alternates_the_copies_and_takes_each_ones_median():
    w = Workload("rnn", "forward", batch=1, seq_len=2, hidden=4)
    # 2 pilot rounds (0.01 s: one call a round), then 9 rounds of each copy, alternating
    # A B, B A, A B, ...: A's rounds last 1..9 ms in order, B's 10 ms each
    a = [k * 1e-3 for k in range(1, 10)]
    steps = [0.01, 0.01]
    for r in range(9):
        steps += [a[r], 0.01] if r % 2 == 0 else [0.01, a[r]]
    out = time_twice(w, budget_s=1e-6, clock=Clock(steps))
    assert out["rounds"] == 9 and out["calls_per_round"] == 1
    assert out["a"][0] == pytest.approx(5e-3)  # median of 1..9 ms
    # 9 rounds: the 95% interval of the median is [x_(2), x_(8)] (P(Bin(9, 1/2) <= 1) = 0.0195)
    assert out["a"][1:] == pytest.approx((2e-3, 8e-3))
    assert out["b"] == pytest.approx((0.01, 0.01, 0.01))
    assert out["yardstick_s"] > 0


def test_accuracy_table_by_hand():
    frame = pd.DataFrame({"predicted_s": [1.0, 2.0], "predicted_calibrated_s": [0.5, 1.0],
                          "median_s": [1.0, 1.0], "aa_median_s": [1.0, 1.25]})
    t = accuracy_table(frame).set_index("comparison")
    now, cal, aa = t.index
    # now: APE 0 and 1 -> MAPE 0.5; factors 1 and 2
    assert t.loc[now, "MAPE"] == pytest.approx(0.5) and t.loc[now, "worst factor"] == 2.0
    # calibration pace: 0.5 and 1.0 against 1.0 -> APE 0.5 and 0
    assert t.loc[cal, "MAPE"] == pytest.approx(0.25)
    assert t.loc[cal, "median predicted/measured"] == pytest.approx(0.5 ** 0.5)
    # A/A: copy A (1.0, 1.0) against copy B (1.0, 1.25): APE 0 and 0.2
    assert t.loc[aa, "MAPE"] == pytest.approx(0.1) and t.loc[aa, "within 10%"] == 0.5


@pytest.mark.parametrize("argv, message", [
    (["--only", "nothing-like-this"], "matches none"),
    (["--budget", "0"], "--budget must be positive"),
    (["--ops", "rnn-forward-B1"], "not a configuration id"),
    (["--threads", "0"], "threads"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    from charlm.cli import main

    assert main(["accuracy", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_list_names_every_configuration(capsys):
    from charlm.cli import main

    assert main(["accuracy", "--list", "--format", "csv"]) == 0
    out = capsys.readouterr().out.split()
    assert out[0] == "id" and out[1:] == [w.id for w in HELD_OUT]
