"""Errors as users read them: one message and its hint, without the dynamic provider's Python traceback.

Pulumi's dynamic provider server answers every failed handler with `traceback.format_exc()`
(`pulumi/dynamic/__main__.py`), so the engine reports 15 to 20 lines of frames before the one line
that matters (`pulumi_sendgrid_tracking.errors.PermissionDeniedError: GET ... failed (403): ... Hint: ...`).
`clean` keeps that last line, without the class's module path, and `split_hint` separates its hint.
"""

from __future__ import annotations

import re
from typing import Any

TRACEBACK = "Traceback (most recent call last):"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The line a traceback ends with: `package.module.ClassName: message` (or just the class name).
_EXCEPTION_LINE = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
_HINT = re.compile(r"(?:^|(?<=[.!?\s]))\s*Hint:\s*", re.MULTILINE)


def _last_exception(text: str) -> str:
    """The final exception of a formatted traceback: its message (class name only when there is none)."""
    lines = text[text.rindex(TRACEBACK) + len(TRACEBACK) :].splitlines()
    start = None
    for index, line in enumerate(lines):
        if not line or line[0].isspace() or line.startswith(_CHAIN):
            continue
        match = _EXCEPTION_LINE.match(line)
        if match and ("." in match["cls"] or match["cls"].endswith(("Error", "Exception"))):
            start = index
    if start is None:
        return text.strip()
    match = _EXCEPTION_LINE.match(lines[start])
    assert match is not None  # matched above
    message = "\n".join([match["message"] or "", *lines[start + 1 :]]).strip()
    return message or match["cls"].rsplit(".", 1)[-1]


def clean(text: str) -> str:
    """One diagnostic as a user should read it: no colour codes, no traceback, no `error: ` prefix."""
    text = _ANSI.sub("", text).strip()
    if TRACEBACK in text:
        before = text[: text.index(TRACEBACK)].strip()
        text = _last_exception(text)
        if before and before not in ("error:", "error: Exception calling application:"):
            text = f"{before} {text}"
    text = text.removeprefix("error: ").strip()
    return text


def split_hint(text: str) -> tuple[str, str | None]:
    """(message, hint) from `... Hint: what to do.`; the hint is None when the text has none."""
    found = list(_HINT.finditer(text))
    if not found:
        return text.strip(), None
    last = found[-1]
    return text[: last.start()].strip(), text[last.end() :].strip() or None


def error(
    kind: str,
    message: str,
    hint: str | None = None,
    *,
    resource: str | None = None,
    setting: str | None = None,
    account: str | None = None,
    details: list[str] | None = None,
) -> dict[str, Any]:
    """One entry of the output's `errors` (see output.schema.json)."""
    return {
        "kind": kind,
        "message": message,
        "hint": hint,
        "resource": resource,
        "setting": setting,
        "account": account,
        "details": details or [],
    }


def one_line(entry: dict[str, Any]) -> str:
    """An error for the human summary: `where: message Hint: hint`."""
    where = " ".join(str(x) for x in (entry.get("account"), entry.get("setting")) if x) or entry.get("resource")
    text = f"{where}: {entry['message']}" if where else str(entry["message"])
    return f"{text} Hint: {entry['hint']}" if entry.get("hint") else text
