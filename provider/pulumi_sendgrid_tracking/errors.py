"""The SendGridError tree: every failure a user of this provider can see, with a hint.

    SendGridError                     root; every message ends with one "Hint:" line
    ├── ConfigurationError            settings are missing or invalid; nothing was sent
    ├── TransportError                no usable HTTP answer (connect/read failure, timeout)
    ├── MalformedResponseError        a 2xx answer whose body is not what the spec says
    └── APIError                      SendGrid answered with an error status
        ├── BadRequestError           400
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        │   └── AccountGoneError      403 for one account while the parent answers: the account seems gone
        ├── NotFoundError             404
        ├── RateLimitError            429 (still limited when the retry budget ran out)
        ├── DataResidencyError        451
        └── ServerError               5xx

Messages never contain the API key, the Authorization header or a whole request object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

KEY_SOURCES = "`pulumi config set --secret sendgrid:apiKey <key>` or the SENDGRID_API_KEY environment variable"


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of SendGrid's `errors` array."""

    message: str
    """SendGrid's own message."""
    field: str | None = None
    """The request field SendGrid blames, if any."""


class SendGridError(Exception):
    """Root of every error raised by this package."""

    hint: ClassVar[str] = "see the message above."

    def __init__(self, summary: str, hint: str | None = None) -> None:
        self.summary = summary
        hint_text = hint or self.hint
        self.hint_text = hint_text if hint_text.endswith((".", "?", "!")) else hint_text + "."
        super().__init__(f"{summary}. Hint: {self.hint_text}")


