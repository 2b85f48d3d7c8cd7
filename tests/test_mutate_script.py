"""scripts/mutate.py's pure parts: the score with the equivalent list, the equivalence key,
reading mutmut's .meta and diffs and cosmic-ray's dump (hand-written samples), the tables
pass's filter, and the committed module table. No mutation tool runs here."""

import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutate_script", ROOT / "scripts" / "mutate.py")
mutate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutate)
Mutant = mutate.Mutant


def mutant(status, removed="x = 1", added="x = 2", file="analysis/x.py", name="m"):
    return Mutant("analysis/x.py", file, "mutmut", name, status, 3, removed, added)


def test_score_leaves_equivalent_survivors_out_of_the_denominator():
    mutants = ([mutant("killed", name=f"k{i}") for i in range(6)]
               + [mutant("timeout"), mutant("survived", "a < b", "a <= b"),
                  mutant("survived", "a + b", "a - b"), mutant("no tests", "f(x)", "f(None)")])
    equivalent = {("analysis/x.py", mutate.equivalence_key("analysis/x.py", "a < b", "a <= b")):
                  "a == b never happens here"}
    counts = mutate.tally(mutants, equivalent)
    # 10 mutants: 6 killed, 1 timeout, 1 equivalent, 2 survived (one reached by no test);
    # score = 6 / (10 - 1) = 0.6667 (the timeout is not a kill)
    assert counts == {"mutants": 10, "killed": 6, "survived": 2, "timeout": 1,
                      "equivalent": 1, "score": 0.6667}


def test_an_equivalent_entry_never_turns_a_killed_mutant_into_an_equivalent_one():
    killed = mutant("killed", "a < b", "a <= b")
    equivalent = {("analysis/x.py", killed.key): "wrong: the tests tell them apart"}
    # 1 mutant, killed: 1 / (1 - 0) = 1.0
    assert mutate.tally([killed], equivalent) == {
        "mutants": 1, "killed": 1, "survived": 0, "timeout": 0, "equivalent": 0, "score": 1.0}


def test_no_mutants_have_no_score():
    assert mutate.tally([], {})["score"] is None


def test_the_equivalence_key_is_the_mutation_text_not_its_place():
    key = mutate.equivalence_key("analysis/x.py", "    if n < 2:", "    if n <= 2:")
    assert key == mutate.equivalence_key("analysis/x.py", "if n < 2:  ", "        if n <= 2:")
    assert key != mutate.equivalence_key("analysis/y.py", "if n < 2:", "if n <= 2:")
    assert key != mutate.equivalence_key("analysis/x.py", "if n < 2:", "if n > 2:")
    assert key != mutate.equivalence_key("analysis/x.py", "if n <= 2:", "if n < 2:")
    assert len(key) == 12 and int(key, 16) >= 0


MUTMUT_DIFF = """--- analysis/x.py
+++ analysis/x.py
@@ -2,6 +2,6 @@
     a = 1
     b = 2
-    return a + b
+    return a - b"""


def test_diff_change_finds_the_first_removed_line_and_the_changed_text():
    # the hunk starts at old line 2: context 2, 3, then the removed line is 4
    assert mutate.diff_change(MUTMUT_DIFF) == (4, "    return a + b", "    return a - b")
    # only an addition (a decorator's removal shows the other way round): no removed line
    assert mutate.diff_change("@@ -5,2 +5,3 @@\n x\n+y\n z") == (None, "", "y")


SOURCE = '''"""A module."""

LIMIT = 3
def f():
    a = 1
    b = 2
    return a + b
'''


def test_mutmut_meta_gives_each_mutant_its_status_and_its_line_in_the_file():
    meta = json.loads("""{
        "exit_code_by_key": {
            "analysis.x.x_f__mutmut_1": 1, "analysis.x.x_f__mutmut_2": 0,
            "analysis.x.x_f__mutmut_3": 33, "analysis.x.x_f__mutmut_4": null,
            "analysis.x.x_f__mutmut_5": -24, "analysis.x.x_f__mutmut_6": 35,
            "analysis.x.x_f__mutmut_7": 3, "analysis.x.x_f__mutmut_8": -9
        },
        "hash_by_function_name": {}, "type_check_error_by_key": {},
        "durations_by_key": {}, "estimated_durations_by_key": {}}""")
    function = "def f():\n    a = 1\n    b = 2\n    return a + b"
    diffs = {"analysis.x.x_f__mutmut_2": {"diff": MUTMUT_DIFF, "function": function}}
    found = mutate.mutmut_mutants("analysis/x.py", "analysis/x.py", meta, diffs, SOURCE)
    assert [m.status for m in found] == ["killed", "survived", "no tests", "not checked",
                                         "timeout", "suspicious", "killed", "timeout"]
    survivor = found[1]
    # f's def is line 4 of SOURCE; the change is line 4 of the function: 4 + 4 - 1 = 7
    assert survivor.line == 7 and SOURCE.splitlines()[6] == "    return a + b"
    assert (survivor.removed, survivor.added) == ("    return a + b", "    return a - b")
    assert found[0].line is None and found[0].diff == ""


