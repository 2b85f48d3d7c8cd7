"""The homework's cost questions as data (`analysis/data/homework_questions.toml`), and the
reading of answer files (TOML mapping question ids to answer strings).

Each `Question` says what it asks, under which stated assumptions, and which quantity of which
cost model answers it; `analysis.checker` derives and measures that quantity.
"""

from __future__ import annotations

import sys
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
KINDS = ("flops", "depth", "sublayer_depth")


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


def _read_toml(path: Path) -> dict:
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None


def load_questions(path: Path = QUESTIONS_FILE) -> dict[str, Question]:
    raw = _read_toml(Path(path))
    defaults = raw.get("defaults", {})
    out = {}
    for qid, q in raw["questions"].items():
        spec = {**defaults, **q}
        spec["substitute"] = {**defaults.get("substitute", {}), **q.get("substitute", {})}
        if spec["kind"] not in KINDS:
            raise ValueError(f"question {qid}: kind must be one of {KINDS}, got {spec['kind']!r}")
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
        )
    return out


def flatten(table: dict, prefix: str = "") -> dict:
    """Bare dotted keys (`rnn.train.flops = "..."`) arrive as nested tables: join them back."""
    out = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def load_answers(path: str | Path) -> dict[str, str]:
    """{question id: answer string} from an answers TOML file (quoted or bare dotted keys;
    numbers allowed as values). ValueError for anything else."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    answers = {}
    for qid, value in flatten(_read_toml(path)).items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"{path}: answer {qid!r} must be a string or a number, "
                             f"got {type(value).__name__}")
        answers[qid] = str(value)
    if not answers:
        raise ValueError(f"{path}: no answers in the file")
    return answers


def assumed(expr: sp.Expr, q: Question) -> sp.Expr:
    """`expr` under the question's stated assumptions (its substitutions)."""
    from analysis.formulas import SYMBOLS

    return sp.expand(expr.xreplace({SYMBOLS[k]: v for k, v in q.substitute.items()}))
