"""The Pulumi resources: what a program declares. Typed arguments, documented outputs."""

from __future__ import annotations

import pulumi
from pulumi.dynamic import Resource

from .click_tracking import DEFAULT_ON_DELETE
from .providers import ClickTrackingProvider

_CLICK_PROVIDER = ClickTrackingProvider()


class ClickTracking(Resource, module="sendgrid", name="ClickTracking"):
    """Click tracking of the parent account or of one subuser, in one region."""

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
    """The value found when this resource took the setting over."""

    def __init__(
        self,
        resource_name: str,
        *,
        enabled: pulumi.Input[bool],
        on_behalf_of: pulumi.Input[str] | None = None,
        region: pulumi.Input[str] | None = None,
        on_delete: pulumi.Input[str] = DEFAULT_ON_DELETE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "enabled": enabled,
            "on_behalf_of": on_behalf_of,
            "region": region,
            "on_delete": on_delete,
            "enable_text": None,
            "original_enabled": None,
        }
        super().__init__(_CLICK_PROVIDER, resource_name, props, opts)
