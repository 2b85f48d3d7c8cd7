"""The checker's comparison helpers and plain rows on expressions and inputs whose answers are
worked out by hand here: monomials and which dominates which, leading parts, the three ways
an answer compares, how expressions and numbers are shown, the grid of sizes, and the rows
of an answer nothing was measured for (missing, unknown id, another family's)."""

import pytest
import sympy as sp

from analysis import checker as K
from analysis.verdicts import Verdict

T, D, L, H, V = (K.SYMBOLS[n] for n in "TDLHV")


def _as_set(monos):
    return {(str(term), frozenset(powers.items())) for term, powers in monos}


# ---------------------------------------------------------------------------- monomials


def test_monomials_of_an_expanded_expression_with_their_exponents():
    got = K._monomials(3 * T * D**2 + 2 * T + (T - T))
    assert _as_set(got) == {("3*D**2*T", frozenset({("T", 1), ("D", 2)})),
                            ("2*T", frozenset({("T", 1)}))}
    # the product is expanded first: (T + 1) * D = D*T + D
    assert _as_set(K._monomials((T + 1) * D)) == {
        ("D*T", frozenset({("T", 1), ("D", 1)})), ("D", frozenset({("D", 1)}))}
    assert _as_set(K._monomials(sp.Integer(5))) == {("5", frozenset())}
    assert K._monomials(sp.Integer(0)) == []


@pytest.mark.parametrize(("big", "small", "dominates"), [
    ({"T": 1, "D": 2}, {"T": 1, "D": 1}, True),
    ({"T": 1}, {}, True),  # a size against a constant
    ({"T": 1, "D": 2}, {"T": 1, "D": 2}, False),  # itself
    ({"T": 2}, {"D": 1}, False),  # neither covers the other
    ({"T": 2, "D": 1}, {"T": 1, "D": 2}, False),
    ({"D": 1}, {"T": 1, "D": 1}, False),  # a symbol missing in big
    ({}, {}, False),
])
def test_dominance_needs_every_exponent_at_least_and_not_all_equal(big, small, dominates):
    assert K._dominates(big, small) is dominates


def test_the_leading_part_keeps_the_monomials_nothing_dominates():
    assert K.leading_part(12 * T * L * D**2 - 2 * L * D**2 + 3 * T * L * D) == 12 * T * L * D**2
    both = 24 * L * T * D**2 + 4 * L * T**2 * D
    assert sp.expand(K.leading_part(both + 7 * L * T) - both) == 0  # neither dominates
    assert K.leading_part(T + 5) == T
    assert K.leading_part(sp.Integer(4)) == 4
    shapes = K.leading_shapes(12 * T * L * D**2 - 2 * L * D**2)
    assert shapes == frozenset({frozenset({("T", 1), ("L", 1), ("D", 2)})})
    assert K.leading_shapes(both) == frozenset({frozenset({("L", 1), ("T", 1), ("D", 2)}),
                                                frozenset({("L", 1), ("T", 2), ("D", 1)})})


def test_shapes_are_shown_without_coefficients_sorted_or_zero():
    assert K._shapes_text(24 * L * T * D**2 + 4 * L * T**2 * D + 3) == "D*L*T^2 + D^2*L*T"
    assert K._shapes_text(sp.Integer(0)) == "0"


# ---------------------------------------------------------------------------- compare


def test_an_answer_is_exact_lower_order_or_different():
    derived = 12 * T * L * D**2 - 2 * L * D**2
    assert K.compare(derived, derived, lower_order_ok=False) == ("exact", 0)
    how, diff = K.compare(12 * T * L * D**2, derived, lower_order_ok=True)
    assert how == "lower_order" and sp.expand(diff + 2 * L * D**2) == 0
    # the same answer where the question counts every term
    assert K.compare(12 * T * L * D**2, derived, lower_order_ok=False)[0] == "different"
    # a wrong leading coefficient: the difference has a leading monomial itself
    assert K.compare(6 * T * L * D**2, derived, lower_order_ok=True)[0] == "different"
    # one of two leading monomials missing
    two = 24 * L * T * D**2 + 4 * L * T**2 * D
    assert K.compare(24 * L * T * D**2, two, lower_order_ok=True)[0] == "different"
    # a lower term that no leading monomial dominates (6L against 6LT)
    assert K.compare(6 * L, 6 * L * T, lower_order_ok=True)[0] == "different"
    # an answer with an extra lower-order term is still within the leading order
    assert K.compare(12 * T * L * D**2 + D, derived, lower_order_ok=True)[0] == "lower_order"


# ---------------------------------------------------------------------------- shown values


def test_expressions_are_shown_expanded_with_carets():
    assert K._show(T**2 * D) == "D*T^2"
    assert K._show((T + 1) * D) == "D*T + D"
    assert K._show(5) == "5" and K._show("O(T)") == "O(T)"


def test_numbers_are_ints_when_whole_and_floats_otherwise():
    assert K._number(sp.Rational(15, 2)) == 7.5 and isinstance(K._number(sp.Rational(15, 2)),
                                                               float)
    assert K._number(sp.Integer(4)) == 4 and isinstance(K._number(sp.Integer(4)), int)
    assert K._number(6) == 6 and isinstance(K._number(6), int)


