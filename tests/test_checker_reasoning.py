"""Whole rows of the checker on the homework's own questions, one per verdict branch, on the
default grid (GRID): the reasoning a student reads, the counterexample and the number of
grid points, each worked out by hand below.

Grid points: the sizes the measurement varies (T, D; L for a stacked model; H with
attention) over GRID = T (2, 5), D (4, 8), L (1, 2, 3), H (1, 2): an Elman RNN question
12 points (2 x 2 x 3), a whole-Transformer question 24 (x 2 heads), one layer's scores 8
(T x D x H). Counterexamples come from the first grid point (by size sum, then name) where
the answer and the derivation differ."""

import re

import pytest

from analysis.checker import check_question, homework_questions
from analysis.verdicts import Verdict

RNN_GENERATE_NOTE = ("Generating T tokens from one start token runs T steps (the homework's "
                     "generate loop: P = 1 prompt token, N = T samples, P + N - 1 steps)")
RNN_TRAIN_NOTE = ("Training on a sequence is its forward pass plus its backward pass (the "
                  "optimizer step is elementwise)")


@pytest.fixture(scope="module")
def questions():
    return homework_questions()


def _row(questions, qid, text):
    row = check_question(questions[qid], text)
    return (row["verdict"], row["derived"], row["counterexample"], row["measured_points"],
            row["reasoning"], row["read"])


def test_an_exact_answer(questions):
    # rnn.generate.flops: T steps x L layers x two D x D matmuls x 2 FLOPs = 4 D^2 L T
    assert _row(questions, "rnn.generate.flops", "4*D^2*L*T") == (
        Verdict.CORRECT, "4*D^2*L*T", None, 12,
        "equals the derived expression exactly under the stated assumptions; derived agrees "
        f"with measurement on 12 grid points; {RNN_GENERATE_NOTE}.", "4*D^2*L*T")


def test_an_answer_off_by_lower_order_terms(questions):
    assert _row(questions, "rnn.generate.flops", "4*D^2*L*T - 3*D") == (
        Verdict.CORRECT, "4*D^2*L*T", None, 12,
        "differs from the derived expression only by lower-order terms (derived - answer = "
        "3*D), which the homework lets answers ignore; answer/derived -> 1 as the sizes grow; "
        f"derived agrees with measurement on 12 grid points; {RNN_GENERATE_NOTE}.",
        "4*D^2*L*T - 3*D")


def test_a_bound_with_the_right_leading_terms_and_one_with_the_wrong(questions):
    assert _row(questions, "rnn.generate.flops", "O(D^2 L T)") == (
        Verdict.ASYMPTOTIC, "4*D^2*L*T", None, 12,
        "an O(...) bound: its leading terms (D^2*L*T) are the derived expression's "
        "(4*D^2*L*T), coefficients aside; a bound gives no count, so it is asymptotic, never "
        f"correct; derived agrees with measurement on 12 grid points; {RNN_GENERATE_NOTE}.",
        "O(D^2*L*T)")
    # a bound gives no number: no counterexample
    assert _row(questions, "rnn.generate.flops", "O(D L T)") == (
        Verdict.INCORRECT, "4*D^2*L*T", None, 12,
        "an O(...) bound whose leading terms (D*L*T) are not the derived expression's "
        "(D^2*L*T; derived 4*D^2*L*T); derived agrees with measurement on 12 grid points; "
        f"{RNN_GENERATE_NOTE}.", "O(D*L*T)")


