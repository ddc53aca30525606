"""The example pipelines parse and call only scripts that exist, with the stacks the repo defines."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
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


def test_each_stack_has_its_fleet_file() -> None:
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        fleet = yaml.safe_load((ROOT / config["sendgrid-click-tracking:fleetFile"]).read_text())
        assert [e.name for e in parse_fleet(fleet)] == ["parent", "subuser-alice", "subuser-bob", "subuser-carol"]
