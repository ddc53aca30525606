"""The three pipeline commands. Each returns an exit code and prints one output (output.py, output.schema.json).

    preview       `pulumi preview --json`: what each account's setting would become; sends no request
    deploy        `pulumi up --refresh --skip-preview`: one GET per setting, then the changes
    drift-check   `pulumi preview --refresh --json` (and `pulumi refresh --preview-only` of the settings the program
                  no longer declares): one GET per setting; drift per field, and what is pending

`--skip-preview` matters: `pulumi up --refresh` and `pulumi refresh` without it read every setting twice
(once for their own preview). The engine's resource counts include the stack's originals ledger (and 0.2.0's
adoption records); these commands count and list account settings only.

deploy's report of what reached SendGrid is the provider's change journal (SENDGRID_CHANGE_JOURNAL, a file of
this run's own): every PATCH, written before it is sent and when it is settled, joined with the engine's events.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_sendgrid_tracking import journal
from pulumi_sendgrid_tracking.tracking import SETTING_TYPES

from .backend import hint as backend_hint
from .backend import with_lock_holders
from .common import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, Run, events_of
from .messages import TRACEBACK, clean, error, problems, split_hint
from .output import Output, emit, payload
from .report import (
    ADOPTION_TYPE,
    LEDGER_TYPE,
    SettingState,
    applied,
    by_account,
    drifted,
    name_of,
    plan,
    recorded_setting,
    steps_of,
    type_of,
)

ENGINE_SUMMARIES = (
    "update failed",
    "preview failed",
    "refresh failed",
    "destroy failed",
    "Resource monitor has terminated, shutting down",
)
"""The engine's closing lines of a failed run (the last: the program stopped because the engine did, at times):
said again by the errors before them."""
PROGRAM_FAILED = "an unhandled error occurred: Program exited with non-zero exit code"
"""The engine's line after the program's own error (the program's message is the error before it)."""
StateOf = Mapping[str, tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]


def _locate(urn: str, states: StateOf) -> tuple[str | None, str | None, str | None]:
    """(resource, setting, account) of a URN, from the resource type and its states: never from its name."""
    kind = type_of(urn)
    old, new = states.get(urn, (None, None))
    if kind in SETTING_TYPES:
        state = SettingState.of(urn, new, "inputs") or SettingState.of(urn, old, "outputs")
        account = state.account if state is not None and state.region else None
        return (state.resource if state is not None else name_of(urn)), SETTING_TYPES[kind].name, account
    if kind == ADOPTION_TYPE:
        values = {**((old or {}).get("outputs") or {}), **((new or {}).get("inputs") or {})}
        region, who = values.get("region"), values.get("on_behalf_of")
        account = (f"{region}/{who}" if who else str(region)) if isinstance(region, str) else None
        setting = values.get("setting") if isinstance(values.get("setting"), str) else None
        return None, setting, account
    if kind in ("pulumi:pulumi:Stack", LEDGER_TYPE):
        return None, None, None
    return name_of(urn), None, None


def _kind(raw: str, urn: str) -> str:
    kind = type_of(urn) if urn else ""
    if "pulumi_sendgrid_tracking.errors." in raw:
        return "sendgrid"
    if kind in SETTING_TYPES or kind in (ADOPTION_TYPE, LEDGER_TYPE):
        return "input" if "has a problem:" in raw else ("provider" if TRACEBACK in raw else "engine")
    return "program" if kind == "pulumi:pulumi:Stack" else "engine"


def _diagnostics(
    raw: Iterable[Mapping[str, Any]], states: StateOf
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Engine diagnostics → (errors, other diagnostics, the error of each resource by URN). Tracebacks trimmed."""
    errors: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    by_urn: dict[str, dict[str, Any]] = {}
    raw = list(raw)
    program_failed = any(PROGRAM_FAILED in str(d.get("message")) for d in raw)
    for diagnostic in raw:
        severity = str(diagnostic.get("severity") or "")
        text = clean(str(diagnostic.get("message") or ""))
        urn = str(diagnostic.get("urn") or "")
        if not text or severity == "debug":
            continue
        resource, setting, account = _locate(urn, states) if urn else (None, None, None)
        if severity != "error":
            others.append({"severity": severity, "resource": resource, "message": text})
            continue
        kind = _kind(str(diagnostic.get("message")), urn) if urn or not program_failed else "program"
        for message, found_hint in problems(text):  # one error per problem (the fleet's checks list several)
            entry = error(kind, message, found_hint, resource=resource, setting=setting, account=account)
            errors.append(entry)
            if urn:
                by_urn.setdefault(urn, entry)
    if len(errors) > 1:
        errors = [
            e
            for e in errors
            if e["resource"] or (e["message"] not in ENGINE_SUMMARIES and not e["message"].startswith(PROGRAM_FAILED))
        ] or errors
    return _dedupe(errors), others, by_urn


def _dedupe(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for entry in errors:
        key = json.dumps(entry, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept


def _stderr_errors(stderr: str) -> list[dict[str, Any]]:
    """The CLI's own errors (`error: ...` lines and the lines after each), when it printed no diagnostics."""
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    groups: list[list[str]] = []
    for line in lines:
        if line.startswith("error: "):
            groups.append([line.removeprefix("error: ")])
        elif groups:
            groups[-1].append(line)
    if not groups and lines:
        groups = [[lines[-1], *lines[-20:-1]]]
    result = []
    for first, *rest in groups:
        message, found = split_hint(clean(first))
        result.append(error("engine", message, found, details=[r.strip() for r in rest][:20]))
    return result


def _with_backend_hints(run: Run, errors: list[dict[str, Any]], stderr: str) -> list[dict[str, Any]]:
    """Errors of the state backend get its name (without credentials) and what to do, as `hint`; a lock
    error names the run holding the lock in its message."""
    for entry in errors:
        found = backend_hint([entry["message"], *entry["details"]], run.stack, run.env)
        if found:
            entry["kind"], entry["hint"] = "backend", found
            entry["message"] = with_lock_holders(entry["message"], entry["details"])
    if errors and not any(e["kind"] == "backend" for e in errors):
        # A lock left behind by a backend outage is named on stderr only.
        found = backend_hint([stderr], run.stack, run.env)
        if found:
            errors[0]["kind"], errors[0]["hint"] = "backend", found
    return errors


def _failure(run: Run, data: dict[str, Any], stderr: str, states: StateOf) -> list[dict[str, Any]]:
    errors, _, _ = _diagnostics(data.get("diagnostics") or [], states)
    return _with_backend_hints(run, errors or _stderr_errors(stderr), stderr)


Step4 = tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]
"""(op, urn, old state, new state) of one step of a preview."""


def _steps(data: Mapping[str, Any]) -> list[Step4]:
    return [
        (str(s.get("op")), str(s.get("urn")), s.get("oldState"), s.get("newState"))
        for s in data.get("steps") or []
        if isinstance(s, dict)
    ]


def _with_unchanged(steps: list[Step4], resources: Iterable[Mapping[str, Any]]) -> list[Step4]:
    """The steps, plus a `same` step for each recorded resource the engine listed no step for.

    `pulumi preview --json` leaves unchanged resources out: the output's `state` lists them all the same, the
    summary counts them as `same`, and the ledger's `accounts` (which accounts the program declares) tells
    whether a 0.2.0 adoption record retires sending nothing.
    """
    planned = {urn for op, urn, _old, _new in steps if op != "refresh"}
    planned |= {str(old["urn"]) for op, _urn, old, _new in steps if op != "refresh" and old and old.get("urn")}
    # (a step of an aliased resource carries its old state, recorded under the old URN)
    extra: list[Step4] = [
        ("same", str(r.get("urn")), r, r) for r in resources if str(r.get("urn")) not in planned and not r.get("delete")
    ]
    return [*steps, *extra]


def _recorded(run: Run) -> list[dict[str, Any]]:
    """The stack's resources as recorded (`pulumi stack export`: reads the backend, sends nothing to SendGrid)."""
    export = run.pulumi("stack", "export")
    if export.returncode != 0:
        return []
    try:
        resources = json.loads(export.stdout).get("deployment", {}).get("resources") or []
    except ValueError:
        return []
    return [r for r in resources if isinstance(r, dict)]


def _settings(resources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The output's `state`: every setting resource of a stack export (not those pending deletion)."""
    found = (recorded_setting(r) for r in resources if not r.get("delete"))
    return by_account(entry for entry in found if entry is not None)


def _unread_removals(steps: Iterable[Step4]) -> dict[str, Mapping[str, Any]]:
    """The settings a `preview --refresh` plans to remove without having read them (the program declares them no
    more, so its refresh skipped them): URN → recorded state, in the order of the steps."""
    refreshed = {urn for op, urn, _old, _new in steps if op == "refresh"}
    return {
        urn: old
        for op, urn, old, _new in steps
        if op in ("delete", "delete-replaced") and urn not in refreshed and type_of(urn) in SETTING_TYPES and old
    }


def _read_removals(
    run: Run, removals: Mapping[str, Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]] | list[dict[str, Any]]:
    """Read the settings a `preview --refresh` skipped (URN → recorded state): URN → the state as read (its
    outputs as SendGrid holds them now), or the errors. One `pulumi refresh --preview-only` of just those (one GET
    each); the engine's JSON of a refresh preview shows the recorded state only, so the values are the ones the
    provider's read put in its journal. Nothing is written to the state."""
    if not removals:
        return {}
    targets = [arg for urn in removals for arg in ("--target", urn)]
    with tempfile.TemporaryDirectory(prefix="pipelines-journal-") as scratch:
        path = os.path.join(scratch, "journal.jsonl")
        journaled = dataclasses.replace(run, env={**run.env, journal.JOURNAL_ENV: path})
        code, data, stderr = journaled.pulumi_json("refresh", "--preview-only", *targets)
        outputs = journal.reads(path)
    if code != 0:
        return _failure(run, data, stderr, {urn: (old, None) for urn, old in removals.items()})
    read: dict[str, Mapping[str, Any]] = {}
    for urn, old in removals.items():
        now = outputs.get((SETTING_TYPES[type_of(urn)].resource, str(old.get("id"))))
        if now is not None:
            read[urn] = {**old, "outputs": {**(old.get("outputs") or {}), **now}}
    return read


def _states(steps: Iterable[tuple[str, str, Any, Any]]) -> dict[str, tuple[Any, Any]]:
    states: dict[str, tuple[Any, Any]] = {}
    for op, urn, old, new in steps:
        if op != "refresh" or urn not in states:
            states[urn] = (old, new)
    return states


def preview(run: Run, output: Output) -> int:
    """For a change under review: what each account's setting would become. Exit 0 (changes or not), 1 on errors."""
    code, data, stderr = run.pulumi_json("preview")
    steps = _steps(data)
    states = _states(steps)
    _, diagnostics, _ = _diagnostics(data.get("diagnostics") or [], states)
    if code != 0:
        errors = _failure(run, data, stderr, states)
        emit(_out(run, "preview", EXIT_ERROR, errors=errors, diagnostics=diagnostics), output)
        return EXIT_ERROR
    rows, counts, recorded = plan(_with_unchanged(steps, _recorded(run)))
    emit(
        _out(run, "preview", EXIT_OK, counts=counts, changes=rows, state=recorded, diagnostics=diagnostics),
        output,
    )
    return EXIT_OK


def deploy(run: Run, output: Output) -> int:
    """On merge: `pulumi up --refresh --skip-preview`. Exit 0 when applied, 1 on errors.

    What reached SendGrid comes from the provider's change journal (every PATCH, with its before, after and
    status); what each step did from the engine's step events: a step is done only when the engine reported
    its outputs, failed when it reported the failure (or the journal says its PATCH failed). The settings
    after the run come from the state.
    """
    # One run under one lock: the refresh records what SendGrid holds (drift, and what an interrupted run
    # applied), then the program's changes are made. `--skip-preview`: a preview would read everything twice.
    with tempfile.TemporaryDirectory(prefix="pipelines-journal-") as scratch:
        path = os.path.join(scratch, "journal.jsonl")
        journaled = dataclasses.replace(run, env={**run.env, journal.JOURNAL_ENV: path})
        result = journaled.pulumi("up", "--yes", "--skip-preview", "--refresh", "--json")
        sent = journal.read(path)
    events = events_of(result.stdout)
    steps = steps_of(events)
    states = {s.urn: (s.old, s.new) for s in steps}
    raw = [e["diagnosticEvent"] for e in events if isinstance(e.get("diagnosticEvent"), dict)]
    errors, diagnostics, by_urn = _diagnostics(raw, states)
    rows, counts = applied(steps, by_urn, sent)
    if result.returncode != 0 and not errors:
        errors = _stderr_errors(result.stderr)
    if result.returncode != 0:
        errors = _with_backend_hints(run, errors, result.stderr)
        if not errors:
            errors = [error("engine", f"pulumi up failed (exit {result.returncode})", None)]
    after = _settings(_recorded(run))
    code = EXIT_OK if result.returncode == 0 and not errors else EXIT_ERROR
    emit(
        _out(run, "deploy", code, counts=counts, changes=rows, state=after, errors=errors, diagnostics=diagnostics),
        output,
    )
    return code


def drift_check(run: Run, output: Output) -> int:
    """On a schedule: `pulumi preview --refresh`. Exit 2 on drift, 0 without, 1 on errors.

    Drift: a managed field whose live value (read by the refresh) differs from the recorded one and from
    the desired one. A setting the program no longer declares is read on its own (`_read_removals`). What
    the program changed is listed as pending (`changes`), not as drift. Live equal
    to desired but not to the recorded value is harmless and not reported; the next deploy records it.
    """
    # --show-sames: the `same` steps carry what the refresh read for the settings the program leaves as they are.
    code, data, stderr = run.pulumi_json("preview", "--refresh", "--show-sames")
    steps = _steps(data)
    states = _states(steps)
    _, diagnostics, _ = _diagnostics(data.get("diagnostics") or [], states)
    if code != 0:
        errors = _failure(run, data, stderr, states)
        emit(_out(run, "drift-check", EXIT_ERROR, errors=errors, diagnostics=diagnostics), output)
        return EXIT_ERROR
    read = _read_removals(run, _unread_removals(steps))
    if isinstance(read, list):
        emit(_out(run, "drift-check", EXIT_ERROR, errors=read, diagnostics=diagnostics), output)
        return EXIT_ERROR
    # As for a setting the preview's refresh read: a refresh step (recorded → read), then its removal from what
    # was read.
    steps = [(op, urn, read.get(urn, old) if op != "refresh" else old, new) for op, urn, old, new in steps]
    steps += [("refresh", urn, states[urn][0], now) for urn, now in read.items()]
    drift, live = drifted(steps)
    refreshed = [old for op, _urn, old, _new in steps if op == "refresh" and old is not None]
    rows, counts, _ = plan(_with_unchanged(steps, refreshed))
    counts = {**counts, "drifted": len(drift), "checked": len(live)}
    exit_code = EXIT_DRIFT if drift else EXIT_OK
    emit(
        _out(
            run, "drift-check", exit_code, counts=counts, changes=rows, drift=drift, state=live, diagnostics=diagnostics
        ),
        output,
    )
    return exit_code


def _out(run: Run, command: str, exit_code: int, **parts: Any) -> dict[str, Any]:
    own = [{"severity": "warning", "resource": None, "message": text} for text in run.warnings]
    parts["diagnostics"] = [*own, *parts.get("diagnostics", ())]
    return payload(command, run.stack, run.mode, exit_code=exit_code, project=run.project_name, **parts)
