r"""The answer parser's lexer and parser details on small hand-worked inputs: the bounds
(MAX_DIGITS digits, 4-digit exponents of 10, MAX_BITS bits, MAX_TERMS monomials, MAX_DEPTH
nesting) just at and just over, the exact error reasons and 1-based columns, the columns of the
tokens `tokenize` returns, what `_strip_around` and `_unwrap_bound` accept and refuse, and the
degree bound through negative powers and division.

Every expected value is worked out by hand from the module docstring and the rules it states;
columns are counted on the text (0-based index in a comment, column = index + 1)."""

import pytest
import sympy as sp

from analysis.expr_parser import AnswerParseError, Token, read_answer, tokenize
from analysis.formulas import B, D, E, H, L, T, V

ALLOWED = "allowed symbols are T, D, L, H, V, B, E, J, one letter each (2LTD is 2·L·T·D)"
WHOLE = "O(...) must be the whole answer (O(TLD^2), not 4 + O(T) or O(T) = 4T)"


def _error(text: str, qid: str | None = "q") -> AnswerParseError:
    with pytest.raises(AnswerParseError) as err:
        read_answer(text, qid)
    return err.value


def _expect(text: str, reason: str, column: int) -> None:
    err = _error(text)
    assert (err.qid, err.position, err.reason) == ("q", column, reason)


# ------------------------------------------------------------------ single characters first


def test_a_lone_superscript_is_an_unexpected_operand_at_column_1():
    _expect("²", "unexpected '2'", 1)


def test_a_single_letter_and_a_single_digit_read_as_themselves():
    assert read_answer("T", "q").expr == T
    assert read_answer("7", "q").expr == 7


def test_a_juxtaposition_and_a_unary_plus():
    assert read_answer("2+T", "q").expr == 2 + T
    assert read_answer("2T", "q").expr == 2 * T
    assert read_answer("+T", "q").expr == T  # a unary + changes nothing


@pytest.mark.parametrize("text,expected", [
    (r"2\cdot T", 2 * T),
    (r"2 \cdot T", 2 * T),
    (r"\left.2T\right.+L", 2 * T + L),  # \left. and \right. are invisible
    (r"\{T+1\}L", (T + 1) * L),  # \{ \} are a bracket
])
def test_latex_operators_and_brackets(text, expected):
    assert read_answer(text, "q").expr == expected


# ------------------------------------------------------------------ numbers


def test_a_number_of_exactly_max_digits_digits_is_read():
    assert read_answer("123456789012345678901234", "q").expr == 123456789012345678901234


def test_a_number_of_one_digit_more_is_refused_at_its_first_digit():
    # "T + " is 4 characters: the number starts at index 4, column 5
    _expect("T + " + "9" * 25, "number longer than 24 digits", 5)


def test_the_digit_limit_counts_digits_not_the_decimal_point():
    # "1." and 23 more digits: 24 digits, read (the point made it 25 characters, refused
    # until 2026-12-04); 25 digits around a point are refused at the number's first column
    assert read_answer("1." + "5" * 23, "q").expr == 1 + sp.Rational(int("5" * 23), 10**23)
    _expect("T + 1." + "5" * 24, "number longer than 24 digits", 5)


@pytest.mark.parametrize("text,expected", [
    ("T + 0.5", T + sp.Rational(1, 2)),  # a point with one digit after it, at the very end
    ("T/2.5", sp.Rational(2, 5) * T),  # T / (5/2)
    ("0.25", sp.Rational(1, 4)),
])
def test_a_decimal_fraction_at_the_end_of_the_text(text, expected):
    assert read_answer(text, "q").expr == expected


@pytest.mark.parametrize("text,expected", [
    ("1e-0003", sp.Rational(1, 1000)),  # a signed exponent of exactly 4 digits
    ("2.5e+0002", 250),
    ("1e0003", 1000),  # unsigned, 4 digits
    ("5e-123 T", sp.Rational(5, 10**123) * T),  # a signed exponent of 3 digits
])
def test_a_four_digit_exponent_of_ten_is_read(text, expected):
    assert read_answer(text, "q").expr == expected


