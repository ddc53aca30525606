"""The provider as the SDK pickles it: by reference, tiny, deterministic, and without the key."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile

from pulumi.dynamic.dynamic import serialize_provider

from .conftest import TEST_KEY, configured

SERIALIZE = """
import os
from pulumi.dynamic.dynamic import serialize_provider
from pulumi_sendgrid_tracking.resources import _CLICK_PROVIDER
print(serialize_provider(_CLICK_PROVIDER))
"""

LOAD = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
from pulumi_sendgrid_tracking import ClickTrackingProvider
assert type(provider) is ClickTrackingProvider, type(provider)
print(provider.check({}, {"enabled": True}).inputs)
"""


def run_python(code: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
    """Run code in a fresh interpreter, outside the clone and without PYTHONPATH (the installed package)."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env={**base, **(env or {})},
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_pickled_by_reference_and_small() -> None:
    raw = base64.b64decode(serialize_provider(configured({"sendgrid:apiKey": TEST_KEY})))
    assert b"pulumi_sendgrid_tracking.providers" in raw
    assert b"ClickTrackingProvider" in raw
    assert len(raw) < 200  # a reference to the class, not its code


def test_no_key_in_the_bytes_even_after_configure_and_use(monkeypatch: object) -> None:
    provider = configured({"sendgrid:apiKey": TEST_KEY, "sendgrid:baseUrl": "http://127.0.0.1:1"})
    provider._client("global")  # a client (with the key) now exists in the instance
    raw = base64.b64decode(serialize_provider(provider))
    assert TEST_KEY.encode() not in raw
    assert b"test-key" not in raw
    assert b"Bearer" not in raw


def test_bytes_identical_across_runs_even_with_a_key_in_the_environment() -> None:
    first = run_python(SERIALIZE, env={"SENDGRID_API_KEY": TEST_KEY})
    second = run_python(SERIALIZE, env={"SENDGRID_API_KEY": "SG.another-test-key"})
    assert first == second
    assert TEST_KEY.encode() not in base64.b64decode(first)


def test_loads_in_a_fresh_process() -> None:
    out = run_python(LOAD, stdin=run_python(SERIALIZE))
    assert out == "{'enabled': True, 'on_delete': 'restore', 'on_behalf_of': None, 'region': 'global'}"


# What a process imports before it sends anything: a one-account preview starts two of them (the
# program and the provider server), and each module imported here is paid at every `pulumi preview`.
PROGRAM_IMPORTS = """
import sys
import pulumi, pulumi.dynamic
import pulumi_sendgrid_tracking, pulumi_sendgrid_tracking.fleet, pulumi_sendgrid_tracking.stack_config
print(sorted(m for m in ("requests", "urllib3", "werkzeug", "pulumi_sendgrid_tracking.client",
                         "pulumi_sendgrid_tracking.emulator") if m in sys.modules))
"""

PROVIDER_FIRST_REQUEST = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
before = "requests" in sys.modules
provider._client("global")  # the first request builds the client
print(before, "requests" in sys.modules)
"""


def test_the_program_imports_no_http_client_and_no_emulator() -> None:
    # The program never sends a request: requests/urllib3 (the slowest imports of the package) wait
    # for the provider's first request, and the emulator is for tests and demos only.
    assert run_python(PROGRAM_IMPORTS) == "[]"


def test_the_provider_imports_the_http_client_at_its_first_request_only() -> None:
    out = run_python(
        PROVIDER_FIRST_REQUEST,
        stdin=run_python(SERIALIZE),
        env={"SENDGRID_API_KEY": TEST_KEY, "SENDGRID_BASE_URL": "http://127.0.0.1:1"},
    )
    assert out == "False True"
