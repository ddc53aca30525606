"""What a run does to each account's setting, from the engine's steps: rows per account, setting and field.

The engine speaks of resources; users speak of accounts. Every setting resource (type
`pulumi-python:dynamic/sendgrid:<ClickTracking|OpenTracking|SubscriptionTracking|GoogleAnalytics>`) is one
setting of one account, named here by its `region` and `on_behalf_of` inputs or outputs, never by its
resource name. Adoption records (type `...:Adoption`) are not changes a user makes: they only tell what an
account held before the stack took it over (`observed`), which a create's "before" uses when it is known.

A delete (and the old side of a replacement) is described by what the provider will do (singleton.py):
nothing when another declared resource manages the same account's setting in the run (a hand-over);
otherwise per `on_delete`: restore each managed field to its `original_<field>` (a field without an
original stays as it is), keep everything, or disable (`enabled` false).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_sendgrid_tracking.inputs import DEFAULT_ON_DELETE, resource_id
from pulumi_sendgrid_tracking.tracking import SETTINGS, TrackingSetting

TYPE_PREFIX = "pulumi-python:dynamic/sendgrid:"
ADOPTION_TYPE = f"{TYPE_PREFIX}Adoption"
SETTING_TYPES: Mapping[str, TrackingSetting] = {f"{TYPE_PREFIX}{s.resource}": s for s in SETTINGS.values()}
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How `pulumi preview --json` writes a value not known until the deploy."""
MANAGED_KEY = "managed_fields"
ACTIONS = ("create", "update", "delete", "replace")


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
    return UNKNOWN if value == UNKNOWN_SENTINEL else value


def _part(state: Mapping[str, Any] | None, part: str) -> dict[str, Any]:
    values = (state or {}).get(part)
    return dict(values) if isinstance(values, Mapping) else {}


@dataclass(frozen=True)
class SettingState:
    """One setting resource as one state (old or new) of a step has it."""

    urn: str
    setting: TrackingSetting
    region: str | None
    on_behalf_of: str | None
    values: dict[str, Any]
    """Inputs for a desired state, outputs for a recorded one."""

    @classmethod
    def of(cls, urn: str, state: Mapping[str, Any] | None, part: str) -> SettingState | None:
        setting = SETTING_TYPES.get(type_of(urn))
        if setting is None or not state:
            return None
        values = {k: _plain(v) for k, v in _part(state, part).items()}
        if part == "outputs" and not values:
            values = {k: _plain(v) for k, v in _part(state, "inputs").items()}
        region, who = values.get("region"), values.get("on_behalf_of")
        return cls(
            urn,
            setting,
            region if isinstance(region, str) else None,
            who if isinstance(who, str) else None,
            values,
        )

    @property
    def resource(self) -> str:
        return name_of(self.urn)

    @property
    def account(self) -> str:
        return resource_id(self.region, self.on_behalf_of) if self.region else "?"

    @property
    def key(self) -> tuple[str, str]:
        return (self.setting.name, self.account)

    @property
    def on_delete(self) -> str:
        mode = self.values.get("on_delete")
        return mode if isinstance(mode, str) else DEFAULT_ON_DELETE

    def desired_managed(self) -> list[str]:
        """The fields a program gives (from inputs): `enabled` always, the optional ones when set."""
        return [f.name for f in self.setting.writable if f.required or self.values.get(f.name) is not None]

    def recorded_managed(self) -> list[str]:
        """The fields the resource managed at its last create or update (from outputs)."""
        recorded = self.values.get(MANAGED_KEY)
        if isinstance(recorded, list):
            return [name for name in recorded if isinstance(name, str)]
        return [f.name for f in self.setting.writable if f.required]

    def original(self, name: str) -> Any:
        return self.values.get(f"original_{name}")


