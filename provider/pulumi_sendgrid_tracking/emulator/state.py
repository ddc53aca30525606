"""The emulator's state: worlds, accounts, settings, keys, rate limits, faults and the log.

A world (global or EU) has a parent account, subusers (addressed by username) and customer
accounts (addressed by `account-id <id>`); the two kinds never stand for each other.
The parent's lists span both worlds, as SendGrid's do: `GET /v3/subusers` lists every subuser with
the region it lives in (its world), `GET /v3/partners/accounts` every customer account.
Plain Python that never sees HTTP. One lock guards everything, so concurrent requests
never lose an update.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import (
    AccessForbidden,
    AuthorizationRequired,
    InvalidGrant,
    InvalidValue,
    ResourceNotFound,
    ValidationFailed,
)

WORLDS = ("global", "eu")
DEFAULT_API_KEY = "SG.emulator-local-dev-key"
DEFAULT_RATE_LIMIT = 600
DEFAULT_RATE_WINDOW = 60.0
MAX_DELAY = 3600.0
"""The most seconds latency, jitter or a hang may add to one answer."""
MAX_RATE_WINDOW = 86400.0

# Setting kind → field → type, as in the official spec's schemas.
FIELDS: Mapping[str, Mapping[str, type]] = {
    "click": {"enabled": bool, "enable_text": bool},
    "open": {"enabled": bool},
    "subscription": {
        "enabled": bool,
        "html_content": str,
        "landing": str,
        "plain_content": str,
        "replace": str,
        "url": str,
    },
    "google_analytics": {
        "enabled": bool,
        "utm_campaign": str,
        "utm_content": str,
        "utm_medium": str,
        "utm_source": str,
        "utm_term": str,
    },
}
# Fields a PATCH may change (click's enable_text is not a documented request field).
WRITABLE: Mapping[str, tuple[str, ...]] = {
    "click": ("enabled",),
    "open": ("enabled",),
    "subscription": tuple(FIELDS["subscription"]),
    "google_analytics": tuple(FIELDS["google_analytics"]),
}
DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "click": {"enabled": True, "enable_text": False},
    "open": {"enabled": True},
    # `url` is a URI in the spec, so it is absent until one is set.
    "subscription": {
        "enabled": False,
        "html_content": "",
        "landing": "",
        "plain_content": "",
        "replace": "",
    },
    "google_analytics": {
        "enabled": False,
        "utm_campaign": "",
        "utm_content": "",
        "utm_medium": "",
        "utm_source": "",
        "utm_term": "",
    },
}
TITLES = {
    "click": ("Click Tracking", "lets you track clicks"),
    "google_analytics": ("Google Analytics", "lets you track activity on your site with Google Analytics"),
    "open": ("Open Tracking", "lets you track opens"),
    "subscription": ("Subscription Tracking", "adds unsubscribe links to your mail"),
}
SUBUSERS_SCOPE = "subusers.read"
"""GET /v3/subusers. The scope's name is SendGrid's (its API key permissions list)."""
PARTNERS_SCOPE = "partners.accounts.read"
"""GET /v3/partners/accounts. SendGrid documents no scope for it: this name is the emulator's guess."""
ALL_SCOPES = frozenset(
    ["tracking_settings.read", SUBUSERS_SCOPE, PARTNERS_SCOPE]
    + [f"tracking_settings.{kind}.{verb}" for kind in FIELDS for verb in ("read", "update")]
)
REGION_FILTERS = ("all", *WORLDS)
DEFAULT_SUBUSERS_LIMIT = 100
"""GET /v3/subusers without `limit`: SendGrid says "the default page size" and not which; 100 is a guess."""
DEFAULT_ACCOUNTS_LIMIT, MAX_ACCOUNTS_LIMIT = 10, 100
"""GET /v3/partners/accounts `limit`: default and maximum, from tsg_account_provisioning_v3.yaml."""
FAULT_KINDS = (
    "429",
    "429-no-reset",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "hang",
    "malformed",
)


PARENT, SUBUSER, CUSTOMER = "parent", "subuser", "customer"
_Seeded = tuple[dict[str, dict[str, Any]], bool]
"""An account of a seed: its settings, and whether it is disabled (subusers only)."""
ACCOUNT_ID_PREFIX = "account-id "


