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


_ITEM = re.compile(r"^\s+[-*] (?P<item>.*)$")
_SOURCE = re.compile(r"(?:\((?P<source>[^()]+)\)| in (?P<file>\S+))$")
"""Where a header says the problems are: `invalid stack config (Pulumi.dev.yaml)`, `... in fleets/dev.yaml`."""
DEFAULT_HINTS = {
    "arguments": "run the script with --help for its usage",
    "configuration": "correct what the message names, then run this again",
    "stack": "check --stack and PULUMI_BACKEND_URL (the stack must exist in that backend)",
    "backend": "check that the state backend is up and that PULUMI_BACKEND_URL and its credentials are right, "
    "then run this again",
    "program": "correct the stack config or fleet file the message names, then run this again",
    "input": "correct this resource's arguments in the program or the fleet file; nothing was sent for it",
    "sendgrid": "run this again when SendGrid answers: the next deploy's refresh records anything already applied",
    "provider": "an unexpected error of the provider (pulumi_sendgrid_tracking): report it with this output",
    "engine": "the Pulumi engine stopped on this (its other lines are in `details`): correct what it names, "
    "then run this again",
    "internal": "this is a bug in pipelines/; report it with this output",
}
"""The hint of an error whose source gave none, by kind: every error in the output says what to do."""


def problems(text: str) -> list[tuple[str, str | None]]:
    """A multi-line error as (message, hint) per problem, each message one line.

    `header:` followed by `  - item` lines (the fleet's and the stack config's checks) gives
    `header: item` per item, with a hint naming where to correct it (the header's `(file)`); a
    `Hint: ...` line belongs to the problem before it, and an indented line too (as a further line, which
    `error` moves to `details`); every other line is a problem of its own.
    """
    chunks: list[tuple[str, str | None]] = []  # (text, header it came under)
    header: str | None = None
    header_used = True
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        item = _ITEM.match(raw)
        if line.startswith("Hint:") and chunks:
            chunks[-1] = (f"{chunks[-1][0]} {line}", chunks[-1][1])
        elif item and header is not None:
            chunks.append((f"{header}: {item['item'].strip()}", header))
            header_used = True
        elif raw[:1].isspace() and not item and chunks:  # an indented line goes on: the error's `details`
            chunks[-1] = (f"{chunks[-1][0]}\n{line}", chunks[-1][1])
        else:
            if not header_used and header is not None:  # a header without items is a problem of its own
                chunks.append((header, None))
            header, header_used = None, True
            if line.endswith(":") and not item:
                header, header_used = line[:-1].strip(), False
            else:
                chunks.append((item["item"].strip() if item else line, None))
    if not header_used and header is not None:
        chunks.append((header, None))
    result = []
    for chunk, under in chunks:
        message, hint = split_hint(chunk)
        source = _SOURCE.search(under) if under else None
        if hint is None and source is not None:
            hint = f"correct it in {source['source'] or source['file']}, then run this again"
        result.append((message, hint))
    return result


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
    """One entry of the output's `errors` (see output.schema.json): a one-line message (any further lines
    go to `details`) and a hint (the kind's DEFAULT_HINTS when none is given)."""
    first, *more = [line.strip() for line in message.strip().splitlines() if line.strip()] or [message]
    return {
        "kind": kind,
        "message": first,
        "hint": " ".join(hint.split()) if hint and hint.strip() else DEFAULT_HINTS.get(kind, DEFAULT_HINTS["internal"]),
        "resource": resource,
        "setting": setting,
        "account": account,
        "details": [*more, *(details or [])],
    }


def one_line(entry: dict[str, Any]) -> str:
    """An error for the human summary: `where: message Hint: hint`."""
    where = " ".join(str(x) for x in (entry.get("account"), entry.get("setting")) if x) or entry.get("resource")
    text = f"{where}: {entry['message']}" if where else str(entry["message"])
    return f"{text} Hint: {entry['hint']}" if entry.get("hint") else text