def test_a_wrong_coefficient_and_a_missing_size(questions):
    # (D, L, T) = (4, 1, 2), the smallest grid point: 2 * 16 * 2 = 64 against 4 * 16 * 2 = 128
    assert _row(questions, "rnn.generate.flops", "2*D^2*L*T") == (
        Verdict.INCORRECT, "4*D^2*L*T",
        {"sizes": {"D": 4, "L": 1, "T": 2}, "answered": 64, "derived": 128, "measured": 128},
        12, "derived - answer = 2*D^2*L*T; leading order differs: answer 2*D^2*L*T vs derived "
        f"4*D^2*L*T; derived agrees with measurement on 12 grid points; {RNN_GENERATE_NOTE}.",
        "2*D^2*L*T")
    # no L: right at L = 1 (the first point agrees), so the counterexample is the next point
    # by size sum, (4, 2, 2): 4 * 16 * 2 = 128 against 4 * 16 * 2 * 2 = 256
    assert _row(questions, "rnn.generate.flops", "4*D^2*T") == (
        Verdict.INCORRECT, "4*D^2*L*T",
        {"sizes": {"D": 4, "L": 2, "T": 2}, "answered": 128, "derived": 256, "measured": 256},
        12, "derived - answer = 4*D^2*L*T - 4*D^2*T; leading order differs: answer 4*D^2*T vs "
        "derived 4*D^2*L*T; holds only when L = 1; derived agrees with measurement on 12 grid "
        f"points; {RNN_GENERATE_NOTE}.", "4*D^2*T")


def test_a_train_answer_that_is_another_phase(questions):
    # train 12 D^2 L T - 2 D^2 L (backward skips the input gradient through h0): forward
    # 4 D^2 L T, backward 8 D^2 L T - 2 D^2 L; at (4, 1, 2): 384 - 32 = 352
    assert _row(questions, "rnn.train.flops", "4*D^2*L*T") == (
        Verdict.INCORRECT, "12*D^2*L*T - 2*D^2*L",
        {"sizes": {"D": 4, "L": 1, "T": 2}, "answered": 128, "derived": 352, "measured": 352},
        12, "derived - answer = 8*D^2*L*T - 2*D^2*L; leading order differs: answer 4*D^2*L*T "
        "vs derived 12*D^2*L*T; the answer is the derived forward count (4*D^2*L*T); derived "
        f"agrees with measurement on 12 grid points; {RNN_TRAIN_NOTE}.", "4*D^2*L*T")
    assert _row(questions, "rnn.train.flops", "8*D^2*L*T") == (
        Verdict.INCORRECT, "12*D^2*L*T - 2*D^2*L",
        {"sizes": {"D": 4, "L": 1, "T": 2}, "answered": 256, "derived": 352, "measured": 352},
        12, "derived - answer = 4*D^2*L*T - 2*D^2*L; leading order differs: answer 8*D^2*L*T "
        "vs derived 12*D^2*L*T; the answer is the derived backward count (8*D^2*L*T - "
        "2*D^2*L, to leading order); derived agrees with measurement on 12 grid points; "
        f"{RNN_TRAIN_NOTE}.", "8*D^2*L*T")


def test_a_sequential_depth_answer_with_no_size_that_rescues_it(questions):
    # derived 2L + 2T - 2; L T leaves 2L + 2T - 2 - LT: T at L = 1, L at T = 1, never 0
    assert _row(questions, "rnn.train.sequential_matmuls", "L*T") == (
        Verdict.INCORRECT, "2*L + 2*T - 2",
        {"sizes": {"D": 4, "L": 1, "T": 2}, "answered": 2, "derived": 4, "measured": 4},
        12, "derived - answer = -L*T + 2*L + 2*T - 2; leading order differs: answer L*T vs "
        "derived 2*L + 2*T; derived agrees with measurement on 12 grid points; Training = "
        "forward over the known sequence + backward; sequential = longest dependency chain.",
        "L*T")


def test_a_causal_transformer_count_is_named_and_refuted_on_24_points(questions):
    # full square 4 D L T^2 (scores and weighted values, 2 FLOPs each); the lower triangle
    # T (T + 1) / 2 gives 2 D L T^2 + 2 D L T. At (D, H, L, T) = (4, 1, 1, 2):
    # 24 * 16 * 2 + 2 * 4 * 4 = 800 against 768 + 4 * 4 * 4 = 832
    assert _row(questions, "transformer.forward.flops", "24*D^2*L*T + 2*D*L*T^2") == (
        Verdict.INCORRECT, "24*D^2*L*T + 4*D*L*T^2",
        {"sizes": {"D": 4, "H": 1, "L": 1, "T": 2}, "answered": 800, "derived": 832,
         "measured": 832},
        24, "derived - answer = 2*D*L*T^2; leading order differs: answer 24*D^2*L*T + "
        "2*D*L*T^2 vs derived 24*D^2*L*T + 4*D*L*T^2; this is the causal (lower-triangle) "
        "count (24*D^2*L*T + 2*D*L*T^2 + 2*D*L*T, to leading order); the question counts the "
        "full T x T square; derived agrees with measurement on 24 grid points.",
        "24*D^2*L*T + 2*D*L*T^2")


