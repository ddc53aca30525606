"""What every pipeline command shares: where it runs (SendGrid or the emulator), the stack, the CLI.

SendGrid mode (the default): SENDGRID_API_KEY must be set and non-empty (from the pipeline's
secrets; a missing secret is an error, never a silent switch to the emulator), and the state
backend is PULUMI_BACKEND_URL (s3://, azblob://, gs://, file://) or Pulumi Cloud
(PULUMI_ACCESS_TOKEN). The stack must already exist there.
Emulator mode (only with --emulator): the local emulator, persisted with `make demo`'s world in
<project>/.pulumi-state/, with a local file backend there whatever PULUMI_BACKEND_URL says. The
stack must have a Pulumi.<stack>.yaml; it is created in the local backend if missing. Pulumi
reads (and may write, e.g. its `encryptionsalt`) a copy of that file kept in .pulumi-state/, so
no run changes a tracked file. Nothing can send a request anywhere but the emulator: the copy
leaves out the stack config that names a host or a key (`sendgrid:baseUrl`, `sendgrid:euBaseUrl`,
`sendgrid:apiKey`; a warning says so), the environment loses every SENDGRID_* variable and every
proxy variable (`*_proxy`, any case), and a Pulumi.yaml that sets one of those keys for every
stack is refused.
Output: see output.py and output.schema.json.

Every `pulumi` command these scripts (and tools/, bench/) start goes through `run_pulumi`: under a
timeout (PIPELINES_PULUMI_TIMEOUT seconds; by default an hour for preview/up/refresh/destroy and
5 minutes for the rest), stopped with its whole process group when it runs out, killed when the
script itself dies (SIGKILL of the script, a CI runner's cancel: see `_die_with_parent`), and with
the PostgreSQL backend's `stack ls` deadlock avoided (see `backend_env`).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version
from pulumi_sendgrid_tracking.config import SOURCES
from pulumi_sendgrid_tracking.shards import SHARD_STACK
from pulumi_sendgrid_tracking.stack_config import split_key

from .backend import backend_name, scheme_problem, stack_lookup_failed
from .messages import error

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2
DEMO_PASSPHRASE = "demo-passphrase-not-a-secret"  # noqa: S105 - the documented demo passphrase
EMULATOR_KEY = "SG.emulator-local-dev-key"  # the emulator's default key, not a real one
CONFIG_COMMANDS = frozenset({"preview", "up", "refresh", "destroy"})
"""The pulumi commands that read the stack config (and so take --config-file)."""
ENGINE_RUNS = frozenset({"preview", "up", "update", "refresh", "destroy", "import"})
"""The pulumi commands that run the program or the providers: they may take long on a big stack."""
TIMEOUT_ENV = "PIPELINES_PULUMI_TIMEOUT"
ENGINE_RUN_TIMEOUT = 3600.0
"""Seconds: a `pulumi up` of a few hundred account settings takes minutes; an hour means it is stuck."""
STATE_TIMEOUT = 300.0
"""Seconds for the rest (stack ls, stack export/import, config, state move, stack init/rm): reads and writes
of the state backend that take seconds."""
LOCKING_RUNS = frozenset({"up", "update", "refresh", "destroy", "import"})
# Emulator mode never uses these from the caller's environment: they point at real state or accounts.
REAL_WORLD = ("PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_HOME")
REAL_HOSTS = ("base_url", "eu_base_url", "api_key")
"""The provider settings (config.SOURCES) that name a SendGrid host or key: emulator mode uses the emulator's."""


