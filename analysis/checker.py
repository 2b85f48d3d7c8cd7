"""Check cost answers (the homework's own or a student's) against derivation and measurement.

For every answered question (`analysis.questions`):

1. The answer string is parsed safely (`analysis.expr_parser`) into a sympy expression A; the
   question's stated assumptions (B = 1, E = D, P = 1 and N = T for "generate T tokens", L = 1
   for a per-layer part) are substituted into it and into the derived expression X.
2. X comes from the toolkit's own models: FLOPs from `analysis.formulas` (matmul FLOPs, 2 per
   multiply-add, full attention square, head=False), sequential matmuls from
   `analysis.depth_formulas` (critical-path matmul depth, head=False).
3. X is checked against measurement on a grid of sizes (`analysis.counters` FLOP counts with
   the head's module removed, `analysis.depth` traced depth with the head weighing 0). A
   disagreement there is a toolkit bug and raises `DerivationMismatch`, never a verdict.
4. Verdict, from the comparison of A with X only:
   - CORRECT when expand(X - A) == 0;
   - CORRECT (with a note of the exact difference) when the question lets answers ignore
     small calculations (`lower_order_ok`, the homework says so for all its questions) and
     every monomial of X - A is *strictly dominated* by a leading monomial of X. A monomial m
     is dominated by m' when every symbol's exponent in m' is >= its exponent in m and m' != m,
     so m/m' -> 0 as all sizes grow; the leading monomials of X are those no other monomial
     of X dominates. Then A keeps exactly X's leading terms with their coefficients and
     A/X -> 1 as all sizes grow (e.g. `12TLD^2` for 12TLD^2 - 2LD^2; not `6L` for 6LT);
   - INCORRECT otherwise, with a counterexample row: the smallest grid point where A != X,
     with the answered, derived and measured values;
   - for an O(...) answer (also `mathcal{O}`, Theta): ASYMPTOTIC when its leading monomials,
     coefficients aside, are exactly X's (`O(TLD^2)` for 12TLD^2 - 2LD^2; `O(LTD^2 + LT^2D)`,
     not `O(LTD^2)`, for 24LTD^2 + 4LT^2D), INCORRECT otherwise (no counterexample: a bound
     has no value to compare). Never CORRECT.
   The reasoning names the exact difference, whether the answer holds when a size is 1, and
   whether it equals another derived quantity of the same model (e.g. the backward pass
   instead of forward + backward, or, for a model with attention, the causal lower-triangle
   count where the question counts the full T x T square), all computed, never looked up.

Every answer gets one row, whatever its text: an answer that cannot be read is the row
UNPARSED (the parser's reason and column in the reasoning), None or blank text is MISSING, an
id no question has is UNKNOWN_ID (with the closest id). Only the question bank itself (a
kind with no derivation, an unknown term, a derivation that disagrees with measurement) and
an answers file none of whose ids is a question (`check_file`) still raise.

Rows have the schema ROW_FIELDS: id, question, answer, verdict (an `analysis.verdicts.Verdict`
of ANSWER_VERDICTS: CORRECT, INCORRECT, ASYMPTOTIC, UNPARSED, MISSING, UNKNOWN_ID; the CSV and
JSON carry its string), derived, counterexample, reasoning (plus section, measured_points,
and `read`: the expression the parser read, `O(...)` for a bound, "" when nothing was read).
The reasoning says how the text was read where that matters (lowercase letters read as
sizes, "per token" after the unit not read).

Question families checked elsewhere join through EXTRA_CHECKS, a table built here from plain
imports (the import goes one way: those modules import nothing from this one). An entry's
`check(qid, answer_text) -> dict` returns one row with the ROW_FIELDS keys, raising ValueError
for an unusable answer (the row is then UNPARSED, the message its reasoning);
`questions() -> list[dict]` gives {id, question, assumptions, symbols} for
`charlm check-answers --list`. An answer id that is not one of the homework questions here
goes to the entry with the longest matching prefix.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import sympy as sp
import torch

from analysis import gru_exercises
from analysis.architectures import architecture
from analysis.expr_parser import SYMBOL_MEANING, Answer, AnswerParseError, read_answer
from analysis.formulas import SYMBOLS
from analysis.questions import QUESTIONS_FILE, Question, assumed, load_questions
from analysis.verdicts import Verdict

ROW_FIELDS = ("id", "question", "answer", "verdict", "derived", "counterexample", "reasoning")
SEEN = "read"  # the column after ROW_FIELDS with the expression the parser read
GRID = {"T": (2, 5), "D": (4, 8), "L": (1, 2, 3), "H": (1, 2), "V": (5,)}
QUICK_GRID = {"T": (2, 3), "D": (4,), "L": (1, 2), "H": (1, 2), "V": (5,)}
DEFAULTS = {"T": 3, "D": 4, "L": 2, "H": 2, "V": 5}  # sizes a question's expression lacks
FULL_SQUARE = "the question counts the full T x T square"


class DerivationMismatch(RuntimeError):
    """The derived expression disagrees with the measurement: a bug in the toolkit."""


# ------------------------------------------------------------------------------ other families


@dataclass(frozen=True)
class ExtraCheck:
    prefix: str
    check: Callable[[str, str], dict]
    questions: Callable[[], list[dict]]


EXTRA_CHECKS: dict[str, ExtraCheck] = {
    e.prefix: e
    for e in (
        ExtraCheck(gru_exercises.PREFIX, gru_exercises.check_answer, gru_exercises.questions),
    )
}


def _extra_for(qid: str) -> ExtraCheck | None:
    matches = [p for p in EXTRA_CHECKS if qid.startswith(p)]
    return EXTRA_CHECKS[max(matches, key=len)] if matches else None


# ------------------------------------------------------------------------------ derivation


def _derive_flops(q: Question, phase: str | None = None, **kw) -> sp.Expr:
    terms = architecture(q.model).cost.quantity(phase or q.phase, head=False, **kw).terms
    names = q.terms or tuple(terms)
    expr = sp.Add(*(terms[n] for n in names))
    return expr / SYMBOLS["H"] if q.per_head else expr


def _derive_depth(q: Question, phase: str | None = None, **kw) -> sp.Expr:
    return architecture(q.model).depth.quantity(phase or q.phase, head=False, **kw).depth


def _derive_sublayer(q: Question, phase=None, **kw) -> sp.Expr:
    return sp.Integer(architecture(q.model).depth.sublayer(q.sublayer))


@lru_cache(maxsize=64)
def _derivation(model: str, phase: str, folder: str, spec: str):
    """The `analysis.derive` Derivation a "derived" question names (cached per question
    spec, a JSON string). model: a built-in, or a factory FILE.py:FUNC relative to the
    questions file's folder (course staff's code, loaded and run as `charlm derive` does).
    DerivationMismatch when the counts do not verify as a polynomial."""
    import json

    from analysis import derive as D

    table = json.loads(spec)
    source = _source(model, phase, folder, spec)
    found = D.derive(source, table["vary"], table.get("fix"), table.get("step"))
    if not found.verified:
        first = found.failures[0]
        raise DerivationMismatch(f"{model} {phase}: the derived formula did not verify "
                                 f"({first.get('message') or first})")
    return found


@lru_cache(maxsize=64)
def _source(model: str, phase: str, folder: str, spec: str):
    """The `analysis.derive.Source` of a "derived" question (see `_derivation`)."""
    import json
    from pathlib import Path

    from analysis import derive as D

    table = json.loads(spec)
    measure = table.get("measure", "flops")
    if model in architecture_names():
        return D.builtin_source(model, phase or "forward", measure,
                                table.get("kv_cache", False))
    from analysis.factories import load_factory

    file, sep, func = model.rpartition(":")
    path = Path(file) if Path(file).is_absolute() else Path(folder) / file
    factory, _ = load_factory(f"{path}{sep}{func}")
    return D.factory_source(factory, model, phase or "forward", measure)


def architecture_names() -> tuple[str, ...]:
    from analysis.architectures import ARCHITECTURES

    return tuple(ARCHITECTURES)


def _key(q: Question) -> tuple:
    import json

    return q.model, q.phase or "forward", q.folder, json.dumps(q.derive, sort_keys=True)


def derivation_of(q: Question):
    return _derivation(*_key(q))


def _derive_measured(q: Question, phase: str | None = None, **kw) -> sp.Expr:
    """A "derived" question's reference: the formula `analysis.derive` derives from counts
    (the sum of the named terms `q.terms` when given, e.g. every term but the head)."""
    found = derivation_of(q)
    if not q.terms:
        return found.formula
    unknown = [t for t in q.terms if t not in found.terms]
    if unknown:
        raise ValueError(f"question {q.id}: no derived term {unknown[0]!r}; the terms: "
                         f"{', '.join(found.terms)}")
    return sp.expand(sp.Add(*(found.terms[t] for t in q.terms)))


# The question kinds: one derivation (and one measurement, MEASUREMENTS) each. "derived":
# the reference is derived from counts (its measurement is the derivation's own check).
DERIVATIONS = {"flops": _derive_flops, "depth": _derive_depth, "sublayer_depth": _derive_sublayer,
               "derived": _derive_measured}


def homework_questions(path=QUESTIONS_FILE) -> dict[str, Question]:
    """The homework's questions (ValueError for a kind with no derivation here)."""
    return load_questions(path, kinds=DERIVATIONS)


