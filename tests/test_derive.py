"""analysis.derive and `charlm derive`: formulas derived from counts, against formulas derived by
hand (analysis.formulas, analysis.depth_formulas, and the toy models' formulas worked out in
the comments below), on the built-ins and on model factories written here.

Sizes not varied are fixed small where a derivation would otherwise run the model at its
default widths (D=256): the counts are exact at any size, and the whole file stays fast.
"""

import json
import textwrap
from fractions import Fraction
from itertools import product

import pytest
import sympy as sp
import torch
from torch import nn

from analysis.architectures import architecture
from analysis.derive import (
    Axis,
    builtin_source,
    degree_of,
    derive,
    factored,
    factory_source,
    latex,
    reading,
    solve,
)
from analysis.factories import load_factory
from analysis.formulas import SYMBOLS
from analysis.reconcile import formula_for
from charlm.cli import main

B, T, D, E, L, H, V, N, P, C = (SYMBOLS[k] for k in "BTDELHVNPC")
F = sp.Symbol("F", positive=True, integer=True)  # the toy's hidden width (derive's own symbol)
SMALL = {"D": 8, "E": 4, "V": 8}  # the widths a depth derivation holds fixed


def _fixed_small(name: str, vary: str) -> dict:
    """SMALL for the widths the built-in takes and the derivation does not vary."""
    takes = builtin_source(name).sizes
    return {k: v for k, v in SMALL.items() if k in takes and k not in vary.split(",")}


def _at(expr: sp.Expr, fixed: dict) -> sp.Expr:
    """The hand formula at the derivation's fixed sizes."""
    return sp.expand(expr.xreplace({SYMBOLS[k]: sp.Integer(v) for k, v in fixed.items()
                                    if k in SYMBOLS}))


def _first_branch(expr: sp.Expr) -> sp.Expr:
    """A windowed generate's regime where the context window holds all P + N - 1 positions
    (what derive counts when C is not given)."""
    return expr.replace(sp.Piecewise, lambda *args: args[0][0])


def _kernel(name: str, kernel: str | None = None) -> str | None:
    return (kernel or "flash") if architecture(name).has_attention else None


# ------------------------------------------------------------------ built-ins: FLOPs, params

# (model, quantity, varied, fixed, kv_cache, kernel): every built-in, every quantity; each
# vary set 2-5 sizes (D, with its D^2 terms, in most), the widths not varied fixed small
# where the model would otherwise run at its default D=256 (sizes neither varied nor fixed
# take the model's defaults, which the hand formula takes from Derivation.fixed)
W = {"E": 4, "V": 8}
FLOP_CASES = [
    ("rnn", "params", "D,E,V", {}, False, None),
    ("rnn", "forward", "B,T,D,E,V", {}, False, None),
    ("rnn", "backward", "T,D", {}, False, None),
    ("rnn", "train", "T,D", W, False, None),
    ("rnn", "generate", "P,N,D", W, False, None),
    ("mlrnn", "params", "D,E,L,V", {}, False, None),
    ("mlrnn", "forward", "T,D,L", W, False, None),
    ("mlrnn", "backward", "T,L", {"D": 8, **W}, False, None),
    ("mlrnn", "train", "T,D", W, False, None),
    ("mlrnn", "generate", "P,N,L", {"D": 8, **W}, False, None),
    ("gru", "params", "D,E,L,V", {}, False, None),
    ("gru", "forward", "T,D,E,L", {"V": 8}, False, None),
    ("gru", "backward", "T,D", W, False, None),
    ("gru", "train", "T,D", W, False, None),
    ("gru", "generate", "P,N,D", W, False, None),
    ("lstm", "params", "D,E,L,V", {}, False, None),
    ("lstm", "forward", "T,D,L", W, False, None),
    ("lstm", "backward", "T,D", W, False, None),
    ("lstm", "train", "T,D", W, False, None),
    ("lstm", "generate", "P,N,D", W, False, None),
    ("mingru", "params", "D,L,V", {}, False, None),
    ("mingru", "forward", "T,D,L,V", {}, False, None),
    ("mingru", "backward", "T,L", {"D": 8, "V": 8}, False, None),
    ("mingru", "train", "T,D", {"V": 8}, False, None),
    ("mingru", "generate", "P,N,D", {"V": 8}, False, None),
    ("transformer", "params", "D,L,V", {}, False, None),
    # transformer forward in T,D,L,V: test_transformer_forward_in_four_sizes below
    ("transformer", "backward", "T,D", {"V": 8}, False, None),
    ("transformer", "backward", "T,D", {"V": 8}, False, "manual"),  # 8LT^2D, not 10
    ("transformer", "train", "T,D", {"L": 2, "V": 8}, False, None),
    ("transformer", "generate", "P,N,D", {"V": 8}, False, None),
    ("transformer", "generate", "P,N,D", {"V": 8}, True, None),
]


