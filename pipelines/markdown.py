"""The Markdown summary of an output, for a pull request comment or a GitHub step summary.

Shaped like pulumi/actions' PR comment (a `#### :tropical_drink: \\`preview\\` on project/stack` heading,
the long part folded in `<details>`), but per account and setting: one table per stack with a row per
account's setting (before, after, the request it sends or sent; a delete with its effect), a drift table,
the errors with their hints, then the full field lists and the engine's diagnostics folded. The first line is a marker
(`<!-- pipelines:preview:project/stack -->`) by which a CI job finds its earlier comment and edits it.
Values are HTML-escaped, so nothing in a setting (an HTML footer, say) can break the page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from .report import changed_fields, describe_row, request_text, value

MAX_CHARS = 64_000
"""GitHub refuses comments over 65,536 characters; pulumi/actions keeps the same margin."""
CELL_CHARS = 60
TABLE_CHARS = 24_000
"""Each table's share: the changes' and the drift's tables fit together with errors and notes."""
NOTES_CHARS = 6_000


def marker(data: Mapping[str, Any]) -> str:
    """The hidden first line a CI job searches for to update its comment in place."""
    return f"<!-- pipelines:{data['command'] or 'pipelines'}:{data['project'] or '-'}/{data['stack'] or '-'} -->"


def _code(raw: Any, known: bool = True) -> str:
    text = value(raw, known, CELL_CHARS)
    return "?" if text == "?" else f"<code>{html.escape(text).replace('|', '&#124;')}</code>"


def _text(text: str) -> str:
    return html.escape(text).replace("|", "&#124;").replace("\n", "<br>")


def _fields(entry: Mapping[str, Any], side: str) -> str:
    shown = changed_fields(entry) or entry["fields"]
    return "<br>".join(f"{f['field']} {_code(f[side], f[side + '_known'])}" for f in shown) or "-"


def _action(entry: Mapping[str, Any]) -> str:
    action, effect = entry["action"], entry["effect"]
    if action == "replace" and entry["replacement"]:
        pair = entry["replacement"]
        if entry["account"] == pair["to"]:
            text = f"replace: new account (was <code>{_text(pair['from'])}</code>)"
        else:
            text = f"replace: old account, {effect} (now <code>{_text(pair['to'])}</code>)"
    elif action == "delete":
        text = f"delete: {effect}"
    else:
        text = action
    status = entry["status"]
    if status in ("failed", "unknown"):
        text += f" **{status.upper()}**"
    elif status not in ("planned", "done"):
        text += f" ({status})"
    return text


def _headline(data: Mapping[str, Any]) -> str:
    counts, command = data["summary"], data["command"]
    if data["errors"]:
        return f":x: **{command} failed**"
    if command == "shard-check":
        return f":white_check_mark: **no account in two stacks**: {counts['checked']} setting(s) checked"
    if command == "discover":
        found = data["discovery"]
        if not found["diff"]:
            return (
                f":mag: **discovered {found['accounts']} account(s)**, wrote <code>{_text(found['fleet_file'])}</code>"
            )
        if counts["drifted"]:
            return f":warning: **SendGrid and <code>{_text(found['fleet_file'])}</code> differ: {counts['drifted']}**"
        return f":white_check_mark: **SendGrid holds what <code>{_text(found['fleet_file'])}</code> declares**"
    if command == "drift-check":
        if counts["drifted"]:
            return f":warning: **drift: {counts['drifted']} field(s)** in {counts['checked']} setting(s) checked"
        return f":white_check_mark: **no drift** in {counts['checked']} setting(s) checked"
    parts = [f"{counts[k]} {k}" for k in ("create", "update", "delete", "replace") if counts[k]]
    if command == "preview":
        return f"**{', '.join(parts)}** planned" if parts else "**no changes**"
    sent = f" · {counts['patches']} PATCH(es) sent to SendGrid"
    return (f"**{', '.join(parts)}** applied" if parts else "**no changes**") + sent


