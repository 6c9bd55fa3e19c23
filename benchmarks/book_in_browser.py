"""Open the built course book in headless Chromium and report, per page, what a reader sees:
figures shown (local images that loaded, outputs and figures) and figures missing, controls
shown (the figure browsers' sliders and drop-downs), and widget errors ("Error displaying
widget", "model not found") in the cells' outputs. The book is served from 127.0.0.1 and every
request elsewhere is refused, as for a reader offline: the Colab badge and MathJax, which come
from the web, are counted apart.

    pip install playwright            # the Python driver only; the browser is the system's
    apt-get install chromium          # or any Chromium: --chromium PATH
    wavegms course && wavegms book
    python benchmarks/book_in_browser.py [build/book/html] [--out /tmp/book_shots]

Also moves each figure browser's first control and checks that the figure changes, searches the
book for a word, and writes screenshots of the landing page and of notebook 03's browser.
Not part of the test suite: CI has no browser (tests/test_notebooks.py checks the HTML itself).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

from widgets_in_browser import CHROMIUM_FLAGS

CENSUS = """() => {
  const loaded = (img) => img.complete && img.naturalWidth > 0;
  const local = (img) => img.src.startsWith(location.origin) || img.src.startsWith('data:');
  const images = Array.from(document.querySelectorAll('article img'));
  const visible = (e) => e.offsetParent !== null;
  const outputs = Array.from(document.querySelectorAll('.cell_output'));
  return {
    figures: images.filter((img) => local(img) && loaded(img)).length,
    figures_missing: images.filter((img) => local(img) && !loaded(img)).length,
    images_remote: images.filter((img) => !local(img)).length,
    controls: Array.from(document.querySelectorAll('.wavegms-frames input, .wavegms-frames select'))
      .filter(visible).length,
    // In the cells' outputs: the notebooks' own text may quote the message (00 does).
    widget_errors: outputs.map((o) => (o.innerText.match(/Error displaying widget|model not found/g)
      || []).length).reduce((a, b) => a + b, 0),
    colab: Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]'))
      .map((a) => a.href),
  };
}"""
# Move every browser's first control one step and report whether its figure changed.
EXERCISE = """() => Array.from(document.querySelectorAll('.wavegms-frames')).map((box) => {
  const image = box.querySelector('.wavegms-frames-image');
  const control = box.querySelector('[data-control]');
  const before = image.src;
  const count = control.tagName === 'SELECT' ? control.options.length : Number(control.max) + 1;
  control.value = String((Number(control.value) + 1) % count);
  control.dispatchEvent(new Event('input'));
  return image.src !== before;
})"""


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """A quiet static server for ``folder`` on 127.0.0.1 (a free port), in a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def pages(folder: Path) -> list[str]:
    """The book's pages in reading order: landing, notebooks, then the rest."""
    names = sorted(p.name for p in folder.glob("*.html") if p.name not in ("genindex.html",))
    notebooks = [n for n in names if n[:2].isdigit()]
    rest = [n for n in names if n not in notebooks and n not in ("index.html", "search.html")]
    return ["index.html", *notebooks, *rest]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("book", type=Path, nargs="?", default=Path("build/book/html"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path("build/book_in_browser"))
    parser.add_argument("--search", default="wavelet", help="a word to search the book for")
    args = parser.parse_args()
    if not (args.book / "index.html").is_file():
        raise SystemExit(f"{args.book} has no index.html: build the book with `wavegms book`.")
    args.out.mkdir(parents=True, exist_ok=True)
    server = serve(args.book)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # Offline: anything not from the local server is refused at once.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith((origin, "data:"))
                else route.abort()
            ),
        )
        for name in pages(args.book):
            page.goto(f"{origin}/{name}", wait_until="load")
            census = page.evaluate(CENSUS)
            if name == "index.html":
                page.screenshot(path=str(args.out / "landing.png"))
            if name.startswith("03_"):
                page.screenshot(path=str(args.out / "notebook03_top.png"))
                box = page.query_selector(".wavegms-frames")
                if box:
                    box.scroll_into_view_if_needed()
                    page.screenshot(path=str(args.out / "notebook03_browser.png"))
            census["browsers_switch"] = page.evaluate(EXERCISE)
            rows.append((name, census))
        page.goto(f"{origin}/search.html?q={args.search}", wait_until="load")
        page.wait_for_selector("#search-results li", timeout=30_000)
        found = page.evaluate("document.querySelectorAll('#search-results li').length")
        browser.close()
    server.shutdown()

    print(
        "| page | figures shown | figures missing | controls shown | browsers switch | "
        "widget errors | remote images (offline) | Colab links |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---|")
    for name, c in rows:
        switch = ", ".join("yes" if s else "NO" for s in c["browsers_switch"]) or "-"
        colab = sorted(
            {link.rsplit("/", 2)[-2] + "/" + link.rsplit("/", 1)[-1] for link in c["colab"]}
        )
        print(
            f"| {name} | {c['figures']} | {c['figures_missing']} | {c['controls']} | {switch} | "
            f"{c['widget_errors']} | {c['images_remote']} | "
            f"{', '.join(colab) or '-'} |"
        )
    print(f"\nsearch for {args.search!r}: {found} pages found")
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
