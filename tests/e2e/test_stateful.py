"""Never silently out of step, searched for at random: a rule-based state machine through the real engine.

Hypothesis drives the real `pulumi` CLI against the emulator through random sequences of
- program edits: add a resource for an account's setting, remove one, rename it (with and without an
  alias: no change, the engine names it by its account), flip `enabled`, set the other field
  (subscription's `replace`, Google Analytics' `utm_source`), leave it unmanaged and manage it again, change
  the region (the emulator's subusers live in one region only, so the wrong one is SendGrid's 403), change
  `on_delete`, pass the values as Outputs (`pulumi.Output.from_input`), set the resource options
  `retain_on_delete` and `ignore_changes`, and declare a second resource for an account;
- out-of-band changes in the emulator (someone clicking in SendGrid's UI), whether the stack has taken the
  account over yet or not;
- `pulumi up`, `up --refresh`, `refresh`, `preview`, `destroy`, `destroy --target <setting>`,
  `up --target <setting>` (with and without the ledger's URN), `up --exclude <setting>`, `protect` (a
  protected resource removed: the run fails and sends nothing), and the GitOps scripts as commands, as CI
  runs them (`pipelines/preview` then `pipelines/deploy`, `pipelines/drift-check` before or after them);
- faults injected while any of them runs, creates, updates and give-backs alike (429 storms, 500 and 503,
  a malformed answer, on GET or PATCH, once or persistently, and PATCHes SendGrid applied before failing);
- interrupted runs (SIGINT, two SIGINTs, SIGKILL, sent when the emulator's request log reaches a drawn
  count, never after a sleep), each followed by the recovery of docs/behaviour.md: the same command after
  one SIGINT; `pulumi cancel --yes`, the empty-sidecar repair and `pulumi up --refresh` otherwise.
Every edit may deploy at once, under a fault, or interrupted: most sequences reach a fault or an interruption
(the figures count them, per phase: create, update, give-back, refresh, pipeline).

After every step it checks what a user would (docs/behaviour.md, *Originals*):
- the invariant: for every setting resource in the state, SendGrid's live values of its managed fields
  equal its outputs, or a plain `pulumi preview` (which sends no request) shows a change for that account;
  an account changed out of band since the state last saw it may instead show only in `preview --refresh`;
- the originals: every original the state holds (each setting's `originals` for its `held_fields`, and the
  ledger's entries, released ones included) equals the model's: the value SendGrid held when the stack first
  took that field over (the initial value, or the last out-of-band one before then), kept for the life of
  the stack: giving the account back and taking it over again keeps it. Never a value this stack wrote;
- giving back: when a setting leaves the state, `restore` put its managed fields back to its originals,
  `disable` set `enabled` to false, `keep` sent nothing, and a retained resource sent nothing;
- convergence: a successful `up` leaves every declared account at its desired values (but one changed out
  of band, for a plain `up`; fields under `ignore_changes`; accounts outside `--target`, or excluded), a
  successful `refresh` or `up --refresh` leaves the state equal to SendGrid, and `preview
  --expect-no-changes` passes after it; two resources for one account fail preview with 0 requests naming
  both; no command prints the API key;
- the reports: each script's JSON and Markdown against the emulator's request log of its run, in both
  directions, for every account, setting and field (tools/report_check.py, shared with test_reports.py): a
  preview sends nothing, says what the deploy will send and lists the state's settings; every PATCH a deploy
  sent is in its report with its account, setting and body, and nothing else is; one that changed SendGrid
  is `applied` with SendGrid's values before and after (replayed from the emulator's snapshot), a failed one
  changed nothing and is `failed` with its error, under the injected faults too; the preview announced each
  PATCH (exactly, or as `unknown`) and every `patch` it announced was sent, but for accounts whose state was
  not SendGrid's when it ran (a preview reads nothing); the deploy's `state` is the state it left; a
  drift-check sends only GETs, its `state` is every setting as read live and its `drift`
  every managed field whose live value is neither the recorded one nor the program's, and only those.
At the end, `pulumi destroy --refresh` gives every account back per its setting's `on_delete`.

`make test` runs a short bounded run (STATEFUL_EXAMPLES=3 sequences of STATEFUL_STEPS=6 steps, with the
fixed seed STATEFUL_SEED=0, so CI explores the same sequences every time); `make reliability` runs a
longer one with a random seed and writes its figures to $STATEFUL_FIGURES (docs/stateful.json). On a
failure Hypothesis shrinks the sequence (for at most about five minutes) and prints it as rule calls,
each followed by comments saying what it ran and found; STATEFUL_TRACE=1 prints every step as it runs.
A violation found once is replayed through the machine's rules as a plain test at the end of this file.
Takes 2 to 8 minutes in `make test` (7.5 on a 2-core machine at load 27).
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
from pulumi_sendgrid_tracking.inputs import resource_id, setting_key, split_setting_key
from pulumi_sendgrid_tracking.singleton import ledger_entry

from tools.pulumi_project import PROJECT
from tools.report_check import Key, check_deploy, check_drift_check, check_preview, check_state

from ..conftest import TEST_KEY
from .conftest import ROOT, PulumiProject
from .test_ownership import KIND_OF_TYPE, repair_empty_sidecars
from .test_pipelines import checked

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
    retain, protect, ignore = spec.pop("retain", False), spec.pop("protect", False), spec.pop("ignore", False)
    if spec.pop("output", False):
        for key in ("enabled", "replace", "utm_source"):
            if key in spec:
                spec[key] = pulumi.Output.from_input(spec[key])
    opts = pulumi.ResourceOptions(
        aliases=[pulumi.Alias(name=a) for a in aliases] if aliases else None,
        retain_on_delete=retain or None,
        protect=protect or None,
        ignore_changes=["enabled"] if ignore else None,
    )
    KINDS[kind](name, **spec, opts=opts)
"""

