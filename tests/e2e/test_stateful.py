"""Never silently out of step, searched for at random: a rule-based state machine through the real engine.

Hypothesis drives the real `pulumi` CLI against the emulator through random sequences of
- program edits: add a resource for an account's setting, remove one, rename it with and without an
  alias, flip `enabled`, change the other managed field (subscription's `replace`, Google Analytics'
  `utm_source`), change the region (the emulator's subusers live in one region only, so the wrong
  one is SendGrid's 403), change `on_delete`, and declare a second resource for an account;
- out-of-band changes in the emulator (someone clicking in SendGrid's UI): `enabled` of a declared
  account flipped, and its other field set, whether the stack has taken the account over yet or not;
- `pulumi up`, `up --refresh`, `refresh`, `preview`, `destroy`, some under injected faults (429 or
  500 on GET or PATCH, transient or persistent, a PATCH applied before its 500);
- interrupted runs (SIGINT, two SIGINTs, SIGKILL, sent when the emulator's request log reaches a
  drawn count), each followed by the README's recovery.

After every step it checks what a user would (README, *Ownership and originals*):
- the invariant: for every setting resource in the state, SendGrid's live values of its managed
  fields equal its outputs, or a plain `pulumi preview` (which sends no request) shows a change for
  that account; an account changed out of band since the state last saw it may instead show only in
  `pulumi preview --refresh`;
- the originals: every adoption record's `observed` values and every setting's `original_<field>`
  equal the account's live values from just before the stack took it over (the step its record
  appeared in the state). Out-of-band changes while managed are drift, never new originals; after the
  account is given up (its record leaves the state) and taken over again, the original is the value
  found then;
- giving back: when a record leaves the state, `restore` put the managed fields back to the
  originals, `disable` set `enabled` to false, `keep` sent nothing (for restore and disable, where the
  recorded values could be trusted: the account was in step, or the run refreshed first);
- convergence: a successful `up` leaves every declared account at its desired values (but one changed
  out of band, for a plain `up`), a successful `refresh` or `up --refresh` leaves the state equal to
  SendGrid, and `preview --expect-no-changes` passes after `up --refresh`; two resources for one
  account fail preview with 0 requests naming both; no command prints the API key.
At the end, `pulumi destroy --refresh` gives every account back per the records' `on_delete`.

`make test` runs a short bounded run (STATEFUL_EXAMPLES=3 sequences of STATEFUL_STEPS=6 steps, with the
fixed seed STATEFUL_SEED=0, so CI explores the same sequences every time); `make reliability` runs a
longer one with a random seed and writes its figures to $STATEFUL_FIGURES (docs/stateful.json). On a
failure Hypothesis shrinks the sequence (for at most about five minutes) and prints it as rule calls,
each followed by comments saying what it ran and found; STATEFUL_TRACE=1 prints every step as it runs.
A violation found once is replayed through the machine's rules as a plain test at the end of this file.
Takes about 1.5 minutes in `make test` (70-160 s on a loaded 2-core machine).
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, note, seed, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState, Fault

from ..conftest import TEST_KEY
from .conftest import PulumiProject
from .test_ownership import KIND_OF_TYPE, repair_empty_sidecars

EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "3"))
STEPS = int(os.environ.get("STATEFUL_STEPS", "6"))
SEED = int(os.environ["STATEFUL_SEED"]) if os.environ.get("STATEFUL_SEED") else None
FIGURES_FILE = os.environ.get("STATEFUL_FIGURES")
LONG_RUN = "STATEFUL_EXAMPLES" in os.environ
TRACE = bool(os.environ.get("STATEFUL_TRACE"))

PROGRAM = """
import json

import pulumi
from pulumi_sendgrid_tracking import ClickTracking, GoogleAnalytics, OpenTracking, SubscriptionTracking

KINDS = {"click": ClickTracking, "open": OpenTracking, "subscription": SubscriptionTracking,
         "google_analytics": GoogleAnalytics}
with open("resources.json", encoding="utf-8") as handle:
    specs = json.load(handle)