def derived_expression(q: Question) -> sp.Expr:
    """The exact expression the toolkit derives for `q`, under its stated assumptions."""
    return sp.piecewise_fold(assumed(DERIVATIONS[q.kind](q), q))


# ------------------------------------------------------------------------------ measurement


def _full_sizes(q: Question, point: dict) -> dict:
    """Every size a measurement needs: the grid point, then the question's substitutions."""
    base = {k: v for k, v in DEFAULTS.items()}
    base.update(point)
    subs = {SYMBOLS[k]: v for k, v in base.items()}
    sizes = dict(base)
    for name, expr in q.substitute.items():
        sizes[name] = int(expr.xreplace(subs))
    if architecture(q.model).has_attention and sizes["D"] % sizes["H"]:
        raise ValueError(f"grid point {point}: D must be divisible by H")
    return sizes


@lru_cache(maxsize=512)
def _flop_counts(cfg, phase: str, sizes: tuple) -> tuple:
    from analysis.counters import measure_flops
    from charlm.models.registry import build_model

    # The grid's models are tiny: real tensors count them faster than fake ones.
    torch.manual_seed(0)
    m = measure_flops(cfg, phase, dict(sizes), second_counters=False, model=build_model(cfg))
    return m.torch, tuple(sorted(m.by_module.items()))


