"""The report's pipeline: stages, resume, safe outputs, progress, the CLI, and a report built
end to end from a saved bench JSON. (Summaries: tests/test_report_summaries.py; REPORT.md's
Markdown and which figure gets which rows: tests/test_report_render.py; figures:
tests/test_plots.py.)"""

import copy
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.report import (
    BenchProgress,
    Context,
    Progress,
    ReportConfig,
    bench_tables,
    build_report,
    parse_bench_log,
    reference_out,
    run_bench,
    run_cells,
)
from analysis.report.config import REPO
from analysis.report.pipeline import stage_environment
from charlm.cli import main

SAMPLE = Path(__file__).parent / "data" / "bench_sample.json"  # a real quick-grid bench run


def _cells(calls, fail=()):
    def make(key):
        def fn():
            calls.append(key)
            if key in fail:
                raise MemoryError(f"out of memory in {key}")
            return pd.DataFrame([{"value": len(key)}])

        return fn

    return [(k, make(k)) for k in ("a", "bb", "ccc")]


# ---------------------------------------------------------------------------- run_cells


def test_run_cells_records_a_failing_cell_and_goes_on(tmp_path):
    ctx = Context(ReportConfig(out=tmp_path))
    calls = []
    frame = run_cells(ctx, "t.csv", _cells(calls, fail={"bb"}))
    assert calls == ["a", "bb", "ccc"]
    status = dict(zip(frame["cell"], frame["status"]))
    assert status["a"] == status["ccc"] == "ok"
    assert status["bb"].startswith("failed: MemoryError: out of memory in bb")
    assert pd.read_csv(tmp_path / "t.csv").shape[0] == 3
    assert not (tmp_path / ".partial").exists()  # removed once every cell has run


def test_run_cells_skips_finished_cells_and_retries_failed_ones(tmp_path):
    ctx = Context(ReportConfig(out=tmp_path))
    run_cells(ctx, "t.csv", _cells([], fail={"bb"}))
    calls = []
    frame = run_cells(ctx, "t.csv", _cells(calls))
    assert calls == ["bb"]
    assert set(frame["status"]) == {"ok"} and sorted(frame["cell"]) == ["a", "bb", "ccc"]


def test_run_cells_with_force_redoes_every_cell(tmp_path):
    run_cells(Context(ReportConfig(out=tmp_path)), "t.csv", _cells([]))
    calls = []
    run_cells(Context(ReportConfig(out=tmp_path, force=True)), "t.csv", _cells(calls))
    assert calls == ["a", "bb", "ccc"]


def _interrupt():
    raise KeyboardInterrupt


def _pid_frame():
    import os

    return pd.DataFrame([{"pid": os.getpid()}])


def test_interrupted_run_keeps_the_previous_table_and_resumes_its_cells(tmp_path):
    old = pd.DataFrame([{"cell": "old", "status": "ok", "value": 7}])
    old.to_csv(tmp_path / "t.csv", index=False)
    before = (tmp_path / "t.csv").read_bytes()
    # new settings: the old table may not seed this run, and must survive its interruption
    ctx = Context(ReportConfig(out=tmp_path), stage_settings="v2", resume_table=False)
    cells = _cells([])
    with pytest.raises(KeyboardInterrupt):
        run_cells(ctx, "t.csv", [cells[0], ("bb", _interrupt), cells[2]])
    assert (tmp_path / "t.csv").read_bytes() == before
    assert not list(tmp_path.rglob(".*.tmp"))  # atomic writes leave no temporary files
    calls = []
    frame = run_cells(ctx, "t.csv", _cells(calls))
    assert calls == ["bb", "ccc"]  # "a" was kept in the partial file of these settings
    assert sorted(frame["cell"]) == ["a", "bb", "ccc"]
    assert sorted(pd.read_csv(tmp_path / "t.csv")["cell"]) == ["a", "bb", "ccc"]
    assert not (tmp_path / ".partial").exists()


