"""What `charlm check-answers` prints: tables within 100 columns, `--list` with the shared
assumptions and symbols once and one line per question; json keeps every field."""

import json

import pandas as pd
import pytest

from analysis.verdicts import Verdict
from charlm.cli import main
from charlm.commands.check_answers import table_text

WIDTH = 100


def _widths(text):
    return [len(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def listing():
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["check-answers", "--list"]) == 0
    return buf.getvalue()


def test_list_fits_100_columns(listing):
    assert max(_widths(listing)) <= WIDTH


def test_list_states_shared_assumptions_and_symbols_once(listing):
    assert listing.count("single sequence (B = 1)") == 1
    assert listing.count("J = D/H") == 1
    assert listing.count("full T x T square") == 1


def test_list_has_one_line_per_question(listing, capsys):
    assert main(["check-answers", "--list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    lines = listing.splitlines()
    for row in rows:
        starting = [ln for ln in lines if ln.split(" ")[0].rstrip("*") == row["id"]]
        assert len(starting) == 1, row["id"]
    # json keeps everything: each row's full question, its assumptions and symbols
    by_id = {r["id"]: r for r in rows}
    scores = by_id["transformer.layer.scores.flops"]
    assert "single sequence (B = 1)" in scores["assumptions"]
    assert "full T x T square" in scores["assumptions"]
    assert "J = D/H" in scores["symbols"]
    assert scores["question"].endswith("for all heads together?")


def test_list_marks_the_questions_with_their_own_assumption(listing):
    marked = {ln.split(" ")[0] for ln in listing.splitlines() if ln.split(" ")[0].endswith("*")}
    assert "transformer.forward.flops*" in marked and "transformer.layer.mlp.flops*" not in marked


def _frame():
    long = "x" * 300
    return pd.DataFrame([
        {"id": "transformer.layer.attention.sequential_matmuls", "answer": "4",
         "verdict": Verdict.CORRECT, "derived": "4", "counterexample": None,
         "reasoning": "equals the derived expression " * 20},
        {"id": "gru.control.dependence", "answer": "the output depends less on " + long,
         "verdict": Verdict.INCORRECT, "derived": "exercise1: abs(dh) 2.99->1.50; " * 12,
         "counterexample": {"sizes": {"sliders": long}, "answered": "a", "derived": "b",
                            "measured": "claim fails for exercise1"},
         "reasoning": "checked numerically"},
        {"id": "rnn.train.flops", "answer": "8TLD^2", "verdict": Verdict.INCORRECT,
         "derived": "12*D^2*L*T - 2*D^2*L",
         "counterexample": {"sizes": {"D": 4, "L": 1, "T": 2}, "answered": 256,
                            "derived": 352, "measured": 352},
         "reasoning": "the backward count"},
    ])


def test_table_fits_100_columns_with_long_cells_clipped():
    text = table_text(_frame())
    assert max(_widths(text)) <= WIDTH
    assert "…" in text  # the long GRU cells are clipped, not spilled
    # ids and verdicts are whole, on the row's first line
    assert any(ln.startswith("transformer.layer.attention.sequential_matmuls  correct")
               for ln in text.splitlines())
    assert "D=4, L=1, T=2: answered 256, derived 352, measured 352" in " ".join(text.split())
    assert "claim fails for exercise1" in text


def test_check_answers_table_fits_and_json_keeps_full_text(tmp_path, capsys):
    answer = " + ".join(["24LTD^2"] * 12)  # a long, valid answer
    path = tmp_path / "a.toml"
    path.write_text(f'"transformer.forward.flops" = "{answer}"\n'
                    '"gru.control.dependence" = "the output depends less on the input, more on '
                    'the previous hidden state"\n')
    assert main(["check-answers", str(path), "--grid", "quick"]) == 1
    text = capsys.readouterr().out
    assert max(_widths(text)) <= WIDTH
    assert main(["check-answers", str(path), "--grid", "quick", "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["answer"] == answer and len(rows[1]["derived"]) > WIDTH
