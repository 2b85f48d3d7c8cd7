"""The architecture table: every entry complete, and a new architecture needs only its model,
its formulas and one table entry (a toy one is registered here and run through the
workloads, the FLOP reconciliation, the depth tracer and the notebook API)."""

import random

import pytest
import sympy as sp
import torch
from torch import nn

from analysis import architectures as A
from analysis.bytes_formulas import BytesModel
from analysis.depth import depth_report
from analysis.depth_formulas import DepthModel
from analysis.flops_api import flops_report
from analysis.formulas import B, CostModel, D, E, N, P, T, V
from analysis.reconcile import GridPoint, reconcile, reconcile_bytes
from analysis.workloads import (
    measured_flops,
    model_workloads,
    predictions,
    prepare,
    variants,
)
from charlm.models.registry import MODELS, ModelConfig, ModelSpec, build_model
from charlm.sampling import sample_next, start_tokens


def test_every_registered_model_has_a_complete_entry():
    assert set(A.ARCHITECTURES) == set(MODELS)
    for name, arch in A.ARCHITECTURES.items():
        cfg = arch.config({"V": 7, "D": 8, "E": 4, "L": 2, "H": 2, "T": 5})
        model = build_model(cfg)
        assert type(model) is arch.model_class
        assert arch.read_config(model) == cfg
        assert isinstance(arch.head(model), nn.Module)
        forward_terms = arch.cost.forward().names + arch.bytes.forward().names
        assert set(forward_terms) <= set(arch.term_modules), name
        for quantity in ("forward", "backward", "train", "generate"):
            arch.depth.quantity(quantity)  # defined
        sample_cfg, sizes, kv = arch.sample(random.Random(0), 0)
        assert sample_cfg.model == name and set(sizes) == {"B", "T", "P", "N"}
        assert arch.has_attention == bool(arch.attention_kinds)
        if arch.kv_cache:
            assert True in kv


def test_flags_describe_the_homework_models():
    flags = {n: (a.recurrent, a.has_attention, a.stacked, a.kv_cache, a.torch_twin is not None)
             for n, a in A.ARCHITECTURES.items()}
    assert flags["rnn"] == (True, False, False, False, True)
    assert flags["mlrnn"] == (True, False, True, False, True)
    assert flags["gru"] == (True, False, True, False, True)
    assert flags["transformer"] == (False, True, True, True, False)


def test_unknown_model_and_instance_are_value_errors():
    with pytest.raises(ValueError, match="unknown model 'mamba'"):
        A.architecture("mamba")
    with pytest.raises(ValueError, match="no cost model for Linear"):
        A.config_from_model(nn.Linear(2, 2))


def test_an_entry_without_a_module_for_each_term_is_refused():
    rnn = A.architecture("rnn")
    broken = A.Architecture(**{**rnn.__dict__, "term_modules": {"W_ih": "^W_ih$"}})
    with pytest.raises(ValueError, match="no module pattern for forward term"):
        A.register(broken, replace_existing=True)
    assert A.architecture("rnn") is rnn
    gpt = A.architecture("transformer")
    flops_only = {t: p for t, p in gpt.term_modules.items() if t != "attention"}
    broken = A.Architecture(**{**gpt.__dict__, "term_modules": flops_only})
    with pytest.raises(ValueError, match=r"forward term\(s\) attention$"):
        A.register(broken, replace_existing=True)
    assert A.architecture("transformer") is gpt


# ---------------------------------------------------------------- a toy architecture


class ToyLM(nn.Module):
    """Per-position MLP language model: logits_t = head(tanh(W e(x_t))). No recurrence."""

    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.W = nn.Linear(embed_size, hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)

    @property
    def vocab_size(self):
        return self.embedding.num_embeddings

    def forward_sequence(self, idx, state=None):
        return self.head(torch.tanh(self.W(self.embedding(idx)))), None

    @torch.no_grad()
    def generate(self, prompt_ids, max_new_tokens, greedy=False, **kw):
        idx = start_tokens(prompt_ids, self.vocab_size, prompt_ids.device)
        logits, _ = self.forward_sequence(idx)  # the prompt once, then one token per step
        for i in range(max_new_tokens):
            nxt = sample_next(logits[:, -1], greedy=greedy)
            idx = torch.cat([idx, nxt], dim=1)
            if i < max_new_tokens - 1:
                logits, _ = self.forward_sequence(nxt)
        return idx