KINDS = ("click", "open", "subscription", "google_analytics")
TYPES = {kind: type_ for type_, kind in KIND_OF_TYPE.items()}
EXTRA = {"subscription": "replace", "google_analytics": "utm_source"}
"""The managed field besides `enabled`, for the settings that have more."""
ACCOUNTS = ("global", "eu", "global/alice", "global/bob", "eu/carol")
"""Resource IDs of the accounts the emulator has: the parent in each region, alice and bob (global), carol (EU)."""
HOMES = {None: ("global", "eu"), "alice": ("global",), "bob": ("global",), "carol": ("eu",)}
VALUES = ("", "news", "promo")
ON_DELETE = ("restore", "disable", "keep")
COMMANDS = ("preview", "up", "up --refresh", "refresh", "destroy")
LEDGER_URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:Originals::originals"
PERSISTENT = 10_000
FAULTS = {
    "429 storm on GET": ("429", "GET", False),
    "429 storm on PATCH": ("429", "PATCH", False),
    "500 on GET": ("500", "GET", False),
    "503 on GET": ("503", "GET", False),
    "500 on PATCH": ("500", "PATCH", False),
    "500 on PATCH after applying it": ("500", "PATCH", True),
    "503 on PATCH after applying it": ("503", "PATCH", True),
    "malformed answer to a PATCH it applied": ("malformed", "PATCH", True),
}
SIGNALS = ("SIGINT", "two SIGINTs", "SIGKILL")
PHASES = ("create", "update", "give-back", "refresh", "pipeline")
LEDGER_TYPE = "pulumi-python:dynamic/sendgrid:Originals"
MAX_RESOURCES = 5

FAULT = st.tuples(st.just("fault"), st.sampled_from(sorted(FAULTS)), st.booleans())
INTERRUPT = st.tuples(st.just("interrupt"), st.sampled_from(SIGNALS), st.integers(1, 2))
THEN = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(("up", "up --refresh"))),
    st.tuples(st.just("pipeline"), st.just("deploy")),
    st.tuples(st.just("pipeline"), st.just("deploy")),
    FAULT,
    FAULT,
    INTERRUPT,
    INTERRUPT,
)
"""What an edit runs next: nothing (later steps do), a deploy (`up`, or the scripts: their reports checked),
or a deploy under a fault or interrupted (weighted so that most sequences reach a fault or an interruption,
and many the scripts)."""
DISTURB = st.one_of(FAULT, INTERRUPT)

Account = tuple[str, str, str | None]
"""(setting, region, on_behalf_of)."""
Pair = tuple[Account, str]
"""An account setting's field."""


def fields_of(kind: str) -> list[str]:
    return ["enabled", EXTRA[kind]] if kind in EXTRA else ["enabled"]


def split_id(account_id: str) -> tuple[str, str | None]:
    region, _, user = account_id.partition("/")
    return region, user or None


def describe(account: Account) -> str:
    kind, region, user = account
    return f"{kind} of {user or 'the parent'} ({region})"


def key_of(account: Account) -> str:
    return setting_key(account[0], account[1], account[2])


def account_of_key(key: str) -> Account:
    return split_setting_key(key)


def urn_of(account: Account) -> str:
    kind, region, user = account
    return f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:{TYPES[kind]}::{resource_id(region, user)}"


def command_args(command: str) -> list[str]:
    """`destroy --target <urn>` and the like as arguments (a URN may not be split)."""
    head, _, target = command.partition(" --target ")
    return [*head.split(), *(["--target", target] if target else [])]


def live_value(world: dict[str, Any], account: Account, name: str) -> Any:
    """The account's live field in an emulator snapshot; None when the account does not exist."""
    kind, region, user = account
    data = world[region]
    settings_of = data["parent"] if user is None else data["subusers"].get(user)
    return None if settings_of is None else settings_of[kind].get(name)


def exists(account: Account) -> bool:
    return account[1] in HOMES[account[2]]


@dataclass
class Figures:
    sequences: int = 0
    steps: int = 0
    preview_checks: int = 0
    disturbed_sequences: int = 0
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0

    def count(self, phases: set[str], what: str, n: int = 1) -> None:
        for phase in phases:
            row = self.phases.setdefault(phase, {"fault_runs": 0, "faulted_requests": 0, "interruptions": {}})
            if what in SIGNALS:
                row["interruptions"][what] = row["interruptions"].get(what, 0) + n
            else:
                row[what] += n


FIGURES = Figures()


