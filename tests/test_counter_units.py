"""The counters package's small parts, each on inputs whose answer is worked out by hand here:
Count and ForwardCounter (analysis.counters.base), fvcore's handles and its count of layers
whose multiply-adds are known (analysis.counters.fvcore), and the helpers of
analysis.counters (exclusive per-module counts, the real-or-shapes choice and its bounds, one
thread while counting, the progress watcher, a backward read off a train step)."""

import threading
import time

import pytest
import torch
from torch import nn

from analysis import counters as C
from analysis.counters import fvcore as FV
from analysis.counters.base import Count, ForwardCounter
from charlm.models.registry import ModelConfig, build_model, count_parameters

# ---------------------------------------------------------------------------- Count


def test_a_count_read_below_a_prefix_keeps_only_the_paths_inside_it():
    c = Count(total=10, by_module={"model": 10, "model.a": 4, "model.a.b": 1,
                                   "modelx.c": 7, "other": 2, "": 12},
              unsupported={"aten::x": 1}, elementwise=3, note="n", by_operator={"mm": 5})
    got = c.under("model")
    # "modelx.c" only shares the letters, "other" and the root are outside
    assert got.by_module == {"": 10, "a": 4, "a.b": 1}
    assert (got.total, got.unsupported, got.elementwise, got.note, got.by_operator) == (
        10, {"aten::x": 1}, 3, "n", {"mm": 5})
    assert c.by_module["model.a"] == 4  # the original is left as it was


def test_a_count_not_made_says_why_and_holds_nothing_else():
    c = Count.not_counted("because")
    assert c == Count(total=None, by_module={}, unsupported=None, elementwise=None,
                      note="because", by_operator={})


# ---------------------------------------------------------------------------- ForwardCounter


class _Probe(ForwardCounter):
    name = "probe"
    description = "a counter for these tests"
    absent = "probe is switched off"

    def __init__(self, here: bool, package=None):
        self.here, self.package, self.calls = here, package, 0

    def available(self):
        return self.here

    def count(self, model, inputs):
        self.calls += 1
        return Count(total=42)


def test_measure_counts_only_where_the_counter_is_available():
    off = _Probe(False)
    assert off.measure(nn.Identity(), ()) == Count.not_counted("probe is switched off")
    assert off.calls == 0  # count() is never reached
    on = _Probe(True)
    assert on.measure(nn.Identity(), ()) == Count(total=42) and on.calls == 1


def test_a_counter_version_is_its_package_version_only_where_it_counts():
    assert _Probe(True).version() is None  # no package
    assert _Probe(False, package="torch").version() is None  # not available
    assert _Probe(True, package="no-such-distribution-charlm").version() is None
    assert _Probe(True, package="torch").version() == torch.__version__


# ---------------------------------------------------------------------------- fvcore


class _Type:
    def __init__(self, sizes):
        self._sizes = sizes

    def sizes(self):
        return self._sizes


class _Value:
    """What fvcore's get_shape reads of a TorchScript value: a complete tensor's sizes."""

    def __init__(self, sizes):
        self._sizes = sizes

    def isCompleteTensor(self):  # noqa: N802 (TorchScript's name)
        return True

    def type(self):
        return _Type(self._sizes)


def test_sdpa_handle_counts_both_products_over_every_leading_dimension():
    # q (2, 3, 5, 4), k (2, 3, 7, 4), v (2, 3, 7, 6): q @ k^T is 2*3 * 5*7*4 multiply-adds,
    # att @ v 2*3 * 5*7*6: 6 * 35 * 10 = 2100 (fvcore's unit: one per multiply-add)
    q, k, v = _Value([2, 3, 5, 4]), _Value([2, 3, 7, 4]), _Value([2, 3, 7, 6])
    assert FV._sdpa_handle([q, k, v], []) == 2100
    # three leading dimensions multiply too: 2*3*4 * 5*7*(4+6) = 8400
    q, k, v = _Value([2, 3, 4, 5, 4]), _Value([2, 3, 4, 7, 4]), _Value([2, 3, 4, 7, 6])
    assert FV._sdpa_handle([q, k, v, _Value([1])], []) == 8400


