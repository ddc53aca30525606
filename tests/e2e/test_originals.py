"""One truth for what an account held: the sequences of issue 18, through the real engine.

Each test drives a sequence a user could run and checks what the user would: SendGrid's live values (the
emulator), the originals in the state (each setting's own and the stack's ledger), that a plain
`pulumi preview --expect-no-changes` tells the truth, and that destroy puts back the value from before the
stack took the field over: never a value this stack wrote.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from pulumi_sendgrid_tracking.emulator import Fault

from tools.pulumi_project import PROJECT

from .conftest import PulumiProject
from .test_ownership import declare, ledger_in_state, repair_empty_sidecars, settings_in_state

pytestmark = pytest.mark.engine

SETTING_URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:SubscriptionTracking::global/alice"
LEDGER_URN = f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:Originals::originals"
BEFORE_URL = "https://before.example.com/unsubscribe"
PLAIN = "Bye: <% %>"


def sub(project: PulumiProject, user: str = "alice", world: str = "global") -> dict[str, Any]:
    data = project.emulator.state.snapshot()[world]
    return dict(data["subusers"][user]["subscription"])


def alice_sub(**fields: Any) -> dict[str, Any]:
    return {"name": "alice-sub", "kind": "subscription", "on_behalf_of": "alice", **fields}


def requests(project: PulumiProject) -> list[tuple[str, str | None, Any]]:
    return project.api_log()


def changed_since(project: PulumiProject, before: int) -> int:
    return sum(1 for e in project.emulator.state.request_log()[before:] if e["changed"])


def in_step(project: PulumiProject) -> None:
    project.run("preview", "--expect-no-changes")


@pytest.fixture
def alice(project: PulumiProject) -> PulumiProject:
    """alice's subscription tracking before the stack: off, with a url and a plain footer of her own."""
    project.emulator.state.set_out_of_band(
        "global", "alice", "subscription", {"enabled": False, "url": BEFORE_URL, "plain_content": "Old: <% %>"}
    )
    return project


def test_a_field_managed_after_adoption_survives_a_failed_give_back_and_its_retry(alice: PulumiProject) -> None:
    project = alice
    declare(project, alice_sub(enabled=True))
    project.up()
    declare(project, alice_sub(enabled=True, url="https://new.example.com/bye"))
    project.up()
    assert settings_in_state(project)["alice-sub"]["originals"]["url"] == BEFORE_URL
    declare(project)  # alice leaves the program: restore
    project.emulator.state.add_fault(Fault("503", count=10_000, method="PATCH", account="alice"))
    failed = project.up(check=False)
    assert failed.returncode != 0
    assert sub(project)["url"] == "https://new.example.com/bye"  # nothing given back yet
    assert "alice-sub" in settings_in_state(project)  # the setting stays, with its originals
    project.emulator.state.clear_faults()
    project.api_log()
    project.up()
    assert [r for r in requests(project) if r[0] == "PATCH"] == [
        ("PATCH", "alice", {"enabled": False, "url": BEFORE_URL})
    ]
    assert (sub(project)["enabled"], sub(project)["url"]) == (False, BEFORE_URL)