def recorded_setting(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """One setting resource as recorded (a resource of `pulumi stack export`, or a step's state, with its `urn`):
    the output's `state` entry; None for any other resource, or one without outputs yet.

    Everything comes from the setting resource's own outputs, by these names: `region` and `on_behalf_of`
    (the account), `on_delete`, each of the setting's fields (the values SendGrid last answered),
    `managed_fields` (absent: the required fields, `enabled`), and `original_<field>` per managed field
    (what restore puts back).
    """
    urn = str(resource.get("urn"))
    setting = SETTING_TYPES.get(type_of(urn))
    outputs = _part(resource, "outputs")
    if setting is None or not outputs:
        return None
    region, who, mode = outputs.get("region"), outputs.get("on_behalf_of"), outputs.get("on_delete")
    region = region if isinstance(region, str) else None
    who = who if isinstance(who, str) else None
    recorded = outputs.get(MANAGED_KEY)
    managed = (
        [name for name in recorded if isinstance(name, str)]
        if isinstance(recorded, list)
        else [f.name for f in setting.writable if f.required]
    )
    return {
        "resource": name_of(urn),
        "setting": setting.name,
        "account": resource_id(region, who) if region else "?",
        "region": region,
        "on_behalf_of": who,
        "on_delete": mode if isinstance(mode, str) else DEFAULT_ON_DELETE,
        "values": {f.name: _json(_plain(outputs.get(f.name))) for f in setting.fields},
        "originals": {name: _json(_plain(outputs.get(f"original_{name}"))) for name in managed},
        "managed_fields": managed,
    }


def _json(value: Any) -> Any:
    return None if value is UNKNOWN else value


def field_change(name: str, before: Any, after: Any, note: str | None = None) -> dict[str, Any]:
    """One field of a row: `before` and `after` are null when unknown (`*_known` false) or absent."""
    return {
        "field": name,
        "before": _json(before),
        "after": _json(after),
        "before_known": before is not UNKNOWN,
        "after_known": after is not UNKNOWN,
        "note": note,
    }


@dataclass
class Context:
    """What the whole run tells about each account's setting: who will manage it, what was there."""

    claims: dict[tuple[str, str], str] = field(default_factory=dict)
    """(setting, account) → the resource that manages it after the run."""
    recorded: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(setting, account) → the values a setting resource in the state recorded for it."""
    observed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(setting, account) → an adoption record's `observed` (what was there before the stack)."""

    @classmethod
    def of(cls, steps: Iterable[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]]) -> Context:
        """From (op, urn, old state, new state) of every step of the run."""
        context = cls()
        for op, urn, old, new in steps:
            if type_of(urn) == ADOPTION_TYPE:
                outputs = _part(old, "outputs")
                observed, region = outputs.get("observed"), outputs.get("region")
                if isinstance(observed, dict) and isinstance(outputs.get("setting"), str) and isinstance(region, str):
                    who = outputs.get("on_behalf_of")
                    key = (outputs["setting"], resource_id(region, who if isinstance(who, str) else None))
                    context.observed[key] = observed
                continue
            if op == "refresh":
                continue  # a refresh's old state is from before it read SendGrid; the steps after it have the live one
            if op not in ("delete", "delete-replaced", "discard"):
                desired = SettingState.of(urn, new, "inputs")
                if desired is not None and desired.region:
                    context.claims.setdefault(desired.key, desired.resource)
            recorded = SettingState.of(urn, old, "outputs")
            if recorded is not None and recorded.region:
                context.recorded.setdefault(recorded.key, recorded.values)
        return context

    def before(self, key: tuple[str, str], name: str) -> Any:
        """What the account's field holds before the run, as far as the state knows; UNKNOWN otherwise."""
        if key in self.recorded and name in self.recorded[key]:
            return self.recorded[key][name]
        if key in self.observed and name in self.observed[key]:
            return self.observed[key][name]
        return UNKNOWN


def row(
    state: SettingState,
    action: str,
    effect: str,
    fields: list[dict[str, Any]],
    *,
    status: str,
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
        "fields": fields,
        "note": note,
        "replacement": replacement,
        "error": error,
    }


def taken_over(new: SettingState, context: Context) -> list[dict[str, Any]]:
    """The fields a create (or the new side of a replacement) sets: before (when known) → desired."""
    return [field_change(name, context.before(new.key, name), new.values.get(name)) for name in new.desired_managed()]


