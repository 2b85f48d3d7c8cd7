import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import Context, ReportConfig, bench_tables, build_report, run_cells
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


def test_run_cells_records_a_failing_cell_and_goes_on(tmp_path):
    ctx = Context(ReportConfig(out=tmp_path))
    calls = []
    frame = run_cells(ctx, "t.csv", _cells(calls, fail={"bb"}))
    assert calls == ["a", "bb", "ccc"]
    status = dict(zip(frame["cell"], frame["status"]))
    assert status["a"] == status["ccc"] == "ok"
    assert status["bb"].startswith("failed: MemoryError: out of memory in bb")
    assert pd.read_csv(tmp_path / "t.csv").shape[0] == 3


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


def test_interrupted_run_keeps_finished_cells_and_leaves_no_partial_file(tmp_path):
    ctx = Context(ReportConfig(out=tmp_path))

    def interrupt():
        raise KeyboardInterrupt

    cells = _cells([])
    with pytest.raises(KeyboardInterrupt):
        run_cells(ctx, "t.csv", [cells[0], ("bb", interrupt), cells[2]])
    saved = pd.read_csv(tmp_path / "t.csv")
    assert list(saved["cell"]) == ["a"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files
    calls = []
    run_cells(ctx, "t.csv", _cells(calls))
    assert calls == ["bb", "ccc"]


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


def test_report_built_from_a_saved_bench_json(tmp_path):
    data = json.loads(SAMPLE.read_text())
    status = build_report(ReportConfig(out=tmp_path, bench_json=SAMPLE,
                                       stages=("environment", "bench", "figures", "markdown")))
    assert set(status["status"]) == {"done"}
    timing = pd.read_csv(tmp_path / "timing.csv")
    assert len(timing) == len(data["benchmarks"])
    ok = timing[timing["status"].eq("ok")]
    assert (ok["seconds_per_token"] == ok["median_s"] / ok["tokens"]).all()
    assert (ok["measured_flops"] == ok["predicted_flops"]).all()
    attention = pd.read_csv(tmp_path / "attention.csv")
    assert set(attention["kernel"]) == {"flash", "manual"}
    ref = pd.read_csv(tmp_path / "torch_reference.csv")
    assert (ref["speedup"] == ref["homework_s"] / ref["torch_s"]).all()
    for fig in ("time_per_token_vs_T", "attention_flash_vs_manual", "homework_vs_torch",
                "time_vs_depth"):
        assert (tmp_path / "figures" / f"{fig}.png").stat().st_size > 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Findings" in text and "figures/attention_flash_vs_manual.png" in text
    assert data["charlm"]["env"]["cpu"]["torch"] in text or "torch" in text


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
    assert len(timing) == len(data["benchmarks"]) + 1


def test_cli_report_from_saved_json(tmp_path, capsys):
    code = main(["report", "--out", str(tmp_path), "--bench-json", str(SAMPLE),
                 "--stages", "environment", "bench", "markdown"])
    assert code == 0
    assert "REPORT.md" in capsys.readouterr().out
    assert (tmp_path / "timing.csv").is_file()


def test_cli_report_rejects_bad_input_in_one_line(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), "--bench-json", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("charlm report: error:")


def test_plots_reject_tables_without_their_columns(tmp_path):
    from analysis import plots

    with pytest.raises(ValueError, match="needs columns"):
        plots.attention_time_memory(pd.DataFrame({"T": [1]}), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no rows"):
        plots.training_curves(pd.DataFrame(columns=["model", "step", "train_loss"]),
                              tmp_path / "y.png")
