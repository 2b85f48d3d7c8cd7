"""The training loop: loss definition, determinism, resume, Ctrl-C, checkpoints, bad input."""

import signal

import pandas as pd
import pytest
import torch

from charlm.data import builtin_corpus
from charlm.models import GRULM, MultiLayerRNN, SimpleRNN
from charlm.train import (
    LOG_COLUMNS,
    TrainConfig,
    encode,
    generate_text,
    load_checkpoint,
    resolve_device,
    sequence_loss,
    train,
)
from tests.notebook_reference import notebook_rnn_loss

TEXT = builtin_corpus(seed=1, n_chars=6000)

TINY = dict(hidden=16, embed=8, seq_len=10, batch_size=4, val_every=2, val_batches=2,
            device="cpu")

TRANSFORMER = dict(model="transformer", embed=None, heads=2, block_size=10)


def run(tmp_path=None, **kw):
    cfg = TrainConfig(**(TINY | kw), out=str(tmp_path) if tmp_path else None)
    return train(cfg, progress=False, text=TEXT)


@pytest.mark.parametrize("model", [SimpleRNN(9, 4, 6), MultiLayerRNN(9, 4, 6, 3), GRULM(9, 4, 6)],
                         ids=["rnn", "mlrnn", "gru"])
def test_sequence_loss_equals_notebook_mean_of_per_step_losses(model):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 9, (5, 7), generator=g), torch.randint(0, 9, (5, 7), generator=g)
    ours, ref = sequence_loss(model, x, y), notebook_rnn_loss(model, x, y)
    torch.testing.assert_close(ours, ref)
    gx = torch.autograd.grad(ours, list(model.parameters()))
    gr = torch.autograd.grad(notebook_rnn_loss(model, x, y), list(model.parameters()))
    for a, b in zip(gx, gr):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("model", ["rnn", "gru", "transformer"])
def test_same_seed_gives_the_same_loss_curve_on_cpu(model):
    kw = dict(model=model, steps=4) | (TRANSFORMER if model == "transformer" else {})
    a, b = run(**kw).history, run(**kw).history
    pd.testing.assert_series_equal(a.train_loss, b.train_loss, check_exact=True)
    pd.testing.assert_series_equal(a.val_loss, b.val_loss, check_exact=True)
    assert not a.train_loss.equals(run(**kw, seed=7).history.train_loss)


def test_history_columns_and_validation_schedule(tmp_path):
    r = run(tmp_path, steps=5)
    h = r.history
    assert list(h.columns) == LOG_COLUMNS
    assert h.step.tolist() == [1, 2, 3, 4, 5]
    assert h.val_loss.notna().tolist() == [True, True, False, True, True]  # 1, every 2, last
    assert (h.elapsed_s.diff().dropna() > 0).all() and (h.tokens_per_s > 0).all()
    logged = pd.read_csv(r.log)
    pd.testing.assert_frame_equal(logged, h, check_exact=False, rtol=1e-12)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    # stop at step 4, a validation step of both runs (the last step is always validated)
    whole = run(tmp_path / "whole", model="gru", steps=7).history
    first = run(tmp_path / "split", model="gru", steps=4)
    assert len(first.history) == 4
    resumed = run(tmp_path / "split", model="gru", steps=7, resume=True)
    pd.testing.assert_frame_equal(resumed.history[["step", "train_loss", "val_loss"]],
                                  whole[["step", "train_loss", "val_loss"]], check_exact=True)
    assert load_checkpoint(tmp_path / "split").step == 7


def test_resume_refuses_changed_settings(tmp_path):
    run(tmp_path, steps=2)
    with pytest.raises(ValueError, match="lr=0.001 \\(now 0.01\\)"):
        run(tmp_path, steps=4, lr=1e-2, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tmp_path / "empty", steps=4, resume=True)


def test_ctrl_c_finishes_the_step_saves_and_returns(tmp_path):
    def interrupt_at_3(step, loss):
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    cfg = TrainConfig(**TINY, steps=50, out=str(tmp_path))
    r = train(cfg, progress=False, text=TEXT, on_step=interrupt_at_3)
    assert r.interrupted and len(r.history) == 3
    assert load_checkpoint(tmp_path).step == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_checkpoint_round_trip_and_generation(tmp_path):
    r = run(tmp_path, steps=2, **TRANSFORMER)
    ck = load_checkpoint(r.checkpoint)
    assert ck.vocab == r.dataset.vocab and ck.config == r.config
    assert ck.stoi == r.dataset.stoi and ck.itos == r.dataset.itos
    for k, v in r.model.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v)
    a = ck.generate("Lily", 15, seed=3)
    assert a.startswith("Lily") and len(a) == 4 + 15
    assert a == ck.generate("Lily", 15, seed=3)
    assert ck.generate("Lily", 15, greedy=True) == ck.generate("Lily", 15, greedy=True,
                                                                 use_cache=True)


def test_generate_text_names_missing_prompt_characters():
    m = SimpleRNN(3, 4, 5)
    with pytest.raises(ValueError, match="'z'"):
        generate_text(m, ["a", "b", "c"], "abz", 5)
    with pytest.raises(ValueError, match="transformer only"):
        generate_text(m, ["a", "b", "c"], "ab", 5, use_cache=True)


def test_encode_is_exported_for_prompts():
    assert encode("ba", {"a": 0, "b": 1}).tolist() == [1, 0]


@pytest.mark.parametrize("kw, match", [
    (dict(model="lstm"), "unknown model"),
    (dict(model="transformer", hidden=30, heads=4), "divisible by heads"),
    (dict(model="transformer", seq_len=101), "seq_len 101 exceeds block_size 100"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(batch_size=-1), "batch_size must be a positive integer"),
    (dict(seq_len=0), "seq_len must be a positive integer"),
    (dict(hidden=0), "hidden must be a positive integer"),
    (dict(lr=0.0), "lr must be a positive number"),
    (dict(device="tpu"), "device must be one of"),
    (dict(resume=True), "resume needs an output directory"),
])
def test_train_config_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_corpus_shorter_than_one_batch_is_rejected():
    with pytest.raises(ValueError, match="corpus too short: 30 characters"):
        train(TrainConfig(**TINY, steps=1), progress=False, text="a" * 30)


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


def test_corrupt_and_foreign_checkpoints_are_rejected(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a charlm checkpoint"):
        load_checkpoint(other)
