"""The answer parser: the ways people write cost answers, and hostile input."""

import builtins

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import expr_parser
from analysis.expr_parser import MAX_LENGTH, AnswerParseError, parse_answer
from analysis.formulas import D, H, L, T

TRANSFORMER_FORWARD = 24 * L * T * D**2 + 4 * L * T**2 * D


@pytest.mark.parametrize("text", [
    "24LTD^2 + 4LT^2D",
    "24*L*T*D**2 + 4*L*T**2*D",
    "24 L T D² + 4 L T² D",
    "4LT²D+24LTD²",
    "(24TD^2 + 4T^2D)L",
    "4 T D (6 D + T) L",
    "24·L·T·D² + 4×L×T²×D",
    "L(24TD^2 + 4T^2D)",
])
def test_equivalent_spellings_parse_to_the_same_expression(text):
    assert sp.expand(parse_answer(text) - TRANSFORMER_FORWARD) == 0


@pytest.mark.parametrize("text,expected", [
    ("2TL", 2 * T * L),
    ("6JTD", 6 * D**2 * T / H),
    ("T^-1", 1 / T),
    ("T⁻¹", 1 / T),
    ("-2T + 3", -2 * T + 3),
    ("2^3T", 8 * T),
    ("T^2^1", T**2),
    ("0.5 T", T / 2),
    ("12TLD^2 − 2LD^2", 12 * T * L * D**2 - 2 * L * D**2),
    ("8TD/2", 4 * T * D),
])
def test_operators_and_precedence(text, expected):
    assert sp.expand(parse_answer(text) - expected) == 0


# A unary minus binds looser than ^, as in mathematics and in Python (-2**2 == -4): -T^2 is
# -(T^2); only a bracket makes -T the base. At an even exponent the two readings differ in
# sign, so each case below tells them apart.
@pytest.mark.parametrize("text,expected", [
    ("-T^2", -T**2),  # -(T*T); (-T)^2 would be +T^2
    ("-2^2", -4),  # -(2*2) = -4; (-2)^2 = +4
    ("(-T)^2", T**2),  # the bracket: (-T)(-T) = +T^2
    ("(-2)^2", 4),  # (-2)(-2) = +4
    ("2-T^2", 2 - T**2),  # binary minus: 2 - T*T
    ("2 - -T^2", 2 + T**2),  # 2 - (-(T*T)) = 2 + T^2
    ("T * -D^2", -T * D**2),  # T * (-(D*D))
    ("-T²", -T**2),  # a superscript exponent binds as tightly as ^
    ("−T^2D", -T**2 * D),  # Unicode minus; then the product: -(T*T)*D
    ("-T**2", -T**2),  # ** between operands is ^, with ^'s precedence
    ("-(T+D)^2", -(T**2 + 2 * T * D + D**2)),  # -((T+D)(T+D)), expanded by hand
    ("-T^0", -1),  # -(T^0) = -1; (-T)^0 = +1
    ("T^-2", 1 / T**2),  # a minus after ^ belongs to the exponent: T^(-2)
    ("-2^-2", sp.Rational(-1, 4)),  # -(2^(-2)) = -(1/4)
])
def test_unary_minus_binds_looser_than_a_power(text, expected):
    assert sp.expand(parse_answer(text) - expected) == 0


@pytest.mark.parametrize("text,column", [
    ("__import__('os').system('ls')", 1),
    ("exec('1')", 1),
    ("eval(T)", 1),
    ("T.real", 2),
    ("T + x", 5),
    ("'T'", 1),
    ("lambda: 1", 1),
    ("T; D", 2),
    ("[T, D]", 3),  # a list; [T] alone is a bracket
    ("T**T", 2),
    ("D2", 2),
    ("(T", 3),
    ("T)", 2),
    ("", 1),
    ("2 3", 3),
    ("1/(T-T)", 2),
])
def test_hostile_or_malformed_input_is_rejected_with_id_and_position(text, column):
    with pytest.raises(AnswerParseError) as err:
        parse_answer(text, "rnn.train.flops")
    assert err.value.position == column
    assert "rnn.train.flops" in str(err.value) and f"position {column}" in str(err.value)


def test_over_long_input_is_rejected():
    with pytest.raises(AnswerParseError, match="longer than"):
        parse_answer("T+" * MAX_LENGTH + "T", "q")


def test_deep_nesting_is_rejected():
    with pytest.raises(AnswerParseError, match="nested deeper"):
        parse_answer("(" * 60 + "T" + ")" * 60, "q")


@pytest.mark.parametrize("text", ["((((9^12)^12)^12)^12)", "(T^12)^12", "9^12^12", "T" * 40])
def test_answers_that_would_explode_are_rejected(text):
    with pytest.raises(AnswerParseError):
        parse_answer(text, "q")


def test_parse_error_is_a_value_error():
    assert issubclass(AnswerParseError, ValueError)


HOSTILE_ALPHABET = "TDLHJVBEtdxyz_.,;:'\"()[]{}+-*/^%=<>!&|~@#$ 0123456789²³⁻·\\\n"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=HOSTILE_ALPHABET, max_size=60))
def test_random_text_parses_or_fails_cleanly_without_eval(text):
    """Whatever the text, the parser either returns a sympy expression in the known symbols
    or raises AnswerParseError; eval, exec and sympify are never reached."""
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec/sympify called")

    saved = (builtins.eval, builtins.exec, sp.sympify)
    builtins.eval = builtins.exec = forbidden
    sp.sympify = forbidden
    try:
        try:
            value = parse_answer(text, "q")
        except AnswerParseError as err:
            assert 1 <= err.position <= len(text) + 1
            return
    finally:
        builtins.eval, builtins.exec, sp.sympify = saved
    assert {s.name for s in value.free_symbols} <= {"T", "D", "L", "H", "V", "B", "E"}


