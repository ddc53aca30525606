"""The known defects kept as patches (`make mutants`) still apply to the code, and name tests that exist.

`make mutants` is too slow for `make test`; this keeps a refactor from silently turning a mutant into one
that no longer applies (reported then as not caught) or whose catching test was renamed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.mutants import PATCHES, ROOT, read_patch

MUTANTS = sorted(PATCHES.glob("*.patch"))


def test_there_are_mutants() -> None:
    assert len(MUTANTS) >= 14


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_a_mutant_applies_and_names_existing_tests(path: Path) -> None:
    patch = read_patch(path)
    check = subprocess.run(
        ["git", "apply", "--check", str(path)], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert check.returncode == 0, f"{path.name} no longer applies: {check.stderr.strip()}; regenerate it"
    for test in patch["tests"]:
        file, _, name = test.partition("::")
        source = (ROOT / file).read_text(encoding="utf-8")
        function = name.split("[", 1)[0]
        assert f"def {function}(" in source, f"{path.name} names {test}, which does not exist"
