"""The program's fleet config: every mistake reported at once, by path, before anything is declared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pulumi_sendgrid_tracking.fleet import (
    SETTING_KEYS,
    FleetConfigError,
    FleetEntry,
    camel,
    fleet_from_stack_config,
    load_fleet_yaml,
    parse_fleet,
)
from pulumi_sendgrid_tracking.inputs import on_behalf_of_problem
from pulumi_sendgrid_tracking.tracking import MAX_CONTENT, MAX_SHORT_TEXT, MAX_URL, SETTINGS, Field, TrackingSetting

NS = "sendgrid-click-tracking"
URL = "https://example.com/unsubscribe"
PLAIN = "Unsubscribe: <% %>"


def click(name: str, enabled: bool, on_behalf_of: str | None, region: str | None, on_delete: str) -> FleetEntry:
    """A click tracking entry, as the click-only releases produced them."""
    return FleetEntry(name, "click", {"enabled": enabled}, on_behalf_of, region, on_delete)


def problems_of(config: Any) -> list[str]:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(config)
    return info.value.problems


def test_a_full_fleet_in_todays_shape() -> None:
    entries = parse_fleet(
        {
            "parent": {"enabled": True},
            "subusers": [
                {"username": "alice", "enabled": False},
                {"username": "carol", "enabled": True, "region": "eu", "onDelete": "disable"},
                {"accountId": "42", "enabled": True, "onDelete": "keep"},
                {"accountId": "0042", "enabled": False},  # quoted: kept exactly as written
                {"accountId": "sg2a2bcd3ef4ab5c67d8efab91c01de2fa", "enabled": False},  # SendGrid's own example
                {"accountId": "abc123def456hij789klm0", "enabled": True},
            ],
        }
    )
    assert entries == [
        click("parent", True, None, None, "restore"),
        click("subuser-alice", False, "alice", None, "restore"),
        click("subuser-carol", True, "carol", "eu", "disable"),
        click("account-42", True, "account-id 42", None, "keep"),
        click("account-0042", False, "account-id 0042", None, "restore"),
        click(
            "account-sg2a2bcd3ef4ab5c67d8efab91c01de2fa",
            False,
            "account-id sg2a2bcd3ef4ab5c67d8efab91c01de2fa",
            None,
            "restore",
        ),
        click("account-abc123def456hij789klm0", True, "account-id abc123def456hij789klm0", None, "restore"),
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
    assert str(info.value).startswith("invalid fleet config in fleets/prod.yaml:\n  - no accounts: ")
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
        "parent: empty; give its settings (e.g. click: {enabled: true}), "
        "or remove the key to leave the parent account alone",
        "subusers: empty; list the accounts, or write `subusers: []` for none",
    ]
    assert problems_of({"defaults": {"open": {"enabled": False}}, "parent": None}) == [
        "parent: empty; give its settings (e.g. click: {enabled: true}), or parent: {} to manage it with the "
        "defaults, or remove the key to leave the parent account alone",
    ]


# -- accountId: letters and digits, quoted ------------------------------------------------------


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
    assert problem.startswith(f"subusers[0].accountId: must be a string of letters and digits, got {got}; ")
    assert (
        'write it in quotes, exactly as SendGrid shows it, e.g. accountId: "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"'
        in problem
    )
    assert "--type string" in problem


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("-1", "'-1' has '-' (U+002D, HYPHEN-MINUS) at position 1"),
        (" 42", "' 42' has ' ' (U+0020, SPACE) at position 1"),
        ("42 ", "'42 ' has ' ' (U+0020, SPACE) at position 3"),
        ("4 2", "'4 2' has ' ' (U+0020, SPACE) at position 2"),
        ("sg2a-2b", "'sg2a-2b' has '-' (U+002D, HYPHEN-MINUS) at position 5"),
        ("1e3.5", "'1e3.5' has '.' (U+002E, FULL STOP) at position 4"),
        ("٤٢", "'٤٢' has '٤' (U+0664, ARABIC-INDIC DIGIT FOUR) at position 1"),
        ("sg2\u0430b", "'sg2\u0430b' has '\u0430' (U+0430, CYRILLIC SMALL LETTER A) at position 4"),
        ("sg2\u200bab", "'sg2\\u200bab' has '\\u200b' (U+200B, ZERO WIDTH SPACE) at position 4"),
        ("42\n", "'42\\n' has '\\n' (U+000A, a control character) at position 3"),
    ],
)
def test_a_quoted_account_id_must_be_letters_and_digits(value: str, found: str) -> None:
    """The same rule as a resource's on_behalf_of 'account-id <id>' (inputs.account_id_problem)."""
    (problem,) = problems_of({"subusers": [{"accountId": value, "enabled": True}]})
    assert problem.startswith(f"subusers[0].accountId: {found}: a customer account ID is ASCII letters and digits, ")
    assert "as SendGrid shows it (e.g. sg2a2bcd3ef4ab5c67d8efab91c01de2fa)" in problem
    assert on_behalf_of_problem(f"account-id {value}") is not None


def test_an_empty_account_id_is_refused() -> None:
    (problem,) = problems_of({"subusers": [{"accountId": "", "enabled": True}]})
    assert problem == (
        "subusers[0].accountId: the account ID is missing; write it as SendGrid shows it, "
        "e.g. sg2a2bcd3ef4ab5c67d8efab91c01de2fa"
    )


