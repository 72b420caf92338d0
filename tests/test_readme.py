"""The README's configuration examples, as written: every TOML block and every `reportgen
build` command line (in the CI job's YAML too) parses, and every key it sets is a real key;
every `reportgen gate` line parses with well-formed bounds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from reportgen import config
from reportgen.explain.methods import configure

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: (language, text) of every fenced block, each opening fence paired with its closing one.
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)
TOML = [text for lang, text in BLOCKS if lang == "toml"]
COMMANDS = [" ".join(line.split()) for lang, block in BLOCKS if not lang
            for line in block.replace("\\\n", " ").splitlines()
            if line.strip().startswith("reportgen build") or "&& reportgen build" in line]


YAML_BUILDS = [" ".join(line.split("run:")[-1].split()) for lang, block in BLOCKS
               if lang == "yaml" for line in block.splitlines() if "reportgen build" in line]
GATES = [" ".join(line.split()) for lang, block in BLOCKS if lang in ("", "yaml")
         for line in block.replace("\\\n", " ").splitlines() if "reportgen gate" in line]


def test_the_readme_has_examples():
    assert TOML and len(COMMANDS) >= 4
    assert YAML_BUILDS and len(GATES) >= 3


@pytest.mark.parametrize("command", GATES)
def test_gate_commands_parse(command):
    from reportgen.cli import main
    from reportgen.report.gate import parse_bound

    args = [a for a in shlex.split(command[command.index("reportgen gate"):])[2:]
            if a != "$baseline"]  # the CI job's optional --baseline, set in the shell
    ctx = main.commands["gate"].make_context("gate", args)
    for kind, given in (("min", ctx.params["minimums"]), ("max", ctx.params["maximums"])):
        for text in given:
            parse_bound(text, kind)


@pytest.mark.parametrize("text", TOML)
def test_toml_examples_are_valid_configs(tmp_path, text):
    path = tmp_path / "example.toml"
    path.write_text(text)
    configure(config.load(path))


@pytest.mark.parametrize("command", COMMANDS + YAML_BUILDS)
def test_build_commands_use_real_keys(command):
    args = shlex.split(command[command.index("reportgen build"):].split("#")[0])[2:]
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    path = next((args[i + 1] for i, a in enumerate(args) if a == "--config"), None)
    configure(config.load(ROOT / path if path else None, overrides))
