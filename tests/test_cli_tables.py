"""The tables commands print: readable numbers, blank empty cells, at most 100 columns, headers
that tell two configurations apart, no internal names. The full detail stays in csv / json."""

import json
import math
import re

import pandas as pd
import pytest

from charlm.cli import main
from charlm.commands.common import format_number, format_table
from charlm.commands.depth import run_lengths

INTERNAL = re.compile(r"\b[a-z_]+\.[a-z_]+\.[A-Z][A-Z_]{2,}\b")  # module.module.CONSTANT
LONG_FLOAT = re.compile(r"\d\.\d{5,}")  # 226.215853


@pytest.mark.parametrize("value, text", [
    (226.215853, "226.2"),
    (3.11234, "3.112"),
    (0.0012345, "0.001234"),
    (1.2e-5, "12e-6"),
    (0.000345, "345e-6"),
    (12345.6, "12,346"),
    (999_999, "999,999"),
    (1_234_567, "1.23M"),
    (85_032_384, "85.0M"),
    (999_999_999, "1.00G"),  # rounds up into the next unit, not "1.00e+03M"
    (2_500_000_000.0, "2.50G"),
    (0, "0"),
    (2.0, "2"),
    (None, ""),
    (float("nan"), ""),
    (pd.NA, ""),
    (True, "True"),
    ("exact", "exact"),
])
def test_format_number(value, text):
    assert format_number(value) == text


def test_table_blanks_empty_cells_and_aligns_numbers():
    frame = pd.DataFrame({"term": ["qkv", "total"], "torch": pd.array([None, 6], dtype="Int64"),
                          "ratio": [float("nan"), 1.0]})
    text = format_table(frame)
    assert "<NA>" not in text and "NaN" not in text and "nan" not in text
    header, first, second = text.splitlines()
    assert first.rstrip() == "qkv"  # both numbers of the first row are empty
    # numbers are right-aligned: their last digits line up under the header's end
    assert second.index("6") + 1 == header.index("torch") + len("torch")


def test_table_wraps_long_text_to_fit_and_keeps_every_word():
    words = [f"word{i}" for i in range(60)]
    rows = [{"id": "rnn.train.flops", "reasoning": " ".join(words), "flops": 123456789}]
    text = format_table(rows, width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert re.findall(r"word\d+", text) == words
    assert "123M" in text


# --- flops ---

def _flops_table(capsys, *argv):
    assert main(["flops", *argv]) in (0, 1)
    return capsys.readouterr().out


@pytest.mark.parametrize("quantity", ["forward", "train"])
def test_flops_table_fits_is_blank_where_empty_and_names_no_constant(capsys, quantity):
    out = _flops_table(capsys, "--model", "transformer", "--quantity", quantity,
                       "--seq-len", "16", "--hidden", "32", "--heads", "2")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert not INTERNAL.search(out), INTERNAL.search(out)
    assert "<NA>" not in out and "NaN" not in out and not LONG_FLOAT.search(out)


def test_flops_table_headers_tell_kernels_and_heads_apart(capsys):
    flash = _flops_table(capsys, "--seq-len", "16", "--hidden", "32", "--heads", "2",
                         "--attention", "flash")
    manual = _flops_table(capsys, "--seq-len", "16", "--hidden", "32", "--heads", "4",
                          "--attention", "manual")
    assert "H=2" in flash.splitlines()[0] and "attention=flash" in flash.splitlines()[0]
    assert "H=4" in manual.splitlines()[0] and "attention=manual" in manual.splitlines()[0]


def test_flops_elementwise_convention_gives_the_costs(capsys):
    out = _flops_table(capsys, "--seq-len", "16", "--hidden", "32", "--heads", "2")
    # the per-element costs the convention fixes (a LayerNorm is 5 FLOPs per element)
    words = " ".join(out.split())  # the line may wrap
    assert "layernorm 5" in words and "softmax 3" in words


def test_flops_json_keeps_exact_integers(capsys):
    assert main(["flops", "--model", "gru", "--hidden", "1000", "--embed", "10", "--vocab",
                 "7", "--seq-len", "3", "--no-measure", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # 2 B T (3 E D + 3 D^2 + D V) with B 1, T 3, E 10, D 1000, V 7
    assert report["predicted"] == 2 * 3 * (3 * 10 * 1000 + 3 * 1000 ** 2 + 1000 * 7)


def test_no_head_leaves_out_the_lm_head(capsys):
    base = ["flops", "--model", "transformer", "--hidden", "16", "--heads", "2", "--layers",
            "1", "--vocab", "5", "--seq-len", "8", "--format", "json"]
    assert main(base) == 0
    full = json.loads(capsys.readouterr().out)
    assert main([*base, "--no-head"]) == 0
    bare = json.loads(capsys.readouterr().out)
    B, T, D, L, V = 1, 8, 16, 1, 5
    # Kaplan et al.'s C_forward without the head: 2 N T with N = 12 L D^2, plus the attention
    # square 4 L T^2 D (full square); the head adds 2 B T D V
    assert bare["predicted"] == 2 * B * T * 12 * L * D * D + 4 * B * L * T * T * D
    assert full["predicted"] - bare["predicted"] == 2 * B * T * D * V
    assert bare["measured"]["torch"] == bare["predicted"] and bare["verdict"] == "exact"


# --- depth ---

def test_run_lengths_counts_repeats():
    assert run_lengths("addmm addmm addmm mm bmm bmm") == "addmm x3, mm, bmm x2"


def test_depth_table_fits_100_columns(capsys):
    assert main(["depth", "--model", "mlrnn", "--layers", "3", "--seq-len", "12",
                 "--quantity", "train"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    # the L-layer RNN's train depth over a known sequence is a wavefront: 2T + 2L
    table = {line.split()[1]: line.split()[2:] for line in out.splitlines()
             if line.startswith("matmul ")}
    assert table["depth"] == [str(2 * 12 + 2 * 3)] * 2
    assert "critical path:" in out and "addmm x" in out


# --- compare ---

def test_compare_table_is_readable(capsys, tmp_path):
    from charlm.data import builtin_corpus

    corpus = tmp_path / "c.txt"
    corpus.write_text(builtin_corpus(seed=3, n_chars=20_000), encoding="utf-8")
    argv = ["compare", "--experiment", "rnn-vs-gru", "--steps", "2", "--data", str(corpus),
            "--device", "cpu", "--val-batches", "1", "--threads", "1", "--out",
            str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert not LONG_FLOAT.search(out) and "<NA>" not in out and "nan" not in out.lower()
    # two steps learn nothing: each run is said to have stayed at the unigram entropy
    assert out.count("did not learn in 2 steps") == 2
    assert main([*argv, "--format", "csv", "--force"]) == 0  # the same run again, replaced
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(table.learned) == [False, False]
    text = corpus.read_text(encoding="utf-8")
    train_text = text[: len(text) - round(0.1 * len(text))]
    counts = pd.Series(list(train_text)).value_counts() / len(train_text)
    entropy = -sum(p * math.log(p) for p in counts)
    assert table.unigram_entropy.iloc[0] == pytest.approx(entropy, rel=1e-9)
