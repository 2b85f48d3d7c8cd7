"""A safe parser for cost answers written as people write them: `24LTD^2 + 4LT^2D`,
`24*L*T*D**2 + 4*L*T**2*D`, `24 L T D² + 4 L T² D`, `2TL`, `(8TD^2 + 4T^2D)L`.

Answer files are untrusted input. This module never hands their text to eval, exec,
`sympify` or `parse_expr`: it tokenizes the string itself and builds the sympy expression from
the tokens (`sp.Integer`, `sp.Rational`, `sp.Add`, `sp.Mul`, `sp.Pow` and the known symbols).

Accepted: non-negative decimal numbers (`12`, `0.5`), the single-letter symbols of
`KNOWN_SYMBOLS` (T, D, L, H, J = D/H, V, B, E), `+ - * / ^ **` (also `·`, `×`, `⋅` for times and
`−` for minus), Unicode superscript digits as exponents, parentheses and whitespace. A
juxtaposition is a product (`2TL`, `LT^2D`, `(T+1)L`); exponents bind tighter than products,
so `LT^2D` is L·T²·D. Exponents must be integer constants in [-MAX_EXPONENT, MAX_EXPONENT].

Rejected with `AnswerParseError` (a ValueError naming the question id and the 1-based
column): any other character or name (`x`, `exec`, `os.system`), attribute access, calls,
strings, a number written right after a symbol (`D2`: D² or 2D?), input longer than
MAX_LENGTH characters, nesting deeper than MAX_DEPTH, numbers longer than MAX_DIGITS digits,
constants over MAX_BITS bits, total degree over MAX_DEGREE (so no answer can make the checker
expand or evaluate something huge).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from analysis.formulas import SYMBOLS

MAX_LENGTH = 400
MAX_DEPTH = 24
MAX_DIGITS = 24
MAX_EXPONENT = 12
MAX_DEGREE = 12  # total polynomial degree, so that expanding an answer stays cheap
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
        elif c.isascii() and c.isdigit():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            if j < n and text[j] == "." and j + 1 < n and text[j + 1].isascii() and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isascii() and text[j].isdigit():
                    j += 1
            if j - i > MAX_DIGITS:
                raise AnswerParseError(qid, pos, f"number longer than {MAX_DIGITS} digits")
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
            raise AnswerParseError(
                qid, pos, f"unknown name {c!r}; allowed symbols are {', '.join(KNOWN_SYMBOLS)}")
        else:
            raise AnswerParseError(qid, pos, f"unexpected character {c!r}")
    tokens.append(Token("end", "", n + 1))
    return tokens


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
            self.error(self.tokens[0], f"degree higher than {MAX_DEGREE}")
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
            self.error(tok, f"degree higher than {MAX_DEGREE}")
        return value

    def atom(self) -> sp.Expr:
        tok = self.take()
        if tok.kind == "num":
            if "." in tok.text:
                whole, frac = tok.text.split(".")
                return sp.Rational(int(whole + frac), 10 ** len(frac))
            return sp.Integer(int(tok.text))
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


def _degree(expr: sp.Expr) -> int:
    """An upper bound on the total degree (in absolute exponents) of an expression tree."""
    if expr.is_Symbol:
        return 1
    if expr.is_Number:
        return 0
    if expr.is_Add:
        return max(_degree(a) for a in expr.args)
    if expr.is_Mul:
        return sum(_degree(a) for a in expr.args)
    if expr.is_Pow:
        return _degree(expr.base) * abs(int(expr.exp))
    raise TypeError(f"unexpected node {type(expr).__name__}")


def parse_answer(text: str, qid: str | None = None) -> sp.Expr:
    """The sympy expression an answer string denotes (J already replaced by D/H)."""
    return _Parser(tokenize(text, qid), qid).parse()
