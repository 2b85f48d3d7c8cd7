"""analysis/report/render.py on hand-made run folders: every figure draw_figures asks for and
the rows it hands each one, the notes of a figure that fails, and the Markdown helpers
(md_table, stages_table, section, the header). Expected frames and lines are written out
by hand from the input tables; plotting itself is tests/test_plots.py's."""

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.report import Context, ReportConfig
from analysis.report import summaries as S
from analysis.report.pipeline import STAGES
from analysis.report.render import data_dates, draw_figures, md_table, stages_table

FIGURES = (
    "flops_predicted_vs_measured",
    "time_per_token_vs_T",
    "sequence_time_vs_T",
    "time_vs_depth",
    "achieved_flops",
    "attention_time_memory",
    "ratios",
    "devices_time_vs_T",
    "time_predicted_vs_measured",
    "roofline",
    "training_curves",
)


def _recorder(monkeypatch, fail=None):
    """Replace every plot function with one that records its arguments and returns its
    file name; `fail`: {plot function: exception} raised instead."""
    calls = {}
    fail = fail or {}

    def fake(name):
        def draw(*args, **kwargs):
            if name in fail:
                raise fail[name]
            calls[name] = (args, kwargs)
            path = next(a for a in args if hasattr(a, "suffix"))
            return path.name

        return draw

    for name in FIGURES:
        monkeypatch.setattr(plots, name, fake(name))
    return calls


def _timing_row(**kw):
    row = {
        "status": "ok",
        "suite": "test_model_phase",
        "sweep": "T",
        "phase": "forward",
        "variant": "rnn",
        "model": "rnn",
        "device_label": "cpu-a",
    }
    row.update(kw)
    return row


def _write_run(out):
    """A run folder with one table of every kind draw_figures reads."""
    pd.DataFrame(
        [
            {
                "status": "ok",
                "model": "rnn",
                "quantity": "forward",
                "predicted": 10,
                "measured_torch": 10,
                "measured_fvcore": np.nan,
            },
            {
                "status": "ok",
                "model": "gru",
                "quantity": "forward",
                "predicted": 30,
                "measured_torch": 30,
                "measured_fvcore": 30,
            },
            {
                "status": "ok",
                "model": "rnn",
                "quantity": "params",
                "predicted": 5,
                "measured_torch": 5,
                "measured_fvcore": 5,
            },
            {
                "status": "failed",
                "model": "lstm",
                "quantity": "forward",
                "predicted": 7,
                "measured_torch": 8,
                "measured_fvcore": 8,
            },
        ]
    ).to_csv(out / "flops_reconciliation.csv", index=False)
    # seconds per FLOP = 1e-9 * depth: the depth fit is exponent 1, intercept ln(1e-9)
    pd.DataFrame(
        [
            _timing_row(T=16, predicted_depth=2, predicted_flops=1e6, median_s=2e-3),
            _timing_row(T=32, predicted_depth=4, predicted_flops=1e6, median_s=4e-3),
            _timing_row(T=32, phase="train", predicted_depth=8, predicted_flops=1e6, median_s=8e-3),
            _timing_row(T=64, sweep="B", predicted_depth=16, predicted_flops=1e6, median_s=16e-3),
            _timing_row(
                T=16, suite="test_attention", predicted_depth=1, predicted_flops=1e6, median_s=1.0
            ),
            _timing_row(
                T=16, status="failed", predicted_depth=1, predicted_flops=1e6, median_s=1.0
            ),
        ]
    ).to_csv(out / "timing.csv", index=False)
    pd.DataFrame(
        [
            {
                "device": "cpu",
                "n": 64,
                "dtype": "float32",
                "rounds": 10,
                "flops_per_second": 2e9,
                "flops_per_second_ci_low": 1.5e9,
                "flops_per_second_ci_high": 2.5e9,
                "peak_flops_per_second": 3e9,
            }
        ]
    ).to_csv(out / "ceiling.csv", index=False)
    pd.DataFrame(
        [
            {"status": "ok", "T": 64, "impl": "flash"},
            {"status": "failed", "T": 128, "impl": "manual"},
        ]
    ).to_csv(out / "attention.csv", index=False)
    pd.DataFrame([{"comparison": "x/y", "ratio": 2.0}]).to_csv(out / "ratios.csv", index=False)
    pd.DataFrame(
        [
            _timing_row(T=16, device_label="cpu-a", median_s=1e-3),
            _timing_row(T=16, device_label="gpu-b", median_s=1e-4),
            _timing_row(T=16, device_label="gpu-b", phase="train", median_s=1e-4),
        ]
    ).to_csv(out / "devices_timing.csv", index=False)
    pd.DataFrame([{"workload": "w", "predicted_s": 1e-3, "measured_s": 2e-3}]).to_csv(
        out / "prediction.csv", index=False
    )
    (out / "machine.json").write_text(json.dumps({"bandwidth_bytes_per_s": 7e9}))
    pd.DataFrame(
        [
            {"status": "ok", "model": "rnn", "train_loss": 2.0},
            {"status": "failed", "model": "gru", "train_loss": np.nan},
        ]
    ).to_csv(out / "training_curves.csv", index=False)


