"""SendGrid's tracking settings API over HTTP: session, auth, host, on-behalf-of, retries.

The transport knows no fields: `get(path)` and `update(path, body)` serve every setting; what a
setting's answer must look like is passed in by the caller (`validate`), so that a malformed 2xx
body is asked for again. Transport errors are translated into the SendGridError tree here and nowhere else.
Retries (429, 500, 502, 503, 504, connection and read failures) are done by urllib3's
Retry, extended to wait for SendGrid's `X-RateLimit-Reset` and to stop at a time budget.
GET and PATCH are both retried: PATCH sets an absolute value, so repeating it is safe.
With a request rate budget (`sendgrid:maxRequestsPerSecond`), every attempt, retries included,
first waits for its turn at a `RequestPacer` shared by the whole provider process (all its threads
and clients), so several stacks run side by side (shards) can split one account's rate limit.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Self, TypeVar, cast
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from ._version import __version__
from .config import DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_BUDGET
from .errors import (
    ConfigurationError,
    MalformedResponseError,
    TransportError,
    error_class_for,
    parse_error_details,
)
from .inputs import on_behalf_of_problem

log = logging.getLogger(__name__)

USER_AGENT = f"pulumi-sendgrid-tracking/{__version__} python-requests/{requests.__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MALFORMED_BODY_RETRIES = 2
POOL_SIZE = 16

# Indirections so tests can observe waits without sleeping.
_monotonic: Callable[[], float] = time.monotonic
_wall_clock: Callable[[], float] = time.time
_sleep: Callable[[float], None] = time.sleep


class RequestPacer:
    """Spaces requests at least 1/rate seconds apart, across every thread that shares it.

    Each `acquire` reserves the next free slot under a lock and then sleeps until it outside the
    lock, so N threads asking at once get N consecutive slots: the process never sends more than
    `rate` requests in any second (plus the first), whatever its concurrency.
    """

    def __init__(self, per_second: float) -> None:
        if not per_second > 0:
            raise ValueError(f"a request rate must be above 0, got {per_second}")
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self._next = -math.inf
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited (0.0 when the slot was free)."""
        with self._lock:
            now = _monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            _sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RequestPacer({self.per_second:g}/s)"


_pacers: dict[float, RequestPacer] = {}
_pacers_lock = threading.Lock()


def shared_pacer(per_second: float) -> RequestPacer:
    """The process's pacer for this rate: one budget for every client (both regions) of the provider process."""
    with _pacers_lock:
        pacer = _pacers.get(per_second)
        if pacer is None:
            pacer = _pacers[per_second] = RequestPacer(per_second)
        return pacer


T = TypeVar("T")
Validate = Callable[[dict[str, Any]], dict[str, Any]]
"""Checks a 2xx answer's JSON object and returns what the caller keeps; raises ValueError if malformed."""


