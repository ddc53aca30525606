"""Stacks created by earlier releases keep working: their pickled providers load, and their state
refreshes, previews with no changes, and destroys (putting every original back) with this code.

The fixtures under tests/compat/v*/ are saved by `python -m tests.compat.save` and never edited.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState

from tools.pulumi_project import ROOT, PulumiProject

from ..conftest import TEST_KEY

COMPAT = ROOT / "tests" / "compat"
FIXTURES = sorted(p for p in COMPAT.glob("v*") if p.is_dir())

LOAD = """
import base64, json, sys, dill
for pickled in json.load(sys.stdin):
    provider = dill.loads(base64.b64decode(pickled))
    print(type(provider).__module__, type(provider).__name__, type(provider).__mro__[1].__name__)
"""


def setting_resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for r in state["deployment"]["resources"]
        if r["type"].startswith("pulumi-python:dynamic/sendgrid:") and not r["type"].endswith(":Adoption")
    ]


def test_there_is_a_fixture_of_this_release() -> None:
    from pulumi_sendgrid_tracking import __version__

    assert (COMPAT / f"v{__version__}" / "state.json").exists(), "run `python -m tests.compat.save`"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_pickled_providers_of_an_earlier_release_load_from_the_installed_package(fixture: Path) -> None:
    state = json.loads((fixture / "state.json").read_text())
    pickled = sorted(
        {r["outputs"]["__provider"] for r in state["deployment"]["resources"] if "__provider" in r.get("outputs", {})}
    )
    assert len(pickled) >= 5  # the four settings and the adoption record
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD],
        input=json.dumps(pickled),
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    classes = {tuple(line.split()) for line in loaded if line}
    assert {module for module, _, _ in classes} == {"pulumi_sendgrid_tracking.providers"}
    assert {name for _, name, _ in classes} >= {
        "ClickTrackingProvider",
        "OpenTrackingProvider",
        "SubscriptionTrackingProvider",
        "GoogleAnalyticsProvider",
        "AdoptionProvider",
    }


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_a_stack_of_an_earlier_release_refreshes_previews_and_destroys(
    fixture: Path, tmp_path: Path, pulumi_bin: Path
) -> None:
    state = json.loads((fixture / "state.json").read_text())
    world = EmulatorState(api_keys=[TEST_KEY])
    world.restore(json.loads((fixture / "world.json").read_text()))
    with Emulator(world) as emulator:
        project = PulumiProject(tmp_path, emulator, pulumi_bin)
        shutil.copy(COMPAT / "program.py", project.dir / "__main__.py")
        shutil.copy(fixture / "Pulumi.dev.yaml", project.dir / "Pulumi.dev.yaml")
        (tmp_path / "state.json").write_text(json.dumps(state))
        project.run("stack", "import", "--file", str(tmp_path / "state.json"))

        project.run("preview", "--expect-no-changes")  # the upgrade changes nothing
        assert project.api_log() == []
        project.run("refresh", "--yes", "--skip-preview")
        assert {m for m, _, _ in project.api_log()} == {"GET"}
        project.run("preview", "--expect-no-changes")

        live_before_destroy = emulator.state.snapshot()
        project.run("destroy", "--yes", "--skip-preview")
        after = emulator.state.snapshot()
        for resource in setting_resources(state):
            outs = resource["outputs"]
            setting = resource["type"].rsplit(":", 1)[1]
            kind = {
                "ClickTracking": "click",
                "OpenTracking": "open",
                "SubscriptionTracking": "subscription",
                "GoogleAnalytics": "google_analytics",
            }[setting]
            world_name, who = outs["region"], outs.get("on_behalf_of")
            now = (after[world_name]["parent"] if who is None else after[world_name]["subusers"][who])[kind]
            was = (
                live_before_destroy[world_name]["parent"]
                if who is None
                else live_before_destroy[world_name]["subusers"][who]
            )[kind]
            for field in outs.get("managed_fields", ["enabled"]):
                original = outs.get(f"original_{field}")
                expected = {
                    # An original SendGrid left out (no url yet) is cleared again with "", and reads as absent.
                    "restore": original if original is not None or field == "enabled" else None,
                    "disable": False if field == "enabled" else was.get(field),
                    "keep": was.get(field),
                }[outs["on_delete"]]
                assert now.get(field) == expected, (resource["urn"], field)
        assert project.resources() == {}


def test_a_stack_of_0_1_0_upgrades_with_one_up_that_sends_no_change(tmp_path: Path, pulumi_bin: Path) -> None:
    """0.1.0 ran from a clone (`provider.click_tracking`); its state names a module that no longer exists.

    Preview works (it unpickles the program's new provider); one `pulumi up` records the adoption
    records and rewrites every resource's provider reference without a PATCH; from then on refresh
    and destroy work, and destroy puts back the originals 0.1.0 recorded.
    """
    fixture = COMPAT / "legacy-v0.1.0"
    state = json.loads((fixture / "state.json").read_text())
    assert all(
        b"provider.click_tracking" in base64.b64decode(r["outputs"]["__provider"]) for r in setting_resources(state)
    )
    world = EmulatorState(api_keys=[TEST_KEY])
    world.restore(json.loads((fixture / "world.json").read_text()))
    with Emulator(world) as emulator:
        project = PulumiProject(tmp_path, emulator, pulumi_bin)
        shutil.copy(fixture / "Pulumi.dev.yaml", project.dir / "Pulumi.dev.yaml")
        (tmp_path / "state.json").write_text(json.dumps(state))
        project.run("stack", "import", "--file", str(tmp_path / "state.json"))
        originals = {r["urn"].rsplit("::", 1)[1]: r["outputs"]["original_enabled"] for r in setting_resources(state)}
        assert originals == {"parent": True, "subuser-alice": True, "subuser-bob": False}

        preview = project.run("preview")
        assert "+ 3 to create" in preview.stdout and "~ 3 to update" in preview.stdout
        assert project.api_log() == []
        project.up()
        assert sorted(map(str, project.api_log())) == sorted(
            map(str, [("GET", None, None), ("GET", "alice", None), ("GET", "bob", None)])
        )  # the adoption records read; no PATCH
        project.run("preview", "--expect-no-changes")
        project.run("refresh", "--yes", "--skip-preview")
        project.run("destroy", "--yes", "--skip-preview")
        after = emulator.state.snapshot()["global"]
        assert after["parent"]["click"]["enabled"] is True
        assert {u: after["subusers"][u]["click"]["enabled"] for u in ("alice", "bob")} == {"alice": True, "bob": False}
