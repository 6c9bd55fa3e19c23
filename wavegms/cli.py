"""The ``wavegms`` command line: one subcommand per module.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; ``wavegms train``'s are here, its flags built from
:class:`~wavegms.engine.config.TrainConfig`'s own fields (help, choices), so a new setting is a new
field and nothing else. Errors a user can fix (a bad value or file, a missing or unwritable
folder, a full disk, no TAESD, too little GPU memory: ``ValueError``, ``OSError``,
``RuntimeError``) print one clear line and exit with status 2; ``--debug`` shows the traceback
instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .utils.errors import error_line

# name -> module; order is the order of `wavegms --help`.
COMMANDS = {
    "train": __name__,  # its flags come from TrainConfig: built below
    "evaluate": "wavegms.engine.evaluate",
    "predict": "wavegms.engine.predict",
    "demo": "wavegms.engine.demo",
    "course": "wavegms.course.runner",
    "book": "wavegms.course.book",
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only ``command``'s subcommand when it is given: each
    command's module imports what it runs (torch, diffusers, MONAI: seconds), so a command
    should pay only for its own."""
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
        if command is not None and name != command:
            continue
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=HelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


# ---- the `wavegms train` subcommand --------------------------------------------------------------

HELP = "train Wave-GMS (paper presets, or `quick`: synthetic data on a CPU in minutes)"
DESCRIPTION = (
    "Train Wave-GMS into a run folder (--out): train_config.json, splits.json, best/, last/, "
    "log.jsonl, curves.png. Settings come from --preset (default quick); every flag given "
    "overrides it. Ctrl-C keeps every finished epoch: continue with --out RUN_DIR --resume. "
    "Several GPUs: torchrun --nproc_per_node=N -m wavegms train ... (--batch-size is the global "
    "batch)."
)


def config_flags() -> dict[str, tuple[str, dict[str, Any]]]:
    """flag -> (TrainConfig field, argparse options), from the fields' types and metadata."""
    from .engine.config import TrainConfig

    flags = {}
    for setting in dataclasses.fields(TrainConfig):
        meta = dict(setting.metadata)
        if not meta.pop("cli", True):
            continue
        flag = meta.pop("flag", "--" + setting.name.replace("_", "-"))
        default = setting.default
        if isinstance(default, bool):
            meta["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            meta.update(type=type(default[0]), nargs=len(default))
        elif isinstance(default, (int, float)):
            meta["type"] = type(default)
        flags[flag] = (setting.name, meta)
    return flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .engine.config import PRESETS

    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="the run folder")
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=argparse.SUPPRESS,
        help="starting settings (default: quick; with --resume: the run's saved settings)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last epoch"
    )
    parser.add_argument("--no-progress", action="store_true", help="one line per epoch, no bars")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved settings and exit"
    )
    group = parser.add_argument_group("settings (default: the preset's value)")
    for flag, (name, options) in config_flags().items():
        group.add_argument(flag, dest=name, default=argparse.SUPPRESS, **options)


def run(args: argparse.Namespace) -> int:
    from .engine.checkpoint import TRAIN_CONFIG
    from .engine.config import TrainConfig, preset
    from .engine.train import train

    fields = [name for name, _ in config_flags().values()]
    overrides = {name: getattr(args, name) for name in fields if hasattr(args, name)}
    name = getattr(args, "preset", None)
    if args.resume and name is None:
        saved = Path(args.out).expanduser() / TRAIN_CONFIG
        if not saved.is_file():
            raise FileNotFoundError(
                f"No run to resume in {args.out} (no {TRAIN_CONFIG}); start one without --resume."
            )
        config = TrainConfig.load(saved).replace(**overrides)
    else:
        config = preset(name or "quick", **overrides)
        config.notes.setdefault("preset", name or "quick")
    if args.print_config:
        print(json.dumps(config.to_dict()))
        return 0
    train(config, args.out, resume=args.resume, progress=not args.no_progress)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"wavegms {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as error:
        if args.debug:
            raise
        print(f"wavegms {args.command}: error: {error_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
