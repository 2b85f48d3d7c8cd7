"""Every command that README.md and docs/*.md show in a fenced shell block is checked without
running it: a `charlm` command's argv goes through the real CLI parser (a wrong subcommand,
flag or choice fails here), a `pytest` command's through pytest's parser with the bench's
plugins (and its paths must exist), a `make` command's targets and variables must be in the
Makefile (REPORT_ARGS is parsed as `charlm report` flags), a `python scripts/X.py` command's
through that script's own parser. Anything else must be in ALLOWLIST, naming what runs it."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest

from charlm import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell", "console"}
OTHER = {"text", "toml", "python", "json", "csv"}  # fences that hold no commands

# Commands checked by what runs them rather than by a parser: command -> a test node id
# (file::function, which must exist) or a file that runs the command (which must name it).
ALLOWLIST = {
    "bash scripts/local_slurm.sh start": ".ci/run",
    "bash scripts/local_slurm.sh stop": ".ci/run",
    "bash scripts/local_slurm.sh status":
        "tests/test_slurm.py::test_three_shard_sweep_on_slurm_times_what_an_unsharded_run_times",
    "bash bench/gpu_run.sh": "results/reference/gpu-h200-paired/README.md",  # a GPU lease
}

PYTHON = re.compile(r"(.*/)?python(3(\.\d+)?)?$")
SEPARATORS = {"&&", "||", ";", "|"}


def shell_blocks(text: str):
    """(line number, language, body lines) of each fenced block."""
    lines, i = text.splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\S*)", lines[i])
        if not opening:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i])
            i += 1
        yield start, opening.group(2), body
        i += 1


def commands_in(text: str):
    """(line number, command string) of every command in the shell blocks: continuation
    lines joined, a `$ ` prompt and comments dropped, `a && b` split."""
    for start, lang, body in shell_blocks(text):
        if lang not in SHELL:
            continue
        joined, first = "", None
        for offset, line in enumerate(body):
            first = start + offset + 1 if first is None else first
            joined += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
            if line.rstrip().endswith("\\"):
                continue
            words = shlex.split(joined.strip().removeprefix("$ "), comments=True)
            command: list[str] = []
            for word in [*words, ";"]:
                if word in SEPARATORS:
                    if command:
                        yield first, command
                    command = []
                else:
                    command.append(word)
            joined, first = "", None


def makefile():
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", text, re.MULTILINE))
    variables = set(re.findall(r"\$\((\w+)\)", text))
    return targets, variables


def parse_charlm(argv: list[str]) -> str | None:
    """None when the CLI's parser accepts argv, else its error."""
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            cli.build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip() or f"exit {exc.code}"
    return None


