"""No process of an interrupted `pulumi up` outlives it: not the language host, the program, the provider.

The engine starts the language host and the provider in process groups of their own, so a signal to the
engine's group (Ctrl-C in a terminal, a CI runner's kill) never reaches them; only the engine stops them.
Each case interrupts a run in the middle of its work, sending signals to the engine process alone, and
then expects every process of that run to be gone (found by session and by working directory).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from ..processes import EngineRun, describe, roles
from .conftest import PulumiProject

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")

# The program starts a child of its own that would run for minutes: the host must stop the whole tree.
PROGRAM_CHILD = 'import subprocess\nsubprocess.Popen(["sleep", "600"])\n'


@pytest.fixture
def busy_project(project: PulumiProject, pulumi_bin: Path) -> PulumiProject:
    """40 accounts to adopt at 0.5 s a request: work in flight long after the first signal."""
    if not (pulumi_bin / "plugin_guard.py").exists():
        pytest.skip(f"{pulumi_bin} is not an engine tools/engine/build.sh installed (no plugin_guard.py)")
    names = [f"proc{i:02}" for i in range(40)]
    for name in names:
        project.emulator.state.add_subuser("global", name, enabled=True)
    project.emulator.state.configure(latency=0.5)
    project.set_fleet(subusers=[{"username": n, "enabled": False} for n in names])
    main = project.dir / "__main__.py"
    main.write_text(PROGRAM_CHILD + main.read_text())
    return project


CASES = {
    "SIGKILL": [signal.SIGKILL],
    "SIGTERM": [signal.SIGTERM],
    "SIGINT twice": [signal.SIGINT, signal.SIGINT],
}
ACKNOWLEDGED = {
    signal.SIGTERM: "SIGTERM received; cancelling",
    signal.SIGINT: "^C received; cancelling",
}


@pytest.mark.parametrize("signals", CASES.values(), ids=CASES.keys())
def test_nothing_of_an_interrupted_up_is_left(busy_project: PulumiProject, signals: list[signal.Signals]) -> None:
    with EngineRun(busy_project) as run:
        run.wait_for_changes(5)
        before = run.processes()
        assert roles(before) == {"language host", "program", "provider"}, describe(before)
        assert any(argv[:2] == ["sleep", "600"] for argv in before.values()), describe(before)
        for n, sig in enumerate(signals):
            os.kill(run.proc.pid, sig)  # the engine alone, not its process group
            if n + 1 < len(signals):
                run.wait_for_output(ACKNOWLEDGED[sig])  # the CLI drops a second signal it has not read yet
        left = run.wait_until_gone()
        assert left == {}, f"left behind after {' + '.join(s.name for s in signals)}:\n{describe(left)}"
        if signals == [signal.SIGINT, signal.SIGINT]:
            assert "^C received; terminating" in run.output
        elif signals == [signal.SIGTERM]:
            assert "SIGTERM received; cancelling" in run.output and "update canceled" in run.output
        assert run.proc.returncode != 0
