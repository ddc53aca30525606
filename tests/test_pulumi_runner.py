"""Every pulumi command the scripts start runs under a timeout, and a sharded fleet's own stack is never deployed
plainly; without the engine: a fake `pulumi` on PATH that answers `version` and records or hangs on the rest."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.common import (
    ENGINE_RUN_TIMEOUT,
    STATE_TIMEOUT,
    PipelineError,
    Run,
    backend_env,
    command_env,
    pinned_version,
    pulumi_timeout,
    run_pulumi,
    shard_counts,
)
from tools.pulumi_project import ROOT

SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))


def fake_pulumi(bin_dir: Path, log: Path, *, hang: bool) -> None:
    """A `pulumi` that says the pinned version, logs every other command, and then sleeps (with a child that
    sleeps too, as the language host would) or prints `[]`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = version ]; then echo v{pinned_version()}; exit 0; fi\n'
        f'echo "$*" >> {log}\n'
        + (f'echo "$$" >> {log}.pids\nsleep 300 & echo "$!" >> {log}.children\nsleep 300\n' if hang else "echo '[]'\n")
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: it runs nothing.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_a_hanging_pulumi_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    log = tmp_path / "log"
    fake_pulumi(tmp_path / "bin", log, hang=True)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    started = time.monotonic()
    with pytest.raises(PipelineError) as raised:
        run_pulumi(["stack", "ls", "--json"], env=env, timeout=1)
    assert time.monotonic() - started < 30
    assert raised.value.message == (
        "`pulumi stack ls --json` did not finish in 1 s, so it was stopped (state backend Pulumi Cloud)"
    )
    assert raised.value.hint == (
        "check that the state backend answers; if it is only slow, allow more with PIPELINES_PULUMI_TIMEOUT=<seconds>; "
        "then run this again"
    )
    children = [int(line) for line in (tmp_path / "log.children").read_text().split()]
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in children)  # the language host it started went with it


def test_a_killed_script_takes_its_pulumi_with_it(tmp_path: Path) -> None:
    """SIGKILL of the script (a CI runner's cancel) must not leave its `pulumi up` running unwatched: pulumi runs in
    a process group of its own, which a kill of the script's group does not reach, so the kernel kills it."""
    log = tmp_path / "log"
    fake_pulumi(tmp_path / "bin", log, hang=True)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    script = "from pipelines.common import run_pulumi; import os; run_pulumi(['up', '--yes'], env=dict(os.environ))"
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    pids = tmp_path / "log.pids"
    deadline = time.monotonic() + 30
    while not pids.exists() or not pids.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    (pulumi,) = (int(line) for line in pids.read_text().split())
    assert alive(pulumi)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(pulumi) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pulumi)


def test_a_stopped_up_says_how_to_release_its_lock(tmp_path: Path) -> None:
    fake_pulumi(tmp_path / "bin", tmp_path / "log", hang=True)
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "PULUMI_BACKEND_URL": "postgres://user:pw@db.example:5432/state?sslmode=disable",
    }
    with pytest.raises(PipelineError) as raised:
        run_pulumi(["up", "--yes", "--stack", "prod"], env=env, timeout=1)
    assert raised.value.message == (
        "`pulumi up --yes --stack prod` did not finish in 1 s, so it was stopped "
        "(state backend postgres://db.example:5432/state)"
    )
    assert raised.value.hint is not None
    assert raised.value.hint.endswith(
        "The stopped run may have left the stack's lock: with no other run going on, "
        "`pulumi cancel --stack prod --yes` first"
    )
    assert "pw" not in raised.value.message + raised.value.hint


def test_a_preview_skips_the_checkpoints_it_would_discard(tmp_path: Path) -> None:
    """docs/upstream-preview-checkpoints.md: only the scripts' previews, whose snapshot is discarded, run without
    checkpoints; `run_pulumi` itself (the tests' projects, a user's `pulumi`) adds nothing."""
    log = tmp_path / "log"
    fake_pulumi(tmp_path / "bin", log, hang=False)
    script = tmp_path / "bin" / "pulumi"
    script.write_text(script.read_text().replace('echo "$*" >>', 'echo "$* skip=$PULUMI_SKIP_CHECKPOINTS" >>'))
    env = {k: v for k, v in os.environ.items() if k != "PULUMI_SKIP_CHECKPOINTS"}
    env["PATH"] = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    run = Run(project_dir=tmp_path, stack="dev", mode="test", env=env)
    for args in (["preview", "--json"], ["preview", "--refresh"], ["up", "--yes"], ["refresh", "--yes"], ["destroy"]):
        run.pulumi(*args)
    run_pulumi(["preview"], env=env, timeout=30)
    assert log.read_text().splitlines() == [
        "preview --json --stack dev --non-interactive skip=true",
        "preview --refresh --stack dev --non-interactive skip=true",
        "up --yes --stack dev --non-interactive skip=",
        "refresh --yes --stack dev --non-interactive skip=",
        "destroy --stack dev --non-interactive skip=",
        "preview skip=",
    ]
    assert command_env(["preview"], {"PULUMI_SKIP_CHECKPOINTS": "false"})["PULUMI_SKIP_CHECKPOINTS"] == "false"


