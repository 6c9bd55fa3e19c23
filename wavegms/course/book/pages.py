"""The course book's own pages, as MyST markdown: the landing page, the paper map and the
measured times. Everything they say about a notebook (title, objectives, Colab link, time) is
read from the executed notebooks and ``course_times.json``, never written here a second time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from ..notebooks import REPO_URL

PIPELINE_FIGURE = "pipeline.png"
PAPER_MAP, TIMES = "paper_map", "times"
COLAB_LINK = re.compile(r"\]\((https://colab\.research\.google\.com/github/[^)\s]+)\)")
# A relative link of the paper map points into the repository's docs/ folder.
RELATIVE_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s]+)\)")


@dataclass(frozen=True)
class NotebookInfo:
    """What the landing page says about one notebook, read from its first cell."""

    page: str  # the page's name: the notebook's stem
    title: str  # its first heading, e.g. "03 · Training the latent mapping model"
    objectives: tuple[str, ...]  # the bullets under "Learning objectives"
    colab: str  # the Colab launch URL of its badge: the student edition


def describe(path: Path, notebook: nbformat.NotebookNode) -> NotebookInfo:
    """Title, objectives and Colab link of an executed notebook (``path`` names it in errors)."""
    first = notebook.cells[0].source if notebook.cells else ""
    title = re.search(r"^# (.+)$", first, re.M)
    colab = COLAB_LINK.search(first)
    if not title or not colab:
        raise ValueError(
            f"{path}: the first cell has no {'title' if not title else 'Colab badge'}; is it a "
            "course notebook executed by `wavegms course`?"
        )
    objectives: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "**Learning objectives.**" in cell.source:
            after = cell.source.split("**Learning objectives.**", 1)[1].splitlines()[1:]
            for line in after:
                if not line.startswith("- "):
                    break
                objectives.append(line[2:].strip())
            break
    return NotebookInfo(path.stem, title[1].strip(), tuple(objectives), colab[1])


def seconds_text(entry: Mapping[str, Any] | None) -> str:
    """``"51 s"`` or ``"3.2 min"`` for a times entry; ``"not recorded"`` without one."""
    if not entry:
        return "not recorded"
    seconds = float(entry["seconds"])
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def landing_page(notebooks: Sequence[NotebookInfo], times: Mapping[str, Mapping]) -> str:
    """``index.md``: what the course teaches, for whom, the pipeline, the notebooks with their
    Colab links, how to run it; its hidden tables of contents make the left-hand navigation."""
    lines = [
        "# Wave-GMS: the course",
        "",
        "This course rebuilds **Wave-GMS** ([arXiv 2510.03216](https://arxiv.org/abs/2510.03216)), "
        "a medical image segmentation model with only 2.6M trainable parameters: a small wavelet "
        "encoder and a latent mapping model predict the latent of the mask in the latent space of "
        "a frozen tiny autoencoder (TAESD), which decodes it. Six notebooks go from the wavelet "
        "pyramid the encoder sees, through the autoencoder's latents and the training objective, "
        "to training, evaluating (Dice, IoU, HD95, domain shift) and segmenting your own images.",
        "",
        "**Who it is for.** Students and practitioners who know Python, PyTorch tensors and what "
        "a convolution does, and want to see how a modern segmentation model is put together "
        "and trained. No GPU is needed: every notebook runs on a CPU in quick mode, on a "
        "built-in synthetic dataset, in about a minute; with a GPU (Colab's T4) the same "
        "notebooks train on a real dataset at the paper's resolution.",
        "",
        f"```{{figure}} {PIPELINE_FIGURE}",
        ":alt: The Wave-GMS pipeline",
        "",
        "The pipeline: the wavelet encoder and the latent mapping model (blue) are trained; "
        "TAESD (grey) stays frozen. Dashed: the three terms of the objective, training only.",
        "```",
        "",
        "## The notebooks",
        "",
        "Each page shows a notebook as `wavegms course` ran it, with its outputs. *Open in Colab* "
        "opens the **student edition**: each exercise is a cell for you to fill in, followed by "
        "a cell that checks it.",
        "",
    ]
    for info in notebooks:
        time = seconds_text(times.get(f"{info.page}.ipynb"))
        lines += [f"### [{info.title}]({info.page}.ipynb)", ""]
        lines += [f"- {objective}" for objective in info.objectives]
        lines += ["", f"[Open in Colab]({info.colab}) · measured here: {time}", ""]
    lines += [
        "## How to run it",
        "",
        "**In Colab.** Click *Open in Colab* above (or the rocket button on a notebook's page), "
        "choose *Runtime > Change runtime type > T4 GPU*, then *Runtime > Run all*. The first "
        "cell installs `wavegms` and keeps Colab's own PyTorch and widgets. A runtime that "
        "disconnects loses its files: set `DRIVE_RUNS = True` in notebooks 03 to 05 to keep the "
        "training run on your Google Drive, where running 03 again continues it.",
        "",
        "**Locally.**",
        "",
        "```bash",
        f"git clone {REPO_URL} && cd wavegms",
        'pip install -e ".[notebooks]"',
        "jupyter lab notebooks/student     # or notebooks/ for the worked solutions",
        "```",
        "",
        "Instructors run the whole course headless with `wavegms course` and build this book from "
        "that run with `wavegms book` (see the repository's README).",
        "",
        f"[The paper map]({PAPER_MAP}.md) names the function that implements each part of the "
        f"paper; [the measured times]({TIMES}.md) say how long each notebook took here.",
        "",
        "```{toctree}",
        ":hidden:",
        ":caption: Notebooks",
        "",
        *(info.page for info in notebooks),
        "```",
        "",
        "```{toctree}",
        ":hidden:",
        ":caption: Reference",
        "",
        PAPER_MAP,
        TIMES,
        "```",
        "",
    ]
    return "\n".join(lines)


def paper_map_page(text: str) -> str:
    """``docs/paper_map.md`` with its relative links sent to the repository."""
    return RELATIVE_LINK.sub(lambda m: f"]({REPO_URL}/blob/main/docs/{m[1]})", text)


def times_page(notebooks: Sequence[NotebookInfo], times: Mapping[str, Mapping]) -> str:
    """``times.md``: each notebook's measured time in the course run this book shows."""
    lines = [
        "# Measured times",
        "",
        "How long each notebook took in the `wavegms course` run that this book shows, on the "
        "machine that ran it (kernel start and HTML export included). A busy machine is slower.",
        "",
        "| notebook | time | profile | machine | finished (UTC) |",
        "|---|---:|---|---|---|",
    ]
    for info in notebooks:
        entry = times.get(f"{info.page}.ipynb") or {}
        machine = entry.get("machine") or {}
        where = ", ".join(
            part
            for part in (
                machine.get("cpu"),
                f"{machine['cores']} cores" if machine.get("cores") else None,
                f"GPU: {machine['gpu']}" if machine.get("gpu") else "no GPU" if machine else None,
            )
            if part
        )
        lines.append(
            f"| [{info.page}]({info.page}.ipynb) | {seconds_text(entry)} | "
            f"{entry.get('profile', '')} | {where} | {entry.get('finished', '')} |"
        )
    entries = [times.get(f"{info.page}.ipynb") for info in notebooks]
    recorded = [entry["seconds"] for entry in entries if entry]
    if len(recorded) == len(notebooks):
        lines += ["", f"The whole course: {seconds_text({'seconds': sum(recorded)})}."]
    else:
        lines += [
            "",
            "Times not recorded come from a course run before `wavegms course` kept them: run it "
            "again to measure them.",
        ]
    return "\n".join(lines) + "\n"


__all__ = ["NotebookInfo", "describe", "landing_page", "paper_map_page", "times_page"]
