"""Mutation testing of the analysis modules (docs/developing.md#mutation-testing).

Each module of scripts/mutate_modules.toml is mutated in a scratch copy of the tree under
runs/mutate/<module>/tree/ (git-ignored; tracked files are never touched), against only the
test files that the table names for it, one process at a time:

- mutmut mutates the code inside functions and methods, running for each mutant only the
  listed tests that call the mutated function (CPU-time limit per mutant: (those tests' time +
  2 s) x 5 x 2);
- the tables pass (cosmic-ray, which edits the file in place: hence the scratch copy) mutates
  what mutmut never sees, the statements outside functions (module tables and constants, class
  attributes and decorators; annotations left out), running the listed test files per mutant
  with `-x` (wall-clock limit 120 s per mutant). `--no-tables` skips it.

Writes runs/mutate/<module>/results.json, then runs/mutate/scores.csv and survivors.md from
every module's results.json. A module whose tree has not changed since its last run resumes
where that run stopped. When the only change is new test files (tests/test_*.py), it keeps
what the last complete run killed and tests again only the rest (mutmut's and cosmic-ray's
survivors). When files outside the module changed too (or an old test was edited), it
refuses and keeps the last run's results: `--retest` keeps that run's kills and tests again
the rest (the changed files named in results.json), `--fresh` starts over. A change of the
module itself, of its tables pass or a test no longer listed starts it over.
Mutants listed in scripts/mutate_equivalent.toml (each with its argument) are equivalent:
out of the denominator, marked in survivors.md.

    .venv/bin/python scripts/mutate.py [--modules analysis/timing.py ...] [--list]
"""

import argparse
import ast
import csv
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MODULES_FILE = ROOT / "scripts" / "mutate_modules.toml"
EQUIVALENT_FILE = ROOT / "scripts" / "mutate_equivalent.toml"
OUT = ROOT / "runs" / "mutate"

MUTMUT_TIMEOUT_MULTIPLIER = 5.0
MUTMUT_TIMEOUT_CONSTANT = 2.0
TABLE_TIMEOUT_S = 120.0

KILLED, SURVIVED, NO_TESTS, TIMEOUT, SUSPICIOUS, NOT_CHECKED = (
    "killed", "survived", "no tests", "timeout", "suspicious", "not checked")
# mutmut 3.8.1's exit codes (mutmut.stats.status_by_exit_code): 1 a test failed, 3 pytest's
# internal error, 37 the type checker; 5/33 no test calls the function; 36, SIGXCPU (24, 152)
# and the SIGKILL after it (-9) the CPU-time limit; None not run yet. The rest (2 interrupted,
# 34 skipped, 35, -11 a crash) are suspicious: counted as not killed, to be looked at.
MUTMUT_STATUS = {1: KILLED, 3: KILLED, 37: KILLED, 0: SURVIVED, 5: NO_TESTS, 33: NO_TESTS,
                 36: TIMEOUT, 24: TIMEOUT, -24: TIMEOUT, 152: TIMEOUT, 255: TIMEOUT, -9: TIMEOUT,
                 None: NOT_CHECKED}
SCORE_COLUMNS = ("module", "mutants", "killed", "survived", "timeout", "equivalent", "score",
                 "date", "tool_version", "git_rev")


@dataclass(frozen=True)
class Mutant:
    """One mutant's outcome. `removed`/`added`: the changed source lines, as the diff shows
    them (what the equivalence key hashes); `line`: the first changed line in `file`."""

    module: str  # the table's key: a file, or a package folder ending in "/"
    file: str
    tool: str  # "mutmut" or "cosmic-ray"
    name: str
    status: str
    line: int | None = None
    removed: str = ""
    added: str = ""
    diff: str = ""

    @property
    def key(self) -> str:
        return equivalence_key(self.file, self.removed, self.added)


def equivalence_key(file: str, removed: str, added: str) -> str:
    """Stable across runs and line moves: the file and the text of the mutation (the lines it
    removes and adds, stripped), not mutmut's numbering or the line number."""
    text = "\n".join([file, *(s.strip() for s in removed.splitlines()), "->",
                      *(s.strip() for s in added.splitlines())])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- the two tables