def test_timeouts_by_kind_and_from_the_environment() -> None:
    assert pulumi_timeout(["up", "--yes"], {}) == ENGINE_RUN_TIMEOUT
    assert pulumi_timeout(["preview"], {}) == ENGINE_RUN_TIMEOUT
    assert pulumi_timeout(["stack", "ls"], {}) == STATE_TIMEOUT
    assert pulumi_timeout(["stack", "ls"], {"PIPELINES_PULUMI_TIMEOUT": "7.5"}) == 7.5
    with pytest.raises(PipelineError, match="PIPELINES_PULUMI_TIMEOUT is 'soon', not a number of seconds above 0"):
        pulumi_timeout(["up"], {"PIPELINES_PULUMI_TIMEOUT": "soon"})


def test_the_postgres_backend_lists_one_stack_at_a_time() -> None:
    """docs/upstream-postgres-stack-ls.md: with PULUMI_DIY_BACKEND_PARALLEL=1 `stack ls` needs 2 connections."""
    assert backend_env({"PULUMI_BACKEND_URL": "postgres://h/db"})["PULUMI_DIY_BACKEND_PARALLEL"] == "1"
    assert (
        backend_env({"PULUMI_BACKEND_URL": "postgresql://h/db", "PULUMI_DIY_BACKEND_PARALLEL": "10"})[
            "PULUMI_DIY_BACKEND_PARALLEL"
        ]
        == "1"
    )
    assert "PULUMI_DIY_BACKEND_PARALLEL" not in backend_env({"PULUMI_BACKEND_URL": "file:///tmp/x"})


def run_script(
    script: str, argv: list[str], project: Path, bin_dir: Path, **env: str
) -> tuple[int, dict[str, Any], str, float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "SENDGRID_", "PIPELINES_"))}
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "pipelines" / script), *argv, "--project-dir", str(project)],
        env={**base, "PATH": f"{bin_dir}:{base['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    data = json.loads(result.stdout)
    assert not [e.message for e in SCHEMA.iter_errors(data)]
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, data, result.stderr, time.monotonic() - started


def sharded_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "sendgrid-click-tracking", "runtime": "python"}))
    fleet = {"config": {"sendgrid-click-tracking:fleetFile": "fleets/prod.yaml"}}
    (project / "Pulumi.prod.yaml").write_text(yaml.safe_dump(fleet))
    for index in (1, 2):
        shard = {"config": {**fleet["config"], "sendgrid-click-tracking:shard": f"{index}/2"}}
        (project / f"Pulumi.prod-shard-{index}-of-2.yaml").write_text(yaml.safe_dump(shard))
    return project


@pytest.mark.parametrize("script", ["shards", "deploy"])
def test_a_hang_in_a_script_is_one_clean_error(tmp_path: Path, script: str) -> None:
    """A state backend that never answers: the script ends within the timeout with the output's error."""
    log = tmp_path / "log"
    fake_pulumi(tmp_path / "bin", log, hang=True)
    project = sharded_project(tmp_path)
    argv = ["check", "--stack", "prod", "--shards", "2"] if script == "shards" else ["--stack", "prod-shard-1-of-2"]
    code, data, _, took = run_script(
        script,
        argv,
        project,
        tmp_path / "bin",
        PIPELINES_PULUMI_TIMEOUT="2",
        SENDGRID_API_KEY="SG.test-key",
        PULUMI_BACKEND_URL=f"file://{tmp_path}/state",
    )
    shown = "stack ls --json" if script == "shards" else "stack --show-name --stack prod-shard-1-of-2"
    assert code == 1 and took < 60
    assert [(e["kind"], e["message"]) for e in data["errors"]] == [
        ("engine", f"`pulumi {shown}` did not finish in 2 s, so it was stopped (state backend file://{tmp_path}/state)")
    ]
    assert "PIPELINES_PULUMI_TIMEOUT" in data["errors"][0]["hint"]


def test_a_sharded_fleets_own_stack_refuses_a_plain_deploy(tmp_path: Path) -> None:
    log = tmp_path / "log"
    fake_pulumi(tmp_path / "bin", log, hang=False)
    project = sharded_project(tmp_path)
    assert shard_counts(project, "prod") == [2]
    assert shard_counts(project, "prod-shard-1-of-2") == []
    for command in ("deploy", "preview", "drift-check"):
        code, data, _, _ = run_script(
            command, ["--stack", "prod"], project, tmp_path / "bin", SENDGRID_API_KEY="SG.test-key"
        )
        assert code == 1
        assert [(e["kind"], e["message"], e["hint"]) for e in data["errors"]] == [
            (
                "stack",
                "stack 'prod' is a sharded fleet's own stack (Pulumi.prod-shard-*-of-*.yaml beside its config, 2 "
                f"shards): its accounts are managed by its shard stacks, and a plain {command} of it would take every "
                "account of the fleet a second time",
                f"run pipelines/shards {command} --stack prod --shards 2 instead (README, Big fleets and sharding)",
            )
        ]
    assert not log.exists()  # refused before any pulumi command: nothing read, nothing sent
