"""The four tracking settings, described as data: path, fields, which are writable, and their checks.

Shapes follow SendGrid's official OpenAPI description (tsg_tracking_settings_v3.yaml). No I/O and no
Pulumi here: the one provider mechanism (`singleton.py`) and the fleet parser read these descriptions.

    setting            path                                  writable fields
    CLICK              /v3/tracking_settings/click           enabled            (enable_text is read-only)
    OPEN               /v3/tracking_settings/open            enabled
    SUBSCRIPTION       /v3/tracking_settings/subscription    enabled, html_content, plain_content, replace, url, landing
    GOOGLE_ANALYTICS   /v3/tracking_settings/google_analytics  enabled, utm_source, utm_medium, utm_term,
                                                                  utm_content, utm_campaign
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Length bounds. SendGrid documents none; these catch mistakes (a file pasted into a utm tag) and
# stay far above any sensible value. They are the provider's, and docs/resources.md says so.
MAX_SHORT_TEXT = 255
"""utm_* parameters and subscription's `replace` tag."""
MAX_URL = 2048
MAX_CONTENT = 65_536
"""html_content, plain_content and landing (HTML or text blocks)."""

Check = Callable[[str], str | None]
"""An extra rule for a string field: the problem (completing "<field> ...") or None when fine."""


def _single_line(value: str) -> str | None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "must not contain control characters such as newlines or tabs"
    return None


def _multi_line(value: str) -> str | None:
    if any((ord(c) < 0x20 and c not in "\n\r\t") or ord(c) == 0x7F for c in value):
        return "must not contain control characters other than newlines and tabs"
    return None


def _absolute_http_url(value: str) -> str | None:
    if value == "":
        return None  # clears a custom URL: unsubscribes then land on `landing` or SendGrid's default page
    problem = _single_line(value)
    if problem:
        return problem
    if any(c.isspace() for c in value):
        return "must not contain spaces; encode them as %20"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"is not a valid URL: {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an absolute http(s) URL such as https://example.com/unsubscribe, got {value!r}"
    return None


_HTML_LINK_TAG = re.compile(r"<%[^%]*\S[^%]*%>")


def _html_content(value: str) -> str | None:
    if value and not _HTML_LINK_TAG.search(value):
        return (
            "must contain SendGrid's unsubscribe link tag with its link text, e.g. "
            "'<p>No more mail? <% Unsubscribe here %></p>' (SendGrid replaces <% text %> with the link)"
        )
    return _multi_line(value)


def _plain_content(value: str) -> str | None:
    if value and "<% %>" not in value:
        return "must contain SendGrid's '<% %>' tag, which SendGrid replaces with the unsubscribe URL"
    return _multi_line(value)


