"""Reading a built HTML site in the tests: each page's links, ids, images and text, and the
local links that do not resolve (a missing file, or a missing #anchor in the page linked)."""

from __future__ import annotations

import functools
import html.parser
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Page:
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, the link's text)
    images: list[tuple[str, list[str]]] = field(default_factory=list)  # (src, ancestors' classes)
    sources: list[str] = field(default_factory=list)  # src of scripts, href of stylesheets
    ids: set[str] = field(default_factory=set)
    text: str = ""
    output_text: str = ""  # the text of the notebook cells' outputs only


class _Reader(html.parser.HTMLParser):
    VOID = {"img", "br", "hr", "meta", "link", "input", "source", "wbr", "area", "col", "embed"}

    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.open: list[tuple[str, str]] = []  # (tag, class) of the elements we are inside
        self.link: tuple[str, list[str]] | None = None
        self.text: list[str] = []
        self.output_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.page.ids.add(values["id"])
        if tag == "a" and "href" in values:
            self.link = (values["href"], [])
        elif tag == "img":
            self.page.images.append((values.get("src", ""), [c for _, c in self.open]))
        elif tag == "script" and values.get("src"):
            self.page.sources.append(values["src"])
        elif tag == "link" and values.get("rel") in ("stylesheet",) and values.get("href"):
            self.page.sources.append(values["href"])
        if tag not in self.VOID:
            self.open.append((tag, values.get("class", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.link is not None:
            self.page.links.append((self.link[0], " ".join("".join(self.link[1]).split())))
            self.link = None
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                break

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1][0] in ("script", "style"):
            return  # not text a reader sees
        self.text.append(data)
        if any("cell_output" in classes for _, classes in self.open):
            self.output_text.append(data)
        if self.link is not None:
            self.link[1].append(data)


@functools.cache
def read_page(path: Path) -> Page:
    reader = _Reader()
    reader.feed(path.read_text(encoding="utf-8"))
    reader.page.text = "".join(reader.text)
    reader.page.output_text = "".join(reader.output_text)
    return reader.page


def is_local(url: str) -> bool:
    return not urlsplit(url).scheme and not url.startswith("//")


def _ids(path: Path) -> set[str]:
    return read_page(path).ids if path.suffix == ".html" else set()


def broken_links(site: Path) -> list[str]:
    """``page: url`` for every local link, image, script or stylesheet of every page of
    ``site`` (its top folder) whose file is missing, or whose #anchor is not an id of the page
    it names."""
    broken = []
    for path in sorted(site.glob("*.html")):
        page = read_page(path)
        urls = [href for href, _ in page.links] + [src for src, _ in page.images] + page.sources
        for url in urls:
            if not is_local(url) or url in ("", "#"):
                continue
            parts = urlsplit(url)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(site)}: {url}")
            elif parts.fragment and unquote(parts.fragment) not in _ids(target):
                broken.append(f"{path.relative_to(site)}: {url} (no such anchor)")
    return broken
