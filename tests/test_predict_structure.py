"""The fused CPU recurrence (mkldnn_rnn_layer): its input product over every step at once,
its hidden product step by step, each at its own shape's throughput (hand-computed)."""

import pytest

from analysis.calibrate import Machine
from analysis.predict import predict_trace
from analysis.trace import OpEvent, Trace


def machine_rate_grows_with_rows() -> Machine:
    """Throughput 1e8 FLOP/s at m = 1 and 1e10 at m = 100, whatever k and n: log-log
    interpolation gives 1e9 at m = 10. No fixed cost, memory free."""
    row = [[1e8, 1e8], [1e8, 1e8]]
    big = [[1e10, 1e10], [1e10, 1e10]]
    return Machine(device="cpu", name="t", torch="x", threads=1, op_fixed_s=0.0,
                   view_fixed_s=0.0, matmul_fixed_s=0.0, min_kernel_s=0.0,
                   bandwidth_bytes_per_s=1e30, ceiling_flops_per_s=1e12,
                   matmul_axes={"m": [1, 100], "k": [1, 100], "n": [1, 100]},
                   matmul_flops_per_s=[row, big])


def fused(name: str) -> OpEvent:
    # x (T=10, B=10, E=8), input weights (G D = 32, E = 8), hidden weights (32, D = 8)
    return OpEvent(0, name, "elementwise", 0, 0, ((10, 10, 8), (32, 8), (32, 8)), (), 1,
                   phase="backward" if name.endswith("backward") else "forward")


def test_fused_layer_input_product_at_all_steps_hidden_product_per_step():
    m = machine_rate_grows_with_rows()
    # input: one 100 x 8 @ 8 x 32 product, 2*100*8*32 = 51,200 FLOPs at m = 100: 1e10/s
    #   -> 5.12e-6 s; hidden: 10 steps of 10 x 8 @ 8 x 32, 51,200 FLOPs at m = 10: 1e9/s
    #   -> 5.12e-5 s. One rate for both at m = B = 10 (the old model) would say 1.024e-4.
    p = predict_trace(Trace((fused("mkldnn_rnn_layer"),)), m)
    assert p["predicted_s"] == pytest.approx(5.12e-6 + 5.12e-5)
    # the backward does both products twice
    b = predict_trace(Trace((fused("mkldnn_rnn_layer_backward"),)), m)
    assert b["predicted_s"] == pytest.approx(2 * (5.12e-6 + 5.12e-5))


def test_trace_marks_a_scan_across_a_stride():
    import torch

    from analysis.trace import trace

    x = torch.rand(2, 5, 3)
    tr = trace(lambda: (torch.cumsum(x, 1), torch.logcumsumexp(x, -1),
                        torch.cumsum(x.transpose(1, 2), 2), torch.exp(x)))
    by_name = [(op.name, op.layout) for op in tr.ops if op.kind != "view"]
    # dim 1 of a contiguous (2, 5, 3): stride 3 -> "s"; the last dim: stride 1 -> "c";
    # dim 2 of the transposed view (2, 3, 5) has stride 3 -> "s"; exp is no scan -> ""
    assert by_name == [("cumsum", "s"), ("logcumsumexp", "c"), ("cumsum", "s"), ("exp", "")]


def test_a_strided_scan_costs_its_own_per_element_time():
    m = machine_rate_grows_with_rows()
    m.elementwise_s_per_element.update({"logcumsumexp": 1e-9, "logcumsumexp:s": 3e-9})
    shapes = ((4, 250, 10),)  # 10,000 elements

    def scan(layout):
        return OpEvent(0, "logcumsumexp", "elementwise", 0, 0, shapes, shapes, 1,
                       layout=layout)

    # 10,000 elements x 3e-9 s = 3e-5 s across a stride; x 1e-9 = 1e-5 s along rows; an
    # op with no layout recorded takes the plain name's cost
    assert predict_trace(Trace((scan("s"),)), m)["predicted_s"] == pytest.approx(3e-5)
    assert predict_trace(Trace((scan("c"),)), m)["predicted_s"] == pytest.approx(1e-5)
    assert predict_trace(Trace((scan(""),)), m)["predicted_s"] == pytest.approx(1e-5)


def test_a_calibrated_fused_lstm_rate_replaces_the_matmul_tables(tmp_path):
    from analysis.calibrate import load_machine, save_machine

    m = machine_rate_grows_with_rows().replace(fused_rnn_flops_per_s={
        "B": [1, 100], "D": [8, 80],
        "forward": [[1e9, 1e9], [1e11, 1e11]], "backward": [[2e9, 2e9], [2e11, 2e11]]})
    m = load_machine(save_machine(m, tmp_path / "m.json"))  # the table survives a file
    # B = 10 lies halfway between 1 and 100 in log space: 1e10 forward, 2e10 backward;
    # FLOPs 2 T B (G D E + G D D) = 2 * 10 * 10 * (32 * 8 + 32 * 8) = 102,400
    assert predict_trace(Trace((fused("mkldnn_rnn_layer"),)), m)["predicted_s"] == \
        pytest.approx(102_400 / 1e10)
    # the backward: twice the FLOPs at its own rate
    assert predict_trace(Trace((fused("mkldnn_rnn_layer_backward"),)), m)["predicted_s"] == \
        pytest.approx(204_800 / 2e10)


def test_the_fused_lstm_microbenchmark_counts_lstm_flops_over_its_time(monkeypatch):
    import analysis.calibrate as cal

    # a fake timer: every forward call takes 1 ms, forward + backward 3 ms
    def fake_per_call(fn, device, calls, repeats=3):
        return 1e-3 if fn.__name__ == "forward" else 3e-3

    monkeypatch.setattr(cal, "per_call", fake_per_call)
    out = cal.measure_fused_rnn("cpu", batches=(2,), widths=(4,), steps=(3, 6))
    # FLOPs 2 T B (4 D E + 4 D D) = 2 * 3 * 2 * (64 + 64) = 1,536 over 1 ms; the backward
    # twice that over 3 - 1 = 2 ms; at T = 6 twice the FLOPs in the same (fake) time
    assert out["forward"] == [[[pytest.approx(1.536e6), pytest.approx(3.072e6)]]]
    assert out["backward"] == [[[pytest.approx(1.536e6), pytest.approx(3.072e6)]]]
    assert (out["B"], out["D"], out["T"]) == ([2], [4], [3, 6])
    assert cal.measure_fused_rnn("cuda") == {}


def test_a_cuda_graph_row_is_predicted_as_its_eager_workload():
    from analysis.predict import workload_from_row

    row = {"kind": "model", "variant": "rnn", "model": "rnn", "phase": "forward", "B": 2,
           "T": 4, "D": 8, "E": 8, "L": 1, "V": 65}
    eager = workload_from_row(row)
    assert workload_from_row({**row, "variant": "rnn+cuda-graph"}) == eager
    with pytest.raises(ValueError):
        workload_from_row({**row, "variant": "nothing+cuda-graph"})
