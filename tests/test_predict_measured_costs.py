"""The costs the op-by-op model lacked, measured: CPU attention's own FLOP rate, the fused
LSTM's rate by steps, and each workload's own Python per op. Expected values are worked
by hand from fake timers and hand-made tables."""

import math

import pytest

from analysis.calibrate import Machine
from analysis.predict import attention_seconds, op_time, predict_trace
from analysis.trace import OpEvent, Trace

FLASH = "_scaled_dot_product_flash_attention_for_cpu"


def machine(**kw) -> Machine:
    """1e9 FLOP/s for every matmul, free memory, no fixed costs."""
    return Machine(device="cpu", name="t", torch="x", threads=1, op_fixed_s=0.0,
                   view_fixed_s=0.0, matmul_fixed_s=0.0, min_kernel_s=0.0,
                   bandwidth_bytes_per_s=1e30, ceiling_flops_per_s=1e12,
                   matmul_axes={"m": [1, 2], "k": [1, 2], "n": [1, 2]},
                   matmul_flops_per_s=[[[1e9] * 2] * 2] * 2, **kw)


def table(forward=1e8, backward=2e8, decode=1e7):
    """Rates that double from BH 1 to BH 16 and from T 4 to T 64, whatever hd."""
    def rates(base):
        return [[[base * a * b] * 2 for b in (1, 2)] for a in (1, 2)]

    return {"BH": [1, 16], "T": [4, 64], "hd": [16, 64], "forward": rates(forward),
            "backward": rates(backward), "decode": rates(decode)}


def attention(name=FLASH, q=(2, 2, 16, 32), k=(2, 2, 16, 32), flops=1_000_000):
    shapes = (q, k, k) if name == FLASH else ((2, 2, 16, 32), q, k, k, q, q[:-1])
    return OpEvent(0, name, "matmul", flops, 0, shapes, (q,), 1)


def test_a_causal_square_reads_its_phase_table_at_batch_x_heads_keys_and_width():
    m = machine(attention_flops_per_s=table())
    # BH = 4 lies halfway from 1 to 16 in log space (x sqrt 2), T = 16 halfway from 4 to 64
    # (x sqrt 2): 1e8 x 2 = 2e8 FLOP/s; 1e6 FLOPs take 5 ms
    assert attention_seconds(attention(), m) == pytest.approx(1e6 / 2e8)
    # the backward's queries and keys are its 2nd and 3rd operands, at its own table
    back = attention(FLASH + "_backward")
    assert attention_seconds(back, m) == pytest.approx(1e6 / 4e8)
    # the op's compute is that (memory free, no fixed cost)
    assert op_time(attention(), m).compute_s == pytest.approx(5e-3)
    assert predict_trace(Trace((attention(),)), m)["predicted_s"] == pytest.approx(5e-3)


def test_one_query_over_cached_keys_reads_the_decode_table_at_bh_x_queries():
    m = machine(attention_flops_per_s=table())
    # (2, 2, 1, 32) over 16 keys: BH x queries = 4 -> sqrt 2, T = 16 -> sqrt 2: 2e7
    step = attention(q=(2, 2, 1, 32))
    assert attention_seconds(step, m) == pytest.approx(1e6 / 2e7)
    # 4 queries over 16 keys (a masked chunk): rows 16 (x 2), keys 16 (x sqrt 2)
    chunk = attention(q=(2, 2, 4, 32))
    assert attention_seconds(chunk, m) == pytest.approx(1e6 / (1e7 * 2 * math.sqrt(2)))


def test_without_the_table_attention_is_a_matmul_of_its_product():
    m = machine()
    assert attention_seconds(attention(), m) is None
    # (B H T, hd, S) at the uniform 1e9: 1 ms
    assert op_time(attention(), m).compute_s == pytest.approx(1e-3)
    # other matmuls never read the attention table
    mm = OpEvent(0, "mm", "matmul", 1_000_000, 0, ((10, 10), (10, 10)), ((10, 10),), 1)
    assert attention_seconds(mm, machine(attention_flops_per_s=table())) is None