def load_modules(path: Path = MODULES_FILE) -> dict[str, list[str]]:
    """module -> its test files, in the table's order."""
    data = tomllib.loads(path.read_text())
    table = {}
    for module, entry in data.get("modules", {}).items():
        tests = entry.get("tests")
        if not tests or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"{path.name}: module {module!r} needs a list of test files")
        table[module] = list(tests)
    if not table:
        raise ValueError(f"{path.name}: no [modules.\"...\"] entries")
    return table


def load_equivalent(path: Path = EQUIVALENT_FILE) -> dict[tuple[str, str], str]:
    """(file, key) -> the argument that the mutant is equivalent. Every entry must argue."""
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    found = {}
    for entry in entries:
        file, key, why = entry.get("file"), entry.get("key"), entry.get("why", "")
        if not file or not key:
            raise ValueError(f"{path.name}: an entry needs file and key: {entry}")
        if not str(why).strip():
            raise ValueError(f"{path.name}: {file} {key}: an equivalent mutant needs its "
                             "argument (why = \"...\")")
        found[(file, key)] = str(why).strip()
    return found


def select(table: dict[str, list[str]], wanted: list[str] | None) -> list[str]:
    if not wanted:
        return list(table)
    unknown = [m for m in wanted if m not in table]
    if unknown:
        raise ValueError(f"not in {MODULES_FILE.name}: {', '.join(unknown)} "
                         f"(known: {', '.join(table)})")
    return wanted


def files_of(module: str, root: Path = ROOT) -> list[str]:
    """The .py files a module stands for (a package: every file under it), relative paths."""
    if module.endswith("/"):
        return sorted(p.relative_to(root).as_posix() for p in (root / module).rglob("*.py"))
    return [module]


def slug(module: str) -> str:
    return re.sub(r"[^\w]+", "-", module.removesuffix(".py").strip("/")).strip("-")


# ---------------------------------------------------------------- reading results

