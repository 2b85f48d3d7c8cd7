"""The training loop: loss definition, determinism, resume, Ctrl-C and SIGTERM, checkpoints,
run folders, initialisation, bad input."""

import math
import pickle
import random
import signal

import pandas as pd
import pytest
import torch

import charlm.steps
from charlm.data import builtin_corpus
from charlm.models import GRULM, MultiLayerRNN, SimpleRNN
from charlm.steps import lm_loss
from charlm.train import (
    LOG_COLUMNS,
    TrainConfig,
    TrainingInterrupted,
    encode,
    generate_text,
    initialise,
    load_checkpoint,
    resolve_device,
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
def test_lm_loss_equals_notebook_mean_of_per_step_losses(model):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 9, (5, 7), generator=g), torch.randint(0, 9, (5, 7), generator=g)
    ours, ref = lm_loss(model, x, y), notebook_rnn_loss(model, x, y)
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
    with pytest.raises(ValueError, match="lr: the checkpoint has 0.001, now 0.01"):
        run(tmp_path, steps=4, lr=1e-2, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tmp_path / "empty", steps=4, resume=True)


def test_resume_compares_widths_with_their_defaults_filled_in(tmp_path):
    # trained with the default width (the homework's 256 for a recurrent model) ...
    run(tmp_path, steps=1, hidden=None)
    with pytest.raises(ValueError, match="hidden: the checkpoint has 256, now 128"):
        run(tmp_path, steps=2, hidden=128, resume=True)
    # ... and asking for 256 by name is the same run, so it resumes
    assert run(tmp_path, steps=2, hidden=256, resume=True).history.step.tolist() == [1, 2]


def test_an_existing_run_is_refused_unless_resumed_or_forced(tmp_path):
    first = run(tmp_path, steps=3)
    with pytest.raises(ValueError, match="already holds a run .*resume=True.*force=True"):
        run(tmp_path, steps=2)
    assert load_checkpoint(tmp_path).step == 3  # the refused run touched nothing
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "log.csv"), first.history)
    assert len(run(tmp_path, steps=2, force=True).history) == 2
    assert load_checkpoint(tmp_path).step == 2
    (tmp_path / "log.csv").unlink(), (tmp_path / "checkpoint.pt").unlink()
    (tmp_path / "log.csv").write_text("step\n")  # a log alone is a run too
    with pytest.raises(ValueError, match=r"\(log\.csv\)"):
        run(tmp_path, steps=1)


def test_an_out_that_is_a_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("keep me")
    with pytest.raises(ValueError, match="short.txt is an existing file, not a run folder"):
        run(path, steps=1)
    assert path.read_text() == "keep me"


def test_ctrl_c_finishes_the_step_saves_and_returns(tmp_path):
    # the handler before: Python's default_int_handler, or SIG_IGN in a process started in
    # the background of a non-interactive shell (which ignores SIGINT from its start)
    before = signal.getsignal(signal.SIGINT)

    def interrupt_at_3(step, loss):
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    cfg = TrainConfig(**TINY, steps=50, out=str(tmp_path))
    r = train(cfg, progress=False, text=TEXT, on_step=interrupt_at_3)
    assert r.interrupted and len(r.history) == 3
    assert load_checkpoint(tmp_path).step == 3
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_sigterm_is_treated_like_ctrl_c(tmp_path):
    before = signal.getsignal(signal.SIGTERM)

    def terminate_at_2(step, loss):
        if step == 2:
            signal.raise_signal(signal.SIGTERM)

    cfg = TrainConfig(**TINY, steps=50, out=str(tmp_path))
    r = train(cfg, progress=False, text=TEXT, on_step=terminate_at_2)
    assert (r.interrupted, r.signal, len(r.history)) == (True, "SIGTERM", 2)
    assert load_checkpoint(tmp_path).step == 2
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_ctrl_c_inside_a_step_stops_without_saving_it(tmp_path, monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    calls = []
    loss = charlm.steps.lm_loss

    def lm_loss_with_two_ctrl_c(model, idx, targets):
        calls.append(1)
        if len(calls) == 3:  # inside step 3's forward pass: press Ctrl-C twice
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return loss(model, idx, targets)

    monkeypatch.setattr(charlm.steps, "lm_loss", lm_loss_with_two_ctrl_c)
    cfg = TrainConfig(**TINY, steps=50, checkpoint_every=2, out=str(tmp_path))
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, progress=False, text=TEXT)
    assert "interrupted at step 3" in str(info.value) and "holds step 2" in str(info.value)
    assert load_checkpoint(tmp_path).step == 2  # step 3 never reached the checkpoint
    assert signal.getsignal(signal.SIGINT) is before


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


