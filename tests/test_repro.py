"""The reproducibility check: its statistics on hand-made runs, and a real two-run check on a
tiny selection (each run its own pytest process)."""

import pandas as pd
import pytest

from analysis.repro import agreement, compare_runs


def _run(rows):
    return pd.DataFrame([{"comparison": "c", "configuration": cfg, "device": "cpu",
                          "measure": "time", "ratio": r, "ci_low": lo, "ci_high": hi}
                         for cfg, r, lo, hi in rows])


def test_compare_runs_sets_each_ratios_runs_side_by_side():
    one = _run([("x", 2.0, 1.9, 2.1), ("y", 1.0, 0.99, 1.01), ("z", 3.0, 2.9, 3.1)])
    two = _run([("x", 2.2, 2.15, 2.25), ("y", 1.01, 1.0, 1.02)])  # z missing from run 2
    out = compare_runs([one, two]).set_index("configuration")
    assert list(out.index) == ["x", "y"]  # only ratios measured in every run
    # x: |2.2 - 2.0| / median(2.0, 2.2) = 0.2 / 2.1; intervals [1.9, 2.1] and [2.15, 2.25]
    assert out.loc["x", "relative_difference"] == pytest.approx(0.2 / 2.1)
    assert not out.loc["x", "intervals_overlap"]
    assert out.loc["y", "relative_difference"] == pytest.approx(0.01 / 1.005)
    assert out.loc["y", "intervals_overlap"]
    # half-widths relative to each run's ratio: x 0.1/2.0 and 0.05/2.2, median of the two
    assert out.loc["x", "median_ci_half_width"] == pytest.approx((0.05 + 0.05 / 2.2) / 2)


def test_agreement_counts_ratios_within_tolerance():
    one = _run([("x", 2.0, 1.9, 2.1), ("y", 1.0, 0.99, 1.01)])
    two = _run([("x", 2.2, 2.15, 2.25), ("y", 1.01, 1.0, 1.02)])
    a = agreement(compare_runs([one, two]), tolerance=0.05)
    assert a["ratios"] == 2 and a["within"] == 0.5 and a["overlap"] == 0.5


def test_compare_runs_needs_two_runs():
    with pytest.raises(ValueError, match="at least 2 runs"):
        compare_runs([_run([("x", 1.0, 1.0, 1.0)])])


def test_report_repeat_runs_the_pairs_twice_in_separate_processes(tmp_path):
    from analysis.report import ReportConfig, build_report

    status = build_report(ReportConfig(out=tmp_path, quick=True, repeat=2, budget=0.05,
                                       only="attention and T64",
                                       stages=("repeat", "markdown")))
    assert set(status["status"]) == {"done"}
    repeat = pd.read_csv(tmp_path / "repeat.csv")
    assert set(repeat["measure"]) == {"time", "memory"} and len(repeat) == 2
    runs = sorted((tmp_path / "bench").glob("pairs-quick-cpu-run*.json"))
    assert [p.name for p in runs] == ["pairs-quick-cpu-run1.json", "pairs-quick-cpu-run2.json"]
    time_row = repeat[repeat["measure"].eq("time")].iloc[0]
    assert time_row["ratio_1"] != time_row["ratio_2"]  # two measurements, not one copied
    assert "Reproducibility (2 runs in separate processes)" in (
        tmp_path / "REPORT.md").read_text()


def test_repeat_summary_names_the_ratios_that_moved():
    from analysis.report.summaries import repeat_summary

    one = _run([("x", 2.0, 1.9, 2.1), ("y", 1.0, 0.99, 1.01)])
    two = _run([("x", 2.2, 2.15, 2.25), ("y", 1.01, 1.0, 1.02)])
    s = repeat_summary(compare_runs([one, two]))
    # x moved 0.2 / 2.1 = 9.5% > 5%, its intervals disjoint; y moved 1%: not named
    assert s.findings[0].startswith("Reproducibility (2 runs in separate processes): 50% of "
                                    "2 ratios agree within 5%")
    assert s.findings[1] == ("Still dependent on the machine's state between processes "
                             "(beyond 5%): c x (time) 2/2.2, intervals disjoint.")
    assert len(repeat_summary(compare_runs([one, one])).findings) == 1


def test_the_pace_of_each_run_is_set_beside_a_ratio_that_moved():
    from analysis.report.summaries import repeat_summary

    one = _run([("x", 2.0, 1.9, 2.1)]).assign(yardstick_s=1.0e-3)
    two = _run([("x", 2.4, 2.3, 2.5)]).assign(yardstick_s=1.5e-3)
    out = compare_runs([one, two])
    assert out.loc[0, "pace_spread"] == pytest.approx(1.5)  # 1.5 ms over 1.0 ms
    s = repeat_summary(out)
    assert s.findings[1].endswith("c x (time) 2/2.4, intervals disjoint, pace moved 1.50x.")
    assert "depends on the machine's state" in s.findings[2]
    steady = compare_runs([one, two.assign(yardstick_s=1.0e-3)])
    assert len(repeat_summary(steady).findings) == 2  # no pace sentence when it held still