@dataclass
class Setting:
    """One setting resource in the state."""

    name: str
    account: Account
    outs: dict[str, Any]
    retained: bool
    protected: bool

    @property
    def managed(self) -> list[str]:
        return list(self.outs.get("managed_fields") or ["enabled"])

    @property
    def held(self) -> dict[str, Any]:
        originals = self.outs.get("originals") or {}
        return {name: originals.get(name) for name in self.outs.get("held_fields") or []}


@dataclass
class Observed:
    """The state (setting resources by account, the ledger's entries) and SendGrid's live values, at one moment."""

    live: dict[str, Any]
    settings: dict[Account, Setting]
    ledger: dict[Account, dict[str, Any]]
    resources: list[dict[str, Any]]
    """The state's resources, as `pulumi stack export` has them."""

    @property
    def differing(self) -> set[Account]:
        """Accounts with a setting resource whose recorded managed fields are not SendGrid's live values."""
        return {
            account
            for account, s in self.settings.items()
            if any(live_value(self.live, account, f) != s.outs.get(f) for f in s.managed)
        }

    def held(self) -> dict[Pair, list[tuple[str, Any]]]:
        """Every original the state holds: (account, field) → [(where, value)]."""
        out: dict[Pair, list[tuple[str, Any]]] = {}
        for account, s in self.settings.items():
            for name, value in s.held.items():
                out.setdefault((account, name), []).append((f"setting {s.name}", value))
        for account, entry in self.ledger.items():
            for name, value in (entry.get("originals") or {}).items():
                out.setdefault((account, name), []).append(("the ledger", value))
        return out


