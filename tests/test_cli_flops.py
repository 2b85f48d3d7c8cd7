"""`charlm flops`: one model in each format, formulas without measuring, the grid CSV, and
one-line errors."""

import json

import pandas as pd
import pytest

from analysis.architectures import cost_model
from charlm.cli import main


def _json(capsys, argv):
    assert main(argv + ["--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_holds_predicted_formula_terms_measured_convention(capsys):
    out = _json(capsys, ["flops", "--model", "gru", "--hidden", "8", "--embed", "4",
                         "--vocab", "7", "--seq-len", "3", "--batch", "2"])
    expected = cost_model("gru").forward().evaluate(
        {"B": 2, "T": 3, "D": 8, "E": 4, "L": 1, "V": 7})
    # by hand: 2 B T (3 E D + 3 D^2 + D V), the three gates' input and hidden matmuls and the
    # head, 2 FLOPs per multiply-add
    assert out["predicted"] == 2 * 2 * 3 * (3 * 4 * 8 + 3 * 8 * 8 + 8 * 7) == 4128
    assert out["predicted"] == expected["total"]
    assert out["terms"] == {k: v for k, v in expected.items() if k != "total"}
    assert out["measured"]["torch"] == expected["total"]
    assert "2 per multiply-add" in out["convention"]
    assert isinstance(out["formula"], str) and "V" in out["formula"]
    assert out["verdict"] == "exact"


def test_generate_with_kv_cache_flags(capsys):
    argv = ["flops", "--hidden", "8", "--heads", "2", "--block-size", "6", "--vocab", "5",
            "--quantity", "generate", "--prompt-len", "4", "--new-tokens", "5"]
    cached = _json(capsys, argv + ["--kv-cache"])
    plain = _json(capsys, argv + ["--no-kv-cache"])
    assert cached["verdict"] == plain["verdict"] == "exact"
    assert cached["predicted"] < plain["predicted"]


def test_no_measure_gives_formula_only(capsys):
    out = _json(capsys, ["flops", "--model", "mlrnn", "--quantity", "train", "--no-measure"])
    assert out["measured"] == {"torch": None, "fvcore": None}
    assert out["verdict"] == "not measured"


def test_causal_count_is_stated_and_not_compared(capsys):
    out = _json(capsys, ["flops", "--seq-len", "10", "--attention-count", "causal",
                         "--no-measure"])
    assert out["attention_count"] == "causal" and "causal" in out["convention"]


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_table_and_csv_list_terms_and_total(capsys, fmt):
    assert main(["flops", "--model", "rnn", "--seq-len", "2", "--format", fmt]) == 0
    out = capsys.readouterr().out
    for word in ("W_ih", "W_hh", "fc", "total", "exact"):
        assert word in out


def test_params_quantity(capsys):
    out = _json(capsys, ["flops", "--quantity", "params", "--vocab", "92"])
    assert out["predicted"] == out["measured"]["torch"] == 222_592


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--seq-len", "101"], "--seq-len 101 exceeds --block-size 100"),
        (["--heads", "3"], "divisible by --heads 3"),
        (["--batch", "0"], "--batch (B) must be a positive integer"),
        (["--model", "gru", "--hidden", "-4"], "--hidden must be a positive integer"),
        (["--vocab", "0"], "--vocab must be a positive integer"),
        (["--model", "gru", "--quantity", "generate", "--kv-cache"], "KV cache"),
        (["--grid", "quick"], "--grid needs --out"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    assert main(["flops"] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_grid_writes_reconciliation_csv_and_shows_progress(capsys, tmp_path, monkeypatch):
    import analysis.reconcile

    # the command's wiring on the quick grid's first three sizes (tests/test_reconcile.py
    # checks whole grids)
    quick = analysis.reconcile.GRIDS["quick"]
    monkeypatch.setitem(analysis.reconcile.GRIDS, "quick", lambda: quick()[:3])
    out = tmp_path / "flops.csv"
    assert main(["flops", "--grid", "quick", "--out", str(out), "--format", "csv"]) == 0
    table = pd.read_csv(out)
    assert (table["verdict"] == "exact").all() and len(table) >= 3
    captured = capsys.readouterr()
    assert "rows" in captured.out
    # not a terminal: plain progress lines on stderr, the first and the last size
    lines = captured.err.splitlines()
    assert lines[0].startswith("flops grid quick: 1/3 sizes")
    assert lines[-1].startswith("flops grid quick: 3/3 sizes (100%)")


def test_a_long_count_prints_how_far_it_got_and_the_time_left():
    import io

    from charlm.commands.flops import count_progress

    out = io.StringIO()
    count_progress(1_250_000_000_000, 5_000_000_000_000, 10.0, stream=out)
    # a quarter done in 10 s: 30 s left at that pace
    assert out.getvalue() == ("counting: 1.25T of 5.00T predicted FLOPs (25%) in 10 s, "
                              "about 30 s left\n")