def test_draw_figures_hands_each_figure_its_rows(tmp_path, monkeypatch):
    _write_run(tmp_path)
    calls = _recorder(monkeypatch)
    ctx = Context(ReportConfig(out=tmp_path))
    made = draw_figures(ctx)
    assert made == [
        f"{n}.png"
        for n in (
            "flops_predicted_vs_measured",
            "time_per_token_vs_T",
            "sequence_time_vs_T",
            "time_vs_depth",
            "achieved_flops",
            "attention_flash_vs_manual",
            "ratios",
            "devices_time_vs_T",
            "time_predicted_vs_measured",
            "roofline",
            "training_curves",
        )
    ]
    assert ctx.notes == {}
    figures = tmp_path / "figures"
    for name, (args, _) in calls.items():
        path = next(a for a in args if hasattr(a, "suffix"))
        assert path.parent == figures, name

    # FLOPs: ok rows that are not params, one row per counter that has a count
    long = calls["flops_predicted_vs_measured"][0][0]
    got = sorted(zip(long["model"], long["counter"], long["measured"], long["predicted"]))
    assert got == [("gru", "fvcore", 30, 30), ("gru", "torch", 30, 30), ("rnn", "torch", 10, 10)]

    # the T sweep of the ok model rows (both phases), then its forward rows only
    per_token = calls["time_per_token_vs_T"][0][0]
    assert sorted(zip(per_token["T"], per_token["phase"])) == [
        (16, "forward"),
        (32, "forward"),
        (32, "train"),
    ]
    sequence = calls["sequence_time_vs_T"][0][0]
    assert sorted(sequence["T"]) == [16, 32] and set(sequence["phase"]) == {"forward"}

    # every ok model row (the B sweep too), with the least-squares line of log(s/FLOP)
    # against log(depth): s/FLOP = 1e-9 * depth exactly, so exponent 1, intercept ln(1e-9)
    args, kwargs = calls["time_vs_depth"]
    assert sorted(args[0]["predicted_depth"]) == [2, 4, 8, 16]
    slope, intercept = kwargs["fit"]
    assert slope == pytest.approx(1.0) and intercept == pytest.approx(math.log(1e-9))

    # achieved FLOP/s: the model rows under ceiling.csv's median and its interval
    args, kwargs = calls["achieved_flops"]
    assert sorted(args[0]["predicted_depth"]) == [2, 4, 8, 16]
    assert args[1] == 2e9 and args[3] == (1.5e9, 2.5e9)

    attention = calls["attention_time_memory"][0][0]
    assert list(attention["T"]) == [64]  # the failed row is left out
    assert list(calls["ratios"][0][0]["ratio"]) == [2.0]
    devices = calls["devices_time_vs_T"][0][0]
    assert sorted(devices["device_label"]) == ["cpu-a", "gpu-b"]  # forward rows only
    assert list(calls["time_predicted_vs_measured"][0][0]["predicted_s"]) == [1e-3]
    args, _ = calls["roofline"]
    assert (args[1], args[2], args[4]) == (2e9, 7e9, (1.5e9, 2.5e9))
    assert list(calls["training_curves"][0][0]["model"]) == ["rnn"]


def test_a_figure_that_fails_is_noted_and_the_others_are_drawn(tmp_path, monkeypatch):
    _write_run(tmp_path)
    calls = _recorder(
        monkeypatch,
        fail={"ratios": ValueError("no finite ratio"), "roofline": KeyError("bandwidth")},
    )
    ctx = Context(ReportConfig(out=tmp_path))
    made = draw_figures(ctx)
    assert "ratios.png" not in made and "roofline.png" not in made and len(made) == 9
    assert ctx.notes == {
        "figures": ["ratios: not drawn (no finite ratio)", "roofline: not drawn ('bandwidth')"]
    }
    assert "training_curves" in calls  # drawn after the failures
    with pytest.raises(RuntimeError, match="not a plotting error"):
        _recorder(monkeypatch, fail={"ratios": RuntimeError("not a plotting error")})
        draw_figures(ctx)


def test_draw_figures_of_an_empty_run_draws_nothing(tmp_path, monkeypatch):
    calls = _recorder(monkeypatch)
    assert draw_figures(Context(ReportConfig(out=tmp_path))) == []
    assert calls == {}


def test_figures_that_need_two_tables_wait_for_both(tmp_path, monkeypatch):
    _write_run(tmp_path)
    (tmp_path / "ceiling.csv").unlink()  # no ceiling: no achieved FLOP/s, no roofline
    pd.DataFrame([_timing_row(T=16, device_label="cpu-a", median_s=1e-3)]).to_csv(
        tmp_path / "devices_timing.csv", index=False
    )  # one device: nothing side by side
    calls = _recorder(monkeypatch)
    draw_figures(Context(ReportConfig(out=tmp_path)))
    assert {"achieved_flops", "roofline", "devices_time_vs_T"}.isdisjoint(calls)
    assert {"time_vs_depth", "time_predicted_vs_measured"} <= set(calls)
    _write_run(tmp_path)
    (tmp_path / "machine.json").unlink()  # a ceiling but no machine file: no roofline
    calls = _recorder(monkeypatch)
    draw_figures(Context(ReportConfig(out=tmp_path)))
    assert "roofline" not in calls and "achieved_flops" in calls


