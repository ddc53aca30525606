"""The GitOps scripts end to end through the real engine, against the emulator.

Every output of every script, errors included, is checked against pipelines/output.schema.json, and
none may show a Python traceback.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.tracking import SETTINGS

from tools.pulumi_project import PROJECT
from tools.report_check import rows

from ..conftest import TEST_KEY
from .conftest import ROOT, PulumiProject
from .test_ownership import PROGRAM

SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))
TOP_LEVEL = set(SCHEMA.schema["required"])


def checked(code: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The JSON output, valid against the schema, with the exit code it claims and no traceback anywhere."""
    assert "Traceback" not in stdout + stderr
    data = json.loads(stdout)
    errors = sorted(SCHEMA.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert set(data) == TOP_LEVEL and data["exit_code"] == code
    return dict(data)


def pipeline(
    project: PulumiProject, command: str, stack: str = "dev", env: dict[str, str] | None = None, *extra: str
) -> tuple[int, dict[str, Any], str]:
    argv = [str(ROOT / "pipelines" / command), "--stack", stack, "--project-dir", str(project.dir), *extra]
    result = project.exec(argv, env)
    return result.returncode, checked(result.returncode, result.stdout, result.stderr), result.stderr


def declare(project: PulumiProject, *resources: dict[str, Any]) -> None:
    """The program declares exactly these resources (name, kind, arguments): no dependency on the fleet format."""
    (project.dir / "__main__.py").write_text(PROGRAM)
    path = project.dir / "Pulumi.dev.yaml"
    data = (yaml.safe_load(path.read_text()) if path.exists() else {}) or {}
    data["config"] = {f"{PROJECT}:resources": list(resources)}
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def fields(row: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, before, after) of a row; `?` for a value the preview cannot know."""
    return [
        (f["field"], f["before"] if f["before_known"] else "?", f["after"] if f["after_known"] else "?")
        for f in row["fields"]
    ]


def live(project: PulumiProject, who: str | None, kind: str = "click", world: str = "global") -> dict[str, Any]:
    data = project.emulator.state.snapshot()[world]
    return dict((data["parent"] if who is None else data["subusers"][who])[kind])


def counts(**nonzero: int) -> dict[str, int]:
    return {
        k: nonzero.get(k, 0)
        for k in ("create", "update", "delete", "replace", "same", "failed", "drifted", "checked", "patches")
    }


def settings(result: dict[str, Any]) -> dict[str, Any]:
    """account → enabled, for the click settings in the output's `state`."""
    return {s["account"]: s["values"]["enabled"] for s in result["state"] if s["setting"] == "click"}


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
    assert settings(first) == {"global": True, "global/alice": False, "eu/carol": True}
    assert first["summary"] == counts(create=3, patches=1)  # accounts, not the ledger; alice's one PATCH

    project.api_log()
    code, clean, _ = pipeline(project, "preview")
    assert code == 0 and clean["changes"] == []  # a clean preview reports no changes
    assert project.api_log() == []  # and sends nothing

    changed = {**FLEET, "subusers": [{"username": "alice", "enabled": True}, {"username": "bob", "enabled": False}]}
    write_fleet(project, "dev", changed)
    code, review, summary = pipeline(project, "preview")
    assert code == 0
    by_account = rows(review)
    assert set(by_account) == {("global/alice", "click"), ("global/bob", "click"), ("eu/carol", "click")}
    assert by_account["global/alice", "click"]["action"] == "update"
    assert fields(by_account["global/alice", "click"]) == [("enabled", False, True)]
    assert by_account["global/alice", "click"]["sends"] == "patch"  # an update's body is exact
    assert by_account["global/bob", "click"]["action"] == "create"
    assert fields(by_account["global/bob", "click"]) == [("enabled", "?", False)]  # read at deploy time
    assert by_account["global/bob", "click"]["sends"] == "unknown"
    assert by_account["eu/carol", "click"]["action"] == "delete"
    assert by_account["eu/carol", "click"]["effect"] == "restore"
    assert fields(by_account["eu/carol", "click"]) == [("enabled", True, True)]  # it was true before the stack
    assert by_account["eu/carol", "click"]["sends"] == "unknown"  # only where SendGrid differs: read first
    assert review["summary"] == counts(create=1, update=1, delete=1, same=1)
    assert "update   global/alice click: enabled false -> true [sends: PATCH enabled]" in summary
    assert project.api_log() == []

    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0 and deployed["summary"] == counts(create=1, update=1, delete=1, same=1, patches=2)
    assert sorted((r["account"], r["action"], r["status"]) for r in deployed["changes"]) == [
        ("eu/carol", "delete", "done"),
        ("global/alice", "update", "done"),
        ("global/bob", "create", "done"),
    ]
    assert fields(rows(deployed)["global/bob", "click"]) == [("enabled", True, False)]  # before: read by the create
    state = project.emulator.state.snapshot()
    assert state["global"]["subusers"]["alice"]["click"]["enabled"] is True
    assert state["global"]["subusers"]["bob"]["click"]["enabled"] is False

    code, quiet, _ = pipeline(project, "drift-check")
    assert code == 0 and quiet["drift"] == [] and quiet["summary"]["checked"] == 3

    project.emulator.state.set_out_of_band("global", "bob", "click", {"enabled": True})  # someone used the UI
    project.api_log()
    code, drift, summary = pipeline(project, "drift-check")
    assert code == 2 and drift["ok"] is True and drift["exit_code"] == 2
    assert drift["drift"] == [
        {
            "account": "global/bob",
            "region": "global",
            "on_behalf_of": "bob",
            "setting": "click",
            "resource": "subuser-bob",
            "field": "enabled",
            "recorded": False,
            "live": True,
            "desired": False,
            "note": None,
        }
    ]
    assert "drift    global/bob click: enabled recorded false, live true, desired false" in summary
    assert [(r["account"], fields(r)) for r in drift["changes"]] == [("global/bob", [("enabled", True, False)])]
    assert all(method == "GET" for method, _, _ in project.api_log())  # the check changed nothing

    code, _, _ = pipeline(project, "deploy")
    assert code == 0
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is False
    assert pipeline(project, "drift-check")[0] == 0


def test_errors_exit_1_with_the_reason(project: PulumiProject) -> None:
    write_fleet(project, "dev", {"subusers": [{"username": "alice", "enabled": "yes"}]})
    code, result, _ = pipeline(project, "preview")
    assert code == 1 and result["ok"] is False
    (error,) = result["errors"]
    assert error["kind"] == "program"
    assert "subusers[0].enabled: must be true or false (unquoted), got 'yes'" in error["message"]
    # Several mistakes in the fleet file and the stack config: one error each, one line with its hint.
    write_fleet(project, "dev", {"subusers": [{"username": "alice", "enabled": "yes"}, {"username": "b", "colour": 1}]})
    stack_file = project.dir / "Pulumi.dev.yaml"
    stack_config = yaml.safe_load(stack_file.read_text())
    stack_config["config"]["sendgrid:regoin"] = "eu"
    stack_file.write_text(yaml.safe_dump(stack_config))
    code, result, summary = pipeline(project, "deploy")
    assert code == 1
    assert [(e["kind"], e["message"], e["hint"]) for e in result["errors"]] == [
        (
            "program",
            "invalid stack config (Pulumi.dev.yaml): sendgrid:regoin: unknown key; did you mean sendgrid:region? "
            "Rename the key in Pulumi.dev.yaml.",
            "correct it in Pulumi.dev.yaml, then run this again",
        ),
        (
            "program",
            "invalid fleet config in fleets/dev.yaml: subusers[0].enabled: must be true or false (unquoted), got 'yes'",
            "correct it in fleets/dev.yaml, then run this again",
        ),
        (
            "program",
            "invalid fleet config in fleets/dev.yaml: subusers[1].colour: unknown field; allowed: username, "
            "accountId, region, click, open, subscription, googleAnalytics, enabled, onDelete",
            "correct it in fleets/dev.yaml, then run this again",
        ),
    ]
    assert [line for line in summary.splitlines() if line.startswith("  error")] == [
        f"  error    {e['message']} Hint: {e['hint']}" for e in result["errors"]
    ]
    assert project.api_log() == []
    code, result, _ = pipeline(project, "deploy", stack="missing-stack")
    assert code == 1 and result["stack"] == "missing-stack"
    (error,) = result["errors"]
    assert error["kind"] == "stack" and error["message"].startswith("stack 'missing-stack' not found")
    assert error["hint"].startswith("create it once with `pulumi stack init missing-stack`")
    write_fleet(project, "dev", FLEET)
    code, result, summary = pipeline(project, "deploy", env={"SENDGRID_API_KEY": "SG.wrong-pipeline-key"})
    assert code == 1 and not result["ok"]
    assert {e["kind"] for e in result["errors"]} == {"sendgrid"}
    assert all("failed (401)" in e["message"] and e["hint"] for e in result["errors"])
    assert {r["status"] for r in result["changes"]} == {"failed"} and result["summary"]["create"] == 0
    assert "wrong-pipeline-key" not in json.dumps(result) + summary
    for argv in (["--format", "xml"], ["--bogus"]):
        code, result, _ = pipeline(project, "preview", "dev", None, *argv)
        assert code == 1 and result["command"] == "preview" and result["stack"] == "dev"
        (error,) = result["errors"]
        assert error["kind"] == "arguments" and error["message"].startswith("bad arguments: ")
        assert error["hint"].startswith("usage: pipelines")  # the command's own usage


def no_key_env(project: PulumiProject, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in project.env.items() if k != "SENDGRID_API_KEY"}
    return {**env, **extra}


def run_script(argv: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    return result.returncode, checked(result.returncode, result.stdout, result.stderr), result.stderr


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
            assert code == 1 and result["ok"] is False and result["command"] == command
            (error,) = result["errors"]
            assert error["kind"] == "configuration"
            assert error["message"] == "SENDGRID_API_KEY is not set or is empty"
            assert error["hint"].startswith("add the secret SENDGRID_API_KEY") and "pass --emulator" in error["hint"]
            assert f"error    {error['message']} Hint: {error['hint']}" in summary
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
                assert settings(result) == expected[stack]
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
        assert [(e["kind"], e["message"], e["hint"]) for e in result["errors"]] == [
            (
                "stack",
                f"unknown stack 'prdo': there is no Pulumi.prdo.yaml in {copy} (stacks with a config file: dev, prod)",
                "check --stack",
            )
        ]
    assert git_status(copy) == ""
    assert not list((copy / ".pulumi-state").rglob("prdo*"))


class Decoy(http.server.BaseHTTPRequestHandler):
    """A host that must never be reached: it records every request (proxy requests too) and answers 502."""

    seen: list[str]

    def _any(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = do_CONNECT = _any

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def decoy() -> Iterator[tuple[str, list[str]]]:
    """(URL of a local HTTP server standing in for a configured host or proxy, the requests it received)."""
    seen: list[str] = []
    handler = type("Handler", (Decoy,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_emulator_mode_reaches_only_its_emulator(project: PulumiProject, tmp_path: Path) -> None:
    """Stack config and environment that name another host, a proxy or another key: the run's requests all
    reach the emulator (its world changes), the other host none; the stack config it ignores is named."""
    copy = repository_copy(tmp_path)
    with decoy() as (elsewhere, seen):
        with socket.create_connection(("127.0.0.1", int(elsewhere.rsplit(":", 1)[1])), timeout=5):
            pass  # the decoy is up: a request that reached it would be recorded
        stack_file = copy / "Pulumi.dev.yaml"
        data = yaml.safe_load(stack_file.read_text())
        data["config"].update(
            {
                "sendgrid:baseUrl": elsewhere,
                "sendgrid:euBaseUrl": elsewhere,
                "sendgrid:apiKey": "SG.configured-test-key",
            }
        )
        stack_file.write_text(yaml.safe_dump(data))
        env = {
            **project.env,
            "SENDGRID_API_KEY": "SG.real-world-test-key",
            "SENDGRID_BASE_URL": elsewhere,
            "SENDGRID_EU_BASE_URL": elsewhere,
            **{name: elsewhere for name in ("HTTP_PROXY", "https_proxy", "ALL_PROXY")},
        }
        ignored = (
            "emulator mode ignores sendgrid:apiKey, sendgrid:baseUrl, sendgrid:euBaseUrl from Pulumi.dev.yaml: "
            "every request goes to the local emulator, with its own key"
        )
        for command in ("deploy", "preview", "drift-check"):
            code, result, summary = run_script(
                [str(ROOT / "pipelines" / command), "--emulator", "--stack", "dev", "--project-dir", str(copy)], env
            )
            assert code == 0 and result["mode"] == "emulator", summary
            assert ignored in [d["message"] for d in result["diagnostics"] if d["severity"] == "warning"]
            assert f"warning  {ignored}" in summary
            if command == "deploy":
                assert {r["status"] for r in result["changes"]} == {"done"} and result["summary"]["create"] > 0
        assert seen == []
        assert yaml.safe_load(stack_file.read_text()) == data  # the tracked file is as it was

        # Set for every stack in Pulumi.yaml, it cannot be left out: refused before anything runs.
        settings = yaml.safe_load((copy / "Pulumi.yaml").read_text())
        settings["config"] = {"sendgrid:baseUrl": {"value": elsewhere}}
        (copy / "Pulumi.yaml").write_text(yaml.safe_dump(settings))
        code, result, _ = run_script(
            [str(ROOT / "pipelines" / "preview"), "--emulator", "--stack", "dev", "--project-dir", str(copy)], env
        )
        assert code == 1
        assert [(e["kind"], e["message"]) for e in result["errors"]] == [
            (
                "configuration",
                "Pulumi.yaml sets sendgrid:baseUrl for every stack, and emulator mode must send nothing but to the "
                "local emulator",
            )
        ]
        assert result["errors"][0]["hint"].startswith("move sendgrid:baseUrl from Pulumi.yaml's `config:` to")
        assert seen == []
    world = json.loads((copy / ".pulumi-state" / "emulator.json").read_text())["global"]
    # The seed has parent false, alice true, bob false: the deploy's PATCHes reached the emulator.
    assert world["parent"]["click"]["enabled"] is True
    assert (world["subusers"]["alice"]["click"]["enabled"], world["subusers"]["bob"]["click"]["enabled"]) == (
        False,
        True,
    )


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
        return result.returncode, checked(result.returncode, result.stdout, result.stderr)

    code, dev = run("deploy", "dev")
    assert code == 0 and dev["mode"] == "emulator", dev
    code, prod = run("deploy", "prod")
    assert code == 0, prod
    for stack, deployed in (("dev", dev), ("prod", prod)):  # each stack's deploy left the other's accounts alone
        code, check = run("drift-check", stack)
        assert (code, check["drift"]) == (0, []), stack
        assert check["summary"]["checked"] == len(deployed["state"]) > 4, stack  # every setting of every account
    assert set(settings(dev)) == {"global", "global/alice", "global/bob", "eu/carol"}
    assert set(settings(prod)) == {
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


# -- what previews say, and what deploys then do ------------------------------------------------------


def md_row(account: str, setting: str, action: str, before: str, after: str, request: str) -> str:
    return f"| <code>{account}</code> | {setting} | {action} | {before} | {after} | {request} |"


GIVE_BACK = "sends the fields that differ from these values; known when the deploy reads SendGrid (one GET first)"


def test_preview_says_what_each_delete_does_and_the_deploy_does_it(project: PulumiProject, tmp_path: Path) -> None:
    """Restore to the originals, keep, disable (each decided from live values at deploy), and a rename."""
    declare(
        project,
        {"name": "r", "enabled": False, "on_behalf_of": "alice"},
        {"name": "d", "enabled": True, "on_behalf_of": "bob", "on_delete": "disable"},
        {"name": "k", "enabled": False, "on_behalf_of": "carol", "region": "eu", "on_delete": "keep"},
        {"name": "s", "kind": "subscription", "enabled": True, "on_behalf_of": "bob", "url": "https://example.com/bye"},
        {"name": "o1", "kind": "open", "enabled": False},
    )
    assert pipeline(project, "deploy")[0] == 0
    declare(project, {"name": "o2", "kind": "open", "enabled": False})  # o1 renamed without an alias
    project.api_log()
    step_summary = tmp_path / "step-summary.md"
    code, review, summary = pipeline(project, "preview", "dev", {"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert code == 0 and project.api_log() == []
    planned = rows(review)
    effects = {key: (r["action"], r["effect"], fields(r), r["sends"], r["note"]) for key, r in planned.items()}
    assert effects == {
        ("global/alice", "click"): ("delete", "restore", [("enabled", False, True)], "unknown", GIVE_BACK),
        ("global/bob", "click"): ("delete", "disable", [("enabled", True, False)], "unknown", GIVE_BACK),
        ("eu/carol", "click"): ("delete", "keep", [("enabled", False, False)], "nothing", "keep: nothing is sent"),
        ("global/bob", "subscription"): (
            "delete",
            "restore",
            [("enabled", True, False), ("url", "https://example.com/bye", "")],  # absent before: cleared with ""
            "unknown",
            GIVE_BACK,
        ),
    }  # the rename of o1 is no change at all: the engine names the resource by its account
    url = planned["global/bob", "subscription"]["fields"][1]
    assert (url["original"], url["original_known"]) == (None, True)  # there was no url before the stack
    assert review["summary"] == counts(delete=4, same=1)  # o1, renamed: no change
    assert "delete   global/alice click: restore: enabled false -> true [sends: PATCH if SendGrid differs]" in summary
    assert "delete   global/bob click: disable: enabled true -> false [sends: PATCH if SendGrid differs]" in summary
    assert "delete   eu/carol click: keep: enabled false -> false [sends: none]; keep: nothing is sent" in summary
    # The Markdown summary: a row per account and setting, before, after, the delete's effect, the request.
    markdown = step_summary.read_text()
    assert markdown.startswith("<!-- pipelines:preview:sendgrid-click-tracking/dev -->\n")
    assert "#### :tropical_drink: `preview` on sendgrid-click-tracking/dev" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| <code>")]
    maybe = "PATCH if SendGrid differs"
    assert sorted(table) == sorted(
        [
            md_row(
                "global/alice",
                "click",
                "delete: restore",
                "enabled <code>false</code>",
                "enabled <code>true</code>",
                maybe,
            ),
            md_row(
                "global/bob",
                "click",
                "delete: disable",
                "enabled <code>true</code>",
                "enabled <code>false</code>",
                maybe,
            ),
            md_row(
                "eu/carol", "click", "delete: keep", "enabled <code>false</code>", "enabled <code>false</code>", "none"
            ),
            md_row(
                "global/bob",
                "subscription",
                "delete: restore",
                "enabled <code>true</code><br>url <code>&quot;https://example.com/bye&quot;</code>",
                "enabled <code>false</code><br>url <code>&quot;&quot;</code>",  # absent before: cleared
                maybe,
            ),
        ]
    )
    assert "<details>" in markdown and "renamed from o1" not in markdown
    result = project.exec(
        [str(ROOT / "pipelines" / "preview"), "--project-dir", str(project.dir), "--format", "markdown"]
    )
    assert result.returncode == 0 and result.stdout.strip() == markdown.strip()  # the same summary, on stdout

    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0
    for key, r in rows(deployed).items():  # the deploy did what the preview said
        assert (r["status"], r["effect"]) == ("done", planned[key]["effect"]), key
    assert ("global", "open") not in rows(deployed) and ("global", "open") not in planned
    said = {  # a url cleared with "" is absent, as SendGrid answers it
        key: {f: None if (f, after) == ("url", "") else after for f, _, after in fields(r)}
        for key, r in planned.items()
    }
    for (account, kind), values in said.items():
        region, _, who = account.partition("/")
        assert {k: live(project, who or None, kind, region).get(k) for k in values} == values, (account, kind)
    patches = [(obo, json.dumps(body, sort_keys=True)) for method, obo, body in project.api_log() if method == "PATCH"]
    assert sorted(patches) == [  # click disabled, subscription restored; nothing for carol or the parent
        ("alice", '{"enabled": true}'),
        ("bob", '{"enabled": false, "url": ""}'),
        ("bob", '{"enabled": false}'),
    ]
    sent = sorted(
        (r["on_behalf_of"], json.dumps(q["fields"], sort_keys=True), q["status"])
        for r in deployed["changes"]
        for q in r["requests"]
    )
    assert sent == [(obo, body, "applied") for obo, body in sorted(patches)]  # the report lists exactly those


def test_account_change_previewed_applied_and_failed(project: PulumiProject) -> None:
    """A change of on_behalf_of: the new account taken over, then (at the end of the run) the old one given
    back; a failed take-over is reported as failed, and the old account's give-back never starts."""
    declare(project, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    assert pipeline(project, "deploy")[0] == 0
    declare(project, {"name": "a", "enabled": False, "on_behalf_of": "bob"})
    code, review, summary = pipeline(project, "preview")
    assert code == 0 and review["summary"] == counts(create=1, delete=1)
    assert [(r["account"], r["action"], r["effect"], fields(r), r["sends"]) for r in review["changes"]] == [
        ("global/alice", "delete", "restore", [("enabled", False, True)], "unknown"),
        ("global/bob", "create", "set", [("enabled", "?", False)], "unknown"),
    ]
    assert "delete   global/alice click: restore: enabled false -> true" in summary

    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0 and deployed["summary"] == counts(create=1, delete=1, patches=2)
    assert [(r["account"], r["status"], fields(r)) for r in deployed["changes"]] == [
        ("global/alice", "done", [("enabled", False, True)]),
        ("global/bob", "done", [("enabled", True, False)]),
    ]
    assert (live(project, "alice")["enabled"], live(project, "bob")["enabled"]) == (True, False)

    # Back to alice, with a key that may read but not change: the take-over fails, and the engine then starts
    # no give-back (deletes run last), so bob keeps the stack's values and only the refused PATCH was sent.
    project.emulator.state.add_key("SG.read-only-key", ["tracking_settings.click.read"])
    declare(project, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    project.api_log()
    code, failed, summary = pipeline(project, "deploy", "dev", {"SENDGRID_API_KEY": "SG.read-only-key"})
    assert code == 1 and failed["ok"] is False
    assert failed["summary"] == counts(failed=1, patches=1)
    (new,) = failed["changes"]
    assert (new["account"], new["action"], new["status"], new["sends"]) == ("global/alice", "create", "failed", "patch")
    assert [(q["fields"], q["before"], q["status"]) for q in new["requests"]] == [
        ({"enabled": False}, {"enabled": True}, "failed")
    ]
    assert new["error"]["kind"] == "sendgrid"
    assert new["error"]["message"].startswith("PATCH /v3/tracking_settings/click on behalf of 'alice' failed (403)")
    assert "tracking_settings.click.update" in new["error"]["hint"]
    # (The engine may add its own closing line without a resource: branch i19a drops it.)
    assert [(e["account"], e["setting"], e["resource"]) for e in failed["errors"] if e["resource"]] == [
        ("global/alice", "click", "a")
    ]
    assert "[FAILED]" in summary
    assert (live(project, "alice")["enabled"], live(project, "bob")["enabled"]) == (True, False)
    assert [m for m, _, _ in project.api_log() if m == "PATCH"] == ["PATCH"]  # the refused one

    # The preview after the failure knows alice's original: the ledger read it.
    code, review, _ = pipeline(project, "preview")
    assert code == 0
    alice = rows(review)["global/alice", "click"]
    assert [(f["field"], f["after"], f["original"], f["original_known"]) for f in alice["fields"]] == [
        ("enabled", False, True, True)
    ]


def test_drift_per_field_with_pending_changes(project: PulumiProject, tmp_path: Path) -> None:
    """Drift per account, setting and field (recorded, live, desired); pending changes are not drift."""
    declare(
        project,
        {"name": "s", "kind": "subscription", "enabled": True, "on_behalf_of": "bob", "url": "https://example.com/u"},
        {"name": "g", "kind": "google_analytics", "enabled": True, "utm_source": "news"},
        {"name": "a", "enabled": False, "on_behalf_of": "alice"},
    )
    assert pipeline(project, "deploy")[0] == 0
    state = project.emulator.state
    state.set_out_of_band("global", "bob", "subscription", {"url": "https://elsewhere.example/x", "replace": "[x]"})
    state.set_out_of_band("global", None, "google_analytics", {"enabled": False, "utm_medium": "mail"})
    state.set_out_of_band("global", "alice", "click", {"enabled": True})  # live now what the program will want
    declare(
        project,
        {"name": "s", "kind": "subscription", "enabled": True, "on_behalf_of": "bob", "url": "https://example.com/u"},
        {"name": "g", "kind": "google_analytics", "enabled": True, "utm_source": "letters"},  # a pending change
        {"name": "a", "enabled": True, "on_behalf_of": "alice"},
    )
    project.api_log()
    step_summary = tmp_path / "step-summary.md"
    code, result, summary = pipeline(project, "drift-check", "dev", {"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert code == 2 and result["exit_code"] == 2 and result["ok"] is True
    drift = sorted(
        (d["account"], d["setting"], d["field"], d["recorded"], d["live"], d["desired"]) for d in result["drift"]
    )
    assert drift == [  # not alice (live is what the program now wants), not unmanaged fields (replace, utm_medium)
        ("global", "google_analytics", "enabled", True, False, True),
        (
            "global/bob",
            "subscription",
            "url",
            "https://example.com/u",
            "https://elsewhere.example/x",
            "https://example.com/u",
        ),
    ]
    assert result["summary"] == counts(update=2, same=1, drifted=2, checked=3)
    pending = {key: fields(r) for key, r in rows(result).items()}
    assert pending == {  # what the next deploy does: put the drifted fields back, and the program's change
        ("global", "google_analytics"): [("enabled", False, True), ("utm_source", "news", "letters")],
        ("global/bob", "subscription"): [("url", "https://elsewhere.example/x", "https://example.com/u")],
    }
    assert (
        'drift    global/bob subscription: url recorded "https://example.com/u", live "https://elsewhere.example/x", '
        'desired "https://example.com/u"' in summary
    )
    markdown = step_summary.read_text()
    assert markdown.startswith("<!-- pipelines:drift-check:sendgrid-click-tracking/dev -->")
    assert ":warning: **drift: 2 field(s)** in 3 setting(s) checked" in markdown
    assert (
        "| <code>global</code> | google_analytics | enabled | <code>true</code> | <code>false</code> "
        "| <code>true</code> |" in markdown
    )
    assert all(method == "GET" for method, _, _ in project.api_log())

    assert pipeline(project, "deploy")[0] == 0
    code, quiet, _ = pipeline(project, "drift-check")
    assert (code, quiet["drift"], quiet["changes"]) == (0, [], [])


def test_drift_check_state_is_every_setting_as_read_live(project: PulumiProject) -> None:
    """`state` of drift-check: each setting, drifted or not, with its account, region, on_delete, managed fields,
    their originals (what SendGrid held before the stack) and every field's value as SendGrid holds it now."""
    resources = (
        {"name": "s", "kind": "subscription", "enabled": True, "on_behalf_of": "bob", "url": "https://example.com/u"},
        {"name": "a", "enabled": False, "on_behalf_of": "alice"},
        {"name": "p", "enabled": False, "on_delete": "disable"},
        {"name": "e", "kind": "open", "enabled": False, "on_behalf_of": "carol", "region": "eu", "on_delete": "keep"},
    )
    declare(project, *resources)
    before = project.emulator.state.snapshot()
    assert pipeline(project, "deploy")[0] == 0
    state = project.emulator.state
    state.set_out_of_band("global", "alice", "click", {"enabled": True})  # drift of a managed field
    state.set_out_of_band("global", None, "click", {"enable_text": True})  # an unmanaged field: not drift
    state.set_out_of_band("global", "bob", "subscription", {"replace": "[x]"})  # the same
    project.api_log()
    code, result, _ = pipeline(project, "drift-check")
    assert code == 2 and [(d["account"], d["field"]) for d in result["drift"]] == [("global/alice", "enabled")]
    assert all(method == "GET" for method, _, _ in project.api_log())
    now = state.snapshot()

    def held(snapshot: dict[str, Any], world: str, who: str | None, kind: str) -> dict[str, Any]:
        """Every field of the setting as the emulator holds it (null when absent, as SendGrid answers)."""
        values = (snapshot[world]["parent"] if who is None else snapshot[world]["subusers"][who])[kind]
        return {f.name: values.get(f.name) for f in SETTINGS[kind].fields}

    def expected(
        name: str, kind: str, region: str, who: str | None, on_delete: str, managed: list[str]
    ) -> dict[str, Any]:
        original = held(before, region, who, kind)
        return {
            "resource": name,
            "setting": kind,
            "account": region if who is None else f"{region}/{who}",
            "region": region,
            "on_behalf_of": who,
            "on_delete": on_delete,
            "values": held(now, region, who, kind),
            "originals": {field: original[field] for field in managed},
            "managed_fields": managed,
        }

    assert result["state"] == [  # by account
        expected("e", "open", "eu", "carol", "keep", ["enabled"]),
        expected("p", "click", "global", None, "disable", ["enabled"]),
        expected("a", "click", "global", "alice", "restore", ["enabled"]),
        expected("s", "subscription", "global", "bob", "restore", ["enabled", "url"]),
    ]
    assert result["state"][1]["values"]["enable_text"] is True and result["state"][2]["values"]["enabled"] is True
    assert result["summary"]["checked"] == 4


def gets_per_setting(project: PulumiProject) -> Counter[tuple[str, str | None, str]]:
    """(path, on-behalf-of, method) → requests since the last call; asserts nothing but GETs were sent."""
    log = project.emulator.state.request_log()[project._seen :]
    project.api_log()
    return Counter((e["path"].rsplit("/", 1)[-1], e["on_behalf_of"], e["method"]) for e in log)


def test_one_get_per_setting_for_each_script(project: PulumiProject) -> None:
    """deploy and drift-check read each setting once (`--skip-preview`); preview reads nothing.

    Plain `pulumi refresh` reads each one twice (once for its own preview): the scripts do not use it.
    """
    declare(
        project,
        {"name": "a", "enabled": False, "on_behalf_of": "alice"},
        {"name": "o", "kind": "open", "enabled": True},
        {"name": "s", "kind": "subscription", "enabled": True, "on_behalf_of": "bob"},
    )
    assert pipeline(project, "deploy")[0] == 0
    once = Counter({("click", "alice", "GET"): 1, ("open", None, "GET"): 1, ("subscription", "bob", "GET"): 1})
    project.api_log()
    assert pipeline(project, "preview")[0] == 0
    assert gets_per_setting(project) == Counter()
    assert pipeline(project, "drift-check")[0] == 0
    assert gets_per_setting(project) == once
    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0 and deployed["summary"] == counts(same=3)
    assert gets_per_setting(project) == once
    project.run("refresh", "--yes")
    assert gets_per_setting(project) == once + once


SUPPORTED = ">=3.260.0,<4"  # the package's range (pyproject.toml): the CLI releases the pipelines accept


def pulumi_saying(
    tmp_path: Path, project: PulumiProject, pulumi_bin: Path, version: str
) -> tuple[dict[str, str], Path]:
    """A `pulumi` first on PATH that answers `version` with `version` and hands every other command to the
    real one: (the environment to run a pipeline with, the file listing the commands it was given)."""
    fake = tmp_path / f"pulumi-{version.replace(' ', '-')}"
    fake.mkdir()
    calls = fake / "calls"
    real = pulumi_bin / "pulumi"
    (fake / "pulumi").write_text(
        f'#!/bin/sh\necho "$1" >> "{calls}"\n'
        f'if [ "$1" = version ]; then echo "{version}"; exit 0; fi\n'
        f'exec "{real}" "$@"\n'
    )
    (fake / "pulumi").chmod(0o755)
    return {"PATH": f"{fake}:{project.env['PATH']}"}, calls


def test_a_pulumi_outside_the_supported_range_is_refused(
    project: PulumiProject, tmp_path: Path, pulumi_bin: Path
) -> None:
    pinned = (ROOT / "tools" / "engine" / "version.txt").read_text().strip()
    for says, command in (("v3.259.0", "preview"), ("v4.0.0", "deploy"), ("not a version", "drift-check")):
        env, calls = pulumi_saying(tmp_path, project, pulumi_bin, says)
        code, result, summary = pipeline(project, command, "dev", env)
        assert code == 1 and result["command"] == command
        (error,) = result["errors"]
        assert error["kind"] == "configuration"
        assert error["message"].startswith(
            f"`pulumi` on PATH ({calls.parent / 'pulumi'}) is {says}, and these pipelines need a Pulumi CLI in "
            f"{SUPPORTED} (the package's range in pyproject.toml)"
        )
        assert error["hint"].startswith(
            f"put a Pulumi CLI in {SUPPORTED} first on PATH, e.g. the pinned {pinned}: the official installer "
            f"(`curl -fsSL https://get.pulumi.com | sh -s -- --version {pinned}`), or the one built from Go modules ("
        )
        assert error["message"] in summary
        assert calls.read_text().splitlines() == ["version"]  # asked its version, nothing else
    assert project.api_log() == []


def test_a_pulumi_at_the_floor_of_the_supported_range_runs_the_pipelines(
    project: PulumiProject, tmp_path: Path, pulumi_bin: Path
) -> None:
    """Not only the pinned release: any CLI in the range is accepted (here the real one, saying it is the floor)."""
    declare(project, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    env, calls = pulumi_saying(tmp_path, project, pulumi_bin, "v3.260.0")
    code, result, _ = pipeline(project, "deploy", "dev", env)
    assert (code, result["errors"]) == (0, [])
    assert calls.read_text().splitlines()[0] == "version" and "up" in calls.read_text().splitlines()
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is False
