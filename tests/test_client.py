"""The HTTP client, request by request (requests-mock): what is sent, and how answers map to errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import requests_mock
from pulumi_sendgrid_tracking import __version__, errors
from pulumi_sendgrid_tracking.client import USER_AGENT, SendGridClient
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.inputs import on_behalf_of_problem
from pulumi_sendgrid_tracking.tracking import CLICK, TrackingSetting

from .conftest import TEST_KEY


def get(client: SendGridClient, on_behalf_of: str | None = None, setting: TrackingSetting = CLICK) -> dict[str, Any]:
    return client.get(setting.path, on_behalf_of, validate=setting.parse)


def update(
    client: SendGridClient, body: dict[str, Any], on_behalf_of: str | None = None, setting: TrackingSetting = CLICK
) -> dict[str, Any]:
    return client.update(setting.path, body, on_behalf_of, validate=setting.parse)


BASE = "https://api.sendgrid.com"
URL = BASE + CLICK.path


@pytest.fixture
def client() -> SendGridClient:
    return SendGridClient(TEST_KEY, BASE)


def test_get_sends_bearer_user_agent_and_no_on_behalf_of(client: SendGridClient) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, json={"enabled": True, "enable_text": False})
        assert get(client) == {"enabled": True, "enable_text": False}
    [sent] = mock.request_history
    assert (sent.method, sent.url) == ("GET", URL)
    assert sent.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert sent.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith(f"pulumi-sendgrid-tracking/{__version__} ")
    assert "on-behalf-of" not in sent.headers
    assert sent.body is None


@pytest.mark.parametrize("enabled", [False, True])
def test_patch_sends_enabled_explicitly_false_included(client: SendGridClient, enabled: bool) -> None:
    with requests_mock.Mocker() as mock:
        mock.patch(URL, json={"enabled": enabled, "enable_text": True})
        assert update(client, {"enabled": enabled}, on_behalf_of="alice") == {"enabled": enabled, "enable_text": True}
    [sent] = mock.request_history
    assert sent.method == "PATCH"
    assert json.loads(sent.body) == {"enabled": enabled}
    assert (b"false" in sent.body) is (not enabled)
    assert sent.headers["on-behalf-of"] == "alice"
    assert sent.headers["Content-Type"] == "application/json"


def test_account_id_on_behalf_of_and_eu_host() -> None:
    eu = SendGridClient(TEST_KEY, "https://api.eu.sendgrid.com")
    with requests_mock.Mocker() as mock:
        mock.get("https://api.eu.sendgrid.com" + CLICK.path, json={"enabled": False, "enable_text": False})
        get(eu, "account-id 42")
    assert mock.request_history[0].headers["on-behalf-of"] == "account-id 42"


@pytest.mark.parametrize(
    ("who", "found"),
    [
        ("\u0441arol", "'\u0441arol' has '\u0441' (U+0441, CYRILLIC SMALL LETTER ES) at position 1"),  # non-Latin-1
        ("caf\u00e9", "'caf\u00e9' has '\u00e9' (U+00E9, LATIN SMALL LETTER E WITH ACUTE) at position 4"),  # Latin-1
        ("car\u200bol", "'car\\u200bol' has '\\u200b' (U+200B, ZERO WIDTH SPACE) at position 4"),
        ("carol\n", "'carol\\n' has '\\n' (U+000A, a control character) at position 6"),
    ],
)
def test_an_account_name_that_is_no_header_value_is_refused_before_sending(
    emulator: Emulator, who: str, found: str
) -> None:
    """The last line of defence behind check(): a SendGridError, never http.client's UnicodeEncodeError."""
    client = SendGridClient(TEST_KEY, emulator.base_url)
    with pytest.raises(errors.ConfigurationError) as info:
        update(client, {"enabled": False}, who)
    assert str(info.value) == (
        f"invalid setting on_behalf_of: on_behalf_of {found}: {on_behalf_of_problem(who).split(': ', 1)[1]}. "
        f"Hint: nothing was sent by PATCH {CLICK.path}; fix the resource's on_behalf_of."
    )
    assert emulator.state.request_log() == []


def test_a_sendgrid_form_account_id_is_sent_as_written(emulator: Emulator) -> None:
    emulator.state.add_customer("global", "sg2a2bcd3ef4ab5c67d8efab91c01de2fa")
    client = SendGridClient(TEST_KEY, emulator.base_url)
    assert get(client, "account-id sg2a2bcd3ef4ab5c67d8efab91c01de2fa") == {"enabled": True, "enable_text": False}
    [entry] = emulator.state.request_log()
    assert (entry["on_behalf_of"], entry["status"]) == ("account-id sg2a2bcd3ef4ab5c67d8efab91c01de2fa", 200)


