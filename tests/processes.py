"""Processes of a run, found through /proc (Linux): by session, or by working directory.

Every test that starts an engine or a plugin does it in a new session, so the session id (the PID of
what it started) names every process of that run, however the run re-parents or regroups them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.pulumi_project import PulumiProject

# Which process is which, by command line. The host is language_host.py (build.sh's Python host) or
# the official pulumi-language-python; the provider is the SDK's dynamic provider server.
ROLES: dict[str, Callable[[list[str]], bool]] = {
    "language host": lambda argv: any(a.endswith(("language_host.py", "/pulumi-language-python")) for a in argv),
    "program": lambda argv: any(a.endswith("pulumi-language-python-exec") for a in argv),
    "provider": lambda argv: "pulumi.dynamic" in argv,
}


def _stat(pid: int) -> tuple[str, int]:
    """(state letter, session id) of a process."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[3])


def run_processes(session: int, project_dir: Path | None = None) -> dict[int, list[str]]:
    """pid → argv of every live process of a run: in its session, or working in its project directory.

    Empty where there is no /proc (the tests that need it skip themselves there).
    """
    found: dict[int, list[str]] = {}
    if not os.path.isdir("/proc/self"):
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            state, sid = _stat(pid)
            cwd = os.readlink(f"/proc/{pid}/cwd")
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to look at
        in_dir = project_dir is not None and Path(cwd).is_relative_to(project_dir)
        if state != "Z" and (sid == session or in_dir):
            found[pid] = argv
    return found


def roles(processes: dict[int, list[str]]) -> set[str]:
    return {role for argv in processes.values() for role, matches in ROLES.items() if matches(argv)}


def describe(processes: dict[int, list[str]]) -> str:
    return "\n".join(f"  {pid}: {' '.join(argv)[:200]}" for pid, argv in sorted(processes.items()))


def wait_until_gone(session: int, project_dir: Path | None = None, timeout: float = 60) -> dict[int, list[str]]:
    """Polls until no process of the run is left, for at most `timeout` seconds; returns those still there."""
    deadline = time.monotonic() + timeout
    while (left := run_processes(session, project_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_run(session: int, project_dir: Path | None = None) -> None:
    """SIGKILL whatever is left of a run: the cleanup of a test that failed."""
    for _ in range(3):
        left = run_processes(session, project_dir)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


class EngineRun:
    """`pulumi up` of a project, started in a new session (so its session id is the engine's PID).

    Its output is collected as it comes. On exit, whatever is left of the run (the engine, or any
    process of its session or project directory) is killed with SIGKILL, so a failing test leaks
    nothing.
    """

    def __init__(self, project: PulumiProject, *args: str) -> None:
        self.project = project
        self.proc = project.start(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive", *args])
        self.session = self.proc.pid
        self.lines: list[str] = []
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line)
                self._new_line.notify_all()

    @property
    def output(self) -> str:
        with self._new_line:
            return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        with self._new_line:
            found = self._new_line.wait_for(lambda: text in "".join(self.lines), timeout)
        assert found, f"{text!r} not printed within {timeout}s:\n{self.output}"

    def wait_for_changes(self, count: int, timeout: float = 120) -> None:
        """Until the emulator has applied `count` changes: requests are flowing, work is in flight."""
        deadline = time.monotonic() + timeout
        while sum(1 for e in self.project.emulator.state.request_log() if e["changed"]) < count:
            assert self.proc.poll() is None, f"pulumi up ended early:\n{self.output}"
            assert time.monotonic() < deadline, f"fewer than {count} changes within {timeout}s:\n{self.output}"
            time.sleep(0.05)

    def processes(self) -> dict[int, list[str]]:
        return run_processes(self.session, self.project.dir)

    def wait_until_gone(self, timeout: float = 60) -> dict[int, list[str]]:
        """Waits for the engine to exit and every process of the run to go; returns those still there."""
        self.proc.wait(timeout=120)
        self._reader.join(timeout=30)  # all of the output is in
        return wait_until_gone(self.session, self.project.dir, timeout)

    def __enter__(self) -> EngineRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        kill_run(self.session, self.project.dir)
