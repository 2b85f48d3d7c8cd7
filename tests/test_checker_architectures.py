"""The homework's four RNN cost questions asked of the LSTM and minGRU: the derivations agree
with measurement (check_question raises otherwise) and give the hand-derived answers."""

import pytest

from analysis.checker import check_question
from analysis.questions import load_questions
from analysis.verdicts import Verdict
from charlm.cli import main

TINY = {"T": (2, 5), "D": (4,), "L": (1, 2), "H": (1,), "V": (5,)}

# By hand (B = 1, E = D, no head). LSTM: 4 gates x (input + hidden) matmuls of 2D^2 per layer
# and step; backward doubles all but the 4 hidden matmuls' input gradients at step 0.
# minGRU: 2 input matmuls per layer and position, none on the state: backward = 2 x forward;
# its matmul chain does not depend on T (the scan's steps are not matmuls).
HAND = {
    "lstm.generate.flops": "16TLD^2",
    "lstm.train.flops": "16TLD^2 + 32TLD^2 - 8LD^2",
    "lstm.generate.sequential_matmuls": "TL",
    "lstm.train.sequential_matmuls": "2(T + L - 1)",
    "mingru.generate.flops": "4TLD^2",
    "mingru.train.flops": "12TLD^2",
    "mingru.generate.sequential_matmuls": "TL",
    "mingru.train.sequential_matmuls": "2L",
}
WRONG = {
    "lstm.train.flops": "12TLD^2",  # the RNN's
    "lstm.train.sequential_matmuls": "2TL",
    "mingru.train.flops": "48TLD^2",  # the LSTM's
    "mingru.train.sequential_matmuls": "2(T + L - 1)",  # the recurrent wavefront
}


@pytest.fixture(scope="module")
def questions():
    return load_questions()


@pytest.mark.parametrize("qid", HAND)
def test_hand_derived_answers_are_correct_and_measured(questions, qid):
    row = check_question(questions[qid], HAND[qid], TINY)
    assert row["verdict"] is Verdict.CORRECT and "lower-order" not in row["reasoning"]
    assert "agrees with measurement" in row["reasoning"]


@pytest.mark.parametrize("qid", WRONG)
def test_wrong_answers_get_a_measured_counterexample(questions, qid):
    row = check_question(questions[qid], WRONG[qid], TINY)
    assert row["verdict"] is Verdict.INCORRECT
    ce = row["counterexample"]
    assert ce["answered"] != ce["derived"] == ce["measured"]


def test_list_shows_the_new_questions(capsys):
    assert main(["check-answers", "--list", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert all(qid in text for qid in HAND)
