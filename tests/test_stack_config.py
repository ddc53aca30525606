"""Stack config checks: unknown keys in our namespaces fail with the closest valid key; a plaintext key fails."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pulumi.runtime import config as runtime_config
from pulumi_sendgrid_tracking import config as settings
from pulumi_sendgrid_tracking.fleet import PROGRAM_KEYS
from pulumi_sendgrid_tracking.stack_config import (
    check_stack_config,
    current_stack_config,
    known_keys,
    split_key,
    stack_config_warnings,
)

PROGRAM = {"sendgrid-click-tracking": PROGRAM_KEYS}
SECRET = {"sendgrid:apiKey"}


def test_the_valid_keys_are_the_settings_sources() -> None:
    assert known_keys() == {"sendgrid": tuple(key.split(":")[1] for key, _ in settings.SOURCES.values())}
    config = {key: "x" for key, _ in settings.SOURCES.values()}
    assert check_stack_config(config, SECRET) == []
    assert check_stack_config({**config, "sendgrid-click-tracking:fleetFile": "f.yaml"}, SECRET, PROGRAM) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "sendgrid:apikey",
            "sendgrid:apikey: unknown key (keys are case-sensitive); did you mean sendgrid:apiKey? "
            "Move the key: pulumi config rm sendgrid:apikey, then pulumi config set --secret sendgrid:apiKey.",
        ),
        (
            "sendgrid:regoin",
            "sendgrid:regoin: unknown key; did you mean sendgrid:region? Rename the key in Pulumi.dev.yaml.",
        ),
        (
            "sendgrid:euBaseURL",
            "sendgrid:euBaseURL: unknown key (keys are case-sensitive); did you mean sendgrid:euBaseUrl?",
        ),
        ("sendgrid:retryBudjet", "sendgrid:retryBudjet: unknown key; did you mean sendgrid:retryBudget?"),
        (
            "sendgrid-click-tracking:fleetfile",
            "sendgrid-click-tracking:fleetfile: unknown key (keys are case-sensitive); "
            "did you mean sendgrid-click-tracking:fleetFile? Rename the key in Pulumi.dev.yaml.",
        ),
        ("sendgrid-click-tracking:subuser", "did you mean sendgrid-click-tracking:subusers?"),
        ("sendgrid-click-tracking:managenothing", "did you mean sendgrid-click-tracking:manageNothing?"),
        # The right name in the other namespace.
        ("sendgrid-click-tracking:apiKey", "unknown key; did you mean sendgrid:apiKey? Move the key"),
        ("sendgrid:fleetFile", "unknown key; did you mean sendgrid-click-tracking:fleetFile?"),
        ("sendgrid-click-tracking:region", "unknown key; did you mean sendgrid:region?"),
        # A namespace one slip away, with a valid name in it.
        ("sendgird:apiKey", "sendgird:apiKey: unknown namespace 'sendgird'; did you mean sendgrid:apiKey?"),
        ("SendGrid:region", "unknown namespace 'SendGrid'; did you mean sendgrid:region?"),
        (
            "sendgrid:timeout",
            "sendgrid:timeout: unknown key; the keys of namespace 'sendgrid' are sendgrid:apiKey, sendgrid:region, "
            "sendgrid:baseUrl, sendgrid:euBaseUrl, sendgrid:requestTimeout, sendgrid:retryBudget, "
            "sendgrid:maxRequestsPerSecond. Remove it: pulumi config rm sendgrid:timeout.",
        ),
    ],
)
def test_unknown_keys_suggest_the_closest_valid_one(key: str, expected: str) -> None:
    (problem,) = check_stack_config({key: "SG.value-never-shown"}, set(), PROGRAM, stack="dev")
    assert problem.startswith(expected) or expected in problem, problem
    assert "value-never-shown" not in problem


@pytest.mark.parametrize(
    "key",
    ["aws:region", "sendgrid-other:apiKey", "pulumi:tags", "sendgrid:config:region", "sendgrd:colour", "nonamespace"],
)
def test_other_packages_keys_are_left_alone(key: str) -> None:
    assert check_stack_config({key: "x"}, set(), PROGRAM) == []


def test_the_program_namespace_is_checked_only_when_given() -> None:
    assert check_stack_config({"sendgrid-click-tracking:fleetfile": "f"}, set()) == []


def test_a_plaintext_api_key_fails_with_the_fix() -> None:
    (problem,) = check_stack_config({"sendgrid:apiKey": "SG.plaintext-test-key"}, set(), stack="prod")
    assert problem == (
        "sendgrid:apiKey: the API key is stored in plaintext in Pulumi.prod.yaml, and the engine would copy it into "
        "the state. Make it a secret: pulumi config set --secret sendgrid:apiKey (paste the key when asked); or "
        "remove it (pulumi config rm sendgrid:apiKey) and set SENDGRID_API_KEY in the environment. If the file was "
        "committed or shared, rotate the key."
    )
    assert check_stack_config({"sendgrid:apiKey": "SG.x"}, {"sendgrid:apiKey"}) == []
    assert check_stack_config({"sendgrid:config:apiKey": "SG.x"}, {"sendgrid:config:apiKey"}) == []


def test_every_problem_at_once_in_key_order() -> None:
    problems = check_stack_config(
        {"sendgrid:regoin": "eu", "sendgrid:apiKey": "SG.x", "sendgrid-click-tracking:fleetfile": "f"},
        set(),
        PROGRAM,
    )
    assert [p.split(":", 2)[:2] for p in problems] == [
        ["sendgrid-click-tracking", "fleetfile"],
        ["sendgrid", "apiKey"],
        ["sendgrid", "regoin"],
    ]


def test_the_secret_key_warning_says_where_the_key_is_stored() -> None:
    (warning,) = stack_config_warnings({"sendgrid:apiKey": "SG.x"}, SECRET, stack="prod")
    assert "It is stored encrypted in Pulumi.prod.yaml" in warning
    assert "`pulumi:providers:pulumi-python` resource, it is also stored, encrypted, in the stack's state" in warning
    assert "`pulumi stack export --show-secrets` shows it" in warning
    assert "set SENDGRID_API_KEY instead" in warning
    assert stack_config_warnings({"sendgrid:apiKey": "SG.x"}, set()) == []  # plaintext: an error, not a warning
    assert stack_config_warnings({"sendgrid:region": "eu"}, SECRET) == []


def test_split_key() -> None:
    assert split_key("sendgrid:apiKey") == ("sendgrid", "apiKey")
    assert split_key("sendgrid:config:apiKey") == ("sendgrid", "apiKey")
    assert split_key("plain") == ("", "plain")


@pytest.fixture
def runtime_state() -> Iterator[None]:
    config_token = runtime_config.CONFIG.set({})
    secret_token = runtime_config._SECRET_KEYS.set(set())
    yield
    runtime_config.CONFIG.reset(config_token)
    runtime_config._SECRET_KEYS.reset(secret_token)


@pytest.mark.usefixtures("runtime_state")
def test_current_stack_config_from_the_language_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # What pulumi-language-python passes to the program (see pulumi-language-python-exec).
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"sendgrid:apiKey": "SG.x", "sendgrid:regoin": "eu"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["sendgrid:apiKey"]))
    assert current_stack_config() == ({"sendgrid:apiKey": "SG.x", "sendgrid:regoin": "eu"}, frozenset(SECRET))


@pytest.mark.usefixtures("runtime_state")
def test_current_stack_config_from_the_automation_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    runtime_config.set_all_config({"sendgrid:apiKey": "SG.x", "sendgrid:region": "eu"}, ["sendgrid:apiKey"])
    assert current_stack_config() == ({"sendgrid:apiKey": "SG.x", "sendgrid:region": "eu"}, frozenset(SECRET))