@pytest.mark.parametrize(
    ("username", "found"),
    [
        ("\u0441arol", "'\u0441arol' has '\u0441' (U+0441, CYRILLIC SMALL LETTER ES) at position 1"),
        ("car\u200bol", "'car\\u200bol' has '\\u200b' (U+200B, ZERO WIDTH SPACE) at position 4"),
        ("carol\n", "'carol\\n' has '\\n' (U+000A, a control character) at position 6"),
        ("car ol", "'car ol' has ' ' (U+0020, SPACE) at position 4"),
    ],
)
def test_a_username_must_be_printable_ascii_the_same_rule_as_on_behalf_of(username: str, found: str) -> None:
    (problem,) = problems_of({"subusers": [{"username": username, "enabled": True}]})
    assert problem == f"subusers[0].username: {on_behalf_of_problem(username)}"
    assert problem.startswith(f"subusers[0].username: {found}: a subuser's username is printable ASCII ")


def test_an_email_address_is_a_username() -> None:
    (entry,) = parse_fleet({"subusers": [{"username": "John@example.com", "enabled": True}]})
    assert (entry.name, entry.on_behalf_of) == ("subuser-John@example.com", "John@example.com")


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
    assert str(info.value).startswith("invalid fleet config in fleets/dev.yaml:")