@pytest.fixture(scope="module")
def pytest_parser():
    """pytest's own option parser with the installed plugins (pytest-benchmark) and the
    bench's (bench/conftest.py, analysis.bench_sharding), as `pytest bench` sees them."""
    from _pytest.config import get_config

    import analysis.bench_sharding

    config = get_config()
    config.pluginmanager.load_setuptools_entrypoints("pytest11")
    config.pluginmanager.register(analysis.bench_sharding)
    spec = importlib.util.spec_from_file_location("bench_conftest_for_docs",
                                                  ROOT / "bench" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config.pluginmanager.register(module)
    return config._parser


def parse_pytest(parser, argv: list[str]) -> str | None:
    try:
        namespace = parser.parse(argv)
    except pytest.UsageError as exc:
        return str(exc).strip().splitlines()[-1]
    missing = [p for p in namespace.file_or_dir if not (ROOT / p.split("::")[0]).exists()]
    return f"no such path: {missing}" if missing else None


def parse_script(path: str, argv: list[str]) -> str | None:
    spec = importlib.util.spec_from_file_location("doc_script", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "parser"):
        return f"{path} has no parser(); add it to ALLOWLIST with what runs it"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            module.parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip()
    return None


def check(words: list[str], pytest_parser=None) -> str | None:
    """None when the command is known good, else why not."""
    text = " ".join(words)
    if text in ALLOWLIST:
        return None
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # FOO=bar command ...
        words = words[1:]
    head, rest = words[0], words[1:]
    if PYTHON.fullmatch(head) and rest[:2] in (["-m", "charlm"], ["-m", "charlm.cli"]):
        return parse_charlm(rest[2:])
    if Path(head).name == "charlm":
        return parse_charlm(rest)
    if head == "pytest" or (PYTHON.fullmatch(head) and rest[:2] == ["-m", "pytest"]):
        if pytest_parser is None:
            return "no pytest parser"
        return parse_pytest(pytest_parser, rest if head == "pytest" else rest[2:])
    if head == "make":
        targets, variables = makefile()
        for word in rest:
            name, equals, value = word.partition("=")
            if equals and name not in variables:
                return f"the Makefile uses no variable {name}"
            if equals and name == "REPORT_ARGS":
                if error := parse_charlm(["report", *shlex.split(value)]):
                    return error
            if not equals and word not in targets:
                return f"the Makefile has no target {word}"
        return None
    if PYTHON.fullmatch(head) and rest and rest[0].startswith("scripts/"):
        return parse_script(rest[0], rest[1:])
    return "not a command this test can check: add it to ALLOWLIST with what runs it"


def documented():
    found = []
    for doc in DOCS:
        for line, words in commands_in(doc.read_text()):
            found.append(pytest.param(words, id=f"{doc.relative_to(ROOT)}:{line}"))
    return found


@pytest.mark.parametrize("words", documented())
def test_documented_command_is_checked(words, pytest_parser):
    error = check(words, pytest_parser)
    assert error is None, f"{' '.join(words)}: {error}"


def test_the_docs_show_the_main_commands():
    # the extraction finds what the README must show (so the test above is not vacuous)
    readme = {" ".join(w) for _, w in commands_in((ROOT / "README.md").read_text())}
    for command in ("make report", "make test"):
        assert command in readme
    subcommands = {w[1] for _, w in commands_in((ROOT / "README.md").read_text())
                   if w[0] == "charlm"}
    assert {"train", "generate", "flops", "depth", "predict-time", "calibrate",
            "check-answers", "compare", "report", "sweep"} <= subcommands


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_code_block_is_fenced_with_a_known_language(doc):
    # an indented or unlabelled block would escape the check above
    text = doc.read_text()
    for start, lang, _ in shell_blocks(text):
        assert lang in SHELL | OTHER, f"{doc.name}:{start}: fence language {lang!r}"
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(r"^( {4}|\t)(\S*charlm|make|\S*pytest|\S*python) ",
                                       line):
            pytest.fail(f"{doc.name}:{number}: a command outside a fenced shell block")


def test_python_blocks_compile():
    for doc in DOCS:
        for start, lang, body in shell_blocks(doc.read_text()):
            if lang == "python":
                compile("\n".join(body), f"{doc.name}:{start}", "exec")


def test_every_allowlisted_command_names_what_runs_it():
    for command, runner in ALLOWLIST.items():
        path, _, function = runner.partition("::")
        text = (ROOT / path).read_text()
        if function:
            assert f"def {function}(" in text, runner
        else:
            assert command in text, f"{runner} does not run {command!r}"


def test_extraction_joins_lines_and_drops_prompts_and_comments():
    text = ("x\n```sh\n$ charlm flops --model gru \\\n    --seq-len 8   # a comment\n"
            "cd runs && make test\n```\n```toml\ncharlm = 1\n```\n")
    assert list(commands_in(text)) == [
        (3, ["charlm", "flops", "--model", "gru", "--seq-len", "8"]),
        (5, ["cd", "runs"]), (5, ["make", "test"])]


def test_wrong_commands_are_caught(pytest_parser):
    # each mistake below must be reported, by the parser that owns it
    assert check(["charlm", "train", "--model", "gru"], pytest_parser) is None
    assert "--no-such-flag" in check(["charlm", "train", "--no-such-flag"], pytest_parser)
    assert "invalid choice" in check(["charlm", "trian"], pytest_parser)
    assert check(["python", "-m", "charlm", "flops", "--model", "gpt"], pytest_parser)
    assert "--charlm-nope" in check(["pytest", "bench", "--charlm-nope"], pytest_parser)
    assert "no such path" in check(["pytest", "tests/test_nothing_here.py"], pytest_parser)
    assert "no target" in check(["make", "tests"], pytest_parser)
    assert "REPORT_ARGS" not in (check(["make", "report", "REPORT_ARGS=--quick"]) or "")
    assert "--quik" in check(["make", "report", "REPORT_ARGS=--quik"], pytest_parser)
    assert "ALLOWLIST" in check(["bash", "scripts/unknown.sh"], pytest_parser)
    assert check(["python", "scripts/train_homework.py", "--stepz", "3"], pytest_parser)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_relative_links_and_their_anchors_exist():
    pages = [*DOCS, *sorted((ROOT / "results").glob("**/README.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.relative_to(ROOT)}: no such file {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
                assert anchor in {slug(h) for h in headings}, \
                    f"{page.relative_to(ROOT)}: no heading #{anchor} in {path or page.name}"
