"""`pipelines/discover --stack S`: the fleet file of what SendGrid already holds (or, with --diff, how it differs).

Reads, with the stack's key and the package's own client (`sendgrid:maxRequestsPerSecond` pacing, 429
with X-RateLimit-Reset, retries within `sendgrid:retryBudget`), in parallel threads (--jobs):

1. the parent account's settings (--settings, default all four), in the stack's region; a setting the
   key may not read (403: a scope is missing) is left out for every account and reported;
2. the parent's subusers, page by page (`GET /v3/subusers?region=all&include_region=true`), in both
   regions; customer accounts named with --account-id, or all of them with --list-accounts
   (`GET /v3/partners/accounts`, page by page);
3. the settings of every account, on its region's host: a GET per setting; or, when the key may read
   `GET /v3/tracking_settings` and click and open are both asked, that one list for the two of them (their
   only field is `enabled`, which the list gives) and a GET each for the others: 3 requests per account
   for all four settings instead of 4.

Then writes a fleet file (--output, default the stack's `fleetFile`; never over an existing file
without --force) declaring exactly what was read: every writable field of every setting read, values
shared by two accounts or more under `defaults`, accounts in a stable order (the parent, subusers by
username, customer accounts by id). A header comment says when and with which key's account it was
read; the key itself is never written or printed. A deploy of that file changes nothing in SendGrid.

Not fatal, reported per account and skipped: a disabled subuser, an account SendGrid refuses while it
answers for the parent (deleted since listed, or not this parent's), a subuser listed in one region
that answers only in the other, a value the provider would not accept. Fatal (exit 1, nothing written):
SendGrid failing after the retry budget (429, 5xx, network), a bad key, nothing readable.

`--diff` writes nothing: it compares what SendGrid holds with the fleet file (the same path) and lists
accounts SendGrid has that the fleet does not manage, accounts the fleet declares that SendGrid does not
have (or has disabled, or in the other region), and every declared field whose live value differs.
Exit 2 when they differ, 0 when not, 1 on errors (as drift-check).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi_sendgrid_tracking import config as config_mod
from pulumi_sendgrid_tracking.client import SendGridClient
from pulumi_sendgrid_tracking.errors import ConfigurationError, PermissionDeniedError, SendGridError, scope_for
from pulumi_sendgrid_tracking.fleet import (
    DEFAULTS,
    FLEET_FILE,
    MANAGE,
    FleetConfigError,
    FleetEntry,
    camel,
    load_fleet_yaml,
    parse_fleet,
    resource_name,
)
from pulumi_sendgrid_tracking.inputs import ACCOUNT_ID_PREFIX, on_behalf_of_problem, resource_id
from pulumi_sendgrid_tracking.singleton import same
from pulumi_sendgrid_tracking.tracking import SETTINGS, TrackingSetting

from .common import (
    EXIT_DRIFT,
    EXIT_ERROR,
    EXIT_OK,
    ArgumentParser,
    PipelineError,
    Run,
    environment,
    failure,
    guess_option,
    project_name,
    project_path,
    stack_name,
)
from .output import FORMATS, Output, emit, payload

COMMAND = "discover"
SUBUSERS_PATH = "/v3/subusers"
ACCOUNTS_PATH = "/v3/partners/accounts"
SUBUSERS_PAGE = 100
"""Subusers asked per page. SendGrid documents no maximum for `limit`; 100 stays within any it may have."""
ACCOUNTS_PAGE = 100
"""Customer accounts asked per page: the maximum tsg_account_provisioning_v3.yaml allows."""
DEFAULT_JOBS = 8
PARENT, SUBUSER, CUSTOMER = "parent", "subuser", "customer"
ORDER = {PARENT: 0, SUBUSER: 1, CUSTOMER: 2}


# -- what was read ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """One account as discover addresses it: where it lives and its on-behalf-of value."""

    kind: str
    """parent, subuser or customer."""
    region: str
    on_behalf_of: str | None

    @property
    def name(self) -> str:
        """The username, the customer account's id, or "parent"."""
        if self.on_behalf_of is None:
            return PARENT
        return self.on_behalf_of.removeprefix(ACCOUNT_ID_PREFIX)

    @property
    def label(self) -> str:
        """`global`, `eu/carol`, `global/account-id 42`: as every pipeline output names an account."""
        return resource_id(self.region, self.on_behalf_of)

    @property
    def base(self) -> str:
        """The fleet's resource name base: `parent`, `subuser-alice`, `account-42`."""
        return {PARENT: PARENT, SUBUSER: f"subuser-{self.name}", CUSTOMER: f"account-{self.name}"}[self.kind]

    def sort_key(self) -> tuple[int, str, str]:
        return (ORDER[self.kind], self.name, self.region)


