"""Grid files (analysis.grids): the built-in files hold the grids that were code before,
custom files select models, phases and sizes, and bad files fail with one line naming the
key."""

import dataclasses
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest

import analysis.grids as grids_module
from analysis.grids import (
    BUILTIN,
    GridSpec,
    builtin_grids,
    grid_file,
    is_grid_path,
    parse_grid,
    read_grid,
)
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


# --- The schema, key by key (analysis/grids.py's docstring is the source of every expected
# value below: the keys, their defaults and the one-line messages it names).

GRIDS_DIR = Path(__file__).resolve().parents[1] / "analysis" / "data" / "grids"
EVERY_KEY = {
    "name": "mine", "description": "every key once", "batch": 2, "rounds": 5, "warmup": 3,
    "models": {"variants": ["gru", "rnn"], "phases": ["forward", "train"], "T": [1, 8],
               "D": [32], "L": [1, 2], "N": [4], "prompt": 2},
    "reference": {"variants": ["gru"], "T": [16]},
    "attention": {"T": [8, 64], "cuda_T": [256]},
}


def test_every_key_of_the_schema_lands_in_its_field():
    # the name key wins over the name argument and over the file's stem
    g = parse_grid(EVERY_KEY, "runs/other.toml", name="alias")
    assert (g.name, g.description, g.batch, g.rounds, g.warmup) == (
        "mine", "every key once", 2, 5, 3)
    assert (g.variants, g.phases, g.T, g.D, g.L, g.N, g.prompt) == (
        ("gru", "rnn"), ("forward", "train"), (1, 8), (32,), (1, 2), (4,), 2)
    assert (g.reference_variants, g.reference_T) == (("gru",), (16,))
    assert (g.attention_T, g.attention_cuda_T) == ((8, 64), (256,))
    assert g.source == "runs/other.toml"


def test_the_label_is_the_name_key_then_the_argument_then_the_stem_then_custom():
    data = {"batch": 1, "rounds": 1, "attention": {"T": [8]}}
    assert parse_grid(data, "runs/my-grid.toml").name == "my-grid"
    assert parse_grid(data, "runs/my-grid.toml", name="alias").name == "alias"
    assert parse_grid(data).name == "custom"
    assert parse_grid({**data, "name": "mine"}, "runs/my-grid.toml", "alias").name == "mine"


def test_the_defaults_of_the_schema():
    # warmup 0, description "", prompt 4, cuda_T 128 .. 2048 (the powers of two between)
    g = parse_grid({"batch": 1, "rounds": 1, "models": {"T": [8]}, "attention": {"T": [8]}})
    assert (g.warmup, g.description, g.prompt) == (0, "", 4)
    assert g.attention_cuda_T == (128, 256, 512, 1024, 2048)
    assert g.D == g.L == g.N == g.reference_T == ()
    assert g.variants is g.phases is g.reference_variants is None
    assert g.source is None
    # the dataclass's own default is the same CUDA sweep
    bare = GridSpec(batch=1, T=(), D=(), L=(), N=(), prompt=4, attention_T=(8,),
                    reference_T=(), rounds=1, warmup=0)
    assert bare.attention_cuda_T == (128, 256, 512, 1024, 2048)


def test_what_the_schema_accepts_at_its_edges():
    # warmup 0 and size 1 are allowed; an empty [models] table or an optional empty list
    # times nothing on that axis instead of failing
    g = parse_grid({"batch": 1, "rounds": 1, "warmup": 0, "models": {},
                    "attention": {"T": [1], "cuda_T": []}})
    assert (g.warmup, g.T, g.attention_T, g.attention_cuda_T) == (0, (), (1,), ())
    g = parse_grid({"batch": 1, "rounds": 1, "models": {"T": [8], "D": []}})
    assert g.D == ()


