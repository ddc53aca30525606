"""Save a compatibility fixture of this release: `python -m tests.compat.save` (needs `make engine`).

It runs `tests/compat/program.py` (all four settings, the parent, a subuser and an EU subuser) with
the real engine against an emulator, and writes to tests/compat/v<version>/:

- state.json      `pulumi stack export` after `pulumi up` (providers pickled by reference, originals recorded)
- Pulumi.dev.yaml the stack config, with its passphrase salt (the passphrase is tools.pulumi_project.PASSPHRASE)
- world.json      the emulator's accounts after the up (what `pulumi refresh` must find)
- before.json     the emulator's accounts before the up (what `pulumi destroy` must put back)

`tests/e2e/test_compat.py` loads, refreshes, previews and destroys every saved fixture with the
current code: a later version must never break a stack an earlier one created.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from pulumi_sendgrid_tracking import __version__
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState

from tools.pulumi_project import PulumiProject, engine_bin

HERE = Path(__file__).resolve().parent
KEY = "SG.test-key"


def world() -> EmulatorState:
    """The accounts every fixture starts from."""
    state = EmulatorState(api_keys=[KEY])
    state.add_subuser("global", "alice", enabled=True)
    state.add_subuser("eu", "carol", enabled=False)
    state.set_out_of_band("global", "alice", "google_analytics", {"utm_source": "newsletter", "utm_campaign": "old"})
    state.set_out_of_band("global", None, "subscription", {"enabled": True, "replace": "[unsubscribe]"})
    return state


def main() -> int:
    bin_dir = engine_bin()
    if bin_dir is None:
        print("the Pulumi engine is not built: run `make engine`", file=sys.stderr)
        return 1
    target = HERE / f"v{__version__}"
    with tempfile.TemporaryDirectory() as tmp, Emulator(world()) as emulator:
        before = emulator.state.snapshot()
        project = PulumiProject(Path(tmp), emulator, bin_dir, api_key=KEY)
        shutil.copy(HERE / "program.py", project.dir / "__main__.py")
        project.up()
        project.run("preview", "--expect-no-changes")
        target.mkdir(exist_ok=True)
        (target / "state.json").write_text(json.dumps(project.export(), indent=2, sort_keys=True) + "\n")
        shutil.copy(project.dir / "Pulumi.dev.yaml", target / "Pulumi.dev.yaml")
        (target / "world.json").write_text(json.dumps(emulator.state.snapshot(), indent=2, sort_keys=True) + "\n")
        (target / "before.json").write_text(json.dumps(before, indent=2, sort_keys=True) + "\n")
    print(f"saved {target.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
