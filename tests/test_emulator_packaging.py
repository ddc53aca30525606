"""The emulator as users get it: an independent subpackage, its extra, its console script, its pytest plugin."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
from pathlib import Path

import pulumi_sendgrid_tracking.emulator as emulator_pkg
import pytest
import requests

pytest_plugins = ["pytester"]

EMULATOR_DIR = Path(emulator_pkg.__file__).resolve().parent
SCRIPT = Path(sys.executable).parent / "sendgrid-tracking-emulator"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import statement in a file, wherever it is."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_the_emulator_imports_nothing_from_the_rest_of_the_package() -> None:
    """An oracle that shared code with the provider could share its bugs."""
    sources = sorted(EMULATOR_DIR.glob("*.py"))
    assert {p.name for p in sources} >= {"state.py", "app.py", "errors.py", "server.py", "__main__.py"}
    offending = []
    for path in sources:
        for level, module in imports_of(path):
            top = module.split(".")[0]
            outside = level >= 2 or (
                level == 0 and top == "pulumi_sendgrid_tracking" and not module.startswith(emulator_pkg.__name__)
            )
            if outside or (level == 0 and top == "pulumi"):
                offending.append(f"{path.name}: {'.' * level}{module}")
    assert offending == []


def test_the_import_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The scan above can fail: it finds absolute, relative and nested imports."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pulumi_sendgrid_tracking.client\nfrom .. import errors\ndef f():\n    from pulumi import x\n"
    )
    assert imports_of(sample) == [(0, "pulumi_sendgrid_tracking.client"), (2, ""), (0, "pulumi")]


def test_without_werkzeug_the_import_fails_saying_which_extra_to_install() -> None:
    """The state (no HTTP) still imports; the servers name the extra (the command line: test_emulator_tool.py)."""
    code = (
        "import sys\n"
        "sys.modules['werkzeug'] = None  # as if Werkzeug were not installed\n"
        "import pulumi_sendgrid_tracking  # the provider itself does not need it\n"
        "from pulumi_sendgrid_tracking.emulator import EmulatorState\n"
        "try:\n"
        "    from pulumi_sendgrid_tracking.emulator import Emulator\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == (
        "pulumi_sendgrid_tracking.emulator needs Werkzeug, which is not installed. "
        "Install the extra: pip install 'pulumi-sendgrid-tracking[emulator]'"
    )


# -- the console script -------------------------------------------------------------------------


def test_the_console_script_serves_until_terminated_and_saves_its_state(tmp_path: Path) -> None:
    assert SCRIPT.exists(), "make venv installs the package with its console script"
    state_file = tmp_path / "world.json"
    args = [str(SCRIPT), "--api-key", "SG.test-key", "--customer", "4242", "--state-file", str(state_file)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url, eu_line = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and eu_line.startswith("eu http://127.0.0.1:")
        answer = requests.patch(
            base_url + "/v3/tracking_settings/click",
            headers={"Authorization": "Bearer SG.test-key", "on-behalf-of": "account-id 4242"},
            json={"enabled": False},
            timeout=10,
        )
        assert answer.json() == {"enabled": False, "enable_text": False}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert json.loads(state_file.read_text())["global"]["customers"]["4242"]["click"]["enabled"] is False


def test_the_console_script_names_itself_and_refuses_a_bad_seed(tmp_path: Path) -> None:
    usage = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert usage.stdout.startswith("usage: sendgrid-tracking-emulator ")
    assert "--customer ID" in usage.stdout
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"global": {"subusers": {"alice": {"account_id": "101"}}}}))
    bad = subprocess.run([str(SCRIPT), "--seed", str(seed)], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2
    assert "global.subusers.alice.account_id: subusers are addressed by username only" in bad.stderr


# -- the pytest plugin --------------------------------------------------------------------------

USER_TESTS = """
import os

import pytest
import requests
from pulumi_sendgrid_tracking import ClickTrackingProvider, OriginalsProvider

