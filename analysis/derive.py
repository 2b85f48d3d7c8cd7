"""Formulas derived from measurement: the exact sympy polynomial of a count in a model's sizes.

For a fixed architecture, matmul FLOPs, parameters and bytes are polynomials in the sizes
with small degrees (T^2 for attention scores, D^2 for projections, linear in B, L, V), and the
counters give them exactly, as integers. So the polynomial is recovered exactly, not fitted:

1. **Degrees.** Along each varied size, the others held at a base point, the count at
   start, start + step, ... until its (d+1)-th finite differences are zero twice running
   (d <= MAX_DEGREE; otherwise the count is not a polynomial of low degree in that size, and
   the derivation says so).
2. **Grid.** On the tensor-product grid of d_i + 1 values per size there is exactly one
   polynomial of degree <= d_i in each size through the counts. Its coefficients come from
   one small Vandermonde system per size, solved in exact rational arithmetic
   (`fractions.Fraction`), axis after axis.
3. **Verification.** The formula is then evaluated at HELD_OUT random sizes, most of them
   outside the grid, and compared with fresh counts: `verified` only when every held-out
   count (the total and each named term) matches exactly; otherwise the failures say
   which size and what was counted against what the formula gives (a size that changes the
   code path, a count that is not a polynomial).

Depth (critical-path matmuls plus parallel-scan steps, `analysis.depth`) is linear per size
with ceil(log2 T) in the basis of the sequence length: the basis per size is {1, x}, with
ceil(log2 x) added for the sizes in `log_sizes`, and tensor products across sizes.

What is counted comes from a `Source`: a built-in model (`builtin_source`: the quantities of
`analysis.quantities`, counted as `charlm flops` counts them) or any model factory
(`factory_source`, `analysis.factories`: forward or train, one op trace each). The named
terms are the trace's per-module counts grouped by role: a built-in's formula terms
(`Architecture.term_modules`), an outside model's module paths with layer indices folded
(`h.0.attn.c_attn` and `h.1.attn.c_attn` are `h.*.attn.c_attn`).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

import sympy as sp

from analysis.formulas import SYMBOLS, convention

MEASURES = ("flops", "params", "bytes", "depth")
MAX_DEGREE = 4  # the highest power of one size a count may have (attention: 2)
HELD_OUT = 4  # random sizes each derivation is verified at
START = 2  # the smallest value of a varied size, unless a step says otherwise
READING_ORDER = ("L", "B", "T", "P", "N", "C", "E", "D", "H", "V")  # how monomials read
Count = dict  # {"total": int, term name: int, ...}


@dataclass(frozen=True)
class Source:
    """What a derivation counts: `count(sizes) -> {"total": n, term: n, ...}` with every
    size the model needs (`defaults` fills the ones not varied or fixed); `steps`: sizes the
    model takes only in multiples (D of H heads), unless the caller gives a step;
    `log_sizes`: sizes whose ceil(log2) joins a depth basis."""

    label: str
    quantity: str
    measure: str
    count: Callable[[dict[str, int]], Count]
    defaults: dict[str, int]
    convention: str
    steps: Callable[[dict[str, int]], dict[str, int]] = lambda sizes: {}
    log_sizes: tuple[str, ...] = ()
    sizes: tuple[str, ...] | None = None  # every size it takes (None: those of defaults)
    required: tuple[str, ...] = ()  # sizes with no default: each must be varied or fixed
    tensors: str = "fake"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Derivation:
    """A derived formula. formula: the total, in the size symbols (`analysis.formulas`
    symbols where the names match, so it compares with the hand-written formulas); terms:
    one formula per named term (empty where the source names none); verified: every
    held-out count matched; failures: {"sizes", "what", "counted", "formula"} per mismatch,
    or {"what": "degree", ...} where a count was not a low-degree polynomial; points: the
    distinct sizes counted (grid, degree lines and held-out); grid: the values per size the
    coefficients were solved on; held_out: the verification sizes."""

    label: str
    quantity: str
    measure: str
    variables: tuple[str, ...]
    fixed: dict[str, int]
    formula: sp.Expr | None
    terms: dict[str, sp.Expr]
    verified: bool
    failures: tuple[dict, ...]
    points: int
    grid: dict[str, tuple[int, ...]]
    held_out: tuple[dict, ...]
    degrees: dict[str, int]
    seconds: float
    convention: str
    tensors: str
    notes: tuple[str, ...] = ()

    def reading(self) -> str:
        return reading(self.formula) if self.formula is not None else "(none)"

    def factored(self) -> str:
        return factored(self.formula) if self.formula is not None else "(none)"

    def latex(self) -> str:
        return latex(self.formula) if self.formula is not None else ""

    def to_dict(self) -> dict:
        """JSON-ready: `formula` a string sympy parses (`**` for powers)."""
        return {
            "target": self.label, "quantity": self.quantity, "measure": self.measure,
            "variables": list(self.variables), "fixed": self.fixed,
            "formula": str(self.formula) if self.formula is not None else None,
            "reading": self.reading(), "factored": self.factored(), "latex": self.latex(),
            "terms": {k: {"formula": str(v), "reading": reading(v)}
                      for k, v in self.terms.items()},
            "verified": self.verified, "failures": list(self.failures),
            "points": self.points, "grid": {k: list(v) for k, v in self.grid.items()},
            "held_out": list(self.held_out), "degrees": self.degrees,
            "seconds": self.seconds, "convention": self.convention,
            "tensors": self.tensors, "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------- symbols


def symbol(name: str) -> sp.Symbol:
    """The size's symbol: `analysis.formulas`' own for its names (positive integers)."""
    return SYMBOLS.get(name) or sp.Symbol(name, positive=True, integer=True)


def ceil_log2(x: int) -> int:
    return (int(x) - 1).bit_length()


def _ceil_log2_expr(s: sp.Symbol) -> sp.Expr:
    return sp.ceiling(sp.log(s, 2))


# ---------------------------------------------------------------------------- exact algebra


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact inverse by Gauss-Jordan elimination; ValueError if singular."""
    n = len(matrix)
    a = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col] != 0), None)
        if pivot is None:
            raise ValueError("singular basis matrix")
        a[col], a[pivot] = a[pivot], a[col]
        p = a[col][col]
        a[col] = [x / p for x in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
    return [row[n:] for row in a]


def _rank(rows: list[list[Fraction]]) -> int:
    a = [r[:] for r in rows]
    rank, cols = 0, len(a[0]) if a else 0
    for col in range(cols):
        pivot = next((r for r in range(rank, len(a)) if a[r][col] != 0), None)
        if pivot is None:
            continue
        a[rank], a[pivot] = a[pivot], a[rank]
        for r in range(len(a)):
            if r != rank and a[r][col] != 0:
                f = a[r][col] / a[rank][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[rank])]
        rank += 1
    return rank


