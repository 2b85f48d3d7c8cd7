"""The checker's hints for an incorrect answer: the causal (lower-triangle) attention count,
where the questions count the full T x T square.

Hand derivations under the questions' assumptions (B = 1, no vocabulary head), nanoGPT block:
per layer QKV 6TD^2, output projection 2TD^2, MLP 16TD^2 (24TD^2 together); the scores
Q K^T and the weighted values A V cost 2D FLOPs per query-key pair each. The full square has
T^2 pairs; the causal lower triangle, diagonal included, T(T+1)/2. So:

    forward, full:    L(24TD^2 + 4T^2 D)
    forward, causal:  L(24TD^2 + 2T(T+1)D)    = 24LTD^2 + 2LT^2D + 2LTD
    backward (manual kernel: each matmul twice its forward), causal: 48LTD^2 + 4LT(T+1)D
    scores of one layer, causal: 2D T(T+1)/2 = T(T+1)D
    generating T tokens from one (P = 1, N = T, C = T, no cache) runs windows c = 1..T:
      causal:  sum_c [24LcD^2 + 2Lc(c+1)D] = 12LD^2 T(T+1) + 2LD (T(T+1)(2T+1)/6 + T(T+1)/2)
               leading terms 12LT^2D^2 + (2/3)LT^3D   (full square: 12LT^2D^2 + (4/3)LT^3D)
"""

import pytest
import sympy as sp

from analysis.checker import DERIVATIONS, FULL_SQUARE, check_question, homework_questions
from analysis.questions import assumed
from analysis.verdicts import Verdict

TINY = {"T": (2, 3), "D": (4,), "L": (1, 2), "H": (2,), "V": (5,)}
CAUSAL = "this is the causal (lower-triangle) count"


@pytest.fixture(scope="module")
def questions():
    return homework_questions()


def _row(questions, qid, text):
    return check_question(questions[qid], text, TINY)


@pytest.mark.parametrize("qid,answer,exact", [
    ("transformer.forward.flops", "24LTD^2 + 2LT^2D", False),  # Kaplan-style, to leading order
    ("transformer.forward.flops", "24LTD^2 + 2LT(T+1)D", True),  # with the diagonal
    ("transformer.forward.flops", "L(24TD^2 + 2T(T+1)D)", True),
    ("transformer.backward.flops", "48LTD^2 + 4LT(T+1)D", True),
    ("transformer.layer.scores.flops", "T(T+1)D", True),
    ("transformer.layer.scores.flops", "T^2 D", False),
    ("transformer.layer.attention.flops", "8TD^2 + 2T(T+1)D", True),
    ("transformer.generate.flops", "12LT^2D^2 + 2LT^3D/3", False),
])
def test_a_causal_count_is_incorrect_and_says_so(questions, qid, answer, exact):
    row = _row(questions, qid, answer)
    assert row["verdict"] is Verdict.INCORRECT
    assert f"{CAUSAL} (" in row["reasoning"] and FULL_SQUARE in row["reasoning"]
    hint = row["reasoning"].split(CAUSAL)[1].split(FULL_SQUARE)[0]
    assert ("to leading order" in hint) is not exact


def test_the_causal_hint_names_another_phase_when_that_is_what_matches(questions):
    # the causal forward count given for the backward question
    row = _row(questions, "transformer.backward.flops", "24LTD^2 + 2LT(T+1)D")
    assert row["verdict"] is Verdict.INCORRECT
    assert "derived forward count with the causal (lower-triangle) attention count" in \
        row["reasoning"]


@pytest.mark.parametrize("qid,answer", [
    ("transformer.forward.flops", "24LTD^2 + 4LT^2D"),
    ("transformer.layer.scores.flops", "2T^2D"),
    ("transformer.generate.flops", "12LT^2D^2 + 4LT^3D/3"),
])
def test_the_full_square_is_correct_and_gets_no_causal_hint(questions, qid, answer):
    row = _row(questions, qid, answer)
    assert row["verdict"] is Verdict.CORRECT and CAUSAL not in row["reasoning"]


def test_no_causal_hint_where_the_count_has_no_attention(questions):
    # the MLP has no attention: its causal and full counts are one expression
    row = _row(questions, "transformer.layer.mlp.flops", "8TD^2")
    assert row["verdict"] is Verdict.INCORRECT and "causal" not in row["reasoning"]


def test_another_phase_of_a_non_attention_term_gets_the_phase_hint_and_no_causal_one(questions):
    # the MLP's backward count given for its forward: each of its matmuls twice, 2 x 16TD^2 =
    # 32TD^2. The MLP has no attention, so its causal backward count is that same 32TD^2:
    # the answer names the backward count, and saying "causal" there would be wrong
    row = _row(questions, "transformer.layer.mlp.flops", "32TD^2")
    assert row["verdict"] is Verdict.INCORRECT
    assert "the answer is the derived backward count" in row["reasoning"]
    assert "causal" not in row["reasoning"] and FULL_SQUARE not in row["reasoning"]


def test_another_phase_of_an_attention_term_counted_causally_gets_the_causal_hint(questions):
    # one layer's attention (QKV 6TD^2, output 2TD^2, scores and weighted values 2D per
    # query-key pair each) counted causally, T(T+1)/2 pairs, for its backward (each matmul
    # twice): 2 (8TD^2 + 4D T(T+1)/2) = 16TD^2 + 4T^2D + 4TD, given for the forward
    # (8TD^2 + 4T^2D); the full-square backward 16TD^2 + 8T^2D differs in its leading terms
    row = _row(questions, "transformer.layer.attention.flops", "16TD^2 + 4T^2D + 4TD")
    assert row["verdict"] is Verdict.INCORRECT
    assert ("the answer is the derived backward count with the causal (lower-triangle) "
            "attention count") in row["reasoning"]
    assert FULL_SQUARE in row["reasoning"]


def test_generate_causal_derivation_matches_the_hand_sum(questions):
    L, T, D = sp.symbols("L T D", positive=True)
    c = sp.Symbol("c", positive=True, integer=True)
    by_hand = sp.summation(24 * L * c * D**2 + 2 * L * c * (c + 1) * D, (c, 1, T))
    q = questions["transformer.generate.flops"]
    derived = assumed(DERIVATIONS["flops"](q, "generate", attention_count="causal"), q)
    names = {s.name: s for s in derived.free_symbols}
    by_hand = by_hand.xreplace({L: names["L"], T: names["T"], D: names["D"]})
    assert sp.expand(sp.piecewise_fold(derived) - by_hand) == 0


def test_every_attention_question_states_the_full_square(questions):
    """A question whose count changes under the causal convention says, in its assumptions,
    that it counts the full square; the others do not."""
    for q in questions.values():
        if q.kind != "flops":
            continue
        full = sp.piecewise_fold(assumed(DERIVATIONS["flops"](q), q))
        causal = sp.piecewise_fold(
            assumed(DERIVATIONS["flops"](q, attention_count="causal"), q))
        states = any("full T x T square" in a for a in q.assumptions)
        assert states == (sp.expand(full - causal) != 0), q.id
