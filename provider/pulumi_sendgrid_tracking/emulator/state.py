"""The emulator's state: worlds, accounts, settings, keys, rate limits, faults and the log.

Plain Python that never sees HTTP. One lock guards everything, so concurrent requests
never lose an update.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import AccessForbidden, AuthorizationRequired, BadRequest, InvalidGrant

WORLDS = ("global", "eu")
DEFAULT_API_KEY = "SG.emulator-local-dev-key"
DEFAULT_RATE_LIMIT = 600
DEFAULT_RATE_WINDOW = 60.0

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
ALL_SCOPES = frozenset(
    ["tracking_settings.read"] + [f"tracking_settings.{kind}.{verb}" for kind in FIELDS for verb in ("read", "update")]
)
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


@dataclass
class Account:
    """A parent account or a subuser, with its tracking settings."""

    username: str
    account_id: str
    settings: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULTS.items()})


@dataclass
class World:
    """One region (global or EU): a parent account and its subusers. Worlds share nothing."""

    name: str
    parent: Account
    subusers: dict[str, Account] = field(default_factory=dict)


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
    """A subuser's username, `account-id <id>`, or "" for the parent account; None = any."""
    world: str | None = None
    hang_seconds: float = 5.0
    apply: bool = False
    """Process the request (change state) before answering with the fault (a lost answer)."""

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


def _is_absolute_uri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not any(c.isspace() for c in value)


def validate_patch(kind: str, body: Any) -> dict[str, Any]:
    """The fields a PATCH body changes; BadRequest naming the field otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", None)
    changes: dict[str, Any] = {}
    for name, value in body.items():
        expected = FIELDS[kind].get(name)
        if name not in WRITABLE[kind] or expected is None:
            continue  # SendGrid ignores fields it does not know
        if type(value) is not expected:
            raise BadRequest(f"{name} must be a {'boolean' if expected is bool else 'string'}", name)
        if name == "url" and isinstance(value, str) and not _is_absolute_uri(value):
            raise BadRequest("url must be an absolute URL", name)
        changes[name] = value
    return changes


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
        self._initial_keys = tuple(api_keys)
        self.latency = latency
        self.jitter = jitter
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a parent account per world, no subusers, default settings, empty log."""
        with self._lock:
            self.worlds = {name: World(name, Account("parent", "1" if name == "global" else "2")) for name in WORLDS}
            self.keys = {key: ApiKey(key, ALL_SCOPES) for key in self._initial_keys}
            self.limiter = RateLimiter(self.rate_limit, self.rate_window, self._clock)
            self.faults: list[Fault] = []
            self.log: list[LogEntry] = []
            self._changed: set[int] = set()
            self._next_account_id = 100

    def configure(self, **options: Any) -> None:
        """Change latency, jitter, rate_limit or rate_window at run time."""
        with self._lock:
            for name in ("latency", "jitter", "rate_limit", "rate_window"):
                if name in options and options[name] is not None:
                    setattr(self, name, options[name])
            self.limiter = RateLimiter(int(self.rate_limit), float(self.rate_window), self._clock)

    def add_key(self, key: str, scopes: Iterable[str] | None = None) -> None:
        with self._lock:
            self.keys[key] = ApiKey(key, frozenset(scopes) if scopes is not None else ALL_SCOPES)

    def add_subuser(self, world: str, username: str, account_id: str | None = None, **click: bool) -> Account:
        with self._lock:
            if account_id is None:
                self._next_account_id += 1
                account_id = str(self._next_account_id)
            account = Account(username, account_id)
            account.settings["click"].update(click)
            self.worlds[world].subusers[username] = account
            return account

    def seed(self, data: Mapping[str, Any]) -> None:
        """Load `{"global"|"eu": {"parent": {"click": {...}}, "subusers": {name: {"click": {...}}}}}`."""
        with self._lock:
            for world_name, world_data in data.items():
                if world_name not in WORLDS:
                    raise ValueError(f"unknown world {world_name!r} in seed; use {WORLDS}")
                world = self.worlds[world_name]
                for kind, values in (world_data.get("parent") or {}).items():
                    world.parent.settings[kind].update(values)
                for name, sub in (world_data.get("subusers") or {}).items():
                    account = self.add_subuser(world_name, name, (sub or {}).get("account_id"))
                    for kind, values in (sub or {}).items():
                        if kind != "account_id":
                            account.settings[kind].update(values)

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
        """The parent account, or the subuser / customer account named by on-behalf-of."""
        with self._lock:
            w = self.worlds[world]
            if on_behalf_of is None:
                return w.parent
            if on_behalf_of.startswith("account-id "):
                wanted = on_behalf_of[len("account-id ") :].strip()
                for account in w.subusers.values():
                    if account.account_id == wanted:
                        return account
            elif on_behalf_of in w.subusers:
                return w.subusers[on_behalf_of]
            raise AccessForbidden(field="on-behalf-of")

    # -- the API's operations ----------------------------------------------------------------

    def get_setting(self, account: Account, kind: str) -> dict[str, Any]:
        with self._lock:
            return dict(account.settings[kind])

    def update_setting(self, account: Account, kind: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            current = account.settings[kind]
            if any(current.get(name) != value for name, value in changes.items()):
                self._changed.add(threading.get_ident())
            current.update(changes)
            return dict(current)

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

    # -- for tests, benchmarks and the admin endpoint ------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def set_out_of_band(self, world: str, on_behalf_of: str | None, kind: str, values: Mapping[str, Any]) -> None:
        """What someone clicking in SendGrid's UI does: change a setting without the API."""
        account = self.account(world, on_behalf_of)
        with self._lock:
            account.settings[kind].update(values)

    def record(self, entry: dict[str, Any]) -> LogEntry:
        with self._lock:
            logged = LogEntry(seq=len(self.log) + 1, time=self._clock(), **entry)
            self.log.append(logged)
            return logged

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(entry) for entry in self.log]

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Load what `snapshot()` returned (accounts, ids and settings), replacing all accounts."""
        with self._lock:
            for name, world_data in snapshot.items():
                world = self.worlds[name]
                world.parent.settings = copy.deepcopy(dict(world_data["parent"]))
                world.subusers = {}
                for user, data in world_data.get("subusers", {}).items():
                    settings = {k: dict(v) for k, v in data.items() if k != "account_id"}
                    world.subusers[user] = Account(user, str(data["account_id"]), settings)
                    self._next_account_id = max(self._next_account_id, int(data["account_id"]) + 1)

    def snapshot(self) -> dict[str, Any]:
        """Every world's accounts and settings, as plain data."""
        with self._lock:
            return {
                name: {
                    "parent": copy.deepcopy(w.parent.settings),
                    "subusers": {
                        user: {"account_id": a.account_id, **copy.deepcopy(a.settings)}
                        for user, a in sorted(w.subusers.items())
                    },
                }
                for name, w in self.worlds.items()
            }
