"""The docs show only what works: README.md and docs/*.md, their code, commands and links.

Every ```sh block and every inline command (`make …`, `pipelines/…`, `pulumi …`,
`sendgrid-tracking-emulator …`) is checked against what it names: Makefile targets, the pipeline
scripts' `--help` (each flag and subcommand shown), the emulator's `--help`, the package's name and
extras, and (with the engine) `pulumi … --help` (each subcommand and flag). Python blocks compile; the
README's first program is the example the end-to-end tests install and run; the emulator page's test
example passes as a user's suite. Every relative link points to a file, and its anchor to a heading.
docs/drafts/ holds unplaced drafts and is not a page.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tools import reliability
from tools.pulumi_project import engine_bin

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```$", re.S | re.M)
INLINE = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)")  # a span may wrap once
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Commands a sh block may show, and the check each kind gets (`other`: shown as is, nothing to check).
CHECKED = {"make", "pulumi", "pip", "sendgrid-tracking-emulator", ".venv/bin/pytest"}
OTHER = {"git", "export", "python", "find", "rm", "cd", "venv/bin/pip"}


def rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def blocks(page: Path, lang: str) -> list[str]:
    return [body for info, body in FENCE.findall(page.read_text(encoding="utf-8")) if info == lang]


def prose(page: Path) -> str:
    """The page without its fenced blocks."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def sh_commands(page: Path) -> list[list[str]]:
    """Each command of the page's sh blocks, split as the shell would (comments dropped, `&&` split)."""
    commands = []
    for body in blocks(page, "sh"):
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value before a command
                words = words[1:]
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                commands.append(words[:cut])
                words = words[cut + 1 :]
    return commands


def inline_commands(page: Path, first: str) -> list[list[str]]:
    """Inline code spans in the prose that are a command starting with `first` (`make demo`)."""
    found = []
    spans = (" ".join(s.split()) for s in INLINE.findall(prose(page)))
    for span in (command.strip() for s in spans for command in s.split(" ; ")):
        if span.startswith(first + " ") or (first == "pipelines/" and re.match(r"pipelines/[\w-]+( |$)", span)):
            try:
                found.append(shlex.split(span))
            except ValueError:  # an unbalanced quote: not a command
                continue
    return found


def every_command() -> list[tuple[str, list[str]]]:
    out = [(rel(page), words) for page in PAGES for words in sh_commands(page)]
    for first in ("make", "pulumi", "pipelines/", "sendgrid-tracking-emulator"):
        out += [(rel(page), words) for page in PAGES for words in inline_commands(page, first)]
    return out


def commands_of(kind: str) -> list[tuple[str, list[str]]]:
    return [(page, words) for page, words in every_command() if words[0] == kind or words[0].startswith(kind)]


def flags(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("-") and w not in {"-", "--"}]


def shown(flag: str, help_text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def test_the_pages_are_found_and_the_readme_is_a_landing_page() -> None:
    names = {rel(page) for page in PAGES}
    assert {"README.md", "docs/_index.md", "docs/installation-configuration.md", "docs/behaviour.md"} <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.split()) < 900, "the README is the five-minute page: move reference text into docs/"
    assert {"make demo", "make test"} <= {" ".join(w) for w in sh_commands(ROOT / "README.md")}
    assert every_command(), "no command found: the parser is broken"


def test_every_shell_command_is_of_a_kind_this_test_checks() -> None:
    unknown = [
        f"{page}: {' '.join(words)}"
        for page, words in every_command()
        if words[0] not in CHECKED | OTHER and not words[0].startswith("pipelines/")
    ]
    assert not unknown, "add a check for these commands to tests/test_docs.py:\n" + "\n".join(unknown)


def test_python_blocks_compile() -> None:
    compiled = 0
    for page in PAGES:
        for index, body in enumerate(blocks(page, "python")):
            compile(body, f"{rel(page)} (python block {index + 1})", "exec")
            compiled += 1
    assert compiled >= 3