for spec in specs:
    kind, name, aliases = spec.pop("kind"), spec.pop("name"), spec.pop("aliases", None)
    opts = pulumi.ResourceOptions(aliases=[pulumi.Alias(name=a) for a in aliases]) if aliases else None
    KINDS[kind](name, **spec, opts=opts)
"""

KINDS = ("click", "open", "subscription", "google_analytics")
EXTRA = {"subscription": "replace", "google_analytics": "utm_source"}
"""The managed field besides `enabled`, for the settings that have more."""
ACCOUNTS = ("global", "eu", "global/alice", "global/bob", "eu/carol")
"""Resource IDs of the accounts the emulator has: the parent in each region, alice and bob (global), carol (EU)."""
HOMES = {None: ("global", "eu"), "alice": ("global",), "bob": ("global",), "carol": ("eu",)}
VALUES = ("", "news", "promo")
ON_DELETE = ("restore", "disable", "keep")
COMMANDS = ("preview", "up", "up --refresh", "refresh", "destroy")
FAULTS = {
    "429 on GET": ("429", "GET", False),
    "500 on GET": ("500", "GET", False),
    "429 on PATCH": ("429", "PATCH", False),
    "500 on PATCH": ("500", "PATCH", False),
    "500 on PATCH after applying it": ("500", "PATCH", True),
}
SIGNALS = ("SIGINT", "two SIGINTs", "SIGKILL")
THEN = st.sampled_from((None, "up", "up --refresh"))
"""What an edit runs next: nothing (later steps do), or a deploy."""
MAX_RESOURCES = 5

Account = tuple[str, str, str | None]
"""(setting, region, on_behalf_of)."""


def fields_of(kind: str) -> list[str]:
    return ["enabled", EXTRA[kind]] if kind in EXTRA else ["enabled"]


def split_id(account_id: str) -> tuple[str, str | None]:
    region, _, user = account_id.partition("/")
    return region, user or None


def describe(account: Account) -> str:
    kind, region, user = account
    return f"{kind} of {user or 'the parent'} ({region})"


def live_value(world: dict[str, Any], account: Account, name: str) -> Any:
    """The account's live field in an emulator snapshot; KeyError when the account does not exist."""
    kind, region, user = account
    data = world[region]
    settings_of = data["parent"] if user is None else data["subusers"][user]
    return settings_of[kind].get(name)


@dataclass
class Figures:
    sequences: int = 0
    steps: int = 0
    preview_checks: int = 0
    interruptions: dict[str, int] = field(default_factory=dict)
    faults: int = 0
    seed: int = 0


FIGURES = Figures()


@dataclass
class Observed:
    """The state (setting resources and adoption records by account) and SendGrid's live values, at one moment."""

    live: dict[str, Any]
    settings: list[tuple[str, Account, dict[str, Any]]]
    records: dict[Account, dict[str, Any]]

    @property
    def differing(self) -> set[Account]:
        """Accounts with a setting resource whose recorded managed fields are not SendGrid's live values."""
        out = set()
        for _name, account, outs in self.settings:
            for name in outs.get("managed_fields") or ["enabled"]:
                if live_value(self.live, account, name) != outs.get(name):
                    out.add(account)
        return out


def account_of(resource: dict[str, Any]) -> Account | None:
    """The account a state entry (from `stack export` or `preview --json`) manages; None for other resources."""
    kind = resource.get("type", "").rsplit(":", 1)[-1]
    if not resource.get("type", "").startswith("pulumi-python:dynamic/sendgrid:"):
        return None
    props = {**(resource.get("inputs") or {}), **(resource.get("outputs") or {})}
    setting = props.get("setting") if kind == "Adoption" else KIND_OF_TYPE.get(kind)
    if not isinstance(setting, str) or not isinstance(props.get("region"), str):
        return None
    return (setting, props["region"], props.get("on_behalf_of"))


F = TypeVar("F", bound=Callable[..., Any])