def test_yaml_booleans_are_only_true_and_false() -> None:
    # As Pulumi reads Pulumi.<stack>.yaml: `yes` is a string there and here, never a silent true.
    data = load_fleet_yaml("subusers:\n  - username: no\n    enabled: yes\n", "fleet.yaml")
    assert data == {"subusers": [{"username": "no", "enabled": "yes"}]}
    assert problems_of(data) == ["subusers[0].enabled: must be true or false (unquoted), got 'yes'"]
    assert load_fleet_yaml("parent: {enabled: True}\n", "f") == {"parent": {"enabled": True}}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "- username: alice\n",
            "(top level): expected a mapping with defaults, parent, subusers, manageNothing, got a list",
        ),
        ("just words\n", "(top level): expected a mapping with defaults, parent, subusers, manageNothing, got a str"),
        (
            "42\n",
            "(top level): expected a mapping with defaults, parent, subusers, manageNothing, "
            "got the unquoted number 42",
        ),
        ("parent: {enabled: true}\n---\nparent: {enabled: false}\n", "not valid YAML: expected a single document"),
        ("parent: [unclosed\n", "not valid YAML: "),
        ("subusers: alice\n", "subusers: expected a list, got a str"),
        ("subusers:\n  - alice\n", "subusers[0]: expected a mapping with username, accountId, region, click, open"),
        (
            "parent: true\n",
            "parent: expected a mapping with region, click, open, subscription, googleAnalytics, "
            "enabled, onDelete, got the unquoted true",
        ),
    ],
)
def test_shapes_are_reported_without_a_traceback(text: str, problem: str) -> None:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(load_fleet_yaml(text, "fleet.yaml"))
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"parent": {}}, "parent: manages no setting; give it a block such as click: {enabled: true}"),
        ({"parent": {"onDelete": "keep"}}, "parent.enabled: required; set it to true or false"),
        ({"parent": {"enabled": "true"}}, "parent.enabled: must be true or false (unquoted), got 'true'"),
        (
            {"parent": {"enabled": True, "username": "x"}},
            "parent.username: unknown field; allowed: region, click, open, subscription, googleAnalytics, "
            "enabled, onDelete",
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
            "subusers[0].username: 'a\\nb' has '\\n' (U+000A, a control character) at position 2",
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
        ({"subuser": []}, "subuser: unknown field; allowed: defaults, parent, subusers, manageNothing"),
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
    assert str(info.value).startswith("invalid fleet config:\n  - parent.enabled")


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
        click("parent", True, None, None, "restore"),
        click("account-042", False, "account-id 042", None, "restore"),
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
    assert problem.startswith(
        "subusers[0].accountId: must be a string of letters and digits, got the unquoted number 34"
    )
    _, (problem,) = config_problems({"parent": "enabled"})
    assert problem.startswith("parent: expected a mapping with region, click, open, subscription, googleAnalytics")
    _, (problem,) = config_problems({"manageNothing": "yes"})
    assert problem == "manageNothing: must be true or false (unquoted), got 'yes'"


def test_a_fleet_file() -> None:
    assert from_config({"fleetFile": "f.yaml"}, {"f.yaml": "parent:\n  enabled: false\n"}) == [
        click("parent", False, None, None, "restore")
    ]
    assert from_config({"fleetFile": "f.yaml"}, {"f.yaml": "manageNothing: true\n"}) == []


@pytest.mark.parametrize(
    ("values", "contents", "source", "problem"),
    [
        (
            {"fleetFile": "f.yaml", "parent": json.dumps({"enabled": True})},
            {},
            "stack config",
            f"set either {NS}:fleetFile or defaults/parent/subusers/manageNothing in stack config, not both "
            f"(stack config has {NS}:parent)",
        ),
        (
            {"fleetFile": "f.yaml", "manageNothing": "true"},
            {},
            "stack config",
            f"set either {NS}:fleetFile or defaults/parent/subusers/manageNothing in stack config, not both",
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


def test_inline_defaults_from_stack_config() -> None:
    values = {
        "defaults": json.dumps({"open": {"enabled": False}}),
        "subusers": json.dumps([{"username": "alice", "click": {"enabled": True}}]),
    }
    assert [(e.name, e.values) for e in from_config(values)] == [
        ("subuser-alice", {"enabled": True}),
        ("open-subuser-alice", {"enabled": False}),
    ]
    _, (problem,) = config_problems({"defaults": json.dumps({"open": {"enabled": False}})})
    assert problem.startswith("no accounts: stack config lists no parent and no subusers")


# -- the per-setting shape ---------------------------------------------------------------------


def entries_of(text: str) -> list[tuple[str, str, dict[str, Any], str | None, str | None, str]]:
    return [
        (e.name, e.setting, dict(e.values), e.on_behalf_of, e.region, e.on_delete)
        for e in parse_fleet(load_fleet_yaml(text, "fleet.yaml"))
    ]


def test_the_example_of_the_readme() -> None:
    text = """
defaults:
  click: {enabled: true}
  open: {enabled: false, onDelete: keep}
parent:
  click: {enabled: false}
subusers:
  - username: alice
    open: {enabled: true}
    subscription: {enabled: true, url: https://example.com/unsubscribe, plainContent: "Unsubscribe: <% %>"}
    googleAnalytics: {enabled: true, utmCampaign: spring}
  - accountId: "42"
    region: eu
"""
    assert entries_of(text) == [
        ("parent", "click", {"enabled": False}, None, None, "restore"),
        ("open-parent", "open", {"enabled": False}, None, None, "keep"),
        ("subuser-alice", "click", {"enabled": True}, "alice", None, "restore"),
        ("open-subuser-alice", "open", {"enabled": True}, "alice", None, "keep"),
        (
            "subscription-subuser-alice",
            "subscription",
            {"enabled": True, "plain_content": PLAIN, "url": URL},
            "alice",
            None,
            "restore",
        ),
        (
            "google-analytics-subuser-alice",
            "google_analytics",
            {"enabled": True, "utm_campaign": "spring"},
            "alice",
            None,
            "restore",
        ),
        ("account-42", "click", {"enabled": True}, "account-id 42", "eu", "restore"),
        ("open-account-42", "open", {"enabled": False}, "account-id 42", "eu", "keep"),
    ]


class Shape(NamedTuple):
    """A fleet (YAML text) and the entries it gives: (name, setting, values, on_behalf_of, region, on_delete)."""

    case: str
    text: str
    expected: list[tuple[str, str, dict[str, Any], str | None, str | None, str]]


SHAPES = [
    Shape(
        "one block per setting, in declaration order whatever the order in the file",
        "subusers:\n  - username: bob\n    googleAnalytics: {enabled: false}\n    subscription: {enabled: true}\n"
        "    open: {enabled: true}\n    click: {enabled: false}\n",
        [
            ("subuser-bob", "click", {"enabled": False}, "bob", None, "restore"),
            ("open-subuser-bob", "open", {"enabled": True}, "bob", None, "restore"),
            ("subscription-subuser-bob", "subscription", {"enabled": True}, "bob", None, "restore"),
            ("google-analytics-subuser-bob", "google_analytics", {"enabled": False}, "bob", None, "restore"),
        ],
    ),
    Shape(
        "a setting without click tracking: click is simply not managed",
        "parent:\n  open: {enabled: false}\n",
        [("open-parent", "open", {"enabled": False}, None, None, "restore")],
    ),
    Shape(
        "every subscription field, camelCase to the wire's snake_case",
        "parent:\n  subscription:\n    enabled: true\n    htmlContent: '<p><% Unsubscribe %></p>'\n"
        "    plainContent: 'Unsubscribe: <% %>'\n    replace: '[unsubscribe]'\n    url: https://example.com/unsubscribe\n"
        "    landing: '<p>Bye</p>'\n",
        [
            (
                "subscription-parent",
                "subscription",
                {
                    "enabled": True,
                    "html_content": "<p><% Unsubscribe %></p>",
                    "plain_content": PLAIN,
                    "replace": "[unsubscribe]",
                    "url": URL,
                    "landing": "<p>Bye</p>",
                },
                None,
                None,
                "restore",
            )
        ],
    ),
    Shape(
        "every Google Analytics field",
        'subusers:\n  - accountId: "7"\n    googleAnalytics: {enabled: true, utmSource: sendgrid, utmMedium: email,'
        " utmTerm: shoes, utmContent: banner, utmCampaign: spring}\n",
        [
            (
                "google-analytics-account-7",
                "google_analytics",
                {
                    "enabled": True,
                    "utm_source": "sendgrid",
                    "utm_medium": "email",
                    "utm_term": "shoes",
                    "utm_content": "banner",
                    "utm_campaign": "spring",
                },
                "account-id 7",
                None,
                "restore",
            )
        ],
    ),
    Shape(
        "the account's region covers each of its settings; onDelete is per setting",
        "subusers:\n  - username: carol\n    region: eu\n    click: {enabled: true, onDelete: disable}\n"
        "    open: {enabled: false, onDelete: keep}\n    subscription: {enabled: true}\n",
        [
            ("subuser-carol", "click", {"enabled": True}, "carol", "eu", "disable"),
            ("open-subuser-carol", "open", {"enabled": False}, "carol", "eu", "keep"),
            ("subscription-subuser-carol", "subscription", {"enabled": True}, "carol", "eu", "restore"),
        ],
    ),
    Shape(
        "empty strings are values (managed), not omissions",
        "parent:\n  googleAnalytics: {enabled: false, utmTerm: ''}\n",
        [("google-analytics-parent", "google_analytics", {"enabled": False, "utm_term": ""}, None, None, "restore")],
    ),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[s.case for s in SHAPES])
def test_shapes(shape: Shape) -> None:
    assert entries_of(shape.text) == shape.expected


# -- defaults: merged field by field, the account's value winning -------------------------------


DEFAULTS_MERGE = [
    Shape(
        "a default block applies to an account without one",
        "defaults:\n  open: {enabled: false}\nsubusers:\n  - username: a\n    click: {enabled: true}\n",
        [
            ("subuser-a", "click", {"enabled": True}, "a", None, "restore"),
            ("open-subuser-a", "open", {"enabled": False}, "a", None, "restore"),
        ],
    ),
    Shape(
        "an account with no block of its own gets every default (here the parent)",
        "defaults:\n  click: {enabled: true}\n  open: {enabled: false}\nparent: {}\n",
        [
            ("parent", "click", {"enabled": True}, None, None, "restore"),
            ("open-parent", "open", {"enabled": False}, None, None, "restore"),
        ],
    ),
    Shape(
        "the account's enabled wins, the default's url and onDelete stay",
        f"defaults:\n  subscription: {{enabled: true, url: {URL}, onDelete: keep}}\n"
        "subusers:\n  - username: a\n    subscription: {enabled: false}\n",
        [("subscription-subuser-a", "subscription", {"enabled": False, "url": URL}, "a", None, "keep")],
    ),
    Shape(
        "the account adds fields to the default's",
        "defaults:\n  googleAnalytics: {enabled: true, utmSource: sendgrid, utmMedium: email}\n"
        "subusers:\n  - username: a\n    googleAnalytics: {utmCampaign: spring, utmMedium: newsletter}\n",
        [
            (
                "google-analytics-subuser-a",
                "google_analytics",
                {"enabled": True, "utm_source": "sendgrid", "utm_medium": "newsletter", "utm_campaign": "spring"},
                "a",
                None,
                "restore",
            )
        ],
    ),
    Shape(
        "the account's onDelete wins over the default's",
        "defaults:\n  click: {enabled: true, onDelete: keep}\nsubusers:\n  - username: a\n"
        "    click: {onDelete: disable}\n  - username: b\n",
        [
            ("subuser-a", "click", {"enabled": True}, "a", None, "disable"),
            ("subuser-b", "click", {"enabled": True}, "b", None, "keep"),
        ],
    ),
    Shape(
        "manage: false opts one account out of one default",
        "defaults:\n  click: {enabled: true}\n  open: {enabled: false}\nsubusers:\n  - username: a\n"
        "    open: {manage: false}\n  - username: b\n",
        [
            ("subuser-a", "click", {"enabled": True}, "a", None, "restore"),
            ("subuser-b", "click", {"enabled": True}, "b", None, "restore"),
            ("open-subuser-b", "open", {"enabled": False}, "b", None, "restore"),
        ],
    ),
    Shape(
        "a default without enabled: each account gives its own",
        f"defaults:\n  subscription: {{url: {URL}}}\nsubusers:\n  - username: a\n    subscription: {{enabled: true}}\n"
        "  - username: b\n    subscription: {enabled: false}\n",
        [
            ("subscription-subuser-a", "subscription", {"enabled": True, "url": URL}, "a", None, "restore"),
            ("subscription-subuser-b", "subscription", {"enabled": False, "url": URL}, "b", None, "restore"),
        ],
    ),
    Shape(
        "empty defaults change nothing",
        "defaults: {}\nparent:\n  click: {enabled: true}\n",
        [("parent", "click", {"enabled": True}, None, None, "restore")],
    ),
]


@pytest.mark.parametrize("shape", DEFAULTS_MERGE, ids=[s.case for s in DEFAULTS_MERGE])
def test_defaults_merge(shape: Shape) -> None:
    assert entries_of(shape.text) == shape.expected


# -- every field is checked as the provider checks it, and named by its path ----------------------


CHECK_FAILURES: dict[str, list[str]] = {
    "html_content": ["<p>no link</p>", "<% Unsubscribe %>\x00"],
    "plain_content": ["Unsubscribe here", "<% %>\x07"],
    "replace": ["[unsub\nscribe]"],
    "url": [
        "ftp://example.com/unsubscribe",
        "example.com/unsubscribe",
        "https://example.com/un subscribe",
        "https://example.com:99999/",
        "https://example.com/\n",
    ],
    "landing": ["<p>bye</p>\x00"],
    "utm_source": ["a\tb"],
    "utm_medium": ["email\n"],
    "utm_term": ["\x7f"],
    "utm_content": ["a\rb"],
    "utm_campaign": ["spring\x00"],
}
LIMITS = {"html_content": MAX_CONTENT, "plain_content": MAX_CONTENT, "landing": MAX_CONTENT, "url": MAX_URL}


def _oversized(spec: Field) -> str:
    assert spec.max_length == LIMITS.get(spec.name, MAX_SHORT_TEXT)
    if spec.name == "url":
        return "https://example.com/" + "a" * MAX_URL
    if spec.name == "plain_content":
        return "<% %>" + "a" * MAX_CONTENT
    if spec.name == "html_content":
        return "<% x %>" + "a" * MAX_CONTENT
    return "a" * (spec.max_length + 1)


class FieldCase(NamedTuple):
    setting: TrackingSetting
    spec: Field
    value: Any
    expected: str
    """The problem after `<path>.<key>: `."""


def field_cases() -> list[FieldCase]:
    """A bad value of each kind for every writable field of every setting, from tracking.py's descriptions."""
    cases = []
    for setting in SETTINGS.values():
        for spec in setting.writable:
            key = camel(spec.name)
            if spec.kind is bool:
                cases += [
                    FieldCase(setting, spec, value, f"must be true or false (unquoted), got {value!r}")
                    for value in ("true", "yes", 1, 0.5)
                ]
                continue
            for value, got in ((2024, "the unquoted number 2024"), (True, "the unquoted true (a boolean)")):
                cases.append(FieldCase(setting, spec, value, f'must be a string, got {got}; quote it: {key}: "..."'))
            oversized = _oversized(spec)
            cases.append(
                FieldCase(setting, spec, oversized, f"is {len(oversized)} characters long; at most {spec.max_length}")
            )
            for value in CHECK_FAILURES[spec.name]:
                problem = spec.problem(value)
                assert problem is not None, (spec.name, value)  # a bad value for the provider too
                cases.append(FieldCase(setting, spec, value, problem))
    return cases


FIELD_CASES = field_cases()


def test_the_field_table_covers_every_writable_field() -> None:
    covered = {(c.setting.name, c.spec.name) for c in FIELD_CASES}
    assert covered == {(s.name, f.name) for s in SETTINGS.values() for f in s.writable}
    assert len(covered) == 14
    assert {camel(s.name) for s in SETTINGS.values()} == set(SETTING_KEYS)


@pytest.mark.parametrize("where", ["account", "defaults"])
@pytest.mark.parametrize(
    "case", FIELD_CASES, ids=[f"{c.setting.name}.{c.spec.name}={c.value!r}"[:60] for c in FIELD_CASES]
)
def test_every_field_is_checked_by_path(case: FieldCase, where: str) -> None:
    key, field_key = camel(case.setting.name), camel(case.spec.name)
    block = {"enabled": True, field_key: case.value}
    if where == "account":
        config: dict[str, Any] = {"subusers": [{"username": "a", key: block}]}
        path = f"subusers[0].{key}.{field_key}"
    else:
        config = {"defaults": {key: block}, "parent": {}}
        path = f"defaults.{key}.{field_key}"
    (problem,) = problems_of(config)  # reported once, where it is written: not again per account
    assert problem.startswith(f"{path}: {case.expected}"), problem
    if case.spec.kind is str and isinstance(case.value, str):
        assert problem == f"{path}: {case.spec.problem(case.value)}"  # the provider's own words


def test_the_url_message_in_full() -> None:
    assert problems_of({"subusers": [{"username": "a", "subscription": {"enabled": True, "url": "ftp://x"}}]}) == [
        "subusers[0].subscription.url: must be an absolute http(s) URL such as https://example.com/unsubscribe, "
        "got 'ftp://x'"
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"parent": {"click": {"enabled": True, "onDelete": "purge"}}},
            ["parent.click.onDelete: must be one of restore, keep, disable, got 'purge'"],
        ),
        (
            {"defaults": {"open": {"enabled": True, "onDelete": "Keep"}}, "parent": {}},
            ["defaults.open.onDelete: must be one of restore, keep, disable, got 'Keep'"],
        ),
        (
            {"parent": {"region": "EU", "open": {"enabled": True}}},
            ["parent.region: must be one of global, eu (or omitted for the stack's sendgrid:region), got 'EU'"],
        ),
        (
            {"parent": {"subscription": {"enabled": True, "url": None}}},
            ["parent.subscription.url: empty (null); give a value, or remove the key"],
        ),
        (
            {"parent": {"open": {"enabled": None}}},
            ["parent.open.enabled: empty (null); give a value, or remove the key"],
        ),
        (
            {"parent": {"click": {"enabled": True, "enableText": True}}},
            ["parent.click.enableText: read-only (SendGrid sets it, the program never sends it); remove it"],
        ),
        (
            {"parent": {"subscription": {"enabled": True, "plain_content": PLAIN}}},
            ["parent.subscription.plain_content: unknown field; did you mean plainContent? (fleet keys are camelCase)"],
        ),
        (
            {"parent": {"googleAnalytics": {"enabled": True, "UTMCampaign": "x"}}},
            ["parent.googleAnalytics.UTMCampaign: unknown field; did you mean utmCampaign? (fleet keys are camelCase)"],
        ),
        (
            {"parent": {"google_analytics": {"enabled": True}}},
            ["parent.google_analytics: unknown field; did you mean googleAnalytics? (fleet keys are camelCase)"],
        ),
        (
            {"parent": {"open": {"enabled": True, "url": URL}}},
            ["parent.open.url: unknown field; allowed: enabled, onDelete, manage"],
        ),
        (
            {"parent": {"open": {}}},
            ["parent.open.enabled: required; set it to true or false (e.g. open: {enabled: true})"],
        ),
        (
            {"defaults": {"open": {"onDelete": "keep"}}, "parent": {}},
            ["parent.open.enabled: required; set it to true or false (here or in defaults.open)"],
        ),
        (
            {"parent": {"open": True}},
            [
                "parent.open: expected a mapping of open tracking's fields (enabled, onDelete), "
                "got the unquoted true (a boolean); write open: {enabled: true}"
            ],
        ),
        (
            {"parent": {"open": None}},
            [
                "parent.open: empty; give open tracking's fields, e.g. {enabled: true}, or write {manage: false} "
                "to leave it unmanaged for this account"
            ],
        ),
        (
            {"parent": {"click": {"manage": False}, "open": {"enabled": True}}},
            [
                "parent.click: manage: false, but defaults has no click block, so there is nothing to opt out of; "
                "remove it (to turn click tracking off in SendGrid, write click: {enabled: false})"
            ],
        ),
        (
            {"defaults": {"click": {"enabled": True}}, "parent": {"click": {"manage": False, "enabled": False}}},
            [
                "parent.click: manage: false leaves click tracking unmanaged for this account, so enabled would "
                "be ignored; remove them, or remove manage"
            ],
        ),
        (
            {"defaults": {"click": {"enabled": True}}, "parent": {"click": {"manage": True}}},
            [
                "parent.click.manage: the only value is false (leave this account's click tracking unmanaged "
                "although defaults manages it), got True; to manage it, remove manage"
            ],
        ),
        (
            {"defaults": {"click": {"enabled": True}}, "parent": {"click": {"manage": "false"}}},
            ["parent.click.manage: the only value is false"],
        ),
        (
            {"defaults": {"click": {"enabled": True}}, "parent": {"click": {"manage": False}}},
            [
                "parent: manages no setting; give it a block such as click: {enabled: true} "
                "(click, open, subscription, googleAnalytics), or remove it to leave the account alone"
            ],
        ),
        (
            {"subusers": [{"username": "a"}]},
            ["subusers[0]: manages no setting; give it a block such as click: {enabled: true}"],
        ),
        (
            {"defaults": {"open": {"enabled": True, "manage": False}}, "parent": {}},
            [
                "defaults.open.manage: only an account's block takes it; to manage open tracking for no account "
                "by default, remove defaults.open"
            ],
        ),
        (
            {"defaults": {"region": "eu", "open": {"enabled": True}}, "parent": {}},
            [
                "defaults.region: a region is where an account lives: give it on the account (region: eu), and "
                "set the stack's default with sendgrid:region"
            ],
        ),
        (
            {"defaults": {"enabled": True, "open": {"enabled": True}}, "parent": {}},
            [
                "defaults.enabled: defaults holds one block per setting (click, open, subscription, "
                "googleAnalytics); put enabled in a block, e.g. click: {enabled: ...}"
            ],
        ),
        (
            {"defaults": {"bounce": {"enabled": True}, "open": {"enabled": True}}, "parent": {}},
            ["defaults.bounce: unknown field; allowed: click, open, subscription, googleAnalytics"],
        ),
        ({"defaults": None, "parent": {"click": {"enabled": True}}}, ["defaults: empty; give setting blocks"]),
        (
            {"defaults": [{"open": {"enabled": True}}], "parent": {"click": {"enabled": True}}},
            ["defaults: expected a mapping of setting blocks (click, open, subscription, googleAnalytics), got a list"],
        ),
        (
            {"defaults": {"open": None}, "parent": {"click": {"enabled": True}}},
            ["defaults.open: empty; give open tracking's fields, e.g. {enabled: true}"],
        ),
    ],
)
def test_block_mistakes(config: dict[str, Any], expected: list[str]) -> None:
    problems = problems_of(config)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


def test_a_bad_default_is_reported_once_not_per_account() -> None:
    config = {
        "defaults": {"subscription": {"enabled": "yes", "url": "nowhere"}},
        "subusers": [{"username": n} for n in ("a", "b", "c")],
    }
    assert problems_of(config) == [
        "defaults.subscription.enabled: must be true or false (unquoted), got 'yes'",
        "defaults.subscription.url: must be an absolute http(s) URL such as https://example.com/unsubscribe, "
        "got 'nowhere'",
    ]


def test_all_problems_of_every_shape_at_once() -> None:
    text = """
defaults:
  open: {enabled: nope}
parent:
  enabled: true
subusers:
  - username: a
    subscription: {enabled: true, url: ftp://x, plainContent: none}
    googleAnalytics: {utmCampaign: 2024}
  - username: b
    click: {manage: false}
  - accountId: 7
"""
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(load_fleet_yaml(text, "fleets/x.yaml"), source="fleets/x.yaml")
    assert [p.split(":")[0] for p in info.value.problems] == [
        "defaults.open.enabled",
        "parent",
        "subusers[0].subscription.url",
        "subusers[0].subscription.plainContent",
        "subusers[0].googleAnalytics.utmCampaign",
        "subusers[0].googleAnalytics.enabled",
        "subusers[1].click",
        "subusers[2].accountId",
    ]
    assert str(info.value).startswith("invalid fleet config in fleets/x.yaml:\n  - defaults.open.enabled: ")
    assert "Traceback" not in str(info.value)


# -- today's click-only shape: kept where it is unambiguous ---------------------------------------


OLD_AND_NEW = [
    ("parent:\n  enabled: true\n", "parent:\n  click: {enabled: true}\n"),
    (
        "subusers:\n  - username: carol\n    enabled: false\n    region: eu\n    onDelete: disable\n",
        "subusers:\n  - username: carol\n    region: eu\n    click: {enabled: false, onDelete: disable}\n",
    ),
    (
        'subusers:\n  - accountId: "42"\n    enabled: true\n    onDelete: keep\n',
        'subusers:\n  - accountId: "42"\n    click: {enabled: true, onDelete: keep}\n',
    ),
    (  # accounts of both shapes in one fleet without defaults: each is unambiguous
        "subusers:\n  - username: a\n    enabled: true\n  - username: b\n    open: {enabled: false}\n",
        "subusers:\n  - username: a\n    click: {enabled: true}\n  - username: b\n    open: {enabled: false}\n",
    ),
]


@pytest.mark.parametrize(("old", "new"), OLD_AND_NEW)
def test_todays_shape_means_the_click_block(old: str, new: str) -> None:
    assert entries_of(old) == entries_of(new)
    assert all(entry[1] == "click" or "open" in entry[0] for entry in entries_of(old))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "parent:\n  enabled: true\n  open: {enabled: false}\n",
            "parent: enabled directly on the account is the click-only shape; it cannot be mixed with setting "
            "blocks (open). Move it into the click block: click: {enabled: true}",
        ),
        (
            "subusers:\n  - username: a\n    enabled: false\n    onDelete: keep\n    click: {enabled: true}\n",
            "subusers[0]: enabled and onDelete directly on the account is the click-only shape; it cannot be "
            "mixed with setting blocks (click). Move it into the click block: click: {enabled: false, onDelete: keep}",
        ),
        (
            "subusers:\n  - username: a\n    onDelete: keep\n    open: {enabled: true}\n"
            "    subscription: {enabled: true}\n",
            "subusers[0].onDelete: with setting blocks, onDelete goes in each block, e.g. open: {..., onDelete: "
            "keep}; directly on the account it is the click-only shape's (click tracking's alone)",
        ),
        (
            "defaults:\n  open: {enabled: false}\nsubusers:\n  - username: a\n    enabled: true\n    onDelete: keep\n",
            "subusers[0]: enabled and onDelete directly on the account is the click-only shape, which a fleet with "
            "defaults does not read (it would look like it covers every setting); write "
            "click: {enabled: true, onDelete: keep}",
        ),
        (
            'defaults: {}\nparent:\n  enabled: "yes"\n',
            "parent: enabled directly on the account is the click-only shape, which a fleet with defaults does not "
            'read (it would look like it covers every setting); write click: {enabled: "yes"}',
        ),
    ],
    ids=["enabled and a block", "enabled, onDelete and click", "onDelete and blocks", "with defaults", "quoted"],
)
def test_mixed_shapes_are_refused_with_the_new_shape(text: str, expected: str) -> None:
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(load_fleet_yaml(text, "fleet.yaml"))
    assert info.value.problems == [expected]