class ConfigurationError(SendGridError):
    """A setting is missing or invalid. Raised before any request is sent."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        super().__init__(f"invalid setting {setting}: {problem}", fix)


def _where(method: str, path: str, on_behalf_of: str | None) -> str:
    who = f" on behalf of {on_behalf_of!r}" if on_behalf_of else ""
    return f"{method} {path}{who}"


class TransportError(SendGridError):
    """No usable HTTP answer: connection refused or reset, or a timeout, after all retries.

    For a PATCH the change may or may not have reached SendGrid; `pulumi refresh` tells.
    """

    hint = (
        "check the network path to SendGrid (or sendgrid:baseUrl) and try again; "
        "for a PATCH, run `pulumi refresh` to see what SendGrid now has."
    )

    def __init__(self, method: str, path: str, reason: str, *, attempts: int, on_behalf_of: str | None = None) -> None:
        self.method = method
        self.path = path
        self.attempts = attempts
        super().__init__(f"{_where(method, path, on_behalf_of)} failed after {attempts} attempt(s): {reason}")


class MalformedResponseError(SendGridError):
    """A 2xx answer whose body does not match the official schema."""

    hint = "SendGrid (or whatever answers at sendgrid:baseUrl) sent an unexpected body; check the base URL, then retry."

    def __init__(self, method: str, path: str, reason: str, *, on_behalf_of: str | None = None) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{_where(method, path, on_behalf_of)} returned a malformed body: {reason}")


class APIError(SendGridError):
    """SendGrid answered with an error status. Keeps status, method, path and SendGrid's messages."""

    def __init__(
        self,
        status: int,
        method: str,
        path: str,
        errors: Sequence[ErrorDetail] = (),
        *,
        on_behalf_of: str | None = None,
        attempts: int = 1,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.errors = tuple(errors)
        self.on_behalf_of = on_behalf_of
        self.attempts = attempts
        said = "; ".join(f"{e.message} (field {e.field})" if e.field else e.message for e in self.errors)
        summary = f"{_where(method, path, on_behalf_of)} failed ({status}): {said or 'no error message'}"
        if attempts > 1:
            summary += f" after {attempts} attempts"
        super().__init__(summary, hint or self.default_hint())

    def default_hint(self) -> str:
        return self.hint


class BadRequestError(APIError):
    hint = (
        "SendGrid rejected a field of the request (named above); the provider checks every field before sending, "
        "so if the value looks valid, report this as a provider bug."
    )


class AuthenticationError(APIError):
    hint = (
        f"the API key is missing, invalid or revoked; set a valid key with {KEY_SOURCES}. "
        "After rotating a key kept in stack config, `pulumi refresh` and `pulumi destroy` use the config recorded "
        "at the last `pulumi up` unless the program runs: pass --run-program or set PULUMI_RUN_PROGRAM=true."
    )


LIST_SCOPES: Mapping[str, str] = {
    "/v3/tracking_settings": "tracking_settings.read",
    "/v3/subusers": "subusers.read",
    "/v3/partners/accounts": "partners.accounts.read",
}
"""The scope of each list endpoint (SendGrid does not name the one of /v3/partners/accounts: a guess)."""


def scope_for(method: str, path: str) -> str:
    """The API key scope a request needs: `tracking_settings.click.update`, `subusers.read`, ..."""
    bare = path.split("?", 1)[0].rstrip("/")
    if bare in LIST_SCOPES:
        return LIST_SCOPES[bare]
    setting = bare.rsplit("/", 1)[-1]
    return f"tracking_settings.{setting}.{'update' if method == 'PATCH' else 'read'}"


class PermissionDeniedError(APIError):
    def default_hint(self) -> str:
        text = f"the key needs the {scope_for(self.method, self.path)} scope"
        if self.on_behalf_of:
            text += f", and {self.on_behalf_of!r} must be a subuser (or customer account) of the key's account"
        return text + "."


class AccountGoneError(PermissionDeniedError):
    """403 for one subuser or customer account while the same key reads the parent account.

    The account was most likely deleted in SendGrid (or the key's account is not its parent).
    """

    def __init__(self, denied: PermissionDeniedError, resource_id: str, resource_type: str) -> None:
        self.resource_id = resource_id
        self.resource_type = resource_type
        super().__init__(
            denied.status,
            denied.method,
            denied.path,
            denied.errors,
            on_behalf_of=denied.on_behalf_of,
            attempts=denied.attempts,
            hint=(
                f"{denied.on_behalf_of!r} seems to be gone: SendGrid refuses it while the same key reads the parent "
                "account, so it was probably deleted (or belongs to another parent). Two ways out, both through "
                f"its {resource_type} resource {resource_id!r} (`pulumi stack --show-urns` lists its URN): "
                "(1) set on_delete to 'keep' for it (fleet: `onDelete: keep`) and run `pulumi up --target <urn>`: "
                "only the resource takes the new mode and nothing is sent; then remove it from the program and run "
                "`pulumi up` (or run `pulumi destroy`): nothing is sent to the gone account; or "
                "(2) `pulumi state delete <urn>`: the resource leaves the state without touching SendGrid; then "
                "remove it from the program"
            ),
        )


class NotFoundError(APIError):
    hint = "the endpoint was not found; check sendgrid:baseUrl / SENDGRID_BASE_URL points at the SendGrid API root."


class RateLimitError(APIError):
    def default_hint(self) -> str:
        return (
            f"the rate limit was still exhausted after {self.attempts} attempt(s); wait for the window to reset, "
            "lower `pulumi up --parallel`, or raise sendgrid:retryBudget."
        )


class DataResidencyError(APIError):
    hint = (
        "the account lives in another region; set `region` (or sendgrid:region) to 'eu' for EU subusers, "
        "'global' otherwise."
    )


class ServerError(APIError):
    def default_hint(self) -> str:
        text = f"SendGrid kept failing after {self.attempts} attempt(s); try again later"
        if self.method == "PATCH":
            text += ", and run `pulumi refresh` to see whether the change landed"
        return text + "."


STATUS_CLASSES: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    451: DataResidencyError,
}
"""HTTP status → error class. Any other 5xx is a ServerError, any other status a plain APIError."""


def error_class_for(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status."""
    if status in STATUS_CLASSES:
        return STATUS_CLASSES[status]
    if 500 <= status <= 599:
        return ServerError
    return APIError


def parse_error_details(body: Any) -> list[ErrorDetail]:
    """SendGrid's `errors[].message/field`, tolerating any body shape (never raises)."""
    if not isinstance(body, Mapping):
        return []
    raw = body.get("errors")
    if not isinstance(raw, list):
        return []
    details = []
    for item in raw:
        if isinstance(item, Mapping) and isinstance(item.get("message"), str):
            field = item.get("field")
            details.append(ErrorDetail(message=item["message"], field=field if isinstance(field, str) else None))
    return details