def test_a_generation_answered_with_one_forward_pass(questions):
    # windows of 1..T tokens: sum of 24 D^2 L t + 4 D L t^2 over t = 1..T is
    # 12 D^2 L T^2 + 12 D^2 L T + 4 D L T^3/3 + 2 D L T^2 + 2 D L T/3; less one forward at
    # T = 1: 12 - 12 (D^2 L) + 4/3 - 2 + 2/3 (D L) = 0, so it holds only when T = 1.
    # At (4, 1, 1, 2): 768 + 64 = 832 against 768 + 384 + 128/3 + 32 + 16/3 = 1232
    assert _row(questions, "transformer.generate.flops", "24*D^2*L*T + 4*D*L*T^2") == (
        Verdict.INCORRECT,
        "12*D^2*L*T^2 + 12*D^2*L*T + 4*D*L*T^3/3 + 2*D*L*T^2 + 2*D*L*T/3",
        {"sizes": {"D": 4, "H": 1, "L": 1, "T": 2}, "answered": 832, "derived": 1232,
         "measured": 1232},
        24, "derived - answer = 12*D^2*L*T^2 - 12*D^2*L*T + 4*D*L*T^3/3 - 2*D*L*T^2 + "
        "2*D*L*T/3; leading order differs: answer 24*D^2*L*T + 4*D*L*T^2 vs derived "
        "12*D^2*L*T^2 + 4*D*L*T^3/3; holds only when T = 1; the answer is the derived forward "
        "count (24*D^2*L*T + 4*D*L*T^2); derived agrees with measurement on 24 grid points; "
        "The homework's generate loop (no KV cache) re-runs the whole prefix for each new "
        "token: windows of 1, 2, ..., T tokens.", "24*D^2*L*T + 4*D*L*T^2")


def test_a_term_measured_with_its_neighbour_says_so(questions):
    # one layer's scores, 2 D T^2 (H heads of D/H), over T x D x H: 8 points
    assert _row(questions, "transformer.layer.scores.flops", "2*D*T^2+1") == (
        Verdict.CORRECT, "2*D*T^2", None, 8,
        "differs from the derived expression only by lower-order terms (derived - answer = "
        "-1), which the homework lets answers ignore; answer/derived -> 1 as the sizes grow; "
        "derived agrees with measurement on 8 grid points (the measurement covers scores, "
        "weighted_values together); The counter sees the two attention matmuls of the module "
        "together, so the measurement checks scores + weighted values.", "2*D*T^2 + 1")


def test_a_generation_answered_with_the_kv_cache_count_names_both_matches(questions):
    # with a cache, step t attends to t keys: sum of 4 D L t = 2 D L T^2 + 2 D L T, plus
    # 24 D^2 L T; the causal forward has the same lower triangle, so both are named. The
    # causal count with a cache equals the full one and is not named twice.
    # At (4, 1, 1, 2): 768 + 32 + 16 = 816 against 1232 (above)
    assert _row(questions, "transformer.generate.flops",
                "24*D^2*L*T + 2*D*L*T^2 + 2*D*L*T") == (
        Verdict.INCORRECT,
        "12*D^2*L*T^2 + 12*D^2*L*T + 4*D*L*T^3/3 + 2*D*L*T^2 + 2*D*L*T/3",
        {"sizes": {"D": 4, "H": 1, "L": 1, "T": 2}, "answered": 816, "derived": 1232,
         "measured": 1232},
        24, "derived - answer = 12*D^2*L*T^2 - 12*D^2*L*T + 4*D*L*T^3/3 - 4*D*L*T/3; "
        "leading order differs: answer 24*D^2*L*T + 2*D*L*T^2 vs derived 12*D^2*L*T^2 + "
        "4*D*L*T^3/3; holds only when T = 1; the answer is the derived generate with a KV "
        "cache count (24*D^2*L*T + 2*D*L*T^2 + 2*D*L*T); the answer is the derived forward "
        "count with the causal (lower-triangle) attention count (24*D^2*L*T + 2*D*L*T^2 + "
        "2*D*L*T); the question counts the full T x T square; derived agrees with measurement "
        "on 24 grid points; The homework's generate loop (no KV cache) re-runs the whole "
        "prefix for each new token: windows of 1, 2, ..., T tokens.",
        "24*D^2*L*T + 2*D*L*T^2 + 2*D*L*T")