M = {"T": [8]}  # the one required key of [models]
A = {"attention": {"T": [8]}}  # something to time
ALL_TOP = "attention, batch, description, models, name, reference, rounds, warmup"
SCHEMA_ERRORS = [
    ({"batch": 1, **A}, "rounds must be a positive integer, got None"),
    ({"batch": 1, "rounds": 0, **A}, "rounds must be a positive integer, got 0"),
    ({"batch": 1, "rounds": True, **A}, "rounds must be a positive integer, got True"),
    ({"batch": "2", "rounds": 1, **A}, "batch must be a positive integer, got '2'"),
    ({"batch": 1, "rounds": 1, "warmup": -1, **A}, "warmup must be an integer >= 0, got -1"),
    ({"batch": 1, "rounds": 1, "warmup": 1.5, **A}, "warmup must be an integer >= 0, got 1.5"),
    ({"batch": 1, "rounds": 1, "models": {**M, "prompt": 0}},
     "models.prompt must be a positive integer, got 0"),
    ({"batch": 1, "rounds": 1, "models": {"D": [64]}},
     "models.T is missing (a list of positive integers)"),
    ({"batch": 1, "rounds": 1, "reference": {"variants": ["gru"]}},
     "reference.T is missing (a list of positive integers)"),
    ({"batch": 1, "rounds": 1, "attention": {"cuda_T": [128]}},
     "attention.T is missing (a list of positive integers)"),
    ({"batch": 1, "rounds": 1, "models": {**M, "D": 64}},
     "models.D must be a list of positive integers, got 64"),
    ({"batch": 1, "rounds": 1, "models": {**M, "L": [2.0]}},
     "models.L must be a list of positive integers, got [2.0]"),
    ({"batch": 1, "rounds": 1, "models": {**M, "N": [-1]}},
     "models.N must be a list of positive integers, got [-1]"),
    ({"batch": 1, "rounds": 1, "reference": {"T": "64"}},
     "reference.T must be a list of positive integers, got '64'"),
    ({"batch": 1, "rounds": 1, "attention": {"T": [8], "cuda_T": [True]}},
     "attention.cuda_T must be a list of positive integers, got [True]"),
    ({"batch": 1, "rounds": 1, "models": {**M, "variants": "gru"}},
     "models.variants must be a non-empty list of names, got 'gru'"),
    ({"batch": 1, "rounds": 1, "models": {**M, "variants": [1]}},
     "models.variants must be a non-empty list of names, got [1]"),
    ({"batch": 1, "rounds": 1, "models": {**M, "phases": []}},
     "models.phases must be a non-empty list of names, got []"),
    ({"batch": 1, "rounds": 1, "reference": {"T": [8], "variants": []}},
     "reference.variants must be a non-empty list of names, got []"),
    ({"batch": 1, "rounds": 1, "name": "", **A}, "name must be a non-empty string, got ''"),
    ({"batch": 1, "rounds": 1, "name": 3, **A}, "name must be a non-empty string, got 3"),
    ({"batch": 1, "rounds": 1, "description": 3, **A}, "description must be a string"),
    ({"batch": 1, "rounds": 1, "models": [8]}, "models must be a table ([models])"),
    ({"batch": 1, "rounds": 1, "reference": 3}, "reference must be a table ([reference])"),
    ({"batch": 1, "rounds": 1, "attention": "x"}, "attention must be a table ([attention])"),
    ({"batch": 1, "rounds": 1, "zeta": 1, "alpha": 2, **A},
     f"unknown key 'alpha'; choose from {ALL_TOP}"),
    ({"batch": 1, "rounds": 1, "models": {**M, "width": [3]}},
     "unknown key models.width; choose from D, L, N, T, phases, prompt, variants"),
    ({"batch": 1, "rounds": 1, "reference": {"T": [8], "D": [3]}},
     "unknown key reference.D; choose from T, variants"),
    ({"batch": 1, "rounds": 1, "attention": {"T": [8], "D": [3]}},
     "unknown key attention.D; choose from T, cuda_T"),
]


@pytest.mark.parametrize(("data", "message"), SCHEMA_ERRORS)
def test_each_schema_error_is_one_line_naming_the_file_and_the_key(data, message):
    with pytest.raises(ValueError, match=f"^{re.escape('grid mine.toml: ' + message)}$"):
        parse_grid(data, "runs/mine.toml")


def test_an_error_without_a_file_names_the_grid_generically():
    with pytest.raises(ValueError, match=r"^grid <grid>: batch must be a positive integer, "
                                         r"got None$"):
        parse_grid({"rounds": 1, **A})


