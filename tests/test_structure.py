"""Shape rules of the code that tests can check: short functions with few parameters in
reportgen/ and benchmarks/ (or a comment saying why one must be long), and no dispatch on
method names outside the method registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from reportgen.explain.methods import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "reportgen"
#: Every Python file of the package and the benchmarks (templates are not Python).
CHECKED = sorted([*PKG.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])
MAX_LINES, MAX_PARAMS = 60, 7
#: A comment on the ``def`` line, or on the line above the function (above its decorators),
#: that says why it must be long or take many parameters.
LONG = re.compile(r"#\s*long:\s*\S")
#: Offenders in files other branches are rewriting; the lead empties this after merging them.
PENDING: set[str] = set()


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def parameters(fn) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return len([n for n in names if n not in ("self", "cls")])


def excused(fn, lines: list[str]) -> bool:
    """Whether ``fn`` carries a ``# long: <reason>`` comment: on its ``def`` line, the line
    before it, or the line before its first decorator."""
    first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    where = {fn.lineno, fn.lineno - 1, first - 1}
    return any(LONG.search(lines[n - 1]) for n in where if 1 <= n <= len(lines))


def offenders(path: Path, root: Path = ROOT) -> dict[str, str]:
    """{"<path>::<function>": what is over} for the functions of ``path`` over
    :data:`MAX_LINES` lines or :data:`MAX_PARAMS` parameters without a ``# long:`` reason."""
    lines = path.read_text().splitlines()
    found = {}
    for fn in functions(path):
        length, count = fn.end_lineno - fn.lineno + 1, parameters(fn)
        if (length > MAX_LINES or count > MAX_PARAMS) and not excused(fn, lines):
            key = f"{path.relative_to(root).as_posix()}::{fn.name}"
            found[key] = f"{length} lines, {count} parameters"
    return found


def test_functions_are_short_with_few_parameters():
    """No function of reportgen/ or benchmarks/ is over 60 lines or takes over 7 parameters,
    unless a ``# long: <reason>`` comment on its ``def`` line or the line above it (above its
    decorators, if any) says why it must. Lines run from the ``def`` line to the last line of
    the body, docstring and nested functions included, decorators not. Parameters are the
    positional and keyword-only ones without ``self`` and ``cls``; ``*args`` and ``**kwargs``
    count one each."""
    found = {k: v for p in CHECKED for k, v in offenders(p).items()}
    assert {k: v for k, v in found.items() if k not in PENDING} == {}
    # Keep the list honest: an entry that is no longer an offender is taken off it.
    assert PENDING <= set(found), f"no longer over the limits: {sorted(PENDING - set(found))}"


def test_the_rule_sees_a_long_function_and_reads_its_reason(tmp_path):
    bad = tmp_path / "bad.py"
    body = "    x = 1\n" * 60
    bad.write_text("def f(a, b, c, d, e, f, g, h):\n" + body
                   + "\n\ndef g(*args, a, b, c, d, e, f, **kw):\n    pass\n"
                   + "\n\ndef ok(self, a, b, c, d, e, f, g):\n" + "    x = 1\n" * 59
                   + "\n\n# long: a reason\n@decorator\ndef why(a, b, c, d, e, f, g, h):\n"
                   + body + "\n\ndef inline(a, b, c, d, e, f, g, h):  # long: a reason\n"
                   + body + "\n\n# long:\ndef empty_reason(a, b, c, d, e, f, g, h):\n    pass\n")
    assert offenders(bad, tmp_path) == {"bad.py::f": "61 lines, 8 parameters",
                                        "bad.py::g": "2 lines, 8 parameters",
                                        "bad.py::empty_reason": "2 lines, 8 parameters"}


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
    text = (PKG / "explain" / "plan.py").read_text()
    assert [n for n in REGISTRY if re.search(rf"\b{n}\b", text)] == []