@dataclass(frozen=True)
class Axis:
    """One varied size: its basis functions (powers 0..degree, and ceil(log2 x) if `log`)
    and the values it is counted at."""

    name: str
    degree: int
    log: bool
    values: tuple[int, ...] = ()

    def features(self, x: int) -> list[Fraction]:
        out = [Fraction(x) ** k for k in range(self.degree + 1)]
        return out + ([Fraction(ceil_log2(x))] if self.log else [])

    def exprs(self) -> list[sp.Expr]:
        s = symbol(self.name)
        out = [s**k for k in range(self.degree + 1)]
        return out + ([_ceil_log2_expr(s)] if self.log else [])

    @property
    def size(self) -> int:
        return self.degree + 1 + int(self.log)


def choose_values(axis: Axis, candidates: Sequence[int]) -> tuple[int, ...]:
    """The first values of `candidates` whose basis rows are independent, as many as the
    axis has basis functions (ValueError when the candidates run out)."""
    chosen: list[int] = []
    rows: list[list[Fraction]] = []
    for v in candidates:
        trial = rows + [axis.features(v)]
        if _rank(trial) == len(trial):
            chosen.append(v)
            rows = trial
            if len(chosen) == axis.size:
                return tuple(chosen)
    raise ValueError(f"size {axis.name}: not enough values to solve for its basis")


