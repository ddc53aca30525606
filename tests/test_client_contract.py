"""The client against the emulator over real HTTP: the contract, and every retry path."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pulumi_sendgrid_tracking import client as client_mod
from pulumi_sendgrid_tracking import errors
from pulumi_sendgrid_tracking.client import SendGridClient
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState, Fault
from pulumi_sendgrid_tracking.tracking import CLICK, TrackingSetting

from .conftest import TEST_KEY


def get(client: SendGridClient, on_behalf_of: str | None = None, setting: TrackingSetting = CLICK) -> dict[str, Any]:
    return client.get(setting.path, on_behalf_of, validate=setting.parse)


def update(
    client: SendGridClient, body: dict[str, Any], on_behalf_of: str | None = None, setting: TrackingSetting = CLICK
) -> dict[str, Any]:
    return client.update(setting.path, body, on_behalf_of, validate=setting.parse)


def client_for(emulator: Emulator, **kwargs: float) -> SendGridClient:
    return SendGridClient(TEST_KEY, emulator.base_url, **kwargs)


def log_of(emulator: Emulator) -> list[tuple[str, int, str | None]]:
    return [(e["method"], e["status"], e["fault"]) for e in emulator.state.request_log()]


def test_get_and_patch_round_trip(emulator: Emulator) -> None:
    emulator.state.add_subuser("global", "alice", enabled=True)
    emulator.state.add_subuser("eu", "carol", enabled=True)
    client = client_for(emulator)
    assert update(client, {"enabled": False}, "alice")["enabled"] is False
    assert get(client, "alice")["enabled"] is False
    assert get(client)["enabled"] is True  # the parent is another account
    eu = SendGridClient(TEST_KEY, emulator.eu_base_url)
    assert update(eu, {"enabled": False}, "carol")["enabled"] is False
    assert emulator.state.snapshot()["eu"]["subusers"]["carol"]["click"]["enabled"] is False
    with pytest.raises(errors.PermissionDeniedError, match="'carol' must be a subuser"):
        get(client, "carol")  # carol lives in the EU world only


def test_wrong_key_and_missing_scope(emulator: Emulator) -> None:
    with pytest.raises(errors.AuthenticationError, match="invalid, expired, or revoked"):
        get(SendGridClient("SG.wrong", emulator.base_url))
    emulator.state.add_key("SG.read-only", ["tracking_settings.click.read"])
    read_only = SendGridClient("SG.read-only", emulator.base_url)
    assert get(read_only)["enabled"] is True
    with pytest.raises(errors.PermissionDeniedError, match=r"\(403\): access forbidden.*click.update scope"):
        update(read_only, {"enabled": False})


@pytest.mark.parametrize("kind", ["429", "429-no-reset", "500", "502", "503", "504", "reset", "malformed"])
def test_transient_fault_is_retried_to_success(emulator: Emulator, waits: list[float], kind: str) -> None:
    emulator.state.add_fault(Fault(kind, count=2, method="PATCH"))
    assert update(client_for(emulator), {"enabled": False})["enabled"] is False
    status = {"reset": 0, "malformed": 200}.get(kind, int(kind[:3]) if kind[:3].isdigit() else -1)
    assert log_of(emulator) == [("PATCH", status, kind)] * 2 + [("PATCH", 200, None)]
    assert emulator.state.snapshot()["global"]["parent"]["click"]["enabled"] is False
    if kind != "malformed":
        assert len(waits) == 2 and all(w > 0 for w in waits)


def test_hang_past_read_timeout_is_retried(emulator: Emulator) -> None:
    # The hang is far longer than the read timeout, so the bound holds however loaded the machine is.
    emulator.state.add_fault(Fault("hang", count=1, hang_seconds=30))
    started = time.monotonic()
    assert get(client_for(emulator, request_timeout=0.3))["enabled"] is True
    assert time.monotonic() - started < 30  # did not wait for the hung answer
    assert [e["fault"] for e in emulator.state.request_log()][-1] is None


def test_429_waits_until_the_reset_time(waits: list[float]) -> None:
    # The emulator reads the same (fake) clock the client sleeps on.
    state = EmulatorState(api_keys=[TEST_KEY], rate_limit=1, rate_window=60, clock=lambda: client_mod._wall_clock())  # noqa: PLW0108 - read the patched clock at call time
    with Emulator(state) as emulator:
        client = client_for(emulator)
        get(client)
        window_end = (int(client_mod._wall_clock()) // 60 + 1) * 60
        before = client_mod._wall_clock()
        get(client)  # 429 until the window resets
        assert len(waits) == 1
        assert 0 <= (before + waits[0]) - window_end < 1.0  # the reset time plus a little jitter
        assert [s for _, s, _ in log_of(emulator)] == [200, 429, 200]


def test_429_without_reset_header_backs_off_exponentially(emulator: Emulator, waits: list[float]) -> None:
    emulator.state.add_fault(Fault("429-no-reset", count=4))
    get(client_for(emulator))
    assert len(waits) == 4
    assert [round(w * 4) / 4 for w in waits] == pytest.approx([0.5, 1.0, 2.0, 4.0], abs=0.26)


def test_persistent_429_gives_up_with_attempts_counted(emulator: Emulator, waits: list[float]) -> None:
    emulator.state.add_fault(Fault("429-no-reset", count=100))
    with pytest.raises(errors.RateLimitError) as info:
        get(client_for(emulator, retry_budget=600))
    assert info.value.status == 429
    assert info.value.attempts == 11  # 1 + 10 status retries
    assert "still exhausted after 11 attempt(s)" in str(info.value)
    assert len(emulator.state.request_log()) == 11


def test_retry_time_budget_stops_early(emulator: Emulator, waits: list[float]) -> None:
    emulator.state.add_fault(Fault("503", count=100))
    with pytest.raises(errors.ServerError) as info:
        update(client_for(emulator, retry_budget=3), {"enabled": False})
    assert sum(waits) <= 3
    assert info.value.attempts == len(emulator.state.request_log()) < 11
    assert "pulumi refresh" in str(info.value)


def test_persistent_connection_reset_is_a_transport_error(emulator: Emulator, waits: list[float]) -> None:
    emulator.state.add_fault(Fault("reset", count=100))
    with pytest.raises(errors.TransportError) as info:
        get(client_for(emulator), "alice")
    assert f"GET {CLICK.path} on behalf of 'alice' failed after 4 attempt(s)" in str(info.value)
    assert len(emulator.state.request_log()) == 4
    assert TEST_KEY not in str(info.value)


def test_connection_refused_is_a_transport_error(waits: list[float]) -> None:
    with pytest.raises(errors.TransportError, match="connection failed"):
        get(SendGridClient(TEST_KEY, "http://127.0.0.1:9"))


def test_one_client_from_many_threads(emulator: Emulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [f"user{i}" for i in range(24)]
    for name in names:
        emulator.state.add_subuser("global", name, enabled=True)
    client = client_for(emulator)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: update(client, {"enabled": False}, n), names))
    assert all(r["enabled"] is False for r in results)
    subs = emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)