def test_the_attention_microbenchmark_is_counted_flops_over_time_less_the_fixed_cost(
        monkeypatch):
    import analysis.calibrate as cal

    # a fake timer: 2 ms forward (with or without the graph), 7 ms forward + backward,
    # 1 ms a decode step
    def fake(fn, device, calls, repeats=3):
        return {"fwd": 2e-3, "recorded": 2e-3, "both": 7e-3, "decode": 1e-3}[fn.__name__]

    monkeypatch.setattr(cal, "per_call", fake)
    out = cal.measure_attention("cpu", 5e-4, heads_rows=(2,), lengths=(8,), widths=(4,))
    # PyTorch's SDPA count, full square: 4 BH T T hd = 4 * 2 * 8 * 8 * 4 = 2,048 FLOPs
    # over 2 - 0.5 ms; backward 2.5x = 5,120 over (7 - 2) - 0.5 ms; decode 4 * 2 * 1 * 8
    # * 4 = 256 over 1 - 0.5 ms
    assert out["forward"] == [[[pytest.approx(2048 / 1.5e-3)]]]
    assert out["backward"] == [[[pytest.approx(5120 / 4.5e-3)]]]
    assert out["decode"] == [[[pytest.approx(256 / 5e-4)]]]
    assert (out["BH"], out["T"], out["hd"]) == ([2], [8], [4])
    assert cal.measure_attention("cuda", 0.0) == {}
    # a torch whose counter has no formula for the CPU kernels: no table (0 FLOPs a call)
    import analysis.trace as trace

    monkeypatch.setattr(trace, "cpu_sdpa_mapping", lambda: {})
    assert cal.measure_attention("cpu", 0.0) == {}


def test_the_attention_microbenchmark_floors_a_time_below_the_fixed_cost(monkeypatch):
    import analysis.calibrate as cal

    monkeypatch.setattr(cal, "per_call", lambda fn, device, calls, repeats=3: 1e-3)
    out = cal.measure_attention("cpu", 2e-3, heads_rows=(2,), lengths=(8,), widths=(4,))
    # 1 ms less 2 ms fixed is floored at 5% of 1 ms; a backward timed as nothing (forward
    # + backward no longer than the forward) at 5% of forward + backward
    assert out["forward"] == [[[pytest.approx(2048 / 5e-5)]]]
    assert out["backward"] == [[[pytest.approx(5120 / 5e-5)]]]


def test_the_fused_lstm_rate_is_read_by_its_steps_too():
    from analysis.predict import fused_rnn_seconds

    # x (T=8, B=4, E=64): 20,971,520 FLOPs (tests/test_predict.py); T = 8 halfway from 4
    # to 16 in log space: rates 1e9 and 4e9 -> 2e9 forward
    layer = OpEvent(0, "mkldnn_rnn_layer", "elementwise", 0, 0,
                    ((8, 4, 64), (1024, 64), (1024, 256)), (), 1)
    rates = {"B": [4], "D": [256], "T": [4, 16], "forward": [[[1e9, 4e9]]],
             "backward": [[[1e8, 4e8]]]}
    m = machine(fused_rnn_flops_per_s=rates)
    assert fused_rnn_seconds(layer, m) == pytest.approx(20_971_520 / 2e9)
    back = layer._replace(name="mkldnn_rnn_layer_backward")
    assert fused_rnn_seconds(back, m) == pytest.approx(2 * 20_971_520 / 2e8)


def view(i):
    return OpEvent(i, "view", "view", 0, 0, ((4,),), ((4,),), 0)


def test_on_cuda_the_code_cost_is_host_time():
    # ten 1-us kernels; the host issues each in 2 us (its launch) + 3 us of the code's own
    ops = tuple(OpEvent(i, "tanh", "elementwise", 0, 8, (), (), i + 1) for i in range(10))
    m = machine(code_s_per_op={"gru:forward": 3e-6}).replace(
        device="cuda", op_fixed_s=2e-6, min_kernel_s=1e-6)
    p = predict_trace(Trace(ops, code="gru:forward"), m)
    # host-bound: its 10 x 5 us, then the last kernel's 1 us
    assert p["predicted_s"] == pytest.approx(10 * 5e-6 + 1e-6) and p["bound"] == "host"
    # without it the host's 20 us still exceed the GPU's 10
    assert predict_trace(Trace(ops), m)["predicted_s"] == pytest.approx(20e-6 + 1e-6)
    # the no-fixed-cost bound: the GPU's time alone
    assert predict_trace(Trace(ops, code="gru:forward"), m, fixed=False)["predicted_s"] == \
        pytest.approx(10e-6)