@dataclass(frozen=True)
class Skipped:
    """An account (or a setting of every account, `account` None) left out, with why and what to do."""

    account: Account | None
    reason: str
    hint: str
    setting: str | None = None
    kind: str = "skipped"
    """disabled, gone, region, scope, value or skipped: for readers of the JSON output."""

    def describe(self) -> dict[str, Any]:
        return {
            "account": self.account.label if self.account else None,
            "region": self.account.region if self.account else None,
            "on_behalf_of": self.account.on_behalf_of if self.account else None,
            "setting": self.setting,
            "kind": self.kind,
            "reason": self.reason,
            "hint": self.hint,
        }


@dataclass
class Discovery:
    """Everything one discover run read."""

    read_at: str
    settings: list[TrackingSetting]
    """The settings read for every account (the asked ones the key may read)."""
    found: dict[Account, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Account → setting → every field as SendGrid answered (None where absent)."""
    skipped: list[Skipped] = field(default_factory=list)
    listed: dict[str, int] = field(default_factory=dict)
    """How many subusers / customer accounts the lists gave (disabled ones included)."""

    def accounts(self) -> list[Account]:
        return sorted(self.found, key=Account.sort_key)


# -- reading SendGrid ----------------------------------------------------------------------------------


def _subuser_page(payload: Any) -> list[dict[str, Any]]:
    """A page of `GET /v3/subusers` (include_region=true), checked; ValueError when malformed."""
    if not isinstance(payload, list):
        raise ValueError("expected a JSON array of subusers")
    for item in payload:
        if not isinstance(item, dict) or not isinstance(item.get("username"), str):
            raise ValueError("a subuser without a username")
        if not isinstance(item.get("disabled"), bool):
            raise ValueError(f"subuser {item['username']!r} without a boolean `disabled`")
        if item.get("region") not in config_mod.REGIONS:
            raise ValueError(f"subuser {item['username']!r} without a region (global or eu)")
    return payload


def _accounts_page(payload: Any) -> tuple[list[str], str | None]:
    """(ids, last) of a page of `GET /v3/partners/accounts`; ValueError when malformed."""
    if not isinstance(payload, dict) or not isinstance(payload.get("accounts"), list):
        raise ValueError("expected an object with `accounts`")
    ids = []
    for item in payload["accounts"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ValueError("an account without an `id`")
        ids.append(item["id"])
    last = (payload.get("pages") or {}).get("last")
    return ids, last if isinstance(last, str) else None


LIST_PATH = "/v3/tracking_settings"


def in_list(setting: TrackingSetting) -> bool:
    """Whether `GET /v3/tracking_settings` answers all of a setting the fleet declares: its only writable
    field is `enabled` (click and open); the list gives `enabled` of every setting."""
    return [f.name for f in setting.writable] == ["enabled"]


def _listed(payload: dict[str, Any]) -> dict[str, Any]:
    """`{"result": [{"name", "enabled", ...}]}` → name → enabled; ValueError when malformed."""
    result = payload.get("result")
    if not isinstance(result, list):
        raise ValueError("expected `result`, a list of settings")
    listed: dict[str, Any] = {}
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError("a setting without a name")
        if not isinstance(item.get("enabled"), bool):
            raise ValueError(f"setting {item['name']!r} without a boolean `enabled`")
        listed[item["name"]] = item["enabled"]
    return listed


def requests_per_account(settings: Sequence[TrackingSetting], use_list: bool) -> int:
    """GETs discover sends for one account (not the parent): one per setting, or the list for click and open."""
    if not use_list:
        return len(settings)
    return 1 + sum(not in_list(s) for s in settings)


class Reader:
    """Reads accounts in parallel with one client per region, all sharing the process's pacer."""

    def __init__(self, settings: config_mod.Settings, region: str, wanted: Sequence[TrackingSetting]) -> None:
        self.config = settings
        self.region = region
        self.wanted = list(wanted)
        self.use_list = False
        """Read click and open from `GET /v3/tracking_settings` (the parent showed the key may)."""
        self._clients: dict[str, SendGridClient] = {}
        self._lock = threading.Lock()

    def client(self, region: str) -> SendGridClient:
        """The client for a region; ConfigurationError when that region's host is not configured."""
        with self._lock:
            if region not in self._clients:
                self._clients[region] = SendGridClient(
                    self.config.api_key,
                    config_mod.base_url_for(self.config, region),
                    request_timeout=self.config.request_timeout,
                    retry_budget=self.config.retry_budget,
                    max_requests_per_second=self.config.max_requests_per_second,
                )
            return self._clients[region]

    def hosts(self) -> list[str]:
        return sorted(client.base_url for client in self._clients.values())

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def other(self, region: str) -> str:
        return next(r for r in config_mod.REGIONS if r != region)

    # -- the parent and the lists --------------------------------------------------------------

    def parent(self, discovery: Discovery) -> None:
        """Read the parent's settings; a 403 there means the key lacks the setting's read scope."""
        parent = Account(PARENT, self.region, None)
        values: dict[str, dict[str, Any]] = {}
        for setting in self.wanted:
            try:
                values[setting.name] = self.client(self.region).get(setting.path, None, validate=setting.parse)
            except PermissionDeniedError:
                scope = setting.scope("read")
                discovery.skipped.append(
                    Skipped(
                        None,
                        f"the key may not read {setting.title} (403): it lacks the {scope} scope, so no account's "
                        f"{camel(setting.name)} is declared",
                        f"add the {scope} scope to the key, or leave {setting.name} out of --settings",
                        setting=setting.name,
                        kind="scope",
                    )
                )
        discovery.settings = [s for s in self.wanted if s.name in values]
        if sum(in_list(s) for s in discovery.settings) >= 2:  # one list GET then saves a request per account
            try:
                self.client(self.region).get(LIST_PATH, None, validate=_listed)
                self.use_list = True
            except PermissionDeniedError:  # no tracking_settings.read: one GET per setting
                self.use_list = False
        if not discovery.settings:
            scopes = ", ".join(s.scope("read") for s in self.wanted)
            raise PipelineError(
                "the key may read none of the settings asked for (403 for each on the parent account)",
                f"give the key the read scopes ({scopes})",
                kind="sendgrid",
            )
        discovery.found[parent] = values

    def subusers(self, discovery: Discovery, each: Callable[[Account], None]) -> None:
        """List the parent's subusers page by page, in both regions; `each` gets every enabled one."""
        client = self.client(self.region)
        offset, seen = 0, set()
        while True:
            params: dict[str, str | int] = {
                "limit": SUBUSERS_PAGE,
                "offset": offset,
                "region": "all",
                "include_region": "true",
            }
            try:
                page = client.get_list(SUBUSERS_PATH, params, validate=_subuser_page)
            except PermissionDeniedError:
                discovery.skipped.append(
                    Skipped(
                        None,
                        f"the key may not list subusers (403): it lacks the {scope_for('GET', SUBUSERS_PATH)} scope, "
                        "so no subuser is declared",
                        f"add the {scope_for('GET', SUBUSERS_PATH)} scope to the key",
                        kind="scope",
                    )
                )
                return
            for item in page:
                account = Account(SUBUSER, item["region"], item["username"])
                if account in seen:
                    continue
                seen.add(account)
                if Account(SUBUSER, self.other(account.region), account.on_behalf_of) in seen:
                    discovery.skipped.append(
                        Skipped(
                            account,
                            f"listed in both regions; {account.name!r} cannot name two accounts in one fleet",
                            "rename one of them in SendGrid, or declare them by hand in two stacks",
                            kind="region",
                        )
                    )
                    continue
                discovery.listed[SUBUSER] = discovery.listed.get(SUBUSER, 0) + 1
                if item["disabled"]:
                    discovery.skipped.append(
                        Skipped(
                            account,
                            "disabled in SendGrid: not read, not declared",
                            "enable the subuser in SendGrid and run discover again to manage it",
                            kind="disabled",
                        )
                    )
                elif problem := on_behalf_of_problem(account.on_behalf_of):
                    discovery.skipped.append(Skipped(account, f"username {problem}", "manage it by hand", kind="value"))
                else:
                    each(account)
            if len(page) < SUBUSERS_PAGE:
                return
            offset += SUBUSERS_PAGE

    def customer_ids(self, discovery: Discovery) -> list[str]:
        """Every customer account's id (`GET /v3/partners/accounts`, page by page)."""
        client = self.client(self.region)
        ids: list[str] = []
        last: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": ACCOUNTS_PAGE, **({"offset": last} if last else {})}
            try:
                page, last = client.get_list(ACCOUNTS_PATH, params, validate=_accounts_page)
            except PermissionDeniedError:
                discovery.skipped.append(
                    Skipped(
                        None,
                        "the key may not list customer accounts (403): it lacks the "
                        f"{scope_for('GET', ACCOUNTS_PATH)} scope (the key must be a reseller's)",
                        "name the customer accounts with --account-id instead, or add the scope",
                        kind="scope",
                    )
                )
                return ids
            ids += [i for i in page if i not in ids]
            if len(page) < ACCOUNTS_PAGE or last is None:
                discovery.listed[CUSTOMER] = len(ids)
                return ids

    # -- one account ---------------------------------------------------------------------------

    def account(self, account: Account, settings: Sequence[TrackingSetting]) -> dict[str, dict[str, Any]] | Skipped:
        """Every setting of one account, or why it is skipped. SendGridError (other than 403) is fatal."""
        try:
            return self._settings_of(account, settings)
        except PermissionDeniedError:
            return self._refused(account, settings[0])

    def _answers(self, region: str, account: Account, setting: TrackingSetting) -> bool:
        try:
            self.client(region).get(setting.path, account.on_behalf_of, validate=setting.parse)
        except (PermissionDeniedError, ConfigurationError):
            return False
        return True

    def _refused(self, account: Account, setting: TrackingSetting) -> Skipped:
        """Why SendGrid refuses an account while it answers for the parent: another region, or gone."""
        other = self.other(account.region)
        if self._answers(other, account, setting):
            return Skipped(
                account,
                f"listed in {account.region}, but SendGrid answers for it only on the {other} host",
                f"check the subuser's region in SendGrid; it is declared once SendGrid lists it in {other}",
                kind="region",
            )
        return Skipped(
            account,
            "SendGrid refuses it (403) while it answers for the parent account: deleted since it was listed, or "
            "not an account of this key's parent",
            "run discover again; if it is still listed, check the account in SendGrid",
            kind="gone",
        )

    def customer(self, account_id: str, settings: Sequence[TrackingSetting]) -> tuple[Account, Any]:
        """A customer account's region (the stack's, else the other) and its settings, or why it is skipped."""
        obo = ACCOUNT_ID_PREFIX + account_id
        first = Account(CUSTOMER, self.region, obo)
        if problem := on_behalf_of_problem(obo):
            return first, Skipped(first, f"on_behalf_of {problem}", "check the account id", kind="value")
        for region in (self.region, self.other(self.region)):
            account = Account(CUSTOMER, region, obo)
            if region == self.region or self._answers(region, account, settings[0]):
                try:
                    return account, self._settings_of(account, settings)
                except PermissionDeniedError:
                    continue
        return first, Skipped(
            first,
            f"SendGrid refuses customer account {account_id} in both regions (403): not a customer account of this "
            "key's account, or deleted",
            "check the id: GET /v3/partners/accounts (--list-accounts) lists them",
            kind="gone",
        )

    def _settings_of(self, account: Account, settings: Sequence[TrackingSetting]) -> dict[str, dict[str, Any]]:
        """One GET per setting; with `use_list`, one `GET /v3/tracking_settings` for those it answers whole."""
        client = self.client(account.region)
        values: dict[str, dict[str, Any]] = {}
        if self.use_list:
            listed = client.get(LIST_PATH, account.on_behalf_of, validate=_listed)
            for setting in settings:
                if in_list(setting) and setting.name in listed:
                    values[setting.name] = {f.name: None for f in setting.fields} | {"enabled": listed[setting.name]}
        for setting in settings:
            if setting.name not in values:
                values[setting.name] = client.get(setting.path, account.on_behalf_of, validate=setting.parse)
        return {setting.name: values[setting.name] for setting in settings}


def discover(
    reader: Reader,
    *,
    account_ids: Sequence[str] = (),
    list_accounts: bool = False,
    jobs: int = DEFAULT_JOBS,
    clock: Callable[[], float] = time.time,
) -> Discovery:
    """Read the parent, its subusers and the customer accounts asked for, in parallel. Sends only GETs.

    Raises PipelineError (nothing readable) or SendGridError (SendGrid failing beyond the retry budget).
    """
    discovery = Discovery(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(clock())), [])
    reader.parent(discovery)
    settings = discovery.settings
    lock = threading.Lock()
    futures: list[Future[None]] = []

    def keep(account: Account, result: dict[str, dict[str, Any]] | Skipped) -> None:
        with lock:
            if isinstance(result, Skipped):
                discovery.skipped.append(result)
            else:
                discovery.found[account] = result

    def subuser(account: Account) -> None:
        keep(account, reader.account(account, settings))

    def customer(account_id: str) -> None:
        keep(*reader.customer(account_id, settings))

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="discover") as pool:
        try:
            reader.subusers(discovery, lambda account: futures.append(pool.submit(subuser, account)))
            ids = list(dict.fromkeys([*account_ids, *(reader.customer_ids(discovery) if list_accounts else [])]))
            futures.extend(pool.submit(customer, account_id) for account_id in ids)
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    # Threads finish in any order: the report is in the fleet's (what concerns every account first).
    discovery.skipped.sort(
        key=lambda s: (s.account is not None, s.account.sort_key() if s.account else (), s.setting or "")
    )
    return discovery


