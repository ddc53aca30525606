"""Emulator errors: each type carries its HTTP status and SendGrid's own message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EmulatorError(Exception):
    """An error answer in SendGrid's envelope: {"errors": [{"field", "message"}]}."""

    status = 500
    message = "internal error"

    def __init__(self, message: str | None = None, field: str | None = None) -> None:
        self.message = message or type(self).message
        self.field = field
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"errors": [{"field": self.field, "message": self.message}]}


class BadRequest(EmulatorError):
    status = 400
    message = "bad request"


class ValidationFailed(BadRequest):
    """A 400 listing every bad field of a request body, one envelope entry each, in body order."""

    def __init__(self, problems: Sequence[tuple[str | None, str]]) -> None:
        self.problems = list(problems)
        field, message = self.problems[0]
        super().__init__(message, field)

    def body(self) -> dict[str, Any]:
        return {"errors": [{"field": field, "message": message} for field, message in self.problems]}


class InvalidValue(BadRequest, ValueError):
    """A value of the wrong type or out of range, for the admin API, the command line or EmulatorState itself.

    `field` names it as the admin API spells it (`rate_window`); `reason` completes "<field> ...", so the
    command line can say `--rate-window must be ...`. Raised before anything changes.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{field} {reason}", field)


class AuthorizationRequired(EmulatorError):
    status = 401
    message = "authorization required"


class InvalidGrant(EmulatorError):
    status = 401
    message = "The provided authorization grant is invalid, expired, or revoked"


class AccessForbidden(EmulatorError):
    status = 403
    message = "access forbidden"


class ResourceNotFound(EmulatorError):
    status = 404
    message = "resource not found"


class MethodNotAllowed(EmulatorError):
    status = 405
    message = "method not allowed"


class TooManyRequests(EmulatorError):
    status = 429
    message = "too many requests"
