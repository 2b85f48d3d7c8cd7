"""Time prediction on hand-made traces and machines with known answers."""

import math

import pandas as pd
import pytest

from analysis.calibrate import Machine
from analysis.optrace import OpRecord, OpTrace
from analysis.predict import accuracy, matmul_shape, predict_trace, workload_from_row


def op(i, kind, flops=0, nbytes=0, depth=1, name=None, shapes=()):
    return OpRecord(i, name or {"matmul": "mm"}.get(kind, kind), kind, flops, nbytes,
                    shapes, (), depth)


def uniform(device="cpu", op_fixed_s=0.0, matmul_fixed_s=0.0, view_fixed_s=0.0,
            min_kernel_s=0.0):
    """Throughput 1e9 FLOP/s for every shape, bandwidth 1e9 B/s."""
    return Machine(device=device, name="t", torch="x", threads=1, op_fixed_s=op_fixed_s,
                   view_fixed_s=view_fixed_s, matmul_fixed_s=matmul_fixed_s,
                   min_kernel_s=min_kernel_s, bandwidth_bytes_per_s=1e9,
                   ceiling_flops_per_s=1e9, matmul_axes={"m": [1, 2], "k": [1, 2], "n": [1, 2]},
                   matmul_flops_per_s=[[[1e9] * 2] * 2] * 2)


TRACE = OpTrace((
    op(0, "matmul", flops=2_000_000, nbytes=1000, shapes=((10, 10), (10, 10))),  # 2 ms, 1 us
    op(1, "elementwise", nbytes=3_000_000, depth=2),  # 3 ms memory
    op(2, "view", depth=2),
))


def test_cpu_sums_max_of_compute_and_memory_plus_fixed():
    m = uniform(op_fixed_s=1e-4, matmul_fixed_s=2e-4, view_fixed_s=1e-5)
    p = predict_trace(TRACE, m)
    assert p["predicted_s"] == pytest.approx(2e-3 + 3e-3 + 1e-4 + 2e-4 + 1e-5)
    assert p["terms"]["compute"]["seconds"] == pytest.approx(2e-3)
    assert p["terms"]["memory"]["seconds"] == pytest.approx(3e-3)
    assert p["regime"] == "memory" and p["kernels"] == 2 and p["depth"] == 2
    assert sum(t["share"] for t in p["terms"].values()) == pytest.approx(1.0)
    assert predict_trace(TRACE, m, fixed=False)["predicted_s"] == pytest.approx(5e-3)


def test_cpu_overhead_regime_when_fixed_costs_dominate():
    tiny = OpTrace(tuple(op(i, "elementwise", nbytes=8, depth=i + 1) for i in range(100)))
    p = predict_trace(tiny, uniform(op_fixed_s=1e-5))
    assert p["regime"] == "launch/overhead"
    assert p["predicted_s"] == pytest.approx(100 * (1e-5 + 8 / 1e9))


def test_cuda_host_bound_is_launches_times_kernels():
    tiny = OpTrace(tuple(op(i, "elementwise", nbytes=8, depth=1) for i in range(100)))
    m = uniform("cuda", op_fixed_s=8e-6, min_kernel_s=1e-6)
    p = predict_trace(tiny, m)
    assert p["predicted_s"] == pytest.approx(100 * 8e-6) and p["bound"] == "host"
    assert p["regime"] == "launch/overhead"
    # no fixed cost (CUDA graphs): the GPU time, each kernel at least min_kernel_s
    assert predict_trace(tiny, m, fixed=False)["predicted_s"] == pytest.approx(100 * 1e-6)


def test_cuda_gpu_bound_and_depth_bound():
    m = uniform("cuda", op_fixed_s=8e-6, min_kernel_s=1e-6)
    p = predict_trace(TRACE, m)
    assert p["predicted_s"] == pytest.approx(5e-3) and p["bound"] == "gpu"
    chain = OpTrace(tuple(op(i, "view", depth=50) for i in range(1)))
    q = predict_trace(chain, m.replace(view_fixed_s=0.0))
    assert q["predicted_s"] == pytest.approx(50 * 1e-6) and q["bound"] == "depth"


def test_matmul_shapes():
    assert matmul_shape(op(0, "matmul", 2 * 3 * 4 * 5, shapes=((3, 4), (4, 5)))) == (3, 4, 5)
    addmm = op(0, "matmul", 0, name="addmm", shapes=((5,), (3, 4), (4, 5)))
    assert matmul_shape(addmm) == (3, 4, 5)
    bmm = op(0, "matmul", 0, name="bmm", shapes=((2, 3, 4), (2, 4, 5)))
    assert matmul_shape(bmm) == (6, 4, 5)


def test_accuracy_on_a_hand_made_frame():
    f = pd.DataFrame({"median_s": [1.0, 1.0, 1.0, 1.0],
                      "predicted_s": [1.2, 0.6, 1.9, 4.0]})
    a = accuracy(f)
    assert a["rows"] == 4
    assert a["within_1_5x"] == 0.25  # only 1.2
    assert a["within_2x"] == 0.75  # 1.2, 0.6 (1/1.67), 1.9
    # |log| sorted: log 1.2, log(1/0.6), log 1.9, log 4 -> median of the middle two
    assert a["median_factor"] == pytest.approx(math.exp((math.log(1 / 0.6) + math.log(1.9)) / 2))


def test_workload_from_a_timing_row():
    row = {"kind": "model", "variant": "transformer-flash", "model": "transformer",
           "attention": "flash", "phase": "generate_cache", "sweep": "N", "B": 8, "T": 24,
           "D": 128, "E": 128, "L": 1, "H": 4, "V": 65, "N": 16, "P": 8, "seq_len": 8}
    w = workload_from_row(row)
    assert (w.batch, w.seq_len, w.new_tokens, w.hidden, w.heads) == (8, 8, 16, 128, 4)
    rnn = workload_from_row({"kind": "model", "variant": "rnn", "model": "rnn", "phase":
                             "forward", "B": 8, "T": 16, "D": 256, "E": 64, "L": 1, "H": 1,
                             "V": 65, "N": float("nan"), "seq_len": 16, "attention": None})
    assert (rnn.embed, rnn.heads, rnn.new_tokens) == (64, None, 0)