# -- resource names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "names"),
    [
        ({}, ["parent", "open-parent", "subscription-parent", "google-analytics-parent"]),
        (
            {"username": "alice"},
            ["subuser-alice", "open-subuser-alice", "subscription-subuser-alice", "google-analytics-subuser-alice"],
        ),
        (
            {"accountId": "42"},
            ["account-42", "open-account-42", "subscription-account-42", "google-analytics-account-42"],
        ),
    ],
    ids=["parent", "subuser", "customer account"],
)
def test_resource_names(account: dict[str, Any], names: list[str]) -> None:
    blocks = {key: {"enabled": True} for key in SETTING_KEYS}
    config = {"parent": blocks} if not account else {"subusers": [{**account, **blocks}]}
    assert [e.name for e in parse_fleet(config)] == names


def test_no_username_makes_two_names_equal() -> None:
    # With the setting as a suffix, subuser alice's open tracking and subuser alice-open's click
    # tracking would both be subuser-alice-open.
    users = ["alice", "alice-open", "open-subuser-alice", "subuser-alice", "parent", "open", "google-analytics"]
    blocks = {key: {"enabled": True} for key in SETTING_KEYS}
    config = {"parent": blocks, "subusers": [{"username": u, **blocks} for u in users] + [{"accountId": "1", **blocks}]}
    names = [e.name for e in parse_fleet(config)]
    assert len(names) == len(set(names)) == 4 * (len(users) + 2)


