"""Sharding: an account's shard is stable, every account is in exactly one, its settings stay together."""

from __future__ import annotations

from collections import Counter

import pytest
from pulumi_sendgrid_tracking.fleet import PROGRAM_KEYS, parse_fleet
from pulumi_sendgrid_tracking.shards import MAX_SHARDS, Shard, ShardConfigError, account_key, parse_shard, shard_of
from pulumi_sendgrid_tracking.stack_config import check_stack_config

NS = "sendgrid-click-tracking"
ACCOUNTS = [account_key("global", None), account_key("eu", None)] + [
    account_key(region, f"user-{i:04d}") for region in ("global", "eu") for i in range(500)
]


def test_known_accounts_have_fixed_shards() -> None:
    # Pinned: a change here moves accounts between the stacks of every sharded fleet.
    assert {key: [shard_of(key, n) for n in (1, 2, 3, 4, 8)] for key in ["global", "eu/carol", "global/bob"]} == {
        "global": [1, 1, 3, 3, 3],
        "eu/carol": [1, 2, 2, 4, 8],
        "global/bob": [1, 2, 3, 4, 8],
    }
    assert shard_of("global/account-id 42", 8) == 3
    assert shard_of("eu/user-0007", MAX_SHARDS) == shard_of("eu/user-0007", MAX_SHARDS)


def test_the_key_is_the_account_region_and_on_behalf_of() -> None:
    assert account_key("global", None) == "global"
    assert account_key("eu", "carol") == "eu/carol"
    assert account_key("global", "account-id 42") == "global/account-id 42"
    # The same username in two regions is two accounts, each hashed on its own.
    assert [shard_of(account_key(r, "carol"), 8) for r in ("global", "eu")] == [1, 8]


@pytest.mark.parametrize("count", [1, 2, 3, 8, 50])
def test_every_account_is_in_exactly_one_shard(count: int) -> None:
    owners = Counter(key for key in ACCOUNTS for index in range(1, count + 1) if shard_of(key, count) == index)
    assert set(owners.values()) == {1} and len(owners) == len(ACCOUNTS)
    # and the shards share them roughly evenly (1,002 accounts)
    sizes = Counter(shard_of(key, count) for key in ACCOUNTS)
    assert set(sizes) == set(range(1, count + 1)) if count <= 8 else len(sizes) > count // 2
    assert max(sizes.values()) <= 1.5 * len(ACCOUNTS) / count + 10


def test_one_more_shard_moves_accounts_only_into_the_new_one() -> None:
    moved = [key for key in ACCOUNTS if shard_of(key, 8) != shard_of(key, 9)]
    assert moved and all(shard_of(key, 9) == 9 for key in moved)
    assert len(moved) < len(ACCOUNTS) / 9 * 1.5


def test_all_settings_of_an_account_are_in_its_shard() -> None:
    fleet = {
        "defaults": {
            "click": {"enabled": True},
            "open": {"enabled": False},
            "subscription": {"enabled": True},
            "googleAnalytics": {"enabled": False},
        },
        "parent": {"googleAnalytics": {"enabled": True}},
        "subusers": [{"username": f"user-{i:02d}", "region": "eu" if i % 3 else "global"} for i in range(40)],
    }
    entries = parse_fleet(fleet)
    shards = [Shard(index, 4) for index in range(1, 5)]
    chosen = {shard: [e for e in entries if shard.holds(e.region or "global", e.on_behalf_of)] for shard in shards}
    assert sorted(e.name for es in chosen.values() for e in es) == sorted(e.name for e in entries)
    for shard, shard_entries in chosen.items():
        accounts = Counter(e.on_behalf_of for e in shard_entries)
        assert accounts and all(n == 4 for n in accounts.values()), shard  # all four settings, together
        assert all(shard_of(account_key(e.region or "global", e.on_behalf_of), 4) == shard.index for e in shard_entries)


@pytest.mark.parametrize(
    ("raw", "shard"),
    [("1/1", Shard(1, 1)), ("2/8", Shard(2, 8)), ("8/8", Shard(8, 8)), ("1024/1024", Shard(1024, 1024))],
)
def test_good_shard_values(raw: str, shard: Shard) -> None:
    assert parse_shard(raw) == shard
    assert str(shard) == raw and shard.suffix == f"shard-{shard.index}-of-{shard.count}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0/8", "the index must be between 1 and 8 (the count), got 0"),
        ("9/8", "the index must be between 1 and 8 (the count), got 9"),
        ("1/0", "the count must be between 1 and 1024, got 0"),
        ("1/2000", "the count must be between 1 and 1024, got 2000"),
        ("8", "'8' is not <index>/<count>"),
        ("2 / 8", "'2 / 8' is not <index>/<count>"),
        ("-1/8", "'-1/8' is not <index>/<count>"),
        ("two/eight", "'two/eight' is not <index>/<count>"),
        ("", "'' is not <index>/<count>"),
        (2, "must be a string, got int 2"),
    ],
)
def test_bad_shard_values_say_what_to_write(raw: object, message: str) -> None:
    with pytest.raises(ShardConfigError) as info:
        parse_shard(raw, f"{NS}:shard")
    assert str(info.value).startswith(f"{NS}:shard: ")
    assert message in str(info.value)
    if "is not" in message or "string" in message:
        assert 'write it as "<index>/<count>", e.g. "2/8"' in str(info.value)


def test_shard_is_a_known_key_of_the_program() -> None:
    config = {f"{NS}:fleetFile": "fleets/prod.yaml", f"{NS}:shard": "2/8"}
    assert check_stack_config(config, set(), {NS: PROGRAM_KEYS}) == []
    [problem] = check_stack_config({f"{NS}:shards": "2/8"}, set(), {NS: PROGRAM_KEYS})
    assert "did you mean sendgrid-click-tracking:shard?" in problem