# -- the fleet file ------------------------------------------------------------------------------------


def _fleet_values(setting: TrackingSetting, live: Mapping[str, Any]) -> dict[str, Any]:
    """A setting's writable fields as the fleet declares them: camelCase; a string SendGrid leaves out is ""."""
    return {camel(f.name): ("" if live.get(f.name) is None else live[f.name]) for f in setting.writable}


def _value_problem(setting: TrackingSetting, live: Mapping[str, Any]) -> str | None:
    for f in setting.writable:
        value = live.get(f.name)
        if value is not None and (problem := f.problem(value)):
            return f"{f.name} {problem}"
    return None


@dataclass
class FleetFile:
    """The fleet document discover writes, and what it declares."""

    document: dict[str, Any]
    declared: dict[Account, dict[str, dict[str, Any]]]
    """Account → setting → the fleet's values (camelCase), as declared once `defaults` is merged in."""


def build_fleet(discovery: Discovery, stack_region: str) -> tuple[FleetFile, list[Skipped]]:
    """The fleet declaring what was read, shared values under `defaults`; and the settings left out for bad values.

    A field goes to `defaults` when its most common value is held by two accounts or more (every
    account then writes only what differs, and "" where SendGrid holds nothing but the default is set).
    """
    skipped: list[Skipped] = []
    blocks: dict[Account, dict[str, dict[str, Any]]] = {}
    for account in discovery.accounts():
        kept: dict[str, dict[str, Any]] = {}
        for setting in discovery.settings:
            live = discovery.found[account][setting.name]
            problem = _value_problem(setting, live)
            if problem:
                skipped.append(
                    Skipped(
                        account,
                        f"{setting.title} holds a value the provider would not send: {problem}",
                        f"fix it in SendGrid and run discover again, or declare {camel(setting.name)} by hand",
                        setting=setting.name,
                        kind="value",
                    )
                )
                continue
            kept[setting.name] = _fleet_values(setting, live)
        if kept:
            blocks[account] = kept

    defaults: dict[str, dict[str, Any]] = {}
    if len(blocks) >= 2:
        for setting in discovery.settings:
            held = [b[setting.name] for b in blocks.values() if setting.name in b]
            shared = {}
            for f in setting.writable:
                key = camel(f.name)
                value, count = Counter(json.dumps(block[key]) for block in held).most_common(1)[0]
                if count >= 2:
                    shared[key] = json.loads(value)
            if shared:
                defaults[setting.name] = shared

    document: dict[str, Any] = {}
    if defaults:
        document[DEFAULTS] = {camel(name): values for name, values in defaults.items()}
    subusers: list[dict[str, Any]] = []
    for account, kept in blocks.items():
        entry: dict[str, Any] = {}
        if account.kind == SUBUSER:
            entry["username"] = account.name
        elif account.kind == CUSTOMER:
            entry["accountId"] = account.name
        if account.region != stack_region:
            entry["region"] = account.region
        for setting in discovery.settings:
            default = defaults.get(setting.name)
            if setting.name not in kept:
                if default is not None:
                    entry[camel(setting.name)] = {MANAGE: False}
                continue
            own = {k: v for k, v in kept[setting.name].items() if default is None or default.get(k, ...) != v}
            if own or default is None:
                entry[camel(setting.name)] = own
        if account.kind == PARENT:
            document["parent"] = entry
        else:
            subusers.append(entry)
    if subusers:
        document["subusers"] = subusers
    return FleetFile(document, blocks), skipped


