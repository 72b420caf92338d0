"""Shape rules of the code that tests can check: short functions with few parameters in the
pipeline and the report, and no dispatch on method names outside the method registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reportgen.explain.methods import REGISTRY

PKG = Path(__file__).resolve().parent.parent / "reportgen"
SHORT = sorted([*(PKG / "pipeline").rglob("*.py"), *(PKG / "report").rglob("*.py")])
MAX_LINES, MAX_PARAMS = 60, 7


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def parameters(fn) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return len([n for n in names if n not in ("self", "cls")])


@pytest.mark.parametrize("path", SHORT, ids=lambda p: str(p.relative_to(PKG)))
def test_functions_are_short_with_few_parameters(path):
    for fn in functions(path):
        lines = fn.end_lineno - fn.lineno + 1
        assert lines <= MAX_LINES, f"{path.name}: {fn.name} has {lines} lines"
        assert parameters(fn) <= MAX_PARAMS, \
            f"{path.name}: {fn.name} takes {parameters(fn)} parameters"


def test_the_rule_sees_a_long_function(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(a, b, c, d, e, f, g, h):\n" + "    x = 1\n" * 60)
    fn = next(functions(bad))
    assert fn.end_lineno - fn.lineno + 1 > MAX_LINES and parameters(fn) > MAX_PARAMS


def method_comparisons(path: Path) -> list[str]:
    """``x == "<method name>"`` comparisons: dispatch that belongs in the registry."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq))
                                                 for op in node.ops):
            for side in [node.left, *node.comparators]:
                if isinstance(side, ast.Constant) and side.value in REGISTRY:
                    found.append(f"{path.name}:{node.lineno} compares with {side.value!r}")
    return found


def test_no_method_name_dispatch_outside_the_registry():
    outside = [p for p in PKG.rglob("*.py") if "methods" not in p.relative_to(PKG).parts]
    assert [hit for p in outside for hit in method_comparisons(p)] == []


def test_the_dispatch_rule_sees_a_chain(tmp_path):
    bad = tmp_path / "suite.py"
    bad.write_text('def run(name):\n    if name == "occlusion":\n        return 1\n')
    assert method_comparisons(bad) == ["suite.py:2 compares with 'occlusion'"]


def test_the_planner_names_no_method():
    """Each method declares its reductions and costs in its spec; the planner iterates the
    registry, so a new method's reductions are its file and its registry line."""
    import re

    text = (PKG / "explain" / "plan.py").read_text()
    assert [n for n in REGISTRY if re.search(rf"\b{n}\b", text)] == []