def test_a_workloads_own_code_cost_is_charged_per_op():
    ops = tuple(view(i) for i in range(10))
    m = machine(code_s_per_op={"gru:forward": 2e-6, "gru-torch:forward": -5e-6},
                op_fixed_by_name={}).replace(view_fixed_s=1e-6)
    # 10 views at 1 us, plus 10 x 2 us of the code's own
    assert predict_trace(Trace(ops, code="gru:forward"), m)["predicted_s"] == \
        pytest.approx(10e-6 + 20e-6)
    # an unknown code (an outside model) adds nothing
    assert predict_trace(Trace(ops, code="theirs:forward"), m)["predicted_s"] == \
        pytest.approx(10e-6)
    # a negative cost lowers the fixed costs but never below zero
    assert predict_trace(Trace(ops, code="gru-torch:forward"), m)["predicted_s"] == 0.0
    # the bound without fixed costs has none of it
    assert predict_trace(Trace(ops, code="gru:forward"), m, fixed=False)["predicted_s"] == 0.0


def test_the_code_cost_is_a_tiny_runs_time_less_its_prediction_over_its_ops(monkeypatch):
    import analysis.calibrate as cal
    from analysis.optrace import trace_workload
    from analysis.predict import measure_code_costs
    from analysis.workloads import Workload

    w = Workload(variant="gru", phase="forward", batch=2, seq_len=4, hidden=16)
    m = machine().replace(op_fixed_s=1e-6, view_fixed_s=1e-6, matmul_fixed_s=1e-6,
                          code_s_per_op={"gru:forward": 1.0})  # ignored when measuring
    trace = trace_workload(w)
    assert trace.code == "gru:forward"
    predicted = predict_trace(trace.__class__(trace.ops, trace.module_calls,
                                              trace.fused_calls), m)["predicted_s"]
    monkeypatch.setattr(cal, "per_call", lambda fn, device, calls, repeats=3: 1e-3)
    out = measure_code_costs(m, workloads=[w])
    assert out == {"gru:forward": pytest.approx((1e-3 - predicted) / len(trace.ops))}

    class Paced:  # the machine ran at half its calibrated pace: times halve
        def around(self, fn):
            return fn(), 2 * m.yardstick_s

    m = m.replace(yardstick_s=1e-3)
    out = measure_code_costs(m, Paced(), workloads=[w])
    assert out == {"gru:forward": pytest.approx((0.5e-3 - predicted) / len(trace.ops))}


def test_a_replayed_op_has_its_first_inputs_per_element_cost_taken_out(monkeypatch):
    import types

    import torch

    import analysis.calibrate as cal
    import analysis.workloads as workloads

    big, small = torch.rand(65, 64), torch.rand(8)
    run = types.SimpleNamespace(fn=lambda: (torch.sqrt(big), torch.tanh(small)))
    monkeypatch.setattr(cal, "tiny_workloads", lambda: ["one"])
    monkeypatch.setattr(workloads, "prepare", lambda w, device: run)
    # replays: the anchors' add 3 us and view 1 us, the sqrt 10 us, the tanh 4 us
    replays = {"add": 3e-6, "view": 1e-6, "sqrt": 10e-6, "tanh": 4e-6}
    monkeypatch.setattr(cal, "_replay_time", lambda call, device, calls:
                        replays[call[0].__name__.split(".")[0]])
    costs = {"op_fixed_s": 2e-6, "view_fixed_s": 0.5e-6}
    out = cal.measure_replayed_ops("cpu", costs, {"sqrt": 2e-9})
    # the handle's extra: 3 - 2 = 1 us; the sqrt's 4,160 elements at 2 ns: 8.32 us
    assert out["sqrt"] == pytest.approx(10e-6 - 8.32e-6 - 1e-6)
    assert out["tanh"] == pytest.approx(4e-6 - 1e-6)  # no per-element cost given
    # without per-element costs, the replay less the handle's extra
    assert cal.measure_replayed_ops("cpu", costs)["sqrt"] == pytest.approx(9e-6)
    # never below zero
    assert cal.measure_replayed_ops("cpu", costs, {"sqrt": 1e-8})["sqrt"] == 0.0


