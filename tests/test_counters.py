"""The two counters as integrated here: CPU SDPA counted, fvcore converted and complete, the
measured boundary terms, and fvcore's import warning filtered by message only."""

import re
import subprocess
import sys
import warnings

import pytest
import torch
from torch.nn import functional as F

from analysis import counters
from analysis.formulas import ELEMENTWISE_COST
from analysis.trace import cpu_sdpa_mapping
from charlm.models.registry import ModelConfig, build_model

FVCORE = counters.FORWARD_COUNTERS["fvcore"]
needs_fvcore = pytest.mark.skipif(not FVCORE.available(), reason="fvcore not installed")


def _qkv(b=2, h=3, t=5, s=5, hd=4):
    q = torch.randn(b, h, t, hd, requires_grad=True)
    k = torch.randn(b, h, s, hd, requires_grad=True)
    v = torch.randn(b, h, s, hd, requires_grad=True)
    return q, k, v


def test_cpu_sdpa_kernels_get_formulas_on_this_torch():
    assert len(cpu_sdpa_mapping()) == 2


def test_sdpa_forward_counts_full_square_on_cpu():
    b, h, t, hd = 2, 3, 5, 4
    q, k, v = _qkv(b, h, t, t, hd)
    counted = counters.count_flops_torch(
        None, lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert counted["total"] == 4 * b * h * t * t * hd


def test_sdpa_backward_counts_five_matmuls():
    b, h, t, hd = 2, 3, 5, 4
    q, k, v = _qkv(b, h, t, t, hd)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    counted = counters.count_flops_torch(None, lambda: out.sum().backward())
    assert counted["total"] == 5 * 2 * b * h * t * t * hd


@pytest.mark.parametrize("quantity", ["forward", "backward"])
def test_flash_and_manual_attention_differ_only_by_backward_recompute(quantity):
    sizes = {"B": 2, "T": 6}
    base = ModelConfig("transformer", 11, hidden=8, layers=2, heads=2, block_size=8)
    flash = counters.measure_flops(base.with_(attention="flash"), quantity, sizes,
                                   second_counters=False)
    manual = counters.measure_flops(base.with_(attention="manual"), quantity, sizes,
                                    second_counters=False)
    recompute = 2 * 2 * 2 * 6 * 6 * 8 if quantity == "backward" else 0  # 2 B L T^2 D
    assert flash.torch - manual.torch == recompute


def test_recurrent_backward_misses_input_gradient_through_h0():
    b, t, d, e, layers, v = 2, 5, 6, 4, 3, 7
    cfg = ModelConfig("mlrnn", v, embed=e, hidden=d, layers=layers)
    model = build_model(cfg)
    fwd = counters.measure_flops(cfg, "forward", {"B": b, "T": t}, second_counters=False,
                                 model=model)
    bwd = counters.measure_flops(cfg, "backward", {"B": b, "T": t}, model=model)
    assert bwd.torch == 2 * fwd.torch - 2 * b * layers * d * d


def test_train_step_is_forward_plus_backward_adam_adds_no_matmul():
    cfg = ModelConfig("gru", 9, embed=4, hidden=6, layers=2)
    sizes = {"B": 2, "T": 4}
    model = build_model(cfg)
    parts = [counters.measure_flops(cfg, q, sizes, second_counters=False, model=model).torch
             for q in ("forward", "backward", "train")]
    assert parts[2] == parts[0] + parts[1]


def test_module_attribution_names_every_block_separately():
    cfg = ModelConfig("transformer", 11, hidden=8, layers=2, heads=2, block_size=8)
    measured = counters.measure_flops(cfg, "forward", {"B": 1, "T": 4}, second_counters=False)
    names = measured.by_module
    assert {"transformer.blocks.0.attn.c_attn", "transformer.blocks.1.attn.c_attn",
            "lm_head"} <= set(names)
    # the attention kernel itself is the attn module's own work: 4 B T^2 D per layer
    assert counters.module_flops(names, r"\.attn$") == 2 * 4 * 1 * 4 * 4 * 8


def test_exclusive_module_flops_subtracts_children_and_skips_missing_levels():
    by_module = {"a": 10, "a.b": 4, "a.b.c": 1, "a.x.y": 3}
    assert counters.exclusive_module_flops(by_module) == {"a": 3, "a.b": 3, "a.b.c": 1,
                                                         "a.x.y": 3}


@needs_fvcore
@pytest.mark.parametrize("attention", ["flash", "manual"])
def test_fvcore_forward_matches_torch_counter_after_doubling(attention):
    cfg = ModelConfig("transformer", 11, hidden=8, layers=2, heads=2, block_size=8,
                      attention=attention)
    measured = counters.measure_flops(cfg, "forward", {"B": 3, "T": 5})
    fv = measured.forward_counts["fvcore"]
    assert fv.total == measured.torch
    assert "aten::scaled_dot_product_attention" not in fv.unsupported


@needs_fvcore
def test_fvcore_lists_unsupported_ops_and_counts_layernorm_as_elementwise():
    b, t, d, layers = 3, 5, 8, 2
    cfg = ModelConfig("transformer", 11, hidden=d, layers=layers, heads=2, block_size=8)
    fv = counters.measure_flops(cfg, "forward", {"B": b, "T": t}).forward_counts["fvcore"]
    assert "aten::gelu" in fv.unsupported
    # fvcore's LayerNorm count is the elementwise tier's: 5 per element, 2L + 1 norms
    layernorms = 2 * layers + 1
    assert fv.elementwise == ELEMENTWISE_COST["layernorm"] * b * t * d * layernorms


@needs_fvcore
def test_fvcore_unrolls_recurrent_loops_and_matches():
    cfg = ModelConfig("gru", 9, embed=4, hidden=6, layers=2)
    measured = counters.measure_flops(cfg, "forward", {"B": 2, "T": 3})
    assert measured.forward_counts["fvcore"].total == measured.torch > 0


def test_fvcore_import_warning_filter_matches_only_torch_jit_script_message():
    pattern = re.compile(counters.fvcore.FVCORE_IMPORT_WARNING)
    assert pattern.match("`torch.jit.script` is deprecated. Please switch to `torch.compile`")
    assert pattern.match("torch.jit.script is deprecated")
    assert not pattern.match("torch.jit.trace is deprecated")


@needs_fvcore
def test_fvcore_import_under_warnings_as_errors_keeps_other_warnings_raising():
    code = (
        "import warnings\n"
        "from analysis.counters import FORWARD_COUNTERS\n"
        "assert FORWARD_COUNTERS['fvcore'].available()\n"
        "try:\n"
        "    warnings.warn('something else', DeprecationWarning)\n"
        "except DeprecationWarning:\n"
        "    print('still raised')\n"
    )
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "still raised"


def test_measure_rejects_bad_requests():
    cfg = ModelConfig("transformer", 11, hidden=8, layers=1, heads=2, block_size=8)
    with pytest.raises(ValueError, match="exceeds block_size"):
        counters.measure_flops(cfg, "forward", {"B": 1, "T": 9})
    with pytest.raises(ValueError, match="generate size N must be a positive integer"):
        counters.measure_flops(cfg, "generate", {"B": 1, "P": 2, "N": 0})
    with pytest.raises(ValueError, match="KV cache"):
        counters.measure_flops(ModelConfig("gru", 5), "generate", {"B": 1, "P": 1, "N": 1},
                               kv_cache=True)
    with pytest.raises(ValueError, match="unknown quantity"):
        counters.measure_flops(cfg, "inference", {})


def test_no_warning_escapes_a_measurement():
    cfg = ModelConfig("transformer", 11, hidden=8, layers=1, heads=2, block_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counters.measure_flops(cfg, "train", {"B": 1, "T": 3})


def test_without_fvcore_its_counts_are_none_and_torch_still_counts(monkeypatch):
    # the GPU machines have no fvcore
    monkeypatch.setattr(counters.fvcore, "_fvcore_analysis_class", lambda: None)
    assert not FVCORE.available() and FVCORE.version() is None
    cfg = ModelConfig("rnn", 5, embed=3, hidden=4)
    measured = counters.measure_flops(cfg, "forward", {"B": 1, "T": 2})
    fv = measured.forward_counts["fvcore"]
    assert fv.total is None and fv.unsupported is None and fv.note == "fvcore is not installed"
    assert measured.torch == 2 * 1 * 2 * (3 * 4 + 4 * 4 + 4 * 5)


# ------------------------------------------------------------------ counting on fake tensors


@pytest.mark.parametrize("cfg", [
    ModelConfig("rnn", 7, embed=3, hidden=4),
    ModelConfig("mlrnn", 7, embed=3, hidden=4, layers=2),
    ModelConfig("gru", 7, embed=3, hidden=4, layers=2),
    ModelConfig("transformer", 7, hidden=8, layers=2, heads=2, block_size=6, attention="flash"),
    ModelConfig("transformer", 7, hidden=8, layers=2, heads=2, block_size=6, attention="manual"),
], ids=lambda c: f"{c.model}-{c.attention}")
def test_fake_tensor_counts_equal_real_tensor_counts(cfg):
    # the default path counts on fake tensors; a real model must give the same numbers,
    # module attribution included (the reconciliation compares terms per module)
    sizes = {"B": 2, "T": 5, "P": 2, "N": 3}
    for quantity in ("params", "forward", "backward", "train", "generate"):
        for kv in (False, True) if quantity == "generate" and cfg.model == "transformer" else (
                False,):
            fake = counters.measure_flops(cfg, quantity, sizes, kv_cache=kv, second_counters=False,
                                          tensors="fake")
            real = counters.measure_flops(cfg, quantity, sizes, kv_cache=kv, second_counters=False,
                                          model=build_model(cfg))
            assert (fake.tensors, real.tensors) == ("fake", "real")
            assert fake.torch == real.torch > 0, (quantity, kv)
            assert fake.by_module == real.by_module, (quantity, kv)


def test_a_model_too_large_for_memory_is_counted_without_allocating():
    # D=8192, L=4, T=4096, B=8 would need ~3.2 GB of weights and tens of GB of activations;
    # on fake tensors the count takes seconds and leaves the process's peak memory alone
    import resource

    b, t, d, n_layer, v = 8, 4096, 8192, 4, 65
    cfg = ModelConfig("transformer", v, hidden=d, layers=n_layer, heads=64, block_size=t)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    measured = counters.measure_flops(cfg, "train", {"B": b, "T": t})
    # hand derivation: forward B(24 L T D^2 + 4 L T^2 D + 2 T D V); backward twice that, plus
    # the flash kernel's recomputed scores 2 B L T^2 D
    forward = b * (24 * n_layer * t * d * d + 4 * n_layer * t * t * d + 2 * t * d * v)
    assert measured.torch == 3 * forward + 2 * b * n_layer * t * t * d
    both = counters.measure_flops(cfg, "forward", {"B": b, "T": t}, second_counters=True)
    assert both.torch == forward
    if FVCORE.available():  # fvcore traces the meta device: any size, no memory
        fv = both.forward_counts["fvcore"]
        assert fv.total == forward and fv.note is None
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 300


# one small config of every architecture without attention, then the transformer's kernels
NO_ATTENTION = [
    ModelConfig("rnn", 7, embed=3, hidden=4),
    ModelConfig("mlrnn", 7, embed=3, hidden=4, layers=2),
    ModelConfig("gru", 7, embed=3, hidden=4, layers=2),
    ModelConfig("lstm", 7, embed=3, hidden=4, layers=2),
    ModelConfig("mingru", 7, hidden=4, layers=2),
]
EVERY_KERNEL = NO_ATTENTION + [
    ModelConfig("transformer", 7, hidden=8, layers=2, heads=2, block_size=6, attention=kernel)
    for kernel in ("flash", "manual")]


@needs_fvcore
@pytest.mark.parametrize("cfg", EVERY_KERNEL, ids=lambda c: f"{c.model}-{c.attention}")
def test_fvcore_on_the_meta_device_counts_what_it_counts_on_real_tensors(cfg):
    # the default fvcore path traces a meta model (nothing computed); its every operator
    # count, unsupported ones included, must be those of a real model's trace
    sizes = {"B": 2, "T": 5}
    meta = counters.count_forward(cfg, sizes, tensors="meta")["fvcore"]
    real = counters.count_forward(cfg, sizes, model=build_model(cfg))["fvcore"]
    assert meta.total == real.total > 0
    assert meta.by_operator == real.by_operator
    assert meta.unsupported == real.unsupported


def test_forward_bytes_estimate_is_float32_bytes_of_weights_and_logits():
    # a one-layer GRU, V = 7, E = 3, D = 4, no gate biases: embedding V E = 21, input weights
    # 3 E D = 36, hidden weights 3 D^2 = 48, fc D V + V = 28 + 7 = 35: 140 weights; logits
    # B T V = 2 * 3 * 7 = 42; (140 + 42) elements * 4 bytes (float32) = 728 bytes
    cfg = ModelConfig("gru", 7, embed=3, hidden=4, layers=1)
    assert sum(p.numel() for p in build_model(cfg).parameters()) == 140
    assert counters.forward_bytes_estimate(cfg, {"B": 2, "T": 3}) == 728
    # no sizes: B = T = 1, logits 7: (140 + 7) * 4 = 588
    assert counters.forward_bytes_estimate(cfg, {}) == 588


def test_counting_picks_real_tensors_for_tiny_work_meta_or_fake_for_large():
    tiny = ModelConfig("gru", 7, embed=3, hidden=4)
    wide = ModelConfig("gru", 7, embed=3, hidden=4096)
    attention = ModelConfig("transformer", 7, hidden=1024, heads=4, block_size=256)
    assert counters.measure_flops(tiny, "train", {"B": 2, "T": 3}).tensors == "real"
    # forward 2 B T (3 D (E + D)) ~ 4e9 FLOPs: above REAL_TENSOR_MAX_FLOPS
    assert counters.measure_flops(wide, "forward", {"B": 2, "T": 40}).tensors == "meta"
    # 24 T D^2 ~ 6.4e9 (weights 12 D^2 floats, 50 MB: under 64 MiB): above
    # REAL_TENSOR_MAX_FLOPS, and attention never runs on meta
    assert counters.measure_flops(attention, "forward", {"B": 1, "T": 256}).tensors == "fake"
    # T = 64: 1.6e9, under 3e9: real
    assert counters.measure_flops(attention, "forward", {"B": 1, "T": 64}).tensors == "real"
    forced = counters.measure_flops(tiny, "train", {"B": 2, "T": 3}, tensors="fake")
    assert forced.tensors == "fake"
    with pytest.raises(ValueError, match="unknown tensors 'cuda'"):
        counters.measure_flops(tiny, "forward", {"B": 2, "T": 3}, tensors="cuda")
    with pytest.raises(ValueError, match="math path"):
        counters.measure_flops(attention, "train", {"B": 1, "T": 4}, tensors="meta")


@pytest.mark.parametrize("cfg", NO_ATTENTION, ids=lambda c: c.model)
def test_meta_tensor_counts_equal_real_tensor_counts(cfg):
    # models without attention count on the meta device at large sizes: every quantity,
    # module attribution included, must be what real tensors give
    sizes = {"B": 2, "T": 5, "P": 2, "N": 3}
    for quantity in ("forward", "backward", "train", "generate"):
        meta = counters.measure_flops(cfg, quantity, sizes, second_counters=False, tensors="meta")
        real = counters.measure_flops(cfg, quantity, sizes, second_counters=False, tensors="real")
        assert (meta.tensors, real.tensors) == ("meta", "real")
        assert meta.torch == real.torch > 0, quantity
        assert meta.by_module == real.by_module, quantity


def test_a_long_count_reports_the_flops_counted_so_far():
    import time

    seen = []

    def slow_matmuls():
        a = torch.ones(4, 4)
        for _ in range(30):
            a @ a  # 2 * 4^3 = 128 FLOPs each
            time.sleep(0.005)

    done = counters.count_flops_torch(None, slow_matmuls, progress=lambda n, s: seen.append(n),
                                      every_s=0.02)
    assert done["total"] == 30 * 128
    assert seen, "no progress reported during a 0.15 s count with every_s=0.02"
    assert seen == sorted(seen) and all(n % 128 == 0 and 0 <= n <= 30 * 128 for n in seen)
    quiet = []
    counters.count_flops_torch(None, slow_matmuls, progress=quiet.append, every_s=60)
    assert quiet == []


@needs_fvcore
def test_second_counters_take_real_tensors_for_tiny_forwards_meta_for_large(monkeypatch):
    seen = []
    measure = counters.forward_counts

    def spy(model, inputs):
        seen.append(inputs[0].device.type)
        return measure(model, inputs)

    monkeypatch.setattr(counters, "forward_counts", spy)
    tiny = ModelConfig("gru", 7, embed=3, hidden=4)
    wide = ModelConfig("gru", 7, embed=3, hidden=4096)  # 3 D^2 weights: 200 MB
    # B T (2 * 3 D (E + D)) = 2 * 3 * 24 * 7 = 1,008 FLOPs: real; 4e9 and 200 MB: meta
    counts = [counters.count_forward(cfg, sizes, tensors=kind)["fvcore"].total
              for cfg, sizes, kind in ((tiny, {"B": 2, "T": 3}, "auto"),
                                       (tiny, {"B": 2, "T": 3}, "meta"),
                                       (wide, {"B": 2, "T": 40}, "auto"),
                                       (tiny, {"B": 2, "T": 3}, "real"))]
    assert seen == ["cpu", "meta", "meta", "cpu"]
    # building the real model drew no number from the caller's random stream
    torch.manual_seed(5)
    first = torch.rand(1)
    torch.manual_seed(5)
    counters.count_forward(tiny, {"B": 2, "T": 3}, tensors="real")
    assert torch.equal(torch.rand(1), first)
    assert counts[0] == counts[1] == counts[3]
    with pytest.raises(ValueError, match="unknown tensors 'fake'"):
        counters.count_forward(tiny, {"B": 2, "T": 3}, tensors="fake")


@pytest.mark.parametrize("cfg", EVERY_KERNEL, ids=lambda c: f"{c.model}-{c.attention}")
def test_a_train_steps_backward_phase_is_what_a_lone_backward_counts(cfg):
    sizes = {"B": 2, "T": 5}
    train = counters.measure_flops(cfg, "train", sizes, second_counters=False)
    alone = {q: counters.measure_flops(cfg, q, sizes, second_counters=False).torch
             for q in ("forward", "backward")}
    # phases measured apart: the step's forward is a forward (with the loss, no matmul),
    # its backward a lone backward, and Adam does no matmul
    assert train.by_phase == {"forward": alone["forward"], "backward": alone["backward"],
                              "optimizer": 0}
    assert train.torch == alone["forward"] + alone["backward"]
    backward = counters.backward_of(train)
    assert backward.torch == alone["backward"] > 0
    assert backward.by_module == {} and backward.tensors == train.tensors


def test_backward_of_needs_a_train_step():
    cfg = ModelConfig("gru", 7, embed=3, hidden=4)
    forward = counters.measure_flops(cfg, "forward", {"B": 2, "T": 3}, second_counters=False)
    assert forward.by_phase == {"forward": forward.torch}
    with pytest.raises(ValueError, match=r"needs a train step's measurement .* \['forward'\]"):
        counters.backward_of(forward)


def test_counting_without_modules_gives_the_total_and_no_module_counts():
    cfg = ModelConfig("transformer", 7, hidden=8, layers=2, heads=2, block_size=6)
    sizes = {"B": 2, "T": 5}
    for tensors in ("real", "fake"):
        both = counters.measure_flops(cfg, "train", sizes, second_counters=False,
                                      tensors=tensors)
        bare = counters.measure_flops(cfg, "train", sizes, second_counters=False,
                                      tensors=tensors, modules=False)
        assert bare.torch == both.torch and bare.by_phase == both.by_phase
        assert bare.by_module == {} and both.by_module["transformer.blocks.0"] > 0


@needs_fvcore
@pytest.mark.parametrize("q_shape, kv_shape", [((2, 3, 4), (2, 5, 4)),
                                               ((2, 3, 2, 3, 4), (2, 3, 2, 5, 4))])
def test_fvcore_sdpa_handle_reads_batch_queries_and_keys_from_the_ends(q_shape, kv_shape):
    # SDPA takes (..., L, E) queries and (..., S, E) keys and values: the batch is every dim
    # before the last two, whatever their number. q @ k^T and att @ v: batch L S (E + E)
    # multiply-adds, 2 FLOPs each. 3-D: batch 2, 2 x 3 x 5 x 8 = 240 -> 480 FLOPs; 5-D: batch
    # 2 x 3 x 2 = 12, 12 x 3 x 5 x 8 = 1440 -> 2880 FLOPs
    class Attend(torch.nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(q_shape), torch.randn(kv_shape), torch.randn(kv_shape)
    expected = 480 if len(q_shape) == 3 else 2880
    fv = FVCORE.count(Attend(), (q, k, v))
    assert fv.total == expected
    assert fv.by_operator == {"scaled_dot_product_attention": expected // 2}  # multiply-adds
    # PyTorch's counter agrees (its own SDPA formula, the full square)
    assert counters.count_flops_torch(None, lambda: Attend()(q, k, v))["total"] == expected
