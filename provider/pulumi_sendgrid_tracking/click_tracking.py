"""SendGrid click tracking as a Pulumi dynamic resource: the ResourceProvider and the Resource.

Methods follow the SDK's order: check, diff, create, read, update, delete (configure first).
Every handler: load inputs, stop on error, call the API, save what the API answered.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

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

from . import config as settings_mod
from .client import ClickTrackingSettings, SendGridClient
from .errors import ConfigurationError, SendGridError, ServerError, TransportError

log = logging.getLogger(__name__)

ON_DELETE_MODES = ("restore", "keep", "disable")
DEFAULT_ON_DELETE = "restore"
MAX_ON_BEHALF_OF_LENGTH = 256
INPUT_KEYS = ("enabled", "on_behalf_of", "region", "on_delete")
OUTPUT_ONLY_KEYS = ("enable_text", "original_enabled")
REPLACE_KEYS = ("on_behalf_of", "region")
UPDATE_KEYS = ("enabled", "on_delete")
PROVIDER_KEY = "__provider"


def _is_unknown(value: Any) -> bool:
    return isinstance(value, pulumi.output.Unknown)


def resource_id(region: str, on_behalf_of: str | None) -> str:
    """`global`, `eu/alice`, `global/account-id 42`: one ID per account and region."""
    return f"{region}/{on_behalf_of}" if on_behalf_of else region


def validate_on_behalf_of(value: Any) -> str | None:
    """The reason an on_behalf_of value is unusable, or None when it is fine."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be a string (a subuser's username or 'account-id <id>'), got {type(value).__name__}"
    if value == "" or value.strip() == "":
        return "must not be empty; omit it (None) to manage the parent account"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "must not contain control characters such as newlines (they would inject HTTP headers)"
    if value != value.strip():
        return "must not start or end with whitespace"
    if len(value) > MAX_ON_BEHALF_OF_LENGTH:
        return (
            f"is {len(value)} characters long; SendGrid usernames are far shorter (at most {MAX_ON_BEHALF_OF_LENGTH})"
        )
    if value.startswith("account-id"):
        rest = value[len("account-id") :]
        if not rest.startswith(" ") or not rest.strip() or " " in rest.strip():
            return "must be 'account-id <id>' with one space and a non-empty id, e.g. 'account-id 42'"
    return None


