"""Issue 7: the GitOps scripts end to end through the real engine, against the emulator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState

from ..conftest import TEST_KEY
from .conftest import ROOT, PulumiProject


def pipeline(
    project: PulumiProject, command: str, stack: str = "dev", env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    result = project.exec([str(ROOT / "pipelines" / command), "--stack", stack, "--project-dir", str(project.dir)], env)
    return result.returncode, json.loads(result.stdout), result.stderr


def write_fleet(project: PulumiProject, stack: str, fleet: dict[str, Any]) -> None:
    (project.dir / "fleets").mkdir(exist_ok=True)
    (project.dir / "fleets" / f"{stack}.yaml").write_text(yaml.safe_dump(fleet))
    stack_file = project.dir / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
    data = data or {}
    data["config"] = {"sendgrid-click-tracking:fleetFile": f"fleets/{stack}.yaml"}
    stack_file.write_text(yaml.safe_dump(data))


FLEET = {
    "parent": {"enabled": True},
    "subusers": [{"username": "alice", "enabled": False}, {"username": "carol", "enabled": True, "region": "eu"}],
}


def test_review_merge_schedule(project: PulumiProject) -> None:
    write_fleet(project, "dev", FLEET)
    code, first, _ = pipeline(project, "deploy")
    assert code == 0 and first["ok"] and first["mode"] == "sendgrid"
    assert {a["account"]: a["enabled"] for a in first["accounts"]} == {
        "global": True,
        "global/alice": False,
        "eu/carol": True,
    }

    project.api_log()
    code, clean, _ = pipeline(project, "preview")
    assert code == 0 and clean["changes"] == []  # a clean preview reports no changes
    assert project.api_log() == []  # and sends nothing

    changed = {**FLEET, "subusers": [{"username": "alice", "enabled": True}, {"username": "bob", "enabled": False}]}
    write_fleet(project, "dev", changed)
    code, review, summary = pipeline(project, "preview")
    assert code == 0
    by_account = {c["account"]: c for c in review["changes"]}
    assert by_account["global/alice"]["op"] == "update"
    assert by_account["global/alice"]["changes"] == {"enabled": {"recorded": False, "desired": True}}
    assert by_account["global/bob"]["op"] == "create"
    assert by_account["eu/carol"]["op"] == "delete"
    assert "update   global/alice: enabled False -> True" in summary
    assert project.api_log() == []

    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0 and deployed["summary"] == {
        "create": 2,
        "delete": 2,
        "same": 4,
        "update": 1,
    }  # bob and his adoption record created, carol's deleted; same: the parent and its record, alice's record, stack
    state = project.emulator.state.snapshot()
    assert state["global"]["subusers"]["alice"]["click"]["enabled"] is True
    assert state["global"]["subusers"]["bob"]["click"]["enabled"] is False

    code, quiet, _ = pipeline(project, "drift-check")
    assert code == 0 and quiet["drift"] == [] and quiet["checked"] == 3

    project.emulator.state.set_out_of_band("global", "bob", "click", {"enabled": True})  # someone used the UI
    project.api_log()
    code, drift, summary = pipeline(project, "drift-check")
    assert code == 2
    assert drift["drift"] == [
        {"account": "global/bob", "desired": False, "live": True, "recorded": False, "resource": "subuser-bob"}
    ]
    assert "global/bob: recorded enabled=False, live enabled=True" in summary
    assert all(method == "GET" for method, _, _ in project.api_log())  # the check changed nothing

    code, _, _ = pipeline(project, "deploy")
    assert code == 0
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is False
    assert pipeline(project, "drift-check")[0] == 0


def test_errors_exit_1_with_the_reason(project: PulumiProject) -> None:
    write_fleet(project, "dev", {"subusers": [{"username": "alice", "enabled": "yes"}]})
    code, result, _ = pipeline(project, "preview")
    assert code == 1 and result["ok"] is False
    assert any("subusers[0].enabled: must be true or false (unquoted), got 'yes'" in e for e in result["errors"])
    code, result, _ = pipeline(project, "deploy", stack="missing-stack")
    assert code == 1 and "stack 'missing-stack' not found" in result["errors"][0]
    write_fleet(project, "dev", FLEET)
    code, result, _ = pipeline(project, "deploy", env={"SENDGRID_API_KEY": "SG.wrong-pipeline-key"})
    assert code == 1 and not result["ok"]
    assert any("failed (401)" in e for e in result["errors"])
    assert "wrong-pipeline-key" not in json.dumps(result)


def no_key_env(project: PulumiProject, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in project.env.items() if k != "SENDGRID_API_KEY"}
    return {**env, **extra}


def run_script(argv: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_a_missing_or_empty_key_is_an_error_not_the_emulator(project: PulumiProject) -> None:
    write_fleet(project, "dev", FLEET)
    assert pipeline(project, "deploy")[0] == 0
    state_before = project.export()["deployment"]["resources"]
    project.api_log()
    # A missing CI secret reads as an empty string; the real state backend is still configured.
    for env in (
        no_key_env(project),
        no_key_env(project, SENDGRID_API_KEY=""),
        no_key_env(project, SENDGRID_API_KEY=" "),
    ):
        for command in ("preview", "deploy", "drift-check"):
            code, result, summary = run_script(
                [str(ROOT / "pipelines" / command), "--stack", "dev", "--project-dir", str(project.dir)], env
            )
            assert code == 1 and result["ok"] is False
            (error,) = result["errors"]
            assert error.startswith("SENDGRID_API_KEY is not set or is empty: add the secret SENDGRID_API_KEY")
            assert "pass --emulator" in error and error in summary
    assert project.export()["deployment"]["resources"] == state_before
    assert project.api_log() == []
    assert not (project.dir / ".pulumi-state").exists()  # no local world was started


def repository_copy(tmp_path: Path) -> Path:
    """The repository's program, stack files and fleets, committed in a git repository of their own."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("__main__.py", "Pulumi.dev.yaml", "Pulumi.prod.yaml", ".gitignore"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "fleets", copy / "fleets")
    settings = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    settings["runtime"]["options"]["virtualenv"] = str(Path(sys.executable).parent.parent)  # the copy has no .venv
    (copy / "Pulumi.yaml").write_text(yaml.safe_dump(settings))
    git = ["git", "-C", str(copy), "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "the repository"], check=True)
    return copy


def git_status(copy: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(copy), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_emulator_mode_only_when_asked_and_no_tracked_file_changes(project: PulumiProject, tmp_path: Path) -> None:
    copy = repository_copy(tmp_path)
    write_fleet(project, "dev", FLEET)
    assert pipeline(project, "deploy")[0] == 0
    real_state = project.export()["deployment"]["resources"]
    project.api_log()
    # The real world's settings are in the environment; --emulator must use none of them.
    env = {**project.env, "SENDGRID_API_KEY": "SG.real-world-test-key"}
    expected = {
        "dev": {"global": True, "global/alice": False, "global/bob": True, "eu/carol": True},
        "prod": {"global/dave": True, "global/erin": True, "eu/frank": True, "global/account-id 4242": True},
    }
    for stack in ("prod", "dev", "prod"):  # prod twice: the second run reuses the first one's local stack
        for command in ("deploy", "preview", "drift-check"):
            code, result, summary = run_script(
                [str(ROOT / "pipelines" / command), "--emulator", "--stack", stack, "--project-dir", str(copy)], env
            )
            assert code == 0, summary
            assert result["mode"] == "emulator" and result["ok"] is True
            if command == "deploy":
                assert {a["account"]: a["enabled"] for a in result["accounts"]} == expected[stack]
        assert git_status(copy) == ""  # nothing tracked changed, nothing untracked appeared (.pulumi-state is ignored)
    assert (copy / ".pulumi-state" / "emulator.json").exists()  # the local world persists
    assert project.export()["deployment"]["resources"] == real_state
    assert project.api_log() == []

    # A mistyped stack: no new stack, no new file.
    for command in ("preview", "deploy", "drift-check"):
        code, result, _ = run_script(
            [str(ROOT / "pipelines" / command), "--emulator", "--stack", "prdo", "--project-dir", str(copy)], env
        )
        assert code == 1 and result["ok"] is False
        assert result["errors"] == [
            f"unknown stack 'prdo': there is no Pulumi.prdo.yaml in {copy} "
            "(stacks with a config file: dev, prod); check --stack"
        ]
    assert git_status(copy) == ""
    assert not list((copy / ".pulumi-state").rglob("prdo*"))


def test_the_repos_dev_and_prod_stacks_share_the_demo_world_without_drifting_each_other(
    project: PulumiProject,
) -> None:
    """Both example stacks run against one persistent emulator world: neither may manage an account of the other."""
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml", "fleets/dev.yaml", "fleets/prod.yaml"):
        (project.dir / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, project.dir / name)
    env = {k: v for k, v in project.env.items() if not k.startswith(("SENDGRID_", "PULUMI_BACKEND_URL"))}
    env.pop("PULUMI_CONFIG_PASSPHRASE")

    def run(command: str, stack: str) -> tuple[int, dict[str, Any]]:
        argv = [str(ROOT / "pipelines" / command), "--emulator", "--stack", stack, "--project-dir", str(project.dir)]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
        return result.returncode, json.loads(result.stdout)

    code, dev = run("deploy", "dev")
    assert code == 0 and dev["mode"] == "emulator", dev
    code, prod = run("deploy", "prod")
    assert code == 0, prod
    for stack in ("dev", "prod"):  # each stack's deploy left the other's accounts alone
        code, check = run("drift-check", stack)
        assert (code, check["drift"], check["checked"]) == (0, [], 4), stack
    assert {a["account"] for a in dev["accounts"]} == {"global", "global/alice", "global/bob", "eu/carol"}
    assert {a["account"] for a in prod["accounts"]} == {
        "global/dave",
        "global/erin",
        "eu/frank",
        "global/account-id 4242",
    }


def test_promotion_from_dev_to_prod(project: PulumiProject, tmp_path: Path) -> None:
    prod_state = EmulatorState(api_keys=[TEST_KEY])
    prod_state.add_subuser("global", "alice", enabled=True)
    with Emulator(prod_state) as prod_sendgrid:  # prod is another SendGrid account
        prod_env = {"SENDGRID_BASE_URL": prod_sendgrid.base_url, "SENDGRID_EU_BASE_URL": prod_sendgrid.eu_base_url}
        project.run("stack", "init", "prod")
        start = {"subusers": [{"username": "alice", "enabled": True}]}
        write_fleet(project, "dev", start)
        write_fleet(project, "prod", start)
        assert pipeline(project, "deploy")[0] == 0
        assert pipeline(project, "deploy", stack="prod", env=prod_env)[0] == 0

        change = {"subusers": [{"username": "alice", "enabled": False}]}
        write_fleet(project, "dev", change)  # first PR: dev only
        assert [c["account"] for c in pipeline(project, "preview")[1]["changes"]] == ["global/alice"]
        assert pipeline(project, "preview", stack="prod", env=prod_env)[1]["changes"] == []
        assert pipeline(project, "deploy")[0] == 0

        write_fleet(project, "prod", change)  # second PR: promote to prod
        assert [c["account"] for c in pipeline(project, "preview", stack="prod", env=prod_env)[1]["changes"]] == [
            "global/alice"
        ]
        assert pipeline(project, "deploy", stack="prod", env=prod_env)[0] == 0
        assert prod_state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is False
        assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is False
        assert pipeline(project, "drift-check", stack="prod", env=prod_env)[0] == 0
