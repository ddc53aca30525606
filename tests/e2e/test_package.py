"""The installable package, as a stranger gets it: built from a fresh `git clone` of the committed HEAD,
installed into a fresh virtualenv outside it, running a program of the user's own (`examples/own-program/`)
through the real engine, with the Pulumi SDK at both ends of the package's range.

The build must leave the clone as it was (`git status --porcelain` empty) and pack exactly the committed
sources: the wheel's package files are compared byte for byte with the clone's `provider/pulumi_sendgrid_tracking/`.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from pulumi_sendgrid_tracking.emulator import Emulator

from tools import dist
from tools.pulumi_project import PASSPHRASE, ROOT

from ..conftest import TEST_KEY

EXAMPLE = ROOT / "examples" / "own-program"
PACKAGE_DIR = f"provider/{dist.PACKAGE}"


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def clean_env(pulumi_bin: Path | None = None) -> dict[str, str]:
    """The caller's environment without this repository's virtualenv, SendGrid, Pulumi or pip settings."""
    repo_venv = Path(sys.executable).parent.parent
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SENDGRID_", "PULUMI_", "PIP_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    path = [p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != repo_venv / "bin"]
    env["PATH"] = os.pathsep.join(([str(pulumi_bin)] if pulumi_bin else []) + path)
    return env


def package_files(wheel: Path) -> dict[str, bytes]:
    """The wheel's files under pulumi_sendgrid_tracking/, by path below it."""
    with zipfile.ZipFile(wheel) as archive:
        prefix = f"{dist.PACKAGE}/"
        return {n.removeprefix(prefix): archive.read(n) for n in archive.namelist() if n.startswith(prefix)}


@dataclass
class Built:
    """A fresh clone of the committed HEAD and what was built from it."""

    clone: Path
    wheel: Path
    """`pip wheel <clone>` (the command the README gives)."""
    dist_wheel: Path
    """`make dist`'s wheel (tools/dist.py: from the sdist)."""
    sdist: Path
    status: list[str]
    """`git status --porcelain` of the clone after both builds."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("package")
    env = clean_env()
    clone = tmp / "clone"
    run(["git", "clone", "--quiet", str(ROOT), str(clone)], tmp, env, timeout=120)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "pip"), str(clone)], tmp, env)
    [wheel] = (tmp / "pip").glob(f"{dist.PACKAGE}-*.whl")
    sdist, dist_wheel = dist.build(clone, tmp / "dist")
    status = run(["git", "status", "--porcelain"], clone, env).stdout.splitlines()
    yield Built(clone, wheel, dist_wheel, sdist, status)


def test_a_fresh_clone_builds_its_committed_package_and_stays_clean(built: Built) -> None:
    assert built.status == []  # the builds changed no tracked file and left no untracked one
    tracked = run(["git", "ls-files", "-z", PACKAGE_DIR], built.clone, clean_env()).stdout.split("\0")
    sources = {name.removeprefix(f"{PACKAGE_DIR}/"): (built.clone / name).read_bytes() for name in tracked if name}
    assert "py.typed" in sources and "emulator/state.py" in sources
    for wheel in (built.wheel, built.dist_wheel):
        packed = package_files(wheel)
        assert sorted(packed) == sorted(sources), wheel.name  # every committed file, and nothing else
        assert [name for name in sources if packed[name] != sources[name]] == [], wheel.name  # byte for byte
        assert dist.wheel_problems(wheel) == []  # the package and its .dist-info only
    assert dist.sdist_problems(built.sdist) == []
    assert dist.twine_problems(built.sdist, built.dist_wheel) == []
    metadata = zipfile.ZipFile(built.wheel).read(f"{built.wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Dist: pulumi<4,>=3.260.0" in metadata  # a range with a floor, not a pin
    assert 'Requires-Dist: Werkzeug<4,>=3.0; extra == "emulator"' in metadata


def pulumi_range(wheel: Path) -> Requirement:
    """The package's Pulumi SDK requirement, as its wheel declares it."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    [line] = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: pulumi")]
    return Requirement(line.removeprefix("Requires-Dist: "))


@pytest.mark.long
@pytest.mark.parametrize("sdk", ["pin", "floor"])
def test_wheel_in_a_fresh_virtualenv_runs_the_own_program_example(
    sdk: str, built: Built, tmp_path: Path, e2e_emulator: Emulator, pulumi_bin: Path
) -> None:
    """`pin`: the SDK release requirements.txt pins (the newest); `floor`: the lowest the package's range allows."""
    base_env = clean_env(pulumi_bin)
    wheel = built.wheel
    requirement = pulumi_range(wheel)
    [floor] = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    constraints = tmp_path / "constraints.txt"
    pins = (ROOT / "requirements.txt").read_text().splitlines()
    if sdk == "floor":
        pins = [line for line in pins if not line.startswith("pulumi==")] + [f"pulumi=={floor}"]
    constraints.write_text("\n".join(pins) + "\n")

    # 1. A fresh virtualenv outside the clone, with the wheel and its dependencies (pinned like CI's, the
    #    SDK at the floor for `floor`; pip's cache serves them).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, base_env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "-c", str(constraints), str(wheel)], tmp_path, base_env)

    # 2. The example program, copied outside the clone, its Pulumi.yaml pointing at that virtualenv.
    program = tmp_path / "own-program"
    shutil.copytree(EXAMPLE, program)
    project = yaml.safe_load((program / "Pulumi.yaml").read_text())
    project["runtime"]["options"]["virtualenv"] = str(venv)
    (program / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    (program / "__main__.py").write_text(
        (program / "__main__.py").read_text()
        + "\nimport importlib.metadata\nimport pulumi_sendgrid_tracking as _package\n"
        + "pulumi.export('packageFile', _package.__file__)\n"
        + "pulumi.export('sdkVersion', importlib.metadata.version('pulumi'))\n"
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
    pinned = next(line for line in pins if line.startswith("pulumi=="))
    assert outputs["sdkVersion"] == pinned.removeprefix("pulumi==")
    assert requirement.specifier.contains(outputs["sdkVersion"])
    assert outputs["footerUrl"] == "https://example.com/unsubscribe"
    assert outputs["utmCampaign"] == "newsletter"
    world = e2e_emulator.state.snapshot()["global"]
    assert world["parent"]["click"]["enabled"] is False
    assert world["subusers"]["alice"]["subscription"]["url"] == "https://example.com/unsubscribe"
    assert world["subusers"]["alice"]["google_analytics"]["utm_medium"] == "email"

    pulumi("preview", "--expect-no-changes")
    if sdk == "pin":  # the floor's run stays short: create, a preview with no changes, destroy
        pulumi("refresh", "--yes", "--skip-preview")
        pulumi("preview", "--expect-no-changes")
    pulumi("destroy", "--yes", "--skip-preview")
    world = e2e_emulator.state.snapshot()["global"]
    assert world["parent"]["click"]["enabled"] is True  # restored
    assert world["parent"]["open"]["enabled"] is False  # on_delete="keep"
    assert world["subusers"]["alice"]["subscription"]["enabled"] is False  # restored
    assert "url" not in world["subusers"]["alice"]["subscription"]  # absent before: cleared again with ""
