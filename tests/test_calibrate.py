"""Machine files: log-space interpolation, validation, round trip, the H200 file from a probe."""

import json
import math

import pytest
import torch

from analysis.calibrate import (
    PASSES,
    SCALARS,
    Machine,
    cache_name,
    calibrate,
    compare_machines,
    compare_tables,
    interpolate_log,
    load_machine,
    machine_from_probe,
    save_machine,
    table_spread,
    value_ranges,
)
from charlm.cli import main


def flat_machine(**kw):
    base = dict(device="cpu", name="test", torch="x", threads=1, op_fixed_s=1e-6,
                view_fixed_s=0.0, matmul_fixed_s=1e-6, min_kernel_s=0.0,
                bandwidth_bytes_per_s=1e10, ceiling_flops_per_s=1e11,
                matmul_axes={"m": [1, 100], "k": [1, 100], "n": [1, 100]},
                matmul_flops_per_s=[[[1e9, 1e9], [1e9, 1e9]], [[1e9, 1e9], [1e9, 1e11]]])
    base.update(kw)
    return Machine(**base)


def test_interpolation_is_geometric_between_points_and_exact_on_them():
    axes, values = [[1, 100]], [1.0, 100.0]
    assert interpolate_log(axes, values, (1,)) == pytest.approx(1.0)
    assert interpolate_log(axes, values, (100,)) == pytest.approx(100.0)
    assert interpolate_log(axes, values, (10,)) == pytest.approx(10.0)  # sqrt(1 * 100)
    assert interpolate_log(axes, values, (1e6,)) == pytest.approx(100.0)  # clamped


def test_trilinear_corner_and_centre():
    m = flat_machine()
    assert m.throughput(100, 100, 100) == pytest.approx(1e11)
    assert m.throughput(1, 1, 1) == pytest.approx(1e9)
    # centre in log space: weight 1/8 on the 1e11 corner -> 10^(9 + 2/8)
    assert m.throughput(10, 10, 10) == pytest.approx(10 ** 9.25)


@pytest.mark.parametrize("change, word", [
    ({"device": "tpu"}, "device"), ({"op_fixed_s": -1.0}, "op_fixed_s"),
    ({"bandwidth_bytes_per_s": 0.0}, "bandwidth"),
    ({"matmul_flops_per_s": [[[1.0]]]}, "2x2x2"),
])
def test_bad_machines_raise(change, word):
    with pytest.raises(ValueError, match=word):
        flat_machine(**change)


def test_round_trip_and_bad_files(tmp_path):
    m = flat_machine()
    path = save_machine(m, tmp_path / "m.json")
    assert load_machine(path) == m
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        load_machine(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps({"device": "cpu"}))
    with pytest.raises(ValueError, match="lacks"):
        load_machine(tmp_path / "short.json")
    with pytest.raises(FileNotFoundError):
        load_machine(tmp_path / "none.json")


def test_bandwidth_by_size_interpolates_and_defaults():
    m = flat_machine()
    assert m.bandwidth(123) == 1e10
    m2 = m.replace(bandwidth_by_size={"bytes": [1e3, 1e5], "per_s": [1e9, 1e11]})
    assert m2.bandwidth(1e4) == pytest.approx(1e10)


def probe(graph):
    rows = [{"m": m, "k": kn, "n": kn, "eager_s": 1e-5 + graph(m, kn), "graph_s": graph(m, kn)}
            for m in (1, 64) for kn in (64, 256)]
    return {"device": "GPU X", "torch": "2.11", "launch": {"tiny_op_eager_s": 8e-6,
                                                          "tiny_op_graph_s": 1e-6},
            "bandwidth": {"copy_bytes_per_s": 4e12, "add_bytes_per_s": 3e12},
            "matmul_by_shape": rows}


def test_machine_from_probe_reads_each_constant_from_its_place():
    def graph(m, kn):
        return 2e-6 * m ** 0.5
    p = probe(graph)
    m = machine_from_probe(p, ceiling_flops_per_s=5e13)
    assert m.device == "cuda" and m.name == "GPU X"
    assert m.op_fixed_s == 8e-6 and m.min_kernel_s == 1e-6
    assert m.bandwidth_bytes_per_s == 3e12  # the slower of copy and add
    assert m.ceiling_flops_per_s == 5e13
    for m_, kn in ((1, 64), (64, 256)):
        assert m.throughput(m_, kn, kn) == pytest.approx(2 * m_ * kn * kn / graph(m_, kn))
    # k != n: read at the geometric mean of k and n
    assert m.throughput(64, 64, 256) == pytest.approx(m.throughput(64, 128, 128))
    assert m.matmul_fixed_s == pytest.approx(1e-5)
    assert math.isclose(m.view_fixed_s, 0.0)


