"""The import layers of charlm/ and analysis/: every module imports only modules of its own
layer or a lower one, and no two modules import each other, directly or round a loop.

Bottom to top:

- L0 `charlm` library: models, data, train, steps, sampling, io, validate, progress,
  attention, gru_explorer, experiments. Imports no `analysis` module, not even in a function.
- L1 `analysis` data and formulas: expr_parser, formulas, depth_formulas, bytes_formulas,
  architectures (the table sits on the formula modules: they never import it), env
  (`device_name`), verdicts, parallel.
- L2 quantities, runners, traces, counters: quantities (what is measured and the callables
  that run it), grids (bench grid files), optrace, depth, counters, the `analysis.trace`
  subpackage, workloads (bench workloads, on top of the counters) and factories (any
  model at any sizes: `charlm profile` and `charlm derive` take one).
- L3 timing, calibrate (the fitted runtime model), predict.
- L4 the analyses over them: reconcile, checker, questions, gru_exercises, flops_api, derive,
  submissions (answers read from notebooks and their exports).
- L5 bench / sweep / report: merge (the bench's files, keys and JSON merge), sweep, the
  bench harness's plugin and summary (bench_sharding, bench_summary: they use the sweep's
  shards and the report's number format), report/*, plots, repro, profile, grading (batch
  grading over the checker).
- L6 the CLI, inside `charlm/`: charlm.cli, charlm.__main__, charlm.commands.*. The one
  layer that composes the `charlm` library and `analysis`.

Every import counts: top level or inside a function, `import a.b`, `from a import b` where b
is a submodule (then the edge goes to `a.b`), relative imports. Importing `a.b.c` also runs
the package `a.b`'s `__init__`, so that is an edge too (except from inside the package
itself). CLI subcommands that `charlm.cli` loads by name with importlib are not read: the
CLI is the top layer, so they could not break a rule.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("charlm", "analysis")

# Bottom to top. A pattern names a module, or with a trailing ".*" a package and all of its
# submodules (the package's own __init__ included).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("L0 charlm library", (
        "charlm", "charlm.models.*", "charlm.data", "charlm.train", "charlm.steps",
        "charlm.sampling", "charlm.io", "charlm.validate", "charlm.progress",
        "charlm.attention", "charlm.gru_explorer", "charlm.experiments")),
    ("L1 analysis data and formulas", (
        "analysis", "analysis.expr_parser", "analysis.formulas", "analysis.depth_formulas",
        "analysis.bytes_formulas", "analysis.architectures", "analysis.env",
        "analysis.verdicts", "analysis.parallel")),
    ("L2 quantities, runners, traces, counters", (
        "analysis.quantities", "analysis.grids", "analysis.optrace", "analysis.depth",
        "analysis.counters.*", "analysis.trace.*", "analysis.workloads",
        "analysis.factories", "analysis.graphs")),
    ("L3 timing and prediction", (
        "analysis.timing", "analysis.calibrate", "analysis.predict")),
    ("L4 analyses", (
        "analysis.reconcile", "analysis.checker", "analysis.questions",
        "analysis.gru_exercises", "analysis.flops_api", "analysis.derive",
        "analysis.submissions", "analysis.accuracy")),
    ("L5 bench, sweep, report", (
        "analysis.merge", "analysis.sweep", "analysis.bench_sharding",
        "analysis.bench_summary", "analysis.report.*", "analysis.plots", "analysis.repro",
        "analysis.profile", "analysis.grading")),
    ("L6 CLI", ("charlm.cli", "charlm.__main__", "charlm.commands.*")),
)


def find_modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__) for every .py under PACKAGES."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _targets(node, module: str, is_package: bool, modules) -> list[str]:
    """The project modules one import statement loads, by their dotted names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def _with_packages(target: str, importer: str) -> list[str]:
    """`a.b.c` and the packages `a.b`, `a` whose __init__ it runs, less the importer's own."""
    parts = target.split(".")
    names = [".".join(parts[:i]) for i in range(1, len(parts))]
    return [n for n in names if not (importer + ".").startswith(n + ".")] + [target]


def import_edges(root: Path) -> list[tuple[str, str, str]]:
    """(importer, imported, "file:line") for every import of one project module by another."""
    modules = find_modules(root)
    edges = []
    for module, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            for target in _targets(node, module, is_package, modules):
                for name in _with_packages(target, module):
                    if name in modules and name != module:
                        edges.append((module, name, where))
    return list(dict.fromkeys(edges))


def layer_of(module: str, layers=LAYERS) -> int | None:
    for index, (_, patterns) in enumerate(layers):
        for pattern in patterns:
            if module == pattern.removesuffix(".*") or (
                    pattern.endswith(".*") and module.startswith(pattern[:-1])):
                return index
    return None