def step(function: F) -> F:
    """A counted step; a failure marks the sequence broken, so teardown only cleans up."""

    @functools.wraps(function)
    def wrapper(self: OwnershipMachine, *args: Any, **kwargs: Any) -> Any:
        FIGURES.steps += 1
        if TRACE:
            print(f"[seq {FIGURES.sequences}] {function.__name__}({kwargs})", flush=True)
        try:
            return function(self, *args, **kwargs)
        except BaseException:
            self.broken = True
            self.flush_notes()
            raise

    return wrapper  # type: ignore[return-value]


class OwnershipMachine(RuleBasedStateMachine):
    """One sequence: a fresh emulator world, a fresh project and stack, random steps, then destroy."""

    bin_dir: Path
    work_dir: Path
    names = Bundle("names")

    def __init__(self) -> None:
        super().__init__()
        FIGURES.sequences += 1
        self.broken = False
        self.resources = ExitStack()
        tmp = Path(tempfile.mkdtemp(prefix="seq", dir=self.work_dir))
        world = EmulatorState(api_keys=[TEST_KEY])
        world.add_subuser("global", "alice", enabled=True)
        world.add_subuser("global", "bob", enabled=True)
        world.add_subuser("eu", "carol", enabled=True)
        self.emulator = self.resources.enter_context(Emulator(world))
        try:
            self.project = PulumiProject(tmp, self.emulator, self.bin_dir)
        except BaseException:
            self.resources.close()
            raise
        (self.project.dir / "__main__.py").write_text(PROGRAM)
        self.program: dict[str, dict[str, Any]] = {}
        self.created = 0
        self.originals: dict[Account, dict[str, Any]] = {}
        """The model: each account whose record is in the state → its live values before this stack took it over."""
        self.drifted: set[Account] = set()
        """Accounts changed out of band that the state has not seen in step since."""
        self._observed: Observed | None = None
        self.said: list[str] = []
        self.write_program()

    # -- the program ---------------------------------------------------------------------------

    def write_program(self, extra: list[dict[str, Any]] | None = None) -> None:
        specs = []
        for name, spec in [*self.program.items(), *((s["name"], s) for s in extra or [])]:
            region, user = split_id(spec["account"])
            out: dict[str, Any] = {"name": name, "kind": spec["kind"], "enabled": spec["enabled"], "region": region}
            if spec["kind"] in EXTRA:
                out[EXTRA[spec["kind"]]] = spec["value"]
            if user is not None:
                out["on_behalf_of"] = user
            out["on_delete"] = spec["on_delete"]
            if spec.get("aliases"):
                out["aliases"] = spec["aliases"]
            specs.append(out)
        (self.project.dir / "resources.json").write_text(json.dumps(specs, indent=1))

    def account(self, name: str) -> Account:
        spec = self.program[name]
        region, user = split_id(spec["account"])
        return (spec["kind"], region, user)

    def program_valid(self) -> bool:
        """Every declared account exists in the emulator (a subuser in the other region is SendGrid's 403)."""
        return all(self.account(n)[1] in HOMES[self.account(n)[2]] for n in self.program)

    def new_name(self, kind: str) -> str:
        self.created += 1
        return f"{kind.replace('_', '-')}-{self.created}"

    def say(self, text: str) -> None:
        """A comment under the step in the printed sequence (Hypothesis prints notes with the failing one;
        they are flushed by the invariant, which runs after Hypothesis printed the step). STATEFUL_TRACE=1
        prints them as they come."""
        self.said.append(text)
        if TRACE:
            print(f"    {text}", flush=True)

    def flush_notes(self) -> None:
        if currently_in_test_context():
            for text in self.said:
                note(f"    # {text}")
        self.said.clear()

    # -- observing ---------------------------------------------------------------------------------

    def observe(self) -> Observed:
        if self._observed is None:
            exported = self.project.export()["deployment"].get("resources", [])
            settings_in_state = []
            records = {}
            for resource in exported:
                account = account_of(resource)
                if account is None:
                    continue
                name = resource["urn"].rsplit("::", 1)[1]
                if resource["type"].endswith(":Adoption"):
                    records[account] = resource.get("outputs", {})
                else:
                    settings_in_state.append((name, account, resource.get("outputs", {})))
            self._observed = Observed(self.emulator.state.snapshot(), settings_in_state, records)
        return self._observed

    def pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        self._observed = None
        result = self.project.run(*args, check=False)
        self.say(f"pulumi {' '.join(args)} -> exit {result.returncode}")
        return result

    def preview_changes(self, *, refresh: bool) -> set[Account]:
        """Accounts a `pulumi preview` shows a change for (with --refresh: drift of managed fields too)."""
        FIGURES.preview_checks += 1
        self.project.api_log()
        args = ["preview", "--json", *(["--refresh"] if refresh else [])]
        result = self.project.run(*args, check=False)
        assert result.returncode == 0, f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        if not refresh:
            assert self.project.api_log() == [], "a plain preview sent requests"
        shown: set[Account] = set()
        for entry in json.loads(result.stdout).get("steps", []):
            old, new = entry.get("oldState") or {}, entry.get("newState") or {}
            if entry["op"] == "same":
                continue
            if entry["op"] == "refresh":
                outs_old, outs_new = old.get("outputs") or {}, new.get("outputs") or {}
                managed = outs_old.get("managed_fields") or ["enabled"]
                if all(outs_old.get(f) == outs_new.get(f) for f in managed):
                    continue
            shown |= {a for a in (account_of(old), account_of(new)) if a is not None}
        return shown

    # -- running the engine --------------------------------------------------------------------------

    @contextmanager
    def engine_phase(self, refreshing: bool) -> Iterator[None]:
        """Around one engine run: the takeovers it made get their originals; the accounts it gave up are checked."""
        before = self.observe()
        yield
        self._observed = None
        after = self.observe()
        for account in after.records.keys() - before.records.keys():
            self.originals[account] = {name: live_value(before.live, account, name) for name in fields_of(account[0])}
            self.say(f"took over {describe(account)}: original {self.originals[account]}")
        accounts_before = {a for _, a, _ in before.settings}
        for account, record in before.records.items():
            if account in after.records:
                continue
            original = self.originals.pop(account)
            managed = record.get("managed_fields") or ["enabled"]
            now = {name: live_value(after.live, account, name) for name in managed}
            was = {name: live_value(before.live, account, name) for name in managed}
            mode = record.get("on_delete")
            self.say(f"gave back {describe(account)} ({mode}): {was} -> {now}")
            trusted = refreshing or account not in before.differing or account not in accounts_before
            if mode == "keep":
                assert now == was, f"on_delete keep changed {describe(account)}: {was} -> {now}"
            elif mode == "disable" and trusted:
                assert now["enabled"] is False, f"on_delete disable left {describe(account)} at {now}"
            elif mode == "restore" and trusted:
                expected = {name: original[name] for name in managed}
                assert now == expected, f"on_delete restore left {describe(account)} at {now}, original {expected}"

    def run_engine(self, command: str) -> subprocess.CompletedProcess[str]:
        with self.engine_phase(refreshing="refresh" in command):
            result = self.pulumi(*command.split(), *([] if command == "preview" else ["--yes", "--skip-preview"]))
        return result

    def assert_converged(self, command: str) -> None:
        """What a successful run promises: declared accounts at their desired values; refreshed: state = SendGrid."""
        observed = self.observe()
        if "refresh" in command:
            assert not observed.differing, f"after `pulumi {command}` the state differs from SendGrid for " + ", ".join(
                describe(a) for a in sorted(observed.differing, key=str)
            )
        if command.startswith("up"):
            for name, spec in self.program.items():
                account = self.account(name)
                if command == "up" and account in self.drifted:
                    continue  # changed out of band: a plain `up` compares with the recorded state
                desired = {
                    "enabled": spec["enabled"],
                    **({EXTRA[spec["kind"]]: spec["value"]} if spec["kind"] in EXTRA else {}),
                }
                now = {k: live_value(observed.live, account, k) for k in desired}
                assert now == desired, (
                    f"after `pulumi {command}`, {name} ({describe(account)}) is {now}, wanted {desired}"
                )
        if command == "destroy":
            assert not observed.settings and not observed.records, "destroy left resources in the state"

    # -- rules: the program -------------------------------------------------------------------------

    @initialize(
        target=names,
        resources=st.lists(
            st.tuples(st.sampled_from(KINDS), st.sampled_from(ACCOUNTS), st.booleans()),
            min_size=1,
            max_size=3,
            unique_by=lambda r: (r[0], r[1]),
        ),
    )
    @step
    def start(self, resources: list[tuple[str, str, bool]]) -> Any:
        """A first program of (setting, account, enabled), deployed with `pulumi up`."""
        names = []
        for kind, account_id, enabled in resources:
            name = self.new_name(kind)
            self.program[name] = {
                "kind": kind,
                "account": account_id,
                "enabled": enabled,
                "value": "news",
                "on_delete": "restore",
            }
            names.append(name)
        self.write_program()
        result = self.run_engine("up")
        assert result.returncode == 0, result.stdout + result.stderr
        self.assert_converged("up")
        return multiple(*names)

    @rule(
        target=names,
        kind=st.sampled_from(KINDS),
        account=st.sampled_from(ACCOUNTS),
        enabled=st.booleans(),
        value=st.sampled_from(VALUES),
        on_delete=st.sampled_from(ON_DELETE),
        then=THEN,
    )
    @precondition(lambda self: len(self.program) < MAX_RESOURCES)
    @step
    def add(self, kind: str, account: str, enabled: bool, value: str, on_delete: str, then: str | None) -> str:
        """A resource for `account`'s setting, or for the next account in ACCOUNTS whose setting is free."""
        taken = {self.account(n) for n in self.program}
        start = ACCOUNTS.index(account)
        free = [a for a in ACCOUNTS[start:] + ACCOUNTS[:start] if (kind, *split_id(a)) not in taken]
        name = self.new_name(kind)
        self.program[name] = {
            "kind": kind,
            "account": free[0],
            "enabled": enabled,
            "value": value,
            "on_delete": on_delete,
        }
        self.edited(f"added {name} for {describe(self.account(name))}", then)
        return name

    @rule(name=consumes(names), then=THEN)
    @step
    def remove(self, name: str, then: str | None) -> None:
        del self.program[name]
        self.edited(f"removed {name}", then)

    @rule(target=names, name=consumes(names), alias=st.booleans(), then=THEN)
    @step
    def rename(self, name: str, alias: bool, then: str | None) -> str:
        spec = self.program.pop(name)
        new = self.new_name(spec["kind"])
        spec["aliases"] = [*spec.get("aliases", []), name] if alias else []
        self.program[new] = spec
        self.edited(f"renamed {name} to {new} ({'aliases ' + str(spec['aliases']) if alias else 'no alias'})", then)
        return new

    @rule(name=names, then=THEN)
    @step
    def flip(self, name: str, then: str | None) -> None:
        self.program[name]["enabled"] = not self.program[name]["enabled"]
        self.edited(f"{name}: enabled={self.program[name]['enabled']}", then)

    @rule(name=names, value=st.sampled_from(VALUES), then=THEN)
    @step
    def set_field(self, name: str, value: str, then: str | None) -> None:
        """Subscription's `replace` or Google Analytics' `utm_source`; click and open have no other field."""
        spec = self.program[name]
        if spec["kind"] in EXTRA:
            spec["value"] = value
        self.edited(f"{name}: {EXTRA.get(spec['kind'], 'no other field')}={spec['value']!r}", then)

    @rule(name=names, then=THEN)
    @step
    def change_region(self, name: str, then: str | None) -> None:
        """To the other region: a replacement (create first), or SendGrid's 403 for a subuser that lives in one
        region only. Never onto an account another resource declares (`duplicate` tries that)."""
        kind, region, user = self.account(name)
        other = "eu" if region == "global" else "global"
        if any(self.account(n) == (kind, other, user) for n in self.program):
            self.edited(f"{name}: {describe((kind, other, user))} is declared already: region unchanged", then)
            return
        self.program[name]["account"] = other + (f"/{user}" if user else "")
        self.edited(f"{name}: region {other}", then)

    @rule(name=names, on_delete=st.sampled_from(ON_DELETE), then=THEN)
    @step
    def change_on_delete(self, name: str, on_delete: str, then: str | None) -> None:
        self.program[name]["on_delete"] = on_delete
        self.edited(f"{name}: on_delete {on_delete}", then)

    def edited(self, what: str, then: str | None) -> None:
        """The program is written; `then` runs a command on it (None: the next steps do)."""
        self.write_program()
        self.say(what)
        if then is not None:
            self.run_command(then)

    @rule(name=names, enabled=st.booleans())
    @step
    def duplicate(self, name: str, enabled: bool) -> None:
        """A second resource for the same account's setting: preview fails, naming both, before any request."""
        dup = {**self.program[name], "name": f"{name}-again", "enabled": enabled, "aliases": []}
        self.write_program([dup])
        self.project.api_log()
        result = self.pulumi("preview")
        self.write_program()
        assert result.returncode != 0, "preview accepted two resources for one account"
        assert f"'{name}' and '{name}-again' both manage" in result.stdout + result.stderr, result.stdout
        assert self.project.api_log() == [], "preview sent requests for a program with two owners"

    # -- rules: SendGrid and the engine -----------------------------------------------------------------

    @rule(name=names, value=st.sampled_from(VALUES))
    @step
    def out_of_band(self, name: str, value: str) -> None:
        """Someone flips `enabled` of the resource's account in SendGrid's UI (and sets the other field to `value`),
        whether the stack has taken the account over yet or not."""
        kind, region, user = account = self.account(name)
        if region not in HOMES[user]:
            self.say(f"{describe(account)} does not exist: nothing to change")
            return
        values: dict[str, Any] = {"enabled": not live_value(self.emulator.state.snapshot(), account, "enabled")}
        if kind in EXTRA:
            values[EXTRA[kind]] = value
        self.emulator.state.set_out_of_band(region, user, kind, values)
        self.say(f"{describe(account)} is now {values} in SendGrid")
        self._observed = None
        self.drifted.add(account)

    @rule(command=st.sampled_from(COMMANDS))
    @step
    def run(self, command: str) -> None:
        self.run_command(command)

    def run_command(self, command: str) -> None:
        result = self.run_engine(command)
        if command in ("refresh", "destroy", "preview") or self.program_valid():
            assert result.returncode == 0, f"pulumi {command} failed:\n{result.stdout}\n{result.stderr}"
        if result.returncode == 0:
            self.assert_converged(command)
            if command == "up --refresh":
                self.project.run("preview", "--expect-no-changes")

    @rule(
        command=st.sampled_from(("up", "up --refresh", "refresh", "destroy")),
        fault=st.sampled_from(sorted(FAULTS)),
        persistent=st.booleans(),
    )
    @step
    def run_with_fault(self, command: str, fault: str, persistent: bool) -> None:
        """A transient fault (one request) is retried away; a persistent one fails the run, truthfully."""
        FIGURES.faults += 1
        kind, method, apply = FAULTS[fault]
        self.emulator.state.add_fault(Fault(kind, count=10_000 if persistent else 1, method=method, apply=apply))
        try:
            result = self.run_engine(command)
        finally:
            self.emulator.state.clear_faults()
        if not persistent and (command in ("refresh", "destroy") or self.program_valid()):
            assert result.returncode == 0, f"a transient {fault} failed pulumi {command}:\n{result.stdout}"
        if result.returncode == 0:
            self.assert_converged(command)

    @rule(command=st.sampled_from(("up", "up --refresh")), how=st.sampled_from(SIGNALS), after=st.integers(1, 4))
    @step
    def interrupted(self, command: str, how: str, after: int) -> None:
        """`pulumi <command>` interrupted when the emulator has seen `after` requests of it, then the README's
        recovery: after one SIGINT the same command again; after two or a SIGKILL, `pulumi cancel` where the
        file backend kept its lock, the empty-sidecar repair, then `pulumi up --refresh`."""
        with self.engine_phase(refreshing="refresh" in command):
            cut, code = self.interrupt(command, how, after)
        if not cut:
            if code == 0:
                self.assert_converged(command)
            return
        FIGURES.interruptions[how] = FIGURES.interruptions.get(how, 0) + 1
        if how != "SIGINT":
            repaired = repair_empty_sidecars(self.project)  # the README's step for `failed to load checkpoint: EOF`
            if repaired:
                self.say(f"removed the empty sidecar {repaired}")
        self.check_in_step()  # before the recovery too: a preview, with the lock still held
        if how == "SIGINT":
            recovery = command
        else:
            cancelled = self.project.run("cancel", "--yes", check=False)
            self.say(f"pulumi cancel -> exit {cancelled.returncode}")
            recovery = "up --refresh"
        result = self.run_engine(recovery)
        if self.program_valid():
            assert result.returncode == 0, f"recovery `pulumi {recovery}` failed:\n{result.stdout}\n{result.stderr}"
            self.assert_converged(recovery)

    def interrupt(self, command: str, how: str, after: int) -> tuple[bool, int]:
        """Whether the run was cut (it may finish, or send fewer requests, before the signal), and its exit code."""
        state = self.emulator.state
        self._observed = None
        start = len(state.request_log())
        state.configure(latency=0.2)
        log_path = self.project.dir.parent / "interrupted.log"
        try:
            with open(log_path, "w") as output:
                proc = subprocess.Popen(
                    ["pulumi", *command.split(), "--yes", "--skip-preview", "--non-interactive"],
                    cwd=self.project.dir,
                    env=self.project.env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
                try:
                    reached = self.wait_for_requests(proc, start + after)
                    if reached:
                        if how == "SIGKILL":
                            os.killpg(proc.pid, signal.SIGKILL)
                        else:
                            proc.send_signal(signal.SIGINT)
                            if how == "two SIGINTs" and self.wait_for_requests(proc, len(state.request_log()) + 1):
                                proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=300)
                finally:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
        finally:
            state.configure(latency=0.0)
        self._observed = None
        text = log_path.read_text()
        self.project.outputs.append(text)
        what = f"pulumi {command}, {how} after {after} requests: exit {proc.returncode} (signal sent: {reached})"
        self.say(what)
        return reached and proc.returncode != 0, proc.returncode

    def wait_for_requests(self, proc: subprocess.Popen[str], count: int) -> bool:
        deadline = time.monotonic() + 300  # generous: the machine is shared
        while len(self.emulator.state.request_log()) < count:
            if proc.poll() is not None:
                return False
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.01)
        return True

    # -- the invariant ----------------------------------------------------------------------------

    @invariant()
    def in_step(self) -> None:
        self.flush_notes()
        if self.broken:
            return
        try:
            self.check_in_step()
        except BaseException:
            self.broken = True
            raise

    def check_in_step(self) -> None:
        observed = self.observe()
        for account, record in observed.records.items():
            original = self.originals.get(account)
            assert original is not None, f"a record for {describe(account)} the model did not see taken over"
            for name in record.get("managed_fields") or ["enabled"]:
                recorded = (record.get("observed") or {}).get(name)
                assert recorded == original[name], (
                    f"the record of {describe(account)} holds {name}={recorded!r}; before the stack took it over: "
                    f"{original[name]!r}"
                )
        for name, account, outs in observed.settings:
            assert account in observed.records, f"{name} ({describe(account)}) has no adoption record in the state"
            for field_name in outs.get("managed_fields") or ["enabled"]:
                got = outs.get(f"original_{field_name}")
                want = self.originals[account][field_name]
                assert got == want, (
                    f"{name} records original_{field_name}={got!r}; before the stack took it over: {want!r}"
                )
        differing = observed.differing
        self.drifted &= differing
        if not differing:
            return
        shown = self.preview_changes(refresh=False)
        hidden = differing - shown
        unexplained = hidden - self.drifted
        assert not unexplained, "SendGrid differs from the state and a plain preview shows no change: " + "; ".join(
            self.explain(observed, a) for a in sorted(unexplained, key=str)
        )
        if hidden:
            shown = self.preview_changes(refresh=True)
            missed = hidden - shown
            assert not missed, "drift not shown by `pulumi preview --refresh`: " + ", ".join(
                describe(a) for a in missed
            )

    @staticmethod
    def explain(observed: Observed, account: Account) -> str:
        managed = fields_of(account[0])
        live = {f: live_value(observed.live, account, f) for f in managed}
        state = [{"resource": n, **{f: o.get(f) for f in managed}} for n, a, o in observed.settings if a == account]
        return f"{describe(account)}: live {live}, state {state}"

    # -- the end ------------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if not self.broken:
                result = self.run_engine("destroy --refresh")
                assert result.returncode == 0, f"destroy failed:\n{result.stdout}\n{result.stderr}"
                self.assert_converged("destroy")
                leaked = [text for text in self.project.outputs if TEST_KEY in text]
                assert not leaked, "the API key was printed"
        finally:
            self.flush_notes()
            self.resources.close()


