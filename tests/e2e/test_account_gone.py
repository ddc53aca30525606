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
    assert "'bob' seems to be gone" in text
    assert "on_delete to 'keep'" in text and "`onDelete: keep`" in text  # way out 1
    assert "pulumi state delete <urn> --target-dependents" in text and "'click/global/bob'" in text  # way out 2


@pytest.mark.parametrize("command", ["refresh", "destroy"])
def test_refresh_and_destroy_say_the_account_seems_gone(project: PulumiProject, command: str) -> None:
    deploy_then_delete_bob(project)
    failed = project.run(command, "--yes", "--skip-preview", check=False)
    assert failed.returncode != 0
    assert_says_gone_with_both_ways_out(failed.stdout)
    assert "the key needs the" not in failed.stdout  # not mistaken for a missing scope
    assert "subuser-bob" in project.resources()  # the state still says what it knows
    record("gone", command=command, outcome="failed naming both ways out")


def test_way_out_one_keep_then_remove(project: PulumiProject) -> None:
    deploy_then_delete_bob(project)
    project.set_fleet(
        subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": False, "onDelete": "keep"}]
    )
    project.api_log()
    project.up()  # only on_delete changes: nothing is sent
    assert project.api_log() == []
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
    project.up()  # bob's resource and record go; keep sends nothing to the gone account
    assert project.api_log() == []
    assert set(project.resources()) == {"subuser-alice"}
    project.run("preview", "--expect-no-changes")
    project.run("destroy", "--yes", "--skip-preview")  # and the rest of the stack still destroys
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
    record("gone", command="way out 1", outcome="onDelete: keep, pulumi up, remove, pulumi up")


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
