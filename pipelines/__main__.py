"""`python -m pipelines {preview,deploy,drift-check} [--stack S] [--project-dir D] [--emulator] [--format F]`.

Exit codes: 0 success (drift-check: no drift), 1 an error of any kind (bad arguments included),
2 drift (drift-check only). Every outcome, errors included, prints the same JSON shape
(pipelines/output.schema.json) on stdout, or its Markdown summary with `--format markdown`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import NoReturn

from . import commands
from .common import EXIT_ERROR, PipelineError, environment, project_name, project_path, stack_name
from .messages import error
from .output import FORMATS, Output, emit, payload

COMMANDS = {"preview": commands.preview, "deploy": commands.deploy, "drift-check": commands.drift_check}


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is a PipelineError (exit 1 and the JSON output), not exit 2 and usage text."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()[1:])
        raise PipelineError(f"bad arguments: {message}", f"usage: {usage}", kind="arguments")


def _parser() -> _Parser:
    parser = _Parser(prog="pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def _guess(argv: list[str], option: str, allowed: tuple[str, ...] | None = None) -> str | None:
    """An option's value read before parsing, for the output of a run whose arguments are bad."""
    for index, arg in enumerate(argv):
        found = arg.split("=", 1)[1] if arg.startswith(f"{option}=") else None
        if arg == option and index + 1 < len(argv):
            found = argv[index + 1]
        if found is not None and (allowed is None or found in allowed):
            return found
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    output_format = _guess(argv, "--format", FORMATS) or "json"
    markdown_file = _guess(argv, "--markdown-file")
    stack = _guess(argv, "--stack")
    project = project_name(project_path(_guess(argv, "--project-dir")))
    mode = "emulator" if "--emulator" in argv else "sendgrid"
    try:
        args = _parser().parse_args(argv)
        stack = stack_name(args.stack)
        with environment(args.stack, args.project_dir, emulator=args.emulator) as run:
            return COMMANDS[args.command](run, Output(args.format, args.markdown_file))
    except PipelineError as exc:
        failure = error(exc.kind, exc.message, exc.hint)
        emit(
            payload(command, stack, mode, exit_code=EXIT_ERROR, project=project, errors=[failure]),
            Output(output_format, markdown_file),
        )
        return EXIT_ERROR
    except Exception as exc:  # a bug here must still end in the documented output, not a traceback
        failure = error(
            "internal",
            f"the pipeline itself failed: {exc.__class__.__name__}: {exc}",
            "this is a bug in pipelines/; report it with this output (the traceback is in `details`)",
            details=traceback.format_exc().splitlines()[-20:],
        )
        emit(
            payload(command, stack, mode, exit_code=EXIT_ERROR, project=project, errors=[failure]),
            Output(output_format, markdown_file),
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