# -- the repository's fleets --------------------------------------------------------------------------


def repo_fleet(stack: str) -> list[FleetEntry]:
    root = Path(__file__).resolve().parent.parent
    return parse_fleet(load_fleet_yaml((root / "fleets" / f"{stack}.yaml").read_text(), stack))


@pytest.mark.parametrize(
    ("stack", "clicks"),
    [
        (
            "dev",
            [
                click("parent", True, None, None, "restore"),
                click("subuser-alice", False, "alice", None, "restore"),
                click("subuser-bob", True, "bob", None, "keep"),
                click("subuser-carol", True, "carol", "eu", "disable"),
            ],
        ),
        (
            "prod",
            [
                click("subuser-dave", True, "dave", None, "restore"),
                click("subuser-erin", True, "erin", None, "keep"),
                click("subuser-frank", True, "frank", "eu", "keep"),
                click("account-4242", True, "account-id 4242", None, "restore"),
            ],
        ),
    ],
)
def test_the_repositorys_fleets_keep_their_click_tracking(stack: str, clicks: list[FleetEntry]) -> None:
    """The click resources of the click-only fleets, unchanged: deployed stacks see no change to them."""
    assert [e for e in repo_fleet(stack) if e.setting == "click"] == clicks


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_repositorys_fleets_use_the_other_settings(stack: str) -> None:
    entries = repo_fleet(stack)
    accounts = {e.on_behalf_of for e in entries}
    by_setting: dict[str, dict[str | None, FleetEntry]] = {}
    for e in entries:
        by_setting.setdefault(e.setting, {})[e.on_behalf_of] = e
    # Privacy: open tracking off on every account.
    assert set(by_setting["open"]) == accounts
    assert all(e.values == {"enabled": False} for e in by_setting["open"].values())
    # Unsubscribe compliance: a footer and an unsubscribe URL wherever the stack manages subscriptions.
    for e in by_setting["subscription"].values():
        assert e.values["enabled"] is True
        assert e.values["url"].startswith("https://") and "<% %>" in e.values["plain_content"]
    # Campaign attribution: one newsletter sender with utm parameters.
    (ga,) = by_setting["google_analytics"].values()
    assert ga.values["enabled"] is True and {"utm_source", "utm_medium", "utm_campaign"} <= set(ga.values)


