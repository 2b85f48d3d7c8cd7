"""Bytes formulas against the op trace, per term; manual attention's T^2 traffic vs flash."""

import pytest
import sympy as sp

from analysis.bytes_formulas import forward_bytes
from analysis.formulas import B, H, T
from analysis.reconcile import reconcile_bytes
from charlm.models.registry import ModelConfig


@pytest.mark.parametrize("cfg", [
    ModelConfig("rnn", 11, embed=3, hidden=5),
    ModelConfig("mlrnn", 11, embed=3, hidden=5, layers=3),
    ModelConfig("gru", 7, embed=4, hidden=6, layers=2),
    ModelConfig("transformer", 13, hidden=8, layers=2, heads=2, block_size=6,
                attention="manual"),
    ModelConfig("transformer", 13, hidden=8, layers=2, heads=2, block_size=6,
                attention="flash"),
], ids=["rnn", "mlrnn", "gru", "manual", "flash"])
def test_every_term_matches_the_trace(cfg):
    rows = reconcile_bytes(cfg, {"B": 3, "T": 5})
    for r in rows[:-1]:
        assert r["measured"] == r["predicted"] > 0, r
    assert rows[-1]["measured"] > 0  # the elementwise rest, measured only


def test_one_matmul_by_hand():
    # rnn fc at B=3, T=5, D=5, V=11: per step addmm reads h (3x5), W (5x11), bias 11 and
    # writes 3x11 floats
    rows = {r["term"]: r for r in reconcile_bytes(ModelConfig("rnn", 11, embed=3, hidden=5),
                                                  {"B": 3, "T": 5})}
    assert rows["fc"]["predicted"] == 5 * 4 * (15 + 55 + 11 + 33)


def test_manual_attention_moves_the_square_flash_does_not():
    manual = sp.expand(forward_bytes("transformer", "manual")["attention"])
    flash = sp.expand(forward_bytes("transformer", "flash")["attention"])
    assert sp.degree(manual, T) == 2 and sp.degree(flash, T) == 1
    assert manual.coeff(T, 2).coeff(B).coeff(H) != 0