def diff_change(diff: str) -> tuple[int | None, str, str]:
    """(old-side line number of the first removed line, the removed lines, the added lines)
    of a unified diff; the line is None when the diff removes nothing."""
    old, first = None, None
    removed, added = [], []
    for text in diff.splitlines():
        hunk = re.match(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@", text)
        if hunk:
            old = int(hunk.group(1))
            continue
        if old is None or text.startswith(("---", "+++")):
            continue
        if text.startswith("-"):
            removed.append(text[1:])
            first = old if first is None else first
            old += 1
        elif text.startswith("+"):
            added.append(text[1:])
        else:
            old += 1
    return first, "\n".join(removed), "\n".join(added)


def function_start(source: str, function_code: str) -> int | None:
    """The line in `source` where `function_code` (mutmut's copy of the unmutated function,
    a method dedented) begins: its lines, indentation aside, are source lines in a row. None
    when it is not there."""
    lines = [s.strip() for s in source.splitlines()]
    code = [s.strip() for s in function_code.strip("\n").splitlines()]
    for start in range(len(lines) - len(code) + 1):
        if lines[start:start + len(code)] == code:
            return start + 1
    return None


def mutmut_mutants(module: str, file: str, meta: dict, diffs: dict, source: str) -> list[Mutant]:
    """Mutants from mutmut's `mutants/<file>.meta` (its `exit_code_by_key`), with `diffs`:
    name -> {"diff": the function's unified diff, "function": the unmutated function}."""
    found = []
    for name, code in meta["exit_code_by_key"].items():
        status = MUTMUT_STATUS.get(code, SUSPICIOUS)
        entry = diffs.get(name)
        if entry is None:
            found.append(Mutant(module, file, "mutmut", name, status))
            continue
        offset, removed, added = diff_change(entry["diff"])
        start = function_start(source, entry["function"])
        line = start + offset - 1 if start is not None and offset is not None else None
        found.append(Mutant(module, file, "mutmut", name, status, line, removed, added,
                            entry["diff"]))
    return found


def cosmic_ray_mutants(module: str, dump: str) -> list[Mutant]:
    """Mutants from `cosmic-ray dump` (one JSON [work item, result] a line); skipped jobs (in
    functions: mutmut's) are left out; a timeout is cosmic-ray's "killed" with output
    "timeout"."""
    found = []
    for text in dump.splitlines():
        if not text.strip():
            continue
        item, result = json.loads(text)
        (mutation,) = item["mutations"]
        if result is None:
            status = NOT_CHECKED
        elif result["worker_outcome"] == "skipped":
            continue
        elif result["worker_outcome"] != "normal":
            status = SUSPICIOUS
        elif result["test_outcome"] == "survived":
            status = SURVIVED
        elif result.get("output") == "timeout":
            status = TIMEOUT
        else:
            status = KILLED  # a failing test, or "incompetent" (the mutant does not import)
        diff = (result or {}).get("diff") or ""
        line, removed, added = diff_change(diff)
        found.append(Mutant(module, mutation["module_path"], "cosmic-ray",
                            f"{mutation['operator_name']}#{mutation['occurrence']}", status,
                            line if line is not None else mutation["start_pos"][0],
                            removed, added, diff))
    return found


def outside_functions(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The (start, end) positions (line 1-based, column 0-based) that the tables pass leaves
    alone: every function and method (mutmut's) and every annotation (not evaluated:
    equivalent)."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
        elif isinstance(node, ast.AnnAssign):
            a = node.annotation
            spans.append(((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)))
    return spans


def in_spans(position: tuple[int, int], spans) -> bool:
    return any(start <= tuple(position) < end for start, end in spans)


# ---------------------------------------------------------------- scores and survivors

def tally(mutants: list[Mutant], equivalent: dict[tuple[str, str], str]) -> dict:
    """Counts for scores.csv: a survivor listed as equivalent counts as equivalent; every
    mutant not killed, timed out or equivalent (no test reached it, suspicious, not run yet)
    counts as survived. score = killed / (mutants - equivalent)."""
    counts = {"mutants": len(mutants), KILLED: 0, SURVIVED: 0, TIMEOUT: 0, "equivalent": 0}
    for m in mutants:
        if m.status == KILLED:
            counts[KILLED] += 1
        elif m.status == TIMEOUT:
            counts[TIMEOUT] += 1
        elif (m.file, m.key) in equivalent:
            counts["equivalent"] += 1
        else:
            counts[SURVIVED] += 1
    denominator = counts["mutants"] - counts["equivalent"]
    counts["score"] = round(counts[KILLED] / denominator, 4) if denominator else None
    return counts


def score_rows(runs: list[dict], equivalent) -> list[dict]:
    rows = []
    for run in runs:
        mutants = [Mutant(**m) for m in run["mutants"]]
        counts = tally(mutants, equivalent)
        rows.append({"module": run["module"], **counts, "date": run["date"],
                     "tool_version": run["tool_version"], "git_rev": run["git_rev"]})
    return rows


def write_scores(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "score": "" if row["score"] is None else row["score"]})


def survivors_markdown(runs: list[dict], equivalent) -> str:
    lines = ["# Surviving mutants", "",
             "Written by `scripts/mutate.py` from `runs/mutate/*/results.json`. Each entry: "
             "file:line, status, tool and mutant, and the key that marks it equivalent in "
             "`scripts/mutate_equivalent.toml` (only with an argument).", ""]
    used = set()
    for run in runs:
        mutants = [Mutant(**m) for m in run["mutants"]]
        counts = tally(mutants, equivalent)
        score = "-" if counts["score"] is None else f"{100 * counts['score']:.1f}%"
        lines += [f"## {run['module']}: {score}", "",
                  f"{counts[KILLED]} killed of {counts['mutants']} mutants, "
                  f"{counts[SURVIVED]} survived, {counts[TIMEOUT]} timed out, "
                  f"{counts['equivalent']} equivalent ({run['date']}, {run['tool_version']}, "
                  f"{run['git_rev']}, {run['seconds']:.0f} s).", ""]
        if run.get("retest"):
            again = run["retest"]
            lines += [f"Killed ones kept from {again['git_rev']} ({again['date']}); the rest "
                      f"tested again in {again['seconds']:.0f} s"
                      + (f", after changes outside the module: {', '.join(again['changed'])}"
                         if again["changed"] else "") + ".", ""]
        left = [m for m in mutants if m.status not in (KILLED, TIMEOUT)]
        for m in sorted(left, key=lambda m: (m.file, m.line or 0, m.name)):
            why = equivalent.get((m.file, m.key))
            if why:
                used.add((m.file, m.key))
            status = f"equivalent: {why}" if why else m.status
            if m.status == NO_TESTS:
                status += " (no listed test calls this function)"
            lines += [f"### {m.file}:{m.line if m.line is not None else '?'}: {status}", "",
                      f"{m.tool} `{m.name}`, key `{m.key}`", ""]
            if m.diff:
                lines += ["```diff", m.diff.strip("\n"), "```", ""]
    stale = sorted(set(equivalent) - used)
    if stale:
        lines += ["## Equivalent entries that match no survivor", "",
                  "Killed now, or the code moved on: remove them from "
                  "`scripts/mutate_equivalent.toml`.", ""]
        lines += [f"- {file} `{key}`: {equivalent[(file, key)]}" for file, key in stale]
        lines.append("")
    return "\n".join(lines)


def stored_runs(table: dict[str, list[str]]) -> list[dict]:
    runs = []
    for module in table:
        path = OUT / slug(module) / "results.json"
        if path.exists():
            runs.append(json.loads(path.read_text()))
    return runs


def write_reports(table) -> list[dict]:
    equivalent = load_equivalent()
    runs = stored_runs(table)
    rows = score_rows(runs, equivalent)
    write_scores(OUT / "scores.csv", rows)
    (OUT / "survivors.md").write_text(survivors_markdown(runs, equivalent))
    return rows


# ---------------------------------------------------------------- running the tools

def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return [p for p in out.splitlines() if p and not p.startswith("runs/")
            and (ROOT / p).is_file()]


def tree_stamp(files: list[str], module: str, tests: list[str], tables: bool) -> dict:
    """What a run's results depend on: the module, its tests, and the content of every file
    of the tree but this script's own, the docs and the Markdown (so editing the equivalent
    list resumes)."""
    stamp = {"run": json.dumps([module, tests, tables])}
    for p in sorted(files):
        if not (p.startswith(("scripts/mutate", "docs/")) or p.endswith(".md")):
            stamp[p] = hashlib.sha256((ROOT / p).read_bytes()).hexdigest()
    return stamp


def changed(old: dict, new: dict) -> list[str]:
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def retest_plan(old: dict, new: dict, module_files: list[str],
                force: bool = False) -> dict | None:
    """Whether a run may keep what the last complete one killed and test again only the
    rest: the same module and tables pass, the module's own files unchanged, the old tests
    still listed. Without `force`, nothing else may have changed but test files added
    (tests/test_*.py, new to the tree): the old tests then fail every mutant they failed.
    With `force` other changes are allowed and named in `changed`, since a change outside
    the module could in principle revive a killed mutant. None: start over."""
    old_module, old_tests, old_tables = json.loads(old["run"])
    new_module, new_tests, new_tables = json.loads(new["run"])
    if (old_module, old_tables) != (new_module, new_tables) or not set(old_tests) <= set(
            new_tests):
        return None
    diff = [k for k in changed(old, new) if k != "run"]
    if any(k in module_files for k in diff):
        return None
    added = [k for k in diff if k not in old and re.fullmatch(r"tests/test_\w+\.py", k)]
    others = [k for k in diff if k not in added]
    if others and not force:
        return None
    return {"added": added, "changed": others}


def reset_not_killed(codes: dict[str, int | None]) -> list[str]:
    """mutmut's mutants (name -> exit code) to run again: all but the killed (a timeout is
    no kill: a new test may fail it in time)."""
    return sorted(n for n, c in codes.items() if MUTMUT_STATUS.get(c, SUSPICIOUS) != KILLED)


def merge_codes(old: dict[str, int | None], new: dict[str, int | None],
                retested: list[str]) -> dict[str, int | None]:
    """The exit codes after a retest: the new run's for the mutants it ran again (and for
    any the old run lacked), the old run's for the rest (mutmut resets every result when its
    test selection changes)."""
    kept = set(retested)
    merged = {n: (c if n in kept or n not in old else old[n]) for n, c in new.items()}
    return merged


def sync_tree(files: list[str], tree: Path) -> None:
    """Copy the working tree's files into `tree` where they differ (this also undoes a file
    that an interrupted tables pass left mutated)."""
    for p in files:
        src, dst = ROOT / p, tree / p
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def mutmut_config(module: str, tests: list[str]) -> str:
    pattern = module + "*" if module.endswith("/") else module
    return (
        "\n\n# written by scripts/mutate.py in its scratch copy\n[tool.mutmut]\n"
        f'source_paths = ["analysis"]\n'
        f"only_mutate = {json.dumps([pattern])}\n"
        'also_copy = ["charlm", "bench", "results", "scripts", "examples", "docs", '
        '"README.md", "Makefile", ".gitignore"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        f"timeout_multiplier = {MUTMUT_TIMEOUT_MULTIPLIER}\n"
        f"timeout_constant = {MUTMUT_TIMEOUT_CONSTANT}\n"
        'process_isolation = "forkserver"\n'  # torch is not fork-safe
        "use_git_change_detection = false\n"
    )


def child_env() -> dict:
    env = dict(os.environ)
    # PYTHONPATH=$PWD would put the real tree ahead of the mutated copy
    env.pop("PYTHONPATH", None)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{name} is not installed next to {sys.executable}: "
                         "make mutate installs the mutate extra")
    return str(path)