def machine_class(bin_dir: Path, work_dir: Path) -> type[OwnershipMachine]:
    return type("OwnershipMachine", (OwnershipMachine,), {"bin_dir": bin_dir, "work_dir": work_dir})


def run_machine(bin_dir: Path, work_dir: Path) -> None:
    machine = machine_class(bin_dir, work_dir)
    chosen = SEED if SEED is not None else (random.randrange(2**32) if LONG_RUN else 0)
    FIGURES.seed = chosen
    run_state_machine_as_test(
        seed(chosen)(machine),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )


def describe_failure(failure: BaseException) -> str:
    """The error and the shrunk sequence Hypothesis attached to it (as exception notes)."""
    parts = [f"{type(failure).__name__}: {failure}", *getattr(failure, "__notes__", [])]
    for inner in getattr(failure, "exceptions", []):
        parts += ["", describe_failure(inner)]
    return "\n".join(parts)[:8000]


@pytest.mark.long
@pytest.mark.timeout(600 + EXAMPLES * STEPS * 60)
def test_random_sequences_keep_sendgrid_and_state_in_step(pulumi_bin: Path, tmp_path: Path) -> None:
    vars(FIGURES).update(vars(Figures()))
    started = time.monotonic()
    failure = None
    try:
        run_machine(pulumi_bin, tmp_path)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if FIGURES_FILE:
            violations = len(getattr(failure, "exceptions", [failure])) if failure is not None else 0
            Path(FIGURES_FILE).write_text(
                json.dumps(
                    {
                        "examples": EXAMPLES,
                        "steps_per_sequence": STEPS,
                        "seed": FIGURES.seed,
                        "sequences": FIGURES.sequences,
                        "steps": FIGURES.steps,
                        "preview_checks": FIGURES.preview_checks,
                        "interruptions": FIGURES.interruptions,
                        "fault_runs": FIGURES.faults,
                        "violations": violations,
                        "failure": None if failure is None else describe_failure(failure),
                        "seconds": round(time.monotonic() - started),
                        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    },
                    indent=2,
                )
                + "\n"
            )


def test_a_reverted_update_whose_patch_landed_but_failed(pulumi_bin: Path, tmp_path: Path) -> None:
    """The violation found while writing the machine, replayed through its rules: an update whose PATCH
    SendGrid applied but answered with 500s until the retry budget ran out failed and kept the old value in
    the state; reverting the program then previewed "no changes" while SendGrid held the new value. Update
    now re-reads after a failed PATCH (as create does), so the run succeeds and the state holds the value."""
    machine = machine_class(pulumi_bin, tmp_path)()
    try:
        (name,) = machine.start([("click", "global/alice", False)]).values
        machine.flip(name, then=None)
        machine.check_in_step()
        machine.run_with_fault("up", "500 on PATCH after applying it", persistent=True)
        assert machine.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
        machine.check_in_step()
        machine.flip(name, then=None)  # the user reverts the program
        machine.check_in_step()  # the state holds true, as SendGrid does; a plain preview shows the update
        machine.run_command("up")
        machine.check_in_step()
    finally:
        machine.teardown()
