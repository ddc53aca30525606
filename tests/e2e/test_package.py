"""The installable package: a wheel built from the clone, installed into a fresh virtualenv outside it,
running a program of the user's own (`examples/own-program/`) through the real engine.

No PYTHONPATH, no clone on sys.path, the repository's virtualenv off PATH: the program and the provider
process import `pulumi_sendgrid_tracking` from the wheel, as a user's would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from pulumi_sendgrid_tracking.emulator import Emulator

from tools.pulumi_project import PASSPHRASE, ROOT

from ..conftest import TEST_KEY

EXAMPLE = ROOT / "examples" / "own-program"


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.long
def test_wheel_in_a_fresh_virtualenv_runs_the_own_program_example(
    tmp_path: Path, e2e_emulator: Emulator, pulumi_bin: Path
) -> None:
    repo_venv = Path(sys.executable).parent.parent
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SENDGRID_", "PULUMI_", "PIP_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    base_env["PATH"] = os.pathsep.join(
        [str(pulumi_bin)] + [p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != repo_venv / "bin"]
    )

    # 1. `pip wheel` of the clone builds the package, and only the package.
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], tmp_path, base_env)
    [wheel] = dist.glob("pulumi_sendgrid_tracking-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"pulumi_sendgrid_tracking", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "pulumi_sendgrid_tracking/py.typed" in names
    assert "pulumi_sendgrid_tracking/providers.py" in names
    assert not any(part in name for name in names for part in ("tests/", "bench/", "pipelines/", "fleets/"))
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Dist: pulumi<4,>=3.260.0" in metadata  # a range with a floor, not a pin
    assert 'Requires-Dist: Werkzeug<4,>=3.0; extra == "emulator"' in metadata

    # 2. A fresh virtualenv outside the clone, with the wheel and its dependencies (pinned like CI's).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, base_env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "-c", str(ROOT / "requirements.txt"), str(wheel)], tmp_path, base_env)

    # 3. The example program, copied outside the clone, its Pulumi.yaml pointing at that virtualenv.
    program = tmp_path / "own-program"
    shutil.copytree(EXAMPLE, program)
    project = yaml.safe_load((program / "Pulumi.yaml").read_text())
    project["runtime"]["options"]["virtualenv"] = str(venv)
    (program / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    (program / "__main__.py").write_text(
        (program / "__main__.py").read_text()
        + "\nimport pulumi_sendgrid_tracking as _package\npulumi.export('packageFile', _package.__file__)\n"
    )
    state = tmp_path / "state"
    state.mkdir()
    env = {
        **base_env,
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "SENDGRID_API_KEY": TEST_KEY,
        "SENDGRID_BASE_URL": e2e_emulator.base_url,
        "SENDGRID_EU_BASE_URL": e2e_emulator.eu_base_url,
    }

    def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
        return run(["pulumi", *args, "--non-interactive"], program, env)

    pulumi("stack", "init", "dev")
    pulumi("config", "set", "subuser", "alice")
    pulumi("config", "set", "unsubscribeUrl", "https://example.com/unsubscribe")
    pulumi("up", "--yes", "--skip-preview")
    outputs = json.loads(pulumi("stack", "output", "--json").stdout)
    assert Path(outputs["packageFile"]).is_relative_to(venv)  # the wheel's copy, not the clone's
    assert outputs["footerUrl"] == "https://example.com/unsubscribe"
    assert outputs["utmCampaign"] == "newsletter"
    world = e2e_emulator.state.snapshot()["global"]
    assert world["parent"]["click"]["enabled"] is False
    assert world["subusers"]["alice"]["subscription"]["url"] == "https://example.com/unsubscribe"
    assert world["subusers"]["alice"]["google_analytics"]["utm_medium"] == "email"

    pulumi("preview", "--expect-no-changes")
    pulumi("refresh", "--yes", "--skip-preview")
    pulumi("preview", "--expect-no-changes")
    pulumi("destroy", "--yes", "--skip-preview")
    world = e2e_emulator.state.snapshot()["global"]
    assert world["parent"]["click"]["enabled"] is True  # restored
    assert world["parent"]["open"]["enabled"] is False  # on_delete="keep"
    assert world["subusers"]["alice"]["subscription"]["enabled"] is False  # restored
    assert "url" not in world["subusers"]["alice"]["subscription"]  # absent before: cleared again with ""
