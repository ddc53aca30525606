"""The desired tracking settings of a fleet (parent account + subusers), from stack config or a fleet file.

Pure data validation, no Pulumi calls: every mistake is reported at once, by path, with a fix,
before any resource is declared (so a bad config fails `pulumi preview`). Values are checked with
the provider's own rules (`tracking.Field.problem` and `inputs`), so the fleet accepts exactly what
the resources accept. An empty fleet is a mistake too, unless it says `manageNothing: true`:
otherwise a typo or an emptied file would make the next deploy give up every account the stack manages.

Shape (the fleet file's top level, or the program namespace's keys in stack config):

    defaults: {SETTING: BLOCK, ...}                                   optional
    parent: {region?, SETTING: BLOCK, ...}                            optional
    subusers: [{username | accountId, region?, SETTING: BLOCK, ...}, ...]
    manageNothing: true                                               only when no account is listed

    SETTING  click | open | subscription | googleAnalytics
    BLOCK    the setting's writable fields (`TrackingSetting.writable` in tracking.py), spelled in
             camelCase (enabled, htmlContent, plainContent, replace, url, landing, utmSource, ...),
             and onDelete: restore | keep | disable (default restore). In an account, the block
             `{manage: false}` instead opts the account out of a setting that `defaults` gives.

Rules:
- An account manages the settings that have a block once `defaults` is merged in: its own blocks,
  and every `defaults` block it does not opt out of. The merge is field by field, the account's
  value winning; `enabled` must come from one of the two. Optional fields (url, utm*, ...) are
  managed only where given. An account left with no setting is a mistake: remove it instead.
- `region` belongs to the account (where it lives): never in a block, never in `defaults` (the
  stack's sendgrid:region is the default). `onDelete` belongs to each setting's block.
- Today's click-only shape, `enabled` (and `onDelete`) directly on the account, still means click
  tracking: `{username: alice, enabled: false}` is `{username: alice, click: {enabled: false}}`. It
  is read only where it cannot mean anything else: an account without setting blocks, in a fleet
  without `defaults`. Anywhere else it is a mistake, and the message shows the click block to write.
- Resource names: click tracking keeps `parent`, `subuser-<username>` and `account-<id>`; the other
  settings put their name in front: `open-subuser-alice`, `subscription-parent`,
  `google-analytics-account-42`. No username can make two of them equal.
- One username (or account ID) may be listed twice, once with `region: global` and once with
  `region: eu`: two accounts. The eu one's names get `eu-` in front of the account part
  (`eu-subuser-alice`, `open-eu-subuser-alice`); no other name starts so.
- A shard stack (`shard` in its config) reads the fleet from a file (`fleetFile`): inline, it would be
  a copy that edits of the fleet's own stack never reach.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from .inputs import (
    ACCOUNT_ID_EXAMPLE,
    ACCOUNT_ID_PREFIX,
    DEFAULT_ON_DELETE,
    account_id_problem,
    on_behalf_of_problem,
    on_delete_problem,
    region_problem,
)
from .shards import SHARD_KEY
from .tracking import CLICK, SETTINGS, Field, TrackingSetting


def camel(name: str) -> str:
    """A wire name as the fleet spells it: `utm_campaign` → `utmCampaign`, `google_analytics` → `googleAnalytics`."""
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


SETTING_KEYS: Mapping[str, TrackingSetting] = {camel(s.name): s for s in SETTINGS.values()}
"""The block keys of an account or `defaults`, in the order resources are declared: click, open, ..."""
ON_DELETE = "onDelete"
MANAGE = "manage"
REGION = "region"
LEGACY_KEYS = ("enabled", ON_DELETE)
"""Today's click-only shape: these directly on an account mean click tracking."""
ENTRY_KEYS = ("username", "accountId", REGION, *SETTING_KEYS, *LEGACY_KEYS)
PARENT_KEYS = (REGION, *SETTING_KEYS, *LEGACY_KEYS)
DEFAULTS = "defaults"
MANAGE_NOTHING = "manageNothing"
FLEET_KEYS = (DEFAULTS, "parent", "subusers", MANAGE_NOTHING)
FLEET_FILE = "fleetFile"
SHARD = SHARD_KEY
"""`<index>/<count>`: the stack declares only the accounts of that shard (shards.py)."""
PROGRAM_KEYS = (FLEET_FILE, *FLEET_KEYS, SHARD)
"""The keys of the program's own config namespace (`sendgrid-click-tracking:<key>`)."""