class SendGridRetry(Retry):
    """urllib3 Retry that waits for X-RateLimit-Reset on 429 and stops at a time budget.

    The budget counts from the first failure of a call; a retry whose wait would end past
    it is not made, and the last answer (or error) is returned to the caller instead.
    """

    def __init__(
        self,
        *args: Any,
        budget: float = DEFAULT_RETRY_BUDGET,
        deadline: float | None = None,
        planned_wait: float = 0.0,
        pacer: RequestPacer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.deadline = deadline
        self.planned_wait = planned_wait
        self.pacer = pacer

    def new(self, **kw: Any) -> Self:
        kw.setdefault("pacer", self.pacer)
        kw.setdefault("budget", self.budget)
        kw.setdefault("deadline", self.deadline)
        kw.setdefault("planned_wait", 0.0)
        return super().new(**kw)

    def get_backoff_time(self) -> float:
        failures = len(self.history)
        if failures == 0:
            return 0.0
        backoff = self.backoff_factor * (2 ** (failures - 1)) + random.random() * self.backoff_jitter
        return float(min(self.backoff_max, backoff))

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        if response.status != 429:
            return super().get_retry_after(response)
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            reset_at = float(reset) if reset is not None else None
        except ValueError:
            reset_at = None
        if reset_at is None or math.isnan(reset_at):  # missing, unparsable or NaN: back off instead
            return None
        # Jitter keeps several waiting clients from hitting the new window at the same instant.
        return max(0.0, reset_at - _wall_clock()) + random.uniform(0.05, 0.25)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        now = _monotonic()
        deadline = self.deadline if self.deadline is not None else now + self.budget
        wait = None
        if response is not None and self.respect_retry_after_header:
            wait = new_retry.get_retry_after(response)
        if wait is None:
            wait = new_retry.get_backoff_time()
        if now + wait > deadline:
            raise MaxRetryError(_pool, url or "", ResponseError("retry time budget exhausted"))
        _record_attempt()
        new_retry.deadline = deadline
        new_retry.planned_wait = wait
        return new_retry

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        if self.planned_wait > 0:
            log.debug("waiting %.2fs before retrying", self.planned_wait)
            _sleep(self.planned_wait)
        if self.pacer is not None:  # a retry is a request too: it waits for its turn
            self.pacer.acquire()


_attempts = threading.local()


def _record_attempt() -> None:
    _attempts.count = getattr(_attempts, "count", 1) + 1


def make_retry(budget: float, pacer: RequestPacer | None = None) -> SendGridRetry:
    """The retry policy used for every call (retries paced by `pacer` when given)."""
    return SendGridRetry(
        total=None,
        connect=4,
        read=3,
        status=10,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "PATCH"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5,
        backoff_max=8.0,
        backoff_jitter=0.25,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
        budget=budget,
        pacer=pacer,
    )


class _BearerAuth(requests.auth.AuthBase):
    """Sets the Authorization header; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


class SendGridClient:
    """A thread-safe client for one API root and one key.

    Every method raises only SendGridError subclasses, and only after the retry policy
    gave up; no message or log line contains the key.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        max_requests_per_second: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.pacer = shared_pacer(max_requests_per_second) if max_requests_per_second else None
        self.timeout = (connect_timeout, request_timeout)
        self.retry_budget = retry_budget
        session = requests.Session()
        session.auth = _BearerAuth(api_key)
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # No cookies: the session is shared by the provider's handler threads.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # The environment's proxies (HTTPS_PROXY, NO_PROXY, ...) and CA bundle (REQUESTS_CA_BUNDLE,
        # CURL_CA_BUNDLE), as requests would pick them, read once here: requests reads the whole environment
        # again on every call (about a tenth of a request's CPU with 35 variables; CI runners have more).
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self._verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        """TLS verification, always on: against the CA bundle when one is named, else the default trust."""
        adapter = HTTPAdapter(
            max_retries=make_retry(retry_budget, self.pacer), pool_connections=2, pool_maxsize=POOL_SIZE
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._session = session

    def __repr__(self) -> str:
        return f"SendGridClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, on_behalf_of: str | None = None, *, validate: Validate | None = None) -> dict[str, Any]:
        """GET a setting: SendGrid's JSON object, checked by `validate`. Safe to retry."""
        return cast(dict[str, Any], self._call("GET", path, None, on_behalf_of, validate))

    def get_list(
        self,
        path: str,
        params: Mapping[str, str | int],
        *,
        validate: Callable[[Any], T],
        on_behalf_of: str | None = None,
    ) -> T:
        """GET one page of a list (`/v3/subusers`, `/v3/partners/accounts`) with its query `params`.

        The answer may be a JSON array or object; `validate` checks it (ValueError when malformed, asked
        again as for a setting) and returns what the caller keeps. Safe to retry; paced and retried as `get`.
        """
        query = "?" + urlencode(sorted((k, str(v)) for k, v in params.items())) if params else ""
        return cast(T, self._call("GET", path + query, None, on_behalf_of, validate, any_json=True))

    def update(
        self,
        path: str,
        body: dict[str, Any],
        on_behalf_of: str | None = None,
        *,
        validate: Validate | None = None,
    ) -> dict[str, Any]:
        """PATCH `body` (sent as given: `false` and `""` included) and return SendGrid's answer.

        Idempotent: the body holds absolute values, so repeating it leaves the same state. On
        TransportError or ServerError the change may or may not have landed.
        """
        if not body:
            raise ValueError("an update needs at least one field")
        return cast(dict[str, Any], self._call("PATCH", path, body, on_behalf_of, validate))

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        on_behalf_of: str | None,
        validate: Callable[[Any], Any] | None,
        *,
        any_json: bool = False,
    ) -> Any:
        """One logical call: HTTP retries by urllib3, plus asking again on a malformed 2xx body."""
        for attempt in range(MALFORMED_BODY_RETRIES + 1):
            response = self._send(method, path, body, on_behalf_of)
            try:
                return _parse(response, method, path, on_behalf_of, validate, any_json=any_json)
            except MalformedResponseError:
                if attempt == MALFORMED_BODY_RETRIES:
                    raise
                log.warning("%s %s: malformed %s answer, asking again", method, path, response.status_code)
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, body: dict[str, Any] | None, on_behalf_of: str | None) -> requests.Response:
        # check() refuses these at preview; this is the last line of defence before http.client's
        # UnicodeEncodeError (non-Latin-1) or a silently different account (Latin-1 bytes).
        problem = on_behalf_of_problem(on_behalf_of)
        if problem:
            raise ConfigurationError(
                "on_behalf_of",
                f"on_behalf_of {problem}",
                f"nothing was sent by {method} {path}; fix the resource's on_behalf_of",
            )
        headers = {"on-behalf-of": on_behalf_of} if on_behalf_of else {}
        _attempts.count = 1
        if self.pacer is not None:
            self.pacer.acquire()
        started = _monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                verify=self._verify,
            )
        except requests.RequestException as exc:
            raise TransportError(
                method, path, _describe(exc), attempts=_attempts.count, on_behalf_of=on_behalf_of
            ) from None
        attempts = _attempts.count
        log.debug(
            "%s %s%s -> %s in %.3fs, %d attempt(s)",
            method,
            path,
            f" (on-behalf-of {on_behalf_of})" if on_behalf_of else "",
            response.status_code,
            _monotonic() - started,
            attempts,
        )
        if not 200 <= response.status_code < 300:
            try:
                payload: Any = response.json()
            except ValueError:
                payload = None
            cls = error_class_for(response.status_code)
            raise cls(
                response.status_code,
                method,
                path,
                parse_error_details(payload),
                on_behalf_of=on_behalf_of,
                attempts=attempts,
            )
        return response


