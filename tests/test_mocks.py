"""A user's unit tests with `pulumi.runtime.set_mocks`: each test declares settings, each gets its ledger.

Run in a child pytest (set_mocks is process-wide): two tests that each declare a setting must both pass,
and each setting's ledger input must hold its own account's entry.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USERS_TESTS = """
import pulumi


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        outs = dict(args.inputs)
        if args.typ.endswith(":Originals") and "click/global/carol" in args.inputs["accounts"]:
            # A ledger an earlier 0.3.0 wrote, unchanged by this run: its outputs in that release's form.
            spec = {"setting": "click", "region": "global", "on_behalf_of": "carol", "managed": ["enabled"]}
            outs["accounts"] = {"click/global/carol": spec}
            outs["entries"] = {"click/global/carol": {"originals": {"enabled": True}, "held": ["enabled"]}}
        elif args.typ.endswith(":Originals"):
            entry = '{"originals":{"enabled":true}}'
            outs["entries"] = {key: entry for key in args.inputs["accounts"]}
        return [args.name + "_id", outs]

    def call(self, args):
        return {}


pulumi.runtime.set_mocks(Mocks(), preview=False)

from pulumi_sendgrid_tracking import ClickTracking, OpenTracking  # noqa: E402


@pulumi.runtime.test
def test_alice():
    click = ClickTracking("alice-clicks", enabled=False, on_behalf_of="alice")
    return pulumi.Output.all(click.enabled, click.name).apply(lambda v: print("alice", v))


@pulumi.runtime.test
def test_bob():
    opens = OpenTracking("bob-opens", enabled=True, on_behalf_of="bob")
    return opens.enabled.apply(lambda v: print("bob", v))


@pulumi.runtime.test
def test_carol():
    click = ClickTracking("carol-clicks", enabled=True, on_behalf_of="carol")
    return click.enabled.apply(lambda v: print("carol", v))
"""


def test_settings_declared_in_several_mocked_tests(tmp_path: Path) -> None:
    (tmp_path / "test_users_program.py").write_text(USERS_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert "alice [False, 'alice-clicks']" in result.stdout
    assert "bob True" in result.stdout
    assert "carol True" in result.stdout  # a ledger of an earlier 0.3.0 is read as it is
