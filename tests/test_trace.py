"""The op trace: FLOPs, bytes, kinds and depth of hand-made programs; totals equal PyTorch's
counter on a model."""

import torch

from analysis.counters import count_flops_torch
from analysis.optrace import trace_quantity
from analysis.quantities import shapes_only
from analysis.trace import trace
from analysis.trace import trace as trace_ops
from charlm.models.registry import ModelConfig, build_model


def test_mm_add_view_by_hand():
    a, b = torch.ones(3, 4), torch.ones(4, 5)

    def program():
        c = torch.mm(a, b)  # 2*3*4*5 FLOPs; reads 12 + 20, writes 15 floats
        d = c + 1.0  # reads 15, writes 15
        return d.view(15)  # no data

    tr = trace_ops(program)
    assert [op.name for op in tr.ops] == ["mm", "add", "view"]
    mm, add, view = tr.ops
    assert (mm.kind, mm.flops, mm.bytes) == ("matmul", 2 * 3 * 4 * 5, 4 * (12 + 20 + 15))
    assert (add.kind, add.flops, add.bytes) == ("elementwise", 0, 4 * (15 + 15))
    assert (view.kind, view.bytes) == ("view", 0)
    assert (mm.depth, add.depth, view.depth) == (1, 2, 2)
    assert tr.kernels == 2 and tr.depth == 2


def test_independent_ops_do_not_deepen():
    x = torch.ones(8)
    tr = trace_ops(lambda: [x + 1.0 for _ in range(5)])
    assert tr.depth == 1 and tr.kernels == 5


def test_fake_tensors_same_ops_as_real():
    a = trace_ops(lambda: torch.ones(4, 4) @ torch.ones(4, 4))
    with shapes_only():
        b = trace_ops(lambda: torch.ones(4, 4) @ torch.ones(4, 4))
    assert [(o.name, o.flops, o.bytes) for o in a.ops] == \
        [(o.name, o.flops, o.bytes) for o in b.ops]


def test_train_step_total_equals_pytorchs_counter_flash_included():
    cfg = ModelConfig("transformer", 11, hidden=8, layers=1, heads=2, block_size=6,
                      attention="flash")
    tr = trace_quantity(cfg, "train", {"B": 2, "T": 6})
    from analysis.quantities import runner

    with shapes_only():
        torch.manual_seed(0)
        model = build_model(cfg)
        counted = count_flops_torch(model, runner(model, "train", {"B": 2, "T": 6}))["total"]
    assert tr.flops == counted > 0
    assert any("flash" in op.name for op in tr.ops)
    assert tr.count("elementwise") > tr.count("matmul")  # Adam, softmax, layer norms...


def test_module_calls_and_autograd_phases():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    x = torch.ones(4, 3)
    tr = trace_ops(lambda: net(x).sum().backward(), net)
    assert tr.module_calls == 3  # Sequential, Linear, Tanh
    assert {op.phase for op in tr.ops if op.kind != "view"} == {"forward", "backward"}
    forward = [op for op in tr.ops if op.phase == "forward" and op.kind != "view"]
    assert all(op.records_graph for op in forward)
    # the forward, then backward()'s seed gradient (ones_like of the loss)
    assert [op.name for op in forward] == ["addmm", "tanh", "sum", "ones_like"]
    assert [op.module for op in forward] == ["0", "1", "", ""]
    backward = [op.name for op in tr.ops if op.phase == "backward" and op.kind != "view"]
    assert "tanh_backward" in backward and "mm" in backward
    with torch.no_grad():
        assert not any(op.records_graph for op in trace_ops(lambda: net(x)).ops)


def test_fused_recurrence_ops_and_their_backward_are_marked():
    rnn = torch.nn.RNN(3, 4, batch_first=True)
    head = torch.nn.Linear(4, 2)
    x = torch.ones(2, 5, 3)

    def step():
        out, _ = rnn(x)
        head(out).sum().backward()

    tr = trace_ops(step)
    assert tr.fused_calls == 1
    fused = [op for op in tr.ops if op.fused]
    assert {(True, "forward"), (False, "backward")} <= {(op.records_graph, op.phase)
                                                        for op in fused}
    # the head's forward and backward are not part of the fused call
    assert not any(op.fused for op in tr.ops if op.name == "addmm" and op.shapes[0] == (2,))


def test_linear_products_record_their_operand_layouts():
    # nn.Linear stores W as (out, in): forward x @ W.t() ("nt"); backward grad_x = g @ W
    # ("nn") and grad_W = g.t() @ x ("tn"), g a contiguous (B, out) gradient
    lin = torch.nn.Linear(16, 32, bias=False)
    x = torch.randn(8, 16, requires_grad=True)
    r = torch.randn(8, 32)
    products = [op for op in trace_ops(lambda: (lin(x) * r).sum().backward()).ops
                if op.kind == "matmul"]
    got = sorted((op.phase, op.shapes, op.layout) for op in products)
    assert got == sorted([("forward", ((8, 16), (16, 32)), "nt"),
                          ("backward", ((8, 32), (32, 16)), "nn"),
                          ("backward", ((32, 8), (8, 16)), "tn")])
    assert all(op.layout == "" for op in trace_ops(lambda: x + 1).ops)


def test_fresh_outputs_are_the_allocated_ones():
    x = torch.randn(4, 8)
    y = torch.empty(4, 8)
    ops = {op.name: op for op in trace_ops(lambda: (x + 1, x.add_(1), torch.add(x, 1, out=y),
                                                    x.view(8, 4))).ops}
    assert [op.fresh for op in trace_ops(lambda: x + 1).ops] == [(4 * 8 * 4,)]
    assert ops["add_"].fresh == ()  # written in place
    assert [op.fresh for op in trace_ops(lambda: torch.add(x, 1, out=y)).ops] == [()]
    assert ops["view"].fresh == ()  # a view allocates nothing