def test_the_partial_file_is_saved_at_most_every_few_seconds(tmp_path):
    seen = {}

    def cells(every_s):
        ctx = Context(ReportConfig(out=tmp_path / str(every_s)), stage_settings="v1")

        def look(key):
            seen[(every_s, key)] = ctx.partial_path("t.csv").is_file()
            return pd.DataFrame([{"value": 1}])

        run_cells(ctx, "t.csv", [(k, lambda k=k: look(k)) for k in ("a", "b", "c")],
                  every_s=every_s)

    cells(0.0)
    cells(3600.0)
    # saved after every cell when due at once; with an hour between saves, only at the end
    assert [seen[(0.0, k)] for k in "abc"] == [False, True, True]
    assert [seen[(3600.0, k)] for k in "abc"] == [False, False, False]


def test_cells_run_in_two_processes_give_the_table_one_process_gives(tmp_path):
    import functools
    import os

    # picklable cells: what a cell computes, and one that fails (int("x") raises)
    cells = [("a", functools.partial(pd.DataFrame, [{"value": 1}])),
             ("bb", functools.partial(int, "x")),
             ("ccc", functools.partial(pd.DataFrame, [{"value": 3}, {"value": 4}]))]
    one = run_cells(Context(ReportConfig(out=tmp_path / "one")), "t.csv", cells)
    two = run_cells(Context(ReportConfig(out=tmp_path / "two")), "t.csv", cells, workers=2)
    assert list(two["cell"]) == ["a", "bb", "ccc", "ccc"]  # in order, whoever finished first
    assert two.astype(str).equals(one.astype(str))
    assert two.loc[1, "status"].startswith("failed: ValueError")
    pids = run_cells(Context(ReportConfig(out=tmp_path / "pids")), "t.csv",
                     [(k, functools.partial(_pid_frame)) for k in ("p", "q")], workers=2)
    assert os.getpid() not in set(pids["pid"])  # they ran in other processes


def test_partial_cells_of_other_settings_are_not_mixed_in(tmp_path):
    cells = _cells([])
    with pytest.raises(KeyboardInterrupt):
        run_cells(Context(ReportConfig(out=tmp_path), stage_settings="v1"), "t.csv",
                  [cells[0], ("bb", _interrupt)])
    calls = []
    run_cells(Context(ReportConfig(out=tmp_path), stage_settings="v2", resume_table=False),
              "t.csv", _cells(calls))
    assert calls == ["a", "bb", "ccc"]


# ---------------------------------------------------------------------------- stages


def test_completed_stage_is_skipped_on_rerun_unless_forced(tmp_path):
    cfg = ReportConfig(out=tmp_path, stages=("environment", "ceiling"), ceiling_n=32)
    build_report(cfg)
    first = (tmp_path / "ceiling.csv").read_text()
    status = build_report(cfg)
    assert (tmp_path / "ceiling.csv").read_text() == first
    assert "skipped" in json.loads((tmp_path / "notes.json").read_text())["ceiling"][0]
    assert set(status["status"]) == {"done"}
    build_report(ReportConfig(out=tmp_path, stages=("ceiling",), ceiling_n=32, force=True))
    assert "ceiling" not in json.loads((tmp_path / "notes.json").read_text())


def test_changed_settings_invalidate_a_completed_stage(tmp_path):
    build_report(ReportConfig(out=tmp_path, stages=("ceiling",), ceiling_n=32))
    build_report(ReportConfig(out=tmp_path, stages=("ceiling",), ceiling_n=48))
    assert pd.read_csv(tmp_path / "ceiling.csv")["n"].iloc[0] == 48