def test_a_method_is_found_whatever_its_indentation():
    source = "class A:\n    x = 1\n\n    def m(self):\n        return self.x\n"
    # mutmut shows a method dedented; it starts at the def, line 4
    assert mutate.function_start(source, "def m(self):\n    return self.x") == 4
    assert mutate.function_start(source, "def m(self):\n    return 2") is None


def dump_line(job, operator, row, result):
    item = {"job_id": job, "mutations": [{
        "module_path": "analysis/x.py", "operator_name": operator, "occurrence": 0,
        "start_pos": [row, 8], "end_pos": [row, 9], "operator_args": {},
        "definition_name": None}]}
    return json.dumps([item, result])


CR_DIFF = ("--- mutation diff ---\n--- a/analysis/x.py\n+++ b/analysis/x.py\n"
           "@@ -1,5 +1,5 @@\n \"\"\"A module.\"\"\"\n \n-LIMIT = 3\n+LIMIT = 4\n def f():")


def test_cosmic_ray_dump_gives_statuses_and_drops_the_skipped_jobs():
    dump = "\n".join([
        dump_line("a", "core/NumberReplacer", 3, {"worker_outcome": "normal", "output": "",
                                                  "test_outcome": "survived", "diff": CR_DIFF}),
        dump_line("b", "core/NumberReplacer", 3, {"worker_outcome": "normal", "output": "F",
                                                  "test_outcome": "killed", "diff": CR_DIFF}),
        dump_line("c", "core/AddNot", 3, {"worker_outcome": "normal", "output": "timeout",
                                          "test_outcome": "killed", "diff": None}),
        dump_line("d", "core/AddNot", 6, {"worker_outcome": "skipped", "output": None,
                                          "test_outcome": None, "diff": None}),
        dump_line("e", "core/AddNot", 3, None),
        dump_line("f", "core/AddNot", 3, {"worker_outcome": "exception", "output": "boom",
                                          "test_outcome": None, "diff": None}),
        ""])
    found = mutate.cosmic_ray_mutants("analysis/x.py", dump)
    assert [m.status for m in found] == ["survived", "killed", "timeout", "not checked",
                                         "suspicious"]
    first = found[0]
    # the hunk starts at line 1: context 1, 2, removed line 3
    assert (first.line, first.removed, first.added) == (3, "LIMIT = 3", "LIMIT = 4")
    assert first.tool == "cosmic-ray" and first.name == "core/NumberReplacer#0"
    assert found[2].line == 3  # no diff: the start position's row


def test_the_tables_pass_skips_functions_and_annotations_only():
    source = ("RATE = 2\n"                      # line 1
              "class C:\n"                      # line 2
              "    size: int | None = 5\n"      # line 3: annotation cols 10-20, value col 23
              "    def m(self):\n"              # line 4
              "        return 7\n"              # line 5
              "@decorate(3)\n"                  # line 6
              "def g(x=1):\n"                   # line 7
              "    return x * 2\n")             # line 8
    spans = mutate.outside_functions(source)
    assert not mutate.in_spans((1, 7), spans)    # the module constant 2
    assert not mutate.in_spans((3, 23), spans)   # the class attribute's value 5
    assert mutate.in_spans((3, 14), spans)       # the | of the annotation
    assert mutate.in_spans((5, 15), spans)       # 7 in a method
    assert not mutate.in_spans((6, 10), spans)   # the decorator's 3
    assert mutate.in_spans((7, 8), spans)        # a default (mutmut mutates those)
    assert mutate.in_spans((8, 15), spans)       # 2 in a function