def test_a_machine_file_an_older_calibration_wrote_is_calibrated_again(monkeypatch, tmp_path,
                                                                         capsys):
    import json
    from pathlib import Path

    import analysis.calibrate as cal
    from charlm.cli import main

    root = Path(__file__).resolve().parents[1]
    old = json.loads((root / "results/reference/cpu/machine.json").read_text())
    for key in ("attention_flops_per_s", "code_s_per_op"):  # as a file from before them
        old.pop(key, None)
    monkeypatch.chdir(tmp_path)
    path = cal.default_cache_path("cpu", 1)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    assert cal.stale_fields(path) == ["attention_flops_per_s", "code_s_per_op"]
    assert cal.stale_fields(tmp_path / "none.json") == []
    made = []

    def fake(device, threads=None, **kw):
        made.append(kw["code_costs"])
        return cal.Machine.from_dict(old).replace(code_s_per_op={"rnn:forward": 1e-7})

    monkeypatch.setattr(cal, "calibrate", fake)
    assert main(["calibrate", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert f"the machine file at {path} predates attention_flops_per_s, code_s_per_op" in err
    assert len(made) == 1 and cal.stale_fields(path) == []  # rewritten whole
    assert cal.load_machine(path).code_s_per_op == {"rnn:forward": 1e-7}
    # now current: reused, not measured again
    assert main(["calibrate", "--format", "json"]) == 0
    assert len(made) == 1 and "reusing the machine file" in capsys.readouterr().err
    # predict-time finds it current too
    assert main(["predict-time", "--model", "rnn", "--seq-len", "4", "--format", "json"]) == 0
    assert len(made) == 1


def test_a_model_quantity_carries_the_code_key_of_the_bench_workload_that_runs_it():
    from analysis.optrace import quantity_code, trace_quantity
    from charlm.models.registry import ModelConfig

    flash = ModelConfig(model="transformer", vocab_size=65, hidden=16, heads=2,
                        block_size=8, attention="flash")
    sizes = {"B": 2, "T": 4, "P": 2, "N": 2}
    assert trace_quantity(flash, "generate", sizes, kv_cache=True).code == \
        "transformer-flash:generate_cache"
    assert trace_quantity(flash, "train", sizes).code == "transformer-flash:train"
    manual = ModelConfig(model="transformer", vocab_size=65, hidden=16, heads=2,
                         block_size=8, attention="manual")
    assert quantity_code(manual, "forward") == "transformer-manual:forward"
    gru = ModelConfig(model="gru", vocab_size=65, hidden=16)
    assert quantity_code(gru, "generate") == "gru:generate"
    # a backward alone is no bench workload: no code cost
    assert quantity_code(gru, "backward") == "" and trace_quantity(gru, "backward",
                                                                    sizes).code == ""


def kernel(i, name="mm", flops=0, nbytes=0):
    return OpEvent(i, name, "matmul" if flops else "elementwise", flops, nbytes, (), (), i + 1)


def test_host_and_gpu_overlap_as_a_pipeline_not_as_the_larger_of_their_sums():
    # 1e9 FLOP/s and 1e9 B/s; launches 10 us. Five tiny kernels (1 us each: min_kernel_s),
    # then one 100-us matmul, then five tiny ones again
    m = machine().replace(device="cuda", op_fixed_s=10e-6, matmul_fixed_s=10e-6,
                          min_kernel_s=1e-6, bandwidth_bytes_per_s=1e9,
                          ceiling_flops_per_s=1e9)
    ops = ([kernel(i, "add", nbytes=1) for i in range(5)] + [kernel(5, flops=100_000)]
           + [kernel(6 + i, "add", nbytes=1) for i in range(5)])
    p = predict_trace(Trace(tuple(ops)), m)
    # host: 11 launches = 110 us; GPU: 10 x 1 + 100 = 110 us; the larger: 110 us. As a
    # pipeline: the matmul is issued at 60 us and ends at 160; the host issues the last five
    # by 110 us, so they run back to back after it: 165 us
    assert p["predicted_s"] == pytest.approx(165e-6)
    assert p["bound"] == "gpu"  # the sums are equal: not more host than GPU
    # a GPU-bound trace costs the GPU's time plus the first launch
    big = Trace(tuple(kernel(i, flops=100_000) for i in range(3)))
    assert predict_trace(big, m)["predicted_s"] == pytest.approx(10e-6 + 300e-6)
    # and without fixed costs (CUDA graphs) the GPU's time alone
    assert predict_trace(Trace(tuple(ops)), m, fixed=False)["predicted_s"] == \
        pytest.approx(110e-6)


def test_reading_a_result_on_the_host_waits_for_the_gpu():
    from analysis.predict import SYNC_OPS

    m = machine().replace(device="cuda", op_fixed_s=10e-6, matmul_fixed_s=10e-6,
                          min_kernel_s=1e-6, ceiling_flops_per_s=1e9)
    # a 100-us matmul (launched in 10 us), an .item() of its result (no kernel, no fixed
    # cost on this machine), a 100-us matmul
    item = OpEvent(1, SYNC_OPS[0], "view", 0, 0, (), (), 2)
    ops = (kernel(0, flops=100_000), item, kernel(2, flops=100_000))
    # the host waits for the first matmul (ends at 110 us), then launches the second: 120 us
    # issued, ending at 220; without the wait it is issued at 20 us, runs after the first,
    # and ends at 210
    assert predict_trace(Trace(ops), m)["predicted_s"] == pytest.approx(220e-6)
    plain = (kernel(0, flops=100_000), item._replace(name="view"), kernel(2, flops=100_000))
    assert predict_trace(Trace(plain), m)["predicted_s"] == pytest.approx(210e-6)


def test_code_costs_run_a_workload_as_the_bench_does_with_rounds_of_5_ms(monkeypatch):
    import torch

    import analysis.calibrate as cal
    import analysis.optrace as optrace
    from analysis.predict import CODE_ROUND_S, measure_code_costs
    from analysis.trace import Trace
    from analysis.workloads import Workload

    asked = []

    def fake(fn, device, calls, repeats=3):
        asked.append((calls, repeats, torch.is_grad_enabled()))
        return 1e-3

    monkeypatch.setattr(cal, "per_call", fake)
    train = Workload(variant="rnn", phase="train", batch=2, seq_len=4, hidden=16)
    m = machine().replace(op_fixed_s=1e-6)
    with torch.no_grad():  # as the calibration runs: a train step still records its graph
        out = measure_code_costs(m, workloads=[train])
    assert set(out) == {"rnn:train"}
    # a 1-call pilot, then rounds of ceil(5 ms / 1 ms) = 5 calls, median of 3; grad on
    assert CODE_ROUND_S == 0.005 and asked == [(1, 3, True), (5, 3, True)]
    # a workload that runs no op has no per-op cost (and is not timed)
    monkeypatch.setattr(optrace, "trace_workload", lambda w: Trace(()))
    asked.clear()
    assert measure_code_costs(m, workloads=[train]) == {} and asked == []


def test_a_rate_tables_rates_move_to_the_reference_pace_and_its_axes_do_not(monkeypatch):
    import analysis.calibrate as cal

    paces = iter([1.0, 1.0, 3.0, 3.0])  # the reference: median 2
    monkeypatch.setattr(cal, "yardstick", lambda device: next(paces))
    paced = cal.Paced("cpu")
    paced.around(lambda: None)
    paced.around(lambda: None)
    table = {"BH": [1, 4], "T": [8], "hd": [16], "forward": [[[2.0]], [[4.0]]],
             "backward": [[[6.0]], [[8.0]]], "decode": [[[1.0]], [[3.0]]]}
    # measured at pace 3 (slower than the reference 2): a rate x 3 / 2
    out = cal._rescale_rates(table, 3.0, paced)
    assert out["forward"] == [[[pytest.approx(3.0)]], [[pytest.approx(6.0)]]]
    assert out["backward"] == [[[pytest.approx(9.0)]], [[pytest.approx(12.0)]]]
    assert out["decode"] == [[[pytest.approx(1.5)]], [[pytest.approx(4.5)]]]
    assert (out["BH"], out["T"], out["hd"]) == ([1, 4], [8], [16])  # sizes, not rates
    assert cal._rescale_rates({}, 3.0, paced) == {}
