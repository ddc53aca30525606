"""The pipelines' reports against what reached SendGrid (the emulator's request log), in both directions.

Each test runs `pipelines/preview` then `pipelines/deploy` as commands, on the file backend and on PostgreSQL,
and checks every report of the deploy (its JSON, its Markdown, the GitHub step summary) against the requests
the emulator received: every request that changed SendGrid is in the report with its account, setting,
fields and before/after; every PATCH the report lists was sent, and only the applied ones changed anything;
the preview announced each of them (exactly, or as sent where SendGrid differs).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi_sendgrid_tracking.emulator import Emulator, Fault

from tools.pulumi_project import PROJECT
from tools.report_check import check_deploy, check_drift_check, check_preview, check_state, patches, rows, sent_key

from ..support.postgres import PostgresServer
from .conftest import ROOT, PulumiProject
from .test_ownership import repair_empty_sidecars
from .test_pipelines import declare, live, pipeline

URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:"


@pytest.fixture(params=["file", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The state backend's URL and environment: a file backend, or a fresh database of the session's server."""
    if request.param == "file":
        yield {}
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    if not server.running():
        server.start()
    database = f"reports_{abs(hash(request.node.nodeid)) % 10**8}"
    server.admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    server.create_database(database)
    yield {"backend_url": server.url(database, password=False), "env": {"PGPASSWORD": server.password}}
    server.admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture
def project(tmp_path: Path, e2e_emulator: Emulator, pulumi_bin: Path, backend: dict[str, Any]) -> PulumiProject:
    made = PulumiProject(tmp_path, e2e_emulator, pulumi_bin, **backend)
    shutil.rmtree(tmp_path / "home" / "workspaces", ignore_errors=True)  # the pipelines never select a stack
    return made


def log_since(project: PulumiProject) -> list[dict[str, Any]]:
    """The emulator's request log since the last call (the same cursor as `api_log`)."""
    entries = project.emulator.state.request_log()[project._seen :]
    project.api_log()
    return entries


def deploy_with_summaries(
    project: PulumiProject, tmp_path: Path, planned: dict[str, Any] | None
) -> tuple[int, dict[str, Any], str, list[dict[str, Any]]]:
    """A deploy with GITHUB_STEP_SUMMARY and --markdown-file (checked identical), its reports checked against the
    request log and the preview `planned` (tools/report_check.py): (exit code, JSON, Markdown, the log)."""
    step_summary, md_file = tmp_path / "summary.md", tmp_path / "deploy.md"
    step_summary.unlink(missing_ok=True)
    log_since(project)
    before = project.emulator.state.snapshot()
    code, result, _ = pipeline(
        project, "deploy", "dev", {"GITHUB_STEP_SUMMARY": str(step_summary)}, "--markdown-file", str(md_file)
    )
    markdown = md_file.read_text()
    assert step_summary.read_text() == markdown
    log = log_since(project)
    check_deploy(result, log, markdown, planned, before=before)
    check_state(result["state"], project.export("--stack", "dev")["deployment"].get("resources", []))
    return code, result, markdown, log


def preview(project: PulumiProject) -> dict[str, Any]:
    """A preview (its Markdown: --markdown-file and the step summary, identical), checked: it sends nothing,
    its rows say what the deploy will send, its state is the stack's."""
    md_file = project.dir.parent / "preview.md"
    step_summary = project.dir.parent / "preview-summary.md"
    step_summary.unlink(missing_ok=True)
    log_since(project)
    code, result, _ = pipeline(
        project, "preview", "dev", {"GITHUB_STEP_SUMMARY": str(step_summary)}, "--markdown-file", str(md_file)
    )
    assert code == 0, result["errors"]
    assert step_summary.read_text() == md_file.read_text()
    check_preview(result, log_since(project), md_file.read_text())
    check_state(result["state"], project.export("--stack", "dev")["deployment"].get("resources", []))
    return result


PARENT_OPEN = {"name": "o", "kind": "open", "enabled": True}