def test_survivors_markdown_marks_equivalents_and_lists_stale_entries():
    survivor = mutant("survived", "a < b", "a <= b")
    other = mutant("survived", "a + b", "a - b")
    killed = mutant("killed", "c = 1", "c = 2")
    run = {"module": "analysis/x.py", "date": "2025-01-01", "tool_version": "mutmut 3.8.1",
           "git_rev": "abc1234", "seconds": 12.0,
           "mutants": [asdict(m) for m in (survivor, other, killed)]}
    equivalent = {("analysis/x.py", survivor.key): "a == b never happens",
                  ("analysis/x.py", "000000000000"): "an old one"}
    text = mutate.survivors_markdown([run], equivalent)
    assert "## analysis/x.py: 50.0%" in text  # 1 killed / (3 - 1 equivalent)
    assert "### analysis/x.py:3: equivalent: a == b never happens" in text
    assert "### analysis/x.py:3: survived" in text and other.key in text
    assert killed.key not in text  # a killed mutant is no survivor
    assert "000000000000`: an old one" in text.split("match no survivor")[1]
    assert survivor.key not in text.split("match no survivor")[1]


def test_equivalent_entries_need_an_argument(tmp_path):
    path = tmp_path / "eq.toml"
    path.write_text('[[equivalent]]\nfile = "analysis/x.py"\nkey = "abc"\nwhy = "  "\n')
    with pytest.raises(ValueError, match="argument"):
        mutate.load_equivalent(path)
    path.write_text('[[equivalent]]\nfile = "analysis/x.py"\nkey = "abc"\nwhy = "dead code"\n')
    assert mutate.load_equivalent(path) == {("analysis/x.py", "abc"): "dead code"}
    assert mutate.load_equivalent(tmp_path / "absent.toml") == {}


