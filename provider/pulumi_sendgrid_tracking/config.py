"""Where the API key, region, hosts, timeouts, retry budget and request rate come from. No I/O.

Stack config (namespace `sendgrid`) wins over the environment; both are read at call time
inside the provider process, so a rotated key is used by the next refresh or destroy.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import KEY_SOURCES, ConfigurationError

REGIONS = ("global", "eu")
DEFAULT_REGION = "global"
DEFAULT_HOSTS: Mapping[str, str] = {
    "global": "https://api.sendgrid.com",
    "eu": "https://api.eu.sendgrid.com",
}
DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds to wait for an answer to one request (read timeout)."""
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY_BUDGET = 120.0
"""Seconds spent retrying one call after its first failure (429, 5xx, connection errors)."""
MAX_KEY_LENGTH = 512
SENDGRID_REQUESTS_PER_MINUTE = 600
"""SendGrid's only published rate limit: 600 requests per minute per user (docs/sendgrid-api.md)."""
MAX_REQUESTS_PER_SECOND = SENDGRID_REQUESTS_PER_MINUTE / 60
"""The highest sendgrid:maxRequestsPerSecond (10): more than SendGrid's published limit would not be kept."""
MIN_REQUESTS_PER_SECOND = MAX_REQUESTS_PER_SECOND / 100
"""The lowest (0.1, one request every 10 s): SendGrid's limit shared by 100 stacks at once. Slower, one
account's update (a GET and a PATCH, each possibly retried) takes minutes, and 1e-300 overflows the pacer."""
REQUEST_RATE_REASON = (
    f"SendGrid publishes {SENDGRID_REQUESTS_PER_MINUTE} requests/minute per user, so more than "
    f"{MAX_REQUESTS_PER_SECOND:g}/s would not be kept; below {MIN_REQUESTS_PER_SECOND:g}/s (one request every "
    f"{1 / MIN_REQUESTS_PER_SECOND:g} s, that limit shared by 100 stacks) one account's update takes minutes"
)

# Setting name → (stack config key, environment variable).
SOURCES: Mapping[str, tuple[str, str]] = {
    "api_key": ("sendgrid:apiKey", "SENDGRID_API_KEY"),
    "region": ("sendgrid:region", "SENDGRID_REGION"),
    "base_url": ("sendgrid:baseUrl", "SENDGRID_BASE_URL"),
    "eu_base_url": ("sendgrid:euBaseUrl", "SENDGRID_EU_BASE_URL"),
    "request_timeout": ("sendgrid:requestTimeout", "SENDGRID_REQUEST_TIMEOUT"),
    "retry_budget": ("sendgrid:retryBudget", "SENDGRID_RETRY_BUDGET"),
    "max_requests_per_second": ("sendgrid:maxRequestsPerSecond", "SENDGRID_MAX_REQUESTS_PER_SECOND"),
}
CONFIG_KEYS = tuple(config_key for config_key, _ in SOURCES.values())


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one call. `repr` never shows the key."""

    api_key: str = field(repr=False)
    region: str
    """The stack's default region (a resource may name another)."""
    base_urls: Mapping[str, str]
    """Region → API root, without a trailing slash."""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    retry_budget: float = DEFAULT_RETRY_BUDGET
    max_requests_per_second: float | None = None
    """The provider process's request rate budget (every attempt, retries included); None: unpaced."""

    def base_url_for(self, region: str) -> str:
        return self.base_urls[region]


def _lookup(name: str, config: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str | None, str]:
    """The raw value of a setting and where it came from (for error messages)."""
    config_key, env_var = SOURCES[name]
    value = config.get(config_key)
    if value is not None and value != "":
        return str(value), config_key
    value = env.get(env_var)
    if value:
        return value, env_var
    return None, f"{config_key} (or {env_var})"


