"""Grid files (analysis.grids): the built-in files hold the grids that were code before,
custom files select models, phases and sizes, and bad files fail with one line naming the
key."""

import re

import pytest

from analysis.grids import BUILTIN, GridSpec, parse_grid
from analysis.workloads import (
    GRIDS,
    attention_workloads,
    get_grid,
    load_grid,
    model_workloads,
    reference_workloads,
)
from charlm.cli import main

# The grids as they were written in analysis/workloads.py before they became files.
FORMER = {
    "quick": dict(batch=4, T=(16, 64), D=(64,), L=(2,), N=(16,), prompt=4,
                  attention_T=(64, 256, 512), reference_T=(64,), rounds=3, warmup=1),
    "default": dict(batch=8, T=(16, 32, 64, 128, 256), D=(64, 128, 512), L=(2, 4),
                    N=(16, 64), prompt=8, attention_T=(64, 128, 256, 512),
                    reference_T=(32, 128), rounds=9, warmup=2),
    "full": dict(batch=16, T=(16, 32, 64, 128, 256, 512), D=(64, 128, 256, 512, 1024),
                 L=(2, 4, 8), N=(16, 64, 256), prompt=16,
                 attention_T=(64, 128, 256, 512, 1024, 2048), reference_T=(32, 128, 512),
                 rounds=10, warmup=3),
}


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_grid_files_hold_the_former_grids(name):
    g = GRIDS[name]
    for key, value in FORMER[name].items():
        assert getattr(g, key) == value, key
    assert g.name == name and g.variants is None and g.phases is None
    assert g.attention_cuda_T == (128, 256, 512, 1024, 2048)


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_custom_grid_selects_models_phases_and_sizes(tmp_path):
    path = write(tmp_path, """
batch = 2
rounds = 2
[models]
variants = ["gru"]
phases = ["forward"]
T = [8, 16]
D = [32]
""")
    g = get_grid(str(path))
    assert g.name == "mine" and g.warmup == 0  # the file's stem; warmup defaults to 0
    # T sweep at gru's default width 256, then the D sweep at the middle T (16); gru has one
    # layer and no layer sweep; no [reference] or [attention] table: none of those
    assert [w.id for w in model_workloads(g)] == [
        "gru-forward-B2-T8-D256-L1", "gru-forward-B2-T16-D256-L1", "gru-forward-B2-T16-D32-L1"]
    assert reference_workloads(g) == [] and attention_workloads(g) == []
    assert GRIDS[str(path)] == g  # the bench's GRIDS[option] reads files too


def test_architecture_name_stands_for_its_variants(tmp_path):
    g = load_grid(write(tmp_path, """
batch = 2
rounds = 1
[models]
variants = ["transformer"]
phases = ["train"]
T = [8]
"""))
    assert [w.variant for w in model_workloads(g)] == ["transformer-flash", "transformer-manual"]


def test_attention_table_uses_cuda_sizes_on_cuda(tmp_path):
    g = load_grid(write(tmp_path, "batch = 1\nrounds = 1\n[attention]\nT = [16]\ncuda_T = [32]\n"))
    assert {w.seq_len for w in attention_workloads(g, "cpu")} == {16}
    assert {w.seq_len for w in attention_workloads(g, "cuda")} == {32}


