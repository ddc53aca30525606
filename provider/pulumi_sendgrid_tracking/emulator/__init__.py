"""A local, stateful emulator of SendGrid's tracking settings API, for demos, tests and benchmarks.

Install it with `pip install 'pulumi-sendgrid-tracking[emulator]'` (it needs Werkzeug). It imports
nothing from the rest of `pulumi_sendgrid_tracking`: it is an independent oracle of SendGrid.
Without Werkzeug, the state (`EmulatorState`, no HTTP) still imports; the servers raise an
ImportError naming the extra, and the command line says it in one line.
"""

from typing import Any

from .state import DEFAULT_API_KEY, EmulatorState, Fault

MISSING_EXTRA = (
    "pulumi_sendgrid_tracking.emulator needs Werkzeug, which is not installed. "
    "Install the extra: pip install 'pulumi-sendgrid-tracking[emulator]'"
)
_SERVED = ("AdminClient", "AdminError", "Emulator", "EmulatorProcess")

try:
    from .server import AdminClient, AdminError, Emulator, EmulatorProcess
except ImportError as _exc:
    if (_exc.name or "").split(".")[0] != "werkzeug":
        raise
    _missing = _exc

    def __getattr__(name: str) -> Any:
        if name in _SERVED:
            raise ImportError(MISSING_EXTRA, name="werkzeug") from _missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_API_KEY", "AdminClient", "AdminError", "Emulator", "EmulatorProcess", "EmulatorState", "Fault"]
