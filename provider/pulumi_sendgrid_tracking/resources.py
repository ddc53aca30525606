"""The Pulumi resources a program declares: typed arguments, documented outputs.

Each setting resource also declares its account's adoption record (`Adoption`, named
`<setting>/<region>[/<on_behalf_of>]`), which reads the setting once before anything changes and
keeps what it found; see `singleton.py` and docs/behaviour.md, "Ownership and originals".
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import pulumi
from pulumi.dynamic import Resource, ResourceProvider

from . import config as config_mod
from .errors import ConfigurationError
from .inputs import DEFAULT_ON_DELETE, adoption_name, describe_account, on_behalf_of_problem, region_problem
from .providers import (
    AdoptionProvider,
    ClickTrackingProvider,
    GoogleAnalyticsProvider,
    OpenTrackingProvider,
    SubscriptionTrackingProvider,
)
from .singleton import SettingProvider
from .stack_config import check_running_program

__all__ = ["Adoption", "ClickTracking", "GoogleAnalytics", "OpenTracking", "SubscriptionTracking"]

_ADOPTION_PROVIDER = AdoptionProvider()
_CLICK_PROVIDER = ClickTrackingProvider()
_OPEN_PROVIDER = OpenTrackingProvider()
_SUBSCRIPTION_PROVIDER = SubscriptionTrackingProvider()
_GOOGLE_ANALYTICS_PROVIDER = GoogleAnalyticsProvider()

_OWNERS: dict[tuple[str, str, str, str, str | None], str] = {}
"""(project, stack, setting, region, on_behalf_of) → the resource that declared it, in this program."""


class Adoption(Resource, module="sendgrid", name="Adoption"):
    """The adoption record of one account's setting: what SendGrid held before this stack took it over.

    Declared by the setting resources; a program does not declare it itself. It sends one GET when
    created. It stays as long as some resource of the program manages that account's setting, whatever
    that resource is called; when the account is given up, its delete restores, disables or keeps.
    """

    setting: pulumi.Output[str]
    """click, open, subscription or google_analytics."""
    region: pulumi.Output[str]
    """`global` or `eu`."""
    on_behalf_of: pulumi.Output[str | None]
    """The subuser (or `account-id <id>`); None for the parent account."""
    on_delete: pulumi.Output[str]
    """What giving the account up does: restore, keep or disable (the setting resource's on_delete)."""
    managed_fields: pulumi.Output[list[str]]
    """The fields the setting resource manages: those restored."""
    observed: pulumi.Output[dict[str, Any]]
    """Every field as SendGrid answered before this stack changed anything."""
    token: pulumi.Output[str]
    """A random token of the read (lets the setting's create skip a second GET)."""

    def __init__(
        self,
        resource_name: str,
        *,
        setting: str,
        region: str,
        on_behalf_of: str | None,
        on_delete: pulumi.Input[str],
        managed_fields: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "setting": setting,
            "region": region,
            "on_behalf_of": on_behalf_of,
            "on_delete": on_delete,
            "managed_fields": managed_fields,
            "observed": None,
            "token": None,
        }
        _register(self, _ADOPTION_PROVIDER, resource_name, props, opts)


def _register(
    resource: Resource,
    provider: ResourceProvider,
    name: str,
    props: dict[str, Any],
    opts: pulumi.ResourceOptions | None,
) -> None:
    """`Resource.__init__`, undoing what the SDK's `serialize_provider` leaves behind.

    Each call wraps `pickle._Pickler._batch_setitems` once more and never unwraps it, so every
    dynamic resource adds a stack frame to every later pickle, and a program with about a thousand
    of them fails with RecursionError (compare pulumi/pulumi#17803). Restoring both methods after
    each registration keeps the depth at one.
    """
    pickler: Any = pickle._Pickler
    saved = (pickler._batch_setitems, pickler.save_dict)
    try:
        Resource.__init__(resource, provider, name, props, opts)
    finally:
        pickler._batch_setitems, pickler.save_dict = saved


def stack_region() -> str:
    """The region of a resource that names none: the stack's sendgrid:region (or SENDGRID_REGION), else global.

    An invalid value is kept as it is: the resource's check reports it at preview.
    """
    try:
        return config_mod.resolve_region({"sendgrid:region": pulumi.Config("sendgrid").get("region")}, os.environ)
    except ConfigurationError:
        return pulumi.Config("sendgrid").get("region") or os.environ.get("SENDGRID_REGION") or "global"


def _plain(value: Any, argument: str, resource_name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise pulumi.RunError(
        f"{resource_name}: {argument} must be a plain string (or None) when the program runs, got "
        f"{type(value).__name__}: it names the account's adoption record and lets the program refuse two "
        "resources for one account. Resolve it before declaring the resource."
    )


def _declare(
    resource: Resource,
    provider: SettingProvider,
    resource_name: str,
    props: dict[str, Any],
    opts: pulumi.ResourceOptions | None,
) -> None:
    """Check the stack config and that the account has one owner; declare its adoption record, then the setting."""
    if problems := check_running_program():
        raise pulumi.RunError(
            f"invalid stack config (Pulumi.{pulumi.get_stack()}.yaml):\n  - " + "\n  - ".join(problems)
        )
    setting = provider.setting
    on_behalf_of = _plain(props.get("on_behalf_of"), "on_behalf_of", resource_name)
    region = _plain(props.get("region"), "region", resource_name)
    if region is None:
        region = stack_region()
    key = (pulumi.get_project(), pulumi.get_stack(), setting.name, region, on_behalf_of)
    other = _OWNERS.get(key)
    if other is not None and other != resource_name:
        raise pulumi.RunError(
            f"{setting.resource} resources {other!r} and {resource_name!r} both manage {setting.title} of "
            f"{describe_account(on_behalf_of, region)}: one account's setting has one owner. Remove one of "
            "them (or give them different on_behalf_of/region values)."
        )
    _OWNERS[key] = resource_name
    if on_behalf_of_problem(on_behalf_of) or region_problem(region):
        # No record for an account that cannot exist: the setting's check reports the input at preview.
        _register(resource, provider, resource_name, props, opts)
        return
    adoption = Adoption(
        adoption_name(setting.name, region, on_behalf_of),
        setting=setting.name,
        region=region,
        on_behalf_of=on_behalf_of,
        on_delete=props.get("on_delete") or DEFAULT_ON_DELETE,
        managed_fields=provider.managed(props),
        opts=pulumi.ResourceOptions(depends_on=opts.depends_on if opts is not None else None),
    )
    props["adoption"] = {"observed": adoption.observed, "token": adoption.token}
    for key_ in provider.output_only_keys():
        props.setdefault(key_, None)
    _register(resource, provider, resource_name, props, opts)


class ClickTracking(Resource, module="sendgrid", name="ClickTracking"):
    """Click tracking of the parent account, a subuser or a customer account, in one region."""

    enabled: pulumi.Output[bool]
    """Whether click tracking is on, as SendGrid last answered."""
    enable_text: pulumi.Output[bool]
    """Whether click tracking covers plain-text mail (read-only, from SendGrid)."""
    on_behalf_of: pulumi.Output[str | None]
    """The subuser (or `account-id <id>`); None for the parent account."""
    region: pulumi.Output[str]
    """`global` or `eu`."""
    on_delete: pulumi.Output[str]
    """What destroy does: restore, keep or disable."""
    original_enabled: pulumi.Output[bool]
    """The value found when this stack took the setting over."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"enabled": enabled, "on_behalf_of": on_behalf_of, "region": region, "on_delete": on_delete}
        _declare(self, _CLICK_PROVIDER, resource_name, props, opts)


class OpenTracking(Resource, module="sendgrid", name="OpenTracking"):
    """Open tracking (an invisible image that records opens) of one account, in one region."""

    enabled: pulumi.Output[bool]
    """Whether open tracking is on, as SendGrid last answered."""
    on_behalf_of: pulumi.Output[str | None]
    """The subuser (or `account-id <id>`); None for the parent account."""
    region: pulumi.Output[str]
    """`global` or `eu`."""
    on_delete: pulumi.Output[str]
    """What destroy does: restore, keep or disable."""
    original_enabled: pulumi.Output[bool]
    """The value found when this stack took the setting over."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"enabled": enabled, "on_behalf_of": on_behalf_of, "region": region, "on_delete": on_delete}
        _declare(self, _OPEN_PROVIDER, resource_name, props, opts)


class SubscriptionTracking(Resource, module="sendgrid", name="SubscriptionTracking"):
    """Subscription tracking (the unsubscribe footer and where an unsubscribe lands) of one account.

    Fields other than `enabled` are managed only when given: a field left out is never sent,
    compared or restored, and its live value is still an output.
    """

    enabled: pulumi.Output[bool]
    """Whether SendGrid adds the unsubscribe footer, as it last answered."""
    html_content: pulumi.Output[str | None]
    """The HTML footer, as SendGrid last answered."""
    plain_content: pulumi.Output[str | None]
    """The plain-text footer, as SendGrid last answered."""
    replace: pulumi.Output[str | None]
    """The tag that templates use to place the footer themselves, as SendGrid last answered."""
    url: pulumi.Output[str | None]
    """Where an unsubscribe sends the recipient (wins over `landing`), as SendGrid last answered."""
    landing: pulumi.Output[str | None]
    """The HTML page SendGrid shows after an unsubscribe, as SendGrid last answered."""
    on_behalf_of: pulumi.Output[str | None]
    """The subuser (or `account-id <id>`); None for the parent account."""
    region: pulumi.Output[str]
    """`global` or `eu`."""
    on_delete: pulumi.Output[str]
    """What destroy does: restore, keep or disable."""
    original_enabled: pulumi.Output[bool]
    """`enabled` when this stack took the setting over."""
    original_html_content: pulumi.Output[str | None]
    """`html_content` when this resource started managing it (None if unmanaged)."""
    original_plain_content: pulumi.Output[str | None]
    """`plain_content` when this resource started managing it (None if unmanaged)."""
    original_replace: pulumi.Output[str | None]
    """`replace` when this resource started managing it (None if unmanaged)."""
    original_url: pulumi.Output[str | None]
    """`url` when this resource started managing it (None if unmanaged or absent)."""
    original_landing: pulumi.Output[str | None]
    """`landing` when this resource started managing it (None if unmanaged)."""
    managed_fields: pulumi.Output[list[str]]
    """The fields this resource manages: `enabled` and those the program gives."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        html_content: pulumi.Input[str] | None = None,
        plain_content: pulumi.Input[str] | None = None,
        replace: pulumi.Input[str] | None = None,
        url: pulumi.Input[str] | None = None,
        landing: pulumi.Input[str] | None = None,
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "enabled": enabled,
            "html_content": html_content,
            "plain_content": plain_content,
            "replace": replace,
            "url": url,
            "landing": landing,
            "on_behalf_of": on_behalf_of,
            "region": region,
            "on_delete": on_delete,
        }
        _declare(self, _SUBSCRIPTION_PROVIDER, resource_name, props, opts)


class GoogleAnalytics(Resource, module="sendgrid", name="GoogleAnalytics"):
    """Google Analytics tracking (utm parameters added to links) of one account, in one region.

    Fields other than `enabled` are managed only when given: a field left out is never sent,
    compared or restored, and its live value is still an output.
    """

    enabled: pulumi.Output[bool]
    """Whether SendGrid adds utm parameters to links, as it last answered."""
    utm_source: pulumi.Output[str | None]
    """utm_source, as SendGrid last answered."""
    utm_medium: pulumi.Output[str | None]
    """utm_medium, as SendGrid last answered."""
    utm_term: pulumi.Output[str | None]
    """utm_term, as SendGrid last answered."""
    utm_content: pulumi.Output[str | None]
    """utm_content, as SendGrid last answered."""
    utm_campaign: pulumi.Output[str | None]
    """utm_campaign, as SendGrid last answered."""
    on_behalf_of: pulumi.Output[str | None]
    """The subuser (or `account-id <id>`); None for the parent account."""
    region: pulumi.Output[str]
    """`global` or `eu`."""
    on_delete: pulumi.Output[str]
    """What destroy does: restore, keep or disable."""
    original_enabled: pulumi.Output[bool]
    """`enabled` when this stack took the setting over."""
    original_utm_source: pulumi.Output[str | None]
    """utm_source when this resource started managing it (None if unmanaged)."""
    original_utm_medium: pulumi.Output[str | None]
    """utm_medium when this resource started managing it (None if unmanaged)."""
    original_utm_term: pulumi.Output[str | None]
    """utm_term when this resource started managing it (None if unmanaged)."""
    original_utm_content: pulumi.Output[str | None]
    """utm_content when this resource started managing it (None if unmanaged)."""
    original_utm_campaign: pulumi.Output[str | None]
    """utm_campaign when this resource started managing it (None if unmanaged)."""
    managed_fields: pulumi.Output[list[str]]
    """The fields this resource manages: `enabled` and those the program gives."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        utm_source: pulumi.Input[str] | None = None,
        utm_medium: pulumi.Input[str] | None = None,
        utm_term: pulumi.Input[str] | None = None,
        utm_content: pulumi.Input[str] | None = None,
        utm_campaign: pulumi.Input[str] | None = None,
        on_behalf_of: str | None = None,
        region: str | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "enabled": enabled,
            "utm_source": utm_source,
            "utm_medium": utm_medium,
            "utm_term": utm_term,
            "utm_content": utm_content,
            "utm_campaign": utm_campaign,
            "on_behalf_of": on_behalf_of,
            "region": region,
            "on_delete": on_delete,
        }
        _declare(self, _GOOGLE_ANALYTICS_PROVIDER, resource_name, props, opts)
