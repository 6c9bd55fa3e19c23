"""The ``wavegms`` command line: one subcommand per module.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can fix (a bad value, a missing folder, no TAESD) print one
clear line and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Sequence

from . import __version__

# name -> module; order is the order of `wavegms --help`.
COMMANDS = {
    "train": "wavegms.train",
    "evaluate": "wavegms.evaluate",
    "predict": "wavegms.predict",
    "demo": "wavegms.demo",
    "course": "wavegms.course_runner",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows real defaults (not None or False) and keeps a description's paragraphs; paragraphs
    with indented or bulleted lines (examples, lists) keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip().split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith((" ", "- ", "* ")) for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(paragraph.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(paragraphs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavegms",
        description="Wave-GMS: lightweight generative medical image segmentation "
        "(train, evaluate, predict, and run the course).",
    )
    parser.add_argument("--version", action="version", version=f"wavegms {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue  # a subcommand not built yet
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=HelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"wavegms {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotADirectoryError, RuntimeError) as error:
        if args.debug:
            raise
        message = " ".join(str(error).split())  # one line, however the message was wrapped
        print(f"wavegms {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