def updated(old: SettingState, new: SettingState) -> list[dict[str, Any]]:
    """The fields an update changes (recorded → desired), newly managed or no longer managed, and on_delete."""
    changes = []
    was_managed = set(old.recorded_managed())
    for name in new.desired_managed():
        before, after = old.values.get(name), new.values.get(name)
        if name not in was_managed:
            changes.append(field_change(name, before, after, "now managed: restored to this value on delete"))
        elif before != after:
            changes.append(field_change(name, before, after))
    for name in old.recorded_managed():
        if name not in new.desired_managed():
            value = old.values.get(name)
            changes.append(field_change(name, value, value, "no longer managed: left as it is, not restored"))
    if old.on_delete != new.on_delete:
        changes.append(field_change("on_delete", old.on_delete, new.on_delete))
    return changes


def released(old: SettingState, context: Context) -> tuple[str, list[dict[str, Any]], str | None]:
    """What a delete does to the account: (effect, fields before → after, note)."""
    owner = context.claims.get(old.key)
    managed = old.recorded_managed()
    if owner is not None:
        unchanged = [field_change(name, old.values.get(name), old.values.get(name)) for name in managed]
        return "handover", unchanged, f"managed by {owner} from now on: nothing is sent"
    mode = old.on_delete
    fields = []
    for name in managed:
        before = old.values.get(name)
        if mode == "disable" and name == "enabled":
            fields.append(field_change(name, before, False))
        elif mode == "restore":
            original = old.original(name)
            if original is None and name == "enabled":
                fields.append(field_change(name, before, before, "no original recorded: left as it is"))
            elif original is None:
                # Absent before the stack set it (no url yet): restore clears it with "".
                fields.append(field_change(name, before, "", "absent before: cleared"))
            else:
                fields.append(field_change(name, before, original))
        else:
            fields.append(field_change(name, before, before))
    return mode, fields, None