def _measured_flops_phase(q: Question, cfg, phase: str, sizes: dict) -> int:
    keys = ("B", "P", "N") if phase == "generate" else ("B", "T")
    total, by_module = _flop_counts(cfg, phase, tuple((k, sizes[k]) for k in keys))
    by_module = dict(by_module)
    value = 0
    for path, sign in q.measure.items():
        value += sign * (total if path == "total" else by_module.get(path, 0))
    return value


def _measure_flops(q: Question, sizes: dict) -> int:
    # The homework's manual kernel: its backward is the matmul algebra the questions count.
    cfg = architecture(q.model).config(sizes, attention="manual")
    if q.phase == "backward":  # backward = (forward + backward + step) - forward
        value = (_measured_flops_phase(q, cfg, "train", sizes)
                 - _measured_flops_phase(q, cfg, "forward", sizes))
    else:
        value = _measured_flops_phase(q, cfg, q.phase, sizes)
    if q.per_head:
        value, rest = divmod(value, sizes["H"])
        assert rest == 0
    return value


@lru_cache(maxsize=512)
def _depth(cfg, phase: str, sizes: tuple) -> int:
    from analysis.depth import measure_depth

    return measure_depth(cfg, phase, dict(sizes), head=False).matmul_depth


def _measure_depth(q: Question, sizes: dict) -> int:
    cfg = architecture(q.model).config(sizes, attention="flash")
    keys = ("B", "P", "N") if q.phase == "generate" else ("B", "T")
    return _depth(cfg, q.phase, tuple((k, sizes[k]) for k in keys))