def test_failing_stage_is_recorded_and_the_run_goes_on(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": []}))
    out = tmp_path / "out"
    status = build_report(ReportConfig(out=out, bench_json=empty,
                                       stages=("environment", "bench", "markdown")))
    by_stage = dict(zip(status["stage"], status["status"]))
    assert by_stage["bench"].startswith("failed: ValueError: the bench JSON holds no benchmarks")
    assert by_stage["markdown"] == "done"
    assert "failed: ValueError" in (out / "REPORT.md").read_text()


def test_a_failing_bench_stage_leaves_the_previous_tables(tmp_path):
    out = tmp_path / "out"
    build_report(ReportConfig(out=out, bench_json=SAMPLE, stages=("bench",)))
    before = {n: (out / n).read_bytes()
              for n in ("timing.csv", "attention.csv", "torch_reference.csv")}
    empty = tmp_path / "empty.json"  # other settings, and a stage that fails
    empty.write_text(json.dumps({"benchmarks": []}))
    status = build_report(ReportConfig(out=out, bench_json=empty, stages=("bench",)))
    assert status["status"].iloc[-1].startswith("failed")
    assert {n: (out / n).read_bytes() for n in before} == before


def _fake_bench(script: str):
    return lambda tmp_json: [sys.executable, "-c", script, str(tmp_json)]


def test_run_bench_replaces_json_and_log_only_when_pytest_finished(tmp_path):
    cfg = ReportConfig(out=tmp_path)
    json_path = tmp_path / "bench" / "quick-cpu.json"
    json_path.parent.mkdir()
    json_path.write_text('{"old": true}')
    json_path.with_suffix(".log").write_text("old log")
    interrupted = ("import sys, pathlib; pathlib.Path(sys.argv[1]).write_text('{\"partial\": 1}');"
                   "print('collected 3 items'); print('x::a PASSED'); sys.exit(2)")
    with pytest.raises(RuntimeError, match="exit 2"):
        run_bench(cfg, json_path, command=_fake_bench(interrupted))
    assert json_path.read_text() == '{"old": true}'
    assert json_path.with_suffix(".log").read_text() == "old log"
    assert not list(json_path.parent.glob(".*.json.running"))
    finished = ("import sys, pathlib; print('collected 1 item'); print('x::a PASSED');"
                "pathlib.Path(sys.argv[1]).write_text('{\"new\": 1}')")
    assert run_bench(cfg, json_path, command=_fake_bench(finished)) == 0
    assert json.loads(json_path.read_text()) == {"new": 1}
    assert "x::a PASSED" in json_path.with_suffix(".log").read_text()


def test_an_unknown_stage_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"unknown stages \['bogus'\]; choose from environment"):
        build_report(ReportConfig(out=tmp_path / "r", stages=("environment", "bogus")))
    assert not (tmp_path / "r").exists()


def test_environment_keeps_the_date_of_the_data_on_a_rerun(tmp_path):
    ctx = Context(ReportConfig(out=tmp_path))
    stage_environment(ctx)
    env = json.loads((tmp_path / "environment.json").read_text())
    env["date"] = "2020-01-02T03:04:05Z"
    (tmp_path / "environment.json").write_text(json.dumps(env))
    stage_environment(ctx)
    assert json.loads((tmp_path / "environment.json").read_text())["date"] == env["date"]


# ---------------------------------------------------------------------------- outputs


def test_default_output_is_git_ignored_and_reference_only_when_asked(tmp_path):
    assert ReportConfig().out == Path("runs/report/cpu")
    assert ReportConfig(quick=True).out == Path("runs/report/cpu-quick")
    assert ReportConfig(reference=True).out == REPO / "results" / "reference" / "cpu"
    with pytest.raises(ValueError, match="--quick"):
        ReportConfig(reference=True, quick=True)
    with pytest.raises(ValueError, match="--out"):
        ReportConfig(reference=True, out=tmp_path)
    ignored = (REPO / ".gitignore").read_text().split()
    assert "runs/" in ignored


