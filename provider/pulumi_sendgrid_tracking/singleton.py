"""One ResourceProvider for every tracking setting, bound to a TrackingSetting description.

Methods follow the SDK's order: check, diff, create, read, update, delete (configure first).
Every handler: load inputs, stop on error, call the API, save what the API answered.

Two resources per managed setting keep the state and SendGrid in step through renames, replacements
and interruptions (docs/behaviour.md, "Ownership and originals"):

- the *adoption record* (`AdoptionProvider`, named by account: `click/global/alice`) GETs the setting
  once, before anything is changed, and keeps what it found. The engine checkpoints it before the
  setting's create starts, so the original survives a create cut off after its PATCH. It stays in the
  state as long as some resource of the program manages that account's setting, whatever that
  resource is called, and it is what gives the account back (restore, disable or keep) when it is
  deleted: when the account stops being managed, never when ownership merely moves;
- the *setting* (`SettingProvider`, named by the program) sends the changes and records what SendGrid
  answered and the originals of the fields it manages. Its own delete sends nothing: it hands its
  last recorded values to the record's delete, which the engine runs right after it.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
from .errors import (
    AccountGoneError,
    ConfigurationError,
    PermissionDeniedError,
    SendGridError,
    ServerError,
    TransportError,
)
from .inputs import (
    DEFAULT_ON_DELETE,
    adoption_name,
    describe_account,
    on_behalf_of_problem,
    on_delete_problem,
    region_problem,
    resource_id,
)
from .tracking import SETTINGS, TrackingSetting

if TYPE_CHECKING:
    # Imported when the first request is sent (`_client`): requests and urllib3 take longer to import than
    # the rest of the package, and neither the program nor a preview's provider sends a request.
    from .client import SendGridClient

log = logging.getLogger(__name__)

PROVIDER_KEY = "__provider"
ACCOUNT_KEYS = ("on_behalf_of", "region")
"""A change to these is another account: a replacement."""
ADOPTION_KEY = "adoption"
"""The setting's input that carries its adoption record's outputs (`observed`, `token`)."""
MANAGED_KEY = "managed_fields"
"""Output of settings with optional fields: which fields this resource manages."""
PROVIDER_MODULE = b"pulumi_sendgrid_tracking.providers"

Account = tuple[str, str, str | None]
"""(setting name, region, on_behalf_of): what one resource of a stack may own."""


def _is_unknown(value: Any) -> bool:
    return isinstance(value, pulumi.output.Unknown)


def same(live: Any, wanted: Any) -> bool:
    """Whether SendGrid already holds `wanted`. A string field SendGrid leaves out of its answer (no `url`
    yet) holds the empty string: `""` is how a program clears it, and that is what it reads back as."""
    if isinstance(wanted, str) and live is None:
        return wanted == ""
    return bool(live == wanted)


def original_key(field: str) -> str:
    """The output holding a managed field's original: `original_enabled`."""
    return f"original_{field}"


# -- what one provider process knows about the current run ---------------------------------------


@dataclass(frozen=True)
class Released:
    """What a setting resource recorded when it was deleted: for its account's record's delete."""

    live: Mapping[str, Any]
    """Every field as SendGrid last answered (the recorded state)."""
    originals: Mapping[str, Any]
    """The managed fields' originals (a field managed after adoption has its own)."""


