"""pytest fixtures that run the SendGrid emulator for your own tests, as moto does for AWS.

Enable it in a conftest.py with `pytest_plugins = ["pulumi_sendgrid_tracking.emulator.pytest_plugin"]`.

- `sendgrid_emulator`: a running in-process `Emulator` on 127.0.0.1 with a fresh state (a parent
  account per world, no subusers), stopped after the test. `.state` is its `EmulatorState`.
- `sendgrid_emulator_env`: the same emulator, with `SENDGRID_API_KEY`, `SENDGRID_BASE_URL` and
  `SENDGRID_EU_BASE_URL` set for the test (monkeypatch), so the provider (and any code that reads
  them) talks to it.
- `sendgrid_emulator_state` and `sendgrid_emulator_api_key`: override them to start from another
  state (seeded accounts, other keys, a rate limit) or key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import Emulator
from .state import DEFAULT_API_KEY, EmulatorState


@pytest.fixture
def sendgrid_emulator_api_key() -> str:
    """The key the emulator accepts and `sendgrid_emulator_env` exports (a fake one)."""
    return DEFAULT_API_KEY


@pytest.fixture
def sendgrid_emulator_state(sendgrid_emulator_api_key: str) -> EmulatorState:
    """A fresh state: a parent account in each world, default settings, the key above."""
    return EmulatorState(api_keys=[sendgrid_emulator_api_key])


@pytest.fixture
def sendgrid_emulator(sendgrid_emulator_state: EmulatorState) -> Iterator[Emulator]:
    """A running emulator (global and EU listeners on 127.0.0.1), stopped after the test."""
    with Emulator(sendgrid_emulator_state) as running:
        yield running


@pytest.fixture
def sendgrid_emulator_env(
    sendgrid_emulator: Emulator, sendgrid_emulator_api_key: str, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """The emulator, with the provider's environment pointing at it for this test only."""
    monkeypatch.setenv("SENDGRID_API_KEY", sendgrid_emulator_api_key)
    monkeypatch.setenv("SENDGRID_BASE_URL", sendgrid_emulator.base_url)
    monkeypatch.setenv("SENDGRID_EU_BASE_URL", sendgrid_emulator.eu_base_url)
    return sendgrid_emulator