@pytest.mark.parametrize("text,column", [
    ("T + 1e-00003", 6),  # T0 ' '1 +2 ' '3 14 e5: the column of the 'e'
    ("1e12345", 2),
    ("T+2.5e+00001", 6),  # T0 +1 22 .3 54 e5
])
def test_a_five_digit_exponent_of_ten_is_refused_at_the_e(text, column):
    _expect(text, "exponent of 10 longer than 4 digits", column)


def test_powers_of_ten_up_to_2048_bits_are_read():
    # log2(10) = 3.3219281: 616 * 3.3219281 = 2046.31, so 10^616 has 2047 bits
    assert read_answer("1e616", "q").expr == sp.Integer(10) ** 616
    assert read_answer("1e-616", "q").expr == sp.Rational(1, 10**616)
    # log2(3) = 1.58496: 2046.31 + 1.58 = 2047.89, so 3 * 10^616 has exactly 2048 bits
    assert read_answer("3e616", "q").expr == 3 * sp.Integer(10) ** 616


@pytest.mark.parametrize("text,column", [
    ("1e617", 1),  # 617 * 3.3219281 = 2049.63: 2050 bits
    ("T + 4e616", 5),  # 2 + 2046.31 = 2048.31: 2049 bits, one too many
    ("T + 1e-617", 5),  # the denominator has 2050 bits
])
def test_a_constant_over_2048_bits_is_refused_at_its_number(text, column):
    _expect(text, "constant larger than 2^2048", column)


def test_a_number_after_a_bracket_or_a_superscript_is_ambiguous():
    _expect("(T)2", "number '2' right after ')' is ambiguous; write an operator (D^2, 2*D)", 4)
    err = _error("T²3")  # T0 ²1 32
    assert err.position == 3
    assert err.reason.startswith("number '3' right after ")
    assert err.reason.endswith(" is ambiguous; write an operator (D^2, 2*D)")


# ------------------------------------------------------------------ exponents and degree


def test_a_superscript_exponent_over_12_is_refused_at_the_superscript():
    _expect("T¹³", "exponents must be integer constants in [-12, 12], got 13", 2)


def test_zero_to_the_zero_is_one_and_not_a_division():
    # only a negative power of zero divides by zero; 0^0 = 1 (the usual convention)
    assert read_answer("T + 0^0", "q").expr == T + 1


def test_a_number_does_not_count_towards_the_degree():
    assert read_answer("2T^12", "q").expr == 2 * T**12  # degree 12, the limit
    assert read_answer("2/T^12", "q").expr == 2 * T**-12  # negative degree 12, the limit


def test_a_degree_too_high_is_reported_at_the_first_token():
    _expect("T^12 D", "degree 13, higher than 12", 1)  # 12 + 1, found once the product is read


@pytest.mark.parametrize("text", [
    # (T + D^-7)^2 has the monomial D^-14: negative total 7 * 2 = 14
    "(T + 1/D^7)^2",
    # (T + D^-7)^-2: the base's negative degree 7 becomes positive, 7 * 2 = 14
    "(T + 1/D^7)^-2",
])
def test_a_negative_degree_raised_to_a_power_counts(text):
    # (0 T1 ' '2 +3 ' '4 15 /6 D7 ^8 79 )10 ^11: the outer '^' at column 12
    _expect(text, "degree 14, higher than 12", 12)


# ------------------------------------------------------------------ terms and depth


def test_exactly_max_terms_monomials_are_accepted():
    # 2^4 * 5^3 = 16 * 125 = 2000 monomials at most, degree 4 + 3 = 7
    text = "(T+1)(D+1)(L+1)(H+1)(V+B+E+T+1)(V+B+E+T+2)(V+B+E+T+3)"
    s = V + B + E + T
    expected = (T + 1) * (D + 1) * (L + 1) * (H + 1) * (s + 1) * (s + 2) * (s + 3)
    assert read_answer(text, "q").expr == expected


def test_one_binomial_too_many_is_refused_at_the_first_token():
    # eleven distinct binomials: 2^11 = 2048 > 2000 monomials, degree 11
    text = "(T+1)(D+1)(L+1)(H+1)(V+1)(B+1)(E+1)(T+2)(D+2)(L+2)(H+2)"
    _expect(text, "expands into up to 2048 monomials (at most 2000); write the answer "
                  "expanded or factored more simply", 1)


