import json
import math
from pathlib import Path

import pandas as pd
import pytest

from charlm.cli import main
from charlm.data import builtin_corpus
from charlm.gru_explorer import gru_2d_step
from charlm.train import TrainConfig, train

TEXT = builtin_corpus(seed=3, n_chars=20_000)


def one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err, err


# --- gru-step ---

def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def test_gru_step_json_is_the_hand_computed_cell(capsys):
    assert main(["gru-step", "--format", "json", "--data-input", "1.5", "--data-hidden",
                 "-0.5", "--new-hidden-weight", "-3"]) == 0
    data = json.loads(capsys.readouterr().out)
    # the other sliders at their defaults: control input 2, control hidden 0, reset 3,
    # update -3, new-input 3. The data unit's gates see only the control channel x1 + h1 = 2;
    # the control unit's rows are zero, so r1 = z1 = 1/2, n1 = 0, h_new1 = h1 / 2 = 0.
    r0, z0 = sigmoid(3 * 2), sigmoid(-3 * 2)
    n0 = math.tanh(3 * 1.5 + r0 * (-3 * -0.5))
    expected = {"x": [1.5, 2.0], "h": [-0.5, 0.0], "r": [r0, 0.5], "z": [z0, 0.5],
                "n": [n0, 0.0], "h_new": [(1 - z0) * n0 + z0 * -0.5, 0.0]}
    assert data.keys() == expected.keys()
    for key, pair in expected.items():
        assert data[key] == pytest.approx(pair, abs=1e-12), key


def test_gru_step_flags_reach_every_slider(capsys):
    argv = ["gru-step", "--format", "json", "--data-input", "0.1", "--control-input", "0.2",
            "--data-hidden", "0.3", "--control-hidden", "0.4", "--reset-weight", "0.5",
            "--update-weight", "0.6", "--new-input-weight", "0.7", "--new-hidden-weight", "0.8"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["x"] == [0.1, 0.2] and data["h"] == [0.3, 0.4]
    assert data == gru_2d_step(data_input=0.1, control_input=0.2, data_hidden=0.3,
                               control_hidden=0.4, reset_weight=0.5, update_weight=0.6,
                               new_input_weight=0.7, new_hidden_weight=0.8).to_dict()


def test_gru_step_table_and_figure(capsys, tmp_path):
    assert main(["gru-step", "--out", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "h_new" in out and "control" in out
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_gru_step_rejects_a_non_finite_weight(capsys):
    one_line_error(capsys, ["gru-step", "--update-weight", "inf"], "--update-weight must be finite")


# --- compare ---

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "stories.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_compare_writes_the_experiment(capsys, tmp_path, corpus):
    argv = ["compare", "--experiment", "rnn-vs-gru", "--steps", "2", "--data", str(corpus),
            "--device", "cpu", "--val-batches", "1", "--threads", "1", "--out", str(tmp_path),
            "--no-progress", "--format", "csv"]
    assert main(argv) == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(table.model) == ["RNN", "GRU"] and list(table.steps) == [2, 2]
    folder = tmp_path / "rnn-vs-gru"
    assert {p.name for p in folder.iterdir()} == {"rnn", "gru", "summary.csv", "summary.md",
                                                   "loss_curves.png"}
    assert not list(folder.glob("*/checkpoint.pt"))  # only with --keep-checkpoints


def test_compare_rejects_bad_steps(capsys, corpus, tmp_path):
    one_line_error(capsys, ["compare", "--experiment", "rnn-vs-gru", "--steps", "0",
                            "--data", str(corpus), "--out", str(tmp_path)], "--steps")


def test_compare_rejects_unknown_experiment(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--experiment", "lstm"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'lstm'" in err


def test_compare_missing_corpus_is_one_line(capsys, tmp_path):
    one_line_error(capsys, ["compare", "--experiment", "rnn-vs-gru", "--steps", "1",
                            "--data", str(tmp_path / "none.txt"), "--out", str(tmp_path)],
                   "none.txt")


# --- attention ---

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    common = dict(steps=1, batch_size=4, seq_len=16, device="cpu", val_batches=1)
    train(TrainConfig(model="transformer", hidden=16, layers=2, heads=2, block_size=16,
                      out=str(root / "tf"), **common), progress=False, text=TEXT)
    train(TrainConfig(model="gru", embed=4, hidden=8, out=str(root / "gru"), **common),
          progress=False, text=TEXT)
    return root


def test_attention_writes_the_grid(capsys, tmp_path, checkpoints):
    out = tmp_path / "att.png"
    assert main(["attention", str(checkpoints / "tf"), "--text", "Lily said,", "--out",
                 str(out)]) == 0
    assert "2 layers x 2 heads x 10 x 10" in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_attention_one_layer(capsys, tmp_path, checkpoints):
    out = tmp_path / "att1.png"
    assert main(["attention", str(checkpoints / "tf" / "checkpoint.pt"), "--layer", "1",
                 "--out", str(out)]) == 0
    assert "wrote layers [1]" in capsys.readouterr().out


def test_attention_names_characters_outside_the_vocabulary(capsys, tmp_path, checkpoints):
    one_line_error(capsys, ["attention", str(checkpoints / "tf"), "--text", "Lily ¤",
                            "--out", str(tmp_path / "a.png")], "'¤'")


def test_attention_layer_out_of_range(capsys, tmp_path, checkpoints):
    one_line_error(capsys, ["attention", str(checkpoints / "tf"), "--layer", "2",
                            "--out", str(tmp_path / "a.png")], "layer 2 out of range")


def test_attention_needs_a_transformer(capsys, tmp_path, checkpoints):
    one_line_error(capsys, ["attention", str(checkpoints / "gru"), "--out",
                            str(tmp_path / "a.png")], "Transformer")


def test_attention_missing_checkpoint(capsys, tmp_path):
    one_line_error(capsys, ["attention", str(tmp_path / "nothing"), "--out",
                            str(tmp_path / "a.png")], "no checkpoint")
    assert not Path(tmp_path / "a.png").exists()
