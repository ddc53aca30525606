"""State written by 0.1.0 and 0.2.0, as 0.3.0 reads it: a setting's originals, and 0.2.0's retired records.

The outputs are the saved fixtures of tests/compat (state exported by those releases), so these tests read
exactly what an upgraded stack holds. No engine: the handlers are called with those outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from pulumi_sendgrid_tracking import AdoptionProvider, OriginalsProvider
from pulumi_sendgrid_tracking.errors import SendGridError
from pulumi_sendgrid_tracking.singleton import SettingProvider
from pulumi_sendgrid_tracking.tracking import SETTINGS

from .conftest import TEST_KEY, configured
from .test_singleton import CASES, GLOBAL, sent

COMPAT = Path(__file__).parent / "compat"
CLICK = f"{GLOBAL}/v3/tracking_settings/click"
PROVIDERS = {c.setting.resource: c.provider for c in CASES.values()}
SUBSCRIPTION_URL = GLOBAL + SETTINGS["subscription"].path


def saved(release: str) -> dict[str, dict[str, Any]]:
    """The tracking resources of a saved state: `<type>::<name>` → outputs (without the pickled provider)."""
    state = json.loads((COMPAT / release / "state.json").read_text())
    resources = {}
    for resource in state["deployment"]["resources"]:
        kind = resource["type"].rsplit(":", 1)[-1]
        if resource["type"].startswith("pulumi-python:dynamic/sendgrid:"):
            name = resource["urn"].rsplit("::", 1)[-1]
            resources[f"{kind}::{name}"] = {k: v for k, v in resource["outputs"].items() if k != "__provider"}
    return resources


@pytest.fixture
def http() -> Any:
    with requests_mock.Mocker() as mock:
        yield mock


def provider_for(kind: str) -> SettingProvider:
    return configured({"sendgrid:apiKey": TEST_KEY}, PROVIDERS[kind])


# -- a setting's originals from its legacy outputs ---------------------------------------------------


@pytest.mark.parametrize(
    ("release", "resource", "held"),
    [
        ("legacy-v0.1.0", "ClickTracking::parent", {"enabled": True}),
        ("legacy-v0.1.0", "ClickTracking::subuser-alice", {"enabled": True}),
        ("legacy-v0.1.0", "ClickTracking::subuser-bob", {"enabled": False}),
        ("v0.2.0", "ClickTracking::parent", {"enabled": True}),
        ("v0.2.0", "ClickTracking::subuser-alice", {"enabled": True}),
        ("v0.2.0", "OpenTracking::parent-open", {"enabled": True}),
        ("v0.2.0", "SubscriptionTracking::parent-subscription", {"enabled": True, "replace": "[unsubscribe]"}),
        ("v0.2.0", "GoogleAnalytics::subuser-alice-google-analytics", {"enabled": False, "utm_campaign": "old"}),
        # url was managed, and absent before (its null original is left out of the state): held as None.
        (
            "v0.2.0",
            "SubscriptionTracking::subuser-carol-subscription",
            {"enabled": False, "plain_content": "", "url": None},
        ),
    ],
)
def test_held_reads_the_originals_of_legacy_outputs(release: str, resource: str, held: dict[str, Any]) -> None:
    outs = saved(release)[resource]
    assert "held_fields" not in outs and "originals" not in outs  # written before 0.3.0
    provider = PROVIDERS[resource.split("::", maxsplit=1)[0]]
    assert provider.held(outs) == held
    assert sorted(provider.recorded_managed(outs)) == sorted(held)


def test_the_first_update_of_legacy_outputs_keeps_their_originals_and_sends_nothing(http: Any) -> None:
    outs = saved("v0.2.0")["SubscriptionTracking::subuser-carol-subscription"]
    provider = provider_for("SubscriptionTracking")
    news = {
        **{name: outs[name] for name in outs["managed_fields"]},  # the values it set
        "on_behalf_of": "carol",
        "region": "eu",
        "on_delete": "restore",
        "name": "subuser-carol-subscription",
        "ledger": '{"originals":{"enabled":true,"plain_content":"this stack wrote it"}}',
    }
    assert provider.diff("eu/carol", outs, news).changes is True
    result = provider.update("eu/carol", outs, news).outs
    assert http.call_count == 0
    # The setting's own originals win over whatever the ledger read at the upgrade (the stack's values).
    assert (result["originals"], result["held_fields"]) == (
        {"enabled": False, "plain_content": ""},
        ["enabled", "plain_content", "url"],
    )
    assert provider.diff("eu/carol", result, news).changes is False  # one update, then nothing


@pytest.mark.parametrize(
    ("release", "resource", "live", "body"),
    [
        ("legacy-v0.1.0", "ClickTracking::subuser-alice", {"enabled": False}, {"enabled": True}),
        ("legacy-v0.1.0", "ClickTracking::subuser-bob", {"enabled": True}, {"enabled": False}),
        (
            "v0.2.0",
            "SubscriptionTracking::subuser-carol-subscription",
            {"enabled": True, "plain_content": "Bye: <% %>", "url": "https://example.com/bye"},
            {"enabled": False, "plain_content": "", "url": ""},  # the absent url is cleared again
        ),
        ("v0.2.0", "OpenTracking::parent-open", {"enabled": True}, {"enabled": False}),  # on_delete: disable
        ("v0.2.0", "SubscriptionTracking::parent-subscription", {"enabled": True}, None),  # on_delete: keep
    ],
)
def test_a_legacy_setting_gives_its_account_back_from_its_own_outputs(
    http: Any, release: str, resource: str, live: dict[str, Any], body: dict[str, Any] | None
) -> None:
    outs = saved(release)[resource]
    kind = resource.split("::", maxsplit=1)[0]
    provider = provider_for(kind)
    path = provider.setting.path
    base = "https://api.eu.sendgrid.com" if outs["region"] == "eu" else GLOBAL
    current = {**provider.setting.parse({**{f.name: outs.get(f.name) for f in provider.setting.fields}}), **live}
    http.get(base + path, json={k: v for k, v in current.items() if v is not None})
    http.patch(base + path, json={k: v for k, v in {**current, **(body or {})}.items() if v is not None})
    provider.delete(outs.get("id") or "x", outs)
    obo = outs.get("on_behalf_of")
    expected = [] if body is None else [("GET", base + path, obo, None), ("PATCH", base + path, obo, body)]
    assert sent(http) == expected


# -- 0.2.0's adoption records, retired by the first 0.3.0 `up` -------------------------------------


@pytest.fixture
def adoption() -> Any:
    return configured({"sendgrid:apiKey": TEST_KEY}, AdoptionProvider)


def carol_record() -> dict[str, Any]:
    record = saved("v0.2.0")["Adoption::subscription/eu/carol"]
    assert record["managed_fields"] == ["enabled", "plain_content", "url"]
    return record


EU_SUBSCRIPTION = "https://api.eu.sendgrid.com" + SETTINGS["subscription"].path


def test_a_record_of_an_account_still_declared_sends_nothing(adoption: Any, http: Any) -> None:
    # The program of this run declares carol's subscription: the ledger's check (same process) says so.
    ledger = configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)
    accounts = {"subscription/eu/carol": ["enabled"]}
    assert ledger.check({}, {"accounts": accounts}).failures == []
    adoption.delete("subscription/eu/carol", carol_record())
    assert http.call_count == 0


def test_a_record_whose_setting_gave_the_account_back_in_this_process_sends_nothing(adoption: Any, http: Any) -> None:
    outs = saved("v0.2.0")["SubscriptionTracking::subuser-carol-subscription"]
    live = {"enabled": True, "html_content": "", "plain_content": "x <% %>", "replace": "", "landing": ""}
    http.get(EU_SUBSCRIPTION, json=live)
    http.patch(EU_SUBSCRIPTION, json={**live, "enabled": False, "plain_content": ""})
    provider_for("SubscriptionTracking").delete("eu/carol", outs)  # the setting goes first (it depended on it)
    assert [r.method for r in http.request_history] == ["GET", "PATCH"]
    adoption.delete("subscription/eu/carol", carol_record())
    assert [r.method for r in http.request_history] == ["GET", "PATCH"]  # nothing more


def test_a_record_left_behind_gives_its_account_back_from_what_it_observed(adoption: Any, http: Any) -> None:
    # A 0.2.0 give-back that failed after the setting left the state: the record is all that is left.
    record = carol_record()
    assert record["observed"]["enabled"] is False and record["observed"].get("url") is None
    live = {"enabled": True, "html_content": "", "plain_content": "", "replace": "", "landing": "", "url": "https://x"}
    http.get(EU_SUBSCRIPTION, json=live)
    http.patch(EU_SUBSCRIPTION, json=live)
    adoption.delete("subscription/eu/carol", record)
    # enabled and url differ from what it observed; plain_content does not (it is "" in both).
    assert sent(http) == [
        ("GET", EU_SUBSCRIPTION, "carol", None),
        ("PATCH", EU_SUBSCRIPTION, "carol", {"enabled": False, "url": ""}),
    ]


def test_a_record_left_behind_sends_only_a_get_when_the_account_is_as_observed(adoption: Any, http: Any) -> None:
    record = carol_record()
    http.get(EU_SUBSCRIPTION, json={k: v for k, v in record["observed"].items() if v is not None})
    adoption.delete("subscription/eu/carol", record)
    assert [r.method for r in http.request_history] == ["GET"]


def test_a_record_of_another_account_is_not_silenced_by_a_declared_one(adoption: Any, http: Any) -> None:
    ledger = configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)
    accounts = {"subscription/global": ["enabled"]}
    ledger.check({}, {"accounts": accounts})
    record = carol_record()
    observed = {k: v for k, v in record["observed"].items() if v is not None}
    http.get(EU_SUBSCRIPTION, json={**observed, "enabled": True})
    http.patch(EU_SUBSCRIPTION, json=observed)
    adoption.delete("subscription/eu/carol", record)
    assert sent(http) == [
        ("GET", EU_SUBSCRIPTION, "carol", None),
        ("PATCH", EU_SUBSCRIPTION, "carol", {"enabled": False}),
    ]


def test_a_kept_record_sends_nothing_and_records_are_never_read_or_changed(adoption: Any, http: Any) -> None:
    record = saved("v0.2.0")["Adoption::subscription/global"]
    assert record["on_delete"] == "keep"
    adoption.delete("subscription/global", record)
    assert adoption.diff("subscription/global", record, record).changes is False
    assert adoption.read("subscription/global", {**record, "__provider": "p"}).outs == record
    assert http.call_count == 0


def test_an_upgraded_setting_replaced_later_keeps_the_originals_from_before_the_stack(
    http: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = saved("v0.2.0")["SubscriptionTracking::subuser-carol-subscription"]
    key = "subscription/eu/carol"
    managed = outs["managed_fields"]
    written = {f.name: outs[f.name] for f in SETTINGS["subscription"].fields if outs.get(f.name) is not None}
    http.get(EU_SUBSCRIPTION, json=written)
    # The first 0.3.0 `up`: the ledger is new; carol holds what the stack wrote. It reads her, and takes her
    # originals from the state (`pulumi stack export`, here a stand-in printing the 0.2.0 fixture).
    fake_pulumi(tmp_path, monkeypatch, (COMPAT / "v0.2.0" / "state.json").read_text())
    ledger = configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)
    spec = managed
    entry = ledger.create({"accounts": {key: spec}, "stack": "dev"}).outs["entries"][key]
    assert sent(http) == [("GET", EU_SUBSCRIPTION, "carol", None)]
    assert (tmp_path / "argv").read_text().split() == ["stack", "export", "--stack", "dev", "--non-interactive"]
    provider = provider_for("SubscriptionTracking")
    news = {
        **{name: outs[name] for name in managed},
        "on_behalf_of": "carol",
        "region": "eu",
        "on_delete": "restore",
        "name": "subuser-carol-subscription",
        "ledger": entry,
    }
    upgraded = provider.update("eu/carol", outs, news).outs
    assert upgraded["originals"] == {"enabled": False, "plain_content": ""}  # its own, from 0.2.0
    # A later `pulumi up --replace <urn>` (delete first, then create), in a run of its own.
    http.patch(EU_SUBSCRIPTION, json=written)
    provider.delete("eu/carol", upgraded)
    created = provider.create(news).outs
    assert (created["originals"], created["held_fields"]) == (
        {"enabled": False, "plain_content": ""},
        ["enabled", "plain_content", "url"],
    )


def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stdout: str, code: int = 0, stderr: str = "") -> None:
    """A `pulumi` first on PATH that records its arguments (in tmp_path/argv) and prints `stdout`."""
    (tmp_path / "out").write_text(stdout)
    (tmp_path / "err").write_text(stderr)
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/argv\ncat {tmp_path}/out\ncat {tmp_path}/err >&2\nexit {code}\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")


def test_a_ledger_that_cannot_read_the_state_fails_before_anything_is_sent(
    http: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_pulumi(tmp_path, monkeypatch, "", code=255, stderr="error: failed to load checkpoint: EOF\n")
    http.get(CLICK, json={"enabled": True, "enable_text": False})
    ledger = configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)
    spec = ["enabled"]
    with pytest.raises(SendGridError) as caught:
        ledger.create({"accounts": {"click/global": spec}, "stack": "dev"})
    assert str(caught.value).startswith(
        "the originals ledger could not read the stack's state (pulumi stack export --stack dev exited 255: "
        "error: failed to load checkpoint: EOF). Hint: "
    )
    assert str(caught.value).endswith("then run `pulumi up` again (nothing was changed).")
    assert sent(http) == [("GET", CLICK, None, None)]  # read beside the export: nothing changed


def test_a_ledger_of_a_new_stack_reads_sendgrid(http: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack with no setting recorded yet (the export lists the stack alone): one GET per account setting."""
    fake_pulumi(
        tmp_path,
        monkeypatch,
        json.dumps({"version": 3, "deployment": {"resources": [{"type": "pulumi:pulumi:Stack"}]}}),
    )
    http.get(CLICK, json={"enabled": False, "enable_text": False})
    ledger = configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)
    spec = ["enabled"]
    entries = ledger.create({"accounts": {"click/global": spec}, "stack": "dev"}).outs["entries"]
    assert entries == {"click/global": '{"originals":{"enabled":false}}'}
    assert sent(http) == [("GET", CLICK, None, None)]


