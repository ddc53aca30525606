"""What a run does to each account's setting: rows per account, setting and field, read from what the provider
decides and does, never worked out on the side.

The engine speaks of resources; users speak of accounts. Every setting resource (type
`pulumi-python:dynamic/sendgrid:<ClickTracking|OpenTracking|SubscriptionTracking|GoogleAnalytics>`) is one
setting of one account, named here by its `region` and `on_behalf_of`, and by the program's name for it (its
`name` input; the engine names it by its account). The stack's originals ledger (`...:Originals::originals`) is
bookkeeping, never a row: its reads are GETs, it changes nothing. 0.2.0's adoption records (`...:Adoption`) are
retired by the first 0.3.0 deploy.

What a step sends comes from the provider's own rules (pulumi_sendgrid_tracking.singleton):
- an update sends `changes_to_send(the program's managed values, the recorded values)`: exact at preview;
- a create sends the managed fields that differ from what SendGrid holds: known when the deploy reads it;
- a delete gives the account back: one GET, then the fields of `give_back_target(...)` that SendGrid does not
  hold yet (nothing for `keep`, nothing under `retain_on_delete`);
- a retired adoption record sends nothing while its account is declared (or given back by its setting in the
  run); otherwise it gives the account back from what it observed, by the same rule.

What a deploy did comes from the change journal (journal.py: every PATCH the provider sent, with before, after
and its status) joined with the engine's step events: a step with no PATCH in the journal sent nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_sendgrid_tracking.inputs import DEFAULT_ON_DELETE, resource_id, setting_key, split_setting_key
from pulumi_sendgrid_tracking.providers import (
    ClickTrackingProvider,
    GoogleAnalyticsProvider,
    OpenTrackingProvider,
    SubscriptionTrackingProvider,
)
from pulumi_sendgrid_tracking.singleton import (
    LEDGER_KEY,
    NAME_KEY,
    SettingProvider,
    changes_to_send,
    give_back_target,
    ledger_originals,
    same,
)
from pulumi_sendgrid_tracking.tracking import SETTINGS, TYPE_PREFIX, TrackingSetting

ADOPTION_TYPE = f"{TYPE_PREFIX}Adoption"
LEDGER_TYPE = f"{TYPE_PREFIX}Originals"
PROVIDERS: Mapping[str, type[SettingProvider]] = {
    f"{TYPE_PREFIX}{p.setting.resource}": p
    for p in (ClickTrackingProvider, OpenTrackingProvider, SubscriptionTrackingProvider, GoogleAnalyticsProvider)
}
"""Setting resource type → the provider class that handles it (its rules are the reports' rules)."""
BY_SETTING: Mapping[str, type[SettingProvider]] = {p.setting.name: p for p in PROVIDERS.values()}
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How `pulumi preview --json` writes a value not known until the deploy."""
ACTIONS = ("create", "update", "delete", "replace")
DELETES = ("delete", "delete-replaced", "discard")
CREATE_UNKNOWN = "sends the fields that differ from what SendGrid holds; known when the deploy reads it"
GIVE_BACK_UNKNOWN = (
    "sends the fields that differ from these values; known when the deploy reads SendGrid (one GET first)"
)


class Unknown:
    """A value the preview cannot know (read from SendGrid only when the deploy runs)."""

    def __repr__(self) -> str:
        return "?"


UNKNOWN = Unknown()


def type_of(urn: str) -> str:
    """The resource type in a URN (the last one of a parent chain)."""
    return urn.rsplit("::", 1)[0].rsplit("::", 1)[-1].rsplit("$", 1)[-1]


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _plain(value: Any) -> Any:
    if value == UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _part(state: Mapping[str, Any] | None, part: str) -> dict[str, Any]:
    values = (state or {}).get(part)
    return dict(values) if isinstance(values, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class SettingState:
    """One setting resource as one state (old or new) of a step has it."""

    urn: str
    provider: type[SettingProvider]
    region: str | None
    on_behalf_of: str | None
    values: dict[str, Any]
    """Inputs for a desired state, outputs for a recorded one."""
    retained: bool = False
    """`retain_on_delete`: the engine drops it from the state without calling the provider."""

    @classmethod
    def of(cls, urn: str, state: Mapping[str, Any] | None, part: str) -> SettingState | None:
        provider = PROVIDERS.get(type_of(urn))
        if provider is None or not state:
            return None
        values = _plain(_part(state, part))
        if part == "outputs" and not values:
            values = _plain(_part(state, "inputs"))
        return cls(
            urn,
            provider,
            _text(values.get("region")),
            _text(values.get("on_behalf_of")),
            values,
            bool(state.get("retainOnDelete")),
        )

    @property
    def setting(self) -> TrackingSetting:
        return self.provider.setting

    @property
    def resource(self) -> str:
        """The program's name for it (the engine's name is the account)."""
        return _text(self.values.get(NAME_KEY)) or name_of(self.urn)

    @property
    def account(self) -> str:
        return resource_id(self.region, self.on_behalf_of) if self.region else "?"

    @property
    def key(self) -> str:
        """`click/global/alice`: how the ledger, the journal and 0.2.0's records name this account's setting."""
        return setting_key(self.setting.name, self.region, self.on_behalf_of) if self.region else "?"

    @property
    def on_delete(self) -> str:
        mode = self.values.get("on_delete")
        return mode if isinstance(mode, str) else DEFAULT_ON_DELETE

    def desired_managed(self) -> list[str]:
        """The fields the program manages (from inputs): the provider's rule."""
        return self.provider.managed(self.values)

    def recorded_managed(self) -> list[str]:
        """The fields the resource managed at its last create or update (from outputs)."""
        return self.provider.recorded_managed(self.values)

    def held(self) -> dict[str, Any]:
        """The originals the resource holds (from outputs): what its give-back restores."""
        return self.provider.held(self.values)

    def ledger(self) -> dict[str, Any] | None:
        """The originals the ledger's entry gives a create or a newly managed field; None when not known yet."""
        entry = self.values.get(LEDGER_KEY)
        if entry is UNKNOWN or _has_unknown(entry):
            return None
        return ledger_originals(entry)

    def give_back(self) -> dict[str, Any]:
        """What its delete sets (before comparing with SendGrid's live values): the provider's rule."""
        return give_back_target(self.setting, self.on_delete, self.recorded_managed(), self.held())

    def live(self) -> dict[str, Any]:
        """Every field as SendGrid last answered (outputs)."""
        return {f.name: self.values.get(f.name) for f in self.setting.fields}