def test_committed_reference_is_where_reference_runs_write_and_its_links_resolve():
    ref = reference_out("cpu")
    report = (ref / "REPORT.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert links and all((ref / link).is_file() for link in links)


def test_quick_run_refuses_a_folder_that_holds_a_full_run(tmp_path):
    ref = reference_out("cpu")  # the committed full run: a quick run must not touch it
    before = {p: p.read_bytes() for p in ref.glob("*.csv")}
    with pytest.raises(ValueError, match="holds a full"):
        build_report(ReportConfig(out=ref, quick=True, stages=("ceiling",), ceiling_n=16))
    assert {p: p.read_bytes() for p in ref.glob("*.csv")} == before
    (tmp_path / "stages.csv").write_bytes((ref / "stages.csv").read_bytes())
    assert main(["report", "--quick", "--out", str(tmp_path), "--stages", "ceiling",
                 "--resume"]) == 2  # resuming it as a quick run is refused too


def test_cli_refuses_quick_reference_and_out_with_reference_in_one_line(tmp_path, capsys):
    assert main(["report", "--reference", "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quick" in err[0]
    with pytest.raises(SystemExit) as exc:
        main(["report", "--reference", "--out", str(tmp_path)])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------- progress


def test_bench_log_progress_is_parsed_from_a_verbose_pytest_log():
    text = ("collecting ... collected 4 items\n\n"
            "bench/test_models.py::test_model_phase[rnn-forward-cpu] PASSED      [ 25%]\n"
            "bench/test_models.py::test_model_phase[gru-forward-cpu] FAILED      [ 50%]\n"
            "bench/test_models.py::test_model_phase[gru-train-cpu] ")
    assert parse_bench_log(text) == BenchProgress(total=4, done=2, failed=1,
                                                  current="test_model_phase[gru-train-cpu]")
    assert parse_bench_log("") == BenchProgress(None, 0, 0, None)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_off_a_terminal_prints_plain_lines_at_most_every_interval():
    out, clock = io.StringIO(), FakeClock()
    p = Progress(out, tty=False, interval=5.0, clock=clock)
    p.stage_start("bench", 3, 9)
    for t, done in ((0.5, 1), (2.0, 2), (4.0, 3), (6.0, 4), (12.0, 5)):
        clock.now = t
        p.bench(BenchProgress(total=10, done=done, failed=0, current=f"t{done}"))
    clock.now = 65.0
    p.stage_end("bench", "done", 64.5)
    lines = out.getvalue().splitlines()
    assert lines == ["[report 0:00] stage 3 of 9: bench ...",
                     "[report 0:00] bench: 1 of 10 benchmarks done; running t1",
                     "[report 0:06] bench: 4 of 10 benchmarks done; running t4",
                     "[report 0:12] bench: 5 of 10 benchmarks done; running t5",
                     "[report 1:05] stage bench: done (64.5 s)"]


def test_progress_says_how_long_the_rest_will_take_at_the_pace_so_far():
    out, clock = io.StringIO(), FakeClock()
    p = Progress(out, tty=False, clock=clock, heartbeat_s=0)
    p.plan({"flops": 10.0, "training": 20.0})
    p.stage_start("flops", 1, 2)
    clock.now = 4.0
    assert p.remaining_s() == 6.0 + 20.0  # the running stage's rest, then the next
    clock.now = 25.0
    assert p.remaining_s() == 20.0  # overdue: the running stage is not counted below zero
    p.stage_end("flops", "done", 20.0)  # twice as long as expected: the rest at that pace
    assert p.remaining_s() == 40.0
    lines = out.getvalue().splitlines()
    assert lines[0] == "[report 0:00] stage 1 of 2: flops ...; about 0:30 left in the report"
    assert lines[1] == "[report 0:25] stage flops: done (20.0 s); about 0:40 left in the report"


def test_a_stage_without_output_gets_a_heartbeat_line_naming_it_and_the_rest():
    import time

    out = io.StringIO()
    p = Progress(out, tty=False, heartbeat_s=0.05)
    p.plan({"calibrate": 60.0})
    p.stage_start("calibrate", 1, 1)
    time.sleep(0.4)
    p.stage_end("calibrate", "done", 0.4)
    p.finish()
    beats = [line for line in out.getvalue().splitlines() if "running for" in line]
    assert len(beats) >= 2, out.getvalue()
    assert all("stage calibrate running for 0:00; about 1:00 left in the report" in b or
               "about 0:59 left" in b for b in beats), beats
    after = out.getvalue()
    time.sleep(0.2)
    assert out.getvalue() == after  # finished: no more lines


def test_run_bench_reports_progress_read_from_the_growing_log(tmp_path):
    out = io.StringIO()
    script = ("import sys, pathlib; print('collected 2 items'); print('x::a PASSED');"
              "print('x::b PASSED'); pathlib.Path(sys.argv[1]).write_text('{}')")
    run_bench(ReportConfig(out=tmp_path), tmp_path / "b.json",
              Progress(out, tty=False, interval=0.0), command=_fake_bench(script))
    assert "bench: 2 of 2 benchmarks done" in out.getvalue().splitlines()[-1]


def test_cli_report_prints_stage_progress_when_stdout_is_not_a_terminal(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), "--bench-json", str(SAMPLE),
                 "--stages", "environment", "bench", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "stage 1 of 3: environment ..." in out
    assert re.search(r"stage bench: done \(\d+\.\d s\)", out)
    assert "REPORT.md" in out and (tmp_path / "timing.csv").is_file()


# ---------------------------------------------------------------------------- end to end


def test_report_built_from_a_saved_bench_json(tmp_path):
    data = json.loads(SAMPLE.read_text())
    status = build_report(ReportConfig(out=tmp_path, bench_json=SAMPLE, quick=True,
                                       stages=("environment", "bench", "figures", "markdown")))
    assert set(status["status"]) == {"done"}
    timing = pd.read_csv(tmp_path / "timing.csv")
    # one timing row per workload benchmark (the pair benchmarks go to ratios.csv)
    assert len(timing) == sum("config" in b["extra_info"] for b in data["benchmarks"])
    ok = timing[timing["status"].eq("ok")]
    by_test = {b["name"]: b for b in data["benchmarks"]}
    for _, row in ok.iterrows():  # seconds per token = the JSON's median / (B x T)
        b = by_test[row["test"]]
        cfg = b["extra_info"]["config"]
        assert row["seconds_per_token"] == pytest.approx(
            b["extra_info"]["timing"]["median"] / (cfg["B"] * cfg["seq_len"]), rel=1e-12)
    assert np.allclose(ok["measured_flops"], ok["predicted_flops"], rtol=0)
    attention = pd.read_csv(tmp_path / "attention.csv")
    assert set(attention["kernel"]) == {"flash", "manual"}
    ref = pd.read_csv(tmp_path / "torch_reference.csv")
    assert {"homework_s", "twin_s"} <= set(ref.columns) and "speedup" not in ref.columns
    # ratios.csv: the pair benchmarks' ratios, read as recorded (median of per-pair ratios)
    ratios = pd.read_csv(tmp_path / "ratios.csv")
    pairs = [b["extra_info"]["pair"] for b in data["benchmarks"] if "pair" in b["extra_info"]]
    time_rows = ratios[ratios["measure"].eq("time")].set_index("configuration")
    assert len(time_rows) == len(pairs)
    for p in pairs:
        row = time_rows.loc[p["configuration"]]
        assert (row["ratio"], row["ci_low"], row["ci_high"], row["pairs"]) == pytest.approx(
            (p["ratio"], p["ci_low"], p["ci_high"], p["pairs"]))
    memory = ratios[ratios["measure"].eq("memory")]
    assert set(memory["comparison"]) == {"attention manual/flash"}
    assert "Paired ratios" in (tmp_path / "REPORT.md").read_text()
    for fig in ("time_per_token_vs_T", "attention_flash_vs_manual", "ratios",
                "time_vs_depth"):
        assert (tmp_path / "figures" / f"{fig}.png").stat().st_size > 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Findings" in text and "figures/attention_flash_vs_manual.png" in text
    layer = attention[["D", "H"]].iloc[0]
    assert f"layer (width {layer['D']}, {layer['H']} heads)" in text
    assert f"torch {data['charlm']['env']['cpu']['torch']}" in text
    # the sample is a truncated bench (a selection of the quick grid): the report says so
    assert "Truncated bench: " in text and "have no timing" in text
    stages = text.split("## Stages")[1]
    assert "Every stage:" in stages and '{"' not in stages  # settings in words, not JSON
    assert "Symbols: " in text and text.count("Symbols: ") == 1


def test_report_header_keeps_the_date_of_the_data(tmp_path):
    build_report(ReportConfig(out=tmp_path, bench_json=SAMPLE, quick=True,
                              stages=("environment", "bench")))
    status = pd.read_csv(tmp_path / "stages.csv")
    status.loc[status["stage"].eq("bench"), "finished"] = "2020-01-02T03:04:05Z"
    status.to_csv(tmp_path / "stages.csv", index=False)
    build_report(ReportConfig(out=tmp_path, bench_json=SAMPLE, quick=True,
                              stages=("markdown",)))
    assert "data of 2020-01-02." in (tmp_path / "REPORT.md").read_text()


def test_bench_tables_list_failed_configurations_with_their_error():
    data = json.loads(SAMPLE.read_text())
    broken = copy.deepcopy(data)
    cfg = broken["benchmarks"][0]["extra_info"]["config"]
    broken["charlm_failures"] = [{"test": "bench/test_models.py::test_model_phase[x]",
                                  "config": cfg, "device": "cuda", "phase": "call",
                                  "error": "OutOfMemoryError", "message": "CUDA out of memory"}]
    timing = bench_tables(broken)["timing.csv"]
    failed = timing[timing["status"].str.startswith("failed")]
    assert len(failed) == 1
    assert failed["status"].iloc[0] == "failed: OutOfMemoryError: CUDA out of memory"
    assert len(timing) == sum("config" in b["extra_info"] for b in data["benchmarks"]) + 1
    assert set(timing["grid"]) == {"quick"}


def test_cli_report_rejects_bad_input_in_one_line(tmp_path, capsys):
    code = main(["report", "--out", str(tmp_path), "--bench-json", str(tmp_path / "no.json")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("charlm report: error:")


# ---------------------------------------------------------------------------- models


def test_depth_and_training_stages_take_their_models_from_the_architecture_table(monkeypatch):
    from analysis import architectures
    from analysis.report.pipeline import depth_cells

    keys = [k for k, _ in depth_cells("quick")]
    for name, arch in architectures.ARCHITECTURES.items():
        mine = [k for k in keys if k.split("-")[0] == name]
        kernels = {k.split("-")[1] for k in mine}
        assert kernels == {kernel or "" for _, kernel in arch.variants}
        layers = {k.split("-")[2] for k in mine}
        assert (len(layers) > 1) == arch.stacked
    monkeypatch.delitem(architectures.ARCHITECTURES, "mlrnn")
    assert not [k for k, _ in depth_cells("quick") if k.startswith("mlrnn-")]
    assert "mlrnn" not in ReportConfig().models
    assert ReportConfig(train_models=("gru",)).models == ("gru",)


def test_a_depth_cell_traces_its_model():
    from analysis.report.pipeline import depth_cells

    key, cell = next((k, c) for k, c in depth_cells("quick") if k == "rnn--L1-T4-forward")
    row = cell().iloc[0]
    assert (row["model"], row["quantity"], row["T"], row["L"]) == ("rnn", "forward", 4, 1)
    assert row["measured"] == 4 + 1  # T steps and the head, one after another


def test_cli_out_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "short.txt"
    f.write_text("x")
    assert main(["report", "--out", str(f), "--stages", "environment"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(f) in err[0]


def test_devices_stage_sets_other_devices_beside_this_run(tmp_path):
    from analysis.report.pipeline import other_devices, stage_devices

    def folder(name, device, label, median):
        d = tmp_path / name
        d.mkdir()
        (d / "environment.json").write_text(json.dumps({"device": device,
                                                        "device_name": label}))
        pd.DataFrame([{"status": "ok", "variant": "rnn", "median_s": median}]).to_csv(
            d / "timing.csv", index=False)
        return d

    gpu = folder("gpu", "cuda", "GPU Y", 2.0)
    other_cpu = folder("cpu2", "cpu", "CPU X", 3.0)
    mine = folder("mine", "cpu", "CPU X", 1.0)
    cfg = ReportConfig(out=mine, compare_with=(gpu, other_cpu))
    assert other_devices(cfg) == [gpu, other_cpu]
    stage_devices(Context(cfg))
    out = pd.read_csv(mine / "devices_timing.csv")
    # the second CPU X run is told apart by its folder's name
    assert dict(zip(out["device_label"], out["median_s"])) == {
        "CPU X": 1.0, "GPU Y": 2.0, "CPU X (cpu2)": 3.0}
    with pytest.raises(FileNotFoundError, match="no timing.csv"):
        ReportConfig(out=mine, compare_with=(tmp_path / "nowhere",))


def test_expected_workload_ids_name_each_workload_once():
    from analysis.report.ingest import expected_workload_ids
    from analysis.workloads import reference_workloads

    ids = expected_workload_ids("quick", "cpu")
    assert len(ids) == len(set(ids))
    # the homework side of a reference pair is also a model workload: listed once
    shared = [w.id for w in reference_workloads("quick") if w.spec.impl == "homework"]
    assert shared and all(ids.count(i) == 1 for i in shared)


def test_every_figure_and_sentence_uses_the_one_ceiling_of_ceiling_csv(tmp_path, monkeypatch):
    from analysis import plots
    from analysis.report.render import _prediction_intro, draw_figures

    pd.DataFrame([{"device": "cpu", "n": 64, "dtype": "float32", "rounds": 10,
                   "flops_per_second": 1e9, "flops_per_second_ci_low": 0.9e9,
                   "flops_per_second_ci_high": 1.1e9, "peak_flops_per_second": 1.2e9}]
                 ).to_csv(tmp_path / "ceiling.csv", index=False)
    # the calibration's own matmul cap differs: it must not be drawn as the roof
    (tmp_path / "machine.json").write_text(json.dumps({
        "ceiling_flops_per_s": 2e9, "bandwidth_bytes_per_s": 1e8, "op_fixed_s": 1e-6,
        "view_fixed_s": 1e-7}))
    pd.DataFrame({"variant": ["rnn"], "model": ["rnn"], "median_s": [1.0],
                  "predicted_s": [1.0], "trace_flops": [1e6], "trace_bytes": [1e5]}
                 ).to_csv(tmp_path / "prediction.csv", index=False)
    drawn = {}
    monkeypatch.setattr(plots, "roofline", lambda frame, roof, bandwidth, path, ci:
                        drawn.update(roof=roof, ci=ci))
    ctx = Context(ReportConfig(out=tmp_path))
    draw_figures(ctx)
    assert drawn == {"roof": 1e9, "ci": (0.9e9, 1.1e9)}
    intro = _prediction_intro(ctx)
    assert "matmul ceiling" not in intro and "not the ceiling of Achieved FLOP/s" in intro


def test_a_quick_report_calibrates_in_one_pass_into_its_own_cache(tmp_path, monkeypatch):
    import subprocess

    from analysis.calibrate import PASSES, default_cache_path
    from analysis.report import pipeline

    monkeypatch.setattr(pipeline, "REPO", tmp_path)  # no cached machine file there
    ran, real = [], subprocess.run

    def run(cmd, **kw):
        if "calibrate" not in cmd:
            return real(cmd, **kw)
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "stopped by the test")

    monkeypatch.setattr(subprocess, "run", run)
    for quick, passes in ((True, 1), (False, PASSES)):
        cfg = ReportConfig(out=tmp_path / "report", quick=quick)
        with pytest.raises(RuntimeError, match="stopped by the test"):
            pipeline.stage_calibrate(Context(cfg))
        cmd = ran[-1]
        assert cmd[cmd.index("--passes") + 1] == str(passes)
        cache = Path(cmd[cmd.index("--out") + 1])
        assert cache == tmp_path / default_cache_path("cpu", 1, passes)
        assert json.loads(cfg.settings("calibrate"))["passes"] == passes  # a resume knows
    quick_cache, full_cache = (Path(c[c.index("--out") + 1]).name for c in ran)
    assert quick_cache.endswith("-p1.json") and quick_cache != full_cache


def test_only_a_full_report_predicts_the_other_devices_rows(tmp_path, monkeypatch):
    REPO = Path(__file__).resolve().parent.parent
    import shutil

    from analysis.calibrate import PASSES, default_cache_path, load_machine, save_machine
    from analysis.report import pipeline

    h200 = REPO / "results" / "reference" / "gpu-h200"
    other = tmp_path / "gpu"
    other.mkdir()
    shutil.copy(h200 / "machine.json", other / "machine.json")
    rows = pd.read_csv(h200 / "timing.csv")
    rows[rows["status"].eq("ok")].head(2).to_csv(other / "timing.csv", index=False)
    monkeypatch.setattr(pipeline, "REPO", tmp_path)
    machine = load_machine(REPO / "results" / "reference" / "cpu" / "machine.json")
    for quick, passes in ((True, 1), (False, PASSES)):  # cached: nothing is calibrated
        save_machine(machine, tmp_path / default_cache_path("cpu", 1, passes))
        cfg = ReportConfig(out=tmp_path / f"report-{quick}", quick=quick, compare_with=(other,))
        ctx = Context(cfg)
        pipeline.stage_calibrate(ctx)
        predicted = ctx.read("prediction_other.csv")
        if quick:
            assert predicted is None or predicted.empty
            assert any("not predicted" in str(n) for n in ctx.notes.get("calibrate", []))
        else:
            assert len(predicted) == 2 and predicted["predicted_s"].gt(0).all()


def test_workloads_traced_in_two_processes_are_the_traces_of_one():
    from analysis.optrace import trace_workload
    from analysis.predict import workload_from_row
    from analysis.report.pipeline import trace_workloads

    base = {"kind": "model", "variant": "gru", "model": "gru", "phase": "train",
            "B": 2, "T": 4, "D": 8, "E": 8, "L": 1, "V": 65}
    rows = pd.DataFrame([base, {**base, "T": 5}, base])
    bad = pd.DataFrame([{**base, "variant": "no-such-variant"}])
    traces = trace_workloads([rows, bad], workers=2)
    assert len(traces) == 2  # one per distinct workload; the unknown variant is left out
    for _, row in rows.iterrows():
        w = workload_from_row(row)
        assert traces[w] == trace_workload(w)


def test_a_quick_report_times_its_bench_to_a_wider_precision_target(tmp_path):
    from analysis.report.config import QUICK_CI_TARGET
    from analysis.report.pipeline import bench_command

    quick = ReportConfig(out=tmp_path / "q", quick=True)
    full = ReportConfig(out=tmp_path / "f")
    assert f"--charlm-ci-target={QUICK_CI_TARGET}" in bench_command(quick, tmp_path / "b.json")
    assert QUICK_CI_TARGET == 0.05
    assert not any(a.startswith("--charlm-ci-target") for a in bench_command(
        full, tmp_path / "b.json"))  # the bench's own 2%
    # a bench result timed to one target is not resumed as the other's
    assert json.loads(quick.settings("bench"))["ci_target"] == 0.05
    assert json.loads(full.settings("bench"))["ci_target"] is None
