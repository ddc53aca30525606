"""One ResourceProvider for every tracking setting, bound to a TrackingSetting description, and the ledger.

Methods follow the SDK's order: check, diff, create, read, update, delete (configure first).
Every handler: load inputs, stop on error, call the API, save what the API answered.

One engine resource per account setting, plus one per stack (docs/behaviour.md, "Originals"):

- the *setting* (`SettingProvider`) is named by its account (`global/alice`, `eu`, `global/account-id x1`),
  whatever the program calls it, so the engine itself refuses two owners, and renaming it in the program
  is no change at all. It sends the changes, records what SendGrid answered, and holds the
  *originals* of the fields it manages: the values SendGrid held just before this stack first took each
  field over. Its delete gives the account back from those originals (restore, keep or disable).
- the stack's *originals ledger* (`OriginalsLogic`, one resource named `originals`) is declared once per
  stack, after the program has declared every setting, and every setting depends on it. When the program
  takes over a new account or field, the ledger reads it (in parallel, within the rate budget) and the
  engine checkpoints the ledger before any setting's create or update of the run starts: so an original
  is in the state before any request that changes that field is sent, and a run cut off after a PATCH
  never records a value it wrote as an original. A setting copies its originals from the ledger's entry
  (an input, so the coupling is visible) and, once it holds a field's original, keeps its own.

Nothing that must survive an interruption lives in process memory: `RUN` holds only hints of this run
(values the ledger read moments ago, which save one GET) and what retiring 0.2.0's adoption records needs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from . import config as config_mod
from . import journal
from .errors import (
    AccountGoneError,
    ConfigurationError,
    MalformedResponseError,
    PermissionDeniedError,
    RateLimitError,
    SendGridError,
    ServerError,
    TransportError,
)
from .inputs import (
    DEFAULT_ON_DELETE,
    describe_account,
    on_behalf_of_problem,
    on_delete_problem,
    region_problem,
    resource_id,
    setting_key,
    split_setting_key,
)
from .tracking import SETTING_TYPES, SETTINGS, TrackingSetting

if TYPE_CHECKING:
    # Imported when the first request is sent (`_client`): requests and urllib3 take longer to import than
    # the rest of the package, and neither the program nor a preview's provider sends a request.
    from .client import SendGridClient

log = logging.getLogger(__name__)

PROVIDER_KEY = "__provider"
ACCOUNT_KEYS = ("on_behalf_of", "region")
"""A change to these is another account: a replacement (only an alias can bring one about)."""
LEDGER_KEY = "ledger"
"""The setting's input that carries its account's entry in the stack's originals ledger."""
ORIGINALS_KEY = "originals"
"""The setting's output holding its originals: field → value (a value SendGrid left out, null, is left out)."""
HELD_KEY = "held_fields"
"""The setting's output naming the fields it holds an original of (the state drops nulls from a mapping)."""
MANAGED_KEY = "managed_fields"
"""Output: which fields this resource manages."""
NAME_KEY = "name"
"""The program's name for the resource (the engine's name is the account)."""
GIVEN_KEY = "__given"
"""Not stored: the optional fields the program gave as Outputs, so one that resolved to None is refused."""
PROVIDER_MODULE = b"pulumi_sendgrid_tracking.providers"
LEDGER_READERS = 8
"""How many accounts the ledger reads at once (the shared pacer still bounds the rate)."""

UNRECORDED_HINT = (
    "run `pulumi up` without --target/--exclude (or add the ledger to them: "
    "--target 'urn:pulumi:<stack>::<project>::pulumi-python:dynamic/sendgrid:Originals::originals')"
)


def _is_unknown(value: Any) -> bool:
    return isinstance(value, pulumi.output.Unknown)


def same(live: Any, wanted: Any) -> bool:
    """Whether SendGrid already holds `wanted`. A string field SendGrid leaves out of its answer (no `url`
    yet) holds the empty string: `""` is how a program clears it, and that is what it reads back as."""
    if isinstance(wanted, str) and live is None:
        return wanted == ""
    return bool(live == wanted)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _managed(spec: Any) -> list[str]:
    """The managed fields of a ledger's account (`accounts[key]`: their names; an earlier 0.3.0 ledger's
    mapping keeps them under `managed`)."""
    managed = spec if isinstance(spec, list) else _mapping(spec).get("managed")
    return [name for name in managed if isinstance(name, str)] if isinstance(managed, list) else []


