"""Issue 5 through the real engine: faults, load under a rate limit, interruption, bad input, secrets."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi_sendgrid_tracking.emulator import Fault

from ..figures import record
from ..processes import EngineRun, describe
from .conftest import ROOT, PulumiProject

DIRECT = """
import pulumi
from pulumi_sendgrid_tracking import ClickTracking

ClickTracking("case", **(pulumi.Config().get_object("args") or {}))
"""


def changes_per_account(project: PulumiProject) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for entry in project.emulator.state.request_log():
        if entry["changed"]:
            counts[entry["on_behalf_of"]] = counts.get(entry["on_behalf_of"], 0) + 1
    return counts


# -- faults through the engine (a representative subset of the handler-level matrix) ---------


FAULT_CASES = [
    ("create", "503", 2, "PATCH"),
    ("create", "malformed", 2, "PATCH"),
    ("update", "429", 1, "PATCH"),
    ("refresh", "reset", 2, "GET"),
    ("destroy", "504", 2, "PATCH"),
]


@pytest.mark.parametrize(("op", "kind", "count", "method"), FAULT_CASES)
def test_transient_fault_through_the_engine(
    project: PulumiProject, op: str, kind: str, count: int, method: str
) -> None:
    fleet = [{"username": "alice", "enabled": False}]
    if op != "create":
        project.set_fleet(subusers=fleet)
        project.up()
    if op == "update":
        fleet = [{"username": "alice", "enabled": True}]
    project.set_fleet(subusers=fleet)
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
    expected = {"create": False, "update": True, "refresh": False, "destroy": True}[op]
    assert project.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is expected
    # One effective change per step that changes something: the setup `up` (if any), then the operation.
    assert changes_per_account(project) == {"alice": {"create": 1, "update": 2, "refresh": 1, "destroy": 2}[op]}
    record("faults", level="engine", kind=kind, op=op, mode="transient", outcome="survived", requests=len(log))


def test_persistent_fault_through_the_engine_then_convergence(project: PulumiProject) -> None:
    project.set_fleet(subusers=[{"username": "alice", "enabled": False}, {"username": "bob", "enabled": False}])
    project.up()
    project.emulator.state.add_fault(Fault("503", count=10_000, method="PATCH", account="bob"))
    failed = project.run("destroy", "--yes", "--skip-preview", check=False)
    assert failed.returncode != 0
    assert "subuser-bob" in failed.stdout and "failed (503)" in failed.stdout and "Hint:" in failed.stdout
    assert set(project.resources()) == {"subuser-bob"}  # the state is truthful: bob still exists
    project.emulator.state.clear_faults()
    project.run("refresh", "--yes", "--skip-preview")
    assert project.resources()["subuser-bob"]["enabled"] is False  # refresh shows what SendGrid has
    project.run("destroy", "--yes", "--skip-preview")
    assert changes_per_account(project) == {"alice": 2, "bob": 2}  # set once, restored once
    record(
        "faults",
        level="engine",
        kind="503",
        op="destroy",
        mode="persistent",
        outcome="failed cleanly, converged",
        error=next(line.strip() for line in failed.stdout.splitlines() if "failed (503)" in line)[:200],
    )


# -- load ------------------------------------------------------------------------------------


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
    # empty; the state beside it is written atomically and intact. The README's recovery step
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
    # Only a create cut between its PATCH and the checkpoint (a pending create) can be re-adopted
    # with the new value as its original; one cut before its PATCH keeps the true original.
    assert set(lost_originals) <= set(pending)
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

BAD_INPUTS: list[tuple[str, str, dict[str, Any], dict[str, str], list[str]]] = [
    # (case, program, stack config, environment, what the message must say)
    (
        "enabled as a string",
        "direct",
        {"args": {"enabled": "true"}},
        {},
        ["enabled must be a boolean, got the string 'true'", "config.require_bool"],
    ),
    ("enabled as a number", "direct", {"args": {"enabled": 1}}, {}, ["enabled must be a boolean"]),
    (
        "enabled missing",
        "direct",
        {"args": {"on_behalf_of": "alice"}},
        {},
        ["missing 1 required keyword-only argument: 'enabled'"],
    ),
    (
        "empty on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": ""}},
        {},
        ["on_behalf_of must not be empty", "omit it (None)"],
    ),
    (
        "header injection in on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "alice\r\nX-Evil: 1"}},
        {},
        ["on_behalf_of must not contain control characters"],
    ),
    (
        "oversized on_behalf_of",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "x" * 300}},
        {},
        ["on_behalf_of is 300 characters long"],
    ),
    (
        "malformed account-id",
        "direct",
        {"args": {"enabled": True, "on_behalf_of": "account-id"}},
        {},
        ["must be 'account-id <id>'"],
    ),
    (
        "unknown region",
        "direct",
        {"args": {"enabled": True, "region": "us"}},
        {},
        ["region must be one of global, eu (or omitted), got 'us'"],
    ),
    (
        "unknown on_delete",
        "direct",
        {"args": {"enabled": True, "on_delete": "purge"}},
        {},
        ["on_delete must be one of restore, keep, disable, got 'purge'"],
    ),
    (
        "fleet: quoted enabled",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": "false"}]},
        {},
        ["subusers[0].enabled: must be true or false (unquoted)"],
    ),
    (
        "fleet: unknown field",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True, "enable": True}]},
        {},
        ["subusers[0].enable: unknown field"],
    ),
    (
        "fleet: duplicate subuser",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True}, {"username": "alice", "enabled": False}]},
        {},
        ["subusers[1]: 'alice' is already configured at subusers[0]; remove one"],
    ),
    (
        "fleet: username and accountId",
        "fleet",
        {"subusers": [{"username": "a", "accountId": "1", "enabled": True}]},
        {},
        ["subusers[0]: give exactly one of username or accountId"],
    ),
    (
        "fleet: region in capitals",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True, "region": "EU"}]},
        {},
        ["subusers[0].region: must be one of global, eu"],
    ),
    (
        "fleet: unknown onDelete",
        "fleet",
        {"subusers": [{"username": "alice", "enabled": True, "onDelete": "delete"}]},
        {},
        ["subusers[0].onDelete: must be one of restore, keep, disable"],
    ),
    (
        "fleet: parent without enabled",
        "fleet",
        {"parent": {"onDelete": "keep"}},
        {},
        ["parent.enabled: required; set it to true or false"],
    ),
    (
        "fleet: file and inline config",
        "fleet",
        {"fleetFile": "fleet.yaml", "parent": {"enabled": True}},
        {},
        ["set either sendgrid-click-tracking:fleetFile or parent/subusers in stack config, not both"],
    ),
    (
        "fleet: missing fleet file",
        "fleet",
        {"fleetFile": "nowhere.yaml"},
        {},
        ["sendgrid-click-tracking:fleetFile: cannot read nowhere.yaml"],
    ),
    (
        "settings: no API key",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_API_KEY": ""},
        ["no SendGrid API key is set", "pulumi config set --secret sendgrid:apiKey"],
    ),
    (
        "settings: key with a newline",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_API_KEY": "SG.abc\ndef"},
        ["the API key contains whitespace, control or non-ASCII characters"],
    ),
    (
        "settings: plain http to a remote host",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_BASE_URL": "http://api.sendgrid.com"},
        ["SENDGRID_BASE_URL", "would send the API key unencrypted"],
    ),
    (
        "settings: base URL with credentials",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_BASE_URL": "https://user:pw@api.sendgrid.com"},
        ["the URL contains credentials"],
    ),
    (
        "settings: base URL with a path",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_BASE_URL": "https://api.sendgrid.com/v3"},
        ["the URL has a path, query or fragment"],
    ),
    (
        "settings: unknown stack region",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_REGION": "asia"},
        ["SENDGRID_REGION: unknown region 'asia'"],
    ),
    (
        "settings: timeout not a number",
        "fleet",
        {"parent": {"enabled": True}},
        {"SENDGRID_REQUEST_TIMEOUT": "fast"},
        ["SENDGRID_REQUEST_TIMEOUT: 'fast' is not a number of seconds"],
    ),
    (
        "settings: EU without an EU base URL",
        "fleet",
        {"subusers": [{"username": "carol", "enabled": True, "region": "eu"}]},
        {"SENDGRID_EU_BASE_URL": ""},
        ["set sendgrid:euBaseUrl (or SENDGRID_EU_BASE_URL) too"],
    ),
]


def test_bad_inputs_are_rejected_at_preview_before_any_request(project: PulumiProject) -> None:
    assert len(BAD_INPUTS) >= 20
    main = (project.dir / "__main__.py").read_text()
    (project.dir / "fleet.yaml").write_text("parent:\n  enabled: true\n")
    failures = []
    for case, program, config, env, expected in BAD_INPUTS:
        (project.dir / "__main__.py").write_text(DIRECT if program == "direct" else main)
        stack_file = project.dir / "Pulumi.dev.yaml"
        salt = [line for line in stack_file.read_text().splitlines() if line.startswith("encryptionsalt")]
        lines = {"config": {f"sendgrid-click-tracking:{key}": value for key, value in config.items()}}
        stack_file.write_text(json.dumps(lines) + "\n" + "\n".join(salt) + "\n")
        before = len(project.emulator.state.request_log())
        result = project.run("preview", check=False, env={k: v for k, v in env.items()})
        text = result.stdout + result.stderr
        sent = len(project.emulator.state.request_log()) - before
        missing = [part for part in expected if part not in text]
        if result.returncode == 0 or missing or sent:
            failures.append((case, result.returncode, missing, sent, text[-1500:]))
        record(
            "bad_input",
            case=case,
            rejected_at="preview",
            rejected=result.returncode != 0,
            requests=sent,
            message=next((line.strip() for line in text.splitlines() if expected[0] in line), "")[:220],
        )
    assert failures == []


# -- secrets ---------------------------------------------------------------------------------


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
    places["repository"] = sum(
        key.encode() in p.read_bytes()
        for p in ROOT.rglob("*")
        if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts and p.stat().st_size < 5_000_000
    )
    for place, found in places.items():
        record("secrets", place=place, key_source="SENDGRID_API_KEY", found=found)
    assert places == dict.fromkeys(places, 0)
