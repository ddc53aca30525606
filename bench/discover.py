"""Bench section `discover`: pipelines/discover's time and requests for N subusers under a rate limit, vs the floor.

For each N (BENCH_DISCOVER_SIZES, default 100,1000,10000): a fresh emulator world of N subusers, half in
each region, with mixed settings, answering with 50 ms latency and allowing BENCH_DISCOVER_RATES requests
per second (one per size, default SendGrid's published 600/min = 10/s for each) over a fixed window of
BENCH_DISCOVER_WINDOW seconds (60, as SendGrid counts per minute). Discover runs in this process as the
command runs it (list, read every setting of every account, build, write and re-parse the fleet file),
through the package's client paced at BENCH_DISCOVER_HEADROOM x the rate (`sendgrid:maxRequestsPerSecond`).
The floor is the requests needed divided by the allowed rate. The emulator's log gives the requests sent,
the 429s and the errors.

At the defaults the section takes about 56 minutes (floors of 31, 302 and 3,011 s);
`BENCH_DISCOVER_SIZES=100,1000 python -m bench discover` about 6. A size run at another rate
(`BENCH_DISCOVER_RATES=10,10,100`) is shown as such in BENCHMARKS.md, with its floor at SendGrid's rate.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pulumi_sendgrid_tracking import config as config_mod
from pulumi_sendgrid_tracking.emulator import Emulator, EmulatorState
from pulumi_sendgrid_tracking.tracking import SETTINGS

from pipelines.discover import (
    SUBUSERS_PAGE,
    Reader,
    build_fleet,
    check_round_trip,
    discover,
    render_fleet,
    requests_per_account,
)

KEY = "SG.bench-key"
LATENCY = 0.05


def _ints(name: str, default: str) -> list[int]:
    return [int(v) for v in os.environ.get(name, default).split(",") if v.strip()]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def world(n: int) -> dict[str, Any]:
    """N subusers, half global and half EU, whose four settings vary with their index."""

    def settings(i: int) -> dict[str, Any]:
        return {
            "click": {"enabled": i % 3 != 0},
            "open": {"enabled": i % 4 == 0},
            "subscription": {"enabled": i % 5 == 0, **({"url": f"https://example.com/u/{i}"} if i % 7 == 0 else {})},
            "google_analytics": {"enabled": i % 6 == 0, **({"utm_source": "sendgrid"} if i % 6 == 0 else {})},
        }

    half = n // 2
    return {
        "global": {"subusers": {f"g{i:05}": settings(i) for i in range(half)}},
        "eu": {"subusers": {f"e{i:05}": settings(i) for i in range(n - half)}},
    }


def one(n: int, rate: float, window: float, headroom: float) -> dict[str, Any]:
    state = EmulatorState(api_keys=[KEY], latency=LATENCY)
    state.configure(rate_limit=int(rate * window), rate_window=window)
    state.seed(world(n))
    pace = rate * headroom
    # Enough threads to keep the paced rate busy through the latency (and the machine's own delays).
    jobs = max(4, math.ceil(pace * LATENCY * 4))
    settings = list(SETTINGS.values())
    # The parent: a GET per setting and the list; the pages of subusers; then each subuser's reads.
    needed = len(settings) + 1 + (n // SUBUSERS_PAGE + 1) + n * requests_per_account(settings, use_list=True)
    log(f"discover: N={n}, {rate:g}/s, pacing {pace:.2f}/s, {jobs} threads, floor {needed / rate:.0f} s")
    with Emulator(state) as emulator, tempfile.TemporaryDirectory() as tmp:
        env = {"SENDGRID_API_KEY": KEY, "SENDGRID_BASE_URL": emulator.base_url}
        env |= {"SENDGRID_EU_BASE_URL": emulator.eu_base_url, "SENDGRID_MAX_REQUESTS_PER_SECOND": f"{pace:.4f}"}
        env["SENDGRID_RETRY_BUDGET"] = str(2 * window)
        resolved = config_mod.resolve({}, env)
        load_before = [round(v, 2) for v in os.getloadavg()]
        started = time.monotonic()
        reader = Reader(resolved, "global", settings)
        try:
            found = discover(reader, jobs=jobs)
            fleet, _ = build_fleet(found, "global")
            text = render_fleet(fleet, found, stack="bench", hosts=reader.hosts(), api_key=KEY, skipped=0)
            path = Path(tmp) / "fleet.yaml"
            path.write_text(text, encoding="utf-8")
            check_round_trip(path.read_text(encoding="utf-8"), fleet, "global", str(path))
        finally:
            reader.close()
        wall = time.monotonic() - started
        entries = state.request_log()
    ok = [e for e in entries if e["status"] == 200]
    span = max(e["time"] for e in entries) - min(e["time"] for e in entries) if entries else 0.0
    return {
        "n": n,
        "rate_per_s": rate,
        "window_s": window,
        "pacing_per_s": pace,
        "threads": jobs,
        "requests_needed": needed,
        "requests": len(entries),
        "ok": len(ok),
        "rate_limited": sum(e["status"] == 429 for e in entries),
        "errors": sum(e["status"] not in (200, 429) for e in entries),
        "accounts_declared": len(fleet.declared),
        "fleet_lines": len(text.splitlines()),
        "fleet_bytes": len(text.encode()),
        "floor_s": needed / rate,
        "wall_s": wall,
        "ratio_to_floor": wall / (needed / rate),
        "api_span_s": span,
        "achieved_per_s": (len(entries) - 1) / span if span else None,
        "loadavg": [load_before, [round(v, 2) for v in os.getloadavg()]],
    }


def discover_section() -> dict[str, Any]:
    sizes = _ints("BENCH_DISCOVER_SIZES", "100,1000,10000")
    rates = [float(r) for r in os.environ.get("BENCH_DISCOVER_RATES", "").split(",") if r.strip()]
    rates = (rates or [10.0]) * len(sizes) if len(rates) <= 1 else rates
    window = float(os.environ.get("BENCH_DISCOVER_WINDOW", "60"))
    headroom = float(os.environ.get("BENCH_DISCOVER_HEADROOM", "0.98"))
    runs = [one(n, rate, window, headroom) for n, rate in zip(sizes, rates, strict=True)]
    return {"latency_s": LATENCY, "sendgrid_rate_per_s": 10.0, "runs": runs}
