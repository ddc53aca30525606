"""`pipelines/shards {preview,deploy,drift-check,check,init,reshard} --stack S --shards N`: N shard stacks.

Shard `i` of `N` is the stack `<S>-shard-<i>-of-<N>` (S: --stack, $PULUMI_STACK, else dev), whose
config says `sendgrid-click-tracking:shard: "<i>/<N>"`; `init` creates the missing ones from S's
config, and `reshard` moves every account of the shard stacks of another count, with its state, into
the stacks of N (docs/sharding.md, Changing the shard count). preview, deploy and drift-check run the same
pipeline command for every shard at once, each its own `python -m pipelines` (so its own `pulumi`
and provider process), against the shared state backend, and print one output in the schema of the
other scripts (pipelines/output.schema.json): counts summed, changes, drift, state and errors of all
shards (errors prefixed with their stack), and `shards`, one entry per shard stack.

`check` (and deploy, before and after it deploys) reads every shard stack's config and state
(`pulumi config get`, `pulumi stack export`: no request to SendGrid) and reports as errors: an account
in two stacks, a shard stack of another count or whose config does not match its name, a missing
shard stack, an account recorded in a shard it does not hash into (a count change not finished),
and a stack deployed as another shard than its config says. A deploy does not start while any of
these stand.

The fleet has one source: the file the fleet's stack names (`fleetFile`), which every shard stack
names too and reads at every run. An inline fleet is refused for sharding (init creates nothing);
preview, drift-check, deploy and check fail when a shard stack reads its fleet from anywhere else,
naming the shard of each account it declares that belongs to another. preview and drift-check warn
(`diagnostics`, and stderr) when the fleet's own stack or shard stacks of another count still hold
accounts. Every pulumi command runs through `common.run_pulumi` (a timeout, and PostgreSQL's `stack ls`
made safe).

Exit codes as the other scripts: 0, 1 on any error, 2 (drift-check) when a shard drifted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_sendgrid_tracking.fleet import FLEET_FILE, FLEET_KEYS, SHARD, FleetConfigError, fleet_from_stack_config
from pulumi_sendgrid_tracking.inputs import setting_key
from pulumi_sendgrid_tracking.shards import (
    MAX_SHARDS,
    SHARD_STACK,
    Shard,
    ShardConfigError,
    account_key,
    parse_shard,
    shard_of,
)
from pulumi_sendgrid_tracking.tracking import SETTING_TYPES

from .common import (
    EXIT_DRIFT,
    EXIT_ERROR,
    EXIT_OK,
    ROOT,
    ArgumentParser,
    PipelineError,
    command_env,
    engine_env,
    failure,
    guess_option,
    help_epilog,
    project_name,
    project_path,
    run_pulumi,
    stack_name,
)
from .messages import error
from .output import COUNTS, FORMATS, Output, emit, payload
from .report import ADOPTION_TYPE, SettingState

COMMANDS = ("preview", "deploy", "drift-check", "check", "init", "reshard")
CHECK_COMMAND = "shard-check"
"""The output's `command` of `check`."""
NAMESPACE = "sendgrid-click-tracking"
README_SECTION = "docs/sharding.md, Changing the shard count"


def shard_stack(base: str, shard: Shard) -> str:
    """`prod-shard-2-of-8`."""
    return f"{base}-{shard.suffix}"


def shards_of(count: int) -> list[Shard]:
    return [Shard(index, count) for index in range(1, count + 1)]


# -- the cross-shard check (pure) -------------------------------------------------------------------


@dataclass
class StackView:
    """What the check needs of one stack: its shard config, the shard it was deployed as, its accounts."""

    name: str
    configured: str | None = None
    """`sendgrid-click-tracking:shard` in its config; None when it has none."""
    deployed: Shard | None = None
    """The stack output `shard` of its last deploy; None when it has none (not deployed, or unsharded)."""
    accounts: list[tuple[str, str, str]] = field(default_factory=list)
    """(account, setting, resource) of every setting resource in its state."""
    config: dict[str, Any] = field(default_factory=dict)
    """Its stack config (`pulumi config --json`): full key → value, objects as JSON text, secrets left out."""