def test_monotone_table_caps_a_shape_by_larger_ones():
    from analysis.calibrate import monotone_table

    axes = {"m": [1, 2], "k": [1], "n": [1]}
    # m=1 takes 2 / 1 = 2 s, m=2 takes 4 / 8 = 0.5 s: m=1 is capped at 0.5 s -> 2 / 0.5
    assert monotone_table(axes, [[[1.0]], [[8.0]]]) == [[[4.0]], [[8.0]]]
    # already monotone: unchanged
    assert monotone_table(axes, [[[1.0]], [[1.0]]]) == [[[1.0]], [[1.0]]]


def test_the_probes_outlier_is_capped():
    def graph(m, kn):
        return 50e-6 if (m, kn) == (1, 64) else 2e-6
    m = machine_from_probe(probe(graph), ceiling_flops_per_s=5e13)
    # the outlier (50 us) takes its larger neighbour's 2 us
    assert m.throughput(1, 64, 64) == pytest.approx(2 * 64 * 64 / 2e-6)


def test_layout_tables_are_read_by_layout_and_checked():
    half = [[[5e8, 5e8], [5e8, 5e8]], [[5e8, 5e8], [5e8, 5e10]]]
    m = flat_machine(matmul_layouts={"nt": half})
    assert m.throughput(100, 100, 100, "nt") == pytest.approx(5e10)
    assert m.throughput(1, 1, 1, "nt") == pytest.approx(5e8)
    assert m.throughput(1, 1, 1, "nn") == pytest.approx(1e9)
    assert m.throughput(1, 1, 1, "tn") == pytest.approx(1e9)  # not measured: the nn table
    with pytest.raises(ValueError, match="layout"):
        flat_machine(matmul_layouts={"xy": half})
    with pytest.raises(ValueError, match="nt must be 2x2x2"):
        flat_machine(matmul_layouts={"nt": [[[1.0]]]})
    old = flat_machine().to_dict()
    del old["matmul_layouts"]  # a machine file written before layouts were measured
    assert Machine.from_dict(old).throughput(1, 1, 1, "nt") == pytest.approx(1e9)


@pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
def test_calibration_operands_are_stored_as_their_layout(layout):
    from analysis.calibrate import operand

    a, b = operand(3, 5, layout[0] == "t", "cpu"), operand(5, 7, layout[1] == "t", "cpu")
    assert a.shape == (3, 5) and b.shape == (5, 7)
    # row-major strides (cols, 1); a transposed view is column-major: (1, rows)
    assert a.stride() == ((1, 3) if layout[0] == "t" else (5, 1))
    assert b.stride() == ((1, 5) if layout[1] == "t" else (7, 1))


def test_paced_measurements_are_rescaled_to_the_median_yardstick(monkeypatch):
    import analysis.calibrate as cal

    paces = iter([1.0, 1.0, 2.0, 2.0, 1.0, 4.0])  # yardstick seconds, two per measurement
    monkeypatch.setattr(cal, "yardstick", lambda device: next(paces))
    paced = cal.Paced("cpu")
    assert paced.around(lambda: 10.0) == (10.0, 1.0)
    assert paced.around(lambda: 30.0) == (30.0, 2.0)
    value, pace = paced.around(lambda: 5.0)
    assert pace == pytest.approx(2.0)  # sqrt(1 x 4): the geometric mean around it
    assert paced.reference == pytest.approx(1.5)  # median of 1, 1, 2, 2, 1, 4
    # a time taken at pace 2 (slow) shrinks to the reference pace, a rate grows
    assert paced.time(30.0, 2.0) == pytest.approx(22.5)
    assert paced.rate(100.0, 2.0) == pytest.approx(100.0 * 2.0 / 1.5)
    assert paced.times({"a": 2.0}, 1.0) == {"a": pytest.approx(3.0)}


def test_fresh_output_cost_is_a_step_at_the_measured_sizes():
    m = flat_machine(fresh_output_by_size={"bytes": [100, 1000], "s_per_byte": [0.0, 2.0]})
    assert m.fresh_output_s(50) == 0.0  # below the smallest measured size
    assert m.fresh_output_s(999) == 0.0  # the 100-byte step holds up to 1000
    assert m.fresh_output_s(1000) == pytest.approx(2000.0)
    assert m.fresh_output_s(5000) == pytest.approx(10000.0)
    assert flat_machine().fresh_output_s(10**9) == 0.0  # none measured
    with pytest.raises(ValueError, match="fresh_output_by_size"):
        flat_machine(fresh_output_by_size={"bytes": [1000, 100], "s_per_byte": [0.0, 1.0]})


def test_median_nested_is_elementwise():
    from analysis.calibrate import median_nested

    items = [{"a": 1.0, "t": [[1.0, 9.0]]}, {"a": 3.0, "t": [[2.0, 8.0]]},
             {"a": 2.0, "t": [[5.0, 7.0]], "b": 4.0}]
    assert median_nested(items) == {"a": 2.0, "t": [[2.0, 8.0]], "b": 4.0}


