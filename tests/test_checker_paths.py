"""The checker's less travelled paths, each with the row a user reads: a grid point the model
cannot take, an answer that divides by zero only under the question's assumptions, an O(...)
bound with the wrong leading terms, an answer equal to the derivation on every grid point
but not as a formula (the counterexample then comes from a search), and another family's
missing, unreadable and unknown answers. Expected values are worked out by hand below."""

import pytest

from analysis import checker
from analysis.checker import ExtraCheck, check_answers, check_question
from analysis.questions import load_questions
from analysis.verdicts import Verdict

TINY = {"T": (2, 3), "D": (4,), "L": (1, 2), "H": (2,), "V": (5,)}


@pytest.fixture(scope="module")
def questions():
    return load_questions()


def test_a_grid_point_whose_width_the_heads_do_not_divide_is_refused(questions):
    q = questions["transformer.layer.mlp.flops"]
    with pytest.raises(
        ValueError, match=r"^grid point \{'D': 5, 'H': 2\}: D must be divisible by H$"
    ):
        checker._full_sizes(q, {"D": 5, "H": 2})
    assert checker._full_sizes(q, {"D": 6, "H": 2})["D"] == 6  # 6 = 2 heads of 3


@pytest.mark.parametrize("text", ["T/(B-1)", "12TLD^2/(E-D)"])
def test_an_answer_dividing_by_zero_under_the_assumptions_is_unread(questions, text):
    # rnn.train.flops assumes B = 1 and E = D: B - 1 and E - D are zero there
    row = check_question(questions["rnn.train.flops"], text, TINY)
    assert row["verdict"] == Verdict.UNPARSED
    assert row["reasoning"] == (
        "could not read the answer: it divides by zero under the stated assumptions (B = 1, E = D)."
    )
    assert row["counterexample"] is None


def test_a_bound_with_other_leading_terms_is_incorrect_and_names_both(questions):
    # derived 12 D^2 L T - 2 D^2 L: leading D^2 L T, not the answer's T^3
    row = check_question(questions["rnn.train.flops"], "O(T^3)", TINY)
    assert row["verdict"] == Verdict.INCORRECT
    assert row["reasoning"].startswith(
        "an O(...) bound whose leading terms (T^3) are not the derived expression's "
        "(D^2*L*T; derived 12*D^2*L*T - 2*D^2*L)"
    )
    assert row["counterexample"] is None  # a bound has no value to compare


def test_an_answer_equal_on_the_grid_only_gets_a_counterexample_off_it(questions):
    # derived + (T-2)(T-3)D: equal at the grid's T = 2 and 3; the search over sizes 1..9
    # (D, L, T in name order) differs first at D = L = T = 1: answer 12 - 2 + (-1)(-2) = 12,
    # derived 12 - 2 = 10; no measurement there (None)
    row = check_question(questions["rnn.train.flops"], "12*D^2*L*T - 2*D^2*L + (T-2)*(T-3)*D", TINY)
    assert row["verdict"] == Verdict.INCORRECT
    assert row["counterexample"] == {
        "sizes": {"D": 1, "L": 1, "T": 1},
        "answered": 12,
        "derived": 10,
        "measured": None,
    }


def _family(monkeypatch, check):
    monkeypatch.setitem(
        checker.EXTRA_CHECKS,
        "toy.",
        ExtraCheck("toy.", check, lambda: [{"id": "toy.x", "question": "What is x?"}]),
    )


def test_another_familys_blank_unreadable_and_unknown_answers(questions, monkeypatch):
    def check(qid, text):
        raise ValueError(f"{qid}: no number in {text!r}.")

    _family(monkeypatch, check)
    frame = check_answers({"toy.x": "  "}, TINY, questions)
    row = frame.iloc[0]
    assert (row["verdict"], row["question"], row["reasoning"]) == (
        Verdict.MISSING,
        "What is x?",
        "no answer given.",
    )
    row = check_answers({"toy.x": "abc"}, TINY, questions).iloc[0]
    # the check's message, its id prefix and last period stripped, then one period
    assert (row["verdict"], row["question"], row["reasoning"]) == (
        Verdict.UNPARSED,
        "What is x?",
        "could not read the answer: no number in 'abc'.",
    )
    row = check_answers({"toy.y": "1"}, TINY, questions).iloc[0]
    assert row["verdict"] == Verdict.UNKNOWN_ID and "toy.x" in row["reasoning"]