def test_python_blocks_pass_ruff(tmp_path: Path) -> None:
    """Formatted as the code is, and pyflakes-clean (no undefined or unused name) where the block is a program
    of ours: the upstream-*.md pages quote the Pulumi SDK's code, excerpts that only compile."""
    files, parts = [], []
    for page in PAGES:
        for index, body in enumerate(blocks(page, "python")):
            files.append(tmp_path / f"{page.stem.lstrip('_')}_{index}.py")
            files[-1].write_text(body, encoding="utf-8")
            if page.name.startswith("upstream-"):
                continue
            # the emulator page's example is two files: conftest.py and test_click.py
            for part, text in enumerate(re.split(r"^(?=# \w+\.py\n)", body, flags=re.M)):
                if text.strip():
                    parts.append(tmp_path / f"{page.stem.lstrip('_')}_{index}_{part}.lint.py")
                    parts[-1].write_text(text.rstrip() + "\n", encoding="utf-8")
    ruff = [str(Path(sys.executable).parent / "ruff"), "--no-cache"]
    style = ["--isolated", "--line-length", "120"]
    formatted = subprocess.run(
        [*ruff[:1], "format", "--check", "--diff", *style, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = subprocess.run(
        [*ruff[:1], "check", *ruff[1:], *style, "--select", "E,F,I,W", *map(str, parts)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_readmes_first_program_is_the_example_the_end_to_end_test_runs() -> None:
    (program,) = blocks(ROOT / "README.md", "python")
    example = ROOT / "examples" / "own-program" / "__main__.py"
    assert program.startswith("import pulumi\n")
    assert program in example.read_text(encoding="utf-8"), f"the README's program is not an excerpt of {example}"
    runner = (ROOT / "tests" / "e2e" / "test_package.py").read_text(encoding="utf-8")
    assert '"examples" / "own-program"' in runner


def test_the_emulator_pages_test_example_passes_as_a_users_suite(pytester: pytest.Pytester) -> None:
    (example,) = [b for b in blocks(ROOT / "docs" / "emulator.md", "python") if "# conftest.py" in b]
    conftest, tests = example.split("# test_click.py\n")
    pytester.makeconftest(conftest.replace("# conftest.py\n", ""))
    pytester.makepyfile(test_click=tests)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))
    shown_targets = {(page, words[1]) for page, words in commands_of("make") if len(words) > 1}
    assert {target for _, target in shown_targets} >= {"demo", "test"}
    missing = sorted(f"{page}: make {target}" for page, target in shown_targets if target not in targets)
    assert not missing, "no such Makefile target:\n" + "\n".join(missing)


@functools.cache
def script_help(script: str) -> str:
    done = subprocess.run(
        [str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert done.returncode == 0, f"{script} --help exited {done.returncode}: {done.stderr}"
    return done.stdout


def test_pipeline_scripts_exist_and_take_the_flags_shown() -> None:
    problems, seen = [], 0
    for page, words in commands_of("pipelines/"):
        script = words[0]
        if "<" in script:  # `pipelines/<command>`: a placeholder
            continue
        if not (ROOT / script).is_file() or not os.access(ROOT / script, os.X_OK):
            problems.append(f"{page}: {script} is not an executable script")
            continue
        help_text = script_help(script)
        seen += 1
        problems += [f"{page}: {script} has no {flag}" for flag in flags(words) if not shown(flag, help_text)]
        # a command right after the script (`pipelines/shards reshard`, `preview|deploy`): one of its choices
        choices = re.search(r"positional arguments:\s*\n\s*\{([\w,-]+)\}", help_text)
        if len(words) > 1 and not words[1].startswith(("-", "<")):
            known = choices.group(1).split(",") if choices else []
            problems += [f"{page}: {script} has no command {c}" for c in words[1].split("|") if c not in known]
    assert seen >= 5
    assert not problems, "\n".join(problems)


def test_emulator_commands_take_the_flags_shown() -> None:
    assert "sendgrid-tracking-emulator" in PYPROJECT["project"]["scripts"]
    usage = subprocess.run(
        [sys.executable, "-m", "pulumi_sendgrid_tracking.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    shown_commands = commands_of("sendgrid-tracking-emulator")
    assert shown_commands
    missing = [f"{page}: {flag}" for page, words in shown_commands for flag in flags(words) if not shown(flag, usage)]
    # the flags listed in prose, such as `--subuser NAME`, `--fault KIND[:COUNT]`
    for page in PAGES:
        if page.name == "emulator.md":
            listed = {s.split()[0] for s in INLINE.findall(prose(page)) if re.fullmatch(r"--[\w-]+( \S+)?", s)}
            assert len(listed) >= 10
            missing += [f"{rel(page)}: {flag}" for flag in sorted(listed) if not shown(flag, usage)]
    assert not missing, "the emulator has no such flag:\n" + "\n".join(missing)


def test_pip_commands_name_this_package_and_its_extras() -> None:
    name = PYPROJECT["project"]["name"]
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    wheel = name.replace("-", "_")
    problems, seen = [], 0
    for page in PAGES:
        text = prose(page) + "".join(blocks(page, "sh"))
        for base, extra in re.findall(r"pip install '?([^\s'`\[]+)(?:\[(\w+)\])?", text):
            seen += 1
            spec = f"{base}[{extra}]" if extra else base
            if extra and extra not in extras:
                problems.append(f"{rel(page)}: no extra {extra} in pyproject.toml")
            if base not in {name, "<clone>", "-r"} and not base.startswith(("git+", f"dist/{wheel}-", wheel)):
                problems.append(f"{rel(page)}: pip install {spec} names another package")
    assert seen >= 3
    assert not problems, "\n".join(problems)


@functools.cache
def pulumi_help(pulumi: Path, path: tuple[str, ...]) -> str:
    done = subprocess.run(
        [str(pulumi), *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
    )
    assert done.returncode == 0, f"pulumi {' '.join(path)} --help exited {done.returncode}: {done.stderr}"
    return done.stdout


def subcommands(help_text: str) -> set[str]:
    """The commands listed under `Available Commands:` (or, at the top, `Deployment Commands:` and the like)."""
    found, listing = set(), False
    for line in help_text.splitlines():
        if line.endswith("Commands:") and not line.startswith(" "):
            listing = True
        elif listing and (entry := re.match(r"  ([a-z][\w-]*)\s", line)):
            found.add(entry.group(1))
        else:
            listing = False
    return found


def aliases(help_text: str) -> set[str]:
    """A command's other names (`stack init` is `stack new`), from its help; an unknown one shows its parent's."""
    listed = re.search(r"^Aliases:\n  (.+)$", help_text, re.M)
    return {name.strip() for name in listed.group(1).split(",")} if listed else set()


@pytest.mark.engine
def test_pulumi_commands_name_real_subcommands_and_flags() -> None:
    found = engine_bin()
    if found is None:
        message = "the Pulumi engine is not built: run `make engine` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pulumi = found / "pulumi"
    problems, checked = [], 0
    for page, words in commands_of("pulumi"):
        if words[0] != "pulumi":
            continue
        path: tuple[str, ...] = ()
        args = [w for w in words[1:] if not w.startswith("-")]
        for word in args:
            if word.startswith("<"):
                break
            children = subcommands(pulumi_help(pulumi, path))
            if not children:
                break
            if word not in children and word not in aliases(pulumi_help(pulumi, (*path, word))):
                problems.append(f"{page}: pulumi {' '.join(path)} has no command {word!r}")
                break
            path = (*path, word)
        help_text = pulumi_help(pulumi, path)
        problems += [
            f"{page}: pulumi {' '.join(path)} has no flag {flag}" for flag in flags(words) if not shown(flag, help_text)
        ]
        checked += 1
    assert checked >= 20
    assert not problems, "\n".join(problems)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", prose(page), re.M)}


def test_relative_links_point_to_files_and_headings() -> None:
    broken, checked = [], 0
    for page in PAGES:
        for target in LINK.findall(prose(page)):
            if re.match(r"[a-z]+:", target):
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{rel(page)}: {target}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{rel(page)}: {target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert checked >= 30
    assert not broken, "\n".join(broken)


def test_the_reliability_page_keeps_the_generators_prose() -> None:
    """docs/reliability.md is written by tools/reliability.py: its prose lives there, and the page matches it."""
    doc = reliability.DOC.read_text(encoding="utf-8")
    assert "\n".join(reliability.INTRO) in doc
    assert reliability.replace_stateful_section(doc, reliability.read_stateful()) == doc


def test_pytest_commands_name_test_paths_that_exist() -> None:
    shown = commands_of(".venv/bin/pytest")
    assert shown, "the docs show how to run a test file"
    for page, words in shown:
        paths = [w for w in words[1:] if not w.startswith("-") and "/" in w]
        assert paths, f"{page}: {' '.join(words)} names no test path"
        for path in paths:
            assert (ROOT / path.split("::")[0]).exists(), f"{page}: {path} does not exist"
