"""The course as a website (``wavegms book``): the notebooks executed by ``wavegms course``,
with a landing page, the paper map and the measured times, full-text search and a table of
contents, built offline with Sphinx, myst-nb and sphinx-book-theme (the ``book`` extra)::

    wavegms course                  # executes the notebooks into build/course
    wavegms book                    # builds build/book/html from them; open index.html
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "build the course book (a website) from the notebooks executed by `wavegms course`"
DESCRIPTION = (
    "Build the course as a website into OUT/html: a landing page, the six instructor notebooks "
    "with their outputs (each with an Open in Colab link to the student edition and a download "
    "link), the paper map and the measured times, with search and a table of contents. Nothing "
    "is executed: run `wavegms course` first. Needs the book extra: pip install -e '.[book]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--course", default="build/course", help="the --out folder of `wavegms course`"
    )
    parser.add_argument("--out", default="build/book", help="where html/ and sphinx.log go")
    parser.add_argument(
        "--strict", action="store_true", help="fail on any Sphinx warning (e.g. a broken link)"
    )


def run(args: argparse.Namespace) -> int:
    from .build import build_book

    build_book(args.course, args.out, strict=args.strict)
    return 0


__all__ = ["build_book"]


def __getattr__(name: str) -> Any:  # noqa: ANN401
    # Sphinx and nbformat are imported when the book is built, not by `wavegms --help`.
    if name == "build_book":
        from .build import build_book

        return build_book
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