def test_grid_spec_is_frozen_and_to_dict_gives_lists():
    g = GridSpec(batch=2, T=(8, 16), D=(), L=(2,), N=(4,), prompt=3, attention_T=(32,),
                 reference_T=(), rounds=5, warmup=1, name="n", description="d",
                 variants=("gru",), source="x.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.batch = 3
    # tuples become lists (JSON has no tuple; a list never equals a tuple), the rest as is
    assert g.to_dict() == {
        "batch": 2, "T": [8, 16], "D": [], "L": [2], "N": [4], "prompt": 3,
        "attention_T": [32], "reference_T": [], "rounds": 5, "warmup": 1, "name": "n",
        "description": "d", "variants": ["gru"], "phases": None, "reference_variants": None,
        "attention_cuda_T": [128, 256, 512, 1024, 2048], "source": "x.toml"}


def test_read_grid_passes_the_name_and_the_path_and_refuses_a_missing_file(tmp_path):
    path = write(tmp_path, "batch = 1\nrounds = 1\n[attention]\nT = [8]\n")
    g = read_grid(path, "alias")
    assert (g.name, g.source) == ("alias", str(path))
    assert read_grid(path).name == "mine"
    missing = tmp_path / "nope.toml"
    message = f"grid file not found: {missing}"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        read_grid(missing)


def test_a_grid_file_is_read_as_utf8_whatever_the_locale(tmp_path, monkeypatch):
    path = tmp_path / "mine.toml"
    path.write_bytes('description = "Größe ✓"\nbatch = 1\nrounds = 1\n[attention]\nT = [8]\n'
                     .encode())  # UTF-8
    real = Path.read_text

    def latin1_locale(self, encoding=None, errors=None):  # a machine whose locale is Latin-1
        return real(self, encoding="latin-1" if encoding in (None, "locale") else encoding,
                    errors=errors)

    monkeypatch.setattr(Path, "read_text", latin1_locale)
    assert read_grid(path).description == "Größe ✓"


def test_builtin_grids_read_the_three_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing named quick here: only the data folder can hold it
    grids = builtin_grids()
    assert list(grids) == ["quick", "default", "full"]
    for name, g in grids.items():
        assert g.name == name and g.source == str(GRIDS_DIR / f"{name}.toml")
    assert [g.batch for g in grids.values()] == [4, 8, 16]  # FORMER above


def test_grid_file_finds_a_builtin_name_or_an_existing_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert grid_file("quick") == GRIDS_DIR / "quick.toml"
    assert grid_file(Path("full")) == GRIDS_DIR / "full.toml"
    path = write(tmp_path, "batch = 1\n")
    assert grid_file(str(path)) == path
    with pytest.raises(FileNotFoundError, match=r"^grid file not found: nope\.toml \(or name "
                                                r"one of quick, default, full\)$"):
        grid_file("nope.toml")


def test_is_grid_path_tells_a_file_from_a_grid_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_grid_path("mine.toml")  # by its suffix, before it exists
    assert is_grid_path("runs/mygrid")  # by its folder
    assert not is_grid_path("quick") and not is_grid_path("mygrid")
    (tmp_path / "mygrid").write_text("batch = 1\n")
    assert is_grid_path("mygrid")  # an existing file, whatever its name


def test_python_3_10_reads_grid_files_with_tomli(monkeypatch):
    # requires-python >= 3.10 and tomllib came in 3.11: there the tomli backport stands in
    has_tomllib = importlib.util.find_spec("tomllib") is not None  # this Python's own
    fake = types.ModuleType("tomli")
    monkeypatch.setitem(sys.modules, "tomli", fake)
    found = {}
    for version in ((3, 10, 12, "final", 0), (3, 11, 0, "final", 0)):
        if version >= (3, 11) and not has_tomllib:
            continue
        monkeypatch.setattr(sys, "version_info", version)
        spec = importlib.util.spec_from_file_location("_grids_copy", grids_module.__file__)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "_grids_copy", module)
        spec.loader.exec_module(module)
        found[version[:2]] = module.tomllib
    assert found[(3, 10)] is fake
    if has_tomllib:
        assert found[(3, 11)] is importlib.import_module("tomllib")
