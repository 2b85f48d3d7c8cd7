"""analysis.counters' plumbing and bounds, each against an answer worked out by hand here: what
PyTorch's counter is handed on each kind of tensors (progress, the meta shortcut, per-module
counts), the exact real-tensor bounds, the KV cache in the choice of tensors, the second
counters on a given model, immutable results, the counter interface's required methods, and
fvcore's availability worked out once and its count kept off the log.

FLOPs are 2 per multiply-add. The RNN here (`charlm.models.rnn`: embedding, W_ih = Linear(E,
D), W_hh = Linear(D, D), fc = Linear(D, V) at every position) runs 2 * B * T * (E*D + D*D + D*V)
FLOPs in a forward pass; with V, E, D = 11, 5, 7 and B, T = 2, 3: W_ih 6 * 2*5*7 = 420, W_hh
6 * 2*7*7 = 588, fc 6 * 2*7*11 = 924, 1932 in all.
"""

import contextlib
import dataclasses
import logging
import sys

import pytest
import torch
from torch import nn

from analysis import counters as C
from analysis.counters import fvcore as FV
from analysis.counters.base import Count, ForwardCounter
from charlm.models.registry import ModelConfig, build_model

RNN = ModelConfig(model="rnn", vocab_size=11, embed=5, hidden=7, layers=1)
SIZES = {"B": 2, "T": 3}
RNN_BY_MODULE = {"W_ih": 420, "W_hh": 588, "fc": 924}
RNN_FLOPS = 1932
GPT = ModelConfig(model="transformer", vocab_size=11, embed=8, hidden=8, layers=1, heads=2,
                  block_size=8)
GENERATE = {"B": 1, "P": 2, "N": 3}
needs_fvcore = pytest.mark.skipif(not FV.COUNTER.available(), reason="fvcore not installed")


# ---------------------------------------------------------------------------- what the count is
# handed: a stand-in watcher records the tracer, the callback and the interval it is given,
# and calls the callback once at the end with the tracer's count (the real one would call it
# every 10 s, longer than any test here runs)