def test_one_username_in_both_regions_is_two_accounts() -> None:
    text = (
        "defaults: {open: {enabled: false}}\n"
        "subusers:\n"
        "  - {username: alice, region: eu, click: {enabled: true}}\n"
        "  - {username: alice, region: global, click: {enabled: false}}\n"
        '  - {accountId: "42", region: global}\n'
        '  - {accountId: "42", region: eu}\n'
    )
    entries = parse_fleet(load_fleet_yaml(text, "fleet.yaml"))
    assert [(e.name, e.setting, e.on_behalf_of, e.region, dict(e.values)) for e in entries] == [
        ("eu-subuser-alice", "click", "alice", "eu", {"enabled": True}),
        ("open-eu-subuser-alice", "open", "alice", "eu", {"enabled": False}),
        ("subuser-alice", "click", "alice", "global", {"enabled": False}),
        ("open-subuser-alice", "open", "alice", "global", {"enabled": False}),
        ("open-account-42", "open", "account-id 42", "global", {"enabled": False}),
        ("open-eu-account-42", "open", "account-id 42", "eu", {"enabled": False}),
    ]
    assert len({e.name for e in entries}) == len(entries)


@pytest.mark.parametrize(
    "regions",
    [(None, None), (None, "eu"), ("eu", None), ("eu", "eu"), ("global", "global")],
)
def test_one_username_twice_in_one_region_or_without_regions_is_refused(regions: tuple[str | None, str | None]) -> None:
    """Without a region each, the two entries may be one account (the stack's region is not known here)."""
    subusers = [{"username": "alice", "click": {"enabled": True}, **({"region": r} if r else {})} for r in regions]
    with pytest.raises(FleetConfigError) as info:
        parse_fleet({"subusers": subusers})
    assert info.value.problems == [
        "subusers[1]: 'alice' is already configured at subusers[0]; remove one (the same name in both regions is "
        "two accounts: give each its region, region: global and region: eu)"
    ]