def check(base: str, count: int, views: Sequence[StackView]) -> list[dict[str, Any]]:
    """Every problem of the shard stacks of `base` run as `count` shards; [] when none. Sends nothing."""
    problems: list[dict[str, Any]] = []
    names = {view.name for view in views}
    for shard in shards_of(count):
        name = shard_stack(base, shard)
        if name not in names:
            problems.append(
                error(
                    "stack",
                    f"shard {shard} has no stack: {name} does not exist, so its accounts are managed by no stack",
                    f"create it: pipelines/shards init --stack {base} --shards {count}",
                )
            )
    owners: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for view in views:
        found = SHARD_STACK.fullmatch(view.name)
        expected = Shard(int(found["index"]), int(found["count"])) if found else None
        if expected is not None and expected.count != count:
            problems.append(
                error(
                    "configuration",
                    f"{view.name} is a shard stack of {expected.count} shards, but the fleet runs as {count}: "
                    "two shard counts at once would put an account in two stacks",
                    f"finish or undo the change of the shard count ({README_SECTION}), then remove the stacks "
                    "of the other count",
                )
            )
        if expected is not None:
            if view.configured is None:
                problems.append(
                    error(
                        "configuration",
                        f"{view.name} has no {SHARD} in its config, so it would manage every account of the fleet",
                        f"pulumi config set sendgrid-click-tracking:{SHARD} {expected} --stack {view.name}",
                    )
                )
            elif view.configured != str(expected):
                problems.append(
                    error(
                        "configuration",
                        f"{view.name}'s config says {SHARD} {view.configured!r}, not {str(expected)!r} as its name",
                        f"pulumi config set sendgrid-click-tracking:{SHARD} {expected} --stack {view.name}",
                    )
                )
            if view.deployed is not None and view.deployed != expected:
                problems.append(
                    error(
                        "configuration",
                        f"{view.name} was last deployed as shard {view.deployed}, and is now configured as {expected}",
                        f"changing the shard count moves accounts between stacks; see {README_SECTION}",
                    )
                )
        for account, setting, resource in view.accounts:
            owners.setdefault((account, setting), []).append((view.name, resource))
            if (
                expected is not None
                and account != "?"
                and (home := shard_of(account, expected.count)) != expected.index
            ):
                problems.append(
                    error(
                        "configuration",
                        f"{view.name} manages {account} {setting} ({resource}), which belongs to shard "
                        f"{home}/{expected.count} ({shard_stack(base, Shard(home, expected.count))}): its next "
                        "deploy would give the account up while the other takes it over",
                        f"move it with its state (pulumi state move), as in {README_SECTION}",
                        resource=resource,
                        setting=setting,
                        account=account,
                    )
                )
    for (account, setting), held in sorted(owners.items()):
        if len({stack for stack, _ in held}) > 1:
            where = ", ".join(f"{stack} ({resource})" for stack, resource in held)
            problems.append(
                error(
                    "configuration",
                    f"{account} {setting} is in {len(held)} stacks: {where}; each would undo the other's changes, "
                    "and each recorded its own original",
                    f"keep it in the stack of its shard and remove it from the others' state; see {README_SECTION}",
                    setting=setting,
                    account=account,
                )
            )
    return problems


def view_of(name: str, configured: str | None, export: Mapping[str, Any] | None) -> StackView:
    """A StackView from a stack's shard config and its `pulumi stack export` (None: no state)."""
    view = StackView(name, configured)
    resources = ((export or {}).get("deployment") or {}).get("resources") or []
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("delete"):
            continue
        urn = str(resource.get("urn"))
        if resource.get("type") == "pulumi:pulumi:Stack":
            shard = (resource.get("outputs") or {}).get(SHARD)
            if isinstance(shard, dict):
                try:
                    view.deployed = Shard(int(shard["index"]), int(shard["count"]))
                except (KeyError, TypeError, ValueError):
                    view.deployed = None
            continue
        state = SettingState.of(urn, resource, "outputs")
        if state is not None and str(resource.get("type")) in SETTING_TYPES:
            view.accounts.append((state.account, state.setting.name, state.resource))
    return view


# -- running pulumi and the shard pipelines --------------------------------------------------------------


