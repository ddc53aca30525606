"""A throwaway Pulumi project run by the real CLI against an emulator: for e2e tests and benchmarks.

It copies the program (not the provider: that is the package installed in the virtualenv, as for
a user) into a directory of its own, with its own state backend (a file backend in the temp dir
unless another backend URL is given) and stack `dev`, and finds its virtualenv through Pulumi.yaml,
as a user's would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pulumi_sendgrid_tracking.emulator import Emulator

from pipelines.common import run_pulumi

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "e2e-test-passphrase"  # noqa: S105 - a throwaway local stack's passphrase
PROJECT = "sendgrid-click-tracking"
DEFAULT_KEY = "SG.test-key"


def engine_bin() -> Path | None:
    """Where `pulumi` and its plugins are: PULUMI_ENGINE_BIN (set by make), else the default cache."""
    version = (ROOT / "tools" / "engine" / "version.txt").read_text().strip()
    candidates = [os.environ.get("PULUMI_ENGINE_BIN", "")]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    candidates.append(f"{cache}/sendgrid-click-tracking/pulumi-v{version}/bin")
    for candidate in candidates:
        if candidate and (Path(candidate) / "pulumi").exists():
            return Path(candidate)
    return None


class PulumiProject:
    """A copy of the program in a temp dir, its own state backend and stack `dev`.

    `backend_url` replaces the file backend in `tmp/state` (a `postgres://` URL, say); `env` adds to
    or overrides the environment every command runs with (`PGPASSWORD`, say).
    """

    def __init__(
        self,
        tmp: Path,
        emulator: Emulator,
        bin_dir: Path,
        api_key: str = DEFAULT_KEY,
        *,
        backend_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.dir = tmp / "project"
        self.state_dir = tmp / "state"
        self.emulator = emulator
        self.outputs: list[str] = []  # everything the CLI printed, for the secret audit
        self.dir.mkdir(parents=True)
        shutil.copy(ROOT / "__main__.py", self.dir / "__main__.py")
        venv = Path(sys.executable).parent.parent
        (self.dir / "Pulumi.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": PROJECT,
                    "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(venv)}},
                }
            )
        )
        self.state_dir.mkdir()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("SENDGRID_", "PULUMI_", "PG")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")
            },
            # The virtualenv is found through Pulumi.yaml, as for a user: not on PATH, not activated.
            "PATH": os.pathsep.join(
                [str(bin_dir)] + [p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != venv / "bin"]
            ),
            "PULUMI_BACKEND_URL": backend_url or f"file://{self.state_dir}",
            "PULUMI_HOME": str(tmp / "home"),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "SENDGRID_API_KEY": api_key,
            "SENDGRID_BASE_URL": emulator.base_url,
            "SENDGRID_EU_BASE_URL": emulator.eu_base_url,
            "SENDGRID_RETRY_BUDGET": "5",
            **(env or {}),
        }
        self.run("stack", "init", "dev")

    def start(self, argv: list[str], *, separate_stderr: bool = False) -> subprocess.Popen[str]:
        """Start a command in the project, in a session of its own (so a test can signal or kill the whole
        run, as a CI runner's cancel does); stdout and stderr together (or apart), as text."""
        return subprocess.Popen(
            argv,
            cwd=self.dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def exec(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in the project with its environment; its output joins `outputs` (the audit)."""
        result = subprocess.run(
            argv,
            cwd=self.dir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.outputs.append(result.stdout + result.stderr)
        return result

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        # The pipelines' runner: under a timeout (the engine test's bound), and safe on the PostgreSQL backend.
        result = run_pulumi([*args, "--non-interactive"], cwd=self.dir, env={**self.env, **(env or {})}, timeout=600)
        self.outputs.append(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def set_fleet(self, parent: dict[str, Any] | None = None, subusers: list[dict[str, Any]] | None = None) -> None:
        path = self.dir / "Pulumi.dev.yaml"
        data = yaml.safe_load(path.read_text()) if path.exists() else {}
        config = {k: v for k, v in (data.get("config") or {}).items() if not k.startswith(f"{PROJECT}:")}
        if parent is not None:
            config[f"{PROJECT}:parent"] = parent
        if subusers is not None:
            config[f"{PROJECT}:subusers"] = subusers
        data["config"] = config
        path.write_text(yaml.safe_dump(data, sort_keys=True))

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview", *extra, check=check)

    def outputs_json(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "output", "--json").stdout))

    def export(self, *extra: str) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "export", *extra).stdout))

    def resources(self) -> dict[str, dict[str, Any]]:
        """The program's resource name → outputs of the ClickTracking resources, from the exported state.

        The engine names them by account (`global/alice`); the program's name is their `name` input.
        """
        deployment = self.export()["deployment"]
        return {
            (r.get("inputs", {}).get("name") or r["urn"].rsplit("::", 1)[1]): r.get("outputs", {})
            for r in deployment.get("resources", [])
            if r["type"].endswith("ClickTracking")
        }

    def api_log(self) -> list[tuple[str, str | None, Any]]:
        """(method, on-behalf-of, body) of every API request since the last call."""
        log = self.emulator.state.request_log()[self._seen :]
        self._seen = len(self.emulator.state.request_log())
        return [(e["method"], e["on_behalf_of"], e["body"]) for e in log]

    _seen = 0
