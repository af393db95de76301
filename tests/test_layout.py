"""The layout of the production packages: stages as subpackages, no import cycles, no forbidden imports.

The import graph is read from the source (``ast``), not by importing, so a cycle is found even on a
path no test happens to import. Imports inside functions count (they are dependencies all the
same); imports under ``if TYPE_CHECKING:`` do not (they never run). Besides module-to-module
edges, an import of ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__`` first, so those edges
count too (except to the importer's own ancestors, which have already run): with package
``__init__`` files that re-export their modules, this is what makes "no cycle" mean "no import can
ever meet a half-initialised module".
"""

from __future__ import annotations

import ast
import collections
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "vehicle", "cloud_ingest", "downstream", "simulator_harness", "hil")
#: importer's top-level package -> top-level packages it must never import.
FORBIDDEN = {
    "shared": {"vehicle", "cloud_ingest", "downstream", "simulator_harness", "hil", "tests", "bench"},
    "vehicle": {"cloud_ingest", "downstream", "simulator_harness", "hil", "tests", "bench"},
    "cloud_ingest": {"vehicle", "downstream", "simulator_harness", "hil", "tests", "bench"},
    "downstream": {"vehicle", "hil", "tests", "bench"},
    "simulator_harness": {"hil", "tests", "bench"},
    "hil": {"tests", "bench"},
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def imported_names(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """``(dotted name, line)`` of every import in ``path`` that can run (``TYPE_CHECKING`` blocks skipped)."""
    is_pkg = path.name == "__init__.py"

    def walk(nodes: list[ast.stmt] | list[ast.AST]) -> Iterator[tuple[str, int]]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.orelse)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, node.lineno
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = module.split(".") if is_pkg else module.split(".")[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    base = ".".join([*here, base] if base else here)
                yield base, node.lineno
                for alias in node.names:
                    yield f"{base}.{alias.name}", node.lineno
            yield from walk(list(ast.iter_child_nodes(node)))

    yield from walk(ast.parse(path.read_text()).body)


def _resolve(name: str) -> str | None:
    """The longest production module that ``name`` names (``a.b.Class`` -> ``a.b``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> modules whose code runs when it is imported (see the module docstring)."""
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for mod, path in MODULES.items():
        own_ancestors = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)}
        for name, _ in imported_names(path, mod):
            target = _resolve(name)
            if target is None or target == mod or target in own_ancestors:
                continue  # an ancestor's __init__ has already run (see test_no_names_from_own_package)
            graph[mod].add(target)
            for i in range(1, target.count(".") + 1):
                ancestor = ".".join(target.split(".")[:i])
                if ancestor in MODULES and ancestor not in own_ancestors and ancestor != mod:
                    graph[mod].add(ancestor)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(MODULES):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_planted_cycle() -> None:
    """The finder itself: a two-module cycle through a package ``__init__`` is reported."""
    planted = {"a.x": {"b"}, "b": {"b.y"}, "b.y": {"a.x"}}
    saved = dict(MODULES)
    try:
        MODULES.update({name: Path(name) for name in planted})
        assert ["a.x", "b", "b.y"] in cycles(planted)
    finally:
        MODULES.clear()
        MODULES.update(saved)


def test_no_forbidden_imports() -> None:
    bad = []
    for mod, path in MODULES.items():
        never = FORBIDDEN.get(mod.split(".")[0], set())
        for name, line in imported_names(path, mod):
            if name.split(".")[0] in never:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {mod} imports {name}")
    assert not bad, "forbidden imports:\n" + "\n".join(sorted(set(bad)))


def test_no_names_from_own_package() -> None:
    """``from own_package import Name`` may meet the package half-initialised: import submodules only."""
    bad = []
    for mod, path in MODULES.items():
        ancestors = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)}
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in ancestors:
                bad += [f"{mod}: from {node.module} import {a.name}" for a in node.names
                        if f"{node.module}.{a.name}" not in MODULES]
    assert not bad, "\n".join(bad)


def test_no_prefix_groups() -> None:
    """Three modules in one folder sharing a name prefix are a package asking to exist."""
    folders: dict[Path, list[str]] = collections.defaultdict(list)
    for path in MODULES.values():
        if path.name != "__init__.py":
            folders[path.parent].append(path.stem)
    groups = []
    for folder, stems in folders.items():
        for prefix in {s.split("_")[0] for s in stems if "_" in s}:
            members = sorted(s for s in stems if s == prefix or s.startswith(prefix + "_"))
            if len(members) >= 3:
                groups.append(f"{folder.relative_to(ROOT)}/{prefix}_*: {', '.join(members)}")
    assert not groups, "prefix groups:\n" + "\n".join(groups)


SUBPACKAGES = sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and "." in m)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_exports_its_api(package: str) -> None:
    """Every stage package names its public API in ``__all__``, and every name there resolves (to an
    attribute, or to one of its submodules: ``from pkg import *`` imports those)."""
    mod = importlib.import_module(package)
    exported = getattr(mod, "__all__", None)
    has_modules = any(p.parent == MODULES[package].parent and p.name != "__init__.py" for p in MODULES.values())
    if not has_modules:
        return  # a folder of data files (e.g. a scenario suite) has no API
    assert exported, f"{package}/__init__.py has no __all__"
    missing = [name for name in exported if not hasattr(mod, name) and f"{package}.{name}" not in MODULES]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"


def test_top_level_reads_like_the_data_flow() -> None:
    """Each deployable is mostly subpackages: at most a handful of modules at its top level."""
    for pkg in ("vehicle", "cloud_ingest", "simulator_harness"):
        top = [p.stem for p in (ROOT / pkg).glob("*.py") if p.stem not in ("__init__", "__main__")]
        subs = [p.name for p in (ROOT / pkg).iterdir() if (p / "__init__.py").exists()]
        assert len(subs) >= 5 and len(top) <= 10, f"{pkg}: {len(subs)} subpackages, top-level modules {sorted(top)}"


def test_production_ships_no_test_helpers() -> None:
    """Load generators and readers only tests use live in tests/ or bench/."""
    names = {Path(p).stem for p in MODULES.values()}
    assert not {n for n in names if n.startswith("loadgen")}, "load generators belong in bench/"
