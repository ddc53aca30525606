"""The provider classes that users' stack state names. Never move, rename or remove them.

Pulumi pickles a dynamic resource's provider into the state (the `__provider` input and output)
by reference: module path plus class name, e.g. `pulumi_sendgrid_tracking.providers.ClickTrackingProvider`.
`pulumi refresh` and `pulumi destroy` do not run the program: they unpickle that reference from
the state and call it. If a class moved, every existing stack would fail to refresh or destroy
(`ModuleNotFoundError` or `AttributeError` while unpickling). So the classes live here, in a module
whose only job is to keep these names, and the pickle holds nothing but the reference: no key, no
settings, no code. The logic they inherit (`singleton.py`) may change and move freely.
`tests/compat/` pins this: providers and state saved by earlier releases must load, refresh and destroy.
"""

from __future__ import annotations

from .singleton import AdoptionLogic, SettingProvider
from .tracking import CLICK, GOOGLE_ANALYTICS, OPEN, SUBSCRIPTION

__all__ = [
    "AdoptionProvider",
    "ClickTrackingProvider",
    "GoogleAnalyticsProvider",
    "OpenTrackingProvider",
    "SubscriptionTrackingProvider",
]


# Pinned: pulumi_sendgrid_tracking.providers.ClickTrackingProvider (state since 0.2.0).
class ClickTrackingProvider(SettingProvider):
    """Click tracking of one account (parent, subuser or customer account) in one region."""

    setting = CLICK


# Pinned: pulumi_sendgrid_tracking.providers.OpenTrackingProvider.
class OpenTrackingProvider(SettingProvider):
    """Open tracking of one account in one region."""

    setting = OPEN


# Pinned: pulumi_sendgrid_tracking.providers.SubscriptionTrackingProvider.
class SubscriptionTrackingProvider(SettingProvider):
    """Subscription tracking (unsubscribe footer and landing) of one account in one region."""

    setting = SUBSCRIPTION


# Pinned: pulumi_sendgrid_tracking.providers.GoogleAnalyticsProvider.
class GoogleAnalyticsProvider(SettingProvider):
    """Google Analytics tracking (utm parameters) of one account in one region."""

    setting = GOOGLE_ANALYTICS


# Pinned: pulumi_sendgrid_tracking.providers.AdoptionProvider.
class AdoptionProvider(AdoptionLogic):
    """The adoption record of one account's setting: what was there before the stack took it over."""