def test_tensors_in_finds_what_pytree_finds_in_order():
    from torch.utils._pytree import tree_flatten

    from analysis.trace import tensors_in

    a, b, c = torch.zeros(1), torch.ones(2), torch.zeros(3)
    nested = ((a, [b, 3, None, (c, "x")]), {"out": b, "alpha": 2.0},
              torch.return_types.max((a, c)), torch.Size([2, 3]))
    want = [t for t in tree_flatten(nested)[0] if isinstance(t, torch.Tensor)]
    got = tensors_in(nested)
    assert [id(t) for t in got] == [id(t) for t in want] and len(got) == 6
    assert tensors_in(a) == [a] and tensors_in(5) == []


def _flop_counter_mode(model, fn):
    """PyTorch's own counter, run apart: the independent check of the trace's count."""
    from torch.utils.flop_counter import FlopCounterMode

    from analysis.trace import cpu_sdpa_mapping

    class Root(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self):
            return fn()

    mode = FlopCounterMode(display=False, custom_mapping=cpu_sdpa_mapping())
    with mode:
        Root()()
    prefix = "Root.model."
    by_module = {name[len(prefix):]: int(sum(ops.values()))
                 for name, ops in mode.get_flop_counts().items() if name.startswith(prefix)}
    return int(mode.get_total_flops()), {k: v for k, v in by_module.items() if v}


def test_trace_flops_equal_flop_counter_mode_total_and_per_module_on_every_architecture():
    from analysis.architectures import ARCHITECTURES
    from analysis.workloads import runner

    checked = 0
    for arch in ARCHITECTURES.values():
        for _, attention in arch.variants:
            cfg = arch.config({"V": 11, "E": 8, "D": 8, "L": 2, "H": 2, "T": 4, "C": 8},
                              attention=attention)
            for quantity, sizes in (("train", {"B": 2, "T": 4}),
                                    ("generate", {"B": 1, "P": 2, "N": 2})):
                torch.manual_seed(0)
                model = build_model(cfg)
                want_total, want_modules = _flop_counter_mode(
                    model, runner(model, quantity, sizes))
                torch.manual_seed(0)
                model = build_model(cfg)
                counted = count_flops_torch(model, runner(model, quantity, sizes))
                assert counted["total"] == want_total > 0, (cfg.model, quantity)
                assert {k: v for k, v in counted["by_module"].items() if v} == want_modules
                checked += 1
    assert checked >= 2 * 7  # six architectures, the Transformer with two kernels


def test_optimizer_phase_parameter_names_and_backward_modules():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    opt = torch.optim.Adam(net.parameters())
    x = torch.ones(4, 3)

    def step():
        net(x).sum().backward()
        opt.step()

    tr = trace_ops(step, net)
    phases = [op.phase for op in tr.ops if op.kind != "view"]
    assert phases.index("optimizer") > phases.index("backward")  # forward, backward, step
    assert phases[-1] == "optimizer"
    addmm = next(op for op in tr.ops if op.name == "addmm")
    assert set(addmm.params) == {"0.weight", "0.bias"}
    tanh_backward = next(op for op in tr.ops if op.name == "tanh_backward")
    assert tanh_backward.module == "1"  # attributed as PyTorch's module tracker does
    grads = [op for op in tr.ops if op.phase == "backward" and op.name == "mm"]
    assert grads and all(op.module == "0" for op in grads)


def test_unsupported_products_are_named_not_silently_zero():
    v, m = torch.ones(5), torch.ones(3, 5)
    tr = trace_ops(lambda: (torch.mv(m, v), torch.dot(v, v), m @ m.t()))
    assert tr.unsupported() == {"mv": 1, "dot": 1}
    assert tr.flops == 2 * 3 * 5 * 3  # only the mm has a formula
    # torch.nn's encoder in eval mode under no_grad runs one fused op per layer
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    with torch.no_grad():
        fast = trace_ops(lambda: encoder(torch.ones(2, 4, 8)))
    assert fast.flops == 0 and fast.unsupported() == {"_transformer_encoder_layer_fwd": 2}


def test_producers_follow_in_place_writes_through_views():
    x = torch.zeros(4)

    def program():
        y = x * 2.0  # event 0
        view = y[:2]  # a view of y's storage
        y.add_(1.0)  # in place: y's storage now holds this result
        return view + 1.0  # reads the view: depends on the in-place add

    tr = trace_ops(program)
    add = next(op for op in tr.ops if op.name == "add_")
    last = tr.ops[-1]
    assert last.inputs[0][1] == (add.index, 0)
    assert add.written == (0,)
    assert last.depth == 3  # mul, add_, add (the view weighs 0)


def test_peak_is_the_highest_live_bytes_not_the_last():
    def run():
        big = torch.empty(1000)  # 4000 bytes, freed before the small one is made
        del big
        small = torch.empty(10)
        return small

    tr = trace(run, memory=True, modules=False)
    assert [e.live_bytes for e in tr.ops] == [4000, 40]
    assert tr.peak_bytes == 4000


def test_a_graph_is_recorded_only_for_inputs_that_require_grad():
    w = torch.ones(3, requires_grad=True)
    x = torch.ones(3)
    with torch.enable_grad():
        tr = trace_ops(lambda: (x + 1.0, w * 2.0))
    assert [(e.name, e.records_graph) for e in tr.ops] == [("add", False), ("mul", True)]


def test_a_counted_attention_kernel_is_not_unsupported():
    q = torch.randn(1, 2, 4, 8)
    tr = trace_ops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert tr.flops == 4 * 1 * 2 * 4 * 4 * 8 and tr.unsupported() == {}
