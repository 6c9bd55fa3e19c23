"""An executed course notebook as a book page: checked, with a line of links under its title,
and its figure browsers as plain HTML controls.

The notebooks come from ``wavegms course``, which runs them headless: their browsers
(:func:`wavegms.course.widgets.browse`) hold a static PNG and, for small ones, every frame under
:data:`~wavegms.course.widgets.FRAMES_MIME`; that becomes a figure with sliders and drop-downs
switched by ``_static/frames.js``, so that the page works without a kernel.

Widgets are not rendered by a widget manager: its script would come from a CDN, and a view
whose state is missing or of another ipywidgets version reads "Error displaying widget". The
progress bars that tqdm draws as widgets in a run (their state saved by nbclient) become
static HTML of their last state (``training: 100% [bar] 5/5 [...]``); other widget views fall
back to their text, or are dropped.
"""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path
from typing import Any

import nbformat

from ..widgets import FRAMES_MIME

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def check_executed(path: Path, notebook: nbformat.NotebookNode) -> None:
    """Refuse what the book must not show: a notebook not run by ``wavegms course``, one whose
    run failed, or the student edition (its exercises are not done)."""
    run = notebook.metadata.get("papermill")
    if not run:
        raise ValueError(f"{path} was not executed: run `wavegms course` first.")
    if run.get("exception"):
        raise ValueError(
            f"{path} failed in the course run: fix it and run `wavegms course` again "
            "(the book shows only a course that ran to the end)."
        )
    if "/student/" in str(run.get("input_path", "")).replace("\\", "/"):
        raise ValueError(
            f"{path} is the student edition: the book shows the instructor notebooks, run "
            "`wavegms course` without --edition student."
        )


def as_page(notebook: nbformat.NotebookNode, links: str) -> nbformat.NotebookNode:
    """A copy of ``notebook`` for the book: ``links`` (MyST markdown) under the first heading
    instead of the Colab badge, frames as HTML browsers, widgets as static HTML or text."""
    page = copy.deepcopy(notebook)
    first = page.cells[0]
    title, *rest = first.source.splitlines()
    # The links replace the Colab badge: its image comes from the web, the links do not.
    rest = [line for line in rest if not line.startswith("[![")]
    first.source = "\n".join([title, "", links, *rest])
    # Without the state, myst-nb loads no widget manager: nothing can say "Error displaying".
    saved = page.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in page.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            data = output.get("data", {})
            if FRAMES_MIME in data:
                output["data"] = {"text/html": frames_html(data[FRAMES_MIME])}
            view = data.pop(WIDGET_VIEW, None)
            static = widget_html(view.get("model_id", ""), saved) if view else None
            if static is not None:
                output["data"] = {"text/html": static}
            elif not data:
                continue
            outputs.append(output)
        cell.outputs = outputs
    return page


def widget_html(model_id: str, state: dict[str, Any]) -> str | None:
    """A saved widget (boxes of HTML, labels and progress bars: tqdm's) as static HTML; None
    for anything else, or a model that was not saved."""
    model = state.get(model_id)
    if model is None:
        return None
    name, values = model.get("model_name"), model.get("state", {})
    if name in ("HBoxModel", "VBoxModel"):
        children = [widget_html(c.removeprefix("IPY_MODEL_"), state) for c in values["children"]]
        if any(child is None for child in children):
            return None
        direction = "row" if name == "HBoxModel" else "column"
        return (
            f'<div class="wavegms-widget" style="flex-direction: {direction}">'
            f"{''.join(children)}</div>"
        )
    if name == "HTMLModel":  # its value is HTML already
        return f"<span>{values.get('value', '')}</span>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(values.get('value', '')))}</span>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        low, high, value = (float(values.get(k, 0)) for k in ("min", "max", "value"))
        return f'<progress max="{high - low:g}" value="{value - low:g}"></progress>'
    return None


def frames_html(frames: dict[str, Any]) -> str:
    """A browser's frames as a figure with one control per parameter (hidden until
    ``frames.js`` runs, so that without JavaScript the page shows the figure alone)."""
    controls = frames["controls"]
    index = 0
    for control in controls:  # itertools.product order: the last control varies fastest
        index = index * len(control["labels"]) + control["shown"]
    parts = ['<div class="wavegms-frames">', '<div class="wavegms-frames-controls" hidden>']
    for k, control in enumerate(controls):
        name, labels, shown = html.escape(control["name"]), control["labels"], control["shown"]
        if control["slider"]:
            widget = (
                f'<input type="range" data-control="{k}" min="0" max="{len(labels) - 1}" '
                f'step="1" value="{shown}" aria-label="{name}">'
                f"<output>{html.escape(labels[shown])}</output>"
            )
        else:
            options = "".join(
                f'<option value="{i}"{" selected" if i == shown else ""}>{html.escape(label)}'
                "</option>"
                for i, label in enumerate(labels)
            )
            widget = f'<select data-control="{k}" aria-label="{name}">{options}</select>'
        parts.append(f"<label><span>{name}</span>{widget}</label>")
    data = {"labels": [c["labels"] for c in controls], "frames": frames["frames"]}
    names = ", ".join(c["name"] for c in controls)
    parts += [
        "</div>",
        f'<img class="wavegms-frames-image" alt="figure for the chosen {html.escape(names)}" '
        f'src="data:image/png;base64,{frames["frames"][index]}">',
        # "</" would end the script element early: JSON allows "<\/" for it.
        '<script type="application/json" class="wavegms-frames-data">'
        + json.dumps(data).replace("</", "<\\/")
        + "</script>",
        "</div>",
    ]
    return "\n".join(parts)


__all__ = ["as_page", "check_executed", "frames_html", "widget_html"]
