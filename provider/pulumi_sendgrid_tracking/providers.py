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

from .singleton import AdoptionLogic, OriginalsLogic, SettingProvider
from .tracking import CLICK, GOOGLE_ANALYTICS, OPEN, SUBSCRIPTION

__all__ = [
    "AdoptionProvider",
    "ClickTrackingProvider",
    "GoogleAnalyticsProvider",
    "OpenTrackingProvider",
    "OriginalsProvider",
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


# Pinned: pulumi_sendgrid_tracking.providers.AdoptionProvider (0.2.0 state; retired by the first 0.3.0 up).
class AdoptionProvider(AdoptionLogic):
    """0.2.0's adoption record of one account's setting: deleted by 0.3.0, sending nothing where still managed."""


# Pinned: pulumi_sendgrid_tracking.providers.OriginalsProvider (state since 0.3.0).
class OriginalsProvider(OriginalsLogic):
    """The stack's originals ledger: what each account setting held before the stack took each field over."""