def test_a_single_depth_draws_the_depth_figure_without_a_line(tmp_path, monkeypatch):
    pd.DataFrame(
        [
            _timing_row(T=16, predicted_depth=3, predicted_flops=1e6, median_s=1e-3),
            _timing_row(T=32, predicted_depth=3, predicted_flops=2e6, median_s=2e-3),
        ]
    ).to_csv(tmp_path / "timing.csv", index=False)
    calls = _recorder(monkeypatch)
    draw_figures(Context(ReportConfig(out=tmp_path)))
    assert calls["time_vs_depth"][1] == {"fit": None}


def test_flops_figure_needs_a_predicted_column_and_prediction_a_predicted_s(tmp_path, monkeypatch):
    pd.DataFrame(
        [{"status": "ok", "model": "rnn", "quantity": "forward", "measured_torch": 1}]
    ).to_csv(tmp_path / "flops_reconciliation.csv", index=False)
    pd.DataFrame([{"workload": "w", "measured_s": 1.0}]).to_csv(
        tmp_path / "prediction.csv", index=False
    )
    pd.DataFrame([{"status": "ok", "model": "rnn"}]).to_csv(
        tmp_path / "training_curves.csv", index=False
    )
    calls = _recorder(monkeypatch)
    assert draw_figures(Context(ReportConfig(out=tmp_path))) == []
    assert calls == {}


def test_measured_columns_are_the_counters_the_figure_melts():
    frame = pd.DataFrame(columns=["model", "measured_torch", "predicted", "measured_x"])
    assert S.measured_columns(frame) == ["measured_torch", "measured_x"]


# ---------------------------------------------------------------------------- Markdown


def test_cells_print_integers_plainly_and_escape_what_breaks_a_table():
    frame = pd.DataFrame(
        {
            "a": [3.0, 2.5e9, 1e9, -4.0],  # integer-valued below 1e9 prints as an int
            "b": ["x|y", "two\nlines", None, "nan"],
            "c": [np.float32(0.5), np.nan, 7, 1.23456789],
        }
    )
    assert md_table(frame).splitlines() == [
        "| a | b | c |",
        "| --- | --- | --- |",
        "| 3 | x\\|y | 0.5 |",
        "| 2.5e+09 | two lines |  |",
        "| 1e+09 |  | 7 |",
        "| -4 |  | 1.235 |",
    ]
    assert md_table(frame[["c"]], floatfmt=".2f").splitlines()[2:] == [
        "| 0.50 |",
        "|  |",
        "| 7 |",
        "| 1.23 |",
    ]


def test_md_table_of_nothing_and_the_numbering_of_details():
    assert md_table(None) == md_table(pd.DataFrame()) == "_(no rows)_\n"
    frame = pd.DataFrame({"k": ["a", "b", "c"], "v": ["y" * 8, "s", "z" * 9]})
    text = md_table(frame, wrap=7)
    # cells longer than 7 characters: the two long values, numbered in reading order
    assert text == (
        "| k | v |\n| --- | --- |\n| a | see [1] |\n| b | s |\n| c | see [2] |\n"
        "\n1. yyyyyyyy\n2. zzzzzzzzz\n"
    )
    assert "see [" not in md_table(frame, wrap=9)  # a cell of exactly `wrap` stays


def test_stages_table_without_settings_or_dates():
    assert stages_table(None)[1] == "" and stages_table(None)[0].empty
    assert stages_table(pd.DataFrame())[0].empty
    status = pd.DataFrame(
        {"stage": ["bench", "flops"], "status": ["done", "failed"], "seconds": [1.5, 2.0]}
    )
    table, common = stages_table(status)
    assert common == ""
    assert table.to_dict("list") == {
        "stage": ["bench", "flops"],
        "status": ["done", "failed"],
        "seconds": [1.5, 2.0],
        "finished (UTC)": ["", ""],
        "settings": ["", ""],
    }
    # unreadable and missing settings count as none; a setting every stage shares is once
    status["settings"] = ["{not json", json.dumps({"grid": "g", "shards": None})]
    status["finished"] = ["2026-01-02T03:04:05Z", np.nan]
    table, common = stages_table(status)
    assert common == "" and list(table["settings"]) == ["", "grid g"]
    assert list(table["finished (UTC)"]) == ["2026-01-02 03:04:05", ""]
    status["settings"] = [
        json.dumps({"grid": "g", "shards": None}),
        json.dumps({"grid": "g", "shards": None}),
    ]
    assert stages_table(status)[1] == "Every stage: grid g; shards default.\n"


