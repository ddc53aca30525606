"""Never silently out of step: ownership that moves within a run, one owner per account, interruptions.

Each test runs the real engine against the emulator and checks, after every step, what a user would:
SendGrid's live values, the state's outputs and originals, and that `pulumi preview --expect-no-changes`
passes; then destroys and checks every account is back at its value from before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from typing import Any

import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import Fault

from tools.pulumi_project import PROJECT

from ..figures import record
from .conftest import PulumiProject

PROGRAM = """
import pulumi
from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking

KINDS = {"click": ClickTracking, "open": OpenTracking, "subscription": SubscriptionTracking,
         "google_analytics": GoogleAnalytics}
for spec in pulumi.Config().get_object("resources") or []:
    spec = dict(spec)
    kind, name, aliases = spec.pop("kind", "click"), spec.pop("name"), spec.pop("aliases", None)
    opts = pulumi.ResourceOptions(aliases=[pulumi.Alias(name=a) for a in aliases]) if aliases else None
    KINDS[kind](name, **spec, opts=opts)
"""


def declare(project: PulumiProject, *resources: dict[str, Any]) -> None:
    """The program declares exactly these resources (name, kind, and the resource's arguments)."""
    (project.dir / "__main__.py").write_text(PROGRAM)
    path = project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data = data or {}
    data["config"] = {f"{PROJECT}:resources": list(resources)}
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def live(project: PulumiProject, user: str | None, world: str = "global", kind: str = "click") -> Any:
    data = project.emulator.state.snapshot()[world]
    account = data["parent"] if user is None else data["subusers"][user]
    return account[kind]["enabled"]


KIND_OF_TYPE = {
    "ClickTracking": "click",
    "OpenTracking": "open",
    "SubscriptionTracking": "subscription",
    "GoogleAnalytics": "google_analytics",
}


def settings_in_state(project: PulumiProject) -> dict[str, dict[str, Any]]:
    """The program's resource name → outputs (plus `kind`), for the setting resources (not the ledger).

    The engine names each by its account (`global/alice`); the program's name is its `name` input (a rename
    is no change, so the `name` output keeps the name of its last create or update).
    """
    resources = project.export()["deployment"].get("resources", [])
    return {
        (r.get("inputs", {}).get("name") or r["outputs"]["name"]): {
            **r.get("outputs", {}),
            "kind": KIND_OF_TYPE[r["type"].rsplit(":", 1)[1]],
        }
        for r in resources
        if r["type"].rsplit(":", 1)[1] in KIND_OF_TYPE
    }


def ledger_in_state(project: PulumiProject) -> dict[str, Any]:
    """The stack's originals ledger: setting key → its entry (the ledger keeps each as JSON text)."""
    resources = project.export()["deployment"].get("resources", [])
    found = [r for r in resources if r["type"] == "pulumi-python:dynamic/sendgrid:Originals"]
    return {key: json.loads(text) for key, text in found[0]["outputs"]["entries"].items()} if found else {}


def in_step(project: PulumiProject) -> None:
    """The promise: preview sees no change, and SendGrid holds what the state records."""
    project.run("preview", "--expect-no-changes")
    for name, outs in settings_in_state(project).items():
        assert live(project, outs.get("on_behalf_of"), outs["region"], outs["kind"]) == outs["enabled"], name


def patches(project: PulumiProject) -> list[tuple[str | None, Any]]:
    return [(obo, body) for method, obo, body in project.api_log() if method == "PATCH"]


# -- 1. a failed replacement, reverted ----------------------------------------------------------


def test_failed_region_change_then_revert_leaves_live_and_state_in_step(project: PulumiProject) -> None:
    emulator = project.emulator.state
    emulator.set_out_of_band("eu", "carol", "click", {"enabled": False})  # carol exists only in the EU
    declare(project, {"name": "carol", "enabled": True, "on_behalf_of": "carol", "region": "eu"})
    project.up()
    assert live(project, "carol", "eu") is True

    declare(project, {"name": "carol", "enabled": True, "on_behalf_of": "carol", "region": "global"})
    failed = project.up(check=False)
    assert failed.returncode != 0 and "failed (403)" in failed.stdout
    assert live(project, "carol", "eu") is True  # nothing was undone before the new account was known to exist

    declare(project, {"name": "carol", "enabled": True, "on_behalf_of": "carol", "region": "eu"})
    project.api_log()
    reverted = project.up()
    assert "to create" not in reverted.stdout and "replaced" not in reverted.stdout
    # The ledger released carol (EU) while the failed program did not declare it, and finds her original
    # again: no read of what this stack wrote, no request at all.
    assert project.api_log() == []
    assert live(project, "carol", "eu") is True
    assert settings_in_state(project)["carol"]["original_enabled"] is False
    assert ledger_in_state(project)["click/eu/carol"] == {"originals": {"enabled": False}}
    in_step(project)
    declare(project, {"name": "carol", "enabled": False, "on_behalf_of": "carol", "region": "eu"})
    project.up()  # an update: the setting keeps the original it holds, never the ledger's later read
    assert settings_in_state(project)["carol"]["original_enabled"] is False

    project.run("destroy", "--yes", "--skip-preview")
    assert live(project, "carol", "eu") is False  # back to the value from before the stack


def test_region_change_that_succeeds_then_revert(project: PulumiProject) -> None:
    emulator = project.emulator.state
    emulator.add_subuser("global", "carol", enabled=True)  # a carol in each region now
    emulator.set_out_of_band("eu", "carol", "click", {"enabled": False})
    declare(project, {"name": "carol", "enabled": True, "on_behalf_of": "carol", "region": "eu"})
    project.up()
    declare(project, {"name": "carol", "enabled": False, "on_behalf_of": "carol", "region": "global"})
    project.up()
    assert (live(project, "carol", "eu"), live(project, "carol", "global")) == (False, False)  # EU restored
    in_step(project)
    declare(project, {"name": "carol", "enabled": True, "on_behalf_of": "carol", "region": "eu"})
    project.up()
    assert (live(project, "carol", "eu"), live(project, "carol", "global")) == (True, True)  # global restored
    assert settings_in_state(project)["carol"]["original_enabled"] is False
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert (live(project, "carol", "eu"), live(project, "carol", "global")) == (False, True)


# -- 2. a rename without an alias ---------------------------------------------------------------


@pytest.mark.parametrize("on_delete", ["restore", "disable", "keep"])
def test_rename_without_alias_keeps_the_value_and_the_true_original(project: PulumiProject, on_delete: str) -> None:
    assert live(project, "bob") is True
    declare(project, {"name": "bob-a", "enabled": False, "on_behalf_of": "bob", "on_delete": on_delete})
    project.up()
    declare(project, {"name": "bob-b", "enabled": False, "on_behalf_of": "bob", "on_delete": on_delete})
    project.api_log()
    renamed = project.up()
    # The engine names the resource by its account: a rename is no change at all.
    assert "created" not in renamed.stdout and "deleted" not in renamed.stdout and "updated" not in renamed.stdout
    assert project.api_log() == []
    assert live(project, "bob") is False
    assert settings_in_state(project)["bob-b"]["original_enabled"] is True  # from before the stack took bob over
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert live(project, "bob") is {"restore": True, "disable": False, "keep": False}[on_delete]


def test_rename_with_a_changed_value_and_several_settings_of_one_account(project: PulumiProject) -> None:
    emulator = project.emulator.state
    emulator.set_out_of_band("global", "bob", "open", {"enabled": True})
    declare(
        project,
        {"name": "bob-clicks", "enabled": False, "on_behalf_of": "bob"},
        {"name": "bob-opens", "kind": "open", "enabled": False, "on_behalf_of": "bob"},
    )
    project.up()
    declare(
        project,
        {"name": "clicks-of-bob", "enabled": True, "on_behalf_of": "bob"},
        {"name": "opens-of-bob", "kind": "open", "enabled": False, "on_behalf_of": "bob"},
    )
    project.api_log()
    project.up()
    assert patches(project) == [("bob", {"enabled": True})]  # click set once, open untouched, no restore
    assert (live(project, "bob"), live(project, "bob", kind="open")) == (True, False)
    state = settings_in_state(project)
    assert (state["clicks-of-bob"]["original_enabled"], state["opens-of-bob"]["original_enabled"]) == (True, True)
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert (live(project, "bob"), live(project, "bob", kind="open")) == (True, True)


def test_rename_with_an_alias_is_no_change(project: PulumiProject) -> None:
    declare(project, {"name": "bob-a", "enabled": False, "on_behalf_of": "bob"})
    project.up()
    declare(project, {"name": "bob-b", "enabled": False, "on_behalf_of": "bob", "aliases": ["bob-a"]})
    project.api_log()
    project.run("preview", "--expect-no-changes")
    project.up()
    assert project.api_log() == []
    assert set(settings_in_state(project)) == {"bob-b"}


def test_two_resources_swap_their_accounts(project: PulumiProject) -> None:
    emulator = project.emulator.state
    emulator.set_out_of_band("global", "alice", "click", {"enabled": False})  # alice off, bob on, before the stack
    declare(
        project,
        {"name": "first", "enabled": True, "on_behalf_of": "alice"},
        {"name": "second", "enabled": False, "on_behalf_of": "bob"},
    )
    project.up()
    declare(
        project,
        {"name": "first", "enabled": True, "on_behalf_of": "bob"},
        {"name": "second", "enabled": False, "on_behalf_of": "alice"},
    )
    project.up()
    assert (live(project, "alice"), live(project, "bob")) == (False, True)
    state = settings_in_state(project)
    assert (state["first"]["original_enabled"], state["second"]["original_enabled"]) == (True, False)
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert (live(project, "alice"), live(project, "bob")) == (False, True)


def test_forced_replacement_keeps_the_account_and_its_original(project: PulumiProject) -> None:
    declare(project, {"name": "alice", "enabled": False, "on_behalf_of": "alice"})
    project.up()
    urn = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:ClickTracking::global/alice"
    project.api_log()
    project.up("--replace", urn)
    # Delete-first: the account is given back (its original), then taken over again from the ledger.
    assert patches(project) == [("alice", {"enabled": True}), ("alice", {"enabled": False})]
    assert live(project, "alice") is False
    assert settings_in_state(project)["alice"]["original_enabled"] is True
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert live(project, "alice") is True


# -- 3. two resources for one account -------------------------------------------------------------


def test_two_resources_for_one_account_fail_preview_naming_both(project: PulumiProject) -> None:
    declare(
        project,
        {"name": "bob-on", "enabled": True, "on_behalf_of": "bob"},
        {"name": "bob-off", "enabled": False, "on_behalf_of": "bob"},
    )
    failed = project.run("preview", check=False)
    assert failed.returncode != 0
    assert "'bob-on' and 'bob-off' both manage click tracking of subuser 'bob' (global)" in failed.stdout
    assert project.api_log() == []
    # Different settings of one account, or one account in each region, are different owners.
    project.emulator.state.add_subuser("eu", "bob", enabled=True)
    declare(
        project,
        {"name": "bob-clicks", "enabled": False, "on_behalf_of": "bob"},
        {"name": "bob-opens", "kind": "open", "enabled": False, "on_behalf_of": "bob"},
        {"name": "bob-eu", "enabled": False, "on_behalf_of": "bob", "region": "eu"},
    )
    project.up()
    in_step(project)


def test_the_default_region_counts_as_the_region_for_one_owner(project: PulumiProject) -> None:
    declare(
        project,
        {"name": "implicit", "enabled": True},
        {"name": "explicit", "enabled": False, "region": "global"},
    )
    failed = project.run("preview", check=False)
    assert failed.returncode != 0 and "'implicit' and 'explicit' both manage" in failed.stdout
    assert project.api_log() == []


# -- 4. interrupted runs ---------------------------------------------------------------------------


def wait_for_changes(project: PulumiProject, proc: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 120
    while sum(1 for e in project.emulator.state.request_log() if e["changed"]) < count:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)


def repair_empty_sidecars(project: PulumiProject) -> list[str]:
    """docs/behaviour.md's step for a file backend killed mid-checkpoint (`failed to load checkpoint: EOF`)."""
    repaired = []
    for sidecar in project.state_dir.rglob("*.json.attrs"):
        if sidecar.stat().st_size == 0:
            json.loads(sidecar.with_suffix("").read_text())  # the state itself is intact
            sidecar.unlink()
            repaired.append(sidecar.name)
    return repaired


@pytest.mark.parametrize("how", ["SIGINT", "two SIGINTs"])
def test_interrupted_destroy_then_destroy_again_gives_every_account_back(project: PulumiProject, how: str) -> None:
    """Pulumi 3.277 ends a `destroy` cut short by one Ctrl-C with exit 0 and "The resources in the stack have
    been deleted" while some remain (upstream; docs/behaviour.md says so): the remaining settings and the
    ledger are still in the state with their originals, and `pulumi destroy` again gives every account back,
    each changed once."""
    names = [f"del{i:02}" for i in range(30)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    declare(project, *[{"name": n, "enabled": False, "on_behalf_of": n} for n in names])
    project.up()
    taken = len(names)
    project.emulator.state.configure(latency=0.3)  # each give-back in flight for 0.6 s: the second Ctrl-C lands
    proc = project.start(["pulumi", "destroy", "--yes", "--skip-preview", "--non-interactive"])
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")) if proc.stdout else None)
    reader.start()
    wait_for_changes(project, proc, taken + 5)
    proc.send_signal(signal.SIGINT)
    if how == "two SIGINTs":
        deadline = time.monotonic() + 60
        while not any("^C received; cancelling" in line for line in lines):  # the CLI drops one it has not read
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=60)
    output = "".join(lines)
    if how == "SIGINT":
        assert proc.returncode == 0, output  # upstream: a destroy cancelled by one Ctrl-C "succeeds"
    else:
        assert proc.returncode != 0 and "^C received; terminating" in output, (proc.returncode, output)
    left = settings_in_state(project)
    assert 0 < len(left) < len(names) and all(outs["original_enabled"] is True for outs in left.values())
    assert any(r["type"].endswith(":Originals") for r in project.export()["deployment"]["resources"])
    project.emulator.state.configure(latency=0.0)
    if project.run("destroy", "--yes", "--skip-preview", check=False).returncode != 0:
        project.run("cancel", "--yes")  # the lock two Ctrl-Cs may leave on a file backend, then again
        project.run("destroy", "--yes", "--skip-preview")
    assert project.export()["deployment"].get("resources") in (None, [])
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert [n for n in names if subs[n]["click"]["enabled"] is not True] == []
    changes: dict[str | None, int] = {}
    for entry in project.emulator.state.request_log():
        if entry["changed"]:
            changes[entry["on_behalf_of"]] = changes.get(entry["on_behalf_of"], 0) + 1
    assert changes == dict.fromkeys(names, 2)  # taken over once, given back once: nothing applied twice


@pytest.mark.parametrize("how", ["SIGINT", "two SIGINTs", "SIGKILL"])
def test_interrupted_up_then_the_same_deploy_again(project: PulumiProject, how: str) -> None:
    names = [f"int{i:02}" for i in range(40)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    project.emulator.state.add_subuser("eu", "euint", enabled=True)
    project.emulator.state.configure(latency=0.1)
    resources = [{"name": n, "enabled": False, "on_behalf_of": n} for n in names]
    resources.append({"name": "euint", "enabled": False, "on_behalf_of": "euint", "region": "eu"})
    declare(project, *resources)
    proc = project.start(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"])
    wait_for_changes(project, proc, 12)
    if how == "SIGKILL":
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job, as a CI runner cancels it
    else:
        proc.send_signal(signal.SIGINT)
        if how == "two SIGINTs":
            wait_for_changes(project, proc, 13)
            proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, output
    project.emulator.state.configure(latency=0.0)

    # The documented recovery: `pulumi cancel` where a file backend kept its lock, then the same deploy.
    repaired = repair_empty_sidecars(project)
    recovery = ["up --refresh"]
    if project.run("cancel", "--yes", check=False).returncode == 0:
        recovery.insert(0, "cancel")
    project.up("--refresh")
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)  # converged
    assert live(project, "euint", "eu") is False
    state = settings_in_state(project)
    assert set(state) == {*names, "euint"}
    lost = sorted(n for n, outs in state.items() if outs["original_enabled"] is not True)
    assert lost == []  # every original is the value from before the stack took the account over
    changes: dict[str | None, int] = {}
    for entry in project.emulator.state.request_log():
        if entry["changed"]:
            changes[entry["on_behalf_of"]] = changes.get(entry["on_behalf_of"], 0) + 1
    assert set(changes.values()) == {1}  # nothing applied twice
    in_step(project)

    project.run("destroy", "--yes", "--skip-preview")
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is True for n in names)
    assert live(project, "euint", "eu") is True
    record(
        "interruption",
        signal=how,
        recovery=" ; ".join(f"pulumi {step}" for step in recovery),
        converged=True,
        applied_twice=0,
        originals_lost=len(lost),
        empty_sidecar_removed=bool(repaired),
    )


def test_a_create_failing_after_its_record_keeps_the_original(project: PulumiProject) -> None:
    project.emulator.state.add_fault(Fault("503", count=10_000, method="PATCH", account="alice"))
    declare(project, {"name": "alice", "enabled": False, "on_behalf_of": "alice"})
    assert project.up(check=False).returncode != 0
    assert live(project, "alice") is True
    project.emulator.state.clear_faults()
    project.emulator.state.set_out_of_band("global", "alice", "click", {"enabled": False})  # someone else, meanwhile
    project.up()
    assert settings_in_state(project)["alice"]["original_enabled"] is True  # the ledger read it before any change
    assert ledger_in_state(project)["click/global/alice"]["originals"] == {"enabled": True}
    in_step(project)


def test_a_removal_killed_mid_way_then_reverted_shows_in_preview_and_converges(project: PulumiProject) -> None:
    """Removing accounts: each setting's delete reads the account and gives it back. Killed during the
    PATCH, the state still holds what it has not given back; reverting the program shows every setting
    that went as a change in a plain preview, and the recovery (`pulumi cancel`, then `pulumi up
    --refresh`, as pipelines/deploy runs) converges."""
    names = [f"rm{i:02}" for i in range(30)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    resources = [{"name": n, "enabled": False, "on_behalf_of": n} for n in names]
    declare(project, *resources)
    project.up()
    project.emulator.state.configure(latency=0.1)
    declare(project)  # remove them all: each delete restores `true`
    before = len(project.emulator.state.request_log())
    proc = project.start(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"])
    deadline = time.monotonic() + 120
    while sum(1 for e in project.emulator.state.request_log()[before:] if e["changed"]) < 8:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    project.emulator.state.configure(latency=0.0)
    repair_empty_sidecars(project)
    project.run("cancel", "--yes", check=False)
    declare(project, *resources)  # the user reverts the program
    gone = [n for n in names if n not in settings_in_state(project)]
    assert gone, "the kill came before any setting went"
    preview = project.run("preview", "--expect-no-changes", check=False)
    assert preview.returncode != 0 and all(n in preview.stdout for n in gone)  # never "no changes"
    project.up("--refresh")
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)
    assert all(outs["original_enabled"] is True for outs in settings_in_state(project).values())
    in_step(project)
