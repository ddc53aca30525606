"""Issue 5 through the real engine: faults, load under a rate limit, interruption, bad input, secrets."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState, Fault

from ..conftest import TEST_KEY
from ..figures import record
from ..processes import EngineRun, describe
from ..test_singleton import CASES
from .conftest import ROOT, PulumiProject
from .test_ownership import declare, settings_in_state
from .test_settings import UPDATE, present, scenario

DIRECT = """
import pulumi
from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking

KINDS = {"click": ClickTracking, "open": OpenTracking, "subscription": SubscriptionTracking,
         "google_analytics": GoogleAnalytics}
config = pulumi.Config()
KINDS[config.get("kind") or "click"]("case", **(config.get_object("args") or {}))
"""


def changes_per_account(project: PulumiProject) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for entry in project.emulator.state.request_log():
        if entry["changed"]:
            counts[entry["on_behalf_of"]] = counts.get(entry["on_behalf_of"], 0) + 1
    return counts


def setting_of(project: PulumiProject, name: str, user: str) -> dict[str, Any]:
    return dict(project.emulator.state.snapshot()["global"]["subusers"][user][name])


# -- faults through the engine (a representative subset of the handler-level matrix), per setting ----


FAULT_CASES = [
    ("create", "503", 2, "PATCH"),
    ("create", "malformed", 2, "PATCH"),
    ("update", "429", 1, "PATCH"),
    ("refresh", "reset", 2, "GET"),
    ("destroy", "504", 2, "PATCH"),
]
SETTINGS = list(CASES)
ENGINE_FAULT_CASES = len(FAULT_CASES) * len(SETTINGS) + len(SETTINGS)
"""Transient cases for every setting, and the persistent case for every setting."""


@pytest.mark.parametrize(("op", "kind", "count", "method"), FAULT_CASES)
@pytest.mark.parametrize("name", SETTINGS)
def test_transient_fault_through_the_engine(
    project: PulumiProject, name: str, op: str, kind: str, count: int, method: str
) -> None:
    """alice holds the case's live values (unmanaged fields distinctive); the program wants its desired ones."""
    case = scenario(name)
    applied = {**case.live, **case.desired}
    project.emulator.state.set_out_of_band("global", "alice", name, present(case.live))
    resource = {"name": "alice", "kind": name, "on_behalf_of": "alice", **case.desired}
    if op != "create":
        declare(project, resource)
        project.up()
    if op == "update":
        resource = {**resource, **UPDATE[name]}
    declare(project, resource)
    project.emulator.state.add_fault(Fault(kind, count=count, method=method, account="alice"))
    args = {
        "create": ("up", "--yes", "--skip-preview"),
        "update": ("up", "--yes", "--skip-preview"),
        "refresh": ("refresh", "--yes", "--skip-preview"),
        "destroy": ("destroy", "--yes", "--skip-preview"),
    }[op]
    project.run(*args)
    log = project.emulator.state.request_log()
    assert sum(1 for e in log if e["fault"] == kind) == count
    restored = {**applied, **{k: case.live.get(k) for k in case.desired}}  # a field absent before is cleared
    expected = {"create": applied, "update": {**applied, **UPDATE[name]}, "refresh": applied, "destroy": restored}[op]
    assert setting_of(project, name, "alice") == present(expected)  # unmanaged fields as they were
    # One effective change per step that changes something: the setup `up` (if any), then the operation.
    assert changes_per_account(project) == {"alice": {"create": 1, "update": 2, "refresh": 1, "destroy": 2}[op]}
    if op != "destroy":
        outs = settings_in_state(project)["alice"]
        assert {k: outs.get(f"original_{k}") for k in case.desired} == {k: case.live.get(k) for k in case.desired}
    record(
        "faults",
        level="engine",
        setting=name,
        kind=kind,
        op=op,
        mode="transient",
        outcome="survived",
        requests=len(log),
    )


