"""The GitOps pipelines with their state in a real PostgreSQL server: locking, outages, secrets.

SendGrid mode (SENDGRID_API_KEY set, base URLs pointing at the in-process emulator) with
PULUMI_BACKEND_URL=postgres://…, as runners sharing one state database would run them. A run is
paused mid-flight by holding one of its API requests inside the emulator (a Gate), so every
interleaving is driven by what the emulator has seen, never by sleeps.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.emulator.state import Account

from ..support.postgres import PostgresServer
from .conftest import ROOT, PulumiProject
from .test_pipelines import checked, counts, fields

KEY = f"SG.pg-test-{secrets.token_hex(8)}"  # random, so a hit in the database can only be a leak
TABLE = "pulumi_state"  # the backend's default table (the SQL below spells it out)
WAIT = 120.0  # seconds: the bound on every wait for another process
STACK_KEY = "state/.pulumi/stacks/sendgrid-click-tracking/dev.json"  # the URL's path prefixes every key
LOCKS = "state/.pulumi/locks/"
LOCKED = "the stack is currently locked by 1 lock(s)"
CANCEL_HINT = "`pulumi cancel --stack dev --yes`"


# -- pausing a run mid-flight ----------------------------------------------------------------


class Gate:
    """Holds the first API request matching (method, account) inside the emulator until `open()`."""

    def __init__(self, method: str, account: str | None = None) -> None:
        self.method, self.account = method, account
        self.entered = threading.Event()
        self.released = threading.Event()
        self.used = False

    def wait_entered(self) -> None:
        assert self.entered.wait(WAIT), f"no {self.method} for {self.account or 'any account'} reached the emulator"

    def open(self) -> None:
        self.released.set()


class GatedState(EmulatorState):
    """The emulator's state, with gates in front of its GET and PATCH operations."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gates: list[Gate] = []
        self._gates_lock = threading.Lock()

    def gate(self, method: str, account: str | None = None) -> Gate:
        gate = Gate(method, account)
        with self._gates_lock:
            self.gates.append(gate)
        return gate

    def _pass(self, method: str, account: Account) -> None:
        with self._gates_lock:
            gate = next(
                (
                    g
                    for g in self.gates
                    if not g.used and g.method == method and g.account in (None, account.on_behalf_of)
                ),
                None,
            )
            if gate is not None:
                gate.used = True
        if gate is not None:  # wait outside every lock: other requests go on
            gate.entered.set()
            gate.released.wait(WAIT)

    def get_setting(self, account: Account, kind: str) -> dict[str, Any]:
        self._pass("GET", account)
        return super().get_setting(account, kind)

    def update_setting(self, account: Account, kind: str, changes: Any) -> dict[str, Any]:
        self._pass("PATCH", account)
        return super().update_setting(account, kind, changes)

    def patches(self) -> dict[str | None, list[Any]]:
        """Account → the body of every PATCH it was sent, from the request log (each one changed it)."""
        sent: dict[str | None, list[Any]] = {}
        for entry in self.request_log():
            if entry["method"] == "PATCH":
                assert entry["changed"] and entry["status"] == 200, entry
                sent.setdefault(entry["on_behalf_of"], []).append(entry["body"])
        return sent

    def live(self, user: str) -> bool:
        return bool(self.snapshot()["global"]["subusers"][user]["click"]["enabled"])


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def sendgrid() -> Iterator[tuple[Emulator, GatedState]]:
    state = GatedState(api_keys=[KEY])
    for name in ("alice", "bob"):
        state.add_subuser("global", name, enabled=True)
    with Emulator(state) as running:
        try:
            yield running, state
        finally:
            for gate in state.gates:  # never leave a request thread waiting
                gate.open()


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """The session's server, running, with a fresh database `state` owned by the state role."""
    server = postgres_server
    if not server.running():
        server.start()
    server.admin_sql("DROP DATABASE IF EXISTS state WITH (FORCE)")
    server.create_database("state")
    yield server
    if not server.running():  # a fault test may leave it stopped
        server.start()


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Pipeline processes a test starts in the background; any still running at the end are killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the pipeline and the pulumi it runs
            proc.wait(timeout=WAIT)