_QUOTE_ID = (
    f'write it in quotes, exactly as SendGrid shows it, e.g. accountId: "{ACCOUNT_ID_EXAMPLE}" '
    "(unquoted, YAML turns 042 into 34, 0x10 into 16 and 1_000 into 1000; "
    "with `pulumi config set --path`, add `--type string`)"
)


def block_keys(setting: TrackingSetting) -> tuple[str, ...]:
    """The keys of a setting's block: its writable fields in camelCase, then onDelete."""
    return (*(camel(f.name) for f in setting.writable), ON_DELETE)


def resource_name(setting: TrackingSetting, account: str) -> str:
    """`subuser-alice` for click tracking (the names of the click-only releases), `open-subuser-alice` for the rest.

    The setting goes in front, so no username can make two names equal (`subuser-alice-open` could be
    subuser alice's open tracking or subuser alice-open's click tracking).
    """
    return account if setting is CLICK else f"{setting.name.replace('_', '-')}-{account}"


class FleetConfigError(ValueError):
    """One or more problems in the fleet config; the message lists them all, under where they are."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid fleet config{where}:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class FleetEntry:
    """One setting of one account that the stack manages: one resource of the program."""

    name: str
    """The Pulumi resource name: `subuser-alice` (click tracking), `open-subuser-alice`; see `resource_name`."""
    setting: str
    """click, open, subscription or google_analytics (`tracking.SETTINGS`)."""
    values: Mapping[str, Any] = field(hash=False)
    """The managed fields by wire name, in the setting's order: `enabled` always, the optional ones given."""
    on_behalf_of: str | None
    region: str | None
    """None: the stack's sendgrid:region."""
    on_delete: str

    @property
    def enabled(self) -> bool:
        return bool(self.values["enabled"])

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of the setting's resource class (ClickTracking, OpenTracking, ...)."""
        return {**self.values, "on_behalf_of": self.on_behalf_of, "region": self.region, "on_delete": self.on_delete}


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


def _flow(value: Any) -> str:
    """A value as it would be written in a YAML flow mapping, for messages that show the fix."""
    if isinstance(value, bool):
        return str(value).lower()
    if (
        isinstance(value, str)
        and re.fullmatch(r"[A-Za-z][A-Za-z0-9_./-]*", value)
        and value.lower() not in ("true", "false", "yes", "no", "on", "off", "null", "y", "n")
    ):
        return value
    return json.dumps(value)


def _unknown(path: str, key: Any, allowed: tuple[str, ...]) -> str:
    """`<path>.<key>: unknown field`, with the key meant when it is a snake_case or other-case spelling of one."""
    text = str(key)
    meant = next((a for a in allowed if a in (camel(text), text.replace("-", "_")) or a.lower() == text.lower()), None)
    if meant is not None and meant != text:
        return f"{path}.{key}: unknown field; did you mean {meant}? (fleet keys are camelCase)"
    return f"{path}.{key}: unknown field; allowed: {', '.join(allowed)}"


def _field_problem(path: str, key: str, spec: Field, value: Any) -> str | None:
    """The provider's own check of one field (`Field.problem`), worded for YAML when the type is wrong."""
    problem = spec.problem(value)
    if problem is None:
        return None
    if spec.kind is bool and not isinstance(value, bool):
        return f"{path}.{key}: must be true or false (unquoted), got {value!r}"
    if spec.kind is str and not isinstance(value, str):
        return f'{path}.{key}: must be a string, got {_describe(value)}; quote it: {key}: "..."'
    return f"{path}.{key}: {problem}"


