"""End-to-end fixtures: a throwaway Pulumi project run by the real CLI against the emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState

from tools.pulumi_project import ROOT, PulumiProject, engine_bin

from ..conftest import TEST_KEY
from ..support.postgres import PostgresServer, missing_reason

__all__ = ["ROOT", "PulumiProject"]


# A hang guard, as pyproject.toml's 300 s is for the rest: an engine test runs dozens of `pulumi` commands,
# and one took 275 s with 3 in parallel on 2 cores at load average 20.
ENGINE_TEST_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.engine)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(ENGINE_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    found = engine_bin()
    if found is None:
        message = "the Pulumi engine is not built: run `make engine` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def e2e_emulator() -> Iterator[Emulator]:
    state = EmulatorState(api_keys=[TEST_KEY])
    for name in ("alice", "bob"):
        state.add_subuser("global", name, enabled=True)
    state.add_subuser("eu", "carol", enabled=True)
    with Emulator(state) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, e2e_emulator: Emulator, pulumi_bin: Path) -> PulumiProject:
    return PulumiProject(tmp_path, e2e_emulator, pulumi_bin)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the session; always stopped and deleted at the end.

    In a parallel run (pytest-xdist) each process has its own, started when its first test asks for it:
    a test may stop and restart it, or drop databases, without touching another process's tests.
    """
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server
