"""Stacks created by earlier releases keep working: their pickled providers load; a stack of an earlier
design (0.1.0, 0.2.0) upgrades with one plain `pulumi up` that sends no PATCH and keeps every original;
then (and a stack of this design at once) it refreshes, previews with no changes, and destroys, putting
every account back to what it held before the stack.

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
from pulumi_sendgrid_tracking.singleton import ledger_entry

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


KINDS = {
    "ClickTracking": "click",
    "OpenTracking": "open",
    "SubscriptionTracking": "subscription",
    "GoogleAnalytics": "google_analytics",
}
LEDGER_TYPE = "pulumi-python:dynamic/sendgrid:Originals"
ADOPTION_TYPE = "pulumi-python:dynamic/sendgrid:Adoption"


def setting_resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in state["deployment"]["resources"] if r["type"].rsplit(":", 1)[1] in KINDS]


def of_type(state: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in state["deployment"]["resources"] if r["type"] == type_]


def fixture_originals(resource: dict[str, Any]) -> dict[str, Any]:
    """What a saved setting resource recorded as its originals: field → value (None: SendGrid left it out)."""
    outs = resource["outputs"]
    if isinstance(outs.get("held_fields"), list):  # 0.3.0 and later
        return {name: outs.get("originals", {}).get(name) for name in outs["held_fields"]}
    return {name: outs.get(f"original_{name}") for name in outs.get("managed_fields", ["enabled"])}


def ledger_originals(state: dict[str, Any], key: str) -> dict[str, Any]:
    """What the stack's originals ledger holds for one account setting (`click/global/alice`): field → value."""
    (ledger,) = of_type(state, LEDGER_TYPE)
    entry = ledger_entry(ledger["outputs"]["entries"][key])  # a mapping until 0.3.0's ledger form; JSON text now
    assert entry is not None, key
    return dict(entry["originals"])


def account(snapshot: dict[str, Any], region: str, who: str | None, kind: str) -> dict[str, Any]:
    data = snapshot[region]
    return dict((data["parent"] if who is None else data["subusers"][who])[kind])


def test_there_is_a_fixture_of_this_release() -> None:
    from pulumi_sendgrid_tracking import __version__

    assert (COMPAT / f"v{__version__}" / "state.json").exists(), "run `python -m tests.compat.save`"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_pickled_providers_of_an_earlier_release_load_from_the_installed_package(fixture: Path) -> None:
    state = json.loads((fixture / "state.json").read_text())
    dynamic = [r for r in state["deployment"]["resources"] if "__provider" in r.get("outputs", {})]
    pickled = sorted({r["outputs"]["__provider"] for r in dynamic})
    # The four settings, and 0.2.0's adoption record or, since 0.3.0, the stack's originals ledger.
    types = {r["type"].rsplit(":", 1)[1] for r in dynamic}
    assert types >= set(KINDS) and len(types) == 5, types
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
    assert {name for _, name, _ in classes} == {f"{type_}Provider" for type_ in types}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_a_stack_of_an_earlier_release_keeps_its_originals_refreshes_previews_and_destroys(
    fixture: Path, tmp_path: Path, pulumi_bin: Path
) -> None:
    """0.2.0: one plain `pulumi up` moves each setting to its account's name (an alias), the originals
    into its own `originals`, declares the ledger (a GET per account; the originals the settings record win)
    and retires the adoption records, sending no PATCH. 0.3.0 and later: nothing to do. Then refresh, preview, and
    destroy puts back what each account held before the stack (before.json), not what the up read."""
    state = json.loads((fixture / "state.json").read_text())
    before = json.loads((fixture / "before.json").read_text())
    saved = setting_resources(state)
    world = EmulatorState(api_keys=[TEST_KEY])
    world.restore(json.loads((fixture / "world.json").read_text()))
    with Emulator(world) as emulator:
        project = PulumiProject(tmp_path, emulator, pulumi_bin)
        shutil.copy(COMPAT / "program.py", project.dir / "__main__.py")
        shutil.copy(fixture / "Pulumi.dev.yaml", project.dir / "Pulumi.dev.yaml")
        (tmp_path / "state.json").write_text(json.dumps(state))
        project.run("stack", "import", "--file", str(tmp_path / "state.json"))
        live_at_upgrade = emulator.state.snapshot()

        if of_type(state, ADOPTION_TYPE):
            preview = project.run("preview")
            assert "+ 1 to create" in preview.stdout and f"- {len(saved)} to delete" in preview.stdout
            assert project.api_log() == []
            project.up()
            # The ledger reads each account once, but keeps the originals the settings record (not what SendGrid
            # holds now: this stack's values); no PATCH; the adoption records leave sending nothing.
            assert sorted(map(str, project.api_log())) == sorted(
                str(("GET", r["outputs"].get("on_behalf_of"), None)) for r in saved
            )
            assert emulator.state.snapshot() == live_at_upgrade
        project.run("preview", "--expect-no-changes")  # nothing (more) to change
        assert project.api_log() == []
        upgraded = project.export()
        assert of_type(upgraded, ADOPTION_TYPE) == [] and len(of_type(upgraded, LEDGER_TYPE)) == 1
        settings = setting_resources(upgraded)
        # One per account setting, named by its account; the program's name kept as `name`; originals kept.
        by_name = {r["outputs"]["name"]: r for r in settings}
        assert len(by_name) == len(saved) == len(settings)
        for old in saved:
            name = old["outputs"].get("name") or old["urn"].rsplit("::", 1)[1]
            new = by_name[name]
            outs = new["outputs"]
            region, who = outs["region"], outs.get("on_behalf_of")
            assert new["urn"].rsplit("::", 1)[1] == (f"{region}/{who}" if who else region)
            originals = fixture_originals(old)
            assert fixture_originals(new) == originals, name
            kind = KINDS[new["type"].rsplit(":", 1)[1]]
            true = account(before, region, who, kind)
            assert originals == {f: true.get(f) for f in originals}, name  # the values from before the stack
            key = f"{kind}/{region}/{who}" if who else f"{kind}/{region}"
            assert ledger_originals(upgraded, key) == {f: true.get(f) for f in outs["managed_fields"]}, name

        project.run("refresh", "--yes", "--skip-preview")
        assert {m for m, _, _ in project.api_log()} == {"GET"}
        project.run("preview", "--expect-no-changes")

        live_before_destroy = emulator.state.snapshot()
        project.run("destroy", "--yes", "--skip-preview")
        after = emulator.state.snapshot()
        for resource in settings:
            outs = resource["outputs"]
            kind = KINDS[resource["type"].rsplit(":", 1)[1]]
            region, who = outs["region"], outs.get("on_behalf_of")
            now = account(after, region, who, kind)
            was = account(live_before_destroy, region, who, kind)
            true = account(before, region, who, kind)
            for field in outs["managed_fields"]:
                expected = {
                    "restore": true.get(field),  # an absent url is cleared again with "", and reads as absent
                    "disable": False if field == "enabled" else was.get(field),
                    "keep": was.get(field),
                }[outs["on_delete"]]
                assert now.get(field) == expected, (resource["urn"], field)
        assert (project.export()["deployment"].get("resources") or []) == []