@dataclass
class Fleet:
    """The project, its base stack, the shard count, and the environment the commands run in."""

    project_dir: Path
    base: str
    count: int
    env: dict[str, str]

    def pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_pulumi([*args, "--non-interactive"], cwd=self.project_dir, env=command_env(args, self.env))

    def stacks(self) -> list[str]:
        """The project's stacks named `<base>` or `<base>-shard-<i>-of-<n>`, whatever n."""
        listed = self.pulumi("stack", "ls", "--json")
        if listed.returncode != 0:
            reason = " ".join(listed.stderr.split()).removeprefix("error: ") or f"exit {listed.returncode}, no message"
            raise PipelineError(
                f"could not list the stacks: {reason}", "check PULUMI_BACKEND_URL and its credentials", kind="backend"
            )
        names = [str(s.get("name", "")).rsplit("/", 1)[-1] for s in json.loads(listed.stdout or "[]")]
        return sorted(
            n
            for n in names
            if n == self.base or ((m := SHARD_STACK.fullmatch(n)) is not None and m["base"] == self.base)
        )

    def config(self, name: str) -> dict[str, Any]:
        """A stack's config (`pulumi config --json`): key → value, objects and lists as JSON text; secrets left out."""
        got = self.pulumi("config", "--json", "--stack", name)
        if got.returncode != 0:
            raise PipelineError(
                f"could not read the config of {name}: {' '.join(got.stderr.split()).removeprefix('error: ')}",
                f"check Pulumi.{name}.yaml",
                kind="configuration",
            )
        values: dict[str, Any] = {}
        for key, entry in (json.loads(got.stdout or "{}") or {}).items():
            if isinstance(entry, dict) and not entry.get("secret"):
                values[str(key)] = entry.get("value")
        return values

    def view(self, name: str, *, state: bool = True, config: bool = True) -> StackView:
        """A stack's config (unless not `config`) and the accounts in its state (unless not `state`)."""
        values = self.config(name) if config else {}
        configured = values.get(f"{NAMESPACE}:{SHARD}")
        view = view_of(name, str(configured) if configured is not None else None, self.export(name) if state else None)
        view.config = values
        return view

    def views(self, names: Sequence[str], *, state: bool = True, config: bool = True) -> list[StackView]:
        """The views of several stacks, read a few at a time (each is one or two pulumi commands)."""
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(names)))) as pool:
            return list(pool.map(lambda name: self.view(name, state=state, config=config), names))

    def export(self, name: str) -> dict[str, Any]:
        """`pulumi stack export` of one stack."""
        exported = self.pulumi("stack", "export", "--stack", name)
        if exported.returncode != 0:
            raise PipelineError(
                f"could not read the state of {name}: {exported.stderr.strip().removeprefix('error: ')}",
                None,
                kind="backend",
            )
        return dict(json.loads(exported.stdout or "{}"))

    def check(self) -> tuple[list[dict[str, Any]], int]:
        """(problems, account settings checked) of every shard stack and the base stack."""
        names = self.stacks()
        if self.base not in names:
            raise PipelineError(
                f"stack {self.base!r} not found: it keeps the fleet's config, which the shard stacks read",
                f"create it first (pulumi stack init {self.base}), with the fleet's config",
                kind="stack",
            )
        views = self.views(names)
        shard_views = [v for v in views if v.name != self.base]
        base = next(v for v in views if v.name == self.base)
        problems = self.source_problems(base, shard_views) + check(self.base, self.count, shard_views)
        if base.accounts:
            sharded = {(a, s) for v in shard_views for a, s, _ in v.accounts}
            both = sorted({(a, s) for a, s, _ in base.accounts} & sharded)
            for account, setting in both:
                problems.append(
                    error(
                        "configuration",
                        f"{account} {setting} is in the unsharded stack {self.base} and in a shard stack",
                        f"move the unsharded stack's accounts into the shards with their state; see {README_SECTION}",
                        setting=setting,
                        account=account,
                    )
                )
        return problems, sum(len(v.accounts) for v in shard_views)

    def source_problems(self, base: StackView, shard_views: Sequence[StackView]) -> list[dict[str, Any]]:
        """The problems of the fleet's one source (`fleet_source_problems`), its files read from the project."""
        return fleet_source_problems(
            self.base, self.count, base.config, shard_views, lambda path: (self.project_dir / path).read_text("utf-8")
        )

    def preview_checks(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(errors, warnings) before a preview or drift-check: the fleet's one source, and the accounts still held
        by the fleet's own stack or by shard stacks of another count (which no shard of this count plans for)."""
        names = self.stacks()
        if self.base not in names:
            raise PipelineError(
                f"stack {self.base!r} not found: it keeps the fleet's config, which the shard stacks read",
                f"create it first (pulumi stack init {self.base}), with the fleet's config",
                kind="stack",
            )
        ours = [n for n in names if n != self.base and _count_of(n) == self.count]
        others = [n for n in names if n == self.base or _count_of(n) not in (None, self.count)]
        base = self.view(self.base)
        views = [base, *self.views(ours, state=False), *self.views([n for n in others if n != self.base], config=False)]
        errors = self.source_problems(base, [v for v in views if v.name in ours])
        warnings = []
        for view in views:
            if view.name in ours or not view.accounts:
                continue
            what = "the fleet's own stack" if view.name == self.base else f"a shard stack of {_count_of(view.name)}"
            accounts = sorted({a for a, _, _ in view.accounts})
            warnings.append(
                {
                    "severity": "warning",
                    "resource": None,
                    "message": f"{view.name} ({what}) still manages {len(view.accounts)} account setting(s) of "
                    f"{len(accounts)} account(s) ({', '.join(accounts[:5])}{', ...' if len(accounts) > 5 else ''}); "
                    f"this preview of {self.count} shards plans them as new. Move them with their state first: "
                    f"pipelines/shards reshard --stack {self.base} --shards {self.count}",
                }
            )
        return errors, warnings


def _count_of(name: str) -> int | None:
    found = SHARD_STACK.fullmatch(name)
    return int(found["count"]) if found else None


def _inline(config: Mapping[str, Any]) -> list[str]:
    return [f"{NAMESPACE}:{key}" for key in FLEET_KEYS if f"{NAMESPACE}:{key}" in config]


def fleet_source_problems(
    base: str,
    count: int,
    base_config: Mapping[str, Any],
    shard_views: Sequence[StackView],
    read_text: Callable[[str], str],
) -> list[dict[str, Any]]:
    """Every way the shard stacks would not read the fleet from where `base` keeps it. Pure but for `read_text`.

    The fleet has one source: the file named by `base`'s fleetFile, which every shard stack names too
    and reads at every run. An inline fleet is refused (`shards init` would copy it into every shard
    stack once, and later edits of `base`'s config would reach none); so is a shard stack with a fleet
    of its own (inline, or another file), and each account it declares that hashes into another shard
    is named with the shard it belongs to.
    """
    problems: list[dict[str, Any]] = []
    file_key = f"{NAMESPACE}:{FLEET_FILE}"
    source = base_config.get(file_key)
    inline = _inline(base_config)
    if inline:
        problems.append(
            error(
                "configuration",
                f"{base}'s fleet is inline in its stack config ({', '.join(inline)}): a sharded fleet is read from a "
                "file, so that every shard stack reads the one the fleet's stack names, at every run",
                f"move those keys, without the `{NAMESPACE}:` prefix, into fleets/{base}.yaml; then `pulumi config "
                f"set {file_key} fleets/{base}.yaml --stack {base}` and `pulumi config rm` each of them (in every "
                f"shard stack too), and run pipelines/shards init --stack {base} --shards {count}",
            )
        )
    elif not isinstance(source, str) or not source:
        problems.append(
            error(
                "configuration",
                f"{base} names no fleet file ({file_key}), so its shard stacks have no fleet to read",
                f"pulumi config set {file_key} fleets/{base}.yaml --stack {base} (the fleet's YAML file, relative to "
                "the project)",
            )
        )
    for view in shard_views:
        found = SHARD_STACK.fullmatch(view.name)
        shard = Shard(int(found["index"]), int(found["count"])) if found else None
        own_inline = _inline(view.config)
        own_file = view.config.get(file_key)
        if not own_inline and own_file == source:
            continue
        if own_inline:
            where = "inline in its stack config"
            fix = f"pulumi config rm each of {', '.join(own_inline)} --stack {view.name}" + (
                f", then pulumi config set {file_key} {source} --stack {view.name}" if isinstance(source, str) else ""
            )
        else:
            where = f"from {own_file}" if own_file else "from nowhere (no fleetFile)"
            fix = f"pulumi config set {file_key} {source} --stack {view.name}" if isinstance(source, str) else ""
        problems.append(
            error(
                "configuration",
                f"{view.name} reads its fleet {where}, not from {source or 'the file'} that {base} names: a sharded "
                "fleet has one source",
                (fix + "; put its accounts in that file") if fix else f"name the fleet's file in {base} first",
            )
        )
        if shard is None:
            continue
        own = {k.split(":", 1)[1]: v for k, v in view.config.items() if k.startswith(f"{NAMESPACE}:")}
        own.pop(SHARD, None)  # read the fleet as an unsharded stack would: every account it declares
        try:
            entries = fleet_from_stack_config(own, read_text, namespace=NAMESPACE)
        except (FleetConfigError, OSError):
            continue  # the shard's own preview reports what is wrong with it
        region = str(view.config.get("sendgrid:region") or "global")
        misplaced = {}
        for entry in entries:
            key = account_key(entry.region or region, entry.on_behalf_of)
            if (home := shard_of(key, shard.count)) != shard.index:
                misplaced[key] = home
        for key, home in sorted(misplaced.items()):
            belongs = Shard(home, shard.count)
            problems.append(
                error(
                    "configuration",
                    f"{view.name} declares {key} ({where}), which belongs to shard {belongs} "
                    f"({shard_stack(base, belongs)}): its preview would leave it out, and no stack would manage it",
                    f"declare it in {source or 'the fleet file'}, the fleet's one source: each account goes to the "
                    "stack of its shard",
                    account=key,
                )
            )
    return problems


def _run_shard(fleet: Fleet, command: str, shard: Shard, lock: threading.Lock) -> dict[str, Any]:
    """One shard's pipeline command, in a process of its own; its output (the schema's), stderr relayed."""
    stack = shard_stack(fleet.base, shard)
    env = {**fleet.env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), fleet.env.get("PYTHONPATH")) if p)}
    env.pop("GITHUB_STEP_SUMMARY", None)  # one summary for the whole run, written by this process
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", command, "--stack", stack, "--project-dir", str(fleet.project_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    with lock:
        for line in result.stderr.splitlines():
            print(f"[{stack}] {line}", file=sys.stderr)
    try:
        data: dict[str, Any] = json.loads(result.stdout)
        if not isinstance(data, dict) or "summary" not in data:
            raise ValueError("not an output")
    except ValueError:
        data = payload(
            command,
            stack,
            "sendgrid",
            exit_code=EXIT_ERROR,
            errors=[error("internal", f"the shard's pipeline printed no output (exit {result.returncode})", None)],
        )
    return data