_ATOMS = st.sampled_from(["T", "D", "L", "H", "V", "B", "E", "2", "3", "7"])


@st.composite
def _expressions(draw, depth=0):
    """(text, expected sympy expression, degree) for random well-formed answers whose degree
    (counted on the tree as the parser bounds it: a symbol 1, a sum the larger of its parts,
    a product the sum, a power k times) stays within the parser's limit of 12. Unary minus
    comes in two forms: `-(x)`, and `-(x)^k` with no bracket around the minus, which is
    -(x^k) (the power binds tighter), not (-x)^k (they differ at even k)."""
    if depth > 2 or draw(st.booleans()):
        atom = draw(_ATOMS)
        if atom.isdigit():
            return atom, sp.Integer(int(atom)), 0
        return atom, expr_parser.KNOWN_SYMBOLS[atom], 1
    op = draw(st.sampled_from(["+", "-", "*", "", "^", "neg", "neg^"]))
    lt, le, ld = draw(_expressions(depth + 1))
    if op == "neg":
        return f"-({lt})", -le, ld
    if op in ("^", "neg^"):
        k = draw(st.integers(0, min(3, 12 // max(ld, 1))))
        if op == "neg^":
            return f"-({lt})^{k}", -(le**k), ld * k
        return f"({lt})^{k}", le**k, ld * k
    rt, re_, rd = draw(_expressions(depth + 1))
    if op in ("*", "") and ld + rd > 12:
        op = "+"  # a product would pass degree 12
    sep = " " if op == "" else op
    value = {"+": le + re_, "-": le - re_, "*": le * re_, "": le * re_}[op]
    degree = max(ld, rd) if op in ("+", "-") else ld + rd
    return f"({lt}){sep}({rt})", value, degree


@settings(max_examples=200, deadline=None)
@given(_expressions())
def test_well_formed_answers_round_trip(triple):
    text, expected, degree = triple
    assert degree <= 12
    assert sp.expand(parse_answer(text) - expected) == 0


@pytest.mark.parametrize("text", [
    "T^12", "(T + D)^12", "T^6 D^6", "J^12", "(T + J)^12", "T^-12", "(T D H V B E)^2",
    "(T+D+L+H+V+B+E+J)^2 (T+D)^10",
])
def test_degree_12_is_accepted(text):
    parse_answer(text, "q")


@pytest.mark.parametrize("text", [
    "T^12 D", "(T + D)^12 L", "T J^12", "T^-12 D^-1", "L (T D H V B E)^2", "L (T + 1)^12",
])
def test_degree_13_is_rejected_as_degree_13(text):
    with pytest.raises(AnswerParseError, match="degree 13, higher than 12"):
        parse_answer(text, "q")


def test_every_size_to_the_12th_has_degree_12_but_too_many_terms():
    """(T+D+L+H+V+B+E+J)^12 has degree 12 (J = D/H is one size); it is refused because its
    expansion has C(8 + 12 - 1, 12) = 50,388 monomials, not for its degree."""
    import math

    with pytest.raises(AnswerParseError) as err:
        parse_answer("(T+D+L+H+V+B+E+J)^12", "q")
    assert "degree" not in str(err.value)
    assert f"{math.comb(19, 12)} monomials" in str(err.value)


@pytest.mark.parametrize("text,expected", [
    ("1.2e1", 12),
    ("1.2e1 T", 12 * T),
    ("5e-3", sp.Rational(5, 1000)),
    ("2.5e+2 L", 250 * L),
    ("1e0", 1),
    ("3e2TD", 300 * T * D),
])
def test_scientific_notation(text, expected):
    assert sp.expand(parse_answer(text, "q") - expected) == 0


def test_capital_e_stays_the_embedding_size():
    assert sp.expand(parse_answer("2E + 3") - (2 * expr_parser.KNOWN_SYMBOLS["E"] + 3)) == 0
    with pytest.raises(AnswerParseError, match="ambiguous"):
        parse_answer("2E3", "q")


def test_huge_scientific_constants_are_rejected_before_they_are_computed():
    with pytest.raises(AnswerParseError, match="constant larger"):
        parse_answer("1e9999", "q")
    with pytest.raises(AnswerParseError, match="exponent of 10 longer"):
        parse_answer("1e99999", "q")


@pytest.mark.parametrize("text,word,column", [
    ("n_layer", "n_layer", 1),
    ("24 n_layer T D^2", "n_layer", 4),
    ("2 Tokens", "Tokens", 3),
    ("d_model^2", "d_model", 1),
    ("T + seq_len2", "seq_len2", 5),
])
def test_an_unknown_name_is_named_whole_with_the_allowed_symbols(text, word, column):
    with pytest.raises(AnswerParseError) as err:
        parse_answer(text, "q")
    message = str(err.value)
    assert f"unknown name {word!r}" in message and err.value.position == column
    assert "allowed symbols are T, D, L, H, V, B, E, J" in message


def test_a_config_name_gets_its_symbol_as_a_hint():
    with pytest.raises(AnswerParseError, match="for n_layer write L"):
        parse_answer("6 n_layer", "q")
