"""The bench harness (bench/conftest.py) run for real through pytest-benchmark: one workload
timed with a fake clock, so every number it records has a known value; the documented
save-and-compare workflow; the declared pytest-benchmark floor."""

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
UNIT = 1e-4  # seconds: the fake clock's round lengths are whole multiples of it
# 24 rounds' lengths in UNITs, in the order they run: a fast first quarter (10..14, 26), a
# middle with a slow tail (15..23, 80, 83, 90), a slow last quarter (30..34, 50): skewed
# (each mean above its median) and drifting, so the median, its interval and the drift
# each have one right value
ROUNDS = [12, 10, 26, 11, 14, 13,
          20, 16, 90, 18, 22, 17, 15, 83, 19, 21, 80, 23,
          31, 50, 33, 30, 32, 34]
GRID = """
batch = 4
rounds = 24

[attention]
T = [64]
"""

FAKE_CLOCK_TEST = f'''
import itertools
import pytest
from analysis.workloads import prepare

WORKLOAD_SET = "attention"
# pedantic mode reads the timer before and after each round: round r lasts ROUNDS[r] units
_readings = itertools.accumulate(x * {UNIT!r} for d in {ROUNDS!r} for x in (0, d))


def fake_clock():
    return next(_readings)


@pytest.mark.benchmark(timer=fake_clock)
def test_one(measure, workload, device):
    measure(prepare(workload, device), device)
'''