BAD = [
    ("batch = 2\nrounds = 1\n[models]\nvariants = ['lstm9']\nT = [8]\n",
     "grid bad.toml: models.variants: unknown model 'lstm9'; choose from"),
    ("batch = 2\nrounds = 1\n[models]\nvariants = ['transformer']\nT = [8]\nD = [30]\n",
     "grid bad.toml: models.D = 30: transformer-flash cannot take it:"),
    ("batch = 2\nrounds = 1\n", "grid bad.toml: empty grid"),
    ("batch = 2\nrounds = 1\n[models]\nphases = ['forward']\nT = []\n",
     "grid bad.toml: models.T is empty"),
    ("batch = 2\nrounds = 1\n[models]\nT = [8, 0]\n",
     "grid bad.toml: models.T must be a list of positive integers, got [8, 0]"),
    ("batch = 2\nrounds = 1\nbatchsize = 3\n", "grid bad.toml: unknown key 'batchsize'"),
    ("batch = 2\nrounds = 1\n[models]\nT = [8]\nwidth = [3]\n",
     "grid bad.toml: unknown key models.width"),
    ("rounds = 1\n[models]\nT = [8]\n", "grid bad.toml: batch must be a positive integer"),
    ("batch = 2\nrounds = 1\n[models]\nphases = ['backward']\nT = [8]\n",
     "grid bad.toml: models.phases: unknown phase 'backward'"),
    ("batch = 2\nrounds = 1\n[reference]\nvariants = ['transformer']\nT = [8]\n",
     "grid bad.toml: reference.variants: unknown model 'transformer'"),
    ("batch = 2\nrounds = [1\n", "grid bad.toml: not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_grid_files_fail_with_one_line_naming_the_key(tmp_path, text, message):
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(ValueError) as err:
        load_grid(path)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_cli_reports_a_bad_grid_on_one_line_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, "batch = 2\nrounds = 1\n[models]\nvariants = ['nope']\nT = [8]\n",
                 "bad.toml")
    code = main(["sweep", "--grid", str(path), "--executor", "local", "--out",
                 str(tmp_path / "sweep")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "models.variants: unknown model 'nope'" in err
    assert not (tmp_path / "sweep").exists()  # nothing planned for a bad grid


def test_unknown_grid_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown grid 'quik'; choose from quick, default, "
                                         "full, FILE.toml"):
        get_grid("quik")


def test_parse_grid_needs_no_file():
    g = parse_grid({"batch": 1, "rounds": 1, "attention": {"T": [8]}}, name="inline")
    assert isinstance(g, GridSpec) and g.name == "inline" and g.source is None


@pytest.mark.parametrize(("table", "key", "sizes"), [
    ("models", "T", [16, 16]),
    ("models", "D", [64, 128, 64]),
    ("models", "L", [2, 2]),
    ("models", "N", [16, 64, 16]),
    ("reference", "T", [32, 32]),
    ("attention", "T", [64, 64]),
    ("attention", "cuda_T", [128, 128]),
])
def test_a_repeated_size_on_any_axis_is_refused_naming_the_key(table, key, sizes):
    # a size twice would time the same workload twice (or, deduplicated, silently once)
    body = {"T": [8, 16]} if key != "T" else {}
    data = {"batch": 1, "rounds": 1, table: {**body, key: sizes}}
    with pytest.raises(ValueError, match=rf"^grid mine\.toml: {table}\.{key} repeats a size: "
                                         rf"{re.escape(repr(sizes))}$"):
        parse_grid(data, "mine.toml")
    parse_grid({**data, table: {**body, key: sorted(set(sizes))}}, "mine.toml")  # distinct: fine


def test_a_grid_file_with_a_repeated_size_fails_on_one_line(tmp_path):
    path = write(tmp_path, "batch = 2\nrounds = 1\n[models]\nT = [16, 16]\n", "bad.toml")
    with pytest.raises(ValueError) as err:
        load_grid(path)
    assert str(err.value) == "grid bad.toml: models.T repeats a size: [16, 16]"


def test_the_default_prompt_is_four_tokens():
    # the schema (analysis/grids.py, docs/bench-and-sweeps.md): `prompt = 4  # P, the prompt
    # of generation (default 4)`; a grid that names none generates after P = 4 tokens. (The
    # homework notebook's generate_text starts from one random token, P = 1: that is
    # generation without a prompt, tested in test_models, not the bench grid's default.)
    g = parse_grid({"batch": 1, "rounds": 1, "models": {"T": [8], "N": [3]}})
    assert g.prompt == 4
    assert parse_grid({"batch": 1, "rounds": 1,
                       "models": {"T": [8], "N": [3], "prompt": 2}}).prompt == 2