def solve(axes: Sequence[Axis], values: Mapping[tuple[int, ...], int]) -> sp.Expr:
    """The unique combination of the axes' tensor-product basis through `values` (grid
    index tuple -> count): each axis's Vandermonde system inverted once and applied along
    that axis, in exact arithmetic."""
    coef: dict[tuple[int, ...], Fraction] = {k: Fraction(v) for k, v in values.items()}
    for a, axis in enumerate(axes):
        inv = _inverse([axis.features(v) for v in axis.values])
        nxt: dict[tuple[int, ...], Fraction] = {}
        for idx in coef:
            if idx[a] != 0:
                continue
            fiber = [coef[idx[:a] + (k,) + idx[a + 1:]] for k in range(axis.size)]
            for j in range(axis.size):
                nxt[idx[:a] + (j,) + idx[a + 1:]] = sum(
                    (inv[j][k] * fiber[k] for k in range(axis.size)), Fraction(0))
        coef = nxt
    exprs = [axis.exprs() for axis in axes]
    total = sp.Integer(0)
    for idx, c in coef.items():
        if c:
            mono = sp.Mul(*(exprs[a][i] for a, i in enumerate(idx)))
            total += sp.Rational(c.numerator, c.denominator) * mono
    return sp.expand(total)


def evaluate(expr: sp.Expr, sizes: Mapping[str, int]) -> Fraction:
    """The formula's exact value at `sizes` (every free symbol must be given)."""
    subs = {symbol(k): sp.Integer(v) for k, v in sizes.items()
            if isinstance(v, int) and not isinstance(v, bool)}
    value = sp.nsimplify(expr.xreplace(subs))
    if not value.is_Rational:
        raise ValueError(f"{expr} at {dict(sizes)} is not a number: {value}")
    return Fraction(int(value.p), int(value.q))


def degree_of(counts: Sequence[int]) -> int | None:
    """The degree of equally spaced counts: d when the (d+1)-th differences are all zero
    and there are at least two of them; None when these counts do not show it yet."""
    level = list(counts)
    for k in range(len(counts)):
        if len(level) >= 2 and all(x == 0 for x in level):
            return max(k - 1, 0)
        level = [b - a for a, b in zip(level, level[1:])]
    return None


# ---------------------------------------------------------------------------- derivation


def _progress_none(message: str) -> None:
    return None


