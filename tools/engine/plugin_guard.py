"""Keep a Pulumi plugin's processes from outliving the engine that started them.

The engine starts each plugin in a process group of its own and stops it by sending SIGINT to that
group, then SIGKILL five seconds later. When the engine itself dies (SIGKILL, a crash, a CI runner
that kills only the CLI), nobody signals those groups, and a plugin that waits for a peer that is
gone stays alive for good. This module is two things:

- helpers that language_host.py shares: `EngineWatch` (notices that the parent, the engine, is
  gone), `stop_descendants` (SIGTERM a process tree, SIGKILL what is left after a grace period) and
  `become_subreaper` (orphans of the tree are re-parented to us, so they stay in the tree);
- a supervisor, `python plugin_guard.py COMMAND [ARG...]`, which build.sh installs in front of the
  SDK's `pulumi-resource-pulumi-python`. It runs COMMAND as its child, otherwise transparently: same
  stdio, environment, directory and process group (so the engine's group signals reach it as
  before), SIGINT and SIGTERM passed on, COMMAND's exit status returned. When the engine is gone it
  stops COMMAND's whole process tree and exits.

Standard library only, Python 3.8+: it runs with whichever Python the wrapper finds.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.2  # how often the parent PID is checked (the parent-death signal is immediate on Linux)
STOP_GRACE_SECONDS = 2.0  # SIGTERM, then SIGKILL after this long: well inside the engine's own 5 s
HAVE_PROC = os.path.isdir("/proc/self")


def _prctl(option: int, value: int) -> bool:
    """prctl(2) on Linux; False anywhere it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # noqa: PLC0415 - only on Linux, only here

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux), so they stay in its tree."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


class Wakeup:
    """A flag that signal handlers may raise: a pipe, so raising it takes no lock.

    A Python signal handler can be interrupted by the next signal and run again inside itself; one
    that takes a lock (threading.Event.set does) then waits for itself forever. The engine's death
    sends a burst of parent-death signals (one per engine thread that exits), so this is not rare.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # not inherited by children (PEP 446)
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe is raised already
            os.write(self._write, b"!")

    def wait(self, timeout: float | None = None) -> bool:
        """Until raised (True) or `timeout` seconds have passed (False); lowers the flag."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass
        return bool(ready)


class EngineWatch:
    """Calls `on_gone` once, from a daemon thread, when the process that started this one has gone.

    The engine is this process's parent at start. When it exits, however it exits, the kernel
    re-parents us (to init or a subreaper), so `os.getppid()` changes: that is the test, polled every
    POLL_SECONDS. On Linux the parent-death signal (SIGHUP) wakes the poll at once. The kernel sends
    it whenever a thread of the parent exits, which in a Go program need not be the process's end, so
    the signal only prompts the check and never decides alone. `start()` must be called from the
    main thread (it installs the SIGHUP handler).
    """

    def __init__(self, on_gone: Callable[[], None]) -> None:
        self.engine_pid = os.getppid()
        self._on_gone = on_gone
        self._wake = Wakeup()

    def gone(self) -> bool:
        return os.getppid() != self.engine_pid

    def start(self) -> None:
        if sys.platform.startswith("linux"):
            signal.signal(signal.SIGHUP, lambda *_: self._wake.set())
            _prctl(PR_SET_PDEATHSIG, signal.SIGHUP)
        threading.Thread(target=self._poll, name="engine-watch", daemon=True).start()

    def _poll(self) -> None:
        while not self.gone():  # also covers an engine that died before the signal was armed
            self._wake.wait(POLL_SECONDS)
        self._on_gone()


def _process_table() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, state letter) of every process: /proc on Linux, else `ps`."""
    table: dict[int, tuple[int, str]] = {}
    if HAVE_PROC:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()  # the name before ')' may hold spaces
            except (OSError, IndexError):
                continue  # it exited while we looked
            table[int(entry)] = (int(fields[1]), fields[0])
        return table
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "stat="], capture_output=True, text=True, check=False
    ).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            table[int(parts[0])] = (int(parts[1]), parts[2][:1])
    return table


def descendants(root: int) -> list[int]:
    """The live (not zombie) processes below `root`: children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, state) in _process_table().items():
        if state != "Z":
            children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Running, or stopped: not gone and not a zombie (where /proc says; elsewhere a zombie counts)."""
    if HAVE_PROC:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _send(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_descendants(root: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every process below `root`, then SIGKILL whatever is still there after `grace` seconds.

    Processes that appear meanwhile (a child forked at the wrong moment) are included. Returns when
    none is left alive, at most about `grace` seconds later. `root` itself is never signalled.
    """
    signalled: set[int] = set()
    deadline = time.monotonic() + grace
    while True:
        fresh = [pid for pid in descendants(root) if pid not in signalled]
        _send(fresh, signal.SIGTERM)
        signalled.update(fresh)
        if not any(_alive(pid) for pid in signalled) and not fresh:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for _ in range(3):  # SIGKILL cannot be refused; the loop only catches late forks
        left = [pid for pid in signalled | set(descendants(root)) if _alive(pid)]
        if not left:
            return
        _send(left, signal.SIGKILL)
        signalled.update(left)
        time.sleep(0.05)


def _exit_like(status: int) -> None:
    """Exit as a process with wait status `status` did: same code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        except (OSError, ValueError):
            pass
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def supervise(argv: list[str]) -> None:
    """Run argv as described in the module docstring; never returns."""
    become_subreaper()

    def engine_gone() -> None:
        stop_descendants(os.getpid())
        os._exit(1)

    watch = EngineWatch(engine_gone)
    try:
        child = subprocess.Popen(argv)  # inherits stdio, environment, directory and process group
    except OSError as exc:
        sys.stderr.write(f"plugin_guard: cannot run {argv[0]}: {exc}\n")
        os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        # A group-wide signal has reached the child already; one aimed at us alone must not stop here.
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    watch.start()
    status = 0
    while True:  # until no child is left: as subreaper, orphaned grandchildren are ours to wait for
        try:
            pid, raw = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child.pid:
            status = raw
    _exit_like(status)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.stderr.write("usage: plugin_guard.py COMMAND [ARG...]\n")
        sys.exit(2)
    supervise(sys.argv[1:])