def changed_fields(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fields of a row whose value changes (or may: an unknown before)."""
    return [f for f in entry["fields"] if not f["before_known"] or not f["after_known"] or f["before"] != f["after"]]


def plan(
    steps: Iterable[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> tuple[list[dict[str, Any]], dict[str, int], list[dict[str, Any]]]:
    """A preview's steps → (rows, counts per action, settings as recorded). Adoption records are not rows."""
    steps = list(steps)
    context = Context.of(steps)
    rows: list[dict[str, Any]] = []
    counts = dict.fromkeys((*ACTIONS, "same"), 0)
    recorded: list[dict[str, Any]] = []
    for op, urn, old_state, new_state in steps:
        old = SettingState.of(urn, old_state, "outputs")
        new = SettingState.of(urn, new_state, "inputs")
        if op != "refresh" and old_state is not None and (entry := recorded_setting({**old_state, "urn": urn})):
            recorded.append(entry)
        if op == "same" and new is not None:
            counts["same"] += 1
        elif op == "create" and new is not None:
            rows.append(row(new, "create", "set", taken_over(new, context), status="planned"))
        elif op == "update" and old is not None and new is not None:
            rows.append(row(new, "update", "set", updated(old, new), status="planned"))
        elif op == "delete" and old is not None:
            effect, fields, note = released(old, context)
            rows.append(row(old, "delete", effect, fields, status="planned", note=note))
        elif op == "replace" and old is not None and new is not None:
            rows.extend(replacement_rows(old, new, context, new_status="planned", old_status="planned"))
    rows = merge_handovers(rows)
    return rows, {**counts, **count(rows, "planned")}, by_account(recorded)


def by_account(states: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Settings in a stable order (the engine's varies): by account, setting, resource."""
    return sorted(states, key=lambda s: (str(s["account"]), s["setting"], s["resource"]))


def merge_handovers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per account and setting: a delete that hands the account to a resource created in the same
    run (a rename without an alias) becomes a note on that resource's row."""
    taking = {
        (r["account"], r["setting"]): r
        for r in rows
        if r["effect"] == "set" and r["action"] in ("create", "replace") and r["resource"]
    }
    kept = []
    for entry in rows:
        heir = taking.get((entry["account"], entry["setting"]))
        if entry["effect"] == "handover" and entry["action"] == "delete" and heir is not None:
            taken = f"takes over from {entry['resource']}, which leaves the stack without restoring anything"
            heir["note"] = f"{heir['note']}; {taken}" if heir["note"] else taken
            continue
        kept.append(entry)
    return sorted(kept, key=_order)


def _order(entry: Mapping[str, Any]) -> tuple[str, str, int]:
    """Rows by account and setting (the engine's order varies); a replacement's old account after its new one."""
    pair = entry["replacement"]
    if pair:
        return (str(pair["to"]), entry["setting"], int(entry["account"] != pair["to"]))
    return (str(entry["account"]), entry["setting"], 0)


def count(rows: Iterable[Mapping[str, Any]], status: str) -> dict[str, int]:
    """Rows with `status` per action (a replacement once, by its new account), and failed rows."""
    counts = dict.fromkeys((*ACTIONS, "failed"), 0)
    for entry in rows:
        if entry["status"] == "failed":
            counts["failed"] += 1
        elif entry["status"] == status and (
            entry["action"] != "replace" or (entry["replacement"] or {}).get("to") == entry["account"]
        ):
            counts[entry["action"]] += 1
    return counts


def replacement_rows(
    old: SettingState,
    new: SettingState | None,
    context: Context,
    *,
    new_status: str | None,
    old_status: str,
    old_note: str | None = None,
    new_error: dict[str, Any] | None = None,
    old_error: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The two accounts of a replacement: the new one set (create first), then the old one released."""
    pair = {"from": old.account, "to": new.account if new else "?"}
    rows = []
    if new is not None and new_status is not None:
        rows.append(
            row(new, "replace", "set", taken_over(new, context), status=new_status, replacement=pair, error=new_error)
        )
    if old_status == "skipped":
        kept = [field_change(name, old.values.get(name), old.values.get(name)) for name in old.recorded_managed()]
        rows.append(row(old, "replace", "unchanged", kept, status="skipped", note=old_note, replacement=pair))
    else:
        effect, fields, note = released(old, context)
        rows.append(
            row(
                old,
                "replace",
                effect,
                fields,
                status=old_status,
                note=old_note or note,
                replacement=pair,
                error=old_error,
            )
        )
    return rows


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


# -- a deploy: what the engine's step events say was done ----------------------------------------

STEP_EVENTS = {"resourcePreEvent": "started", "resOutputsEvent": "done", "resOpFailedEvent": "failed"}


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


def applied(
    steps: list[Step], errors_by_urn: Mapping[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A deploy's steps → (rows with status done / failed / skipped / unfinished, counts of what was done).

    A step is done only when the engine reported its outputs; failed when it reported the failure.
    The old account of a replacement whose create failed was not touched: it is `skipped`.
    """
    context = Context.of((s.op, s.urn, s.old, s.new) for s in steps)
    counts = dict.fromkeys((*ACTIONS, "same", "failed"), 0)
    rows: list[dict[str, Any]] = []
    by_key = {(s.op, s.urn): s for s in steps}
    status_of = {"started": "unfinished"}

    def status(step: Step) -> str:
        return status_of.get(step.status, step.status)

    for step in steps:
        error = errors_by_urn.get(step.urn) if step.status == "failed" else None
        if type_of(step.urn) == ADOPTION_TYPE:
            if step.status == "failed":
                rows.append(_unreadable(step, error))
            continue
        old = SettingState.of(step.urn, step.old, "outputs")
        new = SettingState.of(step.urn, step.new, "inputs")
        if step.op == "same" and new is not None:
            counts["same"] += 1
        elif step.op == "create" and new is not None:
            state = status(step)
            rows.append(row(new, "create", "set", _created(step, new, context), status=state, error=error))
        elif step.op == "update" and old is not None and new is not None:
            state = status(step)
            rows.append(row(new, "update", "set", updated(old, new), status=state, error=error))
        elif step.op == "delete" and old is not None:
            state = status(step)
            effect, fields, note = released(old, context)
            rows.append(row(old, "delete", effect, fields, status=state, note=note, error=error))
        elif step.op == "create-replacement" and new is not None:
            rows.extend(_replaced(step, new, by_key.get(("delete-replaced", step.urn)), context, errors_by_urn, status))
    rows = merge_handovers(rows)
    return rows, {**counts, **count(rows, "done")}


def _created(step: Step, new: SettingState, context: Context) -> list[dict[str, Any]]:
    """A create's fields: before from the state (or the originals the create found), after as answered."""
    answered = SettingState.of(step.urn, step.new, "outputs") if step.status == "done" else None
    fields = []
    for name in new.desired_managed():
        before = context.before(new.key, name)
        if before is UNKNOWN and answered is not None:
            before = answered.original(name)
        after = answered.values.get(name) if answered is not None else new.values.get(name)
        fields.append(field_change(name, before, after))
    return fields


def _replaced(
    create: Step,
    new: SettingState,
    delete: Step | None,
    context: Context,
    errors_by_urn: Mapping[str, dict[str, Any]],
    status: Callable[[Step], str],
) -> list[dict[str, Any]]:
    old = SettingState.of(create.urn, create.old, "outputs")
    if old is None:
        return []
    new_status = status(create)
    new_row = replacement_rows(old, new, context, new_status=new_status, old_status="skipped")[0]
    new_row["fields"] = _created(create, new, context)
    if create.status == "failed":
        new_row["error"] = errors_by_urn.get(create.urn)
        note = (
            f"the new account could not be taken over, so nothing was done to this one: {old.resource} still manages it"
        )
        return [new_row, *replacement_rows(old, None, context, new_status=None, old_status="skipped", old_note=note)]
    if delete is None:
        note = "not reached (the run stopped first): the next deploy releases it"
        return [new_row, *replacement_rows(old, None, context, new_status=None, old_status="skipped", old_note=note)]
    old_status = status(delete)
    error = errors_by_urn.get(delete.urn) if delete.status == "failed" else None
    old_rows = replacement_rows(old, None, context, new_status=None, old_status=old_status, old_error=error)
    for entry in old_rows:
        entry["replacement"] = {"from": old.account, "to": new.account}
    return [new_row, *old_rows]


def _unreadable(step: Step, error: dict[str, Any] | None) -> dict[str, Any]:
    """A failed adoption record: reading the account before taking it over, or giving it back, failed."""
    giving_back = step.op in ("delete", "delete-replaced")
    inputs = _part(step.old if giving_back else step.new, "outputs" if giving_back else "inputs")
    setting = SETTINGS.get(str(inputs.get("setting")))
    region, who = inputs.get("region"), inputs.get("on_behalf_of")
    account = resource_id(str(region), who if isinstance(who, str) else None) if region else "?"
    return {
        "account": account,
        "region": region if isinstance(region, str) else None,
        "on_behalf_of": who if isinstance(who, str) else None,
        "setting": setting.name if setting else str(inputs.get("setting")),
        "resource": None,
        "action": "delete" if giving_back else "create",
        "effect": "unchanged",
        "status": "failed",
        "on_delete": inputs.get("on_delete") if giving_back else None,
        "fields": [],
        "note": (
            "giving the account back failed: it keeps the stack's values, and the next run retries"
            if giving_back
            else "reading the setting before taking it over failed: nothing was changed for this account"
        ),
        "replacement": None,
        "error": error,
    }


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
    for op, urn, old, _new in steps:
        if op != "refresh":
            continue
        recorded = SettingState.of(urn, old, "outputs")
        read = after_refresh.get(urn)
        live = SettingState.of(urn, read, "outputs")
        if recorded is None or live is None or read is None:
            continue
        live_states.append(recorded_setting({**read, "urn": urn}) or {})
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
                note = "removed from the program: the next deploy releases it"
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