def account_of(resource: dict[str, Any]) -> Account | None:
    """The account a setting resource (from `stack export` or `preview --json`) manages; None for others."""
    kind = KIND_OF_TYPE.get(resource.get("type", "").rsplit(":", 1)[-1])
    props = {**(resource.get("inputs") or {}), **(resource.get("outputs") or {})}
    if kind is None or not isinstance(props.get("region"), str):
        return None
    return (kind, props["region"], props.get("on_behalf_of"))


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
        self.disturbed = False
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
        (self.project.dir / "Pulumi.dev.yaml").write_text("config: {}\n")  # the pipelines want the stack's file
        self.program: dict[str, dict[str, Any]] = {}
        self.created = 0
        self.initial = self.emulator.state.snapshot()
        self.found: dict[Pair, Any] = {}
        """The model: each field's value as left by someone other than this stack holding it (out of band, or
        the account's last give-back); fields not in here are at their initial value."""
        self.originals: dict[Pair, Any] = {}
        """The model: each field whose original a setting holds → the value found when the stack took it over."""
        self.first: dict[Pair, Any] = {}
        """The model: each field the stack ever took over → the value found the first time (what the ledger keeps)."""
        self.drifted: set[Account] = set()
        """Accounts changed out of band that the state has not seen in step since."""
        self._observed: Observed | None = None
        self._planned: tuple[dict[str, Any], set[Key]] | None = None
        """The JSON of the pipelines/preview just run, and the accounts it could not know (see run_pipeline_now)."""
        self.said: list[str] = []
        self.write_program()

    # -- the program ---------------------------------------------------------------------------

    def write_program(self, extra: list[dict[str, Any]] | None = None) -> None:
        specs = []
        for name, spec in [*self.program.items(), *((s["name"], s) for s in extra or [])]:
            region, user = split_id(spec["account"])
            out: dict[str, Any] = {"name": name, "kind": spec["kind"], "enabled": spec["enabled"], "region": region}
            if spec["kind"] in EXTRA and spec["value"] is not None:
                out[EXTRA[spec["kind"]]] = spec["value"]
            if user is not None:
                out["on_behalf_of"] = user
            out["on_delete"] = spec["on_delete"]
            for option in ("aliases", "retain", "protect", "ignore", "output"):
                if spec.get(option):
                    out[option] = spec[option]
            specs.append(out)
        (self.project.dir / "resources.json").write_text(json.dumps(specs, indent=1))

    def account(self, name: str) -> Account:
        spec = self.program[name]
        region, user = split_id(spec["account"])
        return (spec["kind"], region, user)

    def program_valid(self) -> bool:
        """Every declared account exists in the emulator (a subuser in the other region is SendGrid's 403)."""
        return all(exists(self.account(n)) for n in self.program)

    def desired(self, name: str) -> dict[str, Any]:
        """What a successful `up` leaves in SendGrid for `name`: its managed fields not under ignore_changes."""
        spec = self.program[name]
        out: dict[str, Any] = {} if spec.get("ignore") else {"enabled": spec["enabled"]}
        if spec["kind"] in EXTRA and spec["value"] is not None:
            out[EXTRA[spec["kind"]]] = spec["value"]
        return out

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

    # -- the model -------------------------------------------------------------------------------

    def found_value(self, pair: Pair) -> Any:
        """What the field held before this stack took it over, if it took it over now."""
        if pair in self.found:
            return self.found[pair]
        return live_value(self.initial, *pair)

    # -- observing ---------------------------------------------------------------------------------

    def observe(self) -> Observed:
        if self._observed is None:
            exported = self.project.export()["deployment"].get("resources", [])
            settings_in_state: dict[Account, Setting] = {}
            ledger: dict[Account, dict[str, Any]] = {}
            for resource in exported:
                if resource["type"] == LEDGER_TYPE:
                    entries = (resource.get("outputs") or {}).get("entries") or {}
                    ledger = {account_of_key(k): ledger_entry(v) or {} for k, v in entries.items()}
                    continue
                account = account_of(resource)
                if account is None:
                    continue
                outs = dict(resource.get("outputs") or {})
                name = (resource.get("inputs") or {}).get("name") or outs.get("name") or resource["urn"]
                settings_in_state[account] = Setting(
                    name, account, outs, bool(resource.get("retainOnDelete")), bool(resource.get("protect"))
                )
            self._observed = Observed(self.emulator.state.snapshot(), settings_in_state, ledger, exported)
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

    def phases_of(self, command: str) -> set[str]:
        """The phases a run goes through, from the program and the state before it: for the figures."""
        if command.startswith("pipeline"):
            return {"pipeline"}
        if command.startswith("destroy"):
            return {"give-back"}
        if command == "refresh":
            return {"refresh"}
        observed = self.observe()
        declared = {self.account(n) for n in self.program}
        out = {"refresh"} if "--refresh" in command else set()
        if declared - observed.settings.keys():
            out.add("create")
        if observed.settings.keys() - declared:
            out.add("give-back")
        if declared & observed.settings.keys() or not out:
            out.add("update")
        return out

    @contextmanager
    def engine_phase(self) -> Iterator[None]:
        """Around one engine run: the fields it took over get the model's originals; the accounts it gave
        back are checked (and what they hold now is what a later take-over finds)."""
        before = self.observe()
        start = len(self.emulator.state.request_log())
        self._planned = None
        yield
        self._observed = None
        after = self.observe()
        log = self.emulator.state.request_log()[start:]
        held_before, held_after = before.held(), after.held()
        for pair in held_after.keys() - self.originals.keys():
            self.originals[pair] = self.first.setdefault(pair, self.found_value(pair))
            account, name = pair
            self.say(f"took over {name} of {describe(account)}: original {self.originals[pair]!r}")
        for account, setting in before.settings.items():
            if account in after.settings:
                continue
            self.check_give_back(setting, before, after, log)
            for name in fields_of(account[0]):
                self.found[(account, name)] = live_value(after.live, account, name)
        for pair in held_before.keys() - held_after.keys():
            self.originals.pop(pair, None)
        if not any(r["type"] == LEDGER_TYPE for r in after.resources):
            # The ledger went with the stack's resources (`destroy`): the stack remembers nothing, so an account
            # a retained setting left at this stack's values is, taken over again, found at those values.
            self.first = {pair: value for pair, value in self.first.items() if pair in held_after}

    def check_give_back(self, setting: Setting, before: Observed, after: Observed, log: list[dict[str, Any]]) -> None:
        account = setting.account
        _kind, region, user = account
        managed = setting.managed
        now = {name: live_value(after.live, account, name) for name in managed}
        was = {name: live_value(before.live, account, name) for name in managed}
        mode = "retained" if setting.retained else setting.outs.get("on_delete")
        self.say(f"gave back {describe(account)} ({mode}): {was} -> {now}")
        patched = [
            e for e in log if e["method"] == "PATCH" and e["world"] == region and (e["on_behalf_of"] or None) == user
        ]
        if mode in ("keep", "retained"):
            assert now == was, f"on_delete {mode} changed {describe(account)}: {was} -> {now}"
        if mode == "retained":
            assert not patched, f"a retained resource sent {len(patched)} PATCH(es) for {describe(account)} as it went"
        elif mode == "disable":
            assert now["enabled"] is False, f"on_delete disable left {describe(account)} at {now}"
        elif mode == "restore":
            expected = {name: self.originals.get((account, name), setting.held.get(name)) for name in managed}
            assert now == expected, f"on_delete restore left {describe(account)} at {now}, original {expected}"

    def run_engine(self, command: str) -> subprocess.CompletedProcess[str]:
        args = command_args(command)
        with self.engine_phase():
            result = self.pulumi(*args, *([] if command == "preview" else ["--yes", "--skip-preview"]))
        return result

    def assert_converged(self, command: str, only: set[Account] | None = None) -> None:
        """What a successful run promises: declared accounts at their desired values; refreshed: state = SendGrid."""
        observed = self.observe()
        if "refresh" in command:
            assert not observed.differing, f"after `pulumi {command}` the state differs from SendGrid for " + ", ".join(
                describe(a) for a in sorted(observed.differing, key=str)
            )
        if command.startswith("up"):
            for name in self.program:
                account = self.account(name)
                if only is not None and account not in only:
                    continue
                if "--refresh" not in command and account in self.drifted:
                    continue  # changed out of band: a plain `up` compares with the recorded state
                desired = self.desired(name)
                now = {k: live_value(observed.live, account, k) for k in desired}
                assert now == desired, (
                    f"after `pulumi {command}`, {name} ({describe(account)}) is {now}, wanted {desired}"
                )
        if command == "destroy":
            assert not observed.settings and not observed.ledger, "destroy left resources in the state"

    def deploy(self, then: tuple[Any, ...] | None) -> None:
        """Run what an edit (or a rule) asks for: nothing, a command, the scripts (drift-check, preview, deploy),
        or `up` under a fault or interrupted."""
        if then is None:
            return
        if then[0] == "pipeline":  # the scheduled drift-check, then CI's preview and deploy of the edit
            self.run_pipeline("drift-check")
            self.run_pipeline(then[1])
        elif then[0] == "fault":
            self.run_with_fault_now("up", then[1], then[2])
        elif then[0] == "interrupt":
            self.interrupt_and_recover("up", then[1], then[2])
        else:
            self.run_command(then[0])

    # -- rules: the program -------------------------------------------------------------------------

    @initialize(
        target=names,
        resources=st.lists(
            st.tuples(st.sampled_from(KINDS), st.sampled_from(ACCOUNTS), st.booleans()),
            min_size=1,
            max_size=3,
            unique_by=lambda r: (r[0], r[1]),
        ),
        then=st.one_of(st.tuples(st.just("up")), FAULT, INTERRUPT),
    )
    @step
    def start(self, resources: list[tuple[str, str, bool]], then: tuple[Any, ...] = ("up",)) -> Any:
        """A first program of (setting, account, enabled), deployed with `pulumi up` (maybe under a fault or
        interrupted: a create)."""
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
        if then == ("up",):
            result = self.run_engine("up")
            if self.program_valid():
                assert result.returncode == 0, result.stdout + result.stderr
                self.assert_converged("up")
        else:
            self.deploy(then)
        return multiple(*names)

    @rule(
        target=names,
        kind=st.sampled_from(KINDS),
        account=st.sampled_from(ACCOUNTS),
        enabled=st.booleans(),
        value=st.sampled_from((None, *VALUES)),
        on_delete=st.sampled_from(ON_DELETE),
        then=THEN,
    )
    @precondition(lambda self: len(self.program) < MAX_RESOURCES)
    @step
    def add(
        self, kind: str, account: str, enabled: bool, value: str | None, on_delete: str, then: tuple[Any, ...] | None
    ) -> str:
        """A resource for `account`'s setting, or for the next account in ACCOUNTS whose setting is free."""
        taken = {self.account(n) for n in self.program}
        first = ACCOUNTS.index(account)
        free = [a for a in ACCOUNTS[first:] + ACCOUNTS[:first] if (kind, *split_id(a)) not in taken]
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
    def remove(self, name: str, then: tuple[Any, ...] | None) -> None:
        """The account leaves the program: its setting gives it back (a give-back, maybe disturbed)."""
        del self.program[name]
        self.edited(f"removed {name}", then)

    @rule(target=names, name=consumes(names), alias=st.booleans(), then=THEN)
    @step
    def rename(self, name: str, alias: bool, then: tuple[Any, ...] | None) -> str:
        spec = self.program.pop(name)
        new = self.new_name(spec["kind"])
        spec["aliases"] = [*spec.get("aliases", []), name] if alias else []
        self.program[new] = spec
        self.edited(f"renamed {name} to {new} ({'aliases ' + str(spec['aliases']) if alias else 'no alias'})", then)
        return new

    @rule(name=names, then=THEN)
    @step
    def flip(self, name: str, then: tuple[Any, ...] | None) -> None:
        self.program[name]["enabled"] = not self.program[name]["enabled"]
        self.edited(f"{name}: enabled={self.program[name]['enabled']}", then)

    @rule(name=names, value=st.sampled_from((None, *VALUES)), then=THEN)
    @step
    def set_field(self, name: str, value: str | None, then: tuple[Any, ...] | None) -> None:
        """Subscription's `replace` or Google Analytics' `utm_source` set, or left out (unmanaged: left as it
        is, its original kept); click and open have no other field."""
        spec = self.program[name]
        if spec["kind"] in EXTRA:
            spec["value"] = value
        shown = "unmanaged" if spec["value"] is None else repr(spec["value"])
        self.edited(f"{name}: {EXTRA.get(spec['kind'], 'no other field')}={shown}", then)

    @rule(name=names, option=st.sampled_from(("retain", "ignore", "output")), then=THEN)
    @step
    def toggle_option(self, name: str, option: str, then: tuple[Any, ...] | None) -> None:
        """`retain_on_delete`, `ignore_changes=["enabled"]`, or the values passed as Outputs, on or off."""
        spec = self.program[name]
        spec[option] = not spec.get(option, False)
        self.edited(f"{name}: {option}={spec[option]}", then)

    @rule(name=names, then=THEN)
    @step
    def change_region(self, name: str, then: tuple[Any, ...] | None) -> None:
        """To the other region: another account (taken over, the old one given back), or SendGrid's 403 for
        a subuser that lives in one region only. Never onto an account another resource declares."""
        kind, region, user = self.account(name)
        other = "eu" if region == "global" else "global"
        if any(self.account(n) == (kind, other, user) for n in self.program):
            self.edited(f"{name}: {describe((kind, other, user))} is declared already: region unchanged", then)
            return
        self.program[name]["account"] = other + (f"/{user}" if user else "")
        self.edited(f"{name}: region {other}", then)

    @rule(name=names, on_delete=st.sampled_from(ON_DELETE), then=THEN)
    @step
    def change_on_delete(self, name: str, on_delete: str, then: tuple[Any, ...] | None) -> None:
        self.program[name]["on_delete"] = on_delete
        self.edited(f"{name}: on_delete {on_delete}", then)

    def edited(self, what: str, then: tuple[Any, ...] | None) -> None:
        """The program is written; `then` runs a command on it (None: the next steps do)."""
        self.write_program()
        self.say(what)
        self.deploy(then)

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
        if not exists(account):
            self.say(f"{describe(account)} does not exist: nothing to change")
            return
        values: dict[str, Any] = {"enabled": not live_value(self.emulator.state.snapshot(), account, "enabled")}
        if kind in EXTRA:
            values[EXTRA[kind]] = value
        self.emulator.state.set_out_of_band(region, user, kind, values)
        self.say(f"{describe(account)} is now {values} in SendGrid")
        for name_, value_ in values.items():
            self.found[(account, name_)] = value_
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

    @rule(command=st.sampled_from(("up", "up --refresh", "refresh", "destroy")), fault=FAULT)
    @step
    def run_with_fault(self, command: str, fault: tuple[str, str, bool]) -> None:
        self.run_with_fault_now(command, fault[1], fault[2])

    def run_with_fault_now(self, command: str, fault: str, persistent: bool, pipeline: bool = False) -> None:
        """A transient fault (one request) is retried away; a persistent one fails the run, truthfully. Then
        (persistent) the faults stop and the same command must succeed."""
        kind, method, apply = FAULTS[fault]
        phases = self.phases_of(f"pipeline {command}" if pipeline else command)
        self.disturb(phases, "fault_runs")
        start = len(self.emulator.state.request_log())
        self.emulator.state.add_fault(Fault(kind, count=PERSISTENT if persistent else 1, method=method, apply=apply))
        self.say(f"{'persistent' if persistent else 'one'} {fault}")
        try:
            code = self.run_pipeline_now(command) if pipeline else self.run_engine(command).returncode
        finally:
            self.emulator.state.clear_faults()
        hit = sum(1 for e in self.emulator.state.request_log()[start:] if e["fault"])
        FIGURES.count(phases, "faulted_requests", hit)
        if pipeline:
            return
        if not persistent and (command in ("refresh", "destroy") or self.program_valid()) and kind != "malformed":
            assert code == 0, f"a transient {fault} failed pulumi {command}"
        if code == 0:
            self.assert_converged(command)
        else:
            self.run_command(command)  # SendGrid answers again: the same command converges

    def disturb(self, phases: set[str], what: str) -> None:
        FIGURES.count(phases, what)
        if not self.disturbed:
            self.disturbed = True
            FIGURES.disturbed_sequences += 1

    @rule(command=st.sampled_from(("up", "up --refresh", "destroy")), how=INTERRUPT)
    @step
    def interrupted(self, command: str, how: tuple[str, str, int]) -> None:
        self.interrupt_and_recover(command, how[1], how[2])

    @rule(name=names, disturbance=DISTURB)
    @step
    def destroy_target(self, name: str, disturbance: tuple[Any, ...]) -> None:
        """`pulumi destroy --target <setting>` (a give-back of one account) under a fault or interrupted."""
        command = f"destroy --target {urn_of(self.account(name))}"
        if disturbance[0] == "fault":
            self.run_with_fault_now(command, disturbance[1], disturbance[2])
        else:
            self.interrupt_and_recover(command, disturbance[1], disturbance[2])

    def interrupt_and_recover(self, command: str, how: str, after: int) -> None:
        """`pulumi <command>` interrupted when the emulator has seen `after` requests of it, then the
        recovery: after one SIGINT the same command again; after two or a SIGKILL, `pulumi cancel` where the
        file backend kept its lock, the empty-sidecar repair, then `pulumi up --refresh`."""
        phases = self.phases_of(command)
        with self.engine_phase():
            cut, code = self.interrupt(command, how, after)
        if not cut:
            if code == 0 and "--target" not in command:
                self.assert_converged(command)
            return
        self.disturb(phases, how)
        if how != "SIGINT":
            repaired = repair_empty_sidecars(self.project)  # docs/behaviour.md: `failed to load checkpoint: EOF`
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
        if self.program_valid() or recovery.startswith("destroy"):
            assert result.returncode == 0, f"recovery `pulumi {recovery}` failed:\n{result.stdout}\n{result.stderr}"
            if not recovery.startswith("destroy --target"):
                self.assert_converged(recovery)

    def interrupt(self, command: str, how: str, after: int) -> tuple[bool, int]:
        """Whether the run was cut (it may finish, or send fewer requests, before the signal), and its exit code."""
        state = self.emulator.state
        self._observed = None
        start = len(state.request_log())
        state.configure(latency=0.2)
        log_path = self.project.dir.parent / "interrupted.log"
        args = command_args(command)
        try:
            with open(log_path, "w") as output:
                proc = subprocess.Popen(
                    ["pulumi", *args, "--yes", "--skip-preview", "--non-interactive"],
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

    @rule(name=names, ledger=st.booleans(), exclude=st.booleans())
    @step
    def up_targeted(self, name: str, ledger: bool, exclude: bool) -> None:
        """`pulumi up --target <setting>` (with or without the ledger's URN), or `--exclude <setting>`. A target
        that would change a field whose original the ledger has not recorded fails at preview, sending nothing."""
        account = self.account(name)
        if exclude:
            args = ["up", "--exclude", urn_of(account)]
            only = {self.account(n) for n in self.program} - {account}
        else:
            args = ["up", "--target", urn_of(account), *(["--target", LEDGER_URN] if ledger else [])]
            only = {account}
        start = len(self.emulator.state.request_log())
        with self.engine_phase():
            result = self.pulumi(*args, "--yes", "--skip-preview")
        if result.returncode == 0:
            self.assert_converged("up", only=only)
        elif "--target" in args and not ledger and "--target" in result.stdout + result.stderr:
            sent = [e for e in self.emulator.state.request_log()[start:] if e["method"] == "PATCH"]
            assert not sent, f"a --target run refused for its originals sent {len(sent)} PATCH(es)"
        elif exists(account) and self.program_valid():
            raise AssertionError(f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    @rule(name=names)
    @step
    def protect_then_remove(self, name: str) -> None:
        """A protected resource removed from the program: `up` fails naming it and sends nothing for that
        account; then the resource is back in the program, unprotected (`pulumi state unprotect`)."""
        account = self.account(name)
        spec = self.program[name]
        spec["protect"] = True
        self.write_program()
        result = self.run_engine("up")
        if result.returncode != 0 or account not in self.observe().settings:
            spec["protect"] = False
            self.write_program()
            self.say(f"{name} could not be protected (exit {result.returncode}): unprotected")
            self.run_engine("up")
            return
        removed = self.program.pop(name)
        self.write_program()
        start = len(self.emulator.state.request_log())
        result = self.run_engine("up")
        sent = [
            e
            for e in self.emulator.state.request_log()[start:]
            if e["world"] == account[1] and (e["on_behalf_of"] or None) == account[2] and e["method"] == "PATCH"
        ]
        self.program[name] = {**removed, "protect": False}
        self.write_program()
        assert result.returncode != 0 and "protected" in result.stdout + result.stderr, result.stdout
        assert not sent, f"removing the protected {name} sent {sent}"
        assert account in self.observe().settings, f"the protected {name} left the state"
        unprotected = self.project.run("state", "unprotect", urn_of(account), "--yes", check=False)
        self.say(f"pulumi state unprotect -> exit {unprotected.returncode}")
        assert unprotected.returncode == 0, unprotected.stdout + unprotected.stderr

    @rule(drift_check=st.sampled_from((None, "before", "after")), fault=st.one_of(st.none(), FAULT))
    @step
    def pipeline(self, drift_check: str | None, fault: tuple[str, str, bool] | None) -> None:
        """The GitOps scripts as CI runs them: pipelines/preview then pipelines/deploy (under a fault: then both
        again, without), and pipelines/drift-check before or after them when drawn."""
        if drift_check == "before":
            self.run_pipeline("drift-check")
        if fault is not None:
            self.run_pipeline("preview")
            self.run_with_fault_now("deploy", fault[1], fault[2], pipeline=True)
        self.run_pipeline("deploy")
        if drift_check == "after":
            self.run_pipeline("drift-check")

    def run_pipeline(self, script: str) -> None:
        """A script and its exit code (a deploy after its preview, as CI runs them): a deploy converges."""
        if script == "deploy" and self._planned is None:
            self.run_pipeline("preview")
        code = self.run_pipeline_now(script)
        valid = self.program_valid()
        if script == "deploy":
            if valid:
                assert code == 0, f"pipelines/deploy exited {code}"
                self.assert_converged("up --refresh")
            else:
                assert code == 1, f"pipelines/deploy of a program naming a missing account exited {code}"
        elif script == "preview":
            assert code in ((0,) if valid else (0, 1)), f"pipelines/preview exited {code}"
        else:
            assert code in ((0, 2) if valid else (0, 1, 2)), f"pipelines/drift-check exited {code}"

    def run_pipeline_now(self, script: str) -> int:
        """A script as a command (JSON on stdout, its Markdown to a file), its reports checked against the
        emulator's request log of its run (tools/report_check.py): a preview sends nothing and says what the
        deploy will send; a deploy reports every PATCH, with SendGrid's values before and after, and the
        preview just before it announced them; a drift-check reads only and reports every setting and drift.

        A preview reads nothing: for an account whose state is not SendGrid's (changed out of band since the
        state last read it, or left so by a failed run) it cannot know what the deploy will send."""
        planned = self._planned
        markdown = self.project.dir.parent / f"{script}.md"
        markdown.unlink(missing_ok=True)
        argv = [str(ROOT / "pipelines" / script), "--stack", "dev", "--project-dir", str(self.project.dir)]
        argv += ["--format", "json", "--markdown-file", str(markdown)]
        before = self.observe()
        start = len(self.emulator.state.request_log())
        with self.engine_phase():
            result = self.project.exec(argv)
        self.say(f"pipelines/{script} -> exit {result.returncode}")
        self.project.outputs.append(result.stdout + result.stderr)
        report = checked(result.returncode, result.stdout, result.stderr)
        log = self.emulator.state.request_log()[start:]
        md = markdown.read_text() if markdown.exists() else None
        if script == "preview":
            check_preview(report, log, md)
            if report["ok"]:
                check_state(report["state"], before.resources)
                unsure = {(resource_id(a[1], a[2]), a[0]) for a in before.differing | self.drifted}
                self._planned = (report, unsure)
        elif script == "deploy":
            preview, unsure = planned if planned is not None else (None, set())
            check_deploy(report, log, md, preview, before=before.live, unsure=unsure)
            if report["ok"] or report["state"]:
                check_state(report["state"], self.observe().resources)
            self.say(f"  reported {sum(len(r['requests']) for r in report['changes'])} PATCH(es), checked")
        else:
            desired = {
                (resource_id(*split_id(self.program[n]["account"])), self.program[n]["kind"]): self.desired(n)
                for n in self.program
            }
            check_drift_check(report, log, before.resources, before.live, desired)
        return result.returncode

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
        for pair, places in observed.held().items():
            account, name = pair
            want = self.first.get(pair)
            for where, got in places:
                assert got == want, (
                    f"{where} holds the original {name}={got!r} of {describe(account)}; before the stack took it "
                    f"over: {want!r}"
                )
        for account, s in observed.settings.items():
            missing = [f for f in s.managed if f not in s.held]
            assert not missing, f"{s.name} ({describe(account)}) manages {missing} without holding their originals"
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
        s = observed.settings[account]
        return f"{describe(account)}: live {live}, state {s.name}: { {f: s.outs.get(f) for f in managed} }"

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
@pytest.mark.timeout(600 + EXAMPLES * STEPS * 90)
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
                        "disturbed_sequences": FIGURES.disturbed_sequences,
                        "phases": {p: FIGURES.phases[p] for p in PHASES if p in FIGURES.phases},
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
        machine.run_with_fault("up", ("fault", "500 on PATCH after applying it", True))
        assert machine.emulator.state.snapshot()["global"]["subusers"]["alice"]["click"]["enabled"] is True
        machine.check_in_step()
        machine.flip(name, then=None)  # the user reverts the program
        machine.check_in_step()  # the state holds true, as SendGrid does; a plain preview shows the update
        machine.run_command("up")
        machine.check_in_step()
    finally:
        machine.teardown()


def test_a_protected_removal_then_the_account_declared_again(pulumi_bin: Path, tmp_path: Path) -> None:
    """The violation the long run of 2026-12-06 found (seed 2320671326), replayed through the machine's
    rules: bob's click tracking was on; the stack turned it off; bob's resource, protected, is removed from
    the program (the run fails: protected), then declared again. The ledger used to drop bob's entry in the
    failed run and read bob again, recording `enabled=False`, the value this stack wrote, as bob's original
    (a delete-first replacement, or `destroy --target` then `up`, then took it over from there). It now
    keeps the entry as released, and finds the original again."""
    machine = machine_class(pulumi_bin, tmp_path)()
    try:
        name, _alice = machine.start([("click", "global/bob", False), ("click", "global/alice", True)]).values
        machine.check_in_step()
        machine.protect_then_remove(name)  # with alice still declared, the failed run updates the ledger
        machine.check_in_step()
        machine.run_command("up")
        machine.check_in_step()  # the ledger holds bob's original, True, from before the stack took it over
    finally:
        machine.broken = True  # teardown only cleans up
        machine.teardown()


def test_the_pipelines_report_what_reached_sendgrid(pulumi_bin: Path, tmp_path: Path) -> None:
    """The reports invariant through the machine's own pipeline rule, whatever the fixed seed draws: alice's
    click tracking is changed in SendGrid's UI, then dropped from the program; under a persistent 500 on PATCH
    the deploy reports her give-back `failed`, with its error, and nothing applied; preview and deploy again
    report it applied, with SendGrid's values before and after; then an update of bob's, and a drift-check."""
    machine = machine_class(pulumi_bin, tmp_path)()
    try:
        bob, alice = machine.start([("subscription", "global/bob", False), ("click", "global/alice", True)]).values
        machine.check_in_step()
        machine.out_of_band(alice, "news")  # alice's click tracking turned off in the UI
        machine.remove(alice, then=None)  # a give-back of alice, decided from her live value
        start = len(machine.emulator.state.request_log())
        machine.pipeline(drift_check="before", fault=("fault", "500 on PATCH", True))
        failed = [e for e in machine.emulator.state.request_log()[start:] if e["method"] == "PATCH" and e["fault"]]
        assert failed and {e["on_behalf_of"] for e in failed} == {"alice"}  # the give-back was tried, and failed
        machine.check_in_step()
        machine.set_field(bob, "promo", then=None)  # an update of bob's subscription tracking
        machine.pipeline(drift_check="after", fault=None)
        machine.check_in_step()
    finally:
        machine.teardown()
