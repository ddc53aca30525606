"""The pipelines' output without the engine: tracebacks trimmed, the schema, Markdown that cannot break."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipelines import markdown
from pipelines.__main__ import main
from pipelines.messages import clean, split_hint
from pipelines.output import payload
from pipelines.report import SettingState, field_change, row

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "pipelines" / "output.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# What the engine reports for a failed handler of the dynamic provider (abridged frames, real shape).
HANDLER_ERROR = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/pulumi/dynamic/__main__.py", line 84, in wrapper
    return fn(self, request, context)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/venv/lib/python3.11/site-packages/pulumi/dynamic/__main__.py", line 170, in Create
    result = provider.create(props)
             ^^^^^^^^^^^^^^^^^^^^^^
  File "/repo/provider/pulumi_sendgrid_tracking/client.py", line 282, in _send
    raise cls(
pulumi_sendgrid_tracking.errors.PermissionDeniedError: GET /v3/tracking_settings/click on behalf of 'nobody' \
failed (403): access forbidden (field on-behalf-of). Hint: the key needs the tracking_settings.click.read scope, \
and 'nobody' must be a subuser (or customer account) of the key's account.

"""


def test_a_handler_traceback_becomes_its_last_line_and_hint() -> None:
    message, hint = split_hint(clean(HANDLER_ERROR))
    assert (
        message
        == "GET /v3/tracking_settings/click on behalf of 'nobody' failed (403): access forbidden (field on-behalf-of)."
    )
    assert hint == (
        "the key needs the tracking_settings.click.read scope, and 'nobody' must be a subuser (or customer "
        "account) of the key's account."
    )


def test_chained_tracebacks_and_plain_messages() -> None:
    chained = (
        "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\nKeyError: 'x'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "b.py", line 2, in h\n    raise Boom\n'
        "pulumi_sendgrid_tracking.errors.TransportError: PATCH /v3/tracking_settings/open failed after 4 "
        "attempt(s): timed out. Hint: run `pulumi refresh`.\n"
    )
    assert clean(chained) == (
        "PATCH /v3/tracking_settings/open failed after 4 attempt(s): timed out. Hint: run `pulumi refresh`."
    )
    assert clean("error: \x1b[31mupdate failed\x1b[0m\n") == "update failed"
    assert clean('Traceback (most recent call last):\n  File "x", line 1\nRuntimeError\n') == "RuntimeError"
    assert split_hint("no hint here") == ("no hint here", None)


def test_the_schema_is_valid_and_an_empty_run_fits_it() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    quiet = payload("preview", "dev", "sendgrid", exit_code=0, project="p")
    assert list(VALIDATOR.iter_errors(quiet)) == []
    assert quiet["ok"] is True and set(quiet) == set(SCHEMA["required"])
    failed = payload("deploy", "dev", "sendgrid", exit_code=0, errors=[])
    failed["ok"] = False  # ok false needs an error and exit code 1
    assert list(VALIDATOR.iter_errors(failed))


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["preview", "--bogus"], "bad arguments: unrecognized arguments: --bogus"),
        (["deploy", "--format", "xml"], "bad arguments: argument --format: invalid choice: 'xml'"),
        (["nonsense"], "bad arguments: argument command: invalid choice: 'nonsense'"),
    ],
)
def test_bad_arguments_give_the_documented_output(
    argv: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert list(VALIDATOR.iter_errors(data)) == []
    (error,) = data["errors"]
    assert error["kind"] == "arguments" and error["message"].startswith(text)
    assert error["hint"].startswith("usage: pipelines [-h]") and "Traceback" not in out + err
    assert data["command"] == (argv[0] if argv[0] != "nonsense" else None)


def test_markdown_errors_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift-check", "--stack", "prod", "--format", "markdown", "--bogus"]) == 1
    out, _ = capsys.readouterr()
    assert out.startswith("<!-- pipelines:drift-check:sendgrid-click-tracking/prod -->\n")
    assert ":x: **drift-check failed**" in out and "bad arguments: unrecognized arguments: --bogus" in out


def _row(values: dict[str, Any]) -> dict[str, Any]:
    state = SettingState.of(
        "urn:pulumi:dev::p::pulumi-python:dynamic/sendgrid:SubscriptionTracking::s",
        {"inputs": {"region": "global", "on_behalf_of": "bob|<b>", **values}},
        "inputs",
    )
    assert state is not None
    return row(
        state, "update", "set", [field_change("html_content", "<p>old</p>", values["html_content"])], status="planned"
    )


def test_markdown_escapes_values_and_stays_under_githubs_limit() -> None:
    hostile = "<script>alert(1)</script> | <% unsubscribe %>" + "x" * 70_000
    data = payload(
        "preview", "dev", "sendgrid", exit_code=0, project="p", changes=[_row({"html_content": hostile})] * 400
    )
    assert list(VALIDATOR.iter_errors(data)) == []
    text = markdown.render(data)
    assert len(text) <= markdown.MAX_CHARS
    assert "<script>" not in text and "&lt;script&gt;" in text
    table = [line for line in text.splitlines() if line.startswith("| <code>")]
    assert all(line.count(" | ") == 5 for line in table)  # a `|` in a value does not add a column
    assert table[0].startswith("| <code>global/bob&#124;&lt;b&gt;</code> | subscription | update |")
