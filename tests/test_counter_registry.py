"""The second counters are a registry: a third ForwardCounter, registered here and nowhere
else, gets its reconciliation columns, its place in the verdict, in measure_flops, in the
profile's JSON and table, in the bench's FLOPs and in the report's findings."""

import json

import pandas as pd
import pytest
import torch
from torch import nn

from analysis import counters
from analysis.counters import Count, ForwardCounter
from analysis.flops_api import flops_report
from analysis.profile import profile
from analysis.reconcile import GridPoint, reconcile, reconcile_row
from analysis.report import summaries as S
from analysis.workloads import Workload, measured_flops, prepare
from charlm.commands.profile import profile_table
from charlm.models.registry import ModelConfig

# The homework's RNN is nn.Linear only: a forward over (B, T) is 2 B T (E D + D D + D V)
RNN = ModelConfig("rnn", 5, embed=3, hidden=4)
B, T = 1, 2
RNN_FORWARD = 2 * B * T * (3 * 4 + 4 * 4 + 4 * 5)
RNN_W_IH = 2 * B * T * 3 * 4


class LinearHooks(ForwardCounter):
    """A toy counter of its own engine: forward hooks on every nn.Linear, 2 in out per row
    (times `scale`, to make a wrong one)."""

    description = "the toy Linear-hook counter (2 FLOPs per multiply-add)"
    absent = "the toy counter is switched off"

    def __init__(self, name: str = "linear", scale: int = 1, here: bool = True):
        self.name, self.scale, self.here = name, scale, here

    def available(self) -> bool:
        return self.here

    def count(self, model, inputs) -> Count:
        by_module: dict[str, int] = {}
        paths = {m: name for name, m in model.named_modules()}

        def hook(module, args, out):
            x = args[0]
            n = self.scale * 2 * module.in_features * module.out_features * (
                x.numel() // module.in_features)
            name = paths[module]
            parts = name.split(".")
            for i in range(len(parts) + 1):  # inclusive of submodules, "" the whole model
                key = ".".join(parts[:i])
                by_module[key] = by_module.get(key, 0) + n

        handles = [m.register_forward_hook(hook) for m in model.modules()
                   if isinstance(m, nn.Linear)]
        try:
            with torch.no_grad():
                model(*inputs)
        finally:
            for h in handles:
                h.remove()
        return Count(total=by_module.get("", 0), by_module=by_module, unsupported={})


@pytest.fixture
def register(monkeypatch):
    """Register counters for one test; monkeypatch unregisters them after it."""
    def add(*found: ForwardCounter):
        for c in found:
            monkeypatch.setitem(counters.FORWARD_COUNTERS, c.name, c)
    return add


def test_a_third_counter_gets_its_reconcile_columns(register):
    register(LinearHooks())
    row = reconcile_row(GridPoint(RNN, B=B, T=T), "forward")
    assert row["measured_linear"] == RNN_FORWARD and row["ratio_linear"] == 1.0
    assert row["linear_unsupported"] == "{}" and row["linear_note"] is None
    assert row["linear_elementwise"] is None
    assert row["verdict"] == "exact"
    assert "measured_fvcore" in row  # the registered ones stay
    backward = reconcile_row(GridPoint(RNN, B=B, T=T), "backward")
    assert backward["measured_linear"] is None  # a forward counter
    off = reconcile_row(GridPoint(RNN, B=B, T=T), "forward", second_counters=False)
    assert off["measured_linear"] is None and off["verdict"] == "exact"
    frame = reconcile([GridPoint(RNN, B=B, T=T, quantities=("forward",))])
    assert {"measured_linear", "ratio_linear", "linear_note", "env_linear"} <= set(frame)


def test_the_verdict_compares_every_counter_that_counted(register):
    register(LinearHooks(), LinearHooks("double", scale=2), LinearHooks("off", here=False))
    row = reconcile_row(GridPoint(RNN, B=B, T=T), "forward")
    assert row["verdict"] == "mismatch"
    assert row["verdict_detail"] == f"double {2 * RNN_FORWARD} != {RNN_FORWARD}"
    assert row["measured_off"] is None and row["off_note"] == "the toy counter is switched off"


def test_measure_flops_and_flops_report_carry_a_third_counter(register):
    register(LinearHooks())
    measured = counters.measure_flops(RNN, "forward", {"B": B, "T": T})
    linear = measured.forward_counts["linear"]
    assert linear.total == RNN_FORWARD
    assert linear.by_module["W_ih"] == RNN_W_IH  # the model's own paths, not the wrapper's
    report = flops_report(RNN, "forward", batch=B, seq_len=T)
    assert report["measured"]["linear"] == RNN_FORWARD and report["ratio"]["linear"] == 1.0
    assert report["linear_note"] is None and report["linear_unsupported"] == {}


def test_profile_json_and_table_carry_a_third_counter(register):
    register(LinearHooks())
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    rows = 5
    hand = 2 * rows * (3 * 4 + 4 * 2)
    r = profile(model, torch.ones(rows, 3))
    data = json.loads(json.dumps(r.to_dict()))
    assert data["flops_linear"] == hand == data["flops"]
    assert "flops_fvcore" in data
    assert data["unsupported"]["linear"] == {}
    modules = {m["module"]: m for m in data["modules"]}
    assert modules["0"]["flops_linear"] == 2 * rows * 3 * 4
    assert modules["1"]["flops_linear"] == 0  # the ReLU
    assert f"{hand:,} (linear)" in profile_table(r, "toy", {})
    assert any("toy Linear-hook counter" in c for c in r.conventions)
    train = profile(model, torch.ones(rows, 3), "train")
    assert train.to_dict()["flops_linear"] is None
    assert "no linear count: linear counts a forward pass only" in train.notes


def test_bench_flops_and_the_report_name_a_third_counter(register):
    register(LinearHooks())
    w = Workload("rnn", "forward", batch=B, seq_len=T, hidden=4, vocab=5)
    embed = w.model_config().embed
    found = measured_flops(prepare(w))
    assert found["forward"]["linear"] == 2 * B * T * (embed * 4 + 4 * 4 + 4 * 5)
    table = pd.DataFrame([
        {"model": "rnn", "quantity": "forward", "verdict": "exact", "ratio_torch": 1.0,
         "status": "ok", "predicted": 10, "measured_torch": 10, "measured_linear": 10},
        {"model": "rnn", "quantity": "forward", "verdict": "mismatch", "ratio_torch": 1.0,
         "status": "ok", "predicted": 20, "measured_torch": 20, "measured_linear": 30},
        {"model": "rnn", "quantity": "train", "verdict": "exact", "ratio_torch": 1.0,
         "status": "ok", "predicted": 30, "measured_torch": 30, "measured_linear": None},
    ])
    assert ("The forward counts of the toy Linear-hook counter (2 FLOPs per multiply-add) "
            "equal the prediction on 1 of 2 rows.") in S.flops_summary(table).findings