def combine(
    command: str, base: str, count: int, results: Sequence[tuple[Shard, Mapping[str, Any]]], project: str | None
) -> dict[str, Any]:
    """One output from the shards' outputs (the same schema), with `shards` listing each."""
    counts = dict.fromkeys(COUNTS, 0)
    changes: list[Any] = []
    drift: list[Any] = []
    state: list[Any] = []
    errors: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    entries = []
    for shard, data in results:
        stack = shard_stack(base, shard)
        for key in COUNTS:
            counts[key] += int(data["summary"].get(key, 0))
        changes += data["changes"]
        drift += data["drift"]
        state += data["state"]
        errors += [{**e, "message": f"{stack}: {e['message']}"} for e in data["errors"]]
        diagnostics += [{**d, "message": f"{stack}: {d['message']}"} for d in data["diagnostics"]]
        entries.append(_entry(stack, shard, int(data["exit_code"]), data["summary"], bool(data["errors"])))
    exit_code = (
        EXIT_ERROR if errors else (EXIT_DRIFT if any(e["exit_code"] == EXIT_DRIFT for e in entries) else EXIT_OK)
    )
    out = payload(
        command,
        base,
        "sendgrid",
        exit_code=exit_code,
        project=project,
        counts=counts,
        changes=changes,
        drift=drift,
        state=state,
        errors=errors,
        diagnostics=diagnostics,
    )
    out["shards"] = entries
    return out


