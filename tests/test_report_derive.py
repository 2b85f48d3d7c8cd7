"""The report's derive stage: built-in formulas derived from counts beside the hand-written
ones (derived_formulas.csv and its REPORT.md section). The expected formulas are derived by
hand here, from the models' layer shapes."""

import pickle

import pandas as pd
import sympy as sp

from analysis.architectures import ARCHITECTURES
from analysis.report import Context, ReportConfig, build_report, pipeline
from analysis.report import summaries as S
from analysis.report.pipeline import STAGES, derive_cells, derived_formula_row
from analysis.report.render import render

# B=1. rnn (embedding E=64, one layer): per position the input projection 2ED, the
# recurrence 2D^2 and the head 2DV. transformer (H=4): per layer and position Q, K, V and the
# output projection 4 x 2D^2, the 4x MLP 2 x 2 x 4D^2, the scores and weighted values 2 x 2TD
# (the full T x T square); the head 2DV per position.
RNN_FORWARD = "2TDV + 2TD^2 + 128TD"
TRANSFORMER_FORWARD = "24LTD^2 + 4LT^2D + 2TDV"


def test_the_stage_writes_the_table_and_the_section(tmp_path, monkeypatch):
    real = pipeline.derive_cells
    monkeypatch.setattr(pipeline, "derive_cells", lambda grid: [
        c for c in real(grid) if c[0].startswith(("rnn-", "transformer-"))])
    status = build_report(ReportConfig(out=tmp_path, quick=True,
                                       stages=("derive", "markdown")))
    assert set(status["status"]) == {"done"}
    frame = pd.read_csv(tmp_path / "derived_formulas.csv").set_index("model")
    assert list(frame.index) == ["rnn", "transformer"]
    assert frame.loc["rnn", "derived"] == frame.loc["rnn", "hand_written"] == RNN_FORWARD
    assert frame.loc["transformer", "derived"] == TRANSFORMER_FORWARD
    assert frame.loc["transformer", "hand_written"] == TRANSFORMER_FORWARD
    assert frame["equal"].all() and frame["verified"].all()
    assert frame.loc["rnn", "varied"] == "T, D, V"  # an rnn has one layer: no L
    assert frame.loc["transformer", "varied"] == "T, D, L, V"
    assert frame.loc["rnn", "fixed"] == "B=1, E=64"
    assert frame.loc["transformer", "fixed"] == "B=1, H=4"
    assert (frame["points"] > 0).all() and (frame["seconds"] > 0).all()
    text = (tmp_path / "REPORT.md").read_text()
    section = text.split("## Formulas derived from counts")[1].split("\n## ")[0]
    assert f"| rnn | forward | FLOPs | T, D, V | B=1, E=64 | {RNN_FORWARD} | {RNN_FORWARD} " \
           "| yes | yes |" in section
    assert "2 of 2 formulas derived from counts alone" in section
    assert "equal the hand-written ones, and all 2 were verified on 4 held-out sizes" in section
    assert "full T^2 attention square" in section  # the transformer's FLOP convention
    assert "derived - hand-written" not in section  # no disagreement, no difference column
    assert "2 of 2 formulas derived" in text.split("## Findings")[1].split("\n## ")[0]


def test_a_row_compares_with_the_hand_written_formula_and_shows_the_difference(monkeypatch):
    T, D = sp.symbols("T D", positive=True, integer=True)
    right = derived_formula_row("rnn", "forward", "flops")
    assert bool(right["equal"].iloc[0]) and right["difference"].iloc[0] == ""
    real = pipeline.hand_written_formula
    # a hand-written formula missing the recurrence (2TD^2): the row must say they differ
    monkeypatch.setattr(pipeline, "hand_written_formula",
                        lambda *a, **k: real(*a, **k) - 2 * T * D**2)
    wrong = derived_formula_row("rnn", "forward", "flops").iloc[0]
    assert not wrong["equal"] and wrong["verified"]
    assert wrong["hand_written"] == "2TDV + 128TD"
    assert wrong["difference"] == "2TD^2"