def _measure_sublayer(q: Question, sizes: dict) -> int:
    from analysis.depth import trace
    from charlm.models.transformer import Block, TransformerConfig

    torch.manual_seed(0)
    block = Block(TransformerConfig(vocab_size=sizes["V"], n_embd=sizes["D"],
                                    block_size=sizes["T"], n_layer=1, n_head=sizes["H"]))
    x = torch.randn(sizes["B"], sizes["T"], sizes["D"])
    module = {"attention": block.attn, "mlp": block.mlp}[q.sublayer]
    with torch.no_grad():
        return trace(lambda: module(x)).matmul_depth


def _measure_derived(q: Question, sizes: dict) -> int:
    """A "derived" question's count at `sizes` (its varied sizes; the rest held as its
    derivation held them), counted afresh by the derivation's source: the total, or the
    sum of the question's terms."""
    found = derivation_of(q)
    counted = _source(*_key(q)).count({**_source(*_key(q)).defaults, **found.fixed, **sizes})
    return sum(counted.get(t, 0) for t in q.terms) if q.terms else counted["total"]


MEASUREMENTS = {"flops": _measure_flops, "depth": _measure_depth,
                "sublayer_depth": _measure_sublayer, "derived": _measure_derived}


def _measured_expression(q: Question, derived: sp.Expr) -> sp.Expr:
    """What the measurement corresponds to: the derived terms the measured modules cover."""
    if q.kind != "flops" or not q.measured_terms:
        return derived
    widened = Question(**{**q.__dict__, "terms": q.measured_terms})
    return derived_expression(widened)


# ------------------------------------------------------------------------------ comparison


def _monomials(expr: sp.Expr) -> list[tuple[sp.Expr, dict]]:
    """[(term, {symbol name: exponent})] of an expanded expression."""
    out = []
    for term in sp.Add.make_args(sp.expand(expr)):
        if term == 0:
            continue
        _, mono = term.as_coeff_Mul()
        powers = {s.name: int(e) for s, e in mono.as_powers_dict().items() if s.is_Symbol}
        out.append((term, powers))
    return out


def _dominates(big: dict, small: dict) -> bool:
    names = set(big) | set(small)
    return big != small and all(big.get(n, 0) >= small.get(n, 0) for n in names)


def leading_part(expr: sp.Expr) -> sp.Expr:
    monos = _monomials(expr)
    keep = [t for t, p in monos if not any(_dominates(p2, p) for _, p2 in monos)]
    return sp.Add(*keep)


def compare(answer: sp.Expr, derived: sp.Expr, lower_order_ok: bool) -> tuple[str, sp.Expr]:
    """('exact' | 'lower_order' | 'different', derived - answer)."""
    diff = sp.expand(derived - answer)
    if diff == 0:
        return "exact", diff
    if lower_order_ok:
        lead = [p for _, p in _monomials(leading_part(derived))]
        if all(any(_dominates(big, p) for big in lead) for _, p in _monomials(diff)):
            return "lower_order", diff
    return "different", diff


def _show(expr) -> str:
    return str(sp.expand(expr)).replace("**", "^") if isinstance(expr, sp.Basic) else str(expr)


def _grid(symbols: set[str], grid: dict) -> list[dict]:
    names = sorted(symbols & set(grid))
    points = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    return sorted(points, key=lambda p: (sum(p.values()), sorted(p.items())))