def _has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def recorded_setting(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """One setting resource as recorded (a resource of `pulumi stack export`, or a step's state, with its `urn`):
    the output's `state` entry; None for any other resource, or one without outputs yet. The managed fields and
    the originals are the provider's (`recorded_managed`, `held`)."""
    state = SettingState.of(str(resource.get("urn")), resource, "outputs")
    if state is None or not _part(resource, "outputs"):
        return None
    managed = state.recorded_managed()
    held = state.held()
    return {
        "resource": state.resource,
        "setting": state.setting.name,
        "account": state.account,
        "region": state.region,
        "on_behalf_of": state.on_behalf_of,
        "on_delete": state.on_delete,
        "values": {f.name: _json(state.values.get(f.name)) for f in state.setting.fields},
        "originals": {name: _json(held.get(name)) for name in managed},
        "managed_fields": managed,
    }


def _json(value: Any) -> Any:
    return None if value is UNKNOWN or _has_unknown(value) else value


def field_change(
    name: str, before: Any, after: Any, note: str | None = None, *, original: Any = UNKNOWN
) -> dict[str, Any]:
    """One field of a row: `before` and `after` are null when unknown (`*_known` false) or absent; `original`
    is the value the stack's give-back restores, where it is known."""
    return {
        "field": name,
        "before": _json(before),
        "after": _json(after),
        "before_known": before is not UNKNOWN,
        "after_known": after is not UNKNOWN,
        "original": _json(original),
        "original_known": original is not UNKNOWN,
        "note": note,
    }


def row(
    state: SettingState,
    action: str,
    effect: str,
    fields: list[dict[str, Any]],
    *,
    status: str,
    sends: str = "nothing",
    requests: list[dict[str, Any]] | None = None,
    note: str | None = None,
    replacement: dict[str, str] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One entry of the output's `changes`: one account's setting (see output.schema.json)."""
    return {
        "account": state.account,
        "region": state.region,
        "on_behalf_of": state.on_behalf_of,
        "setting": state.setting.name,
        "resource": state.resource,
        "action": action,
        "effect": effect,
        "status": status,
        "on_delete": state.on_delete,
        "sends": sends,
        "requests": requests or [],
        "fields": fields,
        "note": note,
        "replacement": replacement,
        "error": error,
    }


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


# -- what a step will send (preview, drift-check) ----------------------------------------------------


def taken_over(new: SettingState) -> tuple[list[dict[str, Any]], str, str | None]:
    """A create (or the new side of a replacement): the desired values; what SendGrid holds is read at deploy.

    The originals are shown where the ledger's entry is known (the account was read before: a failed create,
    a setting removed from the state). Returns (fields, sends, note)."""
    originals = new.ledger()
    fields = [
        field_change(
            name,
            UNKNOWN,
            new.values.get(name),
            original=originals[name] if originals is not None and name in originals else UNKNOWN,
        )
        for name in new.desired_managed()
    ]
    return fields, "unknown", CREATE_UNKNOWN


def updated(old: SettingState, new: SettingState) -> tuple[list[dict[str, Any]], str, str | None]:
    """An update: the PATCH's body is exact (`changes_to_send(managed values, recorded values)`), plus what
    changes without a request (fields newly managed or no longer managed, on_delete, the program's name)."""
    managed = new.desired_managed()
    body = changes_to_send({name: new.values.get(name) for name in managed}, old.live())
    was_managed = set(old.recorded_managed())
    held = old.held()
    ledger = new.ledger()
    fields = []
    for name in managed:
        if name in held:
            original: Any = held[name]
        elif ledger is not None and name in ledger:
            original = ledger[name]
        else:
            original = UNKNOWN
        before, after = old.values.get(name), new.values.get(name)
        if name not in was_managed:
            fields.append(field_change(name, before, after, "now managed: restored on delete", original=original))
        elif name in body:
            fields.append(field_change(name, before, after, original=original))
    for name in old.recorded_managed():
        if name not in managed:
            value = old.values.get(name)
            fields.append(field_change(name, value, value, "no longer managed: left as it is, not restored"))
    if old.on_delete != new.on_delete:
        fields.append(field_change("on_delete", old.on_delete, new.on_delete, "nothing is sent"))
    note = None
    if old.resource != new.resource:
        note = f"renamed from {old.resource}: nothing is sent for the name"
    sends = "unknown" if any(v is UNKNOWN for v in body.values()) else ("patch" if body else "nothing")
    return fields, sends, note


def given_back(old: SettingState) -> tuple[str, list[dict[str, Any]], str, str | None]:
    """A delete: (effect, fields recorded → target, sends, note), by the provider's `give_back_target`."""
    held = old.held()
    if old.retained:
        kept = [field_change(n, old.values.get(n), old.values.get(n)) for n in old.recorded_managed()]
        return "keep", kept, "nothing", "retain_on_delete: the stack forgets it, nothing is sent"
    target = old.give_back()
    if not target:
        kept = [field_change(n, old.values.get(n), old.values.get(n)) for n in old.recorded_managed()]
        return "keep", kept, "nothing", "keep: nothing is sent"
    fields = [
        field_change(name, old.values.get(name), value, original=held.get(name, UNKNOWN))
        for name, value in target.items()
    ]
    return old.on_delete, fields, "unknown", GIVE_BACK_UNKNOWN


@dataclass(frozen=True)
class Record:
    """A 0.2.0 adoption record, as its outputs have it."""

    urn: str
    setting: TrackingSetting
    region: str
    on_behalf_of: str | None
    values: dict[str, Any]

    @classmethod
    def of(cls, urn: str, state: Mapping[str, Any] | None) -> Record | None:
        if type_of(urn) != ADOPTION_TYPE or not state:
            return None
        values = _plain(_part(state, "outputs") or _part(state, "inputs"))
        setting, region = SETTINGS.get(str(values.get("setting"))), values.get("region")
        if setting is None or not isinstance(region, str):
            return None
        return cls(urn, setting, region, _text(values.get("on_behalf_of")), values)

    @property
    def key(self) -> str:
        return setting_key(self.setting.name, self.region, self.on_behalf_of)

    @property
    def state(self) -> SettingState:
        """As a setting of its account, for the row (the program's name is not known: the account's)."""
        values = {"region": self.region, "on_behalf_of": self.on_behalf_of, "on_delete": self.values.get("on_delete")}
        return SettingState(self.urn, BY_SETTING[self.setting.name], self.region, self.on_behalf_of, values)

    def give_back(self) -> dict[str, Any]:
        """AdoptionLogic.delete's target: from what the record observed at adoption (all such a state holds)."""
        managed = self.values.get("managed_fields") or ["enabled"]
        observed = self.values.get("observed")
        on_delete = _text(self.values.get("on_delete")) or DEFAULT_ON_DELETE
        return give_back_target(self.setting, on_delete, managed, observed if isinstance(observed, dict) else {})


RETIRED = "its 0.2.0 adoption record is retired: nothing sent"


def _retired_or_given_back(
    record: Record, declared: set[str], deleted: set[str]
) -> tuple[str, list[dict[str, Any]], str, str | None] | None:
    """None when the record retires sending nothing (AdoptionLogic.delete: its account is declared, or its
    setting gives it back in the run); else (effect, fields, sends, note) of its give-back from `observed`."""
    if record.key in declared or record.key in deleted:
        return None
    target = record.give_back()
    state = record.state
    if not target:
        return "keep", [], "nothing", "a 0.2.0 adoption record left behind, retired: keep, nothing is sent"
    fields = [field_change(name, UNKNOWN, value, original=value) for name, value in target.items()]
    note = "a 0.2.0 adoption record left behind by a failed give-back gives the account back from what it observed"
    return state.on_delete, fields, "unknown", _join(note, GIVE_BACK_UNKNOWN)


Step4 = tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]
"""(op, urn, old state, new state) of one step."""


def declared_keys(steps: Iterable[Step4]) -> set[str]:
    """The account settings the program declares in this run: the ledger's `accounts`, and every setting the
    run creates, updates or keeps."""
    keys: set[str] = set()
    for op, urn, _old, new in steps:
        if op in DELETES or op == "refresh":
            continue
        if type_of(urn) == LEDGER_TYPE:
            accounts = _part(new, "inputs").get("accounts")
            if isinstance(accounts, dict):
                keys.update(k for k in accounts if isinstance(k, str))
        state = SettingState.of(urn, new, "inputs")
        if state is not None and state.region:
            keys.add(state.key)
    return keys


def _deleted_keys(steps: Iterable[Step4]) -> set[str]:
    keys = set()
    for op, urn, old, _new in steps:
        state = SettingState.of(urn, old, "outputs")
        if op in (*DELETES, "replace") and state is not None and state.region:
            keys.add(state.key)
    return keys


def changed_fields(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fields of a row whose value changes (or may: an unknown before)."""
    return [f for f in entry["fields"] if not f["before_known"] or not f["after_known"] or f["before"] != f["after"]]


def plan(steps: Iterable[Step4]) -> tuple[list[dict[str, Any]], dict[str, int], list[dict[str, Any]]]:
    """A preview's steps → (rows, counts per action, settings as recorded). The ledger is never a row."""
    steps = list(steps)
    declared, deleted = declared_keys(steps), _deleted_keys(steps)
    rows: list[dict[str, Any]] = []
    counts = dict.fromkeys((*ACTIONS, "same"), 0)
    recorded: dict[str, dict[str, Any]] = {}  # by URN: a replacement's steps (create, replace, delete) share one
    retired: list[Record] = []
    for op, urn, old_state, new_state in steps:
        if op != "refresh" and old_state is not None and (entry := recorded_setting({**old_state, "urn": urn})):
            recorded.setdefault(urn, entry)
        record = Record.of(urn, old_state)
        if record is not None and op in DELETES:
            found = _retired_or_given_back(record, declared, deleted)
            if found is None:
                retired.append(record)
            else:
                effect, fields, sends, note = found
                rows.append(row(record.state, "delete", effect, fields, status="planned", sends=sends, note=note))
            continue
        old = SettingState.of(urn, old_state, "outputs")
        new = SettingState.of(urn, new_state, "inputs")
        if op == "same" and new is not None:
            counts["same"] += 1
        elif op == "create" and new is not None:
            fields, sends, note = taken_over(new)
            rows.append(row(new, "create", "set", fields, status="planned", sends=sends, note=note))
        elif op == "update" and old is not None and new is not None:
            fields, sends, note = updated(old, new)
            rows.append(row(new, "update", "set", fields, status="planned", sends=sends, note=note))
        elif op == "delete" and old is not None:
            effect, fields, sends, note = given_back(old)
            rows.append(row(old, "delete", effect, fields, status="planned", sends=sends, note=note))
        elif op == "replace" and old is not None and new is not None:
            rows.extend(replacement_rows(old, new))
    rows = _note_retired(rows, retired, "planned")
    return sorted(rows, key=_order), {**counts, **count(rows, "planned")}, by_account(recorded.values())


def _note_retired(rows: list[dict[str, Any]], records: list[Record], status: str) -> list[dict[str, Any]]:
    """A record retired sending nothing: a note on its account's row, or a row of its own."""
    by_key = {setting_key(r["setting"], str(r["region"]), r["on_behalf_of"]): r for r in rows if r["region"]}
    for record in records:
        entry = by_key.get(record.key)
        if entry is not None:
            entry["note"] = _join(entry["note"], RETIRED)
        else:
            rows.append(row(record.state, "delete", "unchanged", [], status=status, note=RETIRED))
    return rows


def replacement_rows(old: SettingState, new: SettingState) -> list[dict[str, Any]]:
    """A replacement (delete first): the old account given back, then the new one taken over."""
    pair = {"from": old.account, "to": new.account}
    effect, old_fields, old_sends, old_note = given_back(old)
    new_fields, new_sends, new_note = taken_over(new)
    return [
        row(new, "replace", "set", new_fields, status="planned", sends=new_sends, note=new_note, replacement=pair),
        row(old, "replace", effect, old_fields, status="planned", sends=old_sends, note=old_note, replacement=pair),
    ]


def by_account(states: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Settings in a stable order (the engine's varies): by account, setting, resource."""
    return sorted(states, key=lambda s: (str(s["account"]), s["setting"], str(s["resource"])))


def _order(entry: Mapping[str, Any]) -> tuple[str, str, int]:
    """Rows by account and setting (the engine's order varies); a replacement's old account after its new one."""
    pair = entry["replacement"]
    if pair:
        return (str(pair["to"]), entry["setting"], int(entry["account"] != pair["to"]))
    return (str(entry["account"]), entry["setting"], 0)


def count(rows: Iterable[Mapping[str, Any]], status: str) -> dict[str, int]:
    """Rows with `status` per action (a replacement once, by its new account), failed rows, and the PATCHes
    that reached SendGrid (`patches`: deploy only, from the journal)."""
    counts = dict.fromkeys((*ACTIONS, "failed", "patches"), 0)
    for entry in rows:
        counts["patches"] += len(entry["requests"])
        if entry["status"] in ("failed", "unknown"):
            counts["failed"] += 1
        elif (
            entry["status"] == status
            and entry["effect"] != "unchanged"
            and (entry["action"] != "replace" or (entry["replacement"] or {}).get("to") == entry["account"])
        ):
            counts[entry["action"]] += 1
    return counts


def request_text(entry: Mapping[str, Any]) -> str:
    """What a row sends, in words: `PATCH enabled (applied)`, `PATCH if SendGrid differs`, `none`."""
    if entry["requests"]:
        return "; ".join(f"PATCH {', '.join(sorted(r['fields']))} ({r['status']})" for r in entry["requests"])
    if entry["sends"] == "patch":
        return "PATCH " + ", ".join(f["field"] for f in entry["fields"] if f["field"] != "on_delete" and not f["note"])
    if entry["sends"] == "unknown":
        return "PATCH if SendGrid differs"
    return "none"


def describe_row(entry: Mapping[str, Any]) -> str:
    """`global/alice click: enabled true -> false` (for the human summary and Markdown details)."""
    shown = changed_fields(entry) or entry["fields"]
    text = ", ".join(
        f"{f['field']} {value(f['before'], f['before_known'])} -> {value(f['after'], f['after_known'])}"
        + (f" ({f['note']})" if f["note"] else "")
        for f in shown
    )
    effect = entry["effect"]
    if not text:
        line = f"{entry['account']} {entry['setting']}: {effect}"
    else:
        lead = {"set": "", "unchanged": "unchanged: "}.get(effect, f"{effect}: ")
        line = f"{entry['account']} {entry['setting']}: {lead}{text}"
    line += f" [sends: {request_text(entry)}]"
    if entry.get("note"):
        line += f"; {entry['note']}"
    return line


def value(raw: Any, known: bool = True, limit: int | None = None) -> str:
    """A value as JSON (`true`, `"text"`, `null`), `?` when unknown; cut to `limit` characters."""
    if not known:
        return "?"
    text = json.dumps(raw, ensure_ascii=False)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


# -- a deploy: what the provider sent (its journal) and what the engine's step events say was done ----------

STEP_EVENTS = {"resourcePreEvent": "started", "resOutputsEvent": "done", "resOpFailedEvent": "failed"}
JOURNAL_OPS = {
    "create": "take over",
    "create-replacement": "take over",
    "update": "update",
    "delete": "give back",
    "delete-replaced": "give back",
}
"""The journal's op for the PATCH each engine step may send."""


@dataclass
class Step:
    """One step of `pulumi up --json`, from its events: started, then done or failed."""

    op: str
    urn: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    status: str


def steps_of(events: Iterable[Mapping[str, Any]]) -> list[Step]:
    """The steps of a run in the order they started; each with the last state its events gave."""
    steps: dict[tuple[str, str], Step] = {}
    for event in events:
        for kind, status in STEP_EVENTS.items():
            if kind not in event:
                continue
            meta = event[kind].get("metadata") or {}
            key = (str(meta.get("op")), str(meta.get("urn")))
            step = steps.get(key)
            if step is None:
                steps[key] = Step(key[0], key[1], meta.get("old"), meta.get("new"), status)
            else:
                step.status = status if step.status != "failed" else "failed"
                step.old = meta.get("old") or step.old
                step.new = meta.get("new") or step.new
    return list(steps.values())


def _journal_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    region = str(entry.get("region"))
    return str(entry.get("op")), setting_key(str(entry.get("setting")), region, _text(entry.get("on_behalf_of")))


def sent(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One PATCH of the journal as a row's `requests` item."""
    return {
        "op": entry.get("op"),
        "fields": dict(entry.get("fields") or {}),
        "before": dict(entry.get("before") or {}),
        "after": entry.get("after") if isinstance(entry.get("after"), dict) else None,
        "status": entry.get("status") if entry.get("status") in ("applied", "failed", "unknown") else "unknown",
        "error": _text(entry.get("error")),
    }


def _sent_fields(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields the PATCHes changed (or tried to): before as SendGrid held it, after as it holds it now
    (applied: as re-read or answered; failed: unchanged; unknown: `?`)."""
    fields: dict[str, dict[str, Any]] = {}
    for request in requests:
        for name, wanted in request["fields"].items():
            before = request["before"].get(name)
            after: Any
            if request["status"] == "unknown":
                after = UNKNOWN
            elif request["after"] is not None:
                after = request["after"].get(name)
            else:
                after = before  # refused: nothing changed
            note = None
            if request["status"] == "failed":
                note = f"not changed: the PATCH of {value(wanted)} failed"
            elif request["status"] == "unknown":
                note = f"outcome unknown: a PATCH of {value(wanted)} was sent"
            elif not same(after, wanted):
                note = f"SendGrid answered {value(after)} to a PATCH of {value(wanted)}"
            fields.setdefault(name, field_change(name, before, after, note))
            fields[name].update(field_change(name, fields[name]["before"], after, note))
    return list(fields.values())


def _status(step: Step, requests: list[dict[str, Any]]) -> str:
    """The row's status: the journal's word wins for a PATCH (failed, or unknown when never settled)."""
    statuses = {r["status"] for r in requests}
    if "unknown" in statuses:
        return "unknown"
    if "failed" in statuses and "applied" not in statuses:
        return "failed"
    return {"started": "unfinished"}.get(step.status, step.status)


def applied(
    steps: list[Step], errors_by_urn: Mapping[str, dict[str, Any]], journal: Iterable[Mapping[str, Any]] = ()
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A deploy's steps and the provider's journal → (rows, counts of what was done).

    Every PATCH of the journal is in exactly one row (a PATCH no step claims gets a row of its own). A step
    with no PATCH sent nothing. A row is done only when the engine reported the step's outputs; failed when
    it reported the failure or the journal says the PATCH failed; unknown when the PATCH never settled.
    """
    pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in journal:
        pending.setdefault(_journal_key(entry), []).append(sent(entry))
    plain = [(s.op, s.urn, s.old, s.new) for s in steps]
    declared, deleted = declared_keys(plain), _deleted_keys(plain)
    counts = dict.fromkeys((*ACTIONS, "same", "failed"), 0)
    rows: list[dict[str, Any]] = []
    retired: list[Record] = []
    replaced = {s.urn: s for s in steps if s.op == "delete-replaced"}
    replacing = {s.urn: s for s in steps if s.op == "create-replacement"}
    records = [s for s in steps if Record.of(s.urn, s.old) is not None and s.op in DELETES]
    for step in steps:
        if any(step is r for r in records) or step.op == "refresh" or type_of(step.urn) not in PROVIDERS:
            continue
        old = SettingState.of(step.urn, step.old, "outputs")
        new = SettingState.of(step.urn, step.new, "inputs")
        error = errors_by_urn.get(step.urn) if step.status == "failed" else None
        if step.op == "same":
            counts["same"] += 1
            continue
        state = old if step.op in DELETES else new
        if state is None or step.op not in JOURNAL_OPS:
            continue
        requests = pending.pop((JOURNAL_OPS[step.op], state.key), [])
        status = _status(step, requests)
        pair = None
        if step.op == "create-replacement" and step.urn in replaced:
            gone = SettingState.of(step.urn, replaced[step.urn].old, "outputs")
            pair = {"from": gone.account if gone else "?", "to": state.account}
        elif step.op == "delete-replaced":
            taking = SettingState.of(step.urn, (replacing.get(step.urn) or step).new, "inputs")
            pair = {"from": state.account, "to": taking.account if taking else "?"}
        action = (
            "replace" if pair else {"create-replacement": "create", "delete-replaced": "delete"}.get(step.op, step.op)
        )
        if error is None and status in ("failed", "unknown"):
            error = _journal_error(state, requests)
        if step.op in DELETES:
            effect, fields, note = _given_back_done(state, step, requests)
        else:
            effect, (fields, note) = "set", _set_done(step, old, state, requests)
        rows.append(
            row(
                state,
                action,
                effect,
                fields,
                status=status,
                sends="patch" if requests else "nothing",
                requests=requests,
                note=note,
                replacement=pair,
                error=error,
            )
        )
    for step in records:
        record = Record.of(step.urn, step.old)
        assert record is not None  # listed above
        requests = pending.pop(("give back", record.key), [])
        if not requests and _retired_or_given_back(record, declared, deleted) is None and step.status != "failed":
            retired.append(record)
            continue
        status = _status(step, requests)
        error = errors_by_urn.get(step.urn) if step.status == "failed" else None
        if error is None and status in ("failed", "unknown"):
            error = _journal_error(record.state, requests)
        mode = _text(record.values.get("on_delete")) or DEFAULT_ON_DELETE
        note = "a 0.2.0 adoption record left behind gave the account back from what it observed"
        fields = _sent_fields(requests)
        if not requests:
            note = "a 0.2.0 adoption record retired" + (
                ": no request, SendGrid held the target" if step.status == "done" else ""
            )
        rows.append(
            row(
                record.state,
                "delete",
                mode if requests or record.give_back() else "keep",
                fields,
                status=status,
                sends="patch" if requests else "nothing",
                requests=requests,
                note=note,
                error=error,
            )
        )
    for (op, key), requests in pending.items():  # PATCHes no step claims (the run's events were cut short)
        rows.append(_orphan(op, key, requests))
    rows = _note_retired(rows, retired, "done")
    rows.sort(key=_order)
    return rows, {**counts, **count(rows, "done")}


def _journal_error(state: SettingState, requests: list[dict[str, Any]]) -> dict[str, Any] | None:
    from .messages import error, split_hint  # noqa: PLC0415 - report.py stays free of the CLI's modules at import

    for request in requests:
        if request["error"]:
            message, hint = split_hint(" ".join(request["error"].split()))
            return error(
                "sendgrid",
                message,
                hint or "run pipelines/deploy again: it reads SendGrid first and converges",
                resource=state.resource,
                setting=state.setting.name,
                account=state.account,
            )
    return None


def _set_done(
    step: Step, old: SettingState | None, new: SettingState, requests: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str | None]:
    """A create's or update's fields: the PATCH's own before and after; without one, what changed without a
    request (newly managed fields, on_delete) and that SendGrid already held the values."""
    if requests:
        fields = _sent_fields(requests)
        if old is not None and step.op == "update":
            planned, _, note = updated(old, new)
            sent_names = {f["field"] for f in fields}
            fields += [f for f in planned if f["field"] not in sent_names and f["note"]]
            return fields, note
        return fields, None
    answered = SettingState.of(step.urn, step.new, "outputs") if step.status == "done" else None
    if step.op == "update" and old is not None:
        planned, _, note = updated(old, new)
        return [f for f in planned if f["note"]], _join(note, "no request" if step.status == "done" else None)
    if answered is None:
        return [field_change(n, UNKNOWN, new.values.get(n)) for n in new.desired_managed()], None
    held = answered.held()
    fields = [
        field_change(n, answered.values.get(n), answered.values.get(n), original=held.get(n, UNKNOWN))
        for n in new.desired_managed()
    ]
    return fields, "no request: SendGrid already held these values"


def _given_back_done(
    old: SettingState, step: Step, requests: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]], str | None]:
    effect, planned, sends, note = given_back(old)
    if requests:
        return effect, _sent_fields(requests), None
    if sends == "nothing":
        return effect, planned, note
    if step.status != "done":
        return effect, planned, None
    held = old.held()
    fields = [field_change(n, v, v, original=held.get(n, UNKNOWN)) for n, v in old.give_back().items()]
    return effect, fields, "no request: SendGrid already held these values"


def _orphan(op: str, key: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """A PATCH of the journal that no step event claims: reported all the same."""
    kind, region, who = split_setting_key(key)
    provider = BY_SETTING.get(kind, ClickTrackingProvider)
    account = {"region": region, "on_behalf_of": who}
    state = SettingState(f"::{resource_id(region, who)}", provider, region, who, account)
    action = {"take over": "create", "update": "update"}.get(op, "delete")
    statuses = {r["status"] for r in requests}
    status = "unknown" if "unknown" in statuses else ("failed" if statuses == {"failed"} else "done")
    note = "sent by a step whose outcome the engine did not report"
    fields = _sent_fields(requests)
    return row(
        state,
        action,
        "set" if action != "delete" else "restore",
        fields,
        status=status,
        sends="patch",
        requests=requests,
        note=note,
        error=_journal_error(state, requests) if status != "done" else None,
    )


# -- a drift check: the refresh's reads against the state and the program ---------------------------


def drifted(
    steps: list[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A `preview --refresh`'s steps → (drift per account, setting and field; the settings as read live).

    Drift: a managed field whose live value differs from the recorded one and from the desired one.
    Live equal to desired is not drift (the next deploy records it); a change of the program alone is
    a pending change, not drift.
    """
    desired: dict[str, SettingState] = {}
    removed = {urn for op, urn, _old, _new in steps if op in ("delete", "delete-replaced")}
    for op, urn, _old, new in steps:
        if op not in ("refresh", "delete", "delete-replaced"):
            state = SettingState.of(urn, new, "inputs")
            if state is not None:
                desired[urn] = state
    entries: list[dict[str, Any]] = []
    live_states: list[dict[str, Any]] = []
    # A refresh step of `preview --refresh --json` has the recorded state as its old one and the program's
    # inputs as its new one; the state the refresh read is the old state of the resource's next step
    # (`same` included, with --show-sames).
    after_refresh = {urn: old for op, urn, old, _new in steps if op != "refresh" and old is not None}
    for op, urn, old, new in steps:
        if op != "refresh":
            continue
        recorded = SettingState.of(urn, old, "outputs")
        now_held = after_refresh.get(urn) or new
        live = SettingState.of(urn, now_held, "outputs")
        if recorded is None or live is None or now_held is None:
            continue
        described = recorded_setting({**now_held, "urn": urn}) or recorded_setting(
            {"outputs": _part(now_held, "inputs"), "urn": urn}
        )
        if described is not None:
            live_states.append(described)
        want = desired.get(urn)
        for name in recorded.recorded_managed():
            was, now = recorded.values.get(name), live.values.get(name)
            if was == now:
                continue
            note = None
            target: Any = None
            if want is None and urn not in removed:
                continue  # no step after the refresh: the program wants what is live (the next deploy records it)
            if want is None:
                note = "removed from the program: the next deploy gives it back"
            elif want.key != recorded.key:
                note = f"the program moves this setting to {want.account}"
            elif name not in want.desired_managed():
                note = "no longer managed by the program"
            else:
                target = want.values.get(name)
                if target == now:
                    continue  # live already as desired: the next deploy records it
            entries.append(
                {
                    "account": recorded.account,
                    "region": recorded.region,
                    "on_behalf_of": recorded.on_behalf_of,
                    "setting": recorded.setting.name,
                    "resource": recorded.resource,
                    "field": name,
                    "recorded": _json(was),
                    "live": _json(now),
                    "desired": _json(target),
                    "note": note,
                }
            )
    entries.sort(key=lambda d: (d["account"], d["setting"], d["field"]))
    return entries, by_account(live_states)
