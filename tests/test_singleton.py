"""The setting provider, for every setting, with requests-mock: requests sent and not sent, outputs, errors.

Parametrized over the four setting descriptions; fixtures are built from the descriptions too. A setting
is one engine resource per account; its originals come from the stack's ledger entry (its `ledger` input)
the first time it manages a field, and are its own from then on (tests/test_ledger.py: the ledger itself;
tests/test_legacy.py: 0.1.0/0.2.0 state).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
import requests_mock
from pulumi_sendgrid_tracking import (
    ClickTrackingProvider,
    GoogleAnalyticsProvider,
    OpenTrackingProvider,
    SendGridError,
    SubscriptionTrackingProvider,
)
from pulumi_sendgrid_tracking.emulator import Emulator, Fault
from pulumi_sendgrid_tracking.errors import (
    AccountGoneError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DataResidencyError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
)
from pulumi_sendgrid_tracking.inputs import resource_id
from pulumi_sendgrid_tracking.singleton import RUN, SettingProvider, ledger_text, original_key
from pulumi_sendgrid_tracking.tracking import CLICK, GOOGLE_ANALYTICS, OPEN, SUBSCRIPTION, TrackingSetting

from .conftest import OTHER_KEY, TEST_KEY, configured

GLOBAL = "https://api.sendgrid.com"
EU = "https://api.eu.sendgrid.com"
UNKNOWN = pulumi.output.Unknown()
FORBIDDEN = {"errors": [{"field": None, "message": "access forbidden"}]}
LEDGER_URN_HINT = "--target 'urn:pulumi:<stack>::<project>::pulumi-python:dynamic/sendgrid:Originals::originals'"


@dataclass(frozen=True)
class Case:
    """A setting, its provider class, what SendGrid holds (`live`) and what a program asks for (`desired`)."""

    provider: type[SettingProvider]
    live: dict[str, Any]
    desired: dict[str, Any]
    """The managed fields: `enabled` plus the optional fields the program gives."""

    @property
    def setting(self) -> TrackingSetting:
        return self.provider.setting

    def url(self, base: str = GLOBAL) -> str:
        return base + self.setting.path

    def key(self, on_behalf_of: str | None = None, region: str = "global") -> str:
        """The setting's key in the ledger: `click/global/alice`."""
        return f"{self.setting.name}/{region}" + (f"/{on_behalf_of}" if on_behalf_of else "")

    def answer(self, **changes: Any) -> dict[str, Any]:
        """SendGrid's body: the live values, changed; fields absent on SendGrid are left out."""
        return {k: v for k, v in {**self.live, **changes}.items() if v is not None}

    def originals(self) -> dict[str, Any]:
        """What restore sends back: each managed field's original; an absent string (no url yet) is ``""``."""
        return {k: "" if self.live.get(k) is None else self.live[k] for k in self.desired}

    def restore_body(self, recorded: dict[str, Any] | None = None) -> dict[str, Any]:
        """The restore PATCH after the desired values were set (or `recorded`, when given)."""
        now = recorded if recorded is not None else self.desired
        return {k: v for k, v in self.originals().items() if now.get(k) != v}

    def differing(self) -> dict[str, Any]:
        return {k: v for k, v in self.desired.items() if self.live.get(k) != v}

    def entry(self, originals: dict[str, Any] | None = None, **kw: Any) -> str:
        """A ledger entry as the state keeps it: JSON text of the originals (nulls kept), `error` if any."""
        held = originals if originals is not None else {k: self.live.get(k) for k in self.desired}
        return ledger_text(held, **kw)

    def inputs(self, **kw: Any) -> dict[str, Any]:
        """A setting's checked inputs: the managed fields, the account, the program's name, its ledger entry."""
        return {
            **self.desired,
            "on_behalf_of": None,
            "region": "global",
            "on_delete": "restore",
            "name": "x",
            "ledger": self.entry(),
            **kw,
        }

    def parsed(self, **changes: Any) -> dict[str, Any]:
        return self.setting.parse(self.answer(**changes))

    def outputs(
        self,
        live: dict[str, Any] | None = None,
        originals: dict[str, Any] | None = None,
        managed: list[str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """A setting's outputs, written out (not computed by the provider's own helpers)."""
        values = self.setting.parse({k: v for k, v in (live or self.live).items() if v is not None})
        held = originals if originals is not None else {k: self.live.get(k) for k in self.desired}
        managed = sorted(managed if managed is not None else self.desired)
        outs: dict[str, Any] = {
            **values,
            "on_behalf_of": None,
            "region": "global",
            "on_delete": "restore",
            "name": "x",
        }
        for f in self.setting.writable:
            outs[original_key(f.name)] = held.get(f.name) if f.name in managed else None
        outs["originals"] = {k: v for k, v in held.items() if v is not None}
        outs["held_fields"] = sorted(held)
        outs["managed_fields"] = managed
        outs.update(kw)
        return outs


CASES = {
    "click": Case(ClickTrackingProvider, {"enabled": True, "enable_text": False}, {"enabled": False}),
    "open": Case(OpenTrackingProvider, {"enabled": True}, {"enabled": False}),
    "subscription": Case(
        SubscriptionTrackingProvider,
        {
            "enabled": False,
            "html_content": "<p><% Unsubscribe %></p>",
            "plain_content": "Unsubscribe: <% %>",
            "replace": "",
            "url": None,  # absent until one is set
            "landing": "",
        },
        {"enabled": True, "url": "https://example.com/bye", "plain_content": "Bye: <% %>"},
    ),
    "google_analytics": Case(
        GoogleAnalyticsProvider,
        {
            "enabled": False,
            "utm_source": "sendgrid.com",
            "utm_medium": "email",
            "utm_term": "",
            "utm_content": "",
            "utm_campaign": "website",
        },
        {"enabled": True, "utm_campaign": "spring", "utm_source": "sendgrid.com"},
    ),
}
OPTIONAL = [name for name, c in CASES.items() if c.setting.optional]


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture(params=OPTIONAL)
def optional_case(request: pytest.FixtureRequest) -> Case:
    """The settings with optional fields (subscription, google_analytics)."""
    return CASES[request.param]


@pytest.fixture
def provider(case: Case) -> SettingProvider:
    return configured({"sendgrid:apiKey": TEST_KEY}, case.provider)


@pytest.fixture
def http() -> Any:
    with requests_mock.Mocker() as mock:
        yield mock


def sent(http: Any) -> list[tuple[str, str, str | None, Any]]:
    return [
        (r.method, r.url, r.headers.get("on-behalf-of"), json.loads(r.body) if r.body else None)
        for r in http.request_history
    ]


def test_every_setting_has_a_case_and_a_pinned_provider() -> None:
    assert {c.setting.name for c in CASES.values()} == {"click", "open", "subscription", "google_analytics"}
    assert {c.setting for c in CASES.values()} == {CLICK, OPEN, SUBSCRIPTION, GOOGLE_ANALYTICS}
    for c in CASES.values():
        assert c.provider.__module__ == "pulumi_sendgrid_tracking.providers"
        assert c.provider.__name__ == f"{c.setting.resource.removesuffix('Tracking')}TrackingProvider".replace(
            "GoogleAnalyticsTrackingProvider", "GoogleAnalyticsProvider"
        )


# -- check -----------------------------------------------------------------------------------


def test_check_fills_defaults_keeps_only_managed_fields_and_sends_nothing(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    placeholders = dict.fromkeys(provider.output_only_keys())
    unmanaged = {f.name: None for f in case.setting.optional if f.name not in case.desired}
    news = {**case.desired, **unmanaged, **placeholders, "on_behalf_of": None, "region": None, "on_delete": None}
    result = provider.check({}, {**news, "name": "x", "ledger": case.entry(), "__provider": "p"})
    assert result.failures == []
    assert result.inputs == case.inputs()
    assert http.call_count == 0


def test_check_resolves_the_stack_region(case: Case, http: Any) -> None:
    eu = configured({"sendgrid:region": "eu", "sendgrid:apiKey": TEST_KEY}, case.provider)
    result = eu.check({}, {**case.desired, "ledger": case.entry()})
    assert (result.inputs["region"], result.failures) == ("eu", [])
    assert http.call_count == 0


def test_check_accepts_unknowns_during_preview(case: Case, provider: SettingProvider) -> None:
    news = {
        **dict.fromkeys(case.desired, UNKNOWN),
        "on_behalf_of": UNKNOWN,
        "region": UNKNOWN,
        "on_delete": UNKNOWN,
        "ledger": UNKNOWN,
    }
    result = provider.check({}, news)
    assert result.failures == []
    assert all(isinstance(v, pulumi.output.Unknown) for v in result.inputs.values())


def managed_in_order(case: Case, without: str | None = None) -> str:
    """The managed fields as the provider names them (the setting's field order)."""
    return ", ".join(f.name for f in case.setting.writable if f.name in case.desired and f.name != without)


def test_check_refuses_a_create_whose_ledger_entry_lacks_a_managed_fields_original(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    missing = sorted(case.desired)[-1]
    entry = case.entry({k: case.live.get(k) for k in case.desired if k != missing})
    [failure] = provider.check({}, {**case.desired, "on_behalf_of": "alice", "ledger": entry}).failures
    assert failure.property == "ledger"
    assert failure.reason == (
        f"the original of {missing} ({case.setting.title} of subuser 'alice' (global)) is not in the stack's "
        "originals ledger, and this run does not update it: nothing may change a field before its original is "
        "recorded. Hint: run `pulumi up` without --target/--exclude (or add the ledger to them: "
        f"{LEDGER_URN_HINT})."
    )
    # No entry at all (a `--target` run that leaves the ledger out, for a new account): every field is named.
    [failure] = provider.check({}, dict(case.desired)).failures
    assert failure.property == "ledger"
    assert failure.reason.startswith(f"the original of {managed_in_order(case)} ({case.setting.title} of the parent")
    assert LEDGER_URN_HINT in failure.reason
    assert http.call_count == 0


def test_check_passes_a_create_whose_ledger_entry_is_unknown_or_failed(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    # Preview: the ledger reads at `up`, so its entry is not known yet.
    assert provider.check({}, {**case.desired, "ledger": UNKNOWN}).failures == []
    # The ledger could not read the account: check passes, create raises with the cause (and sends nothing).
    failed = case.entry({}, error="GET ... failed (500): boom")
    assert provider.check({}, {**case.desired, "ledger": failed}).failures == []
    assert http.call_count == 0


def test_check_of_an_update_leaves_missing_originals_to_diff(case: Case, provider: SettingProvider) -> None:
    # The setting may hold them itself; diff knows (it sees the outputs), check does not.
    assert provider.check(case.inputs(), {**case.desired, "ledger": case.entry({})}).failures == []


def test_an_output_argument_that_resolved_to_none_fails_check_with_the_fix(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    field = next(f.name for f in case.setting.optional if f.name in case.desired)
    news = {**case.desired, field: None, "__given": [field], "ledger": case.entry()}
    result = provider.check({}, news)
    assert [(f.property, f.reason) for f in result.failures] == [
        (
            field,
            f'{field} was given as an Output that resolved to None: pass a value ("" clears a text field), '
            "or leave the argument out to leave the field unmanaged",
        )
    ]
    # Given as an Output that resolved to a value: managed, and the marker is not kept as an input.
    result = provider.check({}, {**case.desired, "__given": [field], "ledger": case.entry()})
    assert result.failures == []
    assert "__given" not in result.inputs and result.inputs[field] == case.desired[field]
    # Left out (None, not given): unmanaged, no failure.
    unmanaged = next(f.name for f in case.setting.optional if f.name not in case.desired)
    assert provider.check({}, {**case.desired, unmanaged: None, "ledger": case.entry()}).failures == []
    assert http.call_count == 0


COMMON_BAD_INPUTS = [
    ({}, "enabled", "enabled is required: set it to True or False explicitly"),
    ({"enabled": None}, "enabled", "enabled is required"),
    ({"enabled": "true"}, "enabled", "got the string 'true'; read config with `config.require_bool(...)`"),
    ({"enabled": 1}, "enabled", "enabled must be a boolean, got int"),
    ({"enabled": True, "on_behalf_of": ""}, "on_behalf_of", "must not be empty; omit it (None)"),
    ({"enabled": True, "on_behalf_of": "   "}, "on_behalf_of", "must not be empty"),
    (
        {"enabled": True, "on_behalf_of": "alice\r\nX-Evil: 1"},
        "on_behalf_of",
        "on_behalf_of 'alice\\r\\nX-Evil: 1' has '\\r' (U+000D, a control character) at position 6: a subuser's "
        "username is printable ASCII without whitespace (an email address is fine); control characters such as "
        "newlines cannot be sent in an HTTP header; remove it",
    ),
    ({"enabled": True, "on_behalf_of": "alice\x00"}, "on_behalf_of", "(U+0000, a control character) at position 6"),
    (
        {"enabled": True, "on_behalf_of": "carol\n"},
        "on_behalf_of",
        "has '\\n' (U+000A, a control character) at position 6",
    ),
    (
        {"enabled": True, "on_behalf_of": " alice"},
        "on_behalf_of",
        "' alice' has ' ' (U+0020, SPACE) at position 1: a subuser's username is printable ASCII without whitespace",
    ),
    (
        {"enabled": True, "on_behalf_of": "\u0441arol"},  # a Cyrillic look-alike of c
        "on_behalf_of",
        "on_behalf_of '\u0441arol' has '\u0441' (U+0441, CYRILLIC SMALL LETTER ES) at position 1: a subuser's username "
        "is printable ASCII without whitespace (an email address is fine); SendGrid's names are ASCII: retype the "
        "name (a look-alike letter pasted from elsewhere?)",
    ),
    (
        {"enabled": True, "on_behalf_of": "car\u200bol"},
        "on_behalf_of",
        "has '\\u200b' (U+200B, ZERO WIDTH SPACE) at position 4: a subuser's username is printable ASCII without "
        "whitespace (an email address is fine); an invisible character, often pasted with the name; retype the name",
    ),
    (
        {"enabled": True, "on_behalf_of": "caf\u00e9"},
        "on_behalf_of",
        "(U+00E9, LATIN SMALL LETTER E WITH ACUTE) at position 4",
    ),
    ({"enabled": True, "on_behalf_of": "a" * 300}, "on_behalf_of", "is 300 characters long"),
    ({"enabled": True, "on_behalf_of": 42}, "on_behalf_of", "must be a string"),
    ({"enabled": True, "on_behalf_of": "account-id"}, "on_behalf_of", "must be 'account-id <id>' with one space"),
    ({"enabled": True, "on_behalf_of": "account-id "}, "on_behalf_of", "the account ID is missing"),
    (
        {"enabled": True, "on_behalf_of": "account-id  4 2"},
        "on_behalf_of",
        "'account-id  4 2' has ' ' (U+0020, SPACE) at position 12: a customer account ID is ASCII letters and digits, "
        "as SendGrid shows it (e.g. sg2a2bcd3ef4ab5c67d8efab91c01de2fa)",
    ),
    (
        {"enabled": True, "on_behalf_of": "account-id sg2a-2bcd"},
        "on_behalf_of",
        "has '-' (U+002D, HYPHEN-MINUS) at position 16: a customer account ID is ASCII letters and digits",
    ),
    ({"enabled": True, "region": "us"}, "region", "region must be one of global, eu (or omitted"),
    ({"enabled": True, "region": "EU"}, "region", "got 'EU'"),
    ({"enabled": True, "on_delete": "destroy"}, "on_delete", "on_delete must be one of restore, keep, disable"),
    ({"enabled": True, "colour": "red"}, "colour", "unknown property 'colour' of"),
]

FIELD_BAD_INPUTS = {
    "click": [({"enabled": True, "enable_text": True}, "enable_text", "enable_text is read-only")],
    "open": [({"enabled": True, "enable_text": True}, "enable_text", "unknown property 'enable_text'")],
    "subscription": [
        ({"enabled": True, "url": "/unsubscribe"}, "url", "must be an absolute http(s) URL"),
        ({"enabled": True, "url": "ftp://example.com/x"}, "url", "must be an absolute http(s) URL"),
        ({"enabled": True, "url": "https://example.com/a b"}, "url", "must not contain spaces"),
        ({"enabled": True, "url": "https://example.com/\n"}, "url", "control characters"),
        ({"enabled": True, "url": "https://" + "a" * 3000}, "url", "at most 2048"),
        ({"enabled": True, "url": 42}, "url", "url must be a string, got int"),
        ({"enabled": True, "html_content": "<p>Unsubscribe</p>"}, "html_content", "<% Unsubscribe here %>"),
        ({"enabled": True, "html_content": "<p><% %></p>"}, "html_content", "with its link text"),
        ({"enabled": True, "plain_content": "Unsubscribe: <%%>"}, "plain_content", "'<% %>' tag"),
        ({"enabled": True, "plain_content": "<% %>\x07"}, "plain_content", "control characters"),
        ({"enabled": True, "replace": "[unsub]\n"}, "replace", "control characters"),
        ({"enabled": True, "landing": "x" * 70_000}, "landing", "at most 65536"),
        ({"enabled": True, "unsubscribe_url": "x"}, "unsubscribe_url", "allowed: enabled, html_content"),
    ],
    "google_analytics": [
        ({"enabled": True, "utm_source": "news\nletter"}, "utm_source", "control characters"),
        ({"enabled": True, "utm_campaign": "c" * 256}, "utm_campaign", "at most 255"),
        ({"enabled": True, "utm_medium": True}, "utm_medium", "utm_medium must be a string, got bool"),
        ({"enabled": True, "utm_name": "x"}, "utm_name", "allowed: enabled, utm_source"),
    ],
}


def bad_inputs() -> list[Any]:
    cases = []
    for name in CASES:
        for news, prop, reason in COMMON_BAD_INPUTS + FIELD_BAD_INPUTS[name]:
            cases.append(pytest.param(name, news, prop, reason, id=f"{name}-{prop}-{reason[:24]}"))
    return cases


@pytest.mark.parametrize(("name", "news", "prop", "reason"), bad_inputs())
def test_check_rejects_bad_input_naming_the_property(
    http: Any, name: str, news: dict[str, Any], prop: str, reason: str
) -> None:
    provider = configured({"sendgrid:apiKey": TEST_KEY}, CASES[name].provider)
    failures = provider.check({}, news).failures
    assert [f.property for f in failures] == [prop]
    assert reason in failures[0].reason
    assert http.call_count == 0


@pytest.mark.parametrize(
    "who",
    [
        "John@example.com",  # tsg_subusers_v3.yaml's own example username
        "o'brien+news_2",
        "account-id sg2a2bcd3ef4ab5c67d8efab91c01de2fa",  # tsg_account_provisioning_v3.yaml's example ID
        "account-id abc123def456hij789klm0",
        "account-id 4242",
    ],
)
def test_check_accepts_sendgrid_usernames_and_account_ids(case: Case, http: Any, who: str) -> None:
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    result = provider.check({}, {**case.desired, "on_behalf_of": who, "ledger": case.entry()})
    assert (result.failures, result.inputs["on_behalf_of"]) == ([], who)
    assert http.call_count == 0


@pytest.mark.parametrize(
    ("config", "setting", "reason"),
    [
        ({"sendgrid:apiKey": TEST_KEY, "sendgrid:region": "mars"}, "sendgrid:region", "unknown region 'mars'"),
        ({}, "sendgrid:apiKey (or SENDGRID_API_KEY)", "no SendGrid API key is set"),
        ({"sendgrid:apiKey": "SG.a b"}, "sendgrid:apiKey", "whitespace"),
        ({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": "http://example.com"}, "sendgrid:baseUrl", "plain http"),
        ({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": "http://127.0.0.1:1"}, "sendgrid:euBaseUrl", "region 'eu'"),
        ({"sendgrid:apiKey": TEST_KEY, "sendgrid:retryBudget": "soon"}, "sendgrid:retryBudget", "number of seconds"),
    ],
)
def test_check_reports_bad_settings_at_preview(
    case: Case, http: Any, config: dict[str, Any], setting: str, reason: str
) -> None:
    news = {**case.desired, "region": "eu"} if setting == "sendgrid:euBaseUrl" else dict(case.desired)
    [failure] = configured(config, case.provider).check({}, news).failures
    assert failure.property == setting
    assert reason in failure.reason and "Hint:" in failure.reason
    assert http.call_count == 0


# -- diff ------------------------------------------------------------------------------------


OURS = base64.b64encode(b"\x80pulumi_sendgrid_tracking.providers\x94").decode()


def applied_outputs(case: Case, **kw: Any) -> dict[str, Any]:
    """The outputs after a create that set the desired values, with this package's pickled provider."""
    return {**case.outputs(live={**case.live, **case.desired}), "__provider": OURS, **kw}


def test_diff_is_local_and_exact(case: Case, provider: SettingProvider, http: Any) -> None:
    olds = applied_outputs(case)

    def diff(**kw: Any) -> tuple[bool, list[str]]:
        result = provider.diff("global", olds, {**case.inputs(**kw), "__provider": "new-pickle"})
        assert result.delete_before_replace is True  # the old account is given back before another is taken
        return bool(result.changes), list(result.replaces or [])

    assert diff() == (False, [])
    assert diff(on_delete=None) == (False, [])
    assert diff(enabled=not case.desired["enabled"]) == (True, [])
    assert diff(on_delete="keep") == (True, [])
    assert diff(on_behalf_of="alice") == (True, ["on_behalf_of"])
    assert diff(region="eu") == (True, ["region"])
    assert diff(enabled=UNKNOWN) == (True, [])
    assert diff(on_behalf_of=UNKNOWN) == (True, ["on_behalf_of"])
    assert diff(name="renamed") == (False, [])  # the engine names it by its account: a rename is no change
    assert diff(name=None) == (False, [])
    for f in case.setting.optional:
        if f.name in case.desired:
            assert diff(**{f.name: None}) == (True, [])  # no longer managed
        else:
            current = case.live.get(f.name) or "x"
            ledger = case.entry({**{k: case.live.get(k) for k in case.desired}, f.name: case.live.get(f.name)})
            assert diff(**{f.name: current}, ledger=ledger) == (True, [])  # newly managed, even at the live value
    assert http.call_count == 0


def test_diff_ignores_a_change_of_the_ledger_entry_alone(case: Case, provider: SettingProvider, http: Any) -> None:
    olds = applied_outputs(case)
    for entry in (
        case.entry({k: "other" if isinstance(case.live.get(k), str) else not case.live.get(k) for k in case.desired}),
        case.entry({}),  # the ledger no longer holds them: the setting does
        case.entry(error="GET ... failed (503)"),
        None,
        UNKNOWN,
    ):
        result = provider.diff("global", olds, case.inputs(ledger=entry))
        assert (result.changes, result.replaces) == (False, [])
    assert http.call_count == 0


def test_diff_refuses_an_update_adding_a_field_with_no_original_anywhere(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    olds = applied_outputs(case)
    new = next(f for f in case.setting.optional if f.name not in case.desired)
    news = case.inputs(**{new.name: "x"})  # its ledger entry holds the desired fields only
    with pytest.raises(SendGridError) as info:
        provider.diff("global", olds, news)
    assert str(info.value) == (
        f"the original of {new.name} ({case.setting.title} of the parent account (global)) is not in the stack's "
        "originals ledger, and this run does not update it: nothing may change a field before its original is "
        f"recorded. Hint: run `pulumi up` without --target/--exclude (or add the ledger to them: {LEDGER_URN_HINT})."
    )
    # Preview of a run that updates the ledger: its entry is unknown, so the diff waits for it.
    assert provider.diff("global", olds, case.inputs(**{new.name: "x"}, ledger=UNKNOWN)).changes is True
    # The ledger holds it: a change.
    ledger = case.entry({**{k: case.live.get(k) for k in case.desired}, new.name: case.live.get(new.name)})
    assert provider.diff("global", olds, case.inputs(**{new.name: "x"}, ledger=ledger)).changes is True
    # The setting holds it itself (managed before, then unmanaged): a change, whatever the ledger says.
    held = {**{k: case.live.get(k) for k in case.desired}, new.name: "from-before"}
    olds = {**case.outputs(live={**case.live, **case.desired}, originals=held), "__provider": OURS}
    assert provider.diff("global", olds, case.inputs(**{new.name: "x"}, ledger=case.entry({}))).changes is True
    assert http.call_count == 0


def test_diff_of_a_replacement_does_not_look_for_originals(case: Case, provider: SettingProvider) -> None:
    # Another account is another resource: its create is checked (and reads the ledger) on its own.
    result = provider.diff("global", applied_outputs(case), case.inputs(on_behalf_of="bob", ledger=None))
    assert (result.changes, result.replaces) == (True, ["on_behalf_of"])


def test_diff_asks_for_one_update_of_legacy_outputs(case: Case, provider: SettingProvider, http: Any) -> None:
    # 0.1.0: another package's pickled provider. 0.2.0: original_<field> only (no originals, held_fields).
    legacy = base64.b64encode(b"\x80\x04\x95provider.click_tracking\x94ClickTrackingProvider\x94").decode()
    assert provider.diff("global", applied_outputs(case, __provider=legacy), case.inputs()).changes is True
    v020 = {k: v for k, v in applied_outputs(case).items() if k not in ("originals", "held_fields", "name")}
    result = provider.diff("global", v020, case.inputs(name=None, ledger=None))
    assert (result.changes, result.replaces) == (True, [])
    assert http.call_count == 0


# -- create ----------------------------------------------------------------------------------


def test_create_after_the_ledgers_read_in_this_process_sends_only_the_differing_fields(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    RUN.read(case.key("alice"), case.parsed())  # the ledger read alice moments ago, in this process
    http.patch(case.url(), json=case.answer(**case.differing()))
    result = provider.create(case.inputs(on_behalf_of="alice"))
    assert sent(http) == [("PATCH", case.url(), "alice", case.differing())]  # no GET of its own
    assert result.id == "global/alice"
    assert result.outs == case.outputs(live={**case.live, **case.differing()}, on_behalf_of="alice")
    assert RUN.take_fresh(case.key("alice")) is None  # used once


def test_create_without_the_ledgers_read_reads_first_and_takes_originals_from_the_ledger(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    # A create retried after an interruption (its PATCH landed, the run was killed): the account already
    # holds the desired values; the originals are the ledger's, read before this stack changed anything.
    http.get(case.url(), json=case.answer(**case.desired))
    result = provider.create(case.inputs())
    assert sent(http) == [("GET", case.url(), None, None)]  # nothing differs: no PATCH
    assert result.outs == case.outputs(live={**case.live, **case.desired})
    assert {k: result.outs[original_key(k)] for k in case.desired} == {k: case.live.get(k) for k in case.desired}


def test_create_copies_the_originals_of_the_managed_fields_only(optional_case: Case, http: Any) -> None:
    # The entry also holds a field the program no longer manages (managed, then unmanaged): the ledger keeps
    # it while the account is declared; the setting copies a field's original when it first manages it.
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    other = next(f.name for f in case.setting.optional if f.name not in case.desired)
    originals = {**{k: case.live.get(k) for k in case.desired}, other: "from-before"}
    RUN.read(case.key(), case.parsed(**case.desired))
    result = provider.create(case.inputs(ledger=case.entry(originals)))
    assert http.call_count == 0  # the values are in already
    assert result.outs == case.outputs(live={**case.live, **case.desired})
    assert other not in result.outs["held_fields"]


def test_create_sends_false_and_empty_strings_and_never_unmanaged_fields(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    blanks = {f.name: "" for f in case.setting.optional if f.name in ("replace", "landing") or f.name[:4] == "utm_"}
    desired = {"enabled": False, **blanks}
    found = case.parsed(enabled=True, **dict.fromkeys(blanks, "old"))
    RUN.read(case.key(), found)
    http.patch(case.url(), json=case.answer(**desired))
    ledger = {"originals": {k: found[k] for k in desired}, "held": sorted(desired)}
    provider.create({**desired, "region": "global", "on_delete": "restore", "ledger": ledger})
    [(_, _, _, body)] = sent(http)
    assert body == desired  # the unmanaged fields (html_content, url...) are not in it
    assert b"false" in http.request_history[0].body


def test_create_without_an_original_sends_nothing(case: Case, provider: SettingProvider, http: Any) -> None:
    missing = sorted(case.desired)[0]
    entry = case.entry({k: case.live.get(k) for k in case.desired if k != missing})
    with pytest.raises(SendGridError, match=rf"^the original of {missing} \({case.setting.title} of the parent"):
        provider.create(case.inputs(ledger=entry))
    with pytest.raises(SendGridError, match=r"is not in the stack's originals ledger"):
        provider.create(case.inputs(ledger=None))
    assert http.call_count == 0


def test_create_when_the_ledger_could_not_read_the_account_sends_nothing_and_says_why(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    cause = f"GET {case.setting.path} on behalf of 'alice' failed (500): boom. Hint: try again later."
    with pytest.raises(SendGridError) as info:
        provider.create(case.inputs(on_behalf_of="alice", ledger=case.entry({}, error=cause)))
    assert str(info.value) == (
        f"{case.setting.title} of subuser 'alice' (global) could not be read before taking it over, so nothing was "
        f"changed: {cause}. Hint: fix the cause above and run `pulumi up` again; the original is read first."
    )
    assert http.call_count == 0


def test_create_without_key_fails_before_sending(case: Case, http: Any) -> None:
    with pytest.raises(ConfigurationError, match="no SendGrid API key is set"):
        configured({}, case.provider).create(case.inputs())
    assert http.call_count == 0


def test_create_in_the_eu_builds_outputs_from_what_sendgrid_answered(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    answer = case.answer(**case.desired)
    http.get(case.url(EU), json=case.answer())
    http.patch(case.url(EU), json=answer)
    result = provider.create(case.inputs(region="eu", on_behalf_of="account-id 42", on_delete="disable"))
    assert result.id == "eu/account-id 42"
    assert [(r.method, r.url) for r in http.request_history] == [("GET", case.url(EU)), ("PATCH", case.url(EU))]
    assert {f.name: result.outs[f.name] for f in case.setting.fields} == case.setting.parse(answer)
    assert (result.outs["region"], result.outs["on_delete"]) == ("eu", "disable")


# -- a PATCH that fails: read again, record what landed ------------------------------------------


N = 10_000
"""A fault that lasts longer than the retry budget."""
FAILED_PATCHES: dict[str, tuple[type[SendGridError], list[tuple[str, int]]]] = {
    # The first answer is lost after SendGrid applied the PATCH; every retry fails until the budget ends.
    "connection-reset": (TransportError, [("reset", 1), ("reset", N)]),
    "500": (ServerError, [("500", 1), ("500", N)]),
    "503-then-429s": (RateLimitError, [("503", 1), ("429", N)]),
    "malformed-2xx": (MalformedResponseError, [("malformed", 1), ("malformed", N)]),
}


def emulated(emulator: Emulator, case: Case) -> SettingProvider:
    emulator.state.add_subuser("global", "alice")
    emulator.state.set_out_of_band("global", "alice", case.setting.name, case.answer())
    return configured(
        {"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": emulator.base_url, "sendgrid:retryBudget": "30"},
        case.provider,
    )


def fail_patches(emulator: Emulator, kind: str, *, landed: bool) -> type[SendGridError]:
    error, faults = FAILED_PATCHES[kind]
    for i, (fault, count) in enumerate(faults):
        emulator.state.add_fault(Fault(fault, count=count, method="PATCH", account="alice", apply=landed and i == 0))
    return error


def alice(emulator: Emulator, case: Case) -> dict[str, Any]:
    return dict(emulator.state.snapshot()["global"]["subusers"]["alice"][case.setting.name])


def changes_then_one_read(emulator: Emulator) -> list[tuple[str, int]]:
    """The log reduced to what matters: every PATCH attempt, then the one GET that read the setting again."""
    log = [(e["method"], e["status"]) for e in emulator.state.request_log()]
    patches = [m for m, _ in log[:-1]]
    assert patches and set(patches) == {"PATCH"}, log
    return log[-1:]


def take_over(op: str, case: Case, provider: SettingProvider) -> Any:
    """create (after the ledger's read of this run: its only request is the PATCH) or update, for alice."""
    if op == "create":
        RUN.read(case.key("alice"), case.parsed())
        return provider.create(case.inputs(on_behalf_of="alice"))
    return provider.update("global/alice", case.outputs(on_behalf_of="alice"), case.inputs(on_behalf_of="alice"))


@pytest.mark.parametrize("op", ["create", "update"])
@pytest.mark.parametrize("kind", list(FAILED_PATCHES))
def test_a_failed_patch_that_landed_is_recorded_as_landed(
    emulator: Emulator, waits: list[float], case: Case, kind: str, op: str
) -> None:
    provider = emulated(emulator, case)
    fail_patches(emulator, kind, landed=True)
    result = take_over(op, case, provider)
    assert changes_then_one_read(emulator) == [("GET", 200)]
    assert alice(emulator, case) == case.answer(**case.desired)
    assert sum(1 for e in emulator.state.request_log() if e["changed"]) == 1
    # The new live values are recorded: a program reverted to the old values would show a change.
    assert result.outs == case.outputs(live={**case.live, **case.desired}, on_behalf_of="alice")


@pytest.mark.parametrize("op", ["create", "update"])
@pytest.mark.parametrize("kind", list(FAILED_PATCHES))
def test_a_failed_patch_that_did_not_land_raises_its_own_error(
    emulator: Emulator, waits: list[float], case: Case, kind: str, op: str
) -> None:
    provider = emulated(emulator, case)
    error = fail_patches(emulator, kind, landed=False)
    with pytest.raises(SendGridError) as info:
        take_over(op, case, provider)
    assert type(info.value) is error
    assert f"PATCH {case.setting.path} on behalf of 'alice'" in str(info.value)
    assert "landed is unknown" not in str(info.value)
    assert changes_then_one_read(emulator) == [("GET", 200)]
    assert alice(emulator, case) == case.answer()
    assert not any(e["changed"] for e in emulator.state.request_log())


@pytest.mark.parametrize("op", ["create", "update"])
def test_a_failed_patch_that_cannot_be_read_again_says_the_outcome_is_unknown(
    emulator: Emulator, waits: list[float], case: Case, op: str
) -> None:
    provider = emulated(emulator, case)
    fail_patches(emulator, "500", landed=True)
    emulator.state.add_fault(Fault("503", count=N, method="GET", account="alice"))
    with pytest.raises(SendGridError) as info:
        take_over(op, case, provider)
    before = ", ".join(f"{k}={v!r}" for k, v in case.parsed().items())
    assert re.fullmatch(
        re.escape(f"PATCH {case.setting.path} on behalf of 'alice' failed (500): fault 500")
        + r" after \d+ attempts"
        + re.escape(
            f"; whether the change to {case.setting.title} of subuser 'alice' (global) landed is unknown "
            f"(before: {before}). Hint: run `pipelines/deploy` (or `pulumi up --refresh`) again: it reads SendGrid "
            "and converges; the values from before are in this message."
        ),
        str(info.value),
    ), str(info.value)
    assert TEST_KEY not in str(info.value)
    methods = [e["method"] for e in emulator.state.request_log()]
    assert "GET" in methods and set(methods[methods.index("GET") :]) == {"GET"}  # read again (and retried)


def test_a_failed_patch_that_partly_landed_records_what_landed(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    first, *rest = sorted(case.differing())
    http.patch(case.url(), status_code=502, json={})
    http.get(case.url(), json=case.answer(**{first: case.desired[first]}))
    result = provider.update("global", case.outputs(), case.inputs())
    assert [r.method for r in http.request_history] == ["PATCH", "GET"]
    assert result.outs == case.outputs(live={**case.live, first: case.desired[first]})
    assert rest and provider.diff("global", result.outs, case.inputs()).changes is True  # the rest is still to do


REFUSALS = [
    (400, BadRequestError, {"errors": [{"field": "enabled", "message": "invalid"}]}),
    (401, AuthenticationError, {"errors": [{"message": "authorization required"}]}),
    (403, PermissionDeniedError, FORBIDDEN),
    (404, NotFoundError, {"errors": [{"message": "not found"}]}),
    (451, DataResidencyError, {"errors": [{"message": "wrong region"}]}),
]


@pytest.mark.parametrize("op", ["create", "update"])
@pytest.mark.parametrize(("status", "error", "body"), REFUSALS, ids=[str(r[0]) for r in REFUSALS])
def test_an_explicit_refusal_is_not_read_again(
    case: Case, provider: SettingProvider, http: Any, op: str, status: int, error: type[SendGridError], body: Any
) -> None:
    http.patch(case.url(), status_code=status, json=body)
    with pytest.raises(error, match=rf"PATCH {case.setting.path} failed \({status}\)"):
        if op == "create":
            RUN.read(case.key(), case.parsed())
            provider.create(case.inputs())
        else:
            provider.update("global", case.outputs(), case.inputs())
    assert [r.method for r in http.request_history] == ["PATCH"]  # SendGrid said no: nothing changed


def test_a_refusal_for_a_gone_subuser_probes_the_parent_only(case: Case, provider: SettingProvider, http: Any) -> None:
    http.patch(case.url(), status_code=403, json=FORBIDDEN)
    http.get(case.url(), json=case.answer())
    with pytest.raises(AccountGoneError):
        provider.update("global/bob", case.outputs(on_behalf_of="bob"), case.inputs(on_behalf_of="bob"))
    assert [(m, obo) for m, _, obo, _ in sent(http)] == [("PATCH", "bob"), ("GET", None)]  # bob is not read again


# -- read ------------------------------------------------------------------------------------


def test_read_returns_live_values_as_outputs_and_managed_inputs(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    drifted = {"enabled": not case.desired["enabled"]}
    http.get(case.url(), json=case.answer(**drifted))
    recorded = {**case.outputs(live={**case.live, **case.desired}, on_behalf_of="bob"), "__provider": "p"}
    result = provider.read("global/bob", recorded)
    assert sent(http) == [("GET", case.url(), "bob", None)]
    assert result.id == "global/bob"
    assert result.outs == case.outputs(live={**case.live, **drifted}, on_behalf_of="bob")  # originals kept
    managed_live = {k: case.parsed(**drifted)[k] for k in case.desired}
    assert result.inputs == {
        **managed_live,
        "on_behalf_of": "bob",
        "region": "global",
        "on_delete": "restore",
        "name": "x",
    }


def test_read_of_a_gone_account_names_both_ways_out(case: Case, provider: SettingProvider, http: Any) -> None:
    http.get(case.url(), [{"status_code": 403, "json": FORBIDDEN}, {"json": case.answer()}])
    with pytest.raises(AccountGoneError) as info:
        provider.read("global/bob", case.outputs(on_behalf_of="bob"))
    text = str(info.value)
    assert "'bob' seems to be gone" in text
    assert "on_delete to 'keep'" in text and "onDelete: keep" in text
    assert "pulumi state delete" in text and "'global/bob'" in text
    assert [(m, obo) for m, _, obo, _ in sent(http)] == [("GET", "bob"), ("GET", None)]  # one probe of the parent


def test_read_403_when_the_parent_is_refused_too_is_about_the_key(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), status_code=403, json=FORBIDDEN)
    with pytest.raises(PermissionDeniedError) as info:
        provider.read("global/bob", case.outputs(on_behalf_of="bob"))
    assert not isinstance(info.value, AccountGoneError)
    assert f"tracking_settings.{case.setting.name}.read scope" in str(info.value)


# -- update ----------------------------------------------------------------------------------


def test_update_sends_one_patch_of_the_differing_managed_fields(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.patch(case.url(), json=case.answer(**case.differing()))
    result = provider.update("global", case.outputs(), case.inputs())
    assert sent(http) == [("PATCH", case.url(), None, case.differing())]
    assert result.outs == case.outputs(live={**case.live, **case.differing()})


def test_update_of_on_delete_or_the_name_only_sends_nothing(case: Case, provider: SettingProvider, http: Any) -> None:
    olds = case.outputs(live={**case.live, **case.desired})
    result = provider.update("global", olds, case.inputs(on_delete="keep", name="renamed"))
    assert http.call_count == 0
    assert result.outs == {**olds, "on_delete": "keep", "name": "renamed"}


def test_update_newly_managed_field_takes_its_original_from_the_ledger(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    # Managed so far: enabled only; the last answer shows other values than the ledger read before this run's
    # PATCH (so an original is never the last answered value, which this stack may have written).
    olds = case.outputs(originals={"enabled": case.live["enabled"]}, managed=["enabled"])
    new = [k for k in case.desired if k != "enabled"]
    ledger = case.entry({**{k: case.live.get(k) for k in case.desired}, **{k: f"read-by-the-ledger-{k}" for k in new}})
    http.patch(case.url(), json=case.answer(**case.differing()))
    result = provider.update("global", olds, case.inputs(ledger=ledger))
    assert [r.method for r in http.request_history] == ["PATCH"]  # no GET
    assert {k: result.outs[original_key(k)] for k in new} == {k: f"read-by-the-ledger-{k}" for k in new}
    assert result.outs["managed_fields"] == sorted(case.desired)
    assert result.outs["held_fields"] == sorted(case.desired)


def test_update_no_longer_managed_field_is_not_sent_and_its_original_is_kept(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    olds = case.outputs(live={**case.live, **case.desired})
    dropped = [k for k in case.desired if k != "enabled"]
    result = provider.update("global", olds, case.inputs(**dict.fromkeys(dropped)))
    assert http.call_count == 0
    assert result.outs["managed_fields"] == ["enabled"]
    assert all(result.outs[original_key(k)] is None for k in dropped)
    assert result.outs["held_fields"] == sorted(case.desired)  # still held, for when it is managed again
    assert result.outs["originals"] == {k: v for k, v in case.live.items() if k in case.desired and v is not None}


def test_a_field_managed_unmanaged_and_managed_again_keeps_its_first_original(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    field = next(k for k in case.desired if k != "enabled" and case.live.get(k) is not None)
    first = case.live[field]
    olds = case.outputs(live={**case.live, **case.desired})
    unmanaged = provider.update("global", olds, case.inputs(**{field: None})).outs
    # Managed again (with a value this stack wrote before): the ledger's entry may even say otherwise.
    ledger = case.entry({**{k: case.live.get(k) for k in case.desired}, field: "a-value-this-stack-wrote"})
    news = case.inputs(**{field: "again"}, ledger=ledger)
    assert provider.diff("global", unmanaged, news).changes is True
    http.patch(case.url(), json=case.answer(**{**case.desired, field: "again"}))
    again = provider.update("global", unmanaged, news).outs
    assert sent(http) == [("PATCH", case.url(), None, {field: "again"})]
    assert again[original_key(field)] == first and again["originals"][field] == first


def test_update_of_legacy_outputs_sends_nothing_and_keeps_their_originals(case: Case, http: Any) -> None:
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    new = case.outputs(live={**case.live, **case.desired})
    v020 = {k: v for k, v in new.items() if k not in ("originals", "held_fields", "name")}
    if not case.setting.optional:
        del v020["managed_fields"]  # 0.2.0 recorded it for settings with optional fields only
    result = provider.update("global", v020, case.inputs(ledger=None))
    assert http.call_count == 0
    assert result.outs == new


# -- delete: the setting gives its account back from its own originals -------------------------


def given_up(case: Case, on_delete: str = "restore", **kw: Any) -> dict[str, Any]:
    """The state of a setting whose desired values are in: what the engine passes its delete."""
    return {**case.outputs(live={**case.live, **case.desired}, on_delete=on_delete, **kw), "__provider": OURS}


def test_delete_keep_sends_nothing(case: Case, provider: SettingProvider, http: Any) -> None:
    provider.delete("global/alice", given_up(case, "keep", on_behalf_of="alice"))
    assert http.call_count == 0


def test_delete_restore_reads_then_patches_what_differs_from_the_originals(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), json=case.answer(**case.desired))
    http.patch(case.url(), json=case.answer())
    provider.delete("global/alice", given_up(case, on_behalf_of="alice"))
    assert sent(http) == [
        ("GET", case.url(), "alice", None),
        ("PATCH", case.url(), "alice", case.restore_body()),  # an absent url original is put back as ""
    ]


def test_delete_restores_the_live_values_not_the_recorded_ones(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    # Drifted since the last run (someone changed it in the UI): the live values decide what is sent.
    drifted = {k: v for k, v in case.desired.items() if k != "enabled"}
    http.get(case.url(), json=case.answer(**drifted))  # enabled is back to its original already
    http.patch(case.url(), json=case.answer())
    provider.delete("global", given_up(case))
    expected = case.restore_body({**case.live, **drifted})
    assert sent(http) == [("GET", case.url(), None, None)] + (
        [("PATCH", case.url(), None, expected)] if expected else []
    )
    assert "enabled" not in expected


def test_delete_sends_only_a_get_when_the_account_already_holds_the_target(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), json=case.answer())  # live == originals
    provider.delete("global", given_up(case))
    http.get(case.url(), json=case.answer(enabled=False))
    provider.delete("global", given_up(case, "disable"))
    assert [r.method for r in http.request_history] == ["GET", "GET"]


def test_delete_disable_turns_it_off_and_touches_nothing_else(case: Case, provider: SettingProvider, http: Any) -> None:
    http.get(case.url(), json=case.answer(enabled=True))
    http.patch(case.url(), json=case.answer(enabled=False))
    provider.delete("global/alice", given_up(case, "disable", on_behalf_of="alice"))
    assert sent(http) == [("GET", case.url(), "alice", None), ("PATCH", case.url(), "alice", {"enabled": False})]


def test_delete_restores_a_field_managed_later_to_its_own_original(optional_case: Case, http: Any) -> None:
    case = optional_case
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    field = next(k for k in case.desired if k != "enabled" and case.live.get(k) is not None)
    originals = {**{k: case.live.get(k) for k in case.desired}, field: "found-when-it-became-managed"}
    props = {**case.outputs(live={**case.live, **case.desired}, originals=originals), "__provider": OURS}
    http.get(case.url(), json=case.answer(**case.desired))
    http.patch(case.url(), json=case.answer())
    provider.delete("global", props)
    [_, (_, _, _, body)] = sent(http)
    assert body[field] == "found-when-it-became-managed"


def test_delete_of_a_gone_subuser_names_its_resource_and_both_ways_out(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), [{"status_code": 403, "json": FORBIDDEN}, {"json": case.answer()}])
    with pytest.raises(AccountGoneError) as info:
        provider.delete("global/bob", given_up(case, on_behalf_of="bob"))
    text = str(info.value)
    assert text.startswith(f"GET {case.setting.path} on behalf of 'bob' failed (403): access forbidden. Hint: 'bob'")
    assert f"its {case.setting.resource} resource 'global/bob' (`pulumi stack --show-urns` lists its URN)" in text
    assert "(2) `pulumi state delete <urn>`: the resource leaves the state without touching SendGrid" in text
    assert "adoption" not in text and "record" not in text and "--target-dependents" not in text
    assert [(m, obo) for m, _, obo, _ in sent(http)] == [("GET", "bob"), ("GET", None)]  # no PATCH


def test_delete_whose_patch_is_refused_for_a_gone_subuser(case: Case, provider: SettingProvider, http: Any) -> None:
    http.get(case.url(), [{"json": case.answer(**case.desired)}, {"json": case.answer()}])
    http.patch(case.url(), status_code=403, json=FORBIDDEN)
    with pytest.raises(AccountGoneError, match=f"its {case.setting.resource} resource 'global/bob'"):
        provider.delete("global/bob", given_up(case, on_behalf_of="bob"))
    assert [(m, obo) for m, _, obo, _ in sent(http)] == [("GET", "bob"), ("PATCH", "bob"), ("GET", None)]


def test_a_failed_delete_raises_so_the_setting_stays_in_the_state(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), json=case.answer(**case.desired))
    http.patch(case.url(), status_code=401, json={"errors": [{"message": "authorization required"}]})
    with pytest.raises(SendGridError, match=r"failed \(401\)"):
        provider.delete("global", given_up(case))
    assert [r.method for r in http.request_history] == ["GET", "PATCH"]  # a refusal: not read again
    assert not RUN.given_back(case.key())


def test_a_delete_whose_patch_landed_unanswered_succeeds(case: Case, provider: SettingProvider, http: Any) -> None:
    http.get(case.url(), [{"json": case.answer(**case.desired)}, {"json": case.answer()}])
    http.patch(case.url(), status_code=502, json={})
    provider.delete("global", given_up(case))
    assert [r.method for r in http.request_history] == ["GET", "PATCH", "GET"]
    assert RUN.given_back(case.key())


def test_a_replacement_in_one_process_takes_over_from_the_live_values(case: Case, emulator: Emulator) -> None:
    """Found while writing these tests: the ledger's read of this run was reused by a create that followed
    the give-back of the same account (a replacement, delete first), so the create compared the desired values
    with what the account held before the give-back, left out what had just been put back, and recorded
    values SendGrid no longer held."""
    provider = emulated(emulator, case)
    taken = {**case.live, **case.desired}
    emulator.state.set_out_of_band("global", "alice", case.setting.name, case.answer(**case.desired))
    RUN.read(case.key("alice"), case.setting.parse(case.answer(**case.desired)))  # e.g. a field newly managed
    provider.delete("global/alice", given_up(case, on_behalf_of="alice"))  # restores the originals
    assert alice(emulator, case) == case.answer()
    result = provider.create(case.inputs(on_behalf_of="alice"))
    assert alice(emulator, case) == case.answer(**case.desired)
    assert result.outs == case.outputs(live=taken, on_behalf_of="alice")
    log = [(e["method"], e["body"]) for e in emulator.state.request_log()]
    assert log == [("GET", None), ("PATCH", case.restore_body()), ("GET", None), ("PATCH", case.differing())]


# -- settings at call time -------------------------------------------------------------------


def test_environment_key_is_used_when_stack_config_has_none(
    case: Case, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", TEST_KEY)
    http.get(case.url(), json=case.answer())
    configured({}, case.provider).read("global", case.outputs())
    assert http.request_history[0].headers["Authorization"] == f"Bearer {TEST_KEY}"


def test_rotated_key_is_used_by_the_next_call(case: Case, http: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = case.provider()
    monkeypatch.setenv("SENDGRID_API_KEY", TEST_KEY)
    http.get(case.url(), json=case.answer())
    provider.read("global", case.outputs())
    monkeypatch.setenv("SENDGRID_API_KEY", OTHER_KEY)
    provider.read("global", case.outputs())
    assert [r.headers["Authorization"] for r in http.request_history] == [f"Bearer {TEST_KEY}", f"Bearer {OTHER_KEY}"]


def test_resource_id() -> None:
    assert [resource_id("global", None), resource_id("eu", "alice"), resource_id("global", "account-id 42")] == [
        "global",
        "eu/alice",
        "global/account-id 42",
    ]


def test_an_empty_url_is_what_an_absent_one_reads_as(http: Any) -> None:
    case = CASES["subscription"]
    provider = configured({"sendgrid:apiKey": TEST_KEY}, case.provider)
    olds = case.outputs(
        live={**case.live, "url": None}, originals={"enabled": False, "url": None}, managed=["enabled", "url"]
    )
    news = case.inputs(url="", enabled=False, plain_content=None)
    assert provider.diff("global", olds, news).changes is False  # no perpetual diff for url: ""
    assert provider.update("global", olds, news).outs["url"] is None
    assert http.call_count == 0