@pytest.fixture
def watched(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def watch(tracer, progress, every_s):
        calls.append({"tracer": tracer, "progress": progress, "every_s": every_s,
                      "meta_shortcut": tracer.meta_shortcut})
        yield
        if progress is not None:
            progress(tracer.flops, 0.0)

    monkeypatch.setattr(C, "_watch", watch)
    return calls


def test_count_flops_torch_by_default_names_modules_without_the_meta_shortcut(watched):
    x = torch.ones(2, 4)
    seq = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    got = C.count_flops_torch(seq, lambda: seq(x))
    # Linear(4, 3) on 2 rows: 2*2*4*3 = 48; Linear(3, 2): 2*2*3*2 = 24
    assert got == {"total": 72, "by_module": {"0": 48, "2": 24}, "by_operator": {"addmm": 72},
                   "by_phase": {"forward": 72}, "unsupported": {}}
    assert [c["meta_shortcut"] for c in watched] == [False]
    # docs/flops.md: "A count running past 10 s prints ... the FLOPs counted so far"
    assert watched[0]["every_s"] == 10.0 and watched[0]["progress"] is None


def test_the_progress_callback_reads_the_tracer_that_counts(watched):
    lin, x, seen = nn.Linear(4, 3), torch.ones(2, 4), []
    got = C.count_flops_torch(lin, lambda: lin(x), progress=lambda n, s: seen.append(n),
                              every_s=0.5)
    assert got["total"] == 48 and seen == [48]  # 2*2*4*3
    assert watched[0]["every_s"] == 0.5
    assert watched[0]["tracer"].flops == 48


def test_a_count_without_matmuls_has_no_modules_and_lists_the_uncounted_products():
    # no op with FLOPs: not even the whole run ("") has a per-module count
    got = C.count_flops_torch(None, lambda: torch.ones(3) + 1)
    assert got == {"total": 0, "by_module": {}, "by_operator": {}, "by_phase": {"forward": 0},
                   "unsupported": {}}
    # mv does multiply-adds no formula covers (Trace.unsupported's docstring names it)
    got = C.count_flops_torch(None, lambda: torch.mv(torch.ones(3, 4), torch.ones(4)))
    assert got["unsupported"] == {"mv": 1} and got["total"] == 0 and got["by_module"] == {}


def test_the_private_count_names_modules_by_default(watched):
    got = C._count(build_model(RNN), "forward", SIZES, False)
    assert got["total"] == RNN_FLOPS and got["by_module"] == RNN_BY_MODULE
    assert watched[0]["meta_shortcut"] is False and watched[0]["progress"] is None
    with torch.device("meta"):
        meta = build_model(RNN)
    got = C._count(meta, "forward", SIZES, False, "meta")
    assert got["total"] == RNN_FLOPS and watched[1]["meta_shortcut"] is True


@pytest.mark.parametrize("tensors, shortcut", [
    ("given", False), ("real", False), ("meta", True), ("fake", False)])
def test_measure_flops_hands_progress_and_modules_to_every_kind_of_count(
        watched, tensors, shortcut):
    kw = ({"model": build_model(RNN)} if tensors == "given" else {"tensors": tensors})
    seen = []
    got = C.measure_flops(RNN, "forward", SIZES, second_counters=False,
                          progress=lambda n, s: seen.append(n), **kw)
    assert got.torch == RNN_FLOPS and got.by_module == RNN_BY_MODULE
    assert got.tensors == ("real" if tensors == "given" else tensors)
    assert seen == [RNN_FLOPS]
    assert [(c["meta_shortcut"], c["every_s"]) for c in watched] == [(shortcut, 10.0)]
    bare = C.measure_flops(RNN, "forward", SIZES, second_counters=False, modules=False, **kw)
    assert bare.torch == RNN_FLOPS and bare.by_module == {}


def test_real_and_fake_counts_run_on_the_tensors_they_name(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensor

    seen = []
    real_count = C.count_flops_torch

    def spy(model, fn, *args, **kwargs):
        seen.append(any(isinstance(p, FakeTensor) for p in model.parameters()))
        return real_count(model, fn, *args, **kwargs)

    monkeypatch.setattr(C, "count_flops_torch", spy)
    for tensors in ("real", "fake"):
        assert C.measure_flops(RNN, "forward", SIZES, second_counters=False,
                               tensors=tensors).torch == RNN_FLOPS
    assert seen == [False, True]


def test_a_given_model_is_counted_as_real_whatever_tensors_says():
    got = C.measure_flops(RNN, "forward", SIZES, second_counters=False,
                          model=build_model(RNN), tensors="fake")
    assert got.tensors == "real" and got.torch == RNN_FLOPS


def test_the_parameters_of_a_given_model_are_its_own():
    # Linear(4, 3): 4*3 weights and 3 biases, not the RNN's
    got = C.measure_flops(RNN, "params", {}, model=nn.Linear(4, 3))
    assert got == C.FlopMeasurement(torch=15, tensors="real")


@needs_fvcore
def test_the_second_counters_count_a_given_model_not_one_built_from_the_config():
    other = ModelConfig(model="rnn", vocab_size=13, embed=3, hidden=4, layers=1)
    got = C.measure_flops(RNN, "forward", {"B": 1, "T": 2}, model=build_model(other))
    # B*T = 2 positions: W_ih 2*2*3*4 = 48, W_hh 2*2*4*4 = 64, fc 2*2*4*13 = 208 (the
    # config's own RNN would be 2*2*(35 + 49 + 77) = 644)
    fv = got.forward_counts["fvcore"]
    assert fv.total == 320 == got.torch
    assert {k: fv.by_module[k] for k in ("W_ih", "W_hh", "fc")} == {
        "W_ih": 48, "W_hh": 64, "fc": 208}


# ---------------------------------------------------------------------------- the real-tensor
# bounds, exactly: 3e9 predicted FLOPs and 2**26 bytes (64 MiB), both inclusive


def test_real_tensors_suffice_up_to_three_billion_flops():
    cfg = ModelConfig(model="rnn", vocab_size=100, embed=100, hidden=1000, layers=1)
    # 2 * T * (100*1000 + 1000*1000 + 1000*100) = 2.4e6 * T: T = 1250 is exactly 3e9
    assert C.real_tensors_suffice(cfg, "forward", {"B": 1, "T": 1250})
    assert C.tensors_for(cfg, "forward", {"B": 1, "T": 1250}) == "real"
    assert not C.real_tensors_suffice(cfg, "forward", {"B": 1, "T": 1251})  # 3.0024e9
    assert C.tensors_for(cfg, "forward", {"B": 1, "T": 1251}) == "meta"


def test_real_tensors_suffice_up_to_64_mib_of_weights_and_logits():
    # E = D = 1: weights V (embedding) + 2 (W_ih) + 2 (W_hh) + 2V (fc) = 3V + 4, logits V:
    # 4 * (4V + 4) bytes = 16 (V + 1), exactly 2**26 at V = 2**22 - 1; a few million FLOPs
    at = ModelConfig(model="rnn", vocab_size=2**22 - 1, embed=1, hidden=1, layers=1)
    over = ModelConfig(model="rnn", vocab_size=2**22, embed=1, hidden=1, layers=1)
    one = {"B": 1, "T": 1}
    assert C.forward_bytes_estimate(at, one) == 2**26
    assert C.real_tensors_suffice(at, "forward", one)
    assert C.forward_bytes_estimate(over, one) == 2**26 + 16
    assert not C.real_tensors_suffice(over, "forward", one)


# ---------------------------------------------------------------------------- the KV cache in
# the choice: a generation's FLOPs with and without the cache, measured (PyTorch's counter on
# real tensors), bound the prediction the choice reads


@pytest.fixture
def generate_flops():
    return {kv: C.measure_flops(GPT, "generate", GENERATE, kv_cache=kv, tensors="real").torch
            for kv in (False, True)}


def test_the_choice_of_tensors_reads_the_kv_cache(monkeypatch, generate_flops):
    without, with_cache = generate_flops[False], generate_flops[True]
    assert with_cache < without  # without a cache every step reruns the prefix
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_FLOPS", with_cache)
    assert C.real_tensors_suffice(GPT, "generate", GENERATE, kv_cache=True)
    assert not C.real_tensors_suffice(GPT, "generate", GENERATE)  # no cache by default
    assert not C.real_tensors_suffice(GPT, "generate", GENERATE, kv_cache=False)
    assert C.tensors_for(GPT, "generate", GENERATE, kv_cache=True) == "real"
    assert C.tensors_for(GPT, "generate", GENERATE) == "fake"  # attention: fake, not meta
    got = C.measure_flops(GPT, "generate", GENERATE, kv_cache=True)
    assert (got.tensors, got.torch) == ("real", with_cache)
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_FLOPS", without)
    assert C.real_tensors_suffice(GPT, "generate", GENERATE)


def test_the_context_window_comes_from_the_config():
    # a generation's prediction needs C (the window), which the sizes here do not give
    assert "C" not in GENERATE
    assert C.real_tensors_suffice(GPT, "generate", GENERATE, kv_cache=True)
    assert C.real_tensors_suffice(GPT, "generate", GENERATE)


# ---------------------------------------------------------------------------- messages


def test_an_unknown_kind_of_tensors_is_named_as_such():
    with pytest.raises(ValueError, match=r"^unknown tensors 'cuda'; choose from auto, fake, "
                                         r"meta, real$"):
        C.tensors_for(RNN, "forward", SIZES, tensors="cuda")


def test_meta_tensors_for_attention_say_why_not():
    with pytest.raises(ValueError, match=r"^transformer has attention, which the meta device "
                                         r"runs by SDPA's math path, not the CPU kernels: "
                                         r"count it on fake or real tensors$"):
        C.tensors_for(GPT, "forward", {"B": 1, "T": 2}, tensors="meta")


def test_backward_of_says_what_it_needs():
    with pytest.raises(ValueError, match=r"^backward_of needs a train step's measurement "
                                         r"\(forward, backward and optimizer phases\), not one "
                                         r"with phases \['forward'\]$"):
        C.backward_of(C.FlopMeasurement(torch=3, by_phase={"forward": 3}))


# ---------------------------------------------------------------------------- values


def test_measurements_and_counts_cannot_be_changed_in_place():
    m = C.FlopMeasurement(torch=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.torch = 6
    c = Count(total=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.total = 6
    assert (m.torch, c.total) == (5, 5)


def test_a_counter_must_say_whether_it_is_available_and_how_it_counts():
    class NoCount(ForwardCounter):
        name, description, absent = "a", "b", "c"

        def available(self):
            return True

    class NoAvailable(ForwardCounter):
        name, description, absent = "a", "b", "c"

        def count(self, model, inputs):
            return Count(total=1)

    for cls in (NoCount, NoAvailable):
        with pytest.raises(TypeError, match="abstract"):
            cls()


# ---------------------------------------------------------------------------- fvcore


@needs_fvcore
def test_whether_fvcore_counts_is_worked_out_once(monkeypatch):
    first = FV._fvcore_analysis_class()
    assert first is not None
    monkeypatch.setitem(sys.modules, "fvcore.nn", None)  # an import now raises ImportError
    assert FV._fvcore_analysis_class() is first
    assert FV.COUNTER.available()


class _Untidy(nn.Module):
    """A linear layer, an op fvcore has no handle for (tanh) and a layer never called; its
    forward logs a line of its own."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        logging.getLogger("charlm.tests.untidy").warning("the model's own line")
        return torch.tanh(self.proj(x))


def _fvcore_records(caplog):
    return [r for r in caplog.records if r.name.startswith("fvcore")]


@needs_fvcore
def test_fvcore_returns_its_notes_instead_of_logging_them(caplog):
    caplog.set_level(logging.WARNING)  # the root logger's level: the model's line is shown
    jit_log = logging.getLogger("fvcore.nn.jit_analysis")
    level = jit_log.level
    jit_log.setLevel(logging.WARNING)  # a caller who wants fvcore's own warnings
    try:
        c = FV.COUNTER.count(_Untidy(), (torch.ones(2, 3),))
    finally:
        jit_log.setLevel(level)
    assert c.total == 48  # Linear(3, 4) on 2 rows: 2*2*3*4
    assert c.unsupported == {"aten::tanh": 1}
    assert _fvcore_records(caplog) == []
    # the counter quietens fvcore only: the model's own logging goes through
    assert [r.getMessage() for r in caplog.records
            if r.name == "charlm.tests.untidy"] == ["the model's own line"]


@needs_fvcore
def test_fvcore_notes_are_kept_off_the_log_even_where_fvcore_ignores_its_switches(
        monkeypatch, caplog):
    from fvcore.nn import jit_analysis

    def loud(self, ops):  # an fvcore that logs its unsupported operators regardless
        for op, n in ops.items():
            logging.getLogger(jit_analysis.__name__).warning("Unsupported %s %s", op, n)

    monkeypatch.setattr(jit_analysis.JitModelAnalysis, "_warn_unsupported_ops", loud)
    caplog.set_level(logging.WARNING)
    before = logging.getLogger("fvcore").level
    c = FV.COUNTER.count(_Untidy(), (torch.ones(2, 3),))
    assert logging.getLogger("fvcore").level == before  # put back after
    assert c.unsupported == {"aten::tanh": 1}
    assert _fvcore_records(caplog) == []


def test_a_count_on_real_tensors_leaves_the_callers_random_stream_as_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    m = C.measure_flops(RNN, "forward", SIZES, second_counters=False, tensors="real")
    assert m.tensors == "real" and m.torch == RNN_FLOPS
    assert torch.equal(torch.rand(3), expected)  # the count seeded its own weights apart
    # and its weights are seeded: two counts of a given-value quantity agree
    again = C.measure_flops(RNN, "forward", SIZES, second_counters=False, tensors="real")
    assert again.by_module == m.by_module