def key_id(api_key: str) -> str | None:
    """The id part of a SendGrid key (`SG.<id>.<secret>`): shown in SendGrid's list of keys, not a secret."""
    parts = api_key.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "SG" and parts[1] else None


def render_fleet(
    fleet: FleetFile, discovery: Discovery, *, stack: str, hosts: Iterable[str], api_key: str, skipped: int
) -> str:
    """The fleet file's text: a header comment (when, from where, which key's account), then the YAML."""
    kinds = Counter(account.kind for account in fleet.declared)
    known = key_id(api_key)
    who = f"API key {known} (its id; the key itself is never written)" if known else "the stack's API key (not written)"
    lines = [
        f"# What SendGrid held on {discovery.read_at}, read by `pipelines/discover --stack {stack}`",
        f"# from the account of {who}, at {' and '.join(hosts)}.",
        f"# Settings read: {', '.join(camel(s.name) for s in discovery.settings)}. Accounts: "
        f"{'the parent, ' if kinds[PARENT] else ''}{kinds[SUBUSER]} subuser(s), {kinds[CUSTOMER]} customer account(s)"
        + (f"; {skipped} left out (see the discover output)." if skipped else "."),
        "# Deploying it as it is changes nothing in SendGrid. Values shared by two accounts or more are under",
        '# `defaults`; each account lists what differs ("" where SendGrid holds nothing).',
    ]
    body = yaml.safe_dump(fleet.document, sort_keys=False, default_flow_style=None, width=10_000, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def check_round_trip(text: str, fleet: FleetFile, stack_region: str, source: str) -> list[FleetEntry]:
    """Parse the written text as a deploy would, and check it declares exactly what was read (else a bug)."""
    entries = parse_fleet(load_fleet_yaml(text, source), source=source)
    declared = {
        (entry.region or stack_region, entry.on_behalf_of, entry.setting): dict(entry.values) for entry in entries
    }
    expected = {}
    for account, kept in fleet.declared.items():
        for name, values in kept.items():
            setting = SETTINGS[name]
            expected[(account.region, account.on_behalf_of, name)] = {
                f.name: values[camel(f.name)] for f in setting.writable
            }
    if declared != expected:
        wrong = sorted(
            str(k) for k in set(declared) ^ set(expected) | {k for k in declared if declared[k] != expected.get(k)}
        )
        raise PipelineError(
            f"the fleet written does not declare what was read ({', '.join(wrong[:5])})", None, kind="internal"
        )
    return entries


# -- --diff ----------------------------------------------------------------------------------------------


@dataclass
class Differences:
    not_in_fleet: list[dict[str, Any]] = field(default_factory=list)
    not_in_sendgrid: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.not_in_fleet) + len(self.not_in_sendgrid) + len(self.drift)


