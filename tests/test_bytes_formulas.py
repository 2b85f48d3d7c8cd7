"""Bytes formulas against the op trace, per term, for every architecture; hand counts for
one matmul of the Elman RNN, the LSTM and minGRU; manual attention's T^2 traffic vs flash."""

from types import SimpleNamespace

import pytest
import sympy as sp

from analysis.architectures import ARCHITECTURES, architecture
from analysis.bytes_formulas import ElmanBytes, GatedBytes, measured_terms
from analysis.formulas import B, H, T
from analysis.reconcile import GridPoint, default_grid, reconcile_bytes
from charlm.models.registry import ModelConfig

TRANSFORMER = dict(vocab_size=13, layers=2, heads=2, block_size=6)
CONFIGS = {  # two sizes of each architecture (and of each attention kernel)
    "rnn": [(ModelConfig("rnn", 11, embed=3, hidden=5), 3, 5),
            (ModelConfig("rnn", 7, embed=6, hidden=2), 1, 2)],
    "mlrnn": [(ModelConfig("mlrnn", 11, embed=3, hidden=5, layers=3), 3, 5),
              (ModelConfig("mlrnn", 5, embed=4, hidden=4, layers=2), 2, 1)],
    "gru": [(ModelConfig("gru", 7, embed=4, hidden=6, layers=2), 3, 5),
            (ModelConfig("gru", 9, embed=5, hidden=3, layers=1), 2, 4)],
    "lstm": [(ModelConfig("lstm", 7, embed=4, hidden=6, layers=2), 3, 5),
             (ModelConfig("lstm", 9, embed=5, hidden=3, layers=3), 1, 2)],
    "mingru": [(ModelConfig("mingru", 7, hidden=6, layers=2), 3, 5),
               (ModelConfig("mingru", 11, hidden=4, layers=1), 2, 7)],
    "transformer-manual": [
        (ModelConfig("transformer", hidden=8, attention="manual", **TRANSFORMER), 3, 5),
        (ModelConfig("transformer", 5, hidden=12, layers=1, heads=3, block_size=4,
                     attention="manual"), 2, 4)],
    "transformer-flash": [
        (ModelConfig("transformer", hidden=8, attention="flash", **TRANSFORMER), 3, 5),
        (ModelConfig("transformer", 5, hidden=12, layers=1, heads=3, block_size=4,
                     attention="flash"), 2, 4)],
}


def terms(cfg, batch, seq):
    return {r["term"]: r for r in reconcile_bytes(GridPoint(cfg, B=batch, T=seq))}


def test_the_sizes_cover_every_architecture():
    assert {cfg.model for sizes in CONFIGS.values() for cfg, _, _ in sizes} == \
        set(ARCHITECTURES)


@pytest.mark.parametrize("cfg,batch,seq", [c for sizes in CONFIGS.values() for c in sizes],
                         ids=[f"{k}-{i}" for k, sizes in CONFIGS.items()
                              for i in range(len(sizes))])
def test_every_term_matches_the_trace(cfg, batch, seq):
    rows = reconcile_bytes(GridPoint(cfg, B=batch, T=seq))
    assert [r["term"] for r in rows[:-1]] == architecture(cfg.model).bytes.forward().names
    for r in rows[:-1]:
        assert r["measured"] == r["predicted"] > 0, r
    assert rows[-1]["measured"] > 0  # the elementwise rest, measured only


def test_every_registered_architecture_at_sampled_sizes():
    # the quick reconciliation grid: each architecture's own sampler, kernels alternating
    for point in default_grid(2, anchors=False):
        for r in reconcile_bytes(point)[:-1]:
            assert r["measured"] == r["predicted"], (point, r)


def test_one_matmul_by_hand():
    # rnn fc at B=3, T=5, D=5, V=11: per step addmm reads h (3x5), W (5x11), bias 11 and
    # writes 3x11 floats
    rows = terms(ModelConfig("rnn", 11, embed=3, hidden=5), 3, 5)
    assert rows["fc"]["predicted"] == 5 * 4 * (15 + 55 + 11 + 33)


