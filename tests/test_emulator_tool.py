"""The emulator as a tool: bad flags and bad admin input are refused in one line (or a 400), never a traceback,
and never leave a state that breaks the requests after them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState, Fault
from pulumi_sendgrid_tracking.emulator.__main__ import main
from pulumi_sendgrid_tracking.emulator.errors import InvalidValue

from .conftest import TEST_KEY

SCRIPT = Path(sys.executable).parent / "sendgrid-tracking-emulator"
CLICK = "/v3/tracking_settings/click"
KINDS = "429, 429-no-reset, 500, 502, 503, 504, reset, hang, malformed"
ID_RULE = "must be ASCII letters and digits, as SendGrid shows it (e.g. sg2a2bcd3ef4ab5c67d8efab91c01de2fa)"

# -- the command line ------------------------------------------------------------------------------

BAD_FLAGS = [
    (["--fault", "500:abc"], "argument --fault: '500:abc': COUNT must be a whole number of at least 1, e.g. 500:3"),
    (["--fault", "bogus"], f"argument --fault: 'bogus': KIND must be one of {KINDS}"),
    (["--fault", "500:0"], "argument --fault: '500:0': COUNT must be a whole number of at least 1, got 0"),
    (["--fault", "500:-2"], "argument --fault: '500:-2': COUNT must be a whole number of at least 1, got -2"),
    (["--port", "99999"], "argument --port: '99999' is not a port: use 1 to 65535, or 0 for a free one"),
    (["--port", "-1"], "argument --port: '-1' is not a port: use 1 to 65535, or 0 for a free one"),
    (["--eu-port", "http"], "argument --eu-port: 'http' is not a port: use 1 to 65535, or 0 for a free one"),
    (["--rate-window", "0"], "argument --rate-window: must be a number of seconds above 0 to 86400, got 0.0"),
    (["--rate-window", "-5"], "argument --rate-window: must be a number of seconds above 0 to 86400, got -5.0"),
    (["--rate-window", "nan"], "argument --rate-window: must be a number of seconds above 0 to 86400, got nan"),
    (["--rate-limit", "0"], "argument --rate-limit: must be a whole number of at least 1, got 0"),
    (["--rate-limit", "-3"], "argument --rate-limit: must be a whole number of at least 1, got -3"),
    (["--rate-limit", "2.5"], "argument --rate-limit: '2.5' is not a number"),
    (["--latency", "-1"], "argument --latency: must be a number of seconds from 0 to 3600, got -1.0"),
    (["--latency", "inf"], "argument --latency: must be a number of seconds from 0 to 3600, got inf"),
    (["--jitter", "-0.5"], "argument --jitter: must be a number of seconds from 0 to 3600, got -0.5"),
    (["--customer", "sg-1"], f"argument --customer: {ID_RULE}, got 'sg-1'"),
    (
        ["--eu-subuser", "\u0441arol"],
        "argument --eu-subuser: must be printable ASCII without whitespace, got '\u0441arol'",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_a_bad_flag_is_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    assert (info.value.code, out) == (2, "")
    assert err.endswith(f": error: {message} (see --help)\n")
    assert err.count("\n") == 1


def test_the_console_script_says_it_in_one_line_without_a_traceback() -> None:
    result = subprocess.run(
        [str(SCRIPT), "--fault", "500:abc"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "sendgrid-tracking-emulator: error: argument --fault: '500:abc': COUNT must be a whole number of at least 1, "
        "e.g. 500:3 (see --help)\n"
    )


def test_a_taken_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(f": error: cannot listen on 127.0.0.1 (--port {port}, --eu-port 0): Address already in use\n")
    assert err.count("\n") == 1


def test_a_taken_port_is_an_os_error_in_process_too() -> None:
    """Werkzeug alone would print two lines and call sys.exit(1) inside the caller's process."""
    with Emulator() as first, pytest.raises(OSError, match="Address already in use"):
        Emulator(port=int(first.base_url.rsplit(":", 1)[1]))