def test_a_section_shows_its_table_and_findings_and_collects_the_findings(tmp_path):
    from analysis.report.render import section

    ctx = Context(ReportConfig(out=tmp_path))
    findings = ["earlier"]
    summary = S.Summary(pd.DataFrame({"x": [1.5]}), ["A is 2x B.", "C holds."])
    text = section(ctx, "Title", summary, findings, intro="Why.", level=3, floatfmt=".1f")
    assert text == (
        "### Title\n\nWhy.\n\n| x |\n| --- |\n| 1.5 |\n\n"
        "**What this shows.** A is 2x B. C holds.\n\n"
    )
    assert findings == ["earlier", "A is 2x B.", "C holds."]
    assert section(ctx, "T", S.Summary(), findings, empty="none") == "## T\n\n_(none)_\n\n"
    assert section(ctx, "T", S.Summary(), findings) == "## T\n\n_(not available)_\n\n"
    only = section(ctx, "T", S.Summary(pd.DataFrame(), ["F."]), findings)
    assert only == "## T\n\n**What this shows.** F.\n\n" and findings[-1] == "F."
    table = section(ctx, "T", S.Summary(pd.DataFrame({"x": ["a"]})), findings)
    assert table == "## T\n\n| x |\n| --- |\n| a |\n\n" and len(findings) == 4


def test_a_figure_is_linked_only_when_its_file_exists(tmp_path):
    from analysis.report.render import figure, section

    ctx = Context(ReportConfig(out=tmp_path))
    assert figure(ctx, "f", "Cap") == "_(figure f not drawn)_\n\n"
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.png").write_bytes(b"")
    assert figure(ctx, "f", "Cap") == "![Cap](figures/f.png)\n\n*Cap*\n\n"
    text = section(ctx, "T", S.Summary(), [], figures=(("f", "Cap"), ("g", "G")))
    assert text == (
        "## T\n\n![Cap](figures/f.png)\n\n*Cap*\n\n_(figure g not drawn)_\n\n_(not available)_\n\n"
    )


def test_the_small_labels_of_the_sections():
    R = importlib.import_module("analysis.report.render")  # the package's `render` is a function

    assert R._counter_names(None) == ["torch"]
    assert R._counter_names(pd.DataFrame(columns=["measured_torch", "measured_fvcore"])) == [
        "torch",
        "fvcore",
    ]
    notes = pd.DataFrame({"env_torch_notes": ["n1", None, "n1", "n2"]})
    assert R._counter_notes(notes) == ["n1", "n2"]
    from analysis.trace import counter_notes

    assert R._counter_notes(pd.DataFrame({"env_torch_notes": [None]})) == counter_notes()
    assert R._counter_notes(None) == counter_notes()
    assert R._other_label(None) == R._other_label(pd.DataFrame()) == "other devices"
    assert R._other_label(pd.DataFrame({"x": [1]})) == "other devices"
    assert (
        R._other_label(pd.DataFrame({"device_label": ["H200", None, "H200", "A100"]}))
        == "H200, A100"
    )
    assert R._layer_size(None) == R._layer_size(pd.DataFrame({"D": [8]})) == ""
    assert R._layer_size(pd.DataFrame({"D": [64.0, 64.0], "H": [4, 4]})) == " (width 64, 4 heads)"
    assert R._layer_size(pd.DataFrame({"D": [64, 128], "H": [4, 4]})) == ""
    assert R._training_corpus() == "builtin"
    assert R.device_label({"cpu_model": "EPYC", "device_name": "H200"}, "cpu") == "EPYC"
    assert R.device_label({"cpu_model": None, "device_name": "H200"}, "cuda") == "H200"
    assert R.device_label({}, "cuda") == "cuda"


def test_the_grid_and_model_rows_of_the_timing_table(tmp_path):
    R = importlib.import_module("analysis.report.render")  # the package's `render` is a function

    ctx = Context(ReportConfig(out=tmp_path))
    assert R._grid(ctx, None) == ctx.cfg.grid
    assert R._grid(ctx, pd.DataFrame({"grid": [np.nan, "quick", "default"]})) == "quick"
    assert R._grid(ctx, pd.DataFrame({"grid": [np.nan]})) == ctx.cfg.grid
    assert R._grid(ctx, pd.DataFrame({"x": [1]})) == ctx.cfg.grid
    assert R._model_rows(None).empty and R._model_rows(pd.DataFrame()).empty
    timing = pd.DataFrame(
        [
            _timing_row(T=1),
            _timing_row(T=2, status="failed"),
            _timing_row(T=3, suite="test_attention"),
        ]
    )
    assert list(R._model_rows(timing)["T"]) == [1]


def test_symbols_are_stated_once_in_a_fixed_order():
    from analysis.report.render import symbols_line

    assert symbols_line() == (
        "Symbols: B = batch size; T = sequence length; D = hidden width (n_embd); "
        "E = embedding width; L = layers; H = attention heads; J = head dimension, J = D/H; "
        "V = vocabulary size; N = new tokens generated; P = prompt length; "
        "C = context window (block_size)."
    )


