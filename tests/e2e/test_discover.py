"""Adopting a whole account through the real engine: discover, preview, deploy, destroy; --diff after changes.

A world of several hundred subusers in both regions with mixed settings. Adopting changes nothing: the
preview plans only creates whose values SendGrid already holds, the deploy sends GETs and no PATCH, the
originals recorded are the values discovered, and destroy leaves (or puts) every account where it was.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.fleet import load_fleet_yaml, parse_fleet
from pulumi_sendgrid_tracking.shards import Shard
from pulumi_sendgrid_tracking.singleton import same

from tools.pulumi_project import PROJECT

from ..conftest import TEST_KEY
from .conftest import ROOT, PulumiProject
from .test_pipelines import SCHEMA, TOP_LEVEL

SUBUSERS = int(os.environ.get("E2E_DISCOVER_SUBUSERS", "300"))
"""Half global, half EU. Discover reads all of them; the engine part runs one shard of the fleet (SHARD), one
setting per account (subscription: the one with optional fields), so the test stays within a few minutes on a
loaded machine: a fleet this size is meant to run as shard stacks anyway."""
SETTING = "subscription"
SHARD = Shard(1, 6)


def world(n: int) -> dict[str, Any]:
    def subscription(i: int) -> dict[str, Any]:
        values: dict[str, Any] = {"enabled": i % 3 == 0}
        if i % 4 == 0:
            values |= {"html_content": f"<p>Leave list {i % 8}: <% here %></p>", "plain_content": "Leave: <% %>"}
        if i % 5 == 0:
            values["url"] = f"https://example.com/unsubscribe/{i % 10}"
        if i % 7 == 0:
            values["replace"] = "[unsubscribe]"
        return {"subscription": values, "click": {"enabled": i % 2 == 0}}

    half = n // 2
    return {
        "global": {
            "parent": {"subscription": {"enabled": True, "url": "https://example.com/bye"}},
            "subusers": {f"g{i:03}": subscription(i) for i in range(half)} | {"retired": {"disabled": True}},
        },
        "eu": {"subusers": {f"e{i:03}": subscription(i + 1) for i in range(n - half)}},
    }


def originals_recorded(project: PulumiProject) -> dict[tuple[str, str | None], dict[str, Any]]:
    """(region, on_behalf_of) → the original of each managed field, as the stack records it.

    The one place that knows where originals live: each setting resource's `originals` (values, nulls
    left out) and `held_fields` (names) outputs, the one source every give-back uses.
    """
    found = {}
    for resource in project.export()["deployment"]["resources"]:
        if not resource["type"].endswith(":SubscriptionTracking"):
            continue
        outs = resource["outputs"]
        originals = outs.get("originals") or {}
        found[(outs["region"], outs.get("on_behalf_of"))] = {
            f: originals.get(f) for f in outs["managed_fields"] if f in outs["held_fields"]
        }
    return found


def live(state: EmulatorState) -> dict[tuple[str, str | None], dict[str, Any]]:
    snapshot = state.snapshot()
    found = {("global", None): snapshot["global"]["parent"][SETTING]}
    for region, data in snapshot.items():
        disabled = set(data["disabled"]["subusers"])
        found |= {(region, user): s[SETTING] for user, s in data["subusers"].items() if user not in disabled}
    return found


def checked(code: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The JSON output, valid against the schema (discover adds `discovery`), with its exit code, no traceback."""
    assert "Traceback" not in stdout + stderr
    data: dict[str, Any] = json.loads(stdout)
    errors = sorted(SCHEMA.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert set(data) - {"discovery"} == TOP_LEVEL and data["exit_code"] == code
    return data


def script(project: PulumiProject, name: str, *extra: str) -> tuple[int, dict[str, Any]]:
    argv = [str(ROOT / "pipelines" / name), "--stack", "dev", "--project-dir", str(project.dir), *extra]
    result = project.exec(argv)
    return result.returncode, checked(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def without_rate_limit(e2e_emulator: Emulator) -> Iterator[None]:
    """No emulated 600/min limit for the duration of a test: one that reads a few hundred accounts three times
    in well under a minute would exhaust it on a fast machine (and not on a slow one). 429s are injected as
    faults where a test wants them; the limit itself is tested on its own."""
    limit = e2e_emulator.state.rate_limit
    e2e_emulator.state.configure(rate_limit=1_000_000)
    yield
    e2e_emulator.state.configure(rate_limit=limit)


@pytest.mark.usefixtures("without_rate_limit")
def test_adopting_a_fleet_of_hundreds_changes_nothing(project: PulumiProject, e2e_emulator: Emulator) -> None:
    state = e2e_emulator.state
    state.reset()
    state.seed(world(SUBUSERS))
    stack_file = project.dir / "Pulumi.dev.yaml"
    data = (yaml.safe_load(stack_file.read_text()) if stack_file.exists() else None) or {}
    config = {f"{PROJECT}:fleetFile": "fleets/dev.yaml", f"{PROJECT}:shard": str(SHARD)}
    stack_file.write_text(yaml.safe_dump({**data, "config": config}))
    before = copy.deepcopy(state.snapshot())
    for user in ("g001", "e002", "g010"):  # a 429 storm during the reads
        e2e_emulator.admin.add_fault("429", account=user, count=2)

    code, found = script(project, "discover", "--settings", SETTING)
    assert code == 0, found["errors"]
    fleet_file = project.dir / "fleets" / "dev.yaml"
    text = fleet_file.read_text()
    assert TEST_KEY not in text and TEST_KEY not in "".join(project.outputs)
    assert [s["account"] for s in found["discovery"]["skipped"]] == ["global/retired"]
    entries = parse_fleet(load_fleet_yaml(text, "dev.yaml"))
    assert len(entries) == SUBUSERS + 1
    discovered = {(e.region or "global", e.on_behalf_of): dict(e.values) for e in entries}
    assert discovered.keys() == live(state).keys()
    assert all(same(live(state)[k].get(f), v) for k, values in discovered.items() for f, v in values.items())
    assert {e["method"] for e in state.request_log()} == {"GET"}

    managed = {key for key in discovered if SHARD.holds(*key)}
    assert 0 < len(managed) < len(discovered)

    project.api_log()
    code, preview = script(project, "preview")
    assert code == 0
    assert project.api_log() == []  # a preview sends nothing
    assert preview["summary"]["create"] == len(managed)
    assert {(c["action"], c["effect"]) for c in preview["changes"]} == {("create", "set")}
    now = live(state)
    for change in preview["changes"]:  # every planned value is the one SendGrid holds: the PATCH sends nothing
        held = now[(change["region"], change["on_behalf_of"])]
        assert all(same(held.get(f["field"]), f["after"]) for f in change["fields"] if f["field"] != "on_delete")

    code, deployed = script(project, "deploy")
    assert code == 0, deployed["errors"]
    requests = project.api_log()
    assert {method for method, _, _ in requests} == {"GET"}  # no PATCH at all
    assert len(requests) == len(managed)  # one read per account, by its adoption record
    assert state.snapshot() == before

    originals = originals_recorded(project)
    assert originals.keys() == managed
    assert all(same(originals[k][f], v) for k in managed for f, v in discovered[k].items())

    # Someone changes a setting in SendGrid's UI, and a subuser appears: --diff says so and writes nothing.
    state.set_out_of_band("eu", "e003", SETTING, {"enabled": True, "url": "https://example.com/moved"})
    state.add_subuser("global", "newcomer")
    code, diff = script(project, "discover", "--diff", "--settings", SETTING)
    assert code == 2 and diff["exit_code"] == 2, diff.get("errors")
    assert fleet_file.read_text() == text
    assert [d["account"] for d in diff["discovery"]["not_in_fleet"]] == ["global/newcomer"]
    assert diff["discovery"]["not_in_sendgrid"] == []
    assert {(d["account"], d["field"], d["live"]) for d in diff["drift"]} == {
        ("eu/e003", "enabled", True),
        ("eu/e003", "url", "https://example.com/moved"),
    }
    state.set_out_of_band("eu", "e003", SETTING, {"url": ""} | before["eu"]["subusers"]["e003"][SETTING])
    state.delete_subuser("global", "newcomer")

    # The fleet is edited and deployed (real changes), then destroyed: every account is back where it was.
    data = load_fleet_yaml(text, "dev.yaml")
    data["defaults"]["subscription"]["enabled"] = not data["defaults"]["subscription"]["enabled"]
    fleet_file.write_text(yaml.safe_dump(data, sort_keys=False))
    code, changed = script(project, "deploy")
    assert code == 0 and changed["summary"]["update"] > 0
    assert state.snapshot() != before
    project.run("destroy", "--yes", "--skip-preview")
    after = state.snapshot()
    del after["global"]["deleted"], before["global"]["deleted"]  # newcomer came and went
    assert after == before


def test_discover_in_emulator_mode_like_the_other_scripts(tmp_path: Path, pulumi_bin: Path) -> None:
    """`--emulator`: the local world of `make demo`, in a copy of the project; nothing tracked is changed."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy(ROOT / name, project / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDGRID_", "PULUMI_"))}
    env["PATH"] = f"{pulumi_bin}{os.pathsep}{env['PATH']}"
    argv = [sys.executable, "-m", "pipelines.discover", "--emulator", "--stack", "dev", "--project-dir", str(project)]
    argv += ["--output", str(tmp_path / "dev.yaml")]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = checked(result.returncode, result.stdout, result.stderr)
    assert out["mode"] == "emulator" and out["ok"], out["errors"]
    accounts = {s["account"] for s in out["state"]}
    assert {"global", "global/alice", "eu/carol"} <= accounts  # tools/demo-seed.json's world
    assert (tmp_path / "dev.yaml").read_text().startswith("# What SendGrid held")
