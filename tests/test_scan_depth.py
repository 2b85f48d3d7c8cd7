"""The depth tracer's scan convention: a scan op over n positions weighs ceil(log2 n)
combining steps, reported apart from matmuls (scan_depth) and with them (depth)."""

import math

import pytest
import sympy as sp
import torch

from analysis.architectures import depth_model
from analysis.depth import measure_depth, trace
from analysis.formulas import L, P, T
from analysis.trace import scan_steps
from charlm.models.registry import ModelConfig


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 1000, 1024, 1025])
def test_one_scan_weighs_ceil_log2_n(n):
    want = math.ceil(math.log2(n))
    assert scan_steps(n) == want
    x = torch.randn(3, n)
    r = trace(lambda: torch.cumsum(x, dim=1))
    assert (r.scan_depth, r.matmul_depth, r.depth) == (want, 0, want)


def test_the_scanned_dimension_sets_the_weight():
    x = torch.randn(4, 32)
    assert trace(lambda: torch.logcumsumexp(x, dim=0)).scan_depth == 2
    assert trace(lambda: torch.logcumsumexp(x, dim=-1)).scan_depth == 5
    assert trace(lambda: torch.cumprod(x, 1)).scan_depth == 5


def test_scans_in_sequence_add_and_side_by_side_do_not():
    x = torch.randn(2, 16)
    assert trace(lambda: torch.cumsum(torch.cumsum(x, 1), 1)).scan_depth == 8
    assert trace(lambda: torch.cumsum(x, 1) + torch.logcumsumexp(x, 1)).scan_depth == 4


def test_matmuls_and_scans_on_one_chain_sum_in_depth():
    w, x = torch.randn(8, 8), torch.randn(8, 8)
    r = trace(lambda: torch.cumsum(x @ w, 0) @ w)
    assert (r.matmul_depth, r.scan_depth, r.depth) == (2, 3, 5)
    # on separate chains the maxima are not summed: depth takes the longer chain
    r = trace(lambda: (x @ w @ w).sum() + torch.cumsum(x, 0).sum())
    assert (r.matmul_depth, r.scan_depth, r.depth) == (2, 3, 3)


def test_a_scans_backward_is_a_reversed_scan():
    x = torch.randn(2, 64, requires_grad=True)
    y = torch.cumsum(x, 1).sum()
    assert trace(y.backward).scan_depth == 6


def test_models_without_a_scan_have_scan_depth_zero():
    r = measure_depth(ModelConfig("gru", 7, embed=3, hidden=4, layers=2), "train",
                      dict(B=1, T=5))
    assert r.scan_depth == 0 and r.depth == r.matmul_depth
    assert depth_model("gru").train().scan == 0


def test_mingru_prediction_states_scan_and_total_apart():
    fwd = depth_model("mingru").forward()
    assert fwd.depth == L + 1
    assert sp.simplify(fwd.scan - 2 * L * sp.ceiling(sp.log(T, 2))) == 0
    assert fwd.evaluate({"L": 2, "T": 100}) == {"depth": 3, "launches": 5, "scan_depth": 28,
                                                "total_depth": 31}
    gen = depth_model("mingru").generate()
    assert sp.simplify(gen.scan - 2 * L * sp.ceiling(sp.log(P, 2))) == 0


def test_depth_report_sets_scan_depth_beside_matmul_depth():
    from analysis.depth import depth_report

    r = depth_report(ModelConfig("mingru", 7, hidden=4, layers=2), "forward", seq_len=33)
    s = math.ceil(math.log2(33))  # 6
    assert (r["measured"], r["scan_depth"], r["total_depth"]) == (3, 2 * 2 * s, 3 + 4 * s)
    assert r["predicted_scan_depth"] == r["scan_depth"] and r["verdict"] == "exact"
    assert "ceil(log2 n)" in r["convention"]