def derive(source: Source, variables: Sequence[str], fixed: Mapping[str, int] | None = None,
           steps: Mapping[str, int] | None = None, starts: Mapping[str, int] | None = None,
           held_out: int = HELD_OUT, seed: int = 0, max_degree: int = MAX_DEGREE,
           progress: Callable[[str], None] | None = None) -> Derivation:
    """Derive `source`'s count as an exact formula in `variables` (see the module
    docstring). fixed: sizes held at a value (others not varied take source.defaults);
    steps: a varied size takes only multiples of its step (default: the source's, e.g.
    D in multiples of H; start = the step); starts: the smallest value per size (default
    START, or the step). ValueError for unusable requests (a size the source does not
    take, a size both varied and fixed, a count the model refuses at a grid size)."""
    t0 = time.perf_counter()
    say = progress or _progress_none
    variables = tuple(variables)
    fixed = dict(fixed or {})
    _check_request(source, variables, fixed, held_out)
    base_sizes = {**source.defaults, **fixed}
    step_of = {**source.steps(base_sizes), **(steps or {})}
    for name, step in step_of.items():
        if name in variables and (not isinstance(step, int) or step < 1):
            raise ValueError(f"step {name}={step!r}: a step is a positive integer")
    start_of = {v: (starts or {}).get(v, max(START, step_of.get(v, 1))) for v in variables}
    for v in variables:
        step = step_of.get(v, 1)
        if start_of[v] % step:
            raise ValueError(f"start {v}={start_of[v]} is not a multiple of its step {step}")

    cache: dict[tuple, Count] = {}

    def count(point: Mapping[str, int]) -> Count:
        sizes = {**base_sizes, **point}
        key = tuple(sorted(sizes.items()))
        if key not in cache:
            try:
                cache[key] = {k: int(v) for k, v in source.count(sizes).items()}
            except ValueError as exc:
                shown = ", ".join(f"{k}={sizes[k]}" for k in variables)
                raise ValueError(f"{source.label} could not be counted at {shown}: {exc}"
                                 + _step_hint(variables, step_of)) from None
            if len(cache) % 10 == 0:
                say(f"derive: {len(cache)} sizes counted ({time.perf_counter() - t0:.1f} s)")
        return cache[key]

    def seq(v: str, k: int) -> int:
        return start_of[v] + k * step_of.get(v, 1)

    base = {v: seq(v, 2) for v in variables}
    failures: list[dict] = []
    axes: list[Axis] = []
    for v in variables:
        log = source.measure == "depth" and v in source.log_sizes
        if source.measure == "depth":
            degree: int | None = 1
        else:
            line: list[int] = []
            degree = None
            while degree is None and len(line) < max_degree + 3:
                line.append(count({**base, v: seq(v, len(line))})["total"])
                degree = degree_of(line) if len(line) >= 4 else None
            if degree is None:
                failures.append({"what": "degree", "size": v, "counts": line,
                                 "message": f"along {v} the counts {line} are not a "
                                            f"polynomial of degree <= {max_degree}"})
                degree = max_degree
        axis = Axis(v, degree, log)
        axes.append(Axis(v, degree, log,
                         choose_values(axis, [seq(v, k) for k in range(axis.size + 8)])))
    say(f"derive: degrees {', '.join(f'{a.name} {a.degree}' for a in axes)}; counting the "
        f"grid of {math.prod(a.size for a in axes)} sizes")
    grid_counts: dict[tuple[int, ...], Count] = {}
    for idx in product(*(range(a.size) for a in axes)):
        grid_counts[idx] = count({a.name: a.values[i] for a, i in zip(axes, idx)})
    names = sorted({k for c in grid_counts.values() for k in c} - {"total"})
    formula = solve(axes, {i: c["total"] for i, c in grid_counts.items()})
    terms = {n: solve(axes, {i: c.get(n, 0) for i, c in grid_counts.items()}) for n in names}
    zero = [n for n, t in terms.items() if t == 0]  # counted nowhere on the grid

    rng = random.Random(seed)
    checks = []
    for _ in range(held_out):
        point = {}
        for a in axes:
            step, top = step_of.get(a.name, 1), max(a.values)
            hi = max(3 * top, start_of[a.name] + 8 * step)
            point[a.name] = start_of[a.name] + step * rng.randint(0, (hi - start_of[a.name])
                                                                   // step)
        checks.append(point)
    for point in checks:
        counted = count(point)
        for what in ("total", *names):
            expr = formula if what == "total" else terms[what]
            want = evaluate(expr, {**base_sizes, **point})
            got = counted.get(what, 0)
            if want != got:
                failures.append({"what": what, "sizes": dict(point), "counted": got,
                                 "formula": str(want)})
        extra = sorted(set(counted) - {"total", *names})
        if extra:
            failures.append({"what": "terms", "sizes": dict(point),
                             "message": f"terms not seen on the grid: {', '.join(extra)}"})
    shown_fixed = {k: v for k, v in base_sizes.items() if k not in variables}
    return Derivation(
        label=source.label, quantity=source.quantity, measure=source.measure,
        variables=variables, fixed=shown_fixed, formula=formula,
        terms={n: t for n, t in terms.items() if n not in zero},
        verified=not failures, failures=tuple(failures), points=len(cache),
        grid={a.name: a.values for a in axes}, held_out=tuple(checks),
        degrees={a.name: a.degree for a in axes}, seconds=time.perf_counter() - t0,
        convention=source.convention, tensors=source.tensors, notes=source.notes)


def _check_request(source: Source, variables: tuple, fixed: dict, held_out: int) -> None:
    if source.measure not in MEASURES:
        raise ValueError(f"unknown measure {source.measure!r}; choose from "
                         f"{', '.join(MEASURES)}")
    if not variables:
        raise ValueError("give at least one size to vary")
    takes = list(source.sizes if source.sizes is not None else source.defaults)
    for name in (*variables, *fixed):
        if name not in takes:
            raise ValueError(f"{source.label} takes no size {name}; its sizes: "
                             f"{', '.join(takes) or 'none'}")
    missing = [k for k in source.required if k not in variables and k not in fixed]
    if missing:
        raise ValueError(f"{source.label} needs size {missing[0]}: vary it or fix it")
    twice = sorted(set(variables) & set(fixed)) or sorted(
        {v for v in variables if variables.count(v) > 1})
    if twice:
        raise ValueError(f"size {twice[0]} is both varied and fixed, or varied twice")
    for name, value in fixed.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"fixed size {name}={value!r}: a size is a positive integer")
    if isinstance(held_out, bool) or not isinstance(held_out, int) or held_out < 1:
        raise ValueError(f"held_out must be a positive integer, got {held_out!r}")


