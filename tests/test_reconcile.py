"""The reconciliation table: the grid's coverage, exact agreement on a quick grid, a verdict
that can fail, and the CSV with its convention and environment columns."""

import dataclasses
import json

import pandas as pd
import pytest
import torch

from analysis import counters, reconcile
from analysis.architectures import cost_model
from analysis.flops_api import flops
from charlm.models.registry import ModelConfig, build_model


@pytest.fixture(scope="module")
def quick_table():
    return reconcile.reconcile(reconcile.GRIDS["quick"]())


def _architecture(model):
    return {"rnn": "elman", "mlrnn": "elman"}.get(model, model)


def test_default_grid_has_40_sizes_per_architecture_varying_every_size():
    points = reconcile.default_grid()
    by_arch = {}
    for p in points:
        by_arch.setdefault(_architecture(p.cfg.model), []).append(p)
    assert {k: len(v) >= 40 for k, v in by_arch.items()} == {
        "elman": True, "gru": True, "lstm": True, "mingru": True, "transformer": True}
    for arch, pts in by_arch.items():
        sizes = pd.DataFrame([p.sizes() for p in pts])
        varied = {k for k in sizes if sizes[k].nunique() > 1}
        expected = {"B", "T", "D", "L", "V", "P", "N"} | (
            {"H", "C"} if arch == "transformer" else {"E"})
        assert expected <= varied, (arch, expected - varied)
    kernels = {p.cfg.attention for p in by_arch["transformer"]}
    assert kernels == {"flash", "manual"}


def test_default_grid_covers_every_generation_regime():
    regimes = set()
    for p in reconcile.default_grid():
        if p.cfg.recurrent:
            continue
        c = p.cfg.block_size
        regimes.add("within" if p.P + p.N - 1 <= c else "beyond" if p.P >= c else "crossing")
    assert regimes == {"within", "crossing", "beyond"}


def test_quick_grid_is_exact_for_every_model_and_quantity(quick_table):
    assert set(quick_table["quantity"]) == {"params", "forward", "backward", "train", "generate",
                                            "generate_kv_cache"}
    bad = quick_table[quick_table["verdict"] != "exact"]
    assert bad.empty, bad[["model", "quantity", "verdict"]].to_string()
    assert (quick_table["ratio_torch"] == 1.0).all()


def test_fvcore_is_compared_on_every_forward_row(quick_table):
    if not counters.FORWARD_COUNTERS["fvcore"].available():
        pytest.skip("fvcore not installed")
    forward = quick_table[quick_table["quantity"] == "forward"]
    assert (forward["ratio_fvcore"] == 1.0).all()
    assert forward["fvcore_unsupported"].notna().all()


def test_forward_rows_carry_measured_terms_equal_to_predicted(quick_table):
    for _, row in quick_table[quick_table["quantity"] == "forward"].iterrows():
        predicted = json.loads(row["terms_predicted"])
        measured = json.loads(row["terms_measured"])
        assert measured, row["model"]
        for group, value in measured.items():
            assert value == sum(predicted[t] for t in group.split("+"))


def test_rows_state_convention_and_environment(quick_table):
    flops = quick_table["quantity"] != "params"
    assert quick_table.loc[flops, "convention"].str.contains("2 per multiply-add").all()
    assert quick_table.loc[~flops, "convention"].str.contains("parameter count").all()
    for column in ("env_torch", "env_threads", "env_git_commit", "env_date"):
        assert column in quick_table


def test_mismatch_is_reported_not_hidden(monkeypatch):
    real = counters.measure_flops

    def off_by_two(*args, **kw):
        out = real(*args, **kw)
        return dataclasses.replace(out, torch=out.torch + 2)

    monkeypatch.setattr(counters, "measure_flops", off_by_two)
    point = reconcile.GridPoint(ModelConfig("rnn", 5, embed=3, hidden=4), B=1, T=2)
    row = reconcile.reconcile_row(point, "forward", second_counters=False)
    assert row["verdict"] == "mismatch"
    assert f"torch {row['predicted'] + 2} != {row['predicted']}" in row["verdict_detail"]
    assert row["ratio_torch"] == pytest.approx((row["predicted"] + 2) / row["predicted"])


