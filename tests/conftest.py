"""Shared fixtures: a clean environment, fake keys, an in-process emulator, recorded waits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, TypeVar, overload

import pytest
from pulumi.dynamic import Config, ConfigureRequest, ResourceProvider
from pulumi_sendgrid_tracking import ClickTrackingProvider
from pulumi_sendgrid_tracking import client as client_mod
from pulumi_sendgrid_tracking import config as settings
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.singleton import RUN

TEST_KEY = "SG.test-key"
OTHER_KEY = "SG.rotated-test-key"
PROJECT = "sendgrid-click-tracking"


@pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py has marked the engine tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under an id of its own, longest first.

    `make test` runs the tests in parallel processes (pytest-xdist, `--dist loadgroup`). The controller
    hands out tests by node id: of tests sharing one, only one would run. Schemathesis' items (under
    pytest 9) leave their operation, `[GET /v3/...]`, out of the id: it goes back in. Any id still shared
    stops the run here rather than dropping tests silently.

    Order: tests marked `long`, then the engine tests, then the rest (each in collection order). Each
    process takes the next test as it finishes one: a test of minutes taken last would leave the others
    idle at the end.
    """
    for item in items:
        _, bracket, params = item.name.partition("[")
        if bracket and not item.nodeid.endswith("]"):
            item._id = item._id.with_params(params.removesuffix("]"))  # type: ignore[attr-defined]
    shared = sorted(nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1)
    if shared:
        raise pytest.UsageError(f"tests sharing a node id (a parallel run would run one of each): {shared}")
    items.sort(key=lambda item: 0 if item.get_closest_marker("long") else 1 if item.get_closest_marker("engine") else 2)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SENDGRID_* setting leaks in from the developer's shell."""
    for _, env_var in settings.SOURCES.values():
        monkeypatch.delenv(env_var, raising=False)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept; the clocks advance by what was 'slept'."""
    recorded: list[float] = []
    offset = [0.0]
    real_monotonic, real_wall = client_mod._monotonic, client_mod._wall_clock

    def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)
        offset[0] += seconds

    monkeypatch.setattr(client_mod, "_sleep", fake_sleep)
    monkeypatch.setattr(client_mod, "_monotonic", lambda: real_monotonic() + offset[0])
    monkeypatch.setattr(client_mod, "_wall_clock", lambda: real_wall() + offset[0])
    return recorded


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    state = EmulatorState(api_keys=[TEST_KEY])
    with Emulator(state) as running:
        yield running


P = TypeVar("P", bound=ResourceProvider)


@overload
def configured(config: dict[str, Any]) -> ClickTrackingProvider: ...
@overload
def configured(config: dict[str, Any], cls: type[P]) -> P: ...
def configured(config: dict[str, Any], cls: type[ResourceProvider] = ClickTrackingProvider) -> ResourceProvider:
    """A provider configured as the engine does, with `sendgrid:*` stack config."""
    provider = cls()
    provider.configure(ConfigureRequest(Config(config, PROJECT)))
    return provider


@pytest.fixture(autouse=True)
def fresh_run() -> Iterator[None]:
    """Each test is a run of its own: no accounts claimed, no adoption records read."""
    RUN.clear()
    yield
    RUN.clear()


@pytest.fixture
def emulated_provider(emulator: Emulator) -> ClickTrackingProvider:
    return configured(
        {
            "sendgrid:apiKey": TEST_KEY,
            "sendgrid:baseUrl": emulator.base_url,
            "sendgrid:euBaseUrl": emulator.eu_base_url,
        }
    )
