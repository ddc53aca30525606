"""A local, stateful emulator of SendGrid's tracking settings API, for demos, tests and benchmarks.

Install it with `pip install 'pulumi-sendgrid-tracking[emulator]'` (it needs Werkzeug). It imports
nothing from the rest of `pulumi_sendgrid_tracking`: it is an independent oracle of SendGrid.
"""

try:
    import werkzeug  # noqa: F401 - only to fail early with the fix in the message
except ImportError as exc:
    raise ImportError(
        "pulumi_sendgrid_tracking.emulator needs Werkzeug, which is not installed. "
        "Install the extra: pip install 'pulumi-sendgrid-tracking[emulator]'",
        name=exc.name,
    ) from exc

from .server import AdminClient, AdminError, Emulator, EmulatorProcess
from .state import DEFAULT_API_KEY, EmulatorState, Fault

__all__ = ["DEFAULT_API_KEY", "AdminClient", "AdminError", "Emulator", "EmulatorProcess", "EmulatorState", "Fault"]