def test_every_tiny_workload_runs_and_its_ops_replay():
    import torch

    from analysis.calibrate import _replay_time, tiny_workloads
    from analysis.trace import Tracer, trace
    from analysis.workloads import prepare, variants

    works = tiny_workloads()
    assert {w.variant for w in works} == set(variants())  # every variant, at least once
    assert {"generate_cache", "train"} <= {w.phase for w in works}
    recorder = Tracer(first_calls=True)
    x = torch.randn(4, 8, requires_grad=True)
    trace(lambda: torch.tanh(x @ x.t()).sum().backward(), tracer=recorder)
    calls = recorder.first_calls
    assert {"tanh", "sum", "tanh_backward"} <= set(calls)
    assert "mm" not in calls  # matmuls are timed by shape, not replayed
    assert calls["t"][3] is True and calls["tanh"][3] is False  # views
    assert _replay_time(calls["tanh"], "cpu", 3) > 0
    p = prepare(works[0], "cpu")
    p.fn()  # a tiny workload is a real, runnable one


# ---------------------------------------------------------------------------- passes and noise


def test_pass_count_and_ranges_are_checked_and_optional_in_older_files():
    with pytest.raises(ValueError, match="passes"):
        flat_machine(passes=0)
    with pytest.raises(ValueError, match="op_fixed_s"):
        flat_machine(pass_range={"op_fixed_s": [2e-6, 1e-6]})  # low above high
    older = flat_machine().to_dict()
    for key in ("passes", "pass_range", "matmul_pass_spread"):
        del older[key]
    m = Machine.from_dict(older)
    assert m.passes is None and m.pass_range == {} and m.matmul_pass_spread == {}


def test_another_pass_count_is_cached_under_its_own_name():
    import torch

    v = torch.__version__
    assert cache_name("cpu", "x", 1) == f"cpu-x-torch{v}-t1.json"
    assert cache_name("cpu", "x", 1, passes=PASSES) == f"cpu-x-torch{v}-t1.json"
    assert cache_name("cpu", "x", 2, passes=1) == f"cpu-x-torch{v}-t2-p1.json"


def test_a_pass_count_below_one_is_refused_before_measuring():
    with pytest.raises(ValueError, match="passes must be a positive integer"):
        calibrate("cpu", passes=0)


def test_value_ranges_and_table_spread_by_hand():
    assert value_ranges([{"a": 1.0, "b": 5.0}, {"a": 3.0, "b": 4.0}, {"a": 2.0, "b": 6.0}]) \
        == {"a": [1.0, 3.0], "b": [4.0, 6.0]}
    assert value_ranges([{"a": 1.0}]) == {}  # one pass: no range
    # shapes (1, 1, 1) and (1, 1, 2): ratios 2 and 1 -> logs [log 2, 0]
    assert table_spread([[[[1.0, 2.0]]], [[[2.0, 2.0]]]]) == pytest.approx(
        [math.log(2) / 2, math.log(2)])


def _long_and_short():
    """Two calibrations by hand: the short one ran at a 10% slower pace (yardstick 1.1 ms
    against 1 ms), so its times are 1.1x and its rates 1/1.1x what they are at the long
    one's pace."""
    long = flat_machine(op_fixed_s=2e-6, view_fixed_s=0.5e-6, yardstick_s=1e-3, passes=3,
                        pass_range={"op_fixed_s": [1.8e-6, 2.2e-6],
                                    "view_fixed_s": [0.45e-6, 0.55e-6],
                                    "bandwidth_bytes_per_s": [9e9, 1.1e10],
                                    "yardstick_s": [0.9e-3, 1.05e-3]},
                        op_backward_s=3e-6, matmul_pass_spread={"nn": [0.01, 0.2]})
    short = flat_machine(op_fixed_s=2.31e-6, view_fixed_s=1.1e-6, yardstick_s=1.1e-3,
                         bandwidth_bytes_per_s=8.8e9, passes=1)
    return short, long


def test_compare_machines_puts_the_short_one_at_the_long_ones_pace():
    short, long = _long_and_short()
    rows = compare_machines(short, long).set_index("constant")
    assert "op_backward_s" not in rows.index  # the short one has none
    assert set(rows.index) == set(SCALARS) - {"op_backward_s"}
    op = rows.loc["op_fixed_s"]  # 2.31 us at pace 1.1 -> 2.1 us: inside [1.8, 2.2] us
    assert (op["long"], op["long_min"], op["long_max"]) == (2e-6, 1.8e-6, 2.2e-6)
    assert op["short"] == pytest.approx(2.1e-6) and op["ratio"] == pytest.approx(1.05)
    assert op["inside"] == True  # noqa: E712 (a numpy bool)
    view = rows.loc["view_fixed_s"]  # 1.1 us -> 1.0 us, twice the long one: outside
    assert view["ratio"] == pytest.approx(2.0) and view["inside"] == False  # noqa: E712
    bw = rows.loc["bandwidth_bytes_per_s"]  # 8.8 GB/s at pace 1.1 -> 9.68 GB/s: inside
    assert bw["short"] == pytest.approx(9.68e9) and bw["inside"] == True  # noqa: E712
    yard = rows.loc["yardstick_s"]  # the pace itself, as measured: 1.1 ms, above 1.05 ms
    assert yard["ratio"] == pytest.approx(1.1) and yard["inside"] == False  # noqa: E712
    ceiling = rows.loc["ceiling_flops_per_s"]  # no range recorded for it
    assert ceiling["short"] == pytest.approx(1e11 * 1.1) and pd_missing(ceiling["inside"])
    assert pd_missing(rows.loc["min_kernel_s", "ratio"])  # 0 / 0