def test_without_werkzeug_the_console_script_names_the_extra(tmp_path: Path) -> None:
    """The script as installed without the [emulator] extra: a sitecustomize hides Werkzeug before it starts."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['werkzeug'] = None\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    for command in ([str(SCRIPT)], [sys.executable, "-m", "pulumi_sendgrid_tracking.emulator"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.endswith(
            ": error: the emulator needs Werkzeug, which is not installed: "
            "pip install 'pulumi-sendgrid-tracking[emulator]'\n"
        )
        assert result.stderr.count("\n") == 1
    probe = subprocess.run(
        [sys.executable, "-c", "import werkzeug"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert probe.returncode != 0  # the sitecustomize did hide it


# -- EmulatorState refuses what would break it, naming the field ---------------------------------


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"rate_window": 0}, "rate_window", "rate_window must be a number of seconds above 0 to 86400, got 0"),
        ({"rate_limit": 0}, "rate_limit", "rate_limit must be a whole number of at least 1, got 0"),
        ({"latency": "abc"}, "latency", 'latency must be a number of seconds from 0 to 3600, got the string "abc"'),
        ({"jitter": float("nan")}, "jitter", "jitter must be a number of seconds from 0 to 3600, got nan"),
    ],
)
def test_the_state_itself_refuses_bad_options(options: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidValue) as info:
        EmulatorState(**options)
    assert (info.value.field, info.value.message) == (field, message)
    assert isinstance(info.value, ValueError)


def test_a_fault_is_checked_when_made() -> None:
    with pytest.raises(InvalidValue, match=r"^count must be a whole number of at least 1, got the string \"2\"$"):
        Fault("500", count="2")  # type: ignore[arg-type]
    assert Fault("500", count=2).count == 2


# -- the admin API: 400 naming the field, and the state untouched -----------------------------------

BAD_ADMIN = [
    (
        "PUT",
        "config",
        {"latency": "abc"},
        "latency",
        'must be a number of seconds from 0 to 3600, got the string "abc"',
    ),
    ("PUT", "config", {"latency": -1}, "latency", "must be a number of seconds from 0 to 3600, got -1"),
    ("PUT", "config", {"jitter": True}, "jitter", "must be a number of seconds from 0 to 3600, got the boolean True"),
    ("PUT", "config", {"rate_window": 0}, "rate_window", "must be a number of seconds above 0 to 86400, got 0"),
    ("PUT", "config", {"rate_limit": "10"}, "rate_limit", 'must be a whole number of at least 1, got the string "10"'),
    ("PUT", "config", {"rate_limit": 2.5}, "rate_limit", "must be a whole number of at least 1, got 2.5"),
    # atomic: the good option given with a bad one is not applied either
    ("PUT", "config", {"latency": 0.5, "rate_window": -1}, "rate_window", "must be a number of seconds above 0"),
    ("PUT", "config", {"colour": 1}, "colour", "is not an option; the options are latency, jitter, rate_limit"),
    (
        "POST",
        "faults",
        {"kind": "500", "count": "2"},
        "count",
        'must be a whole number of at least 1, got the string "2"',
    ),
    ("POST", "faults", {"kind": "500", "count": 0}, "count", "must be a whole number of at least 1, got 0"),
    ("POST", "faults", {"kind": "bogus"}, "kind", f"must be one of {KINDS}, got 'bogus'"),
    ("POST", "faults", {}, "kind", f"is required: one of {KINDS}"),
    ("POST", "faults", {"kind": "hang", "hang_seconds": "5"}, "hang_seconds", "must be a number of seconds from 0"),
    ("POST", "faults", {"kind": "500", "world": "mars"}, "world", "must be one of global, eu (or null for any)"),
    ("POST", "faults", {"kind": "500", "method": 5}, "method", "must be a string (or null for any), got number"),
    ("POST", "faults", {"kind": "500", "apply": "yes"}, "apply", "must be true or false, got string"),
    ("POST", "keys", {"key": "SG.k2", "scopes": "tracking_settings.read"}, "scopes", "must be a list of scope names"),
    ("POST", "keys", {"key": "SG.k2", "scopes": [1]}, "scopes", "must be a list of scope names (strings)"),
    ("POST", "keys", {"scopes": []}, "key", "is required: the API key to accept"),
    ("POST", "keys", {"key": 5}, "key", "must be a non-empty string of printable ASCII without whitespace"),
    ("POST", "subusers", {"username": "\u0441arol"}, "username", "must be printable ASCII without whitespace"),
    ("POST", "subusers", {"username": 5}, "username", "must be printable ASCII without whitespace, got 5"),
    ("POST", "subusers", {"username": "dave", "click": "on"}, "click", "must be an object of click tracking fields"),
    ("POST", "subusers", {"username": "dave", "world": ["eu"]}, "world", "must be one of global, eu, got ['eu']"),
    ("POST", "customers", {"account_id": 4242}, "account_id", f"{ID_RULE}, got 4242"),
    ("POST", "customers", {"account_id": "sg-1"}, "account_id", f"{ID_RULE}, got 'sg-1'"),
    ("PUT", "settings", {"kind": ["click"], "values": {}}, "kind", "must be one of click, open, subscription"),
    ("PUT", "settings", {"kind": "open"}, "values", "is required: an object of the setting's fields"),
]


def _observable(emulator: Emulator) -> dict[str, Any]:
    state = emulator.state
    return {
        "accounts": state.snapshot(),
        "faults": list(state.faults),
        "keys": dict(state.keys),
        "options": (state.latency, state.jitter, state.rate_limit, state.rate_window),
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "message"), BAD_ADMIN, ids=[f"{m} {p} {b}" for m, p, b, _, _ in BAD_ADMIN]
)
def test_bad_admin_input_is_a_400_naming_the_field_and_changes_nothing(
    emulator: Emulator, method: str, path: str, body: dict[str, Any], field: str, message: str
) -> None:
    before = _observable(emulator)
    answer = requests.request(method, f"{emulator.base_url}/__emulator/{path}", json=body, timeout=10)
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == field
    assert error["message"].startswith(f"{field} {message}")
    assert _observable(emulator) == before
    # and the API still answers every request as before
    api = requests.get(emulator.base_url + CLICK, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=10)
    assert (api.status_code, api.json()) == (200, {"enabled": True, "enable_text": False})


def test_good_admin_input_still_works(emulator: Emulator) -> None:
    """The same calls, well typed, take effect: the checks refuse only what is wrong."""
    base = f"{emulator.base_url}/__emulator"
    assert requests.put(f"{base}/config", json={"latency": 0.01, "rate_limit": 5}, timeout=10).ok
    assert (emulator.state.latency, emulator.state.rate_limit) == (0.01, 5)
    assert requests.post(f"{base}/keys", json={"key": "SG.open", "scopes": ["tracking_settings.open.read"]}, timeout=10)
    assert requests.post(f"{base}/faults", json={"kind": "503", "count": 2}, timeout=10).ok
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    statuses = [requests.get(emulator.base_url + CLICK, headers=auth, timeout=10).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    scoped = {"Authorization": "Bearer SG.open"}
    assert requests.get(emulator.base_url + "/v3/tracking_settings/open", headers=scoped, timeout=10).ok
    assert requests.get(emulator.base_url + CLICK, headers=scoped, timeout=10).status_code == 403
    added = requests.post(f"{base}/customers", json={"account_id": "sg2a2bcd3ef4ab5c67d8efab91c01de2fa"}, timeout=10)
    assert added.json() == {
        "account_id": "sg2a2bcd3ef4ab5c67d8efab91c01de2fa",
        "on_behalf_of": "account-id sg2a2bcd3ef4ab5c67d8efab91c01de2fa",
    }
