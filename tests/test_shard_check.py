"""The cross-shard check and the combined output of pipelines/shards, without the engine."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pulumi_sendgrid_tracking.shards import Shard, shard_of

from pipelines import markdown
from pipelines.output import payload
from pipelines.shards import Fleet, StackView, check, combine, fleet_source_problems, main, view_of
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


# -- the fleet's one source ------------------------------------------------------------------------------

NS = "sendgrid-click-tracking"
FILES = {
    "fleets/prod.yaml": "subusers:\n  - {username: alice, enabled: true}\n",
    "fleets/extra.yaml": "subusers:\n"
    + "".join(f"  - {{username: {name}, enabled: true}}\n" for name in ("alice", "bob", "dave", "erin")),
}


def configured(index: int, count: int, **config: Any) -> StackView:
    return StackView(
        f"prod-shard-{index}-of-{count}", f"{index}/{count}", config={f"{NS}:shard": f"{index}/{count}", **config}
    )


def test_every_shard_reading_the_fleets_file_is_one_source() -> None:
    views = [configured(i, 2, **{f"{NS}:fleetFile": "fleets/prod.yaml"}) for i in (1, 2)]
    assert fleet_source_problems("prod", 2, {f"{NS}:fleetFile": "fleets/prod.yaml"}, views, FILES.__getitem__) == []


def test_an_inline_fleet_is_refused_for_sharding_with_the_fix() -> None:
    problems = fleet_source_problems("prod", 4, {f"{NS}:subusers": "[]", f"{NS}:parent": "{}"}, [], FILES.__getitem__)
    assert [(p["message"], p["hint"]) for p in problems] == [
        (
            "prod's fleet is inline in its stack config (sendgrid-click-tracking:parent, "
            "sendgrid-click-tracking:subusers): a sharded fleet is read from a file, so that every shard stack reads "
            "the one the fleet's stack names, at every run",
            "move those keys, without the `sendgrid-click-tracking:` prefix, into fleets/prod.yaml; then `pulumi "
            "config set sendgrid-click-tracking:fleetFile fleets/prod.yaml --stack prod` and `pulumi config rm` each "
            "of them (in every shard stack too), and run pipelines/shards init --stack prod --shards 4",
        )
    ]


def test_an_account_declared_in_a_shard_it_does_not_hash_into_names_its_shard() -> None:
    """A shard stack pointed at a file of its own: the file is not the fleet's, and each of its accounts that
    belongs to another shard is named with that shard."""
    views = [
        configured(1, 2, **{f"{NS}:fleetFile": "fleets/prod.yaml"}),
        configured(2, 2, **{f"{NS}:fleetFile": "fleets/extra.yaml"}),
    ]
    problems = fleet_source_problems("prod", 2, {f"{NS}:fleetFile": "fleets/prod.yaml"}, views, FILES.__getitem__)
    elsewhere = sorted(a for a in ("global/alice", "global/bob", "global/dave", "global/erin") if shard_of(a, 2) == 1)
    assert elsewhere  # the test means something: some of them hash into shard 1
    assert messages(problems) == [
        "prod-shard-2-of-2 reads its fleet from fleets/extra.yaml, not from fleets/prod.yaml that prod names: a "
        "sharded fleet has one source",
        *(
            f"prod-shard-2-of-2 declares {a} (from fleets/extra.yaml), which belongs to shard 1/2 (prod-shard-1-of-2): "
            "its preview would leave it out, and no stack would manage it"
            for a in elsewhere
        ),
    ]
    assert problems[0]["hint"] == (
        "pulumi config set sendgrid-click-tracking:fleetFile fleets/prod.yaml --stack prod-shard-2-of-2; "
        "put its accounts in that file"
    )
    assert [p["account"] for p in problems[1:]] == elsewhere


def test_a_shard_with_an_inline_fleet_of_its_own() -> None:
    inline = json.dumps([{"username": "bob", "enabled": True}])
    home = shard_of("global/bob", 2)
    views = [configured(3 - home, 2, **{f"{NS}:subusers": inline})]
    problems = fleet_source_problems("prod", 2, {f"{NS}:fleetFile": "fleets/prod.yaml"}, views, FILES.__getitem__)
    assert messages(problems) == [
        f"prod-shard-{3 - home}-of-2 reads its fleet inline in its stack config, not from fleets/prod.yaml that "
        "prod names: a sharded fleet has one source",
        f"prod-shard-{3 - home}-of-2 declares global/bob (inline in its stack config), which belongs to shard "
        f"{home}/2 (prod-shard-{home}-of-2): its preview would leave it out, and no stack would manage it",
    ]


class StubFleet(Fleet):
    """A Fleet whose stacks, configs and states are given, not read with pulumi."""

    def __init__(self, stacks: dict[str, tuple[dict[str, Any], list[str]]]) -> None:
        super().__init__(ROOT, "prod", 2, {})
        self.given = stacks
        self.read: list[str] = []

    def stacks(self) -> list[str]:
        return sorted(self.given)

    def config(self, name: str) -> dict[str, Any]:
        self.read.append(f"config {name}")
        return self.given[name][0]

    def export(self, name: str) -> dict[str, Any]:
        self.read.append(f"export {name}")
        resources = [
            {
                "urn": f"urn:pulumi:{name}::p::pulumi-python:dynamic/sendgrid:ClickTracking::click-{a}",
                "type": "pulumi-python:dynamic/sendgrid:ClickTracking",
                "outputs": {"__provider": "x", "region": a.split("/")[0], "on_behalf_of": a.partition("/")[2] or None},
            }
            for a in self.given[name][1]
        ]
        return {"deployment": {"resources": resources}}


def test_a_preview_warns_of_accounts_the_fleets_stack_or_another_count_still_holds() -> None:
    source = {f"{NS}:fleetFile": "fleets/prod.yaml"}
    fleet = StubFleet(
        {
            "prod": (source, ["global/alice"]),
            "prod-shard-1-of-2": ({**source, f"{NS}:shard": "1/2"}, []),
            "prod-shard-2-of-2": ({**source, f"{NS}:shard": "2/2"}, []),
            "prod-shard-1-of-3": ({**source, f"{NS}:shard": "1/3"}, ["global/bob", "eu/carol"]),
        }
    )
    errors, warnings = fleet.preview_checks()
    assert errors == []
    assert [w["message"] for w in warnings] == [
        "prod (the fleet's own stack) still manages 1 account setting(s) of 1 account(s) (global/alice); this "
        "preview of 2 shards plans them as new. Move them with their state first: pipelines/shards reshard "
        "--stack prod --shards 2",
        "prod-shard-1-of-3 (a shard stack of 3) still manages 2 account setting(s) of 2 account(s) (eu/carol, "
        "global/bob); this preview of 2 shards plans them as new. Move them with their state first: "
        "pipelines/shards reshard --stack prod --shards 2",
    ]
    # The stacks of this count: their config only (their states are the shards' own previews' to read).
    assert "export prod-shard-1-of-2" not in fleet.read and "config prod-shard-1-of-3" not in fleet.read
