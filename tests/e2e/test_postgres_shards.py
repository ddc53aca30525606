"""A fleet of 10 accounts as 8 shard stacks, its state in a real PostgreSQL server, through the real engine.

Nine stacks in one project: more than Pulumi's postgres backend lets `pulumi stack ls` list with its
default worker pool (docs/upstream-postgres-stack-ls.md), which these tests prove is still so in the
pinned engine, and which the pipelines' runner avoids. Then, with the emulator's request log asserted
at each step: an inline fleet refused for sharding; `init`; a parallel `deploy` (one GET and one PATCH
per account); `check`; a plain deploy of the fleet's own stack refused with nothing sent; a
`drift-check` that finds the one account changed behind its back; a preview of another count that
warns of the accounts the stacks of 8 still hold; a `reshard` to 5 that sends nothing; and a preview
that plans nothing and sends nothing. One username (alice) is in both regions: two accounts.
GOMAXPROCS=2 in every run gives the backend the 4-connection pool of a 2-core machine, whatever this one has.
About 4.5 minutes here, with the 2 cores under a load average of 15 (other work on the machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.shards import shard_of

from tools.pulumi_project import PROJECT

from ..support.postgres import PostgresServer
from .conftest import ROOT, PulumiProject

KEY = "SG.pg-shards-test-key"
SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))
GLOBAL = ("alice", "bob", "dave", "erin", "frank", "grace", "heidi")
EU = ("alice", "carol")
FLEET = {
    "parent": {"click": {"enabled": False}},
    "subusers": [{"username": n, "region": "global", "click": {"enabled": False}} for n in GLOBAL]
    + [{"username": n, "region": "eu", "click": {"enabled": False}} for n in EU],
}
ACCOUNTS = ["global", *(f"global/{n}" for n in GLOBAL), *(f"eu/{n}" for n in EU)]


@pytest.fixture
def sendgrid() -> Iterator[Emulator]:
    state = EmulatorState(api_keys=[KEY])
    for name in GLOBAL:
        state.add_subuser("global", name, enabled=True)
    for name in EU:
        state.add_subuser("eu", name, enabled=True)
    with Emulator(state) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, sendgrid: Emulator, pulumi_bin: Path, postgres_server: PostgresServer) -> PulumiProject:
    server = postgres_server
    if not server.running():
        server.start()
    server.admin_sql("DROP DATABASE IF EXISTS shards WITH (FORCE)")
    server.create_database("shards")
    return PulumiProject(
        tmp_path, sendgrid, pulumi_bin, api_key=KEY, backend_url=server.url("shards"), env={"GOMAXPROCS": "2"}
    )


def shards(project: PulumiProject, *args: str) -> tuple[int, dict[str, Any], str]:
    argv = [str(ROOT / "pipelines" / "shards"), *args, "--stack", "dev", "--project-dir", str(project.dir)]
    result = project.exec(argv)
    assert "Traceback" not in result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert not [e.message for e in SCHEMA.iter_errors(data)]
    assert data["exit_code"] == result.returncode
    return result.returncode, data, result.stderr


def requests(project: PulumiProject) -> list[tuple[str, str]]:
    """(method, account) of every request since the last call, sorted."""
    log = project.emulator.state.request_log()[project._seen :]
    project._seen += len(log)
    return sorted((e["method"], f"{e['world']}/{e['on_behalf_of']}" if e["on_behalf_of"] else e["world"]) for e in log)


def accounts_in(project: PulumiProject, stack: str) -> set[str]:
    export = json.loads(project.run("stack", "export", "--stack", stack).stdout)
    found = set()
    for resource in export["deployment"].get("resources", []):
        if resource["type"].endswith("ClickTracking"):
            outputs = resource["outputs"]
            who = outputs.get("on_behalf_of")
            found.add(f"{outputs['region']}/{who}" if who else outputs["region"])
    return found


def stack_names(project: PulumiProject) -> list[str]:
    return sorted(s["name"] for s in json.loads(project.run("stack", "ls", "--json").stdout))


def test_the_pinned_engine_still_hangs_listing_stacks_on_postgres(project: PulumiProject) -> None:
    """Upstream's bug, kept visible: with more stacks than the pool has connections, a plain `pulumi stack ls`
    (10 workers, each holding a connection and waiting for another) never ends. When this test fails, the
    pinned engine lists them: backend_env's PULUMI_DIY_BACKEND_PARALLEL=1 can go."""
    for name in ("s1", "s2", "s3"):
        project.run("stack", "init", name, "--no-select")
    assert stack_names(project) == ["dev", "s1", "s2", "s3"]  # through the runner: one stack at a time
    proc = subprocess.Popen(
        ["pulumi", "stack", "ls", "--json", "--non-interactive"],
        cwd=project.dir,
        env=project.env,  # PULUMI_DIY_BACKEND_PARALLEL unset: the default of 10 workers, a pool of 4
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.communicate(timeout=20)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


@pytest.mark.timeout(600)  # about 3 minutes here; 5 with the machine's 2 cores under a load of 17
def test_a_fleet_in_eight_shards_on_postgres(project: PulumiProject) -> None:
    assert sorted({shard_of(a, 8) for a in ACCOUNTS}) != [1]  # spread over the shards
    # An inline fleet is refused for sharding, and nothing is created.
    project.set_fleet(subusers=FLEET["subusers"])
    code, refused, _ = shards(project, "init", "--shards", "8")
    assert code == 1
    assert [e["message"] for e in refused["errors"]] == [
        "dev's fleet is inline in its stack config (sendgrid-click-tracking:subusers): a sharded fleet is read from "
        "a file, so that every shard stack reads the one the fleet's stack names, at every run"
    ]
    assert stack_names(project) == ["dev"]

    project.set_fleet()  # the inline keys gone; the fleet in its file
    (project.dir / "fleet.yaml").write_text(yaml.safe_dump(FLEET))
    project.run("config", "set", f"{PROJECT}:fleetFile", "fleet.yaml")
    code, created, _ = shards(project, "init", "--shards", "8")
    assert code == 0, created["errors"]
    assert stack_names(project) == ["dev", *(f"dev-shard-{i}-of-8" for i in range(1, 9))]
    assert requests(project) == []

    code, deployed, _ = shards(project, "deploy", "--shards", "8", "--jobs", "4")
    assert code == 0, deployed["errors"]
    assert deployed["summary"]["create"] == 10 and len(deployed["shards"]) == 8
    assert requests(project) == sorted([("GET", a) for a in ACCOUNTS] + [("PATCH", a) for a in ACCOUNTS])
    for index in range(1, 9):
        assert accounts_in(project, f"dev-shard-{index}-of-8") == {a for a in ACCOUNTS if shard_of(a, 8) == index}
    world = project.emulator.state.snapshot()
    assert world["eu"]["subusers"]["alice"]["click"]["enabled"] is False  # alice, in both regions
    assert world["global"]["subusers"]["alice"]["click"]["enabled"] is False

    code, checked, _ = shards(project, "check", "--shards", "8")
    assert code == 0 and checked["errors"] == [] and checked["summary"]["checked"] == 10

    # The fleet's own stack is never deployed plainly: refused before any pulumi command, nothing sent.
    result = project.exec([str(ROOT / "pipelines" / "deploy"), "--stack", "dev", "--project-dir", str(project.dir)])
    plain = json.loads(result.stdout)
    assert result.returncode == 1 and [e["kind"] for e in plain["errors"]] == ["stack"]
    assert plain["errors"][0]["hint"] == (
        "run pipelines/shards deploy --stack dev --shards 8 instead (README, Big fleets and sharding)"
    )
    assert requests(project) == [] and accounts_in(project, "dev") == set()

    # Drift behind the fleet's back: one GET per account, the one changed account reported.
    state = project.emulator.state
    state.update_setting(state.account("global", "bob"), "click", {"enabled": True})
    code, drift, _ = shards(project, "drift-check", "--shards", "8")
    assert code == 2, drift["errors"]
    assert [(d["account"], d["field"], d["live"]) for d in drift["drift"]] == [("global/bob", "enabled", True)]
    assert requests(project) == sorted(("GET", a) for a in ACCOUNTS)

    # A preview of another count before moving anything: it warns that the stacks of 8 still hold the accounts.
    code, early, stderr = shards(project, "preview", "--shards", "5")
    warned = [d["message"] for d in early["diagnostics"] if d["severity"] == "warning"]
    holding = sorted({f"dev-shard-{shard_of(a, 8)}-of-8" for a in ACCOUNTS})
    assert [w.split(" ", 1)[0] for w in warned] == holding
    assert all(w.endswith("pipelines/shards reshard --stack dev --shards 5") for w in warned)
    assert "warning: dev-shard-" in stderr
    assert requests(project) == []

    # To 5 shards: every account moves with its state; nothing is sent; a preview plans nothing.
    code, moved, _ = shards(project, "reshard", "--shards", "5")
    assert code == 0, [e["message"] for e in moved["errors"]]
    assert moved["summary"]["checked"] == 10
    assert stack_names(project) == ["dev", *(f"dev-shard-{i}-of-5" for i in range(1, 6))]
    for index in range(1, 6):
        assert accounts_in(project, f"dev-shard-{index}-of-5") == {a for a in ACCOUNTS if shard_of(a, 5) == index}
    code, after, _ = shards(project, "preview", "--shards", "5")
    assert code == 0 and after["changes"] == [] and after["summary"]["same"] == 10, after["errors"]
    assert [d for d in after["diagnostics"] if d["severity"] == "warning"] == []
    assert requests(project) == []