def test_update_refuses_an_empty_body_before_sending(client: SendGridClient) -> None:
    with requests_mock.Mocker() as mock, pytest.raises(ValueError, match="at least one field"):
        update(client, {}, None)
    assert mock.call_count == 0


@pytest.mark.parametrize(
    ("status", "message", "cls", "hint_part"),
    [
        (400, "enabled must be a boolean", errors.BadRequestError, "SendGrid rejected a field"),
        (401, "authorization required", errors.AuthenticationError, "sendgrid:apiKey"),
        (
            401,
            "The provided authorization grant is invalid, expired, or revoked",
            errors.AuthenticationError,
            "SENDGRID_API_KEY",
        ),
        (403, "access forbidden", errors.PermissionDeniedError, "tracking_settings.click.read"),
        (404, "resource not found", errors.NotFoundError, "sendgrid:baseUrl"),
        (451, "Unavailable due to data residency restrictions", errors.DataResidencyError, "'eu'"),
        (418, "teapot", errors.APIError, "see the message above"),
    ],
)
def test_error_statuses_map_to_classes_with_sendgrid_text(
    client: SendGridClient, status: int, message: str, cls: type[errors.APIError], hint_part: str
) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, status_code=status, json={"errors": [{"field": None, "message": message}]})
        with pytest.raises(cls) as info:
            get(client)
    assert type(info.value) is cls
    text = str(info.value)
    assert text.startswith(f"GET {CLICK.path} failed ({status}): {message}. Hint: ")
    assert hint_part in text
    assert TEST_KEY not in text and "Bearer" not in text
    assert mock.call_count == 1


def test_error_without_json_body(client: SendGridClient) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, status_code=403, text="<html>nope</html>")
        with pytest.raises(errors.PermissionDeniedError, match=r"failed \(403\): no error message"):
            get(client)


@pytest.mark.parametrize(
    "body",
    ['{"enabled": tru', "[]", '{"enabled": "true", "enable_text": false}', '{"enabled": true}'],
)
def test_malformed_success_bodies_are_asked_again_then_reported(client: SendGridClient, body: str) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, text=body)
        with pytest.raises(errors.MalformedResponseError, match="returned a malformed body") as info:
            get(client)
    assert mock.call_count == 3
    assert TEST_KEY not in str(info.value)


def test_malformed_body_then_good_one(client: SendGridClient) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, [{"text": "oops"}, {"json": {"enabled": False, "enable_text": False}}])
        assert get(client)["enabled"] is False
    assert mock.call_count == 2


def test_transport_errors_become_transport_error_without_the_key(client: SendGridClient) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, exc=requests.ConnectTimeout)
        with pytest.raises(errors.TransportError) as info:
            get(client, "alice")
    assert str(info.value).startswith(f"GET {CLICK.path} on behalf of 'alice' failed after 1 attempt(s): timed out")
    assert "pulumi refresh" in str(info.value)
    assert TEST_KEY not in str(info.value)


def test_no_redirects_followed(client: SendGridClient) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(URL, status_code=302, headers={"Location": "https://elsewhere.example/steal"})
        with pytest.raises(errors.APIError, match=r"failed \(302\)"):
            get(client)
    assert mock.call_count == 1


def test_repr_of_client_and_auth_hide_the_key(client: SendGridClient) -> None:
    assert TEST_KEY not in repr(client)
    assert TEST_KEY not in repr(client._session.auth)


def test_the_environments_proxy_and_no_proxy_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read once per client (requests would read the whole environment on every call): HTTP_PROXY routes the
    requests through the proxy, NO_PROXY sends them straight to the host. (The CA bundle: reliability/test_tls.)"""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Emulator(EmulatorState(api_keys=[TEST_KEY])) as target, Emulator(EmulatorState(api_keys=[TEST_KEY])) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        assert get(SendGridClient(TEST_KEY, target.base_url)) == {"enabled": True, "enable_text": False}
        assert [(e["method"], e["path"]) for e in proxy.state.request_log()] == [("GET", CLICK.path)]
        assert target.state.request_log() == []
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        get(SendGridClient(TEST_KEY, target.base_url))
        assert [(e["method"], e["path"]) for e in target.state.request_log()] == [("GET", CLICK.path)]
        assert len(proxy.state.request_log()) == 1