def test_an_account_changed_in_the_ui_then_dropped_is_given_back_from_live_values(
    project: PulumiProject, tmp_path: Path
) -> None:
    state = project.emulator.state
    state.set_out_of_band("global", "bob", "subscription", {"enabled": False})
    declare(
        project,
        PARENT_OPEN,
        {"name": "a", "enabled": True, "on_behalf_of": "alice"},  # already on: nothing to send
        {"name": "s", "kind": "subscription", "enabled": True, "on_behalf_of": "bob", "url": "https://a.example/u"},
        {"name": "c", "enabled": True, "on_behalf_of": "carol", "region": "eu", "on_delete": "disable"},
    )
    planned = preview(project)
    code, first, _, _ = deploy_with_summaries(project, tmp_path, planned)
    assert code == 0, first["errors"]
    assert rows(first)["global/alice", "click"]["note"] == "no request: SendGrid already held these values"

    # Someone uses SendGrid's UI; then the accounts leave the fleet.
    state.set_out_of_band("global", "alice", "click", {"enabled": False})
    state.set_out_of_band("global", "bob", "subscription", {"url": "https://b.example/ui"})
    state.set_out_of_band("eu", "carol", "click", {"enabled": False})
    declare(project, PARENT_OPEN)
    planned = preview(project)
    assert {k: (r["action"], r["effect"], r["sends"]) for k, r in rows(planned).items()} == {
        ("global/alice", "click"): ("delete", "restore", "unknown"),
        ("global/bob", "subscription"): ("delete", "restore", "unknown"),
        ("eu/carol", "click"): ("delete", "disable", "unknown"),
    }
    code, deployed, _, log = deploy_with_summaries(project, tmp_path, planned)
    assert code == 0, deployed["errors"]
    assert patches(log, changed=True) == Counter(
        [
            sent_key("global/alice", "click", {"enabled": True}),
            sent_key("global/bob", "subscription", {"enabled": False, "url": ""}),
        ]
    )
    given = rows(deployed)
    bob = {f["field"]: (f["before"], f["after"]) for f in given["global/bob", "subscription"]["fields"]}
    assert bob == {"enabled": (True, False), "url": ("https://b.example/ui", None)}  # the UI's url, not the state's
    assert [(f["field"], f["before"], f["after"]) for f in given["global/alice", "click"]["fields"]] == [
        ("enabled", False, True)
    ]
    carol = given["eu/carol", "click"]
    assert (carol["status"], carol["sends"], carol["note"]) == (
        "done",
        "nothing",
        "no request: SendGrid already held these values",
    )
    assert deployed["summary"]["delete"] == 3 and deployed["summary"]["patches"] == 2
    assert (live(project, "alice")["enabled"], live(project, "carol", "click", "eu")["enabled"]) == (True, False)
    assert "url" not in live(project, "bob", "subscription") or live(project, "bob", "subscription")["url"] in (
        "",
        None,
    )