def test_data_dates_are_those_of_the_data_stages_that_finished():
    status = pd.DataFrame(
        {
            "stage": ["environment", "bench", "flops", "markdown", "nope"],
            "status": ["done", "done", "failed", "done", "done"],
            "finished": [
                "2026-03-01T00:00:00Z",
                "2026-02-01T10:00:00Z",
                "2026-01-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
            ],
        }
    )
    # environment and markdown always run; flops failed; nope is not a stage
    assert data_dates(status, STAGES) == "2026-02-01"
    status.loc[2, "status"] = "done"
    assert data_dates(status, STAGES) == "2026-01-01 to 2026-02-01"
    assert data_dates(None, STAGES) is None
    assert data_dates(status.drop(columns="finished"), STAGES) is None
    assert data_dates(status[status["stage"].eq("markdown")], STAGES) is None


def test_the_header_names_device_torch_threads_grid_commit_and_date(tmp_path):
    from analysis.formulas import convention
    from analysis.report.render import header, symbols_line

    ctx = Context(ReportConfig(out=tmp_path))
    env = {
        "cpu_model": "EPYC 7B13",
        "torch": "2.13.0",
        "threads": 1,
        "git_commit": "abc123",
        "date": "2026-05-06T07:08:09Z",
    }
    text = header(ctx, env, None, "quick", STAGES)
    assert text.startswith(
        "# charlm report\n\nDevice: **EPYC 7B13** (cpu), torch 2.13.0, 1 thread(s), grid "
        "`quick`, git abc123, data of 2026-05-06.\n\n"
    )
    assert f"Conventions: FLOPs are {convention('full')}; times are medians" in text
    assert "a timing is `noisy` when IQR/median > 10%;" in text
    assert text.endswith("(2^20 bytes).\n\n" + symbols_line() + "\n\n")
    status = pd.DataFrame(
        {"stage": ["bench"], "status": ["done"], "finished": ["2026-01-02T00:00:00Z"]}
    )
    assert "data of 2026-01-02." in header(ctx, env, status, "quick", STAGES)


def test_render_ends_with_environment_stages_notes_and_files(tmp_path):
    from analysis.report.render import render

    (tmp_path / "environment.json").write_text(json.dumps({"torch": "2.13.0", "threads": 1}))
    pd.DataFrame(
        {
            "stage": ["bench"],
            "status": ["done"],
            "seconds": [3.0],
            "finished": ["2026-01-02T00:00:00Z"],
            "settings": [json.dumps({"grid": "quick"})],
        }
    ).to_csv(tmp_path / "stages.csv", index=False)
    pd.DataFrame({"comparison": []}).to_csv(tmp_path / "b.csv", index=False)
    ctx = Context(ReportConfig(out=tmp_path))
    ctx.note("figures", "ratios: not drawn (x)")
    ctx.note("bench", "one")
    text = render(ctx, STAGES)
    assert text.startswith("# charlm report\n\nDevice: **cpu** (cpu), torch 2.13.0, 1 thread")
    assert "## Findings\n\n\n## Predicted vs measured FLOPs" in text  # no findings: empty
    tail = text.split("## Environment\n\n")[1]
    assert tail == (
        "| key | value |\n| --- | --- |\n| torch | 2.13.0 |\n| threads | 1 |\n"
        "\n## Stages\n\nEvery stage: grid quick.\n\n"
        "| stage | status | seconds | finished (UTC) | settings |\n"
        "| --- | --- | --- | --- | --- |\n| bench | done | 3 | 2026-01-02 00:00:00 |  |\n"
        "\nNotes:\n\n- figures: ratios: not drawn (x)\n- bench: one\n"
        "\nFiles: `b.csv`, `stages.csv`.\n"
    )


# ------------------------------------------------- moved from tests/test_report.py


def test_md_table_moves_long_cells_to_a_details_list_and_blanks_missing_values():
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "text": ["short", "x" * 90],
            "n": [257.0, float("nan")],
            "r": [0.123456, 2.5],
        }
    )
    text = md_table(frame, wrap=60)
    assert "| a | short | 257 | 0.1235 |" in text
    assert "| b | see [1] |  | 2.5 |" in text
    assert "1. " + "x" * 90 in text


def test_md_table_prints_every_row_up_to_max_rows_and_counts_the_rest():
    frame = pd.DataFrame({"T": [16, 32, 64, 128], "median_s": [0.5, 1.25, 2.75, 6.0]})
    rows = ["| 16 | 0.5 |", "| 32 | 1.25 |", "| 64 | 2.75 |", "| 128 | 6 |"]
    assert md_table(frame).splitlines() == ["| T | median_s |", "| --- | --- |", *rows]
    assert md_table(frame, max_rows=4) == md_table(frame)  # exactly max_rows: all shown
    # one row over max_rows 3: the first three shown, the fourth counted
    assert md_table(frame, max_rows=3).splitlines() == [
        "| T | median_s |",
        "| --- | --- |",
        *rows[:3],
        "",
        "_... and 1 more rows._",
    ]


