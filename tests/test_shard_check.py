"""The cross-shard check and the combined output of pipelines/shards, without the engine."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pulumi_sendgrid_tracking.shards import Shard, shard_of

from pipelines import markdown
from pipelines.output import payload
from pipelines.shards import StackView, check, combine, main, view_of
from tools.pulumi_project import ROOT

SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))
ACCOUNTS = ["global", "eu/carol", "global/alice", "global/bob", "global/account-id 42", "eu/dave"]


def fleet(base: str, count: int, accounts: list[str] = ACCOUNTS) -> list[StackView]:
    """Every shard stack of `count`, configured and deployed right, holding its accounts' click setting."""
    return [
        StackView(
            f"{base}-shard-{index}-of-{count}",
            f"{index}/{count}",
            Shard(index, count),
            [(a, "click", f"click-{a}") for a in accounts if shard_of(a, count) == index],
        )
        for index in range(1, count + 1)
    ]


def messages(problems: list[dict[str, Any]]) -> list[str]:
    return [p["message"] for p in problems]


def test_a_fleet_sharded_right_has_no_problem() -> None:
    views = fleet("prod", 3)
    assert {len(v.accounts) for v in views} != {0}  # the accounts are spread
    assert check("prod", 3, views) == []


def test_an_account_in_two_stacks() -> None:
    views = fleet("prod", 3)
    home = shard_of("eu/carol", 3)
    other = views[home % 3]
    other.accounts.append(("eu/carol", "click", "stray"))
    problems = check("prod", 3, views)
    duplicate = next(p for p in problems if "is in 2 stacks" in p["message"])
    assert duplicate["account"] == "eu/carol" and duplicate["setting"] == "click"
    assert f"prod-shard-{home}-of-3 (click-eu/carol)" in duplicate["message"]
    assert f"{other.name} (stray)" in duplicate["message"]
    # and the stray one is in a shard it does not hash into
    assert any(p["message"].startswith(f"{other.name} manages eu/carol click (stray)") for p in problems)


def test_two_shard_counts_at_once() -> None:
    views = fleet("prod", 3) + fleet("prod", 4)[:1]
    problems = messages(check("prod", 3, views))
    assert any(
        m.startswith("prod-shard-1-of-4 is a shard stack of 4 shards, but the fleet runs as 3") for m in problems
    )
    assert any("is in 2 stacks" in m for m in problems)  # both counts hold the accounts of shard 1


def test_a_missing_shard_stack_and_a_config_that_does_not_match_the_name() -> None:
    views = fleet("prod", 3)
    missing = views.pop(1)
    views[0].configured = "2/3"
    views[1].configured = None
    problems = messages(check("prod", 3, views))
    assert f"shard 2/3 has no stack: {missing.name} does not exist, so its accounts are managed by no stack" in problems
    assert "prod-shard-1-of-3's config says shard '2/3', not '1/3' as its name" in problems
    assert any(m.startswith("prod-shard-3-of-3 has no shard in its config") for m in problems)


def test_a_stack_deployed_as_another_shard() -> None:
    views = fleet("prod", 2)
    views[0].deployed = Shard(1, 3)
    problems = messages(check("prod", 2, views))
    assert problems == ["prod-shard-1-of-2 was last deployed as shard 1/3, and is now configured as 1/2"]


def test_view_of_an_export() -> None:
    export = {
        "deployment": {
            "resources": [
                {"urn": "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s", "type": "pulumi:pulumi:Stack",
                 "outputs": {"shard": {"index": 2, "count": 3}}},
                {"urn": "urn:pulumi:s::p::pulumi-python:dynamic/sendgrid:ClickTracking::subuser-alice",
                 "type": "pulumi-python:dynamic/sendgrid:ClickTracking",
                 "outputs": {"region": "global", "on_behalf_of": "alice", "enabled": True}},
                {"urn": "urn:pulumi:s::p::pulumi-python:dynamic/sendgrid:OpenTracking::open-parent",
                 "type": "pulumi-python:dynamic/sendgrid:OpenTracking", "outputs": {"region": "eu"}},
                {"urn": "urn:pulumi:s::p::pulumi-python:dynamic/sendgrid:Adoption::click/global/alice",
                 "type": "pulumi-python:dynamic/sendgrid:Adoption", "outputs": {"region": "global"}},
                {"urn": "urn:pulumi:s::p::pulumi-python:dynamic/sendgrid:ClickTracking::old",
                 "type": "pulumi-python:dynamic/sendgrid:ClickTracking", "delete": True,
                 "outputs": {"region": "global", "on_behalf_of": "zed"}},
            ]
        }
    }  # fmt: skip
    view = view_of("prod-shard-2-of-3", "2/3", export)
    assert view.deployed == Shard(2, 3)
    assert view.accounts == [("global/alice", "click", "subuser-alice"), ("eu", "open", "open-parent")]


def test_combined_output_follows_the_schema() -> None:
    one = payload("deploy", "prod-shard-1-of-2", "sendgrid", exit_code=0, counts={"create": 2, "same": 1})
    two = payload(
        "deploy",
        "prod-shard-2-of-2",
        "sendgrid",
        exit_code=1,
        counts={"create": 1, "failed": 1},
        errors=[
            {"kind": "sendgrid", "message": "GET failed", "hint": "run it again", "resource": None, "setting": None,
             "account": "eu/carol", "details": []}
        ],
    )  # fmt: skip
    out = combine("deploy", "prod", 2, [(Shard(1, 2), one), (Shard(2, 2), two)], "sendgrid-click-tracking")
    assert not list(SCHEMA.iter_errors(out))
    assert out["summary"]["create"] == 3 and out["summary"]["failed"] == 1 and out["summary"]["same"] == 1
    assert out["exit_code"] == 1 and not out["ok"]
    assert [e["message"] for e in out["errors"]] == ["prod-shard-2-of-2: GET failed"]
    assert [(s["stack"], s["shard"], s["ok"]) for s in out["shards"]] == [
        ("prod-shard-1-of-2", "1/2", True),
        ("prod-shard-2-of-2", "2/2", False),
    ]
    summary = markdown.render(out)
    assert "| <code>prod-shard-2-of-2</code> | 2/2 | **FAILED** |" in summary
    assert "prod-shard-2-of-2: GET failed" in summary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "--stack", "prod"], "bad arguments: the following arguments are required: --shards"),
        (["deploy", "--shards", "0"], "bad arguments: argument --shards: '0': a number of shards from 1 to 1024"),
        (["deploy", "--shards", "x"], "bad arguments: argument --shards: 'x': a number of shards from 1 to 1024"),
    ],
)
def test_bad_arguments_give_the_documented_output(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    data = json.loads(capsys.readouterr().out)
    assert not list(SCHEMA.iter_errors(data))
    assert data["command"] == "deploy" and data["errors"][0]["message"] == message