def render(data: Mapping[str, Any]) -> str:
    """The Markdown summary of one output (one stack), at most MAX_CHARS characters."""
    project, stack = data["project"] or "pipelines", data["stack"] or "?"
    head = [
        marker(data),
        f"#### :tropical_drink: `{data['command'] or 'pipelines'}` on {_text(project)}/{_text(stack)}",
        "",
        _headline(data) + (f" · {data['mode']}" if data["mode"] else ""),
        "",
    ]
    body: list[str] = []
    if data.get("shards"):
        body += ["| shard stack | shard | outcome |", "|---|---|---|"]
        body += [
            f"| <code>{_text(s['stack'])}</code> | {s['shard']} | " + ("ok" if s["ok"] else "**FAILED**") + " |"
            for s in data["shards"]
        ]
        body += [""]
    if data["changes"]:
        title = "Pending changes (what the next deploy does)" if data["command"] == "drift-check" else None
        if title:
            body += [f"**{title}**", ""]
        body += ["| account | setting | action | before | after | request |", "|---|---|---|---|---|---|"]
        table = [
            f"| <code>{_text(entry['account'])}</code> | {entry['setting']} | {_action(entry)} "
            f"| {_fields(entry, 'before')} | {_fields(entry, 'after')} | {_text(request_text(entry))} |"
            for entry in data["changes"]
        ]
        body += _within(table, TABLE_CHARS)
        notes = [
            f"- <code>{_text(e['account'])}</code> {e['setting']}: {_text(e['note'])}"
            for e in data["changes"]
            if e["note"]
        ]
        body += ["", *_within(notes, NOTES_CHARS), ""]
    if data["drift"]:
        body += [
            "**Drift**",
            "",
            "| account | setting | field | recorded | live | desired |",
            "|---|---|---|---|---|---|",
        ]
        drift = [
            f"| <code>{_text(d['account'])}</code> | {d['setting']} | {d['field']} "
            f"| {_code(d['recorded'])} | {_code(d['live'])} | "
            + (_code(d["desired"]) if d["note"] is None else _text(d["note"]))
            + " |"
            for d in data["drift"]
        ]
        body += [*_within(drift, TABLE_CHARS), ""]
    body += _discovery(data.get("discovery"))
    errors = []
    for error in data["errors"]:
        where = " ".join(x for x in (error["account"], error["setting"]) if x) or error["resource"]
        lead = f"**{_text(where)}**: " if where else ""
        hint = f"<br>Hint: {_text(error['hint'])}" if error["hint"] else ""
        errors.append(f"- {lead}{_text(error['message'])}{hint}")
    if errors:
        body += [*_within(errors, NOTES_CHARS), ""]
    details = _details(data)
    text = "\n".join([*head, *body])
    room = MAX_CHARS - len(text) - 200
    if details and len(details) <= room:
        text += "\n" + details
    elif details:
        text += "\n_The details were too long for a comment: the full JSON output has them._\n"
    return text[:MAX_CHARS]


def _discovery(found: Mapping[str, Any] | None) -> list[str]:
    """pipelines/discover: the accounts on one side only (--diff), and what was left out."""
    if not found:
        return []
    body: list[str] = []
    rows = [("not in the fleet", d) for d in found["not_in_fleet"]] + [
        ("not in SendGrid", d) for d in found["not_in_sendgrid"]
    ]
    if rows:
        body += ["| account | where | note |", "|---|---|---|"]
        table = [f"| <code>{_text(d['account'])}</code> | {where} | {_text(d['note'] or '')} |" for where, d in rows]
        body += [*_within(table, TABLE_CHARS), ""]
    skipped = [
        f"- **{_text(s['account'] or s['setting'] or 'list')}** left out: {_text(s['reason'])}"
        f"<br>Hint: {_text(s['hint'])}"
        for s in found["skipped"]
    ]
    if skipped:
        body += [*_within(skipped, NOTES_CHARS), ""]
    return body


def _within(lines: list[str], budget: int) -> list[str]:
    """As many lines as fit in `budget` characters, then one saying how many more the JSON output has."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        if used + len(line) + 1 > budget:
            return [*kept, f"\n_… and {len(lines) - index} more: see the JSON output._"]
        kept.append(line)
        used += len(line) + 1
    return kept


def _details(data: Mapping[str, Any]) -> str:
    """Full field lists, every setting as the command saw it, and the engine's diagnostics, folded."""
    lines: list[str] = []
    for entry in data["changes"]:
        lines.append(f"{entry['action']} {describe_row(entry)} [{entry['status']}]")
        for f in entry["fields"]:
            note = f"  ({f['note']})" if f["note"] else ""
            before, after = value(f["before"], f["before_known"]), value(f["after"], f["after_known"])
            lines.append(f"    {f['field']}: {before} -> {after}{note}")
        for request in entry["requests"]:
            lines.append(
                f"    PATCH {json.dumps(request['fields'], ensure_ascii=False, sort_keys=True)} ({request['op']}): "
                f"{request['status']}" + (f": {request['error']}" if request["error"] else "")
            )
        if entry["error"]:
            lines.append(f"    error: {entry['error']['message']}")
    if data["state"]:
        seen = {
            "preview": "recorded",
            "deploy": "recorded after the deploy",
            "drift-check": "read live",
            "discover": "read live, as the fleet file declares them",
        }
        lines += ["", f"settings ({seen.get(data['command'] or '', 'recorded')}):"]
        for s in data["state"]:
            values = ", ".join(f"{k}={value(v)}" for k, v in s["values"].items())
            originals = ", ".join(f"{k}={value(v)}" for k, v in s["originals"].items())
            lines.append(f"  {s['account']} {s['setting']} ({s['resource']}, on_delete {s['on_delete']}): {values}")
            if data["command"] != "discover":  # discover reads no state: nothing is recorded yet
                lines.append(f"    originals: {originals or 'none'}")
    for error in data["errors"]:
        lines += [f"error: {error['message']}", *(f"  {d}" for d in error["details"])]
    if data["diagnostics"]:
        lines += ["", "diagnostics:"]
        lines += [
            f"  {d['severity']}: {d['resource'] + ': ' if d['resource'] else ''}{d['message']}"
            for d in data["diagnostics"]
        ]
    if not lines:
        return ""
    return "\n".join(
        ["<details>", "<summary>Details</summary>", "", "<pre>", html.escape("\n".join(lines)), "</pre>", "</details>"]
    )