def compare(entries: Sequence[FleetEntry], discovery: Discovery, stack_region: str) -> Differences:
    """What SendGrid holds against what the fleet declares: accounts on one side only, and drifted fields."""
    declared: dict[tuple[str, str | None], list[FleetEntry]] = {}
    for entry in entries:
        declared.setdefault((entry.region or stack_region, entry.on_behalf_of), []).append(entry)
    found = {(a.region, a.on_behalf_of): a for a in discovery.found}
    skipped = {(s.account.region, s.account.on_behalf_of): s for s in discovery.skipped if s.account is not None}
    read = {s.name for s in discovery.settings}
    diff = Differences()
    for key, account in sorted(found.items(), key=lambda item: item[1].sort_key()):
        if key not in declared:
            diff.not_in_fleet.append({"account": account.label, "kind": account.kind, "note": None})
    for key, declared_entries in sorted(declared.items(), key=lambda item: (item[0][1] or "", item[0][0])):
        label = resource_id(*key)
        if key not in found:
            region, obo = key
            other = next(r for r in config_mod.REGIONS if r != region)
            why = skipped.get(key)
            if why is not None:
                note = why.reason
            elif (other, obo) in found:
                note = f"SendGrid has it in {other}, not {region}: fix its region in the fleet"
            else:
                note = "SendGrid does not list it (deleted, never created, or not this key's account)"
            diff.not_in_sendgrid.append(
                {"account": label, "kind": "parent" if obo is None else "account", "note": note}
            )
            continue
        account = found[key]
        for entry in declared_entries:
            if entry.setting not in read:
                continue
            live = discovery.found[account][entry.setting]
            for name, desired in entry.values.items():
                if not same(live.get(name), desired):
                    diff.drift.append(
                        {
                            "account": label,
                            "region": account.region,
                            "on_behalf_of": account.on_behalf_of,
                            "setting": entry.setting,
                            "resource": entry.name,
                            "field": name,
                            "recorded": None,
                            "live": live.get(name),
                            "desired": desired,
                            "note": None,
                        }
                    )
    return diff


