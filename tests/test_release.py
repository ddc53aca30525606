"""What a release is made of: the version, its changelog entry, the Pulumi range, and `make dist`'s checks.

The builds themselves (a fresh clone, byte-for-byte package files, the SDK at both ends of the range) are
tests/e2e/test_package.py's; here the checks are shown to catch what they are for, on archives made here.
"""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

from packaging.version import Version
from pulumi_sendgrid_tracking import __version__

from pipelines.common import describe, pinned_version, supported_range
from tools import dist

ROOT = Path(__file__).resolve().parent.parent


def test_the_changelog_has_an_entry_for_this_version_and_every_earlier_one() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - ", changelog, flags=re.MULTILINE)
    assert versions[0] == __version__  # the newest entry is the version the package says it is
    assert [Version(v) for v in versions] == sorted(map(Version, versions), reverse=True)
    assert versions[-1] == "0.1.0"


def test_the_pins_are_inside_the_supported_pulumi_range() -> None:
    supported = supported_range()
    assert describe(supported) == ">=3.260.0,<4"
    sdk = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("pulumi=="))
    assert supported.contains(sdk.removeprefix("pulumi=="))
    assert supported.contains(pinned_version())


def make_wheel(tmp_path: Path, *names: str) -> Path:
    wheel = tmp_path / f"{dist.PACKAGE}-0.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in names:
            archive.writestr(name, "")
    return wheel


def make_sdist(tmp_path: Path, *names: str) -> Path:
    sdist = tmp_path / f"{dist.PACKAGE}-0.3.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(f"{dist.PACKAGE}-0.3.0/{name}")
            archive.addfile(info, io.BytesIO(b""))
    return sdist


def test_the_dist_check_refuses_a_wheel_with_tests_bench_or_pipelines(tmp_path: Path) -> None:
    info = f"{dist.PACKAGE}-0.3.0.dist-info"
    package = [f"{dist.PACKAGE}/__init__.py", f"{dist.PACKAGE}/py.typed", f"{info}/METADATA"]
    assert dist.wheel_problems(make_wheel(tmp_path, *package)) == []
    stray = make_wheel(tmp_path, *package, "tests/test_x.py", "bench/run.py", "pipelines/common.py")
    assert dist.wheel_problems(stray) == [
        f"{stray.name} holds {top}/ (only {dist.PACKAGE}/ and {info}/ belong in it)"
        for top in ("bench", "pipelines", "tests")
    ]
    untyped = make_wheel(tmp_path, f"{dist.PACKAGE}/__init__.py", f"{info}/METADATA")
    assert dist.wheel_problems(untyped) == [
        f"{untyped.name} has no {dist.PACKAGE}/py.typed (type checkers would ignore the package's hints)"
    ]


def test_the_dist_check_refuses_an_sdist_with_the_repository_s_tests(tmp_path: Path) -> None:
    sources = ["PKG-INFO", "pyproject.toml", f"provider/{dist.PACKAGE}/__init__.py"]
    assert dist.sdist_problems(make_sdist(tmp_path, *sources)) == []
    sdist = make_sdist(tmp_path, *sources, "tests/test_client.py")
    assert dist.sdist_problems(sdist) == [f"{sdist.name} holds {dist.PACKAGE}-0.3.0/tests (not part of the package)"]