def unplaced(root: Path, layers=LAYERS) -> list[str]:
    return [m for m in find_modules(root) if layer_of(m, layers) is None]


def upward_imports(root: Path, layers=LAYERS) -> list[str]:
    """One line per import of a module from a higher layer than the importer's."""
    out = []
    for importer, imported, where in import_edges(root):
        low, high = layer_of(importer, layers), layer_of(imported, layers)
        if low is not None and high is not None and high > low:
            out.append(f"{where}: {importer} ({layers[low][0]}) imports {imported} "
                       f"({layers[high][0]})")
    return out


def cycles(root: Path) -> list[str]:
    """One line per import inside each loop of modules (a strongly connected component)."""
    edges = import_edges(root)
    graph: dict[str, set[str]] = {}
    for importer, imported, _ in edges:
        graph.setdefault(importer, set()).add(imported)
    component = _components(graph)
    loops: dict[int, list[str]] = {}
    for importer, imported, where in edges:
        if importer in component and component.get(importer) == component.get(imported):
            loops.setdefault(component[importer], []).append(
                f"{where}: {importer} imports {imported}")
    return [f"cycle {n + 1}: {line}" for n, lines in enumerate(loops.values())
            for line in sorted(set(lines))]


def _components(graph: dict[str, set[str]]) -> dict[str, int]:
    """Tarjan's strongly connected components, iteratively: module -> component number, for
    the modules in a component of two or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: dict[str, int] = {}
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == node:
                            break
                    if len(members) > 1:
                        number = len(set(out.values()))
                        out.update(dict.fromkeys(members, number))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def test_every_module_has_a_layer():
    assert unplaced(ROOT) == [], "put each new module in a layer of LAYERS"


def test_no_module_imports_up_the_layers():
    found = upward_imports(ROOT)
    assert not found, f"{len(found)} imports up the layers:\n" + "\n".join(found)


def test_no_import_cycle():
    found = cycles(ROOT)
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_charlm_library_imports_no_analysis():
    library = [m for m in find_modules(ROOT) if layer_of(m) == 0]
    assert "charlm.experiments" in library and "charlm.models.registry" in library
    found = [f"{where}: {a} imports {b}" for a, b, where in import_edges(ROOT)
             if a in library and b.split(".")[0] == "analysis"]
    assert not found, "\n".join(found)


# The checker itself, on a tree written here: each kind of import it must see.
@pytest.fixture
def tree(tmp_path):
    files = {
        "charlm/__init__.py": "",
        "charlm/low.py": "def f():\n    from analysis import high\n",
        "charlm/cli.py": "import analysis.high\n",
        "analysis/__init__.py": "",
        "analysis/high.py": "from . import mid\n",
        "analysis/mid.py": "import charlm.low\n",
        "analysis/pkg/__init__.py": "from analysis.pkg.inner import x\n",
        "analysis/pkg/inner.py": "x = 1\n",
        "analysis/user.py": "from analysis.pkg import inner\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


LAYERS_OF_TREE = (("low", ("charlm", "charlm.low", "analysis", "analysis.mid")),
                  ("high", ("analysis.high", "analysis.pkg.*")),
                  ("cli", ("charlm.cli",)))


def test_checker_sees_function_local_relative_and_submodule_imports(tree):
    edges = {(a, b, where.replace("\\", "/")) for a, b, where in import_edges(tree)}
    assert ("charlm.low", "analysis.high", "charlm/low.py:2") in edges
    assert ("analysis.high", "analysis.mid", "analysis/high.py:1") in edges
    assert ("charlm.cli", "analysis.high", "charlm/cli.py:1") in edges
    # a submodule import runs its package's __init__, except from inside the package
    assert ("analysis.user", "analysis.pkg", "analysis/user.py:1") in edges
    assert ("analysis.user", "analysis.pkg.inner", "analysis/user.py:1") in edges
    assert not any(a == "analysis.pkg.inner" for a, _, _ in edges)


def test_checker_names_each_import_of_a_cycle_and_each_import_up(tree):
    assert cycles(tree) == [
        "cycle 1: analysis/high.py:1: analysis.high imports analysis.mid",
        "cycle 1: analysis/mid.py:1: analysis.mid imports charlm.low",
        "cycle 1: charlm/low.py:2: charlm.low imports analysis.high",
    ]
    assert upward_imports(tree, LAYERS_OF_TREE) == [
        "charlm/low.py:2: charlm.low (low) imports analysis.high (high)"]
    assert unplaced(tree, LAYERS_OF_TREE) == ["analysis.user"]