def pack_originals(held: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Originals as the state keeps them: the values (nulls left out, as the state drops them) and the names."""
    return {name: value for name, value in held.items() if value is not None}, sorted(held)


def unpack_originals(values: Any, names: Any) -> dict[str, Any] | None:
    """The originals from their two state parts; None when there are none in that form."""
    if not isinstance(names, list):
        return None
    values = _mapping(values)
    return {name: values.get(name) for name in names if isinstance(name, str)}


def ledger_entry(value: Any) -> dict[str, Any] | None:
    """One entry of the ledger: {originals: {field: value}, error?, released?}; None when missing or unreadable.

    The ledger keeps each entry as JSON text (`ledger_text`): one value for the engine to write after every
    step instead of a nested mapping, with nulls kept. A ledger an earlier 0.3.0 wrote keeps a mapping, its
    originals in two parts (`pack_originals`), until its next change.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    if "held" in value:
        originals = unpack_originals(value.get("originals"), value.get("held")) or {}
        return {**{k: v for k, v in value.items() if k != "held"}, "originals": originals}
    return value


def ledger_text(originals: Mapping[str, Any], **marks: Any) -> str:
    """One entry of the ledger as it keeps it: `{"originals":{"enabled":true}}`, plus `error` or `released`."""
    return json.dumps({"originals": dict(originals), **marks}, sort_keys=True, separators=(",", ":"))


def ledger_originals(entry: Any) -> dict[str, Any] | None:
    """The originals one ledger entry holds (field → value); None when the entry is missing."""
    found = ledger_entry(entry)
    return None if found is None else dict(_mapping(found.get("originals")))


def recorded_managed(setting: TrackingSetting, outs: Mapping[str, Any]) -> list[str]:
    """The fields a setting resource managed at its last create or update, from its outputs."""
    recorded = outs.get(MANAGED_KEY)
    if isinstance(recorded, list | tuple):
        return [name for name in recorded if isinstance(name, str)]
    return [f.name for f in setting.writable if f.required]


def recorded_originals(setting: TrackingSetting, outs: Mapping[str, Any]) -> dict[str, Any]:
    """The originals a setting resource holds, from its outputs (0.1.0 and 0.2.0 outputs: `original_<field>`
    of each field it managed; one missing there was null, left out of the state)."""
    held = unpack_originals(outs.get(ORIGINALS_KEY), outs.get(HELD_KEY))
    if held is not None:
        return held
    return {name: outs.get(original_key(name)) for name in recorded_managed(setting, outs)}


def original_key(field: str) -> str:
    """The output holding a managed field's original: `original_enabled`."""
    return f"original_{field}"


def give_back_target(
    setting: TrackingSetting, mode: str, managed: Iterable[str], originals: Mapping[str, Any]
) -> dict[str, Any]:
    """What giving an account's setting up sets: the one rule the provider's delete and the reports share.

    `keep`: nothing. `disable`: `enabled: false`. `restore`: each managed field back to its original; an
    original SendGrid left out (no `url` yet) is put back as `""`, which clears it again.
    """
    if mode == "keep":
        return {}
    if mode == "disable":
        return {"enabled": False}
    target: dict[str, Any] = {}
    for name in managed:
        original = originals.get(name)
        if original is None and setting.field(name).kind is str:
            original = ""
        if original is not None:
            target[name] = original
    return target


def changes_to_send(target: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `target` that SendGrid does not hold yet: the body of the one PATCH (empty: none)."""
    return {name: value for name, value in target.items() if not same(live.get(name), value)}


# -- hints of the current run (one provider process serves one engine run) --------------------------


class _RunHints:
    """What a provider process learns for later handlers of the same run. Losing it costs a request at most.

    Thread-safe: the provider server calls handlers from 4 threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fresh: dict[str, dict[str, Any]] = {}
        self._declared: set[str] = set()
        self._given_back: set[str] = set()

    def read(self, key: str, live: dict[str, Any]) -> None:
        """The ledger read this account moments ago: its setting's create needs no GET of its own."""
        with self._lock:
            self._fresh[key] = live

    def take_fresh(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._fresh.pop(key, None)

    def declare(self, keys: Iterable[str]) -> None:
        """The program of this run declares these account settings (seen by the ledger's check)."""
        with self._lock:
            self._declared.update(keys)

    def declared(self, key: str) -> bool:
        with self._lock:
            return key in self._declared

    def gave_back(self, key: str) -> None:
        """The account was given back: what the ledger read before is stale (a replacement creates it next)."""
        with self._lock:
            self._given_back.add(key)
            self._fresh.pop(key, None)

    def given_back(self, key: str) -> bool:
        with self._lock:
            return key in self._given_back

    def clear(self) -> None:
        with self._lock:
            self._fresh.clear()
            self._declared.clear()
            self._given_back.clear()


RUN = _RunHints()


# -- shared by the providers ----------------------------------------------------------------------


class _SendGridProvider(ResourceProvider):
    """Settings and pooled HTTP clients, living only in the provider process (never pickled)."""

    serialize_as_secret_always = False

    def __init__(self) -> None:
        super().__init__()
        self._stack_config: dict[str, Any] = {}
        self._clients: dict[tuple[str, str, float, float, float | None], SendGridClient] = {}
        self._lock = threading.Lock()

    # Pickled by reference, and nothing of the instance: no key, no client, no config.
    def __reduce__(self) -> tuple[type[_SendGridProvider], tuple[()]]:
        return (type(self), ())

    def configure(self, req: ConfigureRequest) -> None:
        """Keep the stack's `sendgrid:*` config (secrets decrypted) in this process only."""
        self._stack_config = {key: req.config.get(key) for key in config_mod.CONFIG_KEYS}
        _log_to_file_if_asked()

    def _settings(self) -> config_mod.Settings:
        return config_mod.resolve(self._stack_config, os.environ)

    def _client(self, region: str) -> SendGridClient:
        """A pooled client for the region, rebuilt when the key or host changes (key rotation)."""
        resolved = self._settings()
        base_url = config_mod.base_url_for(resolved, region)
        cache_key = (
            base_url,
            resolved.api_key,
            resolved.request_timeout,
            resolved.retry_budget,
            resolved.max_requests_per_second,
        )
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                from .client import SendGridClient  # noqa: PLC0415 - see the TYPE_CHECKING import

                client = SendGridClient(
                    resolved.api_key,
                    base_url,
                    request_timeout=resolved.request_timeout,
                    retry_budget=resolved.retry_budget,
                    max_requests_per_second=resolved.max_requests_per_second,
                )
                self._clients[cache_key] = client
            return client

    def _check_account(
        self, news: dict[str, Any], inputs: dict[str, Any], failures: list[CheckFailure], *, region_default: bool
    ) -> None:
        """on_behalf_of and region, then the settings a call will need (key, hosts): at preview."""
        on_behalf_of = news.get("on_behalf_of")
        problem = None if _is_unknown(on_behalf_of) else on_behalf_of_problem(on_behalf_of)
        if problem:
            failures.append(CheckFailure("on_behalf_of", f"on_behalf_of {problem}"))
        else:
            inputs["on_behalf_of"] = on_behalf_of
        region = news.get("region")
        if region is None and not region_default:
            failures.append(CheckFailure("region", "region is required"))
        elif region is not None and not _is_unknown(region) and region_problem(region):
            failures.append(CheckFailure("region", f"region {region_problem(region)}"))
        else:
            inputs["region"] = region
        try:
            if region is None and region_default:
                # The stack's region is resolved now, so changing it later shows as a replacement.
                inputs["region"] = config_mod.resolve_region(self._stack_config, os.environ)
            resolved = self._settings()
            if isinstance(inputs.get("region"), str):
                config_mod.base_url_for(resolved, inputs["region"])
        except ConfigurationError as exc:
            failures.append(CheckFailure(exc.setting, str(exc)))

    def _get(self, setting: TrackingSetting, region: str, on_behalf_of: str | None, *, exists: bool) -> dict[str, Any]:
        """GET the setting; a 403 for an account whose parent answers becomes AccountGoneError."""
        client = self._client(region)
        try:
            return client.get(setting.path, on_behalf_of, validate=setting.parse)
        except PermissionDeniedError as exc:
            raise self._explain_denied(exc, client, setting, region, on_behalf_of, exists=exists) from None

    def _explain_denied(
        self,
        exc: PermissionDeniedError,
        client: SendGridClient,
        setting: TrackingSetting,
        region: str,
        on_behalf_of: str | None,
        *,
        exists: bool,
    ) -> SendGridError:
        """Ask once on the parent account: if it answers, the subuser or customer account is the problem."""
        if not on_behalf_of or not exists:
            return exc
        try:
            client.get(setting.path, None, validate=setting.parse)
        except SendGridError:
            return exc
        return AccountGoneError(exc, resource_id(region, on_behalf_of), setting.resource)

    def _patch(
        self,
        op: str,
        setting: TrackingSetting,
        region: str,
        on_behalf_of: str | None,
        body: dict[str, Any],
        *,
        before: Mapping[str, Any],
        exists: bool,
    ) -> dict[str, Any]:
        """PATCH, and SendGrid's answer. After any failure but an explicit refusal, read the setting again.

        Returns what SendGrid holds afterwards. If the re-read shows any field of `body` landed, that is
        the answer (the caller records what landed; a later diff shows what did not). If nothing landed,
        the PATCH's own error is raised: nothing changed. If SendGrid cannot be read at all, the error
        says the outcome is unknown and carries the values from before. Each PATCH is written to the
        change journal (journal.py) before it is sent and when it is settled.
        """
        client = self._client(region)
        entry = journal.sending(op, setting.name, region, on_behalf_of, body, before)
        try:
            answer = client.update(setting.path, body, on_behalf_of, validate=setting.parse)
        except PermissionDeniedError as exc:
            error = self._explain_denied(exc, client, setting, region, on_behalf_of, exists=exists)
            journal.settled(entry, "failed", None, body, str(error))
            raise error from None
        except (TransportError, ServerError, RateLimitError, MalformedResponseError) as exc:
            try:
                after = client.get(setting.path, on_behalf_of, validate=setting.parse)
            except SendGridError:
                was = ", ".join(f"{name}={value!r}" for name, value in before.items())
                unknown = SendGridError(
                    f"{exc.summary}; whether the change to {setting.title} of "
                    f"{describe_account(on_behalf_of, region)} landed is unknown (before: {was})",
                    "run `pipelines/deploy` (or `pulumi up --refresh`) again: it reads SendGrid and converges; "
                    "the values from before are in this message.",
                )
                journal.settled(entry, "unknown", None, body, str(unknown))
                raise unknown from None
            landed = [name for name, value in body.items() if same(after.get(name), value)]
            if landed:
                if len(landed) < len(body):
                    log.warning("PATCH failed (%s); only %s landed: recording what SendGrid holds", exc, landed)
                journal.settled(entry, "applied", after, body, None if len(landed) == len(body) else str(exc))
                return after
            journal.settled(entry, "failed", after, body, str(exc))
            raise
        except SendGridError as exc:
            journal.settled(entry, "failed", None, body, str(exc))
            raise
        journal.settled(entry, "applied", answer, body)
        return answer


# -- the stack's originals ledger --------------------------------------------------------------------


class OriginalsLogic(_SendGridProvider):
    """The stack's originals ledger: what each account setting held before this stack took each field over.

    Input `accounts`: setting key (`click/global/alice`, which names the account) → the fields the program
    manages, for every account setting it declares. It is kept once, as an input: the outputs do not repeat
    it. Output `entries`: setting key → its entry as JSON text (`ledger_text`), `{"originals": {field:
    value}}`, plus `error` where SendGrid could not be read (that setting's create or update then fails with
    it, and the next run reads again). Both are as small as the engine can write them: it writes the whole
    state after every step, the ledger in each write (docs/benchmarks.md). Entries of accounts the
    program no longer declares are kept as `released` (their setting resources give the account back from
    their own originals): declared again, an account finds the values from before this stack first took
    it over, and is not read again.
    """

    INPUT = "accounts"
    OUTPUT = "entries"
    STACK = "stack"
    """The stack's name (input): where `create` looks for originals the state already records."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        accounts = news.get(self.INPUT)
        for key in sorted(news):
            if key not in (PROVIDER_KEY, self.INPUT, self.STACK) and not (key == self.OUTPUT and news[key] is None):
                failures.append(CheckFailure(key, f"unknown property {key!r} of the originals ledger"))
        stack = {self.STACK: news[self.STACK]} if isinstance(news.get(self.STACK), str) else {}
        if _is_unknown(accounts):
            return CheckResult({self.INPUT: accounts, **stack}, failures)
        if not isinstance(accounts, dict):
            failures.append(CheckFailure(self.INPUT, "accounts must be a mapping of setting keys"))
            return CheckResult({}, failures)
        for key, managed in accounts.items():
            if _is_unknown(managed):
                continue
            name, region, on_behalf_of = split_setting_key(str(key))
            setting = SETTINGS.get(name)
            if (
                setting is None
                or region_problem(region)
                or setting_key(setting.name, region, on_behalf_of) != key
                or not isinstance(managed, list)
                or not all(isinstance(field, str) and field in {f.name for f in setting.writable} for field in managed)
            ):
                failures.append(CheckFailure(self.INPUT, f"accounts[{key!r}] does not name that setting's fields"))
        RUN.declare(key for key in accounts if isinstance(key, str))
        return CheckResult({self.INPUT: accounts, **stack}, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Local: a change when some declared field has no original yet, an account left, or a read failed."""
        accounts = news.get(self.INPUT)
        entries = _mapping(olds.get(self.OUTPUT))
        if _is_unknown(accounts) or not isinstance(accounts, dict):
            return DiffResult(changes=True)
        found = {key: ledger_entry(entry) or {} for key, entry in entries.items()}
        changes = (
            {key for key, entry in found.items() if not entry.get("released")} != set(accounts)
            or any("error" in entry for entry in found.values())
            or bool(self._to_read(entries, accounts))
        )
        return DiffResult(changes=changes, replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Read every declared account setting (in parallel) and keep the managed fields' values, except where
        the stack's state already records an original: that one is kept.

        The ledger is created by a stack's first `pulumi up` with this release, where the state may hold setting
        resources already (a stack upgraded from 0.1.0 or 0.2.0, or one whose ledger was removed with `pulumi
        state delete`): SendGrid now holds what those settings wrote, and their own originals are the values
        from before the stack (`originals_in_state`, run beside the reads: a new stack waits for neither).
        """
        accounts = props.get(self.INPUT) or {}
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_state = pool.submit(originals_in_state, props.get(self.STACK))
            read = self._entries({}, accounts)
            recorded = in_state.result()
        entries: dict[str, str] = {}
        for key in sorted(set(read) | set(recorded)):
            was = recorded.get(key, {})
            marks: dict[str, Any] = {}
            if key not in accounts:
                marks["released"] = True
            elif "error" in read[key] and not set(_managed(accounts[key])) <= set(was):
                marks["error"] = read[key]["error"]  # unreadable, not all recorded: the next run reads again
            entries[key] = ledger_text({**read[key]["originals"], **was} if key in read else was, **marks)
        return CreateResult("originals", {self.OUTPUT: entries})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """A record of the past: refresh keeps it as it is (inputs too) and sends nothing."""
        return ReadResult(id_, {k: v for k, v in props.items() if k != PROVIDER_KEY}, None)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Read the newly declared accounts and fields; keep every original already held; release the rest."""
        entries = _mapping(olds.get(self.OUTPUT))
        accounts = news.get(self.INPUT) or {}
        read = self._entries(entries, accounts)
        return UpdateResult({self.OUTPUT: {key: ledger_text(**entry) for key, entry in read.items()}})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Sends nothing: the setting resources (deleted before it) gave their accounts back."""

    @staticmethod
    def _held(entries: Mapping[str, Any], key: str) -> dict[str, Any]:
        return ledger_originals(entries.get(key)) or {}

    def _to_read(self, entries: Mapping[str, Any], accounts: Mapping[str, Any]) -> dict[str, list[str]]:
        """Setting key → the declared fields it holds no original of yet."""
        todo: dict[str, list[str]] = {}
        for key, spec in accounts.items():
            held = self._held(entries, key)
            missing = [name for name in _managed(spec) if name not in held]
            if missing:
                todo[key] = missing
        return todo

    def _entries(self, old: Mapping[str, Any], accounts: Mapping[str, Any]) -> dict[str, Any]:
        held = {key: self._held(old, key) for key in accounts}
        errors: dict[str, str] = {}
        todo = self._to_read(old, accounts)

        def read(key: str) -> tuple[str, dict[str, Any] | None, str | None]:
            setting, region, on_behalf_of = split_setting_key(key)
            try:
                live = self._get(SETTINGS[setting], region, on_behalf_of, exists=False)
            except SendGridError as exc:
                return key, None, str(exc)
            return key, live, None

        if todo:
            with ThreadPoolExecutor(max_workers=min(LEDGER_READERS, len(todo))) as pool:
                for key, live, error in pool.map(read, sorted(todo)):
                    if live is None:
                        errors[key] = error or "unreadable"
                        continue
                    held[key].update({name: live.get(name) for name in todo[key]})
                    RUN.read(key, live)
        entries: dict[str, dict[str, Any]] = {}
        for key, originals in held.items():
            entries[key] = {"originals": originals, **({"error": errors[key]} if key in errors else {})}
        for key in sorted(set(old) - set(accounts)):
            # Released, not forgotten: an account the program declares again (its give-back may have failed,
            # or be blocked by `protect`, and SendGrid still hold this stack's value) finds the values from
            # before this stack first took it over, never a read of what this stack wrote.
            entries[key] = {"originals": self._held(old, key), "released": True}
        return entries


STATE_EXPORT_SECONDS = 120.0
STATE_EXPORT_HINT = (
    "a new ledger keeps the originals the stack's setting resources already record; check that the state "
    "backend is reachable, then run `pulumi up` again (nothing was changed)"
)


def _running_engine() -> str | None:
    """The `pulumi` executable among this process's ancestors (Linux's /proc), or None."""
    pid = os.getppid()
    for _ in range(8):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if os.path.basename(exe) == "pulumi":
            return exe
        if pid <= 1:
            return None
    return None


def originals_in_state(stack: Any) -> dict[str, dict[str, Any]]:
    """Setting key → the originals the stack's setting resources record in its state (`pulumi stack export`).

    Read once per stack, when its ledger is created, with the `pulumi` that runs this provider (an ancestor
    process), else the one on PATH. Nothing when the stack has no name (a program under mocks). Raises when the
    state cannot be read: originals the state holds are never replaced by a read of what this stack wrote.
    """
    if not isinstance(stack, str) or not stack:
        return {}
    exe = _running_engine() or shutil.which("pulumi") or "pulumi"
    command = f"pulumi stack export --stack {stack}"
    try:
        result = subprocess.run(
            [exe, "stack", "export", "--stack", stack, "--non-interactive"],
            capture_output=True,
            text=True,
            timeout=STATE_EXPORT_SECONDS,
            check=False,
        )
        deployment = json.loads(result.stdout).get("deployment") if result.returncode == 0 else None
    except (OSError, ValueError, AttributeError, subprocess.TimeoutExpired) as exc:
        raise SendGridError(
            f"the originals ledger could not read the stack's state ({command}: {type(exc).__name__})",
            hint=STATE_EXPORT_HINT,
        ) from None
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SendGridError(
            f"the originals ledger could not read the stack's state ({command} exited {result.returncode}: {said})",
            hint=STATE_EXPORT_HINT,
        )
    found: dict[str, dict[str, Any]] = {}
    resources = _mapping(deployment).get("resources")
    for resource in resources if isinstance(resources, list) else []:
        setting = SETTING_TYPES.get(str(_mapping(resource).get("type")))
        outs = _mapping(resource).get("outputs")
        if setting is None or not isinstance(outs, dict) or not isinstance(outs.get("region"), str):
            continue
        key = setting_key(setting.name, outs["region"], outs.get("on_behalf_of"))
        found.setdefault(key, {}).update(recorded_originals(setting, outs))
    return found


# -- the adoption records of 0.2.0, retired ---------------------------------------------------------


class AdoptionLogic(_SendGridProvider):
    """0.2.0's adoption record, retired: 0.3.0 declares none, so the first `pulumi up` deletes them.

    Their delete sends nothing when the account is still declared (its setting now holds the originals,
    migrated from its own 0.2.0 outputs) or was given back by its setting in this run. Only a record left
    behind by a 0.2.0 give-back that failed, whose setting is gone, still gives its account back, from
    what it observed at adoption: that is all such a state holds.
    """

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult({k: v for k, v in news.items() if k != PROVIDER_KEY}, [])

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """A record of the past: refresh keeps it as it is and sends nothing."""
        outs = {k: v for k, v in props.items() if k != PROVIDER_KEY}
        return ReadResult(id_, outs, outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        setting = SETTINGS[props["setting"]]
        region, on_behalf_of = props["region"], props.get("on_behalf_of")
        key = setting_key(setting.name, region, on_behalf_of)
        if RUN.declared(key) or RUN.given_back(key):
            return
        observed = _mapping(props.get("observed"))
        managed = props.get("managed_fields") or ["enabled"]
        target = give_back_target(setting, props.get("on_delete") or DEFAULT_ON_DELETE, managed, observed)
        if not target:
            return
        live = self._get(setting, region, on_behalf_of, exists=True)
        body = changes_to_send(target, live)
        if body:
            self._patch("give back", setting, region, on_behalf_of, body, before=live, exists=True)
        log.debug("%s: gave %s back", id_, sorted(body))


# -- the setting -----------------------------------------------------------------------------------


class SettingProvider(_SendGridProvider):
    """Manages one tracking setting (the subclass's `setting`) of one account in one region."""

    setting: ClassVar[TrackingSetting]

    # -- inputs and outputs ------------------------------------------------------------------

    @classmethod
    def input_keys(cls) -> tuple[str, ...]:
        return (
            *(f.name for f in cls.setting.writable),
            "on_behalf_of",
            "region",
            "on_delete",
            NAME_KEY,
            LEDGER_KEY,
        )

    @classmethod
    def output_only_keys(cls) -> tuple[str, ...]:
        keys = [f.name for f in cls.setting.fields if not f.writable]
        keys += [original_key(f.name) for f in cls.setting.writable]
        keys += [ORIGINALS_KEY, HELD_KEY, MANAGED_KEY]
        return tuple(keys)

    @classmethod
    def managed(cls, props: Mapping[str, Any]) -> list[str]:
        """The writable fields a program gave (inputs): `enabled` always, others when not None."""
        return [f.name for f in cls.setting.writable if f.required or props.get(f.name) is not None]

    @classmethod
    def recorded_managed(cls, outs: Mapping[str, Any]) -> list[str]:
        """The fields a resource managed at its last create or update, from its outputs."""
        return recorded_managed(cls.setting, outs)

    @classmethod
    def held(cls, outs: Mapping[str, Any]) -> dict[str, Any]:
        """The originals a resource holds, from its outputs."""
        return recorded_originals(cls.setting, outs)

    @classmethod
    def key(cls, props: Mapping[str, Any]) -> str:
        return setting_key(cls.setting.name, props["region"], props.get("on_behalf_of"))

    def _outputs(
        self, props: Mapping[str, Any], live: Mapping[str, Any], held: Mapping[str, Any], managed: Iterable[str]
    ) -> dict[str, Any]:
        outs: dict[str, Any] = {f.name: live.get(f.name) for f in self.setting.fields}
        outs["on_behalf_of"] = props.get("on_behalf_of")
        outs["region"] = props["region"]
        outs["on_delete"] = props.get("on_delete") or DEFAULT_ON_DELETE
        outs[NAME_KEY] = props.get(NAME_KEY)
        managed = sorted(managed)
        for f in self.setting.writable:
            outs[original_key(f.name)] = held.get(f.name) if f.name in managed else None
        outs[ORIGINALS_KEY], outs[HELD_KEY] = pack_originals(held)
        outs[MANAGED_KEY] = managed
        return outs

    def _originals_for(
        self, props: Mapping[str, Any], held: Mapping[str, Any], managed: Iterable[str]
    ) -> dict[str, Any]:
        """The originals after this step: those held, plus the ledger's for fields newly taken over.

        Raises when a managed field has no original anywhere: nothing may change it before one is recorded.
        """
        result, missing = self._gather_originals(props, held, managed)
        if missing:
            raise self._unrecorded(props, missing)
        return result

    @staticmethod
    def _gather_originals(
        props: Mapping[str, Any], held: Mapping[str, Any], managed: Iterable[str]
    ) -> tuple[dict[str, Any], list[str]]:
        """The originals held plus the ledger's for the managed fields not held, and the managed fields with
        neither (check reports them at preview; create, update and diff raise)."""
        result = dict(held)
        recorded = ledger_originals(props.get(LEDGER_KEY))
        missing = []
        for name in managed:
            if name in result:
                continue
            if isinstance(recorded, dict) and name in recorded:
                result[name] = recorded[name]
            else:
                missing.append(name)
        return result, missing

    def _unrecorded(self, props: Mapping[str, Any], missing: list[str]) -> SendGridError:
        entry = ledger_entry(props.get(LEDGER_KEY)) or {}
        account = describe_account(props.get("on_behalf_of"), props["region"])
        if isinstance(entry.get("error"), str):
            return SendGridError(
                f"{self.setting.title} of {account} could not be read before taking it over, so nothing was "
                f"changed: {entry['error']}",
                "fix the cause above and run `pulumi up` again; the original is read first",
            )
        return SendGridError(
            f"the original of {', '.join(missing)} ({self.setting.title} of {account}) is not in the stack's "
            "originals ledger, and this run does not update it: nothing may change a field before its original "
            "is recorded",
            UNRECORDED_HINT,
        )

    # -- the SDK's methods, in its order ---------------------------------------------------------

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate inputs before anything is sent; fill in defaults (on_delete, region)."""
        setting = self.setting
        failures: list[CheckFailure] = []
        inputs: dict[str, Any] = {}
        allowed = self.input_keys()
        for key in sorted(news):
            if key in (PROVIDER_KEY, GIVEN_KEY) or key in allowed:
                continue
            if key in self.output_only_keys() and news[key] is None:
                continue
            writable = ", ".join(f.name for f in setting.writable)
            read_only = [f.name for f in setting.fields if not f.writable]
            note = f" ({', '.join(read_only)} is read-only)" if read_only else ""
            failures.append(
                CheckFailure(
                    key,
                    f"unknown property {key!r} of {setting.resource}; allowed: {writable}, "
                    f"on_behalf_of, region, on_delete{note}",
                )
            )
        given = news.get(GIVEN_KEY)
        given_fields = given if isinstance(given, list) else []
        for f in setting.writable:
            value = news.get(f.name)
            if value is None:
                if f.required:
                    failures.append(CheckFailure(f.name, f"{f.name} is required: set it to True or False explicitly"))
                elif f.name in given_fields:
                    failures.append(
                        CheckFailure(
                            f.name,
                            f'{f.name} was given as an Output that resolved to None: pass a value ("" clears a '
                            "text field), or leave the argument out to leave the field unmanaged",
                        )
                    )
                continue
            problem = None if _is_unknown(value) else f.problem(value)
            if problem:
                failures.append(CheckFailure(f.name, f"{f.name} {problem}"))
            else:
                inputs[f.name] = value
        on_delete = news.get("on_delete")
        if on_delete is None:
            inputs["on_delete"] = DEFAULT_ON_DELETE
        elif _is_unknown(on_delete) or not on_delete_problem(on_delete):
            inputs["on_delete"] = on_delete
        else:
            failures.append(CheckFailure("on_delete", f"on_delete {on_delete_problem(on_delete)}"))
        self._check_account(news, inputs, failures, region_default=True)
        if news.get(NAME_KEY) is not None:
            inputs[NAME_KEY] = news[NAME_KEY]
        entry = news.get(LEDGER_KEY)
        if entry is not None:
            inputs[LEDGER_KEY] = entry
        if not olds and not failures and isinstance(inputs.get("region"), str) and not _is_unknown(entry):
            # A create: it holds nothing yet, so the ledger must hold every managed field's original.
            _, missing = self._gather_originals(news, {}, self.managed(news))
            if missing and "error" not in (ledger_entry(entry) or {}):
                failures.append(CheckFailure(LEDGER_KEY, str(self._unrecorded(inputs, missing))))
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Local only. Managed fields and on_delete → update; on_behalf_of/region → replace; the name → nothing.

        The engine names the resource by its account, so the program's name is a label: a rename changes the
        stored input and nothing else (no step, no request).

        The ledger entry is bookkeeping: a change of it alone is no change. A newly managed field whose
        original is not recorded anywhere fails the preview (a `--target` run that skips the ledger).
        """

        def changed(key: str, old: Any) -> bool:
            new = news.get(key)
            if key == "on_delete" and new is None:
                new = DEFAULT_ON_DELETE
            return _is_unknown(new) or old != new

        replaces = [key for key in ACCOUNT_KEYS if changed(key, olds.get(key))]
        managed = self.managed(news)
        if not replaces and not _is_unknown(news.get(LEDGER_KEY)) and isinstance(news.get("region"), str):
            self._originals_for(news, self.held(olds), managed)  # raises when one cannot be found
        changes = (
            bool(replaces)
            or any(_is_unknown(news.get(name)) or not same(olds.get(name), news.get(name)) for name in managed)
            or set(managed) != set(self.recorded_managed(olds))
            or changed("on_delete", olds.get("on_delete") or DEFAULT_ON_DELETE)
            or not isinstance(olds.get(HELD_KEY), list)  # 0.1.0/0.2.0 outputs: one update, no request
            or _written_by_another_package(olds)
        )
        # A replacement gives the old account back first (resources.py sets delete_before_replace).
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Take the setting over: originals from the ledger, a PATCH of the managed fields that differ.

        The ledger read the setting moments ago in this run (no second GET) or, when that hint is gone, a
        GET reads it. A failed PATCH re-reads: what landed is recorded; if nothing did, the error is raised
        and the ledger still holds the originals for the retry.
        """
        region, on_behalf_of = props["region"], props.get("on_behalf_of")
        managed = self.managed(props)
        held = self._originals_for(props, {}, managed)
        live = RUN.take_fresh(self.key(props)) or self._get(self.setting, region, on_behalf_of, exists=False)
        body = changes_to_send({name: props[name] for name in managed}, live)
        if body:
            live = self._patch("take over", self.setting, region, on_behalf_of, body, before=live, exists=False)
        return CreateResult(resource_id(region, on_behalf_of), self._outputs(props, live, held, managed))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: GET the live values; return them as outputs, and as inputs so drift shows."""
        region = props.get("region") or id_.split("/", 1)[0]
        on_behalf_of = props.get("on_behalf_of")
        live = self._get(self.setting, region, on_behalf_of, exists=True)
        managed = self.recorded_managed(props)
        outs = self._outputs({**props, "region": region}, live, self.held(props), managed)
        inputs: dict[str, Any] = {name: outs[name] for name in managed}
        inputs.update(on_behalf_of=on_behalf_of, region=region, on_delete=outs["on_delete"])
        if outs.get(NAME_KEY) is not None:
            inputs[NAME_KEY] = outs[NAME_KEY]
        journal.refreshed(self.setting.resource, id_, outs)
        return ReadResult(id_, outs, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """One PATCH of the managed fields that differ from what SendGrid last answered; none otherwise.

        A field newly managed takes its original from the ledger, which read it before this step; a field
        no longer managed keeps its original, so managing it again finds the value from before this stack.
        A failed PATCH re-reads: what landed is recorded (a program reverted to the old values then shows a
        change); if nothing landed, the error is raised.
        """
        managed = self.managed(news)
        held = self._originals_for(news, self.held(olds), managed)
        live = {f.name: olds.get(f.name) for f in self.setting.fields}
        body = changes_to_send({name: news[name] for name in managed}, live)
        if body:
            live = self._patch(
                "update", self.setting, news["region"], news.get("on_behalf_of"), body, before=live, exists=True
            )
        return UpdateResult(self._outputs(news, live, held, managed))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Give the account back (on_delete): read it, then one PATCH of what differs from the target.

        `keep` sends nothing. `restore` puts each managed field back to its original, `disable` sets
        `enabled: false`; the live values decide (one GET), so a drifted account is given back too, and
        nothing is sent when it already holds the target. A failure leaves the resource in the state with
        its originals, and the next run retries.
        """
        region = props.get("region") or id_.split("/", 1)[0]
        on_behalf_of = props.get("on_behalf_of")
        props = {**props, "region": region}
        target = give_back_target(
            self.setting,
            props.get("on_delete") or DEFAULT_ON_DELETE,
            self.recorded_managed(props),
            self.held(props),
        )
        if target:
            live = self._get(self.setting, region, on_behalf_of, exists=True)
            body = changes_to_send(target, live)
            if body:
                self._patch("give back", self.setting, region, on_behalf_of, body, before=live, exists=True)
        RUN.gave_back(self.key(props))


def _written_by_another_package(olds: Mapping[str, Any]) -> bool:
    """Whether the state's pickled provider reference predates this package (0.1.0's `provider.` module).

    Such a resource gets one update (no request) so its outputs carry the current reference, which
    `pulumi refresh` and `pulumi destroy` unpickle.
    """
    pickled = olds.get(PROVIDER_KEY)
    if not isinstance(pickled, str) or not pickled:
        return False
    try:
        raw = base64.b64decode(pickled, validate=True)
    except ValueError:
        return False
    return PROVIDER_MODULE not in raw


LOG_FILE_ENV = "SENDGRID_PROVIDER_LOG"
LOG_LEVEL_ENV = "SENDGRID_PROVIDER_LOG_LEVEL"


def _log_to_file_if_asked() -> None:
    """SENDGRID_PROVIDER_LOG=<file> sends this package's and urllib3's logs there (level from
    SENDGRID_PROVIDER_LOG_LEVEL, default DEBUG). The provider process's stderr is the engine's."""
    path = os.environ.get(LOG_FILE_ENV)
    if not path:
        return
    level = os.environ.get(LOG_LEVEL_ENV, "DEBUG").upper()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    for name in ("pulumi_sendgrid_tracking", "urllib3"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.FileHandler) for h in logger.handlers):
            logger.addHandler(handler)
            logger.setLevel(level)