_Block = dict[str, Any]
"""A checked block: wire field names → values, plus `on_delete` when given."""


def _block(
    path: str, setting: TrackingSetting, raw: Any, problems: list[str], *, in_defaults: bool
) -> tuple[_Block | None, bool]:
    """(values, ok) of one setting block; values is None for `{manage: false}` (the account opts out).

    ok is False when a problem was reported here (the caller then skips what depends on the block).
    """
    title = setting.title
    keys = block_keys(setting)
    allowed = keys if in_defaults else (*keys, MANAGE)
    if raw is None:
        opt_out = "" if in_defaults else f", or write {{{MANAGE}: false}} to leave it unmanaged for this account"
        problems.append(f"{path}: empty; give {title}'s fields, e.g. {{enabled: true}}{opt_out}")
        return {}, False
    if not isinstance(raw, Mapping):
        key = path.rsplit(".", 1)[-1]
        fix = f"; write {key}: {{enabled: {_flow(raw)}}}" if isinstance(raw, bool) else ""
        problems.append(
            f"{path}: expected a mapping of {title}'s fields ({', '.join(keys)}), got {_describe(raw)}{fix}"
        )
        return {}, False
    fields = {camel(f.name): f for f in setting.writable}
    read_only = {camel(f.name) for f in setting.fields if not f.writable}
    count = len(problems)
    values: _Block = {}
    for key, value in raw.items():
        if key == MANAGE and not in_defaults:
            continue
        if key == MANAGE:
            problems.append(
                f"{path}.{MANAGE}: only an account's block takes it; to manage {title} for no account by "
                f"default, remove {path}"
            )
        elif key in read_only:
            problems.append(f"{path}.{key}: read-only (SendGrid sets it, the program never sends it); remove it")
        elif key not in allowed:
            problems.append(_unknown(path, key, allowed))
        elif value is None:
            problems.append(f"{path}.{key}: empty (null); give a value, or remove the key")
        elif key == ON_DELETE:
            if problem := on_delete_problem(value):
                problems.append(f"{path}.{key}: {problem}")
            else:
                values["on_delete"] = value
        elif problem := _field_problem(path, key, fields[key], value):
            problems.append(problem)
        else:
            values[fields[key].name] = value
    if MANAGE in raw and not in_defaults:
        manage = raw[MANAGE]
        others = [str(key) for key in raw if key != MANAGE]
        if manage is not False:
            problems.append(
                f"{path}.{MANAGE}: the only value is false (leave this account's {title} unmanaged although "
                f"defaults manages it), got {manage!r}; to manage it, remove {MANAGE}"
            )
        elif others:
            problems.append(
                f"{path}: {MANAGE}: false leaves {title} unmanaged for this account, so {', '.join(others)} "
                f"would be ignored; remove them, or remove {MANAGE}"
            )
        elif len(problems) == count:
            return None, True
    values = {name: values[name] for name in (*(f.name for f in setting.writable), "on_delete") if name in values}
    return values, len(problems) == count


class _Defaults(NamedTuple):
    blocks: dict[str, _Block] | None
    """Setting name → checked block; None when the fleet has no (usable) `defaults`."""
    broken: set[str]
    """Settings whose default block has a problem (reported once, at `defaults`)."""
    give_enabled: set[str]
    """Settings whose default block has an `enabled` key (valid or not)."""


