"""analysis.depth's graph walk on hand-built traces, where every depth is worked out by hand,
and the fused attention weights derived from the manual path's algebra (the module
docstring): forward S = Q K^T, P = softmax(S + mask), O = P V, lse = logsumexp(S + mask);
backward dV = P^T dO, dP = dO V^T, D = rowsum(dO * O), dS = P * (dP - D), dQ = dS K,
dK = dS^T Q, dbias = dS."""

import pytest
import sympy as sp

from analysis.depth import DepthReport, _attention_kind, _input_role, _output_role, depth_of
from analysis.trace.events import OpEvent, Trace


def ev(index, name, inputs=(), *, kind="elementwise", results=1, scan=0, params=()):
    return OpEvent(
        index,
        name,
        kind,
        0,
        0,
        (),
        (),
        0,
        inputs=tuple(inputs),
        results=results,
        scan=scan,
        params=tuple(params),
    )


def mm(index, *sources, params=()):
    names = ("self", "mat2", "bias")
    return ev(
        index, "mm", [(names[i], s) for i, s in enumerate(sources)], kind="matmul", params=params
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("_scaled_dot_product_flash_attention", "forward"),
        ("_scaled_dot_product_efficient_attention", "forward"),
        ("_scaled_dot_product_cudnn_attention", "forward"),
        ("_scaled_dot_product_flash_attention_backward", "backward"),
        ("_scaled_dot_product_efficient_attention_backward", "backward"),
        ("scaled_dot_product_attention", "forward"),
        ("_flash_attention_forward", "forward"),
        ("_efficient_attention_forward", "forward"),
        ("_flash_attention_backward", "backward"),
        ("_efficient_attention_backward", "backward"),
        ("mm", None),
        ("softmax", None),
        ("_flash_attention", None),
    ],
)
def test_attention_kind(name, kind):
    assert _attention_kind(name) == kind


@pytest.mark.parametrize(
    ("arg", "role"),
    [
        ("grad_out", "dO"),
        ("grad_output", "dO"),
        ("query", "q"),
        ("key", "k"),
        ("value", "v"),
        ("out", "O"),
        ("output", "O"),
        ("logsumexp", "lse"),
        ("softmax_lse", "lse"),
        ("attn_mask", "mask"),
        ("attn_bias", "mask"),
        ("dropout_p", "aux"),
        ("scale", "aux"),
        ("philox_seed", "aux"),
    ],
)
def test_input_role(arg, role):
    assert _input_role(arg) == role


def test_output_role():
    assert [_output_role("forward", i) for i in range(3)] == ["out", "lse", "aux"]
    assert [_output_role("backward", i) for i in range(5)] == ["dq", "dk", "dv", "dbias", "aux"]


def test_depth_report_defaults_and_dict():
    r = DepthReport(3, 4, 5, 6)
    assert r.depth == 3 and r.scan_depth == 0 and r.critical_path == []
    assert DepthReport(3, 4, 5, 6, depth=7).depth == 7
    assert DepthReport(3, 4, 5, 6, depth=0).depth == 0
    assert DepthReport(1, 2, 3, 4, ["mm"], 5, 6).to_dict() == {
        "matmul_depth": 1,
        "matmul_launches": 2,
        "op_depth": 3,
        "ops": 4,
        "scan_depth": 5,
        "depth": 6,
    }


def test_empty_trace_and_a_lone_sink():
    assert depth_of(Trace(())).to_dict() == {
        "matmul_depth": 0,
        "matmul_launches": 0,
        "op_depth": 0,
        "ops": 0,
        "scan_depth": 0,
        "depth": 0,
    }
    sink = depth_of(Trace((ev(0, "item", results=0),)))
    assert (sink.op_depth, sink.ops, sink.matmul_depth, sink.depth) == (1, 1, 0, 0)
    # a matmul that returns nothing (written into its out= argument): launched, no depth
    out = depth_of(Trace((ev(0, "mm_out", kind="matmul", results=0),)))
    assert (out.matmul_launches, out.matmul_depth, out.op_depth) == (1, 0, 1)
    # a lone op without inputs: one op deep, no matmul, nothing on its path
    lone = depth_of(Trace((ev(0, "zeros"),)))
    assert (lone.matmul_depth, lone.op_depth, lone.critical_path, lone.depth) == (0, 1, [], 0)