def test_the_hand_written_generate_of_a_windowed_model_is_its_first_branch():
    from analysis.formulas import SYMBOLS

    hand = pipeline.hand_written_formula("transformer", "generate", "flops")
    assert not hand.has(sp.Piecewise)
    # P=1, N=1, B=1: one forward over one token (T=1): 24LD^2 + 4LD + 2DV
    one = hand.xreplace({SYMBOLS["P"]: 1, SYMBOLS["N"]: 1, SYMBOLS["B"]: 1})
    L, D, V = SYMBOLS["L"], SYMBOLS["D"], SYMBOLS["V"]
    assert sp.expand(one - (24 * L * D**2 + 4 * L * D + 2 * D * V)) == 0


def test_a_full_run_derives_every_quantity_and_the_kv_cache_where_there_is_one():
    cells = dict(derive_cells("default"))
    with_cache = [n for n, a in ARCHITECTURES.items() if a.kv_cache]
    # params, forward, backward, train, generate and depth of forward for every model
    assert len(cells) == 5 * len(ARCHITECTURES) + len(with_cache)
    assert {k for k in cells if "-kv-" in k} == {f"{n}-generate-kv-flops" for n in with_cache}
    assert set(dict(derive_cells("quick"))) == {f"{n}-forward-flops" for n in ARCHITECTURES}
    pickle.dumps(list(cells.values()))  # the cells travel to worker processes
    names = list(STAGES)
    assert names.index("derive") == names.index("check") + 1


def _rows():
    base = {"status": "ok", "measure": "flops", "kv_cache": False, "fixed": "B=1, H=4",
            "held_out": 4, "points": 55, "seconds": 1.5, "attention": "flash",
            "convention": "matmul FLOPs"}
    return pd.DataFrame([
        {**base, "cell": "a", "model": "transformer", "quantity": "forward",
         "varied": "T, D, L, V", "derived": TRANSFORMER_FORWARD,
         "hand_written": TRANSFORMER_FORWARD, "equal": True, "difference": "",
         "verified": True, "failure": ""},
        {**base, "cell": "b", "model": "transformer", "quantity": "train",
         "varied": "T, D, L, V", "derived": "72LTD^2 + 14LT^2D + 6TDV",
         "hand_written": "72LTD^2 + 12LT^2D + 6TDV", "equal": False,
         "difference": "2LT^2D", "verified": True, "failure": ""},
    ])


def test_a_disagreeing_row_is_named_with_its_difference():
    s = S.derived_summary(_rows())
    assert s.findings[0] == (
        "Derived formulas: 1 of 2 formulas derived from counts alone (1 model; quantities "
        "forward, train; measure FLOPs) equal the hand-written ones; not equal: transformer "
        "train FLOPs (derived - hand-written = 2LT^2D).")
    assert s.findings[1] == ("All 2 were verified on 4 held-out sizes each (110 sizes counted "
                             "in 3 s of counting).")
    assert list(s.table["equal"]) == ["yes", "NO"]
    assert list(s.table["derived - hand-written"]) == ["", "2LT^2D"]


def test_an_unverified_and_a_failed_derivation_are_named():
    rows = _rows()
    rows.loc[1, ["equal", "difference", "verified", "failure"]] = [
        True, "", False, "at T=9: total counted 10, the formula gives 11"]
    rows = pd.concat([rows, pd.DataFrame([{"cell": "gru-train-flops",
                                           "status": "failed: ValueError: no"}])],
                     ignore_index=True)
    s = S.derived_summary(rows)
    assert s.findings[0].startswith("Derived formulas: 2 of 2 formulas derived")
    assert s.findings[1] == ("1 of 2 were verified on 4 held-out sizes each; not verified: "
                             "transformer train FLOPs (at T=9: total counted 10, the formula "
                             "gives 11) (110 sizes counted in 3 s of counting).")
    assert s.findings[2] == ("1 derivation(s) failed (see derived_formulas.csv): "
                             "gru-train-flops: failed: ValueError: no.")
    assert list(s.table["verified"]) == ["yes", "NO"] and "failure" in s.table


def test_report_md_shows_the_disagreement(tmp_path):
    _rows().to_csv(tmp_path / "derived_formulas.csv", index=False)
    text = render(Context(ReportConfig(out=tmp_path)), STAGES)
    section = text.split("## Formulas derived from counts")[1].split("\n## ")[0]
    assert "not equal: transformer train FLOPs (derived - hand-written = 2LT^2D)" in section
    assert "| transformer | train | FLOPs | T, D, L, V | B=1, H=4 | 72LTD^2 + 14LT^2D + 6TDV " \
           "| 72LTD^2 + 12LT^2D + 6TDV | 2LT^2D | NO | yes |" in section
