"""Every setting end to end through the real engine: create, update, drift, each delete mode, managed fields.

Parametrized over the four settings; the fixtures are `CASES` of tests/test_singleton.py (what SendGrid
holds, what the stack asks for), with every unmanaged field set to a distinctive value before the first
`up`, so a stray write would show. After each step the tests check what a user would: the emulator's
request log exactly (method, on-behalf-of, body), the state's outputs and originals, and the live values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_sendgrid_tracking.tracking import SETTINGS

from ..test_singleton import CASES, Case
from .conftest import PulumiProject
from .test_ownership import declare, settings_in_state

UNMANAGED: dict[str, dict[str, Any]] = {
    "click": {"enable_text": True},
    "open": {},  # open tracking has `enabled` only
    "subscription": {
        "html_content": "<p>Had enough? <% Leave this list %></p>",
        "replace": "[unsubscribe-footer]",
        "landing": "<h1>You are off the list</h1>",
    },
    "google_analytics": {"utm_medium": "email-digest", "utm_term": "spring-sale", "utm_content": "footer-link"},
}
"""Distinctive live values of the fields the stack does not manage (`CASES[...].desired` leaves them out)."""

UPDATE: dict[str, dict[str, Any]] = {
    "click": {"enabled": True},
    "open": {"enabled": True},
    "subscription": {"url": "https://example.com/farewell"},
    "google_analytics": {"utm_campaign": "summer"},
}
"""One managed field changed in an update."""

DRIFT: dict[str, dict[str, Any]] = {
    "click": {"enabled": True},
    "open": {"enabled": True},
    "subscription": {"enabled": False, "plain_content": "Changed in the UI: <% %>"},
    "google_analytics": {"utm_source": "ui.example.com"},
}
"""An out-of-band change of managed fields (someone in SendGrid's UI)."""

NEWLY_MANAGED: dict[str, tuple[str, str, str]] = {
    "subscription": ("replace", "[changed-in-the-ui]", "[stack-footer]"),
    "google_analytics": ("utm_medium", "ui-medium", "newsletter"),
}
"""(field, its value changed in the UI before the stack manages it, the stack's value) per optional setting."""

NO_LONGER_MANAGED = {"subscription": "plain_content", "google_analytics": "utm_campaign"}
"""A managed field (with an original that differs from the stack's value) that the program drops."""

RESOURCE = {s.name: s.resource for s in SETTINGS.values()}


def scenario(name: str) -> Case:
    """`CASES[name]` with the unmanaged fields at their distinctive values."""
    case = CASES[name]
    return Case(case.provider, {**case.live, **UNMANAGED[name]}, dict(case.desired))


def present(values: dict[str, Any]) -> dict[str, Any]:
    """As SendGrid and the state hold it: fields that are None are absent, and so is a url cleared with ""."""
    return {k: v for k, v in values.items() if v is not None and not (k == "url" and v == "")}


def live(project: PulumiProject, name: str, user: str, world: str = "global") -> dict[str, Any]:
    return dict(project.emulator.state.snapshot()[world]["subusers"][user][name])


def set_live(project: PulumiProject, name: str, user: str, values: dict[str, Any], world: str = "global") -> None:
    project.emulator.state.set_out_of_band(world, user, name, present(values))


def unordered(log: list[tuple[str, str | None, Any]]) -> list[str]:
    """The engine runs steps in parallel: compare request logs as multisets."""
    return sorted(json.dumps(entry, sort_keys=True) for entry in log)


def state(project: PulumiProject) -> dict[str, dict[str, Any]]:
    """Resource name → its outputs in the exported state, without the pickled provider."""
    return {
        name: {k: v for k, v in outs.items() if k not in ("__provider", "kind")}
        for name, outs in settings_in_state(project).items()
    }


def expected_outputs(
    case: Case,
    values: dict[str, Any],
    originals: dict[str, Any],
    *,
    on_behalf_of: str,
    held: dict[str, Any] | None = None,
    **props: Any,
) -> dict[str, Any]:
    """The outputs the state must hold: every field as SendGrid answered, the program's name, the managed
    fields and their originals (`original_<field>`), and every original the resource holds (`originals`,
    nulls left out, and `held_fields`): `held` when it holds more than the managed fields' originals."""
    held = originals if held is None else held
    outs = present(case.outputs(live=values, originals=originals, on_behalf_of=on_behalf_of, **props))
    outs.update(
        name=on_behalf_of,
        managed_fields=sorted(originals),
        originals={k: v for k, v in held.items() if v is not None},
        held_fields=sorted(held),
    )
    # `original_<field>` of each managed field (a null one is left out of the state, as every null output).
    outs = {k: v for k, v in outs.items() if not k.startswith("original_")}
    outs.update({f"original_{k}": v for k, v in originals.items() if v is not None})
    return outs


def originals_of(before: dict[str, Any], managed: dict[str, Any]) -> dict[str, Any]:
    return {k: before.get(k) for k in managed}


def test_every_setting_has_a_scenario() -> None:
    assert set(UNMANAGED) == set(UPDATE) == set(DRIFT) == set(SETTINGS) == set(CASES)
    for name, case in CASES.items():
        unmanaged = {f.name for f in case.setting.fields if f.name not in case.desired}
        assert set(UNMANAGED[name]) == unmanaged, name  # every unmanaged field gets a distinctive value
        assert all(case.live.get(k) != v for k, v in UNMANAGED[name].items()), name
    assert set(NEWLY_MANAGED) == set(NO_LONGER_MANAGED) == {n for n, s in SETTINGS.items() if s.optional}


@pytest.mark.parametrize("name", list(CASES))
def test_create_update_drift_and_each_delete_mode(project: PulumiProject, name: str) -> None:
    """alice (restore) differs from the stack, bob (keep) already matches it, carol (EU, disable) is off."""
    case = scenario(name)
    resource = RESOURCE[name]
    desired = case.desired
    before = {
        "alice": dict(case.live),
        "bob": {**case.live, **desired},
        "carol": {**case.live, "enabled": False},
    }
    wanted = {"alice": desired, "bob": desired, "carol": {**desired, "enabled": True}}
    world = {"alice": "global", "bob": "global", "carol": "eu"}
    mode = {"alice": "restore", "bob": "keep", "carol": "disable"}
    for user, values in before.items():
        set_live(project, name, user, values, world[user])

    def program(**changed: dict[str, Any]) -> None:
        declare(
            project,
            *(
                {
                    "name": user,
                    "kind": name,
                    "on_behalf_of": user,
                    "region": world[user],
                    "on_delete": mode[user],
                    **changed.get(user, wanted[user]),
                }
                for user in before
            ),
        )

    def unmanaged_unchanged() -> None:
        for user in before:
            now = live(project, name, user, world[user])
            assert {k: now.get(k) for k in UNMANAGED[name]} == UNMANAGED[name], user

    # preview: nothing sent
    program()
    preview = project.run("preview")
    assert "+ 5 to create" in preview.stdout  # the stack, the stack's originals ledger, one per account
    assert project.api_log() == []

    # create: the ledger's one GET per account (the setting reuses it); a PATCH of the differing managed
    # fields only, none for bob
    project.up()
    differing = {user: {k: v for k, v in wanted[user].items() if before[user].get(k) != v} for user in before}
    assert differing["bob"] == {} and differing["alice"] and differing["carol"]
    assert unordered(project.api_log()) == unordered(
        [("GET", user, None) for user in before] + [("PATCH", user, body) for user, body in differing.items() if body]
    )
    after = {user: {**before[user], **wanted[user]} for user in before}
    for user in before:
        assert live(project, name, user, world[user]) == present(after[user]), user
    assert state(project) == {
        user: expected_outputs(
            case,
            after[user],
            originals_of(before[user], wanted[user]),
            on_behalf_of=user,
            region=world[user],
            on_delete=mode[user],
        )
        for user in before
    }
    unmanaged_unchanged()
    project.run("preview", "--expect-no-changes")
    assert project.api_log() == []

    # update: one PATCH of the changed field (no field newly managed: the ledger reads nothing)
    program(bob={**desired, **UPDATE[name]})
    project.up()
    assert project.api_log() == [("PATCH", "bob", UPDATE[name])]
    after["bob"] = {**after["bob"], **UPDATE[name]}
    assert live(project, name, "bob") == present(after["bob"])
    assert state(project)["bob"] == expected_outputs(
        case, after["bob"], originals_of(before["bob"], desired), on_behalf_of="bob", on_delete="keep"
    )
    unmanaged_unchanged()

    # drift: visible to `preview --refresh`, which changes nothing; `up --refresh` puts it back
    set_live(project, name, "alice", {**after["alice"], **DRIFT[name]})
    drift = project.run("preview", "--refresh", "--expect-no-changes", check=False)
    assert drift.returncode != 0
    # The engine names the resource by its account.
    assert f"sendgrid:{resource} global/alice update" in drift.stdout and "1 to update" in drift.stdout
    assert unordered(project.api_log()) == unordered([("GET", user, None) for user in before])  # none for the ledger
    assert live(project, name, "alice") == present({**after["alice"], **DRIFT[name]})
    project.up("--refresh")
    assert unordered(project.api_log()) == unordered(
        [("GET", user, None) for user in before] + [("PATCH", "alice", {k: desired[k] for k in DRIFT[name]})]
    )
    assert live(project, name, "alice") == present(after["alice"])
    assert state(project)["alice"] == expected_outputs(
        case, after["alice"], originals_of(before["alice"], desired), on_behalf_of="alice"
    )
    unmanaged_unchanged()
    project.run("preview", "--refresh", "--expect-no-changes")
    project.api_log()

    # destroy: each give-back reads the account, then one PATCH of what differs from its target: alice's
    # managed fields back to their originals (one absent before is cleared with ""), bob kept (nothing
    # sent), carol off
    project.run("destroy", "--yes", "--skip-preview")
    originals = {k: "" if before["alice"].get(k) is None else before["alice"][k] for k in desired}
    restore = {k: v for k, v in originals.items() if v != desired[k]}
    assert unordered(project.api_log()) == unordered(
        [
            ("GET", "alice", None),
            ("PATCH", "alice", restore),
            ("GET", "carol", None),
            ("PATCH", "carol", {"enabled": False}),
        ]
    )
    assert live(project, name, "alice") == present({**after["alice"], **restore})
    assert live(project, name, "bob") == present(after["bob"])
    assert live(project, name, "carol", "eu") == present({**after["carol"], "enabled": False})
    unmanaged_unchanged()
    assert state(project) == {}


@pytest.mark.parametrize("name", list(NEWLY_MANAGED))
def test_a_field_that_becomes_managed_or_stops_being_managed(project: PulumiProject, name: str) -> None:
    case = scenario(name)
    desired = case.desired
    added, in_the_ui, stack_value = NEWLY_MANAGED[name]
    dropped = NO_LONGER_MANAGED[name]
    assert added not in desired and dropped in desired and case.live[dropped] not in (None, desired[dropped])
    set_live(project, name, "alice", case.live)
    declare(project, {"name": "alice", "kind": name, "on_behalf_of": "alice", **desired})
    project.up()
    project.api_log()
    values = {**case.live, **desired}

    # An unmanaged field changed in the UI is not drift; refresh records SendGrid's answer.
    set_live(project, name, "alice", {**values, added: in_the_ui})
    values[added] = in_the_ui
    project.run("preview", "--refresh", "--expect-no-changes")
    project.run("refresh", "--yes", "--skip-preview")
    assert project.api_log() == [("GET", "alice", None), ("GET", "alice", None)]
    assert state(project)["alice"][added] == in_the_ui

    # The program manages `added` and drops `dropped`: the ledger reads the account once (the original of
    # `added`), then one PATCH of `added`; `dropped` is not sent, and its original stays held.
    managed = {**{k: v for k, v in desired.items() if k != dropped}, added: stack_value}
    declare(project, {"name": "alice", "kind": name, "on_behalf_of": "alice", **managed})
    project.up()
    assert project.api_log() == [("GET", "alice", None), ("PATCH", "alice", {added: stack_value})]
    values[added] = stack_value
    originals = {**originals_of(case.live, managed), added: in_the_ui}  # what SendGrid held before the stack
    held = {**originals, dropped: case.live[dropped]}
    assert state(project)["alice"] == expected_outputs(case, values, originals, on_behalf_of="alice", held=held)
    assert live(project, name, "alice") == present(values)
    project.run("preview", "--expect-no-changes")

    # destroy reads the account, then restores the managed fields (`added` to the value from the UI);
    # `dropped` keeps the stack's value.
    project.api_log()
    project.run("destroy", "--yes", "--skip-preview")
    restore = {k: "" if v is None else v for k, v in originals.items() if ("" if v is None else v) != values[k]}
    assert dropped not in restore and restore[added] == in_the_ui
    assert project.api_log() == [("GET", "alice", None), ("PATCH", "alice", restore)]
    assert live(project, name, "alice") == present({**values, **restore})
    assert live(project, name, "alice")[dropped] == desired[dropped]
