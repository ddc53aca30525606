"""What every pipeline command shares: where it runs (SendGrid or the emulator), the stack, the CLI.

Pipeline mode: SENDGRID_API_KEY is set (from the pipeline's secrets), and the state backend is
PULUMI_BACKEND_URL (s3://, azblob://, gs://, file://) or Pulumi Cloud (PULUMI_ACCESS_TOKEN). The
stack must already exist.
Emulator mode (the default, no SENDGRID_API_KEY): the local emulator, persisted with `make demo`'s
world in .pulumi-state/, and a local file backend there; the stack is created if missing.
Machine-readable JSON goes to stdout, a human summary to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backend import stack_lookup_failed

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2
DEMO_PASSPHRASE = "demo-passphrase-not-a-secret"  # noqa: S105 - the documented demo passphrase


class PipelineError(Exception):
    """A problem the pipeline should report and exit 1 for."""


@dataclass
class Run:
    """One pipeline command's environment."""

    project_dir: Path
    stack: str
    mode: str
    env: dict[str, str] = field(default_factory=dict)

    def pulumi(self, *args: str, stack: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pulumi", *args, *(["--stack", self.stack] if stack else []), "--non-interactive"],
            cwd=self.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
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


def account_of(state: dict[str, Any] | None) -> str | None:
    """`global`, `eu/alice`: the resource ID, from a state's outputs or inputs."""
    if not state:
        return None
    values = {**(state.get("inputs") or {}), **(state.get("outputs") or {})}
    region, who = values.get("region"), values.get("on_behalf_of")
    if not region:
        return None
    return f"{region}/{who}" if who else str(region)


def is_click_tracking(step: dict[str, Any]) -> bool:
    return "dynamic/sendgrid:ClickTracking" in step.get("urn", "")


def resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def errors_of(data: dict[str, Any], stderr: str) -> list[str]:
    """Error diagnostics from a `--json` result, or the CLI's stderr."""
    messages = [
        (d.get("urn", "").rsplit("::", 1)[-1] + ": " if d.get("urn") else "") + d.get("message", "").strip()
        for d in data.get("diagnostics", []) or []
        if d.get("severity") == "error"
    ]
    return [m for m in messages if m] or [line for line in stderr.strip().splitlines() if line.strip()][-20:]


def emit(payload: dict[str, Any], summary: list[str]) -> None:
    for line in summary:
        print(line, file=sys.stderr)
    print(json.dumps(payload, indent=2, sort_keys=True))


def _with_engine_on_path(env: dict[str, str]) -> dict[str, str]:
    """Use `pulumi` from PATH, else the one `make engine` built (same cache path as the Makefile)."""
    if shutil.which("pulumi", path=env.get("PATH")):
        return env
    version = next(
        line.split("==", 1)[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi==")
    )
    cache = env.get("PULUMI_ENGINE_CACHE") or (
        f"{env.get('XDG_CACHE_HOME') or Path.home() / '.cache'}/sendgrid-click-tracking/pulumi-v{version}"
    )
    if not (Path(cache) / "bin" / "pulumi").exists():
        raise PipelineError("no `pulumi` on PATH: install Pulumi, or run `make engine`")
    return {**env, "PATH": f"{cache}/bin{os.pathsep}{env.get('PATH', '')}"}


@contextmanager
def environment(stack: str | None, project_dir: str | None) -> Iterator[Run]:
    """The environment for one command; in emulator mode, a running emulator."""
    project = Path(project_dir or os.environ.get("PULUMI_PROJECT_DIR") or ROOT).resolve()
    env = _with_engine_on_path({**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_RUN_PROGRAM": "true"})
    name = stack or os.environ.get("PULUMI_STACK") or "dev"
    if env.get("SENDGRID_API_KEY"):
        if not env.get("PULUMI_BACKEND_URL") and not env.get("PULUMI_ACCESS_TOKEN"):
            whoami = subprocess.run(
                ["pulumi", "whoami", "--non-interactive"], env=env, capture_output=True, check=False
            )
            if whoami.returncode != 0:
                raise PipelineError(
                    "no state backend: set PULUMI_BACKEND_URL (s3://…, azblob://…, file://…) "
                    "or PULUMI_ACCESS_TOKEN for Pulumi Cloud"
                )
        run = Run(project, name, "sendgrid", env)
        # Not `stack select`: it would save the backend URL, credentials and all, under ~/.pulumi/workspaces.
        found = run.pulumi("stack", "--show-name")
        if found.returncode != 0:
            raise PipelineError(stack_lookup_failed(name, found.stderr, env))
        yield run
        return

    from pulumi_sendgrid_tracking.emulator import EmulatorProcess  # noqa: PLC0415 - emulator mode only; pipeline mode never loads it

    state = project / ".pulumi-state"
    state.mkdir(exist_ok=True)
    env.setdefault("PULUMI_BACKEND_URL", f"file://{state}")
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", DEMO_PASSPHRASE)
    env.setdefault("PULUMI_HOME", str(state / "home"))
    seed = ROOT / "tools" / "demo-seed.json"
    with EmulatorProcess("--seed", str(seed), "--state-file", str(state / "emulator.json")) as emulator:
        env.update(
            {
                "SENDGRID_API_KEY": "SG.emulator-local-dev-key",
                "SENDGRID_BASE_URL": emulator.base_url,
                "SENDGRID_EU_BASE_URL": emulator.eu_base_url,
            }
        )
        run = Run(project, name, "emulator", env)
        selected = run.pulumi("stack", "select", "--create", name, stack=False)
        if selected.returncode != 0:
            raise PipelineError(f"could not select stack {name!r}: {selected.stderr.strip()}")
        yield run