def _step_hint(variables: tuple, steps: Mapping[str, int]) -> str:
    unstepped = [v for v in variables if steps.get(v, 1) == 1]
    if not unstepped:
        return ""
    names = " or ".join(unstepped)
    return (f" (if the model takes {names} only in multiples of some K, give a step, "
            f"e.g. --step {unstepped[-1]}=K)")


# ---------------------------------------------------------------------------- sources


def _fold_indices(path: str) -> str:
    """A module path with its layer indices folded: 'h.0.attn' -> 'h.*.attn'."""
    return re.sub(r"(^|\.)\d+(?=\.|$)", r"\1*", path)


def _builtin_terms(arch, by_module: dict[str, int], total: int) -> dict[str, int]:
    """A built-in's FLOPs per formula term group (terms sharing a module pattern are one
    group, 'scores+weighted_values'), and 'other' for what no group holds."""
    from analysis.counters import exclusive_module_flops

    own = exclusive_module_flops(by_module)
    groups: dict[str, list[str]] = {}
    for term, pattern in arch.term_modules.items():
        groups.setdefault(pattern, []).append(term)
    out: dict[str, int] = {}
    for pattern, names in groups.items():
        regex = re.compile(pattern)
        out["+".join(names)] = sum(n for name, n in own.items() if regex.search(name))
    rest = total - sum(out.values())
    if rest:
        out["other"] = rest
    return out


