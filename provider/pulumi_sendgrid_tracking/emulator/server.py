"""Serving the emulator: threaded Werkzeug servers on loopback, in-process or as a subprocess.

One EmulatorState is served by two listeners, one per world: the first is the global API
root, the second the EU one (as api.sendgrid.com and api.eu.sendgrid.com are on the real service).
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import requests
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import ADMIN, ConnectionResetFault, EmulatorApp
from .state import EmulatorState

log = logging.getLogger(__name__)


class _Handler(WSGIRequestHandler):
    """Logs through `logging`; turns a ConnectionResetFault into a TCP reset."""

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        if isinstance(error, ConnectionResetFault):
            self.close_connection = True
            self.server.reset_sockets.add(self.connection)  # type: ignore[attr-defined]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)

    def log_error(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _Server(ThreadedWSGIServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, app: Any) -> None:
        if type(port) is not int or not 0 <= port <= 65535:
            raise ValueError(f"{port!r} is not a port: use 1 to 65535, or 0 for a free one")
        # Bound here, so a taken port is an OSError to the caller (Werkzeug would print and sys.exit).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family)
        try:
            super().__init__(host, port, app, handler=_Handler, fd=listener.fileno())
        finally:
            listener.close()  # Werkzeug listens on its own duplicate of the descriptor
        # What HTTPServer.server_bind would have set.
        self.server_name, self.server_port = host, int(self.server_address[1])
        self.reset_sockets: set[socket.socket] = set()

    def shutdown_request(self, request: Any) -> None:
        if request in self.reset_sockets:
            # No FIN first: closing with SO_LINGER 0 sends a reset.
            self.reset_sockets.discard(request)
            request.close()
            return
        super().shutdown_request(request)


class Emulator:
    """The emulator served from threads of this process. Use as a context manager."""

    def __init__(
        self, state: EmulatorState | None = None, host: str = "127.0.0.1", port: int = 0, eu_port: int = 0
    ) -> None:
        self.state = state or EmulatorState()
        self._servers = [
            _Server(host, port, EmulatorApp(self.state, "global")),
            _Server(host, eu_port, EmulatorApp(self.state, "eu")),
        ]
        self._threads: list[threading.Thread] = []
        host_in_url = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{host_in_url}:{self._servers[0].server_port}"
        self.eu_base_url = f"http://{host_in_url}:{self._servers[1].server_port}"

    def start(self) -> Self:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def admin(self) -> AdminClient:
        return AdminClient(self.base_url)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AdminError(requests.HTTPError):
    """The admin endpoint refused a request; the message is the emulator's own."""


class AdminClient:
    """The admin endpoint over HTTP: for an emulator in another process.

    `world` defaults to "global"; an account's world is the listener it was added to.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, f"{self.base_url}{ADMIN}/{path}", json=body, params=params, timeout=10)
        if not response.ok:
            try:
                message = "; ".join(e["message"] for e in response.json()["errors"])
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise AdminError(f"{method} {ADMIN}/{path} failed ({response.status_code}): {message}", response=response)
        return response.json()

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "state"))

    def request_log(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "log"))

    def reset(self) -> None:
        self._call("POST", "reset")

    def add_fault(self, kind: str, **match: Any) -> None:
        self._call("POST", "faults", {"kind": kind, **match})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def add_key(self, key: str, scopes: list[str] | None = None) -> None:
        self._call("POST", "keys", {"key": key, "scopes": scopes})

    def add_subuser(
        self, username: str, world: str = "global", *, disabled: bool = False, **click: bool
    ) -> dict[str, Any]:
        """Add a subuser (`on-behalf-of: <username>`); `click` overrides its click tracking defaults;
        `disabled` lists it as disabled."""
        body = {"username": username, "world": world, "click": click, "disabled": disabled}
        return dict(self._call("POST", "subusers", body))

    def delete_subuser(self, username: str, world: str = "global") -> None:
        """Delete a subuser: requests on its behalf then get 403 "access forbidden", as for an unknown one."""
        self._call("DELETE", f"subusers/{quote(username, safe='')}", params={"world": world})

    def add_customer(self, account_id: str | None = None, world: str = "global", **click: bool) -> dict[str, Any]:
        """Add a customer account (`on-behalf-of: account-id <id>`); a fresh id when none is given."""
        body: dict[str, Any] = {"world": world, "click": click}
        if account_id is not None:
            body["account_id"] = account_id
        return dict(self._call("POST", "customers", body))

    def delete_customer(self, account_id: str, world: str = "global") -> None:
        self._call("DELETE", f"customers/{quote(account_id, safe='')}", params={"world": world})

    def unsubscribe(self, on_behalf_of: str | None = None, world: str = "global") -> dict[str, Any]:
        """What a recipient of this account's mail gets on clicking unsubscribe: `{"kind": "url", "url": ...}`,
        `{"kind": "landing", "html": ...}`, `{"kind": "default", ...}` or `{"kind": "none", ...}` (disabled)."""
        params = {"world": world, **({"on_behalf_of": on_behalf_of} if on_behalf_of is not None else {})}
        return dict(self._call("GET", "unsubscribe", params=params))

    def set_setting(
        self, values: dict[str, Any], on_behalf_of: str | None = None, world: str = "global", kind: str = "click"
    ) -> None:
        self._call("PUT", "settings", {"values": values, "on_behalf_of": on_behalf_of, "world": world, "kind": kind})

    def configure(self, **options: Any) -> None:
        self._call("PUT", "config", options)

    def seed(self, data: dict[str, Any]) -> None:
        self._call("POST", "seed", data)


class EmulatorProcess:
    """`python -m pulumi_sendgrid_tracking.emulator` in a subprocess on free loopback ports; stops it on exit."""

    def __init__(self, *args: str, cwd: str | Path | None = None) -> None:
        self.args = args
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.eu_base_url = ""

    def start(self) -> Self:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-u",
                "-m",
                __package__ or "pulumi_sendgrid_tracking.emulator",
                "--port",
                "0",
                "--eu-port",
                "0",
                *self.args,
            ],
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        eu_line = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"emulator did not start (said {self.base_url!r})")
        self.eu_base_url = eu_line.split()[-1]
        return self

    @property
    def admin(self) -> AdminClient:
        return AdminClient(self.base_url)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def load_seed(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the seed must be a JSON object")
    return data
