"""The resources a program declares, under Pulumi's mocks (no engine): engine names, one owner, the ledger.

The mocks see what the program registers (type, name, inputs), not the resource options: those are
covered through the real engine (tests/e2e/test_originals.py, test_ownership.py). A user's suite under
mocks, in a process of its own: tests/test_mocks.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi_sendgrid_tracking import ClickTracking, SubscriptionTracking, resources, stack_config


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[tuple[str, str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append((args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ.endswith(":Originals"):
            outputs["entries"] = {}
        return args.name, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.setattr(stack_config, "_checked", True)  # the stack config is tested on its own
    monkeypatch.setattr(resources, "_RUN_WITHOUT_ROOT", [])  # each test is a program run of its own
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, preview=False)
    yield recorder


def names(recorder: Recorder) -> list[tuple[str, str]]:
    return sorted((typ.rsplit(":", 1)[-1], name) for typ, name, _ in recorder.registered)


@pulumi.runtime.test
def test_settings_are_named_by_their_account_and_the_ledger_lists_them(mocks: Recorder) -> Any:
    alice = ClickTracking("alice-clicks", enabled=False, on_behalf_of="alice")
    parent = ClickTracking("parent-clicks", enabled=True, region="eu")
    footer = SubscriptionTracking("carol-footer", enabled=True, url="https://example.com/bye", on_behalf_of="carol")

    def check(_: Any) -> None:
        assert names(mocks) == [
            ("ClickTracking", "eu"),
            ("ClickTracking", "global/alice"),
            ("Originals", "originals"),
            ("SubscriptionTracking", "global/carol"),
        ]
        registered = {name: inputs for _, name, inputs in mocks.registered}
        assert registered["global/alice"]["name"] == "alice-clicks"  # the program's name is an input
        assert registered["originals"]["accounts"] == {  # the key names the account; its managed fields
            "click/eu": ["enabled"],
            "click/global/alice": ["enabled"],
            "subscription/global/carol": ["enabled", "url"],
        }

    return pulumi.Output.all(alice.urn, parent.urn, footer.urn).apply(check)  # once all three are registered


def test_two_resources_for_one_accounts_setting_are_refused_naming_both(mocks: Recorder) -> None:
    @pulumi.runtime.test
    def program() -> Any:
        ClickTracking("alice-clicks", enabled=False, on_behalf_of="alice")
        ClickTracking("alice-again", enabled=True, on_behalf_of="alice")

    with pytest.raises(pulumi.RunError) as info:
        program()
    assert str(info.value) == (
        "ClickTracking resources 'alice-clicks' and 'alice-again' both manage click tracking of subuser 'alice' "
        "(global): one account's setting has one owner. Remove one of them (or give them different "
        "on_behalf_of/region values)."
    )