# -- the command -----------------------------------------------------------------------------------------


def stack_config(run: Run) -> dict[str, Any]:
    """The stack's config values, secrets decrypted (`pulumi config --json --show-secrets`); never printed."""
    extra = ["--config-file", str(run.config_file)] if run.config_file else []
    result = run.pulumi("config", "--json", "--show-secrets", *extra)
    if result.returncode != 0:
        raise PipelineError(
            f"could not read the config of stack {run.stack}: {result.stderr.strip()}", None, kind="stack"
        )
    try:
        data = json.loads(result.stdout or "{}")
    except ValueError:
        raise PipelineError(f"`pulumi config --json` of {run.stack} is not JSON", None, kind="engine") from None
    return {key: item.get("value") for key, item in data.items() if isinstance(item, dict)}


def _settings(text: str) -> list[TrackingSetting]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    by_name = {**SETTINGS, **{camel(name): s for name, s in SETTINGS.items()}}
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of {', '.join(SETTINGS)}")
    return list(dict.fromkeys(by_name[n] for n in names))


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="pipelines/discover", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", help="stack name (default: $PULUMI_STACK, else dev)")
    parser.add_argument("--project-dir", help="the Pulumi project (default: this repository)")
    parser.add_argument("--emulator", action="store_true", help="read the local emulator instead of SendGrid")
    parser.add_argument(
        "--settings",
        type=_settings,
        default=list(SETTINGS.values()),
        help="the settings to read: click, open, subscription, google_analytics (default: all four)",
    )
    parser.add_argument("--output", metavar="PATH", help="the fleet file (default: the stack's fleetFile)")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    parser.add_argument("--diff", action="store_true", help="compare with the fleet file instead; write nothing")
    parser.add_argument(
        "--account-id", action="append", default=[], metavar="ID", help="a customer account to read too (repeatable)"
    )
    parser.add_argument(
        "--list-accounts", action="store_true", help="read every customer account (GET /v3/partners/accounts)"
    )
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"reads at once (default {DEFAULT_JOBS})")
    parser.add_argument("--format", choices=FORMATS, default="json")
    parser.add_argument("--markdown-file", metavar="PATH")
    return parser


