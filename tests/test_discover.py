"""pipelines/discover without the engine: what it reads (GETs only), the fleet it writes, what it skips, --diff.

The stack's config is given directly (`stack_config` is what would ask `pulumi config`); everything else is the
command as it runs, against an in-process emulator world.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.fleet import load_fleet_yaml, parse_fleet

from pipelines import discover as discover_mod
from pipelines.common import Run
from pipelines.output import Output

from .conftest import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = jsonschema.Draft202012Validator(json.loads((ROOT / "pipelines" / "output.schema.json").read_text()))
SETTING_KINDS = ("click", "open", "subscription", "google_analytics")
FOOTER = {"html_content": "<p>Bye: <% leave %></p>", "plain_content": "Bye: <% %>"}


def mixed_world(global_count: int, eu_count: int) -> dict[str, Any]:
    """Subusers in both regions whose settings vary by index, a disabled one, a customer account."""

    def settings(i: int) -> dict[str, Any]:
        return {
            "click": {"enabled": i % 3 != 0},
            "open": {"enabled": i % 4 == 0},
            "subscription": {"enabled": i % 5 == 0, **(FOOTER if i % 10 == 0 else {})}
            | ({"url": f"https://example.com/u/{i}"} if i % 7 == 0 else {}),
            "google_analytics": {"enabled": i % 6 == 0, **({"utm_source": "sendgrid"} if i % 6 == 0 else {})},
        }

    return {
        "global": {
            "parent": {"click": {"enabled": False}},
            "subusers": {f"g{i:04}": settings(i) for i in range(global_count)} | {"off": {"disabled": True}},
            "customers": {"4242": settings(1)},
        },
        "eu": {"subusers": {f"e{i:04}": settings(i + 1) for i in range(eu_count)}},
    }


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState(api_keys=[TEST_KEY], rate_limit=10**9)


@pytest.fixture
def emulator(state: EmulatorState) -> Iterator[Emulator]:
    with Emulator(state) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: sendgrid-click-tracking\nruntime: python\n")
    return tmp_path


def command(
    emulator: Emulator,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    config: dict[str, Any] | None = None,
    key: str = TEST_KEY,
) -> tuple[int, dict[str, Any]]:
    """Run the command (config as `pulumi config --json --show-secrets` would give it); (exit code, JSON output)."""
    stack_config = {"sendgrid-click-tracking:fleetFile": "fleets/dev.yaml", **(config or {})}
    monkeypatch.setattr(discover_mod, "stack_config", lambda run: stack_config)
    env = {
        "SENDGRID_API_KEY": key,
        "SENDGRID_BASE_URL": emulator.base_url,
        "SENDGRID_EU_BASE_URL": emulator.eu_base_url,
    }
    run = Run(project, "dev", "emulator", env)
    args = discover_mod._parser().parse_args(list(argv))
    try:
        code = discover_mod.run_discover(run, args, Output())
    except discover_mod.PipelineError as exc:
        return 1, {"error": exc.message, "hint": exc.hint}
    out = json.loads(capsys.readouterr().out)
    VALIDATOR.validate(out)
    return code, out


def live_values(state: EmulatorState) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    """(region, on_behalf_of, setting) → every writable field as the emulator holds it ("" where absent)."""
    writable = {
        "click": ["enabled"],
        "open": ["enabled"],
        "subscription": ["enabled", "html_content", "plain_content", "replace", "url", "landing"],
        "google_analytics": ["enabled", "utm_source", "utm_medium", "utm_term", "utm_content", "utm_campaign"],
    }
    found = {}
    snapshot = state.snapshot()
    for region, world in snapshot.items():
        accounts: dict[str | None, Any] = {None: world["parent"]} if region == "global" else {}
        disabled = set(world["disabled"]["subusers"])
        accounts |= {u: s for u, s in world["subusers"].items() if u not in disabled}
        accounts |= {f"account-id {c}": s for c, s in world["customers"].items()}
        for obo, settings in accounts.items():
            for kind in SETTING_KINDS:
                found[(region, obo, kind)] = {f: settings[kind].get(f, "") for f in writable[kind]}
    return found


def declared(path: Path) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    entries = parse_fleet(load_fleet_yaml(path.read_text(), str(path)))
    return {(e.region or "global", e.on_behalf_of, e.setting): dict(e.values) for e in entries}


def test_a_world_of_hundreds_becomes_a_fleet_declaring_exactly_what_sendgrid_holds(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(240, 120))
    code, out = command(emulator, project, monkeypatch, capsys, "--account-id", "4242", "--jobs", "6")
    assert code == 0 and out["ok"]
    fleet_file = project / "fleets" / "dev.yaml"
    assert declared(fleet_file) == live_values(state)
    text = fleet_file.read_text()
    assert text.startswith("# What SendGrid held on ")
    assert TEST_KEY not in text and TEST_KEY not in json.dumps(out)
    data = load_fleet_yaml(text, "x")
    assert data["defaults"]["click"] == {"enabled": True}  # 2/3 of the accounts
    names = [a.get("username") or a.get("accountId") for a in data["subusers"]]
    assert names == [*sorted(n for n in names if n != "4242"), "4242"]  # subusers by name, then customers
    assert {a.get("region") for a in data["subusers"]} == {None, "eu"}  # the stack's region is not written
    assert len(text.splitlines()) < 360 * 4  # far shorter than every field of every account (360 x 4 x 6)

    log = state.request_log()
    assert {e["method"] for e in log} == {"GET"}
    pages = [e for e in log if e["path"] == "/v3/subusers"]
    assert len(pages) == math.ceil(361 / 100)  # 360 subusers and the disabled one, 100 a page
    accounts = 1 + 360 + 1  # the parent, the enabled subusers, the customer account
    # The parent: a GET per setting (which may the key read?) and the list; every other account: the list
    # (click and open: their only field, `enabled`, is in it) and a GET each for subscription and google_analytics.
    assert len(log) == len(pages) + (4 + 1) + 3 * (accounts - 1)
    per_path = Counter(e["path"] for e in log)
    assert per_path["/v3/tracking_settings"] == accounts
    assert per_path["/v3/tracking_settings/click"] == per_path["/v3/tracking_settings/open"] == 1
    assert (
        per_path["/v3/tracking_settings/subscription"] == per_path["/v3/tracking_settings/google_analytics"] == accounts
    )
    assert out["summary"]["checked"] == 4 * accounts
    assert out["discovery"]["listed"] == {"subusers": 361, "customers": 0}
    assert [(s["account"], s["kind"]) for s in out["discovery"]["skipped"]] == [("global/off", "disabled")]


def test_it_never_overwrites_without_force(
    emulator: Emulator, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet_file = project / "fleets" / "dev.yaml"
    fleet_file.parent.mkdir()
    fleet_file.write_text("parent: {click: {enabled: true}}\n")
    code, out = command(emulator, project, monkeypatch, capsys)
    assert code == 1
    assert out["error"] == "fleets/dev.yaml exists; discover never overwrites a file unless told to"
    assert fleet_file.read_text() == "parent: {click: {enabled: true}}\n"
    assert emulator.state.request_log() == []  # refused before anything was sent
    code, _ = command(emulator, project, monkeypatch, capsys, "--force")
    assert code == 0 and fleet_file.read_text().startswith("# What SendGrid held")


def test_only_the_settings_asked_and_the_key_id_never_the_key(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "SG.keyid123.secretpart456"
    state.add_key(key)
    state.add_subuser("global", "alice", enabled=False)
    code, out = command(
        emulator, project, monkeypatch, capsys, "--settings", "click,open", "--output", str(project / "f.yaml"), key=key
    )
    assert code == 0
    text = (project / "f.yaml").read_text()
    assert "keyid123" in text and "secretpart456" not in text and "secretpart456" not in json.dumps(out)
    assert [(e["path"], e["on_behalf_of"]) for e in state.request_log()] == [
        ("/v3/tracking_settings/click", None),
        ("/v3/tracking_settings/open", None),
        ("/v3/tracking_settings", None),
        ("/v3/subusers", None),
        ("/v3/tracking_settings", "alice"),  # click and open in one request
    ]
    assert set(load_fleet_yaml(text, "x")["defaults"]) == {"open"}  # click differs: true (parent), false (alice)


def test_a_missing_scope_is_named_and_that_setting_left_out(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(20, 5))
    scopes = ["subusers.read", *(f"tracking_settings.{k}.read" for k in ("click", "open", "subscription"))]
    state.add_key("SG.no-ga", scopes)
    code, out = command(emulator, project, monkeypatch, capsys, key="SG.no-ga")
    assert code == 0
    [skipped] = out["discovery"]["skipped"][:1]
    assert skipped["kind"] == "scope" and skipped["setting"] == "google_analytics"
    assert "tracking_settings.google_analytics.read" in skipped["reason"]
    assert out["discovery"]["settings"] == ["click", "open", "subscription"]
    assert {k[2] for k in declared(project / "fleets" / "dev.yaml")} == {"click", "open", "subscription"}
    ga = [e for e in state.request_log() if e["path"].endswith("google_analytics")]
    assert [(e["on_behalf_of"], e["status"]) for e in ga] == [(None, 403)]  # asked once, on the parent
    # Nor may it read the list (tracking_settings.read): asked once, then a GET per setting for every account.
    listed = [e for e in state.request_log() if e["path"] == "/v3/tracking_settings"]
    assert [(e["on_behalf_of"], e["status"]) for e in listed] == [(None, 403)]


def test_without_subusers_read_the_parent_alone_is_declared(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(3, 0))
    state.add_key("SG.no-list", [f"tracking_settings.{k}.read" for k in SETTING_KINDS])
    code, out = command(emulator, project, monkeypatch, capsys, key="SG.no-list")
    assert code == 0
    assert [s["kind"] for s in out["discovery"]["skipped"]][:1] == ["scope"]
    assert "subusers.read" in out["discovery"]["skipped"][0]["reason"]
    assert {k[1] for k in declared(project / "fleets" / "dev.yaml")} == {None}


def test_a_429_storm_is_waited_out(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(30, 10))
    emulator.admin.add_fault("429", path="/v3/subusers", count=2)
    for user in ("g0001", "g0002", "g0003", "g0004", "e0001", "e0002"):  # read in parallel: a storm across threads
        emulator.admin.add_fault("429", account=user, count=3)
    code, out = command(emulator, project, monkeypatch, capsys, "--account-id", "4242")
    assert code == 0, out
    log = state.request_log()
    assert sum(e["status"] == 429 for e in log) == 2 + 6 * 3
    assert len(log) == 2 + 6 * 3 + 1 + (4 + 1) + 3 * (40 + 1)  # every 429 retried, nothing else sent twice
    assert declared(project / "fleets" / "dev.yaml") == live_values(state)


def test_an_account_gone_and_a_region_mismatch_are_skipped_with_their_reasons(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(4, 2))
    listed = state.list_subusers

    def stale_list(**query: Any) -> list[dict[str, Any]]:
        """SendGrid's list and its hosts disagree: e0000 listed in global, and a subuser deleted since."""
        page = listed(**query)
        for item in page:
            if item["username"] == "e0000":
                item["region"] = "global"
        if query["offset"] == 0:
            page.append({"disabled": False, "email": "x@example.com", "id": 1, "username": "ghost", "region": "global"})
        return page

    monkeypatch.setattr(state, "list_subusers", stale_list)
    code, out = command(emulator, project, monkeypatch, capsys, "--account-id", "999")
    assert code == 0
    reasons = {s["account"]: (s["kind"], s["reason"]) for s in out["discovery"]["skipped"]}
    assert reasons["global/e0000"] == ("region", "listed in global, but SendGrid answers for it only on the eu host")
    assert reasons["global/ghost"][0] == "gone"
    assert reasons["global/account-id 999"][0] == "gone"
    assert "in both regions" in reasons["global/account-id 999"][1]
    on_behalf = {k[1] for k in declared(project / "fleets" / "dev.yaml")}
    assert "e0000" not in on_behalf and "ghost" not in on_behalf and "e0001" in on_behalf


