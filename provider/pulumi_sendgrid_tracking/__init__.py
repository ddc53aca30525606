"""SendGrid tracking settings as Pulumi resources.

from pulumi_sendgrid_tracking import ClickTracking, OpenTracking, SubscriptionTracking, GoogleAnalytics

ClickTracking("alice-clicks", enabled=False, on_behalf_of="alice")
"""

from ._version import __version__
from .errors import SendGridError
from .providers import (
    AdoptionProvider,
    ClickTrackingProvider,
    GoogleAnalyticsProvider,
    OpenTrackingProvider,
    OriginalsProvider,
    SubscriptionTrackingProvider,
)
from .resources import ClickTracking, GoogleAnalytics, OpenTracking, Originals, SubscriptionTracking

__all__ = [
    "AdoptionProvider",
    "ClickTracking",
    "ClickTrackingProvider",
    "GoogleAnalytics",
    "GoogleAnalyticsProvider",
    "OpenTracking",
    "OpenTrackingProvider",
    "Originals",
    "OriginalsProvider",
    "SendGridError",
    "SubscriptionTracking",
    "SubscriptionTrackingProvider",
    "__version__",
]