def test_only_matmul_operators_are_doubled_into_flops():
    ops = {"addmm": 3, "bmm": 2, "matmul": 1, "mm": 1, "linear": 1, "einsum": 1,
           "scaled_dot_product_attention": 1, "layer_norm": 100, "softmax": 50}
    assert FV._matmul_flops(ops) == 2 * (3 + 2 + 1 + 1 + 1 + 1 + 1)
    assert FV._matmul_flops({"layer_norm": 100}) == 0
    assert FV.FVCORE_MATMUL_OPS == {"addmm", "bmm", "matmul", "mm", "linear", "einsum",
                                    "scaled_dot_product_attention"}


class _LinearNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        return self.norm(self.proj(x))


@pytest.mark.skipif(not FV.COUNTER.available(), reason="fvcore not installed")
def test_fvcore_counts_a_linear_layer_doubled_and_layer_norm_apart():
    import logging

    log = logging.getLogger("fvcore")
    log.setLevel(logging.INFO)
    try:
        c = FV.COUNTER.count(_LinearNorm(), (torch.ones(2, 3),))
        assert log.level == logging.INFO  # its logger is quietened only while counting
    finally:
        log.setLevel(logging.NOTSET)
    # Linear(3 -> 4) on 2 rows: 2*3*4 = 24 multiply-adds, 48 FLOPs; LayerNorm(4) with its
    # affine weights on 2*4 elements: fvcore's 5 per element = 40, in its own units
    assert c.total == 48
    assert c.by_operator == {"linear": 24, "layer_norm": 40}
    assert c.elementwise == 40
    assert c.by_module[""] == 48 and c.by_module["proj"] == 48 and c.by_module["norm"] == 0
    assert c.unsupported == {} and c.note is None


# ---------------------------------------------------------------------------- per-module counts


def test_exclusive_counts_take_each_child_off_its_nearest_counted_parent():
    by_module = {"a": 10, "a.b": 4, "a.b.c": 1, "a.d": 3, "x.y": 2, "p": 5, "p.q.r": 2}
    # a: 10 - 4 (a.b) - 3 (a.d) = 3; a.b: 4 - 1 = 3; p.q.r's nearest counted parent is p
    # (p.q is not counted): 5 - 2 = 3; x.y has no counted parent
    assert C.exclusive_module_flops(by_module) == {
        "a": 3, "a.b": 3, "a.b.c": 1, "a.d": 3, "x.y": 2, "p": 3, "p.q.r": 2}
    assert by_module["a"] == 10  # not changed in place


def test_module_flops_sums_the_exclusive_counts_of_the_matching_paths():
    by_module = {"a": 10, "a.b": 4, "a.b.c": 1, "a.d": 3}
    assert C.module_flops(by_module, r"\.b") == 3 + 1  # a.b's own 3 and a.b.c's 1
    assert C.module_flops(by_module, r"^a$") == 3
    assert C.module_flops(by_module, "zzz") == 0


# ---------------------------------------------------------------------------- real or shapes


RNN = ModelConfig(model="rnn", vocab_size=11, embed=5, hidden=7, layers=1)


def test_forward_bytes_are_float32_weights_and_logits():
    params = count_parameters(build_model(RNN))
    assert C.forward_bytes_estimate(RNN, {"B": 3, "T": 4}) == 4 * (params + 3 * 4 * 11)
    assert C.forward_bytes_estimate(RNN, {}) == 4 * (params + 11)  # B and T default to 1