def test_a_new_ledger_keeps_recorded_originals_reads_the_rest_and_releases_what_is_not_declared(
    http: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state records click/global (original on) and click/global/bob (original off, no longer declared);
    the program declares click/global and open/global. SendGrid holds the stack's values."""

    def setting(kind: str, region: str, who: str | None, originals: dict[str, Any]) -> dict[str, Any]:
        outs = {"region": region, "on_behalf_of": who, "originals": originals, "held_fields": sorted(originals)}
        return {"type": f"pulumi-python:dynamic/sendgrid:{kind}", "outputs": outs}

    resources = [
        {"type": "pulumi:pulumi:Stack"},
        setting("ClickTracking", "global", None, {"enabled": True}),
        setting("ClickTracking", "global", "bob", {"enabled": False}),
    ]
    fake_pulumi(tmp_path, monkeypatch, json.dumps({"version": 3, "deployment": {"resources": resources}}))
    http.get(CLICK, json={"enabled": False, "enable_text": False})
    http.get(f"{GLOBAL}/v3/tracking_settings/open", json={"enabled": True})
    ledger = configured({"sendgrid:apiKey": TEST_KEY}, OriginalsProvider)
    accounts = {
        "click/global": ["enabled"],
        "open/global": ["enabled"],
    }
    entries = ledger.create({"accounts": accounts, "stack": "dev"}).outs["entries"]
    assert entries == {
        "click/global": '{"originals":{"enabled":true}}',  # recorded, not the live False
        "click/global/bob": '{"originals":{"enabled":false},"released":true}',
        "open/global": '{"originals":{"enabled":true}}',  # read
    }
    assert sorted(r.url for r in http.request_history) == [CLICK, f"{GLOBAL}/v3/tracking_settings/open"]


def test_the_ledger_finds_the_pulumi_that_runs_it_among_its_ancestors(tmp_path: Path) -> None:
    """Not only the one on PATH: a CI may run the CLI by its full path. A shell copied as `pulumi` starts a
    shell that starts Python (as the engine starts a provider through its launcher)."""
    engine = tmp_path / "bin" / "pulumi"
    engine.parent.mkdir()
    shutil.copy("/bin/sh", engine)
    probe = "from pulumi_sendgrid_tracking.singleton import _running_engine; print(_running_engine())"
    result = subprocess.run(
        [str(engine), "-c", f"/bin/sh -c '{sys.executable} -c \"{probe}\"'"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert result.stdout.strip() == str(engine)
