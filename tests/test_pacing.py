"""The request rate budget (sendgrid:maxRequestsPerSecond): every attempt waits for its slot.

Clocks are fake: the pacer's waits are recorded, never slept, so nothing here depends on the
machine's speed. Several shard stacks share an account's rate limit by each taking a budget.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
import requests_mock
from pulumi_sendgrid_tracking import client as client_mod
from pulumi_sendgrid_tracking import config as settings
from pulumi_sendgrid_tracking.client import RequestPacer, SendGridClient, shared_pacer
from pulumi_sendgrid_tracking.emulator import Emulator, Fault
from pulumi_sendgrid_tracking.errors import ConfigurationError
from pulumi_sendgrid_tracking.tracking import CLICK

from .conftest import TEST_KEY, configured

BASE = "https://api.sendgrid.com"
URL = BASE + CLICK.path


class FakeClock:
    """monotonic and wall clocks that move only when someone sleeps (or `advance`s), unless frozen."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.now = 100.0
        self.frozen = frozen
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            if not self.frozen:
                self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(client_mod, "_monotonic", lambda: fake.now)
    monkeypatch.setattr(client_mod, "_wall_clock", lambda: 1_700_000_000 + fake.now)
    monkeypatch.setattr(client_mod, "_sleep", fake.sleep)
    monkeypatch.setattr(client_mod, "_pacers", {})  # each test is a provider process of its own
    yield fake


def test_requests_are_spaced_by_the_budget(clock: FakeClock) -> None:
    pacer = RequestPacer(4)
    sent_at = []
    for _ in range(9):
        pacer.acquire()
        sent_at.append(clock.now)
    assert sent_at == pytest.approx([100 + k * 0.25 for k in range(9)])
    assert clock.slept == pytest.approx([0.25] * 8)  # the first one did not wait


def test_an_idle_budget_does_not_save_up_a_burst(clock: FakeClock) -> None:
    pacer = RequestPacer(2)
    pacer.acquire()
    clock.advance(10)
    assert [pacer.acquire(), pacer.acquire(), pacer.acquire()] == pytest.approx([0, 0.5, 0.5])


def test_threads_share_one_budget(clock: FakeClock) -> None:
    clock.frozen = True  # every thread asks at the same instant: each must get its own slot
    pacer = RequestPacer(10)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = pacer.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]  # the provider server's 4 threads
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 100 requests in 100 distinct slots a tenth of a second apart: at most 10 in any second.
    assert sorted(waits) == pytest.approx([k * 0.1 for k in range(100)])


def test_the_client_paces_every_attempt_retries_included(clock: FakeClock, emulator: Emulator) -> None:
    client = SendGridClient(TEST_KEY, emulator.base_url, max_requests_per_second=2)
    assert client.pacer is not None
    pacer, slots = client.pacer, []
    acquire = pacer.acquire

    def recorded() -> float:
        wait = acquire()
        slots.append(clock.now)
        return wait

    pacer.acquire = recorded  # type: ignore[method-assign]
    client.get(CLICK.path, validate=CLICK.parse)
    emulator.state.add_fault(Fault("429-no-reset", count=1))  # the second request is refused once
    for _ in range(2):
        client.get(CLICK.path, validate=CLICK.parse)
    assert [e["status"] for e in emulator.state.request_log()] == [200, 429, 200, 200]
    assert len(slots) == 4  # the retry took a slot of its own
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(gap >= 0.5 - 1e-9 for gap in gaps), gaps


def test_without_a_budget_nothing_waits(clock: FakeClock) -> None:
    client = SendGridClient(TEST_KEY, BASE)
    with requests_mock.Mocker() as mock:
        mock.get(URL, json={"enabled": True, "enable_text": False})
        for _ in range(20):
            client.get(CLICK.path, validate=CLICK.parse)
    assert mock.call_count == 20 and clock.slept == []