class PipelineError(Exception):
    """A problem the pipeline reports as one error (message and hint) and exits 1 for."""

    def __init__(self, message: str, hint: str | None = None, *, kind: str = "configuration") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.kind = kind


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a mistake is a PipelineError (exit 1 and the JSON output), not exit 2 and usage text."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()[1:])
        raise PipelineError(f"bad arguments: {message}", f"usage: {usage}", kind="arguments")


ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("SENDGRID_API_KEY", "the SendGrid API key (required without --emulator; never printed)"),
    ("PULUMI_BACKEND_URL", "the state backend: s3://, azblob://, gs://, postgres://, file:// ..."),
    ("PULUMI_ACCESS_TOKEN", "... or Pulumi Cloud (one of the two is required without --emulator)"),
    ("PULUMI_CONFIG_PASSPHRASE", "the passphrase of a stack whose secrets use one (or PULUMI_CONFIG_PASSPHRASE_FILE)"),
    ("PULUMI_STACK", "the stack when --stack is not given (default: dev)"),
    ("PULUMI_PROJECT_DIR", "the project when --project-dir is not given (default: this repository)"),
    ("GITHUB_STEP_SUMMARY", "a file the Markdown summary is appended to (GitHub Actions sets it)"),
    ("PATH", "where `pulumi` is found; else the one `make engine` built, in PULUMI_ENGINE_CACHE"),
    ("", "(default: $XDG_CACHE_HOME or ~/.cache, then sendgrid-click-tracking/pulumi-v<version>)"),
    ("PIPELINE_PYTHON", "the Python the wrapper scripts run (default: <repository>/.venv/bin/python)"),
    ("SENDGRID_REGION ...", "the provider's settings where stack config does not set them (SENDGRID_BASE_URL, ...)"),
    ("", "and what the Pulumi CLI and the backend read (e.g. AWS_* for s3://)"),
)
"""What the pipeline scripts read from the environment, for their --help."""


def help_epilog(exit_codes: Sequence[tuple[int, str]], *, emulator: bool = True) -> str:
    """The part of a script's --help after the options: its output, the environment it reads, its exit codes."""
    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = [
        "output:",
        "  one JSON document on stdout (pipelines/output.schema.json), or its Markdown summary with",
        "  --format markdown; a short human summary on stderr. Errors too: never a traceback.",
        "",
        "environment:",
        *(
            f"  {name:<{width}}  {meaning if emulator else meaning.replace(' without --emulator', '')}"
            for name, meaning in ENVIRONMENT
        ),
    ]
    if emulator:
        lines += [
            "  With --emulator, SENDGRID_* and PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE_FILE",
            "  and PULUMI_HOME are ignored: the local emulator and a file backend in <project>/.pulumi-state are used.",
        ]
    lines += ["", "exit codes:", *(f"  {code}  {meaning}" for code, meaning in exit_codes)]
    return "\n".join(lines) + "\n"


def failure(exc: Exception) -> dict[str, Any]:
    """The output's error for an exception that ended a script: a PipelineError as it says, anything else as a
    bug in pipelines/ with the traceback in `details` (call it inside the `except`)."""
    if isinstance(exc, PipelineError):
        return error(exc.kind, exc.message, exc.hint)
    return error(
        "internal",
        f"the pipeline itself failed: {exc.__class__.__name__}: {exc}",
        "this is a bug in pipelines/; report it with this output (the traceback is in `details`)",
        details=traceback.format_exc().splitlines()[-20:],
    )


def guess_option(argv: Sequence[str], option: str, allowed: tuple[str, ...] | None = None) -> str | None:
    """An option's value read before parsing, for the output of a run whose arguments are bad."""
    for index, arg in enumerate(argv):
        found = arg.split("=", 1)[1] if arg.startswith(f"{option}=") else None
        if arg == option and index + 1 < len(argv):
            found = argv[index + 1]
        if found is not None and (allowed is None or found in allowed):
            return found
    return None


