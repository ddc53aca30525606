"""The vocabulary every resource and the fleet parser share: accounts, regions, delete modes.

One place for the rules, so `check()` and the fleet config say the same thing in the same words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from .config import REGIONS

ON_DELETE_MODES = ("restore", "keep", "disable")
"""What destroy (or removing a resource) does: put the originals back, send nothing, or turn it off."""
DEFAULT_ON_DELETE = "restore"
MAX_ON_BEHALF_OF_LENGTH = 256
ACCOUNT_ID_PREFIX = "account-id "
"""What on-behalf-of starts with for a customer account: `account-id <id>`."""
ACCOUNT_ID_EXAMPLE = "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"
"""A customer account ID as SendGrid's Account Provisioning API shows one: letters and digits, not a number."""
MAX_ACCOUNT_ID_LENGTH = MAX_ON_BEHALF_OF_LENGTH - len(ACCOUNT_ID_PREFIX)

__all__ = [
    "ACCOUNT_ID_EXAMPLE",
    "ACCOUNT_ID_PREFIX",
    "DEFAULT_ON_DELETE",
    "MAX_ACCOUNT_ID_LENGTH",
    "MAX_ON_BEHALF_OF_LENGTH",
    "ON_DELETE_MODES",
    "REGIONS",
    "account_id_problem",
    "describe_account",
    "on_behalf_of_problem",
    "on_delete_problem",
    "region_problem",
    "resource_id",
    "setting_key",
    "split_setting_key",
]


def resource_id(region: str, on_behalf_of: str | None) -> str:
    """`global`, `eu/alice`, `global/account-id 42`: one ID per account and region."""
    return f"{region}/{on_behalf_of}" if on_behalf_of else region


def setting_key(setting: str, region: str, on_behalf_of: str | None) -> str:
    """One account's setting, everywhere a stack names it: `click/global`, `open/eu/alice` (the ledger's keys,
    the reports, and the names of 0.2.0's adoption records)."""
    return f"{setting}/{resource_id(region, on_behalf_of)}"


def split_setting_key(key: str) -> tuple[str, str, str | None]:
    """`setting_key`'s inverse: `open/eu/alice` → (`open`, `eu`, `alice`); `click/global` → (`click`, `global`,
    None). Not checked: `setting_key` of the parts gives the key back only for a key it made."""
    setting, _, account = key.partition("/")
    region, _, on_behalf_of = account.partition("/")
    return setting, region, on_behalf_of or None


def describe_account(on_behalf_of: str | None, region: str) -> str:
    """For messages: "the parent account (global)", "subuser 'alice' (eu)", "customer account 42 (global)"."""
    if not on_behalf_of:
        return f"the parent account ({region})"
    if on_behalf_of.startswith(ACCOUNT_ID_PREFIX):
        return f"customer account {on_behalf_of[len(ACCOUNT_ID_PREFIX) :]} ({region})"
    return f"subuser {on_behalf_of!r} ({region})"


def _character_problem(value: str, index: int, rule: str) -> str:
    """`'café' has 'é' (U+00E9, LATIN SMALL LETTER E WITH ACUTE) at position 4` (1-based), and why it's refused."""
    char = value[index]
    category = unicodedata.category(char)
    name = "a control character" if category == "Cc" else unicodedata.name(char, "an unnamed character")
    if category == "Cc":
        why = "control characters such as newlines cannot be sent in an HTTP header; remove it"
    elif char.isspace():
        why = "remove the whitespace (often pasted with the name)"
    elif category == "Cf":
        why = "an invisible character, often pasted with the name; retype the name"
    elif char.isascii():
        why = "remove it"
    else:
        why = "SendGrid's names are ASCII: retype the name (a look-alike letter pasted from elsewhere?)"
    return f"{value!r} has {char!r} (U+{ord(char):04X}, {name}) at position {index + 1}: {rule}; {why}"


def _first(value: str, allowed: Callable[[str], bool], start: int = 0) -> int | None:
    return next((index for index in range(start, len(value)) if not allowed(value[index])), None)


def _is_account_id_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _is_username_char(char: str) -> bool:
    return "!" <= char <= "~"


ACCOUNT_ID_RULE = f"a customer account ID is ASCII letters and digits, as SendGrid shows it (e.g. {ACCOUNT_ID_EXAMPLE})"
USERNAME_RULE = "a subuser's username is printable ASCII without whitespace (an email address is fine)"


def _account_id_problem(value: str, start: int) -> str | None:
    """The problem of the ID `value[start:]`, positions counted in `value` (the whole on_behalf_of)."""
    account_id = value[start:]
    if account_id == "":
        return f"the account ID is missing; write it as SendGrid shows it, e.g. {ACCOUNT_ID_EXAMPLE}"
    if len(account_id) > MAX_ACCOUNT_ID_LENGTH:
        return (
            f"is {len(account_id)} characters long; a customer account ID is far shorter "
            f"(at most {MAX_ACCOUNT_ID_LENGTH})"
        )
    index = _first(value, _is_account_id_char, start)
    return None if index is None else _character_problem(value, index, ACCOUNT_ID_RULE)


def account_id_problem(value: Any) -> str | None:
    """Why a customer account ID (the `<id>` of `account-id <id>`, the fleet's `accountId`) is unusable, or None.

    SendGrid's form: ASCII letters and digits (`sg2a2bcd3ef4ab5c67d8efab91c01de2fa`, `4242`).
    """
    if not isinstance(value, str):
        return f"must be a string of letters and digits, got {type(value).__name__}"
    return _account_id_problem(value, 0)


def on_behalf_of_problem(value: Any) -> str | None:
    """Why an on_behalf_of value is unusable (completing "on_behalf_of ..."), or None when it is fine.

    A subuser's username is printable ASCII without whitespace (it may be an email address); a customer
    account is `account-id <id>` with one space and the ID in SendGrid's form (`account_id_problem`).
    Anything else names the first character refused, its code point and its 1-based position. The same
    rule serves `check()` and the fleet parser, so nothing that passes it can fail to encode as a header.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be a string (a subuser's username or 'account-id <id>'), got {type(value).__name__}"
    if value.strip() == "":
        return "must not be empty; omit it (None) to manage the parent account"
    if len(value) > MAX_ON_BEHALF_OF_LENGTH:
        return (
            f"is {len(value)} characters long; SendGrid usernames are far shorter (at most {MAX_ON_BEHALF_OF_LENGTH})"
        )
    if value.startswith(ACCOUNT_ID_PREFIX):
        return _account_id_problem(value, len(ACCOUNT_ID_PREFIX))
    index = _first(value, _is_username_char)
    if index is not None:
        return _character_problem(value, index, USERNAME_RULE)
    if value.startswith("account-id"):
        return f"must be 'account-id <id>' with one space before the ID, e.g. 'account-id {ACCOUNT_ID_EXAMPLE}'"
    return None


def on_delete_problem(value: Any) -> str | None:
    if value in ON_DELETE_MODES:
        return None
    return f"must be one of {', '.join(ON_DELETE_MODES)}, got {value!r}"


def region_problem(value: Any) -> str | None:
    if value in REGIONS:
        return None
    return f"must be one of {', '.join(REGIONS)} (or omitted for the stack's sendgrid:region), got {value!r}"
