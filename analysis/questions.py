"""The homework's cost questions as data (`analysis/data/homework_questions.toml`), and the
reading of answer files (TOML mapping question ids to answer strings).

Each `Question` says what it asks, under which stated assumptions, and which quantity of which
cost model answers it; `analysis.checker` derives and measures that quantity.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from analysis.expr_parser import parse_answer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS_FILE = DATA / "homework_questions.toml"
HOMEWORK_ANSWERS = DATA / "homework_answers.toml"


@dataclass(frozen=True)
class Question:
    id: str
    section: str
    question: str
    kind: str
    model: str
    assumptions: tuple[str, ...]
    substitute: dict  # symbol name -> sympy expression (the stated assumptions)
    phase: str | None = None
    terms: tuple[str, ...] | None = None
    measured_terms: tuple[str, ...] | None = None
    sublayer: str | None = None
    per_head: bool = False
    measure: dict = field(default_factory=dict)
    note: str = ""
    lower_order_ok: bool = True
    # kind "derived": how `analysis.derive` derives the reference from counts (DERIVE_KEYS;
    # checked by `derive_spec`); folder: the questions file's, for a factory FILE.py:FUNC
    derive: dict = field(default_factory=dict)
    folder: str = "."


DERIVE_KEYS = {"vary": list, "fix": dict, "step": dict, "measure": str, "kv_cache": bool}


def derive_spec(qid: str, table) -> dict:
    """A question's `derive` table, checked: vary (a list of size names, required), fix and
    step (size name -> positive integer), measure (flops | params | bytes | depth),
    kv_cache. ValueError naming the question for anything else."""
    if not isinstance(table, dict):
        raise ValueError(f"question {qid}: derive must be a table, e.g. "
                         'derive = { vary = ["T", "D"] }')
    for key, value in table.items():
        want = DERIVE_KEYS.get(key)
        if want is None:
            raise ValueError(f"question {qid}: derive has no key {key!r}; its keys: "
                             f"{', '.join(DERIVE_KEYS)}")
        if not isinstance(value, want):
            raise ValueError(f"question {qid}: derive.{key} must be a {want.__name__}")
    vary = table.get("vary")
    if not vary or not all(isinstance(v, str) and v.isidentifier() for v in vary):
        raise ValueError(f"question {qid}: derive.vary must list the size names the formula "
                         'is in, e.g. vary = ["T", "D"]')
    for key in ("fix", "step"):
        for name, value in table.get(key, {}).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"question {qid}: derive.{key}.{name} must be a positive "
                                 f"integer, got {value!r}")
    return dict(table)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark is dropped); ValueError naming `path` for a
    folder, an unreadable or a binary file."""
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a TOML file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {exc.start} is "
                         f"0x{data[exc.start]:02x}); answers are a TOML text file") from None


def _read_toml(path: Path) -> tuple[dict, str]:
    text = _read_text(path)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None


def load_questions(path: Path = QUESTIONS_FILE, kinds: Collection[str] | None = None
                   ) -> dict[str, Question]:
    """The questions of `path`. A question's `assumptions` are added to the defaults' (which
    every question shares); `kinds`: the kinds a caller can answer (ValueError for another;
    `analysis.checker` passes the kinds it has derivations for)."""
    raw, _ = _read_toml(Path(path))
    defaults = raw.get("defaults", {})
    out = {}
    for qid, q in raw["questions"].items():
        spec = {**defaults, **q}
        spec["substitute"] = {**defaults.get("substitute", {}), **q.get("substitute", {})}
        spec["assumptions"] = [*defaults.get("assumptions", ()), *q.get("assumptions", ())]
        if kinds is not None and spec["kind"] not in kinds:
            raise ValueError(f"question {qid}: kind must be one of {', '.join(kinds)}, got "
                             f"{spec['kind']!r}")
        subs = {name: parse_answer(str(text), f"{qid} substitute {name}")
                for name, text in spec.get("substitute", {}).items()}
        out[qid] = Question(
            id=qid,
            section=spec["section"],
            question=spec["question"],
            kind=spec["kind"],
            model=spec["model"],
            assumptions=tuple(spec.get("assumptions", ())),
            substitute=subs,
            phase=spec.get("phase"),
            terms=tuple(spec["terms"]) if "terms" in spec else None,
            measured_terms=tuple(spec["measured_terms"]) if "measured_terms" in spec else None,
            sublayer=spec.get("sublayer"),
            per_head=bool(spec.get("per_head", False)),
            measure=dict(spec.get("measure", {})),
            note=spec.get("note", ""),
            lower_order_ok=bool(spec.get("lower_order_ok", True)),
            derive=derive_spec(qid, spec.get("derive")) if spec["kind"] == "derived" else {},
            folder=str(Path(path).resolve().parent),
        )
    return out


