"""The bench's closing summary (analysis.bench_summary) on hand-made records."""

from analysis.bench_summary import WIDTH, summary_lines


def timing(median, lo, hi, converged):
    return ("timing", {"timing": {"median": median, "ci_low": lo, "ci_high": hi,
                                  "converged": converged}})


def pair(comparison, configuration, ratio, lo, hi):
    return ("pair", {"comparison": comparison, "configuration": configuration,
                     "ratio": ratio, "ci_low": lo, "ci_high": hi, "converged": True})


COUNTS = {"passed": 3, "failed": 1, "error": 0, "skipped": 2}


def test_summary_says_what_ran_what_converged_the_ratios_and_where_the_json_is():
    records = [timing(1.0, 0.98, 1.02, True), timing(2.0, 1.8, 2.2, False),
               timing(4.0, 3.96, 4.04, True),
               pair("manual/flash", "attention forward B4-T64", 1.43, 1.38, 1.51)]
    lines = summary_lines(records, COUNTS, grid="quick", devices=["cpu"],
                          json_path="runs/bench/quick-cpu.json", threads=1)
    assert lines[0] == "charlm bench: grid quick on cpu, 1 CPU thread"
    assert lines[1] == "ran 4 benchmarks: 3 passed, 1 failed, 0 error, 2 skipped"
    # half-widths 2%, 10%, 1%: their median is 2.0%; two of three met the target
    assert lines[2] == ("timed 3: 2 medians reached their precision target (95% interval); "
                        "median half-width 2.0%")
    assert lines[4].split() == ["manual/flash", "attention", "forward", "B4-T64",
                                "1.4", "[1.4,", "1.5]"]
    assert lines[-1].startswith("JSON: runs/bench/quick-cpu.json")


def test_every_line_fits_the_width_however_long_the_names():
    records = [pair("x" * 150, "y" * 80, 2.0, 1.9, 2.1)]
    lines = summary_lines(records, COUNTS, grid="g" * 120, devices=["cpu", "cuda"],
                          json_path="/" + "d" * 200)
    assert all(len(line) <= WIDTH for line in lines), [len(x) for x in lines]
    assert lines[-2].endswith("2.0 [1.9, 2.1]")  # the ratio itself is never cut


def test_a_smoke_run_shows_no_numbers():
    lines = summary_lines([timing(1.0, 0.9, 1.1, True), pair("a/b", "c", 2.0, 1.9, 2.1)],
                          COUNTS, grid="quick", devices=["cpu"], smoke=True)
    assert "smoke" in lines[0]
    assert not any("[" in line for line in lines)


def test_the_summary_names_the_precision_target_the_medians_were_timed_to():
    records = [("timing", {"timing": {"median": 1.0, "ci_low": 0.96, "ci_high": 1.04,
                                      "converged": True, "ci_target": 0.05}})] * 2
    lines = summary_lines(records, COUNTS, grid="quick", devices=["cpu"])
    assert lines[2] == ("timed 2: 2 medians reached their precision target (+-5%) (95% "
                        "interval); median half-width 4.0%")