def pulumi_timeout(args: Sequence[str], env: Mapping[str, str]) -> float:
    """How long `pulumi <args>` may run: PIPELINES_PULUMI_TIMEOUT (seconds) if set, else by its kind."""
    raw = env.get(TIMEOUT_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise PipelineError(
                f"{TIMEOUT_ENV} is {raw!r}, not a number of seconds above 0",
                f"set it to the longest any one pulumi command may run, e.g. {TIMEOUT_ENV}=7200, or unset it",
            )
        return value
    return ENGINE_RUN_TIMEOUT if args and args[0] in ENGINE_RUNS else STATE_TIMEOUT


def backend_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a pulumi command, with the PostgreSQL backend's deadlock avoided.

    Pulumi's postgres:// backend (3.260 to 3.277 at least) lists a stack's files with a query whose
    rows stay open while it runs a second query per row, from a pool of 2 * GOMAXPROCS connections;
    `pulumi stack ls` does that for up to PULUMI_DIY_BACKEND_PARALLEL (10) stacks at once, so with as
    many stacks as the pool has connections every worker holds one and waits for another, for ever
    (docs/upstream-postgres-stack-ls.md). One stack at a time needs at most 2, which every pool has.
    """
    out = dict(env)
    if out.get("PULUMI_BACKEND_URL", "").startswith(("postgres://", "postgresql://")):
        out["PULUMI_DIY_BACKEND_PARALLEL"] = "1"
    return out


def command_env(args: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """`env` for the scripts' `pulumi <args>`: for a preview, `PULUMI_SKIP_CHECKPOINTS=true` unless it is set.

    A preview persists nothing (the engine hands its snapshot to a persister that discards it), yet the
    engine serializes and checks the whole state after every step, so a preview's time grows with the
    square of the stack's size (docs/upstream-preview-checkpoints.md). Without checkpoints it builds the
    snapshot once, at the end. Never for `up`, `refresh` or `destroy`: their checkpoints are what an
    interrupted run resumes from (the originals ledger is saved before any setting changes). Not in
    `run_pulumi`: the tests' projects run `pulumi` as a user does.
    """
    out = dict(env)
    if args and args[0] == "preview":
        out.setdefault("PULUMI_SKIP_CHECKPOINTS", "true")
    return out


def run_pulumi(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str | None = None,
    timeout: float | None = None,
    program: str = "pulumi",
) -> subprocess.CompletedProcess[str]:
    """`pulumi <args>` (stdout and stderr captured as text), stopped when it runs longer than its timeout.

    Raises PipelineError naming the command, how long it waited and what to do when the timeout
    (`timeout`, else `pulumi_timeout`) runs out; the command and everything it started (language
    host, providers) is stopped first (`_stop`). Ctrl-C stops it the same way.
    """
    limit = timeout if timeout is not None else pulumi_timeout(args, env)
    started = time.monotonic()
    proc = subprocess.Popen(
        [program, *args],
        cwd=cwd,
        env=backend_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: stopped with everything it started
        preexec_fn=_die_with_parent(),  # noqa: PLW1509 - one pre-resolved libc call, no lock (see there)
    )
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        waited = time.monotonic() - started
        _stop(proc)
        raise _timed_out(args, env, waited) from None
    except BaseException:  # Ctrl-C or a signal: no pulumi is left behind
        _stop(proc)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _die_with_parent() -> Callable[[], None] | None:
    """For the child, between fork and exec: SIGKILL it when this process dies (Linux's parent-death signal).

    pulumi runs in a process group of its own (so `_stop` reaches everything it started), which a kill of
    this script's group no longer reaches: without this, a killed `pipelines/deploy` would leave its
    `pulumi up` running unwatched, still sending requests while the user recovers the stack. Killed, the
    engine's plugins stop with it (tools/engine/plugin_guard.py), as when the group was killed. None where
    prctl(2) is not available. The function is resolved here, so the child only makes one libc call and
    takes no lock another thread could hold (preexec_fn's hazard with threads: `shards` runs several pulumi
    at once). The signal comes when the thread that started the child ends; run_pulumi waits for the child
    in that thread, so that is never before it returns.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # died before the call: no signal will come
            os._exit(1)

    return die_with_parent


PR_SET_PDEATHSIG = 1


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop pulumi and everything it started: SIGINT first (Pulumi cancels gracefully and releases its lock when
    it can), then SIGTERM, then SIGKILL, 5 s apart, to the whole process group."""
    for sig, grace in ((signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    for pipe in (proc.stdout, proc.stderr):  # a process that left the group still holds them
        if pipe is not None:
            pipe.close()
    proc.wait(timeout=5.0)


def _timed_out(args: Sequence[str], env: Mapping[str, str], waited: float) -> PipelineError:
    shown = " ".join(a for a in args if a != "--non-interactive")
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    stack = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--stack"), None)
    slow = "the stack is big" if args and args[0] in ENGINE_RUNS else "it is only slow"
    what = (
        f"check that the state backend answers; if {slow}, allow more with {TIMEOUT_ENV}=<seconds>; then run this again"
    )
    if args and args[0] in LOCKING_RUNS:
        cancel = f"`pulumi cancel --stack {stack} --yes`" if stack else "`pulumi cancel --yes`"
        what += f". The stopped run may have left the stack's lock: with no other run going on, {cancel} first"
    return PipelineError(
        f"`pulumi {shown}` did not finish in {waited:.0f} s, so it was stopped (state backend {backend_name(env)})",
        what,
        kind="engine",
    )


@dataclass
class Run:
    """One pipeline command's environment."""

    project_dir: Path
    stack: str
    mode: str
    env: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    """The stack config file Pulumi reads instead of <project>/Pulumi.<stack>.yaml (emulator mode)."""
    warnings: list[str] = field(default_factory=list)
    """What the run's output lists as warnings before the engine's (e.g. stack config emulator mode ignored)."""

    @property
    def project_name(self) -> str | None:
        return project_name(self.project_dir)

    def pulumi(self, *args: str, stack: bool = True) -> subprocess.CompletedProcess[str]:
        config = ["--config-file", str(self.config_file)] if self.config_file and args[0] in CONFIG_COMMANDS else []
        return run_pulumi(
            [*args, *(["--stack", self.stack] if stack else []), *config, "--non-interactive"],
            cwd=self.project_dir,
            env=command_env(args, self.env),
        )

    def pulumi_json(self, *args: str) -> tuple[int, dict[str, Any], str]:
        """Run a `--json` command: (exit code, parsed stdout or {}, stderr)."""
        result = self.pulumi(*args, "--json")
        try:
            data = json.loads(result.stdout) if result.stdout.strip() else {}
        except ValueError:
            data = {}
        return result.returncode, data if isinstance(data, dict) else {}, result.stderr


def events_of(stdout: str) -> list[dict[str, Any]]:
    """The engine events of `pulumi up --json` (one JSON object per line)."""
    events = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def pinned_version() -> str:
    """The Pulumi engine release this repository pins (tools/engine/version.txt), e.g. `3.277.0`."""
    return (ROOT / "tools" / "engine" / "version.txt").read_text().strip()


def supported_range() -> SpecifierSet:
    """The Pulumi releases these pipelines accept as the CLI: the package's own `pulumi` range (pyproject.toml,
    e.g. `>=3.260.0,<4`), defined there once and tested at both ends (tests/e2e/test_package.py)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    [pulumi] = [r for r in map(Requirement, project["dependencies"]) if r.name == "pulumi"]
    return pulumi.specifier


def describe(supported: SpecifierSet) -> str:
    """A range as people write it, the floor first: `>=3.260.0,<4`."""
    return ",".join(sorted(map(str, supported), key=lambda spec: not spec.startswith(">")))


def _in_range(said: str, supported: SpecifierSet) -> bool:
    """Whether `pulumi version`'s answer (`v3.277.0`) is a release in the supported range."""
    try:
        return supported.contains(Version(said.removeprefix("v")), prereleases=True)
    except InvalidVersion:
        return False


def _with_engine_on_path(env: dict[str, str]) -> dict[str, str]:
    """Use `pulumi` from PATH, else the one `make engine` built (same cache path as the Makefile).

    Raises PipelineError when the `pulumi` found is not a release in the supported range (one outside it
    may plan differently, or write a state the supported ones cannot read back) or cannot say its version.
    """
    version = pinned_version()
    supported = supported_range()
    wanted = describe(supported)
    cache = Path(
        env.get("PULUMI_ENGINE_CACHE")
        or f"{env.get('XDG_CACHE_HOME') or Path.home() / '.cache'}/sendgrid-click-tracking/pulumi-v{version}"
    )
    installer = f"`curl -fsSL https://get.pulumi.com | sh -s -- --version {version}`"
    found = shutil.which("pulumi", path=env.get("PATH"))
    if found is None:
        if not (cache / "bin" / "pulumi").exists():
            raise PipelineError(
                f"no `pulumi` on PATH and none in {cache}/bin",
                f"install the Pulumi CLI {version} (the official installer: {installer}) and put it on PATH, "
                f"or run `make engine` (it builds {version} from Go modules there)",
            )
        env = {**env, "PATH": f"{cache}/bin{os.pathsep}{env.get('PATH', '')}"}
        found = str(cache / "bin" / "pulumi")
    try:
        answer = run_pulumi(["version"], env=env, timeout=60, program=found)
        said = (answer.stdout.strip() or answer.stderr.strip()).splitlines()
        running = said[0][:80] if said else f"a program that exits {answer.returncode} to `pulumi version`"
    except OSError as exc:
        running = f"unusable ({exc.__class__.__name__})"
    except PipelineError:
        running = "unusable (no answer to `pulumi version` in 60 s)"
    if not _in_range(running, supported):
        cached = (cache / "bin" / "pulumi").exists()
        built = ("" if cached else "run `make engine`, then ") + f"export PATH={cache}/bin:$PATH"
        raise PipelineError(
            f"`pulumi` on PATH ({found}) is {running}, and these pipelines need a Pulumi CLI in {wanted} "
            "(the package's range in pyproject.toml): a release outside it is untested here, and may plan "
            "differently or write a state the supported ones cannot read",
            f"put a Pulumi CLI in {wanted} first on PATH, e.g. the pinned {version}: the official installer "
            f"({installer}), or the one built from Go modules ({built})",
        )
    return env


def engine_env() -> dict[str, str]:
    """The environment every pipeline runs pulumi in: this process's, the pinned engine on PATH, no update check,
    and the program run for refresh and destroy too (so a key rotated in stack config is used at once)."""
    return _with_engine_on_path({**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_RUN_PROGRAM": "true"})


def shard_counts(project: Path, stack: str) -> list[int]:
    """The shard counts of the shard stacks of `stack` that have a config file (`Pulumi.<stack>-shard-<i>-of-<n>.yaml`
    beside the stack's own): [] when `stack` is not a sharded fleet's own stack. Reads files only."""
    config = stack_config_path(project, stack)
    base = stack.rsplit("/", 1)[-1]
    counts = set()
    for path in config.parent.glob(f"Pulumi.{base}-shard-*-of-*.yaml"):
        found = SHARD_STACK.fullmatch(path.name[len("Pulumi.") : -len(".yaml")])
        if found is not None and found["base"] == base:
            counts.add(int(found["count"]))
    return sorted(counts)


def refuse_sharded_fleet(project: Path, stack: str, command: str) -> None:
    """Raise PipelineError when `stack` is a sharded fleet's own stack: its accounts belong to its shard stacks.

    A plain deploy of it would declare every account of the fleet a second time (each adopted again, with
    the shard stacks' values recorded as originals); a preview or drift-check of it shows that plan.
    """
    counts = shard_counts(project, stack)
    if not counts:
        return
    count = counts[-1] if len(counts) == 1 else None
    shards = f"--shards {count}" if count else f"--shards <{' or '.join(map(str, counts))}>"
    files = f"Pulumi.{stack.rsplit('/', 1)[-1]}-shard-*-of-*.yaml"
    raise PipelineError(
        f"stack {stack!r} is a sharded fleet's own stack ({files} beside its config, "
        f"{' and '.join(map(str, counts))} shards): its accounts are managed by its shard stacks, and a plain "
        f"{command} of it would take every account of the fleet a second time",
        f"run pipelines/shards {command} --stack {stack} {shards} instead (README, Big fleets and sharding)",
        kind="stack",
    )


def project_name(project: Path) -> str | None:
    """The Pulumi project's name (Pulumi.yaml), or None when it cannot be read."""
    try:
        settings = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    name = settings.get("name") if isinstance(settings, dict) else None
    return name if isinstance(name, str) else None


def project_path(project_dir: str | None) -> Path:
    """The project directory: --project-dir, else PULUMI_PROJECT_DIR, else this repository."""
    return Path(project_dir or os.environ.get("PULUMI_PROJECT_DIR") or ROOT).resolve()


def stack_name(stack: str | None) -> str:
    """The stack: --stack, else PULUMI_STACK, else dev."""
    return stack or os.environ.get("PULUMI_STACK") or "dev"


def stack_config_path(project: Path, stack: str) -> Path:
    """Where Pulumi looks for a stack's config: Pulumi.<stack>.yaml beside Pulumi.yaml, or in its stackConfigDir."""
    try:
        settings = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"{project}: no readable Pulumi.yaml ({exc})", "check --project-dir") from None
    config_dir = settings.get("stackConfigDir") if isinstance(settings, dict) else None
    name = stack.rsplit("/", 1)[-1]  # org/project/stack names the same file
    return project / (config_dir or "") / f"Pulumi.{name}.yaml"


def _known_stacks(project: Path, stack: str) -> str:
    found = sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in stack_config_path(project, stack).parent.glob("Pulumi.*.yaml")
    )
    return ", ".join(found) or "none"


def _sendgrid(project: Path, name: str, env: dict[str, str]) -> Run:
    if not env.get("SENDGRID_API_KEY", "").strip():
        raise PipelineError(
            "SENDGRID_API_KEY is not set or is empty",
            "add the secret SENDGRID_API_KEY (a SendGrid API key with the read and update scopes of the "
            "tracking settings the stack manages, e.g. tracking_settings.click.read and .update) to this "
            "pipeline's environment. To run against the local emulator instead, pass --emulator.",
        )
    if problem := scheme_problem(env):
        raise PipelineError(*problem, kind="backend")
    if not env.get("PULUMI_BACKEND_URL") and not env.get("PULUMI_ACCESS_TOKEN"):
        whoami = run_pulumi(["whoami", "--non-interactive"], env=env)
        if whoami.returncode != 0:
            raise PipelineError(
                "no state backend",
                "set PULUMI_BACKEND_URL (s3://…, azblob://…, gs://…, postgres://…, file://…) "
                "or PULUMI_ACCESS_TOKEN for Pulumi Cloud",
                kind="backend",
            )
    run = Run(project, name, "sendgrid", env)
    # Not `stack select`: it would save the backend URL, credentials and all, under ~/.pulumi/workspaces.
    found = run.pulumi("stack", "--show-name")
    if found.returncode != 0:
        kind, message, hint = stack_lookup_failed(name, found.stderr, env)
        raise PipelineError(message, hint, kind=kind)
    return run


def _real_world_keys(config: Any) -> list[str]:
    """The keys of a `config:` block that name a SendGrid host or key (`sendgrid:baseUrl`, legacy forms too)."""
    real = {SOURCES[name][0] for name in REAL_HOSTS}
    return (
        sorted(key for key in config if "{}:{}".format(*split_key(str(key))) in real)
        if isinstance(config, dict)
        else []
    )


def _emulator_config(project: Path, name: str, state: Path) -> tuple[Path, list[str]]:
    """A copy of Pulumi.<stack>.yaml in .pulumi-state/, for Pulumi to read and write instead of the tracked file,
    and the warnings for what the copy leaves out.

    The copy keeps the `encryptionsalt` Pulumi wrote into it on an earlier run when the tracked file
    has none (prod), so the local stack's secrets stay readable; the config itself is the tracked one,
    without the keys that would send requests to another host or with another key (REAL_HOSTS).
    Raises PipelineError when Pulumi.yaml sets one of those for every stack: the copy cannot leave it out.
    """
    try:
        settings = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"{project}: no readable Pulumi.yaml ({exc})", "check --project-dir") from None
    if found := _real_world_keys(settings.get("config") if isinstance(settings, dict) else None):
        raise PipelineError(
            f"Pulumi.yaml sets {', '.join(found)} for every stack, and emulator mode must send nothing but to "
            "the local emulator",
            f"move {', '.join(found)} from Pulumi.yaml's `config:` to the Pulumi.<stack>.yaml of the stacks that "
            "need it (emulator mode leaves it out of those), or set it in the environment "
            f"({', '.join(SOURCES[n][1] for n in REAL_HOSTS)}), which emulator mode does not pass on",
        )
    tracked = stack_config_path(project, name)
    if not tracked.is_file():
        raise PipelineError(
            f"unknown stack {name!r}: there is no {tracked.relative_to(project)} in {project} "
            f"(stacks with a config file: {_known_stacks(project, name)})",
            "check --stack",
            kind="stack",
        )
    text = tracked.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{tracked.name} is not valid YAML: {exc}", f"fix {tracked.name}") from None
    warnings = []
    if isinstance(data, dict) and (dropped := _real_world_keys(data.get("config"))):
        data["config"] = {k: v for k, v in data["config"].items() if k not in dropped}
        text = yaml.safe_dump(data, sort_keys=False)
        warnings.append(
            f"emulator mode ignores {', '.join(dropped)} from {tracked.name}: every request goes to the local "
            "emulator, with its own key"
        )
    shadow_dir = state / "stack-config"
    shadow_dir.mkdir(parents=True, exist_ok=True)
    shadow = shadow_dir / tracked.name
    if not (isinstance(data, dict) and data.get("encryptionsalt")) and shadow.is_file():
        remembered = yaml.safe_load(shadow.read_text(encoding="utf-8")) or {}
        if isinstance(remembered, dict) and remembered.get("encryptionsalt"):
            text = f"{text.rstrip()}\nencryptionsalt: {remembered['encryptionsalt']}\n"
    shadow.write_text(text, encoding="utf-8")
    # `pulumi stack init` has no --config-file: it runs beside the copy, in a project of the same name.
    name_in_project = settings.get("name") if isinstance(settings, dict) else None
    (shadow_dir / "Pulumi.yaml").write_text(yaml.safe_dump({"name": name_in_project, "runtime": "python"}))
    return shadow, warnings


def _without_real_world(env: dict[str, str]) -> dict[str, str]:
    """The environment for emulator mode: no SendGrid variable, no real state backend, no proxy (`*_proxy`)."""
    return {
        k: v
        for k, v in env.items()
        if not k.startswith("SENDGRID_") and k not in REAL_WORLD and not k.lower().endswith("_proxy")
    }


@contextmanager
def environment(
    stack: str | None, project_dir: str | None, *, emulator: bool = False, command: str = "deploy"
) -> Iterator[Run]:
    """The environment for one command: SendGrid (the default), or with `emulator`, a running local emulator.

    Raises PipelineError (exit 1) without running anything when the stack is a sharded fleet's own
    stack (`refuse_sharded_fleet`), SendGrid mode has no API key, the stack is unknown, or no state
    backend is configured.
    """
    project = project_path(project_dir)
    name = stack_name(stack)
    refuse_sharded_fleet(project, name, command)
    env = engine_env()
    if not emulator:
        yield _sendgrid(project, name, env)
        return

    from pulumi_sendgrid_tracking.emulator import EmulatorProcess  # noqa: PLC0415 - emulator mode only; pipeline mode never loads it

    state = project / ".pulumi-state"
    state.mkdir(exist_ok=True)
    config_file, warnings = _emulator_config(project, name, state)
    env = _without_real_world(env)
    env.update(
        {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": DEMO_PASSPHRASE,
            "PULUMI_HOME": str(state / "home"),
        }
    )
    seed = ROOT / "tools" / "demo-seed.json"
    with EmulatorProcess("--seed", str(seed), "--state-file", str(state / "emulator.json")) as running:
        env.update(
            {
                "SENDGRID_API_KEY": EMULATOR_KEY,
                "SENDGRID_BASE_URL": running.base_url,
                "SENDGRID_EU_BASE_URL": running.eu_base_url,
            }
        )
        run = Run(project, name, "emulator", env, config_file, warnings)
        if run.pulumi("stack", "select", name, stack=False).returncode != 0:
            created = run_pulumi(
                ["stack", "init", name, "--secrets-provider", "passphrase", "--non-interactive"],
                cwd=config_file.parent,
                env=env,
            )
            if created.returncode != 0:
                raise PipelineError(
                    f"could not create stack {name!r} in {state}: {created.stderr.strip()}",
                    f"remove {state} to start the local world over",
                    kind="backend",
                )
        yield run
