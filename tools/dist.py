"""`make dist`: build the sdist and the wheel into dist/ and check them before anyone uploads them.

The build is pypa/build's, without isolation (the setuptools pinned in requirements-dev.txt): the sdist, then
the wheel built from that sdist, as an installer building from the index would. The checks: `twine check
--strict` (the metadata, and the README as the index renders it); a wheel that holds the package and its
metadata only, no tests, benchmarks, pipelines or other files of the repository; an sdist of the package's
sources, README, changelog and build configuration only.
Usage: python -m tools.dist [--outdir DIR] [SOURCE]   (exit 0 and the two paths, or exit 1 and the problems)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from build import BuildBackendException, BuildException, ProjectBuilder
from pyproject_hooks import quiet_subprocess_runner

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pulumi_sendgrid_tracking"
SDIST_TOP = {"PKG-INFO", "README.md", "CHANGELOG.md", "pyproject.toml", "setup.cfg", "MANIFEST.in", "provider"}


def build(source: Path, outdir: Path) -> tuple[Path, Path]:
    """Build the sdist of the checkout at `source`, then the wheel from that sdist, into `outdir`: (sdist, wheel).

    Raises build.BuildException or build.BuildBackendException (the backend's output in it) when a build fails.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    sdist = Path(ProjectBuilder(source, runner=quiet_subprocess_runner).build("sdist", outdir))
    with tempfile.TemporaryDirectory() as unpacked, tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
        [tree] = Path(unpacked).iterdir()
        wheel = Path(ProjectBuilder(tree, runner=quiet_subprocess_runner).build("wheel", outdir))
    return sdist, wheel


def wheel_problems(wheel: Path) -> list[str]:
    """What the wheel holds besides the package and its .dist-info (tests, bench, pipelines, ...): one line each."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    dist_info = f"{wheel.name.split('-py3')[0]}.dist-info"
    stray = sorted({name.split("/", 1)[0] for name in names} - {PACKAGE, dist_info})
    problems = [f"{wheel.name} holds {top}/ (only {PACKAGE}/ and {dist_info}/ belong in it)" for top in stray]
    if f"{PACKAGE}/py.typed" not in names:
        problems.append(f"{wheel.name} has no {PACKAGE}/py.typed (type checkers would ignore the package's hints)")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    """What the sdist holds besides the package sources, README, changelog and build config: one line each."""
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    root = sdist.name.removesuffix(".tar.gz")
    stray = sorted({name.split("/")[1] for name in names if name.count("/") >= 1} - SDIST_TOP)
    problems = [f"{sdist.name} holds {root}/{top} (not part of the package)" for top in stray]
    if f"{root}/provider/{PACKAGE}/__init__.py" not in names:
        problems.append(f"{sdist.name} has no provider/{PACKAGE}/")
    return problems


def twine_problems(*files: Path) -> list[str]:
    """`twine check --strict` of the files: its output as problems, or none when it passes."""
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return [] if result.returncode == 0 else [f"twine check --strict failed:\n{result.stdout}{result.stderr}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.dist", description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=ROOT, help="the checkout to build (default: this one)")
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist", help="where the files go (default: dist/)")
    args = parser.parse_args(argv)
    try:
        sdist, wheel = build(args.source, args.outdir)
    except (BuildException, BuildBackendException) as exc:
        print(f"dist: the build failed: {exc}", file=sys.stderr)
        return 1
    problems = twine_problems(sdist, wheel) + sdist_problems(sdist) + wheel_problems(wheel)
    for problem in problems:
        print(f"dist: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{sdist}\n{wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
