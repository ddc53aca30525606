"""The program's fleet config: every mistake reported at once, by path, before anything is declared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_sendgrid_tracking.fleet import (
    FleetConfigError,
    FleetEntry,
    fleet_from_stack_config,
    load_fleet_yaml,
    parse_fleet,
)

NS = "sendgrid-click-tracking"


def problems_of(config: Any) -> list[str]:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(config)
    return info.value.problems


def test_a_full_fleet() -> None:
    entries = parse_fleet(
        {
            "parent": {"enabled": True},
            "subusers": [
                {"username": "alice", "enabled": False},
                {"username": "carol", "enabled": True, "region": "eu", "onDelete": "disable"},
                {"accountId": "42", "enabled": True, "onDelete": "keep"},
                {"accountId": "0042", "enabled": False},  # quoted: kept exactly as written
            ],
        }
    )
    assert entries == [
        FleetEntry("parent", True, None, None, "restore"),
        FleetEntry("subuser-alice", False, "alice", None, "restore"),
        FleetEntry("subuser-carol", True, "carol", "eu", "disable"),
        FleetEntry("account-42", True, "account-id 42", None, "keep"),
        FleetEntry("account-0042", False, "account-id 0042", None, "restore"),
    ]


# -- an empty fleet is a mistake unless it says manageNothing: true ------------------------------


@pytest.mark.parametrize(
    "config",
    [None, {}, {"subusers": []}, {"manageNothing": False}, {"subusers": [], "manageNothing": False}],
    ids=["empty file", "empty mapping", "no subusers", "manageNothing false", "both"],
)
def test_an_empty_fleet_is_refused(config: Any) -> None:
    (problem,) = problems_of(config)
    assert problem.startswith("no accounts: the fleet ")
    assert "a deploy would give up every account this stack manages" in problem
    assert "manageNothing: true" in problem


def test_an_empty_file_says_so() -> None:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(load_fleet_yaml("# every account was removed\n", "fleets/prod.yaml"), source="fleets/prod.yaml")
    assert str(info.value).startswith("invalid click tracking config in fleets/prod.yaml:\n  - no accounts: ")
    assert "fleets/prod.yaml is empty (or only comments)" in str(info.value)


@pytest.mark.parametrize("config", [{"manageNothing": True}, {"manageNothing": True, "subusers": []}])
def test_manage_nothing_on_purpose(config: dict[str, Any]) -> None:
    assert parse_fleet(config) == []


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            {"manageNothing": True, "parent": {"enabled": True}},
            "manageNothing: true, but the fleet lists parent; remove manageNothing to manage them",
        ),
        (
            {"manageNothing": True, "subusers": [{"username": "a", "enabled": True}, {"username": "b"}]},
            "manageNothing: true, but the fleet lists subusers[0], subusers[1]",
        ),
        ({"manageNothing": "true"}, "manageNothing: must be true or false (unquoted), got 'true'"),
        ({"manageNothing": 1}, "manageNothing: must be true or false (unquoted), got 1"),
    ],
)
def test_manage_nothing_contradictions(config: dict[str, Any], problem: str) -> None:
    assert any(p.startswith(problem) for p in problems_of(config)), problems_of(config)


def test_null_parent_and_subusers_are_not_an_empty_fleet() -> None:
    assert problems_of({"parent": None, "subusers": None}) == [
        "parent: empty; give enabled: true or false (and optionally region, onDelete), "
        "or remove the key to leave the parent account alone",
        "subusers: empty; list the accounts, or write `subusers: []` for none",
    ]


# -- accountId: decimal digits, quoted ---------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_value", "got"),
    [
        ("042", "the unquoted number 34"),  # YAML 1.1 octal
        ("0x10", "the unquoted number 16"),
        ("1_000", "the unquoted number 1000"),
        ("42", "the unquoted number 42"),  # harmless here, but indistinguishable from 042 once parsed
        ("1.5", "the unquoted number 1.5"),
        ("true", "the unquoted true (a boolean)"),
        ("~", "nothing (null)"),
        ("[1]", "a list"),
    ],
)
def test_an_unquoted_account_id_is_refused_with_a_hint_to_quote_it(yaml_value: str, got: str) -> None:
    data = load_fleet_yaml(f"subusers:\n  - accountId: {yaml_value}\n    enabled: true\n", "fleet.yaml")
    (problem,) = problems_of(data)
    assert problem.startswith(f"subusers[0].accountId: must be a string of decimal digits, got {got}; ")
    assert 'write it in quotes, exactly as SendGrid shows it, e.g. accountId: "12345"' in problem
    assert "--type string" in problem


@pytest.mark.parametrize("value", ["abc", "-1", "", " 42", "42 ", "4 2", "1e3", "0x10", "٤٢", "42\n"])
def test_a_quoted_account_id_must_be_decimal_digits(value: str) -> None:
    (problem,) = problems_of({"subusers": [{"accountId": value, "enabled": True}]})
    assert problem == f"subusers[0].accountId: must be the account's ID in decimal digits (0-9), got {value!r}"


def test_an_unquoted_username_is_refused_with_a_hint_to_quote_it() -> None:
    data = load_fleet_yaml("subusers:\n  - username: 12345\n    enabled: true\n", "fleet.yaml")
    assert problems_of(data) == [
        'subusers[0].username: must be a string, got the unquoted number 12345; quote it: username: "..."'
    ]


# -- YAML: duplicate keys, booleans, shapes ----------------------------------------------------


def test_duplicate_keys_are_reported_by_path_and_line() -> None:
    text = (
        "parent:\n"
        "  enabled: true\n"
        "  enabled: false\n"
        "subusers:\n"
        "  - username: alice\n"
        "    enabled: true\n"
        "    enabled: false\n"
        "subusers: []\n"
    )
    with pytest.raises(FleetConfigError) as info:
        load_fleet_yaml(text, "fleets/dev.yaml")
    assert info.value.problems == [
        "parent.enabled: given twice (lines 2 and 3); YAML would silently keep the last one, so keep one",
        "subusers[0].enabled: given twice (lines 6 and 7); YAML would silently keep the last one, so keep one",
        "subusers: given twice (lines 4 and 8); YAML would silently keep the last one, so keep one",
    ]
    assert str(info.value).startswith("invalid click tracking config in fleets/dev.yaml:")


def test_yaml_booleans_are_only_true_and_false() -> None:
    # As Pulumi reads Pulumi.<stack>.yaml: `yes` is a string there and here, never a silent true.
    data = load_fleet_yaml("subusers:\n  - username: no\n    enabled: yes\n", "fleet.yaml")
    assert data == {"subusers": [{"username": "no", "enabled": "yes"}]}
    assert problems_of(data) == ["subusers[0].enabled: must be true or false (unquoted), got 'yes'"]
    assert load_fleet_yaml("parent: {enabled: True}\n", "f") == {"parent": {"enabled": True}}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- username: alice\n", "(top level): expected a mapping with parent, subusers, manageNothing, got a list"),
        ("just words\n", "(top level): expected a mapping with parent, subusers, manageNothing, got a str"),
        ("42\n", "(top level): expected a mapping with parent, subusers, manageNothing, got the unquoted number 42"),
        ("parent: {enabled: true}\n---\nparent: {enabled: false}\n", "not valid YAML: expected a single document"),
        ("parent: [unclosed\n", "not valid YAML: "),
        ("subusers: alice\n", "subusers: expected a list, got a str"),
        ("subusers:\n  - alice\n", "subusers[0]: expected a mapping with username, accountId, enabled"),
        ("parent: true\n", "parent: expected a mapping with enabled, region, onDelete, got the unquoted true"),
    ],
)
def test_shapes_are_reported_without_a_traceback(text: str, problem: str) -> None:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(load_fleet_yaml(text, "fleet.yaml"))
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


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
        ({"subusers": {"alice": {}}}, "subusers: expected a list, got a dict"),
        ({"subusers": [{"enabled": True}]}, "subusers[0]: give exactly one of username or accountId"),
        ({"subusers": [{"username": "a", "accountId": "1", "enabled": True}]}, "subusers[0]: give exactly one"),
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
        (
            {"subusers": [{"accountId": "7", "enabled": True}, {"accountId": "7", "enabled": False}]},
            "subusers[1]: 'account-id 7' is already configured at subusers[0]; remove one",
        ),
        ({"subuser": []}, "subuser: unknown field; allowed: parent, subusers, manageNothing"),
    ],
)
def test_mistakes_are_named_by_path(config: dict[str, Any], problem: str) -> None:
    assert any(p.startswith(problem) for p in problems_of(config)), problems_of(config)


def test_all_problems_at_once() -> None:
    problems = problems_of(
        {"parent": {"enabled": 1}, "subusers": [{"username": "x"}, {"accountId": "7", "enabled": "no"}]}
    )
    assert len(problems) == 3
    with pytest.raises(FleetConfigError) as info:
        parse_fleet({"parent": {"enabled": 1}})
    assert str(info.value).startswith("invalid click tracking config:\n  - parent.enabled")


# -- from the program's stack config -----------------------------------------------------------


def files(contents: dict[str, str]) -> Any:
    def read(path: str) -> str:
        if path not in contents:
            raise FileNotFoundError(2, "No such file or directory", path)
        return contents[path]

    return read


def from_config(values: dict[str, Any], contents: dict[str, str] | None = None) -> list[FleetEntry]:
    return fleet_from_stack_config(values, files(contents or {}), namespace=NS)


def config_problems(values: dict[str, Any], contents: dict[str, str] | None = None) -> tuple[str | None, list[str]]:
    with pytest.raises(FleetConfigError) as info:
        from_config(values, contents)
    return info.value.source, info.value.problems


def test_inline_config_as_the_engine_delivers_it() -> None:
    # Objects arrive as JSON text, plain values as strings ("true"), a null or empty key as "".
    values = {"parent": json.dumps({"enabled": True}), "subusers": json.dumps([{"accountId": "042", "enabled": False}])}
    assert from_config(values) == [
        FleetEntry("parent", True, None, None, "restore"),
        FleetEntry("account-042", False, "account-id 042", None, "restore"),
    ]
    assert from_config({"manageNothing": "true"}) == []
    assert from_config({"manageNothing": "true", "subusers": "[]"}) == []


def test_inline_mistakes() -> None:
    assert config_problems({}) == (
        "stack config",
        [
            f"no fleet configured: set {NS}:fleetFile to a fleet file, or {NS}:parent and/or {NS}:subusers; "
            f"to manage no account on purpose, {NS}:manageNothing: true (check the spelling of the keys)"
        ],
    )
    _, problems = config_problems({"parent": "", "subusers": ""})
    assert [p.split(";")[0] for p in problems] == ["parent: empty", "subusers: empty"]
    _, (problem,) = config_problems({"subusers": "[]"})
    assert problem.startswith("no accounts: stack config lists no parent and no subusers")
    assert f"say so: pulumi config set {NS}:manageNothing true" in problem
    _, (problem,) = config_problems({"subusers": json.dumps([{"accountId": 34, "enabled": True}])})
    assert problem.startswith("subusers[0].accountId: must be a string of decimal digits, got the unquoted number 34")
    _, (problem,) = config_problems({"parent": "enabled"})
    assert problem.startswith("parent: expected a mapping with enabled, region, onDelete, got a str")
    _, (problem,) = config_problems({"manageNothing": "yes"})
    assert problem == "manageNothing: must be true or false (unquoted), got 'yes'"


def test_a_fleet_file() -> None:
    assert from_config({"fleetFile": "f.yaml"}, {"f.yaml": "parent:\n  enabled: false\n"}) == [
        FleetEntry("parent", False, None, None, "restore")
    ]
    assert from_config({"fleetFile": "f.yaml"}, {"f.yaml": "manageNothing: true\n"}) == []


@pytest.mark.parametrize(
    ("values", "contents", "source", "problem"),
    [
        (
            {"fleetFile": "f.yaml", "parent": json.dumps({"enabled": True})},
            {},
            "stack config",
            f"set either {NS}:fleetFile or parent/subusers/manageNothing in stack config, not both "
            f"(stack config has {NS}:parent)",
        ),
        (
            {"fleetFile": "f.yaml", "manageNothing": "true"},
            {},
            "stack config",
            f"set either {NS}:fleetFile or parent/subusers/manageNothing in stack config, not both",
        ),
        ({"fleetFile": "nowhere.yaml"}, {}, "stack config", f"{NS}:fleetFile: cannot read nowhere.yaml: No such file"),
        ({"fleetFile": ""}, {}, "stack config", f"{NS}:fleetFile: must name a YAML file"),
        ({"fleetFile": '["a.yaml"]'}, {}, "stack config", f"{NS}:fleetFile: must name a YAML file"),
        ({"fleetFile": "f.yaml"}, {"f.yaml": ""}, "f.yaml", "no accounts: f.yaml is empty (or only comments)"),
        ({"fleetFile": "f.yaml"}, {"f.yaml": "parent: null\nsubusers: null\n"}, "f.yaml", "parent: empty"),
        ({"fleetFile": "f.yaml"}, {"f.yaml": "- parent\n"}, "f.yaml", "(top level): expected a mapping"),
        (
            {"fleetFile": "f.yaml"},
            {"f.yaml": "parent: {enabled: true}\nparent: {enabled: true}\nsubusers: {}\n"},
            "f.yaml",
            "parent: given twice (lines 1 and 2)",
        ),
    ],
)
def test_fleet_file_mistakes(values: dict[str, Any], contents: dict[str, str], source: str, problem: str) -> None:
    where, problems = config_problems(values, contents)
    assert where == source
    assert any(p.startswith(problem) for p in problems), problems


def test_duplicates_and_other_problems_are_reported_together() -> None:
    _, problems = config_problems(
        {"fleetFile": "f.yaml"}, {"f.yaml": "parent: {enabled: true}\nparent: {enabled: true}\nsubusers: {}\n"}
    )
    assert [p.split(":")[0] for p in problems] == ["parent", "subusers"]


def test_an_unreadable_fleet_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"parent:\n  enabled: true # caf\xe9\n")

    def read(path: str) -> str:
        return (tmp_path / path).read_text(encoding="utf-8")

    for name, reason in [("latin1.yaml", "utf-8"), (".", "Is a directory")]:
        with pytest.raises(FleetConfigError) as info:
            fleet_from_stack_config({"fleetFile": name}, read, namespace=NS)
        (problem,) = info.value.problems
        assert problem.startswith(f"{NS}:fleetFile: cannot read {name}: ") and reason in problem


def test_the_repositorys_fleets_parse() -> None:
    root = Path(__file__).resolve().parent.parent
    for stack in ("dev", "prod"):
        text = (root / "fleets" / f"{stack}.yaml").read_text()
        assert len(parse_fleet(load_fleet_yaml(text, stack))) == 4