def test_lstm_by_hand():
    # B=2, T=3, E=3, D=4, L=2, V=11. Each position runs, per layer, 4 input and 4 hidden
    # Linears without bias (mm: x read, W read, y written), then fc with bias (addmm).
    # Layer 0 input: x 2x3 = 6, W 3x4 = 12, y 2x4 = 8 -> 26 floats per gate.
    # Layer 1 input (the state below) and every hidden one: x 2x4 = 8, W 4x4 = 16, y 8 -> 32.
    # W_x: 3 positions x 4 gates x (26 + 32) = 696 floats = 2784 bytes.
    # W_h: 3 positions x 4 gates x 2 layers x 32 = 768 floats = 3072 bytes.
    # fc: h 2x4 = 8, W 4x11 = 44, bias 11, logits 2x11 = 22 -> 85 floats, x 3 = 255 = 1020 B.
    rows = terms(ModelConfig("lstm", 11, embed=3, hidden=4, layers=2), 2, 3)
    assert {t: rows[t]["predicted"] for t in ("W_x", "W_h", "fc")} == \
        {"W_x": 2784, "W_h": 3072, "fc": 1020}
    assert {t: rows[t]["measured"] for t in ("W_x", "W_h", "fc")} == \
        {"W_x": 2784, "W_h": 3072, "fc": 1020}


def test_mingru_by_hand():
    # B=2, T=3, D=4, L=2, V=11, the scan path: each layer runs W_xz and W_xh once over all
    # 2 x 3 = 6 rows (mm: x 6x4 = 24, W 4x4 = 16, y 6x4 = 24 -> 64 floats each), and fc runs
    # once over the 6 rows (addmm: x 24, W 4x11 = 44, bias 11, logits 6x11 = 66 -> 145).
    # W_x: 2 layers x 2 x 64 = 256 floats = 1024 bytes; fc: 145 floats = 580 bytes.
    rows = terms(ModelConfig("mingru", 11, hidden=4, layers=2), 2, 3)
    assert {t: (rows[t]["predicted"], rows[t]["measured"]) for t in ("W_x", "fc")} == \
        {"W_x": (1024, 1024), "fc": (580, 580)}


def test_manual_attention_copies_only_what_a_layout_needs():
    # B=1, H=1, T=3, D=4, L=1, V=7: with one sequence and one head matmul folds q, k, v
    # without copies and the output needs no transpose copy. q k^T reads q, k (12 + 12
    # floats) and writes the 1x3x3 scores (9); scale, mask, softmax read and write them
    # (3 x 18); att @ v reads them (9) and v (12) and writes y (12): 48 + 72 = 120 floats =
    # 480 bytes; the bool mask: 9 bytes negated into 9, read by masked_fill (9) = 27.
    cfg = ModelConfig("transformer", 7, hidden=4, layers=1, heads=1, block_size=3,
                      attention="manual")
    row = terms(cfg, 1, 3)["attention"]
    assert row["predicted"] == row["measured"] == 507


def test_measured_terms_reads_any_record_with_module_kind_and_bytes():
    op = SimpleNamespace
    ops = [op(module="fc", kind="matmul", bytes=10), op(module="fc", kind="elementwise", bytes=3),
           op(module="blocks.0.attn", kind="elementwise", bytes=5),
           op(module="blocks.0.attn.c_attn", kind="matmul", bytes=7),
           op(module="", kind="matmul", bytes=100)]
    got = measured_terms(ops, {"fc": r"^fc$", "attention": r"\.attn$"},
                         {"attention": ("matmul", "elementwise")})
    assert got == {"fc": 10, "attention": 5}


def test_manual_attention_moves_the_square_flash_does_not():
    model = architecture("transformer").bytes
    above_one = {B: B + 1, H: H + 1, T: T + 1}  # B, H, T > 1: every layout copy made
    manual = sp.expand(model.forward("manual").terms["attention"].subs(above_one))
    flash = sp.expand(model.forward("flash").terms["attention"].subs(above_one))
    assert sp.degree(manual, T) == 2 and sp.degree(flash, T) == 1
    assert manual.coeff(T, 2).coeff(B).coeff(H) != 0


