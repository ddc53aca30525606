"""The example pipelines parse and call only scripts that exist, with the stacks the repo defines."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import EmulatorState
from pulumi_sendgrid_tracking.fleet import parse_fleet

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_pipelines_call_the_scripts(name: str) -> None:
    text = (ROOT / "examples" / name).read_text()
    assert isinstance(yaml.safe_load(text), dict)
    called = set(re.findall(r"pipelines/([a-z-]+)", text))
    assert called == {"preview", "deploy", "drift-check"}
    for script in called:
        assert os.access(ROOT / "pipelines" / script, os.X_OK)
    assert "make venv engine" in text


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
