"""Mistakes in stack config fail the preview through the real engine; nothing is deleted or leaked by accident."""

from __future__ import annotations

import json

import yaml

from .conftest import PulumiProject

NS = "sendgrid-click-tracking"


def stack_config(project: PulumiProject, config: dict[str, object]) -> None:
    """Replace Pulumi.dev.yaml's config section, keeping its encryptionsalt."""
    path = project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data["config"] = config
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def click(project: PulumiProject, who: str) -> bool:
    return bool(project.emulator.state.snapshot()["global"]["subusers"][who]["click"]["enabled"])


def test_a_misspelled_fleet_key_on_a_deployed_stack_deletes_nothing(project: PulumiProject) -> None:
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": False}])
    project.up()
    project.api_log()
    stack_config(project, {f"{NS}:subuser": [{"username": "alice", "enabled": False}]})  # "subusers", mistyped
    for command in (("preview",), ("up", "--yes", "--skip-preview")):
        result = project.run(*command, check=False)
        assert result.returncode != 0
        assert (
            f"{NS}:subuser: unknown key; did you mean {NS}:subusers? Rename the key in Pulumi.dev.yaml."
            in result.stdout
        )
        assert "no fleet configured" in result.stdout
        assert "delete" not in result.stdout
    assert project.api_log() == []
    assert set(project.resources()) == {"subuser-alice", "subuser-bob"}  # the state still manages both
    assert click(project, "alice") is False and click(project, "bob") is False


def test_an_emptied_fleet_file_deletes_nothing_until_manage_nothing_says_so(project: PulumiProject) -> None:
    (project.dir / "fleet.yaml").write_text("subusers:\n  - username: alice\n    enabled: false\n")
    stack_config(project, {f"{NS}:fleetFile": "fleet.yaml"})
    project.up()
    project.api_log()

    (project.dir / "fleet.yaml").write_text("# alice moved to another stack\n")
    failed = project.up(check=False)
    assert failed.returncode != 0
    assert "no accounts: fleet.yaml is empty (or only comments)" in failed.stdout
    assert project.api_log() == [] and click(project, "alice") is False

    (project.dir / "fleet.yaml").write_text("manageNothing: true\nsubusers: []\n")
    preview = project.run("preview", "--json")
    steps = [(s["op"], s["urn"].rsplit("::", 1)[1]) for s in json.loads(preview.stdout)["steps"]]
    assert ("delete", "global/alice") in steps  # the engine names alice's setting by its account
    project.up()
    # The give-back reads alice's setting, then puts the original value back.
    assert project.api_log() == [("GET", "alice", None), ("PATCH", "alice", {"enabled": True})]
    assert project.resources() == {}


def test_manage_nothing_in_stack_config(project: PulumiProject) -> None:
    stack_config(project, {f"{NS}:manageNothing": "true"})  # as `pulumi config set` stores it
    project.run("preview")
    stack_config(project, {f"{NS}:manageNothing": True, f"{NS}:parent": {"enabled": True}})
    failed = project.run("preview", check=False)
    assert failed.returncode != 0 and "manageNothing: true, but the fleet lists parent" in failed.stdout
    assert project.api_log() == []


def test_a_plaintext_api_key_fails_preview_and_reaches_no_state(project: PulumiProject) -> None:
    key = "SG.e2e-plaintext-test-key"
    project.emulator.state.add_key(key)
    del project.env["SENDGRID_API_KEY"]
    project.set_fleet(parent={"enabled": False})
    project.run("config", "set", "sendgrid:apiKey", key)  # without --secret
    assert key in (project.dir / "Pulumi.dev.yaml").read_text()  # this is what the check is about
    for command in (("preview",), ("up", "--yes", "--skip-preview")):
        result = project.run(*command, check=False)
        assert result.returncode != 0
        assert "sendgrid:apiKey: the API key is stored in plaintext in Pulumi.dev.yaml" in result.stdout
        assert "pulumi config set --secret sendgrid:apiKey" in result.stdout
        assert key not in result.stdout + result.stderr
    assert key not in project.run("stack", "export", "--show-secrets").stdout
    assert project.api_log() == []

    project.run("config", "set", "--secret", "sendgrid:apiKey", key)  # the fix the message gives
    preview = project.run("preview")
    assert "It is stored encrypted in Pulumi.dev.yaml" in preview.stdout
    assert "it is also stored, encrypted, in the stack's state" in preview.stdout
    assert "`pulumi stack export --show-secrets` shows it" in preview.stdout
