"""The language host and the provider's guard take their process trees down with them (tools/engine/).

A stand-in engine starts them as Pulumi's does: in a process group of their own, stdout a pipe it
reads the port from. Killing the stand-in with SIGKILL is the engine dying; the engine closing a
plugin is SIGINT to the plugin's group. Everything runs in a session of its own, which is how the
processes are found, and whatever a failing test leaves is killed.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import language_pb2, language_pb2_grpc

from tools.pulumi_project import ROOT

from .processes import describe, kill_run, run_processes, wait_until_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")

ENGINE_DIR = ROOT / "tools" / "engine"
STAND_IN_ENGINE = "import subprocess, sys, time\nsubprocess.Popen(sys.argv[1:], process_group=0)\ntime.sleep(600)\n"
# The program the host runs: it starts a child of its own, says so, and would then run for minutes.
PROGRAM = """\
import os, pathlib, subprocess, time
child = subprocess.Popen(["sleep", "600"])
pathlib.Path(os.environ["PROGRAM_STARTED"]).write_text(f"{os.getpid()} {child.pid}")
time.sleep(600)
"""
# Shaped like the SDK's pulumi-resource-pulumi-python: sh runs (not execs) a Python that prints a port.
PROVIDER_SCRIPT = """\
#!/bin/sh
"$PROVIDER_PYTHON" -u -c 'import time; print(4242, flush=True); time.sleep(600)' "$@"
"""


class StandIn:
    """A stand-in engine running `argv` as its plugin, in a new session."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STAND_IN_ENGINE, *argv],
            env=env,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.session = self.proc.pid

    def first_line(self, timeout: float = 30) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"the plugin printed nothing within {timeout}s"
        return self.proc.stdout.readline().decode().strip()

    def pid_of(self, script: str) -> int:
        """The process running `script` (the plugin, which leads its own process group)."""
        (pid,) = [p for p, argv in self.others().items() if any(a.endswith(script) for a in argv[:3])]
        return pid

    def others(self) -> dict[int, list[str]]:
        """The processes of the run, the stand-in engine left out."""
        return {p: a for p, a in run_processes(self.session).items() if p != self.proc.pid}

    def wait_until_only_engine(self, timeout: float = 60) -> dict[int, list[str]]:
        deadline = time.monotonic() + timeout
        while (left := self.others()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        kill_run(self.session)


@pytest.fixture
def host_bin(tmp_path: Path) -> Path:
    """language_host.py and plugin_guard.py from the checkout, beside a stand-in program runner."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("language_host.py", "plugin_guard.py"):
        shutil.copy(ENGINE_DIR / name, bin_dir / name)
    (bin_dir / "pulumi-language-python-exec").write_text(PROGRAM)
    return bin_dir


@pytest.fixture
def running_program(host_bin: Path, tmp_path: Path) -> Iterator[tuple[StandIn, grpc.Future, int]]:
    """A language host whose Run is in flight: (stand-in engine, the Run call, the host's pid)."""
    started = tmp_path / "program-started"
    env = {**os.environ, "PULUMI_PYTHON_CMD": sys.executable, "PROGRAM_STARTED": str(started)}
    engine = StandIn([sys.executable, "-u", str(host_bin / "language_host.py"), "127.0.0.1:1"], env)
    try:
        port = engine.first_line()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        run = language_pb2_grpc.LanguageRuntimeStub(channel).Run.future(
            language_pb2.RunRequest(pwd=str(tmp_path), program=".", project="p", stack="s"), timeout=120
        )
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline and not run.done(), f"the program did not start: {run}"
            time.sleep(0.05)
        processes = engine.others()
        host = engine.pid_of("language_host.py")
        assert {pid for pid in processes if pid != host} == set(map(int, started.read_text().split())), describe(
            processes
        )
        yield engine, run, host
        channel.close()
    finally:
        engine.close()


def hangup_burst(pid: int) -> None:
    """Bursts of SIGHUP, as the parent-death signal comes while a Go engine's threads exit one by one.

    A handler that took a lock (threading.Event.set) deadlocked when the next signal interrupted it.
    """
    for _ in range(20):
        for _ in range(100):
            os.kill(pid, signal.SIGHUP)
        time.sleep(0.002)


BURSTS = pytest.mark.parametrize("burst", [False, True], ids=["", "after a burst of SIGHUP"])


@BURSTS
def test_host_stops_its_program_when_the_engine_is_killed(
    running_program: tuple[StandIn, grpc.Future, int], burst: bool
) -> None:
    engine, _, host = running_program
    if burst:
        hangup_burst(host)
        assert host in engine.others()  # the engine is still there: the signal alone decides nothing
    engine.proc.kill()
    engine.proc.wait(timeout=30)
    left = wait_until_gone(engine.session)
    assert left == {}, f"left behind by a killed engine:\n{describe(left)}"


@pytest.mark.parametrize(
    ("sig", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["SIGTERM to the host", "SIGINT to the host", "SIGINT to its group (the engine closing it)"],
)
def test_host_stops_its_program_and_exits_on_a_signal(
    running_program: tuple[StandIn, grpc.Future, int], sig: signal.Signals, to_group: bool
) -> None:
    engine, run, host = running_program
    if to_group:
        os.killpg(host, sig)
    else:
        os.kill(host, sig)
    left = engine.wait_until_only_engine()
    assert left == {}, f"left behind after {sig.name}:\n{describe(left)}"
    try:
        answer = run.result(timeout=30)  # the call ends too: an answer, or the connection closing
        assert answer.error == "The program was stopped: the language host is shutting down"
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAVAILABLE


# -- the provider's guard ------------------------------------------------------------------------


@pytest.fixture
def guarded_provider(tmp_path: Path) -> Iterator[StandIn]:
    script = tmp_path / "provider"
    script.write_text(PROVIDER_SCRIPT)
    script.chmod(0o755)
    env = {**os.environ, "PROVIDER_PYTHON": sys.executable}
    engine = StandIn([sys.executable, "-I", str(ENGINE_DIR / "plugin_guard.py"), str(script)], env)
    try:
        assert engine.first_line() == "4242"  # the port line reaches the engine through the guard
        running = engine.others()
        assert len(running) == 3, describe(running)  # the guard, sh, and the provider's Python
        yield engine
    finally:
        engine.close()


@BURSTS
def test_guard_stops_the_provider_when_the_engine_is_killed(guarded_provider: StandIn, burst: bool) -> None:
    if burst:
        guard = guarded_provider.pid_of("plugin_guard.py")
        hangup_burst(guard)
        assert len(guarded_provider.others()) == 3  # the engine is still there: the signal decides nothing
    guarded_provider.proc.kill()
    guarded_provider.proc.wait(timeout=30)
    left = wait_until_gone(guarded_provider.session)
    assert left == {}, f"left behind by a killed engine:\n{describe(left)}"


def test_guard_lets_the_engine_close_the_provider_as_before(guarded_provider: StandIn) -> None:
    os.killpg(guarded_provider.pid_of("plugin_guard.py"), signal.SIGINT)  # what the engine does to close a plugin
    left = guarded_provider.wait_until_only_engine()
    assert left == {}, f"left behind after SIGINT to the group:\n{describe(left)}"


@pytest.mark.parametrize(
    ("command", "code", "out", "err"),
    [
        ("echo 4242; echo oops >&2; exit 3", 3, "4242\n", "oops\n"),
        ("kill -TERM $$", -signal.SIGTERM, "", ""),
    ],
    ids=["exit code and output", "killed by a signal"],
)
def test_guard_passes_on_output_and_exit_status(command: str, code: int, out: str, err: str) -> None:
    result = subprocess.run(
        [sys.executable, "-I", str(ENGINE_DIR / "plugin_guard.py"), "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (code, out, err)


# -- the wrapper that build.sh installs as pulumi-resource-pulumi-python ----------------------------

# Stands in for the SDK's script: prints its parent's command line, then its own arguments.
PARENT_PRINTER = """\
#!/bin/sh
tr '\\0' ' ' < /proc/$PPID/cmdline; echo
echo "args: $*"
"""


@pytest.fixture
def wrapper_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    (bin_dir / "sdk").mkdir(parents=True)
    for name in ("plugin_guard.py", "pulumi-resource-pulumi-python"):
        shutil.copy(ENGINE_DIR / name, bin_dir / name)
    (bin_dir / "sdk" / "pulumi-resource-pulumi-python").write_text(PARENT_PRINTER)
    (bin_dir / "sdk" / "pulumi-resource-pulumi-python").chmod(0o755)
    return bin_dir


VENV = Path(sys.executable).parent.parent


@pytest.mark.parametrize(
    ("env", "guard_python"),
    [
        ({"PULUMI_RUNTIME_VIRTUALENV": str(VENV)}, f"{VENV}/bin/python"),
        ({"PULUMI_RUNTIME_VIRTUALENV": "venv-link/"}, "{cwd}/venv-link/bin/python"),
        ({"PULUMI_PYTHON_CMD": sys.executable}, sys.executable),
        ({"PULUMI_PYTHON_CMD": "no-such-python"}, None),
    ],
    ids=["virtualenv", "virtualenv relative to the project", "PULUMI_PYTHON_CMD", "no Python: unguarded"],
)
def test_wrapper_runs_the_sdk_script_under_the_guard(
    wrapper_bin: Path, tmp_path: Path, env: dict[str, str], guard_python: str | None
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "venv-link").symlink_to(VENV)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [str(wrapper_bin / "pulumi-resource-pulumi-python"), "127.0.0.1:1", "two words"],
        cwd=project,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parent, args = result.stdout.splitlines()
    assert args == "args: 127.0.0.1:1 two words"
    if guard_python is None:
        assert "plugin_guard.py" not in parent
    else:
        sdk_script = wrapper_bin / "sdk" / "pulumi-resource-pulumi-python"
        guard = [guard_python.format(cwd=project), "-I", f"{wrapper_bin}/plugin_guard.py", str(sdk_script)]
        assert parent == " ".join([*guard, "127.0.0.1:1", "two words", ""])
