"""Issue 5: every fault kind x every operation, transient and persistent, at the handler level."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pulumi_sendgrid_tracking import AdoptionProvider, ClickTrackingProvider, errors
from pulumi_sendgrid_tracking.emulator import Emulator, Fault

from ..conftest import TEST_KEY, configured
from ..figures import record

KINDS = ["429", "429-no-reset", "500", "502", "503", "504", "reset", "hang", "malformed"]
OPERATIONS = ["create", "read", "update", "delete"]
PERSISTENT_ERRORS: dict[str, type[errors.SendGridError]] = {
    "429": errors.RateLimitError,
    "429-no-reset": errors.RateLimitError,
    "500": errors.ServerError,
    "502": errors.ServerError,
    "503": errors.ServerError,
    "504": errors.ServerError,
    "reset": errors.TransportError,
    "hang": errors.TransportError,
    "malformed": errors.MalformedResponseError,
}


SETTINGS = {
    "sendgrid:apiKey": TEST_KEY,
    "sendgrid:requestTimeout": "0.3",  # the hang fault outlasts it
    "sendgrid:retryBudget": "60",
}


def provider_for(emulator: Emulator) -> ClickTrackingProvider:
    return configured({**SETTINGS, "sendgrid:baseUrl": emulator.base_url})


def record_for(provider: ClickTrackingProvider) -> AdoptionProvider:
    """The adoption record's provider, configured as the setting's (one provider process serves both)."""
    return configured({k: v for k, v in provider._stack_config.items() if v is not None}, AdoptionProvider)


def recorded(enabled: bool, original: bool) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "enable_text": False,
        "on_behalf_of": "alice",
        "region": "global",
        "on_delete": "restore",
        "original_enabled": original,
    }


# Each operation: the request the fault hits, how to run it, and alice's value afterwards.
# alice starts with click tracking on; the stack wants it off.
def run(op: str, provider: ClickTrackingProvider) -> Any:
    desired = {"enabled": False, "on_behalf_of": "alice", "region": "global", "on_delete": "restore"}
    if op == "create":
        return provider.create(desired)
    if op == "read":
        return provider.read("global/alice", recorded(False, True))
    if op == "update":
        return provider.update("global/alice", recorded(True, True), desired)
    # The account is given up: the setting hands its values over, then its record restores: back to on.
    provider.delete("global/alice", recorded(False, True))
    record_for(provider).delete(
        "click/global/alice",
        {
            "setting": "click",
            "region": "global",
            "on_behalf_of": "alice",
            "on_delete": "restore",
            "managed_fields": ["enabled"],
            "observed": {"enabled": True, "enable_text": False},
            "token": "t",
        },
    )
    return None


TARGET = {"create": ("PATCH", False), "read": ("GET", True), "update": ("PATCH", False), "delete": ("PATCH", True)}
START = {"create": True, "read": True, "update": True, "delete": False}


def setup(emulator: Emulator, op: str) -> None:
    emulator.state.add_subuser("global", "alice", enabled=START[op])


def settled_log(emulator: Emulator, kind: str, faults: int) -> list[dict[str, Any]]:
    """The request log once hung requests (logged when they end) have finished."""
    deadline = time.monotonic() + 5
    while True:
        log = emulator.state.request_log()
        if sum(1 for e in log if e["fault"] == kind) >= faults or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def effective_changes(emulator: Emulator) -> int:
    return sum(1 for e in emulator.state.request_log() if e["changed"])


def alice(emulator: Emulator) -> bool:
    return bool(emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"])


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_transient_fault_survives(emulator: Emulator, waits: list[float], kind: str, op: str) -> None:
    setup(emulator, op)
    method, expected = TARGET[op]
    emulator.state.add_fault(Fault(kind, count=2, method=method, account="alice", hang_seconds=0.5))
    result = run(op, provider_for(emulator))
    log = settled_log(emulator, kind, 2)
    faults = [e for e in log if e["fault"] == kind]
    assert len(faults) == 2  # both faults were met, and retried past
    assert alice(emulator) is expected
    assert effective_changes(emulator) == (0 if op == "read" else 1)  # exactly one effective change
    if op == "read":
        assert result.outs["enabled"] is True
    if op in ("create", "update"):
        assert result.outs["enabled"] is False
    record(
        "faults",
        level="handler",
        kind=kind,
        op=op,
        mode="transient",
        outcome="survived",
        requests=len(log),
        retries=len(log) - 1 - (1 if op == "create" else 0),
    )


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_persistent_fault_fails_cleanly_then_converges(
    emulator: Emulator, waits: list[float], kind: str, op: str
) -> None:
    setup(emulator, op)
    method, expected = TARGET[op]
    emulator.state.add_fault(Fault(kind, count=10_000, method=method, account="alice", hang_seconds=0.5))
    provider = provider_for(emulator)
    with pytest.raises(errors.SendGridError) as info:
        run(op, provider)
    message = str(info.value)
    assert isinstance(info.value, PERSISTENT_ERRORS[kind]) or "whether the change landed is unknown" in message
    assert "on behalf of 'alice'" in message  # names the account
    if kind[:3].isdigit():
        assert f"({kind[:3]})" in message
    assert message.count("Hint:") == 1
    assert TEST_KEY not in message
    # Truthful: nothing changed, and a refresh (fault cleared) says so.
    assert alice(emulator) is START[op]
    assert effective_changes(emulator) == 0
    emulator.state.clear_faults()
    refreshed = provider.read("global/alice", recorded(START[op], True)).outs
    assert refreshed is not None and refreshed["enabled"] is START[op]
    run(op, provider)  # the next run converges
    assert alice(emulator) is expected
    record(
        "faults",
        level="handler",
        kind=kind,
        op=op,
        mode="persistent",
        outcome="failed cleanly, converged",
        error=message.split(". Hint:", maxsplit=1)[0],
        requests=len(emulator.state.request_log()),
    )


def test_lost_answer_after_apply_counts_once(emulator: Emulator, waits: list[float]) -> None:
    """A 502 returned after SendGrid applied the PATCH: the retry changes nothing more."""
    setup(emulator, "update")
    emulator.state.add_fault(Fault("502", count=1, method="PATCH", apply=True))
    run("update", provider_for(emulator))
    assert alice(emulator) is False
    assert effective_changes(emulator) == 1
    assert [e["status"] for e in emulator.state.request_log()] == [502, 200]
