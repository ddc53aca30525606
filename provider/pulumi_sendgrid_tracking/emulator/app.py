"""The emulator's HTTP layer: a routes table and thin handlers over EmulatorState."""

from __future__ import annotations

import json
import random
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any

from werkzeug.exceptions import MethodNotAllowed as _WzMethodNotAllowed
from werkzeug.exceptions import NotFound as _WzNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .errors import BadRequest, EmulatorError, InvalidValue, MethodNotAllowed, ResourceNotFound, TooManyRequests
from .state import (
    FAULT_KINDS,
    FIELDS,
    PARENT,
    PARTNERS_SCOPE,
    SUBUSERS_SCOPE,
    Account,
    EmulatorState,
    Fault,
    RateDecision,
    accounts_query,
    json_type,
    subuser_query,
    validate_patch,
)

JSON = "application/json"
ADMIN = "/__emulator"

# API routes: (path, endpoint). Every setting kind has GET and PATCH; the lists only GET.
API_ROUTES = Map(
    [
        Rule("/v3/tracking_settings", endpoint="list", methods=["GET"]),
        Rule("/v3/subusers", endpoint="subusers", methods=["GET"]),
        Rule("/v3/partners/accounts", endpoint="partners_accounts", methods=["GET"]),
    ]
    + [Rule(f"/v3/tracking_settings/{kind}", endpoint=kind, methods=["GET", "PATCH"]) for kind in FIELDS],
    strict_slashes=False,
)
LIST_SCOPES = {"list": "tracking_settings.read", "subusers": SUBUSERS_SCOPE, "partners_accounts": PARTNERS_SCOPE}
"""The scope each list endpoint needs; a setting's GET needs `tracking_settings.<kind>.read`, its PATCH `.update`."""
ADMIN_ROUTES = Map(
    [
        Rule(f"{ADMIN}/state", endpoint="state", methods=["GET"]),
        Rule(f"{ADMIN}/log", endpoint="log", methods=["GET"]),
        Rule(f"{ADMIN}/reset", endpoint="reset", methods=["POST"]),
        Rule(f"{ADMIN}/faults", endpoint="add_fault", methods=["POST"]),
        Rule(f"{ADMIN}/faults", endpoint="clear_faults", methods=["DELETE"]),
        Rule(f"{ADMIN}/keys", endpoint="add_key", methods=["POST"]),
        Rule(f"{ADMIN}/subusers", endpoint="add_subuser", methods=["POST"]),
        Rule(f"{ADMIN}/subusers/<username>", endpoint="delete_subuser", methods=["DELETE"]),
        Rule(f"{ADMIN}/customers", endpoint="add_customer", methods=["POST"]),
        Rule(f"{ADMIN}/customers/<account_id>", endpoint="delete_customer", methods=["DELETE"]),
        Rule(f"{ADMIN}/unsubscribe", endpoint="unsubscribe", methods=["GET"]),
        Rule(f"{ADMIN}/settings", endpoint="set_setting", methods=["PUT"]),
        Rule(f"{ADMIN}/config", endpoint="configure", methods=["PUT"]),
        Rule(f"{ADMIN}/seed", endpoint="seed", methods=["POST"]),
    ]
)


