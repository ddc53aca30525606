"""What every pipeline command prints: one JSON document (output.schema.json) or its Markdown summary.

stdout: JSON (the default) or, with `--format markdown`, the Markdown summary. stderr: a short human
summary. When GITHUB_STEP_SUMMARY names a file (GitHub Actions), the Markdown summary is appended to it
whatever the format. Every path, errors included, goes through `payload` and `emit`, so the JSON has the
same top-level keys in every case.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import markdown
from .messages import one_line
from .report import describe_row, value

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).resolve().parent / "output.schema.json"
COUNTS = ("create", "update", "delete", "replace", "same", "failed", "drifted", "checked", "patches")
FORMATS = ("json", "markdown")


@dataclass(frozen=True)
class Output:
    """Where a run's output goes: stdout's format, and a file for the Markdown summary (or None)."""

    format: str = "json"
    markdown_file: str | None = None


def payload(
    command: str | None,
    stack: str | None,
    mode: str | None,
    *,
    exit_code: int,
    project: str | None = None,
    counts: Mapping[str, int] | None = None,
    changes: Iterable[dict[str, Any]] = (),
    drift: Iterable[dict[str, Any]] = (),
    state: Iterable[dict[str, Any]] = (),
    errors: Iterable[dict[str, Any]] = (),
    diagnostics: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The one shape of every output (see output.schema.json); `ok` is false exactly when there are errors."""
    error_list = list(errors)
    return {
        "version": SCHEMA_VERSION,
        "command": command,
        "project": project,
        "stack": stack,
        "mode": mode,
        "ok": not error_list,
        "exit_code": exit_code,
        "summary": {key: int((counts or {}).get(key, 0)) for key in COUNTS},
        "changes": list(changes),
        "drift": list(drift),
        "state": list(state),
        "errors": error_list,
        "diagnostics": list(diagnostics),
    }


def human(data: Mapping[str, Any]) -> list[str]:
    """The stderr summary: one line for the run, one per account's setting, drift and error."""
    command, stack, mode = data["command"] or "pipelines", data["stack"], data["mode"]
    where = f" of {stack}" if stack else ""
    where += f" ({mode})" if mode else ""
    counts = data["summary"]
    if data["errors"]:
        head = f"{command}{where} FAILED"
    elif command == "shard-check":
        head = f"shard check{where}: no account in two stacks; {counts['checked']} account setting(s) checked"
    elif command == "drift-check":
        head = f"drift check{where}: {counts['drifted']} field(s) drifted in {counts['checked']} setting(s) checked"
    elif command == "discover":
        found = data["discovery"]
        head = f"discover{where}: {found['accounts']} account(s), {counts['checked']} setting(s) read; " + (
            f"{counts['drifted']} difference(s) from {found['fleet_file']}"
            if found["diff"]
            else f"wrote {found['fleet_file']}"
        )
    else:
        done = [r for r in data["changes"] if r["status"] in ("planned", "done")]
        if command == "deploy":
            head = f"deploy{where}: {len(done)} account setting(s) done, {counts['patches']} PATCH(es) sent to SendGrid"
        else:
            head = f"{command}{where}: {len(done)} account setting(s) would change"
    lines = [head]
    lines += [
        f"  shard    {s['stack']}: " + ("ok" if s["ok"] else "FAILED") + f" (exit {s['exit_code']})"
        for s in data.get("shards", [])
    ]
    lines += [f"  {r['action']:8} {describe_row(r)}" + _status(r) for r in data["changes"]]
    lines += [
        f"  drift    {d['account']} {d['setting']}: {d['field']} recorded {value(d['recorded'])}, "
        f"live {value(d['live'])}, desired {value(d['desired'])}" + (f" ({d['note']})" if d["note"] else "")
        for d in data["drift"]
    ]
    found = data.get("discovery") or {}
    lines += [f"  skipped  {s['account'] or s['setting'] or 'list'}: {s['reason']}" for s in found.get("skipped", [])]
    lines += [f"  not in the fleet: {d['account']}" for d in found.get("not_in_fleet", [])]
    lines += [f"  not in SendGrid:  {d['account']} ({d['note']})" for d in found.get("not_in_sendgrid", [])]
    lines += [f"  error    {one_line(e)}" for e in data["errors"]]
    lines += [f"  warning  {d['message']}" for d in data["diagnostics"] if d["severity"] == "warning"]
    return lines


def _status(entry: Mapping[str, Any]) -> str:
    return "" if entry["status"] in ("planned", "done") else f" [{entry['status'].upper()}]"


def _write(path: str, text: str, mode: str, what: str) -> None:
    try:
        with open(path, mode, encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        print(f"warning: could not write {what} ({path}): {exc}", file=sys.stderr)


def emit(data: dict[str, Any], output: Output | None = None) -> None:
    """Print the output (stdout) and the human summary (stderr); write the Markdown summary to
    --markdown-file and append it to GITHUB_STEP_SUMMARY when those are given."""
    output = output or Output()
    for line in human(data):
        print(line, file=sys.stderr)
    text = markdown.render(data)
    if output.markdown_file:
        _write(output.markdown_file, text, "w", "--markdown-file")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        _write(summary_file, text, "a", "GITHUB_STEP_SUMMARY")
    if output.format == "markdown":
        print(text)
    else:
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
