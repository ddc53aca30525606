"""A local, stateful emulator of SendGrid's tracking settings API, for demos, tests and benchmarks."""

from .server import AdminClient, Emulator, EmulatorProcess
from .state import DEFAULT_API_KEY, EmulatorState, Fault

__all__ = ["DEFAULT_API_KEY", "AdminClient", "Emulator", "EmulatorProcess", "EmulatorState", "Fault"]
