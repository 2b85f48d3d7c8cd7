import math
from pathlib import Path

import pytest
import torch

from analysis import gru_exercises as ex
from analysis.verdicts import Verdict
from charlm.gru_explorer import (
    SLIDERS,
    GRUSettings,
    gru_2d_batch,
    gru_2d_cell,
    gru_2d_step,
    save_gru_step_figure,
)


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def by_hand(s: GRUSettings):
    """The GRU equations for the notebook's weight placement, written out per unit."""
    x, h = (s.data_input, s.control_input), (s.data_hidden, s.control_hidden)
    r0 = sigmoid(s.reset_weight * x[1] + s.reset_weight * h[1])
    z0 = sigmoid(s.update_weight * x[1] + s.update_weight * h[1])
    n0 = math.tanh(s.new_input_weight * x[0] + r0 * (s.new_hidden_weight * h[0]))
    # the control unit's rows are all zero: gates 1/2, no new content
    r1, z1, n1 = 0.5, 0.5, 0.0
    return dict(
        x=x, h=h, r=(r0, r1), z=(z0, z1), n=(n0, n1),
        h_new=((1 - z0) * n0 + z0 * h[0], (1 - z1) * n1 + z1 * h[1]),
    )


SETTINGS = [
    GRUSettings(),
    GRUSettings(0.7, -1.3, -0.4, 1.1, 1.6, -2.2, 0.8, -2.6),
    GRUSettings(-2, 0, 2, 0, -3, 3, -3, 0),
    GRUSettings(1.5, 2, -1.5, -2, 0.2, 0.4, 3, 3),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: str(tuple(s.to_dict().values())))
def test_step_matches_the_gru_equations(settings):
    step = gru_2d_step(settings).to_dict()
    expected = by_hand(settings)
    assert set(step) == {"x", "h", "r", "z", "n", "h_new"}
    for key, pair in expected.items():
        assert step[key] == pytest.approx(list(pair), abs=1e-12), key


def test_cell_has_only_the_notebooks_weights():
    s = GRUSettings(reset_weight=1.0, update_weight=2.0, new_input_weight=3.0,
                    new_hidden_weight=4.0)
    cell = gru_2d_cell(s)
    expected = {
        "W_xr": (0, 1, 1.0), "W_hr": (0, 1, 1.0), "W_xz": (0, 1, 2.0), "W_hz": (0, 1, 2.0),
        "W_xn": (0, 0, 3.0), "W_hn": (0, 0, 4.0),
    }
    for name, (i, j, value) in expected.items():
        w = getattr(cell, name).weight.detach()
        target = torch.zeros(2, 2)
        target[i, j] = value
        assert torch.equal(w, target.double()), name


def test_overrides_change_one_slider():
    assert gru_2d_step(new_hidden_weight=-3.0) == gru_2d_step(
        GRUSettings(new_hidden_weight=-3.0)
    )


def test_batch_matches_single_steps():
    s = GRUSettings(new_hidden_weight=-1.0)
    out = gru_2d_batch(s, [-2.0, 0.5, 1.0], [1.0, -0.3, 2.0])
    for i, (x0, h0) in enumerate([(-2.0, 1.0), (0.5, -0.3), (1.0, 2.0)]):
        step = gru_2d_step(s, data_input=x0, data_hidden=h0)
        assert out["h_new"][i].tolist() == pytest.approx(list(step.h_new), abs=1e-12)


@pytest.mark.parametrize("bad", [dict(data_input=float("nan")), dict(reset_weight="3"),
                                 dict(update_weight=float("inf")), dict(control_input=True)])