def test_stages_table_states_shared_settings_once():
    status = pd.DataFrame(
        {
            "stage": ["bench", "training"],
            "status": ["done", "done"],
            "seconds": [1.0, 2.0],
            "finished": ["2026-01-02T03:04:05Z", "2026-01-03T00:00:00Z"],
            "settings": [
                json.dumps({"grid": "quick", "threads": 1, "bench_json": None}),
                json.dumps({"grid": "quick", "threads": 1, "steps": 40, "models": ["rnn", "gru"]}),
            ],
        }
    )
    table, common = stages_table(status)
    assert common == "Every stage: grid quick; threads 1.\n"
    assert list(table["settings"]) == ["", "steps 40; models rnn, gru"]
    assert list(table["finished (UTC)"]) == ["2026-01-02 03:04:05", "2026-01-03 00:00:00"]
    assert data_dates(status, STAGES) == "2026-01-02 to 2026-01-03"


def test_the_findings_of_every_section_open_the_report(tmp_path):
    # a run folder holding only ratios.csv: the Paired ratios section is the one with
    # findings, and its sentences (two significant figures, written out here) open the report
    pd.DataFrame(
        [
            {
                "comparison": "attention manual/flash",
                "measure": "time",
                "configuration": "B4-T64",
                "device": "cpu",
                "ratio": 0.5,
                "ci_low": 0.45,
                "ci_high": 0.55,
                "pairs": 300,
                "converged": True,
            },
            {
                "comparison": "attention manual/flash",
                "measure": "time",
                "configuration": "B4-T512",
                "device": "cpu",
                "ratio": 4.0,
                "ci_low": 3.6,
                "ci_high": 4.4,
                "pairs": 22,
                "converged": False,
            },
            {
                "comparison": "attention manual/flash",
                "measure": "memory",
                "configuration": "B4-T64",
                "device": "cpu",
                "ratio": 4.0,
                "ci_low": 4.0,
                "ci_high": 4.0,
                "pairs": 1,
                "converged": True,
            },
        ]
    ).to_csv(tmp_path / "ratios.csv", index=False)
    from analysis.report.render import render

    text = render(Context(ReportConfig(out=tmp_path)), STAGES)
    opening = text.split("## Findings\n\n")[1].split("\n## ")[0]
    assert (
        "- attention manual/flash, time: A/B from 0.50 [0.45, 0.55] (B4-T64) to 4.0 "
        "[3.6, 4.4] (B4-T512); 1 of 2 intervals wider than the precision target.\n" in opening
    )
    assert "- attention manual/flash, memory: A/B 4.0 [4.0, 4.0].\n" in opening
    section = text.split("### Paired ratios\n")[1].split("\n### ")[0]
    assert (
        "| attention manual/flash | time | B4-T64 | cpu | 0.50 [0.45, 0.55] | 300 | True |"
        in section
    )
    assert (
        "| attention manual/flash | time | B4-T512 | cpu | 4.0 [3.6, 4.4] | 22 | False |" in section
    )


def test_the_prediction_intro_gives_the_fixed_costs_in_microseconds(tmp_path):
    from analysis.report.render import _prediction_intro

    (tmp_path / "machine.json").write_text(
        json.dumps(
            {
                "op_fixed_s": 4e-6,
                "view_fixed_s": 5e-7,
                "bandwidth_bytes_per_s": 2e10,
                "ceiling_flops_per_s": 3e11,
            }
        )
    )
    intro = _prediction_intro(Context(ReportConfig(out=tmp_path)))
    # 4e-6 s = 4 us, 5e-7 s = 0.5 us
    assert "fixed cost 4 us per op, 0.5 us per view, bandwidth 2e+10 B/s" in intro
    assert "capped at its largest, 3e+11 FLOP/s" in intro


def test_the_achieved_flops_figure_gets_the_ceiling_interval_low_then_high(tmp_path, monkeypatch):
    from analysis import plots
    from analysis.report.render import draw_figures

    pd.DataFrame(
        [
            {
                "device": "cpu",
                "n": 64,
                "dtype": "float32",
                "rounds": 10,
                "flops_per_second": 1e9,
                "flops_per_second_ci_low": 0.9e9,
                "flops_per_second_ci_high": 1.1e9,
                "peak_flops_per_second": 1.2e9,
            }
        ]
    ).to_csv(tmp_path / "ceiling.csv", index=False)
    pd.DataFrame(
        [
            _timing_row(
                T=t,
                median_s=1e-3 * t,
                predicted_flops=1e6 * t,
                predicted_depth=t + 1,
                flops_per_second=1e9 / 4,
                seconds_per_token=2.5e-4,
            )
            for t in (16, 32)
        ]
    ).to_csv(tmp_path / "timing.csv", index=False)
    drawn = {}
    for name in ("time_per_token_vs_T", "sequence_time_vs_T", "time_vs_depth"):
        monkeypatch.setattr(plots, name, lambda *a, **k: None)
    monkeypatch.setattr(
        plots,
        "achieved_flops",
        lambda frame, ceiling, path, ci: drawn.update(ceiling=ceiling, ci=ci),
    )
    draw_figures(Context(ReportConfig(out=tmp_path)))
    assert drawn == {"ceiling": 1e9, "ci": (0.9e9, 1.1e9)}