def _entry(stack: str, shard: Shard, exit_code: int, summary: Mapping[str, int], failed: bool) -> dict[str, Any]:
    return {
        "stack": stack,
        "shard": str(shard),
        "ok": not failed,
        "exit_code": exit_code,
        "summary": {key: int(summary.get(key, 0)) for key in COUNTS},
    }


def run_shards(fleet: Fleet, command: str, jobs: int) -> list[tuple[Shard, dict[str, Any]]]:
    """Every shard's command at once (at most `jobs` together), in shard order."""
    lock = threading.Lock()
    shards = shards_of(fleet.count)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(shards)))) as pool:
        outputs = list(pool.map(lambda shard: _run_shard(fleet, command, shard, lock), shards))
    return list(zip(shards, outputs, strict=True))


def init(fleet: Fleet) -> list[str]:
    """Create the missing shard stacks with the base stack's config and their `shard`; the names created."""
    existing = set(fleet.stacks())
    if fleet.base not in existing:
        raise PipelineError(
            f"stack {fleet.base!r} not found: its config is what the shard stacks start from",
            f"create it first (pulumi stack init {fleet.base}), with the fleet's config",
            kind="stack",
        )
    refused = fleet_source_problems(fleet.base, fleet.count, fleet.config(fleet.base), [], lambda path: "")
    if refused:  # nothing is created from a fleet the shard stacks could not read from its one source
        raise PipelineError(refused[0]["message"], refused[0]["hint"], kind="configuration")
    created = []
    for shard in shards_of(fleet.count):
        name = shard_stack(fleet.base, shard)
        if name not in existing:
            made = fleet.pulumi("stack", "init", name, "--copy-config-from", fleet.base, "--no-select")
            if made.returncode != 0:
                raise PipelineError(f"could not create {name}: {made.stderr.strip()}", None, kind="backend")
            created.append(name)
        fleet.pulumi("config", "set", f"sendgrid-click-tracking:{SHARD}", str(shard), "--stack", name)
    return created


def _account_of(resource: Mapping[str, Any]) -> str | None:
    """The account of a setting resource or an adoption record, from its outputs; None for anything else."""
    kind = str(resource.get("type"))
    if kind not in SETTING_TYPES and kind != ADOPTION_TYPE:
        return None
    outputs = resource.get("outputs") or resource.get("inputs") or {}
    region, who = outputs.get("region"), outputs.get("on_behalf_of")
    if not isinstance(region, str):
        return None
    return account_key(region, who if isinstance(who, str) and who else None)


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 - Pulumi's marker, not a secret
"""How a state export marks a secret value (encrypted for its own stack: never copied across by hand)."""
PROVIDER_TYPE = "pulumi:providers:pulumi-python"


def _resources(export: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in (export.get("deployment") or {}).get("resources") or [] if isinstance(r, dict)]