class _RunRegistry:
    """What one provider process (one engine run) learns for later handlers of the same run.

    Thread-safe: the provider server calls handlers from 4 threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fresh: dict[str, dict[str, Any]] = {}
        self._released: dict[Account, Released] = {}

    def adopted(self, token: str, observed: dict[str, Any]) -> None:
        with self._lock:
            self._fresh[token] = observed

    def take_fresh(self, token: Any) -> dict[str, Any] | None:
        """The values an adoption record read moments ago in this process, once; None if not fresh."""
        if not isinstance(token, str):
            return None
        with self._lock:
            return self._fresh.pop(token, None)

    def release(self, account: Account, released: Released) -> None:
        with self._lock:
            self._released[account] = released

    def take_released(self, account: Account) -> Released | None:
        with self._lock:
            return self._released.pop(account, None)

    def clear(self) -> None:
        with self._lock:
            self._fresh.clear()
            self._released.clear()


RUN = _RunRegistry()


# -- shared by both providers -----------------------------------------------------------------------


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
        return AccountGoneError(
            exc, resource_id(region, on_behalf_of), adoption_name(setting.name, region, on_behalf_of)
        )


# -- the adoption record ---------------------------------------------------------------------------


class AdoptionLogic(_SendGridProvider):
    """The adoption record of one account's setting: one GET when created; on delete, gives the account back.

    Inputs: `setting` (click, open, subscription, google_analytics), `region`, `on_behalf_of` (the
    account: a change is another record), and `on_delete` and `managed_fields` (what the setting
    resource does and manages: a change is an update that sends nothing).
    Outputs: the inputs, `observed` (every field as SendGrid answered before this stack changed
    anything) and `token` (tells the setting's create that the record was read moments ago).
    """

    ACCOUNT = ("setting", "region", "on_behalf_of")
    INPUTS = (*ACCOUNT, "on_delete", "managed_fields")

    @staticmethod
    def account(props: Mapping[str, Any]) -> Account:
        return (props["setting"], props["region"], props.get("on_behalf_of"))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        inputs: dict[str, Any] = {}
        for key in sorted(news):
            placeholder = key in ("observed", "token") and news[key] is None  # output-only, passed as None
            if key != PROVIDER_KEY and key not in self.INPUTS and not placeholder:
                failures.append(CheckFailure(key, f"unknown property {key!r}; allowed: {', '.join(self.INPUTS)}"))
        name = news.get("setting")
        setting = SETTINGS.get(name) if isinstance(name, str) else None
        if setting is not None or _is_unknown(name):
            inputs["setting"] = name
        else:
            failures.append(CheckFailure("setting", f"setting must be one of {', '.join(SETTINGS)}, got {name!r}"))
        on_delete = news.get("on_delete")
        if on_delete is None:
            inputs["on_delete"] = DEFAULT_ON_DELETE
        elif _is_unknown(on_delete) or not on_delete_problem(on_delete):
            inputs["on_delete"] = on_delete
        else:
            failures.append(CheckFailure("on_delete", f"on_delete {on_delete_problem(on_delete)}"))
        managed = news.get("managed_fields")
        writable = [f.name for f in setting.writable] if setting is not None else []
        if managed is None:
            inputs["managed_fields"] = [f.name for f in setting.writable if f.required] if setting else ["enabled"]
        elif _is_unknown(managed) or (
            isinstance(managed, list) and "enabled" in managed and all(m in writable for m in managed)
        ):
            inputs["managed_fields"] = sorted(managed) if isinstance(managed, list) else managed
        elif setting is not None:
            failures.append(
                CheckFailure("managed_fields", f"managed_fields must be `enabled` and some of {', '.join(writable)}")
            )
        self._check_account(news, inputs, failures, region_default=False)
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in self.ACCOUNT if _is_unknown(news.get(key)) or olds.get(key) != news.get(key)]
        updates = [
            key
            for key in ("on_delete", "managed_fields")
            if _is_unknown(news.get(key)) or olds.get(key, self._default(olds, key)) != news.get(key)
        ]
        return DiffResult(
            changes=bool(replaces or updates or _written_by_another_package(olds)),
            replaces=replaces,
            delete_before_replace=False,
        )

    @staticmethod
    def _default(props: Mapping[str, Any], key: str) -> Any:
        return DEFAULT_ON_DELETE if key == "on_delete" else ["enabled"]

    def create(self, props: dict[str, Any]) -> CreateResult:
        """GET the setting and keep it. Sends no change; all or nothing (a failed GET records nothing)."""
        setting = SETTINGS[props["setting"]]
        region, on_behalf_of = props["region"], props.get("on_behalf_of")
        observed = self._get(setting, region, on_behalf_of, exists=False)
        token = os.urandom(16).hex()  # as random as uuid4, without importing uuid
        RUN.adopted(token, observed)
        outs = {
            "setting": setting.name,
            "region": region,
            "on_behalf_of": on_behalf_of,
            "on_delete": props.get("on_delete") or DEFAULT_ON_DELETE,
            "managed_fields": props.get("managed_fields") or ["enabled"],
            "observed": observed,
            "token": token,
        }
        return CreateResult(f"{setting.name}/{resource_id(region, on_behalf_of)}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """A record of the past: refresh keeps it as it is and sends nothing."""
        outs = {k: v for k, v in props.items() if k != PROVIDER_KEY}
        return ReadResult(id_, outs, {key: outs.get(key) for key in self.INPUTS if key in outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """A new on_delete or list of managed fields: recorded, nothing sent."""
        outs = {k: v for k, v in olds.items() if k != PROVIDER_KEY}
        outs.update(on_delete=news.get("on_delete") or DEFAULT_ON_DELETE, managed_fields=news.get("managed_fields"))
        return UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """The account is no longer managed by the program: restore its managed fields, keep, or disable.

        Runs after the setting resource's delete in the same run (it depends on this record), which
        hands over its recorded values: then nothing is sent when they already equal the target.
        Without them (the setting went in an earlier, interrupted run), the PATCH is sent regardless:
        at most one, and repeating it is harmless. A failure leaves the record, and the next run retries.
        """
        setting = SETTINGS[props["setting"]]
        region, on_behalf_of = props["region"], props.get("on_behalf_of")
        released = RUN.take_released(self.account(props))
        mode = props.get("on_delete") or DEFAULT_ON_DELETE
        if mode == "keep":
            return
        recorded = props.get("observed")
        observed: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
        if mode == "disable":
            target: dict[str, Any] = {"enabled": False}
        else:
            target = {}
            for name in props.get("managed_fields") or ["enabled"]:
                if released is not None and name in released.originals:
                    original = released.originals[name]
                else:
                    original = observed.get(name)
                if original is None and setting.field(name).kind is str:
                    original = ""  # absent before (no url yet): the empty string clears it again
                if original is not None:
                    target[name] = original
        body = {k: v for k, v in target.items() if released is None or not same(released.live.get(k), v)}
        if not body:
            return
        client = self._client(region)
        try:
            client.update(setting.path, body, on_behalf_of, validate=setting.parse)
        except PermissionDeniedError as exc:
            raise self._explain_denied(exc, client, setting, region, on_behalf_of, exists=True) from None
        log.debug("%s: gave %s back", id_, sorted(body))


# -- the setting -----------------------------------------------------------------------------------


class SettingProvider(_SendGridProvider):
    """Manages one tracking setting (the subclass's `setting`) of one account in one region."""

    setting: ClassVar[TrackingSetting]

    # -- inputs and outputs ------------------------------------------------------------------

    @classmethod
    def input_keys(cls) -> tuple[str, ...]:
        return (*(f.name for f in cls.setting.writable), "on_behalf_of", "region", "on_delete", ADOPTION_KEY)

    @classmethod
    def output_only_keys(cls) -> tuple[str, ...]:
        keys = [f.name for f in cls.setting.fields if not f.writable]
        keys += [original_key(f.name) for f in cls.setting.writable]
        if cls.setting.optional:
            keys.append(MANAGED_KEY)
        return tuple(keys)

    @classmethod
    def managed(cls, props: Mapping[str, Any]) -> list[str]:
        """The writable fields a program gave (inputs): `enabled` always, others when not None."""
        return [f.name for f in cls.setting.writable if f.required or props.get(f.name) is not None]

    @classmethod
    def recorded_managed(cls, outs: Mapping[str, Any]) -> list[str]:
        """The fields a resource managed at its last create or update, from its outputs."""
        recorded = outs.get(MANAGED_KEY)
        if isinstance(recorded, list | tuple):
            return [name for name in recorded if isinstance(name, str)]
        return [f.name for f in cls.setting.writable if f.required]

    @classmethod
    def account(cls, props: Mapping[str, Any]) -> Account:
        return (cls.setting.name, props["region"], props.get("on_behalf_of"))

    def _outputs(
        self,
        props: Mapping[str, Any],
        live: Mapping[str, Any],
        originals: Mapping[str, Any],
        managed: Iterable[str],
    ) -> dict[str, Any]:
        outs: dict[str, Any] = {f.name: live.get(f.name) for f in self.setting.fields}
        outs["on_behalf_of"] = props.get("on_behalf_of")
        outs["region"] = props["region"]
        outs["on_delete"] = props.get("on_delete") or DEFAULT_ON_DELETE
        for f in self.setting.writable:
            outs[original_key(f.name)] = originals.get(f.name)
        if self.setting.optional:
            outs[MANAGED_KEY] = sorted(managed)
        return outs

    # -- the SDK's methods, in its order ---------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate inputs before anything is sent; fill in defaults (on_delete, region)."""
        setting = self.setting
        failures: list[CheckFailure] = []
        inputs: dict[str, Any] = {}
        allowed = self.input_keys()
        for key in sorted(news):
            if key == PROVIDER_KEY or key in allowed:
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
        for f in setting.writable:
            value = news.get(f.name)
            if value is None:
                if f.required:
                    failures.append(CheckFailure(f.name, f"{f.name} is required: set it to True or False explicitly"))
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
        if news.get(ADOPTION_KEY) is not None:
            inputs[ADOPTION_KEY] = news[ADOPTION_KEY]
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Local only. Managed fields and on_delete → update; on_behalf_of/region → replace."""

        def changed(key: str, old: Any) -> bool:
            new = news.get(key)
            if key == "on_delete" and new is None:
                new = DEFAULT_ON_DELETE
            return _is_unknown(new) or old != new

        replaces = [key for key in ACCOUNT_KEYS if changed(key, olds.get(key))]
        managed = self.managed(news)
        changes = (
            bool(replaces)
            or any(_is_unknown(news.get(name)) or not same(olds.get(name), news.get(name)) for name in managed)
            or set(managed) != set(self.recorded_managed(olds))
            or changed("on_delete", olds.get("on_delete") or DEFAULT_ON_DELETE)
            or _written_by_another_package(olds)
        )
        # Create before delete: the old account is given back by its record's delete, after the new one is set.
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Take the setting over: originals from the adoption record, a PATCH of the differing fields.

        All or nothing: if the PATCH fails and a re-read shows the old values, the error is raised
        and nothing changed. If the PATCH's fate is unknown, the error says so.
        """
        region, on_behalf_of = props["region"], props.get("on_behalf_of")
        adoption = props.get(ADOPTION_KEY)
        observed = adoption.get("observed") if isinstance(adoption, dict) else None
        fresh = RUN.take_fresh(adoption.get("token")) if isinstance(adoption, dict) else None
        # The record was read moments ago in this process: no second GET. Otherwise (a rename, a retry
        # after a failure or an interruption) the live value may have moved since: read it.
        live = fresh if fresh is not None else self._get(self.setting, region, on_behalf_of, exists=False)
        before = observed if isinstance(observed, dict) else live
        managed = self.managed(props)
        originals = {name: before.get(name) for name in managed}
        body = {name: props[name] for name in managed if not same(live.get(name), props[name])}
        if body:
            live = self._patch_or_explain(region, on_behalf_of, body, before=originals)
        outs = self._outputs(props, live, originals, managed)
        return CreateResult(resource_id(region, on_behalf_of), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: GET the live values; return them as outputs, and as inputs so drift shows."""
        region = props.get("region") or id_.split("/", 1)[0]
        on_behalf_of = props.get("on_behalf_of")
        live = self._get(self.setting, region, on_behalf_of, exists=True)
        managed = self.recorded_managed(props)
        originals = {name: props.get(original_key(name)) for name in managed}
        outs = self._outputs({**props, "region": region}, live, originals, managed)
        inputs: dict[str, Any] = {name: outs[name] for name in managed}
        inputs.update(on_behalf_of=on_behalf_of, region=region, on_delete=outs["on_delete"])
        return ReadResult(id_, outs, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """One PATCH of the managed fields that differ from what SendGrid last answered; none otherwise.

        A field that becomes managed takes as its original the value SendGrid last answered. If the
        PATCH fails, the setting is re-read, as in create: a change that landed is an update that
        succeeded (a failed update leaves the state as it was, and a program reverted to it would then
        preview "no changes" while SendGrid holds the new value); otherwise the error is raised.
        """
        managed = self.managed(news)
        kept = set(self.recorded_managed(olds))
        live = {f.name: olds.get(f.name) for f in self.setting.fields}
        originals = {name: (olds.get(original_key(name)) if name in kept else live.get(name)) for name in managed}
        body = {name: news[name] for name in managed if not same(live.get(name), news[name])}
        if body:
            before = {name: live.get(name) for name in managed}
            live = self._patch_or_explain(news["region"], news.get("on_behalf_of"), body, before=before)
        return UpdateResult(self._outputs(news, live, originals, managed))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Sends nothing. Hands the recorded values and originals to the account's adoption record.

        Deleting a setting resource is not giving the account up: after a rename or a replacement,
        another resource manages it and its record stays. When the account is given up, the record
        is deleted right after this, in the same run, and restores, disables or keeps (on_delete).
        """
        region = props.get("region") or id_.split("/", 1)[0]
        managed = self.recorded_managed(props)
        RUN.release(
            self.account({**props, "region": region}),
            Released(
                live={f.name: props.get(f.name) for f in self.setting.fields},
                originals={name: props.get(original_key(name)) for name in managed},
            ),
        )

    def _patch_or_explain(
        self, region: str, on_behalf_of: str | None, body: dict[str, Any], *, before: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PATCH; if the answer was lost, re-read so create and update stay all-or-nothing."""
        client = self._client(region)
        try:
            return client.update(self.setting.path, body, on_behalf_of, validate=self.setting.parse)
        except (TransportError, ServerError) as exc:
            try:
                after = client.get(self.setting.path, on_behalf_of, validate=self.setting.parse)
            except SendGridError:
                was = ", ".join(f"{name}={value!r}" for name, value in before.items())
                raise SendGridError(
                    f"{exc.summary}; whether the change to {self.setting.title} of "
                    f"{describe_account(on_behalf_of, region)} landed is unknown (before: {was})",
                    "run `pulumi refresh` and `pulumi up` again; the values from before are in this message.",
                ) from None
            if all(same(after.get(name), value) for name, value in body.items()):
                log.warning("PATCH answer was lost but SendGrid has the new values; treating as applied")
                return after
            raise


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