def test_a_third_entry_of_a_name_in_both_regions_is_refused() -> None:
    subusers = [{"username": "a", "region": r, "click": {"enabled": True}} for r in ("global", "eu")]
    with pytest.raises(FleetConfigError) as info:
        parse_fleet({"subusers": [*subusers, {"username": "a", "click": {"enabled": True}}]})
    assert [p.split(";")[0] for p in info.value.problems] == ["subusers[2]: 'a' is already configured at subusers[0]"]


def test_a_shard_stack_refuses_an_inline_fleet() -> None:
    source, problems = config_problems({"shard": "2/4", "subusers": json.dumps([{"username": "a", "enabled": True}])})
    assert source == "stack config"
    assert problems == [
        "sendgrid-click-tracking:shard is set, and the fleet is inline in this stack's config "
        "(sendgrid-click-tracking:subusers): a shard stack reads the fleet from the file its fleet's stack names "
        "(sendgrid-click-tracking:fleetFile), so that an edit reaches every shard at its next run. Remove these keys "
        "from this stack (pulumi config rm), put the fleet in a file, and set sendgrid-click-tracking:fleetFile to it "
        "in the fleet's stack and in each shard stack"
    ]
    fleet = "subusers:\n  - {username: a, enabled: true}\n"
    assert [e.name for e in from_config({"shard": "2/4", "fleetFile": "f.yaml"}, {"f.yaml": fleet})] == ["subuser-a"]
