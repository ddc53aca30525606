"""Issue 5: every fault kind x every operation x every setting, transient and persistent, at the handler level.

The settings' fixtures are `CASES` of tests/test_singleton.py (built from the setting descriptions):
subuser alice holds `case.live`; the stack wants `case.desired` (its managed fields), and its originals are
in the stack's ledger (the setting's `ledger` input) or, once taken over, in the setting's own outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi_sendgrid_tracking import errors
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState, Fault
from pulumi_sendgrid_tracking.singleton import SettingProvider

from ..conftest import TEST_KEY, configured
from ..figures import record
from ..test_singleton import CASES, Case

KINDS = ["429", "429-no-reset", "500", "502", "503", "504", "reset", "hang", "malformed"]
OPERATIONS = ["create", "read", "update", "delete"]
SETTINGS = list(CASES)
"""The full matrix runs for every setting."""
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
TARGET = {"create": "PATCH", "read": "GET", "update": "PATCH", "delete": "PATCH"}
"""The request each operation's fault hits (create and delete GET first, then PATCH)."""
READS_FIRST = {"create", "delete"}


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorState(api_keys=[TEST_KEY])) as running:
        yield running


@pytest.fixture
def emulator(request: pytest.FixtureRequest, shared_emulator: Emulator) -> Iterator[Emulator]:
    """One emulator for the module, reset before each test (starting one per test costs 0.2 s at its stop).

    Every request is logged before its client sees the answer, except a hung one (logged when it ends,
    after the client gave up): the hang cases get an emulator of their own, so nothing leaks into the next test.
    """
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("kind") == "hang":
        with Emulator(EmulatorState(api_keys=[TEST_KEY])) as fresh:
            yield fresh
        return
    shared_emulator.state.reset()
    yield shared_emulator


def provider_for(emulator: Emulator, case: Case) -> SettingProvider:
    return configured(
        {
            "sendgrid:apiKey": TEST_KEY,
            "sendgrid:baseUrl": emulator.base_url,
            "sendgrid:requestTimeout": "0.3",  # the hang fault outlasts it
            "sendgrid:retryBudget": "60",
        },
        case.provider,
    )


def present(values: dict[str, Any]) -> dict[str, Any]:
    """A setting as SendGrid holds it: fields that are None are absent."""
    return {k: v for k, v in values.items() if v is not None}


def applied(case: Case) -> dict[str, Any]:
    """alice's setting once the stack's values are in."""
    return {**case.live, **case.desired}


def restored(case: Case) -> dict[str, Any]:
    """alice's setting after a restore: the managed fields' originals; one absent before is cleared again."""
    back = {**applied(case), **case.originals()}
    return {k: v for k, v in back.items() if not (k == "url" and v == "")}  # SendGrid leaves a cleared url out


def start(case: Case, op: str) -> dict[str, Any]:
    """alice's setting before the operation: as found, or (for delete) with the stack's values applied."""
    return applied(case) if op == "delete" else dict(case.live)


def expected(case: Case, op: str) -> dict[str, Any]:
    """alice's setting once the operation succeeded: every field, unmanaged ones as they were."""
    return {"create": applied(case), "read": dict(case.live), "update": applied(case), "delete": restored(case)}[op]


def run(op: str, case: Case, provider: SettingProvider) -> Any:
    """One handler call. create reads first (the ledger did not read in this process); delete restores."""
    if op == "create":
        return provider.create(case.inputs(on_behalf_of="alice"))
    if op == "read":  # the state records the stack's values; SendGrid holds the ones found
        return provider.read("global/alice", case.outputs(live=applied(case), on_behalf_of="alice"))
    if op == "update":
        return provider.update("global/alice", case.outputs(on_behalf_of="alice"), case.inputs(on_behalf_of="alice"))
    # The account is given up: the setting reads it and puts its own originals back.
    provider.delete("global/alice", case.outputs(live=applied(case), on_behalf_of="alice"))
    return None


def setup(emulator: Emulator, case: Case, op: str) -> None:
    emulator.state.add_subuser("global", "alice")
    emulator.state.set_out_of_band("global", "alice", case.setting.name, present(start(case, op)))


def settled_log(emulator: Emulator, kind: str, faults: int) -> list[dict[str, Any]]:
    """The request log once hung requests (logged when they end) have finished."""
    deadline = time.monotonic() + 60  # returns as soon as they are in: generous for a loaded machine
    while True:
        log = emulator.state.request_log()
        if sum(1 for e in log if e["fault"] == kind) >= faults or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def effective_changes(emulator: Emulator) -> int:
    return sum(1 for e in emulator.state.request_log() if e["changed"])