def builtin_source(name: str, quantity: str = "forward", measure: str = "flops",
                   kv_cache: bool = False, kernel: str | None = None) -> Source:
    """A built-in model (`analysis.architectures`): `quantity` as `analysis.quantities` runs
    it (params, forward, backward, train, generate), counted as `charlm flops` and
    `charlm depth` count it. Sizes: B, V, D and the model's own (E, L, H, C), with T for a
    pass over a sequence or P, N for generate. Terms: the formula's term groups for FLOPs
    of forward and generate, matmul and scan for depth."""
    from analysis.architectures import architecture
    from analysis.quantities import QUANTITIES, REQUIRED_SIZES, check_request

    arch = architecture(name)
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; choose from {', '.join(QUANTITIES)}")
    if measure == "params":
        quantity = "params"
    if quantity == "params" and measure not in ("params",):
        raise ValueError("quantity params has only the measure params")
    if kernel is not None and not arch.has_attention:
        raise ValueError(f"kernel={kernel!r}: {name} has no attention kernel")
    if kernel is not None and kernel not in arch.attention_kinds:
        raise ValueError(f"kernel={kernel!r}: choose from {', '.join(arch.attention_kinds)}")
    kernel = kernel or (arch.attention_kinds[0] if arch.has_attention else None)
    defaults = {k: v for k, v in arch.factory_sizes.items() if v is not None}
    defaults.pop("T", None)
    used = set(REQUIRED_SIZES[quantity]) | {"V", "D", "E", "L", "H", "C"}
    if quantity in ("forward", "backward", "train"):
        defaults["T"] = 20
    elif quantity == "generate":
        defaults.update(P=4, N=3)
    defaults = {k: v for k, v in defaults.items() if k in used}
    defaults.setdefault("B", 1)
    takes = list(defaults)
    if quantity == "params":
        defaults.pop("B", None)
        takes.remove("B")
    if arch.windowed:  # the context window: given, or one that fits the sequence (no slide)
        takes.append("C")
        if quantity == "params":
            defaults["C"] = 20

    def count(sizes: dict[str, int]) -> Count:
        cfg = arch.config(sizes, attention=kernel)
        run = {k: sizes[k] for k in REQUIRED_SIZES[quantity]}
        check_request(cfg, quantity, run, kv_cache)
        if measure == "depth":
            from analysis.depth import measure_depth

            d = measure_depth(cfg, quantity, run, kv_cache)
            return {"total": d.depth, "matmul": d.matmul_depth, "scan": d.scan_depth}
        if measure == "bytes":
            from analysis.optrace import trace_quantity

            return {"total": trace_quantity(cfg, quantity, run, kv_cache).bytes}
        from analysis.counters import measure_flops

        m = measure_flops(cfg, quantity, run, kv_cache, second_counters=False,
                          tensors=_builtin_tensors(arch, quantity))
        if quantity == "params":
            return {"total": m.torch}
        out = {"total": m.torch}
        if quantity in ("forward", "generate"):
            out.update(_builtin_terms(arch, m.by_module, m.torch))
        return out

    def steps(sizes: dict[str, int]) -> dict[str, int]:
        return {"D": sizes["H"]} if arch.has_attention and "H" in sizes else {}

    label = name + (f" ({kernel} attention)" if kernel else "")
    return Source(label=label, quantity=quantity + (" (KV cache)" if kv_cache else ""),
                  measure=measure, count=count, defaults=defaults, sizes=tuple(takes),
                  convention=_convention(measure, arch.has_attention), steps=steps,
                  log_sizes=("T", "P"), tensors=_builtin_tensors(arch, quantity)
                  if measure in ("flops", "params") else ("real" if measure == "depth"
                                                          else "fake"),
                  notes=_notes(quantity, measure))


def _builtin_tensors(arch, quantity: str) -> str:
    """Real tensors: at the small sizes a derivation counts at, a real model runs 3-6x
    faster than one on fake tensors or the meta device (transformer train, 4 sizes varied:
    4.0 s against 16.6 s fake, 13.0 s meta), and the counts are the same (tested in
    tests/test_counters.py); params are counted on fake ones (nothing runs)."""
    return "fake" if quantity == "params" else "real"


def _convention(measure: str, attention: bool) -> str:
    if measure == "flops":
        return convention("full" if attention else None)
    if measure == "params":
        return convention(tier="params")
    if measure == "bytes":
        return "bytes: inputs read + outputs written by every op, unfused (the op trace)"
    from analysis.depth_formulas import CONVENTION, SCAN_CONVENTION

    return f"{CONVENTION}; {SCAN_CONVENTION}; total = matmul + scan"


def _notes(quantity: str, measure: str) -> tuple[str, ...]:
    if measure == "flops" and quantity in ("backward", "train"):
        return ("named terms: forward quantities only (PyTorch's module tracker places "
                "backward ops on whatever modules are still active)",)
    return ()


