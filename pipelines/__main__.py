"""`python -m pipelines {preview,deploy,drift-check} [--stack S] [--project-dir D] [--emulator] [--format F]`.

Exit codes: 0 success (drift-check: no drift), 1 an error of any kind (bad arguments included),
2 drift (drift-check only). Every outcome, errors included, prints the same JSON shape
(pipelines/output.schema.json) on stdout, or its Markdown summary with `--format markdown`.
"""

from __future__ import annotations

import argparse
import sys

from . import commands
from .common import (
    EXIT_ERROR,
    ArgumentParser,
    environment,
    failure,
    guess_option,
    project_name,
    project_path,
    stack_name,
)
from .output import FORMATS, Output, emit, payload

COMMANDS = {"preview": commands.preview, "deploy": commands.deploy, "drift-check": commands.drift_check}


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--stack", help="stack name (default: $PULUMI_STACK, else dev)")
    parser.add_argument("--project-dir", help="the Pulumi project (default: this repository)")
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against the local emulator and a local state backend in <project>/.pulumi-state, "
        "instead of SendGrid (SENDGRID_API_KEY) and the real backend",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="stdout: the JSON output (default) or its Markdown summary; the Markdown summary is also "
        "appended to $GITHUB_STEP_SUMMARY when that is set",
    )
    parser.add_argument(
        "--markdown-file",
        metavar="PATH",
        help="also write the Markdown summary to PATH (for a pull request comment), whatever --format says",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    output_format = guess_option(argv, "--format", FORMATS) or "json"
    markdown_file = guess_option(argv, "--markdown-file")
    stack = guess_option(argv, "--stack")
    project = project_name(project_path(guess_option(argv, "--project-dir")))
    mode = "emulator" if "--emulator" in argv else "sendgrid"
    try:
        args = _parser().parse_args(argv)
        stack = stack_name(args.stack)
        with environment(args.stack, args.project_dir, emulator=args.emulator, command=args.command) as run:
            return COMMANDS[args.command](run, Output(args.format, args.markdown_file))
    except Exception as exc:  # a bad input or a bug here: either way the documented output, not a traceback
        emit(
            payload(command, stack, mode, exit_code=EXIT_ERROR, project=project, errors=[failure(exc)]),
            Output(output_format, markdown_file),
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