def _rewrite(value: Any, source: str, dest: str) -> Any:
    """Every URN of `source` in a resource's JSON, made a URN of `dest` (`urn:pulumi:<stack>::...`)."""
    if isinstance(value, str):
        return value.replace(f"urn:pulumi:{source}::", f"urn:pulumi:{dest}::")
    if isinstance(value, list):
        return [_rewrite(v, source, dest) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, source, dest) for k, v in value.items()}
    return value


class _Mover:
    """Moves resources between two stacks of the project, with `pulumi state move` or, when the destination
    already has its own default provider (which `state move` refuses, since the providers' inputs, the whole
    stack config, differ), by splicing the exported states: destination first, then the source."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def export(self, stack: str) -> dict[str, Any]:
        return self.fleet.export(stack)

    def write(self, stack: str, export: Mapping[str, Any]) -> None:
        # A private file (mode 0600), removed at once: a state holds every resource's inputs.
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as handle:
            json.dump(export, handle)
        try:
            imported = self.fleet.pulumi("stack", "import", "--stack", stack, "--file", handle.name)
        finally:
            os.unlink(handle.name)
        if imported.returncode != 0:
            raise PipelineError(
                f"could not write the state of {stack}: {imported.stderr.strip()}", None, kind="backend"
            )

    def move(self, source: str, dest: str, urns: list[str]) -> None:
        target = self.export(dest)
        provider = next((r for r in _resources(target) if str(r.get("type")) == PROVIDER_TYPE), None)
        if provider is None:
            moved = self.fleet.pulumi("state", "move", "--source", source, "--dest", dest, "--yes", *urns)
            if moved.returncode != 0:
                raise PipelineError(
                    f"could not move {len(urns)} resource(s) from {source} to {dest}: {moved.stderr.strip()}",
                    None,
                    kind="backend",
                )
            return
        origin = self.export(source)
        wanted = set(urns)
        moving = [r for r in _resources(origin) if r.get("urn") in wanted]
        if any(SECRET_SIG in json.dumps(r) for r in moving):
            raise PipelineError(
                f"a resource to move from {source} to {dest} holds a secret, which only its own stack can read",
                "move it by hand (pulumi state move into a stack without resources, then pulumi stack rename)",
                kind="backend",
            )
        there = {str(r.get("urn")) for r in _resources(target)}
        root = next(str(r["urn"]) for r in _resources(target) if r.get("type") == "pulumi:pulumi:Stack")
        reference = f"{provider['urn']}::{provider['id']}"
        for resource in moving:
            copy = _rewrite(resource, source, dest)
            if copy["urn"] in there:  # an interrupted earlier move already wrote it
                continue
            copy["parent"] = root
            copy["provider"] = reference
            target["deployment"]["resources"].append(copy)
        self.write(dest, target)
        origin["deployment"]["resources"] = [r for r in _resources(origin) if r.get("urn") not in wanted]
        self.write(source, origin)


LEDGER_TYPE = "pulumi-python:dynamic/sendgrid:Originals"
"""The stack's originals ledger: its entries of the moved accounts go with them."""


