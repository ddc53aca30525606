"""Every script's --help says what it does, its options (each with help text), the environment it reads and its
exit codes; the environment listed is checked against what the code reads, so the help cannot go stale."""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi_sendgrid_tracking.emulator.__main__ import parser as emulator_parser

from pipelines import shards
from pipelines.__main__ import _parser as pipeline_parser

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_SCRIPT = Path(sys.executable).parent / "sendgrid-tracking-emulator"
NOT_LISTED = {"PYTHONPATH": "the wrappers only extend it, to find pipelines/"}


class Script:
    def __init__(self, argv: list[str], prog: str, does: str, exit_codes: list[int]) -> None:
        self.argv, self.prog, self.does, self.exit_codes = argv, prog, does, exit_codes


SCRIPTS = {
    "preview": Script(
        [str(ROOT / "pipelines" / "preview")], "pipelines/preview", "runs `pulumi preview` on the stack", [0, 1]
    ),
    "deploy": Script(
        [str(ROOT / "pipelines" / "deploy")], "pipelines/deploy", "runs `pulumi up --refresh --skip-preview`", [0, 1]
    ),
    "drift-check": Script(
        [str(ROOT / "pipelines" / "drift-check")], "pipelines/drift-check", "reports drift", [0, 2, 1]
    ),
    "shards": Script([str(ROOT / "pipelines" / "shards")], "pipelines/shards", "N shard stacks", [0, 2, 1]),
    "pipelines": Script([sys.executable, "-m", "pipelines"], "pipelines", "The GitOps pipeline commands", [0, 2, 1]),
    "emulator": Script(
        [str(EMULATOR_SCRIPT)], "sendgrid-tracking-emulator", "Serve a local, stateful emulator", [0, 1, 2]
    ),
}


@functools.cache
def help_of(script: Script) -> str:
    result = subprocess.run([*script.argv, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout


def environment_read_by_the_pipelines() -> set[str]:
    """Every variable the pipeline code and its wrapper scripts read (not the ones they set for pulumi)."""
    names: set[str] = set()
    for path in (ROOT / "pipelines").iterdir():
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if path.suffix == ".py":
            names |= set(re.findall(r"""(?:environ|env)\.get\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
            names |= set(re.findall(r"""environ\[["']([A-Z][A-Z0-9_]+)["']\]""", text))
        elif path.suffix in ("", ".sh") and text.startswith("#!"):
            names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text))
    return names - set(NOT_LISTED)


def test_the_scan_finds_what_the_pipelines_read() -> None:
    """The scan can fail: it finds reads in Python (os.environ.get, env.get) and in the wrapper scripts."""
    assert environment_read_by_the_pipelines() >= {
        "SENDGRID_API_KEY",
        "PULUMI_BACKEND_URL",
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_STACK",
        "PULUMI_PROJECT_DIR",
        "GITHUB_STEP_SUMMARY",
        "PULUMI_ENGINE_CACHE",
        "XDG_CACHE_HOME",
        "PIPELINE_PYTHON",
    }


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_says_what_it_does_its_options_environment_and_exit_codes(name: str) -> None:
    script = SCRIPTS[name]
    text = help_of(script)
    assert text.startswith(f"usage: {script.prog} ")
    assert script.does in text
    assert "\noptions:\n" in text
    assert "\nenvironment:\n" in text
    codes = text.split("\nexit codes:\n", 1)[1].splitlines()
    assert [int(line.split()[0]) for line in codes if re.match(r"  \d  ", line)] == script.exit_codes
    if name != "emulator":
        listed = text.split("\nenvironment:\n", 1)[1].split("\nexit codes:\n", 1)[0]
        assert [v for v in sorted(environment_read_by_the_pipelines()) if v not in listed] == []
        assert "PULUMI_CONFIG_PASSPHRASE" in listed
    else:
        assert "SENDGRID_" in text.split("\nenvironment:\n", 1)[1]  # says the provider's variables are not read


@pytest.mark.parametrize("command", ["preview", "deploy", "drift-check"])
def test_a_wrapper_shows_no_positional_command_it_already_supplies(command: str) -> None:
    text = help_of(SCRIPTS[command])
    usage = text.split("\n\n", 1)[0]
    assert "{" not in usage.replace("{json,markdown}", "") and "command" not in usage.lower()
    assert "positional arguments" not in text
    for option in ("--stack", "--project-dir", "--emulator", "--format", "--markdown-file"):
        assert option in usage


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    top = pipeline_parser()
    [sub] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return [
        ("pipelines", top),
        *sub.choices.items(),
        ("shards", shards._parser()),
        ("emulator", emulator_parser("sendgrid-tracking-emulator")),
    ]


@pytest.mark.parametrize(("name", "parser"), parsers(), ids=[name for name, _ in parsers()])
def test_every_option_has_help_text(name: str, parser: argparse.ArgumentParser) -> None:
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert missing == []
    assert parser.description and parser.epilog
