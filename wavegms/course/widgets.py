"""Interactive browsing for the course notebooks that never breaks a headless run.

:func:`browse` shows one figure. In a Jupyter kernel with ipywidgets it adds sliders or
drop-downs above it, and every change redraws that same figure in place; headless
(papermill, nbval, ``$WAVEGMS_NO_WIDGETS``) the figure is drawn once, statically. The figure is
an ordinary PNG output, so a saved notebook reopened without a kernel still shows it, and it
keeps its size from one value to the next. The controls come back too, from the widget state
that Jupyter saves with the notebook: the package turns that setting on
(``notebooks/jupyter-settings/wavegms.json``, installed into JupyterLab's ``overrides.d``).

``wavegms course`` also sets ``$WAVEGMS_WIDGET_FRAMES``: then a browser of at most
:data:`FRAME_LIMIT` figures draws every one of them and keeps them beside the static PNG, under
:data:`FRAMES_MIME` (a type Jupyter does not show), for the course book's plain HTML controls.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

NO_WIDGETS_ENV = "WAVEGMS_NO_WIDGETS"
FRAMES_ENV = "WAVEGMS_WIDGET_FRAMES"
FRAMES_MIME = "application/vnd.wavegms.frames+json"
# Every frame costs a drawing in the headless run and ~50 kB in the book: small browsers only.
FRAME_LIMIT = 24
# Every control's label gets the same width, so that the sliders' tracks line up.
LABEL_WIDTH = "90px"
CONTROL_WIDTH = "460px"
DPI = 72

# A control's options: values, or (label, value) pairs whose label is what the slider shows.
Options = Sequence[Any]


def widgets_available() -> bool:
    """True when ipywidgets imports and we run in a Jupyter kernel (and
    ``$WAVEGMS_NO_WIDGETS`` is not set)."""
    if os.environ.get(NO_WIDGETS_ENV):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _values(options: Options) -> list[Any]:
    return [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in options]


def _control(name: str, options: Options, value: Any):  # noqa: ANN202, ANN401 - a widget
    import ipywidgets as widgets

    options = list(options)
    common = {
        "options": options,
        "value": value,
        "description": name,
        "style": {"description_width": LABEL_WIDTH},
        "layout": widgets.Layout(width=CONTROL_WIDTH),
    }
    if is_slider(options):
        return widgets.SelectionSlider(continuous_update=False, **common)
    return widgets.Dropdown(**common)


def is_slider(options: Options) -> bool:
    """Numbers, or labelled integers (indices), are chosen with a slider; the rest from a
    drop-down."""
    values = _values(options)
    labelled = any(isinstance(o, tuple) for o in options)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return numbers or labelled and len(values) > 1 and all(isinstance(v, int) for v in values)


def render(figure: Figure | None) -> bytes:
    """A figure as PNG bytes at its own size (no tight cropping: the size never jumps); a
    pyplot figure is closed afterwards, so it is not shown a second time."""
    figure = figure if isinstance(figure, Figure) else plt.gcf()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    if figure.canvas.manager is not None:
        plt.close(figure)
    return buffer.getvalue()


def browse(
    draw: Callable[..., Any],
    controls: Mapping[str, Options],
    *,
    static: Mapping[str, Any] | None = None,
) -> None:
    """Show ``draw(**values)``, with controls to change the values where widgets work.

    Args:
        draw: makes one matplotlib figure from keyword arguments named like ``controls``,
            with pyplot or as a ``Figure`` that it returns.
        controls: name -> the options to choose from, in the order the control shows them:
            values, or ``(label, value)`` pairs (e.g. ``("#1", 0)``, so that labels can be
            1-based or names while ``draw`` receives indices). Numbers give a slider,
            anything else a drop-down.
        static: the values shown first (default: the first option of each control).

    Returns nothing, so that a call ending a notebook cell does not show the panel twice.
    """
    from IPython.display import Image, display

    values = {name: _values(options)[0] for name, options in controls.items()}
    values.update(static or {})
    cache: dict[Hashable, bytes] = {}

    def picture(chosen: dict[str, Any]) -> Any:  # noqa: ANN401 - an IPython Image
        key = tuple(sorted(chosen.items()))
        if key not in cache:
            cache[key] = render(draw(**chosen))
        return Image(data=cache[key], format="png")

    if not widgets_available():
        shown = picture(values)
        grid = list(itertools.product(*(_values(options) for options in controls.values())))
        if os.environ.get(FRAMES_ENV) and 1 < len(grid) <= FRAME_LIMIT:
            frames = [picture(dict(zip(controls, chosen))).data for chosen in grid]
            bundle = {
                "image/png": _base64(shown.data),
                FRAMES_MIME: _frames(controls, values, frames),
            }
            display(bundle, raw=True)
        else:
            display(shown)
        return
    import ipywidgets as widgets
    from IPython.display import update_display

    panel = {name: _control(name, options, values[name]) for name, options in controls.items()}
    figure_id = uuid.uuid4().hex

    def update(_change: Any = None) -> None:  # noqa: ANN401
        update_display(
            picture({name: control.value for name, control in panel.items()}),
            display_id=figure_id,
        )

    for control in panel.values():
        control.observe(update, names="value")
    display(widgets.VBox(list(panel.values())))
    display(picture(values), display_id=figure_id)
    # The first move should be as quick as the next ones: draw the first slider's next value
    # now, while the student reads the figure (later values are drawn when asked for).
    first, options = next(iter(controls.items()))
    ahead = _values(options)
    if len(ahead) > 1:
        following = ahead[(ahead.index(values[first]) + 1) % len(ahead)]
        picture({**values, first: following})


def _base64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _frames(
    controls: Mapping[str, Options], values: Mapping[str, Any], frames: Sequence[bytes]
) -> dict[str, Any]:
    """Every figure of a browser as JSON: the controls (name, option labels, the index shown
    first, slider or drop-down) and the PNGs (base64) in ``itertools.product`` order of the
    controls' options."""
    return {
        "controls": [
            {
                "name": name,
                "labels": [str(o[0] if isinstance(o, tuple) else o) for o in options],
                "shown": _values(options).index(values[name]),
                "slider": is_slider(options),
            }
            for name, options in controls.items()
        ],
        "frames": [_base64(png) for png in frames],
    }


def check_widgets() -> bool | None:
    """Display a slider and say how to tell whether widgets render (used by notebook 00).

    Returns whether ipywidgets is usable from this kernel, or None when widgets are switched
    off on purpose (headless runs); rendering itself can only be seen.
    """
    if os.environ.get(NO_WIDGETS_ENV):
        print(
            f"Widgets are switched off ({NO_WIDGETS_ENV} is set, as `wavegms course` does for "
            "headless runs): the notebooks show static figures only."
        )
        return None
    if not widgets_available():
        print(
            "ipywidgets is not available in this kernel: the notebooks will show static figures "
            'only. Install it with  pip install -e ".[notebooks]"  (or pip install ipywidgets) '
            "and restart the kernel."
        )
        return False
    import ipywidgets as widgets
    from IPython.display import display

    display(widgets.IntSlider(value=3, min=1, max=10, description="test slider"))
    print(
        "If a slider shows above, widgets render. If you see 'IntSlider(...)' as text instead: "
        "in Colab run the install cell again; in JupyterLab or VS Code install ipywidgets>=8 in "
        "the environment of the Jupyter server (pip install jupyterlab_widgets) and reload."
    )
    return True


__all__ = ["browse", "check_widgets", "render", "widgets_available"]
