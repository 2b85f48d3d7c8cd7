"""charlm profile and analysis.profile on models that are not the six built-ins: FLOPs equal
to hand counts written here (2 per multiply-add), fvcore agreeing on forward, parameters and
per-module numbers by hand, a predicted time from a machine file, the CLI's two formats and
its one-line errors; a built-in through the same path equals the project's counter."""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from dataclasses import replace

import pytest
import torch
from torch import nn

from analysis.architectures import architecture
from analysis.calibrate import Machine, save_machine
from analysis.counters import measure_flops
from analysis.profile import profile
from charlm import cli
from charlm.commands.profile import parse_sizes
from charlm.models.registry import ModelConfig

B, T, V, D, F = 2, 5, 11, 6, 10


class Tiny(nn.Module):
    """An embedding, two Linear layers and a bmm of the result with itself."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.up = nn.Linear(D, F)
        self.down = nn.Linear(F, D, bias=False)

    def forward(self, idx):
        h = self.down(torch.relu(self.up(self.emb(idx))))  # (B, T, D)
        return torch.bmm(h, h.transpose(1, 2))  # (B, T, T)


def tiny():
    torch.manual_seed(0)
    return Tiny(), torch.randint(0, V, (B, T))


# hand counts: a (m x k) @ (k x n) product is 2mkn FLOPs
UP = DOWN = 2 * (B * T) * D * F  # each Linear on the B*T rows
BMM = 2 * B * T * D * T  # (T x D) @ (D x T) per batch
TINY_FORWARD = UP + DOWN + BMM
# backward of out.sum(): the bmm's two operands' gradients (each a T x T x D product), each
# Linear's input and weight gradients (the embedding's output requires grad, so `up` needs
# its input gradient too); bias gradients and the embedding's are sums, not products
TINY_TRAIN = TINY_FORWARD + 2 * BMM + 2 * DOWN + 2 * UP
TINY_PARAMS = V * D + (D * F + F) + F * D


def uniform_machine(**kw) -> Machine:
    """1e9 FLOP/s at every matmul shape, no fixed costs, a bandwidth so large that moving
    bytes costs nothing: a prediction is then FLOPs / 1e9 s exactly."""
    return Machine(device="cpu", name="t", torch="x", threads=1, op_fixed_s=0.0,
                   view_fixed_s=0.0, matmul_fixed_s=0.0, min_kernel_s=0.0,
                   bandwidth_bytes_per_s=1e30, ceiling_flops_per_s=1e9,
                   matmul_axes={"m": [1, 2], "k": [1, 2], "n": [1, 2]},
                   matmul_flops_per_s=[[[1e9] * 2] * 2] * 2, **kw)


@pytest.fixture
def machine_file(tmp_path):
    return str(save_machine(uniform_machine(), tmp_path / "machine.json"))


def test_own_model_forward_equals_the_hand_count_by_both_counters():
    model, idx = tiny()
    r = profile(model, idx)
    assert r.flops == TINY_FORWARD
    assert r.forward_counts["fvcore"].total == TINY_FORWARD
    assert r.params == TINY_PARAMS
    assert r.matmul_depth == 3  # up, down, then the bmm
    assert r.unsupported["torch"] == {}
    assert r.peak_bytes > 0 and r.bytes > 0


def test_own_model_per_module_table_by_hand():
    model, idx = tiny()
    rows = profile(model, idx).modules.set_index("module")
    assert rows.loc["", "flops"] == TINY_FORWARD and rows.loc["", "params"] == TINY_PARAMS
    assert rows.loc["up", "flops"] == UP and rows.loc["down", "flops"] == DOWN
    assert rows.loc["emb", "flops"] == 0
    assert list(rows["flops_fvcore"]) == list(rows["flops"])
    assert (rows.loc["emb", "params"], rows.loc["up", "params"],
            rows.loc["down", "params"]) == (V * D, D * F + F, F * D)
    # bytes (float32, 4 each): up's addmm reads bias, input and weight, writes its output;
    # down's mm reads input and weight, writes its output (the reshapes are views)
    rows_, width = B * T, 4
    assert rows.loc["up", "bytes"] == width * (F + rows_ * D + D * F + rows_ * F)
    assert rows.loc["down", "bytes"] == width * (rows_ * F + F * D + rows_ * D)
    assert list(rows["level"]) == [0, 1, 1, 1]


def test_own_model_train_with_and_without_adam():
    model, idx = tiny()
    plain = profile(model, idx, "train")
    assert plain.flops == TINY_TRAIN
    assert plain.forward_counts["fvcore"].total is None  # fvcore counts a forward only, and says so
    assert any("fvcore" in n for n in plain.notes)
    assert any("sum" in n for n in plain.notes)  # the output is (B, T, T): its sum
    adam = profile(model, idx, "train", optimizer="adam")
    assert adam.flops == TINY_TRAIN  # Adam's update is elementwise
    assert adam.bytes > plain.bytes  # ...and moves the parameters and their two moments


def test_transformer_encoder_train_equals_the_hand_count_attention_included():
    d, heads, ff, layers, b, t = 16, 2, 32, 2, 2, 8
    layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).train()
    x = torch.randn(b, t, d)
    r = profile(model, x, "train")
    n = b * t  # rows of every projection
    attention = 4 * b * t * t * d  # q @ k^T and weights @ v, full square, all heads
    forward = 2 * n * d * 3 * d + attention + 2 * n * d * d + 2 * (2 * n * d * ff)
    # backward: each projection's input and weight gradients (2 products of its forward's
    # size); the CPU flash kernel's backward as PyTorch counts it: 5 products of the
    # forward's size each (scores recomputed, dV, dP, dQ, dK), i.e. 2.5 x its forward
    backward = 2 * (forward - attention) + 5 * attention // 2
    # the first layer's input needs no gradient: its in-projection's input gradient is not run
    assert r.flops == layers * (forward + backward) - 2 * n * 3 * d * d
    attn = r.modules.set_index("module").loc["layers.0.self_attn", "flops"]
    assert attn == 2 * n * d * 3 * d + attention + 2 * n * d * d  # SDPA counted, not 0
    assert r.unsupported["torch"] == {}


def test_hugging_face_gpt2_forward_equals_the_hand_count(capsys):
    pytest.importorskip("transformers")
    from analysis.factories import load_factory

    factory, _ = load_factory("examples/hf_gpt2.py:gpt2")
    b, t, d, layers, heads, vocab = 2, 16, 32, 2, 4, 50
    model, ids = factory(B=b, T=t, D=d, L=layers, H=heads, V=vocab)
    r = profile(model, ids)
    n = b * t
    # per block: c_attn (D -> 3D), attention (q k^T and weights v over the full T x T),
    # c_proj (D -> D), the MLP (D -> 4D -> D); then the LM head (D -> V). Eager and SDPA
    # attention do the same products, so the count holds whichever GPT-2 dispatches.
    block = 2 * n * d * 3 * d + 4 * b * t * t * d + 2 * n * d * d + 2 * (2 * n * d * 4 * d)
    assert r.flops == layers * block + 2 * n * d * vocab
    assert r.forward_counts["fvcore"].total == r.flops
    assert any("first tensor" in note for note in r.notes)  # a ModelOutput, read by logits
    embeddings = vocab * d + t * d
    per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + \
        (4 * d * d + d)
    assert r.params == embeddings + layers * per_block + 2 * d  # the head is tied to wte


def test_predicted_time_from_a_machine_file(machine_file):
    model, idx = tiny()
    r = profile(model, idx, machine=machine_file)
    assert r.predicted_s == pytest.approx(TINY_FORWARD / 1e9, rel=1e-6)
    assert r.regime == "compute"
    assert r.terms.set_index("term").loc["compute", "share"] == pytest.approx(1.0)


def test_measured_time_has_its_interval():
    model, idx = tiny()
    r = profile(model, idx, measure_time=True, rounds=7, warmup=1)
    low, high = r.measured_ci
    assert r.rounds == 7 and low <= r.measured_s <= high


@pytest.mark.parametrize("call, message", [
    (lambda m, x: profile(object(), x), "torch.nn.Module"),
    (lambda m, x: profile(m, [x]), "tensor or a tuple"),
    (lambda m, x: profile(m, x, "backward"), "unknown quantity"),
    (lambda m, x: profile(m, x, optimizer="adam"), "only to quantity 'train'"),
    (lambda m, x: profile(m, x, "train", optimizer="sgd"), "unknown optimizer"),
    (lambda m, x: profile(m, (x, x)), "model(*inputs) raised TypeError"),
    (lambda m, x: profile(m, x, machine=replace(uniform_machine(), device="cuda")),
     "cuda machine file"),
])
def test_library_refuses_bad_input_with_a_value_error(call, message):
    model, idx = tiny()
    with pytest.raises(ValueError, match=re.escape(message)):
        call(model, idx)


def test_builtin_through_the_same_path_equals_the_counter():
    cfg = ModelConfig("gru", vocab_size=V, embed=4, hidden=8, layers=2)
    model, idx = architecture("gru").factory(B=B, T=3, V=V, E=4, D=8, L=2)
    for quantity in ("forward", "train"):
        expected = measure_flops(cfg, quantity, {"B": B, "T": 3}, second_counters=False).torch
        assert profile(model, idx, quantity).flops == expected, quantity


def test_builtin_factories_take_the_sizes_of_their_entry():
    takes = {name: list(inspect.signature(architecture(name).factory).parameters)
             for name in ("rnn", "mingru", "transformer")}
    assert takes == {"rnn": ["B", "T", "V", "D", "E"], "mingru": ["B", "T", "V", "D", "L"],
                     "transformer": ["B", "T", "V", "D", "L", "H", "C"]}


FACTORY = """
    def good(B=2, T=5):
        assert (B, T) == (2, 5)
        return tiny()


    def needs(B):
        return tiny()


    def broken(B=1):
        raise RuntimeError("no such layer")


    def not_a_model(B=1):
        return 3, torch.zeros(1)


    def listed(B=1):
        model, idx = tiny()
        return model, [idx]
