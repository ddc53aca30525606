"""The pipelines' reports against what reached SendGrid (the emulator's request log), in both directions.

One checker for every command, shared by tests/e2e/test_reports.py (one case at a time) and the randomized
stateful test (after every pipeline step of every sequence):
- preview: sends no request; each row's `sends` says what the deploy will send (`patch`: the update's exact
  fields, `nothing`, or `unknown` until the deploy reads SendGrid), with no `requests`;
- deploy: every PATCH in the log is in the report with its account, setting and body, and nothing is
  reported sent that was not; every PATCH that changed SendGrid is `applied`, with SendGrid's own values
  before and after (replayed from the emulator's snapshot before the run); a failed one changed nothing and
  is `failed` with its error; the preceding preview announced each PATCH (exactly, or as `unknown`), and
  every `patch` it announced was sent (unless the deploy failed before that step);
- drift-check: sends GETs only; its `state` is every setting of the state (those the program no longer
  declares included), as read live (account, region, on_delete, originals, managed fields from the state;
  values from SendGrid); its `drift` is every managed field whose live value differs from the recorded one
  and from the program's, and only those.
Each check raises AssertionError naming the account, setting and field that disagree.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pulumi_sendgrid_tracking.emulator.state import _apply, validate_patch
from pulumi_sendgrid_tracking.inputs import DEFAULT_ON_DELETE, resource_id
from pulumi_sendgrid_tracking.tracking import SETTING_TYPES, SETTINGS

SETTING_OF_PATH = {s.path: s.name for s in SETTINGS.values()}
KIND_OF_TYPE = {kind: s.name for kind, s in SETTING_TYPES.items()}
Sent = tuple[str, str, str]
"""(account, setting, the PATCH's body as sorted JSON)."""
Key = tuple[str, str]
"""(account, setting): how the reports name a row."""
Log = list[dict[str, Any]]


def sent_key(account: str, setting: str, body: Any) -> Sent:
    return (account, setting, json.dumps(body, sort_keys=True))


def _log_key(entry: Mapping[str, Any]) -> Sent:
    return sent_key(resource_id(entry["world"], entry["on_behalf_of"]), SETTING_OF_PATH[entry["path"]], entry["body"])


def patches(log: Log, *, changed: bool | None = None) -> Counter[Sent]:
    """The log's PATCHes (only those that changed a setting, or did not), by account, setting and body."""
    return Counter(_log_key(e) for e in log if e["method"] == "PATCH" and (changed is None or e["changed"] == changed))


def reported(result: Mapping[str, Any], *statuses: str) -> Counter[Sent]:
    """The PATCHes a deploy's JSON lists, with one of `statuses` (any when none is given)."""
    return Counter(
        sent_key(r["account"], r["setting"], q["fields"])
        for r in result["changes"]
        for q in r["requests"]
        if not statuses or q["status"] in statuses
    )


def rows(result: Mapping[str, Any]) -> dict[Key, dict[str, Any]]:
    """(account, setting) → its row of `changes` (one row per account and setting)."""
    found = {(r["account"], r["setting"]): r for r in result["changes"]}
    assert len(found) == len(result["changes"]), f"two rows for one account's setting: {result['changes']}"
    return found


MD_ROW = re.compile(
    r"^\| <code>(?P<account>[^<]+)</code> \| (?P<setting>\w+) \| (?P<action>[^|]+) \| .* \| (?P<req>[^|]+) \|$"
)


def markdown_requests(text: str) -> dict[Key, str]:
    """(account, setting) → the Markdown table's request cell."""
    found = {}
    for line in text.splitlines():
        match = MD_ROW.match(line)
        if match:
            found[match["account"], match["setting"]] = match["req"]
    return found


def planned_body(entry: Mapping[str, Any]) -> list[str]:
    """The fields a preview's `patch` row says its PATCH sends: those listed without a note."""
    return [f["field"] for f in entry["fields"] if not f["note"] and f["field"] != "on_delete"]


def request_cell(entry: Mapping[str, Any]) -> str:
    """What the Markdown table must say a row sends."""
    if entry["requests"]:
        return "; ".join(f"PATCH {', '.join(sorted(q['fields']))} ({q['status']})" for q in entry["requests"])
    return {"patch": f"PATCH {', '.join(planned_body(entry))}", "unknown": "PATCH if SendGrid differs"}.get(
        entry["sends"], "none"
    )


def check_markdown(result: Mapping[str, Any], markdown: str) -> None:
    """The Markdown table has exactly the JSON's rows, each saying what it sends (or sent, and how it went)."""
    cells = markdown_requests(markdown)
    by_key = rows(result)
    assert set(cells) == set(by_key), (sorted(cells), sorted(by_key))
    for key, entry in by_key.items():
        assert cells[key] == request_cell(entry), (key, cells[key], request_cell(entry))


def _only(log: Log, methods: Collection[str], command: str) -> None:
    other = [(e["method"], e["path"], e["on_behalf_of"]) for e in log if e["method"] not in methods]
    assert not other, f"{command} sent {other}"


# -- preview, and the plan of drift-check ------------------------------------------------------------


def check_plan(result: Mapping[str, Any], markdown: str | None = None) -> None:
    """A plan's rows: planned, nothing sent yet, `sends` saying what the deploy will send."""
    for entry in result["changes"]:
        where = f"{entry['account']} {entry['setting']}"
        assert entry["status"] == "planned" and entry["requests"] == [], f"{where}: {entry}"
        assert entry["sends"] in ("patch", "nothing", "unknown"), f"{where}: {entry}"
        if entry["sends"] == "patch":
            assert planned_body(entry), f"{where}: a PATCH announced without its fields: {entry}"
    assert result["summary"]["patches"] == 0
    rows(result)
    if markdown is not None:
        check_markdown(result, markdown)


def check_preview(result: Mapping[str, Any], log: Log, markdown: str | None = None) -> None:
    """A preview sent nothing, and says what the deploy will send."""
    assert log == [], f"preview sent {len(log)} requests: {[(e['method'], e['path']) for e in log[:5]]}"
    check_plan(result, markdown)


# -- deploy ------------------------------------------------------------------------------------------


def _settings_of(snapshot: Mapping[str, Any], world: str, on_behalf_of: str | None) -> dict[str, Any] | None:
    data = snapshot[world]
    if on_behalf_of is None:
        return dict(data["parent"])
    found: dict[str, Any] | None = data["subusers"].get(on_behalf_of)
    return found


def replay(before: Mapping[str, Any], log: Log) -> dict[Sent, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Each PATCH of the log → [(its fields as SendGrid held them just before, and just after)], in log order,
    replayed from the emulator's snapshot `before` with the emulator's own rules (an empty url removes it)."""
    live = copy.deepcopy(dict(before))
    seen: dict[Sent, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for entry in log:
        if entry["method"] != "PATCH":
            continue
        key = _log_key(entry)
        held = _settings_of(live, entry["world"], entry["on_behalf_of"])
        if held is None or not isinstance(entry["body"], dict):
            continue
        setting = held[key[1]]
        body = entry["body"]
        was = {name: setting.get(name) for name in body}
        if entry["changed"]:
            _apply(setting, validate_patch(key[1], body))
        seen.setdefault(key, []).append((was, {name: setting.get(name) for name in body}))
    return seen


def check_deploy(
    deployed: Mapping[str, Any],
    log: Log,
    markdown: str | None = None,
    preview: Mapping[str, Any] | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    unsure: Collection[Key] = (),
) -> None:
    """The deploy's report and the request log agree in both directions; the preview announced every PATCH.

    `before`: the emulator's snapshot before the deploy (then every PATCH's before and after are checked
    against SendGrid's own values). `unsure`: accounts whose recorded state was not SendGrid's when the
    preview ran (changed out of band since the state last read them, or left so by a failed run): a preview
    sends no request, so it cannot know what their deploy will send."""
    _only(log, ("GET", "PATCH"), "deploy")
    sent, changed = patches(log), patches(log, changed=True)
    listed = reported(deployed)
    assert set(listed) == set(sent), (
        f"PATCHes sent but not reported: {sorted(set(sent) - set(listed))}; "
        f"reported but not sent: {sorted(set(listed) - set(sent))}"
    )
    applied, failed, unknown = (reported(deployed, s) for s in ("applied", "failed", "unknown"))
    assert applied <= changed, f"reported applied, SendGrid unchanged: {sorted(applied - changed)}"
    assert changed <= applied + unknown, f"changed SendGrid, not reported applied: {sorted(changed - applied)}"
    for key in failed:
        assert not changed[key], f"reported failed, but it changed SendGrid: {key}"
    by_key = rows(deployed)
    replayed = replay(before, log) if before is not None else {}
    for (account, setting), entry in by_key.items():
        where = f"{account} {setting}"
        assert (entry["sends"] == "patch") == bool(entry["requests"]), f"{where}: {entry}"
        statuses = {q["status"] for q in entry["requests"]}
        if statuses == {"failed"}:
            assert entry["status"] == "failed" and entry["error"] and entry["error"]["message"], f"{where}: {entry}"
        if "unknown" in statuses:
            assert entry["status"] == "unknown", f"{where}: {entry}"
        shown = {f["field"]: f for f in entry["fields"]}
        touching = Counter(name for q in entry["requests"] for name in q["fields"])
        for request in entry["requests"]:
            body = request["fields"]
            if request["status"] == "failed":
                assert request["error"], f"{where}: a failed PATCH without its error: {request}"
            for name in body:  # the row's fields show the PATCH's before and after
                assert name in shown, f"{where}: PATCH of {name} not among the row's fields: {entry}"
                if request["status"] != "applied" or touching[name] > 1:
                    continue
                assert shown[name]["before"] == request["before"].get(name), f"{where} {name}: {entry}"
                if request["after"] is not None:
                    assert shown[name]["after"] == request["after"].get(name), f"{where} {name}: {entry}"
            if before is None:
                continue
            seen = replayed.get(sent_key(account, setting, body), [])
            assert seen, f"{where}: reported {body}, not in the log"
            was, now = seen[0][0], seen[-1][1]
            assert {n: request["before"].get(n) for n in body} == was, (
                f"{where}: PATCH {body} reported with before {request['before']}, SendGrid held {was}"
            )
            if request["status"] == "applied" and request["after"] is not None:
                assert {n: request["after"].get(n) for n in body} == now, (
                    f"{where}: PATCH {body} reported with after {request['after']}, SendGrid holds {now}"
                )
            if request["status"] == "failed":
                assert now == was, f"{where}: a failed PATCH {body} changed SendGrid: {was} -> {now}"
    assert sum(len(r["requests"]) for r in deployed["changes"]) == deployed["summary"]["patches"]
    if failed or unknown:
        assert deployed["ok"] is False and deployed["exit_code"] == 1, "a failed PATCH in a deploy that succeeded"
    if markdown is not None:
        check_markdown(deployed, markdown)
    if preview is not None:
        check_announced(preview, deployed, sent, unsure)


def check_announced(
    preview: Mapping[str, Any], deployed: Mapping[str, Any], sent: Counter[Sent], unsure: Collection[Key] = ()
) -> None:
    """Every PATCH the deploy sent was in the preview (exactly, or as `unknown`); every `patch` it announced
    was sent, unless the deploy failed before that step; nothing sent where it said `nothing`."""
    planned = rows(preview)
    done = rows(deployed)
    for account, setting, body in sent:
        if (account, setting) in unsure:
            continue
        entry = planned.get((account, setting))
        assert entry is not None, f"{account} {setting}: PATCH {body} sent, the preview did not list it"
        assert entry["sends"] in ("patch", "unknown"), f"{account} {setting}: PATCH {body} sent; preview: {entry}"
        if entry["sends"] == "patch":
            assert sorted(json.loads(body)) == sorted(planned_body(entry)), (
                f"{account} {setting}: PATCH {body} sent; the preview announced {planned_body(entry)}"
            )
    sent_to = {(account, setting) for account, setting, _ in sent}
    for key, entry in planned.items():
        if key in unsure:
            continue
        if entry["sends"] == "patch" and key not in sent_to:
            outcome = done.get(key)
            assert not deployed["ok"] and (outcome is None or outcome["status"] != "done"), (
                f"{key[0]} {key[1]}: the preview announced PATCH {planned_body(entry)}; none was sent"
            )
        if entry["sends"] == "nothing":
            assert key not in sent_to, f"{key[0]} {key[1]}: the preview said nothing is sent; a PATCH was"


# -- state and drift -----------------------------------------------------------------------------------


def _live_values(live: Mapping[str, Any], kind: str, region: str, on_behalf_of: str | None) -> dict[str, Any]:
    held = _settings_of(live, region, on_behalf_of) or {}
    values = held.get(kind) or {}
    return {f.name: values.get(f.name) for f in SETTINGS[kind].fields}


def recorded_settings(
    exported: Iterable[Mapping[str, Any]], live: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The settings a `pulumi stack export` holds, as the reports' `state` must list them (values from
    `live`, an emulator snapshot, when given; else as recorded)."""
    out = []
    for resource in exported:
        kind = KIND_OF_TYPE.get(str(resource.get("type")))
        outs = resource.get("outputs") or {}
        if kind is None or not outs or not isinstance(outs.get("region"), str) or resource.get("delete"):
            continue  # (one pending deletion, left by a replacement that failed half way, is not listed)
        managed = list(outs.get("managed_fields") or ["enabled"])
        originals = outs.get("originals") or {}
        region, who = outs["region"], outs.get("on_behalf_of")
        values = (
            _live_values(live, kind, region, who)
            if live is not None
            else {f.name: outs.get(f.name) for f in SETTINGS[kind].fields}
        )
        out.append(
            {
                "resource": outs.get("name") or str(resource["urn"]).rsplit("::", 1)[-1],
                "setting": kind,
                "account": resource_id(region, who),
                "region": region,
                "on_behalf_of": who,
                "on_delete": outs.get("on_delete") or DEFAULT_ON_DELETE,
                "values": values,
                "originals": {name: originals.get(name) for name in managed},
                "managed_fields": managed,
            }
        )
    return sorted(out, key=lambda s: (s["account"], s["setting"], s["resource"]))


def check_state(
    state: list[dict[str, Any]],
    exported: Iterable[Mapping[str, Any]],
    live: Mapping[str, Any] | None = None,
) -> None:
    """A report's `state` is every setting of the stack's state: account, region, on_delete, originals and
    managed fields as recorded; values as recorded (or as SendGrid holds them, `live`)."""
    want = recorded_settings(exported, live)
    got = sorted(state, key=lambda s: (s["account"], s["setting"], s["resource"]))
    assert [(s["account"], s["setting"]) for s in got] == [(s["account"], s["setting"]) for s in want], (got, want)
    for mine, theirs in zip(got, want, strict=True):
        assert mine == theirs, f"{mine['account']} {mine['setting']}: state {mine}, expected {theirs}"


def check_drift_check(
    result: Mapping[str, Any],
    log: Log,
    exported: Iterable[Mapping[str, Any]],
    live: Mapping[str, Any],
    desired: Mapping[Key, Mapping[str, Any]] | None = None,
) -> None:
    """drift-check read only; its state is every setting as read live; its drift is every managed field whose
    live value differs from the recorded one (and from the program's, `desired`: (account, setting) → the
    fields whose desired value is known; a setting missing there leaves the program), and only those."""
    _only(log, ("GET",), "drift-check")
    if not result["ok"]:
        return
    exported = list(exported)
    check_state(result["state"], exported, live)
    check_plan(result)
    assert result["summary"]["checked"] == len(result["state"])
    assert result["summary"]["drifted"] == len(result["drift"])
    assert result["exit_code"] == (2 if result["drift"] else 0), result["exit_code"]
    recorded = {(s["account"], s["setting"]): s for s in recorded_settings(exported)}
    found = {(d["account"], d["setting"], d["field"]): d for d in result["drift"]}
    assert len(found) == len(result["drift"]), result["drift"]
    for (account, setting, name), entry in found.items():
        was = recorded.get((account, setting))
        assert was is not None and name in was["managed_fields"], f"drift of {account} {setting} {name}: {entry}"
        now = _live_values(live, setting, was["region"], was["on_behalf_of"])[name]
        assert (entry["recorded"], entry["live"]) == (was["values"][name], now) and now != entry["recorded"], (
            f"drift of {account} {setting} {name}: {entry}; recorded {was['values'][name]!r}, live {now!r}"
        )
    if desired is None:
        return
    for key, was in recorded.items():
        now = _live_values(live, key[1], was["region"], was["on_behalf_of"])
        wanted = desired.get(key)
        for name in was["managed_fields"]:
            entry = found.get((*key, name))
            if wanted is not None and name not in wanted:
                continue  # not known here (ignore_changes, or no longer managed)
            expected = was["values"][name] != now[name] and (wanted is None or wanted[name] != now[name])
            assert (entry is not None) == expected, (
                f"{key[0]} {key[1]} {name}: recorded {was['values'][name]!r}, live {now[name]!r}, "
                f"desired {'(removed)' if wanted is None else repr(wanted[name])}; drift: {entry}"
            )
            if entry is not None:
                if wanted is None:
                    assert entry["desired"] is None and entry["note"], entry
                else:
                    assert entry["desired"] == wanted[name] and entry["note"] is None, entry
