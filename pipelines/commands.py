"""The three pipeline commands. Each returns an exit code and prints JSON (stdout) and a summary (stderr)."""

from __future__ import annotations

import json
from typing import Any

from .backend import hint
from .common import (
    EXIT_DRIFT,
    EXIT_ERROR,
    EXIT_OK,
    Run,
    account_of,
    emit,
    errors_of,
    events_of,
    is_click_tracking,
    resource_name,
)

WATCHED = ("enabled", "on_delete", "on_behalf_of", "region")


def _value(state: dict[str, Any] | None, key: str, part: str) -> Any:
    return ((state or {}).get(part) or {}).get(key)


def _failed(run: Run, command: str, data: dict[str, Any], stderr: str) -> int:
    """Report a failed pulumi command: its error diagnostics as JSON, and exit 1."""
    errors = errors_of(data, stderr)
    if found := hint([*errors, stderr], run.stack, run.env):
        errors.append(found)
    emit(
        {"command": command, "stack": run.stack, "mode": run.mode, "ok": False, "errors": errors},
        [f"{command} of {run.stack} failed:", *[f"  {e}" for e in errors]],
    )
    return EXIT_ERROR


def preview(run: Run) -> int:
    """For a change under review: the diff per account. Exit 0 with or without changes, 1 on errors."""
    code, data, stderr = run.pulumi_json("preview")
    if code != 0:
        return _failed(run, "preview", data, stderr)
    changes = []
    for step in data.get("steps", []):
        if not is_click_tracking(step) or step.get("op") == "same":
            continue
        old, new = step.get("oldState"), step.get("newState")
        fields = {}
        for key in WATCHED:
            recorded, desired = _value(old, key, "outputs"), _value(new, key, "inputs")
            if (
                (old and new and recorded != desired)
                or (not old and key == "enabled")
                or (not new and key == "enabled")
            ):
                fields[key] = {"recorded": recorded, "desired": desired}
        changes.append(
            {
                "resource": resource_name(step["urn"]),
                "account": account_of(new) or account_of(old),
                "op": step.get("op"),
                "changes": fields,
            }
        )
    summary = [f"preview of {run.stack} ({run.mode}): {len(changes)} account(s) would change"]
    summary += [
        f"  {c['op']:8} {c['account']}: "
        + ", ".join(f"{k} {v['recorded']} -> {v['desired']}" for k, v in c["changes"].items())
        for c in changes
    ]
    emit(
        {
            "command": "preview",
            "stack": run.stack,
            "mode": run.mode,
            "ok": True,
            "changes": changes,
            "summary": data.get("changeSummary", {}),
        },
        summary,
    )
    return EXIT_OK


def deploy(run: Run) -> int:
    """On merge: `pulumi up --refresh` non-interactively. Exit 0 when applied, 1 on errors."""
    result = run.pulumi("up", "--yes", "--skip-preview", "--refresh", "--json")
    ok = result.returncode == 0
    events = events_of(result.stdout)
    changes: dict[str, Any] = next(
        (e["summaryEvent"].get("resourceChanges", {}) for e in events if "summaryEvent" in e), {}
    )
    diagnostics = [e["diagnosticEvent"] for e in events if "diagnosticEvent" in e]
    export = run.pulumi("stack", "export")
    accounts = []
    if export.returncode == 0:
        for resource in json.loads(export.stdout).get("deployment", {}).get("resources", []) or []:
            if "dynamic/sendgrid:ClickTracking" in resource.get("type", ""):
                outputs = resource.get("outputs", {})
                accounts.append(
                    {
                        "resource": resource_name(resource["urn"]),
                        "account": account_of(resource),
                        "enabled": outputs.get("enabled"),
                        "original_enabled": outputs.get("original_enabled"),
                    }
                )
    payload: dict[str, Any] = {
        "command": "deploy",
        "stack": run.stack,
        "mode": run.mode,
        "ok": ok,
        "summary": changes,
        "accounts": accounts,
    }
    if not ok:
        payload["errors"] = errors_of({"diagnostics": diagnostics}, result.stderr)
        # The lock left behind by a backend outage is reported on stderr only, so both are read.
        if found := hint([*payload["errors"], result.stderr], run.stack, run.env):
            payload["errors"].append(found)
    summary = [f"deploy of {run.stack} ({run.mode}) {'succeeded' if ok else 'FAILED'}: {payload['summary']}"]
    summary += [f"  {e}" for e in payload.get("errors", [])]
    emit(payload, summary)
    return EXIT_OK if ok else EXIT_ERROR


def drift_check(run: Run) -> int:
    """On a schedule: refresh-preview. Exit 2 on drift, 0 without, 1 on errors.

    Drift: an account whose live value (read by the refresh) differs from the recorded one and
    from the desired one. A difference between desired and recorded alone is a pending change,
    reported but not drift. Live == desired != recorded is harmless and not reported; the next
    deploy (which refreshes) records it.
    """
    code, data, stderr = run.pulumi_json("preview", "--refresh")
    if code != 0:
        return _failed(run, "drift-check", data, stderr)
    recorded: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    for step in data.get("steps", []):
        if is_click_tracking(step):
            (recorded if step.get("op") == "refresh" else changed)[step["urn"]] = step
    drift: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for urn, step in sorted(changed.items()):
        before = (recorded.get(urn) or {}).get("oldState")
        live_state = step.get("oldState")  # the state as the refresh left it
        if before is None or live_state is None:
            continue  # a new or removed account: a pending change, not drift
        entry = {
            "resource": resource_name(urn),
            "account": account_of(before),
            "recorded": _value(before, "enabled", "outputs"),
            "live": _value(live_state, "enabled", "outputs"),
            "desired": _value(step.get("newState"), "enabled", "inputs"),
        }
        (drift if entry["live"] != entry["recorded"] else pending).append(entry)
    checked = len(recorded)
    summary = [f"drift check of {run.stack} ({run.mode}): {len(drift)} of {checked} account(s) drifted"]
    summary += [f"  {d['account']}: recorded enabled={d['recorded']}, live enabled={d['live']}" for d in drift]
    summary += [f"  pending (not drift) {p['account']}: enabled {p['recorded']} -> {p['desired']}" for p in pending]
    emit(
        {
            "command": "drift-check",
            "stack": run.stack,
            "mode": run.mode,
            "ok": True,
            "checked": checked,
            "drift": drift,
            "pending": pending,
        },
        summary,
    )
    return EXIT_DRIFT if drift else EXIT_OK
