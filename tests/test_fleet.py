"""The program's fleet config: every mistake reported at once, by path, before anything is declared."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_sendgrid_tracking.fleet import FleetConfigError, FleetEntry, parse_fleet


def test_a_full_fleet() -> None:
    entries = parse_fleet(
        {
            "parent": {"enabled": True},
            "subusers": [
                {"username": "alice", "enabled": False},
                {"username": "carol", "enabled": True, "region": "eu", "onDelete": "disable"},
                {"accountId": 42, "enabled": True, "onDelete": "keep"},
            ],
        }
    )
    assert entries == [
        FleetEntry("parent", True, None, None, "restore"),
        FleetEntry("subuser-alice", False, "alice", None, "restore"),
        FleetEntry("subuser-carol", True, "carol", "eu", "disable"),
        FleetEntry("account-42", True, "account-id 42", None, "keep"),
    ]


def test_empty_config_is_an_empty_fleet() -> None:
    assert parse_fleet(None) == []
    assert parse_fleet({}) == []


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"parent": {}}, "parent.enabled: required; set it to true or false"),
        ({"parent": {"enabled": "true"}}, "parent.enabled: must be true or false (unquoted), got 'true'"),
        (
            {"parent": {"enabled": True, "username": "x"}},
            "parent.username: unknown field; allowed: enabled, region, onDelete",
        ),
        ({"parent": True}, "parent: expected a mapping"),
        ({"subusers": {"alice": {}}}, "subusers: expected a list, got dict"),
        ({"subusers": [{"enabled": True}]}, "subusers[0]: give exactly one of username or accountId"),
        ({"subusers": [{"username": "a", "accountId": 1, "enabled": True}]}, "subusers[0]: give exactly one"),
        ({"subusers": [{"username": "a", "enabled": True, "colour": "red"}]}, "subusers[0].colour: unknown field"),
        (
            {"subusers": [{"username": "a", "enabled": True, "region": "us"}]},
            "subusers[0].region: must be one of global, eu",
        ),
        (
            {"subusers": [{"username": "a", "enabled": True, "onDelete": "nuke"}]},
            "subusers[0].onDelete: must be one of",
        ),
        (
            {"subusers": [{"username": "a\nb", "enabled": True}]},
            "subusers[0].username: must not contain control characters",
        ),
        ({"subusers": [{"username": "", "enabled": True}]}, "subusers[0].username: must not be empty"),
        (
            {"subusers": [{"username": "a", "enabled": True}, {"username": "a", "enabled": False}]},
            "subusers[1]: 'a' is already configured at subusers[0]; remove one",
        ),
        ({"subuser": []}, "subuser: unknown field; allowed: parent, subusers"),
    ],
)
def test_mistakes_are_named_by_path(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(config)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_all_problems_at_once() -> None:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet({"parent": {"enabled": 1}, "subusers": [{"username": "x"}, {"accountId": "7", "enabled": "no"}]})
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("invalid click tracking config:\n  - parent.enabled")