def test_an_update_adding_a_field_killed_after_its_patch_keeps_the_fields_original(alice: PulumiProject) -> None:
    project = alice
    declare(project, alice_sub(enabled=True))
    project.up()
    declare(project, alice_sub(enabled=True, url="https://new.example.com/bye"))
    project.emulator.state.configure(latency=0.6)  # time to kill the run after the PATCH, before its checkpoint
    before = len(project.emulator.state.request_log())
    proc = project.start(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"])
    deadline = time.monotonic() + 120
    while changed_since(project, before) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    project.emulator.state.configure(latency=0.0)
    assert sub(project)["url"] == "https://new.example.com/bye"  # the PATCH landed
    repair_empty_sidecars(project)  # the kill may land mid-checkpoint: the documented repair comes first
    assert ledger_in_state(project)["subscription/global/alice"]["originals"]["url"] == BEFORE_URL
    project.run("cancel", "--yes", check=False)
    project.up("--refresh")  # the documented recovery, what pipelines/deploy runs
    assert settings_in_state(project)["alice-sub"]["originals"]["url"] == BEFORE_URL
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert (sub(project)["enabled"], sub(project)["url"]) == (False, BEFORE_URL)


def test_an_update_whose_outcome_is_unknown_then_the_recovery_keeps_the_original(alice: PulumiProject) -> None:
    project = alice
    declare(project, alice_sub(enabled=True))
    project.up()
    declare(project, alice_sub(enabled=True, url="https://new.example.com/bye"))
    project.up("--target", LEDGER_URN)  # the ledger reads url's original first (a plain up does it in one go)
    # The PATCH lands but its answers are lost (the retries too), and every read fails: the outcome is unknown.
    project.emulator.state.add_fault(Fault("500", count=10_000, method="PATCH", account="alice", apply=True))
    project.emulator.state.add_fault(Fault("503", count=10_000, method="GET", account="alice"))
    failed = project.up(check=False)
    assert failed.returncode != 0 and "landed is unknown" in failed.stdout
    project.emulator.state.clear_faults()
    project.up("--refresh")
    assert settings_in_state(project)["alice-sub"]["originals"]["url"] == BEFORE_URL
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert sub(project)["url"] == BEFORE_URL


def test_a_field_managed_unmanaged_and_managed_again_keeps_its_first_original(alice: PulumiProject) -> None:
    project = alice
    declare(project, alice_sub(enabled=True, url="https://one.example.com/bye"))
    project.up()
    declare(project, alice_sub(enabled=True))  # url no longer managed: left as it is, original kept
    project.api_log()
    project.up()
    assert requests(project) == []
    assert sub(project)["url"] == "https://one.example.com/bye"
    declare(project, alice_sub(enabled=True, url="https://two.example.com/bye"))
    project.api_log()
    project.up()
    assert requests(project) == [("PATCH", "alice", {"url": "https://two.example.com/bye"})]  # no GET: held
    assert settings_in_state(project)["alice-sub"]["originals"]["url"] == BEFORE_URL
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert (sub(project)["enabled"], sub(project)["url"]) == (False, BEFORE_URL)


def test_target_adding_a_field_fails_preview_until_the_ledger_is_targeted_too(alice: PulumiProject) -> None:
    project = alice
    declare(project, alice_sub(enabled=True))
    project.up()
    declare(project, alice_sub(enabled=True, url="https://new.example.com/bye"))
    project.api_log()
    refused = project.run("preview", "--target", SETTING_URN, check=False)
    assert refused.returncode != 0
    assert "the original of url" in refused.stdout and "--target" in refused.stdout
    assert requests(project) == []
    project.up("--target", SETTING_URN, "--target", LEDGER_URN)
    assert requests(project) == [
        ("GET", "alice", None),
        ("PATCH", "alice", {"url": "https://new.example.com/bye"}),
    ]
    assert settings_in_state(project)["alice-sub"]["originals"]["url"] == BEFORE_URL
    in_step(project)
    project.run("destroy", "--yes", "--skip-preview")
    assert sub(project)["url"] == BEFORE_URL


def test_an_output_argument_that_resolves_to_none_is_refused_before_anything_is_sent(project: PulumiProject) -> None:
    (project.dir / "__main__.py").write_text(
        "import pulumi\n"
        "from pulumi_sendgrid_tracking import SubscriptionTracking\n"
        "SubscriptionTracking('alice-sub', enabled=True, on_behalf_of='alice', url=pulumi.Output.from_input(None))\n"
    )
    failed = project.up(check=False)
    assert failed.returncode != 0
    assert "url was given as an Output that resolved to None" in failed.stdout
    assert [r for r in requests(project) if r[0] == "PATCH"] == []


def test_retain_on_delete_sends_nothing_when_the_resource_goes(project: PulumiProject) -> None:
    (project.dir / "__main__.py").write_text(
        "import pulumi\n"
        "from pulumi_sendgrid_tracking import ClickTracking\n"
        "ClickTracking('bob', enabled=False, on_behalf_of='bob', "
        "opts=pulumi.ResourceOptions(retain_on_delete=True))\n"
    )
    project.up()
    project.api_log()
    project.run("destroy", "--yes", "--skip-preview")
    assert requests(project) == []
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is False


def test_protect_refuses_the_destroy_and_sends_nothing(project: PulumiProject) -> None:
    (project.dir / "__main__.py").write_text(
        "import pulumi\n"
        "from pulumi_sendgrid_tracking import ClickTracking\n"
        "ClickTracking('bob', enabled=False, on_behalf_of='bob', opts=pulumi.ResourceOptions(protect=True))\n"
    )
    project.up()
    project.api_log()
    refused = project.run("destroy", "--yes", "--skip-preview", check=False)
    assert refused.returncode != 0 and "protected" in refused.stdout
    assert requests(project) == []


def test_ignore_changes_ignores_drift_of_that_field(project: PulumiProject) -> None:
    (project.dir / "__main__.py").write_text(
        "import pulumi\n"
        "from pulumi_sendgrid_tracking import ClickTracking\n"
        "ClickTracking('bob', enabled=False, on_behalf_of='bob', "
        "opts=pulumi.ResourceOptions(ignore_changes=['enabled']))\n"
    )
    project.up()
    project.emulator.state.set_out_of_band("global", "bob", "click", {"enabled": True})
    project.api_log()
    project.up("--refresh")
    assert [r for r in requests(project) if r[0] == "PATCH"] == []
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is True


def test_delete_before_replace_false_is_refused_at_preview(project: PulumiProject) -> None:
    (project.dir / "__main__.py").write_text(
        "import pulumi\n"
        "from pulumi_sendgrid_tracking import ClickTracking\n"
        "ClickTracking('bob', enabled=False, on_behalf_of='bob', "
        "opts=pulumi.ResourceOptions(delete_before_replace=False))\n"
    )
    refused = project.run("preview", check=False)
    assert refused.returncode != 0 and "delete_before_replace=False cannot be honoured" in refused.stdout
    assert requests(project) == []


@pytest.mark.parametrize("fault", ["malformed", "500-then-429s"])
def test_a_patch_that_landed_but_failed_is_recorded_as_landed(project: PulumiProject, fault: str) -> None:
    declare(project, {"name": "bob", "enabled": True, "on_behalf_of": "bob"})
    project.up()
    declare(project, {"name": "bob", "enabled": False, "on_behalf_of": "bob"})
    if fault == "malformed":
        project.emulator.state.add_fault(Fault("malformed", count=10, method="PATCH", account="bob", apply=True))
    else:
        project.emulator.state.add_fault(Fault("500", count=1, method="PATCH", account="bob", apply=True))
        project.emulator.state.add_fault(Fault("429", count=10_000, method="PATCH", account="bob"))
    project.up(check=False)
    project.emulator.state.clear_faults()
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is False
    assert settings_in_state(project)["bob"]["enabled"] is False  # what landed is recorded
    declare(project, {"name": "bob", "enabled": True, "on_behalf_of": "bob"})  # the program reverted
    preview = project.run("preview", "--expect-no-changes", check=False)
    assert preview.returncode != 0  # the reverted program is a change, because SendGrid holds the new value


def test_an_account_moved_between_components_keeps_one_resource(project: PulumiProject) -> None:
    program = (
        "import pulumi\n"
        "from pulumi_sendgrid_tracking import ClickTracking\n"
        "class Team(pulumi.ComponentResource):\n"
        "    def __init__(self, name):\n"
        "        super().__init__('acme:Team', name)\n"
        "        ClickTracking('bob', enabled=False, on_behalf_of='bob', opts=pulumi.ResourceOptions(parent=self))\n"
        "Team('{team}')\n"
    )
    (project.dir / "__main__.py").write_text(program.replace("{team}", "red"))
    project.up()
    (project.dir / "__main__.py").write_text(program.replace("{team}", "blue"))
    project.api_log()
    project.up()
    assert requests(project) == []  # no give-back undoing the new owner, no take-over again
    assert list(settings_in_state(project)) == ["bob"]
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is False


def test_an_account_changed_out_of_band_then_dropped_is_given_back_from_its_live_value(project: PulumiProject) -> None:
    declare(project, {"name": "bob", "enabled": False, "on_behalf_of": "bob"})
    project.up()
    # Someone turns it back on in SendGrid's UI, then the account leaves the program (restore: original on).
    project.emulator.state.set_out_of_band("global", "bob", "click", {"enabled": True})
    declare(project, {"name": "bob", "enabled": False, "on_behalf_of": "bob", "on_delete": "disable"})
    project.up("--target", f"urn:pulumi:dev::{PROJECT}::pulumi-python:dynamic/sendgrid:ClickTracking::global/bob")
    declare(project)
    project.api_log()
    project.up()
    # The state recorded `false`; SendGrid holds `true`: the give-back reads it and disables it.
    assert requests(project) == [("GET", "bob", None), ("PATCH", "bob", {"enabled": False})]
    assert project.emulator.state.snapshot()["global"]["subusers"]["bob"]["click"]["enabled"] is False