def pd_missing(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_compare_tables_by_hand():
    short, long = _long_and_short()
    # measured at the slower pace: every throughput 1/1.1x, one shape also 1.5x faster
    slow = [[[v / 1.1 for v in row] for row in plane] for plane in long.matmul_flops_per_s]
    slow[0][0][1] *= 1.5  # m=1, k=1, n=100
    short = short.replace(matmul_flops_per_s=slow, matmul_layouts={"nt": slow})
    [row] = compare_tables(short, long).to_dict("records")  # nt: the long one has none
    assert row["layout"] == "nn" and row["shapes"] == 8
    assert row["abs_log_median"] == pytest.approx(0, abs=1e-12)
    assert row["abs_log_max"] == pytest.approx(math.log(1.5))
    assert row["worst_shape"] == "1x1x100"
    assert (row["spread_median"], row["spread_max"]) == (0.01, 0.2)
    other = flat_machine(matmul_axes={"m": [1, 10], "k": [1, 100], "n": [1, 100]})
    with pytest.raises(ValueError, match="axes"):
        compare_tables(other, long)


def test_cli_compare_prints_both_tables_and_refuses_calibration_flags(tmp_path, capsys):
    short, long = _long_and_short()
    a, b = save_machine(short, tmp_path / "short.json"), save_machine(long, tmp_path / "l.json")
    assert main(["calibrate", "--compare", str(a), str(b), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["constant"] for r in out["constants"]] == [s for s in SCALARS
                                                          if s != "op_backward_s"]
    assert [r["layout"] for r in out["matmul"]] == ["nn"]
    assert main(["calibrate", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"short: {a} (1 pass, undated" in out and f"long: {b} (3 passes" in out
    # the same tables at paces 1.1 ms and 1 ms: every shape log(1.1) apart
    assert "view_fixed_s" in out and f"{math.log(1.1):.4g}" in out
    for argv, needle in ((["--passes", "2"], "leave out --passes"),
                         ([], "--compare: machine file not found")):
        missing = [str(tmp_path / "none.json")] if not argv else []
        assert main(["calibrate", "--compare", str(a), *(missing or [str(b)]), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.json", "short.json"]


def test_the_clis_pass_count_mirrors_the_librarys():
    from charlm.commands import calibrate as command

    assert command.PASSES == PASSES


# ------------------------------------------------------------ microbenchmarks on a fake clock
# Each microbenchmark times its calls with `per_call` (the median per-call seconds); replaced
# by a fake whose answer is known, the constant each returns is known by hand.


def _fake_add_timer(fixed_s, rate_of):
    """A per_call whose answer is fixed_s plus the bytes the call moves (its input read and
    its output written, one float32 tensor of each size) over rate_of(tensor) bytes/s."""

    def per_call(fn, device, calls, repeats=3):
        out = fn()  # y.copy_(x) and torch.add(x, 1.0, out=y) return y
        moved = 2 * out.numel() * out.element_size()
        return fixed_s + moved / rate_of(out, moved)

    return per_call


def test_streaming_bandwidth_counts_bytes_read_plus_written(monkeypatch):
    import analysis.calibrate as cal

    # a copy of 1 MiB reads 1 MiB and writes 1 MiB: 2 MiB at 2e10 B/s; the add (its output
    # holds 2.0, the copy's 1.0) moves the same at 1e10 B/s
    monkeypatch.setattr(cal, "per_call", _fake_add_timer(
        0.0, lambda out, moved: 2e10 if out[0].item() == 1.0 else 1e10))
    bw = cal.measure_bandwidth("cpu", nbytes=2**20)
    assert bw["copy_bytes_per_s"] == pytest.approx(2e10)  # (2 x 2^20 B) / (2^21 / 2e10 s)
    assert bw["add_bytes_per_s"] == pytest.approx(1e10)


def test_bandwidth_by_size_is_bytes_moved_over_time_minus_the_fixed_cost(monkeypatch):
    import analysis.calibrate as cal

    # every add costs 1 us fixed plus its bytes at 4e10 B/s while they fit in 1 MiB (cache),
    # 1e10 B/s above; the fixed cost the function measures first is that same 1 us
    monkeypatch.setattr(cal, "measure_op_costs", lambda device, chain=400: {"op_fixed_s": 1e-6})
    monkeypatch.setattr(cal, "per_call", _fake_add_timer(
        1e-6, lambda out, moved: 4e10 if moved < 2**20 else 1e10))
    sizes = (2**12, 2**15, 2**18, 2**21, 2**24)
    got = cal.measure_bandwidth_by_size("cpu", sizes)
    # e.g. 4096 B: t = 1 us + 4096 / 4e10 s = 1.1024 us; 4096 B / (t - 1 us) = 4e10 B/s
    assert got["bytes"] == [4096, 32768, 262144, 2097152, 16777216]
    assert got["per_s"] == pytest.approx([4e10, 4e10, 4e10, 1e10, 1e10])


def test_module_call_cost_is_per_call_of_the_chain(monkeypatch):
    import torch

    import analysis.calibrate as cal

    # the chain of nn.Linear calls runs under no_grad, the recorded adds with autograd on: a
    # fake per_call answers 5 us per chained call for the first, 3 us for the second
    chain = 10

    def per_call(fn, device, calls, repeats=3):
        return chain * (3e-6 if torch.is_grad_enabled() else 5e-6)

    monkeypatch.setattr(cal, "per_call", per_call)
    costs = {"op_fixed_s": 0.0, "view_fixed_s": 0.0, "matmul_fixed_s": 0.0}
    out = cal.measure_overheads("cpu", costs, chain=chain)
    # 10 calls took 50 us: 5 us a call (no op fixed cost to take out); 30 us / 10 = 3 us
    assert out["module_call_s"] == pytest.approx(5e-6)
    assert out["op_autograd_s"] == pytest.approx(3e-6)


class _FakeEvent:
    """torch.cuda.Event on a fake clock: `record` stamps it, elapsed_time in ms."""

    def __init__(self, clock, enable_timing=False):
        self.clock, self.t = clock, None

    def record(self):
        self.t = self.clock[0]

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


def test_cuda_per_call_times_are_seconds_from_event_milliseconds(monkeypatch):
    import torch

    import analysis.calibrate as cal

    clock = [0.0]  # seconds
    monkeypatch.setattr(torch.cuda, "Event", lambda enable_timing=False: _FakeEvent(clock))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    # a warm-up call (not timed), then three repeats of 4 calls at 1 ms, 10 ms and 2 ms each
    durations = iter([1.0] + [1e-3] * 4 + [10e-3] * 4 + [2e-3] * 4)

    def fn():
        clock[0] += next(durations)

    # per repeat: 4 ms, 40 ms, 8 ms of events over 4 calls -> 1 ms, 10 ms, 2 ms; median 2 ms
    assert cal.per_call(fn, "cuda", calls=4, repeats=3) == pytest.approx(2e-3)


def test_machine_from_probe_states_every_constants_source_and_what_the_probe_lacks():
    # the machine file's provenance, one line per constant (machine_from_probe's docstring):
    # what the probe measured, by its field, and what it did not measure (0, or a stand-in)
    p = probe(lambda m, kn: 2e-6)
    del p["device"], p["torch"]
    m = machine_from_probe(p, ceiling_flops_per_s=5e13, launch_s=3e-6)
    assert (m.name, m.torch, m.threads, m.date) == ("cuda", "", 1, "2026-11-28")
    assert m.op_fixed_s == 3e-6  # launch_s overrides the probe's 8 us
    assert m.sources == {
        "op_fixed_s": "probe2.json launch.tiny_op_eager_s (chain of 1000 tiny in-place adds, "
                      "CUDA events, min of 5)",
        "view_fixed_s": "not measured by the probe: 0",
        "module_call_s": "not measured by the probe: 0",
        "op_autograd_s": "not measured by the probe: 0",
        "op_backward_s": "not measured by the probe: op_fixed_s",
        "elementwise_s_per_element": "not measured by the probe: bytes / bandwidth only",
        "matmul_fixed_s": "probe2.json: eager minus graph time of the 1x64x64 matmul",
        "min_kernel_s": "probe2.json launch.tiny_op_graph_s (the chain in a CUDA graph)",
        "bandwidth_bytes_per_s": "probe2.json bandwidth: min of copy and add (1 GiB fp32)",
        "matmul_flops_per_s": "probe2.json matmul_by_shape graph_s (k = n in the probe: "
                              "(m, k, n) read at (m, sqrt(k n))), each time capped by every "
                              "larger shape's (the probe's 8x128x128 took 52 us, 10x its "
                              "neighbours)",
        "ceiling_flops_per_s": "the run's ceiling.csv (8192^3 fp32 matmul, median)",
    }


def test_machine_from_probe_takes_the_smallest_matmuls_launch_gap_never_below_zero():
    # the smallest shape by m k n is 1 x 64 x 64 (4,096 against 16,384 or more); its eager
    # time minus its graph time is the matmul's fixed cost. A row sorted first but larger
    # (64 x 64 x 64) must not be taken, and m k / n or m / k n would pick another row.
    def rows(gap_small):
        return [{"m": m, "k": kn, "n": kn, "graph_s": 2e-6,
                 "eager_s": 2e-6 + (gap_small if (m, kn) == (1, 64) else 7e-6)}
                for m in (64, 1) for kn in (256, 64)]

    p = probe(lambda m, kn: 2e-6)
    p["matmul_by_shape"] = rows(4e-6)
    assert machine_from_probe(p, 5e13).matmul_fixed_s == pytest.approx(4e-6)
    p["matmul_by_shape"] = rows(-1e-6)  # eager faster than graph: noise, not a negative cost
    assert machine_from_probe(p, 5e13).matmul_fixed_s == 0.0


def test_machine_from_probe_refuses_a_missing_or_partial_table():
    p = probe(lambda m, kn: 2e-6)
    for bad in (None, [], {"m": 1}):
        with pytest.raises(ValueError, match=r"^probe2 has no matmul_by_shape table$"):
            machine_from_probe({**p, "matmul_by_shape": bad}, 5e13)
    with pytest.raises(ValueError, match=r"^probe2 matmul_by_shape is not a full m x k table$"):
        machine_from_probe({**p, "matmul_by_shape": p["matmul_by_shape"][:-1]}, 5e13)


def test_each_elementwise_microbenchmark_dispatches_its_op_on_n_elements():
    # _elementwise_ops's contract: key -> a call dispatching that aten op over n float32
    # elements (a ":s" key: the scan steps across a stride, as over T of (B, T, D)); traced,
    # each call's last op is the named one, its first input holds n elements, the scans'
    # layout is "c" along rows and "s" across, and a log-space scan reads rising values
    from analysis.calibrate import _elementwise_ops
    from analysis.trace import trace

    n = 2 ** 15  # 128 rows of 256, or 2 blocks of 256 x 64
    ops = _elementwise_ops("cpu", n)
    assert set(ops) == {"tanh", "sigmoid", "exp", "log", "softplus", "gelu", "_softmax",
                        "_log_softmax", "native_layer_norm", "masked_fill", "cumsum",
                        "logcumsumexp", "cumsum:s", "logcumsumexp:s", "where", "ge", "mul",
                        "add", "sqrt", "gelu_backward", "tanh_backward", "sigmoid_backward",
                        "_softmax_backward_data", "native_layer_norm_backward"}
    shapes = {"_softmax": (128, 256), "_log_softmax": (128, 256),
              "_softmax_backward_data": (128, 256), "native_layer_norm_backward": (128, 256),
              "native_layer_norm": (128, 256), "masked_fill": (128, 256),
              "cumsum": (128, 256), "logcumsumexp": (128, 256),
              "cumsum:s": (2, 256, 64), "logcumsumexp:s": (2, 256, 64)}
    for key, (fn, elements) in ops.items():
        assert elements == n, key
        name, _, layout = key.partition(":")
        op = [e for e in trace(fn).ops if e.kind != "view"][-1]
        assert op.name == name, key
        assert op.shapes[0] == shapes.get(key, (n,)), key
        assert op.dtypes[0] == torch.float32 or name == "where", key
        if name in ("cumsum", "logcumsumexp"):
            assert op.layout == (layout or "c"), key
        # the cheap ones write a preallocated output (out=), timing the op, not an allocation
        out = key in ("tanh", "sigmoid", "exp", "log", "mul", "add", "sqrt")
        assert ([a for a, _ in op.inputs][-1] == "out") == out, key
    # inputs in (0.5, 1.5): log is finite, half the where/ge condition holds
    x = ops["log"][0]()
    assert torch.isfinite(x).all() and float(x.min()) > math.log(0.5) - 1e-6
    ge = ops["ge"][0]()
    assert 0.4 < float(ge.float().mean()) < 0.6


def _op_clock(costs: dict, seen: list):
    """A fake per_call: runs fn once, counting the aten ops it dispatches, and returns the
    seconds those ops would take at `costs` (op name -> seconds per call) per call of fn,
    with fn's device, calls and repeats recorded in `seen`."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.total += costs[func.overloadpacket.__name__]
            return func(*args, **(kwargs or {}))

    def per_call(fn, device, calls, repeats=3):
        seen.append((device, calls, repeats))
        mode = Count()
        mode.total = 0.0
        with mode:
            fn()
        return mode.total

    return per_call


def test_op_costs_are_each_chains_time_over_its_length(monkeypatch):
    import analysis.calibrate as cal

    # a tiny add 3 us, a view 0.1 us, a 1x1x1 matmul 5 us: a chain of n of each takes n
    # times that, and each fixed cost is the chain's time over n
    seen = []
    monkeypatch.setattr(cal, "per_call", _op_clock({"add": 3e-6, "view": 1e-7, "mm": 5e-6},
                                                   seen))
    got = cal.measure_op_costs("cpu", chain=7)
    assert got == {"op_fixed_s": pytest.approx(3e-6), "view_fixed_s": pytest.approx(1e-7),
                   "matmul_fixed_s": pytest.approx(5e-6), "min_kernel_s": 0.0}
    # each chain timed as one call, the median of 5; a view's cost is host time: on the CPU
    assert seen == [("cpu", 1, 5)] * 3


def test_a_device_name_is_made_safe_for_a_file_name():
    v = torch.__version__
    # letters, digits and . _ + - stay; anything else (spaces, parentheses, @, /) becomes _
    assert (cache_name("cpu", "Intel(R) Xeon @ 2.2GHz/x_y+z-w", 4)
            == f"cpu-Intel_R__Xeon___2.2GHz_x_y+z-w-torch{v}-t4.json")


def test_the_default_cache_is_under_runs_machine_named_for_this_device(monkeypatch):
    import analysis.calibrate as cal

    monkeypatch.setattr(cal, "device_name", lambda device: f"{device} box")
    v = torch.__version__
    assert cal.default_cache_path("cpu", 2) == (
        cal.Path("runs") / "machine" / f"cpu-cpu_box-torch{v}-t2.json")
    assert cal.default_cache_path("cuda", 1, passes=1) == (
        cal.Path("runs") / "machine" / f"cuda-cuda_box-torch{v}-t1-p1.json")


def test_planned_seconds_counts_every_shape_layout_and_pass():
    from analysis.calibrate import planned_seconds

    # nn plus the 2 measured layouts, 6^3 CPU shapes (7^3 on CUDA), 3 passes, 8 ms each:
    # 3 * 3 * 216 * 0.008 = 15.552 s; 3 * 3 * 343 * 0.008 = 24.696 s
    assert planned_seconds() == pytest.approx(15.552)
    assert planned_seconds("cuda") == pytest.approx(24.696)
    assert planned_seconds("cpu", passes=1) == pytest.approx(5.184)
    assert planned_seconds("cpu", axis=(1, 8), budget_s=0.5) == pytest.approx(36.0)


def test_cached_machine_calibrates_once_then_reads_the_file(monkeypatch, tmp_path):
    import analysis.calibrate as cal

    made = []

    def fake_calibrate(device, threads, passes, code_costs=None):
        made.append((device, threads, passes))
        return flat_machine(threads=threads, name=f"run {len(made)}")

    monkeypatch.setattr(cal, "calibrate", fake_calibrate)
    monkeypatch.setattr(cal, "device_name", lambda device: "box")
    monkeypatch.chdir(tmp_path)
    first = cal.cached_machine("cpu", threads=2)
    path = tmp_path / "runs" / "machine" / f"cpu-box-torch{torch.__version__}-t2.json"
    assert made == [("cpu", 2, PASSES)] and path.is_file()
    assert cal.cached_machine("cpu", threads=2) == first  # read back, not measured again
    assert len(made) == 1
    again = cal.cached_machine("cpu", threads=2, force=True)
    assert made[-1] == ("cpu", 2, PASSES) and again.name == "run 2"
    assert load_machine(path).name == "run 2"  # force rewrites the file
    own = tmp_path / "mine.json"
    short = cal.cached_machine("cpu", threads=1, path=own, passes=1)
    assert made[-1] == ("cpu", 1, 1) and load_machine(own) == short


# the fields a machine file must have; every other one is optional (a file written before it
# existed still loads, with the field's default)
REQUIRED_FIELDS = {"device", "name", "torch", "threads", "op_fixed_s", "view_fixed_s",
                   "matmul_fixed_s", "min_kernel_s", "bandwidth_bytes_per_s",
                   "ceiling_flops_per_s", "matmul_axes", "matmul_flops_per_s"}


def test_a_machine_file_needs_only_the_required_fields():
    full = flat_machine().to_dict()
    bare = {k: v for k, v in full.items() if k in REQUIRED_FIELDS}
    assert Machine.from_dict(bare) == flat_machine()  # the rest at their defaults
    for field in sorted(set(full) - REQUIRED_FIELDS):  # each optional one alone missing
        assert Machine.from_dict({k: v for k, v in full.items() if k != field}) == flat_machine()
    with pytest.raises(ValueError, match=r"^machine file lacks name, threads$"):
        Machine.from_dict({k: v for k, v in bare.items() if k not in ("threads", "name")})
    # unknown keys (a newer file) are ignored
    assert Machine.from_dict({**full, "from_the_future": 1}) == flat_machine()


def test_a_machine_file_is_written_into_new_folders_one_space_indented(tmp_path):
    path = save_machine(flat_machine(), tmp_path / "a" / "b" / "m.json")
    assert path == tmp_path / "a" / "b" / "m.json"
    text = path.read_text()
    assert text.startswith('{\n "device": "cpu",\n "name": "test",\n') and text.endswith("}\n")
    assert json.loads(text) == flat_machine().to_dict()


def test_bracket_finds_the_log_space_interval_and_clamps_outside():
    from analysis.calibrate import _bracket

    axis = [1, 10, 100]
    assert _bracket(axis, 0.5) == (0, 0, 0.0)  # below: the first point
    assert _bracket(axis, 1) == (0, 0, 0.0)
    assert _bracket(axis, 10) == (0, 1, 1.0)  # on an inner point: the interval it ends
    assert _bracket(axis, 100) == (2, 2, 0.0)  # the last point and above: the last
    assert _bracket(axis, 1e4) == (2, 2, 0.0)
    i, j, w = _bracket(axis, 10 ** 1.5)  # halfway in log space between 10 and 100
    assert (i, j) == (1, 2) and w == pytest.approx(0.5)
    assert _bracket([5], 7) == (0, 0, 0.0)
    # sizes below 1 are logs below 0, not clamped to 1: log(0.3 / 0.1) / log(1 / 0.1)
    i, j, w = _bracket([0.1, 1.0], 0.3)
    assert (i, j) == (0, 1) and w == pytest.approx(math.log(3) / math.log(10))
    assert _bracket([0.1, 1.0], 0.0) == (0, 0, 0.0)  # zero: no log error, the first point


def test_compare_tables_walks_each_axis_and_each_shared_layout():
    # axes of different lengths per dimension: m (1, 10), k (1, 100), n (1, 1000); the long
    # machine runs 1e9 FLOP/s everywhere, the short one e^1 faster at m=10, k=1, n=1000 in nn
    # and e^2 faster at m=1, k=100, n=1 in nt; same pace (no yardsticks)
    axes = {"m": [1, 10], "k": [1, 100], "n": [1, 1000]}
    flat = [[[1e9, 1e9], [1e9, 1e9]], [[1e9, 1e9], [1e9, 1e9]]]
    nn = [[[1e9, 1e9], [1e9, 1e9]], [[1e9, 1e9 * math.e], [1e9, 1e9]]]
    nt = [[[1e9, 1e9], [1e9 * math.e ** 2, 1e9]], [[1e9, 1e9], [1e9, 1e9]]]
    long = flat_machine(matmul_axes=axes, matmul_flops_per_s=flat, matmul_layouts={"nt": flat},
                        matmul_pass_spread={"nn": (0.01, 0.2)})
    short = flat_machine(matmul_axes=axes, matmul_flops_per_s=nn, matmul_layouts={"nt": nt})
    rows = compare_tables(short, long).to_dict("records")
    assert [(r["layout"], r["shapes"], r["worst_shape"]) for r in rows] == [
        ("nn", 8, "10x1x1000"), ("nt", 8, "1x100x1")]
    assert [r["abs_log_max"] for r in rows] == [pytest.approx(1.0), pytest.approx(2.0)]
    # one shape in eight differs: the median of |log| is 0
    assert [r["abs_log_median"] for r in rows] == [pytest.approx(0, abs=1e-12)] * 2
    assert (rows[0]["spread_median"], rows[0]["spread_max"]) == (0.01, 0.2)
    assert pd_missing(rows[1]["spread_median"]) and pd_missing(rows[1]["spread_max"])
    with pytest.raises(ValueError,
                       match=r"^the two machines' matmul tables have different axes$"):
        compare_tables(short, flat_machine())


def test_pace_ratio_needs_both_yardsticks():
    from analysis.calibrate import pace_ratio

    assert pace_ratio(flat_machine(yardstick_s=2.0), flat_machine(yardstick_s=3.0)) == 1.5
    for of, to in ((None, 3.0), (2.0, None), (None, None)):
        assert pace_ratio(flat_machine(yardstick_s=of), flat_machine(yardstick_s=to)) == 1.0


def test_a_short_value_on_the_long_runs_range_ends_is_inside():
    long = flat_machine(pass_range={"op_fixed_s": (1e-6, 2e-6)})
    rows = {float(short): bool(compare_machines(flat_machine(op_fixed_s=short), long)
                               .set_index("constant").loc["op_fixed_s", "inside"])
            for short in (0.9e-6, 1e-6, 1.5e-6, 2e-6, 2.1e-6)}
    assert rows == {0.9e-6: False, 1e-6: True, 1.5e-6: True, 2e-6: True, 2.1e-6: False}


def test_bandwidth_of_tiny_moves_and_an_empty_table():
    m = flat_machine(bandwidth_by_size={"bytes": [1, 100], "per_s": [1e9, 1e11]})
    assert m.bandwidth(1) == pytest.approx(1e9)  # the table's first point, not past it
    assert m.bandwidth(0) == pytest.approx(1e9)  # nothing moved: the smallest size's rate
    assert m.bandwidth(10) == pytest.approx(1e10)  # halfway in log space
    empty = flat_machine(bandwidth_by_size={"bytes": [], "per_s": []})
    assert empty.bandwidth(10) == 1e10  # no table: the streaming bandwidth
