"""Issue 4: preview, up, refresh and destroy through the real Pulumi CLI, against the emulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pulumi_sendgrid_tracking
from pulumi_sendgrid_tracking.emulator import Fault

from .conftest import PulumiProject

SINGLE = """
import pulumi
from pulumi_sendgrid_tracking import ClickTracking

config = pulumi.Config()
managed = ClickTracking("managed", enabled=config.require_bool("enabled"), on_behalf_of=config.get("who"))
pulumi.export("id", managed.id)
"""


def unordered(log: list[tuple[str, str | None, Any]]) -> list[str]:
    """The engine runs steps in parallel: compare request logs as multisets."""
    return sorted(map(str, log))


def click(project: PulumiProject, user: str | None = None, world: str = "global") -> bool:
    data = project.emulator.state.snapshot()[world]
    return bool((data["parent"] if user is None else data["subusers"][user])["click"]["enabled"])


def test_preview_sends_nothing_then_up_applies(project: PulumiProject) -> None:
    project.set_fleet(
        parent={"enabled": False},
        subusers=[{"username": "alice", "enabled": False}, {"username": "carol", "enabled": True, "region": "eu"}],
    )
    preview = project.run("preview")
    assert "+ 5 to create" in preview.stdout  # the stack, the stack's originals ledger, one per account
    assert project.api_log() == []

    project.up()
    assert (click(project), click(project, "alice"), click(project, "carol", "eu")) == (False, False, True)
    assert unordered(project.api_log()) == unordered(
        [
            ("GET", None, None),
            ("PATCH", None, {"enabled": False}),
            ("GET", "alice", None),
            ("PATCH", "alice", {"enabled": False}),
            ("GET", "carol", None),
        ]
    )
    outputs = project.outputs_json()["clickTracking"]
    assert outputs["subuser-carol"] == {
        "enable_text": False,
        "enabled": True,
        "id": "eu/carol",
        "original_enabled": True,
        "region": "eu",
    }
    assert outputs["parent"]["original_enabled"] is True
    # Each setting's recorded stack trace is the program's line that declared it, nothing more (the SDK's
    # ~15 frames were 1.7 kB of every checkpoint); the ledger, declared by the package, has none.
    line = 1 + next(
        i
        for i, text in enumerate((project.dir / "__main__.py").read_text().splitlines())
        if "RESOURCE_CLASSES[" in text
    )
    for resource in project.export()["deployment"]["resources"]:
        if resource["type"].endswith("Tracking"):
            assert resource["sourcePosition"].endswith(f"/__main__.py#{line}"), resource["sourcePosition"]
            assert [frame["sourcePosition"] for frame in resource["stackTrace"]] == [resource["sourcePosition"]]
        elif resource["type"].endswith(":Originals"):
            assert "sourcePosition" not in resource and not resource.get("stackTrace"), resource


def test_no_spurious_diff_after_up_nor_after_a_provider_code_change(project: PulumiProject) -> None:
    project.set_fleet(parent={"enabled": False}, subusers=[{"username": "alice", "enabled": False}])
    project.up()
    project.api_log()
    project.run("preview", "--expect-no-changes")
    # A later version of the package: a copy with changed code, first on the path of every process.
    upgraded = project.dir.parent / "upgraded"
    shutil.copytree(
        Path(pulumi_sendgrid_tracking.__file__).parent,
        upgraded / "pulumi_sendgrid_tracking",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    source = upgraded / "pulumi_sendgrid_tracking" / "singleton.py"
    source.write_text(source.read_text() + "\n\ndef _refactored_helper() -> int:\n    return 42\n")
    project.run("preview", "--expect-no-changes", env={"PYTHONPATH": str(upgraded)})
    assert project.api_log() == []


def test_config_change_patches_once_per_changed_resource(project: PulumiProject) -> None:
    project.set_fleet(
        parent={"enabled": False},
        subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": True}],
    )
    project.up()
    project.api_log()
    project.set_fleet(
        parent={"enabled": True},
        subusers=[{"username": "alice", "enabled": True}, {"username": "bob", "enabled": True}],
    )
    result = project.up()
    assert "~ 2 updated" in result.stdout
    assert unordered(project.api_log()) == unordered(
        [("PATCH", None, {"enabled": True}), ("PATCH", "alice", {"enabled": True})]
    )


def test_changing_on_behalf_of_takes_the_new_account_then_gives_the_old_back(project: PulumiProject) -> None:
    (project.dir / "__main__.py").write_text(SINGLE)
    project.run("config", "set", "enabled", "false")
    project.run("config", "set", "who", "alice")
    project.up()
    project.api_log()
    project.run("config", "set", "who", "bob")
    preview = project.run("preview", "--diff")
    # Another account is another resource (named by its account): bob's is created, alice's deleted.
    assert "+ 1 to create" in preview.stdout and "- 1 to delete" in preview.stdout
    assert "sendgrid:ClickTracking::global/bob" in preview.stdout and "ClickTracking::global/alice" in preview.stdout
    project.up()
    # The ledger reads bob's setting before anything changes, bob is set, then (at the end of the run)
    # alice's give-back reads her setting and puts her original back.
    assert project.api_log() == [
        ("GET", "bob", None),
        ("PATCH", "bob", {"enabled": False}),
        ("GET", "alice", None),
        ("PATCH", "alice", {"enabled": True}),
    ]
    assert project.outputs_json()["id"] == "global/bob"
    assert (click(project, "alice"), click(project, "bob")) == (True, False)


def test_drift_is_visible_and_up_refresh_puts_it_back(project: PulumiProject) -> None:
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": True}])
    project.up()
    quiet = project.run("refresh", "--yes", "--skip-preview", "--expect-no-changes", check=False)
    assert quiet.returncode == 0, quiet.stdout  # without drift, a refresh changes nothing
    project.emulator.state.set_out_of_band("global", "alice", "click", {"enabled": True})  # someone used the UI
    project.api_log()
    drift = project.run("preview", "--refresh", "--expect-no-changes", check=False)
    assert drift.returncode != 0
    assert "sendgrid:ClickTracking global/alice update" in drift.stdout  # named by its account
    assert click(project, "alice") is True  # preview changed nothing
    assert unordered(project.api_log()) == unordered([("GET", "alice", None), ("GET", "bob", None)])
    project.up("--refresh")
    assert click(project, "alice") is False
    assert ("PATCH", "alice", {"enabled": False}) in project.api_log()
    project.run("preview", "--refresh", "--expect-no-changes")


def test_destroy_honours_each_on_delete_mode(project: PulumiProject) -> None:
    project.emulator.state.add_subuser("global", "dave", enabled=False)
    project.set_fleet(
        parent={"enabled": False},  # restore (the default): was True
        subusers=[
            {"username": "alice", "enabled": False, "onDelete": "keep"},
            {"username": "bob", "enabled": True, "onDelete": "disable"},
            {"username": "carol", "enabled": False, "region": "eu", "onDelete": "restore"},
            {"username": "dave", "enabled": False, "onDelete": "restore"},  # already off: nothing to do
        ],
    )
    project.up()
    project.api_log()
    project.run("destroy", "--yes", "--skip-preview")
    assert click(project) is True  # restored to original_enabled
    assert click(project, "alice") is False  # kept
    assert click(project, "bob") is False  # disabled
    assert click(project, "carol", "eu") is True  # restored
    assert click(project, "dave") is False
    # Each give-back but `keep` reads the account, then sends one PATCH if it differs from the target.
    assert unordered(project.api_log()) == unordered(
        [
            ("GET", None, None),
            ("PATCH", None, {"enabled": True}),
            ("GET", "bob", None),
            ("PATCH", "bob", {"enabled": False}),
            ("GET", "carol", None),
            ("PATCH", "carol", {"enabled": True}),
            ("GET", "dave", None),
        ]
    )
    assert project.resources() == {}


def audit(project: PulumiProject, key: str) -> list[str]:
    """Every place the key was found: CLI output so far, state files on disk, state exports."""
    found = [f"CLI output #{i}" for i, text in enumerate(project.outputs) if key in text]
    for path in Path(project.state_dir).rglob("*"):
        if path.is_file() and key.encode() in path.read_bytes():
            found.append(str(path))
    if key in project.run("stack", "export").stdout:
        found.append("stack export")
    exported = project.run("stack", "export", "--show-secrets").stdout
    project.outputs.pop()  # the decrypted export is read here, not shown to anyone
    for resource in json.loads(exported)["deployment"].get("resources", []):
        if key in json.dumps(resource):
            found.append(f"stack export --show-secrets: {resource['type']}")
    return found


def lifecycle_with_failures(project: PulumiProject) -> None:
    project.set_fleet(parent={"enabled": False}, subusers=[{"username": "alice", "enabled": False}])
    project.up()
    project.run("refresh", "--yes")
    project.set_fleet(parent={"enabled": True}, subusers=[{"username": "alice", "enabled": True}])
    project.emulator.state.add_fault(Fault("500", count=1000, method="PATCH", account="alice"))
    failed = project.up(check=False)
    assert failed.returncode != 0 and "(500)" in failed.stdout
    project.emulator.state.clear_faults()
    project.up()
    project.run("destroy", "--yes", "--skip-preview")


def test_secret_key_from_stack_config_is_nowhere(project: PulumiProject) -> None:
    key = "SG.e2e-config-secret-test-key"
    project.emulator.state.add_key(key)
    del project.env["SENDGRID_API_KEY"]
    project.run("config", "set", "--secret", "sendgrid:apiKey", key)
    assert key not in (project.dir / "Pulumi.dev.yaml").read_text()  # encrypted at rest
    project.set_fleet(parent={"enabled": False})
    preview = project.run("preview")
    assert "sendgrid:apiKey is set in stack config" in preview.stdout  # the user is told, at preview
    assert "set SENDGRID_API_KEY instead" in preview.stdout
    project.up()
    # The engine records a dynamic provider's whole stack config as the default provider's inputs
    # (encrypted; pkg/resource/deploy/target.go, GetPackageConfig). Nothing else holds the key.
    assert audit(project, key) == ["stack export --show-secrets: pulumi:providers:pulumi-python"]
    lifecycle_with_failures(project)
    assert audit(project, key) == []  # destroy removed the default provider, and the key with it
    wrong = project.run("config", "set", "--secret", "sendgrid:apiKey", "SG.e2e-wrong-test-key")
    assert wrong.returncode == 0
    project.set_fleet(parent={"enabled": False})
    failed = project.up(check=False)
    assert failed.returncode != 0 and "(401)" in failed.stdout
    assert audit(project, key) == []
    assert audit(project, "e2e-wrong-test-key") == ["stack export --show-secrets: pulumi:providers:pulumi-python"]


def test_secret_key_from_environment_is_nowhere(project: PulumiProject) -> None:
    key = "SG.e2e-env-secret-test-key"
    project.emulator.state.add_key(key)
    project.env["SENDGRID_API_KEY"] = key
    lifecycle_with_failures(project)
    assert audit(project, key) == []


def test_rotated_key_in_the_environment_is_used_by_refresh_and_destroy(project: PulumiProject) -> None:
    old, new = "SG.e2e-old-test-key", "SG.e2e-new-test-key"
    project.emulator.state.add_key(old)
    project.env["SENDGRID_API_KEY"] = old
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
    project.up()
    del project.emulator.state.keys[old]  # SendGrid revokes the old key
    project.emulator.state.add_key(new)
    project.env["SENDGRID_API_KEY"] = new
    project.api_log()
    project.run("refresh", "--yes", "--skip-preview")
    project.run("destroy", "--yes", "--skip-preview")
    # refresh's GET, then the give-back's GET and PATCH
    assert project.api_log() == [("GET", "alice", None), ("GET", "alice", None), ("PATCH", "alice", {"enabled": True})]
    assert click(project, "alice") is True


def test_rotated_key_in_stack_config_needs_the_program_to_run(project: PulumiProject) -> None:
    old, new = "SG.e2e-old-test-key", "SG.e2e-new-test-key"
    project.emulator.state.add_key(old)
    del project.env["SENDGRID_API_KEY"]
    project.run("config", "set", "--secret", "sendgrid:apiKey", old)
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}])
    project.up()
    del project.emulator.state.keys[old]
    project.emulator.state.add_key(new)
    project.run("config", "set", "--secret", "sendgrid:apiKey", new)
    stale = project.run("refresh", "--yes", "--skip-preview", check=False)
    assert stale.returncode != 0 and "failed (401)" in stale.stdout
    assert "set PULUMI_RUN_PROGRAM=true" in stale.stdout  # the error says how to use the new key
    project.api_log()
    project.run("refresh", "--yes", "--skip-preview", env={"PULUMI_RUN_PROGRAM": "true"})
    project.run("destroy", "--yes", "--skip-preview", env={"PULUMI_RUN_PROGRAM": "true"})
    # refresh's GET, then the give-back's GET and PATCH
    assert project.api_log() == [("GET", "alice", None), ("GET", "alice", None), ("PATCH", "alice", {"enabled": True})]
    assert click(project, "alice") is True


def test_a_fleet_of_fifty_subusers(project: PulumiProject) -> None:
    names = [f"sub{i:02}" for i in range(50)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    project.set_fleet(subusers=[{"username": n, "enabled": False} for n in names])
    project.up()
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)
    log = project.api_log()
    assert sorted(m for m, _, _ in log).count("GET") == 50 and len(log) == 100
    project.run("preview", "--expect-no-changes")
    assert project.api_log() == []
    project.run("destroy", "--yes", "--skip-preview")
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is True for n in names)
    log = project.api_log()
    assert sorted(m for m, _, _ in log).count("GET") == 50 and len(log) == 100  # each give-back: GET, PATCH


def test_persistent_500_for_one_subuser_then_convergence(project: PulumiProject) -> None:
    project.set_fleet(
        subusers=[
            {"username": "alice", "enabled": False},
            {"username": "bob", "enabled": False},
            {"username": "carol", "enabled": False, "region": "eu"},
        ]
    )
    project.emulator.state.add_fault(Fault("500", count=10_000, method="PATCH", account="bob"))
    failed = project.up("--continue-on-error", check=False)
    assert failed.returncode != 0
    assert "subuser-bob" in failed.stdout and "failed (500)" in failed.stdout
    assert "Hint:" in failed.stdout
    assert set(project.resources()) == {"subuser-alice", "subuser-carol"}  # what was applied is recorded
    assert (click(project, "alice"), click(project, "bob"), click(project, "carol", "eu")) == (False, True, False)
    project.emulator.state.clear_faults()
    project.api_log()
    project.up()
    assert project.api_log() == [("GET", "bob", None), ("PATCH", "bob", {"enabled": False})]  # nothing twice
    assert set(project.resources()) == {"subuser-alice", "subuser-bob", "subuser-carol"}
    assert project.resources()["subuser-bob"]["original_enabled"] is True
    project.run("preview", "--expect-no-changes")
