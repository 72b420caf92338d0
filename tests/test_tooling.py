"""The habits that keep the tree tidy: ruff and mypy find nothing, plain ``pytest`` is the
fast layer while the README's test command (which CI runs) runs every test, and a wheel holds
every module, template and config (the packages are discovered, not listed by hand)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_test_command() -> str:
    """The quick start's second command, the one that installs the test extras and runs the
    tests (its comment cut off)."""
    lines = [line for line in README.splitlines() if line.startswith("pip install -e '.[test")]
    assert len(lines) == 1, lines
    return lines[0].split("#")[0].strip()


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "reportgen", "tests",
                          "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_finds_nothing():
    """mypy, configured in pyproject.toml, finds no error in reportgen/ (about 7 s of CPU
    without its cache)."""
    pytest.importorskip("mypy")
    out = subprocess.run([sys.executable, "-m", "mypy", "reportgen"], cwd=ROOT,
                         capture_output=True, text=True)
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert out.returncode == 0 and errors == [], "\n".join(errors) or out.stdout + out.stderr


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == readme_test_command()


def selected(folder: Path, args: list[str]) -> set[str]:
    """Names of the tests ``pytest args`` selects in ``folder``."""
    out = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q",
                          "-p", "no:cacheprovider"], cwd=folder, capture_output=True, text=True)
    assert out.returncode in (0, 5), out.stdout + out.stderr  # 5: every test deselected
    return {line.split("::")[-1] for line in out.stdout.splitlines() if "::" in line}


def test_plain_pytest_is_the_fast_layer_and_the_readme_command_runs_all(tmp_path):
    """With this project's pytest settings: ``pytest`` leaves the slow tests out, the README's
    command runs both kinds, and ``pytest -m slow`` only the slow ones."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n\n\ndef test_fast():\n    pass\n\n\n"
        "@pytest.mark.slow\ndef test_whole_build():\n    pass\n")
    command = shlex.split(readme_test_command().split("&&")[-1])
    assert command[0] == "pytest"
    assert selected(tmp_path, []) == {"test_fast"}
    assert selected(tmp_path, command[1:]) == {"test_fast", "test_whole_build"}
    assert selected(tmp_path, ["-m", "slow"]) == {"test_whole_build"}


def shipped(root: Path) -> set[str]:
    """What a wheel of the tree at ``root`` must hold: every module of reportgen/, and every
    file of templates/ and configs/ (installed as reportgen/templates and reportgen/configs)."""
    want = {p.relative_to(root).as_posix() for p in (root / "reportgen").rglob("*.py")}
    for folder in ("templates", "configs"):
        want |= {f"reportgen/{folder}/{p.name}" for p in (root / folder).iterdir()
                 if p.is_file() and p.suffix != ".pyc"}
    return want


@pytest.mark.slow
def test_the_wheel_holds_every_module_template_and_config(tmp_path):
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("reportgen", "templates", "configs"):
        shutil.copytree(ROOT / folder, src / folder, ignore=skip)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # A subpackage no list names: discovery must find it.
    (src / "reportgen" / "zz_new").mkdir()
    (src / "reportgen" / "zz_new" / "__init__.py").write_text('"""A new subpackage."""\n')
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "--no-cache-dir", "-q", str(src),
                          "-w", str(tmp_path / "dist")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    wheel = next((tmp_path / "dist").glob("reportgen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    want = shipped(src)
    assert "reportgen/zz_new/__init__.py" in want and "reportgen/templates/style.css" in want
    assert want - names == set()