def _value(expr: sp.Expr, point: dict) -> sp.Rational:
    return sp.nsimplify(expr.xreplace({SYMBOLS[k]: v for k, v in point.items()}))


def _number(x) -> int | float:
    x = sp.Rational(x)
    return int(x) if x.q == 1 else float(x)


def _alternatives(q: Question, answer: sp.Expr) -> list[str]:
    """Other derived quantities of the same model the answer matches (computed): the other
    phases, generation with a KV cache, and, for a model with attention, each of these with
    the causal (lower-triangle) attention count instead of the full square."""
    found = []
    if q.kind not in ("flops", "depth"):
        return found
    arch = architecture(q.model)
    variants = [(p, {}) for p in ("forward", "backward", "train", "generate")]
    if q.kind == "flops" and arch.kv_cache:
        variants.append(("generate", {"kv_cache": True}))
    if q.kind == "flops" and arch.has_attention:
        causal = [(p, {**kw, "attention_count": "causal"}) for p, kw in variants]
        # the likeliest slip first: the question's own quantity, counted causally
        causal.sort(key=lambda v: v[0] != q.phase or "kv_cache" in v[1])
        variants = causal[:1] + variants + causal[1:]
    def derive(phase, kw):
        try:
            return sp.piecewise_fold(assumed(DERIVATIONS[q.kind](q, phase, **kw), q))
        except (ValueError, TypeError):
            return None

    for phase, kw in variants:
        if phase == q.phase and not kw:
            continue
        other = derive(phase, kw)
        if other is None:
            continue
        if kw.get("attention_count") == "causal":  # say so only where the count differs
            full = derive(phase, {k: v for k, v in kw.items() if k != "attention_count"})
            if full is not None and sp.expand(other - full) == 0:
                continue
        how, _ = compare(answer, other, q.lower_order_ok)
        if how == "different":
            continue
        shown = f"{_show(other)}{'' if how == 'exact' else ', to leading order'}"
        label = phase + (" with a KV cache" if kw.get("kv_cache") else "")
        if kw.get("attention_count") == "causal":
            if phase == q.phase and not kw.get("kv_cache"):
                found.append(f"this is the causal (lower-triangle) count ({shown}); "
                             f"{FULL_SQUARE}")
            else:
                found.append(f"the answer is the derived {label} count with the causal "
                             f"(lower-triangle) attention count ({shown}); {FULL_SQUARE}")
        else:
            found.append(f"the answer is the derived {label} count ({shown})")
    return found


def _derived_rows(q: Question, answer: sp.Expr, derived: sp.Expr) -> list[tuple]:
    """A "derived" question's measured rows: at the held-out sizes of its derivation, the
    answer's and the formula's values and a fresh count (DerivationMismatch if they
    differ)."""
    from analysis.derive import evaluate

    rows = []
    for point in derivation_of(q).held_out:
        value, measured = evaluate(derived, point), MEASUREMENTS[q.kind](q, dict(point))
        if value != measured:
            raise DerivationMismatch(f"{q.id}: derived {_show(derived)} = {value} but "
                                     f"measured {measured} at {point}")
        rows.append((dict(point), evaluate(answer, point), value, measured))
    return rows


def leading_shapes(expr: sp.Expr) -> frozenset:
    """The leading monomials of `expr` without their coefficients (what O(...) compares)."""
    return frozenset(frozenset(p.items()) for _, p in _monomials(leading_part(expr)))


def _shapes_text(expr: sp.Expr) -> str:
    monos = [t.as_coeff_Mul()[1] for t, _ in _monomials(leading_part(expr))]
    return " + ".join(sorted(_show(m) for m in monos)) or "0"


def _plain_row(q: Question | None, qid: str, answer_text, verdict: Verdict, reasoning: str,
               derived: str = "") -> dict:
    """A row with nothing measured: MISSING, UNPARSED, UNKNOWN_ID."""
    return {"id": qid, "question": q.question if q else "", "answer": answer_text,
            "verdict": verdict, "derived": derived, "counterexample": None,
            "reasoning": reasoning, "section": q.section if q else "", "measured_points": 0,
            SEEN: ""}