def _defaults(config: Mapping[str, Any], problems: list[str]) -> _Defaults:
    """The fleet's `defaults`, checked."""
    if DEFAULTS not in config:
        return _Defaults(None, set(), set())
    raw = config[DEFAULTS]
    example = "open: {enabled: false}"
    if raw is None:
        problems.append(f"{DEFAULTS}: empty; give setting blocks (e.g. {example}), or remove the key")
        return _Defaults(None, set(), set())
    if not isinstance(raw, Mapping):
        problems.append(
            f"{DEFAULTS}: expected a mapping of setting blocks ({', '.join(SETTING_KEYS)}), got {_describe(raw)}"
        )
        return _Defaults(None, set(), set())
    defaults: dict[str, _Block] = {}
    broken: set[str] = set()
    give_enabled: set[str] = set()
    for key, block in raw.items():
        path = f"{DEFAULTS}.{key}"
        if key in SETTING_KEYS:
            setting = SETTING_KEYS[key]
            values, ok = _block(path, setting, block, problems, in_defaults=True)
            defaults[setting.name] = values or {}
            if not ok:
                broken.add(setting.name)
            if not isinstance(block, Mapping) or "enabled" in block:  # else each account must give it
                give_enabled.add(setting.name)
        elif key == REGION:
            problems.append(
                f"{path}: a region is where an account lives: give it on the account (region: eu), and set "
                "the stack's default with sendgrid:region"
            )
        elif key in LEGACY_KEYS or key in ("username", "accountId"):
            problems.append(
                f"{path}: {DEFAULTS} holds one block per setting ({', '.join(SETTING_KEYS)}); "
                f"put {key} in a block, e.g. click: {{{key}: ...}}"
            )
        else:
            problems.append(_unknown(DEFAULTS, key, tuple(SETTING_KEYS)))
    return _Defaults(defaults, broken, give_enabled)


def _legacy_fix(raw: Mapping[str, Any]) -> str:
    """The click block that today's shape on this account means: `click: {enabled: false, onDelete: keep}`."""
    inner = ", ".join(f"{key}: {_flow(raw[key])}" for key in LEGACY_KEYS if key in raw)
    return f"click: {{{inner}}}"


