"""The one provider mechanism, for every setting, with requests-mock: requests sent and not sent, outputs.

Parametrized over the four setting descriptions; fixtures are built from the descriptions too.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
import requests_mock
from pulumi_sendgrid_tracking import (
    AdoptionProvider,
    ClickTrackingProvider,
    GoogleAnalyticsProvider,
    OpenTrackingProvider,
    SendGridError,
    SubscriptionTrackingProvider,
)
from pulumi_sendgrid_tracking.errors import AccountGoneError, ConfigurationError, PermissionDeniedError, ServerError
from pulumi_sendgrid_tracking.inputs import resource_id
from pulumi_sendgrid_tracking.singleton import RUN, SettingProvider, original_key
from pulumi_sendgrid_tracking.tracking import CLICK, GOOGLE_ANALYTICS, OPEN, SUBSCRIPTION, TrackingSetting

from .conftest import OTHER_KEY, TEST_KEY, configured

GLOBAL = "https://api.sendgrid.com"
EU = "https://api.eu.sendgrid.com"
UNKNOWN = pulumi.output.Unknown()
FORBIDDEN = {"errors": [{"field": None, "message": "access forbidden"}]}


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

    def inputs(self, **kw: Any) -> dict[str, Any]:
        return {**self.desired, "on_behalf_of": None, "region": "global", "on_delete": "restore", **kw}

    def parsed(self, **changes: Any) -> dict[str, Any]:
        return self.setting.parse(self.answer(**changes))

    def outputs(self, live: dict[str, Any] | None = None, originals: dict[str, Any] | None = None, **kw: Any) -> dict:
        values = self.setting.parse({k: v for k, v in (live or self.live).items() if v is not None})
        originals = originals if originals is not None else {k: self.live.get(k) for k in self.desired}
        outs: dict[str, Any] = {**values, "on_behalf_of": None, "region": "global", "on_delete": "restore"}
        for f in self.setting.writable:
            outs[original_key(f.name)] = originals.get(f.name)
        if self.setting.optional:
            outs["managed_fields"] = sorted(originals)
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


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
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


def adopt(case: Case, **changes: Any) -> dict[str, Any]:
    """An adoption record's outputs, as the setting's input: read in this process moments ago."""
    observed = case.parsed(**changes)
    RUN.adopted("t-fresh", observed)
    return {"observed": observed, "token": "t-fresh"}


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
    result = provider.check({}, {**news, "__provider": "p"})
    assert result.failures == []
    assert result.inputs == case.inputs()
    assert http.call_count == 0


def test_check_resolves_the_stack_region(case: Case, http: Any) -> None:
    eu = configured({"sendgrid:region": "eu", "sendgrid:apiKey": TEST_KEY}, case.provider)
    assert eu.check({}, dict(case.desired)).inputs["region"] == "eu"
    assert http.call_count == 0


def test_check_accepts_unknowns_during_preview(case: Case, provider: SettingProvider) -> None:
    news = {**dict.fromkeys(case.desired, UNKNOWN), "on_behalf_of": UNKNOWN, "region": UNKNOWN, "on_delete": UNKNOWN}
    result = provider.check({}, news)
    assert result.failures == []
    assert all(isinstance(v, pulumi.output.Unknown) for v in result.inputs.values())


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
    result = provider.check({}, {**case.desired, "on_behalf_of": who})
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


def test_diff_is_local_and_exact(case: Case, provider: SettingProvider, http: Any) -> None:
    olds = {**case.outputs(live=case.parsed(**case.desired)), "__provider": base64.b64encode(b"x").decode()}
    olds["__provider"] = base64.b64encode(b"\x80pulumi_sendgrid_tracking.providers\x94").decode()

    def diff(**kw: Any) -> tuple[bool, list[str]]:
        result = provider.diff("global", olds, {**case.inputs(**kw), "__provider": "new-pickle"})
        assert result.delete_before_replace is False  # create before delete; the old account is restored after
        return bool(result.changes), list(result.replaces or [])

    assert diff() == (False, [])
    assert diff(on_delete=None) == (False, [])
    assert diff(enabled=not case.desired["enabled"]) == (True, [])
    assert diff(on_delete="keep") == (True, [])
    assert diff(on_behalf_of="alice") == (True, ["on_behalf_of"])
    assert diff(region="eu") == (True, ["region"])
    assert diff(enabled=UNKNOWN) == (True, [])
    assert diff(on_behalf_of=UNKNOWN) == (True, ["on_behalf_of"])
    for f in case.setting.optional:
        if f.name in case.desired:
            assert diff(**{f.name: None}) == (True, [])  # no longer managed: the original is forgotten
        else:
            current = case.live.get(f.name) or "x"
            assert diff(**{f.name: current}) == (True, [])  # newly managed, even at the live value
    assert http.call_count == 0


def test_diff_asks_for_one_update_of_state_written_by_0_1_0(case: Case, provider: SettingProvider) -> None:
    legacy = base64.b64encode(b"\x80\x04\x95provider.click_tracking\x94ClickTrackingProvider\x94").decode()
    olds = {**case.outputs(live=case.parsed(**case.desired)), "__provider": legacy}
    assert provider.diff("global", olds, {**case.inputs(), "__provider": "new"}).changes is True


# -- create ----------------------------------------------------------------------------------


def test_create_with_a_fresh_record_sends_only_the_differing_managed_fields(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.patch(case.url(), json=case.answer(**case.differing()))
    result = provider.create({**case.inputs(on_behalf_of="alice"), "adoption": adopt(case)})
    assert sent(http) == [("PATCH", case.url(), "alice", case.differing())]  # no GET: the record just read it
    assert result.id == "global/alice"
    assert result.outs == case.outputs(live={**case.live, **case.differing()}, on_behalf_of="alice")


def test_create_without_a_fresh_record_reads_first_and_takes_originals_from_the_record(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    # A rename, or a create retried after an interruption: the account already holds the desired values,
    # and the record (read before this stack changed anything) holds the originals.
    http.get(case.url(), json=case.answer(**case.desired))
    record = {"observed": case.parsed(), "token": "read-in-another-run"}
    result = provider.create({**case.inputs(), "adoption": record})
    assert sent(http) == [("GET", case.url(), None, None)]  # nothing differs: no PATCH
    assert result.outs == case.outputs(live={**case.live, **case.desired})
    assert {k: result.outs[original_key(k)] for k in case.desired} == {k: case.live.get(k) for k in case.desired}


def test_create_sends_false_and_empty_strings_and_never_unmanaged_fields(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    blanks = {f.name: "" for f in case.setting.optional if f.name in ("replace", "landing") or f.name[:4] == "utm_"}
    desired = {"enabled": False, **blanks}
    observed = case.parsed(enabled=True, **dict.fromkeys(blanks, "old"))
    RUN.adopted("t", observed)
    http.patch(case.url(), json=case.answer(**desired))
    provider.create(
        {**desired, "region": "global", "on_delete": "restore", "adoption": {"observed": observed, "token": "t"}}
    )
    [(_, _, _, body)] = sent(http)
    assert body == desired  # the unmanaged fields (html_content, url...) are not in it
    assert b"false" in http.request_history[0].body


def test_create_failed_patch_with_old_values_still_there_raises(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), json=case.answer())
    http.patch(case.url(), status_code=500, json={"errors": [{"message": "boom"}]})
    with pytest.raises(ServerError, match=rf"PATCH {case.setting.path} failed \(500\): boom"):
        provider.create({**case.inputs(), "adoption": adopt(case)})
    assert [r.method for r in http.request_history] == ["PATCH", "GET"]


def test_create_lost_patch_answer_but_change_landed_succeeds(case: Case, provider: SettingProvider, http: Any) -> None:
    http.get(case.url(), json=case.answer(**case.desired))
    http.patch(case.url(), status_code=502, json={})
    result = provider.create({**case.inputs(), "adoption": adopt(case)})
    assert result.outs == case.outputs(live={**case.live, **case.desired})


def test_create_unknown_outcome_says_so_with_the_values_from_before(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.get(case.url(), status_code=503, json={})
    http.patch(case.url(), status_code=503, json={})
    with pytest.raises(SendGridError) as info:
        provider.create({**case.inputs(), "adoption": adopt(case)})
    text = str(info.value)
    assert f"whether the change to {case.setting.title} of the parent account (global) landed is unknown" in text
    assert f"enabled={case.live['enabled']!r}" in text
    assert "Hint: run `pulumi refresh`" in text


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
    result = provider.create({**case.inputs(region="eu", on_behalf_of="account-id 42", on_delete="disable")})
    assert result.id == "eu/account-id 42"
    assert [r.url for r in http.request_history] == [case.url(EU), case.url(EU)]
    assert {f.name: result.outs[f.name] for f in case.setting.fields} == case.setting.parse(answer)


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
    assert result.outs == case.outputs(live={**case.live, **drifted}, on_behalf_of="bob")
    managed_live = {k: case.parsed(**drifted)[k] for k in case.desired}
    assert result.inputs == {**managed_live, "on_behalf_of": "bob", "region": "global", "on_delete": "restore"}


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


def test_update_lost_patch_answer_but_change_landed_succeeds(case: Case, provider: SettingProvider, http: Any) -> None:
    """Found by tests/e2e/test_stateful.py: a failed update leaves the old values in the state, so a program
    reverted to them would preview "no changes" while SendGrid holds the new ones. A change that landed is a
    successful update."""
    http.patch(case.url(), status_code=502, json={})
    http.get(case.url(), json=case.answer(**case.differing()))
    result = provider.update("global", case.outputs(), case.inputs())
    assert [r.method for r in http.request_history] == ["PATCH", "GET"]
    assert result.outs == case.outputs(live={**case.live, **case.differing()})


def test_update_failed_patch_with_old_values_still_there_raises(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.patch(case.url(), status_code=500, json={"errors": [{"message": "boom"}]})
    http.get(case.url(), json=case.answer())
    with pytest.raises(ServerError, match=rf"PATCH {case.setting.path} failed \(500\): boom"):
        provider.update("global", case.outputs(), case.inputs())
    assert [r.method for r in http.request_history] == ["PATCH", "GET"]


def test_update_unknown_outcome_says_so_with_the_values_from_before(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    http.patch(case.url(), status_code=503, json={})
    http.get(case.url(), status_code=503, json={})
    with pytest.raises(SendGridError) as info:
        provider.update("global", case.outputs(), case.inputs())
    text = str(info.value)
    assert f"whether the change to {case.setting.title} of the parent account (global) landed is unknown" in text
    assert f"enabled={case.live['enabled']!r}" in text


def test_update_of_on_delete_only_sends_nothing(case: Case, provider: SettingProvider, http: Any) -> None:
    olds = case.outputs(live={**case.live, **case.desired})
    result = provider.update("global", olds, case.inputs(on_delete="keep"))
    assert http.call_count == 0
    assert result.outs == {**olds, "on_delete": "keep"}


def test_update_newly_managed_field_takes_the_last_answered_value_as_original(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    if not case.setting.optional:
        pytest.skip(f"{case.setting.name} has no optional fields")
    olds = case.outputs(originals={"enabled": case.live["enabled"]}, live=case.live)
    http.patch(case.url(), json=case.answer(**case.differing()))
    result = provider.update("global", olds, case.inputs())
    assert http.call_count == 1  # no extra GET
    new = [k for k in case.desired if k != "enabled"]
    assert {k: result.outs[original_key(k)] for k in new} == {k: case.live.get(k) for k in new}
    assert result.outs["managed_fields"] == sorted(case.desired)


def test_update_no_longer_managed_field_is_not_sent_and_its_original_is_dropped(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    if not case.setting.optional:
        pytest.skip(f"{case.setting.name} has no optional fields")
    olds = case.outputs(live={**case.live, **case.desired})
    result = provider.update("global", olds, case.inputs(**{k: None for k in case.desired if k != "enabled"}))
    assert http.call_count == 0
    assert result.outs["managed_fields"] == ["enabled"]
    assert all(result.outs[original_key(k)] is None for k in case.desired if k != "enabled")


# -- delete: the setting hands over, the record gives the account back ---------------------------


def record(case: Case, on_delete: str = "restore", managed: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """An adoption record's outputs for the case's account, read before the stack changed anything."""
    return {
        "setting": case.setting.name,
        "region": "global",
        "on_behalf_of": kw.get("on_behalf_of"),
        "on_delete": on_delete,
        "managed_fields": managed or sorted(case.desired),
        "observed": case.parsed(),
        "token": "t-old",
    }


@pytest.fixture
def adoption() -> AdoptionProvider:
    return configured({"sendgrid:apiKey": TEST_KEY}, AdoptionProvider)


def test_setting_delete_sends_nothing_and_hands_its_values_to_the_record(
    case: Case, provider: SettingProvider, http: Any
) -> None:
    recorded = case.outputs(live={**case.live, **case.desired}, on_behalf_of="alice")
    provider.delete("global/alice", recorded)
    assert http.call_count == 0
    released = RUN.take_released((case.setting.name, "global", "alice"))
    assert released is not None
    assert dict(released.live) == {f.name: recorded[f.name] for f in case.setting.fields}
    assert dict(released.originals) == {k: case.live.get(k) for k in case.desired}


@pytest.mark.parametrize("mode", ["restore", "keep", "disable"])
def test_record_delete_after_the_setting_per_mode(
    case: Case, provider: SettingProvider, adoption: AdoptionProvider, http: Any, mode: str
) -> None:
    http.patch(case.url(), json=case.answer())
    provider.delete("global/alice", case.outputs(live={**case.live, **case.desired}, on_behalf_of="alice"))
    adoption.delete(f"{case.setting.name}/global/alice", record(case, mode, on_behalf_of="alice"))
    if mode == "restore":
        expected = case.restore_body()  # exactly the managed fields, back to their originals
    elif mode == "disable":
        expected = {"enabled": False} if case.desired["enabled"] else {}
    else:
        expected = {}
    assert sent(http) == ([("PATCH", case.url(), "alice", expected)] if expected else [])


def test_record_delete_sends_nothing_when_the_recorded_state_is_already_the_target(
    case: Case, provider: SettingProvider, adoption: AdoptionProvider, http: Any
) -> None:
    provider.delete("global", case.outputs())  # live == originals
    adoption.delete("x", record(case))
    provider.delete("global", case.outputs(on_delete="disable", live={**case.live, "enabled": False}))
    adoption.delete("x", record(case, "disable"))
    assert http.call_count == 0


def test_record_delete_without_the_settings_values_sends_the_target_regardless(
    case: Case, adoption: AdoptionProvider, http: Any
) -> None:
    # The setting was deleted in an earlier run that was cut off before the record's delete.
    http.patch(case.url(), json=case.answer())
    adoption.delete("x", record(case))
    assert sent(http) == [("PATCH", case.url(), None, case.originals())]


def test_record_delete_restores_a_field_managed_after_adoption_to_its_own_original(
    case: Case, provider: SettingProvider, adoption: AdoptionProvider, http: Any
) -> None:
    if not case.setting.optional:
        pytest.skip(f"{case.setting.name} has no optional fields")
    field = next(f.name for f in case.setting.optional if f.name in case.desired and case.live.get(f.name) is not None)
    later = {**case.live, field: case.live[field] + "-changed-in-the-ui"}  # the original when it became managed
    recorded = case.outputs(live={**case.live, **case.desired}, originals={**case.live, field: later[field]})
    http.patch(case.url(), json=case.answer())
    provider.delete("global", recorded)
    adoption.delete("x", record(case))
    [(_, _, _, body)] = sent(http)
    assert body[field] == later[field]  # not the record's older `observed`


def test_record_update_of_on_delete_or_managed_fields_sends_nothing(adoption: AdoptionProvider, http: Any) -> None:
    olds = {**record(CASES["google_analytics"]), "__provider": "p"}
    news = {**{k: olds[k] for k in AdoptionProvider.INPUTS}, "on_delete": "keep", "managed_fields": ["enabled"]}
    diff = adoption.diff("x", olds, news)
    assert (diff.changes, diff.replaces) == (True, [])
    outs = adoption.update("x", olds, news).outs
    assert (outs["on_delete"], outs["managed_fields"], outs["observed"]) == ("keep", ["enabled"], olds["observed"])
    assert http.call_count == 0


def test_failed_record_delete_raises_so_the_record_stays_in_state(
    case: Case, adoption: AdoptionProvider, http: Any
) -> None:
    http.patch(case.url(), status_code=401, json={"errors": [{"message": "authorization required"}]})
    with pytest.raises(SendGridError, match=r"failed \(401\)"):
        adoption.delete("x", record(case))


def test_record_delete_for_a_gone_account_names_both_ways_out(
    case: Case, adoption: AdoptionProvider, http: Any
) -> None:
    http.patch(case.url(), status_code=403, json=FORBIDDEN)
    http.get(case.url(), json=case.answer())
    with pytest.raises(AccountGoneError, match="seems to be gone"):
        adoption.delete("x", record(case, on_behalf_of="bob"))


# -- the adoption record ---------------------------------------------------------------------


def test_adoption_reads_once_and_keeps_every_field(case: Case, adoption: AdoptionProvider, http: Any) -> None:
    http.get(case.url(EU), json=case.answer())
    inputs = {"setting": case.setting.name, "region": "eu", "on_behalf_of": "carol"}
    checked = adoption.check({}, {**inputs, "observed": None, "token": None})
    inputs.update(on_delete="restore", managed_fields=["enabled"])
    assert (checked.inputs, checked.failures) == (inputs, [])
    result = adoption.create(inputs)
    assert sent(http) == [("GET", case.url(EU), "carol", None)]
    assert result.id == f"{case.setting.name}/eu/carol"
    assert result.outs["observed"] == case.parsed()
    assert RUN.take_fresh(result.outs["token"]) == case.parsed()  # the setting's create will skip its GET
    assert adoption.read(result.id, result.outs).outs == result.outs  # refresh sends nothing
    assert http.call_count == 1


def test_adoption_check_rejects_bad_input_and_settings(adoption: AdoptionProvider, http: Any) -> None:
    failures = adoption.check({}, {"setting": "bounce", "region": None, "on_behalf_of": ""}).failures
    assert [f.property for f in failures] == ["on_behalf_of", "region", "setting"] or sorted(
        f.property for f in failures
    ) == ["on_behalf_of", "region", "setting"]
    [failure] = configured({}, AdoptionProvider).check({}, {"setting": "open", "region": "global"}).failures
    assert "no SendGrid API key is set" in failure.reason
    assert http.call_count == 0


def test_adoption_diff_replaces_on_any_change(adoption: AdoptionProvider) -> None:
    olds = {
        "setting": "click",
        "region": "global",
        "on_behalf_of": "alice",
        "on_delete": "restore",
        "managed_fields": ["enabled"],
        "observed": {},
        "token": "t",
    }
    news = {k: olds[k] for k in AdoptionProvider.INPUTS}
    assert adoption.diff("x", olds, news).changes is False
    result = adoption.diff("x", olds, {**news, "region": "eu"})
    assert (result.changes, result.replaces) == (True, ["region"])


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
    olds = case.outputs(live={**case.live, "url": None}, originals={"enabled": False, "url": None})
    news = case.inputs(url="", enabled=False, plain_content=None)
    assert provider.diff("global", olds, news).changes is False  # no perpetual diff for url: ""
    assert provider.update("global", olds, news).outs["url"] is None
    assert http.call_count == 0
