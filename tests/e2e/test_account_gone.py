"""An account deleted in SendGrid: refresh and destroy fail saying it seems gone and naming both ways
out, and both ways out work end to end. Both go through the setting's resource, named by its account
(`...:ClickTracking::global/bob`): it holds the originals, and its delete is the give-back.
"""

from __future__ import annotations

import pytest

from tools.pulumi_project import PROJECT

from ..figures import record
from .conftest import PulumiProject

BOB_URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:ClickTracking::global/bob"


def deploy_then_delete_bob(project: PulumiProject) -> None:
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": False}])
    project.up()
    project.emulator.state.delete_subuser("global", "bob")  # someone deletes the subuser in SendGrid


def assert_says_gone_with_both_ways_out(text: str) -> None:
    text = " ".join(text.split())  # the engine wraps long lines
    assert "'bob' seems to be gone" in text and "ClickTracking resource 'global/bob'" in text
    assert "`onDelete: keep`) and run `pulumi up --target <urn>`" in text  # way out 1
    assert "(2) `pulumi state delete <urn>`: the resource leaves the state" in text  # way out 2


@pytest.mark.parametrize("command", ["refresh", "destroy"])
def test_refresh_and_destroy_say_the_account_seems_gone(project: PulumiProject, command: str) -> None:
    deploy_then_delete_bob(project)
    failed = project.run(command, "--yes", "--skip-preview", check=False)
    assert failed.returncode != 0
    assert_says_gone_with_both_ways_out(failed.stdout)
    assert "the key needs the" not in failed.stdout  # not mistaken for a missing scope
    left = {r["urn"]: r.get("outputs", {}) for r in project.export()["deployment"]["resources"]}
    # The state still says what it has to give back: bob's setting, with the original it restores.
    assert left[BOB_URN]["originals"] == {"enabled": True} and left[BOB_URN]["name"] == "subuser-bob"
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
    project.up("--target", BOB_URN)  # only bob's setting takes `keep`: nothing is sent
    assert project.api_log() == []
    bob = {r["urn"]: r.get("outputs", {}) for r in project.export()["deployment"]["resources"]}[BOB_URN]
    assert bob["on_delete"] == "keep" and bob["originals"] == {"enabled": True}
    if after == "refresh":
        project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
        project.up()  # bob's resource goes; keep sends nothing to the gone account
        assert project.api_log() == []
        assert set(project.resources()) == {"subuser-alice"}
        project.run("preview", "--expect-no-changes")
    project.run("destroy", "--yes", "--skip-preview")  # and the rest of the stack destroys
    # Only the request that found bob gone: refresh's GET, or the give-back's GET before any PATCH (the
    # probe that told it is made on the parent account).
    since = project.emulator.state.request_log()[gone_at:]
    assert [e["method"] for e in since if e["on_behalf_of"] == "bob"] == ["GET"]
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
    assert project.export()["deployment"].get("resources", []) == []
    record("gone", command=f"way out 1 after a failed {after}", outcome="onDelete: keep, up --target setting, ...")


def test_way_out_two_state_delete(project: PulumiProject) -> None:
    deploy_then_delete_bob(project)
    project.run("state", "delete", BOB_URN, "--yes")  # bob's setting; nothing depends on it
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
    project.api_log()
    project.up()
    assert project.api_log() == []
    state = project.export()["deployment"]["resources"]
    assert not any(r["urn"] == BOB_URN for r in state)
    assert set(project.resources()) == {"subuser-alice"}
    project.run("preview", "--expect-no-changes")
    project.run("destroy", "--yes", "--skip-preview")
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
    record("gone", command="way out 2", outcome="pulumi state delete, remove, pulumi up")
