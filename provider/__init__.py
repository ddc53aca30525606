"""SendGrid click tracking as a Pulumi dynamic resource."""

from ._version import __version__
from .click_tracking import ClickTracking, ClickTrackingProvider
from .errors import SendGridError

__all__ = ["ClickTracking", "ClickTrackingProvider", "SendGridError", "__version__"]