def resolve_region(config: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The stack's default region. Raises ConfigurationError for anything but global/eu."""
    value, source = _lookup("region", config, env)
    if value is None:
        return DEFAULT_REGION
    if value not in REGIONS:
        raise ConfigurationError(source, f"unknown region {value!r}", f"use one of {', '.join(REGIONS)}")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(value: str, source: str) -> str:
    """Check an API root URL and return it normalised (`scheme://host[:port]`).

    Allowed: https to any host; plain http only to loopback (127.0.0.0/8, ::1, localhost).
    Rejected: credentials, a path, a query or a fragment, other schemes.
    """
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ConfigurationError(source, "the URL contains spaces or control characters", "remove them")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(source, f"not a valid URL ({exc})", "use e.g. https://api.sendgrid.com") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(
            source, f"{value!r} is not an http(s) URL with a host", "use e.g. https://api.sendgrid.com"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            source, "the URL contains credentials", f"remove them; the API key belongs in {KEY_SOURCES}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            source, "the URL has a path, query or fragment", "give only the API root, e.g. https://api.sendgrid.com"
        )
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            source,
            f"plain http to {host!r} would send the API key unencrypted",
            "use https; plain http is allowed only to loopback addresses (a local emulator)",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def _positive_seconds(name: str, config: Mapping[str, Any], env: Mapping[str, str], default: float) -> float:
    value, source = _lookup(name, config, env)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= 3600):
        raise ConfigurationError(source, f"{value!r} is not a number of seconds", "use a number between 0 and 3600")
    return seconds


def _request_rate(config: Mapping[str, Any], env: Mapping[str, str]) -> float | None:
    """sendgrid:maxRequestsPerSecond: None (no pacing), or a rate from 0.1 to 10; ConfigurationError otherwise."""
    value, source = _lookup("max_requests_per_second", config, env)
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    fix = (
        f"use {MIN_REQUESTS_PER_SECOND:g} to {MAX_REQUESTS_PER_SECOND:g} (e.g. 2.5 for each of 4 shard stacks), "
        f"or unset it for no pacing: {REQUEST_RATE_REASON}"
    )
    if not math.isfinite(rate):
        raise ConfigurationError(source, f"{value!r} is not a number of requests per second", fix)
    if rate < MIN_REQUESTS_PER_SECOND:
        raise ConfigurationError(source, f"{value!r} is below {MIN_REQUESTS_PER_SECOND:g} requests per second", fix)
    if rate > MAX_REQUESTS_PER_SECOND:
        raise ConfigurationError(
            source, f"{value!r} is above SendGrid's published {MAX_REQUESTS_PER_SECOND:g} requests per second", fix
        )
    return rate


def validate_api_key(value: str, source: str) -> str:
    """Reject keys that cannot be sent as a header. The message never repeats the key."""
    if len(value) > MAX_KEY_LENGTH:
        raise ConfigurationError(source, "the API key is implausibly long", f"set the key alone with {KEY_SOURCES}")
    if value != value.strip() or any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise ConfigurationError(
            source,
            "the API key contains whitespace, control or non-ASCII characters",
            f"set the key alone, without quotes or newlines, with {KEY_SOURCES}",
        )
    return value


def resolve(config: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """All settings for a call that talks to SendGrid. Raises ConfigurationError; sends nothing."""
    key, key_source = _lookup("api_key", config, env)
    if key is None:
        raise ConfigurationError(key_source, "no SendGrid API key is set", f"set one with {KEY_SOURCES}")
    validate_api_key(key, key_source)
    region = resolve_region(config, env)
    base_urls = dict(DEFAULT_HOSTS)
    global_url, global_source = _lookup("base_url", config, env)
    eu_url, eu_source = _lookup("eu_base_url", config, env)
    if global_url is not None:
        base_urls["global"] = validate_base_url(global_url, global_source)
        # Never send an EU subuser's traffic to a host chosen for the global region.
        base_urls.pop("eu")
    if eu_url is not None:
        base_urls["eu"] = validate_base_url(eu_url, eu_source)
    return Settings(
        api_key=key,
        region=region,
        base_urls=base_urls,
        request_timeout=_positive_seconds("request_timeout", config, env, DEFAULT_REQUEST_TIMEOUT),
        retry_budget=_positive_seconds("retry_budget", config, env, DEFAULT_RETRY_BUDGET),
        max_requests_per_second=_request_rate(config, env),
    )


def base_url_for(settings: Settings, region: str) -> str:
    """The API root for a region, or ConfigurationError when only the other region was overridden."""
    try:
        return settings.base_url_for(region)
    except KeyError:
        raise ConfigurationError(
            SOURCES["eu_base_url"][0],
            "region 'eu' is used while sendgrid:baseUrl overrides the global host",
            "set sendgrid:euBaseUrl (or SENDGRID_EU_BASE_URL) too, e.g. to the emulator's EU URL",
        ) from None