def test_measure_fixture_records_what_a_fake_clock_dictates(pytester):
    pytester.makeconftest((REPO / "bench" / "conftest.py").read_text())
    pytester.makepyfile(test_fake=FAKE_CLOCK_TEST)
    grid = pytester.path / "fixed.toml"
    grid.write_text(GRID)
    out = pytester.path / "bench.json"
    # a budget no round fits: the grid's 24 rounds run, whatever the pilot measured
    result = pytester.runpytest_subprocess(
        "--benchmark-only", f"--charlm-grid={grid}", "--charlm-device=cpu",
        "--charlm-budget=1e-6", "-p", "no:cacheprovider", "-k",
        "attention-flash-forward-B4-T64", f"--benchmark-json={out}", "--charlm-ci-target=0.04")
    result.assert_outcomes(passed=1)
    data = json.loads(out.read_text())
    (bench,) = data["benchmarks"]
    info = bench["extra_info"]
    timing = info["timing"]
    calls = timing["calls_per_round"]  # chosen from the real clock; the rounds' lengths / it
    assert timing["rounds"] == len(bench["stats"]["data"]) == 24
    assert bench["stats"]["data"] == pytest.approx([r * UNIT / calls for r in ROUNDS])
    # sorted: 10..23 (14 values), 26, 30..34, 50, 80, 83, 90; per call, in UNITs / calls:
    per = UNIT / calls
    # the median: the 12th and 13th of 24, (21 + 22) / 2; the mean is 720 / 24 = 30
    assert timing["median"] == pytest.approx(21.5 * per)
    assert timing["mean"] == pytest.approx(30 * per)
    assert (timing["min"], timing["max"]) == pytest.approx((10 * per, 90 * per))
    # inclusive quartiles: positions 5.75 and 17.25 (0-based) of the sorted 24
    assert (timing["q1"], timing["q3"]) == pytest.approx((15.75 * per, 32.25 * per))
    # the median's 95% interval for n = 24: [x_(7), x_(18)] = [16, 32], since
    # P(Bin(24, 1/2) <= 6) = 190051 / 2^24 = 0.0113 <= 0.025 < P(<= 7) = 536155 / 2^24
    assert (timing["ci_low"], timing["ci_high"]) == pytest.approx((16 * per, 32 * per))
    # half-width 8 against 4% of 21.5 = 0.86: not converged
    assert timing["converged"] is False
    # drift: quarters of 6 rounds, medians 12.5 (first) and 32.5 (last; their means 86 / 6
    # and 210 / 6), intervals (n = 6: the range) [10, 26] and [30, 50] apart;
    # drift_rel = (32.5 - 12.5) / 21.5
    assert timing["drifted"] is True
    assert timing["drift_rel"] == pytest.approx(20 / 21.5)
    assert timing["ci_target"] == 0.04  # the target asked for, kept with the median it judged
    assert {"load_before", "load_after", "steal_fraction"} <= set(timing)
    # one layer, B=4, T=64, width 128: qkv 6BTD^2 + scores and values 2 * 2BT^2D + out 2BTD^2
    b, t, d = 4, 64, 128
    flops = 6 * b * t * d * d + 4 * b * t * t * d + 2 * b * t * d * d
    assert info["measured_flops"] == info["predicted_flops"] == flops
    assert info["measured_flops_fvcore"] is None  # a second counter counts a model's forward
    per_call = 21.5 * per
    assert info["hardware_flops_per_second"] == pytest.approx(flops / per_call)
    # model FLOPs count the causal pairs only: T(T+1)/2 instead of T^2 for scores and values
    model = 6 * b * t * d * d + 4 * b * (t * (t + 1) // 2) * d + 2 * b * t * d * d
    assert info["model_flops"] == model
    assert info["flops_per_second"] == pytest.approx(model / per_call)
    assert info["tokens_per_second"] == pytest.approx(b * t / per_call)
    assert info["config"]["id"] == "attention-flash-forward-B4-T64-D128"
    assert info["env"]["threads"] == 1
    assert data["charlm"]["grid"] == str(grid) and data["charlm_failures"] == []


def test_documented_save_and_compare_workflow_runs(tmp_path):
    # `make bench` saves with --benchmark-autosave, `make bench-compare` compares: the second
    # run must compare against the first instead of crashing (an INTERNALERROR before)
    storage = tmp_path / "storage"
    common = [sys.executable, "-m", "pytest", "bench/test_attention.py", "--benchmark-only",
              "--charlm-grid=quick", "--charlm-device=cpu", "-k", "attention-flash-forward-B4-T64",
              "-p", "no:cacheprovider", "-q", f"--benchmark-storage={storage}",
              f"--benchmark-json={tmp_path / 'b.json'}"]
    # first: nothing saved yet to compare with (pytest-benchmark warns), then saves
    first = subprocess.run(common + ["--benchmark-compare", "--benchmark-autosave"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert len(list(storage.rglob("*.json"))) == 1
    second = subprocess.run(common + ["--benchmark-compare"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:]
    assert "0001_" in second.stdout  # the saved run's name appears in the comparison table


def test_installed_pytest_benchmark_meets_the_declared_floor():
    text = (REPO / "pyproject.toml").read_text()
    floor = re.search(r'"pytest-benchmark>=([\d.]+)"', text).group(1)
    installed = version("pytest-benchmark")

    def key(v):
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])

    assert key(installed) >= key(floor)


def _conftest_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_conftest", REPO / "bench" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_call_too_slow_for_more_than_the_fewest_rounds_gets_no_pilot_rounds():
    import time

    bench = _conftest_module()
    calls = []

    def slow():  # two calls already exceed WARMUP_S
        calls.append(1)
        time.sleep(0.03)

    assert 2 * 0.03 > bench.WARMUP_S
    iterations, pilot = bench._pilot(slow, "cpu", enough_s=0.01)
    assert (iterations, len(pilot)) == (1, 1) and pilot[0] >= 0.03
    skipped = len(calls)
    assert skipped == 2  # a first call, then a timed warm-up call that plans the rounds
    calls.clear()
    bench._pilot(slow, "cpu")  # the budget affords more rounds: the pilot runs in full
    assert len(calls) == skipped + bench.PILOT_ROUNDS
    # pilot rounds past the fewest stop once they have taken their share of the budget
    _, capped = bench._pilot(slow, "cpu", max_s=0.05)
    assert len(capped) == bench.MIN_PILOT_ROUNDS < bench.PILOT_ROUNDS


SMOKE_TEST = '''
import pytest
from analysis.workloads import prepare

WORKLOAD_SET = "attention"


def test_passes(measure, workload, device):
    measure(prepare(workload, device), device)


def test_fails(measure, workload, device):
    info = measure(prepare(workload, device), device)
    assert info["measured_flops"] < 0, "a deliberately failing benchmark"
'''


def test_smoke_mode_runs_every_body_fast_and_fails_when_a_benchmark_fails(pytester):
    pytester.makeconftest((REPO / "bench" / "conftest.py").read_text())
    pytester.makepyfile(test_smoke=SMOKE_TEST)
    out = pytester.path / "smoke.json"
    result = pytester.runpytest_subprocess(
        "--benchmark-only", "--charlm-smoke", "--charlm-device=cpu", "-p", "no:cacheprovider",
        "-k", "attention-flash-forward-B4-T64", f"--benchmark-json={out}")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret != 0
    (bench,) = json.loads(out.read_text())["benchmarks"]
    # the fewest rounds an interval needs, one call each: a test of the bench, not a timing
    assert bench["extra_info"]["timing"]["rounds"] == 6
    assert bench["extra_info"]["timing"]["calls_per_round"] == 1
    text = result.stdout.str()
    assert "charlm bench: grid quick on cpu" in text and "1 failed" in text
    assert "Legend:" not in text  # pytest-benchmark's wide tables only with --charlm-tables
    assert all(len(line) <= 100 for line in text.splitlines() if line.startswith("charlm"))
