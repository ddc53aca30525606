"""The desired click tracking of a fleet (parent account + subusers), read from stack config.

Pure data validation, no Pulumi calls: every mistake is reported at once, by path, with a fix,
before any resource is declared (so a bad config fails `pulumi preview`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .inputs import DEFAULT_ON_DELETE, ON_DELETE_MODES, REGIONS
from .inputs import on_behalf_of_problem as validate_on_behalf_of

ENTRY_KEYS = ("username", "accountId", "enabled", "region", "onDelete")
PARENT_KEYS = ("enabled", "region", "onDelete")
FLEET_KEYS = ("parent", "subusers")


class FleetConfigError(ValueError):
    """One or more problems in the fleet config; the message lists them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid click tracking config:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class FleetEntry:
    """One account whose click tracking the stack manages."""

    name: str
    """The Pulumi resource name: `parent`, `subuser-<username>` or `account-<id>`."""
    enabled: bool
    on_behalf_of: str | None
    region: str | None
    on_delete: str


def _entry(path: str, raw: Any, allowed: tuple[str, ...], problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: expected a mapping with {', '.join(allowed)}, got {type(raw).__name__}")
        return None
    for key in raw:
        if key not in allowed:
            problems.append(f"{path}.{key}: unknown field; allowed: {', '.join(allowed)}")
    enabled = raw.get("enabled")
    if enabled is None:
        problems.append(f"{path}.enabled: required; set it to true or false")
    elif not isinstance(enabled, bool):
        problems.append(f"{path}.enabled: must be true or false (unquoted), got {enabled!r}")
    region = raw.get("region")
    if region is not None and region not in REGIONS:
        problems.append(f"{path}.region: must be one of {', '.join(REGIONS)}, got {region!r}")
    on_delete = raw.get("onDelete", DEFAULT_ON_DELETE)
    if on_delete not in ON_DELETE_MODES:
        problems.append(f"{path}.onDelete: must be one of {', '.join(ON_DELETE_MODES)}, got {on_delete!r}")
    return dict(raw)


def parse_fleet(config: Mapping[str, Any] | None) -> list[FleetEntry]:
    """`{"parent": {...}, "subusers": [{...}, ...]}` → entries; FleetConfigError lists every problem."""
    problems: list[str] = []
    entries: list[FleetEntry] = []
    config = config or {}
    for key in config:
        if key not in FLEET_KEYS:
            problems.append(f"{key}: unknown field; allowed: {', '.join(FLEET_KEYS)}")

    parent = config.get("parent")
    if parent is not None:
        raw = _entry("parent", parent, PARENT_KEYS, problems)
        if raw is not None and not problems:
            entries.append(
                FleetEntry("parent", raw["enabled"], None, raw.get("region"), raw.get("onDelete", DEFAULT_ON_DELETE))
            )

    subusers = config.get("subusers") or []
    if not isinstance(subusers, list):
        problems.append(f"subusers: expected a list, got {type(subusers).__name__}")
        subusers = []
    seen: dict[str, str] = {}
    for index, item in enumerate(subusers):
        path = f"subusers[{index}]"
        raw = _entry(path, item, ENTRY_KEYS, problems)
        if raw is None:
            continue
        username, account_id = raw.get("username"), raw.get("accountId")
        if (username is None) == (account_id is None):
            problems.append(f"{path}: give exactly one of username or accountId")
            continue
        on_behalf_of: Any
        if account_id is not None:
            account_id = str(account_id)
            on_behalf_of, name = f"account-id {account_id}", f"account-{account_id}"
        else:
            on_behalf_of, name = username, f"subuser-{username}"
        problem = validate_on_behalf_of(on_behalf_of)
        if problem:
            problems.append(f"{path}.{'accountId' if account_id is not None else 'username'}: {problem}")
            continue
        if on_behalf_of in seen:
            problems.append(f"{path}: {on_behalf_of!r} is already configured at {seen[on_behalf_of]}; remove one")
            continue
        seen[on_behalf_of] = path
        if isinstance(raw.get("enabled"), bool):
            entries.append(
                FleetEntry(
                    name, raw["enabled"], on_behalf_of, raw.get("region"), raw.get("onDelete", DEFAULT_ON_DELETE)
                )
            )
    if problems:
        raise FleetConfigError(problems)
    return entries