def test_brackets_nest_24_deep_and_no_deeper():
    # MAX_DEPTH counts one level per bracket (until 2026-12-04 the parser counted two, so 12
    # brackets already failed): 24 nested are read; the 25th fails at the token inside it,
    # the T at index 25, column 26
    assert read_answer("(" * 24 + "T" + ")" * 24, "q").expr == T
    _expect("(" * 25 + "T" + ")" * 25, "nested deeper than 24", 26)


def test_signs_do_not_nest_but_exponents_of_exponents_do():
    assert read_answer("-" * 51 + "T", "q").expr == -T  # an odd number of minus signs
    assert read_answer("+-+-T", "q").expr == T
    # 1^1^...^1 with 24 carets: each exponent one level deeper; T^...^1 with 25 is too deep, at
    # the token after the 25th caret (index 2 * 25 = 50, column 51)
    assert read_answer("1^" * 24 + "1", "q").expr == 1
    _expect("T^" * 25 + "1", "nested deeper than 24", 51)


def test_nesting_counts_back_down_only_by_what_it_counted_up():
    # 25 brackets nested, each holding (1)+(1)+(1)+ before the next: the inner groups are left
    # again before the nesting goes on, and the nesting is still deeper than 24
    text = "1"
    for _ in range(25):
        text = "(" + "(1)+" * 3 + text + ")"
    assert len(text) == 351  # 25 * 14 + 1, within MAX_LENGTH
    assert _error(text).reason == "nested deeper than 24"


def test_a_25th_nested_wrapper_with_a_one_character_argument_is_too_deep():
    # 24 \mathbf{ of 8 characters, then "\mathbf T": the T at index 24 * 8 + 8 = 200 is read
    # 25 groups deep; the braces only nest 24 deep
    text = r"\mathbf{" * 24 + r"\mathbf T" + "}" * 24
    _expect(text, "nested deeper than 24", 201)


# ------------------------------------------------------------------ empty and stripped


@pytest.mark.parametrize("text,column", [
    ("", 1),
    ("$ $", 4),  # nothing but delimiters: the end is column len + 1
    ("FLOPs =", 8),  # 'UNIT =' in front is dropped, nothing is left
])
def test_an_empty_answer(text, column):
    _expect(text, "empty answer", column)


def test_a_leading_approx_is_noted():
    found = read_answer("≈ 2T", "q")
    assert found.expr == 2 * T
    assert found.notes == ("the leading ≈ is read as =",)


def test_a_unit_inside_the_answer_is_named_at_its_column():
    # 2T0-1 ' '2 \3: the \text at column 4; the unit is the group's text, stripped
    _expect(r"2T \text{ FLOPs } + L", "the unit 'FLOPs' must come last (4TLD^2 FLOPs)", 4)
    _expect("FLOPs 2T", "the unit 'FLOPs' must come last (4TLD^2 FLOPs)", 1)


def test_a_wrapped_unit_with_a_full_stop_notes_its_tail_without_the_stop():
    found = read_answer(r"2T \text{FLOPs.} per token", "q")
    assert found.expr == 2 * T
    assert found.notes == ("the text says FLOPs per token; the expression is judged as written",)


def test_a_full_stop_before_a_closing_bracket_is_unexpected():
    # (0 T1 .2 }3: the '.' is only followed by '}', so it is a full stop, but not the last token
    _expect("(T.}", "unexpected '.'", 3)


def test_an_underscore_after_a_bracket_is_an_unread_subscript():
    _expect("(T)_2", "unexpected '_' (subscripts are not read)", 4)


# ------------------------------------------------------------------ O(...)


@pytest.mark.parametrize("text,column", [
    ("Θ", 1),  # no bracket at all
    ("Θ T(T)", 1),  # the bracket does not follow the Θ
    ("T + O(T)", 5),  # T0 ' '1 +2 ' '3 O4
    ("2(O(T))", 3),  # inside a bracket is not the whole answer either
    ("2O (T)", 2),  # a space between O and its bracket still makes it O(...)
    ("O(T) T", 6),  # O0 (1 T2 )3 ' '4 T5: at what follows the ')'
])
def test_a_bound_that_is_not_the_whole_answer_is_refused(text, column):
    _expect(text, WHOLE, column)