def audited_project(
    tmp_path: Path,
    sendgrid: tuple[Emulator, GatedState],
    pulumi_bin: Path,
    postgres: PostgresServer,
    url: str,
    env: dict[str, str] | None = None,
) -> Iterator[PulumiProject]:
    project = PulumiProject(tmp_path, sendgrid[0], pulumi_bin, api_key=KEY, backend_url=url, env=env)
    # The harness's `stack init` saved the URL as the key of the selected stack; the pipelines never select.
    shutil.rmtree(tmp_path / "home" / "workspaces")
    yield project
    # The database password never shows: not in any command's output or error, nor in the server's log,
    # nor in any file the runs left (PULUMI_HOME included).
    texts = {
        **{f"CLI output #{i}": text for i, text in enumerate(project.outputs)},
        **{f"server command #{i}": text for i, text in enumerate(postgres.outputs)},
        "server log": postgres.server_log(),
        **{str(f): f.read_text(errors="replace") for f in tmp_path.rglob("*") if f.is_file()},
    }
    assert project.outputs  # the audit read the runs
    assert [name for name, text in texts.items() if postgres.password in text] == []


@pytest.fixture
def project(
    tmp_path: Path, sendgrid: tuple[Emulator, GatedState], pulumi_bin: Path, postgres: PostgresServer
) -> Iterator[PulumiProject]:
    """The backend URL carries the password: postgres://pulumi_state:<password>@127.0.0.1:<port>/state."""
    yield from audited_project(tmp_path, sendgrid, pulumi_bin, postgres, postgres.url("state"))


@pytest.fixture
def pgpassword_project(
    tmp_path: Path, sendgrid: tuple[Emulator, GatedState], pulumi_bin: Path, postgres: PostgresServer
) -> Iterator[PulumiProject]:
    """The password in PGPASSWORD, the URL without it: postgres://pulumi_state@127.0.0.1:<port>/state."""
    url = postgres.url("state", password=False)
    yield from audited_project(tmp_path, sendgrid, pulumi_bin, postgres, url, {"PGPASSWORD": postgres.password})


# -- helpers -----------------------------------------------------------------------------------


def write_fleet(project: PulumiProject, **enabled: bool) -> None:
    (project.dir / "fleets").mkdir(exist_ok=True)
    fleet = {"subusers": [{"username": user, "enabled": value} for user, value in enabled.items()]}
    (project.dir / "fleets" / "dev.yaml").write_text(yaml.safe_dump(fleet))
    (project.dir / "Pulumi.dev.yaml").write_text(
        yaml.safe_dump({"config": {"sendgrid-click-tracking:fleetFile": "fleets/dev.yaml"}})
    )


def argv(project: PulumiProject, command: str) -> list[str]:
    return [str(ROOT / "pipelines" / command), "--stack", "dev", "--project-dir", str(project.dir)]


