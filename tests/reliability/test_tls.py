"""Issue 5: TLS verification is always on for https hosts; nothing in the environment turns it off."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi_sendgrid_tracking import errors
from pulumi_sendgrid_tracking.client import SendGridClient
from pulumi_sendgrid_tracking.tracking import CLICK

from ..conftest import TEST_KEY, configured
from ..figures import record


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"enabled": true, "enable_text": false}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"CURL_CA_BUNDLE": ""},
    {"REQUESTS_CA_BUNDLE": ""},
    {"PYTHONHTTPSVERIFY": "0"},
    {"SENDGRID_VERIFY_TLS": "false"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_untrusted_certificate_is_refused(
    self_signed_server: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], waits: list[float]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    provider = configured({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": self_signed_server})
    with pytest.raises(errors.TransportError) as info:
        provider.read("global", {"region": "global", "on_behalf_of": None})
    assert "TLS verification failed" in str(info.value)
    record("tls", env=env or "default", outcome="refused")


def test_a_private_ca_is_trusted_and_still_verified(
    self_signed_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal above is about trust, not reachability: a CA bundle (a corporate proxy's) works."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
    assert SendGridClient(TEST_KEY, self_signed_server).get(CLICK.path, validate=CLICK.parse)["enabled"] is True