DIFF_HELPER = r"""
import json, sys
import libcst as cst
from mutmut.mutation.diff_apply import (get_diff_for_mutant, read_functions_from_index,
                                        read_mutants_module, read_original_function)
path, names = sys.argv[1], json.loads(sys.stdin.read())
out, module = {}, None
for name in names:
    functions = read_functions_from_index(name, path)
    if functions is None:
        module = module or read_mutants_module(path)
        orig = read_original_function(module, name)
    else:
        orig = functions[0]
    out[name] = {"diff": get_diff_for_mutant(name, path=path),
                 "function": cst.Module([orig]).code.strip()}
print(json.dumps(out))
"""


def run_mutmut(module: str, tests: list[str], tree: Path, log,
               retest: dict | None = None) -> list[Mutant]:
    """mutmut on every mutant not run yet; with `retest` (file -> the last run's exit codes)
    only on those the last run did not kill, keeping its verdicts for the rest."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(pyproject + mutmut_config(module, tests))
    names = None
    if retest is not None:
        names = [n for codes in retest.values() for n in reset_not_killed(codes)]
    if names != []:
        rc = subprocess.run([tool("mutmut"), "run", "--max-children", "1", *(names or [])],
                            cwd=tree, env=child_env(), stdout=log,
                            stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise RuntimeError(f"mutmut exited {rc}: see {log.name}")
    found = []
    for file in files_of(module, tree):
        meta_path = tree / "mutants" / (file + ".meta")
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        if retest is not None and file in retest:
            meta["exit_code_by_key"] = merge_codes(retest[file], meta["exit_code_by_key"],
                                                   names or [])
            meta_path.write_text(json.dumps(meta, indent=4))
        names = [n for n, code in meta["exit_code_by_key"].items()
                 if MUTMUT_STATUS.get(code, SUSPICIOUS) not in (KILLED, TIMEOUT)]
        helper = subprocess.run([sys.executable, "-c", DIFF_HELPER, file], cwd=tree,
                                env=child_env(), input=json.dumps(names), text=True,
                                capture_output=True)
        if helper.returncode != 0:
            raise RuntimeError(f"reading mutmut's diffs of {file}: {helper.stderr[-2000:]}")
        diffs = json.loads(helper.stdout)
        found += mutmut_mutants(module, file, meta, diffs, (tree / file).read_text())
    return found


def run_tables(module: str, tests: list[str], tree: Path, log) -> list[Mutant]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    scratch = tree.parent
    config, session = scratch / "cosmic-ray.toml", scratch / "cosmic-ray.sqlite"
    command = " ".join([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                        *tests])
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module.rstrip('/'))}\n"
        f"timeout = {TABLE_TIMEOUT_S}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n")
    if not session.exists():
        subprocess.run([tool("cosmic-ray"), "init", str(config), str(session)], cwd=tree,
                       env=child_env(), stdout=log, stderr=subprocess.STDOUT, check=True)
        spans = {f: outside_functions((tree / f).read_text()) for f in files_of(module, tree)}
        with use_db(str(session), WorkDB.Mode.open) as db:
            skip = [item.job_id for item in db.pending_work_items
                    if in_spans(item.mutations[0].start_pos,
                                spans.get(Path(item.mutations[0].module_path).as_posix(), []))]
            db.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    try:
        subprocess.run([tool("cosmic-ray"), "exec", str(config), str(session)], cwd=tree,
                       env=child_env(), stdout=log, stderr=subprocess.STDOUT, check=True)
    finally:
        sync_tree(files_of(module, ROOT), tree)  # cosmic-ray restores it; be sure
    dump = subprocess.run([tool("cosmic-ray"), "dump", str(session)], cwd=tree,
                          env=child_env(), capture_output=True, text=True, check=True).stdout
    return cosmic_ray_mutants(module, dump)


def git_rev() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return rev + ("-dirty" if dirty else "")


def versions(tables: bool) -> str:
    from importlib.metadata import version

    text = f"mutmut {version('mutmut')}"
    return text + (f" + cosmic-ray {version('cosmic-ray')}" if tables else "")


def run_module(module: str, tests: list[str], tables: bool, retest: bool = False,
               fresh: bool = False) -> dict:
    scratch = OUT / slug(module)
    tree = scratch / "tree"
    files = tracked_files()
    stamp = tree_stamp(files, module, tests, tables)
    stamp_file = scratch / "stamp.json"
    old = json.loads(stamp_file.read_text()) if stamp_file.exists() else None
    retest_file = scratch / "retest.json"
    plan = None
    if fresh and scratch.exists():
        print(f"mutate: {module}: --fresh: starting over")
        shutil.rmtree(scratch)
        old = None
    if old is not None and old != stamp and (scratch / "results.json").exists():
        plan = retest_plan(old, stamp, files_of(module, ROOT), force=retest)
        forced = plan or retest_plan(old, stamp, files_of(module, ROOT), force=True)
        if plan is None and forced is not None:
            # only files outside the module (or an old test) changed: starting over would
            # throw away a complete run that a retest could keep; the user decides
            shown = forced["changed"]
            raise RuntimeError(
                f"changed since the last complete run, outside the module: "
                f"{', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''}; --retest keeps "
                f"that run's kills and tests again the rest, --fresh starts over")
    if old == stamp:
        print(f"mutate: {module}: the tree is unchanged since the last run: resuming")
    elif plan is not None:
        previous = json.loads((scratch / "results.json").read_text())
        start_retest(scratch, tree, module, previous, plan)
        print(f"mutate: {module}: tests added: {', '.join(plan['added']) or 'none'}"
              + (f"; changed outside the module (--retest): {', '.join(plan['changed'])}"
                 if plan["changed"] else "")
              + f": testing again what {previous['git_rev']} did not kill", flush=True)
    elif scratch.exists():
        what = changed(old, stamp) if old else ["no stamp"]
        print(f"mutate: {module}: changed since the last run ({', '.join(what[:5])}"
              f"{', ...' if len(what) > 5 else ''}): starting over")
        shutil.rmtree(scratch)
    tree.mkdir(parents=True, exist_ok=True)
    sync_tree(files, tree)
    rev = git_rev()  # what was copied: a commit made while the run goes is not what it measured
    stamp_file.write_text(json.dumps(stamp, indent=0))
    start = time.monotonic()
    with (scratch / "run.log").open("a") as log:
        print(f"mutate: {module}: mutmut on {', '.join(tests)} (log {log.name})", flush=True)
        pending = json.loads(retest_file.read_text()) if retest_file.exists() else None
        mutants = run_mutmut(module, tests, tree, log,
                             retest=pending["codes"] if pending else None)
        if tables:
            print(f"mutate: {module}: the tables pass (cosmic-ray)", flush=True)
            mutants += run_tables(module, tests, tree, log)
    seconds = round(time.monotonic() - start, 1)
    run = {"module": module, "tests": tests,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
           "tool_version": versions(tables), "git_rev": rev, "seconds": seconds,
           "mutants": [asdict(m) for m in mutants]}
    if pending:
        run["retest"] = {**pending["of"], "seconds": seconds}
        run["seconds"] = round(pending["of"]["seconds"] + seconds, 1)
    (scratch / "results.json").write_text(json.dumps(run, indent=1))
    retest_file.unlink(missing_ok=True)
    return run


def start_retest(scratch: Path, tree: Path, module: str, previous: dict, plan: dict) -> None:
    """Prepare a retest (retest_plan): keep mutmut's last verdicts in retest.json (mutmut
    resets them all when its test selection changes) and drop the tables pass's results for
    what survived, so that `cosmic-ray exec` runs those again. An interrupted retest
    resumes from retest.json."""
    retest_file, codes = scratch / "retest.json", {}
    if retest_file.exists():  # a retest stopped part way: its verdicts to keep still hold
        codes = json.loads(retest_file.read_text())["codes"]
    for file in [] if codes else files_of(module, tree):
        meta_path = tree / "mutants" / (file + ".meta")
        if meta_path.exists():
            codes[file] = json.loads(meta_path.read_text())["exit_code_by_key"]
    of = {"git_rev": previous["git_rev"], "date": previous["date"],
          "seconds": previous["seconds"], **plan}
    retest_file.write_text(json.dumps({"of": of, "codes": codes}))
    session = scratch / "cosmic-ray.sqlite"
    if session.exists():
        import sqlite3

        with sqlite3.connect(session) as db:  # cosmic-ray's own schema (work_db.py)
            db.execute("DELETE FROM work_results WHERE worker_outcome NOT IN "
                       "('NORMAL', 'SKIPPED') OR test_outcome = 'SURVIVED' "
                       "OR output = 'timeout'")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="+", metavar="MODULE",
                    help="the modules to mutate, as the table names them (default: all)")
    ap.add_argument("--list", action="store_true", help="print the modules and their tests")
    ap.add_argument("--no-tables", action="store_true",
                    help="mutmut only: skip the tables pass (cosmic-ray)")
    again = ap.add_mutually_exclusive_group()
    again.add_argument("--retest", action="store_true",
                       help="keep the last complete run's kills even when files outside the "
                            "module changed (named in results.json), and test again only "
                            "the rest")
    again.add_argument("--fresh", action="store_true",
                       help="start the modules over, throwing away their last run's results")
    ap.add_argument("--report", action="store_true",
                    help="only rewrite scores.csv and survivors.md from the stored results "
                         "(after editing scripts/mutate_equivalent.toml)")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    table = load_modules()
    try:
        modules = select(table, args.modules)
    except ValueError as exc:
        parser().error(str(exc))
    if args.list:
        for module in modules:
            print(f"{module}: {' '.join(table[module])}")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.report:
        for module in modules:
            try:
                run = run_module(module, table[module], tables=not args.no_tables,
                                 retest=args.retest, fresh=args.fresh)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"mutate: {module}: failed: {exc}", file=sys.stderr)
                failed.append(module)
                continue
            print(f"mutate: {module}: {len(run['mutants'])} mutants in {run['seconds']:.0f} s")
            write_reports(table)  # after each module: an interrupted run keeps what it did
    for row in write_reports(table):
        if row["module"] in modules:
            score = "-" if row["score"] is None else f"{100 * row['score']:.1f}%"
            print(f"{row['module']}: {score} ({row['killed']} of {row['mutants']} killed, "
                  f"{row['survived']} survived, {row['timeout']} timeout, "
                  f"{row['equivalent']} equivalent)")
    print(f"mutate: wrote {(OUT / 'scores.csv').relative_to(ROOT)} and "
          f"{(OUT / 'survivors.md').relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
