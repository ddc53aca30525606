"""The reports' reading of steps and of the provider's change journal, without the engine.

The end-to-end tests (tests/e2e/test_reports.py) check the common cases against the emulator's request log;
these cover what is hard to bring about there: a PATCH that never settled, a PATCH no step claims, 0.2.0's
adoption records retired or giving an account back, `retain_on_delete`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from pulumi_sendgrid_tracking import journal

from pipelines.output import payload
from pipelines.report import RETIRED, Step, applied, plan

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))
PREFIX = "urn:pulumi:dev::p::pulumi-python:dynamic/sendgrid:"
CLICK_ALICE = f"{PREFIX}ClickTracking::global/alice"
RECORD_ALICE = f"{PREFIX}Adoption::click/global/alice"
LEDGER = f"{PREFIX}Originals::originals"


def outputs(**extra: Any) -> dict[str, Any]:
    """A 0.3.0 click setting of alice as recorded: the stack set it off, it was on before."""
    values = {
        "region": "global",
        "on_behalf_of": "alice",
        "enabled": False,
        "enable_text": False,
        "on_delete": "restore",
        "name": "a",
        "managed_fields": ["enabled"],
        "originals": {"enabled": True},
        "held_fields": ["enabled"],
        "original_enabled": True,
    }
    return {"outputs": {**values, **extra}}


def record(**extra: Any) -> dict[str, Any]:
    """0.2.0's adoption record of alice's click tracking."""
    values = {"setting": "click", "region": "global", "on_behalf_of": "alice", "observed": {"enabled": True}}
    return {"outputs": {**values, **extra}}


def ledger(*keys: str) -> dict[str, Any]:
    """The stack's ledger as a step carries it: each declared setting key → its managed fields."""
    return {"inputs": {"accounts": {k: ["enabled"] for k in keys}}}


