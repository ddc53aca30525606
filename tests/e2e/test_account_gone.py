"""An account deleted in SendGrid: refresh and destroy fail saying it seems gone and naming both ways
out, and both ways out work end to end.
"""

from __future__ import annotations

import pytest

from tools.pulumi_project import PROJECT

from ..figures import record
from .conftest import PulumiProject

BOB_URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:ClickTracking::subuser-bob"
BOB_RECORD_URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:Adoption::click/global/bob"


def deploy_then_delete_bob(project: PulumiProject) -> None:
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": False}])
    project.up()
    project.emulator.state.delete_subuser("global", "bob")  # someone deletes the subuser in SendGrid


def assert_says_gone_with_both_ways_out(text: str) -> None:
    text = " ".join(text.split())  # the engine wraps long lines
    assert "'bob' seems to be gone" in text and "'click/global/bob'" in text
    assert "`onDelete: keep`) and run `pulumi up --target <urn>`" in text  # way out 1
    assert "`pulumi state delete <urn> --target-dependents`" in text  # way out 2


@pytest.mark.parametrize("command", ["refresh", "destroy"])
def test_refresh_and_destroy_say_the_account_seems_gone(project: PulumiProject, command: str) -> None:
    deploy_then_delete_bob(project)
    failed = project.run(command, "--yes", "--skip-preview", check=False)
    assert failed.returncode != 0
    assert_says_gone_with_both_ways_out(failed.stdout)
    assert "the key needs the" not in failed.stdout  # not mistaken for a missing scope
    left = {r["urn"] for r in project.export()["deployment"]["resources"]}
    assert BOB_RECORD_URN in left  # the state still says what it has to give back
    record("gone", command=command, outcome="failed naming both ways out")


@pytest.mark.parametrize("after", ["refresh", "destroy"])
def test_way_out_one_keep_then_remove(project: PulumiProject, after: str) -> None:
    deploy_then_delete_bob(project)
    gone_at = len(project.emulator.state.request_log())
    assert project.run(after, "--yes", "--skip-preview", check=False).returncode != 0
    project.set_fleet(
        subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": False, "onDelete": "keep"}]
    )
    project.api_log()
    project.up("--target", BOB_RECORD_URN)  # only the record takes `keep`: nothing is sent
    assert project.api_log() == []
    if after == "refresh":
        project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
        project.up()  # bob's resource and record go; keep sends nothing to the gone account
        assert project.api_log() == []
        assert set(project.resources()) == {"subuser-alice"}
        project.run("preview", "--expect-no-changes")
    project.run("destroy", "--yes", "--skip-preview")  # and the rest of the stack destroys
    # Only the request that found bob gone (the probe that told it is made on the parent account).
    since = project.emulator.state.request_log()[gone_at:]
    assert [e["method"] for e in since if e["on_behalf_of"] == "bob"] == (["GET"] if after == "refresh" else ["PATCH"])
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
    assert project.export()["deployment"].get("resources", []) == []
    record("gone", command=f"way out 1 after a failed {after}", outcome="onDelete: keep, up --target record, ...")


def test_way_out_two_state_delete(project: PulumiProject) -> None:
    deploy_then_delete_bob(project)
    project.run("state", "delete", BOB_RECORD_URN, "--target-dependents", "--yes")  # the record and the setting
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
    project.api_log()
    project.up()
    assert project.api_log() == []
    state = project.export()["deployment"]["resources"]
    assert not any(r["urn"] in (BOB_URN, BOB_RECORD_URN) for r in state)
    project.run("destroy", "--yes", "--skip-preview")
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
    record("gone", command="way out 2", outcome="pulumi state delete, remove, pulumi up")
