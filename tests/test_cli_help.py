"""`charlm --help` and every subcommand's help: fast (no torch or pandas to build the parser),
written for users (no Markdown, defaults shown, help on every flag, an example each), and
the static choice lists that make it fast agree with the registries they mirror."""

import argparse
import dataclasses
import importlib.metadata
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from charlm import cli

ROOT = Path(__file__).resolve().parent.parent


def subcommands():
    parser = cli.build_parser()
    return parser, parser._subparsers._group_actions[0].choices


def test_building_the_parser_imports_neither_torch_nor_pandas():
    code = ("import sys, json, charlm.cli; charlm.cli.build_parser(); "
            "print(json.dumps(sorted(m for m in ('torch', 'pandas', 'numpy', 'sympy') "
            "if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_help_is_fast():
    # importing torch alone takes about a second; the help must not wait for it
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "charlm", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and "usage: charlm" in proc.stdout
    assert elapsed < 3.0, f"charlm --help took {elapsed:.1f} s"


def test_version_is_the_installed_packages():
    proc = subprocess.run([sys.executable, "-m", "charlm", "--version"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.strip() == f"charlm {importlib.metadata.version('charlm')}"


def test_top_level_help_is_written_for_users(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "`" not in text and "thin layer" not in text
    _, commands = subcommands()
    for name in commands:  # every command is listed with a one-line purpose
        assert name in text
    from charlm.models.registry import MODELS

    listed = re.findall(r"\w+", text.split("models (--model):")[-1].split("\n\n")[0])
    assert listed == list(MODELS)  # every model of the registry, as --model takes it


@pytest.mark.parametrize("name", list(subcommands()[1]))
def test_every_subcommand_has_help_on_every_flag_defaults_and_an_example(name, capsys):
    _, commands = subcommands()
    parser = commands[name]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help.strip() != action.dest.replace("_", " "), \
            f"{name} {action.option_strings or action.dest} has no help"
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    text = capsys.readouterr().out
    assert "`" not in text
    assert "example" in text.lower() and f"charlm {name}" in text.split("example")[-1]
    for action in parser._actions:  # a flag with a value default shows it
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                and not isinstance(action.default, bool):
            assert "default" in action.help.lower() or \
                f"(default: {action.default})" in " ".join(text.split()), action.dest


def test_flags_the_issue_named_have_help(capsys):
    _, commands = subcommands()
    wanted = {"train": ["--checkpoint-every", "--seed", "--device"],
              "generate": ["--temperature"], "flops": ["--format", "--quantity"],
              "depth": ["--quantity", "--format"]}
    for name, flags in wanted.items():
        by_flag = {s: a for a in commands[name]._actions for s in a.option_strings}
        for flag in flags:
            assert len(by_flag[flag].help) > 10, (name, flag)


def test_defaults_are_shown_in_train_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    # the homework's settings: Adam lr 1e-3, batch 32, seq 20, 2000 steps, SEED 2025
    for shown in ("(default: 2000)", "(default: 32)", "(default: 20)", "(default: 0.001)",
                  "(default: 2025)"):
        assert shown in text


# --- the static lists that keep the parser free of torch, against their registries ---

def test_static_choices_agree_with_the_registries():
    from charlm.commands import common, compare, gru_step
    from charlm.commands import train as train_command
    from charlm.experiments import EXPERIMENTS
    from charlm.gru_explorer import SLIDERS, GRUSettings
    from charlm.models.registry import ATTENTION_KINDS, MODELS
    from charlm.train import DEVICES, TrainConfig

    assert common.MODEL_NAMES == tuple(MODELS)
    assert common.ATTENTION_KINDS == tuple(ATTENTION_KINDS)
    assert common.DEVICES == tuple(DEVICES)
    assert compare.EXPERIMENT_NAMES == tuple(EXPERIMENTS)
    defaults = GRUSettings()
    assert [(n, lo, hi, d) for n, _, lo, hi, d in gru_step.SLIDERS] == \
        [(s.name, s.low, s.high, getattr(defaults, s.name)) for s in SLIDERS]
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert {k: fields[k] for k in train_command.DEFAULTS} == train_command.DEFAULTS


# --- messages use the flags' names ---

@pytest.fixture(scope="module")
def train_parser():
    return subcommands()[1]["train"]


@pytest.mark.parametrize("message, expected", [
    ("batch_size must be a positive integer, got 0",
     "--batch-size must be a positive integer, got 0"),
    ("seq_len 101 exceeds block_size 100", "--seq-len 101 exceeds --block-size 100"),
    ("cannot resume x.pt: settings differ from the checkpoint's; hidden: the checkpoint has "
     "256, now 128", "cannot resume x.pt: settings differ from the checkpoint's; --hidden: the "
     "checkpoint has 256, now 128"),
    ("runs/x already holds a run (log.csv): continue it with resume=True or replace it with "
     "force=True", "runs/x already holds a run (log.csv): continue it with --resume or replace "
     "it with --force"),
    ("n_chars must be a positive integer, got 0",
     "--data-chars must be a positive integer, got 0"),
    ("device='cuda', but CUDA is not available", "--device cuda, but CUDA is not available"),
    # prose, paths and quoted names stay as they are
    ("unknown model 'lstm'", "unknown model 'lstm'"),
    ("no such corpus 'runs/hidden: x'", "no such corpus 'runs/hidden: x'"),
    ("the model has 2 layers", "the model has 2 layers"),
])
def test_flag_names_replace_config_fields(train_parser, message, expected):
    assert cli.flag_names(message, train_parser) == expected


# --- one line for out-of-memory and interrupts, wherever they happen ---

class FakeOutOfMemoryError(RuntimeError):
    pass


FakeOutOfMemoryError.__name__ = "OutOfMemoryError"  # as torch.OutOfMemoryError is named


@pytest.mark.parametrize("error", [
    MemoryError(),
    FakeOutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB (GPU 0; ...)"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough "
                 "memory: you tried to allocate 40000000000 bytes."),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                 "40000000000 bytes. Error code 12 (Cannot allocate memory)"),
], ids=["MemoryError", "torch-OutOfMemoryError", "enforce-fail", "cannot-allocate"])
def test_out_of_memory_anywhere_is_one_line_with_a_suggestion(monkeypatch, capsys, error):
    import charlm.commands.flops as flops

    def boom(args):
        raise error

    monkeypatch.setattr(flops, "run", boom)
    assert cli.main(["flops", "--model", "gru", "--hidden", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("charlm flops: error: out of memory")
    assert "--batch" in err and "--seq-len" in err and "--hidden" in err


def test_other_runtime_errors_are_not_hidden(monkeypatch):
    import charlm.commands.flops as flops

    def boom(args):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(flops, "run", boom)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        cli.main(["flops"])


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    import charlm.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(charlm.train, "prepare_data", interrupted)
    assert cli.main(["train", "--no-progress", "--out", "/nonexistent/never-written"]) == 130
    err = capsys.readouterr().err
    assert err == "charlm train: interrupted\n"


def test_double_ctrl_c_says_interrupted_at_step_once(monkeypatch, capsys, tmp_path):
    import signal

    import charlm.steps
    from charlm.data import builtin_corpus

    corpus = tmp_path / "c.txt"
    corpus.write_text(builtin_corpus(seed=1, n_chars=4000), encoding="utf-8")
    calls, loss = [], charlm.steps.lm_loss

    def lm_loss(model, idx, targets):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return loss(model, idx, targets)

    monkeypatch.setattr(charlm.steps, "lm_loss", lm_loss)
    argv = ["train", "--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch-size", "4",
            "--steps", "50", "--device", "cpu", "--no-progress", "--data", str(corpus),
            "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("interrupted at step") == 1 and err.count("\n") == 1
    assert "interrupted at step 2" in err and "no checkpoint was written" in err
