"""The emulator: its state without HTTP, then auth, scopes, accounts, limits, faults and admin over HTTP."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from pulumi_sendgrid_tracking.emulator import AdminClient, Emulator, EmulatorProcess, EmulatorState, Fault
from pulumi_sendgrid_tracking.emulator.errors import AccessForbidden, AuthorizationRequired, BadRequest, InvalidGrant
from pulumi_sendgrid_tracking.emulator.state import RateLimiter, validate_patch

from .conftest import TEST_KEY

CLICK = "/v3/tracking_settings/click"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


# -- state, no HTTP ----------------------------------------------------------------------------


def test_state_accounts_and_settings() -> None:
    state = EmulatorState(api_keys=[TEST_KEY])
    alice = state.add_subuser("global", "alice", enabled=False)
    acme = state.add_customer("global", "42")
    assert state.account("global", "alice") is alice
    assert state.account("global", "account-id 42") is acme
    assert state.account("global", None).kind == "parent"
    with pytest.raises(AccessForbidden):
        state.account("eu", "alice")  # worlds share nothing
    assert state.update_setting(alice, "click", {"enabled": True}) == {"enabled": True, "enable_text": False}


def test_state_auth() -> None:
    state = EmulatorState(api_keys=[TEST_KEY])
    with pytest.raises(AuthorizationRequired):
        state.authenticate(None)
    with pytest.raises(InvalidGrant):
        state.authenticate("Bearer SG.nope")
    with pytest.raises(InvalidGrant):
        state.authenticate(f"Basic {TEST_KEY}")
    assert state.authenticate(f"Bearer {TEST_KEY}").key == TEST_KEY


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], None),
        ("x", None),
        ({"enabled": "true"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"enabled": None}, "enabled"),
    ],
)
def test_validate_patch_names_the_field(body: Any, field: str | None) -> None:
    with pytest.raises(BadRequest) as info:
        validate_patch("click", body)
    assert info.value.field == field


def test_subscription_url_must_be_a_uri() -> None:
    with pytest.raises(BadRequest) as info:
        validate_patch("subscription", {"url": "not a url"})
    assert info.value.field == "url"
    assert validate_patch("subscription", {"url": "https://example.com/u"}) == {"url": "https://example.com/u"}
    assert "url" not in EmulatorState().snapshot()["global"]["parent"]["subscription"]


def test_validate_patch_ignores_read_only_and_unknown_fields() -> None:
    assert validate_patch("click", {"enabled": False, "enable_text": True, "x": 1}) == {"enabled": False}


def test_rate_limiter_fixed_window() -> None:
    now = [1000.2]
    limiter = RateLimiter(2, 1.0, clock=lambda: now[0])
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("k").reset == 1001
    assert limiter.hit("other").allowed  # per key
    now[0] = 1001.0
    assert limiter.hit("k").remaining == 1


def test_snapshot_restore_round_trip() -> None:
    state = EmulatorState()
    state.add_subuser("eu", "carol", enabled=False)
    copy = EmulatorState()
    copy.restore(state.snapshot())
    assert copy.snapshot() == state.snapshot()


# -- over HTTP ---------------------------------------------------------------------------------


def call(emulator: Emulator, method: str, path: str = CLICK, *, eu: bool = False, **kwargs: Any) -> requests.Response:
    base = emulator.eu_base_url if eu else emulator.base_url
    return requests.request(method, base + path, timeout=10, **kwargs)


def envelope(response: requests.Response) -> tuple[int, str, str | None]:
    [error] = response.json()["errors"]
    return response.status_code, error["message"], error["field"]


def test_auth_messages(emulator: Emulator) -> None:
    assert envelope(call(emulator, "GET")) == (401, "authorization required", None)
    bad = call(emulator, "GET", headers={"Authorization": "Bearer SG.revoked"})
    assert envelope(bad) == (401, "The provided authorization grant is invalid, expired, or revoked", None)
    assert bad.headers["Content-Type"] == "application/json"


def test_scopes(emulator: Emulator) -> None:
    emulator.state.add_key("SG.open-only", ["tracking_settings.open.read"])
    headers = {"Authorization": "Bearer SG.open-only"}
    assert call(emulator, "GET", "/v3/tracking_settings/open", headers=headers).status_code == 200
    assert envelope(call(emulator, "GET", headers=headers)) == (403, "access forbidden", None)


def test_on_behalf_of_a_subuser_and_a_customer_account(emulator: Emulator) -> None:
    emulator.state.add_subuser("global", "alice", enabled=False)
    emulator.state.add_customer("global", "77", enabled=True)
    by_name = call(emulator, "GET", headers={**AUTH, "on-behalf-of": "alice"})
    by_id = call(emulator, "GET", headers={**AUTH, "On-Behalf-Of": "account-id 77"})
    assert by_name.json() == {"enabled": False, "enable_text": False}
    assert by_id.json() == {"enabled": True, "enable_text": False}
    assert envelope(call(emulator, "GET", headers={**AUTH, "on-behalf-of": "ghost"})) == (
        403,
        "access forbidden",
        "on-behalf-of",
    )


def test_eu_is_a_separate_world(emulator: Emulator) -> None:
    call(emulator, "PATCH", eu=True, headers=AUTH, json={"enabled": False})
    assert call(emulator, "GET", eu=True, headers=AUTH).json()["enabled"] is False
    assert call(emulator, "GET", headers=AUTH).json()["enabled"] is True


def test_bad_requests_and_unknown_routes(emulator: Emulator) -> None:
    assert envelope(call(emulator, "PATCH", headers=AUTH, data=b"{nope")) == (
        400,
        "request body is not valid JSON",
        None,
    )
    assert envelope(call(emulator, "PATCH", headers=AUTH, json={"enabled": "yes"})) == (
        400,
        "enabled must be a boolean, got string",
        "enabled",
    )
    assert envelope(call(emulator, "PATCH", headers=AUTH, data=b"\xff\xfe")) == (
        400,
        "request body is not valid JSON",
        None,
    )
    assert envelope(call(emulator, "GET", "/v3/tracking_settings/nope", headers=AUTH)) == (
        404,
        "resource not found",
        None,
    )
    assert call(emulator, "DELETE", headers=AUTH).status_code == 405
    assert call(emulator, "GET", headers=AUTH).json()["enabled"] is True  # nothing changed


def test_list_and_siblings(emulator: Emulator) -> None:
    call(emulator, "PATCH", "/v3/tracking_settings/open", headers=AUTH, json={"enabled": False})
    listed = {
        r["name"]: r["enabled"] for r in call(emulator, "GET", "/v3/tracking_settings", headers=AUTH).json()["result"]
    }
    assert listed == {"click": True, "google_analytics": False, "open": False, "subscription": False}
    ga = call(emulator, "PATCH", "/v3/tracking_settings/google_analytics", headers=AUTH, json={"utm_source": "x"})
    assert ga.json()["utm_source"] == "x"


def test_rate_limit_headers_and_429() -> None:
    now = time.time()  # the emulator's clock stands still: the three requests fall in one window, however slow
    with Emulator(EmulatorState(api_keys=[TEST_KEY], rate_limit=2, rate_window=60, clock=lambda: now)) as emulator:
        first, second, third = (call(emulator, "GET", headers=AUTH) for _ in range(3))
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert envelope(third) == (429, "too many requests", None)
    assert now < int(third.headers["X-RateLimit-Reset"]) <= now + 60


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_status_faults_for_the_matching_request_only(emulator: Emulator, kind: str) -> None:
    emulator.state.add_subuser("global", "alice")
    emulator.state.add_fault(Fault(kind, count=1, method="PATCH", account="alice"))
    assert call(emulator, "PATCH", headers=AUTH, json={"enabled": False}).status_code == 200  # parent: no match
    assert call(
        emulator, "PATCH", headers={**AUTH, "on-behalf-of": "alice"}, json={"enabled": False}
    ).status_code == int(kind)
    assert emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True  # not applied
    assert (
        call(emulator, "PATCH", headers={**AUTH, "on-behalf-of": "alice"}, json={"enabled": False}).status_code == 200
    )


def test_fault_after_apply_is_a_lost_answer(emulator: Emulator) -> None:
    emulator.state.add_fault(Fault("502", apply=True))
    assert call(emulator, "PATCH", headers=AUTH, json={"enabled": False}).status_code == 502
    assert emulator.state.snapshot()["global"]["parent"]["click"]["enabled"] is False


def test_429_faults_with_and_without_reset(emulator: Emulator) -> None:
    emulator.state.add_fault(Fault("429"))
    emulator.state.add_fault(Fault("429-no-reset"))
    with_reset, without = call(emulator, "GET", headers=AUTH), call(emulator, "GET", headers=AUTH)
    assert (with_reset.status_code, without.status_code) == (429, 429)
    assert "X-RateLimit-Reset" in with_reset.headers
    assert "X-RateLimit-Reset" not in without.headers


def test_malformed_and_reset_and_hang_faults(emulator: Emulator) -> None:
    emulator.state.add_fault(Fault("malformed"))
    bad = call(emulator, "GET", headers=AUTH)
    assert bad.status_code == 200
    with pytest.raises(ValueError):
        bad.json()
    emulator.state.add_fault(Fault("reset"))
    with pytest.raises(requests.ConnectionError):
        call(emulator, "GET", headers=AUTH)
    emulator.state.add_fault(Fault("hang", hang_seconds=30.0))  # far past the timeout, however loaded the machine
    with pytest.raises(requests.ReadTimeout):
        requests.get(emulator.base_url + CLICK, headers=AUTH, timeout=0.2)


def test_request_log_never_stores_the_key(emulator: Emulator) -> None:
    emulator.state.add_subuser("global", "alice")
    call(emulator, "PATCH", headers={**AUTH, "on-behalf-of": "alice"}, json={"enabled": False})
    [entry] = emulator.state.request_log()
    assert {k: entry[k] for k in ("world", "method", "path", "on_behalf_of", "status", "body")} == {
        "world": "global",
        "method": "PATCH",
        "path": CLICK,
        "on_behalf_of": "alice",
        "status": 200,
        "body": {"enabled": False},
    }
    assert TEST_KEY not in json.dumps(emulator.state.request_log())


def test_no_lost_updates_under_concurrency(emulator: Emulator) -> None:
    names = [f"u{i}" for i in range(40)]
    for name in names:
        emulator.state.add_subuser("global", name)
    with ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(
                lambda n: (
                    call(emulator, "PATCH", headers={**AUTH, "on-behalf-of": n}, json={"enabled": False}).status_code
                ),
                names,
            )
        )
    assert codes == [200] * 40
    subs = emulator.state.snapshot()["global"]["subusers"]
    assert [subs[n]["click"]["enabled"] for n in names] == [False] * 40
    assert len(emulator.state.request_log()) == 40


def test_binds_loopback_by_default(emulator: Emulator) -> None:
    assert emulator.base_url.startswith("http://127.0.0.1:")


def test_subprocess_with_admin_api(tmp_path: Any) -> None:
    state_file = tmp_path / "state.json"
    with EmulatorProcess("--subuser", "alice", "--api-key", TEST_KEY, "--state-file", str(state_file)) as proc:
        admin: AdminClient = proc.admin
        headers = {**AUTH, "on-behalf-of": "alice"}
        requests.patch(proc.base_url + CLICK, headers=headers, json={"enabled": False}, timeout=10)
        admin.set_setting({"enabled": True}, on_behalf_of="alice")  # out of band, like the UI
        assert requests.get(proc.base_url + CLICK, headers=headers, timeout=10).json()["enabled"] is True
        assert [e["method"] for e in admin.request_log()] == ["PATCH", "GET"]
        admin.add_fault("503", count=1)
        assert requests.get(proc.base_url + CLICK, headers=AUTH, timeout=10).status_code == 503
        admin.add_subuser("dave", world="eu")
        assert requests.get(proc.eu_base_url + CLICK, headers={**AUTH, "on-behalf-of": "dave"}, timeout=10).ok
        added = admin.add_customer(world="eu", enabled=False)  # a fresh ID in SendGrid's form
        assert re.fullmatch("sg[0-9a-f]{32}", added["account_id"])
        assert added["on_behalf_of"] == f"account-id {added['account_id']}"
        admin.delete_subuser("alice")
    saved = json.loads(state_file.read_text())
    assert "alice" not in saved["global"]["subusers"]
    with EmulatorProcess("--api-key", TEST_KEY, "--state-file", str(state_file)) as again:
        assert again.admin.state() == saved
        eu_customer = requests.get(
            again.eu_base_url + CLICK, headers={**AUTH, "on-behalf-of": added["on_behalf_of"]}, timeout=10
        )
        assert eu_customer.json() == {"enabled": False, "enable_text": False}


def test_admin_rejects_bad_requests(emulator: Emulator) -> None:
    admin = requests.post(emulator.base_url + "/__emulator/faults", json={"kind": "teapot"}, timeout=10)
    assert admin.status_code == 400
    assert admin.json()["errors"][0]["message"].startswith("kind must be one of 429, 429-no-reset, 500")
    unknown = requests.post(emulator.base_url + "/__emulator/faults", json={"kind": "500", "bogus": 1}, timeout=10)
    assert unknown.status_code == 400


def test_reset_drops_the_connection_with_a_tcp_reset(emulator: Emulator) -> None:
    emulator.state.add_fault(Fault("reset"))
    host, port = emulator.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {CLICK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TEST_KEY}\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            while sock.recv(1024):
                pass


def test_stops_cleanly() -> None:
    before = threading.active_count()
    with Emulator() as running:
        requests.get(running.base_url + CLICK, timeout=5)
    deadline = time.monotonic() + 30  # polled: a loaded machine may take a while to end the threads
    while threading.active_count() > before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before + 1