class ConnectionResetFault(ConnectionResetError):
    """Raised by a handler to drop the connection with a TCP reset instead of answering."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type=JSON)


def _rate_headers(decision: RateDecision | None, *, with_reset: bool = True) -> dict[str, str]:
    if decision is None:
        return {}
    headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
    if with_reset:
        headers["X-RateLimit-Reset"] = str(decision.reset)
    return headers


def _logged_body(request: Request) -> Any:
    """The JSON body of a PATCH, for the request log (never headers)."""
    if request.method != "PATCH":
        return None
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _body(request: Request) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON", None) from None


class EmulatorApp:
    """A WSGI app for one world (global or eu) of a shared EmulatorState."""

    def __init__(self, state: EmulatorState, world: str) -> None:
        self.state = state
        self.world = world

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(ADMIN + "/") or request.path == ADMIN:
            response = self.admin(request)
        else:
            response = self.api(request, environ)
        return response(environ, start_response)

    # -- the API ----------------------------------------------------------------------------

    def api(self, request: Request, environ: dict[str, Any]) -> Response:
        delay = self.state.latency + (random.uniform(0, self.state.jitter) if self.state.jitter else 0.0)
        if delay > 0:
            time.sleep(delay)
        obo = request.headers.get("on-behalf-of")
        fault = self.state.take_fault(self.world, request.method, request.path, obo)
        response: Response | None = None
        try:
            response = self._answer(request, environ, obo, fault)
            return response
        finally:
            self.state.record(
                {
                    "world": self.world,
                    "method": request.method,
                    "path": request.path,
                    "on_behalf_of": obo,
                    "status": response.status_code if response is not None else 0,
                    "fault": fault.kind if fault else None,
                    "body": _logged_body(request),
                    "changed": self.state.take_changed(),
                }
            )

    def _answer(self, request: Request, environ: dict[str, Any], obo: str | None, fault: Fault | None) -> Response:
        """auth → rate limit → route → scope → account → operation; a fault may replace the answer."""
        state = self.state
        decision: RateDecision | None = None
        if fault is not None and not fault.apply:
            return self._fault(fault, environ, None)
        try:
            key = state.authenticate(request.headers.get("Authorization"))
            decision = state.hit_rate_limit(key)
            if not decision.allowed:
                raise TooManyRequests()
            kind = self._route(request)
            verb = "update" if request.method == "PATCH" else "read"
            state.authorize(key, LIST_SCOPES.get(kind) or f"tracking_settings.{kind}.{verb}")
            account = state.account(self.world, obo)
            if kind == "list":
                body: Any = {"result": state.list_settings(account)}
            elif kind == "subusers":
                body = self.subusers(account, request)
            elif kind == "partners_accounts":
                body = self.partners_accounts(account, request)
            elif request.method == "GET":
                body = state.get_setting(account, kind)
            else:
                body = state.update_setting(account, kind, validate_patch(kind, _body(request)))
        except EmulatorError as exc:
            return _json(exc.body(), exc.status, _rate_headers(decision))
        if fault is not None:
            return self._fault(fault, environ, decision)
        return _json(body, 200, _rate_headers(decision))

    def subusers(self, account: Account, request: Request) -> Any:
        """GET /v3/subusers: a page of the parent's subusers (a subuser has none)."""
        query = subuser_query(request.args)
        return self.state.list_subusers(**query) if account.kind == PARENT else []

    def partners_accounts(self, account: Account, request: Request) -> Any:
        """GET /v3/partners/accounts: a page of the reseller's customer accounts and the last id (`pages.last`)."""
        query = accounts_query(request.args)
        found, last = self.state.list_customers(**query) if account.kind == PARENT else ([], None)
        return {"accounts": found, "pages": {"last": last} if last else {}}

    def _route(self, request: Request) -> str:
        adapter = API_ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, _ = adapter.match()
        except _WzMethodNotAllowed:
            raise MethodNotAllowed() from None
        except _WzNotFound:
            raise ResourceNotFound() from None
        return str(endpoint)

    def _fault(self, fault: Fault, environ: dict[str, Any], decision: RateDecision | None) -> Response:
        kind = fault.kind
        if kind == "reset":
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise ConnectionResetFault("fault: connection reset")
        if kind == "hang":
            time.sleep(fault.hang_seconds)
            return _json({"errors": [{"field": None, "message": "hung request answered late"}]}, 504)
        if kind == "malformed":
            return Response('{"enabled": tru', status=200, content_type=JSON)
        if kind in ("429", "429-no-reset"):
            exhausted = RateDecision(False, self.state.rate_limit, 0, int(time.time()) + 1)
            return _json(TooManyRequests().body(), 429, _rate_headers(exhausted, with_reset=kind == "429"))
        status = int(kind)
        return _json({"errors": [{"field": None, "message": f"fault {status}"}]}, status, _rate_headers(decision))

    # -- the admin endpoint (no auth, no rate limit, not logged) -------------------------------

    def admin(self, request: Request) -> Response:
        """Route values, query arguments and the JSON body (POST/PUT) are one payload for the handler."""
        adapter = ADMIN_ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            body = _body(request) if request.method in ("POST", "PUT") else {}
            if not isinstance(body, dict):
                raise BadRequest("admin body must be a JSON object")
            payload = {**request.args.to_dict(), **body, **values}
            return _json(getattr(self, f"admin_{endpoint}")(payload))
        except (_WzNotFound, _WzMethodNotAllowed):
            return _json(ResourceNotFound().body(), 404)
        except EmulatorError as exc:
            return _json(exc.body(), exc.status)
        except (TypeError, ValueError, KeyError) as exc:
            return _json(BadRequest(f"bad admin request: {exc}").body(), 400)

    @staticmethod
    def _only(payload: dict[str, Any], allowed: set[str], hint: str = "") -> None:
        unknown = sorted(set(payload) - allowed)
        if unknown:
            raise BadRequest(f"unknown fields {unknown}; allowed: {', '.join(sorted(allowed))}{hint}")

    @staticmethod
    def _required(payload: dict[str, Any], name: str, what: str) -> Any:
        if name not in payload:
            raise InvalidValue(name, f"is required: {what}")
        return payload[name]

    @staticmethod
    def _click(payload: dict[str, Any]) -> dict[str, Any]:
        """The `click` object of an account being added (its click tracking fields), checked for its type."""
        click = payload.get("click", {})
        if not isinstance(click, dict):
            raise InvalidValue("click", f"must be an object of click tracking fields, got {json_type(click)}")
        return click

    def admin_state(self, _: dict[str, Any]) -> Any:
        return self.state.snapshot()

    def admin_log(self, _: dict[str, Any]) -> Any:
        return self.state.request_log()

    def admin_reset(self, _: dict[str, Any]) -> Any:
        self.state.reset()
        return {"ok": True}

    def admin_add_fault(self, payload: dict[str, Any]) -> Any:
        known = {f.name for f in fields(Fault)}
        unknown = set(payload) - known
        if unknown:
            raise BadRequest(f"unknown fault fields {sorted(unknown)}")
        self._required(payload, "kind", f"one of {', '.join(FAULT_KINDS)}")
        self.state.add_fault(Fault(**payload))
        return {"ok": True}

    def admin_clear_faults(self, _: dict[str, Any]) -> Any:
        self.state.clear_faults()
        return {"ok": True}

    def admin_add_key(self, payload: dict[str, Any]) -> Any:
        self._only(payload, {"key", "scopes"})
        self.state.add_key(self._required(payload, "key", "the API key to accept"), payload.get("scopes"))
        return {"ok": True}

    def admin_add_subuser(self, payload: dict[str, Any]) -> Any:
        self._only(
            payload,
            {"username", "world", "click", "disabled"},
            ". A subuser is addressed by username only; add a customer account with POST /__emulator/customers",
        )
        username = self._required(payload, "username", "the subuser's username")
        disabled = payload.get("disabled", False)
        if not isinstance(disabled, bool):
            raise InvalidValue("disabled", f"must be true or false, got {json_type(disabled)}")
        account = self.state.add_subuser(
            payload.get("world", self.world), username, disabled=disabled, **self._click(payload)
        )
        return {"username": account.name, "on_behalf_of": account.on_behalf_of}

    def admin_delete_subuser(self, payload: dict[str, Any]) -> Any:
        self._only(payload, {"username", "world"})
        self.state.delete_subuser(payload.get("world", self.world), payload["username"])
        return {"ok": True}

    def admin_add_customer(self, payload: dict[str, Any]) -> Any:
        self._only(payload, {"account_id", "world", "click"})
        account = self.state.add_customer(
            payload.get("world", self.world), payload.get("account_id"), **self._click(payload)
        )
        return {"account_id": account.name, "on_behalf_of": account.on_behalf_of}

    def admin_delete_customer(self, payload: dict[str, Any]) -> Any:
        self._only(payload, {"account_id", "world"})
        self.state.delete_customer(payload.get("world", self.world), payload["account_id"])
        return {"ok": True}

    def admin_unsubscribe(self, payload: dict[str, Any]) -> Any:
        self._only(payload, {"on_behalf_of", "world"})
        return self.state.unsubscribe(payload.get("world", self.world), payload.get("on_behalf_of"))

    def admin_set_setting(self, payload: dict[str, Any]) -> Any:
        self._only(payload, {"world", "on_behalf_of", "kind", "values"})
        kind = payload.get("kind", "click")
        if not isinstance(kind, str) or kind not in FIELDS:
            raise InvalidValue("kind", f"must be one of {', '.join(FIELDS)}, got {kind!r}")
        self.state.set_out_of_band(
            payload.get("world", self.world),
            payload.get("on_behalf_of"),
            kind,
            self._required(payload, "values", "an object of the setting's fields"),
        )
        return {"ok": True}

    def admin_configure(self, payload: dict[str, Any]) -> Any:
        self.state.configure(**payload)
        return {"ok": True}

    def admin_seed(self, payload: dict[str, Any]) -> Any:
        self.state.seed(payload)
        return {"ok": True}