class ClickTrackingLogic(ResourceProvider):
    """Manages the click tracking singleton of one account (parent or subuser) in one region.

    Pickled by reference and stateless when pickled: settings and HTTP clients live only in
    the provider process. Safe to call from several engine threads at once.
    """

    serialize_as_secret_always = False

    def __init__(self) -> None:
        super().__init__()
        self._stack_config: dict[str, Any] = {}
        self._clients: dict[tuple[str, str, float, float], SendGridClient] = {}
        self._lock = threading.Lock()

    # Nothing of this object is pickled: no key, no client, no config.
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def configure(self, req: ConfigureRequest) -> None:
        """Keep the stack's `sendgrid:*` config (secrets decrypted) in this process only."""
        self._stack_config = {key: req.config.get(key) for key in settings_mod.CONFIG_KEYS}
        _log_to_file_if_asked()

    # -- helpers ------------------------------------------------------------------------------

    def _settings(self) -> settings_mod.Settings:
        return settings_mod.resolve(self._stack_config, os.environ)

    def _client(self, region: str) -> SendGridClient:
        """A pooled client for the region, rebuilt when the key or host changes (key rotation)."""
        resolved = self._settings()
        base_url = settings_mod.base_url_for(resolved, region)
        cache_key = (base_url, resolved.api_key, resolved.request_timeout, resolved.retry_budget)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                client = SendGridClient(
                    resolved.api_key,
                    base_url,
                    request_timeout=resolved.request_timeout,
                    retry_budget=resolved.retry_budget,
                )
                self._clients[cache_key] = client
            return client

    @staticmethod
    def _outputs(props: Mapping[str, Any], live: ClickTrackingSettings, original_enabled: Any) -> dict[str, Any]:
        return {
            "enabled": live.enabled,
            "enable_text": live.enable_text,
            "on_behalf_of": props.get("on_behalf_of"),
            "region": props["region"],
            "on_delete": props.get("on_delete") or DEFAULT_ON_DELETE,
            "original_enabled": original_enabled,
        }

    # -- the SDK's methods, in its order -------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate inputs before anything is sent; fill in defaults (on_delete, region)."""
        failures: list[CheckFailure] = []
        inputs: dict[str, Any] = {}
        for key in sorted(news):
            if key == PROVIDER_KEY or key in INPUT_KEYS:
                continue
            if key in OUTPUT_ONLY_KEYS and news[key] is None:
                continue
            failures.append(
                CheckFailure(
                    key, f"unknown property {key!r}; allowed: {', '.join(INPUT_KEYS)} (enable_text is read-only)"
                )
            )

        enabled = news.get("enabled")
        if _is_unknown(enabled) or isinstance(enabled, bool):
            inputs["enabled"] = enabled
        elif enabled is None:
            failures.append(CheckFailure("enabled", "enabled is required: set it to True or False explicitly"))
        elif isinstance(enabled, str):
            failures.append(
                CheckFailure(
                    "enabled",
                    f"enabled must be a boolean, got the string {enabled!r}; read config with "
                    "`config.require_bool(...)` or compare with `== 'true'`",
                )
            )
        else:
            failures.append(CheckFailure("enabled", f"enabled must be a boolean, got {type(enabled).__name__}"))

        on_behalf_of = news.get("on_behalf_of")
        problem = None if _is_unknown(on_behalf_of) else validate_on_behalf_of(on_behalf_of)
        if problem:
            failures.append(CheckFailure("on_behalf_of", f"on_behalf_of {problem}"))
        else:
            inputs["on_behalf_of"] = on_behalf_of

        on_delete = news.get("on_delete")
        if on_delete is None:
            inputs["on_delete"] = DEFAULT_ON_DELETE
        elif _is_unknown(on_delete) or on_delete in ON_DELETE_MODES:
            inputs["on_delete"] = on_delete
        else:
            failures.append(
                CheckFailure("on_delete", f"on_delete must be one of {', '.join(ON_DELETE_MODES)}, got {on_delete!r}")
            )

        region = news.get("region")
        if _is_unknown(region) or region in settings_mod.REGIONS:
            inputs["region"] = region
        elif region is not None:
            failures.append(
                CheckFailure(
                    "region", f"region must be one of {', '.join(settings_mod.REGIONS)} (or omitted), got {region!r}"
                )
            )
        # Settings problems (no key, a bad base URL...) fail the preview, not the apply.
        try:
            if region is None:
                # The stack's region is resolved now, so changing it later shows as a replacement.
                inputs["region"] = settings_mod.resolve_region(self._stack_config, os.environ)
            resolved = self._settings()
            if isinstance(inputs.get("region"), str):
                settings_mod.base_url_for(resolved, inputs["region"])
        except ConfigurationError as exc:
            failures.append(CheckFailure(exc.setting, str(exc)))
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Local only. enabled/on_delete → update; on_behalf_of/region → replace (another account)."""

        def changed(key: str) -> bool:
            new = news.get(key)
            if key == "on_delete" and new is None:
                new = DEFAULT_ON_DELETE
            return _is_unknown(new) or olds.get(key) != new

        replaces = [key for key in REPLACE_KEYS if changed(key)]
        changes = bool(replaces) or any(changed(key) for key in UPDATE_KEYS)
        # A singleton: the old account's setting is restored before the new one is adopted.
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=bool(replaces))

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Adopt the account's setting: GET, remember it, PATCH only if it differs.

        All or nothing: if the PATCH fails and a re-read shows the old value, the error is
        raised and nothing changed. If the PATCH's fate is unknown, the error says so.
        """
        on_behalf_of = props.get("on_behalf_of")
        region = props["region"]
        desired = props["enabled"]
        client = self._client(region)
        current = client.get_click_tracking(on_behalf_of)
        live = current
        if current.enabled != desired:
            live = self._patch_or_explain(client, desired, on_behalf_of, original=current.enabled)
        return CreateResult(resource_id(region, on_behalf_of), self._outputs(props, live, current.enabled))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: GET the live value; return it as outputs and as inputs so drift shows."""
        region = props.get("region") or id_.split("/", 1)[0]
        on_behalf_of = props.get("on_behalf_of")
        live = self._client(region).get_click_tracking(on_behalf_of)
        outs = self._outputs({**props, "region": region}, live, props.get("original_enabled"))
        inputs = {key: outs[key] for key in INPUT_KEYS}
        return ReadResult(id_, outs, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """One PATCH when `enabled` changed; none when only on_delete changed."""
        on_behalf_of = news.get("on_behalf_of")
        desired = news["enabled"]
        if olds.get("enabled") == desired:
            live = ClickTrackingSettings(enabled=desired, enable_text=bool(olds.get("enable_text")))
        else:
            live = self._client(news["region"]).set_click_tracking(desired, on_behalf_of)
        return UpdateResult(self._outputs(news, live, olds.get("original_enabled")))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Per on_delete: restore original_enabled, keep, or disable. No request if nothing changes.

        Compares with the recorded state; run `pulumi destroy --refresh` if it may have drifted.
        A failure leaves the resource in the state, as the engine expects.
        """
        mode = props.get("on_delete") or DEFAULT_ON_DELETE
        if mode == "keep":
            return
        target = False if mode == "disable" else props.get("original_enabled")
        if not isinstance(target, bool):
            log.warning("no original_enabled recorded for %s; leaving the setting as it is", _id)
            return
        if props.get("enabled") == target:
            return
        self._client(props["region"]).set_click_tracking(target, props.get("on_behalf_of"))

    def _patch_or_explain(
        self, client: SendGridClient, desired: bool, on_behalf_of: str | None, *, original: bool
    ) -> ClickTrackingSettings:
        """PATCH; if the answer was lost, re-read so create stays all-or-nothing."""
        try:
            return client.set_click_tracking(desired, on_behalf_of)
        except (TransportError, ServerError) as exc:
            try:
                after = client.get_click_tracking(on_behalf_of)
            except SendGridError:
                raise SendGridError(
                    f"{exc.summary}; whether the change landed is unknown (click tracking was "
                    f"{'on' if original else 'off'} before)",
                    "run `pulumi refresh` and `pulumi up` again; the original value is in this message.",
                ) from None
            if after.enabled == desired:
                log.warning("PATCH answer was lost but SendGrid has the new value; treating as applied")
                return after
            raise


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
