import pytest
import torch

from analysis.workloads import (
    GPU_ATTENTION_T,
    GRIDS,
    PHASES,
    Workload,
    attention_pair_outputs,
    attention_workloads,
    measured_flops,
    model_variants,
    model_workloads,
    predictions,
    prepare,
    reference_workloads,
)

TINY = dict(batch=2, seq_len=5, hidden=8, vocab=11)
MODEL_VARIANTS = model_variants()


def _phases(variant):
    # the homework's Transformer variants also generate with the KV cache
    with_cache = variant in ("transformer-flash", "transformer-manual")
    return set(PHASES) if with_cache else {"forward", "train", "generate"}


@pytest.mark.parametrize("grid", list(GRIDS))
def test_every_grid_covers_each_model_and_phase_with_unique_ids(grid):
    assert set(MODEL_VARIANTS) >= {"rnn", "mlrnn", "gru", "transformer-flash",
                                   "transformer-manual"}
    ws = model_workloads(grid)
    assert len({w.id for w in ws}) == len(ws)
    for variant in MODEL_VARIANTS:
        assert {w.phase for w in ws if w.variant == variant} == _phases(variant)
    assert {w.sweep for w in ws} == {"T", "D", "L", "N"}


def test_attention_sweep_reaches_512_on_cpu_and_2048_on_gpu():
    assert max(w.seq_len for w in attention_workloads("default", "cpu")) == 512
    gpu = max(w.seq_len for w in attention_workloads("default", "cuda"))
    assert gpu == max(GPU_ATTENTION_T) == 2048


def test_reference_workloads_pair_each_homework_loop_with_its_torch_twin():
    ws = reference_workloads("quick")
    homework = {(w.spec.model, w.phase, w.seq_len) for w in ws if w.spec.impl == "homework"}
    torch_nn = {(w.spec.model, w.phase, w.seq_len) for w in ws if w.spec.impl == "torch"}
    assert homework == torch_nn and {m for m, _, _ in homework} >= {"rnn", "mlrnn", "gru"}


@pytest.mark.parametrize("variant", MODEL_VARIANTS)
def test_predicted_flops_equal_the_counter_on_what_a_round_runs(variant):
    for phase in _phases(variant):
        gen = phase.startswith("generate")
        w = Workload(variant, phase, layers=None if variant == "rnn" else 2,
                     heads=2 if Workload(variant, "forward").arch.has_attention else None,
                     new_tokens=3 if gen else 0, **TINY)
        assert predictions(w)["flops"] == measured_flops(prepare(w))["torch"], w.id


@pytest.mark.parametrize("model, layers", [("rnn", 1), ("mlrnn", 3), ("gru", 1), ("gru", 2)])
def test_torch_nn_twin_computes_the_homework_models_logits(model, layers):
    p = prepare(Workload(f"{model}-torch", "forward", layers=layers, **TINY))
    homework, fused = p.outputs
    torch.testing.assert_close(fused, homework)


def test_flash_and_manual_attention_layers_agree():
    flash, manual = attention_pair_outputs(Workload("attention-flash", "forward", batch=2,
                                                    seq_len=16, hidden=16, heads=4))
    torch.testing.assert_close(flash, manual)


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="elman", phase="forward"), "unknown variant"),
    (dict(variant="rnn", phase="backprop"), "unknown phase"),
    (dict(variant="rnn", phase="generate"), "new_tokens"),
    (dict(variant="gru", phase="generate_cache", new_tokens=2), "applies to transformer only"),
    (dict(variant="attention-flash", phase="train"), "forward pass only"),
])
def test_bad_workloads_are_rejected_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Workload(**kwargs)


def test_the_meta_pointwise_shortcut_returns_what_each_meta_kernel_returns():
    from analysis.quantities import _MetaPointwise, meta_pointwise

    aten = torch.ops.aten
    a = torch.empty(3, 5, device="meta")
    b = torch.empty(3, 5, device="meta")
    calls = {  # every op the shortcut takes, with the argument forms the models use
        aten.add.Tensor: ((a, b), {"alpha": 2}), aten.sub.Tensor: ((a, b), {}),
        aten.mul.Tensor: ((a, b), {}), aten.div.Tensor: ((a, b), {}),
        aten.add.Scalar: ((a, 1.5), {}), aten.mul.Scalar: ((a, 2), {}),
        aten.rsub.Scalar: ((a, 1), {}), aten.neg.default: ((a,), {}),
        aten.sigmoid.default: ((a,), {}), aten.tanh.default: ((a,), {}),
        aten.exp.default: ((a,), {}), aten.sigmoid_backward.default: ((a, b), {}),
        aten.tanh_backward.default: ((a, b), {}),
    }
    assert set(calls) == set(_MetaPointwise.OPS)
    for op, (args, kwargs) in calls.items():
        want = op(*args, **kwargs)
        with meta_pointwise():
            got = op(*args, **kwargs)
        assert (got.shape, got.dtype, got.stride(), got.device) == (
            want.shape, want.dtype, want.stride(), want.device), op
    # what it leaves to the meta kernel: broadcasting, mixed dtypes, strided views, ints
    transposed = (a.t() * b.t()).stride()  # (1, 5): the inputs' layout, not contiguous
    with meta_pointwise():
        assert (a + torch.empty(5, device="meta")).shape == (3, 5)
        assert (a * torch.empty(3, 5, device="meta", dtype=torch.float64)).dtype == torch.float64
        assert (a.t() * b.t()).stride() == transposed
        ints = torch.empty(3, device="meta", dtype=torch.int64)
        assert (ints * 1.5).dtype == torch.float32