def factory_source(factory: Callable, label: str, quantity: str = "forward",
                   measure: str = "flops", optimizer: str | None = None,
                   tensors: str = "fake") -> Source:
    """Any model factory (`analysis.factories`): `quantity` forward or train as
    `charlm profile` runs it, one op trace per count, on fake tensors (the model built
    inside PyTorch's FakeTensorMode: any size, nothing allocated) or, with tensors="real",
    real ones (for a model that reads its tensors' values). Sizes: the factory's keyword
    arguments with their defaults (a size without one must be fixed or varied). Terms: the
    forward's FLOPs per module path, layer indices folded."""
    from analysis.counters import single_thread
    from analysis.depth import depth_of
    from analysis.factories import OPTIMIZERS, QUANTITIES, build, call, check_call
    from analysis.factories import factory_sizes as sizes_of
    from analysis.quantities import shapes_only
    from analysis.trace import trace
    from charlm.models.registry import count_parameters

    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r} for a model factory; choose from "
                         f"{', '.join(QUANTITIES)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from adam")
    if optimizer and quantity != "train":
        raise ValueError(f"optimizer={optimizer!r} applies only to quantity 'train'")
    if tensors not in ("fake", "real"):
        raise ValueError(f"tensors must be fake or real, got {tensors!r}")
    named = sizes_of(factory)
    if named is None:
        raise ValueError(f"{label} takes **kwargs: derive needs its sizes named in its "
                         "signature")
    # a keyword whose default is no integer (a flag) is passed as it is and never varied
    defaults = {k: v for k, v in named.items() if v is not inspect.Parameter.empty}

    def count(sizes: dict[str, int]) -> Count:
        import torch

        fake = shapes_only() if tensors == "fake" else contextlib.nullcontext()
        with single_thread(), fake:
            torch.manual_seed(0)
            model, inputs = build(factory, label, sizes, flag="--fix")
            args = check_call(model, inputs)
            if measure == "params":
                return {"total": count_parameters(model)}
            try:
                tr = trace(call(model, args, quantity, optimizer), model,
                           tensors="fake" if tensors == "fake" else "real")
            except Exception as exc:  # noqa: BLE001 - the user's model: its error, one line
                hint = " (try tensors real: --tensors real)" if tensors == "fake" else ""
                raise ValueError(f"model(*inputs) raised {type(exc).__name__}: {exc}{hint}"
                                 ) from exc
        if measure == "bytes":
            return {"total": tr.bytes}
        if measure == "depth":
            d = depth_of(tr)
            return {"total": d.depth, "matmul": d.matmul_depth, "scan": d.scan_depth}
        out = {"total": tr.flops}
        if quantity == "forward":
            for op in tr.ops:
                if op.flops and op.phase == "forward":
                    key = _fold_indices(op.module) or "(outside any module)"
                    out[key] = out.get(key, 0) + op.flops
        return out

    seq = [k for k in defaults if k in ("T", "seq_len", "n_positions", "block_size")]
    return Source(label=label, quantity=quantity, measure=measure, count=count,
                  defaults=defaults, sizes=tuple(named),
                  required=tuple(k for k in named if k not in defaults),
                  convention=_factory_convention(measure), log_sizes=tuple(seq) or ("T",),
                  tensors=tensors, notes=_notes(quantity, measure))


def _factory_convention(measure: str) -> str:
    if measure == "flops":
        return ("matmul FLOPs (PyTorch's formulas, the CPU SDPA mapping), 2 per "
                "multiply-add, attention the full T x T square as the kernels compute it")
    return _convention(measure, False)


# ---------------------------------------------------------------------------- printing


def _base_key(base: sp.Expr) -> tuple:
    """Where a factor goes in a monomial: the reading order of its size, a size's
    ceil(log2) after the size itself."""
    syms = sorted(base.free_symbols, key=lambda s: s.name)
    name = syms[0].name if syms else ""
    rank = READING_ORDER.index(name) if name in READING_ORDER else len(READING_ORDER)
    return (rank, name, 0 if base.is_Symbol else 1)


def _monomials(expr: sp.Expr) -> list[tuple[sp.Rational, list[tuple[sp.Expr, int]]]]:
    """[(coefficient, [(base, exponent), ...])] of the expanded expression, highest total
    degree first, then in reading order."""
    out = []
    for term in sp.Add.make_args(sp.expand(expr)):
        if term == 0:
            continue
        coeff, rest = term.as_coeff_Mul()
        factors = sorted(((b, int(e)) for b, e in rest.as_powers_dict().items()
                          if b != 1), key=lambda f: _base_key(f[0]))
        out.append((sp.Rational(coeff), factors))
    order = [*READING_ORDER, *sorted({b.name for _, f in out for b, _ in f if b.is_Symbol}
                                     - set(READING_ORDER))]

    def exponents(factors) -> list[int]:  # the widths' powers first: 24LTD^2 before 4LT^2D
        power = {_base_key(b)[1:]: e for b, e in factors}
        return [-power.get((name, k), 0) for name in reversed(order) for k in (0, 1)]

    out.sort(key=lambda m: (-sum(e for _, e in m[1]), exponents(m[1])))
    return out


