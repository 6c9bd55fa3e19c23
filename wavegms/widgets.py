"""Interactive browsing for the course notebooks that never breaks a headless run.

:func:`browse` always draws a static matplotlib figure first (what papermill, nbval and the HTML
export keep), then, where ipywidgets is installed and we run inside a Jupyter kernel, adds
sliders or drop-downs that redraw the same figure for other values. In a headless execution
the widget simply renders nothing; the static figure is still there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

NO_WIDGETS_ENV = "WAVEGMS_NO_WIDGETS"


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


def _control(name: str, values: Sequence[Any]):  # noqa: ANN202 - an ipywidgets widget
    import ipywidgets as widgets

    values = list(values)
    style = {"description_width": "initial"}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return widgets.SelectionSlider(
            options=values, value=values[0], description=name, continuous_update=False, style=style
        )
    return widgets.Dropdown(options=values, value=values[0], description=name, style=style)


def browse(
    draw: Callable[..., Any],
    controls: Mapping[str, Sequence[Any]],
    *,
    static: Mapping[str, Any] | None = None,
) -> None:
    """Show ``draw(**values)`` statically, then interactively for every combination of values.

    Args:
        draw: makes one matplotlib figure from keyword arguments named like ``controls``,
            with pyplot or as a bare ``Figure`` that it returns; :func:`browse` shows it.
        controls: name -> the values to choose from (numbers give a slider, anything else a
            drop-down). The first value of each is the default.
        static: the values of the static figure (default: the first of each control).

    Returns nothing, so that a call ending a notebook cell does not show the panel twice.
    """
    values = {name: options[0] for name, options in controls.items()}
    values.update(static or {})
    _show(draw, **values)
    if not widgets_available():
        return
    import ipywidgets as widgets
    from IPython.display import display

    display(
        widgets.interactive(
            lambda **chosen: _show(draw, **chosen),
            **{name: _control(name, options) for name, options in controls.items()},
        )
    )


def _show(draw: Callable[..., Any], **values: Any) -> None:
    figure = draw(**values)
    if isinstance(figure, Figure) and figure.canvas.manager is None:
        # A Figure built without pyplot (as wavegms.viz makes them): plt.show() ignores it.
        from IPython.display import display

        display(figure)
    plt.show()


def check_widgets() -> bool:
    """Display a slider and say how to tell whether widgets render (used by notebook 00).

    Returns whether ipywidgets is usable from this kernel; rendering itself can only be seen.
    """
    if os.environ.get(NO_WIDGETS_ENV):
        print(
            f"Widgets are switched off ({NO_WIDGETS_ENV} is set, as `wavegms course` does for "
            "headless runs): the notebooks show static figures only."
        )
        return False
    if not widgets_available():
        print(
            "ipywidgets is not available in this kernel: the notebooks will show static figures "
            'only. Install it with  pip install -e ".[notebooks]"  (or pip install ipywidgets) '
            "and restart the kernel."
        )
        return False
    import ipywidgets as widgets
    from IPython.display import display

    display(widgets.IntSlider(value=3, min=0, max=10, description="test slider"))
    print(
        "If a slider shows above, widgets render. If you see 'IntSlider(...)' as text instead: "
        "in Colab run the install cell again; in JupyterLab or VS Code install ipywidgets>=8 in "
        "the environment of the Jupyter server (pip install jupyterlab_widgets) and reload."
    )
    return True


__all__ = ["browse", "check_widgets", "widgets_available"]