@pytest.mark.parametrize("name", SETTINGS)
def test_persistent_fault_through_the_engine_then_convergence(project: PulumiProject, name: str) -> None:
    case = scenario(name)
    applied = {**case.live, **case.desired}
    for user in ("alice", "bob"):
        project.emulator.state.set_out_of_band("global", user, name, present(case.live))
    declare(project, *({"name": user, "kind": name, "on_behalf_of": user, **case.desired} for user in ("alice", "bob")))
    project.up()
    project.emulator.state.add_fault(Fault("503", count=10_000, method="PATCH", account="bob"))
    failed = project.run("destroy", "--yes", "--skip-preview", check=False)
    assert failed.returncode != 0
    assert f"sendgrid:{case.setting.resource} (global/bob)" in failed.stdout  # bob's setting gives him back
    assert f"PATCH {case.setting.path} on behalf of 'bob' failed (503)" in failed.stdout
    assert "Hint:" in failed.stdout
    # Truthful: bob's setting failed to give him back, and stays in the state with the originals it still
    # has to restore (and the ledger, which it depends on); alice's went.
    left = [r for r in project.export()["deployment"]["resources"] if r["type"].startswith("pulumi-python:")]
    assert sorted((r["type"].rsplit(":", 1)[1], r["urn"].rsplit("::", 1)[1]) for r in left) == sorted(
        [(case.setting.resource, "global/bob"), ("Originals", "originals")]
    )
    bob = settings_in_state(project)["bob"]
    assert {k: bob["originals"].get(k) for k in bob["held_fields"]} == {k: case.live.get(k) for k in case.desired}
    assert setting_of(project, name, "bob") == present(applied)
    project.emulator.state.clear_faults()
    project.run("destroy", "--yes", "--skip-preview")  # the next run gives bob back
    assert changes_per_account(project) == {"alice": 2, "bob": 2}  # set once, restored once
    back = {k: "" if case.live.get(k) is None else case.live[k] for k in case.desired}  # "" clears an absent url
    restored = {k: v for k, v in {**applied, **back}.items() if not (k == "url" and v == "")}
    assert setting_of(project, name, "alice") == setting_of(project, name, "bob") == present(restored)
    record(
        "faults",
        level="engine",
        setting=name,
        kind="503",
        op="destroy",
        mode="persistent",
        outcome="failed cleanly, converged",
        error=next(line.strip() for line in failed.stdout.splitlines() if "failed (503)" in line)[:200],
    )


# -- load ------------------------------------------------------------------------------------