def test_a_chain_counts_matmuls_ops_and_its_path():
    # mm (1) -> relu -> mm (2) -> item (a sink): 4 ops on the all-ops path
    ops = (
        mm(0, None, None),
        ev(1, "relu", [("self", (0, 0))]),
        mm(2, (1, 0), None),
        ev(3, "item", [("self", (2, 0))], results=0),
    )
    r = depth_of(Trace(ops))
    assert (r.matmul_depth, r.matmul_launches, r.op_depth, r.ops) == (2, 2, 4, 4)
    assert (r.critical_path, r.scan_depth, r.depth) == (["mm", "mm"], 0, 2)


def test_zero_params_weigh_nothing_and_launch_nothing():
    ops = (mm(0, None, None, params=["head"]), mm(1, (0, 0), None, params=["w"]))
    assert (depth_of(Trace(ops)).matmul_depth, depth_of(Trace(ops)).matmul_launches) == (2, 2)
    r = depth_of(Trace(ops), zero_params=["head"])
    assert (r.matmul_depth, r.matmul_launches, r.critical_path) == (1, 1, ["mm"])


def test_the_earliest_of_equal_chains_is_the_critical_one():
    ops = (mm(0, None, None), ev(1, "addmm", [("self", None)], kind="matmul"))
    assert depth_of(Trace(ops)).critical_path == ["mm"]
    ops = (ev(0, "addmm", [("self", None)], kind="matmul"), mm(1, None, None))
    assert depth_of(Trace(ops)).critical_path == ["addmm"]


def test_op_depth_takes_the_longest_input():
    # a: 1 op; b: 3 ops in a row; add(a, b) and add(b, a): 4 either way
    ops = (
        ev(0, "exp"),
        ev(1, "exp"),
        ev(2, "neg", [("self", (1, 0))]),
        ev(3, "neg", [("self", (2, 0))]),
        ev(4, "add", [("self", (0, 0)), ("other", (3, 0))]),
        ev(5, "add", [("self", (3, 0)), ("other", (0, 0))]),
    )
    assert depth_of(Trace(ops)).op_depth == 4


def test_scans_add_along_a_chain_with_the_matmuls():
    # cumsum (3 steps) -> mm -> cumsum (2 steps): scan 5, matmul 1, both 6; a lone scan of
    # 4 steps beside it: scan_depth stays 5
    ops = (
        ev(0, "cumsum", [("self", None)], scan=3),
        mm(1, (0, 0), None),
        ev(2, "cumsum", [("self", (1, 0))], scan=2),
        ev(3, "cumsum", scan=4),
    )
    r = depth_of(Trace(ops))
    assert (r.matmul_depth, r.scan_depth, r.depth) == (1, 5, 6)
    # a scan with no input at all (its own leaf): its steps alone
    r = depth_of(Trace((ev(0, "cumsum", scan=4), mm(1, None, None))))
    assert (r.scan_depth, r.depth, r.matmul_depth) == (4, 4, 1)
    r = depth_of(Trace((ev(0, "cumsum", [("self", None)], scan=4), mm(1, None, None))))
    assert (r.scan_depth, r.depth) == (4, 4)


def test_both_weights_follow_each_input_of_a_scan():
    # mm -> mm -> x (2); cumsum(3 steps) of (x, leaf): 2 + 3 = 5 through x
    ops = (
        mm(0, None, None),
        mm(1, (0, 0), None),
        ev(2, "cat", [("tensors", None), ("tensors", (1, 0))], scan=3),
    )
    assert depth_of(Trace(ops)).depth == 5


def test_an_op_with_two_results_gives_each_its_depth():
    # a matmul-like op with two outputs: both at depth 1; mm after the second: 2
    ops = (ev(0, "mm_pair", [("self", None)], kind="matmul", results=2), mm(1, (0, 1), None))
    r = depth_of(Trace(ops))
    assert (r.matmul_depth, r.op_depth, r.matmul_launches) == (2, 2, 2)


FWD, BWD = "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward"
# by hand, from the algebra in the module docstring: matmuls from one input to one output
WEIGHTS = {
    # O = softmax(Q K^T + mask) V; lse = logsumexp(Q K^T + mask)
    FWD: {
        "query": (2, 1),
        "key": (2, 1),
        "value": (1, 0),
        "attn_mask": (1, 0),
        "dropout_p": (0, 0),
    },
    # (dq, dk, dv, dbias): dQ = dS K and dK = dS^T Q, dS from dP = dO V^T (1), P from
    # S = Q K^T (1) and lse and mask; D from dO and O (no matmul); dV = P^T dO; dbias = dS
    BWD: {
        "grad_out": (2, 2, 1, 1),
        "query": (2, 2, 2, 1),
        "key": (2, 2, 2, 1),
        "value": (2, 2, 0, 1),
        "out": (1, 1, 0, 0),
        "logsumexp": (1, 1, 1, 0),
        "attn_bias": (1, 1, 1, 0),
        "philox_seed": (0, 0, 0, 0),
    },
}