OUTLINE = """\
# charlm report
## Findings
## Predicted vs measured FLOPs
_(figure flops_predicted_vs_measured not drawn)_
_(not available)_
## Formulas derived from counts
_(not derived (stage derive))_
## Time
### Bench coverage
_(bench not available)_
### Noise
_(not available)_
### Failed configurations
_(none)_
### Time against T
_(figure time_per_token_vs_T not drawn)_
_(figure sequence_time_vs_T not drawn)_
_(not available)_
### Time against sequential depth
_(figure time_vs_depth not drawn)_
_(not available)_
### Achieved FLOP/s
_(figure achieved_flops not drawn)_
_(not available)_
### Timing quality
_(not available)_
### Paired ratios
_(figure ratios not drawn)_
_(no paired comparisons)_
### The homework models beside their twins (medians)
_(not available)_
## Flash (SDPA) vs manual attention
_(figure attention_flash_vs_manual not drawn)_
_(no attention rows)_
## Devices side by side
_(figure devices_time_vs_T not drawn)_
_(no other device's report)_
### Paired ratios on each device
_(no paired ratios)_
### Reproducibility
_(not run (charlm report --repeat 2))_
## Sequential depth
_(not available)_
## The homework's cost answers
_(not available)_
## Time predicted from the counts
_(figure time_predicted_vs_measured not drawn)_
_(figure roofline not drawn)_
_(not predicted (stage calibrate))_
### The prediction on the other devices' results
_(no other device's results with a machine file)_
### What the time model says about the homework
_(not predicted)_
### CUDA graphs and torch.compile: the launch floor removed
_(no CUDA-graph or compiled rows (bench/test_graphs.py, bench/test_compiled.py: CUDA only))_
## Training curves
_(figure training_curves not drawn)_
_(not available)_
## Environment
_(no rows)_
## Stages
_(no rows)_
"""


def test_an_empty_run_renders_every_heading_in_order_with_what_is_missing(tmp_path):
    # the report's outline is a contract (README, docs and the committed references link to
    # its headings): OUTLINE is it, reviewed against results/reference/cpu/REPORT.md's
    # headings, so a renamed or dropped heading, a section moved or a changed "missing"
    # message has to change this list too
    from analysis.report.render import render

    text = render(Context(ReportConfig(out=tmp_path)), STAGES)
    lines = [ln for ln in text.splitlines() if ln.startswith(("#", "_("))]
    assert "\n".join(lines) + "\n" == OUTLINE


def test_every_figure_is_linked_under_its_section_once_drawn(tmp_path):
    from analysis.report.render import render

    (tmp_path / "figures").mkdir()
    for name in (
        "flops_predicted_vs_measured",
        "time_per_token_vs_T",
        "sequence_time_vs_T",
        "time_vs_depth",
        "achieved_flops",
        "ratios",
        "attention_flash_vs_manual",
        "devices_time_vs_T",
        "time_predicted_vs_measured",
        "roofline",
        "training_curves",
    ):
        (tmp_path / "figures" / f"{name}.png").write_bytes(b"")
    text = render(Context(ReportConfig(out=tmp_path)), STAGES)
    assert "not drawn" not in text
    under = {}
    for block in text.split("\n#")[1:]:
        title = block.lstrip("#").split("\n")[0].strip()
        under[title] = [m.split(")")[0] for m in block.split("](figures/")[1:]]
    assert {t: f for t, f in under.items() if f} == {
        "Predicted vs measured FLOPs": ["flops_predicted_vs_measured.png"],
        "Time against T": ["time_per_token_vs_T.png", "sequence_time_vs_T.png"],
        "Time against sequential depth": ["time_vs_depth.png"],
        "Achieved FLOP/s": ["achieved_flops.png"],
        "Paired ratios": ["ratios.png"],
        "Flash (SDPA) vs manual attention": ["attention_flash_vs_manual.png"],
        "Devices side by side": ["devices_time_vs_T.png"],
        "Time predicted from the counts": ["time_predicted_vs_measured.png", "roofline.png"],
        "Training curves": ["training_curves.png"],
    }


def test_the_derived_intro_states_each_measures_conventions_once():
    from analysis.report.render import _derived_intro

    rows = pd.DataFrame(
        [
            {"measure": "flops", "quantity": "forward", "convention": "2 per MAC.", "model": "rnn"},
            {"measure": "flops", "quantity": "forward", "convention": "2 per MAC.", "model": "gru"},
            {
                "measure": "depth",
                "quantity": "generate",
                "convention": "critical path",
                "model": "rnn",
            },
            {
                "measure": "depth",
                "quantity": "forward",
                "convention": "matmul chain",
                "model": "transformer",
            },
            {"measure": "bytes", "quantity": "forward", "convention": np.nan, "model": "rnn"},
        ]
    )
    text = _derived_intro(rows)
    # MAX_DEGREE (4) and the depth basis, since a depth row is there
    assert "finite differences (at most 4; depth: linear, with ceil(log2 T) in the basis), " in text
    assert " Generate: the context window holds the prompt and every new token" in text
    # one convention for FLOPs: no model list; two for depth: each names its models; the
    # row without a convention is left out, a trailing period is not doubled
    assert text.endswith(
        " Conventions: FLOPs: 2 per MAC; depth (rnn): critical path; "
        "depth (transformer): matmul chain."
    )
    plain = _derived_intro(rows[rows["measure"].eq("flops")])
    assert "(at most 4), " in plain and "Generate" not in plain
    assert plain.endswith(" Conventions: FLOPs: 2 per MAC.")
    bare = _derived_intro(None)
    assert bare.startswith("Each built-in model's formula derived from exact counts alone")
    assert "(at most 4), " in bare and "Conventions" not in bare and "Generate" not in bare
    assert "Conventions" not in _derived_intro(rows.drop(columns="model"))
    assert _derived_intro(rows.drop(columns="model")).endswith(
        "every new token (the hand-written formula's first branch: no sliding window)."
    )
    other = pd.DataFrame(
        [{"measure": "energy", "quantity": "forward", "convention": "J", "model": "rnn"}]
    )
    assert _derived_intro(other).endswith(" Conventions: energy: J.")
    assert _derived_intro(other.assign(convention=np.nan)).endswith(
        "are equal when their expanded difference is zero."
    )


