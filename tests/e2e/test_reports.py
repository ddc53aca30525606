"""The pipelines' reports against what reached SendGrid (the emulator's request log), in both directions.

Each test runs `pipelines/preview` then `pipelines/deploy` as commands, on the file backend and on PostgreSQL,
and checks every report of the deploy (its JSON, its Markdown, the GitHub step summary) against the requests
the emulator received: every request that changed SendGrid is in the report with its account, setting,
fields and before/after; every PATCH the report lists was sent, and only the applied ones changed anything;
the preview announced each of them (exactly, or as sent where SendGrid differs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi_sendgrid_tracking.emulator import Emulator, Fault
from pulumi_sendgrid_tracking.inputs import resource_id
from pulumi_sendgrid_tracking.tracking import SETTINGS

from tools.pulumi_project import PROJECT

from ..support.postgres import PostgresServer
from .conftest import ROOT, PulumiProject
from .test_ownership import repair_empty_sidecars
from .test_pipelines import declare, live, pipeline, rows

SETTING_OF_PATH = {s.path: s.name for s in SETTINGS.values()}
URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:"
Sent = tuple[str, str, str]
"""(account, setting, the PATCH's body as sorted JSON)."""


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


def _sent(account: str, setting: str, body: Any) -> Sent:
    return (account, setting, json.dumps(body, sort_keys=True))


def patches(log: list[dict[str, Any]], *, changed: bool | None = None) -> Counter[Sent]:
    """The log's PATCHes (only those that changed a setting, or did not), by account, setting and body."""
    return Counter(
        _sent(resource_id(e["world"], e["on_behalf_of"]), SETTING_OF_PATH[e["path"]], e["body"])
        for e in log
        if e["method"] == "PATCH" and (changed is None or e["changed"] == changed)
    )


def reported(result: dict[str, Any], *statuses: str) -> Counter[Sent]:
    """The PATCHes a deploy's JSON lists, with one of `statuses` (any when none is given)."""
    return Counter(
        _sent(r["account"], r["setting"], q["fields"])
        for r in result["changes"]
        for q in r["requests"]
        if not statuses or q["status"] in statuses
    )


MD_ROW = re.compile(
    r"^\| <code>(?P<account>[^<]+)</code> \| (?P<setting>\w+) \| (?P<action>[^|]+) \| .* \| (?P<req>[^|]+) \|$"
)


def markdown_requests(text: str) -> dict[tuple[str, str], str]:
    """(account, setting) → the table's request cell."""
    found = {}
    for line in text.splitlines():
        match = MD_ROW.match(line)
        if match:
            found[match["account"], match["setting"]] = match["req"]
    return found


def check_deploy(
    deployed: dict[str, Any], log: list[dict[str, Any]], markdown: str, preview: dict[str, Any] | None
) -> None:
    """The deploy's reports and the request log agree in both directions; the preview announced every change."""
    changed = patches(log, changed=True)
    assert reported(deployed, "applied") == changed  # every change in the report, every applied one in the log
    sent = patches(log)
    assert all(sent[key] for key in reported(deployed)), (reported(deployed), sent)  # every PATCH listed was sent
    for key in reported(deployed, "failed"):
        assert not changed[key]  # a failed one changed nothing
    by_key = rows(deployed)
    for (account, setting, body), _ in changed.items():  # before/after: SendGrid's own values
        entry = by_key[account, setting]
        (request,) = [q for q in entry["requests"] if json.dumps(q["fields"], sort_keys=True) == body]
        assert entry["sends"] == "patch" and request["status"] == "applied"
        shown = {f["field"]: (f["before"], f["after"]) for f in entry["fields"]}
        assert {name: shown[name][0] for name in request["fields"]} == request["before"]
    for entry in deployed["changes"]:  # nothing said sent that was not, and the other way round
        account_sent = [k for k in sent if k[:2] == (entry["account"], entry["setting"])]
        assert bool(entry["requests"]) == bool(account_sent), entry
        assert (entry["sends"] == "patch") == bool(entry["requests"])
    assert sum(len(r["requests"]) for r in deployed["changes"]) == deployed["summary"]["patches"]
    cells = markdown_requests(markdown)
    assert set(cells) == set(by_key)
    for (account, setting), entry in by_key.items():
        expected = (
            "; ".join(f"PATCH {', '.join(sorted(q['fields']))} ({q['status']})" for q in entry["requests"]) or "none"
        )
        assert cells[account, setting] == expected
    for account, setting, body in changed:
        assert f"PATCH {', '.join(sorted(json.loads(body)))} (applied)" in cells[account, setting]
    if preview is None:
        return
    planned = rows(preview)
    announced = markdown_requests(preview["_markdown"])
    assert set(announced) == set(planned)
    for account, setting, body in sent:  # announced: exactly, or as sent where SendGrid differs
        entry = planned[account, setting]
        assert entry["sends"] in ("patch", "unknown"), entry
        if entry["sends"] == "patch":
            assert sorted(json.loads(body)) == sorted(f["field"] for f in entry["fields"] if not f["note"])
            assert (
                announced[account, setting]
                == f"PATCH {', '.join(f['field'] for f in entry['fields'] if not f['note'])}"
            )
        else:
            assert announced[account, setting] == "PATCH if SendGrid differs"
    for (account, setting), entry in planned.items():
        if entry["sends"] == "patch":
            assert any(k[:2] == (account, setting) for k in sent), entry
        if entry["sends"] == "nothing":
            assert not any(k[:2] == (account, setting) for k in sent), entry
            assert announced[account, setting] == "none"


def deploy_with_summaries(project: PulumiProject, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    """A deploy with GITHUB_STEP_SUMMARY and --markdown-file: (exit code, JSON, the Markdown, checked identical)."""
    step_summary, md_file = tmp_path / "summary.md", tmp_path / "deploy.md"
    step_summary.unlink(missing_ok=True)
    code, result, _ = pipeline(
        project, "deploy", "dev", {"GITHUB_STEP_SUMMARY": str(step_summary)}, "--markdown-file", str(md_file)
    )
    markdown = md_file.read_text()
    assert step_summary.read_text() == markdown
    return code, result, markdown


def preview(project: PulumiProject) -> dict[str, Any]:
    """A preview, its Markdown (--markdown-file and the step summary, identical) attached as `_markdown`."""
    md_file = project.dir.parent / "preview.md"
    step_summary = project.dir.parent / "preview-summary.md"
    step_summary.unlink(missing_ok=True)
    code, result, _ = pipeline(
        project, "preview", "dev", {"GITHUB_STEP_SUMMARY": str(step_summary)}, "--markdown-file", str(md_file)
    )
    assert code == 0, result["errors"]
    assert log_since(project) == []  # a preview sends nothing
    assert step_summary.read_text() == md_file.read_text()
    return {**result, "_markdown": md_file.read_text()}


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
    log_since(project)
    planned = preview(project)
    code, first, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 0, first["errors"]
    check_deploy(first, log_since(project), markdown, planned)
    assert rows(first)["global/alice", "click"]["note"] == "no request: SendGrid already held these values"

    # Someone uses SendGrid's UI; then the accounts leave the fleet.
    state.set_out_of_band("global", "alice", "click", {"enabled": False})
    state.set_out_of_band("global", "bob", "subscription", {"url": "https://b.example/ui"})
    state.set_out_of_band("eu", "carol", "click", {"enabled": False})
    declare(project, PARENT_OPEN)
    log_since(project)
    planned = preview(project)
    assert {k: (r["action"], r["effect"], r["sends"]) for k, r in rows(planned).items()} == {
        ("global/alice", "click"): ("delete", "restore", "unknown"),
        ("global/bob", "subscription"): ("delete", "restore", "unknown"),
        ("eu/carol", "click"): ("delete", "disable", "unknown"),
    }
    code, deployed, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 0, deployed["errors"]
    log = log_since(project)
    check_deploy(deployed, log, markdown, planned)
    assert patches(log, changed=True) == Counter(
        [
            _sent("global/alice", "click", {"enabled": True}),
            _sent("global/bob", "subscription", {"enabled": False, "url": ""}),
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
    log_since(project)
    planned = preview(project)
    pair = {"from": "global/alice", "to": "global/bob"}
    assert [(r["account"], r["action"], r["effect"], r["sends"], r["replacement"]) for r in planned["changes"]] == [
        ("global/bob", "replace", "set", "unknown", pair),
        ("global/alice", "replace", "restore", "unknown", pair),
    ]
    assert [(f["field"], f["after"], f["original"]) for f in rows(planned)["global/alice", "click"]["fields"]] == [
        ("enabled", True, True)
    ]
    code, deployed, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 0, deployed["errors"]
    log = log_since(project)
    check_deploy(deployed, log, markdown, planned)
    assert patches(log, changed=True) == Counter(
        [_sent("global/alice", "click", {"enabled": True}), _sent("global/bob", "click", {"enabled": False})]
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
    log_since(project)
    planned = preview(project)
    code, failed, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 1 and failed["ok"] is False
    log = log_since(project)
    check_deploy(failed, log, markdown, planned)
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
    code, deployed, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 0, deployed["errors"]
    log = log_since(project)
    check_deploy(deployed, log, markdown, planned)
    assert patches(log, changed=True) == Counter([_sent("global/alice", "click", {"enabled": True})])
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
    assert patches(log_since(project), changed=True) == Counter([_sent("global/alice", "click", {"enabled": True})])
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
    code, deployed, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 0, deployed["errors"]
    log = log_since(project)
    check_deploy(deployed, log, markdown, planned)
    assert patches(log, changed=True) == Counter([_sent("global/alice", "click", {"enabled": False})])
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
    proc = subprocess.Popen(
        [str(ROOT / "pipelines" / "deploy"), "--stack", "dev", "--project-dir", str(project.dir)],
        cwd=project.dir,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
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
    log_since(project)
    planned = preview(project)
    alice = rows(planned)["global/alice", "click"]
    assert (alice["action"], alice["sends"]) == ("delete", "unknown")  # still to come: decided from live values
    code, deployed, markdown = deploy_with_summaries(project, tmp_path)
    assert code == 0, deployed["errors"]
    log = log_since(project)
    check_deploy(deployed, log, markdown, planned)
    assert patches(log) == Counter()  # SendGrid already held the target: nothing sent, nothing said sent
    alice = rows(deployed)["global/alice", "click"]
    assert (alice["status"], alice["sends"], alice["note"]) == (
        "done",
        "nothing",
        "no request: SendGrid already held these values",
    )
    assert [(f["field"], f["before"], f["after"]) for f in alice["fields"]] == [("enabled", True, True)]