def _settings(
    path: str,
    raw: Mapping[str, Any],
    account: tuple[str | None, str],
    defaults: _Defaults,
    problems: list[str],
) -> list[FleetEntry]:
    """The entries of one account (the parent or a subuser), after its own keys were checked."""
    on_behalf_of, base = account
    default_blocks = defaults.blocks
    region = raw.get(REGION)
    if region is not None and (problem := region_problem(region)):
        problems.append(f"{path}.{REGION}: {problem}")
        region = None
    legacy = [key for key in LEGACY_KEYS if key in raw]
    blocks = [key for key in SETTING_KEYS if key in raw]
    if legacy == [ON_DELETE] and blocks:
        problems.append(
            f"{path}.{ON_DELETE}: with setting blocks, onDelete goes in each block, e.g. "
            f"{blocks[0]}: {{..., {ON_DELETE}: {_flow(raw[ON_DELETE])}}}; directly on the account it is the "
            "click-only shape's (click tracking's alone)"
        )
        return []
    if legacy and blocks:
        problems.append(
            f"{path}: {' and '.join(legacy)} directly on the account is the click-only shape; it cannot be mixed "
            f"with setting blocks ({', '.join(blocks)}). Move it into the click block: {_legacy_fix(raw)}"
        )
        return []
    if legacy and default_blocks is not None:
        problems.append(
            f"{path}: {' and '.join(legacy)} directly on the account is the click-only shape, which a fleet with "
            f"{DEFAULTS} does not read (it would look like it covers every setting); write {_legacy_fix(raw)}"
        )
        return []
    if legacy:  # today's shape: click tracking alone
        count = len(problems)
        enabled = raw.get("enabled")
        if enabled is None:
            problems.append(f"{path}.enabled: required; set it to true or false")
        else:
            problem = _field_problem(path, "enabled", CLICK.field("enabled"), enabled)
            if problem:
                problems.append(problem)
        on_delete = raw.get(ON_DELETE, DEFAULT_ON_DELETE)
        if problem := on_delete_problem(on_delete):
            problems.append(f"{path}.{ON_DELETE}: {problem}")
        if len(problems) > count:
            return []
        return [
            FleetEntry(resource_name(CLICK, base), CLICK.name, {"enabled": enabled}, on_behalf_of, region, on_delete)
        ]

    entries: list[FleetEntry] = []
    managed = 0
    for key, setting in SETTING_KEYS.items():
        block_path = f"{path}.{key}"
        default = (default_blocks or {}).get(setting.name)
        given = setting.name in defaults.give_enabled
        if key in raw:
            block = raw[key]
            values, ok = _block(block_path, setting, block, problems, in_defaults=False)
            if values is None:  # {manage: false}
                if default is None:
                    problems.append(
                        f"{block_path}: {MANAGE}: false, but {DEFAULTS} has no {key} block, so there is nothing to "
                        f"opt out of; remove it (to turn {setting.title} off in SendGrid, write {key}: "
                        "{enabled: false})"
                    )
                continue
            managed += 1
            given = given or not isinstance(block, Mapping) or "enabled" in block  # else reported by _block
        elif default is not None:
            managed += 1
            values, ok = {}, True
        else:
            continue
        if not given:
            where = f"here or in {DEFAULTS}.{key}" if default is not None else f"e.g. {key}: {{enabled: true}}"
            problems.append(f"{block_path}.enabled: required; set it to true or false ({where})")
            continue
        if not ok or setting.name in defaults.broken:
            continue  # reported where the value is
        merged = {**(default or {}), **values}
        values = {f.name: merged[f.name] for f in setting.writable if f.name in merged}
        on_delete = merged.get("on_delete", DEFAULT_ON_DELETE)
        entries.append(FleetEntry(resource_name(setting, base), setting.name, values, on_behalf_of, region, on_delete))
    if managed == 0 and all(key in ENTRY_KEYS for key in raw):  # else a mistyped block was reported
        problems.append(
            f"{path}: manages no setting; give it a block such as click: {{enabled: true}} "
            f"({', '.join(SETTING_KEYS)}), or remove it to leave the account alone"
        )
    return entries


def _account(path: str, raw: Mapping[str, Any], problems: list[str]) -> tuple[str, str] | None:
    """(on_behalf_of, click resource name) of a subuser entry, or None after reporting why not."""
    has_username, has_account_id = "username" in raw, "accountId" in raw
    if has_username == has_account_id:
        problems.append(f"{path}: give exactly one of username or accountId")
        return None
    if has_account_id:
        account_id = raw["accountId"]
        if not isinstance(account_id, str):
            problems.append(
                f"{path}.accountId: must be a string of letters and digits, got {_describe(account_id)}; {_QUOTE_ID}"
            )
            return None
        problem = account_id_problem(account_id)
        if problem:
            problems.append(f"{path}.accountId: {problem}")
            return None
        return f"{ACCOUNT_ID_PREFIX}{account_id}", f"account-{account_id}"
    username = raw["username"]
    if not isinstance(username, str):
        problems.append(f'{path}.username: must be a string, got {_describe(username)}; quote it: username: "..."')
        return None
    problem = on_behalf_of_problem(username)
    if problem:
        problems.append(f"{path}.username: {problem}")
        return None
    return username, f"subuser-{username}"


def _mapping(path: str, raw: Any, allowed: tuple[str, ...], problems: list[str]) -> Mapping[str, Any] | None:
    """The account's mapping with its unknown keys reported, or None after reporting it is not one."""
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: expected a mapping with {', '.join(allowed)}, got {_describe(raw)}")
        return None
    for key in raw:
        if key not in allowed:
            problems.append(_unknown(path, key, allowed))
    return raw