def test_bad_settings_are_value_errors(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        GRUSettings(**bad)


def test_unknown_override_is_a_value_error():
    with pytest.raises(ValueError, match="unknown GRU setting"):
        gru_2d_step(reset=1.0)


def test_sliders_are_the_notebooks():
    assert [s.name for s in SLIDERS] == list(GRUSettings().to_dict())
    for s in SLIDERS:
        weight = s.name.endswith("weight")
        assert (s.low, s.high, s.step) == ((-3.0, 3.0, 0.2) if weight else (-2.0, 2.0, 0.1))
        assert s.low <= getattr(GRUSettings(), s.name) <= s.high


def test_figure_is_written_as_png(tmp_path):
    path = save_gru_step_figure(GRUSettings(), tmp_path / "step.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_widget_builds_sliders_and_redraws():
    w = pytest.importorskip("ipywidgets")
    from charlm.gru_explorer import gru_widget

    box = gru_widget()
    sliders = [c for col in box.children[0].children for c in col.children]
    assert [s.description for s in sliders] == [s.label for s in SLIDERS]
    image = box.children[1]
    assert isinstance(image, w.Image)
    first = image.value
    sliders[0].value = 1.5
    assert image.value[:4] == b"\x89PNG" and image.value != first


# --- the exercises: verdicts come from the numbers, so wrong settings must fail ---

HOMEWORK_IDS = ["gru.exercise1.sum", "gru.exercise2.difference", "gru.exercise3.memory",
                "gru.exercise4.pure_input", "gru.control.zero_input", "gru.control.dependence"]


@pytest.fixture(scope="module")
def homework_rows():
    return {r["id"]: r for r in ex.exercise_rows()}


def test_homework_answers_cover_every_gru_question(homework_rows):
    assert list(homework_rows) == HOMEWORK_IDS == list(ex.EXERCISES)
    for row in homework_rows.values():
        assert set(row) >= {"id", "question", "answer", "verdict", "derived", "counterexample",
                            "reasoning", "settings"}
        assert row["settings"]


@pytest.mark.parametrize("qid", HOMEWORK_IDS[:5])
def test_homework_exercise_answers_hold_on_the_cell(homework_rows, qid):
    assert homework_rows[qid]["verdict"] == "correct", homework_rows[qid]


def test_homework_dependence_answer_fails_where_measured(homework_rows):
    """6.5's "less on the input, more on the hidden state": at control 0, z = 1/2, so with the
    default update weight (-3, z ~ 0) the output's slope in h falls from ~3 to 1.25."""
    row = homework_rows["gru.control.dependence"]
    assert row["verdict"] == "incorrect"
    assert "exercise1 (input less, hidden less)" in row["counterexample"]["measured"]


def test_difference_check_fails_for_the_sum_weights():
    m = ex.check_difference(ex.BASE)
    assert not m.holds and "x0=h0=2" in m.counterexample


def test_sum_check_fails_for_the_difference_weights():
    assert not ex.check_sum(ex.BASE.with_(new_hidden_weight=-3.0)).holds


def test_memory_check_fails_when_the_update_gate_is_closed():
    assert not ex.check_memory(ex.BASE).holds
    # z = sigmoid(3 * control 2) and |h_new - h| = (1 - z) |n - h| <= (1 - z) * (1 + 2)
    z = sigmoid(6.0)
    assert ex.check_memory(ex.BASE.with_(update_weight=3.0), tol=(1 - z) * 3).holds


def test_pure_input_check_fails_when_the_reset_gate_is_open():
    m = ex.check_pure_input(ex.BASE)
    assert not m.holds and m.counterexample


@pytest.mark.parametrize("qid,answer", [
    ("gru.exercise2.difference", "W_hn[0,0] = 3.0"),
    ("gru.exercise3.memory", "W_xz[0,1] = W_hz[0,1] = -3"),
    ("gru.exercise4.pure_input", "W_xr = W_hr = -3 or W_hn = 1.0"),  # second alternative fails
    ("gru.control.zero_input", "r[0] = 0.9, z[0] = 0.5"),
    ("gru.exercise1.sum", "W_hn[0,0] = -3"),
])
def test_wrong_answers_are_incorrect(qid, answer):
    row = ex.check_answer(qid, answer)
    assert row["verdict"] == "incorrect" and row["counterexample"], row


@pytest.mark.parametrize("qid,answer", [
    ("gru.exercise2.difference", "new_hidden_weight = -3; new_input_weight = 3"),
    ("gru.exercise3.memory", "update_weight = 3"),
    ("gru.exercise4.pure_input", "W_hn = 0"),
    ("gru.control.zero_input", "r = z = 0.5"),
])
def test_equivalent_answers_are_correct(qid, answer):
    assert ex.check_answer(qid, answer)["verdict"] == "correct"


def test_dependence_answer_is_checked_per_configuration():
    # default weights: at control 2, h_new ~ n = tanh(3x + 3r h), slope 3 in x; at control 0
    # z = r = 1/2, so d h_new / dx = 1/2 * 3 = 1.5 at x = h = 0
    assert ex.sensitivity(ex.BASE, "data_input") == pytest.approx(
        (1 - sigmoid(-6)) * 3, rel=1e-6)
    assert ex.sensitivity(ex.BASE.with_(control_input=0.0), "data_input") == pytest.approx(
        1.5, rel=1e-6)
    only_reset = {"e4": ex.BASE.with_(reset_weight=-3.0)}
    assert ex.check_dependence_claim({"input": "less", "hidden": "more"}, only_reset).holds
    memory = {"e3": ex.BASE.with_(update_weight=3.0)}
    assert not ex.check_dependence_claim({"input": "less", "hidden": "more"}, memory).holds
    assert ex.check_dependence_claim({"input": "more"}, memory).holds


def test_control_hidden_shifts_the_gates_off_one_half():
    assert not ex.check_gates({"r": 0.5, "z": 0.5}, {"h1": ex.BASE.with_(control_hidden=1.0)}
                              ).holds


@pytest.mark.parametrize("answer,match", [
    ('__import__("os").system("x") = 1', "cannot read"),
    ("W_xr[0,0] = 1", "only has W_xr\\[0,1\\]"),
    ("W_xr = 1, W_hr = 2", "tied weights"),
    ("W_xq = 1", "unknown name"),
    ("1" * 600, "longer than"),
    ("", "no settings"),
])
def test_unreadable_answers_are_value_errors_naming_the_id(answer, match):
    with pytest.raises(ValueError, match=match) as info:
        ex.check_answer("gru.exercise3.memory", answer)
    assert "gru.exercise3.memory" in str(info.value)


def test_unknown_gru_id_is_a_value_error():
    with pytest.raises(ValueError, match="unknown GRU question"):
        ex.check_answer("gru.exercise9", "W_hn = 0")


def test_gru_answers_join_the_homework_table():
    from analysis import checker

    table = checker.check_answers({"gru.exercise3.memory": "W_xz[0,1] = W_hz[0,1] = 3.0"})
    assert list(table.id) == ["gru.exercise3.memory"] and table.verdict[0] == Verdict.CORRECT
    assert set(checker.ROW_FIELDS) <= set(table.columns)


def test_verdicts_are_the_verdict_enum():
    correct = ex.check_answer("gru.exercise3.memory", "update_weight = 3")
    wrong = ex.check_answer("gru.exercise3.memory", "update_weight = -3")
    assert correct["verdict"] is Verdict.CORRECT and wrong["verdict"] is Verdict.INCORRECT
