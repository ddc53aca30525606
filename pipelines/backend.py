"""The state backend in pipeline errors: its name without credentials, and one `Hint:` on what to do.

Pulumi's errors about a DIY backend (postgres://, s3://, azblob://, file://) name a blob key, a lock
path or a snapshot write; these say which backend it was and how to recover. Secrets stay out: the
name keeps only scheme, host, port and path, never user, password or query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

LOCKED = "the stack is currently locked"
# The backend failed after the run took the lock: a checkpoint could not be written (after Pulumi's
# own ~30 s of retries), or the lock could not be released at the end.
FAILED_DURING_RUN = ("failed to save snapshot", "problem deleting the lock")
# The backend could not be opened at all (down, a wrong address, wrong credentials): nothing ran.
UNREACHABLE = ("unable to open state", "unable to open bucket")
MISSING_STACK = "no stack named"


ALIASES = {"postgresql": "postgres"}
"""Schemes the engine does not know, for one it does: libpq's `postgresql://` is Pulumi's `postgres://`."""


def scheme_problem(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(message, hint) when PULUMI_BACKEND_URL uses a scheme the engine would mistake for a Pulumi Cloud URL.

    Pulumi 3.277.0 opens a DIY backend only for the schemes registered with go-cloud's blob URL mux
    (pkg/backend/diy: file, s3, gs, azblob, and `postgres` alone); any other URL is taken for a Pulumi
    Cloud address and fails with "PULUMI_ACCESS_TOKEN must be set". Refused rather than rewritten: the
    same URL must work for the `pulumi cancel` and `pulumi stack init` the hints tell users to run.
    """
    url = env.get("PULUMI_BACKEND_URL") or ""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in ALIASES:
        return None
    fixed = f"{ALIASES[scheme]}://{url.split('://', 1)[1]}"
    shown = backend_name({"PULUMI_BACKEND_URL": fixed})
    return (
        f"PULUMI_BACKEND_URL uses the scheme {scheme}://, which the Pulumi engine does not know (it would take the "
        f"URL for a Pulumi Cloud address); its PostgreSQL backend is {ALIASES[scheme]}://",
        f"write the same URL with {ALIASES[scheme]}:// ({shown}, user and password as before) in PULUMI_BACKEND_URL",
    )


def backend_name(env: Mapping[str, str]) -> str:
    """`postgres://db.internal:5432/pulumi`: PULUMI_BACKEND_URL without user, password or query."""
    url = env.get("PULUMI_BACKEND_URL")
    if not url:
        return "Pulumi Cloud"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def hint(messages: Iterable[str], stack: str, env: Mapping[str, str]) -> str | None:
    """What to do about a failure of the state backend found in `messages` (the text after `Hint:`); None if none."""
    text = "\n".join(messages)
    where = backend_name(env)
    cancel = f"`pulumi cancel --stack {stack} --yes`"
    if LOCKED in text:
        return (
            f"another run of stack {stack!r} holds its lock in the state backend {where} (the message says "
            f"which run, and since when). Wait for it to end. If that run is gone (killed, or it lost the state "
            f"backend mid-run), release the lock with {cancel} and run this again."
        )
    if any(marker in text for marker in FAILED_DURING_RUN):
        return (
            f"the state backend {where} failed during the run. Changes made since its last checkpoint "
            f"were applied but not recorded, and the run's lock is probably still there. When the backend is "
            f"back and no other run of stack {stack!r} is going on, run {cancel}, then deploy again: its "
            f"refresh records what was applied, and nothing is applied twice."
        )
    if any(marker in text for marker in UNREACHABLE):
        return (
            f"the state backend {where} could not be opened (down, a wrong address or wrong credentials), "
            f"so nothing was changed. Check that it is up and that PULUMI_BACKEND_URL and its credentials "
            f"(for postgres://, the URL's password or PGPASSWORD) are right, then run this again."
        )
    return None


def with_lock_holders(message: str, details: Iterable[str]) -> str:
    """A lock error's message with who holds the lock: the engine names each holder on a line of its own
    (`<lock path>: created by user@host (pid N) at <time>`), which the output keeps in `details`."""
    if LOCKED not in message:
        return message
    holders = [line.split(": created by ", 1)[1] for line in details if ": created by " in line]
    if not holders:
        return message
    counted = message.split(". ", 1)[0].rstrip(".")  # "the stack is currently locked by 1 lock(s)"
    return f"{counted}, held by {'; '.join(holders)}"


def stack_lookup_failed(stack: str, stderr: str, env: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(kind, message, hint) for a failed stack lookup: a missing stack, or a backend that could not be opened."""
    reason = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip()).removeprefix("error: ")
    if MISSING_STACK in reason:
        return (
            "stack",
            f"stack {stack!r} not found in the state backend {backend_name(env)}: {reason}",
            f"create it once with `pulumi stack init {stack}` (with the same PULUMI_BACKEND_URL), or check --stack",
        )
    return (
        "backend",
        f"could not open stack {stack!r} in the state backend {backend_name(env)}: {reason}",
        hint([reason], stack, env),
    )
