"""The emulator's lists, `GET /v3/subusers` and `GET /v3/partners/accounts`, against the official descriptions."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState

from .conftest import TEST_KEY

SPECS = Path(__file__).resolve().parent / "spec"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CUSTOMER = "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"  # the form of the spec's own example


def spec(name: str, base_url: str) -> OpenAPI:
    data = yaml.safe_load((SPECS / name).read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["servers"] = [{"url": base_url}]
    return OpenAPI.from_dict(data)


@pytest.fixture
def world() -> Iterator[Emulator]:
    state = EmulatorState(api_keys=[TEST_KEY], rate_limit=100_000)
    state.seed(
        {
            "global": {
                "subusers": {"alice": {}, "bob": {"disabled": True}, "John@example.com": {}},
                "customers": {CUSTOMER: {}, "4242": {}},
            },
            "eu": {"subusers": {"carol": {}, "dave": {}}, "customers": {"cust3eu": {}}},
        }
    )
    with Emulator(state) as running:
        yield running


def get(emulator: Emulator, path: str, key: str = TEST_KEY, base: str | None = None) -> requests.Response:
    return requests.get((base or emulator.base_url) + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def names(response: requests.Response) -> list[Any]:
    return [(s["username"], s.get("region"), s["disabled"]) for s in response.json()]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?include_region=true",
        "?limit=2&offset=2&include_region=true",
        "?region=eu&include_region=false",
        "?username=alice",
        "?limit=0",
    ],
)
def test_every_subusers_answer_matches_the_official_schema(world: Emulator, query: str) -> None:
    response = get(world, "/v3/subusers" + query)
    assert response.status_code == 200
    spec("tsg_subusers_v3.yaml", world.base_url).validate_response(
        RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
    )


def test_subusers_of_both_regions_page_by_page_disabled_ones_marked(world: Emulator) -> None:
    pages = [names(get(world, f"/v3/subusers?limit=2&offset={offset}&include_region=true")) for offset in (0, 2, 4)]
    assert pages == [
        [("alice", "global", False), ("bob", "global", True)],
        [("John@example.com", "global", False), ("carol", "eu", False)],
        [("dave", "eu", False)],
    ]
    # the same list from the EU host: one parent, one list
    from_eu = names(get(world, "/v3/subusers?include_region=true", base=world.eu_base_url))
    assert from_eu == [s for page in pages for s in page]


def test_subusers_filters(world: Emulator) -> None:
    assert names(get(world, "/v3/subusers?region=eu&include_region=true")) == [
        ("carol", "eu", False),
        ("dave", "eu", False),
    ]
    assert names(get(world, "/v3/subusers?region=global")) == [
        ("alice", None, False),
        ("bob", None, True),
        ("John@example.com", None, False),
    ]
    assert names(get(world, "/v3/subusers?username=carol&include_region=true")) == [("carol", "eu", False)]
    assert get(world, "/v3/subusers?username=ghost").json() == []
    assert get(world, "/v3/subusers?offset=99").json() == []


def test_a_deleted_subuser_is_not_listed(world: Emulator) -> None:
    world.admin.delete_subuser("alice")
    assert "alice" not in [s["username"] for s in get(world, "/v3/subusers").json()]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=ten", "limit"),
        ("?offset=-1", "offset"),
        ("?region=us", "region"),
        ("?include_region=yes", "include_region"),
    ],
)
def test_a_bad_subusers_query_is_a_400_naming_the_parameter(world: Emulator, query: str, field: str) -> None:
    response = get(world, "/v3/subusers" + query)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("query", ["", "?limit=2", f"?limit=1&offset={CUSTOMER}", "?limit=100&offset=cust3eu"])
def test_every_accounts_answer_matches_the_official_schema(world: Emulator, query: str) -> None:
    response = get(world, "/v3/partners/accounts" + query)
    assert response.status_code == 200
    spec("tsg_account_provisioning_v3.yaml", world.base_url).validate_response(
        RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
    )


def test_customer_accounts_page_by_the_last_id(world: Emulator) -> None:
    first = get(world, "/v3/partners/accounts?limit=2").json()
    assert [a["id"] for a in first["accounts"]] == [CUSTOMER, "4242"]
    assert first["pages"] == {"last": "4242"}
    second = get(world, "/v3/partners/accounts?limit=2&offset=4242").json()
    assert [a["id"] for a in second["accounts"]] == ["cust3eu"]
    assert second["pages"] == {"last": "cust3eu"}
    assert get(world, "/v3/partners/accounts?limit=2&offset=cust3eu").json() == {"accounts": [], "pages": {}}
    assert len(get(world, "/v3/partners/accounts").json()["accounts"]) == 3  # default limit 10


@pytest.mark.parametrize("limit", ["0", "101", "x"])
def test_accounts_limit_is_1_to_100(world: Emulator, limit: str) -> None:
    response = get(world, f"/v3/partners/accounts?limit={limit}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "limit"


@pytest.mark.parametrize(
    ("path", "scope"), [("/v3/subusers", "subusers.read"), ("/v3/partners/accounts", "partners.accounts.read")]
)
def test_a_key_without_the_lists_scope_gets_403(world: Emulator, path: str, scope: str) -> None:
    world.admin.add_key("SG.tracking-only", ["tracking_settings.click.read"])
    response = get(world, path, key="SG.tracking-only")
    assert (response.status_code, response.json()) == (
        403,
        {"errors": [{"field": None, "message": "access forbidden"}]},
    )
    world.admin.add_key("SG.with-scope", [scope])
    assert get(world, path, key="SG.with-scope").status_code == 200


def test_lists_are_rate_limited_and_logged_like_every_api_request(world: Emulator) -> None:
    world.admin.add_fault("429", path="/v3/subusers", count=1)
    assert get(world, "/v3/subusers").status_code == 429
    assert get(world, "/v3/subusers").status_code == 200
    logged = [(e["method"], e["path"], e["status"]) for e in world.admin.request_log()]
    assert logged == [("GET", "/v3/subusers", 429), ("GET", "/v3/subusers", 200)]


def test_disabled_survives_a_snapshot(world: Emulator) -> None:
    state = world.state
    again = EmulatorState(api_keys=[TEST_KEY])
    again.restore(state.snapshot())
    listed = {s["username"]: s["disabled"] for s in again.list_subusers(limit=10, offset=0)}
    assert listed == {"alice": False, "bob": True, "John@example.com": False, "carol": False, "dave": False}


def test_the_validator_catches_a_wrong_shape(world: Emulator) -> None:
    """The schema checks above can fail: a subuser without its required email is rejected."""
    response = get(world, "/v3/subusers")
    response._content = b'[{"disabled": false, "id": 1, "username": "alice"}]'
    with pytest.raises(Exception, match="email"):
        spec("tsg_subusers_v3.yaml", world.base_url).validate_response(
            RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
        )
