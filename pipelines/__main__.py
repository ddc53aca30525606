"""`python -m pipelines {preview,deploy,drift-check} [--stack S] [--project-dir D] [--emulator] [--format F]`.

The GitOps pipeline commands, one Pulumi stack each; pipelines/preview, pipelines/deploy and
pipelines/drift-check run them (`pipelines/<command> --help` for each one's options).
Exit codes: 0 success (drift-check: no drift), 1 an error of any kind (bad arguments included),
2 drift (drift-check only). Every outcome, errors included, prints the same JSON shape
(pipelines/output.schema.json) on stdout, or its Markdown summary with `--format markdown`.
"""

from __future__ import annotations

import argparse
import sys

from . import commands
from .common import (
    EXIT_DRIFT,
    EXIT_ERROR,
    EXIT_OK,
    ArgumentParser,
    environment,
    failure,
    guess_option,
    help_epilog,
    project_name,
    project_path,
    stack_name,
)
from .output import FORMATS, Output, emit, payload

COMMANDS = {"preview": commands.preview, "deploy": commands.deploy, "drift-check": commands.drift_check}
ERRORS = (EXIT_ERROR, "an error of any kind, bad arguments included (the output says what and what to do)")
ABOUT: dict[str, tuple[str, str, list[tuple[int, str]]]] = {
    "preview": (
        "what a change would do, for a pull request",
        "For a change under review: runs `pulumi preview` on the stack and reports what each account's tracking\n"
        "settings would become (create, update, delete, unchanged). Changes nothing in SendGrid or the state.",
        [(EXIT_OK, "the preview ran, with or without changes"), ERRORS],
    ),
    "deploy": (
        "apply the program, on merge",
        "On merge: runs `pulumi up --refresh --skip-preview` on the stack: records what SendGrid holds, then\n"
        "applies the program's changes, and reports what changed and every account's settings after the run.",
        [(EXIT_OK, "applied (or nothing to do)"), ERRORS],
    ),
    "drift-check": (
        "report settings changed outside Pulumi, on a schedule",
        "On a schedule: runs `pulumi preview --refresh` on the stack and reports drift, a managed setting whose\n"
        "live value differs from the recorded and the desired one (changed in SendGrid's UI, say). Changes nothing.",
        [(EXIT_OK, "no drift"), (EXIT_DRIFT, "drift: the output lists each drifted setting"), ERRORS],
    ),
}


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", help="stack name (default: $PULUMI_STACK, else dev)")
    parser.add_argument("--project-dir", help="the Pulumi project (default: $PULUMI_PROJECT_DIR, else this repository)")
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


def _parser() -> ArgumentParser:
    """`pipelines COMMAND [options]`; each command's own --help (as pipelines/<command> shows it) has no positional."""
    parser = ArgumentParser(
        prog="pipelines",
        description=__doc__,
        epilog=help_epilog([(EXIT_OK, "success (drift-check: no drift)"), (EXIT_DRIFT, "drift (drift-check)"), ERRORS]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (summary, description, exit_codes) in ABOUT.items():
        command = sub.add_parser(
            name,
            prog=f"pipelines/{name}",
            help=summary,
            description=description,
            epilog=help_epilog(exit_codes),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_options(command)
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
