r"""A safe parser for cost answers written as people write them: `24LTD^2 + 4LT^2D`,
`24*L*T*D**2 + 4*L*T**2*D`, `24 L T D² + 4 L T² D`, `2TL`, `(8TD^2 + 4T^2D)L`, and as they
write them in a notebook's Markdown: `$(4TLD^2)$ FLOPs`, `**2TL**`, `**$6L$**`,
`\(24 \cdot L \cdot T \cdot D^{2}\)`, `\frac{4}{3}LT^3D`, `\mathcal{O}(TLD^2)`.

Answer files are untrusted input. This module never hands their text to eval, exec,
`sympify`, `parse_expr` or a LaTeX library: it reads the string itself, character by character,
and builds the sympy expression from the tokens (`sp.Integer`, `sp.Rational`, `sp.Add`, `sp.Mul`,
`sp.Pow` and the known symbols). No LaTeX macro is expanded or defined: the few it knows are
fixed spellings of an operator, a bracket, a group or spacing; any other (`\input`, `\def`,
`\newcommand`, `\csname`, ...) is an error naming it.

Accepted, plain: non-negative decimal numbers (`12`, `0.5`, and `1.2e1` = 12 in scientific
notation with a lowercase `e`; `2E3` stays 2·E·3, an error, since E is a size), the
single-letter symbols of `KNOWN_SYMBOLS` (T, D, L, H, J = D/H, V, B, E), `+ - * / ^ **` (also
`·`, `×`, `⋅` for times and `−` for minus), Unicode superscript digits as exponents, `( )` and
`[ ]` and `{ }` (each closed by its own kind) and whitespace, newlines included. A
juxtaposition is a product (`2TL`, `LT^2D`, `(T+1)L`); exponents bind tighter than products,
so `LT^2D` is L·T²·D. Exponents must be integer constants in [-MAX_EXPONENT, MAX_EXPONENT].

Accepted, as people write them:
- math delimiters `$...$`, `$$...$$`, `\(...\)`, `\[...\]`: every `$`, `\(`, `\)`, `\[`, `\]`
  is dropped wherever it stands, so an expression a PDF export split over two spans reads whole
  (`$(24LTD^2 +$` newline `$4LT^2D$) FLOPS`);
- `\cdot`, `\times`, `\ast` (times), `\div`; `^{...}` and any `{...}` group (a bracket);
  `\frac{a}{b}` (also `\dfrac`, `\tfrac`, and one-character arguments, `\frac12`) = (a)/(b);
  `\left( \right)`, `\left[ \right]`, `\big(` and kin (the sizing macro is dropped);
  `\{ \}`; spacing `\, \; \: \! \quad \qquad \ ~` and `\displaystyle`;
- wrappers `\mathbf{}`, `\textbf{}`, `\mathrm{}`, `\textrm{}`, `\text{}`, `\mathit{}`,
  `\textit{}`, `\boldsymbol{}`, `\bm{}`, `\mathsf{}`: a group; one that holds only a unit
  word (`\text{ FLOPs}`) is dropped;
- `**...**` and `*...*` (Markdown bold, italics): a `*` or `**` with no operand on one side is
  emphasis and dropped (they must pair); between two operands it is times or power (`T**2`);
- a unit word last (FLOPs, FLOPS, flops, FLOP, matmuls, matrix multiplications,
  multiplications, operations, mults, case-insensitive, optionally after "sequential" or
  "total", optionally followed by "per token", "per layer", "for each head", "for all heads
  together" or "in total", which is noted, not read: the expression is judged as written),
  or first before `=` (`FLOPs = 4TLD^2`); a leading `=`; a leading `≈`, `∼`, `\approx`,
  `\sim` (noted: the expression is judged as if it were `=`); one trailing full stop;
- chains `a = b = c`: every side is read and they must be equal (the answer is their value),
  else an error showing the two sides;
- `O(...)`, `\mathcal{O}(...)`, `\Theta(...)`, `Θ(...)` as the whole answer (a unit may
  follow): `Answer.asymptotic` is set and the expression is the argument (the checker compares
  its leading terms and never calls it correct);
- lowercase size letters t, d, l, h, v, b, read as T, D, L, H, V, B (the `Answer.notes` say
  so), unless the answer also uses that capital (`d` and `D` together: an error, they could be
  two sizes). Lowercase `e` is read only in scientific notation (`1.2e3`): `2e3` would
  otherwise be 2000 or 2·E·3, and E is never needed (the questions substitute E = D); a lone
  `e` is an error with that hint. `j` (head dimension) is not read lowercase.

Subscripts are read nowhere: a subscript changes which size a letter means (`D_{emb}` is the
embedding size E in the homework, `d_k` the head dimension J), so dropping it is never
harmless and mapping a name is a guess. `d_{model}`, `n_layer` are unknown names, named whole
with the symbol to write as a hint.

Rejected with `AnswerParseError` (a ValueError naming the question id and the 1-based
column of the original text): any other character, name or macro (`x`, `exec`, `os.system`,
`n_layer`, `\input`: the whole word is named, with the allowed symbols), attribute access,
calls, strings, a number written right after a symbol (`D2`: D² or 2D?), input longer than
MAX_LENGTH characters (checked first, so a 1 MB cell fails at once), nesting deeper than
MAX_DEPTH (brackets, braces, `\frac`, wrappers and exponents of exponents, all counted; signs
do not nest), numbers longer than MAX_DIGITS
digits, constants over MAX_BITS bits, degree over MAX_DEGREE, and expressions whose expansion
could have more than MAX_TERMS monomials (so no answer can make the checker expand or evaluate
something huge: `(T+D+L+H+V+B+E)^12` has degree 12 but expands into 18,564 monomials, a
minute of sympy).

Degree: the larger of the total positive and the total negative exponent over the symbols of
any monomial, bounded from the expression tree. J = D/H is a size and counts as degree 1
(D^1 H^-1), so `J^12` and `(T + J)^12` have degree 12, `T J^12` has 13.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import sympy as sp

from analysis.formulas import SYMBOLS

MAX_LENGTH = 1000  # LaTeX spells an answer out (\left( ... \cdot ... \right) \text{ FLOPs})
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
LOWERCASE_SIZES = {c: c.upper() for c in "tdlhvb"}  # read as the capital, and said so

_SUPERSCRIPTS = {c: str(i) for i, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")}
_SUPER_MINUS = "⁻"
_TIMES = {"·", "×", "⋅"}
_MINUS = {"-", "−"}
_SPACE = set(" \t\r\n\u00a0~")
_OPEN, _CLOSE = "([{", ")]}"
_MATCH = dict(zip(_OPEN, _CLOSE))

# LaTeX macros: each a fixed meaning, nothing expanded.
_SKIP_MACROS = {",", ";", ":", "!", ">", " ", "\\", "(", ")", "[", "]", "quad", "qquad",
                "enspace", "thinspace", "medspace", "thickspace", "negthinspace",
                "displaystyle", "textstyle", "left", "right", "big", "Big", "bigg", "Bigg",
                "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr"}
_TIMES_MACROS = {"cdot", "times", "ast"}
_FRAC_MACROS = {"frac", "dfrac", "tfrac"}
_WRAPPERS = {"mathbf", "textbf", "mathrm", "textrm", "text", "mathit", "textit",
             "boldsymbol", "bm", "mathsf", "textsf"}
_APPROX_MACROS = {"approx", "sim", "simeq"}
_ALLOWED_LATEX = (r"\cdot, \times, \frac{a}{b}, ^{...}, \left( \right), \text{...}, "
                  r"\mathbf{...}, \mathcal{O}(...) and spacing")

_SIZING_RE = re.compile(r"\\(left|bigl?|Bigl?|biggl?|Biggl?)(?![A-Za-z])")
_UNIT = (r"(?:(?:sequential|total)\s+)?(?:flops?|matmuls?|matrix[\s-]+multiplications?"
         r"|multiplications?|operations?|mults?)")
_UNIT_RE = re.compile(_UNIT + r"(?![A-Za-z])", re.IGNORECASE)
_UNIT_ONLY_RE = re.compile(r"\s*" + _UNIT + r"\s*\.?\s*", re.IGNORECASE)
_UNIT_TAIL_RE = re.compile(
    r"\s+(?:(?:per|for\s+(?:each|every|one|a|all))\s+(?:single\s+)?[A-Za-z]+(?:\s+together)?"
    r"|in\s+total)(?![A-Za-z])", re.IGNORECASE)


class AnswerParseError(ValueError):
    def __init__(self, qid: str | None, position: int, message: str):
        self.qid = qid
        self.position = position  # 1-based column
        self.reason = message
        where = f"answer {qid!r}" if qid else "answer"
        super().__init__(f"{where}: {message} at position {position}")


@dataclass(frozen=True)
class Token:
    # parser kinds: num, sym, op, lpar, rpar, sup, end; the lexer's besides: star (* or **,
    # times, power or emphasis), eq, unit, approx, bigo, dot, sub
    kind: str
    text: str
    pos: int  # 1-based column in the original text


@dataclass(frozen=True)
class Answer:
    """What an answer says: `expr` (J already replaced by D/H); `asymptotic` for O(...), whose
    argument `expr` is; `notes`: how the text was read where that is worth saying (lowercase
    letters read as sizes, a unit's "per token" not read, a leading ≈ read as =)."""

    expr: sp.Expr
    asymptotic: bool = False
    notes: tuple[str, ...] = ()


# ------------------------------------------------------------------------------ lexer


class _Lexer:
    """The characters of `text` as tokens, LaTeX macros resolved (see the module docstring).
    Recursion (a `\\frac`'s or a wrapper's argument) is bounded by MAX_DEPTH; every position
    is a column of the original text."""

    def __init__(self, text: str, qid: str | None):
        self.text, self.qid = text, qid
        self.tokens: list[Token] = []
        self.lower: dict[str, int] = {}  # lowercase size letter -> first column
        self.upper: set[str] = set()
        self.notes: list[str] = []

    def error(self, pos: int, message: str):
        raise AnswerParseError(self.qid, pos, message)

    def emit(self, kind: str, text: str, pos: int) -> None:
        self.tokens.append(Token(kind, text, pos))

    def lex(self, start: int, end: int, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            self.error(start + 1, f"nested deeper than {MAX_DEPTH}")
        text, i = self.text, start
        while i < end:
            c, pos = text[i], i + 1
            if c in _SPACE or c == "$":
                i += 1
            elif c == "\\":
                i = self.macro(i, end, depth)
            elif _is_digit(c):
                i = self.number(i, end)
            elif c == "Θ":
                self.emit("bigo", c, pos)
                i += 1
            elif c.isalpha():
                i = self.word(i, end)
            elif c == "*":
                n = 2 if text[i + 1 : i + 2] == "*" and i + 1 < end else 1
                self.emit("star", "*" * n, pos)
                i += n
            elif c in _TIMES:
                self.emit("op", "*", pos)
                i += 1
            elif c in _MINUS:
                self.emit("op", "-", pos)
                i += 1
            elif c in "+/^":
                self.emit("op", c, pos)
                i += 1
            elif c == "=":
                self.emit("eq", c, pos)
                i += 1
            elif c in _OPEN:
                self.emit("lpar", c, pos)
                i += 1
            elif c in _CLOSE:
                self.emit("rpar", c, pos)
                i += 1
            elif c in "≈∼":
                self.emit("approx", c, pos)
                i += 1
            elif c == "_":
                self.emit("sub", c, pos)
                i += 1
            elif c == "." and not text[i + 1 :].strip(" \t\r\n$*}"):
                self.emit("dot", c, pos)  # a full stop ending the answer
                i += 1
            elif c in _SUPERSCRIPTS or c == _SUPER_MINUS:
                i = self.superscript(i, end)
            else:
                self.error(pos, f"unexpected character {c!r}")

    def number(self, i: int, end: int) -> int:
        text, pos = self.text, i + 1
        j = _digits_end(text, i, end)
        if text[j : j + 1] == "." and j + 1 < end and _is_digit(text[j + 1 : j + 2]):
            j = _digits_end(text, j + 1, end)
        if j - i - ("." in text[i:j]) > MAX_DIGITS:  # digits, not the decimal point
            self.error(pos, f"number longer than {MAX_DIGITS} digits")
        # scientific notation, lowercase e only (E is the embedding size): 1.2e1, 5e-3
        sign = 1 if text[j + 1 : j + 2] in ("+", "-") else 0
        if (text[j : j + 1] == "e" and j + 1 + sign < end
                and _is_digit(text[j + 1 + sign : j + 2 + sign])):
            k = _digits_end(text, j + 1 + sign, end)
            if k - (j + 1 + sign) > 4:
                self.error(j + 1, "exponent of 10 longer than 4 digits")
            j = k
        self.emit("num", text[i:j], pos)
        return j

    def superscript(self, i: int, end: int) -> int:
        text, j, digits = self.text, i, ""
        if text[i] == _SUPER_MINUS:
            digits, j = "-", i + 1
        while j < end and text[j] in _SUPERSCRIPTS:
            digits += _SUPERSCRIPTS[text[j]]
            j += 1
        if digits in ("", "-"):
            self.error(i + 1, "superscript minus without digits")
        self.emit("sup", digits, i + 1)
        return j

    def word(self, i: int, end: int) -> int:
        text, pos = self.text, i + 1
        unit = _UNIT_RE.match(text, i, end)
        if unit:
            self.emit("unit", unit.group(0), pos)
            return self.unit_tail(unit.end(), end, unit.group(0))
        j = i
        while j < end and text[j].isalpha():
            j += 1
        word = text[i:j]
        if word == "O" and self.opens(j, end):
            self.emit("bigo", word, pos)
            return j
        if text[j : j + 1] == "_" or not all(
                ch in KNOWN_SYMBOLS or ch in LOWERCASE_SIZES for ch in word):
            start = i  # the whole name, also when it starts with known letters ("Tokens")
            while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "_"):
                start -= 1
            self.error(start + 1, _unknown_name(_name_at(text, start)))
        for k, ch in enumerate(word):
            if ch in LOWERCASE_SIZES:
                self.lower.setdefault(ch, i + k + 1)
                ch = LOWERCASE_SIZES[ch]
            else:
                self.upper.add(ch)
            self.emit("sym", ch, i + k + 1)
        return j

    def unit_tail(self, i: int, end: int, unit: str) -> int:
        """After a unit word: "per token" / "per layer" / "in total", noted and not read."""
        tail = _UNIT_TAIL_RE.match(self.text, i, end)
        if not tail:
            return i
        words = " ".join(tail.group(0).split())
        self.notes.append(f"the text says {unit} {words}; the expression is judged as written")
        return tail.end()

    def opens(self, i: int, end: int) -> bool:
        """Whether a bracket opens at `i` (after spaces, `$` and a sizing macro)."""
        text = self.text
        while i < end:
            if text[i] in _SPACE or text[i] == "$":
                i += 1
                continue
            m = _SIZING_RE.match(text, i, end)
            if m:
                i = m.end()
                continue
            return text[i] in "(["
        return False

    def macro(self, i: int, end: int, depth: int) -> int:
        text, pos, j = self.text, i + 1, i + 1
        if j >= end:
            self.error(pos, "a lone backslash")
        if text[j].isalpha():
            k = j
            while k < end and text[k].isalpha():
                k += 1
        else:
            k = j + 1
        name = text[j:k]
        if name in _SKIP_MACROS:
            if name in ("left", "right") and text[k : k + 1] == ".":
                return k + 1  # the invisible delimiter
            return k
        if name in _TIMES_MACROS:
            self.emit("op", "*", pos)
        elif name == "div":
            self.emit("op", "/", pos)
        elif name in ("{", "}"):
            self.emit("lpar" if name == "{" else "rpar", name, pos)
        elif name in _APPROX_MACROS:
            self.emit("approx", "\\" + name, pos)
        elif name == "Theta":
            self.emit("bigo", "\\Theta", pos)
        elif name == "mathcal":
            a, b, k = self.argument(k, end, name, pos)
            if text[a:b].strip() != "O":
                self.error(pos, f"\\mathcal{{{text[a:b].strip()}}} is not read; "
                                "only \\mathcal{O}(...) is")
            if not self.opens(k, end):
                self.error(pos, "\\mathcal{O} without (...)")
            self.emit("bigo", "\\mathcal{O}", pos)
        elif name in _FRAC_MACROS:
            a1, b1, k = self.argument(k, end, name, pos)
            a2, b2, k = self.argument(k, end, name, pos)
            self.emit("lpar", "(", pos)
            self.group(a1, b1, depth, pos)
            self.emit("op", "/", pos)
            self.group(a2, b2, depth, pos)
            self.emit("rpar", ")", pos)
        elif name in _WRAPPERS:
            a, b, k = self.argument(k, end, name, pos)
            inner = text[a:b]
            if _UNIT_ONLY_RE.fullmatch(inner):
                self.emit("unit", inner.strip(), pos)
                return self.unit_tail(k, end, inner.strip().rstrip("."))
            if inner.strip():
                self.group(a, b, depth, pos)
        else:
            self.error(pos, f"LaTeX macro \\{name} is not read in answers (nothing is "
                            f"expanded; answers may use {_ALLOWED_LATEX})")
        return k

    def group(self, a: int, b: int, depth: int, pos: int) -> None:
        self.emit("lpar", "(", pos)
        self.lex(a, b, depth + 1)
        self.emit("rpar", ")", b + 1 if b < len(self.text) else pos)

    def argument(self, i: int, end: int, macro: str, pos: int) -> tuple[int, int, int]:
        """A macro's argument at `i`: (start, stop, after) of a `{...}` group or of one
        character."""
        text = self.text
        while i < end and text[i] in _SPACE:
            i += 1
        if i >= end:
            self.error(pos, f"\\{macro} without its argument{'s' if macro == 'frac' else ''}")
        if text[i] == "{":
            stop = self.group_end(i, end)
            return i + 1, stop, stop + 1
        if text[i].isalnum():
            return i, i + 1, i + 1
        self.error(i + 1, f"\\{macro}: write its argument in braces, \\{macro}{{...}}")

    def group_end(self, i: int, end: int) -> int:
        """The index of the `}` closing the `{` at `i` (nesting bounded by MAX_DEPTH)."""
        text, level, k = self.text, 0, i
        while k < end:
            c = text[k]
            if c == "\\":
                k += 2
                continue
            if c == "{":
                level += 1
                if level > MAX_DEPTH:
                    self.error(k + 1, f"nested deeper than {MAX_DEPTH}")
            elif c == "}":
                level -= 1
                if level == 0:
                    return k
            k += 1
        self.error(i + 1, "missing '}'")


def _is_digit(c: str) -> bool:
    return len(c) == 1 and c.isascii() and c.isdigit()


def _digits_end(text: str, i: int, end: int | None = None) -> int:
    end = len(text) if end is None else end
    while i < end and _is_digit(text[i]):
        i += 1
    return i


def _name_at(text: str, start: int) -> str:
    """The name starting at `start`: letters, digits and `_`, a `_{...}` subscript read
    without its braces and \\text (`d_{\\text{model}}` is d_model)."""
    i, out = start, []
    while i < len(text):
        c = text[i]
        if c.isalnum() or c == "_":
            out.append(c)
            i += 1
        elif c == "{" and out and out[-1] == "_":
            close = text.find("}", i)
            if close < 0 or close - i > 40:
                break
            inner = re.sub(r"\\[A-Za-z]+|[{}\s]", "", text[i + 1 : close])
            out.append(inner)
            i = close + 1
            while text[i : i + 1] == "}":
                i += 1
        else:
            break
    return "".join(out)


# Names people write for the sizes (nanoGPT's config fields, common prose): only for the hint.
_NAME_HINTS = {
    "n_layer": "L", "n_layers": "L", "layers": "L", "num_layers": "L",
    "n_embd": "D", "d_model": "D", "hidden": "D", "hidden_size": "D", "d_hidden": "D",
    "n_head": "H", "n_heads": "H", "heads": "H", "num_heads": "H",
    "head_dim": "J", "d_head": "J", "head_size": "J", "d_k": "J",
    "block_size": "T", "seq_len": "T", "n_ctx": "T", "n": "T",
    "vocab_size": "V", "vocab": "V", "batch_size": "B", "batch": "B", "n_embed": "E",
    "d_emb": "E",
}


def _unknown_name(word: str) -> str:
    allowed = ", ".join(KNOWN_SYMBOLS)
    hint = _NAME_HINTS.get(word.lower())
    hint = f" (for {word} write {hint}: {SYMBOL_MEANING[hint]})" if hint else ""
    if word == "e":
        hint = (" (lowercase e is read only in scientific notation, 1.2e3; for the embedding "
                "size write E)")
    elif "_" in word and not hint:
        hint = " (subscripts are not read: a subscript changes which size a letter means)"
    return (f"unknown name {word!r}{hint}; allowed symbols are {allowed}, one letter each "
            "(2LTD is 2·L·T·D)")


# ------------------------------------------------------------------------------ reading


_OPERAND_END = {"num", "sym", "rpar", "sup"}
_OPERAND_START = {"num", "sym", "lpar", "bigo"}


def _resolve_stars(tokens: list[Token], qid: str | None) -> list[Token]:
    """`*` / `**` between two operands: times / power; anywhere else emphasis, dropped (and
    paired: `**2TL**`)."""
    out, emphasis = [], {"*": [], "**": []}
    for k, tok in enumerate(tokens):
        if tok.kind != "star":
            out.append(tok)
            continue
        prev = tokens[k - 1] if k else None
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        binary = (prev is not None and prev.kind in _OPERAND_END and nxt is not None
                  and (nxt.kind in _OPERAND_START or (nxt.kind == "op" and nxt.text in "+-")))
        if binary:
            out.append(Token("op", "*" if tok.text == "*" else "^", tok.pos))
        else:
            emphasis[tok.text].append(tok)
    for marker, found in emphasis.items():
        if len(found) % 2:
            raise AnswerParseError(qid, found[-1].pos, f"unmatched {marker!r} (bold is "
                                                       "**...**, italics *...*)")
    return out


def _strip_around(tokens: list[Token], qid: str | None, notes: list[str]) -> list[Token]:
    """Drop what surrounds the expression: trailing full stops and unit words, a leading
    `=`, `UNIT =` or `≈`. Any unit, `≈` or full stop left inside is an error."""
    tokens = list(tokens)
    while tokens and tokens[-1].kind in ("dot", "unit"):
        tokens.pop()
    while tokens:
        if tokens[0].kind == "eq":
            tokens.pop(0)
        elif tokens[0].kind == "unit" and len(tokens) > 1 and tokens[1].kind == "eq":
            del tokens[:2]
        elif tokens[0].kind == "approx":
            notes.append(f"the leading {tokens.pop(0).text} is read as =")
        else:
            break
    for tok in tokens:
        if tok.kind == "unit":
            raise AnswerParseError(qid, tok.pos, f"the unit {tok.text!r} must come last "
                                                 "(4TLD^2 FLOPs)")
        if tok.kind == "approx":
            raise AnswerParseError(qid, tok.pos, f"{tok.text!r} inside the answer: write one "
                                                 "expression")
        if tok.kind == "dot":
            raise AnswerParseError(qid, tok.pos, "unexpected '.'")
        if tok.kind == "sub":
            raise AnswerParseError(qid, tok.pos, "unexpected '_' (subscripts are not read)")
    return tokens


def _unwrap_bound(tokens: list[Token], qid: str | None) -> tuple[list[Token], bool]:
    """O(...) as the whole answer: (its argument's tokens, True); else (tokens, False)."""
    bounds = [k for k, t in enumerate(tokens) if t.kind == "bigo"]
    if not bounds:
        return tokens, False
    first = tokens[bounds[0]]
    whole = "O(...) must be the whole answer (O(TLD^2), not 4 + O(T) or O(T) = 4T)"
    if bounds != [0] or len(tokens) < 3 or tokens[1].kind != "lpar":
        raise AnswerParseError(qid, first.pos, whole)
    level = 0
    for k, tok in enumerate(tokens[1:], 1):
        level += {"lpar": 1, "rpar": -1}.get(tok.kind, 0)
        if level == 0:
            if k != len(tokens) - 1:
                raise AnswerParseError(qid, tokens[k + 1].pos, whole)
            return tokens[1:], True
    last = tokens[-1]  # the column after it: a number's text is as long as it was written
    raise AnswerParseError(qid, last.pos + (len(last.text) if last.kind == "num" else 1),
                           "missing ')' of O(...)")


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
        terms = [self.term()]
        while self.tok.kind == "op" and self.tok.text in "+-":
            sign = -1 if self.take().text == "-" else 1
            terms.append(sign * self.term())
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
        # signs in a loop, not by recursion: only brackets and exponents nest (MAX_DEPTH)
        negative = False
        while self.tok.kind == "op" and self.tok.text in "+-":
            negative ^= self.take().text == "-"
        value = self.power()
        return -value if negative else value

    def power(self) -> sp.Expr:
        base = self.atom()
        tok = self.tok
        if tok.kind == "sup":
            self.take()
            return self.raise_(base, sp.Integer(int(tok.text)), tok)
        if tok.kind == "op" and tok.text == "^":
            self.take()
            self.enter()  # an exponent's own exponent nests like a bracket
            exponent = self.factor()
            self.depth -= 1
            return self.raise_(base, exponent, tok)
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
            self.enter()  # one level per bracket, as MAX_DEPTH is stated
            value = self.expr()
            self.depth -= 1
            close = _MATCH[tok.text]
            if self.tok.kind != "rpar":
                self.error(self.tok, f"missing {close!r}")
            if self.tok.text != close:
                self.error(self.tok, f"{self.tok.text!r} does not close {tok.text!r} "
                                     f"(opened at position {tok.pos})")
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


def tokenize(text: str, qid: str | None = None) -> tuple[list[list[Token]], bool, list[str]]:
    """The parser's tokens of each side of `text` (one side unless it is a chain a = b),
    whether it is an O(...) bound, and the notes on how it was read."""
    if not isinstance(text, str):
        raise AnswerParseError(qid, 1, f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:  # first: a 1 MB cell costs nothing more than its length
        raise AnswerParseError(qid, MAX_LENGTH + 1, f"longer than {MAX_LENGTH} characters")
    lexer = _Lexer(text, qid)
    lexer.lex(0, len(text))
    clash = sorted(c for c in lexer.lower if LOWERCASE_SIZES[c] in lexer.upper)
    if clash:
        c = clash[0]
        raise AnswerParseError(qid, lexer.lower[c], f"both {c!r} and {c.upper()!r} appear: a "
                                                    "lowercase size letter is read as the "
                                                    "capital only when the capital is not "
                                                    "used too")
    notes = list(lexer.notes)
    tokens = _strip_around(_resolve_stars(lexer.tokens, qid), qid, notes)
    tokens, asymptotic = _unwrap_bound(tokens, qid)
    if lexer.lower:
        letters = sorted(lexer.lower, key=lexer.lower.get)
        notes.insert(0, f"read lowercase {', '.join(letters)} as "
                        f"{', '.join(LOWERCASE_SIZES[c] for c in letters)}")
    sides, side = [], []
    for tok in tokens:
        if tok.kind == "eq":
            sides.append(side + [Token("end", "", tok.pos)])
            side = []
        else:
            side.append(tok)
    sides.append(side + [Token("end", "", len(text) + 1)])
    return sides, asymptotic, notes


def read_answer(text: str, qid: str | None = None) -> Answer:
    """What an answer string says (see the module docstring): the expression, whether it is
    an O(...) bound, and notes on how it was read. AnswerParseError for anything else."""
    sides, asymptotic, notes = tokenize(text, qid)
    values = [_Parser(side, qid).parse() for side in sides]
    for side, value in zip(sides[:-1], values[:-1]):
        if sp.expand(value - values[-1]) != 0:
            raise AnswerParseError(qid, side[-1].pos,
                                   f"the two sides of '=' differ ({_plain(value)} and "
                                   f"{_plain(values[-1])}); give one answer")
    return Answer(values[-1], asymptotic, tuple(notes))


def parse_answer(text: str, qid: str | None = None) -> sp.Expr:
    """The sympy expression an answer string denotes (J already replaced by D/H); an O(...)
    bound is not one (AnswerParseError), `read_answer` reads those."""
    found = read_answer(text, qid)
    if found.asymptotic:
        raise AnswerParseError(qid, 1, "an O(...) bound is not an exact expression here")
    return found.expr


def _plain(expr: sp.Expr) -> str:
    return str(expr).replace("**", "^")
