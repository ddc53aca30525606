"""`python -m pulumi_sendgrid_tracking.emulator`: serve the emulator on loopback; prints the base URL first."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from .server import Emulator, load_seed
from .state import DEFAULT_API_KEY, DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW, EmulatorState, Fault


def main(argv: list[str] | None = None) -> int:
    invoked_as = Path(sys.argv[0]).name
    prog = "python -m pulumi_sendgrid_tracking.emulator" if invoked_as in ("__main__.py", "") else invoked_as
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="global API port (0 = a free port)")
    parser.add_argument("--eu-port", type=int, default=0, help="EU API port (0 = a free port)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accept this key, with all scopes (repeatable; default: {DEFAULT_API_KEY})",
    )
    parser.add_argument("--seed", metavar="FILE", help="JSON file with accounts and settings to start from")
    parser.add_argument(
        "--state-file",
        metavar="FILE",
        help="load accounts and settings from FILE if it exists, and save them there on exit "
        "(the emulator then persists like the real service); with --seed, the seed only adds the "
        "accounts the saved world lacks and never deleted",
    )
    parser.add_argument("--subuser", action="append", default=[], metavar="NAME", help="add a global subuser")
    parser.add_argument("--eu-subuser", action="append", default=[], metavar="NAME", help="add an EU subuser")
    parser.add_argument(
        "--customer", action="append", default=[], metavar="ID", help="add a global customer account (account-id ID)"
    )
    parser.add_argument("--eu-customer", action="append", default=[], metavar="ID", help="add an EU customer account")
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, help="requests per window per key")
    parser.add_argument("--rate-window", type=float, default=DEFAULT_RATE_WINDOW, help="window in seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--jitter", type=float, default=0.0, help="up to this many seconds more, at random")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:COUNT]",
        help="answer the next COUNT API requests with a fault (429, 429-no-reset, 500, 502, 503, "
        "504, reset, hang, malformed)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    state = EmulatorState(
        api_keys=args.api_keys or [DEFAULT_API_KEY],
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        latency=args.latency,
        jitter=args.jitter,
    )
    state_file = Path(args.state_file) if args.state_file else None
    try:
        restored = False
        if state_file is not None and state_file.exists():
            state.restore(json.loads(state_file.read_text(encoding="utf-8")))
            restored = True
        if args.seed:
            state.seed(load_seed(args.seed), missing_only=restored)
        for world, names in (("global", args.subuser), ("eu", args.eu_subuser)):
            for name in names:
                if name not in state.worlds[world].subusers:
                    state.add_subuser(world, name)
        for world, ids in (("global", args.customer), ("eu", args.eu_customer)):
            for account_id in ids:
                if account_id not in state.worlds[world].customers:
                    state.add_customer(world, account_id)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(str(exc))
    for spec in args.fault:
        kind, _, count = spec.partition(":")
        state.add_fault(Fault(kind=kind, count=int(count or 1)))

    emulator = Emulator(state, host=args.host, port=args.port, eu_port=args.eu_port).start()
    print(emulator.base_url, flush=True)
    print(f"eu {emulator.eu_base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state.snapshot(), indent=2, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