def _ledger(export: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((r for r in _resources(export) if r.get("type") == LEDGER_TYPE), None)


def _setting_key(resource: Mapping[str, Any]) -> str | None:
    setting = SETTING_TYPES.get(str(resource.get("type")))
    outputs = resource.get("outputs") or resource.get("inputs") or {}
    region, who = outputs.get("region"), outputs.get("on_behalf_of")
    if setting is None or not isinstance(region, str):
        return None
    return setting_key(setting.name, region, who if isinstance(who, str) and who else None)


def _without_dependency(resource: dict[str, Any], urn: str) -> None:
    resource["dependencies"] = [d for d in resource.get("dependencies") or [] if d != urn]
    for name, deps in (resource.get("propertyDependencies") or {}).items():
        resource["propertyDependencies"][name] = [d for d in deps if d != urn]


def _detach(mover: _Mover, source: str, urns: list[str]) -> None:
    """Drop the moving settings' dependency on the source's ledger, so a move never leaves one dangling."""
    export = mover.export(source)
    ledger = _ledger(export)
    if ledger is None:
        return
    wanted = set(urns)
    moving = [
        r for r in _resources(export) if r.get("urn") in wanted and ledger["urn"] in (r.get("dependencies") or [])
    ]
    for resource in moving:
        _without_dependency(resource, str(ledger["urn"]))
    if moving:
        mover.write(source, export)


def _carry_ledger(mover: _Mover, source: str, dest: str, keys: set[str]) -> None:
    """The moved accounts' ledger entries, from the source's ledger into the destination's (created as a
    copy when it has none), and each moved setting depending on it again, as the program declares it."""
    origin = mover.export(source)
    old = _ledger(origin)
    if old is None or not keys:
        return
    entries = {k: v for k, v in ((old.get("outputs") or {}).get("entries") or {}).items() if k in keys}
    accounts = {k: v for k, v in ((old.get("inputs") or {}).get("accounts") or {}).items() if k in keys}
    target = mover.export(dest)
    ledger = _ledger(target)
    resources = target["deployment"]["resources"]
    if ledger is None:
        ledger = _rewrite(old, source, dest)
        ledger["inputs"] = {**(ledger.get("inputs") or {}), "accounts": {}}
        ledger["outputs"] = {k: v for k, v in (ledger.get("outputs") or {}).items() if k != "accounts"}
        ledger["outputs"]["entries"] = {}
        root = next((r for r in resources if r.get("type") == "pulumi:pulumi:Stack"), None)
        provider = next((r for r in resources if r.get("type") == PROVIDER_TYPE), None)
        if root is not None:
            ledger["parent"] = root["urn"]
        if provider is not None:
            ledger["provider"] = f"{provider['urn']}::{provider['id']}"
        first = next((i for i, r in enumerate(resources) if r.get("type") in SETTING_TYPES), len(resources))
        resources.insert(first, ledger)
    ledger.setdefault("inputs", {}).setdefault("accounts", {}).update(accounts)
    ledger.setdefault("outputs", {}).setdefault("entries", {}).update(entries)
    for resource in resources:
        if _setting_key(resource) in keys and ledger["urn"] not in (resource.get("dependencies") or []):
            resource["dependencies"] = [*(resource.get("dependencies") or []), ledger["urn"]]
    mover.write(dest, target)
    # The outputs' `accounts` too: a ledger last written by an earlier 0.3.0 kept a copy there.
    for part, name in (("inputs", "accounts"), ("outputs", "accounts"), ("outputs", "entries")):
        kept = (old.get(part) or {}).get(name)
        if isinstance(kept, dict):
            old[part][name] = {k: v for k, v in kept.items() if k not in keys}
    if not (old.get("outputs") or {}).get("entries"):  # emptied: no setting depends on it any more
        origin["deployment"]["resources"] = [r for r in _resources(origin) if r is not old]
    mover.write(source, origin)


def reshard(fleet: Fleet) -> list[str]:
    """Move every account of the shard stacks of another count (or of the unsharded stack), with its state,
    into the stacks of `fleet.count`.

    Each account's setting resources and adoption records go together (no request to SendGrid, nothing
    given up, the originals kept) into `<base>-shard-<j>-of-<count>`, j its shard of the new count; the
    old shard stacks, then empty, are removed (the fleet's own stack stays, empty). Run it with no other
    run of these stacks going on; if it is interrupted, run it again (an account written to its new
    stack and not yet removed from the old one is taken from the old one then). Returns what it did,
    one line each.
    """
    stacks = fleet.stacks()
    mover = _Mover(fleet)
    old = [n for n in stacks if (m := SHARD_STACK.fullmatch(n)) is not None and int(m["count"]) != fleet.count]
    counts = {int(m["count"]) for n in old if (m := SHARD_STACK.fullmatch(n)) is not None}
    if fleet.base in stacks and any(_account_of(r) for r in _resources(mover.export(fleet.base))):
        old.insert(0, fleet.base)  # sharding a fleet its own stack managed until now
    if not old:
        raise PipelineError(
            f"no account to move: neither {fleet.base} nor shard stacks of another count than {fleet.count} manage any",
            f"pipelines/shards check --stack {fleet.base} --shards {fleet.count}",
            kind="stack",
        )
    if len(counts) > 1:
        raise PipelineError(
            f"shard stacks of {len(counts)} counts ({', '.join(map(str, sorted(counts)))}) besides {fleet.count}: "
            "an earlier change of the count was not finished",
            "finish that one first (pipelines/shards reshard with its count), then this one",
            kind="stack",
        )
    done = [f"created {name}" for name in init(fleet)]
    for source in old:
        moves: dict[str, list[str]] = {}
        for resource in _resources(mover.export(source)):
            account = _account_of(resource)
            if account is not None:
                dest = shard_stack(fleet.base, Shard(shard_of(account, fleet.count), fleet.count))
                moves.setdefault(dest, []).append(str(resource["urn"]))
        for dest, urns in sorted(moves.items()):
            keys = {k for r in _resources(mover.export(source)) if r.get("urn") in set(urns) and (k := _setting_key(r))}
            _detach(mover, source, urns)
            mover.move(source, dest, urns)
            _carry_ledger(mover, source, dest, keys)
            done.append(f"moved {len(urns)} resource(s) from {source} to {dest}")
        if any(_account_of(r) for r in _resources(mover.export(source))):
            raise PipelineError(f"{source} still manages accounts after the move", None, kind="backend")
        if source == fleet.base:
            continue  # the fleet's own stack stays: its config is what the shard stacks start from
        # Only the stack and its default provider are left: nothing is given up by removing it.
        removed = fleet.pulumi("stack", "rm", source, "--yes", "--force")
        if removed.returncode != 0:
            raise PipelineError(f"could not remove {source}: {removed.stderr.strip()}", None, kind="backend")
        done.append(f"removed {source}")
    return done


# -- the command line ----------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        return parse_shard(f"1/{text}", "--shards").count
    except ShardConfigError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of shards from 1 to {MAX_SHARDS}") from exc


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="pipelines/shards",
        description=__doc__,
        epilog=help_epilog(
            [
                (EXIT_OK, "success: every shard ran (drift-check: no shard drifted; check: no problem found)"),
                (EXIT_DRIFT, "drift-check: a shard drifted"),
                (EXIT_ERROR, "an error in any shard, a cross-shard problem (check), or bad arguments"),
            ],
            emulator=False,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, help="what to run on the shard stacks (see above)")
    parser.add_argument(
        "--stack", help="the fleet's stack; its shards are <stack>-shard-<i>-of-<n> (default: $PULUMI_STACK, else dev)"
    )
    parser.add_argument("--shards", type=_count, required=True, help=f"how many shard stacks, 1 to {MAX_SHARDS}")
    parser.add_argument("--jobs", type=int, default=0, help="shards run at once (default: all)")
    parser.add_argument("--project-dir", help="the Pulumi project (default: $PULUMI_PROJECT_DIR, else this repository)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="stdout: the combined JSON output (default) or its Markdown summary; the Markdown summary is also "
        "appended to $GITHUB_STEP_SUMMARY when that is set",
    )
    parser.add_argument(
        "--markdown-file",
        metavar="PATH",
        help="also write the Markdown summary to PATH (for a pull request comment), whatever --format says",
    )
    return parser


def _output_command(command: str | None) -> str | None:
    return CHECK_COMMAND if command in ("check", "init", "reshard") else command


def main(argv: list[str] | None = None, *, runner: Callable[..., Any] = run_shards) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    output = Output(guess_option(argv, "--format", FORMATS) or "json", guess_option(argv, "--markdown-file"))
    stack = guess_option(argv, "--stack") or os.environ.get("PULUMI_STACK") or "dev"
    project = project_name(project_path(guess_option(argv, "--project-dir")))
    try:
        args = _parser().parse_args(argv)
        stack = stack_name(args.stack)
        fleet = Fleet(project_path(args.project_dir), stack, args.shards, engine_env())
        output = Output(args.format, args.markdown_file)
        return _main(fleet, args.command, args.jobs or args.shards, output, project, runner)
    except Exception as exc:  # a bad input or a bug here: either way the documented output
        errors = [failure(exc)]
        emit(
            payload(_output_command(command), stack, "sendgrid", exit_code=EXIT_ERROR, project=project, errors=errors),
            output,
        )
        return EXIT_ERROR


def _main(
    fleet: Fleet, command: str, jobs: int, output: Output, project: str | None, runner: Callable[..., Any]
) -> int:
    if command == "reshard":
        for line in reshard(fleet):
            print(line, file=sys.stderr)
        command = "check"
    if command == "init":
        created = init(fleet)
        print(f"created: {', '.join(created) or 'none (all shard stacks exist)'}", file=sys.stderr)
        command = "check"
    if command == "check":
        problems, checked = fleet.check()
        out = payload(
            CHECK_COMMAND,
            fleet.base,
            "sendgrid",
            exit_code=EXIT_ERROR if problems else EXIT_OK,
            project=project,
            counts={"checked": checked},
            errors=problems,
        )
        emit(out, output)
        return int(out["exit_code"])
    if command == "deploy":
        problems, _ = fleet.check()
        if problems:  # nothing is deployed while an account could end up in two stacks
            emit(
                payload("deploy", fleet.base, "sendgrid", exit_code=EXIT_ERROR, project=project, errors=problems),
                output,
            )
            return EXIT_ERROR
    warnings: list[dict[str, Any]] = []
    if command in ("preview", "drift-check"):
        problems, warnings = fleet.preview_checks()
        for warning in warnings:
            print(f"warning: {warning['message']}", file=sys.stderr)
        if problems:  # a shard reading another fleet would plan what the fleet does not say
            emit(
                payload(
                    command,
                    fleet.base,
                    "sendgrid",
                    exit_code=EXIT_ERROR,
                    project=project,
                    errors=problems,
                    diagnostics=warnings,
                ),
                output,
            )
            return EXIT_ERROR
    out = combine(command, fleet.base, fleet.count, runner(fleet, command, jobs), project)
    out["diagnostics"] = warnings + out["diagnostics"]
    if command == "deploy":
        after, _ = fleet.check()
        if after:
            out["errors"] += after
            out["ok"], out["exit_code"] = False, EXIT_ERROR
    emit(out, output)
    return int(out["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
