"""make mutants: put each known defect back, one at a time, and check the tests that claim to catch it fail.

Each `tests/mutants/<name>.patch` is a small patch to the package that brings one defect back, with two
header lines git ignores: `# defect: <what it breaks>` and `# caught-by: <pytest node ids>`. This:

1. clones the committed HEAD into a scratch folder (MUTANTS_DIR, default a temp dir) with its own
   virtualenv (`make venv` there: the package installed editable from the scratch copy, so the engine's
   provider process runs the mutated code);
2. runs every patch's tests on the clean copy: they must pass (a test failing anyway proves nothing);
3. for each patch: resets the copy, applies the patch, runs its tests (stopping at the first failure),
   and records whether they failed (the defect was caught), which test failed first, and the time;
4. writes docs/mutants.json and the "Mutants" section of docs/reliability.md from it.

Exit 0 when every defect was caught and the baseline passed; 1 otherwise. Needs the engine (`make engine`).
Usage: python -m tools.mutants [name ...]   (default: every patch; named ones update their rows of the last run)
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "tests" / "mutants"
FIGURES = ROOT / "docs" / "mutants.json"
DOC = ROOT / "docs" / "reliability.md"
HEADING = "## Mutants: the tests catch the defects they claim to"


def read_patch(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    defect = re.search(r"^# defect: (.+)$", text, re.M)
    caught_by = re.search(r"^# caught-by: (.+)$", text, re.M)
    if not defect or not caught_by:
        raise SystemExit(f"mutants: {path.name} needs `# defect:` and `# caught-by:` header lines")
    return {"name": path.stem, "path": path, "defect": defect.group(1), "tests": caught_by.group(1).split()}


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=3600)


def prepare(scratch: Path) -> Path:
    """A clone of HEAD with its own virtualenv; returns the clone."""
    clone = scratch / "clone"
    if not clone.exists():
        result = _run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], ROOT)
        if result.returncode:
            raise SystemExit(f"mutants: git clone failed: {result.stderr.strip()}")
    else:
        _run(["git", "fetch", "-q", str(ROOT), "HEAD"], clone)
        _run(["git", "checkout", "-q", "--force", "FETCH_HEAD"], clone)
    result = _run(["make", "venv"], clone)
    if result.returncode:
        raise SystemExit(f"mutants: make venv in the scratch copy failed:\n{result.stdout}\n{result.stderr}")
    return clone


def run_tests(clone: Path, tests: list[str]) -> tuple[bool, str | None, float]:
    """(passed, the first failing test, seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    started = time.perf_counter()
    result = _run(
        [str(clone / ".venv" / "bin" / "pytest"), "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests],
        clone,
        env,
    )
    seconds = time.perf_counter() - started
    failed = re.search(r"^FAILED (\S+)", result.stdout, re.M)
    return result.returncode == 0, failed.group(1) if failed else None, seconds


def render(figures: dict[str, Any] | None) -> list[str]:
    out = [HEADING, ""]
    if not figures:
        return [*out, "Not measured yet: run `make mutants`.", ""]
    out += [
        "Each known defect is kept as a small patch that puts it back (`tests/mutants/*.patch`); `make mutants`",
        "applies each to a scratch copy and runs the tests that claim to catch it. A defect is caught when one",
        "of them fails; beforehand, the same tests pass on the unpatched copy.",
        f"Last run {figures['date']} (commit {figures['commit']}): {figures['caught']} of {figures['total']}"
        f" caught; baseline {'passed' if figures['baseline_passed'] else 'FAILED'}.",
        "",
        "| defect put back | caught | the test that caught it | time |",
        "|---|---|---|---|",
    ]
    for row in figures["rows"]:
        test = row["caught_by"] or "(none failed)"
        out.append(f"| {row['defect']} | {'yes' if row['caught'] else 'NO'} | `{test}` | {row['seconds']:.0f} s |")
    return [*out, ""]


def replace_section(doc: str, figures: dict[str, Any] | None) -> str:
    section = "\n".join(render(figures)) + "\n"
    start = doc.find(HEADING)
    if start < 0:
        return doc.rstrip("\n") + "\n\n" + section
    end = doc.find("\n## ", start + len(HEADING))
    return doc[:start] + section + (doc[end + 1 :] if end >= 0 else "")


def main(argv: list[str]) -> int:
    patches = [read_patch(p) for p in sorted(PATCHES.glob("*.patch"))]
    if argv:
        patches = [p for p in patches if p["name"] in argv]
    if not patches:
        print("mutants: no patches selected", file=sys.stderr)
        return 1
    scratch = Path(os.environ.get("MUTANTS_DIR") or tempfile.mkdtemp(prefix="sendgrid-mutants-"))
    scratch.mkdir(parents=True, exist_ok=True)
    clone = prepare(scratch)
    commit = _run(["git", "rev-parse", "--short", "HEAD"], clone).stdout.strip()
    every = sorted({test for p in patches for test in p["tests"]})
    print(f"mutants: baseline, {len(every)} tests on the unpatched copy", flush=True)
    baseline_passed, baseline_failure, _ = run_tests(clone, every)
    if not baseline_passed:
        print(f"mutants: the baseline fails ({baseline_failure}): fix that first", file=sys.stderr)
    rows = []
    for patch in patches:
        _run(["git", "checkout", "-q", "--", "."], clone)
        applied = _run(["git", "apply", str(patch["path"])], clone)
        if applied.returncode:
            print(f"mutants: {patch['name']} no longer applies: {applied.stderr.strip()}", file=sys.stderr)
            rows.append(
                {
                    **{k: patch[k] for k in ("name", "defect", "tests")},
                    "caught": False,
                    "caught_by": None,
                    "seconds": 0.0,
                    "applies": False,
                }
            )
            continue
        passed, failed, seconds = run_tests(clone, patch["tests"])
        print(
            f"mutants: {patch['name']}: {'caught by ' + str(failed) if not passed else 'NOT CAUGHT'} ({seconds:.0f} s)",
            flush=True,
        )
        rows.append(
            {
                **{k: patch[k] for k in ("name", "defect", "tests")},
                "caught": not passed,
                "caught_by": failed,
                "seconds": seconds,
                "applies": True,
            }
        )
    _run(["git", "checkout", "-q", "--", "."], clone)
    figures = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "baseline_passed": baseline_passed,
        "total": len(rows),
        "caught": sum(1 for r in rows if r["caught"]),
        "rows": rows,
    }
    if argv and FIGURES.exists():  # a partial run updates those rows of the last full run
        last = json.loads(FIGURES.read_text(encoding="utf-8"))
        fresh = {r["name"]: r for r in rows}
        rows = [fresh.pop(r["name"], r) for r in last["rows"]] + list(fresh.values())
        figures.update(
            rows=rows,
            total=len(rows),
            caught=sum(1 for r in rows if r["caught"]),
            baseline_passed=baseline_passed and last["baseline_passed"],
        )
    if not argv or FIGURES.exists():
        FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Reliability and security figures\n"
        DOC.write_text(replace_section(doc, figures), encoding="utf-8")
        print(f"mutants: wrote {FIGURES.relative_to(ROOT)} and the section of {DOC.relative_to(ROOT)}")
    if not os.environ.get("MUTANTS_DIR"):
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if baseline_passed and all(r["caught"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