@dataclass(frozen=True)
class Field:
    """One field of a setting, spelled as SendGrid spells it."""

    name: str
    """The wire name (`enabled`, `utm_source`, `html_content`)."""
    kind: type[bool] | type[str]
    """bool or str, as in the official schema."""
    doc: str
    """One line for the resource's docstring and docs/resources.md."""
    writable: bool = True
    """False for fields SendGrid answers but does not take in a PATCH (click's `enable_text`)."""
    required: bool = False
    """`enabled`: every resource must set it explicitly."""
    answered: bool = False
    """Always in SendGrid's answer (the schema requires it); a 2xx body without it is malformed."""
    max_length: int | None = None
    check: Check | None = None

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be sent for this field (completing "<name> ..."), or None."""
        if self.kind is bool:
            if isinstance(value, bool):
                return None
            if isinstance(value, str):
                return (
                    f"must be a boolean, got the string {value!r}; read config with "
                    "`config.require_bool(...)` or compare with `== 'true'`"
                )
            return f"must be a boolean, got {type(value).__name__}"
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"is {len(value)} characters long; at most {self.max_length} are allowed"
        return self.check(value) if self.check else None


@dataclass(frozen=True)
class TrackingSetting:
    """One of SendGrid's tracking settings: a singleton per account under one path."""

    name: str
    """The path segment and scope name: click, open, subscription, google_analytics."""
    title: str
    """For messages: "click tracking"."""
    resource: str
    """The Pulumi resource class and type token name: ClickTracking."""
    fields: tuple[Field, ...]

    @property
    def path(self) -> str:
        return f"/v3/tracking_settings/{self.name}"

    @property
    def writable(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.writable)

    @property
    def optional(self) -> tuple[Field, ...]:
        """Writable fields managed only when a program gives them."""
        return tuple(f for f in self.fields if f.writable and not f.required)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def scope(self, verb: str) -> str:
        """The API key scope SendGrid checks: `tracking_settings.click.read` / `.update`."""
        return f"tracking_settings.{self.name}.{verb}"

    def parse(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """SendGrid's answer, checked against the schema: every known field, None where absent.

        Raises ValueError naming the first field with the wrong type, or a missing field the schema requires.
        """
        values: dict[str, Any] = {}
        for f in self.fields:
            value = payload.get(f.name)
            if value is None:
                if f.answered:
                    raise ValueError(f"`{f.name}` is missing")
                values[f.name] = None
                continue
            if not isinstance(value, f.kind):
                raise ValueError(f"`{f.name}` must be a {'boolean' if f.kind is bool else 'string'}, got {value!r}")
            values[f.name] = value
        return values


ENABLED = Field("enabled", bool, "Whether the setting is on, as SendGrid last answered.", required=True, answered=True)

CLICK = TrackingSetting(
    "click",
    "click tracking",
    "ClickTracking",
    (
        ENABLED,
        Field(
            "enable_text",
            bool,
            "Whether click tracking covers plain-text mail (read-only).",
            writable=False,
            answered=True,
        ),
    ),
)

OPEN = TrackingSetting("open", "open tracking", "OpenTracking", (ENABLED,))


def _utm(name: str, doc: str) -> Field:
    return Field(name, str, doc, max_length=MAX_SHORT_TEXT, check=_single_line)


SUBSCRIPTION = TrackingSetting(
    "subscription",
    "subscription tracking",
    "SubscriptionTracking",
    (
        ENABLED,
        Field(
            "html_content",
            str,
            "The HTML unsubscribe footer; contains `<% link text %>`.",
            max_length=MAX_CONTENT,
            check=_html_content,
        ),
        Field(
            "plain_content",
            str,
            "The plain-text unsubscribe footer; contains `<% %>`.",
            max_length=MAX_CONTENT,
            check=_plain_content,
        ),
        Field(
            "replace",
            str,
            "A tag your templates use to place the unsubscribe footer themselves.",
            max_length=MAX_SHORT_TEXT,
            check=_single_line,
        ),
        Field(
            "url",
            str,
            'Where recipients who unsubscribe are sent (wins over `landing`; "" clears it).',
            max_length=MAX_URL,
            check=_absolute_http_url,
        ),
        Field(
            "landing",
            str,
            "The HTML page SendGrid shows after an unsubscribe, when no `url` is set.",
            max_length=MAX_CONTENT,
            check=_multi_line,
        ),
    ),
)

GOOGLE_ANALYTICS = TrackingSetting(
    "google_analytics",
    "Google Analytics tracking",
    "GoogleAnalytics",
    (
        ENABLED,
        _utm("utm_source", "The utm_source added to links (the referrer)."),
        _utm("utm_medium", "The utm_medium added to links (e.g. email)."),
        _utm("utm_term", "The utm_term added to links (paid keywords)."),
        _utm("utm_content", "The utm_content added to links (to tell ads apart)."),
        _utm("utm_campaign", "The utm_campaign added to links (the campaign name)."),
    ),
)

SETTINGS: Mapping[str, TrackingSetting] = {s.name: s for s in (CLICK, OPEN, SUBSCRIPTION, GOOGLE_ANALYTICS)}
"""Every setting by its name."""
TYPE_PREFIX = "pulumi-python:dynamic/sendgrid:"
"""The engine's type token of this package's resources, before the resource name."""
SETTING_TYPES: Mapping[str, TrackingSetting] = {f"{TYPE_PREFIX}{s.resource}": s for s in SETTINGS.values()}
"""Every setting by its resource's type token (`pulumi-python:dynamic/sendgrid:ClickTracking`)."""