def pipeline(
    project: PulumiProject, command: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    result = project.exec(argv(project, command), env)
    return result.returncode, checked(result.returncode, result.stdout, result.stderr), result.stderr


def start(project: PulumiProject, command: str, started: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    proc = project.start(argv(project, command), separate_stderr=True)
    started.append(proc)
    return proc


def finish(project: PulumiProject, proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    stdout, stderr = proc.communicate(timeout=WAIT)
    project.outputs.append(stdout + stderr)
    return proc.returncode, checked(proc.returncode, stdout, stderr), stderr


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {WAIT:.0f} s waiting for {what}"
        time.sleep(0.05)


def rows(postgres: PostgresServer) -> list[str]:
    """Every object in the state table: key, a hash of its data, and when it was written."""
    sql = "SELECT key, md5(data::text), updated_at FROM pulumi_state ORDER BY key"
    return postgres.admin_sql(sql, "state").splitlines()


def keys(postgres: PostgresServer) -> list[str]:
    return postgres.admin_sql("SELECT key FROM pulumi_state ORDER BY key", "state").splitlines()


def locks(postgres: PostgresServer) -> list[str]:
    return postgres.admin_sql(
        "SELECT key FROM pulumi_state WHERE key LIKE 'state/.pulumi/locks/%'", "state"
    ).splitlines()


def decoded_objects(dump: str) -> dict[str, str]:
    """The state table's objects as Pulumi wrote them, from a pg_dump: the backend stores base64 in JSON."""
    lines = dump.splitlines()
    start_at = next(i for i, line in enumerate(lines) if line.startswith(f"COPY public.{TABLE} "))
    objects = {}
    for line in lines[start_at + 1 :]:
        if line == "\\.":
            break
        key, data, _ = line.split("\t")
        raw = base64.b64decode(json.loads(data)["data"])
        objects[key] = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    return objects


def assert_key_not_in_database(postgres: PostgresServer) -> None:
    dump = postgres.dump("state")
    objects = decoded_objects(dump)
    assert STACK_KEY in objects and '"on_behalf_of":"alice"' in objects[STACK_KEY]  # the search reads the state
    assert KEY not in dump
    assert [key for key, text in objects.items() if KEY in text] == []
    assert [key for key, text in objects.items() if KEY.removeprefix("SG.") in text] == []


def accounts(payload: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
    """Account → (enabled, original_enabled), as a deploy recorded them."""
    return {s["account"]: (s["values"]["enabled"], s["originals"]["enabled"]) for s in payload["state"]}


# -- the tests ---------------------------------------------------------------------------------


def test_deploy_preview_and_drift_check_with_pgpassword(
    pgpassword_project: PulumiProject, sendgrid: tuple[Emulator, GatedState], postgres: PostgresServer
) -> None:
    """The three pipelines against PostgreSQL, the password in PGPASSWORD, the key never in the database."""
    project = pgpassword_project
    _, state = sendgrid
    write_fleet(project, alice=False, bob=False)
    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0 and deployed["ok"] and deployed["mode"] == "sendgrid"
    assert accounts(deployed) == {"global/alice": (False, True), "global/bob": (False, True)}
    assert state.patches() == {"alice": [{"enabled": False}], "bob": [{"enabled": False}]}
    assert STACK_KEY in keys(postgres) and locks(postgres) == []  # recorded in the table, lock released

    before = rows(postgres)
    project.api_log()
    code, preview, _ = pipeline(project, "preview")
    assert code == 0 and preview["changes"] == []
    assert project.api_log() == []  # a preview sends nothing
    code, quiet, _ = pipeline(project, "drift-check")
    assert code == 0 and quiet["drift"] == [] and quiet["summary"]["checked"] == 2
    assert accounts(quiet) == {"global/alice": (False, True), "global/bob": (False, True)}  # as read, not drifted

    state.set_out_of_band("global", "bob", "click", {"enabled": True})  # someone used SendGrid's UI
    code, drift, summary = pipeline(project, "drift-check")
    assert code == 2
    assert [
        (d["account"], d["setting"], d["field"], d["recorded"], d["live"], d["desired"]) for d in drift["drift"]
    ] == [("global/bob", "click", "enabled", False, True, False)]
    assert "drift    global/bob click: enabled recorded false, live true, desired false" in summary
    assert accounts(drift) == {"global/alice": (False, True), "global/bob": (True, True)}  # bob as read live
    assert all(method == "GET" for method, _, _ in project.api_log())
    assert rows(postgres) == before  # preview and drift checks wrote nothing, not even a lock

    code, _, _ = pipeline(project, "deploy")
    assert code == 0 and state.live("bob") is False
    assert pipeline(project, "drift-check")[0] == 0

    # A wrong password: exit 1, naming the backend, and that password is not echoed either.
    wrong = "pw-wrong-" + secrets.token_hex(6)
    code, failed, _ = pipeline(project, "drift-check", env={"PGPASSWORD": wrong})
    assert code == 1 and failed["ok"] is False
    (error,) = failed["errors"]
    assert error["kind"] == "backend"
    assert error["message"].startswith(
        f"could not open stack 'dev' in the state backend postgres://127.0.0.1:{postgres.port}/state: "
    )
    assert 'password authentication failed for user "pulumi_state"' in error["message"]
    assert error["hint"].startswith("the state backend") and "PGPASSWORD" in error["hint"]
    assert not any(wrong in text for text in project.outputs)

    assert_key_not_in_database(postgres)


def test_two_deploys_at_the_same_moment(
    project: PulumiProject,
    sendgrid: tuple[Emulator, GatedState],
    postgres: PostgresServer,
    started: list[subprocess.Popen[str]],
) -> None:
    """Exactly one applies; the other fails on the lock, exit 1; a rerun converges, nothing applied twice."""
    _, state = sendgrid
    write_fleet(project, alice=False, bob=False)
    for _attempt in range(3):
        gate = state.gate("GET")  # the winner holds the lock while its first request is held here
        pair = [start(project, "deploy", started), start(project, "deploy", started)]

        def settled(gate: Gate = gate, pair: list[subprocess.Popen[str]] = pair) -> bool:
            done = [p.poll() is not None for p in pair]
            return (gate.entered.is_set() and any(done)) or all(done)

        wait_until(settled, "one deploy to take the lock and the other to give up")
        gate.open()
        results = [finish(project, p) for p in pair]
        if gate.entered.is_set():
            break
        # Both lost: Pulumi's DIY lock is write-then-check, so two runs that write their lock rows
        # before either checks both back off. Rare; it must be as clean as a single loss.
        gate.used = True
        for code, payload, _ in results:
            assert code == 1 and payload["errors"][0]["message"].startswith(LOCKED)
        assert state.request_log() == [] and locks(postgres) == []
    else:
        pytest.fail("three simultaneous pairs of deploys: each time both lost the race for the lock")

    (code_won, won, _), (code_lost, lost, lost_summary) = sorted(results, key=lambda r: r[0])
    assert (code_won, code_lost) == (0, 1)
    assert won["summary"] == counts(create=2, patches=2)  # alice and bob (not the ledger), one PATCH each
    assert lost["ok"] is False and lost["summary"] == counts() and lost["changes"] == []
    (error,) = lost["errors"]
    lock_line = error["details"][0]  # the winner's lock: where it is, who holds it; credentials masked
    assert lock_line.startswith(f"postgres://****:****@127.0.0.1:{postgres.port}/{LOCKS}organization/")
    holder = lock_line.split(": created by ", 1)[1]  # user@host (pid N) at <time>
    assert re.fullmatch(r"\S+@\S+ \(pid [0-9]+\) at \S+", holder), holder
    assert (error["kind"], error["message"]) == ("backend", f"{LOCKED}, held by {holder}")  # in one line
    assert error["hint"].startswith("another run of stack 'dev' holds its lock in the state backend")
    assert CANCEL_HINT in error["hint"] and CANCEL_HINT in lost_summary
    assert state.patches() == {"alice": [{"enabled": False}], "bob": [{"enabled": False}]}  # each account once
    assert locks(postgres) == []

    code, rerun, _ = pipeline(project, "deploy")  # the loser's retry
    assert code == 0 and rerun["summary"] == counts(same=2)
    assert state.patches() == {"alice": [{"enabled": False}], "bob": [{"enabled": False}]}  # nothing applied twice
    assert accounts(rerun) == {"global/alice": (False, True), "global/bob": (False, True)}  # nothing lost
    assert state.live("alice") is False and state.live("bob") is False


def test_drift_check_during_a_deploy(
    project: PulumiProject,
    sendgrid: tuple[Emulator, GatedState],
    postgres: PostgresServer,
    started: list[subprocess.Popen[str]],
) -> None:
    """It sees the last recorded state plus live values: the change in flight is pending, not drift; no lock."""
    _, state = sendgrid
    write_fleet(project, alice=False, bob=False)
    assert pipeline(project, "deploy")[0] == 0
    write_fleet(project, alice=True, bob=False)
    gate = state.gate("PATCH", "alice")
    deploy = start(project, "deploy", started)
    gate.wait_entered()  # the deploy holds the lock, alice's change is on its way
    held = locks(postgres)
    before = rows(postgres)
    assert len(held) == 1

    code, seen, _ = pipeline(project, "drift-check")
    assert code == 0 and seen["ok"] is True
    assert seen["drift"] == []
    assert [(r["account"], r["action"], fields(r)) for r in seen["changes"]] == [
        ("global/alice", "update", [("enabled", False, True)])  # pending, not drift
    ]
    assert rows(postgres) == before and locks(postgres) == held  # it took no lock and wrote nothing

    gate.open()
    code, deployed, _ = finish(project, deploy)
    assert code == 0 and deployed["summary"] == counts(update=1, same=1, patches=1)
    code, after, _ = pipeline(project, "drift-check")
    assert code == 0 and after["drift"] == [] and after["changes"] == []
    assert locks(postgres) == []


def test_postgres_restart_during_a_deploy_is_absorbed(
    project: PulumiProject,
    sendgrid: tuple[Emulator, GatedState],
    postgres: PostgresServer,
    started: list[subprocess.Popen[str]],
) -> None:
    """A restart shorter than Pulumi's ~30 s of checkpoint retries: the deploy reconnects and succeeds."""
    _, state = sendgrid
    write_fleet(project, alice=False, bob=False)
    assert pipeline(project, "deploy")[0] == 0
    write_fleet(project, alice=True, bob=False)
    gate = state.gate("PATCH", "alice")
    deploy = start(project, "deploy", started)
    gate.wait_entered()
    postgres.stop()  # fast shutdown: the deploy's connections are closed
    gate.open()
    wait_until(lambda: len(state.patches().get("alice", [])) == 2, "alice's PATCH")
    postgres.start()

    code, deployed, _ = finish(project, deploy)
    assert code == 0 and deployed["summary"] == counts(update=1, same=1, patches=1)
    assert accounts(deployed) == {"global/alice": (True, True), "global/bob": (False, True)}
    assert state.patches() == {"alice": [{"enabled": False}, {"enabled": True}], "bob": [{"enabled": False}]}
    assert locks(postgres) == []
    assert pipeline(project, "drift-check")[0] == 0


def test_postgres_outage_during_a_deploy_fails_cleanly_then_converges(
    project: PulumiProject,
    sendgrid: tuple[Emulator, GatedState],
    postgres: PostgresServer,
    started: list[subprocess.Popen[str]],
) -> None:
    """Down past the retries: exit 1 naming the backend; the lock stays; `pulumi cancel`, and the rerun converges."""
    _, state = sendgrid
    write_fleet(project, alice=False, bob=False)
    assert pipeline(project, "deploy")[0] == 0
    write_fleet(project, alice=True, bob=False)
    gate = state.gate("PATCH", "alice")
    deploy = start(project, "deploy", started)
    gate.wait_entered()
    postgres.stop()
    gate.open()

    code, failed, summary = finish(project, deploy)  # after Pulumi's ~30 s of retrying the checkpoint
    assert code == 1 and failed["ok"] is False
    where = f"postgres://127.0.0.1:{postgres.port}/state"
    (error,) = [e for e in failed["errors"] if e["resource"] == "subuser-alice"]
    assert error["message"].startswith("post-step event returned an error: failed to save snapshot")
    assert error["kind"] == "backend" and error["account"] == "global/alice" and error["setting"] == "click"
    assert error["hint"].startswith(f"the state backend {where} failed during the run.")
    assert CANCEL_HINT in error["hint"] and CANCEL_HINT in summary
    assert state.live("alice") is True  # applied, but not recorded

    code, refused, _ = pipeline(project, "deploy")  # while it is still down: nothing runs
    assert code == 1
    (error,) = refused["errors"]
    assert error["message"].startswith(f"could not open stack 'dev' in the state backend {where}: ")
    assert "connect: connection refused" in error["message"]
    assert error["hint"].startswith(f"the state backend {where} could not be opened")

    postgres.start()
    assert len(locks(postgres)) == 1  # the failed deploy could not release its lock
    code, locked, _ = pipeline(project, "deploy")
    assert code == 1 and locked["errors"][0]["message"].startswith(LOCKED)
    assert CANCEL_HINT in locked["errors"][0]["hint"]
    code, check, _ = pipeline(project, "drift-check")  # not blocked by the lock: live == desired, no drift
    assert code == 0 and check["drift"] == [] and check["changes"] == []

    project.run("cancel", "--stack", "dev", "--yes")  # the documented recovery, as the hint says
    project.api_log()
    code, deployed, _ = pipeline(project, "deploy")
    assert code == 0
    assert accounts(deployed) == {"global/alice": (True, True), "global/bob": (False, True)}  # originals kept
    assert [method for method, _, _ in project.api_log()] == ["GET", "GET"]  # a refresh; nothing re-applied
    assert state.patches() == {"alice": [{"enabled": False}, {"enabled": True}], "bob": [{"enabled": False}]}
    assert locks(postgres) == []
    assert pipeline(project, "drift-check")[0] == 0
    assert_key_not_in_database(postgres)


def test_libpqs_postgresql_scheme_is_refused_with_the_fix_before_anything_runs(
    project: PulumiProject, sendgrid: tuple[Emulator, GatedState], postgres: PostgresServer
) -> None:
    """Pulumi 3.277.0 opens a DIY backend only for `postgres://` (its blob URL mux); `postgresql://` would be
    taken for a Pulumi Cloud address ("PULUMI_ACCESS_TOKEN must be set"). Refused, naming the URL to use."""
    _, state = sendgrid
    write_fleet(project, alice=False)
    assert pipeline(project, "deploy")[0] == 0
    before, url = rows(postgres), postgres.url("state")
    assert url.startswith("postgres://")
    project.api_log()
    for command in ("preview", "deploy", "drift-check"):
        code, result, summary = pipeline(
            project, command, {"PULUMI_BACKEND_URL": "postgresql" + url[len("postgres") :]}
        )
        assert code == 1 and result["ok"] is False
        assert [(e["kind"], e["message"], e["hint"]) for e in result["errors"]] == [
            (
                "backend",
                "PULUMI_BACKEND_URL uses the scheme postgresql://, which the Pulumi engine does not know (it would "
                "take the URL for a Pulumi Cloud address); its PostgreSQL backend is postgres://",
                f"write the same URL with postgres:// (postgres://127.0.0.1:{postgres.port}/state, user and "
                "password as before) in PULUMI_BACKEND_URL",
            )
        ]
        assert "PULUMI_ACCESS_TOKEN" not in summary
    assert project.api_log() == [] and rows(postgres) == before and locks(postgres) == []
    code, fixed, _ = pipeline(project, "preview", {"PULUMI_BACKEND_URL": url})  # the fix the hint gives
    assert code == 0 and fixed["changes"] == [] and state.live("alice") is False
