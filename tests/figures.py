"""Results of the reliability suites, appended as JSON lines to $RELIABILITY_RESULTS when it is set.

`make reliability` sets it and renders docs/reliability.md from the file; `make test` runs the
same suites without writing figures.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

_lock = threading.Lock()


def record(suite: str, **fields: Any) -> None:
    path = os.environ.get("RELIABILITY_RESULTS")
    if not path:
        return
    with _lock, open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"suite": suite, **fields}, sort_keys=True, default=str) + "\n")