def test_a_module_without_tests_is_refused(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[modules."analysis/x.py"]\ntests = []\n')
    with pytest.raises(ValueError, match="list of test files"):
        mutate.load_modules(path)
    with pytest.raises(ValueError, match="not in"):
        mutate.select({"analysis/x.py": ["tests/t.py"]}, ["analysis/y.py"])


def test_the_committed_table_names_the_modules_and_test_files_that_exist():
    table = mutate.load_modules()
    assert set(table) == {
        "analysis/formulas.py", "analysis/depth_formulas.py", "analysis/bytes_formulas.py",
        "analysis/counters/", "analysis/trace/", "analysis/depth.py", "analysis/timing.py",
        "analysis/calibrate.py", "analysis/predict.py", "analysis/checker.py",
        "analysis/expr_parser.py", "analysis/report/summaries.py",
        "analysis/report/render.py", "analysis/sweep.py", "analysis/grids.py"}
    for module, tests in table.items():
        assert (ROOT / module).exists(), module
        assert mutate.files_of(module), module
        for test in tests:
            assert (ROOT / test).is_file() and test != "tests/test_layers.py", (module, test)
    assert mutate.files_of("analysis/counters/") == [
        "analysis/counters/__init__.py", "analysis/counters/base.py",
        "analysis/counters/fvcore.py"]
    mutate.load_equivalent()  # the committed list parses, every entry argued


def test_the_module_slug_names_one_folder_per_module():
    assert mutate.slug("analysis/timing.py") == "analysis-timing"
    assert mutate.slug("analysis/counters/") == "analysis-counters"
    assert mutate.slug("analysis/report/render.py") == "analysis-report-render"


def test_the_stamp_depends_on_content_not_on_the_order_git_lists_files_in():
    files = ["pyproject.toml", "Makefile", "scripts/mutate.py", "docs/developing.md",
             "README.md"]
    stamp = mutate.tree_stamp(files, "analysis/x.py", ["tests/t.py"], True)
    assert stamp == mutate.tree_stamp(files[::-1], "analysis/x.py", ["tests/t.py"], True)
    # this script, the docs and the Markdown never restart a run
    assert set(stamp) == {"run", "pyproject.toml", "Makefile"}
    other = mutate.tree_stamp(files, "analysis/x.py", ["tests/u.py"], True)
    assert mutate.changed(stamp, other) == ["run"]
    assert mutate.changed(stamp, {**stamp, "Makefile": "0"}) == ["Makefile"]


def _stamp(tests=("tests/test_a.py",), tables=True, **files):
    base = {"analysis/x.py": "1", "analysis/y.py": "2", "tests/test_a.py": "3"}
    return {"run": json.dumps(["analysis/x.py", list(tests), tables]), **base, **files}


def test_a_retest_keeps_the_kills_only_when_test_files_were_added():
    old = _stamp()
    new = _stamp(tests=("tests/test_a.py", "tests/test_b.py"), **{"tests/test_b.py": "4"})
    plan = mutate.retest_plan(old, new, ["analysis/x.py"])
    assert plan == {"added": ["tests/test_b.py"], "changed": []}
    # a new test file that the table does not list yet is still only an added test
    assert mutate.retest_plan(old, _stamp(**{"tests/test_c.py": "5"}),
                              ["analysis/x.py"]) == {"added": ["tests/test_c.py"],
                                                     "changed": []}


@pytest.mark.parametrize("new", [
    _stamp(**{"analysis/y.py": "9"}),            # another module changed
    _stamp(**{"tests/test_a.py": "9"}),          # an old test edited: it may have weakened
    _stamp(**{"tests/conftest.py": "9"}),        # added, but not a test file
    {k: v for k, v in _stamp().items() if k != "analysis/y.py"},  # a file removed
])
def test_other_changes_start_over_unless_forced_and_then_are_named(new):
    old = _stamp()
    assert mutate.retest_plan(old, new, ["analysis/x.py"]) is None
    plan = mutate.retest_plan(old, new, ["analysis/x.py"], force=True)
    assert plan["added"] == [] and plan["changed"] == mutate.changed(old, new)
    assert plan["changed"] and "run" not in plan["changed"]


@pytest.mark.parametrize("new", [
    _stamp(**{"analysis/x.py": "9"}),            # the module itself: other mutants
    _stamp(tests=()),                            # an old test no longer listed
    _stamp(tables=False),                        # the tables pass left out
])
def test_a_changed_module_or_fewer_tests_always_start_over(new):
    for force in (False, True):
        assert mutate.retest_plan(_stamp(), new, ["analysis/x.py"], force=force) is None


def test_a_retest_runs_again_all_but_the_killed():
    codes = {"k": 1, "s": 0, "t": 36, "n": 33, "u": None, "crash": -11, "k3": 3, "t9": -9,
             "typed": 37}
    assert mutate.reset_not_killed(codes) == ["crash", "n", "s", "t", "t9", "u"]


def test_merged_codes_take_the_retested_from_the_new_run_and_the_rest_from_the_old():
    old = {"a": 1, "b": 0, "c": None}
    new = {"a": None, "b": 1, "c": 0, "d": 0}  # mutmut reset "a"; "d" is new to it
    assert mutate.merge_codes(old, new, ["b", "c"]) == {"a": 1, "b": 1, "c": 0, "d": 0}


def _last_run(tmp_path, monkeypatch, new_stamp):
    """A module's scratch folder holding a complete run's stamp and results, and the tree
    as `new_stamp` describes it now; the mutation tools replaced by stubs."""
    monkeypatch.setattr(mutate, "OUT", tmp_path)
    monkeypatch.setattr(mutate, "tracked_files", lambda: ["analysis/x.py"])
    monkeypatch.setattr(mutate, "tree_stamp", lambda files, module, tests, tables: new_stamp)
    monkeypatch.setattr(mutate, "files_of", lambda module, root=None: ["analysis/x.py"])
    monkeypatch.setattr(mutate, "sync_tree", lambda files, tree: None)
    monkeypatch.setattr(mutate, "git_rev", lambda: "abc1234")
    monkeypatch.setattr(mutate, "versions", lambda tables: "stub")  # no mutmut in CI
    ran = []
    monkeypatch.setattr(mutate, "run_mutmut",
                        lambda module, tests, tree, log, retest=None: ran.append(retest) or [])
    scratch = tmp_path / mutate.slug("analysis/x.py")
    scratch.mkdir()
    (scratch / "stamp.json").write_text(json.dumps(_stamp()))
    (scratch / "results.json").write_text(json.dumps({"git_rev": "old", "mutants": []}))
    return scratch, ran


def test_a_change_outside_the_module_keeps_the_last_run_until_the_user_chooses(
        tmp_path, monkeypatch):
    scratch, ran = _last_run(tmp_path, monkeypatch, _stamp(**{"analysis/y.py": "9"}))
    with pytest.raises(RuntimeError, match=r"outside the module: analysis/y.py; --retest "
                                           r"keeps that run's kills.*--fresh starts over"):
        mutate.run_module("analysis/x.py", ["tests/test_a.py"], tables=False)
    assert json.loads((scratch / "results.json").read_text())["git_rev"] == "old"
    assert ran == []  # nothing ran, nothing was thrown away
    # --fresh: the old results go, a new run is made
    run = mutate.run_module("analysis/x.py", ["tests/test_a.py"], tables=False, fresh=True)
    assert ran == [None] and run["git_rev"] == "abc1234"
    assert json.loads((scratch / "results.json").read_text())["git_rev"] == "abc1234"


def test_a_changed_module_starts_over_without_asking(tmp_path, monkeypatch):
    scratch, ran = _last_run(tmp_path, monkeypatch, _stamp(**{"analysis/x.py": "9"}))
    run = mutate.run_module("analysis/x.py", ["tests/test_a.py"], tables=False)
    assert ran == [None] and run["git_rev"] == "abc1234"