@pytest.mark.long
def test_two_hundred_subusers_under_a_20_per_second_limit(project: PulumiProject) -> None:
    names = [f"load{i:03}" for i in range(200)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    project.emulator.state.configure(rate_limit=20, rate_window=1.0)
    project.env["SENDGRID_RETRY_BUDGET"] = "120"
    project.set_fleet(subusers=[{"username": n, "enabled": False} for n in names])
    started = time.monotonic()
    project.up()
    elapsed = time.monotonic() - started
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert [subs[n]["click"]["enabled"] for n in names] == [False] * 200  # state equals desired
    log = project.emulator.state.request_log()
    limited = sum(1 for e in log if e["status"] == 429)
    assert all(e["status"] in (200, 429) for e in log)  # zero failures
    assert sum(1 for e in log if e["status"] == 200) == 400  # one GET and one PATCH each, nothing more
    record(
        "load",
        subusers=200,
        limit_per_s=20,
        seconds=round(elapsed, 1),
        requests=len(log),
        rate_limited=limited,
        achieved_per_s=round(400 / elapsed, 1),
        failures=0,
    )


# -- interruption ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_up_recovers_with_nothing_applied_twice(project: PulumiProject, sig: signal.Signals) -> None:
    names = [f"int{i:02}" for i in range(40)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    project.emulator.state.configure(latency=0.15)
    project.set_fleet(subusers=[{"username": n, "enabled": False} for n in names])
    with EngineRun(project) as run:
        run.wait_for_changes(10)
        if sig == signal.SIGKILL:
            os.killpg(run.proc.pid, signal.SIGKILL)  # the whole job, as a CI runner cancels it
        else:
            run.proc.send_signal(signal.SIGINT)
        # The plugins have process groups of their own: they must stop by themselves, and before recovery.
        left = run.wait_until_gone()
    assert left == {}, f"left behind by the interrupted run:\n{describe(left)}"
    assert run.proc.returncode != 0
    output = run.output
    # A kill during a checkpoint can leave the file backend's metadata sidecar (<stack>.json.attrs)
    # empty; the state beside it is written atomically and intact. The recovery step of docs/behaviour.md
    # deletes the empty sidecar. Anything else unreadable fails the test.
    repaired = []
    for sidecar in project.state_dir.rglob("*.json.attrs"):
        if sidecar.stat().st_size == 0:
            json.loads(sidecar.with_suffix("").read_text())  # the state itself parses
            sidecar.unlink()
            repaired.append(sidecar.name)
    assert sig == signal.SIGKILL or repaired == []
    deployment = project.export()["deployment"]
    pending = sorted(op["resource"]["urn"].rsplit("::", 1)[1] for op in deployment.get("pending_operations", []))
    recovery: list[tuple[str, ...]]
    if sig == signal.SIGINT:
        assert "update canceled" in output
        assert pending == []  # Pulumi finished what was in flight and recorded it
        recovery = [("up", "--yes", "--skip-preview")]
    else:
        assert project.run("up", "--yes", "--skip-preview", check=False).returncode != 0  # locked
        recovery = [
            ("cancel", "--yes"),
            ("refresh", "--yes", "--skip-preview", "--clear-pending-creates"),
            ("up", "--yes", "--skip-preview"),
        ]
    for step in recovery:
        project.run(*step)
    subs = project.emulator.state.snapshot()["global"]["subusers"]
    assert all(subs[n]["click"]["enabled"] is False for n in names)  # converged
    assert changes_per_account(project) == {n: 1 for n in names}  # nothing applied twice, nothing lost
    resources = project.resources()
    assert set(resources) == {f"subuser-{n}" for n in names}
    lost_originals = sorted(name for name, outs in resources.items() if outs["original_enabled"] is not True)
    # The ledger held every original before any PATCH: even a create cut between its PATCH and the
    # checkpoint (a pending create) takes its original from there, never the value it wrote.
    assert lost_originals == []
    assert len(pending) <= 8  # bounded by the engine's parallelism
    project.run("preview", "--expect-no-changes")
    record(
        "interruption",
        signal=sig.name,
        recovery=" ; ".join("pulumi " + " ".join(s) for s in recovery),
        converged=True,
        applied_twice=0,
        pending_creates=len(pending),
        originals_lost=len(lost_originals),
        empty_sidecar_removed=bool(repaired),
    )


# -- bad input: rejected at preview, zero requests --------------------------------------------


class BadInput(NamedTuple):
    """One bad input: it must fail `pulumi preview` with every `expected` text, before any request."""

    case: str
    program: str
    """`direct` (one resource of the setting named by the config key `kind`, click by default, with the
    arguments in `args`) or `fleet` (the repository's __main__.py)."""
    config: dict[str, Any]
    """Stack config; a key without a namespace is in the program's (`sendgrid-click-tracking:`)."""
    env: dict[str, str]
    expected: list[str]
    files: tuple[tuple[str, str], ...] = ()
    """Files written into the project for this case (the default fleet.yaml is restored after)."""
    raw_config: str = ""
    """The stack file's `config:` section as YAML text, for what JSON cannot spell (unquoted 0x10)."""


PLAINTEXT_KEY = "SG.plaintext-test-key"
BAD_INPUTS: list[BadInput] = [
    BadInput(
        "enabled as a string",
        "direct",
        {"args": {"enabled": "true"}},
        {},
        ["enabled must be a boolean, got the string 'true'", "config.require_bool"],
    ),
    BadInput("enabled as a number", "direct", {"args": {"enabled": 1}}, {}, ["enabled must be a boolean"]),
    BadInput(
        "enabled missing",
        "direct",
        {"args": {"on_behalf_of": "alice"}},
        {},
        ["missing 1 required keyword-only argument: 'enabled'"],
    ),
    BadInput(
        "empty on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": ""}},
        {},
        ["on_behalf_of must not be empty", "omit it (None)"],
    ),
    BadInput(
        "header injection in on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "alice\r\nX-Evil: 1"}},
        {},
        ["on_behalf_of 'alice\\r\\nX-Evil: 1' has '\\r' (U+000D, a control character) at position 6"],
    ),
    BadInput(
        "oversized on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "x" * 300}},
        {},
        ["on_behalf_of is 300 characters long"],
    ),
    BadInput(
        "malformed account-id",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "account-id"}},
        {},
        ["must be 'account-id <id>' with one space before the ID, e.g. 'account-id sg2a2bcd3ef4ab5c67d8efab91c01de2fa"],
    ),
    BadInput(
        "a Cyrillic look-alike in on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "\u0441\u0430rol"}},
        {},
        ["on_behalf_of '\u0441\u0430rol' has '\u0441' (U+0441, CYRILLIC SMALL LETTER ES) at position 1"],
    ),
    BadInput(
        "a zero-width space in on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "car\u200bol"}},
        {},
        ["on_behalf_of 'car\\u200bol' has '\\u200b' (U+200B, ZERO WIDTH SPACE) at position 4"],
    ),
    BadInput(
        "a trailing newline in on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "carol\n"}},
        {},
        ["on_behalf_of 'carol\\n' has '\\n' (U+000A, a control character) at position 6"],
    ),
    BadInput(
        "an account ID with a hyphen",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "account-id sg2a-2bcd"}},
        {},
        ["'account-id sg2a-2bcd' has '-' (U+002D, HYPHEN-MINUS) at position 16", "ASCII letters and digits"],
    ),
    BadInput(
        "maxRequestsPerSecond below the floor",
        "direct",
        {"sendgrid:maxRequestsPerSecond": "0.01", "args": {"enabled": True}},
        {},
        ["'0.01' is below 0.1 requests per second", "SendGrid publishes 600 requests/minute per user"],
    ),
    BadInput(
        "maxRequestsPerSecond 1e-300",
        "direct",
        {"sendgrid:maxRequestsPerSecond": "1e-300", "args": {"enabled": True}},
        {},
        ["'1e-300' is below 0.1 requests per second"],
    ),
    BadInput(
        "unknown region",
        "direct",
        {"args": {"enabled": True, "region": "us"}},
        {},
        ["region must be one of global, eu (or omitted", "got 'us'"],
    ),
    BadInput(
        "unknown on_delete",
        "direct",
        {"args": {"enabled": True, "on_delete": "purge"}},
        {},
        ["on_delete must be one of restore, keep, disable, got 'purge'"],
    ),
    # -- per setting: each resource's own fields, through the same program --------------------------
    BadInput(
        "click: enable_text (read-only) given",
        "direct",
        {"kind": "click", "args": {"enabled": True, "enable_text": True}},
        {},
        ["ClickTracking.__init__() got an unexpected keyword argument 'enable_text'"],
    ),
    BadInput(
        "open: enabled as a string",
        "direct",
        {"kind": "open", "args": {"enabled": "false"}},
        {},
        ["enabled must be a boolean, got the string 'false'", "config.require_bool"],
    ),
    BadInput(
        "open: unknown field",
        "direct",
        {"kind": "open", "args": {"enabled": True, "enable_text": False}},
        {},
        ["OpenTracking.__init__() got an unexpected keyword argument 'enable_text'"],
    ),
    BadInput(
        "open: enabled missing",
        "direct",
        {"kind": "open", "args": {"on_behalf_of": "alice"}},
        {},
        ["missing 1 required keyword-only argument: 'enabled'"],
    ),
    BadInput(
        "subscription: url relative",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "url": "/unsubscribe"}},
        {},
        ["url must be an absolute http(s) URL such as https://example.com/unsubscribe, got '/unsubscribe'"],
    ),
    BadInput(
        "subscription: url with a space",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "url": "https://example.com/un subscribe"}},
        {},
        ["url must not contain spaces; encode them as %20"],
    ),
    BadInput(
        "subscription: html_content without the <% text %> tag",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "html_content": "<p>Unsubscribe</p>"}},
        {},
        ["html_content must contain SendGrid's unsubscribe link tag with its link text"],
    ),
    BadInput(
        "subscription: plain_content without <% %>",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "plain_content": "Unsubscribe here"}},
        {},
        ["plain_content must contain SendGrid's '<% %>' tag"],
    ),
    BadInput(
        "subscription: landing over 65536 characters",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "landing": "x" * 70_000}},
        {},
        ["landing is 70000 characters long; at most 65536 are allowed"],
    ),
    BadInput(
        "subscription: unknown field",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "unsubscribe_url": "https://example.com"}},
        {},
        ["SubscriptionTracking.__init__() got an unexpected keyword argument 'unsubscribe_url'"],
    ),
    BadInput(
        "subscription: header injection in on_behalf_of",
        "direct",
        {"kind": "subscription", "args": {"enabled": True, "on_behalf_of": "alice\r\nX-Evil: 1"}},
        {},
        ["on_behalf_of 'alice\\r\\nX-Evil: 1' has '\\r' (U+000D, a control character) at position 6"],
    ),
    BadInput(
        "google_analytics: utm_source with a newline",
        "direct",
        {"kind": "google_analytics", "args": {"enabled": True, "utm_source": "news\nletter"}},
        {},
        ["utm_source must not contain control characters such as newlines or tabs"],
    ),
    BadInput(
        "google_analytics: utm_campaign over 255 characters",
        "direct",
        {"kind": "google_analytics", "args": {"enabled": True, "utm_campaign": "c" * 256}},
        {},
        ["utm_campaign is 256 characters long; at most 255 are allowed"],
    ),
    BadInput(
        "google_analytics: utm_medium not a string",
        "direct",
        {"kind": "google_analytics", "args": {"enabled": True, "utm_medium": True}},
        {},
        ["utm_medium must be a string, got bool"],
    ),
    BadInput(
        "google_analytics: unknown field",
        "direct",
        {"kind": "google_analytics", "args": {"enabled": True, "utm_name": "spring"}},
        {},
        ["GoogleAnalytics.__init__() got an unexpected keyword argument 'utm_name'"],
    ),
    BadInput(
        "google_analytics: unknown on_delete",
        "direct",
        {"kind": "google_analytics", "args": {"enabled": True, "on_delete": "purge"}},
        {},
        ["on_delete must be one of restore, keep, disable, got 'purge'"],
    ),
    BadInput(
        "fleet: quoted enabled",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": "false"}]},
        {},
        ["subusers[0].enabled: must be true or false (unquoted)"],
    ),
    BadInput(
        "fleet: unknown field",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True, "enable": True}]},
        {},
        ["subusers[0].enable: unknown field"],
    ),
    BadInput(
        "fleet: duplicate subuser",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True}, {"username": "alice", "enabled": False}]},
        {},
        ["subusers[1]: 'alice' is already configured at subusers[0]; remove one"],
    ),
    BadInput(
        "fleet: username and accountId",
        "fleet",
        {"subusers": [{"username": "a", "accountId": "1", "enabled": True}]},
        {},
        ["subusers[0]: give exactly one of username or accountId"],
    ),
    BadInput(
        "fleet: region in capitals",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True, "region": "EU"}]},
        {},
        ["subusers[0].region: must be one of global, eu"],
    ),
    BadInput(
        "fleet: unknown onDelete",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True, "onDelete": "delete"}]},
        {},
        ["subusers[0].onDelete: must be one of restore, keep, disable"],
    ),
    BadInput(
        "fleet: parent without enabled",
        "fleet",
        {"parent": {"onDelete": "keep"}},
        {},
        ["parent.enabled: required; set it to true or false"],
    ),
    BadInput(
        "fleet: file and inline config",
        "fleet",
        {"fleetFile": "fleet.yaml", "parent": {"enabled": True}},
        {},
        [
            "set either sendgrid-click-tracking:fleetFile or defaults/parent/subusers/manageNothing in stack config, "
            "not both"
        ],
    ),
    BadInput(
        "fleet: missing fleet file",
        "fleet",
        {"fleetFile": "nowhere.yaml"},
        {},
        ["sendgrid-click-tracking:fleetFile: cannot read nowhere.yaml"],
    ),
    BadInput(
        "settings: no API key",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_API_KEY": ""},
        ["no SendGrid API key is set", "pulumi config set --secret sendgrid:apiKey"],
    ),
    BadInput(
        "settings: key with a newline",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_API_KEY": "SG.abc\ndef"},
        ["the API key contains whitespace, control or non-ASCII characters"],
    ),
    BadInput(
        "settings: plain http to a remote host",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_BASE_URL": "http://api.sendgrid.com"},
        ["SENDGRID_BASE_URL", "would send the API key unencrypted"],
    ),
    BadInput(
        "settings: base URL with credentials",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_BASE_URL": "https://user:pw@api.sendgrid.com"},
        ["the URL contains credentials"],
    ),
    BadInput(
        "settings: base URL with a path",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_BASE_URL": "https://api.sendgrid.com/v3"},
        ["the URL has a path, query or fragment"],
    ),
    BadInput(
        "settings: unknown stack region",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_REGION": "asia"},
        ["SENDGRID_REGION: unknown region 'asia'"],
    ),
    BadInput(
        "settings: timeout not a number",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_REQUEST_TIMEOUT": "fast"},
        ["SENDGRID_REQUEST_TIMEOUT: 'fast' is not a number of seconds"],
    ),
    BadInput(
        "settings: EU without an EU base URL",
        "fleet",
        {"subusers": [{"username": "carol", "enabled": True, "region": "eu"}]},
        {"SENDGRID_EU_BASE_URL": ""},
        ["set sendgrid:euBaseUrl (or SENDGRID_EU_BASE_URL) too"],
    ),
    BadInput(
        "config: misspelled program key (fleetfile)",
        "fleet",
        {"fleetfile": "fleet.yaml"},
        {},
        [
            "sendgrid-click-tracking:fleetfile: unknown key (keys are case-sensitive); "
            "did you mean sendgrid-click-tracking:fleetFile?",
            "no fleet configured",
        ],
    ),
    BadInput(
        "config: misspelled sendgrid key (regoin)",
        "fleet",
        {"sendgrid:regoin": "eu", "parent": {"enabled": True}},
        {},
        ["sendgrid:regoin: unknown key; did you mean sendgrid:region?"],
    ),
    BadInput(
        "config: sendgrid:apikey in the wrong case",
        "fleet",
        {"sendgrid:apikey": "SG.x", "parent": {"enabled": True}},
        {},
        ["sendgrid:apikey: unknown key (keys are case-sensitive); did you mean sendgrid:apiKey?", "--secret"],
    ),
    BadInput(
        "config: API key in plaintext",
        "fleet",
        {"sendgrid:apiKey": PLAINTEXT_KEY, "parent": {"enabled": True}},
        {},
        [
            "sendgrid:apiKey: the API key is stored in plaintext in Pulumi.dev.yaml",
            "pulumi config set --secret sendgrid:apiKey",
            "SENDGRID_API_KEY",
        ],
    ),
    BadInput(
        "fleet: no fleet config at all",
        "fleet",
        {},
        {},
        ["no fleet configured: set sendgrid-click-tracking:fleetFile", "manageNothing: true"],
    ),
    BadInput(
        "fleet: empty fleet file",
        "fleet",
        {"fleetFile": "empty.yaml"},
        {},
        ["no accounts: empty.yaml is empty (or only comments)", "manageNothing: true"],
        files=(("empty.yaml", ""),),
    ),
    BadInput(
        "fleet: comment-only fleet file",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["no accounts: fleet.yaml is empty (or only comments)"],
        files=(("fleet.yaml", "# every account removed\n"),),
    ),
    BadInput(
        "fleet: parent and subusers null",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["parent: empty; give its settings", "subusers: empty; list the accounts, or write `subusers: []`"],
        files=(("fleet.yaml", "parent: null\nsubusers: null\n"),),
    ),
    BadInput(
        "fleet: no accounts inline, no manageNothing",
        "fleet",
        {"subusers": []},
        {},
        [
            "no accounts: stack config lists no parent and no subusers",
            "pulumi config set sendgrid-click-tracking:manageNothing true",
        ],
    ),
    BadInput(
        "fleet: manageNothing next to accounts",
        "fleet",
        {"manageNothing": True, "parent": {"enabled": True}},
        {},
        ["manageNothing: true, but the fleet lists parent"],
    ),
    BadInput(
        "fleet: manageNothing not a boolean",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["manageNothing: must be true or false (unquoted), got 'yes'"],
        files=(("fleet.yaml", "manageNothing: yes\n"),),
    ),
    BadInput(
        "fleet: unquoted accountId 042 in the fleet file",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        [
            "subusers[0].accountId: must be a string of letters and digits, got the unquoted number 34",
            'accountId: "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"',
        ],
        files=(("fleet.yaml", "subusers:\n  - accountId: 042\n    enabled: true\n"),),
    ),
    BadInput(
        "fleet: unquoted accountId 0x10 in stack config",
        "fleet",
        {},
        {},
        ["subusers[0].accountId: must be a string of letters and digits, got the unquoted number 16", "--type string"],
        raw_config="  sendgrid-click-tracking:subusers:\n    - accountId: 0x10\n      enabled: true\n",
    ),
    BadInput(
        "fleet: accountId true in stack config",
        "fleet",
        {},
        {},
        ["subusers[0].accountId: must be a string of letters and digits, got the unquoted true (a boolean)"],
        raw_config="  sendgrid-click-tracking:subusers:\n    - accountId: true\n      enabled: true\n",
    ),
    BadInput(
        "fleet: accountId not letters and digits",
        "fleet",
        {"subusers": [{"accountId": "-1", "enabled": True}]},
        {},
        ["subusers[0].accountId: '-1' has '-' (U+002D, HYPHEN-MINUS) at position 1: a customer account ID is ASCII"],
    ),
    BadInput(
        "fleet: a Cyrillic look-alike in a username",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["subusers[1].username: '\u0441arol' has '\u0441' (U+0441, CYRILLIC SMALL LETTER ES) at position 1"],
        files=(
            (
                "fleet.yaml",
                "subusers:\n  - {username: carol, enabled: true}\n  - {username: \u0441arol, enabled: true}\n",
            ),
        ),
    ),
    BadInput(
        "fleet: top level of the file is a list",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["(top level): expected a mapping with defaults, parent, subusers, manageNothing, got a list"],
        files=(("fleet.yaml", "- username: alice\n  enabled: true\n"),),
    ),
    BadInput(
        "fleet: duplicate key in the fleet file",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["subusers[0].enabled: given twice (lines 3 and 4)"],
        files=(("fleet.yaml", "subusers:\n  - username: alice\n    enabled: false\n    enabled: true\n"),),
    ),
    BadInput(
        "fleet: enabled: yes in the fleet file",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["subusers[0].enabled: must be true or false (unquoted), got 'yes'"],
        files=(("fleet.yaml", "subusers:\n  - username: alice\n    enabled: yes\n"),),
    ),
    # Per-setting fleets: every field checked as the provider checks it, named by its path.
    BadInput(
        "fleet: subscription url not absolute",
        "fleet",
        {"subusers": [{"username": "alice", "subscription": {"enabled": True, "url": "example.com/unsubscribe"}}]},
        {},
        [
            "subusers[0].subscription.url: must be an absolute http(s) URL such as https://example.com/unsubscribe, "
            "got 'example.com/unsubscribe'"
        ],
    ),
    BadInput(
        "fleet: subscription htmlContent without the link tag",
        "fleet",
        {"parent": {"subscription": {"enabled": True, "htmlContent": "<p>Unsubscribe</p>"}}},
        {},
        ["parent.subscription.htmlContent: must contain SendGrid's unsubscribe link tag"],
    ),
    BadInput(
        "fleet: subscription plainContent without <% %>",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["defaults.subscription.plainContent: must contain SendGrid's '<% %>' tag"],
        files=(
            (
                "fleet.yaml",
                "defaults:\n  subscription: {enabled: true, plainContent: Unsubscribe}\n"
                "subusers:\n  - username: alice\n",
            ),
        ),
    ),
    BadInput(
        "fleet: utmCampaign unquoted number",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["subusers[0].googleAnalytics.utmCampaign: must be a string, got the unquoted number 2024; quote it"],
        files=(
            ("fleet.yaml", "subusers:\n  - username: alice\n    googleAnalytics: {enabled: true, utmCampaign: 2024}\n"),
        ),
    ),
    BadInput(
        "fleet: utmSource with a newline",
        "fleet",
        {"parent": {"googleAnalytics": {"enabled": True, "utmSource": "news\nletter"}}},
        {},
        ["parent.googleAnalytics.utmSource: must not contain control characters such as newlines or tabs"],
    ),
    BadInput(
        "fleet: quoted enabled in defaults",
        "fleet",
        {"defaults": {"open": {"enabled": "false"}}, "parent": {}},
        {},
        ["defaults.open.enabled: must be true or false (unquoted), got 'false'"],
    ),
    BadInput(
        "fleet: onDelete unknown in a setting block",
        "fleet",
        {"subusers": [{"username": "alice", "open": {"enabled": False, "onDelete": "forget"}}]},
        {},
        ["subusers[0].open.onDelete: must be one of restore, keep, disable, got 'forget'"],
    ),
    BadInput(
        "fleet: today's shape mixed with a setting block",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": False, "open": {"enabled": False}}]},
        {},
        ["subusers[0]: enabled directly on the account is the click-only shape", "click: {enabled: false}"],
    ),
    BadInput(
        "fleet: today's shape next to defaults",
        "fleet",
        {"defaults": {"open": {"enabled": False}}, "subusers": [{"username": "alice", "enabled": True}]},
        {},
        ["subusers[0]: enabled directly on the account is the click-only shape, which a fleet with defaults"],
    ),
    BadInput(
        "fleet: manage false with nothing to opt out of",
        "fleet",
        {"parent": {"click": {"enabled": True}, "open": {"manage": False}}},
        {},
        ["parent.open: manage: false, but defaults has no open block", "write open: {enabled: false}"],
    ),
    BadInput(
        "fleet: empty setting block",
        "fleet",
        {"fleetFile": "fleet.yaml"},
        {},
        ["subusers[0].open: empty; give open tracking's fields", "{manage: false}"],
        files=(("fleet.yaml", "defaults:\n  open: {enabled: false}\nsubusers:\n  - username: alice\n    open:\n"),),
    ),
    BadInput(
        "fleet: snake_case setting key",
        "fleet",
        {"parent": {"google_analytics": {"enabled": True}}},
        {},
        ["parent.google_analytics: unknown field; did you mean googleAnalytics?"],
    ),
    BadInput(
        "fleet: region in defaults",
        "fleet",
        {"defaults": {"region": "eu", "open": {"enabled": False}}, "parent": {}},
        {},
        ["defaults.region: a region is where an account lives"],
    ),
    BadInput(
        "fleet: an account managing no setting",
        "fleet",
        {"subusers": [{"username": "alice"}]},
        {},
        ["subusers[0]: manages no setting", "remove it to leave the account alone"],
    ),
    BadInput(
        "fleet: a setting block without enabled",
        "fleet",
        {"subusers": [{"username": "alice", "subscription": {"url": "https://example.com/unsubscribe"}}]},
        {},
        ["subusers[0].subscription.enabled: required; set it to true or false"],
    ),
]


