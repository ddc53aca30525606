"""The desired click tracking of a fleet (parent account + subusers), from stack config or a fleet file.

Pure data validation, no Pulumi calls: every mistake is reported at once, by path, with a fix,
before any resource is declared (so a bad config fails `pulumi preview`). An empty fleet is a
mistake too, unless it says `manageNothing: true`: otherwise a typo or an emptied file would
make the next deploy give up every account the stack manages.

Shape (the fleet file's top level, or the program namespace's keys in stack config):

    parent: {enabled, region?, onDelete?}              optional
    subusers: [{username | accountId, enabled, region?, onDelete?}, ...]
    manageNothing: true                                only when no account is listed
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .inputs import DEFAULT_ON_DELETE, ON_DELETE_MODES, REGIONS
from .inputs import on_behalf_of_problem as validate_on_behalf_of

ENTRY_KEYS = ("username", "accountId", "enabled", "region", "onDelete")
PARENT_KEYS = ("enabled", "region", "onDelete")
MANAGE_NOTHING = "manageNothing"
FLEET_KEYS = ("parent", "subusers", MANAGE_NOTHING)
FLEET_FILE = "fleetFile"
PROGRAM_KEYS = (FLEET_FILE, *FLEET_KEYS)
"""The keys of the program's own config namespace (`sendgrid-click-tracking:<key>`)."""

_ACCOUNT_ID = re.compile(r"[0-9]+")
_QUOTE_ID = (
    'write it in quotes, exactly as SendGrid shows it, e.g. accountId: "12345" '
    "(unquoted, YAML turns 042 into 34, 0x10 into 16 and 1_000 into 1000; "
    "with `pulumi config set --path`, add `--type string`)"
)


