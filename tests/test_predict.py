"""Time prediction on hand-made traces and machines with known answers."""

import math

import pandas as pd
import pytest

from analysis.calibrate import Machine
from analysis.predict import (
    error_stats,
    matmul_shape,
    predict_rows,
    predict_trace,
    workload_from_row,
)
from analysis.trace import OpEvent, Trace


def op(i, kind, flops=0, nbytes=0, depth=1, name=None, shapes=()):
    return OpEvent(i, name or {"matmul": "mm"}.get(kind, kind), kind, flops, nbytes,
                    shapes, (), depth)


def uniform(device="cpu", op_fixed_s=0.0, matmul_fixed_s=0.0, view_fixed_s=0.0,
            min_kernel_s=0.0):
    """Throughput 1e9 FLOP/s for every shape, bandwidth 1e9 B/s."""
    return Machine(device=device, name="t", torch="x", threads=1, op_fixed_s=op_fixed_s,
                   view_fixed_s=view_fixed_s, matmul_fixed_s=matmul_fixed_s,
                   min_kernel_s=min_kernel_s, bandwidth_bytes_per_s=1e9,
                   ceiling_flops_per_s=1e9, matmul_axes={"m": [1, 2], "k": [1, 2], "n": [1, 2]},
                   matmul_flops_per_s=[[[1e9] * 2] * 2] * 2)


