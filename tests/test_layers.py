"""The import contract: data flows one way, config -> data -> model -> evaluate -> explain ->
figures -> report -> pipeline -> cli, and the heavy libraries stay where they belong, followed
through every module a module imports (transitively), and checked again by importing."""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "reportgen"
ORDER = ["errors", "lazy", "text", "guard", "config", "progress", "scratch", "data", "model",
         "evaluate", "audit", "explain", "figures", "report", "pipeline", "cli"]
FORBIDDEN = {
    "explain": {"matplotlib", "jinja2"},
    "figures": {"tensorflow", "keras", "jinja2"},
    "report": {"tensorflow", "keras"},
    "evaluate": {"tensorflow", "keras", "matplotlib", "jinja2"},
    "audit": {"tensorflow", "keras", "matplotlib", "jinja2"},
    "data": {"tensorflow", "keras", "matplotlib", "jinja2"},
    "config": {"tensorflow", "keras", "matplotlib", "jinja2", "numpy"},
    "cli": {"tensorflow", "keras", "matplotlib"},
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def path_of(module: str) -> Path | None:
    base = PKG.parent.joinpath(*module.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _targets(node, package: str) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    if node.level:  # relative import
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        mod = f"{base}.{node.module}" if node.module else base
    else:
        mod = node.module
    # "from pkg import sub" may import a submodule
    return {mod} | {f"{mod}.{a.name}" for a in node.names if path_of(f"{mod}.{a.name}")}


def _type_checking(node) -> bool:
    """True for ``if TYPE_CHECKING:`` (imports for type checkers only, never run)."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, module_level_only: bool = False) -> set[str]:
    """Modules ``path`` imports: anywhere, or only at import time (not inside functions)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rsplit(".", 1)[0]
    names: set[str] = set()

    def visit(node, in_function):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (module_level_only
                                                                    and in_function):
            names.update(_targets(node, package))
        # A function body, or an ``if TYPE_CHECKING:`` block, runs later or never.
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.Lambda)) or _type_checking(node)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return names


#: Imports by name that the syntax does not show: the registry imports every method module.
DYNAMIC = {"reportgen.explain.methods": {module_name(p) for p in
                                         (PKG / "explain" / "methods").glob("*.py")}}


@lru_cache(maxsize=None)
def loaded_at_import(module: str) -> frozenset[str]:
    """Every module importing ``module`` loads, following reportgen's own modules (and the
    packages above them) transitively; module-level imports only."""
    seen, todo, external = set(), [module], set()
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            name = ".".join(parts[:k])
            if name in seen:
                continue
            seen.add(name)
            p = path_of(name) if parts[0] == "reportgen" else None
            if p is None:
                external.add(parts[0])
                continue
            todo.extend(imports(p, module_level_only=True) | DYNAMIC.get(name, set()))
    return frozenset(external | {m for m in seen if m.startswith("reportgen")})


MODULES = [p for p in PKG.rglob("*.py") if layer_of(p) in ORDER]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_layer_imports_only_earlier_layers(path):
    layer = layer_of(path)
    for name in imports(path):
        top = name.split(".")[0]
        if top == "reportgen" and name.count(".") >= 1:
            target = name.split(".")[1]
            if target in ORDER:
                assert ORDER.index(target) <= ORDER.index(layer), \
                    f"{path.name} ({layer}) imports {name}, a later layer"
        assert top not in FORBIDDEN.get(layer, set()), f"{path.name} ({layer}) imports {top}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_forbidden_libraries_are_not_reached_transitively(path):
    layer = layer_of(path)
    reached = loaded_at_import(module_name(path))
    bad = FORBIDDEN.get(layer, set()) & reached
    assert not bad, f"importing {module_name(path)} ({layer}) loads {sorted(bad)}"


def test_the_transitive_walk_sees_through_packages():
    """It finds TensorFlow behind reportgen.explain.cam, and not behind the registry."""
    assert "tensorflow" in loaded_at_import("reportgen.explain.cam")
    assert "tensorflow" not in loaded_at_import("reportgen.explain.methods")
    assert "reportgen.explain.methods.rise" in loaded_at_import("reportgen.explain.methods")
    from reportgen.explain.methods import REGISTRY

    assert {s.run.__module__ for s in REGISTRY.values()} <= DYNAMIC["reportgen.explain.methods"]


@pytest.mark.parametrize("module,absent", [
    ("reportgen.cli", ("tensorflow", "keras", "matplotlib")),
    ("reportgen.report", ("tensorflow", "keras")),
    ("reportgen.pipeline", ("tensorflow", "keras")),
    # The stages a cached rebuild runs, and the model sources the cache asks for its key.
    ("reportgen.pipeline.stages.checks", ("tensorflow", "keras")),
    ("reportgen.pipeline.stages.reading", ("tensorflow", "keras")),
    ("reportgen.pipeline.stages.writing", ("tensorflow", "keras")),
    ("reportgen.model.sources", ("tensorflow", "keras")),
    ("reportgen.explain.methods", ("tensorflow", "keras", "matplotlib")),
    ("reportgen.figures", ("tensorflow", "keras")),
])
def test_importing_loads_no_heavy_library(module, absent):
    code = (f"import sys, {module}; print(sorted({{k.split('.')[0] for k in sys.modules}} & "
            f"{set(absent)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"importing {module} loads {out}"


def test_every_module_is_in_a_layer():
    for p in PKG.rglob("*.py"):
        assert layer_of(p) in ORDER + ["__init__", "__main__"], p


ROOT = PKG.parent
BENCHMARKS = ROOT / "benchmarks"


def import_graph(paths: list[Path], name_of) -> dict[str, set[str]]:
    """{module: the modules of ``paths`` it imports}: imports anywhere in a file, inside
    functions too (a lazy import hides a cycle from Python, not from the design). The
    registry's ``import_module`` of each method file is not an import statement and is not
    followed: the method files reach the explainer only inside ``run``, as plug-ins."""
    names = {name_of(p): p for p in paths}
    return {m: {t for t in imports(p) if t in names} - {m} for m, p in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as [a, b, ..., a] (a imports b ... imports a), or []."""
    done: set[str] = set()

    def walk(path: list[str]) -> list[str]:
        for nxt in sorted(graph[path[-1]]):
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in done:
                found = walk(path + [nxt])
                if found:
                    return found
        done.add(path[-1])
        return []

    for start in sorted(graph):
        found = [] if start in done else walk([start])
        if found:
            return found
    return []


def test_no_import_cycle_in_reportgen():
    graph = import_graph(list(PKG.rglob("*.py")), module_name)
    assert find_cycle(graph) == []


def test_no_import_cycle_in_the_benchmarks():
    graph = import_graph(list(BENCHMARKS.glob("*.py")), lambda p: p.stem)
    assert find_cycle(graph) == []


def test_the_cycle_rule_sees_a_lazy_import_cycle():
    """A cycle closed only by an import inside a function (as graph.py's was) is found."""
    graph = import_graph(list(PKG.rglob("*.py")), module_name)
    # explainer.py imports the registry inside Explainer.run: the graph sees it.
    assert "reportgen.explain.methods" in graph["reportgen.explain.explainer"]
    graph["reportgen.explain.graph"].add("reportgen.explain.gradients")  # the old lazy import
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and {"reportgen.explain.graph",
                                      "reportgen.explain.gradients"} <= set(cycle)
    assert all(b in graph[a] for a, b in pairwise(cycle))
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