def _fleet_path(run: Run, config: Mapping[str, Any], output: str | None) -> Path:
    if output:
        return (Path.cwd() / output).resolve()
    namespace = run.project_name or "sendgrid-click-tracking"
    fleet_file = config.get(f"{namespace}:{FLEET_FILE}")
    if not isinstance(fleet_file, str) or not fleet_file.strip():
        raise PipelineError(
            f"stack {run.stack} has no {namespace}:{FLEET_FILE} (its fleet is inline in stack config, or not set)",
            "name the file to write with --output, then set it: "
            f"pulumi config set {namespace}:{FLEET_FILE} <path> --stack {run.stack}",
            kind="arguments",
        )
    return run.project_dir / fleet_file


def run_discover(run: Run, args: argparse.Namespace, output: Output) -> int:
    """Discover (or --diff) against the stack's SendGrid (or the emulator); print one output."""
    config = stack_config(run)
    own = {key: value for key, value in config.items() if key in config_mod.CONFIG_KEYS}
    try:
        resolved = config_mod.resolve(own, run.env)
        stack_region = config_mod.resolve_region(own, run.env)
    except ConfigurationError as exc:
        raise PipelineError(exc.summary, exc.hint_text, kind="configuration") from None
    path = _fleet_path(run, config, args.output)
    shown = os.path.relpath(path, run.project_dir) if path.is_relative_to(run.project_dir) else str(path)
    entries: list[FleetEntry] = []
    if args.diff:
        try:
            entries = parse_fleet(load_fleet_yaml(path.read_text(encoding="utf-8"), shown), source=shown)
        except OSError as exc:
            raise PipelineError(
                f"cannot read {shown}: {exc.strerror}", "check --output or the stack's fleetFile"
            ) from None
        except FleetConfigError as exc:
            raise PipelineError(str(exc), f"fix {shown}", kind="program") from None
    elif path.exists() and not args.force:
        raise PipelineError(
            f"{shown} exists; discover never overwrites a file unless told to",
            "pass --force to overwrite it, --output to write elsewhere, or --diff to compare with it",
            kind="arguments",
        )

    customers = list(args.account_id)
    if args.diff:  # the customer accounts the fleet declares are read too: else they would all look missing
        customers += [
            (e.on_behalf_of or "").removeprefix(ACCOUNT_ID_PREFIX)
            for e in entries
            if (e.on_behalf_of or "").startswith(ACCOUNT_ID_PREFIX)
        ]
    reader = Reader(resolved, stack_region, args.settings)
    try:
        discovery = discover(reader, account_ids=customers, list_accounts=args.list_accounts, jobs=args.jobs)
        fleet, bad_values = build_fleet(discovery, stack_region)
        discovery.skipped += bad_values
        text = render_fleet(
            fleet,
            discovery,
            stack=run.stack,
            hosts=reader.hosts(),
            api_key=resolved.api_key,
            skipped=len(discovery.skipped),
        )
        check_round_trip(text, fleet, stack_region, shown)
    except SendGridError as exc:
        raise PipelineError(exc.summary, exc.hint_text, kind="sendgrid") from None
    finally:
        reader.close()

    diff = compare(entries, discovery, stack_region) if args.diff else Differences()
    written = None
    if not args.diff:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written = shown
    state = [
        {
            "resource": resource_name(setting, account.base),
            "setting": setting.name,
            "account": account.label,
            "region": account.region,
            "on_behalf_of": account.on_behalf_of,
            "on_delete": "restore",
            "values": dict(discovery.found[account][setting.name]),
            "originals": {},
            "managed_fields": [f.name for f in setting.writable],
        }
        for account, kept in fleet.declared.items()
        for setting in discovery.settings
        if setting.name in kept
    ]
    exit_code = EXIT_DRIFT if diff.count() else EXIT_OK
    out = payload(
        COMMAND,
        run.stack,
        run.mode,
        exit_code=exit_code,
        project=run.project_name,
        counts={"checked": sum(len(v) for v in discovery.found.values()), "drifted": diff.count()},
        drift=diff.drift,
        state=state,
        diagnostics=[
            {
                "severity": "warning",
                "resource": s.account.label if s.account else None,
                "message": f"{s.reason}. Hint: {s.hint}",
            }
            for s in discovery.skipped
        ],
    )
    out["discovery"] = {
        "fleet_file": shown,
        "written": written is not None,
        "diff": bool(args.diff),
        "read_at": discovery.read_at,
        "settings": [s.name for s in discovery.settings],
        "accounts": len(fleet.declared),
        "listed": {"subusers": discovery.listed.get(SUBUSER, 0), "customers": discovery.listed.get(CUSTOMER, 0)},
        "skipped": [s.describe() for s in discovery.skipped],
        "not_in_fleet": diff.not_in_fleet,
        "not_in_sendgrid": diff.not_in_sendgrid,
    }
    emit(out, output)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    output = Output(guess_option(argv, "--format", FORMATS) or "json", guess_option(argv, "--markdown-file"))
    stack = guess_option(argv, "--stack")
    project = project_name(project_path(guess_option(argv, "--project-dir")))
    mode = "emulator" if "--emulator" in argv else "sendgrid"
    try:
        args = _parser().parse_args(argv)
        stack = stack_name(args.stack)
        output = Output(args.format, args.markdown_file)
        with environment(args.stack, args.project_dir, emulator=args.emulator) as run:
            return run_discover(run, args, output)
    except Exception as exc:  # a bad input or a bug here: either way the documented output, not a traceback
        emit(payload(COMMAND, stack, mode, exit_code=EXIT_ERROR, project=project, errors=[failure(exc)]), output)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
