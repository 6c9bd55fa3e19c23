"""Check the course's widgets in a real browser: run a notebook in JupyterLab (or Notebook 7),
save it, stop the server, start a new one and reopen the notebook, as a student would the next
day. Prints what the page shows each time: sliders and drop-downs, figures, and "Error displaying
widget: model not found" messages.

    pip install playwright            # the Python driver only; the browser is the system's
    apt-get install chromium          # or any Chromium: --chromium PATH
    python benchmarks/widgets_in_browser.py notebooks/student/01_wavelets.ipynb [--app notebook]

Needs TAESD as the notebooks do ($WAVEGMS_TAESD offline). Writes screenshots of the first
widget, after the run and after reopening, into --out. Not part of the test suite: CI has no
browser. What it checks there is that the setting behind this behaviour is installed
(tests/test_notebooks.py::test_jupyter_in_this_environment_saves_the_widgets_state).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PORT = 8899
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JupyterLab renders only the cells in view: a tall window shows the whole notebook at once.
VIEWPORT = {"width": 1400, "height": 40000}
CENSUS = """() => ({
  errors: (document.body.innerText.match(/model not found/g) || []).length,
  controls: document.querySelectorAll('.widget-slider, .widget-dropdown').length,
  figures: document.querySelectorAll('.jp-OutputArea-output img').length,
})"""
BUSY = """() => Array.from(document.querySelectorAll('.jp-InputArea-prompt'))
  .some(e => e.textContent.includes('*'))"""


def start_server(app: str, root: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("WAVEGMS_NO_WIDGETS", "MPLBACKEND")}
    env["WAVEGMS_COURSE_DIR"] = str(root / "work")  # a fresh one: 03-05 train, bars and all
    command = [
        sys.executable,
        "-m",
        "jupyterlab" if app == "lab" else "notebook",
        "--no-browser",
        f"--port={PORT}",
        "--IdentityProvider.token=",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(
        command, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/status")
            return server
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the Jupyter server did not start: see {log}")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(30)


def save_state_default() -> bool | None:
    url = f"http://127.0.0.1:{PORT}/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"
    schema = json.load(urllib.request.urlopen(url)).get("schema", {})
    return schema.get("properties", {}).get("saveState", {}).get("default")


def screenshot(page, path: Path) -> None:  # noqa: ANN001 - a playwright Page
    widget = page.query_selector(".jp-OutputArea-output .jupyter-widgets")
    top = widget.bounding_box()["y"] if widget else 0
    clip = {"x": 0, "y": max(0, top - 150), "width": 1400, "height": 700}
    page.screenshot(path=str(path), clip=clip)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--app", choices=("lab", "notebook"), default="lab")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path("build/widgets_in_browser"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="wavegms-browser-"))
    shutil.copy(args.notebook, root)
    path = ("lab/tree/" if args.app == "lab" else "notebooks/") + args.notebook.name
    url = f"http://127.0.0.1:{PORT}/{path}"
    log = args.out / "jupyter.log"

    with sync_playwright() as playwright:

        def open_notebook():  # noqa: ANN202
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            return browser, page

        server = start_server(args.app, root, log)
        print(f"Save Widget State Automatically, default: {save_state_default()}")
        browser, page = open_notebook()
        time.sleep(3)
        page.click("text=Run", timeout=10_000)
        page.click("text=Run All Cells", timeout=10_000)
        began = time.time()
        while time.time() - began < 600 and (time.time() - began < 8 or page.evaluate(BUSY)):
            time.sleep(2)
        time.sleep(3)
        print(f"after running ({time.time() - began:.0f} s): {page.evaluate(CENSUS)}")
        screenshot(page, args.out / "after_run.png")
        page.keyboard.press("Control+s")
        time.sleep(3)
        browser.close()
        stop_server(server)

        saved = json.loads((root / args.notebook.name).read_text())
        state = saved["metadata"].get("widgets", {})
        models = state.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        print(f"saved notebook: widget state of {len(models)} models")

        server = start_server(args.app, root, log)
        browser, page = open_notebook()
        time.sleep(12)  # a new kernel starts; the widget manager restores what it can
        print(f"reopened with a new server and kernel: {page.evaluate(CENSUS)}")
        screenshot(page, args.out / "reopened.png")
        browser.close()
        stop_server(server)
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
