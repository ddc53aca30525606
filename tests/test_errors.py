"""The SendGridError tree: status → class, message shape, hints, and no key anywhere."""

from __future__ import annotations

import pytest
from pulumi_sendgrid_tracking import errors
from pulumi_sendgrid_tracking.errors import ErrorDetail


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (429, errors.RateLimitError),
        (451, errors.DataResidencyError),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
        (504, errors.ServerError),
        (418, errors.APIError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[errors.APIError]) -> None:
    assert errors.error_class_for(status) is cls
    assert issubclass(cls, errors.SendGridError)


def test_message_keeps_status_method_path_sendgrid_text_and_one_hint() -> None:
    exc = errors.PermissionDeniedError(
        403, "PATCH", "/v3/tracking_settings/click", [ErrorDetail("access forbidden")], on_behalf_of="alice"
    )
    assert str(exc) == (
        "PATCH /v3/tracking_settings/click on behalf of 'alice' failed (403): access forbidden. "
        "Hint: the key needs the tracking_settings.click.update scope, and 'alice' must be a subuser "
        "(or customer account) of the key's account."
    )
    assert str(exc).count("Hint:") == 1
    assert (exc.status, exc.method, exc.path) == (403, "PATCH", "/v3/tracking_settings/click")


def test_read_scope_named_for_get() -> None:
    exc = errors.PermissionDeniedError(403, "GET", "/v3/tracking_settings/click")
    assert "tracking_settings.click.read scope" in str(exc)


def test_401_says_where_to_set_the_key() -> None:
    exc = errors.AuthenticationError(401, "GET", "/v3/tracking_settings/click", [ErrorDetail("authorization required")])
    assert "failed (401): authorization required" in str(exc)
    assert "pulumi config set --secret sendgrid:apiKey" in str(exc)
    assert "SENDGRID_API_KEY" in str(exc)


def test_429_hint_counts_attempts() -> None:
    exc = errors.RateLimitError(
        429, "GET", "/v3/tracking_settings/click", [ErrorDetail("too many requests")], attempts=7
    )
    assert "after 7 attempts" in str(exc)
    assert "still exhausted after 7 attempt(s)" in str(exc)


def test_field_is_kept() -> None:
    exc = errors.BadRequestError(400, "PATCH", "/p", [ErrorDetail("enabled must be a boolean", "enabled")])
    assert "enabled must be a boolean (field enabled)" in str(exc)
    assert exc.errors == (ErrorDetail("enabled must be a boolean", "enabled"),)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {"errors": "x"},
        {"errors": [1, {"message": 2}, {"field": "f"}]},
        {"errors": [{"message": "m", "field": 3}]},
    ],
)
def test_error_details_tolerate_any_body(body: object) -> None:
    details = errors.parse_error_details(body)
    assert all(isinstance(d.message, str) for d in details)
    if body == {"errors": [{"message": "m", "field": 3}]}:
        assert details == [ErrorDetail("m", None)]
