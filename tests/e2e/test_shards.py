"""A fleet of 6 accounts run as 3 shard stacks by pipelines/shards, through the real engine, against the emulator.

init creates the shard stacks from the fleet's stack; deploy checks, runs the 3 shards at once (3
`pulumi up`, 3 provider processes, one file backend) and checks again; each account lands in the
stack of its shard with all its settings; a second preview changes nothing and sends nothing; the
shards keep under the account's rate limit with a budget each (no request refused). A shard stack
of another count makes the check fail and the deploy refuse to start; `reshard` then moves every
account with its state into the stacks of 4, sending nothing, and a preview of them plans nothing.
About 70 s here (110 s with the machine under load).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.shards import shard_of

from tools.pulumi_project import PROJECT

from ..conftest import TEST_KEY
from .conftest import ROOT, PulumiProject

SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))
FLEET = {
    "defaults": {"click": {"enabled": False}},
    "parent": {},
    "subusers": [
        {"username": "alice", "open": {"enabled": False}},
        {"username": "heidi"},
        {"username": "carol", "region": "eu", "open": {"enabled": False}},
        {"username": "frank"},
        {"username": "bob"},
    ],
}
# account → (its shard of 3, its settings)
ACCOUNTS = {
    "global": (3, {"click"}),
    "global/alice": (1, {"click", "open"}),
    "global/heidi": (1, {"click"}),
    "eu/carol": (2, {"click", "open"}),
    "global/frank": (2, {"click"}),
    "global/bob": (3, {"click"}),
}
SETTING_TYPES = {"ClickTracking": "click", "OpenTracking": "open"}


@pytest.fixture
def sharded_emulator() -> Iterator[Emulator]:
    # 4 requests a second for the key; 3 shards at 0.8 a second each stay under it.
    state = EmulatorState(api_keys=[TEST_KEY], rate_limit=4, rate_window=1.0)
    for name in ("alice", "heidi", "frank", "bob"):
        state.add_subuser("global", name, enabled=True)
    state.add_subuser("eu", "carol", enabled=True)
    with Emulator(state) as running:
        yield running


@pytest.fixture
def fleet_project(tmp_path: Path, sharded_emulator: Emulator, pulumi_bin: Path) -> PulumiProject:
    project = PulumiProject(tmp_path, sharded_emulator, pulumi_bin)
    (project.dir / "fleet.yaml").write_text(yaml.safe_dump(FLEET))
    project.run("config", "set", f"{PROJECT}:fleetFile", "fleet.yaml")
    project.run("config", "set", "sendgrid:maxRequestsPerSecond", "0.8")
    return project


def shards(project: PulumiProject, *args: str) -> tuple[int, dict[str, Any]]:
    argv = [str(ROOT / "pipelines" / "shards"), *args, "--stack", "dev", "--project-dir", str(project.dir)]
    result = project.exec(argv)
    assert "Traceback" not in result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert not [e.message for e in SCHEMA.iter_errors(data)]
    assert data["exit_code"] == result.returncode
    return result.returncode, data


def accounts_in(project: PulumiProject, stack: str) -> dict[str, set[str]]:
    """account → its settings, in the stack's state."""
    export = json.loads(project.run("stack", "export", "--stack", stack).stdout)
    found: dict[str, set[str]] = {}
    for resource in export["deployment"].get("resources", []):
        kind = resource["type"].rsplit(":", 1)[-1]
        if kind in SETTING_TYPES:
            outputs = resource["outputs"]
            who = outputs.get("on_behalf_of")
            account = f"{outputs['region']}/{who}" if who else outputs["region"]
            found.setdefault(account, set()).add(SETTING_TYPES[kind])
    return found


