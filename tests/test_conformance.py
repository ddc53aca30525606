"""The emulator against SendGrid's official OpenAPI description: validated answers, and a fuzz run."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from .conftest import TEST_KEY

SPEC_PATH = Path(__file__).resolve().parent / "spec" / "tsg_tracking_settings_v3.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
ERROR_ENVELOPE = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}, "field": {"type": ["string", "null"]}},
            },
        }
    },
}


@pytest.fixture(scope="module")
def fuzz_emulator() -> Iterator[Emulator]:
    state = EmulatorState(api_keys=[TEST_KEY], rate_limit=100_000)
    state.add_subuser("global", "alice")
    state.add_customer("global", "4242")
    with Emulator(state) as running:
        yield running


def openapi_for(base_url: str) -> OpenAPI:
    spec = copy.deepcopy(SPEC)
    spec["servers"] = [{"url": base_url}]  # same paths, the emulator's host
    return OpenAPI.from_dict(spec)


REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v3/tracking_settings", None),
    ("GET", "/v3/tracking_settings/click", None),
    ("PATCH", "/v3/tracking_settings/click", {"enabled": False}),
    ("PATCH", "/v3/tracking_settings/click", {}),
    ("GET", "/v3/tracking_settings/open", None),
    ("PATCH", "/v3/tracking_settings/open", {"enabled": False}),
    ("GET", "/v3/tracking_settings/subscription", None),
    ("PATCH", "/v3/tracking_settings/subscription", {"enabled": True, "url": "https://example.com/u", "replace": "t"}),
    (
        "PATCH",
        "/v3/tracking_settings/subscription",
        {"html_content": "<p>x</p>", "landing": "<p>y</p>", "plain_content": "<% %>", "url": ""},
    ),
    ("GET", "/v3/tracking_settings/google_analytics", None),
    ("PATCH", "/v3/tracking_settings/google_analytics", {"enabled": True, "utm_source": "sendgrid.com"}),
]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
@pytest.mark.parametrize("who", [None, "alice", "account-id 4242", "eu"])
def test_every_success_answer_matches_the_official_schema(
    fuzz_emulator: Emulator, method: str, path: str, body: dict[str, Any] | None, who: str | None
) -> None:
    base = fuzz_emulator.eu_base_url if who == "eu" else fuzz_emulator.base_url
    headers = {**AUTH, **({"on-behalf-of": who} if who not in (None, "eu") else {})}
    response = requests.request(method, base + path, json=body, headers=headers, timeout=10)
    assert response.status_code == 200
    openapi_for(base).validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


def test_validator_catches_a_wrong_shape(fuzz_emulator: Emulator) -> None:
    """The check above can fail: a body missing a required field is rejected."""
    response = requests.get(fuzz_emulator.base_url + "/v3/tracking_settings/click", headers=AUTH, timeout=10)
    response._content = b'{"enabled": true}'
    with pytest.raises(Exception, match="enable_text"):
        openapi_for(fuzz_emulator.base_url).validate_response(
            RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
        )


@pytest.mark.parametrize(
    ("headers", "path", "data"),
    [
        ({}, "/v3/tracking_settings/click", None),
        ({"Authorization": "Bearer SG.nope"}, "/v3/tracking_settings/click", None),
        (AUTH | {"on-behalf-of": "ghost"}, "/v3/tracking_settings/click", None),
        (AUTH, "/v3/nothing/here", None),
        (AUTH, "/v3/tracking_settings/click", b"{not json"),
        (AUTH, "/v3/tracking_settings/subscription", b'{"url": "not a url", "enabled": 1}'),
        (AUTH, "/v3/tracking_settings/open", b"[]"),
        (AUTH | {"on-behalf-of": "account-id alice"}, "/v3/tracking_settings/click", None),
    ],
)
def test_error_answers_use_sendgrids_envelope(
    fuzz_emulator: Emulator, headers: dict[str, str], path: str, data: bytes | None
) -> None:
    method = "PATCH" if data else "GET"
    response = requests.request(method, fuzz_emulator.base_url + path, headers=headers, data=data, timeout=10)
    assert 400 <= response.status_code < 500
    assert response.headers["Content-Type"] == "application/json"
    jsonschema.validate(response.json(), ERROR_ENVELOPE)


def request_fields() -> list[tuple[str, str, str]]:
    """(path, field, JSON type) of every property of every PATCH body, read from the spec itself."""
    found = []
    for path, item in SPEC["paths"].items():
        if "patch" not in item:
            continue
        body_schema = item["patch"]["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in body_schema:
            body_schema = SPEC["components"]["schemas"][body_schema["$ref"].rsplit("/", 1)[1]]
        found += [(path, name, prop["type"]) for name, prop in body_schema["properties"].items()]
    return found


WRONG = {"boolean": ["true", 1, None, []], "string": [True, 0, None, {}]}
RIGHT = {"boolean": False, "string": "text"}


@pytest.mark.parametrize(("path", "field", "json_type"), request_fields())
def test_each_request_field_of_the_spec_is_typed_as_the_spec_says(
    fuzz_emulator: Emulator, path: str, field: str, json_type: str
) -> None:
    """A wrong type is a 400 naming the field; the spec's type is accepted (a URL for `url`)."""
    url = fuzz_emulator.base_url + path
    for wrong in WRONG[json_type]:
        response = requests.patch(url, headers=AUTH, json={field: wrong}, timeout=10)
        assert response.status_code == 400, (field, wrong)
        assert response.json()["errors"][0]["field"] == field
        assert response.json()["errors"][0]["message"].startswith(f"{field} must be a {json_type}")
    right = "https://example.com/u" if field == "url" else RIGHT[json_type]
    response = requests.patch(url, headers=AUTH, json={field: right}, timeout=10)
    assert (response.status_code, response.json()[field]) == (200, right)
    openapi_for(fuzz_emulator.base_url).validate_response(
        RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
    )


def test_the_spec_lists_the_fields_the_emulator_validates() -> None:
    """If the spec copy gained or lost a request field, the test above would silently shrink."""
    assert len(request_fields()) == 1 + 1 + 6 + 6


schema = schemathesis.openapi.from_path(SPEC_PATH)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_fuzz_no_server_errors_no_schema_violations(case: Any, fuzz_emulator: Emulator) -> None:
    case.call_and_validate(
        base_url=fuzz_emulator.base_url,
        headers=AUTH,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=10,
    )