def test_the_bad_input_table_covers_every_setting() -> None:
    assert len(BAD_INPUTS) >= 60
    assert len({case.case for case in BAD_INPUTS}) == len(BAD_INPUTS)
    assert {c.config.get("kind", "click") for c in BAD_INPUTS if c.program == "direct"} == set(CASES)


@pytest.fixture(scope="module")
def bad_input_project(tmp_path_factory: pytest.TempPathFactory, pulumi_bin: Path) -> Iterator[PulumiProject]:
    """One project for the whole table: each case rewrites the program and the stack file, then previews."""
    state = EmulatorState(api_keys=[TEST_KEY])
    for name in ("alice", "bob"):
        state.add_subuser("global", name)
    state.add_subuser("eu", "carol")
    with Emulator(state) as emulator:
        yield PulumiProject(tmp_path_factory.mktemp("bad-input"), emulator, pulumi_bin)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[case.case for case in BAD_INPUTS])
def test_bad_input_is_rejected_at_preview_before_any_request(bad_input_project: PulumiProject, bad: BadInput) -> None:
    project = bad_input_project
    case, program, config, env, expected, files, raw_config = bad
    (project.dir / "__main__.py").write_text(DIRECT if program == "direct" else (ROOT / "__main__.py").read_text())
    (project.dir / "fleet.yaml").write_text("parent:\n  enabled: true\n")
    for name, text in files:
        (project.dir / name).write_text(text)
    stack_file = project.dir / "Pulumi.dev.yaml"
    salt = [line for line in stack_file.read_text().splitlines() if line.startswith("encryptionsalt")]
    lines = {"config": {(key if ":" in key else f"sendgrid-click-tracking:{key}"): v for key, v in config.items()}}
    section = f"config:\n{raw_config}" if raw_config else json.dumps(lines)
    stack_file.write_text(section + "\n" + "\n".join(salt) + "\n")
    before = len(project.emulator.state.request_log())
    result = project.run("preview", check=False, env=dict(env))
    text = result.stdout + result.stderr
    sent = len(project.emulator.state.request_log()) - before
    record(
        "bad_input",
        case=case,
        setting=config.get("kind", "click") if program == "direct" else None,
        rejected_at="preview",
        rejected=result.returncode != 0,
        requests=sent,
        message=next((line.strip() for line in text.splitlines() if expected[0] in line), "")[:220],
    )
    assert result.returncode != 0, text[-1500:]
    assert [part for part in expected if part not in text] == [], text[-1500:]
    assert sent == 0
    assert PLAINTEXT_KEY not in text
    if program == "fleet":
        assert "Traceback" not in text  # the program reports mistakes, it does not crash


