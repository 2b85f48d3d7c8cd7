"""The parser's error messages and columns, exactly (each message is what a student reads), and
the corners of the lexer the other parser tests do not reach. Every column below is counted by
hand on the text (1-based); every expected value is worked out by hand."""

import pytest
import sympy as sp

from analysis.expr_parser import AnswerParseError, parse_answer, read_answer
from analysis.formulas import L, T

ALLOWED = "allowed symbols are T, D, L, H, V, B, E, J, one letter each (2LTD is 2·L·T·D)"


def _error(text: str, qid: str | None = "q") -> AnswerParseError:
    with pytest.raises(AnswerParseError) as err:
        parse_answer(text, qid)
    return err.value


@pytest.mark.parametrize(
    "text,message,column",
    [
        ("T⁻", "superscript minus without digits", 2),
        ("²", "unexpected '2'", 1),  # a superscript with no base: its own column
        ("T\\", "a lone backslash", 2),
        ("2\\cdot", "unexpected end of answer", 7),  # a macro that ends the text
        (r"\cdot T", "unexpected '*'", 1),
        (r"\div T", "unexpected '/'", 1),
        (r"\}", "unexpected '}'", 1),
        (r"2 \approx T", "'\\\\approx' inside the answer: write one expression", 3),
        (r"2\Theta(T)", "O(...) must be the whole answer (O(TLD^2), not 4 + O(T) or O(T) = 4T)", 2),
        (
            r"2\mathcal{O}(T)",
            "O(...) must be the whole answer (O(TLD^2), not 4 + O(T) or O(T) = 4T)",
            2,
        ),
        (r"\mathcal", "\\mathcal without its argument", 1),
        (r"\mathcal{A}(T)", "\\mathcal{A} is not read; only \\mathcal{O}(...) is", 1),
        (r"\mathcal{O} T", "\\mathcal{O} without (...)", 1),
        (r"\frac", "\\frac without its arguments", 1),
        (r"\mathbf", "\\mathbf without its argument", 1),  # one argument: no plural s
        (r"\frac+", "\\frac: write its argument in braces, \\frac{...}", 6),
        (r"\frac{}{2}", "unexpected ')'", 7),  # the empty group closes at its '}', column 7
        (r"\frac{T]}{2}", "']' does not close '(' (opened at position 1)", 8),
        (r"\frac{2}{T]}", "']' does not close '(' (opened at position 1)", 11),
        (r"\mathbf{T]}", "']' does not close '(' (opened at position 1)", 10),
        # the ')' inside closes the second group; the \frac's own ')' (its column 1) is left over
        (r"\frac{1}{2)}", "unexpected ')'", 1),
        (r"\frac{T}{0}", "division by zero", 1),  # the '/' of a \frac stands at the \frac
        (r"\frac{T^12 D}{1}", "degree 13, higher than 12", 1),
        (r"\mathbf{\}}", "unexpected '}'", 9),  # \} inside a group is an escaped brace
        (r"\mathbf{2", "missing '}'", 8),
        ("T^13", "exponents must be integer constants in [-12, 12], got 13", 2),
        ("0^-1", "division by zero", 2),
        ("(T^12)^2", "degree 24, higher than 12", 7),
        # 65536 = 2^16, so ((65536^8)^8)^2 = 2^(16*128) = 2^2048: 2049 bits, one too many
        ("((65536^8)^8)^2", "constant larger than 2^2048", 14),  # at the last ^
        ("T^2 = 2", "the two sides of '=' differ (T^2 and 2); give one answer", 5),
        ("O(T)", "an O(...) bound is not an exact expression here", 1),
        ("2O", f"unknown name 'O'; {ALLOWED}", 2),  # an O that opens nothing is a name
        ("O X", f"unknown name 'O'; {ALLOWED}", 1),
        ("x", f"unknown name 'x'; {ALLOWED}", 1),
        (
            "e",
            "unknown name 'e' (lowercase e is read only in scientific notation, 1.2e3; for the "
            f"embedding size write E); {ALLOWED}",
            1,
        ),
        (
            "x_{k}",
            "unknown name 'x_k' (subscripts are not read: a subscript changes which size a "
            f"letter means); {ALLOWED}",
            1,
        ),
    ],
)
def test_error_message_and_column_exactly(text, message, column):
    err = _error(text)
    assert (err.qid, err.position, err.reason) == ("q", column, message)
    assert str(err) == f"answer 'q': {message} at position {column}"


def test_error_without_an_id_says_answer():
    err = _error("x", None)
    assert err.qid is None
    assert str(err) == f"answer: unknown name 'x'; {ALLOWED} at position 1"


def test_deep_wrapper_braces_fail_at_the_25th_brace():
    # \mathbf{ is 8 characters: the 25th '{' is at column 25 * 8 = 200
    err = _error(r"\mathbf{" * 25 + "T" + "}" * 25)
    assert (err.position, err.reason) == (200, "nested deeper than 24")


@pytest.mark.parametrize(
    "text,name",
    [
        (r"\mathbf{d_ T}", "d_"),  # a space ends the name: no subscript follows
        ("x{2}", "x"),  # a brace after a letter is no subscript
        ("xy_{z}", "xy_z"),
        (r"\mathbf{2}x_{k}", "x_k"),  # the '}' before the name is not the subscript's
        ("x_{k}+{T}", "x_k"),  # nor is a later '}'
        ("T + T + T + T + T + T + T + T + T + T + T + x_{k}", "x_k"),  # column 45: far in
        ("x_{" + "a" * 39 + "}", "x_" + "a" * 39),  # a subscript of 39 characters is read
        ("x_{" + "a" * 40 + "}", "x_"),  # 40: not read
        ("x_{" + "a" * 45 + "}", "x_"),
        ("x_{k", "x_"),  # no '}' at all
        (r"x_{\Big k}", "x_k"),  # a macro with capitals inside is dropped too
    ],
)
def test_the_unknown_name_is_read_with_its_subscript(text, name):
    assert f"unknown name {name!r}" in _error(text).reason


def test_a_name_after_nested_text_braces_keeps_its_tail():
    # n_{\text{layer}}s: the subscript is "layer", both '}' skipped, then "s": n_layers (-> L)
    assert "for n_layers write L" in _error(r"n_{\text{layer}}s").reason


@pytest.mark.parametrize(
    "text,expected",
    [
        (r"\left.2T\right.+L", 2 * T + L),  # \left. and \right. are invisible delimiters
        (r"6T \div 2", 3 * T),
        (r"\frac {1} {2} T", T / 2),  # spaces before a \frac's arguments
        (r"\mathbf{2\,}T", 2 * T),  # an escaped macro inside a group does not end it
        ("1^-2", 1),  # 1^(-2) = 1: only a zero base divides by zero
        ("O (T)", T),  # O then a space then the bracket: still O(...)
        ("O$(T)", T),
    ],
)
def test_corner_spellings(text, expected):
    assert sp.expand(read_answer(text, "q").expr - expected) == 0


def test_a_constant_of_exactly_2048_bits_is_accepted():
    # 65535^128 = 2^(128 log2 65535) = 2^2047.997: in [2^2047, 2^2048), 2048 bits, the limit
    value = parse_answer("((65535^8)^8)^2", "q")
    assert value == sp.Integer(65535) ** 128
    assert int(value).bit_length() == 2048
