"""Command line: ``python -m data_download <dataset> --root DATA_DIR [--source PATH]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from wavegms.utils.errors import error_line

from . import gms_splits
from .bus import HOW_TO_REQUEST
from .extract import LIMIT_FLAG
from .registry import ManualDownloadRequired, recipes

EPILOG = """\
examples:
  python -m data_download busi --root data
  python -m data_download gms_splits --root data
  python -m data_download bus --root data --source ~/Downloads/DatasetB.zip

Every dataset is prepared as DATA_DIR/<dataset>/{images,masks}/<name>.png + info.json.
Downloads resume after an interruption; preparing twice does nothing.
Exit status: 0 done, 2 error (one line saying what to do; BUS: how to request it),
130 interrupted.
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        default="data",
        metavar="DATA_DIR",
        help="data folder; the dataset goes into DATA_DIR/<dataset> (default: data)",
    )
    p.add_argument(
        "--source",
        metavar="PATH",
        help="prepare from an archive (zip, tar, tar.gz) or a folder you already "
        "have, instead of downloading",
    )
    p.add_argument(
        "--force", action="store_true", help="prepare again even if a complete preparation exists"
    )
    p.add_argument(
        "--keep-archives",
        action="store_true",
        help="keep the downloaded archives in DATA_DIR/.downloads after success",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes converting images (default: number of CPUs, at most 8)",
    )
    p.add_argument(
        LIMIT_FLAG,
        type=float,
        default=None,
        metavar="GB",
        help="the most that extracting archives may write (default: from the dataset's known "
        "size, and archives may not expand more than 20-fold); set it for a genuine archive "
        "that is refused",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_download",
        description="Download and prepare a Wave-GMS dataset in one command.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for name, recipe in recipes().items():
        epilog = f"licence: {recipe.licence}\ncite: {recipe.citation}"
        if name == "bus":
            epilog = HOW_TO_REQUEST + "\n" + epilog
        p = sub.add_parser(
            name,
            help=recipe.title,
            description=f"{recipe.title}\nsource: {recipe.homepage}",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p)
    p = sub.add_parser(
        "gms_splits",
        help="the GMS train/test name lists (JSON in DATA_DIR/splits/gms/)",
        description="Fetch the GMS split lists (pickles in the GMS repository, read without "
        "unpickling any code) and write DATA_DIR/splits/gms/<dataset>.json.",
        epilog=f"source: {gms_splits.REPOSITORY} (commit {gms_splits.COMMIT})\n"
        f"cite: {gms_splits.CITATION}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .prepare import prepare

    try:
        prepare(
            args.dataset,
            args.root,
            args.source,
            force=args.force,
            keep_archives=args.keep_archives,
            workers=args.workers,
            progress=not args.quiet,
            max_extract_gb=args.max_extract_gb,
        )
    except ManualDownloadRequired as e:
        print(str(e), file=sys.stderr)  # several lines on purpose: how to request BUS
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: nothing half-prepared was left behind; run the same command "
            "again to resume the download.",
            file=sys.stderr,
        )
        return 130
    # PreparationError, DownloadError (RuntimeError), UnsafeArchiveError, BadArchiveError
    # (ValueError) and OSError (unwritable, full, a file as --root) all carry what to do.
    except (OSError, ValueError, RuntimeError) as e:
        if args.debug:
            raise
        message = error_line(e, where=args.root, option="--root")
        print(f"data_download {args.dataset}: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