class FleetConfigError(ValueError):
    """One or more problems in the fleet config; the message lists them all, under where they are."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid click tracking config{where}:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class FleetEntry:
    """One account whose click tracking the stack manages."""

    name: str
    """The Pulumi resource name: `parent`, `subuser-<username>` or `account-<id>`."""
    enabled: bool
    on_behalf_of: str | None
    region: str | None
    on_delete: str


# -- YAML -------------------------------------------------------------------------------------


class FleetLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false, as Pulumi reads Pulumi.<stack>.yaml.

    YAML 1.1 would read `enabled: yes` as true and `username: no` as false; here they stay strings,
    which the fleet's checks then reject or accept exactly as they would in stack config.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


FleetLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _duplicate_keys(node: yaml.Node, path: str, problems: list[str], seen: set[int]) -> None:
    """Report every mapping key given twice, by path and lines (YAML's last-one-wins is never what was meant)."""
    if id(node) in seen:  # an alias: already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key_node.tag != "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                identity = (key_node.tag, key)
                if identity in first_line:
                    problems.append(
                        f"{_child(path, key)}: given twice (lines {first_line[identity]} and {line}); "
                        "YAML would silently keep the last one, so keep one"
                    )
                else:
                    first_line[identity] = line
            _duplicate_keys(value_node, _child(path, key if key is not None else "?"), problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _duplicate_keys(item, f"{path}[{index}]", problems, seen)


def _compose(text: str, source: str) -> tuple[Any, list[str]]:
    """(data, duplicate-key problems); FleetConfigError for invalid YAML or more than one document."""
    problems: list[str] = []
    loader = FleetLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        _duplicate_keys(node, "", problems, set())
        return loader.construct_document(node), problems
    except yaml.YAMLError as exc:
        raise FleetConfigError([f"not valid YAML: {exc}"], source) from None
    finally:
        loader.dispose()


def load_fleet_yaml(text: str, source: str) -> Any:
    """The data of a fleet file (None when it is empty or only comments).

    Raises FleetConfigError for invalid YAML, more than one document, or a mapping key given twice.
    """
    data, problems = _compose(text, source)
    if problems:
        raise FleetConfigError(problems, source)
    return data


# -- validation -------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the unquoted {str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"the unquoted number {value!r}"
    if value is None:
        return "nothing (null)"
    return f"a {type(value).__name__}"


def _entry(path: str, raw: Any, allowed: tuple[str, ...], problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: expected a mapping with {', '.join(allowed)}, got {_describe(raw)}")
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


def _account(path: str, raw: Mapping[str, Any], problems: list[str]) -> tuple[str, str] | None:
    """(on_behalf_of, resource name) of a subuser entry, or None after reporting why not."""
    has_username, has_account_id = "username" in raw, "accountId" in raw
    if has_username == has_account_id:
        problems.append(f"{path}: give exactly one of username or accountId")
        return None
    if has_account_id:
        account_id = raw["accountId"]
        if not isinstance(account_id, str):
            problems.append(
                f"{path}.accountId: must be a string of decimal digits, got {_describe(account_id)}; {_QUOTE_ID}"
            )
            return None
        if not _ACCOUNT_ID.fullmatch(account_id):
            problems.append(f"{path}.accountId: must be the account's ID in decimal digits (0-9), got {account_id!r}")
            return None
        return f"account-id {account_id}", f"account-{account_id}"
    username = raw["username"]
    if not isinstance(username, str):
        problems.append(f'{path}.username: must be a string, got {_describe(username)}; quote it: username: "..."')
        return None
    problem = validate_on_behalf_of(username)
    if problem:
        problems.append(f"{path}.username: {problem}")
        return None
    return username, f"subuser-{username}"


def parse_fleet(
    config: Any, *, source: str | None = None, inline_prefix: str = "", problems: list[str] | None = None
) -> list[FleetEntry]:
    """`{"parent": {...}, "subusers": [{...}, ...]}` (or `{"manageNothing": true}`) → entries.

    Raises FleetConfigError listing every problem: the top-level shape, unknown or null keys, each
    entry's fields and types, accounts given twice, and a fleet without accounts that does not say
    `manageNothing: true` (or says it next to accounts). `source` names where the config came from
    in the message; `inline_prefix` (e.g. `sendgrid-click-tracking:`) is how its keys are spelled in
    stack config, for the hints. `problems` already found (duplicate keys) are reported with the rest.
    """
    problems = list(problems or [])
    entries: list[FleetEntry] = []
    switch = (
        f"pulumi config set {inline_prefix}{MANAGE_NOTHING} true"
        if inline_prefix
        else f"{MANAGE_NOTHING}: true at the top level"
    )
    if config is None:
        config = {}
        empty = "is empty (or only comments)"
    elif not isinstance(config, Mapping):
        problems.append(f"(top level): expected a mapping with {', '.join(FLEET_KEYS)}, got {_describe(config)}")
        raise FleetConfigError(problems, source)
    else:
        empty = "lists no parent and no subusers"
    for key in config:
        if key not in FLEET_KEYS:
            problems.append(f"{key}: unknown field; allowed: {', '.join(FLEET_KEYS)}")

    manage_nothing = config.get(MANAGE_NOTHING)
    if MANAGE_NOTHING in config and not isinstance(manage_nothing, bool):
        problems.append(f"{MANAGE_NOTHING}: must be true or false (unquoted), got {manage_nothing!r}")

    listed: list[str] = []
    if "parent" in config:
        parent = config["parent"]
        if parent is None:
            problems.append(
                "parent: empty; give enabled: true or false (and optionally region, onDelete), "
                "or remove the key to leave the parent account alone"
            )
        else:
            listed.append("parent")
            raw = _entry("parent", parent, PARENT_KEYS, problems)
            if raw is not None and isinstance(raw.get("enabled"), bool):
                entries.append(
                    FleetEntry(
                        "parent", raw["enabled"], None, raw.get("region"), raw.get("onDelete", DEFAULT_ON_DELETE)
                    )
                )

    subusers: Any = config.get("subusers", [])
    if subusers is None:
        problems.append("subusers: empty; list the accounts, or write `subusers: []` for none")
        subusers = []
    elif not isinstance(subusers, list):
        problems.append(f"subusers: expected a list, got {_describe(subusers)}")
        subusers = []
    seen: dict[str, str] = {}
    for index, item in enumerate(subusers):
        path = f"subusers[{index}]"
        listed.append(path)
        raw = _entry(path, item, ENTRY_KEYS, problems)
        if raw is None:
            continue
        account = _account(path, raw, problems)
        if account is None:
            continue
        on_behalf_of, name = account
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

    if manage_nothing is True and listed:
        problems.append(
            f"{MANAGE_NOTHING}: true, but the fleet lists {', '.join(listed)}; "
            f"remove {MANAGE_NOTHING} to manage them, or remove them to manage nothing"
        )
    elif manage_nothing is not True and not listed and not problems:
        where = source or "the fleet"
        problems.append(
            f"no accounts: {where} {empty}, so a deploy would give up every account this stack manages "
            f"(each per its onDelete: restore, keep or disable). If that is what you want, say so: {switch}. "
            "Otherwise add the accounts (check the file and the key names)"
        )
    if problems:
        raise FleetConfigError(problems, source)
    return entries


# -- from stack config ------------------------------------------------------------------------


def _config_value(raw: Any) -> Any:
    """A stack config value as the program receives it: a string, with objects and lists as JSON text.

    The engine turns a key given as null or left empty into "" (None here), and a plain value such
    as `true` into the string "true" (True here). Anything that is not JSON stays the string it is.
    """
    if not isinstance(raw, str):
        return raw
    if raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def fleet_from_stack_config(
    values: Mapping[str, Any], read_text: Callable[[str], str], *, namespace: str
) -> list[FleetEntry]:
    """The fleet named by the program namespace's stack config keys (without the `namespace:` prefix).

    Either `fleetFile` (a YAML file of the fleet's shape, read with `read_text`, relative to the
    project) or the fleet keys inline; both at once is an error. Raises FleetConfigError.
    """
    prefix = f"{namespace}:"
    inline = {key: _config_value(values[key]) for key in FLEET_KEYS if key in values}
    if FLEET_FILE not in values:
        if not inline:
            raise FleetConfigError(
                [
                    f"no fleet configured: set {prefix}{FLEET_FILE} to a fleet file, or {prefix}parent and/or "
                    f"{prefix}subusers; to manage no account on purpose, {prefix}{MANAGE_NOTHING}: true "
                    "(check the spelling of the keys)"
                ],
                "stack config",
            )
        return parse_fleet(inline, source="stack config", inline_prefix=prefix)

    fleet_file = values[FLEET_FILE]
    if inline:
        raise FleetConfigError(
            [
                f"set either {prefix}{FLEET_FILE} or {'/'.join(FLEET_KEYS)} in stack config, not both "
                f"(stack config has {', '.join(prefix + key for key in inline)}); "
                f"with a fleet file, put them in the file"
            ],
            "stack config",
        )
    if not isinstance(fleet_file, str) or not fleet_file.strip() or isinstance(_config_value(fleet_file), dict | list):
        raise FleetConfigError(
            [f"{prefix}{FLEET_FILE}: must name a YAML file, relative to the project (e.g. fleets/prod.yaml)"],
            "stack config",
        )
    try:
        text = read_text(fleet_file)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FleetConfigError([f"{prefix}{FLEET_FILE}: cannot read {fleet_file}: {reason}"], "stack config") from None
    data, duplicates = _compose(text, fleet_file)
    return parse_fleet(data, source=fleet_file, problems=duplicates)
