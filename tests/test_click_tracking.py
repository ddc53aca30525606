"""The ResourceProvider's handlers, in SDK order, with requests-mock: requests sent and not sent, outputs."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
import requests_mock
from pulumi_sendgrid_tracking import ClickTrackingProvider, SendGridError
from pulumi_sendgrid_tracking.click_tracking import resource_id
from pulumi_sendgrid_tracking.errors import ConfigurationError, PermissionDeniedError, ServerError

from .conftest import OTHER_KEY, TEST_KEY, configured

URL = "https://api.sendgrid.com/v3/tracking_settings/click"
EU_URL = "https://api.eu.sendgrid.com/v3/tracking_settings/click"
UNKNOWN = pulumi.output.Unknown()


@pytest.fixture
def provider() -> ClickTrackingProvider:
    return configured({"sendgrid:apiKey": TEST_KEY})


@pytest.fixture
def http() -> Any:
    with requests_mock.Mocker() as mock:
        yield mock


def sent(http: Any) -> list[tuple[str, str, str | None, Any]]:
    return [
        (r.method, r.url, r.headers.get("on-behalf-of"), json.loads(r.body) if r.body else None)
        for r in http.request_history
    ]


def outputs(**kw: Any) -> dict[str, Any]:
    base = {
        "enabled": True,
        "enable_text": False,
        "on_behalf_of": None,
        "region": "global",
        "on_delete": "restore",
        "original_enabled": False,
    }
    return {**base, **kw}


# -- check -----------------------------------------------------------------------------------


def test_check_fills_defaults_and_sends_nothing(provider: ClickTrackingProvider, http: Any) -> None:
    news = {
        "enabled": False,
        "on_behalf_of": None,
        "region": None,
        "on_delete": None,
        "enable_text": None,
        "original_enabled": None,
        "__provider": "p",
    }
    result = provider.check({}, news)
    assert result.failures == []
    assert result.inputs == {"enabled": False, "on_behalf_of": None, "region": "global", "on_delete": "restore"}
    assert http.call_count == 0


def test_check_resolves_the_stack_region(http: Any) -> None:
    eu = configured({"sendgrid:region": "eu", "sendgrid:apiKey": TEST_KEY})
    assert eu.check({}, {"enabled": True}).inputs["region"] == "eu"
    assert http.call_count == 0


def test_check_accepts_unknowns_during_preview(provider: ClickTrackingProvider) -> None:
    result = provider.check({}, {"enabled": UNKNOWN, "on_behalf_of": UNKNOWN, "region": UNKNOWN, "on_delete": UNKNOWN})
    assert result.failures == []
    assert all(isinstance(v, pulumi.output.Unknown) for v in result.inputs.values())


BAD_INPUTS = [
    ({}, "enabled", "enabled is required"),
    ({"enabled": None}, "enabled", "enabled is required"),
    ({"enabled": "true"}, "enabled", "got the string 'true'; read config with `config.require_bool(...)`"),
    ({"enabled": 1}, "enabled", "enabled must be a boolean, got int"),
    ({"enabled": True, "on_behalf_of": ""}, "on_behalf_of", "must not be empty; omit it (None)"),
    ({"enabled": True, "on_behalf_of": "   "}, "on_behalf_of", "must not be empty"),
    ({"enabled": True, "on_behalf_of": "alice\r\nX-Evil: 1"}, "on_behalf_of", "control characters"),
    ({"enabled": True, "on_behalf_of": "alice\x00"}, "on_behalf_of", "control characters"),
    ({"enabled": True, "on_behalf_of": " alice"}, "on_behalf_of", "start or end with whitespace"),
    ({"enabled": True, "on_behalf_of": "a" * 300}, "on_behalf_of", "is 300 characters long"),
    ({"enabled": True, "on_behalf_of": 42}, "on_behalf_of", "must be a string"),
    ({"enabled": True, "on_behalf_of": "account-id"}, "on_behalf_of", "'account-id <id>'"),
    ({"enabled": True, "on_behalf_of": "account-id  4 2"}, "on_behalf_of", "'account-id <id>'"),
    ({"enabled": True, "region": "us"}, "region", "region must be one of global, eu (or omitted), got 'us'"),
    ({"enabled": True, "region": "EU"}, "region", "got 'EU'"),
    ({"enabled": True, "on_delete": "destroy"}, "on_delete", "on_delete must be one of restore, keep, disable"),
    ({"enabled": True, "enable_text": True}, "enable_text", "unknown property 'enable_text'"),
    ({"enabled": True, "colour": "red"}, "colour", "unknown property 'colour'; allowed: enabled, on_behalf_of"),
]


@pytest.mark.parametrize(("news", "prop", "reason"), BAD_INPUTS)
def test_check_rejects_bad_input_naming_the_property(
    provider: ClickTrackingProvider, http: Any, news: dict[str, Any], prop: str, reason: str
) -> None:
    failures = provider.check({}, news).failures
    assert [f.property for f in failures] == [prop]
    assert reason in failures[0].reason
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
def test_check_reports_bad_settings_at_preview(http: Any, config: dict[str, Any], setting: str, reason: str) -> None:
    news = {"enabled": True, "region": "eu"} if setting == "sendgrid:euBaseUrl" else {"enabled": True}
    [failure] = configured(config).check({}, news).failures
    assert failure.property == setting
    assert reason in failure.reason and "Hint:" in failure.reason
    assert http.call_count == 0


# -- diff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("news", "changes", "replaces"),
    [
        ({"enabled": True, "on_behalf_of": None, "region": "global", "on_delete": "restore"}, False, []),
        ({"enabled": True, "on_behalf_of": None, "region": "global", "on_delete": None}, False, []),
        ({"enabled": False, "on_behalf_of": None, "region": "global", "on_delete": "restore"}, True, []),
        ({"enabled": True, "on_behalf_of": None, "region": "global", "on_delete": "keep"}, True, []),
        (
            {"enabled": True, "on_behalf_of": "alice", "region": "global", "on_delete": "restore"},
            True,
            ["on_behalf_of"],
        ),
        ({"enabled": True, "on_behalf_of": None, "region": "eu", "on_delete": "restore"}, True, ["region"]),
        ({"enabled": UNKNOWN, "on_behalf_of": None, "region": "global", "on_delete": "restore"}, True, []),
        (
            {"enabled": True, "on_behalf_of": UNKNOWN, "region": "global", "on_delete": "restore"},
            True,
            ["on_behalf_of"],
        ),
    ],
)
def test_diff_is_local_and_exact(
    provider: ClickTrackingProvider, http: Any, news: dict[str, Any], changes: bool, replaces: list[str]
) -> None:
    olds = {**outputs(), "__provider": "old-pickle"}
    result = provider.diff("global", olds, {**news, "__provider": "new-pickle"})
    assert (result.changes, result.replaces) == (changes, replaces)
    assert result.delete_before_replace is bool(replaces)
    assert http.call_count == 0


# -- create ----------------------------------------------------------------------------------


def test_create_adopts_without_patch_when_value_matches(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(URL, json={"enabled": True, "enable_text": True})
    result = provider.create({"enabled": True, "on_behalf_of": None, "region": "global", "on_delete": "restore"})
    assert sent(http) == [("GET", URL, None, None)]
    assert result.id == "global"
    assert result.outs == outputs(enable_text=True, original_enabled=True)


def test_create_patches_when_value_differs_and_records_the_original(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(URL, json={"enabled": True, "enable_text": False})
    http.patch(URL, json={"enabled": False, "enable_text": False})
    result = provider.create({"enabled": False, "on_behalf_of": "alice", "region": "global", "on_delete": "keep"})
    assert sent(http) == [("GET", URL, "alice", None), ("PATCH", URL, "alice", {"enabled": False})]
    assert result.id == "global/alice"
    assert result.outs == outputs(enabled=False, on_behalf_of="alice", on_delete="keep", original_enabled=True)


def test_create_builds_outputs_from_what_sendgrid_answered(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(EU_URL, json={"enabled": False, "enable_text": False})
    http.patch(EU_URL, json={"enabled": True, "enable_text": True})  # SendGrid's answer, not our request
    result = provider.create({"enabled": True, "on_behalf_of": "account-id 42", "region": "eu", "on_delete": "disable"})
    assert result.id == "eu/account-id 42"
    assert result.outs["enable_text"] is True
    assert [r.url for r in http.request_history] == [EU_URL, EU_URL]


def test_create_failed_patch_with_old_value_still_there_raises(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(URL, json={"enabled": True, "enable_text": False})
    http.patch(URL, status_code=500, json={"errors": [{"message": "boom"}]})
    with pytest.raises(ServerError, match=r"PATCH /v3/tracking_settings/click failed \(500\): boom"):
        provider.create({"enabled": False, "region": "global", "on_delete": "restore"})
    assert [r.method for r in http.request_history] == ["GET", "PATCH", "GET"]


def test_create_lost_patch_answer_but_change_landed_succeeds(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(
        URL, [{"json": {"enabled": True, "enable_text": False}}, {"json": {"enabled": False, "enable_text": False}}]
    )
    http.patch(URL, status_code=502, json={})
    result = provider.create({"enabled": False, "region": "global", "on_delete": "restore"})
    assert result.outs == outputs(enabled=False, original_enabled=True)


def test_create_unknown_outcome_says_so_and_keeps_the_original(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(URL, [{"json": {"enabled": True, "enable_text": False}}, {"status_code": 503, "json": {}}])
    http.patch(URL, status_code=503, json={})
    with pytest.raises(SendGridError) as info:
        provider.create({"enabled": False, "region": "global", "on_delete": "restore"})
    assert "whether the change landed is unknown (click tracking was on before)" in str(info.value)
    assert "Hint: run `pulumi refresh`" in str(info.value)


def test_create_without_key_fails_before_sending(http: Any) -> None:
    with pytest.raises(ConfigurationError, match="no SendGrid API key is set"):
        configured({}).create({"enabled": True, "region": "global", "on_delete": "restore"})
    assert http.call_count == 0


def test_create_403_for_unknown_subuser(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(URL, status_code=403, json={"errors": [{"field": None, "message": "access forbidden"}]})
    with pytest.raises(PermissionDeniedError, match="'ghost' must be a subuser"):
        provider.create({"enabled": True, "on_behalf_of": "ghost", "region": "global", "on_delete": "restore"})


# -- read ------------------------------------------------------------------------------------


def test_read_returns_live_values_as_outputs_and_inputs(provider: ClickTrackingProvider, http: Any) -> None:
    http.get(URL, json={"enabled": False, "enable_text": True})
    recorded = {**outputs(on_behalf_of="bob", original_enabled=True), "__provider": "p"}
    result = provider.read("global/bob", recorded)
    assert sent(http) == [("GET", URL, "bob", None)]
    assert result.id == "global/bob"
    assert result.outs == outputs(enabled=False, enable_text=True, on_behalf_of="bob", original_enabled=True)
    assert result.inputs == {"enabled": False, "on_behalf_of": "bob", "region": "global", "on_delete": "restore"}


# -- update ----------------------------------------------------------------------------------


def test_update_sends_exactly_one_patch(provider: ClickTrackingProvider, http: Any) -> None:
    http.patch(URL, json={"enabled": False, "enable_text": False})
    news = {"enabled": False, "on_behalf_of": None, "region": "global", "on_delete": "restore"}
    result = provider.update("global", outputs(original_enabled=True), news)
    assert sent(http) == [("PATCH", URL, None, {"enabled": False})]
    assert result.outs == outputs(enabled=False, original_enabled=True)


def test_update_of_on_delete_only_sends_nothing(provider: ClickTrackingProvider, http: Any) -> None:
    news = {"enabled": True, "on_behalf_of": None, "region": "global", "on_delete": "keep"}
    result = provider.update("global", outputs(), news)
    assert http.call_count == 0
    assert result.outs == outputs(on_delete="keep")


# -- delete ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "enabled", "original", "expected"),
    [
        ("restore", True, False, [{"enabled": False}]),
        ("restore", False, True, [{"enabled": True}]),
        ("restore", True, True, []),
        ("keep", True, False, []),
        ("disable", True, True, [{"enabled": False}]),
        ("disable", False, True, []),
    ],
)
def test_delete_per_mode_with_no_request_when_nothing_changes(
    provider: ClickTrackingProvider, http: Any, mode: str, enabled: bool, original: bool, expected: list[Any]
) -> None:
    http.patch(URL, json={"enabled": False, "enable_text": False})
    provider.delete(
        "global/alice", outputs(enabled=enabled, original_enabled=original, on_delete=mode, on_behalf_of="alice")
    )
    assert sent(http) == [("PATCH", URL, "alice", body) for body in expected]


def test_failed_delete_raises_so_the_resource_stays_in_state(provider: ClickTrackingProvider, http: Any) -> None:
    http.patch(URL, status_code=401, json={"errors": [{"message": "authorization required"}]})
    with pytest.raises(SendGridError, match=r"failed \(401\)"):
        provider.delete("global", outputs(enabled=True, original_enabled=False))


# -- settings at call time -------------------------------------------------------------------


def test_environment_key_is_used_when_stack_config_has_none(http: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", TEST_KEY)
    http.get(URL, json={"enabled": True, "enable_text": False})
    configured({}).read("global", outputs())
    assert http.request_history[0].headers["Authorization"] == f"Bearer {TEST_KEY}"


def test_rotated_key_is_used_by_the_next_call(http: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = ClickTrackingProvider()
    monkeypatch.setenv("SENDGRID_API_KEY", TEST_KEY)
    http.get(URL, json={"enabled": True, "enable_text": False})
    provider.read("global", outputs())
    monkeypatch.setenv("SENDGRID_API_KEY", OTHER_KEY)
    provider.read("global", outputs())
    assert [r.headers["Authorization"] for r in http.request_history] == [f"Bearer {TEST_KEY}", f"Bearer {OTHER_KEY}"]


def test_resource_id() -> None:
    assert [resource_id("global", None), resource_id("eu", "alice"), resource_id("global", "account-id 42")] == [
        "global",
        "eu/alice",
        "global/account-id 42",
    ]
