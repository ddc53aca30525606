"""The change journal: one JSON line per PATCH the provider sends, before it is sent and once it is settled,
and one per setting a refresh read.

Set SENDGRID_CHANGE_JOURNAL=<file> (the pipeline scripts do) and every request that may change SendGrid is
written there by the code that sends it, so a report of what reached SendGrid is read, never worked out:

    {"id": ..., "phase": "sending", "op": "take over|update|give back", "setting": "click",
     "region": "global", "on_behalf_of": "alice", "fields": {"enabled": false}, "before": {"enabled": true}}
    {"id": ..., "phase": "settled", "status": "applied|failed|unknown", "after": {...}, "error": "..."}

    {"phase": "read", "type": "ClickTracking", "id": "global/alice", "outputs": {...}}

A "sending" line without its "settled" line is a request whose outcome was never seen (the run was killed).
Lines are appended with one write each (O_APPEND), so the provider's threads never interleave within a line.
No key, header or whole request is ever written.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

JOURNAL_ENV = "SENDGRID_CHANGE_JOURNAL"
OPS = ("take over", "update", "give back")
STATUSES = ("applied", "failed", "unknown")

_lock = threading.Lock()
_counter = 0


def _write(entry: Mapping[str, Any]) -> None:
    path = os.environ.get(JOURNAL_ENV)
    if not path:
        return
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def sending(
    op: str,
    setting: str,
    region: str,
    on_behalf_of: str | None,
    fields: Mapping[str, Any],
    before: Mapping[str, Any],
) -> str:
    """Record a PATCH about to be sent; returns its id for `settled`."""
    global _counter  # noqa: PLW0603 - a process-wide sequence, under the lock
    with _lock:
        _counter += 1
        entry_id = f"{os.getpid()}-{_counter}"
    _write(
        {
            "id": entry_id,
            "phase": "sending",
            "op": op,
            "setting": setting,
            "region": region,
            "on_behalf_of": on_behalf_of,
            "fields": dict(fields),
            "before": {name: before.get(name) for name in fields},
        }
    )
    return entry_id


def settled(
    entry_id: str, status: str, after: Mapping[str, Any] | None, fields: Mapping[str, Any], error: str | None = None
) -> None:
    """Record how a PATCH ended: applied (SendGrid holds the fields), failed (it does not), unknown."""
    _write(
        {
            "id": entry_id,
            "phase": "settled",
            "status": status,
            "after": None if after is None else {name: after.get(name) for name in fields},
            "error": error,
        }
    )


def refreshed(resource: str, resource_id: str, outputs: Mapping[str, Any]) -> None:
    """Record what a refresh read: the outputs the resource `resource_id` of type `resource` now has (a
    `pulumi refresh --preview-only` shows the recorded state only, so drift-check reads it here)."""
    _write({"phase": "read", "type": resource, "id": resource_id, "outputs": dict(outputs)})


def _lines(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def reads(path: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The journal's reads: (type, id) → the outputs the refresh read."""
    return {
        (str(e.get("type")), str(e.get("id"))): e["outputs"]
        for e in _lines(path)
        if e.get("phase") == "read" and isinstance(e.get("outputs"), dict)
    }


def read(path: str) -> list[dict[str, Any]]:
    """The journal's PATCHes, one dict each: the "sending" line merged with its "settled" line (status
    `unknown` and no `after` when it never settled). Lines that are not JSON (a torn last line) are skipped."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in _lines(path):
        if not isinstance(entry.get("id"), str):
            continue
        if entry.get("phase") == "sending":
            entries[entry["id"]] = {**entry, "status": "unknown", "after": None, "error": None}
        elif entry.get("phase") == "settled" and entry["id"] in entries:
            entries[entry["id"]].update(status=entry.get("status"), after=entry.get("after"), error=entry.get("error"))
    for entry in entries.values():
        entry.pop("phase", None)
    return list(entries.values())