def _unread(q: Question, answer_text, verdict: Verdict, reasoning: str) -> dict:
    return _plain_row(q, q.id, answer_text, verdict, reasoning, _show(derived_expression(q)))


def is_blank(answer_text) -> bool:
    return answer_text is None or (isinstance(answer_text, str) and not answer_text.strip())


def check_question(q: Question, answer_text: str | None, grid: dict = GRID) -> dict:
    """One row for `answer_text` (see the module docstring): never raises for the answer's
    text; DerivationMismatch or ValueError only for the question itself."""
    if is_blank(answer_text):
        return _unread(q, answer_text, Verdict.MISSING, "no answer given.")
    try:
        read = read_answer(answer_text, q.id)
    except AnswerParseError as err:
        return _unread(q, answer_text, Verdict.UNPARSED,
                       f"could not read the answer: {err.reason} (position {err.position}).")
    answer = assumed(read.expr, q)
    if answer.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        return _unread(q, answer_text, Verdict.UNPARSED,
                       "could not read the answer: it divides by zero under the stated "
                       "assumptions ("
                       + ", ".join(f"{k} = {_show(v)}" for k, v in q.substitute.items()) + ").")
    if q.kind == "derived":  # the sizes the derivation held, as stated assumptions
        from analysis.derive import symbol

        held = derivation_of(q).fixed
        answer = sp.expand(answer.xreplace({symbol(k): v for k, v in held.items()
                                            if isinstance(v, int)}))
    derived = derived_expression(q)
    measured_expr = _measured_expression(q, derived)
    how, diff = compare(answer, derived, q.lower_order_ok)
    if read.asymptotic:
        how = "asymptotic" if leading_shapes(answer) == leading_shapes(derived) else "unbounded"
    free = {s.name for s in (derived.free_symbols | answer.free_symbols)}
    if q.kind == "derived":
        rows = _derived_rows(q, answer, derived)
    else:
        rows = _measured_rows(q, answer, derived, measured_expr, free, grid)
    return _verdict_row(q, answer_text, answer, derived, measured_expr, how, diff, free, rows,
                        read)


def _measured_rows(q: Question, answer, derived, measured_expr, free: set, grid: dict) -> list:
    # Vary every size the measurement depends on and the question leaves open, not only the
    # symbols in the expressions: a constant answer (6 per layer) is measured at several T, D.
    arch = architecture(q.model)
    varied = {"T", "D"} | ({"L"} if arch.stacked else set()) | (
        {"H"} if arch.has_attention else set())
    points = _grid(free | (varied - set(q.substitute)), grid)
    rows = []
    for point in points:
        sizes = _full_sizes(q, point)
        measured = MEASUREMENTS[q.kind](q, sizes)
        expected = _value(measured_expr, point)
        if measured != expected:
            raise DerivationMismatch(
                f"{q.id}: derived {_show(measured_expr)} = {expected} but measured {measured} "
                f"at {point}")
        rows.append((point, _value(answer, point), _value(derived, point), measured))
    return rows