def _in_both_regions(subusers: Any) -> set[str]:
    """The on-behalf-of values (a username, `account-id 42`) listed once with `region: global` and once with
    `region: eu`: two accounts, whose eu one takes resource names with `eu-` in front."""
    regions: dict[str, set[str]] = {}
    for item in subusers if isinstance(subusers, list) else []:
        if not isinstance(item, Mapping) or item.get(REGION) not in ("global", "eu"):
            continue
        account = _account("", item, [])
        if account is not None:
            regions.setdefault(account[0], set()).add(str(item[REGION]))
    return {who for who, found in regions.items() if len(found) == 2}


def parse_fleet(
    config: Any, *, source: str | None = None, inline_prefix: str = "", problems: list[str] | None = None
) -> list[FleetEntry]:
    """`{"defaults": {...}, "parent": {...}, "subusers": [{...}, ...]}` (or `{"manageNothing": true}`) → entries.

    One entry per account and managed setting: accounts in the order given (the parent first),
    settings in the order click, open, subscription, google_analytics. Raises FleetConfigError listing
    every problem: the top-level shape, unknown or null keys, each block's fields checked as the
    provider checks them, shapes mixed or misplaced, accounts given twice or managing nothing, and a
    fleet without accounts that does not say `manageNothing: true` (or says it next to accounts).
    `source` names where the config came from in the message; `inline_prefix` (e.g.
    `sendgrid-click-tracking:`) is how its keys are spelled in stack config, for the hints.
    `problems` already found (duplicate keys) are reported with the rest.
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

    defaults = _defaults(config, problems)
    listed: list[str] = []
    if "parent" in config:
        parent = config["parent"]
        if parent is None:
            with_defaults = ", or parent: {} to manage it with the defaults" if defaults[0] is not None else ""
            problems.append(
                f"parent: empty; give its settings (e.g. click: {{enabled: true}}){with_defaults}, "
                "or remove the key to leave the parent account alone"
            )
        else:
            listed.append("parent")
            raw = _mapping("parent", parent, PARENT_KEYS, problems)
            if raw is not None:
                entries += _settings("parent", raw, (None, "parent"), defaults, problems)

    subusers: Any = config.get("subusers", [])
    if subusers is None:
        problems.append("subusers: empty; list the accounts, or write `subusers: []` for none")
        subusers = []
    elif not isinstance(subusers, list):
        problems.append(f"subusers: expected a list, got {_describe(subusers)}")
        subusers = []
    seen: dict[str, list[tuple[Any, str]]] = {}  # on-behalf-of → (the region given, path) of each entry
    both = _in_both_regions(subusers)
    for index, item in enumerate(subusers):
        path = f"subusers[{index}]"
        listed.append(path)
        raw = _mapping(path, item, ENTRY_KEYS, problems)
        if raw is None:
            continue
        account = _account(path, raw, problems)
        if account is None:
            continue
        on_behalf_of = account[0]
        region = raw.get(REGION)
        earlier = seen.setdefault(on_behalf_of, [])
        if earlier and (on_behalf_of not in both or region is None or any(g in (None, region) for g, _ in earlier)):
            problems.append(
                f"{path}: {on_behalf_of!r} is already configured at {earlier[0][1]}; remove one (the same name in "
                "both regions is two accounts: give each its region, region: global and region: eu)"
            )
            continue
        earlier.append((region, path))
        if on_behalf_of in both and region == "eu":
            account = (on_behalf_of, f"eu-{account[1]}")  # `eu-subuser-alice`: beside the global `subuser-alice`
        entries += _settings(path, raw, account, defaults, problems)

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
        if SHARD in values:
            raise FleetConfigError(
                [
                    f"{prefix}{SHARD} is set, and the fleet is inline in this stack's config "
                    f"({', '.join(prefix + key for key in inline)}): a shard stack reads the fleet from the file its "
                    f"fleet's stack names ({prefix}{FLEET_FILE}), so that an edit reaches every shard at its next run. "
                    f"Remove these keys from this stack (pulumi config rm), put the fleet in a file, and set "
                    f"{prefix}{FLEET_FILE} to it in the fleet's stack and in each shard stack"
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