"""


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "factories.py"
    source = (f"import torch\nfrom torch import nn\n\nB, T, V, D, F = {B}, {T}, {V}, {D}, {F}"
              f"\n\n\n{inspect.getsource(Tiny)}\n\n{inspect.getsource(tiny)}"
              f"{textwrap.dedent(FACTORY)}")
    path.write_text(source)
    return str(path)


def run_cli(argv, capsys):
    code = cli.main(["profile", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_table_and_json(factory_file, machine_file, capsys):
    code, out, _ = run_cli([f"{factory_file}:good", "--size", "B=2", "--size", "T=5",
                            "--machine", machine_file, "--time"], capsys)
    assert code == 0
    assert f"FLOPs {TINY_FORWARD:,} (PyTorch), {TINY_FORWARD:,} (fvcore)" in out
    assert "regime compute" in out and "95% interval" in out and "over 21 rounds" in out
    assert any(line.split()[:2] == ["up", f"{D * F + F}"] for line in out.splitlines())
    assert max(len(line) for line in out.splitlines()) <= 100
    code, out, _ = run_cli([f"{factory_file}:good", "--quantity", "train", "--optimizer",
                            "adam", "--machine", machine_file, "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert data["flops"] == TINY_TRAIN and data["flops_fvcore"] is None
    assert data["params"] == TINY_PARAMS and data["optimizer"] == "adam"
    assert data["predicted_s"] == pytest.approx(TINY_TRAIN / 1e9, rel=1e-6)
    assert {"bytes", "depth", "regime", "peak_bytes", "modules", "conventions"} <= set(data)


def test_cli_builtin(machine_file, capsys):
    code, out, _ = run_cli(["gru", "--size", "T=3", "--size", f"V={V}", "--size", "E=4",
                            "--size", "D=8", "--machine", machine_file, "--format", "json"],
                           capsys)
    cfg = ModelConfig("gru", vocab_size=V, embed=4, hidden=8, layers=1)
    assert code == 0
    assert json.loads(out)["flops"] == measure_flops(cfg, "forward", {"B": 1, "T": 3},
                                                     second_counters=False).torch


def test_size_parsing():
    assert parse_sizes(["T=128", "D=96"]) == {"T": 128, "D": 96}
    for bad in (["T128"], ["T=x"], ["=3"], ["T=1", "T=2"]):
        with pytest.raises(ValueError, match="--size"):
            parse_sizes(bad)


@pytest.mark.parametrize("argv, message", [
    (["missing.py:good"], "no file missing.py"),
    (["{f}:absent"], "has no function absent; its functions: broken, good, listed"),
    (["{f}:broken"], "raised RuntimeError: no such layer"),
    (["{f}:good", "--size", "T5"], "--size 'T5': give NAME=INTEGER"),
    (["{f}:good", "--size", "Q=3"], "--size Q: {f}:good takes no size Q; its sizes: B=2, T=5"),
    (["{f}:needs"], "needs --size B=N"),
    (["{f}:not_a_model"], "must return (model, inputs) with model a torch.nn.Module, got int"),
    (["{f}:listed"], "inputs must be a tensor or a tuple"),
    (["{f}:good", "--optimizer", "adam"], "--optimizer applies only to --quantity train"),
    (["nothing"], "give FILE.py:FUNC"),
    (["gru", "--size", "X=1"], "--size X: gru takes no size X"),
])
def test_cli_bad_input_is_one_line_with_exit_2(argv, message, factory_file, machine_file,
                                               capsys):
    argv = [a.format(f=factory_file) for a in argv] + ["--machine", machine_file]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert message.format(f=factory_file) in err
