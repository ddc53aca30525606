"""The pipelines' output without the engine: tracebacks trimmed, the schema, Markdown that cannot break."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipelines import markdown
from pipelines.__main__ import main
from pipelines.backend import scheme_problem, with_lock_holders
from pipelines.messages import DEFAULT_HINTS, clean, error, problems, split_hint
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


# What the program raises for a fleet file and a stack config with mistakes (__main__.py joins both).
PROGRAM_ERROR = """invalid stack config (Pulumi.dev.yaml):
  - sendgrid:apikey: unknown key (keys are case-sensitive); did you mean sendgrid:apiKey? Move the key: x.
invalid fleet config in fleets/dev.yaml:
  - subusers[0].enabled: must be true or false (unquoted), got 'yes'
  - subusers[1]: empty; give the subuser's fields
"""


def test_a_program_error_is_one_error_per_problem_each_one_line_with_a_hint() -> None:
    assert problems(PROGRAM_ERROR) == [
        (
            "invalid stack config (Pulumi.dev.yaml): sendgrid:apikey: unknown key (keys are case-sensitive); "
            "did you mean sendgrid:apiKey? Move the key: x.",
            "correct it in Pulumi.dev.yaml, then run this again",
        ),
        (
            "invalid fleet config in fleets/dev.yaml: subusers[0].enabled: must be true or false (unquoted), got 'yes'",
            "correct it in fleets/dev.yaml, then run this again",
        ),
        (
            "invalid fleet config in fleets/dev.yaml: subusers[1]: empty; give the subuser's fields",
            "correct it in fleets/dev.yaml, then run this again",
        ),
    ]
    # A hint on a line of its own belongs to the problem before it; a header without items is a problem itself.
    assert problems("GET failed (401).\nHint: check the key.\nsomething else:\n") == [
        ("GET failed (401).", "check the key."),
        ("something else", None),
    ]
    # An indented line goes on with the problem before it: a further line, for `details`.
    assert problems("preview failed:\nfirst reason\n    more of it\n") == [
        ("preview failed", None),
        ("first reason\nmore of it", None),
    ]
    assert error("engine", "first reason\nmore of it")["details"] == ["more of it"]


def test_every_error_has_one_line_and_a_hint() -> None:
    entry = error("engine", "first line\n  second line\n", None, details=["more"])
    assert (entry["message"], entry["hint"], entry["details"]) == (
        "first line",
        DEFAULT_HINTS["engine"],
        ["second line", "more"],
    )
    assert error("backend", "x", "one\n two")["hint"] == "one two"
    assert set(DEFAULT_HINTS) == set(SCHEMA["$defs"]["error"]["properties"]["kind"]["enum"])
    bad = payload("deploy", "dev", "sendgrid", exit_code=1, errors=[{**entry, "message": "a\nb"}])
    assert list(VALIDATOR.iter_errors(bad))  # the schema refuses a message of two lines
    assert list(
        VALIDATOR.iter_errors(payload("deploy", "dev", "sendgrid", exit_code=1, errors=[{**entry, "hint": None}]))
    )


def test_a_lock_error_names_its_holder() -> None:
    engine = (
        "the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the "
        "lock file with `pulumi cancel`."
    )
    details = [
        "postgres://****:****@127.0.0.1:5432/state/.pulumi/locks/organization/p/dev/1.json: created by ci@runner-7 "
        "(pid 4242) at 2026-12-06T10:00:00Z"
    ]
    assert with_lock_holders(engine, details) == (
        "the stack is currently locked by 1 lock(s), held by ci@runner-7 (pid 4242) at 2026-12-06T10:00:00Z"
    )
    assert with_lock_holders("update failed", details) == "update failed"


def test_postgresql_scheme_is_refused_with_the_same_url_as_postgres() -> None:
    message, hint = scheme_problem(
        {"PULUMI_BACKEND_URL": "postgresql://u:secret@db.internal:5432/pulumi?sslmode=require"}
    ) or ("", "")
    assert message.startswith("PULUMI_BACKEND_URL uses the scheme postgresql://, which the Pulumi engine does not know")
    assert hint == (
        "write the same URL with postgres:// (postgres://db.internal:5432/pulumi, user and password as before) "
        "in PULUMI_BACKEND_URL"
    )
    assert "secret" not in message + hint
    for fine in ("postgres://u:p@h/db", "s3://bucket", "file:///tmp/x", ""):
        assert scheme_problem({"PULUMI_BACKEND_URL": fine}) is None


def test_the_schema_is_valid_and_an_empty_run_fits_it() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    quiet = payload("preview", "dev", "sendgrid", exit_code=0, project="p")
    assert list(VALIDATOR.iter_errors(quiet)) == []
    assert quiet["ok"] is True and set(quiet) == set(SCHEMA["required"])
    failed = payload("deploy", "dev", "sendgrid", exit_code=0, errors=[])
    failed["ok"] = False  # ok false needs an error and exit code 1
    assert list(VALIDATOR.iter_errors(failed))


@pytest.mark.parametrize(
    ("argv", "text", "usage"),
    [
        (["preview", "--bogus"], "bad arguments: unrecognized arguments: --bogus", "usage: pipelines [-h]"),
        (
            ["deploy", "--format", "xml"],
            "bad arguments: argument --format: invalid choice: 'xml'",
            "usage: pipelines/deploy [-h] [--stack STACK]",  # the command's own usage, as its wrapper's --help
        ),
        (["nonsense"], "bad arguments: argument command: invalid choice: 'nonsense'", "usage: pipelines [-h]"),
    ],
)
def test_bad_arguments_give_the_documented_output(
    argv: list[str], text: str, usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert list(VALIDATOR.iter_errors(data)) == []
    (error,) = data["errors"]
    assert error["kind"] == "arguments" and error["message"].startswith(text)
    assert error["hint"].startswith(usage) and "Traceback" not in out + err
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