@pytest.mark.parametrize("model", [GRULM(7, 5, 6, num_layers=3), MultiLayerRNN(7, 5, 6, 2)],
                         ids=["gru", "mlrnn"])
def test_xavier_orthogonal_init(model):
    initialise(model, "xavier-orthogonal")
    names = dict(model.named_parameters())
    weights = {n: p for n, p in names.items() if n.endswith("weight")}
    hidden = [p for n, p in weights.items() if "W_h" in n]  # W_hh, W_hr, W_hz, W_hn
    inputs = [p for n, p in weights.items() if "W_x" in n or "W_ih" in n]
    assert hidden and inputs
    for w in hidden:  # orthogonal: W W^T = I
        torch.testing.assert_close(w @ w.T, torch.eye(w.size(0)), atol=1e-5, rtol=0)
    for w in inputs:  # Xavier-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
        a = math.sqrt(6 / (w.size(0) + w.size(1)))
        assert w.abs().max() <= a and w.abs().max() > a / 2
    with pytest.raises(ValueError, match="recurrent models"):
        initialise(torch.nn.Linear(3, 3), "xavier-orthogonal")


@pytest.mark.parametrize("kw, match", [
    (dict(model="mamba"), "unknown model"),
    (dict(model="transformer", hidden=30, heads=4), "divisible by heads"),
    (dict(model="transformer", seq_len=101), "seq_len 101 exceeds block_size 100"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(batch_size=-1), "batch_size must be a positive integer"),
    (dict(seq_len=0), "seq_len must be a positive integer"),
    (dict(hidden=0), "hidden must be a positive integer"),
    (dict(lr=0.0), "lr must be a positive number"),
    (dict(device="tpu"), "device must be one of"),
    (dict(resume=True), "resume needs an output directory"),
    (dict(resume=True, force=True, out="x"), "give one of them"),
    (dict(init="he"), "init must be one of"),
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


class Foreign:  # a pickled object that weights_only loading refuses
    pass


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes), not a checkpoint"),
    (lambda p: p.write_bytes(b"\x00" + random.Random(0).randbytes(63)),
     "is not a PyTorch file (64 bytes"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "is not a PyTorch file"),
    (lambda p: torch.save({"weights": torch.zeros(2)}, p),
     "is a PyTorch file but not a charlm checkpoint"),
    (lambda p: torch.save({"x": Foreign()}, p, pickle_protocol=pickle.HIGHEST_PROTOCOL),
     "is a PyTorch file holding Python objects, not a charlm checkpoint"),
    (lambda p: (torch.save({"w": torch.zeros(100)}, p),
                p.write_bytes(p.read_bytes()[:200])), "is a damaged PyTorch file"),
], ids=["empty", "random", "text", "foreign-dict", "pickled-object", "truncated"])
def test_bad_checkpoint_files_say_what_they_are_not(tmp_path, make, says):
    path = tmp_path / "checkpoint.pt"
    make(path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert says in message and "charlm train writes" in message
    assert "\n" not in message and "weights_only=False" not in message
    assert len(message.replace(str(path), "")) < 240