def test_a_value_at_a_point_is_exact():
    assert K._value(T * D / 2, {"T": 3, "D": 5}) == sp.Rational(15, 2)
    assert K._value(T * D + L, {"T": 2, "D": 4, "L": 1}) == 9


def test_the_grid_is_every_combination_of_the_expression_sizes_smallest_first():
    grid = {"T": (2, 5), "D": (4, 8), "L": (1, 2)}
    # L is not in the expression, Z is not in the grid: T x D only, by sum then by items
    assert K._grid({"T", "D", "Z"}, grid) == [
        {"D": 4, "T": 2}, {"D": 4, "T": 5}, {"D": 8, "T": 2}, {"D": 8, "T": 5}]
    # equal sums are ordered by their items: D=3, T=4 before D=4, T=3
    assert K._grid({"T", "D"}, {"T": (3, 4), "D": (3, 4)}) == [
        {"D": 3, "T": 3}, {"D": 3, "T": 4}, {"D": 4, "T": 3}, {"D": 4, "T": 4}]
    assert K._grid(set(), grid) == [{}]


# ---------------------------------------------------------------------------- plain rows


@pytest.mark.parametrize(("text", "blank"), [
    (None, True), ("", True), ("  \n\t", True), ("0", False), (" T ", False), (0, False)])
def test_blank_answers(text, blank):
    assert K.is_blank(text) is blank


def test_a_plain_row_has_every_field_and_nothing_measured():
    row = K._plain_row(None, "q9", "abc", Verdict.MISSING, "no answer given.")
    assert row == {"id": "q9", "question": "", "answer": "abc", "verdict": Verdict.MISSING,
                   "derived": "", "counterexample": None, "reasoning": "no answer given.",
                   "section": "", "measured_points": 0, K.SEEN: ""}
    q = next(iter(K.homework_questions().values()))
    row = K._plain_row(q, q.id, None, Verdict.UNPARSED, "r", derived="2T")
    assert (row["question"], row["section"], row["derived"]) == (q.question, q.section, "2T")


def test_an_unknown_id_names_the_closest_one_if_any():
    row = K._unknown_row("flops_rnn_forwrd", "T", ["flops_rnn_forward", "depth_gru"])
    assert row["verdict"] == Verdict.UNKNOWN_ID
    assert row["reasoning"] == ("unknown question id 'flops_rnn_forwrd' (did you mean "
                                "'flops_rnn_forward'?); `charlm check-answers --list` shows "
                                "the ids.")
    row = K._unknown_row("zzz", "T", ["flops_rnn_forward"])
    assert row["reasoning"] == ("unknown question id 'zzz'; `charlm check-answers --list` "
                                "shows the ids.")


def _family(check):
    return K.ExtraCheck("fam_", check, lambda: [{"id": "fam_a", "question": "What is a?"}])


def _good(qid, text):
    return {**dict.fromkeys(K.ROW_FIELDS, ""), "id": qid, "answer": text,
            "verdict": Verdict.CORRECT}


def _unreadable(qid, text):
    raise ValueError(f"{qid}: cannot read {text!r}.")


def test_another_family_row_missing_unparsed_unknown_or_its_own():
    assert K._extra_row(_family(_good), "fam_a", "1")["verdict"] == Verdict.CORRECT
    missing = K._extra_row(_family(_good), "fam_a", "  ")
    assert (missing["verdict"], missing["question"], missing["reasoning"]) == (
        Verdict.MISSING, "What is a?", "no answer given.")
    bad = K._extra_row(_family(_unreadable), "fam_a", "x")
    # the id prefix and the final stop of the message are dropped, the reason kept
    assert (bad["verdict"], bad["question"], bad["reasoning"]) == (
        Verdict.UNPARSED, "What is a?", "could not read the answer: cannot read 'x'.")
    unknown = K._extra_row(_family(_unreadable), "fam_b", "x")
    assert unknown["verdict"] == Verdict.UNKNOWN_ID and "'fam_a'" in unknown["reasoning"]
    # a blank answer to an id the family does not ask is not MISSING but unknown
    assert K._extra_row(_family(_unreadable), "fam_b", "")["verdict"] == Verdict.UNKNOWN_ID


def test_another_family_row_without_the_fields_is_a_bug_of_that_family():
    with pytest.raises(TypeError, match="check for 'fam_' returned a row without"):
        K._extra_row(_family(lambda qid, text: {"id": qid}), "fam_a", "1")


def test_an_id_goes_to_the_family_with_the_longest_matching_prefix(monkeypatch):
    short = K.ExtraCheck("g", _good, list)
    long = K.ExtraCheck("gru_", _good, list)
    monkeypatch.setattr(K, "EXTRA_CHECKS", {"g": short, "gru_": long})
    assert K._extra_for("gru_gate") is long
    assert K._extra_for("gate") is short
    assert K._extra_for("x") is None