def test_real_tensors_suffice_up_to_both_bounds_inclusive(monkeypatch):
    sizes = {"B": 2, "T": 3}
    nbytes = C.forward_bytes_estimate(RNN, sizes)
    flops = C.measure_flops(RNN, "forward", sizes, second_counters=False).torch
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_BYTES", nbytes)
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_FLOPS", flops)
    assert C.real_tensors_suffice(RNN, "forward", sizes)  # exactly at both bounds
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_FLOPS", flops - 1)
    assert not C.real_tensors_suffice(RNN, "forward", sizes)
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_FLOPS", flops)
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_BYTES", nbytes - 1)
    assert not C.real_tensors_suffice(RNN, "forward", sizes)


def test_real_tensors_do_not_suffice_when_a_size_is_unknown():
    # a forward needs B and T: without T its FLOPs cannot be predicted
    assert not C.real_tensors_suffice(RNN, "forward", {"B": 2})
    assert C.real_tensors_suffice(RNN, "forward", {"B": 2, "T": 3})


def test_the_tensors_picked_for_a_count(monkeypatch):
    gpt = ModelConfig(model="transformer", vocab_size=11, embed=8, hidden=8, layers=1,
                      heads=2, block_size=8)
    small = {"B": 1, "T": 2}
    assert C.tensors_for(RNN, "forward", small) == "real"
    assert C.tensors_for(RNN, "forward", small, tensors="fake") == "fake"
    monkeypatch.setattr(C, "REAL_TENSOR_MAX_BYTES", 0)  # nothing is cheap enough now
    assert C.tensors_for(RNN, "forward", small) == "meta"  # no attention: meta
    assert C.tensors_for(gpt, "forward", small) == "fake"  # attention: fake
    with pytest.raises(ValueError, match="has attention"):
        C.tensors_for(gpt, "forward", small, tensors="meta")
    with pytest.raises(ValueError):
        C.tensors_for(RNN, "forward", small, tensors="cuda")


# ---------------------------------------------------------------------------- while counting


def test_one_thread_while_counting_and_the_callers_setting_back_after():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with C.single_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), C.single_thread():
            raise RuntimeError("a count failed")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class _Counting:
    flops = 0


def test_the_watcher_reports_the_count_so_far_until_the_block_ends():
    tracer, calls = _Counting(), []
    threads = threading.active_count()
    with C._watch(tracer, lambda n, s: calls.append((n, s)), every_s=0.02):
        assert threading.active_count() == threads + 1
        tracer.flops = 7
        time.sleep(0.15)
    assert threading.active_count() == threads  # joined when the block ended
    n_calls = len(calls)
    assert n_calls >= 2
    assert all(n == 7 for n, _ in calls)
    seconds = [s for _, s in calls]
    assert seconds == sorted(seconds) and 0.015 < seconds[0] < 0.15
    time.sleep(0.06)
    assert len(calls) == n_calls  # and reports nothing after


def test_no_watcher_without_a_progress_callback():
    before = threading.active_count()
    with C._watch(_Counting(), None, every_s=0.001):
        assert threading.active_count() == before


# ---------------------------------------------------------------------------- backward


def test_the_backward_read_off_a_train_step():
    step = C.FlopMeasurement(torch=100, tensors="meta",
                             by_phase={"forward": 30, "backward": 60, "optimizer": 10})
    got = C.backward_of(step)
    assert got == C.FlopMeasurement(torch=60, tensors="meta", by_phase={"backward": 60})
    # a step whose backward ran no matmul still has a backward phase of 0
    assert C.backward_of(C.FlopMeasurement(torch=5, by_phase={"optimizer": 5})).torch == 0
    with pytest.raises(ValueError, match=r"not one with phases \['backward', 'forward'\]"):
        C.backward_of(C.FlopMeasurement(torch=9, by_phase={"forward": 3, "backward": 6}))


def test_not_counted_names_every_registered_counter():
    got = C.not_counted(lambda name: f"{name}: not a forward")
    assert set(got) == set(C.FORWARD_COUNTERS) and got
    for name, c in got.items():
        assert c == Count.not_counted(f"{name}: not a forward")
