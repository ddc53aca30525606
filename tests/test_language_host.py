"""The Python language host (tools/engine/language_host.py) starts without importing the whole SDK.

Every `pulumi` command starts it before the program runs, so what it imports is paid by each preview.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "tools" / "engine"

IMPORT_HOST = f"""
import sys
sys.path.insert(0, {str(ENGINE)!r})
import language_host
print(sorted(m for m in sys.modules if m == "pulumi" or m.startswith(("pulumi.", "pulumi_sendgrid_tracking"))))
response = language_host.language_pb2.RunResponse(error="boom", bail=True)
print(type(response).FromString(response.SerializeToString()).error)
print(language_host.plugin_pb2.PluginInfo(version="3.260.0").version)
print(issubclass(language_host.PythonLanguageHost, language_host.language_pb2_grpc.LanguageRuntimeServicer))
"""


def test_the_host_loads_its_three_protocol_modules_and_nothing_else_of_the_sdk() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_HOST], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    # No SDK package left behind (the automation API, the runtime: about 0.3 s of imports), and the
    # messages the engine exchanges with the host still round-trip.
    assert out == ["[]", "boom", "3.260.0", "True"]