def _verdict_row(q: Question, answer_text: str, answer, derived, measured_expr, how, diff,
                 free: set, rows: list, read: Answer) -> dict:
    verdict = {"exact": Verdict.CORRECT, "lower_order": Verdict.CORRECT,
               "asymptotic": Verdict.ASYMPTOTIC}.get(how, Verdict.INCORRECT)
    measured_what = ("" if measured_expr == derived
                     else f" (the measurement covers {', '.join(q.measured_terms)} together)")
    reasoning = list(read.notes)
    if how == "asymptotic":
        reasoning.append(f"an O(...) bound: its leading terms ({_shapes_text(answer)}) are the "
                         f"derived expression's ({_show(leading_part(derived))}), coefficients "
                         "aside; a bound gives no count, so it is asymptotic, never correct")
    elif how == "unbounded":
        reasoning.append(f"an O(...) bound whose leading terms ({_shapes_text(answer)}) are not "
                         f"the derived expression's ({_shapes_text(derived)}; derived "
                         f"{_show(derived)})")
    elif how == "exact":
        reasoning.append("equals the derived expression exactly under the stated assumptions")
    elif how == "lower_order":
        reasoning.append(
            f"differs from the derived expression only by lower-order terms (derived - answer "
            f"= {_show(diff)}), which the homework lets answers ignore; answer/derived -> 1 "
            "as the sizes grow")
    else:
        lead_a, lead_x = leading_part(answer), leading_part(derived)
        reasoning.append(f"derived - answer = {_show(diff)}")
        if sp.expand(lead_a - lead_x) != 0:
            reasoning.append(f"leading order differs: answer {_show(lead_a)} vs derived "
                             f"{_show(lead_x)}")
        holds = [s for s in sorted(diff.free_symbols, key=lambda s: s.name)
                 if sp.expand(diff.xreplace({s: 1})) == 0]
        if holds:
            reasoning.append("holds only when " + " or ".join(f"{s.name} = 1" for s in holds))
        reasoning += _alternatives(q, answer)
    if q.kind == "derived":
        found = derivation_of(q)
        held = ", ".join(f"{k} = {v}" for k, v in found.fixed.items()) or "none"
        reasoning.append(f"derived from {found.points} counts of {found.label} "
                         f"({found.quantity}, {found.convention}; sizes held: {held}) and "
                         f"verified exactly at {len(rows)} held-out "
                         f"size{'s' if len(rows) != 1 else ''}")
    else:
        reasoning.append(f"derived agrees with measurement on {len(rows)} grid "
                         f"point{'s' if len(rows) != 1 else ''}{measured_what}")
    if q.note:
        reasoning.append(q.note.rstrip("."))
    counterexample = None
    if verdict == Verdict.INCORRECT and not read.asymptotic:
        bad = next((r for r in rows if r[1] != r[2]), None)
        if bad is None:  # the difference vanishes on the grid: search further, symbolically
            names = sorted(free)
            for combo in itertools.product(range(1, 10), repeat=len(names)):
                point = dict(zip(names, combo))
                if _value(answer, point) != _value(derived, point):
                    bad = (point, _value(answer, point), _value(derived, point), None)
                    break
        point, a, x, m = bad
        counterexample = {"sizes": {**point}, "answered": _number(a), "derived": _number(x),
                          "measured": m}
    return {
        "id": q.id,
        "question": q.question,
        "answer": answer_text,
        "verdict": verdict,
        "derived": _show(derived),
        "counterexample": counterexample,
        "reasoning": "; ".join(reasoning) + ".",
        "section": q.section,
        "measured_points": len(rows),
        SEEN: f"O({_show(read.expr)})" if read.asymptotic else _show(read.expr),
    }


# ------------------------------------------------------------------------------ files


def _extra_row(extra: ExtraCheck, qid: str, text) -> dict:
    """A row of another family: its check's, or UNPARSED / MISSING / UNKNOWN_ID."""
    asked = {row["id"]: row.get("question", "") for row in extra.questions()}
    if is_blank(text) and qid in asked:
        return {**_plain_row(None, qid, text, Verdict.MISSING, "no answer given."),
                "question": asked[qid]}
    try:
        row = extra.check(qid, text)
    except ValueError as err:
        if qid not in asked:
            return _unknown_row(qid, text, list(asked))
        reason = str(err).removeprefix(f"{qid}: ").rstrip(".")
        return {**_plain_row(None, qid, text, Verdict.UNPARSED,
                             f"could not read the answer: {reason}."), "question": asked[qid]}
    missing = set(ROW_FIELDS) - set(row)
    if missing:
        raise TypeError(f"check for {extra.prefix!r} returned a row without {missing}")
    return row


