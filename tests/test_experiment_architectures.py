"""The `architectures` experiment: five architectures, one layer each, parameter counts
matched to the homework's GRU, trained on the same data."""

import pytest

from charlm.data import builtin_corpus
from charlm.experiments import (
    EXPERIMENTS,
    match_hidden,
    params_of,
    run_experiment,
    summary_markdown,
)
from charlm.train import TrainConfig


def gru_params(V, E, D):
    return V * E + 3 * E * D + 3 * D * D + D * V + V  # one layer, no gate biases


@pytest.mark.parametrize("V", [30, 65])
def test_every_run_is_matched_to_the_homework_gru(V):
    runs, info = EXPERIMENTS["architectures"].resolved(V)
    assert [r.config.model for r in runs] == ["rnn", "gru", "lstm", "mingru", "transformer"]
    target = gru_params(V, 64, 256)  # by hand, the homework's GRU
    assert info["target_params"] == target
    for r in runs:
        cfg = r.config
        assert cfg.model_config(V).layers == 1 and cfg.seq_len == 20
        count = params_of(cfg, V)
        assert info["params"][r.label] == count
        step = cfg.model_config(V).heads or 1
        # closest: one width step up or down is no closer to the target
        for other in (cfg.hidden - step, cfg.hidden + step):
            assert abs(count - target) <= abs(params_of(
                TrainConfig(**{**cfg.__dict__, "hidden": other}), V) - target)
        assert abs(count - target) / target < 0.03


def test_match_hidden_keeps_the_transformer_divisible_by_its_heads():
    cfg = TrainConfig(model="transformer", heads=4, block_size=20, seq_len=20)
    h = match_hidden(cfg, 100_000, 40, multiple=4)
    assert h % 4 == 0
    with pytest.raises(ValueError, match="multiple must be a positive integer"):
        match_hidden(cfg, 100_000, 40, multiple=0)


def test_a_quick_run_trains_all_five_on_the_same_data(monkeypatch):
    monkeypatch.setattr("charlm.experiments.SAMPLE_LENGTH", 5)  # samples are not tested here
    text = builtin_corpus(seed=1, n_chars=6_000)
    result = run_experiment("architectures", text, steps=1, device="cpu", val_batches=1)
    s = result.summary()
    assert list(s["arch"]) == ["rnn", "gru", "lstm", "mingru", "transformer"]
    assert list(s["steps"]) == [1] * 5
    assert (s["tokens_per_s"] > 0).all() and s["final_val_loss"].notna().all()
    md = summary_markdown(result)
    assert "minGRU gets hidden" in md and "the closest count to GRU's" in md
