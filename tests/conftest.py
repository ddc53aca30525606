"""Shared fixtures: a clean environment, fake keys, an in-process emulator, recorded waits."""

from __future__ import annotations

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