@dataclass
class Account:
    """The parent account, a subuser or a customer account, with its tracking settings."""

    kind: str
    """`parent`, `subuser` or `customer`."""
    name: str
    """A subuser's username, a customer account's id, or "parent"."""
    settings: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULTS.items()})
    disabled: bool = False
    """A disabled subuser: listed with `disabled: true`; its settings still answer (SendGrid does not say)."""
    number: int = 0
    """The order in which accounts were added (a subuser's `id` in the list; the lists' order)."""

    @property
    def on_behalf_of(self) -> str | None:
        """The on-behalf-of header value that names this account (None for the parent)."""
        if self.kind == SUBUSER:
            return self.name
        if self.kind == CUSTOMER:
            return ACCOUNT_ID_PREFIX + self.name
        return None


@dataclass
class World:
    """One region (global or EU): a parent account, its subusers and its customer accounts.

    Worlds share nothing. Subusers are addressed by username only (`on-behalf-of: alice`),
    customer accounts by id only (`on-behalf-of: account-id 4242`).
    """

    name: str
    parent: Account = field(default_factory=lambda: Account(PARENT, "parent"))
    subusers: dict[str, Account] = field(default_factory=dict)
    customers: dict[str, Account] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=lambda: {"subusers": set(), "customers": set()})
    """Accounts deleted through the admin API, so a seed applied later does not bring them back."""


@dataclass(frozen=True)
class ApiKey:
    key: str
    scopes: frozenset[str]