class ToyCost(CostModel):
    """Hand derivation: per position 2ED (W) + 2DV (head) FLOPs per row."""

    name = "toy"

    def _step(self, head):
        terms = {"W": 2 * B * E * D}
        if head:
            terms["head"] = 2 * B * D * V
        return terms

    def _params(self):
        return {"embedding": V * E, "W": E * D + D, "head": D * V + V}

    def _forward(self, attention_count, head):
        return {k: T * v for k, v in self._step(head).items()}

    def _backward(self, attention_count, head, kernel):
        # weight and input gradient of both Linears (the embedding output needs its gradient)
        return {k: 2 * T * v for k, v in self._step(head).items()}

    def _generate(self, kv_cache, attention_count, head):
        return {k: (P + N - 1) * v for k, v in self._step(head).items()}

    def _elementwise(self):
        return {"tanh": B * T * D}


class ToyBytes(BytesModel):
    """Hand derivation: W and head each run once over the B T rows with a bias (addmm):
    input, weight and bias read, output written, 4 bytes a float."""

    def _forward(self, kernel):
        return {"W": 4 * (B * T * E + E * D + D + B * T * D),
                "head": 4 * (B * T * D + D * V + V + B * T * V)}


class ToyDepth(DepthModel):
    name = "toy"

    def _forward(self, h):
        return 1 + h, 1 + h

    def _backward(self, h):
        # dlogits -> head input grad (h) -> W weight grad (1); launches: 2 per Linear
        return 1 + h, 2 + 2 * h

    def _generate(self, h):
        return N * (1 + h), N * (1 + h)


def _toy_sample(rng, i):
    cfg = ModelConfig("toy", vocab_size=rng.choice([5, 9]), embed=rng.choice([3, 4]),
                      hidden=rng.choice([4, 6]))
    return cfg, dict(B=rng.choice([1, 2]), T=rng.choice([1, 3]), P=rng.choice([1, 2]),
                     N=rng.choice([1, 3])), (False,)


@pytest.fixture
def toy():
    spec = ModelSpec("toy", "per-position MLP (test only)",
                     lambda c: ToyLM(c.vocab_size, c.embed, c.hidden),
                     dict(embed=4, hidden=6, layers=1), max_layers=1)
    arch = A.register(A.Architecture(
        spec=spec, model_class=ToyLM, cost=ToyCost(), depth=ToyDepth(), bytes=ToyBytes(),
        head_module="head",
        term_modules={"W": r"^W$", "head": r"^head$"},
        read_config=lambda m: ModelConfig("toy", m.vocab_size, embed=m.W.in_features,
                                          hidden=m.hidden_size),
        sample=_toy_sample))
    yield arch
    A.unregister("toy")
    assert "toy" not in MODELS


def test_a_registered_toy_runs_through_every_analysis(toy):
    # FLOP reconciliation on its sampled grid: predicted = PyTorch's counter (and fvcore)
    rng = random.Random(1)
    points = [GridPoint(c, **s, kv_cache=kv) for c, s, kv in (toy.sample(rng, i)
                                                              for i in range(3))]
    frame = reconcile(points, second_counters=True)
    assert frame["verdict"].eq("exact").all(), frame[["quantity", "verdict_detail"]]
    assert set(frame["quantity"]) == {"params", "forward", "backward", "train", "generate"}
    # traced depth = its depth formulas
    cfg = ModelConfig("toy", 7)
    for quantity in ("forward", "train", "generate"):
        row = depth_report(cfg, quantity, batch=2, seq_len=4, prompt_len=2, new_tokens=3)
        assert row["verdict"] == "exact", row
    # traced bytes of every matmul term = its bytes formulas
    for r in reconcile_bytes(GridPoint(cfg, B=2, T=3))[:-1]:
        assert r["measured"] == r["predicted"] > 0, r
    # the notebook API finds it from an instance
    report = flops_report(build_model(cfg), "forward", batch=2, seq_len=3)
    assert report["predicted"] == 2 * 2 * 3 * (4 * 6 + 6 * 7) == report["measured"]["torch"]
    # the bench grids include it, and a round's counted FLOPs equal the prediction
    assert "toy" in variants()
    ws = [w for w in model_workloads("quick") if w.variant == "toy"]
    assert {w.phase for w in ws} == {"forward", "train", "generate"}
    assert not any(w.sweep == "L" for w in ws)  # it does not stack layers
    w = ws[0]
    assert predictions(w)["flops"] == measured_flops(prepare(w))["torch"]


def test_toy_cost_model_is_the_hand_derivation(toy):
    fwd = toy.cost.forward().total
    assert sp.expand(fwd - 2 * B * T * (E * D + D * V)) == 0


def test_the_forward_pass_is_a_loop_or_a_scan_by_the_depth_model_not_the_name():
    from analysis.architectures import ARCHITECTURES

    kinds = {name: (a.loop, a.scan) for name, a in ARCHITECTURES.items()}
    assert kinds["mingru"] == (False, True)  # log-depth parallel scan over T
    for name in ("rnn", "mlrnn", "gru", "lstm"):
        assert kinds[name] == (True, False)
    assert kinds["transformer"] == (False, False)