TRACE = Trace((
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
    tiny = Trace(tuple(op(i, "elementwise", nbytes=8, depth=i + 1) for i in range(100)))
    p = predict_trace(tiny, uniform(op_fixed_s=1e-5))
    assert p["regime"] == "launch/overhead"
    assert p["predicted_s"] == pytest.approx(100 * (1e-5 + 8 / 1e9))


def test_cuda_host_bound_is_launches_times_kernels():
    tiny = Trace(tuple(op(i, "elementwise", nbytes=8, depth=1) for i in range(100)))
    m = uniform("cuda", op_fixed_s=8e-6, min_kernel_s=1e-6)
    p = predict_trace(tiny, m)
    # the host's 100 launches, then the last 1-us kernel it launched
    assert p["predicted_s"] == pytest.approx(100 * 8e-6 + 1e-6) and p["bound"] == "host"
    assert p["regime"] == "launch/overhead"
    # no fixed cost (CUDA graphs): the GPU time, each kernel at least min_kernel_s
    assert predict_trace(tiny, m, fixed=False)["predicted_s"] == pytest.approx(100 * 1e-6)


def test_cuda_gpu_bound_and_depth_bound():
    m = uniform("cuda", op_fixed_s=8e-6, min_kernel_s=1e-6)
    p = predict_trace(TRACE, m)
    assert p["predicted_s"] == pytest.approx(5e-3) and p["bound"] == "gpu"
    chain = Trace(tuple(op(i, "view", depth=50) for i in range(1)))
    q = predict_trace(chain, m.replace(view_fixed_s=0.0))
    assert q["predicted_s"] == pytest.approx(50 * 1e-6) and q["bound"] == "depth"


def test_matmul_shapes():
    assert matmul_shape(op(0, "matmul", 2 * 3 * 4 * 5, shapes=((3, 4), (4, 5)))) == (3, 4, 5)
    addmm = op(0, "matmul", 0, name="addmm", shapes=((5,), (3, 4), (4, 5)))
    assert matmul_shape(addmm) == (3, 4, 5)
    bmm = op(0, "matmul", 0, name="bmm", shapes=((2, 3, 4), (2, 4, 5)))
    assert matmul_shape(bmm) == (6, 4, 5)


def test_error_stats_on_hand_made_pairs():
    a = error_stats([1.2, 0.6, 1.9, 4.0, float("nan"), 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    assert a["rows"] == 4  # the NaN prediction and the zero measurement are left out
    assert a["within 1.5x"] == 0.25  # only 1.2
    assert a["within 2x"] == 0.75  # 1.2, 0.6 (1/1.67), 1.9
    # |log| sorted: log 1.2, log(1/0.6), log 1.9, log 4 -> median of the middle two
    assert a["median factor"] == pytest.approx(math.exp((math.log(1 / 0.6) + math.log(1.9)) / 2))
    assert a["worst factor"] == pytest.approx(4.0)
    # APE: 0.2, 0.4, 0.9, 3.0 -> median (0.4 + 0.9) / 2, mean 4.5 / 4
    assert a["median APE"] == pytest.approx(0.65) and a["MAPE"] == pytest.approx(1.125)
    assert a["within 10%"] == 0.0 and a["within 25%"] == 0.25
    # log(p/m) sorted: log 0.6, log 1.2, log 1.9, log 4 -> exp of the middle two's mean
    assert a["median predicted/measured"] == pytest.approx(math.sqrt(1.2 * 1.9))
    # an APE band is not a factor band: 0.8 is within 25% (APE 0.2) but 1.25x off
    b = error_stats([0.8, 1.05], [1.0, 1.0])
    assert b["within 25%"] == 1.0 and b["within 10%"] == 0.5
    assert b["worst factor"] == pytest.approx(1.25)
    assert math.isnan(error_stats([], [])["MAPE"])
    with pytest.raises(ValueError, match="pairs"):
        error_stats([1.0], [1.0, 2.0])


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


def test_a_row_keeps_its_heads_by_its_variant_not_its_model_column():
    # an attention model's heads come from the architecture its variant names; a row that
    # lacks the model and attention columns (or names them differently) keeps its H
    row = {"variant": "transformer-manual", "phase": "forward", "B": 2, "T": 6, "D": 8,
           "L": 1, "H": 2, "V": 65, "seq_len": 6}
    assert workload_from_row(row).heads == 2
    with pytest.raises(ValueError, match="unknown variant 'no-such'"):
        workload_from_row({**row, "variant": "no-such"})


# ---------------------------------------------------------------------------- report pieces


def pred_frame():
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"], "variant": ["rnn", "rnn", "gru", "gru"],
        "model": ["rnn", "rnn", "gru", "gru"], "kind": "model",
        "phase": ["forward", "forward", "train", "train"], "T": [16, 32, 16, 32],
        "median_s": [1.0, 2.0, 1.0, 1.0], "predicted_s": [1.2, 1.0, 3.0, 1.0],
        "predicted_nofixed_s": [0.3, 0.5, 1.0, 0.5], "regime": "launch/overhead",
        "share_overhead": [0.75, 0.5, 0.6, 0.5], "trace_ops": [100, 200, 300, 300],
        "trace_flops": [1e6, 2e6, 3e6, 3e6], "trace_bytes": [1e5, 1e5, 1e6, 1e6]})


def test_prediction_summary_counts_by_hand():
    from analysis.report.summaries import prediction_summary

    s = prediction_summary(pred_frame())
    rows = s.table.set_index(["variant", "phase"])
    # rnn: ratios 1.2 and 0.5 -> one within 1.5x, one within 2x
    assert rows.loc[("rnn", "forward"), "within 1.5x"] == 0.5
    assert rows.loc[("rnn", "forward"), "within 2x"] == 1.0
    # gru: ratios 3 and 1
    assert rows.loc[("gru", "train"), "within 2x"] == 0.5
    assert "50% of 4 rows within 1.5x" in s.findings[0]  # 1.2 and 1.0
    assert "75%" in s.findings[0]  # within 2x: all but 3.0
    assert s.findings[1].startswith("Worst rows: c predicted 3x")


def test_homework_time_summary_no_fixed_speedup():
    from analysis.report.summaries import homework_time_summary

    s = homework_time_summary(pred_frame())
    rows = s.table.set_index(["variant", "phase"])
    assert rows.loc[("rnn", "forward"), "no-fixed-cost speed-up"] == pytest.approx(
        (1.2 / 0.3 + 1.0 / 0.5) / 2)
    assert any("fixed per-op cost" in f for f in s.findings)


def test_figures_draw_identity_band_and_roof():
    from analysis import plots

    f = pred_frame()
    fig = plots.draw_time_predicted_vs_measured(f)
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert {"identity", "band2x", "rnn", "gru"} <= gids
    fig = plots.draw_roofline(f, compute_roof=1e9, bandwidth=1e8)
    roof = [a for a in fig.axes[0].lines if a.get_gid() == "roof"][0]
    x, y = roof.get_data()
    # below the ridge (intensity < 10 FLOP/B) the roof is intensity x bandwidth
    assert y[0] == pytest.approx(min(1e9, x[0] * 1e8))
    assert y[-1] == pytest.approx(min(1e9, x[-1] * 1e8))


# ---------------------------------------------------------------------------- CLI


def _machine_file(tmp_path, device):
    from analysis.calibrate import save_machine

    m = uniform(device, op_fixed_s=1e-5, min_kernel_s=1e-6 if device == "cuda" else 0.0)
    return str(save_machine(m, tmp_path / f"{device}.json"))


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_predict_time_json_equals_the_library(tmp_path, capsys, device):
    import json

    from analysis.optrace import trace_quantity
    from charlm.cli import main
    from charlm.models.registry import ModelConfig

    path = _machine_file(tmp_path, device)
    argv = ["predict-time", "--model", "rnn", "--hidden", "8", "--embed", "4", "--seq-len",
            "3", "--batch", "2", "--device", device, "--machine", path, "--format", "json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"predicted_s", "regime", "terms", "ops", "flops", "bytes", "machine"} <= set(out)
    trace = trace_quantity(ModelConfig("rnn", 65, embed=4, hidden=8), "forward",
                           {"B": 2, "T": 3})
    assert out["predicted_s"] == pytest.approx(
        predict_trace(trace, uniform(device, op_fixed_s=1e-5,
                                     min_kernel_s=1e-6 if device == "cuda" else 0.0))[
            "predicted_s"])
    assert out["regime"] == "launch/overhead"  # tiny sizes: fixed costs dominate


def test_cli_bad_inputs_exit_2(tmp_path, capsys):
    from charlm.cli import main

    path = _machine_file(tmp_path, "cpu")
    assert main(["predict-time", "--model", "rnn", "--device", "cuda", "--machine", path]) == 2
    assert "cpu machine file" in capsys.readouterr().err
    assert main(["calibrate", "--threads", "0"]) == 2
    assert main(["predict-time", "--model", "rnn", "--machine", str(tmp_path / "no.json")]) \
        == 2
    if not __import__("torch").cuda.is_available():
        assert main(["calibrate", "--device", "cuda", "--out", str(tmp_path / "c.json")]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_a_tiny_calibration_measures_every_constant(monkeypatch):
    import analysis.calibrate as cal
    from analysis.calibrate import SCALARS, calibrate

    # one size of each rate table, so that the whole calibration runs in seconds
    for name, size in (("ATTENTION_BH", 2), ("ATTENTION_T", 8), ("ATTENTION_HD", 4),
                       ("FUSED_RNN_B", 2), ("FUSED_RNN_D", 4), ("FUSED_RNN_T", 3)):
        monkeypatch.setattr(cal, name, (size,))

    seen = []

    def code_costs(machine, paced):  # the last step: given the machine measured so far
        seen.append((machine.code_s_per_op, machine.yardstick_s == paced.reference))
        return {"gru:forward": -1e-7}

    m = calibrate("cpu", threads=1, axis=(1, 4), passes=2, code_costs=code_costs)
    assert seen == [({}, True)] and m.code_s_per_op == {"gru:forward": -1e-7}
    assert "code_s_per_op" in m.sources
    assert (m.attention_flops_per_s["BH"], m.fused_rnn_flops_per_s["T"]) == ([2], [3])
    assert m.attention_flops_per_s["forward"][0][0][0] > 0
    assert m.device == "cpu" and m.threads == 1 and m.passes == 2
    assert set(m.pass_range) == set(SCALARS)  # each scalar's spread over the 2 passes
    assert all(low <= high for low, high in m.pass_range.values())
    low, high = m.pass_range["op_fixed_s"]
    assert low <= m.op_fixed_s <= high  # the median of two lies between them
    assert set(m.matmul_pass_spread) == {"nn", "nt", "tn"}
    assert len(m.matmul_flops_per_s) == 2 and m.ceiling_flops_per_s > 0
    assert m.op_fixed_s > 0 and m.view_fixed_s > 0 and m.bandwidth_bytes_per_s > 0
    assert set(m.sources) >= {"op_fixed_s", "bandwidth_bytes_per_s", "matmul_flops_per_s"}


def test_autograd_backward_and_module_call_costs():
    ops = (OpEvent(0, "add", "elementwise", 0, 0, (), (), 1, records_graph=True),
           OpEvent(1, "mul", "elementwise", 0, 0, (), (), 2, phase="backward"),
           OpEvent(2, "add", "elementwise", 0, 0, (), (), 3, phase="forward"))
    m = uniform(op_fixed_s=1e-5).replace(op_autograd_s=2e-6, op_backward_s=3e-6,
                                         module_call_s=4e-6)
    p = predict_trace(Trace(ops, module_calls=2), m)
    assert p["predicted_s"] == pytest.approx((1e-5 + 2e-6) + 3e-6 + 1e-5 + 2 * 4e-6)


def test_cuda_fused_ops_cost_one_launch_per_call():
    ops = tuple(OpEvent(i, "tanh", "elementwise", 0, 8, (), (), i + 1, fused=True)
                for i in range(10))
    m = uniform("cuda", op_fixed_s=8e-6, min_kernel_s=1e-6)
    p = predict_trace(Trace(ops, fused_calls=1), m)
    # one 8-us launch on the host, spread over the call's ten ops (0.8 us each): the first
    # kernel starts at 0.8 us, then ten 1-us kernels run back to back (issued faster)
    assert p["predicted_s"] == pytest.approx(0.8e-6 + 10e-6) and p["bound"] == "gpu"
    cpu = predict_trace(Trace(ops, fused_calls=1), uniform(op_fixed_s=8e-6))
    assert cpu["predicted_s"] == pytest.approx(10 * (8e-6 + 8 / 1e9))
    # three cuDNN calls: the host launches 3 x 8 us = 24 us (2.4 us an op), more than the
    # GPU's 10 x 1 us: each kernel waits for its launch, the last ends at 24 + 1 us
    p = predict_trace(Trace(ops, fused_calls=3), m)
    assert p["predicted_s"] == pytest.approx(25e-6) and p["bound"] == "host"
    # overhead: the total's excess over the GPU, 25 - 10 = 15 us, plus each kernel's
    # floor above its own 8 ns of memory time, 10 x (1 us - 8 ns) = 9.92 us
    assert p["terms"]["launch/overhead"]["seconds"] == pytest.approx(15e-6 + 9.92e-6)


def test_per_element_costs_and_fused_cpu_rnn_flops():
    from analysis.predict import fused_rnn_flops, op_time

    tanh = OpEvent(0, "tanh", "elementwise", 0, 8 * 1000, ((1000,),), ((1000,),), 1)
    m = uniform().replace(elementwise_s_per_element={"tanh": 1e-8})
    t = op_time(tanh, m)
    assert t.compute_s == pytest.approx(1000 * 1e-8)  # 10 us beats 8 kB / 1e9 B/s = 8 us
    assert t.memory_s == pytest.approx(8e-6)
    # mkldnn LSTM layer: input (T=8, B=4, E=64), W_ih (4D=1024, 64), W_hh (1024, 256)
    layer = OpEvent(0, "mkldnn_rnn_layer", "elementwise", 0, 0,
                     ((8, 4, 64), (1024, 64), (1024, 256)), (), 1)
    assert fused_rnn_flops(layer) == 2 * 8 * 4 * (1024 * 64 + 1024 * 256)
    back = OpEvent(0, "mkldnn_rnn_layer_backward", "elementwise", 0, 0, layer.shapes, (), 1)
    assert fused_rnn_flops(back) == 2 * fused_rnn_flops(layer)


def test_a_products_layout_picks_its_throughput_table():
    # 2e6 FLOPs: 2 ms at the nn table's 1e9 FLOP/s, 4 ms at the nt table's 5e8
    nt = Machine.from_dict({**uniform().to_dict(),
                            "matmul_layouts": {"nt": [[[5e8] * 2] * 2] * 2}})
    mm = OpEvent(0, "mm", "matmul", 2_000_000, 0, ((10, 10), (10, 10)), (), 1, layout="nt")
    assert predict_trace(Trace((mm,)), nt)["predicted_s"] == pytest.approx(4e-3)
    nn = OpEvent(0, "mm", "matmul", 2_000_000, 0, ((10, 10), (10, 10)), (), 1, layout="nn")
    assert predict_trace(Trace((nn,)), nt)["predicted_s"] == pytest.approx(2e-3)
    assert predict_trace(Trace((mm,)), uniform())["predicted_s"] == pytest.approx(2e-3)


def test_pace_factor_is_the_rows_yardstick_over_the_machines():
    from analysis.predict import pace_factor

    m = uniform().replace(yardstick_s=2e-3)
    assert pace_factor(3e-3, m) == pytest.approx(1.5)
    assert pace_factor(None, m) == 1.0 and pace_factor(float("nan"), m) == 1.0
    assert pace_factor(3e-3, uniform()) == 1.0  # a machine file without a yardstick


def test_predict_rows_scales_each_row_by_its_pace():
    from analysis.predict import predict_rows

    base = {"kind": "model", "variant": "rnn", "model": "rnn", "phase": "forward",
            "B": 2, "T": 4, "D": 8, "E": 8, "L": 1, "V": 65, "median_s": 1e-3}
    rows = pd.DataFrame([{**base, "yardstick_s": 1e-3}, {**base, "yardstick_s": 3e-3},
                         {**base, "yardstick_s": None}])
    m = uniform(op_fixed_s=1e-6).replace(yardstick_s=1e-3)
    out = predict_rows(rows, m)
    calibrated = out["predicted_calibrated_s"]
    assert calibrated.nunique() == 1 and calibrated.iloc[0] > 0  # one workload, one trace
    assert list(out["pace_factor"]) == [1.0, 3.0, 1.0]
    assert list(out["predicted_s"]) == pytest.approx(list(calibrated * [1.0, 3.0, 1.0]))


def test_prediction_summary_states_the_accuracy_at_the_calibrations_pace():
    from analysis.report.summaries import prediction_summary

    # rows ran 2x slower than at calibration: scaled, all four exact; unscaled, all at 0.5x
    frame = pred_frame().assign(median_s=[2.0, 2.0, 2.0, 2.0], predicted_s=2.0,
                                predicted_calibrated_s=1.0, pace_factor=2.0)
    s = prediction_summary(frame)
    assert "100% of 4 rows within 1.5x" in s.findings[0]
    paced = [f for f in s.findings if "yardstick" in f]
    assert paced and "at 2.00x the calibration's yardstick" in paced[0]
    # predicted 1.0 against 2.0 measured: APE |1 - 2| / 2 = 50% each
    assert "0% within 1.5x, 100% within 2x, MAPE 50%, median factor 2.00" in paced[0]


def test_a_large_fresh_output_adds_its_page_faults_to_the_memory_term():
    m = uniform().replace(fresh_output_by_size={"bytes": [1000], "s_per_byte": [1e-6]})
    # 2000 bytes moved at 1e9 B/s = 2 us; a fresh 1000-byte output adds 1000 x 1 us
    fresh = OpEvent(0, "add", "elementwise", 0, 2000, ((250,),), ((250,),), 1, fresh=(1000,))
    p = predict_trace(Trace((fresh,)), m)
    assert p["predicted_s"] == pytest.approx(2e-6 + 1e-3)
    assert p["terms"]["memory"]["seconds"] == pytest.approx(2e-6 + 1e-3)
    in_place = OpEvent(0, "add_", "elementwise", 0, 2000, ((250,),), ((250,),), 1)
    assert predict_trace(Trace((in_place,)), m)["predicted_s"] == pytest.approx(2e-6)


def test_an_op_costs_the_larger_of_its_replayed_and_its_kinds_fixed_cost():
    m = uniform(op_fixed_s=5e-6).replace(op_fixed_by_name={"gelu": 15e-6, "add": 3e-6})
    gelu = OpEvent(0, "gelu", "elementwise", 0, 0, (), (), 1)
    add = OpEvent(1, "add", "elementwise", 0, 0, (), (), 2)
    tanh = OpEvent(2, "tanh", "elementwise", 0, 0, (), (), 3)
    assert predict_trace(Trace((gelu,)), m)["predicted_s"] == pytest.approx(15e-6)
    assert predict_trace(Trace((add,)), m)["predicted_s"] == pytest.approx(5e-6)
    assert predict_trace(Trace((tanh,)), m)["predicted_s"] == pytest.approx(5e-6)


def test_repeated_timings_of_one_workload_are_compared_by_hand():
    from analysis.report.summaries import prediction_summary, repeated_timings

    frame = pred_frame()
    frame.loc[1, "T"] = 16  # rows a and b now the same rnn forward workload: 1.0 s and 2.0 s
    pairs = repeated_timings(frame)
    assert pairs[["first_s", "second_s", "spread"]].values.tolist() == [[1.0, 2.0, 2.0]]
    found = [f for f in prediction_summary(frame).findings if "noise floor" in f]
    # the first (1.0 s) as a prediction of the second (2.0 s): APE |1 - 2| / 2 = 50%
    assert found and "noise floor (this run): 1 workloads" in found[0]
    assert "median absolute percentage error 50%, MAPE 50%, 0% within +-10%" in found[0]
    assert "median factor 2.00 (largest 2.00; 1 of 1 by 1.5x or more)" in found[0]
    assert repeated_timings(pred_frame()).empty  # no workload twice


def test_predict_time_at_the_pace_now_scales_by_the_yardstick(tmp_path, capsys):
    import json

    from analysis.calibrate import save_machine
    from charlm.cli import main

    m = uniform(op_fixed_s=1e-5).replace(yardstick_s=1e-3)
    path = str(save_machine(m, tmp_path / "m.json"))
    base = ["predict-time", "--model", "rnn", "--hidden", "8", "--embed", "4", "--seq-len",
            "3", "--batch", "2", "--machine", path, "--format", "json"]
    assert main(base) == 0
    calibrated = json.loads(capsys.readouterr().out)
    assert calibrated["pace_factor"] == 1.0
    assert main(base + ["--pace", "now"]) == 0
    now = json.loads(capsys.readouterr().out)
    assert now["pace_factor"] > 0 and now["pace_factor"] != 1.0  # a real yardstick, not 1 ms
    assert now["predicted_s"] == pytest.approx(calibrated["predicted_s"] * now["pace_factor"])
    assert sum(t["seconds"] for t in now["terms"].values()) == pytest.approx(
        sum(t["seconds"] for t in calibrated["terms"].values()) * now["pace_factor"])
    old = str(save_machine(uniform(op_fixed_s=1e-5), tmp_path / "old.json"))
    assert main(base[:-4] + ["--machine", old, "--pace", "now"]) == 2
    assert "yardstick" in capsys.readouterr().err


def test_rows_of_one_workload_share_one_trace_and_predict_as_fresh_ones(monkeypatch):
    import analysis.optrace as optrace
    from analysis.predict import predict_rows

    base = {"kind": "model", "variant": "gru", "model": "gru", "phase": "train",
            "B": 2, "T": 4, "D": 8, "E": 8, "L": 1, "V": 65, "median_s": 1e-3}
    rows = pd.DataFrame([base, base, {**base, "T": 5}])
    m = uniform(op_fixed_s=1e-6)
    fresh = predict_rows(rows, m)
    real, traced = optrace.trace_workload, []
    monkeypatch.setattr(optrace, "trace_workload", lambda w: traced.append(w) or real(w))
    traces: dict = {}
    shared = predict_rows(rows, m, traces=traces)
    again = predict_rows(rows, m, traces=traces)  # another device's table: no new trace
    assert len(traced) == 2 and len(traces) == 2
    cols = ["predicted_s", "trace_ops", "trace_flops", "trace_bytes", "trace_depth"]
    assert shared[cols].equals(fresh[cols]) and again[cols].equals(fresh[cols])


def test_a_repeated_op_costs_its_time_at_every_repeat():
    # one distinct op computed once (op_times), counted at each of its three steps
    mm = OpEvent(0, "mm", "matmul", 2_000_000, 0, ((10, 10), (10, 10)), (), 1)
    again = [OpEvent(i, "mm", "matmul", 2_000_000, 0, ((10, 10), (10, 10)), (), i + 1)
             for i in range(3)]
    m = uniform(matmul_fixed_s=1e-6)
    one = predict_trace(Trace((mm,)), m)["predicted_s"]
    assert one == pytest.approx(2e-3 + 1e-6)
    assert predict_trace(Trace(tuple(again)), m)["predicted_s"] == pytest.approx(3 * one)


def test_committed_cpu_reference_predictions_reproduce_from_todays_trace():
    """The smallest timing row of every variant and phase in results/reference/cpu, predicted
    again from a fresh op trace with the committed machine file, equals the committed
    prediction.csv (made by the tracer that preceded analysis.trace)."""
    from pathlib import Path

    import pandas as pd

    from analysis.calibrate import load_machine

    ref = Path(__file__).resolve().parent.parent / "results" / "reference" / "cpu"
    timing, committed = pd.read_csv(ref / "timing.csv"), pd.read_csv(ref / "prediction.csv")
    assert list(timing["id"]) == list(committed["id"])
    small = timing.assign(size=timing["T"].fillna(0) * timing["D"].fillna(0)
                          + timing["N"].fillna(0))
    rows = small.sort_values("size").groupby(["variant", "phase"], sort=False).head(1)
    assert rows["variant"].nunique() == 14 and len(rows) >= 20
    again = predict_rows(timing.loc[rows.index], load_machine(ref / "machine.json"))
    want = committed.loc[rows.index, "predicted_s"].to_numpy()
    assert again["predicted_s"].to_numpy() == pytest.approx(want, rel=1e-12)
    assert (again["trace_flops"].to_numpy() == committed.loc[rows.index, "trace_flops"]).all()


def test_predict_rows_scales_the_no_fixed_cost_bound_by_the_pace_too():
    # TRACE on a CPU machine: compute 2 ms + memory 3 ms; fixed 0.1 + 0.2 + 0.01 ms
    # (elementwise, matmul, view) -> 5.31 ms calibrated, 5 ms without the fixed costs
    base = {"kind": "model", "variant": "rnn", "model": "rnn", "phase": "forward",
            "B": 2, "T": 4, "D": 8, "E": 8, "L": 1, "V": 65, "median_s": 10e-3}
    rows = pd.DataFrame([{**base, "yardstick_s": 3e-3}, {**base, "yardstick_s": None}])
    m = uniform(op_fixed_s=1e-4, matmul_fixed_s=2e-4, view_fixed_s=1e-5).replace(
        yardstick_s=1e-3)
    traces = {workload_from_row(base): TRACE}  # the hand-made trace stands for the row's
    out = predict_rows(rows, m, traces=traces)
    # row 0 ran at 3x the calibration's yardstick (3 ms / 1 ms), row 1 has none (1x)
    assert list(out["pace_factor"]) == [3.0, 1.0]
    assert list(out["predicted_calibrated_s"]) == pytest.approx([5.31e-3, 5.31e-3])
    assert list(out["predicted_s"]) == pytest.approx([15.93e-3, 5.31e-3])
    assert list(out["predicted_nofixed_s"]) == pytest.approx([15e-3, 5e-3])
    assert list(out["ratio"]) == pytest.approx([1.593, 0.531])  # over the 10 ms median


# ---------------------------------------------------------------------------- mutation kills


def mm_op(name, shapes, flops=0):
    return OpEvent(0, name, "matmul", flops, 0, shapes, (), 1)


def test_matmul_shape_reads_each_products_operands():
    # mm / matmul: the last two dims of the left operand, the last of the right
    assert matmul_shape(mm_op("matmul", ((7, 3, 4), (4, 5)))) == (3, 4, 5)
    assert matmul_shape(mm_op("matmul", ((3, 4), (7, 4, 5)))) == (3, 4, 5)  # n: the last dim
    # a 0-d operand (a scalar) is no operand: dropped before the shapes are read
    assert matmul_shape(mm_op("mm", ((), (3, 4), (4, 5)), flops=120)) == (3, 4, 5)
    # addmm and _addmm_activation: the bias comes first, the product's operands after it
    assert matmul_shape(mm_op("_addmm_activation", ((5,), (3, 4), (4, 5)))) == (3, 4, 5)
    # baddbmm: (input, batch1 (b, m, k), batch2 (b, k, n)): the batch folds into m
    assert matmul_shape(mm_op("baddbmm", ((2, 3, 5), (2, 3, 4), (2, 4, 5)))) == (6, 4, 5)
    # attention: q (B, H, T, hd), k (B, H, S, hd): rows B H T = 2 x 4 x 6, k = hd, n = S
    sdpa = mm_op("_scaled_dot_product_flash_attention", ((2, 4, 6, 8), (2, 4, 7, 8), (2, 4, 7, 8)))
    assert matmul_shape(sdpa) == (48, 8, 7)
    # a zero-sized dim still counts as one
    assert matmul_shape(mm_op("mm", ((0, 4), (4, 5)))) == (1, 4, 5)


def test_matmul_shape_falls_back_to_a_cube_of_the_flops():
    # 2 m k n = FLOPs with m = k = n: 2000 FLOPs -> 10 x 10 x 10
    cube = (10, 10, 10)
    assert matmul_shape(mm_op("mm", ((10, 10),), flops=2000)) == cube  # one operand
    assert matmul_shape(mm_op("addmm", ((10, 10), (10, 10)), flops=2000)) == cube  # no bias
    assert matmul_shape(mm_op("bmm", ((2, 5, 10),), flops=2000)) == cube
    assert matmul_shape(mm_op("baddbmm", ((2, 5, 10), (2, 10, 5)), flops=2000)) == cube
    sdpa = mm_op("scaled_dot_product_attention", ((2, 6, 8), (2, 7, 8)), flops=2000)
    assert matmul_shape(sdpa) == cube  # q and k only, no v
    # a 1-d left operand does not unpack (ValueError), a 1-d key has no [-2] (IndexError)
    assert matmul_shape(mm_op("mm", ((10,), (10, 10)), flops=2000)) == cube
    key_1d = mm_op("flash_attention", ((2, 6, 8), (8,), (2, 7, 8)), flops=2000)
    assert matmul_shape(key_1d) == cube
    assert matmul_shape(mm_op("conv2d", ((10, 10), (10, 10)), flops=2000)) == cube
    # 16 FLOPs: cube root of 8 = 2; 1 FLOP: cube root of 0.5 rounds to 1; none: 1
    assert matmul_shape(mm_op("conv2d", (), flops=16)) == (2, 2, 2)
    assert matmul_shape(mm_op("conv2d", (), flops=1)) == (1, 1, 1)
    assert matmul_shape(mm_op("conv2d", (), flops=0)) == (1, 1, 1)


def test_op_time_caches_and_caps_each_shapes_rate():
    from analysis.predict import op_time

    mm = OpEvent(0, "mm", "matmul", 2_000_000, 0, ((10, 10), (10, 10)), (), 1)
    cache: dict = {}
    # 2e6 FLOPs at 1e9 FLOP/s: 2 ms; the rate is kept under the shape and (default) layout
    assert op_time(mm, uniform(), cache).compute_s == pytest.approx(2e-3)
    assert cache == {(10, 10, 10, "nn"): pytest.approx(1e9)}
    # a rate already in the cache is used as it is: 2e6 / 5e8 = 4 ms
    assert op_time(mm, uniform(), {(10, 10, 10, "nn"): 5e8}).compute_s == pytest.approx(4e-3)
    # a table faster than the ceiling runs at the ceiling: 2e6 / 1e9 = 2 ms, not 1 ms
    fast = uniform().replace(matmul_flops_per_s=[[[2e9] * 2] * 2] * 2)
    assert op_time(mm, fast).compute_s == pytest.approx(2e-3)
    assert op_time(mm, fast, {}).compute_s == pytest.approx(2e-3)
    # bytes at the size table's bandwidth: 1000 B at 1e8 B/s = 10 us
    sized = uniform().replace(bandwidth_by_size={"bytes": [1000], "per_s": [1e8]})
    add = OpEvent(0, "add", "elementwise", 0, 1000, ((250,),), ((250,),), 1)
    assert op_time(add, sized).memory_s == pytest.approx(1e-5)
    assert op_time(add._replace(bytes=0), sized).memory_s == 0.0


def test_op_time_per_element_cost_by_layout_and_fixed_costs_by_kind():
    from analysis.predict import op_time

    m = uniform(op_fixed_s=1e-6, matmul_fixed_s=2e-6, view_fixed_s=3e-7).replace(
        elementwise_s_per_element={"logcumsumexp:c": 2e-8, "logcumsumexp": 1e-8},
        op_fixed_by_name={"mm": 1.0, "view": 5e-7})
    scan = OpEvent(0, "logcumsumexp", "elementwise", 0, 0, ((10, 100),), (), 1, layout="c")
    assert op_time(scan, m).compute_s == pytest.approx(1000 * 2e-8)  # its layout's own cost
    # a layout without its own cost takes the op's: 10 x 100 elements x 1e-8
    assert op_time(scan._replace(layout="s"), m).compute_s == pytest.approx(1000 * 1e-8)
    assert op_time(scan._replace(layout=""), m).compute_s == pytest.approx(1000 * 1e-8)
    assert op_time(scan._replace(shapes=()), m).compute_s == 0.0  # no shape, no elements
    # a matmul's fixed cost is its kind's, whatever op_fixed_by_name says of its name
    mm = OpEvent(0, "mm", "matmul", 0, 0, (), (), 1)
    assert op_time(mm, m).fixed_s == pytest.approx(2e-6) and op_time(mm, m).kernel
    view = OpEvent(0, "view", "view", 0, 0, (), (), 1)
    assert op_time(view, m).fixed_s == pytest.approx(5e-7) and not op_time(view, m).kernel
    # a backward view is no kernel: its view cost, not op_backward_s
    back = m.replace(op_backward_s=9e-6)
    assert op_time(view._replace(phase="backward", name="t"), back).fixed_s == pytest.approx(3e-7)
    assert op_time(mm._replace(phase="backward"), back).fixed_s == pytest.approx(9e-6)
    # no op_backward_s measured: a backward op costs its kind's
    assert op_time(mm._replace(phase="backward"), m).fixed_s == pytest.approx(2e-6)


def test_fused_rnn_seconds_from_the_matmul_table_and_from_its_own_rate():
    from analysis.predict import fused_rnn_seconds, op_time

    # x (T=8, B=4, E=64), W_ih (1024, 64), W_hh (1024, 256): 2 x 32 rows x 1024 x (64 + 256)
    # = 20 971 520 FLOPs, at 1e9 FLOP/s 20.97152 ms; a backward twice that
    layer = OpEvent(0, "mkldnn_rnn_layer", "elementwise", 0, 0,
                    ((8, 4, 64), (1024, 64), (1024, 256)), (), 1)
    back = layer._replace(name="mkldnn_rnn_layer_backward")
    assert fused_rnn_seconds(layer, uniform()) == pytest.approx(20.97152e-3)
    assert fused_rnn_seconds(back, uniform()) == pytest.approx(2 * 20.97152e-3)
    assert op_time(layer, uniform()).compute_s == pytest.approx(20.97152e-3)
    # the layer's own rate by (B, D): B = 4 -> 2e9 forward, 1e9 backward
    rates = {"B": [1, 4], "D": [256], "forward": [[1e9], [2e9]], "backward": [[5e8], [1e9]]}
    own = uniform().replace(fused_rnn_flops_per_s=rates)
    assert fused_rnn_seconds(layer, own) == pytest.approx(20_971_520 / 2e9)
    assert fused_rnn_seconds(back, own) == pytest.approx(2 * 20_971_520 / 1e9)
    # a 2-d input (T B, E) has batch 1: 1e9 forward
    flat = layer._replace(shapes=((32, 64), (1024, 64), (1024, 256)))
    assert fused_rnn_seconds(flat, own) == pytest.approx(20_971_520 / 1e9)
    # an op the counter gave FLOPs to is costed by them, not as a fused layer
    counted = layer._replace(flops=2_000_000, kind="matmul")
    assert op_time(counted, uniform()).compute_s == pytest.approx(2e-3)


def test_fused_rnn_flops_needs_the_layer_and_its_three_shapes():
    from analysis.predict import fused_rnn_flops

    shapes = ((8, 4, 64), (1024, 64), (1024, 256))
    assert fused_rnn_flops(OpEvent(0, "lstm_cell", "elementwise", 0, 0, shapes, (), 1)) == 0
    short = OpEvent(0, "mkldnn_rnn_layer", "elementwise", 0, 0, shapes[:2], (), 1)
    assert fused_rnn_flops(short) == 0
    # 2 x (T B = 32) x (1024 x 64 + 1024 x 256)
    assert fused_rnn_flops(short._replace(shapes=shapes)) == 2 * 32 * 1024 * 320


def test_an_empty_trace_predicts_nothing():
    p = predict_trace(Trace(()), uniform())
    assert p["predicted_s"] == 0.0 and p["ops"] == 0 and p["kernels"] == 0
    assert all(t["share"] == 0.0 for t in p["terms"].values())


def test_cuda_module_calls_and_fixed_views_count_on_the_host():
    # 100 views at 2 us (no kernels) + 3 module calls at 10 us = 230 us on the host, the GPU
    # idle; depth 1 x 1 us
    views = Trace(tuple(op(i, "view", depth=1) for i in range(100)), module_calls=3)
    m = uniform("cuda", view_fixed_s=2e-6, min_kernel_s=1e-6).replace(module_call_s=1e-5)
    p = predict_trace(views, m)
    assert p["predicted_s"] == pytest.approx(230e-6) and p["bound"] == "host"
    assert p["kernels"] == 0
    assert p["terms"]["launch/overhead"]["seconds"] == pytest.approx(230e-6)
    # on the CPU the same module calls add to the fixed costs: 100 x 2 us + 3 x 10 us
    cpu = uniform(view_fixed_s=2e-6).replace(module_call_s=1e-5)
    assert predict_trace(views, cpu)["predicted_s"] == pytest.approx(230e-6)
    assert predict_trace(views, cpu, fixed=False)["predicted_s"] == 0.0


def test_workload_from_row_reads_each_config_column():
    from analysis.workloads import Workload

    row = {"variant": "gru", "phase": "train", "B": 3, "T": 12, "D": 16, "L": 2, "V": 80,
           "sweep": "T"}
    # no seq_len column: T; no N: 0 new tokens; no E: embed left to the model
    assert workload_from_row(row) == Workload("gru", "train", batch=3, seq_len=12, hidden=16,
                                              layers=2, vocab=80, sweep="T")
    # an E equal to D is no separate embedding; an E that differs is
    assert workload_from_row({**row, "E": 16}).embed is None
    assert workload_from_row({**row, "E": 8}).embed == 8
    # missing, None and NaN columns fall back: V 65, sweep "base", seq_len from T
    bare = workload_from_row({**row, "V": None, "sweep": None, "seq_len": float("nan")})
    assert (bare.vocab, bare.sweep, bare.seq_len) == (65, "base", 12)
    del row["sweep"], row["V"]
    assert (workload_from_row(row).vocab, workload_from_row(row).sweep) == (65, "base")
    # a number that is no integer (a string) is no value: L left to the model
    assert workload_from_row({**row, "L": "two"}).layers is None
    assert workload_from_row({**row, "L": None}).layers is None
    assert workload_from_row({**row, "B": 3.0}).batch == 3
    # a gru has no attention: its H column is not its heads
    assert workload_from_row({**row, "H": 4}).heads is None
    # a CUDA-graph replay's row is its eager workload
    assert workload_from_row({**row, "variant": "gru+cuda-graph"}) == workload_from_row(row)


def test_workload_from_row_of_an_attention_and_a_generation_row():
    from analysis.workloads import Workload

    # an attention kernel: heads from H; its L and E columns are not its config
    row = {"variant": "attention-flash", "phase": "forward", "B": 2, "T": 6, "D": 8, "H": 2,
           "L": 3, "E": 4, "seq_len": 6}
    assert workload_from_row(row) == Workload("attention-flash", "forward", batch=2, seq_len=6,
                                              hidden=8, heads=2)
    gen = {"variant": "transformer-manual", "phase": "generate", "B": 1, "T": 10, "D": 8,
           "L": 1, "H": 2, "N": 4, "seq_len": 6}
    assert workload_from_row(gen) == Workload("transformer-manual", "generate", batch=1,
                                              seq_len=6, hidden=8, layers=1, heads=2,
                                              new_tokens=4)


def test_predict_rows_fills_every_column_and_records_a_rows_error():
    # TRACE on a CPU machine: compute 2 ms, memory 3 ms, fixed 0.31 ms -> 5.31 ms, memory-bound
    base = {"variant": "rnn", "phase": "forward", "B": 2, "T": 4, "D": 8, "L": 1,
            "median_s": 10e-3}
    rows = pd.DataFrame([base, {**base, "variant": "no-such"}, {**base, "phase": "bogus"}],
                        index=[5, 7, 9])
    m = uniform(op_fixed_s=1e-4, matmul_fixed_s=2e-4, view_fixed_s=1e-5)
    seen: list = []
    out = predict_rows(rows, m, progress=seen.append, traces={workload_from_row(base): TRACE})
    assert seen == [0, 1, 2] and list(out.index) == [0, 1, 2]
    assert "predicted_s" not in rows  # the input frame is left as it was
    first = out.iloc[0]
    assert (first["regime"], first["bound"]) == ("memory", "sum")
    assert pd.isna(first["predict_error"])  # None, which pandas shows as NaN
    assert first["share_compute"] == pytest.approx(2 / 5.31)
    assert first["share_memory"] == pytest.approx(3 / 5.31)
    assert first["share_overhead"] == pytest.approx(0.31 / 5.31)
    assert (first["trace_ops"], first["trace_kernels"], first["trace_depth"]) == (3, 2, 2)
    assert (first["trace_flops"], first["trace_bytes"]) == (2_000_000, 3_001_000)
    assert first["ratio"] == pytest.approx(0.531) and first["median_s"] == 10e-3
    assert out.iloc[1]["predict_error"].startswith("ValueError: unknown variant 'no-such'")
    assert out.iloc[2]["predict_error"].startswith("ValueError: unknown phase 'bogus'")
    assert math.isnan(out.iloc[1]["predicted_s"]) and math.isnan(out.iloc[1]["ratio"])
    # a row without a phase column: its KeyError is recorded; no median_s, no ratio
    lacking = predict_rows(pd.DataFrame([{k: v for k, v in base.items()
                                          if k not in ("phase", "median_s")}]), m)
    assert lacking.iloc[0]["predict_error"] == "KeyError: 'phase'" and "ratio" not in lacking


def test_error_stats_band_edges_and_left_out_pairs():
    # APE exactly 25% (1.25 and 0.75 against 1) is within 25%; 2x and 1.5x exactly are within
    a = error_stats([1.25, 0.75, 2.0, 1.5], [1.0, 1.0, 1.0, 1.0])
    assert a["within 25%"] == 0.5 and a["within 10%"] == 0.0
    assert a["within 2x"] == 1.0 and a["within 1.5x"] == 0.75  # all but 2.0
    # APE 0.25, 0.25, 1, 0.5: mean 0.5; median (0.25 + 0.5) / 2
    assert a["MAPE"] == pytest.approx(0.5) and a["median APE"] == pytest.approx(0.375)
    assert isinstance(a["rows"], int) and a["rows"] == 4
    # negative, zero and infinite values on either side are no pair; 0.25 for 1 is 4x off
    b = error_stats([0.25, -1.0, 0.0, math.inf, 1.0, 1.0, 1.0],
                    [1.0, 1.0, 1.0, 1.0, -1.0, 0.0, math.inf])
    assert b["rows"] == 1 and b["worst factor"] == pytest.approx(4.0)
    assert b["median factor"] == pytest.approx(4.0)
    assert b["median predicted/measured"] == pytest.approx(0.25)
    assert b["MAPE"] == pytest.approx(0.75) and b["within 2x"] == 0.0
    empty = error_stats([math.nan], [1.0])
    assert empty["rows"] == 0
    assert set(empty) == {"rows", "median factor", "worst factor", "median APE", "MAPE",
                          "within 10%", "within 25%", "within 1.5x", "within 2x",
                          "median predicted/measured"}
    assert all(math.isnan(v) for k, v in empty.items() if k != "rows")
    with pytest.raises(ValueError, match=r"needs pairs; got 1 predicted, 2 measured"):
        error_stats([1.0], [1.0, 2.0])


def test_pace_factor_of_bad_yardsticks_is_one():
    from analysis.predict import pace_factor

    m = uniform().replace(yardstick_s=2e-3)
    assert pace_factor("3e-3", m) == pytest.approx(1.5)  # a CSV string reads as its number
    assert pace_factor("fast", m) == 1.0 and pace_factor(0.0, m) == 1.0
    assert pace_factor(-1e-3, m) == 1.0 and pace_factor(math.inf, m) == 1.0
    assert pace_factor(1e-3, uniform().replace(yardstick_s=0.0)) == 1.0


def test_each_field_op_time_reads_tells_two_ops_apart():
    # op_times computes each distinct op once: every op below differs from one before it in
    # one field, and costs its own time (us): memory 1000 B / 1e9 B/s = 1 us, fixed 1 us
    m = uniform(op_fixed_s=1e-6).replace(
        op_fixed_by_name={"gelu": 5e-6}, op_backward_s=4e-6, op_autograd_s=2e-6,
        elementwise_s_per_element={"add": 1e-8, "add:c": 3e-8},
        fresh_output_by_size={"bytes": [1000], "s_per_byte": [1e-9]})
    add = OpEvent(0, "add", "elementwise", 0, 1000, (), (), 1)
    ops = [
        (add, 2),  # 1 + 1
        (add._replace(bytes=2000), 3),  # 2 + 1
        (add._replace(name="gelu"), 6),  # 1 + its replayed 5
        (add._replace(kind="view"), 1),  # 1 + a view's 0
        (add._replace(phase="backward"), 5),  # 1 + the backward's 4
        (add._replace(records_graph=True), 4),  # 1 + 1 + the graph's 2
        (add._replace(shapes=((1000,),)), 11),  # 1000 elements x 10 ns + 1
        (add._replace(shapes=((1000,),), layout="c"), 31),  # x 30 ns + 1
        (add._replace(fresh=(1000,)), 3),  # 1 + 1 + 1000 B x 1 ns
        (add._replace(flops=4000), 5),  # 4000 FLOPs at 1e9: 4 + 1
    ]
    p = predict_trace(Trace(tuple(o for o, _ in ops)), m)
    assert p["predicted_s"] == pytest.approx(sum(us for _, us in ops) * 1e-6)


def test_an_op_as_slow_in_compute_as_in_memory_counts_as_compute():
    # 1e6 FLOPs and 1e6 bytes: 1 ms each; the tie goes to compute
    both = OpEvent(0, "mm", "matmul", 1_000_000, 1_000_000, ((10, 10), (10, 10)), (), 1)
    p = predict_trace(Trace((both,)), uniform())
    assert p["terms"]["compute"]["seconds"] == pytest.approx(1e-3)
    assert p["terms"]["memory"]["seconds"] == 0.0 and p["regime"] == "compute"
    assert (p["flops"], p["bytes"], p["ops"]) == (1_000_000, 1_000_000, 1)


def test_predict_workload_without_fixed_costs_drops_exactly_them():
    from analysis.predict import predict_workload
    from analysis.workloads import Workload

    # every op's fixed cost 1 ms, whatever its kind (no module, graph or backward extras):
    # with the fixed costs the prediction is that much per op above the one without
    m = uniform(op_fixed_s=1e-3, matmul_fixed_s=1e-3, view_fixed_s=1e-3)
    w = Workload("rnn", "forward", batch=2, seq_len=3, hidden=8, embed=4)
    on, off = predict_workload(w, m), predict_workload(w, m, fixed=False)
    assert on["ops"] == off["ops"] > 0
    assert on["predicted_s"] - off["predicted_s"] == pytest.approx(on["ops"] * 1e-3)
    assert off["terms"]["launch/overhead"]["seconds"] == 0.0