def _hand_flops(name, quantity, kv_cache, kernel) -> tuple[sp.Expr, dict[str, sp.Expr]]:
    terms = formula_for(name, quantity, _kernel(name, kernel), kv_cache)[0]
    return (_first_branch(terms.total),
            {k: _first_branch(v) for k, v in terms.terms.items()})


def _check_builtin_terms(name, found, hand_terms) -> None:
    """Each term group the derivation names (the architecture's term_modules, terms sharing
    a module pattern joined by '+') is the sum of the hand formula's terms in it."""
    groups: dict[str, list[str]] = {}
    for term, pattern in architecture(name).term_modules.items():
        groups.setdefault(pattern, []).append(term)
    names = ["+".join(g) for g in groups.values()]
    assert set(found.terms) <= set(names), found.terms  # no 'other': every FLOP in a group
    for group in names:
        want = _at(sum((hand_terms.get(t, 0) for t in group.split("+")), sp.Integer(0)),
                   found.fixed)
        assert sp.expand(found.terms.get(group, 0) - want) == 0, (group, found.terms)


@pytest.mark.parametrize("name,quantity,vary,fixed,kv_cache,kernel", FLOP_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" + ("-kv" if c[4] else "")
                              + (f"-{c[5]}" if c[5] else "") for c in FLOP_CASES])
def test_builtin_flops_and_params_are_the_hand_formulas(name, quantity, vary, fixed, kv_cache,
                                                        kernel):
    measure = "params" if quantity == "params" else "flops"
    found = derive(builtin_source(name, quantity, measure, kv_cache, kernel), vary.split(","),
                   fixed)
    assert found.verified, found.failures
    assert set(found.variables) == set(vary.split(","))
    assert not set(found.fixed) & set(found.variables)
    assert {k: found.fixed[k] for k in fixed} == fixed
    hand, hand_terms = _hand_flops(name, quantity, kv_cache, kernel)
    assert found.formula.free_symbols <= {SYMBOLS[v] for v in found.variables}
    assert sp.expand(_at(hand, found.fixed) - found.formula) == 0, (found.formula, hand)
    if quantity in ("forward", "generate"):
        _check_builtin_terms(name, found, hand_terms)


@pytest.fixture(scope="module")
def transformer_forward():
    return derive(builtin_source("transformer", "forward"), ["T", "D", "L", "V"])


def test_transformer_forward_in_four_sizes(transformer_forward):
    found = transformer_forward
    assert found.verified, found.failures
    assert found.fixed == {"B": 1, "H": 4}
    # per layer: qkv 6TD^2, out_proj 2TD^2, MLP (D -> 4D -> D) 16TD^2, scores and weighted
    # values 2T^2D each; the head 2TDV (analysis.formulas, B = 1)
    assert sp.expand(found.formula - (24 * L * T * D**2 + 4 * L * T**2 * D + 2 * T * D * V)) == 0
    hand, hand_terms = _hand_flops("transformer", "forward", False, None)
    assert sp.expand(_at(hand, found.fixed) - found.formula) == 0
    _check_builtin_terms("transformer", found, hand_terms)
    assert found.degrees == {"T": 2, "D": 2, "L": 1, "V": 1}
    # D steps by the 4 heads: the grid and the held-out sizes take only multiples of 4
    assert all(d % 4 == 0 for d in found.grid["D"])
    assert all(p["D"] % 4 == 0 for p in found.held_out)


