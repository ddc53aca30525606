"""The emulator's accounts: subusers by username, customer accounts by id, deletion, seeds and snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from pulumi_sendgrid_tracking.emulator import AdminClient, AdminError, Emulator, EmulatorProcess, EmulatorState
from pulumi_sendgrid_tracking.emulator.errors import AccessForbidden

from .conftest import TEST_KEY

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
ROOT = Path(__file__).resolve().parent.parent
# Every API request a client can make: the list, then GET and PATCH of each setting.
KINDS = ("click", "open", "subscription", "google_analytics")
EVERY_REQUEST = [("GET", "/v3/tracking_settings", None)] + [
    (method, f"/v3/tracking_settings/{kind}", {"enabled": False} if method == "PATCH" else None)
    for kind in KINDS
    for method in ("GET", "PATCH")
]


def answer(base_url: str, method: str, path: str, body: Any, on_behalf_of: str | None) -> tuple[int, Any]:
    headers = {**AUTH, **({"on-behalf-of": on_behalf_of} if on_behalf_of is not None else {})}
    response = requests.request(method, base_url + path, headers=headers, json=body, timeout=10)
    return response.status_code, response.json()


FORBIDDEN = (403, {"errors": [{"field": "on-behalf-of", "message": "access forbidden"}]})


# -- subusers and customer accounts are different things ------------------------------------


def test_a_subuser_is_not_addressed_by_an_account_id_nor_a_customer_by_a_bare_id() -> None:
    state = EmulatorState()
    state.add_subuser("global", "alice")
    state.add_customer("global", "4242")
    assert state.account("global", "alice").on_behalf_of == "alice"
    assert state.account("global", "account-id 4242").on_behalf_of == "account-id 4242"
    for wrong in ("account-id alice", "4242", "account-id 4243", "account-id", "Alice"):
        with pytest.raises(AccessForbidden):
            state.account("global", wrong)
    with pytest.raises(AccessForbidden):
        state.account("eu", "account-id 4242")  # worlds share nothing


def test_add_subuser_takes_no_account_id() -> None:
    with pytest.raises(TypeError, match="use add_customer"):
        EmulatorState().add_subuser("global", "alice", account_id="101")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", " alice", "al ice", "account-id 7", "account-idx"])
def test_subuser_names_that_could_not_be_an_on_behalf_of_value_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"username|customer account"):
        EmulatorState().add_subuser("global", name)


def test_customer_ids_are_fresh_unless_given() -> None:
    state = EmulatorState()
    first, second = state.add_customer("global"), state.add_customer("eu")
    assert first.name != second.name
    assert state.add_customer("global", "77").on_behalf_of == "account-id 77"


def test_over_http_a_customer_account_and_a_subuser_are_separate(emulator: Emulator) -> None:
    emulator.state.add_subuser("global", "alice", enabled=False)
    emulator.state.add_customer("global", "4242", enabled=True)
    base = emulator.base_url
    click = "/v3/tracking_settings/click"
    assert answer(base, "GET", click, None, "alice") == (200, {"enabled": False, "enable_text": False})
    assert answer(base, "GET", click, None, "account-id 4242") == (200, {"enabled": True, "enable_text": False})
    assert answer(base, "GET", click, None, "account-id alice") == FORBIDDEN
    assert answer(base, "GET", click, None, "4242") == FORBIDDEN
    answer(base, "PATCH", click, {"enabled": False}, "account-id 4242")
    snapshot = emulator.state.snapshot()["global"]
    assert snapshot["customers"]["4242"]["click"]["enabled"] is False
    assert snapshot["subusers"]["alice"]["click"]["enabled"] is False


# -- deletion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), EVERY_REQUEST)
@pytest.mark.parametrize(("world", "kind", "name"), [("global", "subuser", "alice"), ("eu", "customer", "9")])
def test_a_deleted_account_is_answered_exactly_as_one_that_never_existed(
    emulator: Emulator, method: str, path: str, body: Any, world: str, kind: str, name: str
) -> None:
    base = emulator.eu_base_url if world == "eu" else emulator.base_url
    admin = AdminClient(emulator.base_url)
    if kind == "subuser":
        emulator.state.add_subuser(world, name)
        on_behalf_of, ghost = name, "ghost"
    else:
        emulator.state.add_customer(world, name)
        on_behalf_of, ghost = f"account-id {name}", "account-id 999999"
    assert answer(base, method, path, body, on_behalf_of)[0] == 200
    (admin.delete_subuser(name, world=world) if kind == "subuser" else admin.delete_customer(name, world=world))
    after = answer(base, method, path, body, on_behalf_of)
    assert after == answer(base, method, path, body, ghost) == FORBIDDEN
    assert emulator.state.request_log()[-2]["status"] == 403  # logged like any other answer


def test_deleting_keeps_the_parent_and_the_others_and_a_recreated_subuser_starts_afresh(emulator: Emulator) -> None:
    state = emulator.state
    state.add_subuser("global", "alice", enabled=False)
    state.add_subuser("global", "bob", enabled=False)
    state.delete_subuser("global", "alice")
    assert answer(emulator.base_url, "GET", "/v3/tracking_settings/click", None, "bob")[1]["enabled"] is False
    assert answer(emulator.base_url, "GET", "/v3/tracking_settings/click", None, None)[0] == 200
    assert state.snapshot()["global"]["deleted"] == {"subusers": ["alice"], "customers": []}
    state.add_subuser("global", "alice")  # a new subuser of the same name: none of the old settings
    assert answer(emulator.base_url, "GET", "/v3/tracking_settings/click", None, "alice")[1]["enabled"] is True
    assert state.snapshot()["global"]["deleted"]["subusers"] == []


def test_deleting_an_unknown_account_is_a_404_naming_it(emulator: Emulator) -> None:
    admin = AdminClient(emulator.base_url)
    with pytest.raises(AdminError, match=r"failed \(404\): no subuser 'ghost' in the global world"):
        admin.delete_subuser("ghost")
    emulator.state.add_subuser("global", "alice")
    with pytest.raises(AdminError, match="no subuser 'alice' in the eu world"):
        admin.delete_subuser("alice", world="eu")
    with pytest.raises(AdminError, match=r"no customer account '1' in the global world"):
        admin.delete_customer("1")


def test_admin_add_subuser_refuses_an_account_id_and_says_where_customers_go(emulator: Emulator) -> None:
    response = requests.post(
        emulator.base_url + "/__emulator/subusers", json={"username": "alice", "account_id": "101"}, timeout=10
    )
    assert response.status_code == 400
    assert "POST /__emulator/customers" in response.json()["errors"][0]["message"]
    added = AdminClient(emulator.eu_base_url).add_customer("31", world="eu", enabled=False)
    assert added == {"account_id": "31", "on_behalf_of": "account-id 31"}
    assert emulator.state.snapshot()["eu"]["customers"]["31"]["click"]["enabled"] is False


# -- seeds and snapshots ----------------------------------------------------------------------

SEED = {
    "global": {
        "parent": {"click": {"enabled": False}},
        "subusers": {"alice": {"click": {"enabled": False, "enable_text": True}}},
        "customers": {"4242": {"open": {"enabled": False}}},
    },
    "eu": {"subusers": {"carol": {}}},
}


def test_seed_loads_subusers_and_customers() -> None:
    state = EmulatorState()
    state.seed(SEED)
    assert state.account("global", None).settings["click"]["enabled"] is False
    assert state.account("global", "alice").settings["click"] == {"enabled": False, "enable_text": True}
    assert state.account("global", "account-id 4242").settings["open"] == {"enabled": False}
    assert state.account("eu", "carol").settings["click"] == {"enabled": True, "enable_text": False}


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ({"global": {"subusers": {"alice": {"account_id": "101"}}}}, "account_id: subusers are addressed by username"),
        ({"mars": {}}, "unknown world 'mars'"),
        ({"global": {"subuser": {}}}, "unknown keys ['subuser']"),
        ({"global": {"subusers": {"a": {"clicks": {}}}}}, "global.subusers.a.clicks: unknown setting"),
        ({"global": {"customers": {"1": {"click": {"enabled": "no"}}}}}, "click.enabled: enabled must be a boolean"),
        ({"global": {"parent": {"subscription": {"url": "nope"}}}}, "subscription.url: url must be an absolute"),
        ({"global": {"parent": {"open": {"enable_text": True}}}}, "unknown fields ['enable_text']"),
    ],
)
def test_a_bad_seed_is_refused_whole_with_the_path_of_the_problem(seed: dict[str, Any], message: str) -> None:
    state = EmulatorState()
    before = state.snapshot()
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        state.seed({"eu": {"subusers": {"carol": {}}}, **seed})
    assert state.snapshot() == before  # nothing half-applied (carol, listed first, was not added)


def test_the_old_seed_format_is_refused_by_the_admin_api_with_the_fix(emulator: Emulator) -> None:
    with pytest.raises(AdminError, match=r"failed \(400\).*put customer accounts under global.customers"):
        AdminClient(emulator.base_url).seed({"global": {"subusers": {"alice": {"account_id": "101"}}}})


def test_snapshot_restore_round_trip_with_customers_and_deletions() -> None:
    state = EmulatorState()
    state.seed(SEED)
    state.add_customer("eu", "77", enabled=False)
    state.delete_subuser("global", "alice")
    state.update_setting(state.account("global", None), "subscription", {"url": "https://example.com/u"})
    copy = EmulatorState()
    copy.restore(json.loads(json.dumps(state.snapshot())))
    assert copy.snapshot() == state.snapshot()
    with pytest.raises(AccessForbidden):
        copy.account("global", "alice")
    assert copy.account("eu", "account-id 77").settings["click"]["enabled"] is False


def test_restore_reads_a_state_file_written_before_customer_accounts() -> None:
    old = {
        "global": {
            "parent": {"click": {"enabled": True, "enable_text": False}},
            "subusers": {"alice": {"account_id": "101", "click": {"enabled": False, "enable_text": False}}},
        },
        "eu": {"parent": {"click": {"enabled": True, "enable_text": False}}, "subusers": {}},
    }
    state = EmulatorState()
    state.restore(old)
    assert state.account("global", "alice").settings["click"]["enabled"] is False
    assert state.account("global", "alice").settings["open"] == {"enabled": True}  # defaults fill the rest
    with pytest.raises(AccessForbidden):
        state.account("global", "account-id 101")  # the old id named no customer account


def test_a_seed_over_a_saved_world_adds_only_what_is_missing_and_never_deleted() -> None:
    state = EmulatorState()
    state.seed(SEED)
    state.set_out_of_band("global", "alice", "click", {"enabled": True})
    state.delete_subuser("eu", "carol")
    saved = state.snapshot()
    restarted = EmulatorState()
    restarted.restore(saved)
    newer_seed = {**SEED, "global": {**SEED["global"], "subusers": {"alice": {}, "dave": {}}}}
    restarted.seed(newer_seed, missing_only=True)
    world = restarted.snapshot()
    assert world["global"]["subusers"]["alice"]["click"]["enabled"] is True  # kept, not re-seeded
    assert world["global"]["parent"] == saved["global"]["parent"]
    assert set(world["global"]["subusers"]) == {"alice", "dave"}  # dave is new in the seed
    assert world["eu"]["subusers"] == {}  # carol stays deleted


def test_the_command_line_adds_customers_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"global": {"subusers": {"alice": {}}}}))
    args = ("--api-key", TEST_KEY, "--seed", str(seed), "--state-file", str(state_file), "--customer", "55")
    with EmulatorProcess(*args, "--eu-customer", "56") as first:
        assert answer(first.base_url, "PATCH", "/v3/tracking_settings/open", {"enabled": False}, "account-id 55")[0]
        assert answer(first.eu_base_url, "GET", "/v3/tracking_settings/open", None, "account-id 56")[0] == 200
        first.admin.delete_subuser("alice")
    with EmulatorProcess(*args) as second:  # the same flags again: nothing comes back, nothing is reset
        world = second.admin.state()["global"]
        assert world["customers"]["55"]["open"]["enabled"] is False
        assert world["subusers"] == {}
        assert answer(second.base_url, "GET", "/v3/tracking_settings/click", None, "alice") == FORBIDDEN