def test_an_empty_bound_is_read_and_fails_at_its_close():
    _expect("O()", "unexpected ')'", 3)


def test_an_unclosed_bound_fails_just_after_its_last_token():
    _expect("O(T", "missing ')' of O(...)", 4)  # O0 (1 T2: column 3 + 1


def test_a_closed_bound_is_asymptotic():
    found = read_answer("O(T)", "q")
    assert found.expr == T
    assert found.asymptotic is True


# ------------------------------------------------------------------ brackets and LaTeX


def test_an_unclosed_bracket_is_missing_at_the_end():
    _expect("(T", "missing ')'", 3)
    _expect("[T", "missing ']'", 3)


# ------------------------------------------------------------------ tokenize's columns


def test_tokenize_gives_each_letter_of_a_word_its_own_column():
    sides, asymptotic, notes = tokenize("LTD", "q")
    assert sides == [[Token("sym", "L", 1), Token("sym", "T", 2), Token("sym", "D", 3),
                      Token("end", "", 4)]]
    assert (asymptotic, notes) == (False, [])


def test_tokenize_reads_lowercase_letters_at_their_columns_and_says_so():
    sides, _, notes = tokenize("2td", "q")
    assert sides == [[Token("num", "2", 1), Token("sym", "T", 2), Token("sym", "D", 3),
                      Token("end", "", 4)]]
    assert notes == ["read lowercase t, d as T, D"]


def test_a_wrapper_group_closes_at_its_brace_or_else_at_the_macro():
    sides, _, _ = tokenize(r"\mathbf{D}", "q")  # \0 ... {7 D8 }9
    assert sides == [[Token("lpar", "(", 1), Token("sym", "D", 9), Token("rpar", ")", 10),
                      Token("end", "", 11)]]
    # T0 \1 ... f7 ' '8 D9: a one-character argument that ends the text has no '}' to point
    # at, so the ')' stands at the macro's own column, 2
    sides, _, _ = tokenize(r"T\mathbf D", "q")
    assert sides == [[Token("sym", "T", 1), Token("lpar", "(", 2), Token("sym", "D", 10),
                      Token("rpar", ")", 2), Token("end", "", 11)]]


def test_a_lowercase_letter_beside_its_capital_is_refused_at_the_lowercase_one():
    # 20 T1 ' '2 +3 ' '4 d5: column 6
    _expect("2T + d D", "both 'd' and 'D' appear: a lowercase size letter is read as the "
                        "capital only when the capital is not used too", 6)


# ------------------------------------------------------------------ unknown names


@pytest.mark.parametrize("text,name,hint,column", [
    # 20 ' '1 _2 x3: the '_' is lexed on its own, then the name is taken back to it
    ("2 _x", "_x", " (subscripts are not read: a subscript changes which size a letter "
                   "means)", 3),
    # the subscript is "layer", both '}' skipped, then "s": n_layers
    (r"2 n_{\text{layer}}s", "n_layers", " (for n_layers write L: layers)", 3),
    # }0 ' '1 x2 _3 {4 k5 }6: the '}' before the name is not the subscript's
    ("} x_{k}", "x_k", " (subscripts are not read: a subscript changes which size a letter "
                       "means)", 3),
])
def test_an_unknown_name_is_named_whole(text, name, hint, column):
    _expect(text, f"unknown name {name!r}{hint}; {ALLOWED}", column)


def test_an_unclosed_bound_is_reported_just_after_its_last_token():
    # the column after the end of the text, whatever the last token's length: "O(T+10" has
    # 6 characters, so column 7; "O(T+1.5" column 8; "O(TD^2" column 7
    _expect("O(T+10", "missing ')' of O(...)", 7)
    _expect("O(T+1.5", "missing ')' of O(...)", 8)
    _expect("O(TD^2", "missing ')' of O(...)", 7)