def test_a_fleet_in_three_shards(fleet_project: PulumiProject) -> None:
    project = fleet_project
    assert {a: shard_of(a, 3) for a in ACCOUNTS} == {a: s for a, (s, _) in ACCOUNTS.items()}

    code, created = shards(project, "init", "--shards", "3")
    assert code == 0 and created["command"] == "shard-check" and created["summary"]["checked"] == 0
    for index in (1, 2, 3):
        config = yaml.safe_load((project.dir / f"Pulumi.dev-shard-{index}-of-3.yaml").read_text())["config"]
        assert config[f"{PROJECT}:shard"] == f"{index}/3"
        assert config[f"{PROJECT}:fleetFile"] == "fleet.yaml"  # copied from dev

    project.api_log()
    code, deployed = shards(project, "deploy", "--shards", "3")
    assert code == 0, deployed["errors"]
    assert [(s["stack"], s["ok"]) for s in deployed["shards"]] == [(f"dev-shard-{i}-of-3", True) for i in (1, 2, 3)]
    assert deployed["summary"]["create"] == 8 and deployed["summary"]["failed"] == 0
    assert {(c["account"], c["setting"]) for c in deployed["changes"]} == {
        (a, s) for a, (_, settings) in ACCOUNTS.items() for s in settings
    }
    log = project.emulator.state.request_log()
    assert log and [e for e in log if e["status"] == 429] == []  # paced: no request refused
    world = project.emulator.state.snapshot()
    assert world["global"]["parent"]["click"]["enabled"] is False
    for name in ("alice", "heidi", "frank", "bob"):
        assert world["global"]["subusers"][name]["click"]["enabled"] is False
    assert world["eu"]["subusers"]["carol"]["click"]["enabled"] is False
    assert world["eu"]["subusers"]["carol"]["open"]["enabled"] is False

    for index in (1, 2, 3):  # each account, every setting of it, in the stack of its shard only
        expected = {a: settings for a, (shard, settings) in ACCOUNTS.items() if shard == index}
        assert accounts_in(project, f"dev-shard-{index}-of-3") == expected
    assert accounts_in(project, "dev") == {}  # the fleet's own stack manages nothing

    project.api_log()
    code, again = shards(project, "preview", "--shards", "3")
    assert code == 0 and again["changes"] == [] and again["summary"]["same"] == 8
    assert [s["summary"]["same"] for s in again["shards"]] == [3, 3, 2]
    assert project.api_log() == []  # a preview of every shard sends nothing

    code, checked = shards(project, "check", "--shards", "3")
    assert code == 0 and checked["errors"] == [] and checked["summary"]["checked"] == 8

    # A shard stack of another count: the check fails, and a deploy does not start.
    project.run("stack", "init", "dev-shard-1-of-4", "--copy-config-from", "dev-shard-1-of-3", "--no-select")
    project.run("config", "set", f"{PROJECT}:shard", "1/4", "--stack", "dev-shard-1-of-4")
    code, failed = shards(project, "check", "--shards", "3")
    assert code == 1
    assert [e["message"] for e in failed["errors"]] == [
        "dev-shard-1-of-4 is a shard stack of 4 shards, but the fleet runs as 3: two shard counts at once would "
        "put an account in two stacks"
    ]
    project.api_log()
    code, refused = shards(project, "deploy", "--shards", "3")
    assert code == 1 and refused["errors"] == failed["errors"] and refused["changes"] == []
    assert project.api_log() == []

    # Going to 4 shards: every account moves, with its state, to its stack of 4; nothing is sent.
    originals = {a: accounts_in(project, f"dev-shard-{s}-of-3") for a, (s, _) in ACCOUNTS.items()}
    code, moved = shards(project, "reshard", "--shards", "4")
    assert code == 0, [e["message"] for e in moved["errors"]]
    assert moved["summary"]["checked"] == 8
    assert project.api_log() == []
    stacks = json.loads(project.run("stack", "ls", "--json").stdout)
    assert sorted(s["name"] for s in stacks) == ["dev"] + [f"dev-shard-{i}-of-4" for i in (1, 2, 3, 4)]
    for index in (1, 2, 3, 4):
        expected = {a: settings for a, (_, settings) in ACCOUNTS.items() if shard_of(a, 4) == index}
        assert accounts_in(project, f"dev-shard-{index}-of-4") == expected
    assert originals  # the adoption records moved too: a preview plans nothing for any account
    code, after = shards(project, "preview", "--shards", "4")
    assert code == 0 and after["changes"] == [] and after["summary"]["same"] == 8
    assert project.api_log() == []


def ledger(project: PulumiProject, stack: str) -> dict[str, Any] | None:
    """The entries of a stack's originals ledger (kept as JSON text, read here); None when it has none."""
    resources = project.export("--stack", stack)["deployment"].get("resources") or []
    found = [r["outputs"]["entries"] for r in resources if r["type"].endswith(":Originals")]
    return {key: json.loads(text) for key, text in found[0].items()} if found else None


def test_a_fleet_of_one_stack_moves_into_shards(project: PulumiProject) -> None:
    """A bad shard fails preview; then the stack's deployed fleet moves, with its state, into 2 shard stacks."""
    fleet = {
        "parent": {"enabled": False},
        "subusers": [{"username": "alice", "enabled": False}, {"username": "carol", "region": "eu", "enabled": False}],
    }
    (project.dir / "fleet.yaml").write_text(yaml.safe_dump(fleet))  # a sharded fleet is read from a file
    project.run("config", "set", f"{PROJECT}:fleetFile", "fleet.yaml")
    project.run("config", "set", f"{PROJECT}:shard", "0/3")
    result = project.run("preview", check=False)
    assert result.returncode != 0
    assert (
        "invalid stack config (Pulumi.dev.yaml): sendgrid-click-tracking:shard: '0/3': the index must be between "
        "1 and 3 (the count), got 0" in result.stdout + result.stderr
    )
    project.run("config", "rm", f"{PROJECT}:shard")
    project.up()
    assert accounts_in(project, "dev") == {"global": {"click"}, "global/alice": {"click"}, "eu/carol": {"click"}}

    ledgers = {"dev": ledger(project, "dev")}
    assert ledgers["dev"] == {
        "click/global": {"originals": {"enabled": True}},
        "click/global/alice": {"originals": {"enabled": True}},
        "click/eu/carol": {"originals": {"enabled": True}},
    }
    project.api_log()
    code, moved = shards(project, "reshard", "--shards", "2")
    assert code == 0, [e["message"] for e in moved["errors"]]
    assert accounts_in(project, "dev") == {}  # the fleet's stack stays, with its config, and manages nothing
    assert accounts_in(project, "dev-shard-1-of-2") == {"global": {"click"}, "global/alice": {"click"}}
    assert accounts_in(project, "dev-shard-2-of-2") == {"eu/carol": {"click"}}
    # The stack's originals ledger moved with them: each shard's holds its accounts' entries, as they were.
    ledger_before = ledgers["dev"]
    assert ledger(project, "dev") is None  # emptied, then removed
    assert ledger(project, "dev-shard-1-of-2") == {k: ledger_before[k] for k in ("click/global", "click/global/alice")}
    assert ledger(project, "dev-shard-2-of-2") == {"click/eu/carol": ledger_before["click/eu/carol"]}
    code, after = shards(project, "preview", "--shards", "2")
    assert code == 0 and after["changes"] == [] and after["summary"]["same"] == 3
    # The originals moved with the records: what each account held before the stack took it over.
    assert {(s["account"], s["originals"]["enabled"]) for s in after["state"]} == {
        ("global", True),
        ("global/alice", True),
        ("eu/carol", True),
    }
    assert project.api_log() == []