@dataclass
class Fault:
    """Answer the next `count` matching requests with a fault instead of normally."""

    kind: str
    count: int = 1
    method: str | None = None
    path: str | None = None
    account: str | None = None
    """An on-behalf-of value (a subuser's username, `account-id <id>`), or "" for the parent account; None = any."""
    world: str | None = None
    hang_seconds: float = 5.0
    apply: bool = False
    """Process the request (change state) before answering with the fault (a lost answer)."""

    def __post_init__(self) -> None:
        """Refuse a fault that could never match or would break every request: InvalidValue naming the field."""
        if self.kind not in FAULT_KINDS:
            raise InvalidValue("kind", f"must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        self.count = check_count("count", self.count)
        for name in ("method", "path", "account"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidValue(name, f"must be a string (or null for any), got {json_type(value)}")
        if self.world is not None and self.world not in WORLDS:
            raise InvalidValue("world", f"must be one of {', '.join(WORLDS)} (or null for any), got {self.world!r}")
        self.hang_seconds = check_seconds("hang_seconds", self.hang_seconds)
        if not isinstance(self.apply, bool):
            raise InvalidValue("apply", f"must be true or false, got {json_type(self.apply)}")

    def matches(self, world: str, method: str, path: str, account: str | None) -> bool:
        return (
            self.count > 0
            and (self.world is None or self.world == world)
            and (self.method is None or self.method == method)
            and (self.path is None or self.path == path)
            and (self.account is None or self.account == (account or ""))
        )


@dataclass(frozen=True)
class LogEntry:
    """One request as the emulator saw it. The Authorization header is never stored."""

    seq: int
    time: float
    world: str
    method: str
    path: str
    on_behalf_of: str | None
    status: int
    fault: str | None
    body: Any = None
    changed: bool = False
    """Whether this request changed a stored setting (an effective change)."""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int


class RateLimiter:
    """A fixed window per key: `limit` requests per `window` seconds; Reset is epoch seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> RateDecision:
        now = self._clock()
        start = math.floor(now / self.window) * self.window
        window_start, used = self._windows.get(key, (start, 0))
        if window_start != start:
            window_start, used = start, 0
        reset = math.ceil(window_start + self.window)
        if used >= self.limit:
            return RateDecision(False, self.limit, 0, reset)
        used += 1
        self._windows[key] = (window_start, used)
        return RateDecision(True, self.limit, self.limit - used, reset)


def check_count(field: str, value: Any) -> int:
    """A whole number of at least 1 (a fault's count, a rate limit); InvalidValue otherwise."""
    if type(value) is not int or value < 1:
        raise InvalidValue(field, f"must be a whole number of at least 1, got {_shown(value)}")
    return value


def check_seconds(field: str, value: Any, *, above_zero: bool = False, maximum: float = MAX_DELAY) -> float:
    """A finite number of seconds from 0 (or above 0) to `maximum`; InvalidValue otherwise."""
    low = "above 0" if above_zero else "from 0"
    if (
        type(value) not in (int, float)
        or not math.isfinite(value)
        or value < 0
        or (above_zero and value == 0)
        or value > maximum
    ):
        raise InvalidValue(field, f"must be a number of seconds {low} to {maximum:g}, got {_shown(value)}")
    return float(value)


def _shown(value: Any) -> str:
    """A value for a message: numbers as written, anything else with its JSON type (`the string '2'`)."""
    if type(value) in (int, float):
        return repr(value)
    return f"the {json_type(value)} {json.dumps(value) if isinstance(value, str) else repr(value)}"


# RFC 3986 characters: unreserved, reserved and '%' (which must start a %XX escape).
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
URL_HINT = 'url must be an absolute http or https URL, e.g. https://example.com/unsubscribe (or "" to clear it)'


def url_problem(value: str) -> str | None:
    """Why `value` is not an acceptable subscription `url`, or None. "" is accepted: it clears the url."""
    if value == "":
        return None
    if not _URI_CHARS.fullmatch(value) or _BAD_ESCAPE.search(value):
        return URL_HINT + "; percent-encode spaces and other special characters"
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return URL_HINT + "; the port is not a number from 0 to 65535"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return URL_HINT
    return None


def _type_name(expected: type) -> str:
    return "boolean" if expected is bool else "string"


def value_problems(kind: str, values: Mapping[str, Any], *, writable_only: bool) -> list[tuple[str, str]]:
    """(field, message) for each known field of `values` with the wrong type or a bad url.

    Unknown fields are not problems: the caller decides whether to ignore or reject them. With
    `writable_only`, fields a PATCH cannot change (click's enable_text) are skipped, unchecked.
    """
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        expected = FIELDS[kind].get(name)
        if expected is None or (writable_only and name not in WRITABLE[kind]):
            continue
        if type(value) is not expected:
            problems.append((name, f"{name} must be a {_type_name(expected)}, got {json_type(value)}"))
        elif name == "url" and isinstance(value, str):
            problem = url_problem(value)
            if problem:
                problems.append((name, problem))
    return problems


def json_type(value: Any) -> str:
    """The JSON name of a value's type: boolean, number, string, null, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def validate_patch(kind: str, body: Any) -> dict[str, Any]:
    """The fields a PATCH body changes. Raises ValidationFailed naming every bad field.

    The body must be a JSON object. Each writable field must have the spec's type (boolean or
    string), and subscription's `url` must be an absolute http(s) URL or "". Unknown fields and
    click's read-only `enable_text` are ignored, unchecked: SendGrid documents no rejection of
    them, so the emulator assumes it drops them (the request log still shows what was sent).
    """
    if not isinstance(body, dict):
        raise ValidationFailed([(None, f"request body must be a JSON object, got {json_type(body)}")])
    problems = value_problems(kind, body, writable_only=True)
    if problems:
        raise ValidationFailed(problems)
    return {name: value for name, value in body.items() if name in WRITABLE[kind]}


def unsubscribe_target(subscription: Mapping[str, Any]) -> dict[str, Any]:
    """Where a recipient who clicks the unsubscribe link goes, given a subscription setting.

    SendGrid does not document which wins when both `url` and `landing` are set; the emulator
    assumes a non-empty `url` does (the custom URL replaces the hosted landing page).
    """
    if not subscription.get("enabled"):
        return {"kind": "none", "reason": "subscription tracking is disabled: mail carries no unsubscribe link"}
    if subscription.get("url"):
        return {"kind": "url", "url": subscription["url"]}
    if subscription.get("landing"):
        return {"kind": "landing", "html": subscription["landing"]}
    return {"kind": "default", "reason": "neither url nor landing is set: SendGrid's own landing page"}


_USERNAME = re.compile(r"[!-~]+")
"""Printable ASCII without whitespace: what an HTTP header carries intact (a username may be an email address)."""
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9]+")
ACCOUNT_ID_EXAMPLE = "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"
"""SendGrid's customer account IDs: letters and digits (`sg2a2bcd3ef4ab5c67d8efab91c01de2fa` in the spec)."""


def _check_name(kind: str, name: Any) -> str:
    """A subuser's username or a customer account's id, checked; InvalidValue (a ValueError) saying what is wrong."""
    if kind == SUBUSER:
        if not isinstance(name, str) or not _USERNAME.fullmatch(name):
            raise InvalidValue("username", f"must be printable ASCII without whitespace, got {name!r}")
        if name.startswith("account-id"):
            raise InvalidValue("username", f"{name!r} would be read as a customer account; choose another")
        return name
    if not isinstance(name, str) or not _ACCOUNT_ID.fullmatch(name):
        raise InvalidValue(
            "account_id",
            f"must be ASCII letters and digits, as SendGrid shows it (e.g. {ACCOUNT_ID_EXAMPLE}), got {name!r}",
        )
    return name


def fresh_account_id(number: int) -> str:
    """A customer account ID in SendGrid's form, the same for the same number: `sg` and 32 hex digits."""
    return "sg" + hashlib.sha256(f"customer-{number}".encode()).hexdigest()[:32]


def _settings_from(where: str, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validated settings of one account in a seed or snapshot: kind → field → value."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: must be an object of settings (click, open, subscription, google_analytics)")
    settings: dict[str, dict[str, Any]] = {}
    for kind, values in data.items():
        if kind not in FIELDS:
            raise ValueError(f"{where}.{kind}: unknown setting; use one of {', '.join(FIELDS)}")
        if not isinstance(values, Mapping):
            raise ValueError(f"{where}.{kind}: must be an object of fields")
        unknown = sorted(set(values) - set(FIELDS[kind]))
        if unknown:
            raise ValueError(f"{where}.{kind}: unknown fields {unknown}; allowed: {', '.join(FIELDS[kind])}")
        problems = value_problems(kind, values, writable_only=False)
        if problems:
            name, message = problems[0]
            raise ValueError(f"{where}.{kind}.{name}: {message}")
        settings[kind] = dict(values)
    return settings


def _apply(current: dict[str, Any], changes: Mapping[str, Any]) -> bool:
    """Apply field changes to one setting; "" for url removes it. Whether anything changed."""
    before = dict(current)
    for name, value in changes.items():
        if name == "url" and value == "":
            current.pop("url", None)  # the spec's url is a URI: no url rather than an empty one
        else:
            current[name] = value
    return current != before


OPTIONS = ("latency", "jitter", "rate_limit", "rate_window")
"""What `configure` (and the admin API's PUT /__emulator/config) changes at run time."""


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The run-time options given, checked: InvalidValue for the first bad one."""
    checks: dict[str, Callable[[Any], Any]] = {
        "latency": lambda v: check_seconds("latency", v),
        "jitter": lambda v: check_seconds("jitter", v),
        "rate_limit": lambda v: check_count("rate_limit", v),
        "rate_window": lambda v: check_seconds("rate_window", v, above_zero=True, maximum=MAX_RATE_WINDOW),
    }
    return {name: checks[name](value) for name, value in options.items()}


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not _USERNAME.fullmatch(key):
        raise InvalidValue("key", "must be a non-empty string of printable ASCII without whitespace")
    return key


class EmulatorState:
    """Everything the emulator knows. Every public method is atomic."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window: float = DEFAULT_RATE_WINDOW,
        latency: float = 0.0,
        jitter: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._initial_keys = tuple(_check_key(key) for key in api_keys)
        options = _check_options(
            {"latency": latency, "jitter": jitter, "rate_limit": rate_limit, "rate_window": rate_window}
        )
        self.latency: float = options["latency"]
        self.jitter: float = options["jitter"]
        self.rate_limit: int = options["rate_limit"]
        self.rate_window: float = options["rate_window"]
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a parent account per world, no subusers or customers, default settings, empty log."""
        with self._lock:
            self.worlds = {name: World(name) for name in WORLDS}
            self.keys = {key: ApiKey(key, ALL_SCOPES) for key in self._initial_keys}
            self.limiter = RateLimiter(self.rate_limit, self.rate_window, self._clock)
            self.faults: list[Fault] = []
            self.log: list[LogEntry] = []
            self._changed: set[int] = set()
            self._next_customer_id = 1
            self._next_number = 1000

    def configure(self, **options: Any) -> None:
        """Change latency, jitter, rate_limit or rate_window at run time (None: keep it).

        All are checked before any changes (InvalidValue naming the first bad one), so a refused call
        leaves the emulator as it was.
        """
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InvalidValue(unknown[0], f"is not an option; the options are {', '.join(OPTIONS)}")
        checked = _check_options({name: value for name, value in options.items() if value is not None})
        with self._lock:
            for name, value in checked.items():
                setattr(self, name, value)
            self.limiter = RateLimiter(self.rate_limit, self.rate_window, self._clock)

    def add_key(self, key: str, scopes: Iterable[str] | None = None) -> None:
        """Accept `key`, with `scopes` (a list of scope names; None: every tracking settings scope)."""
        key = _check_key(key)
        if scopes is not None:
            if isinstance(scopes, str | bytes) or not isinstance(scopes, Iterable):
                raise InvalidValue(
                    "scopes", f"must be a list of scope names (or null for all), got {json_type(scopes)}"
                )
            scopes = list(scopes)
            if not all(isinstance(scope, str) for scope in scopes):
                raise InvalidValue("scopes", "must be a list of scope names (strings)")
        with self._lock:
            self.keys[key] = ApiKey(key, frozenset(scopes) if scopes is not None else ALL_SCOPES)

    def world(self, name: Any) -> World:
        """The world named `name`; InvalidValue (a ValueError) for anything but global or eu."""
        if not isinstance(name, str) or name not in self.worlds:
            raise InvalidValue("world", f"must be one of {', '.join(WORLDS)}, got {name!r}")
        return self.worlds[name]

    def add_subuser(self, world: str, username: str, *, disabled: bool = False, **click: bool) -> Account:
        """Add (or replace) a subuser with default settings, click's fields overridden by `click`.

        A subuser is addressed by its username only (`on-behalf-of: <username>`); `disabled` lists it
        as disabled (`GET /v3/subusers`).
        """
        if "account_id" in click:
            raise TypeError(
                "add_subuser() takes no account_id: a subuser is addressed by username only; "
                "use add_customer(world, account_id) for a customer account"
            )
        with self._lock:
            w = self.world(world)
            if not isinstance(disabled, bool):
                raise ValueError(f"disabled must be true or false, got {disabled!r}")
            account = Account(SUBUSER, _check_name(SUBUSER, username), disabled=disabled, number=self._number())
            _apply(account.settings["click"], self._click_values(click))
            w.subusers[username] = account
            w.deleted["subusers"].discard(username)
            return account

    def add_customer(self, world: str, account_id: str | None = None, **click: bool) -> Account:
        """Add (or replace) a customer account; a fresh id when `account_id` is None.

        A customer account is addressed by its id only (`on-behalf-of: account-id <id>`).
        """
        with self._lock:
            w = self.world(world)
            if account_id is None:
                taken = {i for v in self.worlds.values() for i in (*v.customers, *v.deleted["customers"])}
                while fresh_account_id(self._next_customer_id) in taken:
                    self._next_customer_id += 1
                account_id = fresh_account_id(self._next_customer_id)
                self._next_customer_id += 1
            account = Account(CUSTOMER, _check_name(CUSTOMER, account_id), number=self._number())
            _apply(account.settings["click"], self._click_values(click))
            w.customers[account_id] = account
            w.deleted["customers"].discard(account_id)
            return account

    def _number(self) -> int:
        with self._lock:
            self._next_number += 1
            return self._next_number

    @staticmethod
    def _click_values(click: Mapping[str, Any]) -> dict[str, Any]:
        return _settings_from("account", {"click": dict(click)})["click"]

    def delete_subuser(self, world: str, username: str) -> None:
        """Delete a subuser: from now on it is answered exactly as an unknown one (403).

        Raises ResourceNotFound if the world has no such subuser.
        """
        with self._lock:
            w = self.world(world)
            if w.subusers.pop(username, None) is None:
                raise ResourceNotFound(f"no subuser {username!r} in the {world} world", "username")
            w.deleted["subusers"].add(username)

    def delete_customer(self, world: str, account_id: str) -> None:
        """Delete a customer account: from now on `account-id <id>` is answered as an unknown one (403)."""
        with self._lock:
            w = self.world(world)
            if w.customers.pop(account_id, None) is None:
                raise ResourceNotFound(f"no customer account {account_id!r} in the {world} world", "account_id")
            w.deleted["customers"].add(account_id)

    def seed(self, data: Mapping[str, Any], *, missing_only: bool = False) -> None:
        """Load accounts and settings; validated whole before anything changes (ValueError).

        Shape: `{"global"|"eu": {"parent": SETTINGS, "subusers": {username: SETTINGS},
        "customers": {account_id: SETTINGS}}}`, SETTINGS being `{"click": {"enabled": true}, ...}`;
        a subuser's SETTINGS may also say `"disabled": true`.
        With `missing_only` (a seed over a saved world), only accounts the world lacks and never
        deleted are added, and nothing that exists is changed.
        """
        plan = self._seed_plan(data)
        with self._lock:
            for world_name, (parent, subusers, customers) in plan.items():
                w = self.worlds[world_name]
                if not missing_only:
                    for kind, values in parent.items():
                        _apply(w.parent.settings[kind], values)
                for group, kind, accounts in (("subusers", SUBUSER, subusers), ("customers", CUSTOMER, customers)):
                    existing: dict[str, Account] = getattr(w, group)
                    for name, (settings, disabled) in accounts.items():
                        if missing_only and (name in existing or name in w.deleted[group]):
                            continue
                        account = Account(kind, name, disabled=disabled, number=self._number())
                        for setting, values in settings.items():
                            _apply(account.settings[setting], values)
                        existing[name] = account
                        w.deleted[group].discard(name)

    @staticmethod
    def _seed_plan(
        data: Mapping[str, Any],
    ) -> dict[str, tuple[dict[str, dict[str, Any]], dict[str, _Seeded], dict[str, _Seeded]]]:
        if not isinstance(data, Mapping):
            raise ValueError("a seed must be an object of worlds (global, eu)")
        plan = {}
        for world_name, world_data in data.items():
            if world_name not in WORLDS:
                raise ValueError(f"unknown world {world_name!r} in seed; use one of {', '.join(WORLDS)}")
            if not isinstance(world_data or {}, Mapping):
                raise ValueError(f"{world_name}: must be an object with parent, subusers, customers")
            world_data = dict(world_data or {})  # noqa: PLW2901
            unknown = sorted(set(world_data) - {"parent", "subusers", "customers"})
            if unknown:
                raise ValueError(f"{world_name}: unknown keys {unknown}; allowed: parent, subusers, customers")
            parent = _settings_from(f"{world_name}.parent", world_data.get("parent") or {})
            groups: list[dict[str, _Seeded]] = []
            for group, kind in (("subusers", SUBUSER), ("customers", CUSTOMER)):
                accounts = {}
                for name, settings in (world_data.get(group) or {}).items():
                    where = f"{world_name}.{group}.{name}"
                    _check_name(kind, name)
                    if kind == SUBUSER and "account_id" in (settings or {}):
                        raise ValueError(
                            f"{where}.account_id: subusers are addressed by username only; "
                            f"put customer accounts under {world_name}.customers, keyed by account id"
                        )
                    values = dict(settings or {}) if isinstance(settings, Mapping) else settings
                    disabled = values.pop("disabled", False) if kind == SUBUSER and isinstance(values, dict) else False
                    if not isinstance(disabled, bool):
                        raise ValueError(f"{where}.disabled: must be true or false")
                    accounts[name] = (_settings_from(where, values or {}), disabled)
                groups.append(accounts)
            plan[world_name] = (parent, groups[0], groups[1])
        return plan

    # -- what a request goes through, in order -----------------------------------------------

    def take_fault(self, world: str, method: str, path: str, on_behalf_of: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(world, method, path, on_behalf_of):
                    fault.count -= 1
                    return copy.copy(fault)
            return None

    def authenticate(self, authorization: str | None) -> ApiKey:
        if not authorization:
            raise AuthorizationRequired()
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            key = self.keys.get(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise InvalidGrant()
        return key

    def hit_rate_limit(self, key: ApiKey) -> RateDecision:
        with self._lock:
            return self.limiter.hit(key.key)

    @staticmethod
    def authorize(key: ApiKey, scope: str) -> None:
        if scope not in key.scopes:
            raise AccessForbidden()

    def account(self, world: str, on_behalf_of: str | None) -> Account:
        """The parent account, the subuser (`<username>`) or the customer account (`account-id <id>`).

        Anything else (unknown, deleted, another world's, a subuser named by an account id) is
        403 "access forbidden" naming the on-behalf-of header.
        """
        with self._lock:
            w = self.world(world)
            if on_behalf_of is None:
                return w.parent
            if on_behalf_of.startswith(ACCOUNT_ID_PREFIX):
                found = w.customers.get(on_behalf_of[len(ACCOUNT_ID_PREFIX) :].strip())
            else:
                found = w.subusers.get(on_behalf_of)
            if found is None:
                raise AccessForbidden(field="on-behalf-of")
            return found

    # -- the API's operations ----------------------------------------------------------------

    def get_setting(self, account: Account, kind: str) -> dict[str, Any]:
        with self._lock:
            return dict(account.settings[kind])

    def update_setting(self, account: Account, kind: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change only the fields in `changes` (validated); every other field keeps its value."""
        with self._lock:
            if _apply(account.settings[kind], changes):
                self._changed.add(threading.get_ident())
            return dict(account.settings[kind])

    def take_changed(self) -> bool:
        """Whether the calling thread's request changed a setting (and forget it)."""
        with self._lock:
            ident = threading.get_ident()
            changed = ident in self._changed
            self._changed.discard(ident)
            return changed

    def list_settings(self, account: Account) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"name": kind, "title": TITLES[kind][0], "description": TITLES[kind][1], "enabled": values["enabled"]}
                for kind, values in sorted(account.settings.items())
            ]

    def list_subusers(
        self, *, username: str | None = None, region: str = "all", include_region: bool = False, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """One page of the parent's subusers in both worlds, in the order they were added.

        `region` filters (all, global or eu); `username` keeps the one subuser of that name;
        `include_region` adds each one's region (its world). Disabled subusers are listed, with
        `disabled: true`; deleted ones are not.
        """
        with self._lock:
            found = sorted(
                (account.number, world, account)
                for world, w in self.worlds.items()
                if region in ("all", world)
                for account in w.subusers.values()
                if username is None or account.name == username
            )
            page = found[offset : offset + limit] if limit > 0 else []
            return [
                {
                    "disabled": account.disabled,
                    "email": _email(account.name),
                    "id": account.number,
                    "username": account.name,
                    **({"region": world} if include_region else {}),
                }
                for _, world, account in page
            ]

    def list_customers(self, *, limit: int, after: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the customer accounts of both worlds, in the order they were added, and the last id.

        `after` is the last id of the previous page (the API's `offset`); an unknown one is an empty page.
        """
        with self._lock:
            found = sorted((a.number, a.name) for w in self.worlds.values() for a in w.customers.values())
            names = [name for _, name in found]
            start = 0
            if after is not None:
                start = names.index(after) + 1 if after in names else len(names)
            page = found[start : start + limit]
            accounts = [{"id": name, "created_at": _created_at(number)} for number, name in page]
            return accounts, (page[-1][1] if page else None)

    # -- for tests, benchmarks and the admin endpoint ------------------------------------------

    def unsubscribe(self, world: str, on_behalf_of: str | None = None) -> dict[str, Any]:
        """What a recipient of this account's mail gets on clicking unsubscribe (see unsubscribe_target)."""
        account = self.account(world, on_behalf_of)
        with self._lock:
            return unsubscribe_target(account.settings["subscription"])

    def add_fault(self, fault: Fault) -> None:
        """Answer the next matching requests with `fault` (checked when it was made)."""
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def set_out_of_band(self, world: str, on_behalf_of: str | None, kind: str, values: Mapping[str, Any]) -> None:
        """What someone clicking in SendGrid's UI does: change a setting without the API.

        Any known field may change (click's enable_text too); ValueError for a bad one.
        """
        changes = _settings_from("values", {kind: values})[kind]
        account = self.account(world, on_behalf_of)
        with self._lock:
            _apply(account.settings[kind], changes)

    def record(self, entry: dict[str, Any]) -> LogEntry:
        with self._lock:
            logged = LogEntry(seq=len(self.log) + 1, time=self._clock(), **entry)
            self.log.append(logged)
            return logged

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(entry) for entry in self.log]

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Load what `snapshot()` returned, replacing every account.

        Also reads snapshots written before customer accounts existed: their subusers'
        `account_id` is dropped (it named no customer account).
        """
        with self._lock:
            for name, world_data in snapshot.items():
                w = World(self.world(name).name)
                w.parent.settings = _merge_defaults(_settings_from(f"{name}.parent", world_data["parent"]))
                for group, kind in (("subusers", SUBUSER), ("customers", CUSTOMER)):
                    accounts: dict[str, Account] = getattr(w, group)
                    disabled = set((world_data.get("disabled") or {}).get(group, []))
                    for key, data in (world_data.get(group) or {}).items():
                        settings = {k: v for k, v in data.items() if k != "account_id"}
                        merged = _merge_defaults(_settings_from(f"{name}.{key}", settings))
                        accounts[key] = Account(kind, key, merged, disabled=key in disabled, number=self._number())
                    w.deleted[group] = set((world_data.get("deleted") or {}).get(group, []))
                self.worlds[name] = w

    def snapshot(self) -> dict[str, Any]:
        """Every world's accounts and settings (and deleted and disabled account names), as plain JSON data."""
        with self._lock:
            return {
                name: {
                    "parent": copy.deepcopy(w.parent.settings),
                    "subusers": {user: copy.deepcopy(a.settings) for user, a in sorted(w.subusers.items())},
                    "customers": {cid: copy.deepcopy(a.settings) for cid, a in sorted(w.customers.items())},
                    "deleted": {group: sorted(names) for group, names in w.deleted.items()},
                    "disabled": {"subusers": sorted(user for user, a in w.subusers.items() if a.disabled)},
                }
                for name, w in self.worlds.items()
            }


def _merge_defaults(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    merged = {k: dict(v) for k, v in DEFAULTS.items()}
    for kind, values in settings.items():
        _apply(merged[kind], values)
    return merged


def _email(username: str) -> str:
    """A subuser's contact address in the list: its username when that is one, else <username>@example.com."""
    return username if "@" in username else f"{username}@example.com"


def _created_at(number: int) -> str:
    """An RFC 3339 time for a customer account, steady for the account (its number counted in minutes)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + 60 * number))


def subuser_query(args: Mapping[str, str]) -> dict[str, Any]:
    """The `GET /v3/subusers` query, checked: username, limit, offset, region, include_region.

    Raises ValidationFailed naming each bad parameter (a non-integer limit or offset, a negative
    offset, a region other than all, global or eu, include_region other than true or false).
    """
    problems: list[tuple[str | None, str]] = []
    query: dict[str, Any] = {"username": args.get("username"), "limit": DEFAULT_SUBUSERS_LIMIT, "offset": 0}
    for name in ("limit", "offset"):
        if name in args:
            try:
                query[name] = int(args[name])
            except ValueError:
                problems.append((name, f"{name} must be an integer, got {args[name]!r}"))
    if query["offset"] < 0:
        problems.append(("offset", "offset must be 0 or more"))
    if query["limit"] < 0:
        problems.append(("limit", "limit must be 0 or more"))
    query["region"] = args.get("region", "all")
    if query["region"] not in REGION_FILTERS:
        problems.append(("region", f"region must be one of {', '.join(REGION_FILTERS)}, got {query['region']!r}"))
    flag = args.get("include_region", "false")
    if flag not in ("true", "false"):
        problems.append(("include_region", f"include_region must be true or false, got {flag!r}"))
    query["include_region"] = flag == "true"
    if problems:
        raise ValidationFailed(problems)
    return query


def accounts_query(args: Mapping[str, str]) -> dict[str, Any]:
    """The `GET /v3/partners/accounts` query, checked: `limit` (1 to 100, default 10) and `offset` (the last id)."""
    limit = DEFAULT_ACCOUNTS_LIMIT
    if "limit" in args:
        try:
            limit = int(args["limit"])
        except ValueError:
            raise ValidationFailed([("limit", f"limit must be an integer, got {args['limit']!r}")]) from None
        if not 1 <= limit <= MAX_ACCOUNTS_LIMIT:
            raise ValidationFailed([("limit", f"limit must be from 1 to {MAX_ACCOUNTS_LIMIT}, got {limit}")])
    return {"limit": limit, "after": args.get("offset") or None}