def _factor_text(base: sp.Expr, exp: int, tex: bool) -> str:
    if base.is_Symbol:
        name = base.name
    else:  # ceiling(log(x)/log(2))
        (s,) = base.free_symbols
        name = (r"\lceil \log_2 " + s.name + r" \rceil") if tex else f"ceil(log2 {s.name})"
    if exp == 1:
        return name
    return f"{name}^{{{exp}}}" if tex else f"{name}^{exp}"


def _mono_text(coeff: sp.Rational, factors, tex: bool) -> str:
    body = ""
    for b, e in factors:  # a ceil(log2) factor stands apart: '2L ceil(log2 T)'
        piece = _factor_text(b, e, tex)
        body += (" " if body and (tex or not b.is_Symbol) else "") + piece
    magnitude = abs(coeff)
    if not body:
        p, q = magnitude.p, magnitude.q
        return (rf"\frac{{{p}}}{{{q}}}" if tex else f"{p}/{q}") if q != 1 else str(p)
    if magnitude.q != 1:
        p, q = magnitude.p, magnitude.q
        lead = rf"\frac{{{p}}}{{{q}}} " if tex else f"{p}/{q} "
    else:
        apart = tex or not factors[0][0].is_Symbol  # '2 ceil(log2 T)', not '2ceil(log2 T)'
        lead = "" if magnitude == 1 else f"{magnitude.p}" + (" " if apart else "")
    return lead + body


def _join(monos, tex: bool) -> str:
    text = ""
    for i, (coeff, factors) in enumerate(monos):
        piece = _mono_text(coeff, factors, tex)
        if i == 0:
            text = ("-" if coeff < 0 else "") + piece
        else:
            text += (" - " if coeff < 0 else " + ") + piece
    return text or "0"


def reading(expr: sp.Expr) -> str:
    """'24LTD^2 + 4LT^2D + 2TDV': the expanded formula, sizes in reading order."""
    return _join(_monomials(expr), tex=False)


def latex(expr: sp.Expr) -> str:
    """The expanded formula as LaTeX ('24 L T D^{2} + ...')."""
    return _join(_monomials(expr), tex=True)


def factored(expr: sp.Expr) -> str:
    """The formula grouped by the first size (in reading order) that two or more of its
    monomials share, for reading: 'L(24TD^2 + 4T^2D) + 2TDV'."""
    monos = _monomials(expr)
    if len(monos) < 2:
        return _join(monos, tex=False)
    for name in [*READING_ORDER, *sorted({b.name for _, f in monos for b, _ in f
                                          if b.is_Symbol} - set(READING_ORDER))]:
        has = [m for m in monos if any(b.is_Symbol and b.name == name for b, _ in m[1])]
        if len(has) >= 2:
            break
    else:
        return _join(monos, tex=False)
    sym = symbol(name)
    inner = [(c, [(b, e - 1) if b == sym else (b, e) for b, e in f]) for c, f in has]
    inner = [(c, [(b, e) for b, e in f if e]) for c, f in inner]
    rest = [m for m in monos if m not in has]
    head = f"{name}({_join(inner, tex=False)})"
    if not rest:
        return head
    tail = _join(rest, tex=False)  # '-2D^2 + ...' when its first monomial is negative
    return head + (f" - {tail[1:]}" if tail.startswith("-") else f" + {tail}")


__all__ = ["Derivation", "HELD_OUT", "MAX_DEGREE", "MEASURES", "Source", "builtin_source",
           "ceil_log2", "degree_of", "derive", "evaluate", "factored", "factory_source",
           "latex", "reading", "solve", "symbol"]