def test_a_value_the_provider_would_not_send_leaves_that_setting_out(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(3, 0))
    state.set_out_of_band("global", "g0001", "subscription", {"html_content": "<p>no link tag</p>"})
    code, out = command(emulator, project, monkeypatch, capsys)
    assert code == 0
    [bad] = [s for s in out["discovery"]["skipped"] if s["kind"] == "value"]
    assert (bad["account"], bad["setting"]) == ("global/g0001", "subscription")
    fleet = declared(project / "fleets" / "dev.yaml")
    assert ("global", "g0001", "click") in fleet and ("global", "g0001", "subscription") not in fleet


def test_customer_accounts_listed_page_by_page_and_found_in_their_region(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for i in range(150):
        state.add_customer("global" if i % 3 else "eu", str(5000 + i), enabled=bool(i % 2))
    code, out = command(emulator, project, monkeypatch, capsys, "--list-accounts", "--settings", "click")
    assert code == 0
    assert out["discovery"]["listed"]["customers"] == 150
    assert [e["path"] for e in state.request_log()].count("/v3/partners/accounts") == 2  # 100 a page
    assert declared(project / "fleets" / "dev.yaml") == {k: v for k, v in live_values(state).items() if k[2] == "click"}


def test_diff_lists_accounts_on_one_side_only_and_drifted_fields_and_writes_nothing(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.seed(mixed_world(40, 10))
    assert command(emulator, project, monkeypatch, capsys, "--account-id", "4242")[0] == 0
    fleet_file = project / "fleets" / "dev.yaml"
    written = fleet_file.read_text()
    code, out = command(emulator, project, monkeypatch, capsys, "--diff")
    assert (code, out["summary"]["drifted"]) == (0, 0)  # the customer account the fleet declares is read too

    state.set_out_of_band("global", "g0003", "click", {"enabled": True})  # someone clicked in the UI
    state.set_out_of_band("eu", "e0001", "subscription", {"url": "https://example.com/elsewhere"})
    state.add_subuser("global", "newcomer")
    state.delete_subuser("global", "g0005")
    state.delete_customer("global", "4242")
    before = len(state.request_log())
    code, out = command(emulator, project, monkeypatch, capsys, "--diff")
    assert code == 2 and out["exit_code"] == 2 and out["ok"]
    assert fleet_file.read_text() == written
    assert {e["method"] for e in state.request_log()[before:]} == {"GET"}
    found = out["discovery"]
    assert [d["account"] for d in found["not_in_fleet"]] == ["global/newcomer"]
    assert {d["account"]: d["note"] for d in found["not_in_sendgrid"]} == {
        "global/g0005": "SendGrid does not list it (deleted, never created, or not this key's account)",
        "global/account-id 4242": "SendGrid refuses customer account 4242 in both regions (403): not a customer "
        "account of this key's account, or deleted",
    }
    drift = {(d["account"], d["setting"], d["field"]): (d["live"], d["desired"]) for d in out["drift"]}
    assert drift == {
        ("global/g0003", "click", "enabled"): (True, False),
        ("eu/e0001", "subscription", "url"): ("https://example.com/elsewhere", ""),
    }
    assert out["summary"]["drifted"] == 5


def test_diff_names_a_region_move(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state.add_subuser("global", "carol")
    fleet_file = project / "fleet.yaml"
    fleet_file.write_text(
        "parent: {click: {enabled: true}}\nsubusers:\n  - {username: carol, region: eu, click: {enabled: true}}\n"
    )
    code, out = command(
        emulator, project, monkeypatch, capsys, "--diff", "--output", str(fleet_file), "--settings", "click"
    )
    assert code == 2
    assert out["discovery"]["not_in_sendgrid"] == [
        {
            "account": "eu/carol",
            "kind": "account",
            "note": "SendGrid has it in global, not eu: fix its region in the fleet",
        }
    ]
    assert [d["account"] for d in out["discovery"]["not_in_fleet"]] == ["global/carol"]


def test_bad_arguments_are_the_json_output_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = discover_mod.main(["--settings", "clicks", "--stack", "dev"])
    out = json.loads(capsys.readouterr().out)
    VALIDATOR.validate(out)
    assert (code, out["command"], out["errors"][0]["kind"]) == (1, "discover", "arguments")
    assert "click, open, subscription, google_analytics" in out["errors"][0]["message"]


def test_settings_may_be_spelled_as_the_fleet_spells_them() -> None:
    assert [s.name for s in discover_mod._settings("googleAnalytics,click")] == ["google_analytics", "click"]
    with pytest.raises(argparse.ArgumentTypeError):
        discover_mod._settings("")


def test_reads_in_parallel_within_the_request_budget(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sendgrid:maxRequestsPerSecond paces every thread together; the emulator's limit is never hit."""
    state.configure(rate_limit=12, rate_window=1.0, latency=0.3)
    for i in range(50):
        state.add_subuser("global", f"u{i:02}")
    config = {"sendgrid:maxRequestsPerSecond": "10"}  # the highest allowed: SendGrid's 600 a minute
    code, _ = command(emulator, project, monkeypatch, capsys, "--settings", "click", config=config)
    assert code == 0
    log = state.request_log()
    assert len(log) == 1 + 1 + 50 and all(e["status"] == 200 for e in log)
    span = log[-1]["time"] - log[0]["time"]
    assert span >= (len(log) - 2) / 10  # paced (the first two requests may go at once)
    assert span < len(log) * 0.3  # yet faster than one request at a time at 300 ms each


def test_the_markdown_summary_of_a_diff(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipelines import markdown

    state.add_subuser("global", "alice")
    state.add_subuser("global", "bob", disabled=True)
    fleet_file = project / "fleet.yaml"
    fleet_file.write_text("parent: {click: {enabled: true}}\nsubusers:\n  - {username: bob, click: {enabled: true}}\n")
    code, out = command(emulator, project, monkeypatch, capsys, "--diff", "--output", str(fleet_file))
    assert code == 2
    text = markdown.render(out)
    assert ":warning: **SendGrid and <code>fleet.yaml</code> differ: 2**" in text
    assert "| <code>global/alice</code> | not in the fleet |  |" in text
    assert "| <code>global/bob</code> | not in SendGrid | disabled in SendGrid: not read, not declared |" in text


def test_a_username_listed_in_both_regions_is_declared_once(
    emulator: Emulator,
    state: EmulatorState,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SendGrid's usernames are unique; the emulator's two worlds may hold one twice: the first listed is kept."""
    state.add_subuser("global", "twin")
    state.add_subuser("eu", "twin")
    code, out = command(emulator, project, monkeypatch, capsys, "--settings", "click")
    assert code == 0
    assert [(s["account"], s["kind"]) for s in out["discovery"]["skipped"]] == [("eu/twin", "region")]
    assert {k[:2] for k in declared(project / "fleets" / "dev.yaml")} == {("global", None), ("global", "twin")}


def test_diff_without_the_file_and_a_stack_without_a_fleet_file_are_errors_before_any_request(
    emulator: Emulator, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = command(emulator, project, monkeypatch, capsys, "--diff")
    assert (code, out["error"]) == (1, "cannot read fleets/dev.yaml: No such file or directory")
    inline = {
        "sendgrid-click-tracking:fleetFile": None,
        "sendgrid-click-tracking:parent": '{"click": {"enabled": true}}',
    }
    code, out = command(emulator, project, monkeypatch, capsys, config=inline)
    assert code == 1 and out["error"].startswith("stack dev has no sendgrid-click-tracking:fleetFile")
    assert "--output" in out["hint"]
    assert emulator.state.request_log() == []
