"""The ``wavegms`` command line: one subcommand per module.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can fix (a bad value, a missing folder, no TAESD) print one
clear line and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

# name -> module; order is the order of `wavegms --help`.
COMMANDS = {
    "train": "wavegms.train",
    "evaluate": "wavegms.evaluate",
    "predict": "wavegms.predict",
    "demo": "wavegms.demo",
    "course": "wavegms.course",
}


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
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
        message = " ".join(str(error).split()) if "\n" not in str(error) else str(error)
        print(f"wavegms {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