# -- secrets ---------------------------------------------------------------------------------


def repository_files_holding(secret: bytes) -> int:
    """How many files of the checkout (.venv and .git left out) hold the secret. Tests running beside
    this one (in parallel) may delete files and directories meanwhile (a wheel build's temp dirs): os.walk
    skips a directory gone before it is listed, and a file gone before it is read held nothing."""
    found = 0
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in (".venv", ".git")]
        for name in files:
            path = Path(top, name)
            try:
                found += name != ".git" and path.stat().st_size < 5_000_000 and secret in path.read_bytes()
            except FileNotFoundError:
                continue
    return found


def test_secret_audit_with_debug_logging(project: PulumiProject, tmp_path: Path) -> None:
    key = f"SG.audit-{secrets.token_hex(12)}"
    provider_log = tmp_path / "provider.log"
    project.emulator.state.add_key(key)
    project.env.update({"SENDGRID_API_KEY": key, "SENDGRID_PROVIDER_LOG": str(provider_log)})
    project.set_fleet(parent={"enabled": False}, subusers=[{"username": "alice", "enabled": False}])
    project.run("preview")
    project.up()
    project.run("refresh", "--yes", "--skip-preview")
    project.set_fleet(parent={"enabled": True}, subusers=[{"username": "alice", "enabled": True}])
    project.emulator.state.add_fault(Fault("500", count=10_000, method="PATCH", account="alice"))
    assert project.up(check=False).returncode != 0  # a failure, with its error text
    project.emulator.state.clear_faults()
    project.emulator.state.add_fault(Fault("reset", count=1))
    project.up()
    del project.emulator.state.keys[key]
    assert project.run("refresh", "--yes", "--skip-preview", check=False).returncode != 0  # a 401
    project.emulator.state.add_key(key)
    project.run("destroy", "--yes", "--skip-preview")

    logged = provider_log.read_text()
    assert "PATCH /v3/tracking_settings/click" in logged and "DEBUG" in logged  # logging really was on
    places: dict[str, int] = {
        "state (stack export)": int(key in project.run("stack", "export").stdout),
        "CLI output and error texts": sum(key in text for text in project.outputs),
        "provider debug log": int(key in logged),
        "emulator request log": int(key in json.dumps(project.emulator.state.request_log())),
    }
    exported = project.run("stack", "export", "--show-secrets").stdout
    project.outputs.pop()
    places["state (stack export --show-secrets)"] = int(key in exported)
    places["state files on disk"] = sum(
        key.encode() in p.read_bytes() for p in project.state_dir.rglob("*") if p.is_file()
    )
    places["project files"] = sum(key.encode() in p.read_bytes() for p in project.dir.rglob("*") if p.is_file())
    places["repository"] = repository_files_holding(key.encode())
    for place, found in places.items():
        record("secrets", place=place, key_source="SENDGRID_API_KEY", found=found)
    assert places == dict.fromkeys(places, 0)