@pytest.mark.parametrize(("name", "arg"), [(n, a) for n, t in WEIGHTS.items() for a in t])
def test_fused_attention_weighs_each_input_output_pair(name, arg):
    want = WEIGHTS[name][arg]
    results = len(want) + 1  # one more output than the kernel's roles: weighs nothing
    for i, w in enumerate((*want, 0)):
        # the kernel on one leaf input, then three matmuls after output i: w + 3
        ops = (
            ev(0, name, [(arg, None)], results=results),
            mm(1, (0, i), None),
            mm(2, (1, 0), None),
            mm(3, (2, 0), None),
        )
        r = depth_of(Trace(ops))
        assert r.matmul_depth - 3 == w, (i, w)
        assert r.matmul_launches == 3 + (2 if name == FWD else 4)


def test_fused_attention_path_goes_through_a_traced_input_on_a_tie():
    # key a leaf (0 + 2), value after one mm (1 + 1): the path runs through the mm
    ops = (
        mm(0, None, None),
        ev(1, FWD, [("query", None), ("key", None), ("value", (0, 0))], results=2),
    )
    r = depth_of(Trace(ops))
    assert (r.matmul_depth, r.critical_path) == (2, ["mm", FWD])
    assert r.matmul_launches == 1 + 2


def test_critical_path_skips_ops_that_add_no_matmul():
    # mm -> relu -> mm -> exp: the path names the two matmuls
    ops = (
        mm(0, None, None),
        ev(1, "relu", [("self", (0, 0))]),
        mm(2, (1, 0), None),
        ev(3, "exp", [("self", (2, 0))]),
    )
    assert depth_of(Trace(ops)).critical_path == ["mm", "mm"]


# ---------------------------------------------------------------------------- models


def test_params_has_no_depth():
    from analysis.depth import measure_depth
    from charlm.models.registry import ModelConfig

    with pytest.raises(
        ValueError, match="^params has no depth; choose from forward, backward, train, generate$"
    ):
        measure_depth(ModelConfig("rnn", 7), "params", dict(B=1, T=2))


def test_head_false_drops_the_last_matmul_of_the_chain_and_a_given_model_is_used():
    from analysis.depth import measure_depth
    from charlm.models.registry import ModelConfig, build_model

    cfg = ModelConfig("rnn", 7, embed=4, hidden=4)
    sizes = dict(B=1, T=3)
    with_head = measure_depth(cfg, "forward", sizes)
    # the vocabulary projection ends every chain: one matmul less on the longest
    assert measure_depth(cfg, "forward", sizes, head=False).matmul_depth == (
        with_head.matmul_depth - 1
    )
    # a model passed in is traced as it is (three layers here, whatever cfg says)
    deep = build_model(ModelConfig("mlrnn", 7, embed=4, hidden=4, layers=3))
    shallow = ModelConfig("mlrnn", 7, embed=4, hidden=4, layers=1)
    assert measure_depth(shallow, "forward", sizes, model=deep).matmul_depth == (
        measure_depth(shallow, "forward", sizes).matmul_depth + 2
    )


def test_measure_depth_checks_the_request_and_passes_the_cache():
    from analysis.depth import measure_depth
    from charlm.models.registry import ModelConfig

    with pytest.raises(
        ValueError, match="^kv_cache=True \\(a KV cache\\) applies only to generate"
    ):
        measure_depth(ModelConfig("rnn", 7), "forward", dict(B=1, T=2), kv_cache=True)
    cfg = ModelConfig("transformer", 7, hidden=8, layers=1, heads=2, block_size=8)
    sizes = dict(B=1, P=3, N=2)
    cached = measure_depth(cfg, "generate", sizes, kv_cache=True)
    # with a cache each new token runs alone through the model: other ops than without
    assert cached.ops != measure_depth(cfg, "generate", sizes).ops