def test_causal_convention_is_not_compared_against_full_square_counters():
    point = reconcile.GridPoint(ModelConfig("transformer", 5, hidden=4, layers=1, heads=2,
                                            block_size=6), B=1, T=5)
    row = reconcile.reconcile_row(point, "forward", attention_count="causal", second_counters=False)
    assert row["verdict"].startswith("not compared")
    causal = cost_model("transformer").forward(attention_count="causal")
    assert row["predicted"] == causal.evaluate({"B": 1, "T": 5, "D": 4, "L": 1, "V": 5})["total"]
    assert row["measured_torch"] > row["predicted"]


def test_csv_written_atomically_round_trips(quick_table, tmp_path):
    path = reconcile.write_reconciliation(quick_table, tmp_path / "out" / "flops.csv")
    back = pd.read_csv(path)
    assert len(back) == len(quick_table)
    assert not list(path.parent.glob(".*.tmp"))


def test_notebook_api_gives_same_frame_for_model_and_config_and_leaves_model_untouched():
    cfg = ModelConfig("transformer", 7, hidden=8, layers=1, heads=2, block_size=6,
                      attention="manual")
    model = build_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from_model = flops(model, "train", batch=2, seq_len=5, second_counters=False)
    from_config = flops(cfg, "train", batch=2, seq_len=5, second_counters=False)
    pd.testing.assert_frame_equal(from_model, from_config)
    total = from_model[(from_model["tier"] == "matmul") & (from_model["term"] == "total")]
    assert total["verdict"].item() == "exact"
    assert model.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_count_cost_counts_layer_calls_by_hand():
    rnn = reconcile.GridPoint(ModelConfig("lstm", 7, embed=3, hidden=4, layers=2),
                              B=2, T=5, P=1, N=3)
    # 2 layers x (forward, backward, train at T = 5 steps + one generation of P + N = 4)
    assert reconcile.count_cost(rnn) == 2 * (3 * 5 + 4) == 38
    only_forward = dataclasses.replace(rnn, quantities=("params", "forward"))
    assert reconcile.count_cost(only_forward) == 2 * 5
    gpt = reconcile.GridPoint(ModelConfig("transformer", 7, hidden=8, layers=3, heads=2,
                                          block_size=6), T=6, P=2, N=4,
                              kv_cache=(False, True))
    # 8 ops per attention layer call: 3 layers x (3 passes + 2 generations of N = 4 tokens)
    assert reconcile.ATTENTION_LAYER_OPS == 8
    assert reconcile.count_cost(gpt) == 8 * 3 * (3 + 2 * 4) == 264


def test_two_processes_count_longest_first_and_give_the_table_of_one():
    # an Elman RNN (1 layer, T = 5, P + N = 4: 3 x 5 + 4 = 19), a GRU (2 layers, T = 3,
    # P + N = 5: 2 x (9 + 5) = 28), a Transformer (2 layers, N = 2 with and without the
    # cache: 8 x 2 x (3 + 2 x 2) = 112)
    points = reconcile.GRIDS["quick"]()[::8]
    seen, seen_two = [], []
    one = reconcile.reconcile(points, second_counters=False, progress=seen.append)
    two = reconcile.reconcile(points, second_counters=False, progress=seen_two.append,
                              workers=2)
    pd.testing.assert_frame_equal(one.drop(columns="env_date"), two.drop(columns="env_date"))
    by_cost = sorted(points, key=reconcile.count_cost, reverse=True)
    assert seen == seen_two == by_cost
    assert [reconcile.count_cost(p) for p in by_cost] == [112, 28, 19]
    # rows in the points' order, each point's 5 quantities together (the Transformer's
    # generation twice: with and without the cache)
    labels = [("rnn", 1, 5)] * 5 + [("gru", 2, 3)] * 5 + [("transformer", 2, 6)] * 6
    assert list(zip(one["model"], one["L"], one["T"])) == labels
