"""SendGrid tracking settings as Pulumi resources: `from pulumi_sendgrid_tracking import ClickTracking`."""

from ._version import __version__
from .errors import SendGridError
from .providers import ClickTrackingProvider
from .resources import ClickTracking

__all__ = ["ClickTracking", "ClickTrackingProvider", "SendGridError", "__version__"]