def _fake_measure(monkeypatch, report):
    import analysis.depth

    asked = []

    def measure(cfg, quantity, sizes, kv_cache=False):
        asked.append((quantity, dict(sizes), kv_cache))
        return report

    monkeypatch.setattr(analysis.depth, "measure_depth", measure)
    return asked


def test_depth_report_sizes(monkeypatch):
    from analysis.depth import depth_report
    from charlm.models.registry import ModelConfig

    asked = _fake_measure(monkeypatch, DepthReport(1, 1, 1, 1))
    depth_report(ModelConfig("rnn", 7), "forward")  # no block size: T = 20
    depth_report(ModelConfig("transformer", 7, hidden=8, heads=2, block_size=6), "train", batch=2)
    depth_report(
        ModelConfig("transformer", 7, hidden=8, heads=2, block_size=6),
        "generate",
        prompt_len=3,
        new_tokens=4,
        kv_cache=True,
    )
    depth_report(ModelConfig("rnn", 7), "generate")  # one prompt token, one new token
    assert asked == [
        ("forward", {"B": 1, "T": 20, "L": 1}, False),
        ("train", {"B": 2, "T": 6, "L": 1}, False),
        ("generate", {"B": 1, "P": 3, "N": 4, "L": 1}, True),
        ("generate", {"B": 1, "P": 1, "N": 1, "L": 1}, False),
    ]


MINGRU = {"L": 2, "T": 100}  # by hand (tests/test_scan_depth.py): depth 3, launches 5,
# scan 2 L ceil(log2 T) = 28, total 31


@pytest.mark.parametrize("field", [None, "matmul_depth", "matmul_launches", "scan_depth", "depth"])
def test_depth_report_fields_and_verdict(monkeypatch, field):
    from analysis.depth import depth_report
    from charlm.models.registry import ModelConfig

    values = {"matmul_depth": 3, "matmul_launches": 5, "scan_depth": 28, "depth": 31}
    if field is not None:
        values[field] += 1
    report = DepthReport(op_depth=40, ops=100, critical_path=["mm", "addmm"], **values)
    _fake_measure(monkeypatch, report)
    cfg = ModelConfig("mingru", 7, hidden=4, layers=2)
    r = depth_report(cfg, "forward", seq_len=100)
    assert r["verdict"] == ("exact" if field is None else "mismatch")
    assert (r["model"], r["attention"], r["quantity"], r["kv_cache"], r["sizes"]) == (
        "mingru",
        cfg.attention,
        "forward",
        False,
        {"B": 1, "T": 100, "L": 2},
    )
    assert (
        r["predicted"],
        r["predicted_launches"],
        r["predicted_scan_depth"],
        r["predicted_total_depth"],
    ) == (3, 5, 28, 31)
    assert (r["measured"], r["matmul_launches"], r["scan_depth"], r["total_depth"]) == (
        values["matmul_depth"],
        values["matmul_launches"],
        values["scan_depth"],
        values["depth"],
    )
    assert (r["op_depth"], r["ops"], r["critical_path"]) == (40, 100, "mm addmm")
    assert r["formula"] == "L + 1"
    # scan 2 L ceil(log2 T); launches 5 at L = 2 (tests/test_scan_depth.py)
    L, T = sp.symbols("L T")
    scan = sp.sympify(r["scan_formula"], locals={"L": L, "T": T})
    assert sp.simplify(scan - 2 * L * sp.ceiling(sp.log(T, 2))) == 0
    launches = sp.sympify(r["launches_formula"], locals={"L": L, "T": T})
    assert launches.subs({L: 2, T: 100}) == 5
    assert r["environment"]["device"] == "cpu"
    assert r["convention"].startswith("depth = matmuls on the longest dependency chain")
    assert r["convention"].endswith("ceil(log2 n) per scan over n positions")


def test_depth_report_of_a_model_without_a_scan(monkeypatch):
    from analysis.depth import depth_report
    from charlm.models.registry import ModelConfig

    # mlrnn train: depth 2 L + 2 T = 16 at L = 3, T = 5 (tests/test_depth.py); no scan:
    # its total is its matmul depth
    _fake_measure(monkeypatch, DepthReport(16, 0, 1, 1, scan_depth=0, depth=16))
    r = depth_report(ModelConfig("mlrnn", 7, hidden=8, embed=8, layers=3), "train", seq_len=5)
    assert (r["predicted"], r["predicted_scan_depth"], r["predicted_total_depth"]) == (16, 0, 16)
    assert r["formula"] == "2*L + 2*T"