def test_the_committed_cpu_reference_is_what_render_makes_of_its_tables(tmp_path):
    # REPORT.md is a function of the run's tables alone: rendered again from the committed
    # CPU reference's tables (a real full run), it is the committed REPORT.md line for line.
    # So the reference a reader opens says what the current code says about those numbers.
    # A change to the rendering changes it: refresh it with
    #   charlm report --out results/reference/cpu --stages markdown --resume
    # (seconds; it re-renders only) and commit both. The GPU references are historical
    # records of their code and grid (2026-11-28) and are not re-rendered.
    import shutil

    from analysis.report.config import REPO
    from analysis.report.render import render

    src = REPO / "results" / "reference" / "cpu"
    for p in src.iterdir():
        if p.is_file():
            shutil.copy(p, tmp_path / p.name)
    shutil.copytree(src / "figures", tmp_path / "figures")
    ctx = Context(ReportConfig(out=tmp_path))
    ctx.notes.update(json.loads((src / "notes.json").read_text()))
    got = render(ctx, STAGES).splitlines()
    want = (src / "REPORT.md").read_text().splitlines()
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert (first, len(got)) == (None, len(want)), (
        f"line {first}: {got[first] if first is not None else ''!r} != "
        f"{want[first] if first is not None else ''!r}"
    )


def test_failed_configurations_and_the_grid_of_the_timing_table(tmp_path):
    # two rows of a real quick-grid bench (tests/data/bench_sample.json), the second marked
    # failed, the config left at the default grid: the failed row is listed with its error
    # and opens the report; coverage is counted on the timing table's grid, `quick`
    from pathlib import Path

    from analysis.report import bench_tables
    from analysis.report.ingest import expected_workload_ids
    from analysis.report.render import render

    sample = json.loads((Path(__file__).parent / "data" / "bench_sample.json").read_text())
    timing = bench_tables(sample)["timing.csv"]
    timing = timing[timing["suite"].eq("test_model_phase")].head(2).copy()
    assert set(timing["grid"]) == {"quick"}
    timing.loc[timing.index[1], "status"] = "failed: OutOfMemoryError: no memory"
    timing.to_csv(tmp_path / "timing.csv", index=False)
    bad = timing["id"].iloc[1]
    text = render(Context(ReportConfig(out=tmp_path)), STAGES)
    failed = text.split("### Failed configurations\n\n")[1].split("\n### ")[0]
    assert f"| {bad} | failed: OutOfMemoryError: no memory |" in failed
    finding = f"1 bench configuration failed and is listed in timing.csv with its error: {bad}."
    assert f"- {finding}\n" in text.split("## Findings\n\n")[1].split("\n## ")[0]
    # the failed row counts as present: len(quick) - 2 are missing, of the quick grid
    quick = expected_workload_ids("quick", "cpu")
    coverage = text.split("### Bench coverage\n\n")[1].split("\n### ")[0]
    assert (
        f"Truncated bench: {len(quick) - 2} of {len(quick)} workloads of the `quick` "
        "grid have no timing"
    ) in coverage


def test_the_flops_figure_keeps_a_measured_row_whatever_else_it_lacks(tmp_path, monkeypatch):
    pd.DataFrame(
        [
            {
                "status": "ok",
                "model": "rnn",
                "quantity": "forward",
                "predicted": np.nan,
                "measured_torch": 4,
            }
        ]
    ).to_csv(tmp_path / "flops_reconciliation.csv", index=False)
    calls = _recorder(monkeypatch)
    draw_figures(Context(ReportConfig(out=tmp_path)))
    long = calls["flops_predicted_vs_measured"][0][0]
    assert list(long["measured"]) == [4] and long["predicted"].isna().all()


def test_the_roofline_gets_the_prediction_rows(tmp_path, monkeypatch):
    _write_run(tmp_path)
    calls = _recorder(monkeypatch)
    draw_figures(Context(ReportConfig(out=tmp_path)))
    assert list(calls["roofline"][0][0]["workload"]) == ["w"]
