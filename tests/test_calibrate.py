"""Machine files: log-space interpolation, validation, round trip, the H200 file from a probe."""

import json
import math

import pytest

from analysis.calibrate import (
    Machine,
    interpolate_log,
    load_machine,
    machine_from_probe,
    save_machine,
)


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