def _unknown_row(qid: str, text, ids) -> dict:
    close = difflib.get_close_matches(qid, list(ids), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return _plain_row(None, qid, text, Verdict.UNKNOWN_ID,
                      f"unknown question id {qid!r}{hint}; `charlm check-answers --list` "
                      "shows the ids.")


def check_answers(answers: dict[str, str | None], grid: dict = GRID,
                  questions: dict[str, Question] | None = None) -> pd.DataFrame:
    """One row per answer, in order (ROW_FIELDS first, then section, measured_points, read).
    No answer's text makes it raise: unreadable text is a row UNPARSED, None or blank text
    MISSING, an id no question has UNKNOWN_ID (see the module docstring). It raises only
    for the question bank (ValueError, DerivationMismatch)."""
    known = questions if questions is not None else homework_questions()
    rows = []
    for qid, text in answers.items():
        if qid in known:
            rows.append(check_question(known[qid], text, grid))
        elif (extra := _extra_for(qid)) is not None:
            rows.append(_extra_row(extra, qid, text))
        else:
            ids = list(known) + [row["id"] for e in EXTRA_CHECKS.values()
                                 for row in e.questions()]
            rows.append(_unknown_row(qid, text, ids))
    frame = pd.DataFrame(rows, columns=None if rows else [*ROW_FIELDS, SEEN])
    frame[SEEN] = frame[SEEN].fillna("") if SEEN in frame else ""
    return frame[list(ROW_FIELDS) + [c for c in frame.columns if c not in ROW_FIELDS]]


def check_file(path, grid: dict = GRID, questions_path=None) -> pd.DataFrame:
    """The answers of `path` checked against the homework's questions, or those of
    `questions_path` (a course's own TOML, in the homework file's format; a "derived"
    question's reference is derived from counts, `analysis.derive`). `path` is an answers
    TOML, or a submission the homework's template reads (`analysis.submissions`: a
    notebook, its .md/.txt/.html/.pdf export): then every template id is a row, `missing`
    where no answer was found, and the column `extracted` holds the block each answer was
    read from (what a grader checks the reading against). ValueError when the file is
    unusable: unreadable, or no id of it is a question here."""
    from analysis.submissions import load_template, read_submission

    known = None if questions_path is None else load_questions(questions_path,
                                                               kinds=DERIVATIONS)
    submission = read_submission(path)
    answers: dict[str, str | None] = dict(submission.answers)
    if submission.format != "toml":
        answers = {qid: submission.answers.get(qid) for qid in load_template().ids}
    frame = check_answers(answers, grid, questions=known)
    frame["extracted"] = frame["id"].map(lambda qid: submission.extracted.get(qid, ""))
    if frame["verdict"].eq(Verdict.UNKNOWN_ID).all():  # the file is no answers to these
        bank = questions_path or "the homework's questions"
        raise ValueError(f"{path}: no id is a question of {bank} (unknown question id "
                         f"{frame['id'].iloc[0]!r}); `charlm check-answers --list` shows the "
                         "ids, --questions FILE takes a course's own")
    return frame


def list_questions() -> pd.DataFrame:
    """Every checkable id with its question, assumptions and the symbols an answer may use."""
    symbols = ", ".join(f"{k} ({v})" for k, v in SYMBOL_MEANING.items())
    rows = [{"id": q.id, "question": q.question, "assumptions": "; ".join(q.assumptions),
             "symbols": symbols} for q in homework_questions().values()]
    for extra in EXTRA_CHECKS.values():
        rows += extra.questions()
    return pd.DataFrame(rows)


__all__ = ["DerivationMismatch", "EXTRA_CHECKS", "ExtraCheck", "GRID", "QUICK_GRID",
           "ROW_FIELDS", "SEEN", "check_answers", "check_file", "check_question", "compare",
           "derived_expression", "homework_questions", "is_blank", "leading_part",
           "leading_shapes", "list_questions"]
