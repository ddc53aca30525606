"""Serve a local, stateful emulator of SendGrid's tracking settings API on loopback.

Two listeners share one state: the global API root and the EU one (api.sendgrid.com and
api.eu.sendgrid.com on the real service). The first two lines on stdout are the URLs:
`http://127.0.0.1:<port>` then `eu http://127.0.0.1:<port>`. It serves until SIGTERM or Ctrl-C,
then saves its state to --state-file (if given). The admin API (/__emulator/...) changes the
world at run time: accounts, faults, keys, latency and rate limits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .errors import InvalidValue
from .state import (
    DEFAULT_API_KEY,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RATE_WINDOW,
    FAULT_KINDS,
    MAX_DELAY,
    MAX_RATE_WINDOW,
    EmulatorState,
    Fault,
    check_count,
    check_seconds,
)

EXTRA = "pip install 'pulumi-sendgrid-tracking[emulator]'"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EPILOG = f"""\
environment:
  none: everything comes from the options above (the provider's SENDGRID_* variables are not read;
  point them at the printed URLs to use the emulator).

exit codes:
  0  stopped by SIGTERM or Ctrl-C (the state saved to --state-file, if given)
  1  cannot serve: Werkzeug is missing ({EXTRA}),
     a port is taken, or the state cannot be saved
  2  bad options, or a --seed or --state-file that cannot be read (one line on stderr)
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr (no usage block) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _typed(parse: Callable[[str], Any], check: Callable[[Any], Any]) -> Callable[[str], Any]:
    """An argparse type: parse the text, then the state's own check (one rule for flags and the admin API)."""

    def convert(text: str) -> Any:
        try:
            return check(parse(text))
        except InvalidValue as exc:
            raise argparse.ArgumentTypeError(exc.reason) from None
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None

    return convert


def _whole(text: str) -> int:
    return int(text)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 1 to 65535, or 0 for a free one")
    return port


def _fault(text: str) -> Fault:
    kind, colon, count = text.partition(":")
    try:
        number = int(count) if colon else 1
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: COUNT must be a whole number of at least 1, e.g. {kind}:3"
        ) from None
    try:
        return Fault(kind=kind, count=number)
    except InvalidValue as exc:
        if exc.field == "kind":
            raise argparse.ArgumentTypeError(f"{text!r}: KIND must be one of {', '.join(FAULT_KINDS)}") from None
        raise argparse.ArgumentTypeError(f"{text!r}: COUNT {exc.reason}") from None


