"""`python -m pipelines {preview,deploy,drift-check} [--stack S] [--project-dir D] [--emulator]`; see common.py."""

from __future__ import annotations

import argparse
import sys

from . import commands
from .common import EXIT_ERROR, PipelineError, emit, environment

COMMANDS = {"preview": commands.preview, "deploy": commands.deploy, "drift-check": commands.drift_check}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipelines", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--stack", help="stack name (default: $PULUMI_STACK, else dev)")
    parser.add_argument("--project-dir", help="the Pulumi project (default: this repository)")
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against the local emulator and a local state backend in <project>/.pulumi-state, "
        "instead of SendGrid (SENDGRID_API_KEY) and the real backend",
    )
    args = parser.parse_args(argv)
    try:
        with environment(args.stack, args.project_dir, emulator=args.emulator) as run:
            return COMMANDS[args.command](run)
    except PipelineError as exc:
        emit({"command": args.command, "ok": False, "errors": [str(exc)]}, [f"{args.command}: {exc}"])
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