def test_a_stack_of_0_1_0_upgrades_with_one_up_that_sends_no_change(tmp_path: Path, pulumi_bin: Path) -> None:
    """0.1.0 ran from a clone (`provider.click_tracking`); its state names a module that no longer exists.

    Preview works (it unpickles the program's new provider); one `pulumi up` declares the ledger (a GET per
    account; the originals 0.1.0 recorded win), moves each resource to its account's name and rewrites its provider
    reference without a PATCH; from then on refresh and destroy work, and destroy puts back the originals 0.1.0
    recorded.
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
        live_at_upgrade = emulator.state.snapshot()

        preview = project.run("preview")
        assert "+ 1 to create" in preview.stdout and "~ 3 to update" in preview.stdout  # the ledger; the 3 settings
        assert project.api_log() == []
        project.up()
        assert sorted(map(str, project.api_log())) == sorted(
            map(str, [("GET", None, None), ("GET", "alice", None), ("GET", "bob", None)])
        )  # the ledger read each account; no PATCH
        assert emulator.state.snapshot() == live_at_upgrade
        upgraded = project.export()
        assert {key: ledger_originals(upgraded, key) for key in ("click/global", "click/global/alice")} == {
            "click/global": {"enabled": True},
            "click/global/alice": {"enabled": True},
        } and ledger_originals(upgraded, "click/global/bob") == {"enabled": False}
        settings = {r["urn"].rsplit("::", 1)[1]: r["outputs"] for r in setting_resources(project.export())}
        assert {urn: (outs["name"], outs["originals"], outs["held_fields"]) for urn, outs in settings.items()} == {
            "global": ("parent", {"enabled": True}, ["enabled"]),
            "global/alice": ("subuser-alice", {"enabled": True}, ["enabled"]),
            "global/bob": ("subuser-bob", {"enabled": False}, ["enabled"]),
        }
        project.run("preview", "--expect-no-changes")
        project.run("refresh", "--yes", "--skip-preview")
        project.run("preview", "--expect-no-changes")
        project.run("destroy", "--yes", "--skip-preview")
        after = emulator.state.snapshot()["global"]
        assert after["parent"]["click"]["enabled"] is True
        assert {u: after["subusers"][u]["click"]["enabled"] for u in ("alice", "bob")} == {"alice": True, "bob": False}


def test_an_upgraded_stack_replaced_setting_keeps_the_true_original(tmp_path: Path, pulumi_bin: Path) -> None:
    """After the upgrade, `pulumi up --replace <setting>` gives the account back, then takes it over again, and
    `pulumi state delete <setting>` + `pulumi up` takes one over again: each new resource's original is what
    the account held before the stack (before.json), never what this stack wrote (it is what SendGrid holds
    at the upgrade, so a ledger that read SendGrid then would hold that)."""
    fixture = COMPAT / "v0.2.0"
    state = json.loads((fixture / "state.json").read_text())
    before = json.loads((fixture / "before.json").read_text())
    world = EmulatorState(api_keys=[TEST_KEY])
    world.restore(json.loads((fixture / "world.json").read_text()))
    with Emulator(world) as emulator:
        project = PulumiProject(tmp_path, emulator, pulumi_bin)
        shutil.copy(COMPAT / "program.py", project.dir / "__main__.py")
        shutil.copy(fixture / "Pulumi.dev.yaml", project.dir / "Pulumi.dev.yaml")
        (tmp_path / "state.json").write_text(json.dumps(state))
        project.run("stack", "import", "--file", str(tmp_path / "state.json"))
        project.up()
        urn = next(r["urn"] for r in setting_resources(project.export()) if r["urn"].endswith("ClickTracking::global"))
        project.up("--replace", urn)
        parent = next(r for r in setting_resources(project.export()) if r["urn"] == urn)["outputs"]
        assert parent["originals"] == {"enabled": before["global"]["parent"]["click"]["enabled"]}
        assert parent["enabled"] != parent["originals"]["enabled"]  # the stack's value is live: a read would lie
        alice = next(r for r in setting_resources(project.export()) if r["urn"].endswith("ClickTracking::global/alice"))
        alice_before = before["global"]["subusers"]["alice"]["click"]["enabled"]
        assert alice["outputs"]["enabled"] != alice_before
        project.run("state", "delete", alice["urn"], "--yes")
        project.api_log()
        project.up()
        assert [m for m, _, _ in project.api_log()] == ["GET"]  # alice taken over again: her values now, no PATCH
        alice = next(r for r in setting_resources(project.export()) if r["urn"] == alice["urn"])["outputs"]
        assert alice["originals"] == {"enabled": alice_before}
        project.run("destroy", "--yes", "--skip-preview")
        after = emulator.state.snapshot()["global"]
        assert after["parent"]["click"] == before["global"]["parent"]["click"]
        assert after["subusers"]["alice"]["click"]["enabled"] == alice_before


def test_an_early_030_ledger_takes_over_one_more_account_then_destroy_restores_all(
    tmp_path: Path, pulumi_bin: Path
) -> None:
    """A stack whose ledger an earlier 0.3.0 wrote (mappings, nulls apart): the program declares one more
    account. The ledger reads only that one and rewrites every entry as JSON text, the null original of carol's
    url included; preview then sees nothing to change, and destroy gives every account back as it was."""
    fixture = COMPAT / "v0.3.0-early"
    state = json.loads((fixture / "state.json").read_text())
    (old_ledger,) = of_type(state, LEDGER_TYPE)
    assert all(isinstance(e, dict) for e in old_ledger["outputs"]["entries"].values())  # the early form
    before = json.loads((fixture / "before.json").read_text())
    world = EmulatorState(api_keys=[TEST_KEY])
    world.restore(json.loads((fixture / "world.json").read_text()))
    world.add_subuser("global", "dave", enabled=True)
    with Emulator(world) as emulator:
        project = PulumiProject(tmp_path, emulator, pulumi_bin)
        program = (COMPAT / "program.py").read_text()
        (project.dir / "__main__.py").write_text(
            program + 'ClickTracking("dave", enabled=False, on_behalf_of="dave")\n'
        )
        shutil.copy(fixture / "Pulumi.dev.yaml", project.dir / "Pulumi.dev.yaml")
        (tmp_path / "state.json").write_text(json.dumps(state))
        project.run("stack", "import", "--file", str(tmp_path / "state.json"))
        project.up()
        assert project.api_log() == [("GET", "dave", None), ("PATCH", "dave", {"enabled": False})]
        (ledger,) = of_type(project.export(), LEDGER_TYPE)
        entries = ledger["outputs"]["entries"]
        assert all(isinstance(text, str) for text in entries.values())
        for key, old in old_ledger["outputs"]["entries"].items():
            assert ledger_originals(project.export(), key) == ledger_entry(old)["originals"], key  # type: ignore[index]
        assert json.loads(entries["subscription/eu/carol"])["originals"]["url"] is None
        assert json.loads(entries["click/global/dave"]) == {"originals": {"enabled": True}}
        project.run("preview", "--expect-no-changes")
        project.run("destroy", "--yes", "--skip-preview")
        after = emulator.state.snapshot()
        assert account(after, "global", "dave", "click")["enabled"] is True
        for resource in setting_resources(state):
            outs = resource["outputs"]
            if outs["on_delete"] != "restore":
                continue
            kind = KINDS[resource["type"].rsplit(":", 1)[1]]
            true = account(before, outs["region"], outs.get("on_behalf_of"), kind)
            now = account(after, outs["region"], outs.get("on_behalf_of"), kind)
            assert {f: now.get(f) for f in outs["managed_fields"]} == {
                f: true.get(f) for f in outs["managed_fields"]
            }, resource["urn"]