def _named(flag: str, add: Callable[[], Any]) -> None:
    """Add an account named on the command line; a bad name is reported under its flag."""
    try:
        add()
    except InvalidValue as exc:
        raise ValueError(f"argument {flag}: {exc.reason}") from None


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line: every option with its help, the environment and the exit codes in the epilog."""
    p = _Parser(prog=prog, description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=0, metavar="PORT", help="global API port, 1-65535 (default 0: a free port)"
    )
    p.add_argument(
        "--eu-port", type=_port, default=0, metavar="PORT", help="EU API port, 1-65535 (default 0: a free port)"
    )
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accept this key, with all scopes (repeatable; default: {DEFAULT_API_KEY})",
    )
    p.add_argument("--seed", metavar="FILE", help="JSON file with accounts and settings to start from")
    p.add_argument(
        "--state-file",
        metavar="FILE",
        help="load accounts and settings from FILE if it exists, and save them there on exit "
        "(the emulator then persists like the real service); with --seed, the seed only adds the "
        "accounts the saved world lacks and never deleted",
    )
    p.add_argument("--subuser", action="append", default=[], metavar="NAME", help="add a global subuser")
    p.add_argument("--eu-subuser", action="append", default=[], metavar="NAME", help="add an EU subuser")
    p.add_argument(
        "--customer",
        action="append",
        default=[],
        metavar="ID",
        help="add a global customer account (on-behalf-of: account-id ID); ID is letters and digits, "
        "as SendGrid shows it, e.g. sg2a2bcd3ef4ab5c67d8efab91c01de2fa",
    )
    p.add_argument("--eu-customer", action="append", default=[], metavar="ID", help="add an EU customer account")
    p.add_argument(
        "--rate-limit",
        metavar="N",
        type=_typed(_whole, lambda v: check_count("rate_limit", v)),
        default=DEFAULT_RATE_LIMIT,
        help=f"requests per window per key, at least 1 (default: {DEFAULT_RATE_LIMIT}, SendGrid's published figure)",
    )
    p.add_argument(
        "--rate-window",
        metavar="SECONDS",
        type=_typed(float, lambda v: check_seconds("rate_window", v, above_zero=True, maximum=MAX_RATE_WINDOW)),
        default=DEFAULT_RATE_WINDOW,
        help=f"the rate limit's window in seconds, above 0 and at most {MAX_RATE_WINDOW:g} "
        f"(default: {DEFAULT_RATE_WINDOW:g})",
    )
    p.add_argument(
        "--latency",
        metavar="SECONDS",
        type=_typed(float, lambda v: check_seconds("latency", v)),
        default=0.0,
        help=f"seconds added to every API answer, 0 to {MAX_DELAY:g} (default: 0)",
    )
    p.add_argument(
        "--jitter",
        metavar="SECONDS",
        type=_typed(float, lambda v: check_seconds("jitter", v)),
        default=0.0,
        help=f"up to this many seconds more, at random, 0 to {MAX_DELAY:g} (default: 0)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="KIND[:COUNT]",
        help=f"answer the next COUNT (default 1) API requests with a fault; KIND is one of {', '.join(FAULT_KINDS)} "
        "(repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    invoked_as = Path(sys.argv[0]).name
    prog = "python -m pulumi_sendgrid_tracking.emulator" if invoked_as in ("__main__.py", "") else invoked_as
    cli = parser(prog)
    args = cli.parse_args(argv)
    try:
        from .server import Emulator, load_seed  # noqa: PLC0415 - Werkzeug is the [emulator] extra's
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "werkzeug":
            raise
        print(f"{prog}: error: the emulator needs Werkzeug, which is not installed: {EXTRA}", file=sys.stderr)
        return EXIT_ERROR

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    state_file = Path(args.state_file) if args.state_file else None
    try:
        state = EmulatorState(
            api_keys=args.api_keys or [DEFAULT_API_KEY],
            rate_limit=args.rate_limit,
            rate_window=args.rate_window,
            latency=args.latency,
            jitter=args.jitter,
        )
        restored = False
        if state_file is not None and state_file.exists():
            state.restore(json.loads(state_file.read_text(encoding="utf-8")))
            restored = True
        if args.seed:
            state.seed(load_seed(args.seed), missing_only=restored)
        for flag, world, names in (("--subuser", "global", args.subuser), ("--eu-subuser", "eu", args.eu_subuser)):
            for name in names:
                if name not in state.worlds[world].subusers:
                    _named(flag, lambda: state.add_subuser(world, name))  # noqa: B023 - called at once
        for flag, world, ids in (("--customer", "global", args.customer), ("--eu-customer", "eu", args.eu_customer)):
            for account_id in ids:
                if account_id not in state.worlds[world].customers:
                    _named(flag, lambda: state.add_customer(world, account_id))  # noqa: B023 - called at once
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        cli.error(str(exc))
    for fault in args.fault:
        state.add_fault(fault)

    try:
        emulator = Emulator(state, host=args.host, port=args.port, eu_port=args.eu_port).start()
    except OSError as exc:
        where = f"{args.host} (--port {args.port}, --eu-port {args.eu_port})"
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"{prog}: error: cannot listen on {where}: {why}", file=sys.stderr)
        return EXIT_ERROR
    print(emulator.base_url, flush=True)
    print(f"eu {emulator.eu_base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    if state_file is not None:
        try:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state_file.write_text(json.dumps(state.snapshot(), indent=2, sort_keys=True), encoding="utf-8")
        except OSError as exc:
            print(f"{prog}: error: cannot save the state to {state_file}: {exc}", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
