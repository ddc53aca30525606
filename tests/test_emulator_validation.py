"""The emulator validates PATCH bodies as SendGrid would, keeps omitted fields, and says where unsubscribe goes."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pulumi_sendgrid_tracking.emulator import AdminClient, Emulator, EmulatorState
from pulumi_sendgrid_tracking.emulator.errors import BadRequest
from pulumi_sendgrid_tracking.emulator.state import validate_patch

from .conftest import TEST_KEY

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
KINDS = ("click", "open", "subscription", "google_analytics")


def patch(emulator: Emulator, kind: str, body: Any = None, *, data: bytes | None = None) -> requests.Response:
    return requests.patch(
        f"{emulator.base_url}/v3/tracking_settings/{kind}", headers=AUTH, json=body, data=data, timeout=10
    )


def get(emulator: Emulator, kind: str) -> dict[str, Any]:
    response = requests.get(f"{emulator.base_url}/v3/tracking_settings/{kind}", headers=AUTH, timeout=10)
    assert response.status_code == 200
    return dict(response.json())


# -- the body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("raw", "what"), [(b"[]", "array"), (b'"x"', "string"), (b"1", "number"), (b"null", "null")])
def test_a_body_that_is_not_a_json_object_is_a_400_and_changes_nothing(
    emulator: Emulator, kind: str, raw: bytes, what: str
) -> None:
    before = get(emulator, kind)
    response = patch(emulator, kind, data=raw)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": None, "message": f"request body must be a JSON object, got {what}"}]
    }
    assert get(emulator, kind) == before


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_body_is_an_empty_patch(emulator: Emulator, kind: str) -> None:
    """The spec marks the request body optional: none at all changes nothing and answers the setting."""
    before = get(emulator, kind)
    response = patch(emulator, kind, data=b"")
    assert (response.status_code, response.json()) == (200, before)


def test_every_bad_field_is_named_in_one_answer_in_body_order(emulator: Emulator) -> None:
    response = patch(emulator, "subscription", {"url": "example.com", "replace": 3, "enabled": None, "landing": "ok"})
    assert response.status_code == 400
    assert [(e["field"], e["message"].split(",")[0]) for e in response.json()["errors"]] == [
        ("url", "url must be an absolute http or https URL"),
        ("replace", "replace must be a string"),
        ("enabled", "enabled must be a boolean"),
    ]
    assert "landing" not in [e["field"] for e in response.json()["errors"]]
    assert get(emulator, "subscription")["landing"] == ""  # the good field was not applied either


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "enabled must be a boolean, got number"),
        (0, "enabled must be a boolean, got number"),
        ("true", "enabled must be a boolean, got string"),
        (None, "enabled must be a boolean, got null"),
        ([True], "enabled must be a boolean, got array"),
        ({"v": True}, "enabled must be a boolean, got object"),
    ],
)
def test_enabled_must_be_a_real_boolean(value: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_patch("open", {"enabled": value})
    assert (info.value.field, info.value.message) == ("enabled", message)


# -- url --------------------------------------------------------------------------------------

GOOD_URLS = [
    "https://example.com/unsubscribe",
    "http://example.com",
    "HTTPS://Example.COM:8443/u?list=news&id=%20x#top",
    "https://[2001:db8::1]/u",
    "https://user@example.com/u",
]
BAD_URLS = [
    "example.com/unsubscribe",
    "/unsubscribe",
    "//example.com/u",
    "ftp://example.com/u",
    "mailto:someone@example.com",
    "javascript:alert(1)",
    "https://",
    "https:///path",
    "https://exa mple.com/u",
    "https://example.com/u\n",
    " https://example.com/u",
    "https://example.com:99999/u",
    "https://example.com:port/u",
    "https://example.com/%zz",
    "https://example.com/<u>",
    "https://bücher.example/u",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_an_absolute_http_url_is_stored_and_answered(emulator: Emulator, url: str) -> None:
    response = patch(emulator, "subscription", {"url": url})
    assert (response.status_code, response.json()["url"]) == (200, url)
    assert get(emulator, "subscription")["url"] == url


@pytest.mark.parametrize("url", BAD_URLS)
def test_anything_else_is_a_400_naming_url(emulator: Emulator, url: str) -> None:
    patch(emulator, "subscription", {"url": "https://example.com/before"})
    response = patch(emulator, "subscription", {"url": url, "enabled": True})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "url"
    assert error["message"].startswith(
        "url must be an absolute http or https URL, e.g. https://example.com/unsubscribe"
    )
    assert get(emulator, "subscription")["url"] == "https://example.com/before"
    assert get(emulator, "subscription")["enabled"] is False  # nothing of the request was applied


def test_an_empty_url_clears_it_so_answers_stay_valid_uris(emulator: Emulator) -> None:
    assert "url" not in get(emulator, "subscription")  # never set: absent, as `format: uri` allows no ""
    patch(emulator, "subscription", {"url": "https://example.com/u"})
    response = patch(emulator, "subscription", {"url": ""})
    assert response.status_code == 200 and "url" not in response.json()
    assert "url" not in get(emulator, "subscription")


# -- fields a PATCH does not take ---------------------------------------------------------------


def test_unknown_fields_and_clicks_enable_text_are_ignored_unchecked_but_logged(emulator: Emulator) -> None:
    body = {"enabled": False, "enable_text": True, "enable": "yes", "url": 5}
    response = patch(emulator, "click", body)
    assert (response.status_code, response.json()) == (200, {"enabled": False, "enable_text": False})
    assert emulator.state.request_log()[-1]["body"] == body  # a test can still see what a client sent
    assert patch(emulator, "click", {"enable_text": "not even a boolean"}).status_code == 200
    assert get(emulator, "click") == {"enabled": False, "enable_text": False}
    assert patch(emulator, "open", {"utm_source": 1}).status_code == 200  # another setting's field: unknown here


def test_the_out_of_band_admin_change_is_validated_too(emulator: Emulator) -> None:
    admin = AdminClient(emulator.base_url)
    admin.set_setting({"enable_text": True})  # the UI can change what the API cannot
    assert get(emulator, "click")["enable_text"] is True
    with pytest.raises(requests.HTTPError, match="enabled must be a boolean"):
        admin.set_setting({"enabled": "yes"})
    with pytest.raises(requests.HTTPError, match="unknown fields"):
        admin.set_setting({"utm_source": "x"})


# -- assumption (a): a PATCH changes only the fields it carries ---------------------------------

FULL = {
    "subscription": {
        "enabled": True,
        "html_content": "<p>bye</p>",
        "landing": "<p>gone</p>",
        "plain_content": "bye <% %>",
        "replace": "[unsub]",
        "url": "https://example.com/u",
    },
    "google_analytics": {
        "enabled": True,
        "utm_campaign": "c",
        "utm_content": "ct",
        "utm_medium": "email",
        "utm_source": "sendgrid.com",
        "utm_term": "t",
    },
}


@pytest.mark.parametrize("kind", sorted(FULL))
def test_a_patch_keeps_every_field_it_does_not_carry(emulator: Emulator, kind: str) -> None:
    assert patch(emulator, kind, FULL[kind]).json() == FULL[kind]
    for name in FULL[kind]:
        value = not FULL[kind][name] if name == "enabled" else "changed" if name != "url" else "https://x.example/"
        answered = patch(emulator, kind, {name: value}).json()
        assert answered == {**FULL[kind], name: value}
        patch(emulator, kind, {name: FULL[kind][name]})
    assert get(emulator, kind) == FULL[kind]


def test_click_and_open_keep_what_a_patch_does_not_carry(emulator: Emulator) -> None:
    emulator.state.set_out_of_band("global", None, "click", {"enable_text": True})
    assert patch(emulator, "click", {"enabled": False}).json() == {"enabled": False, "enable_text": True}
    assert patch(emulator, "open", {}).json() == {"enabled": True}


# -- assumption (b): where an unsubscribe click goes --------------------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"enabled": False, "url": "https://example.com/u", "landing": "<p>x</p>"}, {"kind": "none"}),
        ({"enabled": True, "url": "https://example.com/u", "landing": "<p>x</p>"}, {"kind": "url"}),
        ({"enabled": True, "url": "https://example.com/u"}, {"kind": "url", "url": "https://example.com/u"}),
        ({"enabled": True, "landing": "<p>x</p>"}, {"kind": "landing", "html": "<p>x</p>"}),
        ({"enabled": True, "url": "", "landing": "<p>x</p>"}, {"kind": "landing", "html": "<p>x</p>"}),
        ({"enabled": True}, {"kind": "default"}),
        ({"enabled": True, "url": "", "landing": ""}, {"kind": "default"}),
    ],
)
def test_a_non_empty_url_wins_over_landing(setting: dict[str, Any], expected: dict[str, Any]) -> None:
    state = EmulatorState()
    state.add_subuser("global", "alice")
    state.update_setting(state.account("global", "alice"), "subscription", validate_patch("subscription", setting))
    target = state.unsubscribe("global", "alice")
    assert {k: target[k] for k in expected} == expected
    if expected["kind"] == "url":
        assert target["url"] == "https://example.com/u"
    assert state.unsubscribe("global", None) == {
        "kind": "none",
        "reason": "subscription tracking is disabled: mail carries no unsubscribe link",
    }  # the parent's own setting, untouched


def test_the_unsubscribe_answer_over_the_admin_api_follows_each_patch(emulator: Emulator) -> None:
    emulator.state.add_customer("eu", "31")
    admin = AdminClient(emulator.eu_base_url)
    eu_patch = f"{emulator.eu_base_url}/v3/tracking_settings/subscription"
    headers = {**AUTH, "on-behalf-of": "account-id 31"}
    assert admin.unsubscribe("account-id 31", world="eu")["kind"] == "none"
    requests.patch(eu_patch, headers=headers, json={"enabled": True, "landing": "<p>bye</p>"}, timeout=10)
    assert admin.unsubscribe("account-id 31", world="eu") == {"kind": "landing", "html": "<p>bye</p>"}
    requests.patch(eu_patch, headers=headers, json={"url": "https://example.com/u"}, timeout=10)
    assert admin.unsubscribe("account-id 31", world="eu") == {"kind": "url", "url": "https://example.com/u"}
    requests.patch(eu_patch, headers=headers, json={"url": ""}, timeout=10)
    assert admin.unsubscribe("account-id 31", world="eu")["kind"] == "landing"
    assert admin.unsubscribe(world="global")["kind"] == "none"  # another world's parent
    with pytest.raises(requests.HTTPError, match=r"\(403\): access forbidden"):
        admin.unsubscribe("account-id 31")  # not in the global world