def test_one_budget_per_process_for_both_regions(clock: FakeClock) -> None:
    glob = SendGridClient(TEST_KEY, BASE, max_requests_per_second=5)
    eu = SendGridClient(TEST_KEY, "https://api.eu.sendgrid.com", max_requests_per_second=5)
    assert glob.pacer is eu.pacer is shared_pacer(5)
    with requests_mock.Mocker() as mock:
        mock.get(URL, json={"enabled": True, "enable_text": False})
        mock.get("https://api.eu.sendgrid.com" + CLICK.path, json={"enabled": True, "enable_text": False})
        for _ in range(5):
            glob.get(CLICK.path, validate=CLICK.parse)
            eu.get(CLICK.path, validate=CLICK.parse)
    assert mock.call_count == 10 and clock.now == pytest.approx(100 + 9 * 0.2)


def test_the_provider_reads_the_budget_from_stack_config(clock: FakeClock) -> None:
    provider = configured({"sendgrid:apiKey": TEST_KEY, "sendgrid:maxRequestsPerSecond": "2.5"})
    client = provider._client("global")
    assert client.pacer is not None and client.pacer.per_second == 2.5
    unpaced = configured({"sendgrid:apiKey": TEST_KEY})._client("global")
    assert unpaced.pacer is None


BOUNDS = (
    "Hint: use 0.1 to 10 (e.g. 2.5 for each of 4 shard stacks), or unset it for no pacing: SendGrid publishes "
    "600 requests/minute per user, so more than 10/s would not be kept; below 0.1/s (one request every 10 s, "
    "that limit shared by 100 stacks) one account's update takes minutes."
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fast", "'fast' is not a number of requests per second"),
        ("nan", "'nan' is not a number of requests per second"),
        ("inf", "'inf' is not a number of requests per second"),
        ("0", "'0' is below 0.1 requests per second"),
        ("-1", "'-1' is below 0.1 requests per second"),
        ("1e-300", "'1e-300' is below 0.1 requests per second"),  # was an OverflowError in the pacer
        ("0.01", "'0.01' is below 0.1 requests per second"),  # was 100 s per request
        ("0.099", "'0.099' is below 0.1 requests per second"),
        ("10.5", "'10.5' is above SendGrid's published 10 requests per second"),
        ("20000", "'20000' is above SendGrid's published 10 requests per second"),
    ],
)
def test_a_budget_out_of_bounds_is_refused_with_the_reason(value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        settings.resolve({"sendgrid:apiKey": TEST_KEY, "sendgrid:maxRequestsPerSecond": value}, {})
    assert str(info.value) == f"invalid setting sendgrid:maxRequestsPerSecond: {problem}. {BOUNDS}"


@pytest.mark.parametrize("value", ["0.1", "2.5", "10"])
def test_the_bounds_themselves_are_accepted(value: str) -> None:
    resolved = settings.resolve({"sendgrid:apiKey": TEST_KEY, "sendgrid:maxRequestsPerSecond": value}, {})
    assert resolved.max_requests_per_second == float(value)


@pytest.mark.parametrize("value", ["0.01", "1e-300", "inf", "11"])
def test_a_budget_out_of_bounds_fails_check_at_preview_with_no_request(value: str) -> None:
    provider = configured({"sendgrid:apiKey": TEST_KEY, "sendgrid:maxRequestsPerSecond": value})
    with requests_mock.Mocker() as http:
        failures = provider.check({}, {"enabled": True}).failures
    assert [(f.property, f.reason.split(". Hint: ")[1]) for f in failures] == [
        ("sendgrid:maxRequestsPerSecond", BOUNDS.removeprefix("Hint: "))
    ]
    assert http.call_count == 0


def test_the_budget_can_come_from_the_environment() -> None:
    resolved = settings.resolve({"sendgrid:apiKey": TEST_KEY}, {"SENDGRID_MAX_REQUESTS_PER_SECOND": "3"})
    assert resolved.max_requests_per_second == 3.0
