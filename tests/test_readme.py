"""The README's configuration examples, as written: every TOML block and every `reportgen
build` command line parses, and every key it sets is a real key."""

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


def test_the_readme_has_examples():
    assert TOML and len(COMMANDS) >= 4


@pytest.mark.parametrize("text", TOML)
def test_toml_examples_are_valid_configs(tmp_path, text):
    path = tmp_path / "example.toml"
    path.write_text(text)
    configure(config.load(path))


@pytest.mark.parametrize("command", COMMANDS)
def test_build_commands_use_real_keys(command):
    args = shlex.split(command[command.index("reportgen build"):].split("#")[0])[2:]
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    path = next((args[i + 1] for i, a in enumerate(args) if a == "--config"), None)
    configure(config.load(ROOT / path if path else None, overrides))