def test_an_unknown_kernel_is_a_value_error():
    with pytest.raises(ValueError, match="kernel must be one of manual, flash, got 'fast'"):
        architecture("transformer").bytes.forward("fast")


@pytest.mark.parametrize("batch,heads,seq,want", [
    # D=4, L=1, V=7, hs = D / H. Floats without copies: q k^T reads q, k (2 BTD) and writes
    # the B H T^2 scores; scale, mask, softmax read and write them (6 B H T^2); att @ v reads
    # them and v and writes y (B H T^2 + 2 BTD): 4 BTD + 8 B H T^2; the bool mask 3 T^2 bytes.
    # B=2, H=1, T=3: one head, so matmul folds (B, H) without a copy and the (B, H, T, hs)
    # output is (B, T, H, hs)-contiguous: 4*24 + 8*18 = 240 floats = 960 B, + 27 = 987.
    (2, 1, 3, 987),
    # B=1, H=2, T=3: one sequence, so no fold copy, but the output is transposed with a
    # copy (12 floats read, 12 written): 4*12 + 8*18 + 24 = 216 floats = 864 B, + 27 = 891.
    (1, 2, 3, 891),
    # B=2, H=2, T=1: q, k, v each copied to fold (B, H) (3 x 16 floats), the output needs no
    # copy at T=1: 4*8 + 8*4 + 48 = 112 floats = 448 B, + 3 = 451.
    (2, 2, 1, 451),
])
def test_manual_attention_copies_at_each_size_one_dimension(batch, heads, seq, want):
    cfg = ModelConfig("transformer", 7, hidden=4, layers=1, heads=heads, block_size=3,
                      attention="manual")
    row = terms(cfg, batch, seq)["attention"]
    assert row["predicted"] == row["measured"] == want


def test_elman_bytes_model_built_with_its_own_layer_count():
    # ElmanBytes(layers=3) at B=2, T=3, E=3, D=4, V=5, every Linear biased (addmm). Per step:
    # W_ih layer 0: x 6 + W 12 + b 4 + y 8 = 30 floats, layers 1, 2: 8 + 16 + 4 + 8 = 36 each;
    # W_ih: 3 x (30 + 72) = 306 floats = 1224 B; W_hh: 3 steps x 3 layers x 36 = 324 = 1296 B;
    # fc: h 8 + W 20 + b 5 + logits 10 = 43 floats, x 3 = 129 = 516 B.
    got = ElmanBytes(layers=3).forward().evaluate({"B": 2, "T": 3, "E": 3, "D": 4, "V": 5})
    assert got == {"W_ih": 1224, "W_hh": 1296, "fc": 516, "total": 3036}


def test_gated_bytes_model_built_with_its_own_gate_count():
    # GatedBytes(gates=3) (the GRU) at B=2, T=3, E=3, D=4, L=2, V=5, gates without bias (mm):
    # W_x: 3 positions x 3 gates x (layer 0: 6 + 12 + 8 = 26, layer 1: 8 + 16 + 8 = 32)
    # = 522 floats = 2088 B; W_h: 3 x 3 x 2 layers x 32 = 576 floats = 2304 B; fc as Elman's.
    got = GatedBytes(gates=3).forward().evaluate({"B": 2, "T": 3, "E": 3, "D": 4, "L": 2,
                                                  "V": 5})
    assert got == {"W_x": 2088, "W_h": 2304, "fc": 516, "total": 4908}


@pytest.mark.parametrize("kernel", [None, "manual", "flash"])
def test_forward_bytes_terms_name_their_quantity_convention_and_kernel(kernel):
    got = architecture("transformer").bytes.forward(kernel)
    assert got.quantity == "forward_bytes"
    assert got.convention.startswith("bytes moved, float32, unfused")
    assert got.assumptions == {"kernel": kernel}