def test_a_causal_backward_is_its_own_causal_count(questions):
    # backward of manual attention: each matmul's forward once per operand gradient, 48 D^2
    # L T + 8 D L T^2; causal halves the square: 4 D L T^2 + 4 D L T. At (4, 1, 1, 2):
    # 1536 + 64 + 32 = 1632 against 1536 + 128 = 1664; 4 D L T^2 - 4 D L T is 0 at T = 1
    assert _row(questions, "transformer.backward.flops", "48*D^2*L*T + 4*D*L*T^2 + 4*D*L*T") == (
        Verdict.INCORRECT, "48*D^2*L*T + 8*D*L*T^2",
        {"sizes": {"D": 4, "H": 1, "L": 1, "T": 2}, "answered": 1632, "derived": 1664,
         "measured": 1664},
        24, "derived - answer = 4*D*L*T^2 - 4*D*L*T; leading order differs: answer 48*D^2*L*T "
        "+ 4*D*L*T^2 vs derived 48*D^2*L*T + 8*D*L*T^2; holds only when T = 1; this is the "
        "causal (lower-triangle) count (48*D^2*L*T + 4*D*L*T^2 + 4*D*L*T); the question counts "
        "the full T x T square; derived agrees with measurement on 24 grid points; Matmul "
        "algebra of the homework's manual attention: every matmul costs its forward once for "
        "each operand's gradient.", "48*D^2*L*T + 4*D*L*T^2 + 4*D*L*T")


def test_a_generation_depth_answered_with_the_train_depth(questions):
    # generation: L T (each sample feeds the next step); 2L + 2T - 2 is training's wavefront.
    # At (4, 1, 2): 2 + 4 - 2 = 4 against 2; the difference is -T at L = 1, -L at T = 1
    assert _row(questions, "rnn.generate.sequential_matmuls", "2*L + 2*T - 2") == (
        Verdict.INCORRECT, "L*T",
        {"sizes": {"D": 4, "L": 1, "T": 2}, "answered": 4, "derived": 2, "measured": 2},
        12, "derived - answer = L*T - 2*L - 2*T + 2; leading order differs: answer 2*L + 2*T "
        "vs derived L*T; the answer is the derived train count (2*L + 2*T - 2); derived agrees "
        "with measurement on 12 grid points; Sequential = on the longest dependency chain; "
        "each sample feeds the next step.", "2*L + 2*T - 2")


@pytest.mark.parametrize("text", [None, "", "   "])
def test_a_blank_answer_is_missing_with_the_derivation_shown(questions, text):
    q = questions["rnn.generate.flops"]
    assert check_question(q, text) == {
        "id": "rnn.generate.flops", "question": q.question, "answer": text,
        "verdict": Verdict.MISSING, "derived": "4*D^2*L*T", "counterexample": None,
        "reasoning": "no answer given.", "section": "RNN efficiency, question 1",
        "measured_points": 0, "read": ""}


def test_unreadable_text_is_unparsed_with_the_reason_and_where(questions):
    q = questions["rnn.generate.flops"]
    row = check_question(q, "4*D^^2")
    assert (row["verdict"], row["derived"], row["counterexample"], row["measured_points"],
            row["read"], row["answer"]) == (Verdict.UNPARSED, "4*D^2*L*T", None, 0, "",
                                            "4*D^^2")
    assert re.fullmatch(r"could not read the answer: \S.* \(position [0-9]+\)\.",
                        row["reasoning"]), row["reasoning"]