pytest_plugins = ["pulumi_sendgrid_tracking.emulator.pytest_plugin"]
CLICK = "/v3/tracking_settings/click"


def test_a_fresh_emulator(sendgrid_emulator):
    assert sendgrid_emulator.base_url.startswith("http://127.0.0.1:")
    assert sendgrid_emulator.state.snapshot()["global"]["subusers"] == {}
    assert "SENDGRID_BASE_URL" not in os.environ  # this fixture alone changes no environment
    sendgrid_emulator.state.add_subuser("global", "leaky")  # must not be seen by the next test
    assert sendgrid_emulator.admin.unsubscribe("leaky")["kind"] == "none"  # the admin API over HTTP


def test_the_provider_talks_to_it_through_the_environment(sendgrid_emulator_env):
    sendgrid_emulator_env.state.add_subuser("eu", "carol")
    assert "leaky" not in sendgrid_emulator_env.state.snapshot()["global"]["subusers"]
    # The stack's ledger reads carol first (her original), then the setting takes her over.
    ledger = OriginalsProvider()
    spec = ["enabled"]  # the fields it manages: the key names the account
    entries = ledger.create(ledger.check({}, {"accounts": {"click/eu/carol": spec}}).inputs).outs["entries"]
    assert entries == {"click/eu/carol": '{"originals":{"enabled":true}}'}
    provider = ClickTrackingProvider()
    news = {"enabled": False, "on_behalf_of": "carol", "region": "eu", "ledger": entries["click/eu/carol"]}
    created = provider.create(provider.check({}, news).inputs)
    assert created.id == "eu/carol"
    assert created.outs["original_enabled"] is True
    assert sendgrid_emulator_env.state.snapshot()["eu"]["subusers"]["carol"]["click"]["enabled"] is False
    log = sendgrid_emulator_env.state.request_log()
    sent = [(e["world"], e["method"], e["on_behalf_of"]) for e in log]
    assert sent == [("eu", "GET", "carol"), ("eu", "PATCH", "carol")]  # the create reuses the ledger's read


def test_plain_http_code_too(sendgrid_emulator_env):
    key, base = os.environ["SENDGRID_API_KEY"], os.environ["SENDGRID_BASE_URL"]
    answer = requests.get(base + CLICK, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.json() == {"enabled": True, "enable_text": False}


@pytest.fixture
def sendgrid_emulator_state(sendgrid_emulator_state):
    sendgrid_emulator_state.seed({"global": {"customers": {"4242": {"click": {"enabled": False}}}}})
    return sendgrid_emulator_state


def test_an_overridden_state(sendgrid_emulator_env):
    answer = requests.get(
        os.environ["SENDGRID_BASE_URL"] + CLICK,
        headers={"Authorization": "Bearer " + os.environ["SENDGRID_API_KEY"], "on-behalf-of": "account-id 4242"},
        timeout=10,
    )
    assert answer.json()["enabled"] is False
"""

AFTER_THEM = """
import os


def test_the_environment_is_restored_after_the_tests():
    assert not any(name.startswith("SENDGRID_") for name in os.environ)
"""


STOPPED = """
import pytest
import requests

pytest_plugins = ["pulumi_sendgrid_tracking.emulator.pytest_plugin"]
seen = []


def test_one(sendgrid_emulator):
    seen.append(sendgrid_emulator.base_url)


def test_two():
    with pytest.raises(requests.ConnectionError):
        requests.get(seen[0] + "/v3/tracking_settings", timeout=5)
"""


def test_the_plugin_gives_users_a_running_emulator_and_the_environment(pytester: pytest.Pytester) -> None:
    """As a user's suite: fresh state per test, the environment set and restored, stopped after each test."""
    pytester.makepyfile(test_user=USER_TESTS, test_zz_after=AFTER_THEM, test_stopped=STOPPED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=7)