def flatten(table: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """[(key path, value)] of every leaf. Bare dotted keys (`rnn.train.flops = "..."`) and
    tables arrive nested; their id is the path joined with dots."""
    out = []
    for key, value in table.items():
        path = (*prefix, str(key))
        if isinstance(value, dict):
            out += flatten(value, path)
        else:
            out.append((path, value))
    return out


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _spelling(path: tuple[str, ...]) -> str:
    """A key path as TOML writes it: `a.b` or `"a.b"`."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p) for p in path)


def load_answers(path: str | Path) -> dict[str, str]:
    """{question id: answer string} from an answers TOML file (quoted or bare dotted keys;
    numbers allowed as values). ValueError for anything else, including one id written
    twice in two spellings (`"a.b" = ...` and `a.b = ...`, different TOML keys), naming
    both lines."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    table, text = _read_toml(path)
    answers, paths = {}, {}
    for key_path, value in flatten(table):
        qid = ".".join(key_path)
        if qid in paths:
            lines = key_lines(text)
            where = [f"line {lines.get(p, '?')} ({_spelling(p)})" for p in (paths[qid], key_path)]
            raise ValueError(f"{path}: answer {qid!r} is given twice, {where[0]} and {where[1]}; "
                             "keep one")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"{path}: answer {qid!r} must be a string or a number, "
                             f"got {type(value).__name__}")
        answers[qid], paths[qid] = str(value), key_path
    if not answers:
        raise ValueError(f"{path}: no answers in the file")
    return answers


# ------------------------------------------------------------------------------ key lines
# tomllib gives no positions. This scanner reads a file tomllib has accepted and says on
# which line each key path is defined (table headers, dotted keys, inline tables), reading
# strings, comments and arrays only to skip them. Nothing is evaluated.


_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b"}


def _unescape(m: re.Match) -> str:
    """One escape of a TOML basic string (tomllib has already checked it is valid)."""
    esc = m.group(1)
    if len(esc) > 1:  # uXXXX or UXXXXXXXX
        return chr(int(esc[1:], 16))
    return _ESCAPES.get(esc, esc)  # \" and \\ stand for themselves


class _KeyScanner:
    def __init__(self, text: str):
        self.s, self.i, self.line = text, 0, 1
        self.lines: dict[tuple[str, ...], int] = {}

    def peek(self, k: int = 1) -> str:
        return self.s[self.i : self.i + k]

    def advance(self, k: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + k)
        self.i += k

    def skip(self, newlines: bool) -> None:
        """Whitespace and comments (and newlines when `newlines`)."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.advance((len(self.s) if end < 0 else end) - self.i)
            else:
                return

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:  # multi-line: up to the closing triple quote
            self.advance(3)
            while self.i < len(self.s):
                if quote == '"' and self.peek() == "\\":
                    self.advance(2)
                elif self.peek(3) == quote * 3:
                    self.advance(3)
                    while self.peek() == quote:  # up to two quotes may end the content
                        self.advance()
                    return ""
                else:
                    self.advance()
            return ""
        self.advance()
        start = self.i
        while self.i < len(self.s) and self.peek() != quote:
            self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
        raw = self.s[start : self.i]
        self.advance()
        if quote == "'":
            return raw
        return _ESCAPE.sub(_unescape, raw)

    def key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self.skip(False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                m = _BARE_KEY.match(self.s, self.i)
                parts.append(m.group(0))
                self.advance(m.end() - self.i)
            self.skip(False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def value(self, prefix: tuple[str, ...]) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "{":
            self.advance()
            self.skip(False)
            while self.peek() != "}":
                self.pair(prefix)
                self.skip(False)
                if self.peek() == ",":
                    self.advance()
                    self.skip(False)
            self.advance()
        elif c == "[":
            self.advance()
            self.skip(True)
            while self.peek() != "]":
                self.value(prefix)
                self.skip(True)
                if self.peek() == ",":
                    self.advance()
                    self.skip(True)
            self.advance()
        else:  # number, boolean, date: up to a delimiter
            while self.i < len(self.s) and self.peek() not in ",]}#\n":
                self.advance()

    def pair(self, prefix: tuple[str, ...]) -> None:
        line = self.line
        path = (*prefix, *self.key())
        self.lines.setdefault(path, line)
        self.skip(False)
        self.advance()  # "="
        self.skip(False)
        self.value(path)

    def scan(self) -> dict[tuple[str, ...], int]:
        prefix: tuple[str, ...] = ()
        while True:
            self.skip(True)
            if self.i >= len(self.s):
                return self.lines
            if self.peek() == "[":
                double = self.peek(2) == "[["
                self.advance(2 if double else 1)
                line, prefix = self.line, self.key()
                self.lines.setdefault(prefix, line)
                self.advance(2 if double else 1)
            else:
                self.pair(prefix)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """{key path: 1-based line of its definition} for valid TOML `text`."""
    return _KeyScanner(text).scan()


def assumed(expr: sp.Expr, q: Question) -> sp.Expr:
    """`expr` under the question's stated assumptions (its substitutions)."""
    from analysis.formulas import SYMBOLS

    return sp.expand(expr.xreplace({SYMBOLS[k]: v for k, v in q.substitute.items()}))