def test_four_size_derivation_is_fast(transformer_forward):
    # the goal: a 4-variable derivation of a built-in in <= 30 s on one core (it is ~1 s)
    assert 0 < transformer_forward.seconds <= 30


def test_cli_prints_the_transformer_forward_formula_verified(capsys):
    assert main(["derive", "transformer", "--vary", "T,D,L,V", "--quantity", "forward",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "  24LTD^2 + 4LT^2D + 2TDV\n" in out
    assert "  verified: 4 held-out sizes counted exactly" in out
    assert "NOT verified" not in out


# ------------------------------------------------------------------ built-ins: depth

# (model, quantity, varied, kv_cache): forward, train and generate of each built-in, the
# widths fixed small (depth does not depend on them)
DEPTH_CASES = [
    ("rnn", "forward", "T", False), ("rnn", "train", "T", False),
    ("rnn", "generate", "P,N", False),
    ("mlrnn", "forward", "T,L", False), ("mlrnn", "train", "T,L", False),
    ("mlrnn", "generate", "P,N,L", False),
    ("gru", "forward", "T,L", False), ("gru", "train", "T,L", False),
    ("gru", "generate", "P,N,L", False),
    ("lstm", "forward", "T,L", False), ("lstm", "train", "T,L", False),
    ("lstm", "generate", "P,N,L", False),
    ("mingru", "train", "T,L", False),  # forward: test_mingru_scan_depth_is_ceil_log2_t
    ("mingru", "generate", "P,N,L", False),
    ("transformer", "forward", "T,L", False), ("transformer", "train", "T,L", False),
    ("transformer", "generate", "P,N,L", False), ("transformer", "generate", "P,N,L", True),
]


@pytest.mark.parametrize("name,quantity,vary,kv_cache", DEPTH_CASES,
                         ids=[f"{c[0]}-{c[1]}" + ("-kv" if c[3] else "") for c in DEPTH_CASES])
def test_builtin_depth_is_the_depth_formula(name, quantity, vary, kv_cache):
    fixed = _fixed_small(name, vary)
    # 2 held-out sizes (of 4): depth is linear per size here, checked on 6-12 grid sizes, and
    # the held-out ones run the recurrent models for up to ~10 x 10 cells each; the log basis
    # is verified at 4 in test_mingru_scan_depth_is_ceil_log2_t
    held = 4 if name == "mingru" else 2
    found = derive(builtin_source(name, quantity, "depth", kv_cache), vary.split(","), fixed,
                   held_out=held)
    assert len(found.held_out) == held
    assert found.verified, found.failures
    hand = architecture(name).depth.quantity(quantity, kv_cache=kv_cache)
    assert sp.expand(_at(hand.total, found.fixed) - found.formula) == 0, (found.formula, hand)
    assert sp.expand(found.terms.get("matmul", 0) - _at(hand.depth, found.fixed)) == 0
    assert sp.expand(found.terms.get("scan", 0) - _at(hand.scan, found.fixed)) == 0


def test_mingru_scan_depth_is_ceil_log2_t():
    # minGRU forward: per layer one matmul level (W_xz, W_xh side by side) and two scans in
    # sequence of ceil(log2 T) steps each; the head one level: L + 1 + 2L ceil(log2 T)
    found = derive(builtin_source("mingru", "forward", "depth"), ["T", "L"], {"D": 8, "V": 8})
    assert found.verified, found.failures
    log2t = sp.ceiling(sp.log(T, 2))
    assert sp.expand(found.formula - (L + 1 + 2 * L * log2t)) == 0
    hand = architecture("mingru").depth.quantity("forward")
    assert sp.expand(_at(hand.total, found.fixed) - found.formula) == 0
    assert sp.expand(found.terms["scan"] - 2 * L * log2t) == 0
    assert found.reading() == "2L ceil(log2 T) + L + 1"
    # the basis of T has ceil(log2 T), so T's grid has three values of distinct ceil(log2)
    # rows, and the held-out sizes include some past the grid, where the log is not linear
    assert len(found.grid["T"]) == 3
    assert any(p["T"] > max(found.grid["T"]) for p in found.held_out)


# ------------------------------------------------------------------ a model written here


class Block(nn.Module):
    def __init__(self, d: int, f: int):
        super().__init__()
        self.fc = nn.Linear(d, f)
        self.proj = nn.Linear(f, d)

    def forward(self, x):
        return self.proj(torch.relu(self.fc(x)))


class Toy(nn.Module):
    """Embedding V x D, L blocks D -> F -> D, a T x T product, a head D -> V without bias."""

    def __init__(self, v: int, d: int, f: int, layers: int):
        super().__init__()
        self.emb = nn.Embedding(v, d)
        self.blocks = nn.ModuleList(Block(d, f) for _ in range(layers))
        self.head = nn.Linear(d, v, bias=False)

    def forward(self, idx):
        x = self.emb(idx)
        for block in self.blocks:
            x = block(x)
        scores = x @ x.transpose(-1, -2)
        return self.head(scores @ x)


def toy(T=8, D=4, F=6, L=2, V=5, B=1):
    return Toy(V, D, F, L), torch.zeros(B, T, dtype=torch.long)


# By hand, 2 FLOPs per multiply-add, B T rows of D at the embedding's output:
#   blocks.*.fc    L layers of (B T x D) @ (D x F):        2 L B T D F
#   blocks.*.proj  L layers of (B T x F) @ (F x D):        2 L B T D F
#   x @ x^T        (T x D) @ (D x T) per batch row:         2 B T^2 D
#   scores @ x     (T x T) @ (T x D) per batch row:         2 B T^2 D
#   head           (B T x D) @ (D x V):                     2 B T D V
#   the embedding is a lookup, biases and relu are not matmuls: 0
# forward = 4 L B T D F + 4 B T^2 D + 2 B T D V.
TOY_FORWARD = 4 * L * B * T * D * F + 4 * B * T**2 * D + 2 * B * T * D * V
TOY_TERMS = {"blocks.*.fc": 2 * L * B * T * D * F, "blocks.*.proj": 2 * L * B * T * D * F,
             # the two T x T products read no weight: the model's own activation products
             "(model) (activations)": 4 * B * T**2 * D, "head": 2 * B * T * D * V}
# params: embedding V D; per block fc D F + F, proj F D + D; head D V:
#   2 V D + L (2 D F + F + D)
TOY_PARAMS = 2 * V * D + L * (2 * D * F + F + D)


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    """Equal as polynomials, whatever assumptions their symbols carry (F is derive's own)."""
    names = {s.name: sp.Symbol(s.name) for s in a.free_symbols | b.free_symbols}
    plain = {s: names[s.name] for s in a.free_symbols | b.free_symbols}
    return sp.expand(a.xreplace(plain) - b.xreplace(plain)) == 0


def test_toy_forward_in_six_sizes_is_the_hand_formula_with_its_terms():
    found = derive(factory_source(toy, "toy", tensors="real"), ["B", "T", "D", "F", "L", "V"])
    assert found.verified, found.failures
    assert _same(found.formula, TOY_FORWARD), found.formula
    assert set(found.terms) == set(TOY_TERMS), found.terms
    for name, want in TOY_TERMS.items():
        assert _same(found.terms[name], want), (name, found.terms[name])
    assert found.degrees == {"B": 1, "T": 2, "D": 1, "F": 1, "L": 1, "V": 1}


def test_toy_train_is_three_forwards():
    # backward: every matmul again for the gradient of each of its two operands (the
    # embedding's weight needs a gradient, so even the first block's input gradient is
    # computed): train = 3 x forward, here at F=6, L=2, V=5, B=1
    found = derive(factory_source(toy, "toy", quantity="train", tensors="real"), ["T", "D"])
    assert found.verified, found.failures
    assert found.fixed == {"F": 6, "L": 2, "V": 5, "B": 1}
    want = 3 * TOY_FORWARD.xreplace({F: 6, L: 2, V: 5, B: 1})
    assert _same(found.formula, want), found.formula
    assert found.terms == {}  # per-module terms: the forward quantity only


def test_toy_params_on_fake_tensors():
    found = derive(factory_source(toy, "toy", measure="params"), ["D", "F", "L", "V"])
    assert found.verified, found.failures
    assert _same(found.formula, TOY_PARAMS), found.formula


# ------------------------------------------------------------------ counts that are no polynomial

NOT_POLYNOMIAL = textwrap.dedent('''
    import torch
    from torch import nn


    def branchy(T=4, D=3):
        """One Linear D -> D over T rows, and a second one when T > 6."""
        layers = [nn.Linear(D, D)] + ([nn.Linear(D, D)] if T > 6 else [])
        return nn.Sequential(*layers), torch.zeros(1, T, D)


    def exponential(T=3, D=2):
        """A Linear D -> 2^T over T rows: 2 T D 2^T FLOPs."""
        return nn.Linear(D, 2 ** T), torch.zeros(1, T, D)


    def heads(T=4, D=4):
        """Attention with 2 heads: D must be even."""
        attn = nn.MultiheadAttention(D, 2, batch_first=True)
        x = torch.zeros(1, T, D)
        return attn, (x, x, x)
''')


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    """The factories above, as a file for the CLI and as functions for the API (loaded from
    the file as the CLI loads a TARGET)."""
    path = tmp_path_factory.mktemp("factories") / "factories.py"
    path.write_text(NOT_POLYNOMIAL)
    return path, {name: load_factory(f"{path}:{name}")[0]
                  for name in ("branchy", "exponential", "heads")}


def test_a_size_dependent_branch_fails_at_the_held_out_sizes_past_it(factories):
    _, ns = factories
    found = derive(factory_source(ns["branchy"], "branchy"), ["T", "D"])
    # T = 2..5 along the degree line and T in {2, 3} on the grid: one Linear, 2 T D^2
    assert _same(found.formula, 2 * T * D**2), found.formula
    past = [p for p in found.held_out if p["T"] > 6]
    assert past, found.held_out  # seed 0 draws held-out sizes beyond the branch
    assert not found.verified
    failed = [f for f in found.failures if f["what"] == "total"]
    # exactly the held-out sizes past the branch fail, counting twice the formula (two Linears)
    assert [f["sizes"] for f in failed] == past
    for f in failed:
        assert f["counted"] == 2 * int(f["formula"]) == 4 * f["sizes"]["T"] * f["sizes"]["D"]**2


def test_an_exponential_count_fails_its_degree(factories):
    _, ns = factories
    found = derive(factory_source(ns["exponential"], "exponential"), ["T"])
    assert not found.verified
    degree = [f for f in found.failures if f["what"] == "degree"]
    assert len(degree) == 1 and degree[0]["size"] == "T"
    # along T = 2, 3, ...: 2 T D 2^T at D = 2
    assert degree[0]["counts"][:4] == [4 * t * 2**t for t in (2, 3, 4, 5)]
    assert "not a polynomial of degree <= 4" in degree[0]["message"]


def test_cli_not_verified_exits_1_naming_the_failing_size(factories, capsys):
    path, ns = factories
    found = derive(factory_source(ns["branchy"], "branchy"), ["T", "D"])
    first = next(f for f in found.failures if f["what"] == "total")
    assert main(["derive", f"{path}:branchy", "--vary", "T,D", "--threads", "1"]) == 1
    out = capsys.readouterr().out
    assert "NOT verified" in out
    t, d = first["sizes"]["T"], first["sizes"]["D"]
    assert (f"at T={t}, D={d}: total counted {4 * t * d * d}, the formula gives {2 * t * d * d}"
            in out)
    assert "  verified:" not in out


def test_cli_degree_failure_exits_1(factories, capsys):
    path, _ = factories
    assert main(["derive", f"{path}:exponential", "--vary", "T", "--threads", "1"]) == 1
    out = capsys.readouterr().out
    assert "NOT verified" in out and "along T the counts [32, 96, 256, 640" in out


# ------------------------------------------------------------------ units


def test_degree_of_hand_sequences():
    assert degree_of([5, 5]) is None  # one first difference: not two
    assert degree_of([5, 5, 5]) == 0
    assert degree_of([7, 7, 7, 7]) == 0
    assert degree_of([0, 0, 0]) == 0
    assert degree_of([1, 3, 5, 7]) == 1
    assert degree_of([0, 1, 4, 9, 16]) == 2
    assert degree_of([0, 1, 4, 9]) is None  # one second difference: not shown yet
    assert degree_of([1, 8, 27, 64, 125, 216]) == 3
    assert degree_of([1, 8, 27, 64, 125]) is None
    assert degree_of([1, 2, 4, 8, 16, 32, 64]) is None  # 2^x: never
    assert degree_of([3]) is None
    assert degree_of([]) is None


def test_solve_recovers_rational_coefficients_exactly():
    # T (T + 1) / 2 * D: degree 2 in T, 1 in D, coefficients 1/2
    axes = [Axis("T", 2, False, (2, 3, 5)), Axis("D", 1, False, (4, 7))]
    values = {(i, j): int(Fraction(t * (t + 1), 2) * d)
              for (i, t), (j, d) in product(enumerate(axes[0].values),
                                            enumerate(axes[1].values))}
    got = solve(axes, values)
    assert sp.expand(got - T * (T + 1) * D / 2) == 0
    assert sp.Poly(got, T, D).coeff_monomial(T**2 * D) == sp.Rational(1, 2)


def test_solve_with_a_ceil_log2_basis():
    # 3 L ceil(log2 T) - L + 2: T's basis 1, T, ceil(log2 T) (the coefficient of T is 0)
    axes = [Axis("T", 1, True, (2, 3, 5)), Axis("L", 1, False, (1, 2))]

    def clog(x):
        return (x - 1).bit_length()

    values = {(i, j): 3 * lv * clog(t) - lv + 2
              for (i, t), (j, lv) in product(enumerate(axes[0].values),
                                             enumerate(axes[1].values))}
    got = solve(axes, values)
    assert sp.expand(got - (3 * L * sp.ceiling(sp.log(T, 2)) - L + 2)) == 0


def test_reading_factored_latex():
    fwd = 24 * L * T * D**2 + 4 * L * T**2 * D + 2 * T * D * V
    assert reading(fwd) == "24LTD^2 + 4LT^2D + 2TDV"
    assert factored(fwd) == "L(24TD^2 + 4T^2D) + 2TDV"
    assert latex(fwd) == "24 L T D^{2} + 4 L T^{2} D + 2 T D V"

    depth = 2 * L * sp.ceiling(sp.log(T, 2)) + L + 1
    assert reading(depth) == "2L ceil(log2 T) + L + 1"
    assert latex(depth) == r"2 L \lceil \log_2 T \rceil + L + 1"
    assert factored(depth) == "L(2 ceil(log2 T) + 1) + 1"
    assert reading(2 * sp.ceiling(sp.log(P, 2)) + 1) == "2 ceil(log2 P) + 1"
    assert reading(2 * sp.ceiling(sp.log(P, 2)) + N) == "N + 2 ceil(log2 P)"  # N weighs first

    gen = 2 * N + P - 1  # a negative constant
    assert reading(gen) == "2N + P - 1"
    assert latex(gen) == "2 N + P - 1"
    assert factored(gen) == "2N + P - 1"  # no size shared by two monomials

    bwd = 4 * T * D**2 - 2 * D**2 + 516 * T * D
    assert reading(bwd) == "4TD^2 - 2D^2 + 516TD"
    assert factored(bwd) == "T(4D^2 + 516D) - 2D^2"

    third = sp.Rational(4, 3) * N**3 * D - sp.Rational(193, 3) * N * D
    assert reading(third) == "4/3 N^3D - 193/3 ND"
    assert latex(third) == r"\frac{4}{3} N^{3} D - \frac{193}{3} N D"

    assert reading(-2 * T + 1) == "-2T + 1"
    assert reading(sp.Integer(-3)) == "-3"
    assert reading(sp.Integer(0)) == "0"
    assert reading(sp.Rational(-1, 2)) == "-1/2"


def test_json_output(capsys):
    # minGRU forward depth: L + 1 + 2 L ceil(log2 T) (see test_mingru_scan_depth_is_ceil_log2_t)
    assert main(["derive", "mingru", "--vary", "T,L", "--measure", "depth", "--fix", "D=8",
                 "--fix", "V=8", "--format", "json", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    formula = sp.sympify(out["formula"], locals=dict(SYMBOLS))
    assert sp.expand(formula - (L + 1 + 2 * L * sp.ceiling(sp.log(T, 2)))) == 0
    assert out["verified"] is True and out["failures"] == []
    assert out["fixed"] == {"B": 1, "V": 8, "D": 8}
    # depth counts no degree lines: the points are the grid and the held-out sizes
    grid = {tuple(p) for p in product(out["grid"]["T"], out["grid"]["L"])}
    held = {(p["T"], p["L"]) for p in out["held_out"]}
    assert len(out["held_out"]) == 4
    assert out["points"] == len(grid | held)


def test_json_points_count_the_degree_lines(capsys):
    # rnn forward in T (degree 1) and D (degree 2): degree lines through the base T = D = 4
    # (start 2, two steps up), T = 2..5 (4 counts) and D = 2..6 (5: a degree 2 needs two
    # third differences); the grid T in {2, 3} x D in {2, 3, 4}; then the held-out sizes
    assert main(["derive", "rnn", "--vary", "T,D", "--fix", "E=4", "--fix", "V=8",
                 "--format", "json", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    # by hand: 2TDE (W_ih) + 2TD^2 (W_hh) + 2TDV (fc) at E = 4, V = 8, B = 1
    formula = sp.sympify(out["formula"], locals=dict(SYMBOLS))
    assert sp.expand(formula - (2 * T * D**2 + 24 * T * D)) == 0
    assert out["verified"] is True
    assert out["degrees"] == {"T": 1, "D": 2}
    assert out["grid"] == {"T": [2, 3], "D": [2, 3, 4]}
    lines = {(t, 4) for t in range(2, 6)} | {(4, d) for d in range(2, 7)}
    grid = set(product([2, 3], [2, 3, 4]))
    held = {(p["T"], p["D"]) for p in out["held_out"]}
    assert out["points"] == len(lines | grid | held)


# ------------------------------------------------------------------ errors


def _cli_error(capsys, argv) -> str:
    assert main(["derive", *argv, "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("charlm derive: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_a_size_the_target_does_not_take(capsys):
    with pytest.raises(ValueError, match="rnn takes no size L; its sizes: B, V, D, E, T"):
        derive(builtin_source("rnn"), ["L"])
    with pytest.raises(ValueError, match="takes no size X"):
        derive(builtin_source("rnn"), ["T"], {"X": 3})
    assert "rnn takes no size L" in _cli_error(capsys, ["rnn", "--vary", "L"])
    assert "takes no size Q" in _cli_error(capsys, ["rnn", "--vary", "T", "--fix", "Q=2"])


def test_a_size_varied_and_fixed(capsys):
    with pytest.raises(ValueError, match="size T is both varied and fixed"):
        derive(builtin_source("rnn"), ["T", "D"], {"T": 3})
    with pytest.raises(ValueError, match="size T is both varied and fixed, or varied twice"):
        derive(builtin_source("rnn"), ["T", "T"])
    assert "size D is both varied and fixed" in _cli_error(
        capsys, ["rnn", "--vary", "T,D", "--fix", "D=3"])


@pytest.mark.parametrize("argv,message", [
    (["--vary", "T;D"], "--vary 'T;D': give size names separated by commas"),
    (["--vary", ","], "--vary ',': give size names"),
    (["--vary", "T", "--fix", "D"], "--fix 'D': give NAME=INTEGER"),
    (["--vary", "T", "--fix", "D=x"], "--fix 'D=x': give NAME=INTEGER"),
    (["--vary", "T", "--fix", "D=2", "--fix", "D=3"], "--fix D given twice"),
    (["--vary", "D", "--step", "D=two"], "--step 'D=two': give NAME=INTEGER"),
    (["--vary", "D", "--step", "D=0"], "step D=0: a step is a positive integer"),
    (["--vary", "T", "--fix", "D=0"], "fixed size D=0: a size is a positive integer"),
    (["--vary", "T", "--optimizer", "adam"], "--optimizer and --tensors apply to a model "
                                             "factory"),
    (["--vary", "T", "--quantity", "loss"], "--quantity 'loss': a built-in model has"),
])
def test_bad_flags_are_one_line_errors(capsys, argv, message):
    assert message in _cli_error(capsys, ["rnn", *argv])


def test_bad_requests_from_the_api():
    from charlm.commands.derive import parse_pairs, parse_vary

    with pytest.raises(ValueError, match="give size names"):
        parse_vary("T D")
    with pytest.raises(ValueError, match="give NAME=INTEGER"):
        parse_pairs(["D:4"], "--step")
    with pytest.raises(ValueError, match="a step is a positive integer"):
        derive(builtin_source("rnn"), ["D"], steps={"D": -2})
    with pytest.raises(ValueError, match="at least one size"):
        derive(builtin_source("rnn"), [])
    with pytest.raises(ValueError, match="optimizer='adam' applies only to quantity 'train'"):
        factory_source(toy, "toy", "forward", optimizer="adam")
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        factory_source(toy, "toy", "train", optimizer="sgd")
    with pytest.raises(ValueError, match="unknown quantity 'generate' for a model factory"):
        factory_source(toy, "toy", "generate")
    with pytest.raises(ValueError, match="unknown quantity 'loss'"):
        builtin_source("rnn", "loss")


def test_a_factory_that_rejects_a_grid_size_names_step(factories, capsys):
    path, ns = factories
    # D = 3 on D's line (start 2, step 1): nn.MultiheadAttention refuses 3 over 2 heads
    with pytest.raises(ValueError, match=r"could not be counted at T=4, D=3: .*divisible.*"
                                         r"give a step, e\.g\. --step D=K"):
        derive(factory_source(ns["heads"], "heads"), ["T", "D"])
    err = _cli_error(capsys, [f"{path}:heads", "--vary", "T,D"])
    assert "could not be counted at" in err and "--step D=K" in err
    # with the step, D in multiples of 2: counted, and verified
    found = derive(factory_source(ns["heads"], "heads"), ["D"], steps={"D": 2})
    assert found.verified, found.failures
    assert all(d % 2 == 0 for d in found.grid["D"])


@pytest.mark.parametrize("module,params,key", [
    ("h.0.attn.c_attn", ("h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias"), "h.*.attn.c_attn"),
    # nn.MultiheadAttention's packed projection is a parameter of the attention module itself
    ("layers.1.self_attn", ("layers.1.self_attn.in_proj_bias",
                            "layers.1.self_attn.in_proj_weight"), "layers.*.self_attn.in_proj"),
    ("layers.1.self_attn", ("layers.1.self_attn.out_proj.weight",),
     "layers.*.self_attn.out_proj"),
    # an LM head whose weight is the token embedding's (tied): the running module's term
    ("lm_head", ("transformer.wte.weight",), "lm_head"),
    ("h.3.attn", (), "h.*.attn (activations)"),
    ("", (), "(model) (activations)"),
])
def test_a_products_term_is_the_weight_it_reads(module, params, key):
    from analysis.derive import term_key

    assert term_key(module, params) == key