def test_an_aliased_rename_that_changes_the_account(project: PulumiProject, tmp_path: Path) -> None:
    """The old account is given back (restore), the new one taken over: both reported as sent."""
    declare(project, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    assert pipeline(project, "deploy")[0] == 0
    declare(project, {"name": "b", "enabled": False, "on_behalf_of": "bob", "aliases": ["global/alice"]})
    planned = preview(project)
    pair = {"from": "global/alice", "to": "global/bob"}
    assert [(r["account"], r["action"], r["effect"], r["sends"], r["replacement"]) for r in planned["changes"]] == [
        ("global/bob", "replace", "set", "unknown", pair),
        ("global/alice", "replace", "restore", "unknown", pair),
    ]
    assert [(f["field"], f["after"], f["original"]) for f in rows(planned)["global/alice", "click"]["fields"]] == [
        ("enabled", True, True)
    ]
    code, deployed, _, log = deploy_with_summaries(project, tmp_path, planned)
    assert code == 0, deployed["errors"]
    assert patches(log, changed=True) == Counter(
        [sent_key("global/alice", "click", {"enabled": True}), sent_key("global/bob", "click", {"enabled": False})]
    )
    assert {(r["account"], r["action"], r["status"], r["resource"]) for r in deployed["changes"]} == {
        ("global/alice", "replace", "done", "a"),
        ("global/bob", "replace", "done", "b"),
    }
    assert deployed["summary"]["replace"] == 1
    assert (live(project, "alice")["enabled"], live(project, "bob")["enabled"]) == (True, False)


def test_a_failed_give_back_is_reported_failed_then_done(project: PulumiProject, tmp_path: Path) -> None:
    declare(project, PARENT_OPEN, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    assert pipeline(project, "deploy")[0] == 0
    declare(project, PARENT_OPEN)
    project.emulator.state.add_fault(Fault("503", count=10_000, method="PATCH", account="alice"))
    planned = preview(project)
    code, failed, markdown, log = deploy_with_summaries(project, tmp_path, planned)
    assert code == 1 and failed["ok"] is False
    alice = rows(failed)["global/alice", "click"]
    assert (alice["action"], alice["status"], alice["sends"]) == ("delete", "failed", "patch")
    (request,) = alice["requests"]
    assert (request["fields"], request["before"], request["status"]) == (
        {"enabled": True},
        {"enabled": False},
        "failed",
    )
    assert "503" in request["error"] and "503" in alice["error"]["message"]
    assert [(f["field"], f["before"], f["after"]) for f in alice["fields"]] == [("enabled", False, False)]
    assert failed["summary"]["failed"] == 1 and failed["summary"]["delete"] == 0
    assert patches(log, changed=True) == Counter() and patches(log)  # tried, changed nothing
    assert "delete: restore **FAILED**" in markdown and "PATCH enabled (failed)" in markdown
    assert live(project, "alice")["enabled"] is False

    project.emulator.state.clear_faults()
    planned = preview(project)  # the setting is still in the state: its give-back is still to come
    assert rows(planned)["global/alice", "click"]["sends"] == "unknown"
    code, deployed, _, log = deploy_with_summaries(project, tmp_path, planned)
    assert code == 0, deployed["errors"]
    assert patches(log, changed=True) == Counter([sent_key("global/alice", "click", {"enabled": True})])
    assert rows(deployed)["global/alice", "click"]["status"] == "done"
    assert live(project, "alice")["enabled"] is True


def test_destroy_target_and_state_delete_then_deploy(project: PulumiProject, tmp_path: Path) -> None:
    """A give-back outside the pipelines (`destroy --target`), a setting forgotten (`state delete`): the next
    preview and deploy take them over again, from the ledger's originals, and say exactly what is sent."""
    declare(
        project,
        {"name": "a", "enabled": False, "on_behalf_of": "alice"},
        {"name": "b", "enabled": False, "on_behalf_of": "bob"},
    )
    assert pipeline(project, "deploy")[0] == 0
    log_since(project)
    project.run("destroy", "--yes", "--skip-preview", "--stack", "dev", "--target", f"{URN}ClickTracking::global/alice")
    assert patches(log_since(project), changed=True) == Counter([sent_key("global/alice", "click", {"enabled": True})])
    project.run("state", "delete", f"{URN}ClickTracking::global/bob", "--yes", "--stack", "dev")
    assert log_since(project) == []
    planned = preview(project)
    assert {
        k: (r["action"], r["sends"], [(f["field"], f["after"], f["original"]) for f in r["fields"]])
        for k, r in rows(planned).items()
    } == {
        ("global/alice", "click"): ("create", "unknown", [("enabled", False, True)]),  # the ledger's originals
        ("global/bob", "click"): ("create", "unknown", [("enabled", False, True)]),
    }
    code, deployed, _, log = deploy_with_summaries(project, tmp_path, planned)
    assert code == 0, deployed["errors"]
    assert patches(log, changed=True) == Counter([sent_key("global/alice", "click", {"enabled": False})])
    bob = rows(deployed)["global/bob", "click"]
    assert (bob["status"], bob["sends"], bob["note"]) == (
        "done",
        "nothing",
        "no request: SendGrid already held these values",
    )
    held = {s["account"]: s["originals"] for s in deployed["state"]}
    assert held == {"global/alice": {"enabled": True}, "global/bob": {"enabled": True}}


def test_a_give_back_killed_after_its_patch_then_deploy(project: PulumiProject, tmp_path: Path) -> None:
    """pipelines/deploy killed (SIGKILL) while alice's give-back PATCH is in flight: it landed, the state still has
    the setting (and the killed run left no report). The next preview says the give-back is still to come; the
    next deploy reads SendGrid, finds the target already there, sends nothing and says so."""
    declare(project, PARENT_OPEN, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    assert pipeline(project, "deploy")[0] == 0
    declare(project, PARENT_OPEN)
    state = project.emulator.state
    # alice's PATCH is applied, then its answer waits: the run is killed while the provider waits for it.
    state.add_fault(Fault("hang", count=1, method="PATCH", account="alice", apply=True, hang_seconds=5.0))
    before = len(state.request_log())
    proc = project.start([str(ROOT / "pipelines" / "deploy"), "--stack", "dev", "--project-dir", str(project.dir)])
    deadline = time.monotonic() + 300
    while live(project, "alice")["enabled"] is not True:  # the PATCH landed
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    while not any(e["method"] == "PATCH" for e in state.request_log()[before:]):  # the hung answer, logged
        assert time.monotonic() < deadline
        time.sleep(0.05)
    repair_empty_sidecars(project)
    project.run("cancel", "--yes", "--stack", "dev", check=False)  # the documented recovery, then deploy again
    planned = preview(project)
    alice = rows(planned)["global/alice", "click"]
    assert (alice["action"], alice["sends"]) == ("delete", "unknown")  # still to come: decided from live values
    code, deployed, _, log = deploy_with_summaries(project, tmp_path, planned)
    assert code == 0, deployed["errors"]
    assert patches(log) == Counter()  # SendGrid already held the target: nothing sent, nothing said sent
    alice = rows(deployed)["global/alice", "click"]
    assert (alice["status"], alice["sends"], alice["note"]) == (
        "done",
        "nothing",
        "no request: SendGrid already held these values",
    )
    assert [(f["field"], f["before"], f["after"]) for f in alice["fields"]] == [("enabled", True, True)]


def test_drift_check_reads_a_setting_removed_from_the_program(project: PulumiProject) -> None:
    """alice's click tracking, changed in SendGrid's UI, then dropped from the program: drift-check's `state`
    lists it as read live, and its drift (recorded off, live on). Its `preview --refresh` runs the program and
    so refreshes only what the program declares; drift-check reads alice on its own (one GET)."""
    declare(project, PARENT_OPEN, {"name": "a", "enabled": False, "on_behalf_of": "alice"})
    assert pipeline(project, "deploy")[0] == 0
    project.emulator.state.set_out_of_band("global", "alice", "click", {"enabled": True})
    declare(project, PARENT_OPEN)
    recorded = project.export("--stack", "dev")["deployment"].get("resources", [])
    log_since(project)
    code, result, _ = pipeline(project, "drift-check")
    log = log_since(project)
    desired = {("global", "open"): {"enabled": True}}
    check_drift_check(result, log, recorded, project.emulator.state.snapshot(), desired)
    assert code == 2, result.get("errors")
    (alice,) = result["changes"]  # its pending give-back, from the values just read: SendGrid holds the original
    assert (alice["account"], alice["action"], alice["sends"]) == ("global/alice", "delete", "unknown")
    assert [(f["field"], f["before"], f["after"]) for f in alice["fields"]] == [("enabled", True, True)]
    assert sorted((e["method"], e["on_behalf_of"] or "", e["path"]) for e in log) == [
        ("GET", "", "/v3/tracking_settings/open"),
        ("GET", "alice", "/v3/tracking_settings/click"),
    ]  # one GET each: the program's setting, then alice on her own
    assert [(d["account"], d["setting"], d["field"], d["recorded"], d["live"], d["note"]) for d in result["drift"]] == [
        ("global/alice", "click", "enabled", False, True, "removed from the program: the next deploy gives it back")
    ]
    # alice cannot be read (503s past the retries): an error naming her, exit 1, nothing sent.
    project.emulator.state.add_fault(Fault("503", count=10_000, method="GET", account="alice"))
    code, result, _ = pipeline(project, "drift-check")
    assert code == 1 and not result["ok"] and result["drift"] == []
    (failure,) = result["errors"]
    assert (failure["account"], failure["setting"]) == ("global/alice", "click"), failure
    assert "503" in failure["message"] and failure["hint"], failure
    assert {e["method"] for e in log_since(project)} == {"GET"}