def _describe(exc: requests.RequestException) -> str:
    """A short, key-free description of a transport failure."""
    if isinstance(exc, requests.Timeout):
        return "timed out waiting for SendGrid"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed"
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, MaxRetryError) and reason.reason is not None:
            reason = reason.reason
        if isinstance(reason, ResponseError):
            return str(reason)
        return f"connection failed ({type(reason).__name__})"
    return type(exc).__name__


def _parse(
    response: requests.Response,
    method: str,
    path: str,
    on_behalf_of: str | None,
    validate: Callable[[Any], Any] | None,
    *,
    any_json: bool = False,
) -> Any:
    try:
        payload = response.json()
    except ValueError:
        raise MalformedResponseError(method, path, "not JSON", on_behalf_of=on_behalf_of) from None
    if not any_json and not isinstance(payload, dict):
        raise MalformedResponseError(method, path, "expected a JSON object", on_behalf_of=on_behalf_of)
    if validate is None:
        return payload
    try:
        return validate(payload)
    except ValueError as exc:
        shown = json.dumps(payload)[:200]
        raise MalformedResponseError(method, path, f"{exc}, got {shown}", on_behalf_of=on_behalf_of) from None


__all__ = ["RequestPacer", "SendGridClient", "SendGridRetry", "Validate", "make_retry", "shared_pacer"]
