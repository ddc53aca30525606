"""The vocabulary every resource and the fleet parser share: accounts, regions, delete modes.

One place for the rules, so `check()` and the fleet config say the same thing in the same words.
"""

from __future__ import annotations

from typing import Any

from .config import REGIONS

ON_DELETE_MODES = ("restore", "keep", "disable")
"""What destroy (or removing a resource) does: put the originals back, send nothing, or turn it off."""
DEFAULT_ON_DELETE = "restore"
MAX_ON_BEHALF_OF_LENGTH = 256
ACCOUNT_ID_PREFIX = "account-id "

__all__ = [
    "ACCOUNT_ID_PREFIX",
    "DEFAULT_ON_DELETE",
    "MAX_ON_BEHALF_OF_LENGTH",
    "ON_DELETE_MODES",
    "REGIONS",
    "describe_account",
    "on_behalf_of_problem",
    "on_delete_problem",
    "region_problem",
    "resource_id",
    "setting_key",
]


def resource_id(region: str, on_behalf_of: str | None) -> str:
    """`global`, `eu/alice`, `global/account-id 42`: one ID per account and region."""
    return f"{region}/{on_behalf_of}" if on_behalf_of else region


def setting_key(setting: str, region: str, on_behalf_of: str | None) -> str:
    """One account's setting, everywhere a stack names it: `click/global`, `open/eu/alice` (the ledger's keys,
    the reports, and the names of 0.2.0's adoption records)."""
    return f"{setting}/{resource_id(region, on_behalf_of)}"


def describe_account(on_behalf_of: str | None, region: str) -> str:
    """For messages: "the parent account (global)", "subuser 'alice' (eu)", "customer account 42 (global)"."""
    if not on_behalf_of:
        return f"the parent account ({region})"
    if on_behalf_of.startswith(ACCOUNT_ID_PREFIX):
        return f"customer account {on_behalf_of[len(ACCOUNT_ID_PREFIX) :]} ({region})"
    return f"subuser {on_behalf_of!r} ({region})"


def on_behalf_of_problem(value: Any) -> str | None:
    """Why an on_behalf_of value is unusable (completing "on_behalf_of ..."), or None when it is fine."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be a string (a subuser's username or 'account-id <id>'), got {type(value).__name__}"
    if value == "" or value.strip() == "":
        return "must not be empty; omit it (None) to manage the parent account"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "must not contain control characters such as newlines (they would inject HTTP headers)"
    if value != value.strip():
        return "must not start or end with whitespace"
    if len(value) > MAX_ON_BEHALF_OF_LENGTH:
        return (
            f"is {len(value)} characters long; SendGrid usernames are far shorter (at most {MAX_ON_BEHALF_OF_LENGTH})"
        )
    if value.startswith("account-id"):
        rest = value[len("account-id") :]
        if not rest.startswith(" ") or not rest[1:].isdecimal() or not rest[1:].isascii():
            return "must be 'account-id <id>' with one space and a decimal id, e.g. 'account-id 42'"
    return None


def on_delete_problem(value: Any) -> str | None:
    if value in ON_DELETE_MODES:
        return None
    return f"must be one of {', '.join(ON_DELETE_MODES)}, got {value!r}"


def region_problem(value: Any) -> str | None:
    if value in REGIONS:
        return None
    return f"must be one of {', '.join(REGIONS)} (or omitted for the stack's sendgrid:region), got {value!r}"