def alice(emulator: Emulator, case: Case) -> dict[str, Any]:
    return dict(emulator.state.snapshot()["global"]["subusers"]["alice"][case.setting.name])


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_transient_fault_survives(emulator: Emulator, waits: list[float], setting: str, kind: str, op: str) -> None:
    case = CASES[setting]
    setup(emulator, case, op)
    emulator.state.add_fault(Fault(kind, count=2, method=TARGET[op], account="alice", hang_seconds=0.5))
    result = run(op, case, provider_for(emulator, case))
    log = settled_log(emulator, kind, 2)
    faults = [e for e in log if e["fault"] == kind]
    assert len(faults) == 2  # both faults were met, and retried past
    assert alice(emulator, case) == present(expected(case, op))  # unmanaged fields untouched
    assert effective_changes(emulator) == (0 if op == "read" else 1)  # exactly one effective change
    if op != "delete":
        assert result.outs == case.outputs(live=expected(case, op), on_behalf_of="alice")
    record(
        "faults",
        level="handler",
        setting=setting,
        kind=kind,
        op=op,
        mode="transient",
        outcome="survived",
        requests=len(log),
        retries=len(log) - 1 - (1 if op in READS_FIRST else 0),
    )


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_persistent_fault_fails_cleanly_then_converges(
    emulator: Emulator, waits: list[float], setting: str, kind: str, op: str
) -> None:
    case = CASES[setting]
    setup(emulator, case, op)
    emulator.state.add_fault(Fault(kind, count=10_000, method=TARGET[op], account="alice", hang_seconds=0.5))
    provider = provider_for(emulator, case)
    with pytest.raises(errors.SendGridError) as info:
        run(op, case, provider)
    message = str(info.value)
    assert isinstance(info.value, PERSISTENT_ERRORS[kind])
    assert f"{TARGET[op]} {case.setting.path} on behalf of 'alice'" in message  # names the setting and account
    if kind[:3].isdigit():
        assert f"({kind[:3]})" in message
    assert message.count("Hint:") == 1
    assert TEST_KEY not in message
    log = settled_log(emulator, kind, 1)
    if TARGET[op] == "PATCH":  # a PATCH that failed is followed by one read: nothing landed, so its own error
        assert [e["method"] for e in log][-1] == "GET" and "landed is unknown" not in message
    # Truthful: nothing changed, and a refresh (fault cleared) says so.
    assert alice(emulator, case) == present(start(case, op))
    assert effective_changes(emulator) == 0
    emulator.state.clear_faults()
    refreshed = provider.read("global/alice", case.outputs(live=start(case, op), on_behalf_of="alice")).outs
    assert refreshed == case.outputs(live=start(case, op), on_behalf_of="alice")
    run(op, case, provider)  # the next run converges
    assert alice(emulator, case) == present(expected(case, op))
    record(
        "faults",
        level="handler",
        setting=setting,
        kind=kind,
        op=op,
        mode="persistent",
        outcome="failed cleanly, converged",
        error=message.split(". Hint:", maxsplit=1)[0],
        requests=len(emulator.state.request_log()),
    )


@pytest.mark.parametrize("setting", SETTINGS)
def test_lost_answer_after_apply_counts_once(emulator: Emulator, waits: list[float], setting: str) -> None:
    """A 502 returned after SendGrid applied the PATCH: the retry changes nothing more."""
    case = CASES[setting]
    setup(emulator, case, "update")
    emulator.state.add_fault(Fault("502", count=1, method="PATCH", apply=True))
    run("update", case, provider_for(emulator, case))
    assert alice(emulator, case) == present(applied(case))
    assert effective_changes(emulator) == 1
    assert [e["status"] for e in emulator.state.request_log()] == [502, 200]
    assert [e["body"] for e in emulator.state.request_log()] == [case.differing()] * 2


@pytest.mark.parametrize("op", ["create", "update", "delete"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_persistent_fault_after_the_change_landed_is_recorded_as_landed(
    emulator: Emulator, waits: list[float], setting: str, kind: str, op: str
) -> None:
    """SendGrid applied the PATCH, and its answer (and every retry's) was lost: the setting is read again,
    and what landed is what the operation records (issue 18: a reverted program must then show a change)."""
    case = CASES[setting]
    setup(emulator, case, op)
    emulator.state.add_fault(Fault(kind, count=1, method="PATCH", account="alice", hang_seconds=0.5, apply=True))
    emulator.state.add_fault(Fault(kind, count=10_000, method="PATCH", account="alice", hang_seconds=0.5))
    result = run(op, case, provider_for(emulator, case))
    log = settled_log(emulator, kind, 2)
    assert alice(emulator, case) == present(expected(case, op))
    assert effective_changes(emulator) == 1
    assert [e["method"] for e in log][-1] == "GET"  # read again after the last PATCH failed
    if op != "delete":
        assert result.outs == case.outputs(live=expected(case, op), on_behalf_of="alice")
    record(
        "faults",
        level="handler",
        setting=setting,
        kind=kind,
        op=op,
        mode="persistent, landed",
        outcome="read again, recorded as landed",
        requests=len(log),
    )
