"""A safe parser for cost answers written as people write them: `24LTD^2 + 4LT^2D`,
`24*L*T*D**2 + 4*L*T**2*D`, `24 L T D² + 4 L T² D`, `2TL`, `(8TD^2 + 4T^2D)L`.

Answer files are untrusted input. This module never hands their text to eval, exec,
`sympify` or `parse_expr`: it tokenizes the string itself and builds the sympy expression from
the tokens (`sp.Integer`, `sp.Rational`, `sp.Add`, `sp.Mul`, `sp.Pow` and the known symbols).

Accepted: non-negative decimal numbers (`12`, `0.5`, and `1.2e1` = 12 in scientific notation
with a lowercase `e`; `2E3` stays 2·E·3, an error, since E is a size), the single-letter symbols of
`KNOWN_SYMBOLS` (T, D, L, H, J = D/H, V, B, E), `+ - * / ^ **` (also `·`, `×`, `⋅` for times and
`−` for minus), Unicode superscript digits as exponents, parentheses and whitespace. A
juxtaposition is a product (`2TL`, `LT^2D`, `(T+1)L`); exponents bind tighter than products,
so `LT^2D` is L·T²·D. Exponents must be integer constants in [-MAX_EXPONENT, MAX_EXPONENT].

Rejected with `AnswerParseError` (a ValueError naming the question id and the 1-based
column): any other character or name (`x`, `exec`, `os.system`, `n_layer`: the whole word is
named, with the allowed symbols), attribute access, calls, strings, a number written right
after a symbol (`D2`: D² or 2D?), input longer than MAX_LENGTH characters, nesting deeper than
MAX_DEPTH, numbers longer than MAX_DIGITS digits, constants over MAX_BITS bits, degree over
MAX_DEGREE, and expressions whose expansion could have more than MAX_TERMS monomials (so no
answer can make the checker expand or evaluate something huge: `(T+D+L+H+V+B+E)^12` has
degree 12 but expands into 18,564 monomials, a minute of sympy).

Degree: the larger of the total positive and the total negative exponent over the symbols of
any monomial, bounded from the expression tree. J = D/H is a size and counts as degree 1
(D^1 H^-1), so `J^12` and `(T + J)^12` have degree 12, `T J^12` has 13.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from analysis.formulas import SYMBOLS

MAX_LENGTH = 400
MAX_DEPTH = 24
MAX_DIGITS = 24
MAX_EXPONENT = 12
MAX_DEGREE = 12  # total polynomial degree, so that expanding an answer stays cheap
MAX_TERMS = 2000  # monomials the expanded answer may have at most (an upper bound, computed)
MAX_BITS = 2048  # size of any numeric constant

_J = sp.Symbol("J", positive=True)
KNOWN_SYMBOLS: dict[str, sp.Expr] = {
    **{name: SYMBOLS[name] for name in ("T", "D", "L", "H", "V", "B", "E")},
    "J": SYMBOLS["D"] / SYMBOLS["H"],  # head dimension
}
SYMBOL_MEANING = {
    "T": "sequence length (tokens generated or trained on)",
    "D": "model / hidden dimension",
    "L": "layers",
    "H": "attention heads",
    "J": "head dimension, J = D/H",
    "V": "vocabulary size",
    "B": "batch size",
    "E": "embedding dimension",
}

_SUPERSCRIPTS = {c: str(i) for i, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")}
_SUPER_MINUS = "⁻"
_TIMES = {"*", "·", "×", "⋅"}
_MINUS = {"-", "−"}


class AnswerParseError(ValueError):
    def __init__(self, qid: str | None, position: int, message: str):
        self.qid = qid
        self.position = position  # 1-based column
        where = f"answer {qid!r}" if qid else "answer"
        super().__init__(f"{where}: {message} at position {position}")


@dataclass(frozen=True)
class Token:
    kind: str  # num, sym, op, lpar, rpar, sup, end
    text: str
    pos: int  # 1-based column


def tokenize(text: str, qid: str | None = None) -> list[Token]:
    if not isinstance(text, str):
        raise AnswerParseError(qid, 1, f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise AnswerParseError(qid, MAX_LENGTH + 1, f"longer than {MAX_LENGTH} characters")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c, pos = text[i], i + 1
        if c in " \t":
            i += 1
        elif _is_digit(c):
            j = _digits_end(text, i)
            if text[j : j + 1] == "." and _is_digit(text[j + 1 : j + 2]):
                j = _digits_end(text, j + 1)
            if j - i > MAX_DIGITS:
                raise AnswerParseError(qid, pos, f"number longer than {MAX_DIGITS} digits")
            # scientific notation, lowercase e only (E is the embedding size): 1.2e1, 5e-3
            sign = 1 if text[j + 1 : j + 2] in ("+", "-") else 0
            if text[j : j + 1] == "e" and _is_digit(text[j + 1 + sign : j + 2 + sign]):
                k = _digits_end(text, j + 1 + sign)
                if k - (j + 1 + sign) > 4:
                    raise AnswerParseError(qid, j + 1, "exponent of 10 longer than 4 digits")
                j = k
            tokens.append(Token("num", text[i:j], pos))
            i = j
        elif c in KNOWN_SYMBOLS:
            tokens.append(Token("sym", c, pos))
            i += 1
        elif c == "*" and text[i + 1 : i + 2] == "*":
            tokens.append(Token("op", "^", pos))
            i += 2
        elif c in _TIMES:
            tokens.append(Token("op", "*", pos))
            i += 1
        elif c in _MINUS:
            tokens.append(Token("op", "-", pos))
            i += 1
        elif c in "+/^":
            tokens.append(Token("op", c, pos))
            i += 1
        elif c == "(":
            tokens.append(Token("lpar", c, pos))
            i += 1
        elif c == ")":
            tokens.append(Token("rpar", c, pos))
            i += 1
        elif c in _SUPERSCRIPTS or c == _SUPER_MINUS:
            j, digits = i, ""
            if c == _SUPER_MINUS:
                digits, j = "-", i + 1
            while j < n and text[j] in _SUPERSCRIPTS:
                digits += _SUPERSCRIPTS[text[j]]
                j += 1
            if digits in ("", "-"):
                raise AnswerParseError(qid, pos, "superscript minus without digits")
            tokens.append(Token("sup", digits, pos))
            i = j
        elif c.isalpha() or c == "_":
            start = i  # the whole word, also when it starts with known letters ("Tokens")
            while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "_"):
                start -= 1
            end = i
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
            raise AnswerParseError(qid, start + 1, _unknown_name(text[start:end]))
        else:
            raise AnswerParseError(qid, pos, f"unexpected character {c!r}")
    tokens.append(Token("end", "", n + 1))
    return tokens


def _is_digit(c: str) -> bool:
    return len(c) == 1 and c.isascii() and c.isdigit()


def _digits_end(text: str, i: int) -> int:
    while i < len(text) and _is_digit(text[i]):
        i += 1
    return i


# Names people write for the sizes (nanoGPT's config fields, common prose): only for the hint.
_NAME_HINTS = {
    "n_layer": "L", "n_layers": "L", "layers": "L", "num_layers": "L",
    "n_embd": "D", "d_model": "D", "hidden": "D", "hidden_size": "D", "d": "D",
    "n_head": "H", "n_heads": "H", "heads": "H", "num_heads": "H",
    "head_dim": "J", "d_head": "J", "head_size": "J",
    "block_size": "T", "seq_len": "T", "n_ctx": "T", "t": "T", "n": "T",
    "vocab_size": "V", "vocab": "V", "batch_size": "B", "batch": "B", "n_embed": "E",
    "l": "L", "h": "H", "v": "V", "b": "B",
}


def _unknown_name(word: str) -> str:
    allowed = ", ".join(KNOWN_SYMBOLS)
    hint = _NAME_HINTS.get(word.lower())
    hint = f" (for {word} write {hint}: {SYMBOL_MEANING[hint]})" if hint else ""
    return (f"unknown name {word!r}{hint}; allowed symbols are {allowed}, one letter each "
            "(2LTD is 2·L·T·D)")


class _Parser:
    """Recursive descent:  expr := ['+'|'-'] term (('+'|'-') term)*
    term := factor (('*'|'/')? factor)*      (juxtaposition = product)
    factor := ('+'|'-') factor | power ;  power := atom (sup | '^' factor)?
    atom := num | sym | '(' expr ')'"""

    def __init__(self, tokens: list[Token], qid: str | None):
        self.tokens, self.i, self.qid, self.depth = tokens, 0, qid, 0

    def error(self, tok: Token, message: str):
        raise AnswerParseError(self.qid, tok.pos, message)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error(self.tok, f"nested deeper than {MAX_DEPTH}")

    def parse(self) -> sp.Expr:
        if self.tok.kind == "end":
            self.error(self.tok, "empty answer")
        value = self.expr()
        if self.tok.kind != "end":
            self.error(self.tok, f"unexpected {self.tok.text!r}")
        if _degree(value) > MAX_DEGREE:
            self.error(self.tokens[0], f"degree {_degree(value)}, higher than {MAX_DEGREE}")
        self.check_terms(value, self.tokens[0])
        return value

    def check_terms(self, value: sp.Expr, tok: Token) -> None:
        if (terms := _terms(value)) > MAX_TERMS:
            self.error(tok, f"expands into up to {terms} monomials (at most {MAX_TERMS}); "
                            "write the answer expanded or factored more simply")

    def number(self, tok: Token) -> sp.Rational:
        mantissa, _, exponent = tok.text.partition("e")
        whole, _, frac = mantissa.partition(".")
        value = sp.Rational(int(whole + frac), 10 ** len(frac))
        if exponent:
            shift = int(exponent)
            if abs(shift) > MAX_BITS // 3:  # 10^683 > 2^2048: refuse before computing it
                self.error(tok, f"constant larger than 2^{MAX_BITS}")
            value = value * sp.Rational(10) ** shift
        if max(abs(value.p), value.q).bit_length() > MAX_BITS:
            self.error(tok, f"constant larger than 2^{MAX_BITS}")
        return value

    def expr(self) -> sp.Expr:
        self.enter()
        terms = [self.term()]
        while self.tok.kind == "op" and self.tok.text in "+-":
            sign = -1 if self.take().text == "-" else 1
            terms.append(sign * self.term())
        self.depth -= 1
        return sp.Add(*terms)

    def term(self) -> sp.Expr:
        value = self.factor()
        while True:
            tok = self.tok
            if tok.kind == "op" and tok.text in "*/":
                self.take()
                rhs = self.factor()
                if tok.text == "/":
                    if rhs == 0:
                        self.error(tok, "division by zero")
                    rhs = sp.Pow(rhs, -1)
                value = sp.Mul(value, rhs)
            elif tok.kind in ("num", "sym", "lpar"):
                prev = self.tokens[self.i - 1]
                if tok.kind == "num" and prev.kind in ("sym", "rpar", "sup", "num"):
                    self.error(tok, f"number {tok.text!r} right after {prev.text!r} is ambiguous; "
                                    "write an operator (D^2, 2*D)")
                value = sp.Mul(value, self.factor())
            else:
                return value

    def factor(self) -> sp.Expr:
        self.enter()
        tok = self.tok
        if tok.kind == "op" and tok.text in "+-":
            self.take()
            value = self.factor()
            value = -value if tok.text == "-" else value
        else:
            value = self.power()
        self.depth -= 1
        return value

    def power(self) -> sp.Expr:
        base = self.atom()
        tok = self.tok
        if tok.kind == "sup":
            self.take()
            return self.raise_(base, sp.Integer(int(tok.text)), tok)
        if tok.kind == "op" and tok.text == "^":
            self.take()
            return self.raise_(base, self.factor(), tok)
        return base

    def raise_(self, base, exponent, tok: Token) -> sp.Expr:
        if not (exponent.is_Integer and abs(int(exponent)) <= MAX_EXPONENT):
            self.error(tok, f"exponents must be integer constants in [-{MAX_EXPONENT}, "
                            f"{MAX_EXPONENT}], got {exponent}")
        if base == 0 and exponent < 0:
            self.error(tok, "division by zero")
        value = sp.Pow(base, exponent)
        if value.is_Rational and max(abs(value.p), value.q).bit_length() > MAX_BITS:
            self.error(tok, f"constant larger than 2^{MAX_BITS}")
        if _degree(value) > MAX_DEGREE:
            self.error(tok, f"degree {_degree(value)}, higher than {MAX_DEGREE}")
        self.check_terms(value, tok)
        return value

    def atom(self) -> sp.Expr:
        tok = self.take()
        if tok.kind == "num":
            return self.number(tok)
        if tok.kind == "sym":
            return KNOWN_SYMBOLS[tok.text]
        if tok.kind == "lpar":
            value = self.expr()
            if self.tok.kind != "rpar":
                self.error(self.tok, "missing ')'")
            self.take()
            return value
        if tok.kind == "end":
            self.error(tok, "unexpected end of answer")
        self.error(tok, f"unexpected {tok.text!r}")


def _degrees(expr: sp.Expr) -> tuple[int, int]:
    """Upper bounds on (total positive, total negative) exponent of any monomial of `expr`."""
    if expr.is_Symbol:
        return 1, 0
    if expr.is_Number:
        return 0, 0
    if expr.is_Add:
        parts = [_degrees(a) for a in expr.args]
        return max(p for p, _ in parts), max(m for _, m in parts)
    if expr.is_Mul:
        parts = [_degrees(a) for a in expr.args]
        return sum(p for p, _ in parts), sum(m for _, m in parts)
    if expr.is_Pow:
        up, down = _degrees(expr.base)
        k = int(expr.exp)
        return (up * k, down * k) if k >= 0 else (down * -k, up * -k)
    raise TypeError(f"unexpected node {type(expr).__name__}")


def _degree(expr: sp.Expr) -> int:
    """The degree MAX_DEGREE bounds: J = D/H counts 1, T^-2 counts 2, T^12 H^-12 counts 12."""
    return max(_degrees(expr))


def _terms(expr: sp.Expr) -> int:
    """An upper bound on the number of monomials of sp.expand(expr)."""
    if expr.is_Add:
        return sum(_terms(a) for a in expr.args)
    if expr.is_Mul:
        return math.prod(_terms(a) for a in expr.args)
    if expr.is_Pow:
        k = abs(int(expr.exp))
        return math.comb(_terms(expr.base) + k - 1, k)  # monomials of a k-th power
    return 1


def parse_answer(text: str, qid: str | None = None) -> sp.Expr:
    """The sympy expression an answer string denotes (J already replaced by D/H)."""
    return _Parser(tokenize(text, qid), qid).parse()