def valid(rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    data = payload("deploy", "dev", "sendgrid", exit_code=0, changes=rows, counts=counts)
    assert [e.message for e in VALIDATOR.iter_errors(data)] == []


def entry(status: str | None, **fields: Any) -> dict[str, Any]:
    """One PATCH of the journal as `journal.read` gives it (status None: written before sending, never settled)."""
    return {
        "id": "1-1",
        "op": fields.pop("op", "give back"),
        "setting": "click",
        "region": "global",
        "on_behalf_of": "alice",
        "fields": {"enabled": True},
        "before": {"enabled": False},
        "status": status or "unknown",
        "after": fields.pop("after", None),
        "error": fields.pop("error", None),
    }


def test_a_patch_that_never_settled_is_unknown_with_its_before(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv(journal.JOURNAL_ENV, str(path))
    journal.sending("give back", "click", "global", "alice", {"enabled": True}, {"enabled": False})  # then killed
    steps = [Step("delete", CLICK_ALICE, outputs(), None, "started")]
    rows, counts = applied(steps, {}, journal.read(str(path)))
    valid(rows, counts)
    (alice,) = rows
    assert (alice["action"], alice["status"], alice["sends"]) == ("delete", "unknown", "patch")
    assert [(f["field"], f["before"], f["before_known"], f["after_known"]) for f in alice["fields"]] == [
        ("enabled", False, True, False)
    ]
    assert counts["delete"] == 0 and counts["failed"] == 1 and counts["patches"] == 1


def test_the_journal_keeps_what_a_refresh_read_apart_from_the_patches(tmp_path: Path, monkeypatch: Any) -> None:
    """drift-check's targeted refresh learns what was read from these lines; a deploy's PATCHes ignore them."""
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv(journal.JOURNAL_ENV, str(path))
    journal.refreshed("ClickTracking", "global/alice", {"enabled": True, "enable_text": False})
    journal.sending("give back", "click", "global", "alice", {"enabled": True}, {"enabled": False})
    path.write_text(path.read_text() + '{"phase": "read", "type": "OpenTracking", "id": "glo')  # a torn last line
    assert journal.reads(str(path)) == {("ClickTracking", "global/alice"): {"enabled": True, "enable_text": False}}
    assert [(e["op"], e["on_behalf_of"], e["status"]) for e in journal.read(str(path))] == [
        ("give back", "alice", "unknown")
    ]


def test_a_failed_give_back_carries_its_error_and_changes_nothing() -> None:
    failed = entry("failed", after={"enabled": False}, error="PATCH ... failed (503): unavailable. Hint: retry.")
    rows, counts = applied([Step("delete", CLICK_ALICE, outputs(), None, "failed")], {}, [failed])
    valid(rows, counts)
    (alice,) = rows
    assert (alice["status"], alice["error"]["message"], alice["error"]["hint"]) == (
        "failed",
        "PATCH ... failed (503): unavailable.",
        "retry.",
    )
    assert [(f["field"], f["before"], f["after"]) for f in alice["fields"]] == [("enabled", False, False)]


def test_a_patch_no_step_claims_is_reported_all_the_same() -> None:
    rows, counts = applied([], {}, [entry("applied", after={"enabled": True})])
    valid(rows, counts)
    (alice,) = rows
    assert (alice["account"], alice["setting"], alice["action"], alice["status"]) == (
        "global/alice",
        "click",
        "delete",
        "done",
    )
    assert alice["requests"][0]["fields"] == {"enabled": True} and counts["patches"] == 1


def test_retain_on_delete_sends_nothing() -> None:
    rows, _, _ = plan([("delete", CLICK_ALICE, {**outputs(), "retainOnDelete": True}, None)])
    (alice,) = rows
    assert (alice["effect"], alice["sends"], alice["note"]) == (
        "keep",
        "nothing",
        "retain_on_delete: the stack forgets it, nothing is sent",
    )
    done, _ = applied([Step("delete", CLICK_ALICE, {**outputs(), "retainOnDelete": True}, None, "done")], {}, [])
    assert (done[0]["sends"], done[0]["requests"]) == ("nothing", [])


def test_an_adoption_record_of_a_declared_account_retires_sending_nothing() -> None:
    new = {"inputs": {**outputs()["outputs"]}}
    steps = [
        ("update", LEDGER, None, ledger("click/global/alice")),
        ("update", CLICK_ALICE, {"outputs": {**outputs()["outputs"], "held_fields": None}}, new),
        ("delete", RECORD_ALICE, record(), None),
    ]
    rows, _, _ = plan(steps)
    (alice,) = rows  # the ledger is no row; the record is a note on its account's row
    assert alice["action"] == "update" and alice["note"] == RETIRED
    done, _ = applied([Step(op, urn, old, new, "done") for op, urn, old, new in steps], {}, [])
    (alice,) = done
    assert alice["note"] == "no request; " + RETIRED and alice["sends"] == "nothing"


def test_an_adoption_record_left_behind_gives_back_from_what_it_observed() -> None:
    steps = [("delete", RECORD_ALICE, record(on_delete="restore", managed_fields=["enabled"]), None)]
    rows, counts, _ = plan(steps)
    (alice,) = rows
    assert (alice["action"], alice["effect"], alice["sends"]) == ("delete", "restore", "unknown")
    assert [(f["field"], f["before_known"], f["after"]) for f in alice["fields"]] == [("enabled", False, True)]
    sent = entry("applied", after={"enabled": True})
    done, counts = applied([Step("delete", RECORD_ALICE, record(), None, "done")], {}, [sent])
    valid(done, counts)
    (alice,) = done
    assert (alice["status"], alice["sends"], alice["effect"]) == ("done", "patch", "restore")
    assert [(f["field"], f["before"], f["after"]) for f in alice["fields"]] == [("enabled", False, True)]


def test_a_replacement_lists_its_recorded_setting_once() -> None:
    """An aliased rename onto another account: the engine's three steps (create-replacement, replace,
    delete-replaced) each carry the old state; the preview's `state` lists the setting once, not three times."""
    bob = f"{PREFIX}ClickTracking::global/bob"
    new = {"inputs": {**outputs()["outputs"], "on_behalf_of": "bob", "name": "b"}}
    steps = [(op, bob, outputs(), new) for op in ("create-replacement", "replace", "delete-replaced")]
    rows, counts, recorded = plan(steps)
    assert [(r["account"], r["action"]) for r in rows] == [("global/bob", "replace"), ("global/alice", "replace")]
    assert [(s["account"], s["resource"]) for s in recorded] == [("global/alice", "a")]
    assert counts["replace"] == 1
