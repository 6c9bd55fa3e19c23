"""Build the course notebooks: ``python notebooks/build_notebooks.py`` (``--check`` to verify).

The notebooks are generated, never edited by hand: edit this file and run it. It writes each
``.ipynb`` without outputs or execution counts, with stable cell ids, so the committed files
equal what it writes (a test checks). Each notebook opens the same way (title, Colab badge,
objectives and time estimates, the install cell, the ``parameters`` cell, ``course.start``)
and ends with exercises and their worked solutions.

The ``parameters`` cell's defaults are :data:`wavegms.course.PROFILES` ``["quick"]``: a notebook
run as it is (Colab, Jupyter, nbval) is the CPU quick course; ``wavegms course`` overrides them.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # build from a checkout without installing

from wavegms.course import NOTEBOOKS, PROFILES, REPO_URL  # noqa: E402

COLAB = "https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/{}"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"

# Measured with `wavegms course` (papermill, quick profile) on the 2-core CPU CI machine; the
# T4 numbers are estimates (see each notebook), not measurements.
TIMES = {
    "00_setup": ("about 10 s", "about 2 minutes, most of it the install"),
    "01_wavelets": ("about 5 s", "under a minute"),
    "02_tiny_vae_latents": ("about 10 s", "under a minute"),
    "03_lmm_training": (
        "about 25 s",
        "about 25 minutes for 300 epochs of BUSI at 224 px, batch 12 (estimate: ~0.1 s per "
        "training step on a T4, 39 steps and a validation pass per epoch)",
    ),
    "04_evaluation": ("about 10 s", "about 1 minute when the run of 03 exists"),
    "05_inference_on_your_images": ("about 10 s", "under a minute when the run of 03 exists"),
}


# ---- cells -------------------------------------------------------------------------------------


def _text(source: str) -> str:
    return textwrap.dedent(source).strip("\n")


def md(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(_text(source))


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(_text(source))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def header(stem: str, title: str, objectives: list[str], intro: str) -> list:
    quick, t4 = TIMES[stem]
    goals = "\n".join(f"- {goal}" for goal in objectives)
    return [
        md(
            f"# {title}\n\n"
            f"[![Open In Colab]({BADGE})]({COLAB.format(stem + '.ipynb')})\n\n"
            f"{_text(intro)}\n\n"
            f"**Learning objectives.** After this notebook you can:\n{goals}\n\n"
            f"**Time.** CPU quick mode (the defaults): {quick} (measured on a 2-core CPU). "
            f"Colab T4, full run: {t4} (an estimate, not a measurement)."
        )
    ]


INSTALL = f"""
# Install: in Colab, install wavegms from GitHub; locally, only check that it is installed.
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    # wavegms asks for torch>=2.2, which Colab's own torch satisfies: pip keeps it (never
    # reinstall torch in Colab, it is built for Colab's GPU drivers).
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "wavegms[notebooks] @ git+{REPO_URL}"],
        check=True,
    )  # fmt: skip
    from google.colab import output

    output.enable_custom_widget_manager()  # lets ipywidgets 8 render in Colab
try:
    import wavegms
except ImportError as error:
    raise ImportError(
        "wavegms is not installed in this kernel. From a clone of the repository run\\n"
        '    pip install -e ".[notebooks]"\\n'
        "then restart the kernel (Kernel > Restart) and run this notebook again."
    ) from error
print(f"wavegms {{wavegms.__version__}}" + (" (Colab)" if IN_COLAB else ""))
"""

PARAMETER_COMMENTS = {
    "DATASET": '"synthetic", or a prepared real dataset: "busi", "bus", "kvasir_instrument", "ham10000"',
    "DATA_DIR": "the folder holding prepared <dataset>/ folders",
    "IMAGE_SIZE": "model input side in pixels, a multiple of 8 (the paper: 224)",
    "EPOCHS": "training epochs (the paper: 1000 for BUSI)",
    "BATCH_SIZE": "images per training step (the paper: 12)",
    "QUICK": "small and fast for a CPU; False for the real run on a GPU",
    "DEVICE": '"auto" (a GPU when there is one), "cpu", "cuda" or "mps"',
    "SEED": "seeds everything (the paper: 2333)",
}


def parameters(extra: str = "") -> nbformat.NotebookNode:
    lines = ["# Parameters: `wavegms course` (papermill) overrides them; these defaults are the"]
    lines.append("# CPU quick mode. Real data: python -m data_download busi --root data")
    for name, value in PROFILES["quick"].items():
        literal = json.dumps(value) if isinstance(value, str) else repr(value)
        lines.append(f"{name} = {literal}  # {PARAMETER_COMMENTS[name]}")
    lines.append("# OUT_DIR: runs and figures; None: build/course/work in a checkout, else")
    lines.append("# ./wavegms_course (never inside notebooks/)")
    lines.append("OUT_DIR = None")
    source = "\n".join(lines) + ("\n" + _text(extra) if extra else "")
    return code(source, "parameters")


START = """
from wavegms import course

session = course.start(DATASET, DATA_DIR, device=DEVICE, seed=SEED, out_dir=OUT_DIR)
device = session.device
"""


def opening(stem: str, title: str, objectives: list[str], intro: str, extra: str = "") -> list:
    return [
        *header(stem, title, objectives, intro),
        md(
            """
            ## Setup

            The first cell installs the package when you are in Colab (locally it only checks
            that `wavegms` is importable). The second holds the **parameters**: the defaults
            run a quick version on any CPU with synthetic images; set `DATASET` to a real
            dataset once you have prepared it, and `QUICK = False` on a GPU. The third cell
            seeds everything, picks the device, and falls back to synthetic data (saying how
            to prepare the real one) when the dataset you asked for is not there yet.
            """
        ),
        code(INSTALL, "install"),
        parameters(extra),
        code(START),
    ]


def exercise(number: int, prompt: str, explanation: str, solution: str | None = None) -> list:
    cells = [
        md(
            f"### Exercise {number}\n\n{_text(prompt)}\n\n"
            f"<details><summary><b>Solution</b> (try first!)</summary>\n\n"
            f"{_text(explanation)}\n\n</details>"
        )
    ]
    if solution:
        cells.append(code("# Worked solution\n" + _text(solution)))
    return cells


# ---- 00: setup -----------------------------------------------------------------------------------


def notebook_00() -> list:
    stem = "00_setup"
    return [
        *opening(
            stem,
            "00 · Setting up: is everything in place?",
            [
                "check that the Python packages of the course are installed, and fix them if not",
                "tell whether PyTorch sees a GPU, and get one in Colab",
                "check that interactive widgets render (the notebooks work without them too)",
                "load the frozen Tiny-VAE (TAESD) that Wave-GMS is built around",
                "find or prepare the datasets, and know what the synthetic dataset is",
            ],
            """
            Welcome! This course rebuilds **Wave-GMS** ([arXiv 2510.03216](https://arxiv.org/abs/2510.03216)),
            a segmentation model with only ~2.6M trainable parameters that predicts masks in
            the latent space of a small frozen autoencoder. Six notebooks, one idea each:

            | notebook | idea |
            |---|---|
            | 00 setup | the environment works (this one) |
            | 01 wavelets | the Haar wavelet pyramid: what the encoder sees |
            | 02 Tiny-VAE latents | images and masks as TAESD latents; why mask latents are easy targets |
            | 03 LMM training | the model, its loss, training it and watching it learn |
            | 04 evaluation | Dice, IoU, HD95, empty masks, failure cases, domain shift |
            | 05 inference | segmenting your own images |

            **In Colab:** *Runtime > Change runtime type > T4 GPU* first, then *Runtime > Run all*.
            **Locally:** `pip install -e ".[notebooks]"` in a clone of the repository, then open
            the notebooks in Jupyter. This notebook only reads and checks; it trains nothing.
            """,
        ),
        md(
            """
            ## 1. Packages

            Each line says what a package is for. A `MISSING` line is fixed by the install
            command printed below the table; restart the kernel afterwards
            (*Kernel > Restart* or, in Colab, *Runtime > Restart session*).
            """
        ),
        code(
            """
            import importlib.metadata as metadata
            import platform

            PACKAGES = {  # distribution -> what the course uses it for
                "torch": "tensors, autograd, the GPU",
                "diffusers": "the Tiny-VAE (AutoencoderTiny)",
                "ptwt": "the Haar wavelet transform in PyTorch",
                "PyWavelets": "the Haar filters",
                "monai": "the Dice loss and HD95",
                "kornia": "data augmentation on the GPU",
                "matplotlib": "figures",
                "ipywidgets": "sliders to explore (optional)",
                "papermill": "running the whole course (instructors)",
            }
            checks = {}  # what this notebook verified, summarised at the end
            print(f"Python {platform.python_version()} on {platform.system()}")
            missing = []
            for name, purpose in PACKAGES.items():
                try:
                    print(f"  ok       {name:<11} {metadata.version(name):<14} {purpose}")
                except metadata.PackageNotFoundError:
                    missing.append(name)
                    print(f"  MISSING  {name:<11} {'':<14} {purpose}")
            if missing:
                fix = "rerun the install cell" if IN_COLAB else 'pip install -e ".[notebooks]"'
                print(f"\\nFix: {fix}, then restart the kernel.")
            checks["packages"] = not missing
            """
        ),
        md(
            """
            ## 2. GPU or CPU?

            Every notebook asks `wavegms.get_device(DEVICE)` where to compute: `"auto"` takes
            a CUDA GPU if PyTorch sees one, else Apple's MPS where it works, else the CPU. The
            quick mode is made for a CPU; the full run (224 px, hundreds of epochs) needs a GPU.
            """
        ),
        code(
            """
            import torch

            print(f"PyTorch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})")
            if device.type == "cuda":
                props = torch.cuda.get_device_properties(device)
                print(f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB")
            else:
                print(f"No GPU in use: computing on {device}. That is fine for the quick mode.")
                if IN_COLAB:
                    print("For a GPU: Runtime > Change runtime type > T4 GPU, then run all again.")
                else:
                    print("On an NVIDIA machine, install a CUDA build of PyTorch (pytorch.org).")
            checks["device"] = str(device)
            """
        ),
        md(
            """
            ## 3. Do widgets render?

            Notebooks 01 to 04 add sliders to browse wavelet bands, latents, training snapshots
            and cases. They always draw a static figure first, so nothing is lost without
            widgets; with them, you can explore.
            """
        ),
        code(
            """
            from wavegms.widgets import check_widgets

            checks["widgets"] = check_widgets()
            """
        ),
        md(
            """
            ## 4. The frozen Tiny-VAE (TAESD)

            Wave-GMS never trains its autoencoder: it borrows **TAESD**, a tiny distilled
            version of Stable Diffusion's VAE (about 1.2M parameters in its encoder and 1.2M in
            its decoder). It comes from the Hugging Face hub (`madebyollin/taesd`), or from a
            local folder named by the environment variable `WAVEGMS_TAESD` (offline machines,
            CI). If this cell fails, its message says how to fix it.
            """
        ),
        code(
            """
            from wavegms import TinyVAEUnavailableError, load_tiny_vae
            from wavegms.tiny_vae import default_tiny_vae_source

            print("TAESD from:", default_tiny_vae_source())
            try:
                vae = load_tiny_vae(device=device)
            except TinyVAEUnavailableError as error:
                print(error)  # says where it looked and how to point wavegms at a copy
                raise
            n_encoder = sum(p.numel() for p in vae.encoder.parameters())
            n_decoder = sum(p.numel() for p in vae.decoder.parameters())
            print(f"encoder {n_encoder:,} + decoder {n_decoder:,} = {n_encoder + n_decoder:,} parameters")
            print("trainable:", any(p.requires_grad for p in vae.parameters()), "(frozen, as it should be)")
            checks["TAESD"] = n_encoder + n_decoder == 2_445_063
            """
        ),
        md(
            """
            ## 5. Data

            The course runs on a **synthetic dataset** out of the box: ultrasound-like images
            with a dark lesion (and endoscopy-like images with instruments), generated in
            milliseconds, with exact masks. It lets everything run anywhere, but it is a toy:
            for real results, prepare a real dataset once:

            ```
            python -m data_download busi --root data    # in Colab: !python -m data_download busi --root data
            ```

            | dataset | images | access |
            |---|---|---|
            | BUSI (breast ultrasound) | 780 | public download, CC0 |
            | BUS (UDIAT "Dataset B") | 163 | on request from its authors only |
            | Kvasir-Instrument (endoscopy tools) | 590 | public download, research/education |
            | HAM10000 (dermoscopy) | 10,015 | public download, CC BY-NC 4.0 |

            Then set `DATASET = "busi"` (and `DATA_DIR` if you chose another folder) in the
            parameters cell of any notebook.
            """
        ),
        code(
            """
            from wavegms.data import DATASETS, SegmentationDataset

            prepared = []
            for name in DATASETS:
                try:
                    found = SegmentationDataset(session.data_dir / name)
                    prepared.append(name)
                    print(f"  prepared      {name:<18} {len(found)} images in {found.root}")
                except FileNotFoundError:
                    command = f"python -m data_download {name} --root {session.data_dir}"
                    print(f"  not prepared  {name:<18} {command}")
            checks["real datasets"] = ", ".join(prepared) or "none (synthetic only)"
            """
        ),
        code(
            """
            import matplotlib.pyplot as plt

            from wavegms.data import SyntheticDataset
            from wavegms.viz import overlay

            fig, axes = plt.subplots(2, 4, figsize=(9, 4.6))
            for row, kind in enumerate(["ultrasound", "endoscopy"]):
                examples = SyntheticDataset(2, image_size=128, kind=kind, seed=SEED)
                for k, item in enumerate(examples):
                    axes[row, 2 * k].imshow(item["image"].permute(1, 2, 0))
                    axes[row, 2 * k].set_title(f"{kind} image", fontsize=9)
                    axes[row, 2 * k + 1].imshow(overlay(item["image"], item["mask"][0]))
                    axes[row, 2 * k + 1].set_title("mask (red)", fontsize=9)
            for ax in axes.flat:
                ax.set_axis_off()
            fig.suptitle("The synthetic dataset: no download, exact masks")
            plt.show()
            """
        ),
        md(
            """
            ## 6. A first forward pass

            Finally, build the whole model around TAESD and segment a few synthetic images. It
            is untrained, so the masks are meaningless: we only check shapes and that it runs on
            your device.
            """
        ),
        code(
            """
            from wavegms import WaveGMS

            model = WaveGMS(vae, image_size=IMAGE_SIZE).to(device)
            trainable = sum(p.numel() for p in model.parameters())
            batch = course.sample_batch(session, 4, IMAGE_SIZE)
            probs = model.predict(batch["image"])
            print(f"trainable parameters: {trainable:,} (the paper: ~2.6M)")
            print(f"input {tuple(batch['image'].shape)} -> probabilities {tuple(probs.shape)} "
                  f"in [{probs.min():.2f}, {probs.max():.2f}] on {probs.device}")  # fmt: skip
            checks["model"] = tuple(probs.shape) == (4, 1, IMAGE_SIZE, IMAGE_SIZE)
            """
        ),
        md("## Summary"),
        code(
            """
            for name, result in checks.items():
                mark = "ok " if result is not False else "FIX"
                print(f"{mark}  {name}: {result}")
            """
        ),
        *exercise(
            1,
            """
            `get_device` reads the environment variable `WAVEGMS_DEVICE` when `DEVICE` is
            `"auto"`. Which wins when both are set: `DEVICE = "cpu"` or `WAVEGMS_DEVICE=cuda`?
            Check it in code without needing a GPU.
            """,
            """
            An explicit choice always wins: `WAVEGMS_DEVICE` only replaces `"auto"`. So
            `get_device("cpu")` is the CPU whatever the variable says, while
            `get_device("auto")` follows the variable. The cell below sets the variable to
            `cpu` (which exists everywhere) to show the second half, and restores it.
            """,
            """
            import os

            from wavegms import get_device

            saved = os.environ.get("WAVEGMS_DEVICE")
            os.environ["WAVEGMS_DEVICE"] = "cpu"
            try:
                print("explicit 'cpu':", get_device("cpu"))
                print("'auto' with WAVEGMS_DEVICE=cpu:", get_device("auto"))
            finally:
                if saved is None:
                    os.environ.pop("WAVEGMS_DEVICE")
                else:
                    os.environ["WAVEGMS_DEVICE"] = saved
            """,
        ),
        *exercise(
            2,
            """
            TAESD's decoder is where most of Wave-GMS's compute goes. Time one decode at
            `IMAGE_SIZE` and at twice that size on your device. How does the time grow with
            the number of pixels?
            """,
            """
            A convolutional decoder does the same work per pixel, so the time grows roughly
            with the pixel count: twice the side is about four times the time (less on a GPU
            for small inputs, where the launch overhead dominates). This is why the quick mode
            uses 64 px: a 224 px decode costs about 12 times as much.
            """,
            """
            import time

            for size in (IMAGE_SIZE, 2 * IMAGE_SIZE):
                latent = torch.randn(1, 4, size // 8, size // 8, device=device)
                with torch.no_grad():
                    vae.decode(latent)  # warm-up
                    began = time.perf_counter()
                    for _ in range(3):
                        vae.decode(latent)
                print(f"{size} px: {(time.perf_counter() - began) / 3 * 1000:.1f} ms per decode")
            """,
        ),
        md(
            """
            ## Next

            Everything is in place: continue with **01 · The Haar wavelet pyramid**, which
            opens up the input side of the model.
            """
        ),
    ]


# ---- 01: wavelets --------------------------------------------------------------------------------


def notebook_01() -> list:
    stem = "01_wavelets"
    return [
        *opening(
            stem,
            "01 · The Haar wavelet pyramid: what the encoder sees",
            [
                "compute one level of the 2-D Haar transform by hand and with `ptwt`",
                "read the four sub-bands (LL, H, V, D) of each level on ultrasound-like and real images",
                "explain why Wave-GMS divides level l by 2^l",
                "say exactly what tensors the multi-resolution encoder receives",
            ],
            """
            A segmentation model must see both the big picture (where is the lesion?) and fine
            detail (where exactly is its border?). Wave-GMS does not learn this split from
            scratch: it feeds its encoder a **Haar wavelet pyramid**, a lossless re-arrangement
            of the image into coarse approximations and edge-like details at three scales.
            """,
        ),
        code(
            """
            import matplotlib.pyplot as plt
            import ptwt
            import torch
            import torch.nn.functional as F

            from wavegms.wavelets import BANDS, HAAR, haar_pyramid

            SIZE = max(IMAGE_SIZE, 128)  # larger than the model input, so level 3 is still visible
            batch = course.sample_batch(session, 4, SIZE)
            images = batch["image"]  # [4, 3, SIZE, SIZE] in [0, 1]
            print("images:", tuple(images.shape), "|", ", ".join(batch["name"]))
            """
        ),
        md(
            r"""
            ## 1. One level, by hand

            Cut the image into 2 x 2 blocks $\begin{smallmatrix} a & b \\ c & d \end{smallmatrix}$.
            The orthonormal Haar transform replaces each block by four numbers:

            | band | formula | responds to |
            |---|---|---|
            | LL (approximation) | $(a + b + c + d) / 2$ | the local average (a half-size image) |
            | H (horizontal detail) | $(a + b - c - d) / 2$ | top minus bottom: **horizontal** edges |
            | V (vertical detail) | $(a - b + c - d) / 2$ | left minus right: **vertical** edges |
            | D (diagonal detail) | $(a - b - c + d) / 2$ | checkerboard patterns, corners, noise |

            The four rows form an orthogonal matrix (its rows are orthogonal and have length 1),
            so the transform keeps the energy $\sum x^2$ and can be inverted exactly. Let us
            check our formulas against `ptwt` (PyWavelets' filters, in PyTorch).
            """
        ),
        code(
            """
            x = torch.arange(16.0).reshape(1, 1, 4, 4)  # a tiny 4 x 4 image
            a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
            c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
            by_hand = torch.cat(
                [(a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2], 1
            )

            approx, (horizontal, vertical, diagonal) = ptwt.wavedec2(x, HAAR, level=1, mode="zero")
            with_ptwt = torch.cat([approx, horizontal, vertical, diagonal], 1)
            print("by hand == ptwt:", torch.allclose(by_hand, with_ptwt, atol=1e-5))
            print(f"energy: image {x.square().sum():.1f}, bands {by_hand.square().sum():.1f}")
            """
        ),
        md(
            """
            ## 2. The pyramid: three levels

            Level 2 applies the same transform to LL of level 1, level 3 to LL of level 2. Each
            level halves the resolution: for a 224 px image, 112, 56 and 28 px, and 28 px is
            exactly the size of TAESD's latents (notebook 02). `haar_pyramid` returns, per level,
            the 4 bands of each colour channel stacked: 12 channels.

            In the figure, grey maps are approximations; blue/red maps are details (red
            positive, blue negative, white zero). Look for the horizontal tissue layers in H,
            the speckle in level-1 details, and the lesion's outline at levels 2 and 3.
            """
        ),
        code(
            """
            pyramid = haar_pyramid(images)  # 3 tensors [B, 12, SIZE / 2^l, SIZE / 2^l]
            for level, bands in enumerate(pyramid, 1):
                print(f"level {level}: {tuple(bands.shape)}")


            def band_image(level, band, index=0, channel=0):
                \"\"\"One sub-band as a 2-D tensor: colour channel `channel` of band `band` (LL, H, V, D).\"\"\"
                return pyramid[level - 1][index, BANDS.index(band) * 3 + channel]


            def show_band(ax, level, band, index=0):
                values = band_image(level, band, index)
                if band == "LL":
                    ax.imshow(values, cmap="gray", vmin=0, vmax=1)
                else:  # details are signed: a symmetric colour scale keeps zero white
                    limit = values.abs().max().clamp(min=1e-6)
                    ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
                ax.set_title(f"level {level} {band}  {tuple(values.shape)}", fontsize=8)
                ax.set_axis_off()


            def draw_pyramid(index=0):
                fig, axes = plt.subplots(3, 5, figsize=(11, 6.6))
                for row in range(3):
                    axes[row, 0].imshow(images[index].permute(1, 2, 0))
                    axes[row, 0].set_title(batch["name"][index] if row == 0 else "", fontsize=8)
                    axes[row, 0].set_axis_off()
                    for col, band in enumerate(BANDS, 1):
                        show_band(axes[row, col], row + 1, band, index)
                fig.suptitle("Haar pyramid: one row per level")
                return fig


            draw_pyramid(0)
            plt.show()
            """
        ),
        md(
            """
            **Where does the energy go?** Because the transform is orthonormal, the energy of
            the image splits exactly into the energy of LL at level 3 plus all the detail
            bands. (We undo the division by 2^l here; section 3 explains it.) The large
            approximation share is why images compress so well; the speckle of ultrasound
            shows up as energy in the fine (level-1) details.
            """
        ),
        code(
            """
            def energy_shares(pyramid, index=0):
                \"\"\"Fraction of the image energy in LL_3 and in each detail band (orthonormal scale).\"\"\"
                shares = {}
                for level, bands in enumerate(pyramid, 1):
                    raw = bands[index] * 2**level  # the orthonormal coefficients
                    for k, band in enumerate(BANDS):
                        if band != "LL" or level == len(pyramid):
                            shares[f"{band}{level}"] = raw[3 * k : 3 * k + 3].square().sum().item()
                total = sum(shares.values())
                return {name: value / total for name, value in shares.items()}


            shares = energy_shares(pyramid)
            print(f"LL3 holds {shares['LL3']:.1%} of the energy; level-1 details "
                  f"{shares['H1'] + shares['V1'] + shares['D1']:.2%}")  # fmt: skip
            fig, ax = plt.subplots(figsize=(7, 2.6))
            ax.bar(list(shares), list(shares.values()))
            ax.set_yscale("log")
            ax.set_ylabel("share of energy")
            ax.set_title("Energy per band (log scale)")
            plt.show()
            """
        ),
        md(
            r"""
            ## 3. Why divide level l by 2^l?

            In the orthonormal transform LL is *twice* the block average ($(a+b+c+d)/2$ versus
            $(a+b+c+d)/4$). Each level multiplies by 2 again, so a constant image $c$ has
            $LL_l = c \cdot 2^l$: values up to 8 at level 3 for an image in [0, 1]. Dividing
            level $l$ by $2^l$ makes $LL_l$ **exactly the average of the $2^l \times 2^l$
            pixel blocks**, a small copy of the image in the image's own range.

            Why it matters: every level has its own feature extractor whose first layer is a
            plain convolution. With the division, all three receive inputs of the same scale
            (approximations in [0, 1], details of comparable size), so the same initialisation
            and learning rate suit them all, and no level dominates the others through sheer
            magnitude when their features are averaged together.
            """
        ),
        code(
            """
            for level, bands in enumerate(pyramid, 1):
                approx = bands[:, :3]  # LL of the 3 colour channels, already divided by 2^level
                block_mean = F.avg_pool2d(images, 2**level)
                raw = approx * 2**level
                print(f"level {level}: LL_l / 2^l == {2**level}x{2**level} block average: "
                      f"{torch.allclose(approx, block_mean, atol=1e-5)} | without the division "
                      f"LL would reach {raw.max():.2f}")  # fmt: skip
            """
        ),
        md(
            """
            ## 4. A real image

            Real images have richer detail than our synthetic ones. If you prepared a dataset,
            the first image above is already real; otherwise we use a real MRI slice of a head
            that ships with matplotlib (256 x 256, 16-bit), so this section always works offline.
            """
        ),
        code(
            """
            import numpy as np
            from matplotlib import cbook

            if session.synthetic:
                with cbook.get_sample_data("s1045.ima.gz") as file:  # real MRI data, in matplotlib
                    slice_ = np.frombuffer(file.read(), np.uint16).reshape(256, 256).astype(np.float32)
                real = torch.from_numpy(slice_ / slice_.max()).expand(1, 3, -1, -1)
                real = F.interpolate(real, size=(SIZE, SIZE), mode="bilinear", antialias=True)
                real_name = "MRI slice (matplotlib sample data)"
            else:
                real, real_name = images[:1], batch["name"][0]
            real_pyramid = haar_pyramid(real.clamp(0, 1))

            fig, axes = plt.subplots(2, 5, figsize=(11, 4.6))
            for row, (name, pyr, picture) in enumerate(
                [(batch["name"][0], pyramid, images[0]), (real_name, real_pyramid, real[0])]
            ):
                axes[row, 0].imshow(picture.permute(1, 2, 0))
                axes[row, 0].set_title(name, fontsize=8)
                for col, band in enumerate(BANDS, 1):
                    values = pyr[0][0, BANDS.index(band) * 3]
                    limit = values.abs().max().clamp(min=1e-6)
                    style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
                    axes[row, col].imshow(values, **({"cmap": "gray"} if band == "LL" else style))
                    axes[row, col].set_title(f"level 1 {band}", fontsize=8)
            for ax in axes.flat:
                ax.set_axis_off()
            plt.show()
            real_shares = energy_shares(real_pyramid)
            for name, s in [("synthetic ultrasound", shares), (real_name, real_shares)]:
                print(f"{name}: level-1 details hold {s['H1'] + s['V1'] + s['D1']:.2%} of the energy")
            """
        ),
        md(
            """
            ## 5. What the encoder really receives

            `WaveGMS` calls `haar_pyramid` on the image batch and gives level *l* to its own
            small UNet-like feature extractor (separate weights per level). For a batch of B
            images of H x W pixels:

            | level | tensor | channels |
            |---|---|---|
            | 1 | `[B, 12, H/2, W/2]` | LL, H, V, D for R, G, B, each divided by 2 |
            | 2 | `[B, 12, H/4, W/4]` | the same, divided by 4 |
            | 3 | `[B, 12, H/8, W/8]` | the same, divided by 8 |

            The extractors keep their resolution; level 1 is then average-pooled by 4 and
            level 2 by 2, so all three meet at **H/8**, TAESD's latent resolution, where an
            aggregator turns the 36 channels into a 4-channel mean and log-variance. (Grey
            images are repeated to 3 channels, so their R, G and B bands are identical.)

            Nothing is lost on the way in: the inverse transform rebuilds the image exactly
            from the level-1 bands.
            """
        ),
        code(
            """
            from wavegms.encoder import MultiResolutionEncoder

            encoder = MultiResolutionEncoder()  # untrained: we only look at shapes
            with torch.no_grad():
                mu, logvar = encoder(images[:2])
            for level, extractor in enumerate(encoder.extractors, 1):
                print(f"level-{level} extractor: {sum(p.numel() for p in extractor.parameters()):,} parameters")
            print(f"aggregator: {sum(p.numel() for p in encoder.aggregator.parameters()):,} parameters")
            print(f"images {tuple(images[:2].shape)} -> mu {tuple(mu.shape)}, logvar {tuple(logvar.shape)}")

            level1 = pyramid[0] * 2  # back to the orthonormal scale
            rebuilt = ptwt.waverec2((level1[:, :3], (level1[:, 3:6], level1[:, 6:9], level1[:, 9:])), HAAR)
            print(f"inverse transform of level 1: max error {(rebuilt - images).abs().max():.1e}")
            """
        ),
        md(
            """
            ## 6. Explore

            Pick an image, a level and a band. (The static figure below is what a headless run
            keeps; with widgets you get sliders under it.)
            """
        ),
        code(
            """
            from wavegms.widgets import browse


            def draw_band(image=0, level=1, band="H"):
                fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.4))
                left.imshow(images[image].permute(1, 2, 0))
                left.set_title(batch["name"][image], fontsize=9)
                left.set_axis_off()
                show_band(right, level, band, image)
                return fig


            browse(draw_band, {"image": range(len(images)), "level": [1, 2, 3], "band": list(BANDS)})
            """
        ),
        *exercise(
            1,
            """
            Build a 32 x 32 **checkerboard** (pixels alternating 0 and 1) and a pattern of
            **horizontal stripes** one pixel high. Before running anything: into which band of
            which level does each put its energy? Then check with `haar_pyramid`.
            """,
            """
            In every 2 x 2 block the checkerboard is $\\begin{smallmatrix} 0 & 1 \\\\ 1 & 0 \\end{smallmatrix}$:
            LL = 1, H = 0, V = 0, D = -1. So apart from the constant average (LL), all its
            energy is in **D at level 1**, and the blocks are identical, so levels 2 and 3 see a
            constant image with no detail at all. Stripes one pixel high give blocks
            $\\begin{smallmatrix} 1 & 1 \\\\ 0 & 0 \\end{smallmatrix}$: the energy goes to **H
            at level 1** (top minus bottom).
            """,
            """
            rows = torch.arange(32)[:, None]
            cols = torch.arange(32)[None, :]
            patterns = {
                "checkerboard": ((rows + cols) % 2).float(),
                "stripes": (rows % 2 == 0).float().expand(32, 32),
            }
            for name, pattern in patterns.items():
                levels = haar_pyramid(pattern.expand(1, 3, -1, -1))
                for level, bands in enumerate(levels, 1):
                    raw = bands[0, ::3] * 2**level  # LL, H, V, D of the first colour channel
                    energy = {band: raw[k].square().sum().item() for k, band in enumerate(BANDS)}
                    print(f"{name:>12} level {level}: " + "  ".join(f"{b} {e:7.1f}" for b, e in energy.items()))
            """,
        ),
        *exercise(
            2,
            """
            Why must the image size be divisible by 8? Try `haar_pyramid` on a 60 x 60 image
            and read the error. What would break later in the model if we padded instead?
            """,
            """
            Three Haar levels halve the size three times, so the side must be divisible by
            2^3 = 8: 60 is not (60 / 8 = 7.5). And TAESD's latents are exactly H/8: the
            coarsest level, the pooled features and the mask latents must all have the same
            size, so padding would only move the problem (the prediction would have to be
            cropped back, and the pad would be part of what the model learns from).
            """,
            """
            try:
                haar_pyramid(torch.rand(1, 3, 60, 60))
            except ValueError as error:
                print("ValueError:", error)
            """,
        ),
        md(
            """
            ## Summary

            - The Haar transform turns each 2 x 2 block into an average (LL) and three edge
              detectors (H, V, D); it is orthonormal, so nothing is lost.
            - Three levels give approximations and details at 1/2, 1/4 and 1/8 of the size.
            - Dividing level l by 2^l makes LL_l the block average, in the image's range.
            - The encoder sees 3 tensors of 12 channels; its output lives at 1/8 of the
              image size, the size of TAESD's latents: **02 · Tiny-VAE latents** is next.
            """
        ),
    ]


# ---- 02: TAESD latents ---------------------------------------------------------------------------


def notebook_02() -> list:
    stem = "02_tiny_vae_latents"
    return [
        *opening(
            stem,
            "02 · The Tiny-VAE: images and masks as latents",
            [
                "encode and decode images and masks with TAESD, with the right value ranges",
                "look at the 4 latent channels as images",
                "measure round-trip quality: PSNR for images, Dice for masks",
                "explain why mask latents are easy targets for a small model",
            ],
            """
            Wave-GMS does not predict a mask pixel by pixel. It predicts the **latent** of the
            mask: the 4-channel, 8x smaller code that a frozen autoencoder, TAESD, would give
            that mask; TAESD's decoder then turns the prediction into the mask. This notebook
            looks at that latent space, and shows why it makes segmentation easier.
            """,
        ),
        code(
            """
            import matplotlib.pyplot as plt
            import torch
            import torch.nn.functional as F

            from wavegms import load_tiny_vae
            from wavegms.metrics import dice_iou

            vae = load_tiny_vae(device=device)
            SIZE = max(IMAGE_SIZE, 128)  # a little larger than the quick model input: nicer pictures
            batch = course.sample_batch(session, 6, SIZE)
            images = batch["image"].to(device)  # [6, 3, S, S] in [0, 1]
            masks = batch["mask"].to(device)  # [6, 1, S, S] in {0, 1}
            print("images", tuple(images.shape), "masks", tuple(masks.shape))
            """
        ),
        md(
            """
            ## 1. Encode and decode an image

            TAESD works with pixel values in **[-1, 1]**, so images in [0, 1] go in as
            `2 * x - 1`, and decoded outputs come back as `(y + 1) / 2`. A latent has 4 channels
            at 1/8 of the side: 3 x S x S numbers become 4 x S/8 x S/8, a 48-fold compression.
            TAESD's scaling factor is 1: no rescaling sits between the encoder and the decoder.
            """
        ),
        code(
            """
            with torch.no_grad():
                image_latents = vae.encode(images * 2 - 1).latents  # [6, 4, S/8, S/8]
                decoded = ((vae.decode(image_latents).sample + 1) / 2).clamp(0, 1)
            low, high = image_latents.min().item(), image_latents.max().item()
            print(f"image latents {tuple(image_latents.shape)}, values in [{low:.2f}, {high:.2f}]")
            print(f"compression: {images[0].numel() / image_latents[0].numel():.0f}x")
            mse = (decoded - images).square().flatten(1).mean(1)
            psnr = 10 * torch.log10(1 / mse)
            print("round-trip PSNR per image (dB):", [round(v, 1) for v in psnr.tolist()])

            fig, axes = plt.subplots(3, 4, figsize=(8, 6.2))
            for col in range(4):
                axes[0, col].imshow(images[col].permute(1, 2, 0).cpu())
                axes[1, col].imshow(decoded[col].permute(1, 2, 0).cpu())
                error = (decoded[col] - images[col]).abs().mean(0).cpu()
                axes[2, col].imshow(error * 5, cmap="magma", vmin=0, vmax=1)
                axes[1, col].set_title(f"{psnr[col]:.1f} dB", fontsize=8)
            for ax, label in zip(axes[:, 0], ["image", "decoded", "|error| x 5"]):
                ax.set_ylabel(label)
            for ax in axes.flat:
                ax.set_xticks([])
                ax.set_yticks([])
            plt.show()
            """
        ),
        md(
            """
            The shapes survive but the PSNR is low (a good photo codec reaches 30 dB or more).
            The error maps tell why: on ultrasound-like images the loss is mostly **speckle**,
            random pixel-level noise that no 48-fold compression can keep, so the decoder
            returns a smoothed image. That is fine for us: Wave-GMS never needs to reconstruct
            *images*, only masks. The image latent is still used, as the **teacher** of the
            alignment loss (notebook 03).

            ## 2. The latent channels, as images

            Each latent channel is a small image on a grid 8 times coarser: the latent space
            keeps the layout of the image. On smooth photographs the channels look like blurred,
            recoloured copies of the input; on our speckled ultrasound the speckle dominates and
            the lesion shows only faintly (look at channel 1).
            """
        ),
        code(
            """
            def show_channels(axes, latents, title):
                for c, ax in enumerate(axes):
                    ax.imshow(latents[c].cpu(), cmap="viridis")
                    ax.set_title(f"{title} ch {c}", fontsize=8)
                    ax.set_axis_off()


            fig, axes = plt.subplots(1, 5, figsize=(10, 2.3))
            axes[0].imshow(images[0].permute(1, 2, 0).cpu())
            axes[0].set_axis_off()
            show_channels(axes[1:], image_latents[0], "image latent")
            plt.show()
            """
        ),
        md(
            """
            ## 3. Masks as latents

            A mask becomes a 3-channel image in [-1, 1] (`2 * m - 1`, repeated over RGB: -1 is
            background, +1 foreground) and is encoded the same way. Its latent is the model's
            **target**. Decoding turns a latent back into a probability: the mean over the 3
            decoded channels, mapped from [-1, 1] to [0, 1]; thresholding at 0.5 gives the mask.
            This is exactly what `WaveGMS.encode_targets` and `WaveGMS.decode` do.

            The round trip mask -> latent -> mask is a **ceiling**: even a perfect latent
            prediction cannot beat the Dice of this round trip.
            """
        ),
        code(
            """
            from wavegms import WaveGMS

            model = WaveGMS(vae, image_size=SIZE).to(device)
            with torch.no_grad():
                teacher_latents, mask_latents = model.encode_targets(images, masks)  # each [6, 4, S/8, S/8]
                round_trip = model.decode(mask_latents)  # [6, 1, S, S] probabilities
            same = torch.allclose(teacher_latents, image_latents, atol=1e-4)
            print("teacher latents are the image latents:", same)
            dice, _ = dice_iou(round_trip > 0.5, masks)
            print("round-trip Dice per mask:", [round(v, 4) for v in dice.tolist()])
            """
        ),
        md(
            """
            ## 4. Why mask latents are easy targets

            An image latent must encode texture, brightness and shape. A mask has none of the
            first two: it is one smooth region. So its latent should be almost a simple
            function of *how much of each 8 x 8 block is foreground*. Let us test that: fit,
            per channel, a straight line from the block's foreground fraction to the latent
            value, and see how much of the variance it explains (R^2, 1 = all of it), for mask
            latents and, for comparison, for image latents.
            """
        ),
        code(
            """
            fraction = F.avg_pool2d(masks, 8).flatten()  # foreground share of each 8x8 block


            def r_squared(latents):
                \"\"\"Per channel: the share of variance a straight line of `fraction` explains.\"\"\"
                design = torch.stack([torch.ones_like(fraction), fraction], 1)
                scores = []
                for c in range(latents.shape[1]):
                    values = latents[:, c].flatten()
                    fit = design @ torch.linalg.lstsq(design, values[:, None]).solution
                    scores.append(1 - (fit.squeeze(1) - values).var().item() / values.var().item())
                return scores


            r2_mask, r2_image = r_squared(mask_latents), r_squared(image_latents)
            fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
            channels = torch.arange(4)
            left.bar(channels - 0.2, r2_mask, 0.4, label="mask latents")
            left.bar(channels + 0.2, r2_image, 0.4, label="image latents")
            left.set(xlabel="latent channel", ylabel="R^2 of a line", ylim=(0, 1))
            left.set_title("Explained by the foreground fraction")
            left.legend()
            for latents, label in [(mask_latents, "mask latent"), (image_latents, "image latent")]:
                values = latents[:, 1].flatten().cpu()
                right.scatter(fraction.cpu(), values, s=4, alpha=0.5, label=f"{label} ch 1")
            right.set(xlabel="foreground fraction of the 8x8 block", ylabel="latent value")
            right.legend()
            plt.show()
            print("R^2 of mask latents: ", [round(v, 2) for v in r2_mask])
            print("R^2 of image latents:", [round(v, 2) for v in r2_image])
            """
        ),
        md(
            """
            Mask latents are **nearly a low-resolution copy of the mask**, in four "colours":
            two clusters (all background, all foreground) joined by a ramp along the border.
            Image latents are not explained by the mask at all. So the Latent Mapping Model has
            to turn an image representation into something close to a small probability map,
            an easier regression than predicting pixels of an image.

            There is a second reason: the decoder **forgives errors**. Add noise to perfect
            mask latents and decode: the masks stay almost intact until the noise is large.
            """
        ),
        code(
            """
            generator = torch.Generator(device="cpu").manual_seed(SEED)
            spread = mask_latents.std().item()
            print(f"spread (std) of the mask latents: {spread:.2f}")
            for sigma in [0.0, 0.25, 0.5, 1.0]:
                noise = torch.randn(mask_latents.shape, generator=generator).to(device) * sigma * spread
                with torch.no_grad():
                    noisy = model.decode(mask_latents + noise) > 0.5
                print(f"noise {sigma:4.2f} x spread -> mean Dice {dice_iou(noisy, masks)[0].mean():.3f}")
            """
        ),
        md(
            """
            ## 5. Explore the latents side by side

            For every image: the image, one channel of its latent, the mask, the same channel
            of the mask latent, and the decoded mask. Change the channel with the slider.
            """
        ),
        code(
            """
            from wavegms.widgets import browse


            def draw_latents(channel=0):
                n = len(images)
                fig, axes = plt.subplots(n, 5, figsize=(9, 1.8 * n))
                titles = ["image", f"image latent {channel}", "mask", f"mask latent {channel}", "decoded"]
                for i in range(n):
                    panels = [
                        (images[i].permute(1, 2, 0), {}),
                        (image_latents[i, channel], {"cmap": "viridis"}),
                        (masks[i, 0], {"cmap": "gray"}),
                        (mask_latents[i, channel], {"cmap": "viridis"}),
                        (round_trip[i, 0], {"cmap": "gray", "vmin": 0, "vmax": 1}),
                    ]
                    for ax, (picture, style), title in zip(axes[i], panels, titles):
                        ax.imshow(picture.cpu(), **style)
                        ax.set_axis_off()
                        if i == 0:
                            ax.set_title(title, fontsize=8)
                return fig


            browse(draw_latents, {"channel": [0, 1, 2, 3]})
            """
        ),
        *exercise(
            1,
            """
            What are the latents of an **all-background** and an **all-foreground** mask? Encode
            both (at 64 px) and print the mean of each channel. Compare with the two clusters
            of the scatter plot above.
            """,
            """
            Both are (almost) constant latents: one 4-vector for "nothing here" and another for
            "all lesion". They are the two ends of the ramp in the scatter plot: a mask latent
            is, to a good approximation, a blend of these two vectors weighted by the local
            foreground fraction. A model that outputs the background vector everywhere predicts
            an empty mask.
            """,
            """
            with torch.no_grad():
                for value, name in [(0.0, "background"), (1.0, "foreground")]:
                    constant = torch.full((1, 1, 64, 64), value, device=device)
                    latent = vae.encode(constant.expand(-1, 3, -1, -1) * 2 - 1).latents
                    print(f"all {name}: channel means {[round(v, 2) for v in latent.mean((0, 2, 3)).tolist()]}")
            """,
        ),
        *exercise(
            2,
            """
            Is the latent space smooth? Interpolate between the mask latents of the first two
            images, `(1 - t) * z0 + t * z1` for t = 0, 0.25, 0.5, 0.75, 1, decode each and look.
            """,
            """
            The decoded masks morph gradually: the first shape fades as the second grows, with
            sharp, mask-like outputs on the way. Small steps in latent space give small changes
            in the mask, which is what makes a regression onto these latents (with an MSE loss)
            meaningful.
            """,
            """
            steps = torch.linspace(0, 1, 5, device=device)
            blend = torch.stack([(1 - t) * mask_latents[0] + t * mask_latents[1] for t in steps])
            with torch.no_grad():
                blended = model.decode(blend)
            fig, axes = plt.subplots(1, 5, figsize=(9, 2))
            for ax, t, picture in zip(axes, steps, blended):
                ax.imshow(picture[0].cpu(), cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"t = {t:.2f}", fontsize=9)
                ax.set_axis_off()
            plt.show()
            """,
        ),
        md(
            """
            ## Summary

            - TAESD maps [-1, 1] images to 4 x H/8 x W/8 latents and back; it stays frozen.
            - Mask latents are nearly an affine function of the local foreground fraction:
              a low-resolution mask in disguise. The round-trip Dice is the ceiling.
            - The decoder cleans up imperfect latents, so predicting them is forgiving.

            Next, **03 · Training the Latent Mapping Model** puts it together: the wavelet
            encoder of 01 produces a latent, the LMM maps it to a mask latent, and TAESD
            decodes it.
            """
        ),
    ]


# ---- 03: training --------------------------------------------------------------------------------


def notebook_03() -> list:
    stem = "03_lmm_training"
    return [
        *opening(
            stem,
            "03 · Training the Latent Mapping Model",
            [
                "build Wave-GMS and account for its ~2.6M trainable parameters, module by module",
                "name the three terms of the training objective and say what each one is for",
                "train the model with a live progress bar and loss curves",
                "watch predicted mask latents and decoded masks improve across epochs",
                "explain why the best checkpoint is chosen on validation data, never on test data",
            ],
            """
            Time to put the pieces together. The **wavelet encoder** (notebook 01) turns an
            image into a latent at 1/8 of its size; the **Latent Mapping Model (LMM)**, a small
            UNet with attention that never changes resolution, maps that latent to the **mask
            latent** (notebook 02); the frozen TAESD decoder turns it into a mask. Only the
            encoder and the LMM learn.
            """,
        ),
        code(
            """
            import time

            import matplotlib.pyplot as plt
            import torch
            from IPython.display import display

            from wavegms import WaveGMS, load_tiny_vae
            from wavegms.curves import plot_training_curves
            from wavegms.losses import WaveGMSLoss
            from wavegms.train import build_datasets

            vae = load_tiny_vae(device=device)
            config = course.course_config(
                session, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, quick=QUICK
            )
            datasets, splits = build_datasets(config)
            sizes = {part: len(items) for part, items in datasets.items()}
            print(f"{config.dataset} at {config.image_size} px: {sizes}")
            print(f"{config.epochs} epochs, batch {config.batch_size}, lr {config.lr}")
            print(f"augmentation: {'on' if config.augment else 'off (quick mode)'}")
            """
        ),
        md(
            """
            ## 1. The model and its parameters

            The paper counts **2,600,668** trainable parameters: 1,035,692 in the encoder
            (three per-level extractors of 258,204 and an aggregator of 261,080) and 1,564,976
            in the LMM. The LMM figure includes a fourth output head (4,864 parameters) that the
            authors' code builds but no loss uses; we leave it out, so we count **2,595,804**.
            TAESD's 2,445,063 parameters are frozen and not part of the model's parameters:
            they never reach the optimiser or the checkpoint.
            """
        ),
        code(
            """
            torch.manual_seed(config.seed)  # the same initial weights that train() starts from
            model = WaveGMS(vae, image_size=config.image_size).to(device)


            def count(module):
                return sum(p.numel() for p in module.parameters())


            modules = {
                "encoder: level-1 extractor": model.encoder.extractors[0],
                "encoder: level-2 extractor": model.encoder.extractors[1],
                "encoder: level-3 extractor": model.encoder.extractors[2],
                "encoder: aggregator": model.encoder.aggregator,
                "LMM: stem": model.lmm.stem,
                "LMM: encoder blocks": model.lmm.down,
                "LMM: decoder blocks": model.lmm.up,
                "LMM: output heads": model.lmm.heads,
            }
            for name, module in modules.items():
                print(f"{name:<28} {count(module):>10,}")
            print(f"{'encoder':<28} {count(model.encoder):>10,}   (paper: 1,035,692)")
            print(f"{'LMM':<28} {count(model.lmm):>10,}   (paper: 1,564,976 with the unused head)")
            print(f"{'trainable in all':<28} {count(model):>10,}   (paper: 2,600,668 - 4,864)")
            print(f"{'TAESD, frozen':<28} {count(vae):>10,}   (not in model.parameters())")

            fig, ax = plt.subplots(figsize=(7, 2.8))
            ax.barh(list(modules), [count(m) / 1e6 for m in modules.values()])
            ax.invert_yaxis()
            ax.set_xlabel("million parameters")
            ax.set_title("Where the trainable parameters are")
            plt.show()
            """
        ),
        md(
            r"""
            ## 2. One forward pass and the objective

            In training mode the encoder outputs a mean $\mu$ and a log-variance, and the LMM
            receives a *sample* $z = \mu + \sigma \epsilon$ (at evaluation it receives $\mu$, so
            predictions are deterministic). The LMM returns three mask latents, from three
            decoder depths (deep supervision); the last one is the prediction. With the masks,
            the model also computes TAESD's latents of the image (the *teacher*) and of the mask
            (the *target*), and decodes all three predictions.

            The loss adds, with all weights 1:

            - **latent**: the mean squared error between each predicted mask latent and the
              target: learn the latent directly;
            - **mask**: the soft Dice loss between each decoded prediction and the true mask:
              what we finally care about, with gradients flowing *through* the frozen decoder;
            - **align**: $0.9\,(1 - \cos(z, z_{teacher})) + 0.1\,\mathrm{SmoothL1}(z, z_{teacher})$:
              pulls the encoder's latent towards TAESD's latent of the same image. The small
              encoder thereby borrows structure from a network trained on millions of images,
              and the LMM receives inputs that live in a known, well-behaved space (GMS, the
              predecessor, fed its LMM the image latents of a large frozen Stable Diffusion
              VAE directly). It acts as
              distillation and as a regulariser, which matters with a few hundred images.

            There is no KL term: the encoder is VAE-shaped, but the alignment replaces the prior.
            """
        ),
        code(
            """
            sample = torch.utils.data.default_collate([datasets["train"][i] for i in range(2)])
            images, masks = sample["image"].to(device), sample["mask"].to(device)
            model.train()
            output = model(images, masks)
            for name in ("mu", "latent", "teacher_latent", "mask_latent"):
                print(f"{name:<15} {tuple(getattr(output, name).shape)}")
            print(f"{'mask_latents':<15} {[tuple(z.shape) for z in output.mask_latents]}")
            print(f"{'mask_probs':<15} {tuple(output.mask_probs.shape)}  (heads, batch, 1, H, W)")
            losses = WaveGMSLoss()(output, masks)
            print({name: round(value.item(), 3) for name, value in losses.items()})
            model.eval()
            """
        ),
        md(
            """
            ## 3. Train, and watch

            `wavegms.train.train` runs the whole loop: AdamW (lr 2e-3, weight decay 0.01), a
            warm-up then a cosine schedule, validation after each epoch, and checkpoints in a
            run folder (`best/` by validation Dice, `last/` with everything needed to resume).
            It accepts **callbacks**, called after every epoch with the model in evaluation
            mode. We use two: one keeps the predictions for four validation images (snapshots),
            one redraws the curves while training runs.

            (The quick mode trains without augmentation: over four epochs it only slows learning
            down; in a full run it is what keeps the model from memorising the training set.)
            If this run was already trained in `OUT_DIR`, it is reused, not trained again.
            """
        ),
        code(
            """
            n_watch = min(4, len(datasets["val"]))  # a few validation images to watch
            watch = torch.utils.data.default_collate([datasets["val"][i] for i in range(n_watch)])
            watch_images = watch["image"].to(device)
            with torch.no_grad():
                _, target_latents = model.encode_targets(watch_images, watch["mask"].to(device))


            class Snapshots:
                \"\"\"A train() callback keeping the predictions for the watched images.\"\"\"

                def __init__(self, every):
                    self.every, self.epochs, self.latents, self.probs = every, [], [], []

                @torch.no_grad()
                def take(self, epoch, model):
                    mu, _ = model.encoder(watch_images)
                    latent = model.lmm(mu)[-1]  # the "out" head: the prediction
                    self.epochs.append(epoch)
                    self.latents.append(latent.cpu())
                    self.probs.append(model.decode(latent).cpu())

                def on_epoch_end(self, epoch, model, record):
                    if epoch % self.every == 0 or epoch == config.epochs:
                        self.take(epoch, model)


            class LiveCurves:
                \"\"\"A train() callback redrawing the curves in place as epochs end.\"\"\"

                def __init__(self, every):
                    self.every, self.records, self.handle = every, [], None

                def on_epoch_end(self, epoch, model, record):
                    self.records.append(record)
                    if epoch % self.every == 0 or epoch == config.epochs:
                        figure = plot_training_curves(self.records)
                        if self.handle is None:
                            self.handle = display(figure, display_id=True)
                        else:
                            self.handle.update(figure)


            snapshots = Snapshots(every=max(1, config.epochs // 8))
            snapshots.take(0, model)  # epoch 0: the untrained model
            run_dir = course.run_dir_for(session, config)
            began = time.perf_counter()
            curves = LiveCurves(every=max(1, config.epochs // 20))
            course.ensure_trained(config, run_dir, tiny_vae=vae, callbacks=[snapshots, curves])
            print(f"done in {time.perf_counter() - began:.0f} s")
            """
        ),
        md(
            """
            ## 4. The curves, and which checkpoint to keep

            All losses should fall; the validation Dice should rise, noisily. The run keeps as
            `best/` the epoch with the highest **validation** Dice. Why not the test split? The
            published code picks its checkpoint on the test split, and then reports the test
            score of that checkpoint: the test images have helped choose the model, so the
            number is optimistic (it is the maximum over many noisy epochs). Here the test split
            is touched once, in notebook 04, by a model chosen without it.
            """
        ),
        code(
            """
            history = course.read_history(run_dir)
            display(plot_training_curves(history))
            validated = [r for r in history if r.get("val_dice") is not None]
            best = max(validated, key=lambda r: r["val_dice"])
            print(f"best validation Dice {best['val_dice']:.3f} at epoch {best['epoch']}: {run_dir / 'best'}")
            seconds = sum(r["train_time_s"] for r in history) / len(history)
            print(f"{seconds:.1f} s of training per epoch on {device}")
            """
        ),
        md(
            """
            ## 5. Watching it learn

            Each row is one snapshot: the decoded probability for four validation images. At
            epoch 0 the untrained model outputs noise; the first thing it learns is "mostly
            background", then where the lesion is, then its shape. (If the run was reused from
            an earlier execution, only the snapshots saved with it are shown.)
            """
        ),
        code(
            """
            from wavegms.checkpoint import atomic_torch_save
            from wavegms.metrics import dice_iou

            saved = run_dir / "snapshots.pt"
            if len(snapshots.epochs) > 1:
                atomic_torch_save(vars(snapshots), saved)
            elif saved.is_file():  # a reused run: its snapshots were saved when it was trained
                vars(snapshots).update(torch.load(saved, weights_only=True))
            truth = watch["mask"] > 0.5
            scores = [dice_iou(probs > 0.5, truth)[0] for probs in snapshots.probs]

            rows = len(snapshots.epochs) + 1
            fig, axes = plt.subplots(rows, n_watch, figsize=(1.8 * n_watch, 1.8 * rows), squeeze=False)
            for col in range(n_watch):
                axes[0, col].imshow(watch["image"][col].permute(1, 2, 0))
                axes[0, col].contour(truth[col, 0], levels=[0.5], colors="lime", linewidths=1)
                axes[0, col].set_title("image + true outline", fontsize=8)
                for row, (epoch, probs) in enumerate(zip(snapshots.epochs, snapshots.probs), 1):
                    axes[row, col].imshow(probs[col, 0], cmap="gray", vmin=0, vmax=1)
                    axes[row, col].set_title(f"epoch {epoch}: Dice {scores[row - 1][col]:.2f}", fontsize=8)
            for ax in axes.flat:
                ax.set_axis_off()
            plt.show()
            """
        ),
        md(
            """
            The model predicts latents, not pixels: compare the predicted latent (one channel)
            with the target, the TAESD latent of the true mask. Pick an epoch with the slider.
            """
        ),
        code(
            """
            from wavegms.widgets import browse


            def draw_snapshot(epoch=snapshots.epochs[-1], channel=1):
                k = snapshots.epochs.index(epoch)
                fig, axes = plt.subplots(4, n_watch, figsize=(1.8 * n_watch, 7), squeeze=False)
                for col in range(n_watch):
                    error = (snapshots.latents[k][col] - target_latents[col].cpu()).square().mean()
                    panels = [
                        (target_latents[col, channel].cpu(), "target latent", "viridis"),
                        (snapshots.latents[k][col, channel], f"predicted (MSE {error:.2f})", "viridis"),
                        (snapshots.probs[k][col, 0], "decoded probability", "gray"),
                        (snapshots.probs[k][col, 0] > 0.5, f"mask, Dice {scores[k][col]:.2f}", "gray"),
                    ]
                    for row, (picture, title, cmap) in enumerate(panels):
                        axes[row, col].imshow(picture, cmap=cmap)
                        axes[row, col].set_title(title, fontsize=8)
                        axes[row, col].set_axis_off()
                fig.suptitle(f"epoch {epoch}, latent channel {channel}")
                return fig


            browse(draw_snapshot, {"epoch": snapshots.epochs[::-1], "channel": [0, 1, 2, 3]})
            """
        ),
        md(
            """
            ## 6. Where the time goes

            On a CPU, about 70-80% of a training step is spent in the *frozen* TAESD: two encodes
            (mask and image, no gradient) and, above all, decoding three heads at full
            resolution with gradients for the Dice loss. The 2.6M trainable parameters are the
            cheap part. This is why the quick mode uses 64 px images, and why a GPU helps so much:
            a full 224 px step takes about 0.1 s on a T4 (an estimate) instead of several seconds.
            """
        ),
        *exercise(
            1,
            """
            The authors' code predicts from a **sampled** latent `mu + sigma * eps` even at test
            time; we use `mu`. Load the trained model, draw 8 samples for the watched images,
            decode them, and measure how much the masks disagree. What does this say about
            reporting results from sampled predictions?
            """,
            """
            Every sample gives a slightly different mask, so a score computed from one sample
            is itself random: running the same evaluation twice gives different numbers, and
            picking the best run inflates them. The spread shrinks as training makes sigma
            small, but it never vanishes. With `mu`, the prediction is a deterministic function
            of the image: evaluations are reproducible.
            """,
            """
            from wavegms.checkpoint import load_model

            trained = load_model(run_dir, device=device, tiny_vae=vae)
            with torch.no_grad():
                mu, logvar = trained.encoder(watch_images)
                masks_from_mu = trained.decode(trained.lmm(mu)[-1]) > 0.5
                samples = []
                for _ in range(8):
                    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
                    samples.append(trained.decode(trained.lmm(z)[-1]) > 0.5)
            disagree = torch.stack(samples).float().std(0).gt(0).float().mean()
            print(f"mean sigma {torch.exp(0.5 * logvar).mean():.3f}")
            print(f"{disagree:.2%} of pixels change label between samples")
            print("predict() uses mu:", torch.equal(trained.predict(watch_images) > 0.5, masks_from_mu))
            """,
        ),
        *exercise(
            2,
            """
            Halve the LMM's width: `WaveGMS(vae, lmm_base_channels=16)`. How many parameters
            does the LMM lose, and why is it about three quarters rather than one half?
            """,
            """
            A convolution from C_in to C_out channels has about 9 * C_in * C_out weights, so
            halving every width divides the count by about 4 (the attention's 1x1 convolutions
            scale the same way). The LMM shrinks to about a quarter: it loses ~75%. The encoder
            is untouched, so the total drops from 2.6M to about 1.4M.
            """,
            """
            narrow = WaveGMS(vae, image_size=config.image_size, lmm_base_channels=16)
            share = count(narrow.lmm) / count(model.lmm)
            print(f"LMM: {count(model.lmm):,} -> {count(narrow.lmm):,} ({share:.0%})")
            print(f"total: {count(model):,} -> {count(narrow):,}")
            """,
        ),
        *exercise(
            3,
            """
            (On a GPU.) Train longer: set `EPOCHS = 100` (and `QUICK = False` for augmentation)
            and run the notebook again. How does the gap between the training loss and the
            validation Dice behave? How would you continue an interrupted run?
            """,
            """
            With more epochs the validation Dice keeps rising long after the quick mode stops,
            then flattens while the training loss still falls: the model starts fitting the
            training images more than it generalises. That is why `best/` (chosen on validation)
            and `last/` can differ. An interrupted run is continued exactly where it stopped with
            `wavegms train --out RUN_DIR --resume` (or by running this notebook again: it resumes
            the run folder of the same settings), and `--resume --epochs N` extends a finished one.
            """,
        ),
        md(
            """
            ## Summary

            - Wave-GMS trains 2.6M parameters (encoder ~1.0M, LMM ~1.6M) around a frozen 2.4M TAESD.
            - The objective: latent MSE + Dice through the decoder, on three heads, plus the
              alignment of the encoder's latent with TAESD's latent of the image.
            - The run folder keeps `best/` by validation Dice and `last/` for resuming.

            Next, **04 · Evaluation** measures the chosen model on the test split, honestly.
            """
        ),
    ]


# ---- 04: evaluation ------------------------------------------------------------------------------


def notebook_04() -> list:
    stem = "04_evaluation"
    return [
        *opening(
            stem,
            "04 · Evaluation: Dice, IoU, HD95, and where the model fails",
            [
                "compute Dice, IoU and HD95 by hand and with the library, and relate them",
                "handle empty masks the way this project's specification does, and see what changes otherwise",
                "read a per-image distribution, pooled versus mean Dice, and the best and worst cases",
                "measure a domain gap: the same model on images from another scanner or modality",
            ],
            """
            A single number hides a lot. This notebook evaluates the model trained in 03 on its
            **test split**, once, and looks behind the mean: how the metrics are defined, how
            they treat empty masks, how scores spread over images, which images fail, and what
            happens on data from another domain. If 03 has not run with the same parameters, a
            model is trained first (in quick mode, about 15 s on a CPU).
            """,
        ),
        code(
            """
            import csv

            import matplotlib.pyplot as plt
            import torch

            from wavegms import load_tiny_vae
            from wavegms.checkpoint import load_model
            from wavegms.evaluate import evaluate
            from wavegms.metrics import dice_iou, hausdorff, hd95, segmentation_metrics, summarize
            from wavegms.train import build_datasets

            vae = load_tiny_vae(device=device)
            config = course.course_config(
                session, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, quick=QUICK
            )
            run_dir = course.ensure_trained(config, course.run_dir_for(session, config), tiny_vae=vae)
            model = load_model(run_dir, device=device, tiny_vae=vae)  # best/: chosen on validation
            """
        ),
        md(
            r"""
            ## 1. The metrics, by hand

            For a predicted mask $P$ and the truth $T$ (sets of pixels):

            - **Dice** $= \dfrac{2|P \cap T|}{|P| + |T|}$ and **IoU** (Jaccard) $= \dfrac{|P \cap T|}{|P \cup T|}$.
              Both are 1 for a perfect mask and 0 without overlap; they rank predictions
              identically, since $\mathrm{IoU} = \mathrm{Dice} / (2 - \mathrm{Dice})$.
            - **HD95**: for every boundary pixel of $P$, the distance to the nearest boundary
              pixel of $T$, and vice versa; the 95th percentile of all those distances, in pixels.
              Dice measures overlap, HD95 measures *how far off* the worst (5%-trimmed) parts of
              the outline are. The plain Hausdorff distance is the maximum, and one stray pixel
              decides it: the percentile makes it robust to a few.
            """
        ),
        code(
            """
            def disk(cx, cy, r, size=64):
                y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
                return ((x - cx) ** 2 + (y - cy) ** 2 <= r**2)[None, None]  # [1, 1, size, size] bool


            truth = disk(30, 32, 12)
            shifted = disk(34, 32, 12)
            inter, union = (truth & shifted).sum(), (truth | shifted).sum()
            print(f"by hand: Dice {2 * inter / (truth.sum() + shifted.sum()):.4f}, IoU {inter / union:.4f}")
            dice, iou = dice_iou(shifted, truth)
            print(f"library: Dice {dice.item():.4f}, IoU {iou.item():.4f}")
            print(f"Dice / (2 - Dice) = {dice.item() / (2 - dice.item()):.4f} = IoU")

            one_pixel, four_pixels = shifted.clone(), shifted.clone()
            one_pixel[..., 2, 2] = True  # one false-positive pixel far away
            four_pixels[..., 2:4, 2:4] = True  # a 2 x 2 blob of them
            cases = {"shifted": shifted, "+ 1 stray pixel": one_pixel, "+ 2x2 stray blob": four_pixels}
            fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
            for ax, (name, pred) in zip(axes, cases.items()):
                d = dice_iou(pred, truth)[0].item()
                h95 = hd95(pred, truth).item()
                h100 = hausdorff(pred, truth).item()  # the plain maximum
                ax.imshow(truth[0, 0].float() + 2 * pred[0, 0].float(), cmap="viridis")
                ax.set_title(f"{name}\\nDice {d:.3f} HD95 {h95:.1f} max {h100:.1f}", fontsize=9)
                ax.set_axis_off()
            fig.suptitle("blue: truth only, green: prediction only, yellow: both", fontsize=9)
            plt.show()
            """
        ),
        md(
            """
            One stray pixel leaves Dice and HD95 unchanged but sends the maximum Hausdorff
            distance to 30 px. Four stray pixels, still invisible in the Dice, already move
            HD95: this outline has only about 80 boundary pixels, so 5% of them is 4 pixels.
            HD95 forgives a *very* few outliers, not a stray blob. The two metrics answer
            different questions (how much overlaps, how far off the outline strays), which is
            why papers report both.

            ## 2. Empty masks: a pitfall with consequences

            What is the Dice of an empty prediction for an image without a lesion? The formula
            gives 0/0. This project's specification decides every case explicitly:

            | truth | prediction | Dice, IoU | HD95 |
            |---|---|---|---|
            | empty | empty | 1 (a correct "nothing here") | 0 |
            | empty | not empty | 0 (a false alarm) | the image diagonal (worst possible) |
            | not empty | empty | 0 (a missed lesion) | the image diagonal |
            | not empty | not empty | the formulas | the formula |

            The authors' published code scores empty/empty as Dice 0 and gives HD95 = 0, *the
            best value*, whenever either mask is empty. Let us compare the two on each case,
            then on a test set that contains normal images.
            """
        ),
        code(
            """
            def authors_rule(pred, truth):
                \"\"\"Dice and HD95 as the published code computes them (for comparison only).\"\"\"
                p, t = pred.sum().item(), truth.sum().item()
                dice = 2 * (pred & truth).sum().item() / (p + t) if p + t else 0.0
                distance = 0.0 if p == 0 or t == 0 else hd95(pred, truth).item()
                return dice, distance


            empty = torch.zeros_like(truth)
            pairs = {
                "both empty": (empty, empty),
                "false alarm": (shifted, empty),
                "missed lesion": (empty, truth),
                "both present": (shifted, truth),
            }
            print(f"{'case':<14} {'SPEC Dice':>9} {'SPEC HD95':>9} {'authors Dice':>12} {'authors HD95':>12}")
            for name, (pred, target) in pairs.items():
                ours = dice_iou(pred, target)[0].item(), hd95(pred, target).item()
                theirs = authors_rule(pred, target)
                print(f"{name:<14} {ours[0]:>9.3f} {ours[1]:>9.1f} {theirs[0]:>12.3f} {theirs[1]:>12.1f}")
            """
        ),
        md(
            """
            Under the authors' rule a model that *misses* a lesion gets the best possible HD95,
            and one that correctly finds nothing in a normal image gets Dice 0. Averaged over a
            dataset with normal images (BUSI has 133 of 780), the two rules can tell opposite
            stories. The paper protocol sidesteps the question by excluding normal images; we
            follow it, but the rules above are what our metrics do whenever an empty mask shows
            up (the evaluation also counts empty ground truths: `n_gt_empty`).

            ## 3. The test split, evaluated once

            `wavegms.evaluate.evaluate` predicts every test image with the `best/` checkpoint and
            writes `summary.json`, `per_image.csv` and `cases.png`. Besides the mean and standard
            deviation over images, it reports the **pooled** Dice: all pixels of the split
            counted together, as if the test set were one big image. Large lesions weigh more
            in the pooled Dice; every image weighs the same in the mean.
            """
        ),
        code(
            """
            eval_dir = session.out_dir / "evaluation" / run_dir.name
            summary = evaluate(run_dir, out_dir=eval_dir, device=device, tiny_vae=vae, progress=False)
            print(f"{summary['description']}, {summary['split']} split, {summary['n_images']} images")
            for name in ("dice", "iou", "hd95"):
                print(f"  {name:<5} {summary[name + '_mean']:.3f} +- {summary[name + '_std']:.3f}")
            print(f"  pooled Dice {summary['dice_pooled']:.3f} | empty ground truths: {summary['n_gt_empty']}")

            with open(eval_dir / "per_image.csv") as file:
                rows = list(csv.DictReader(file))
            fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
            left.hist([float(r["dice"]) for r in rows], bins=20, range=(0, 1))
            left.axvline(summary["dice_mean"], color="k", ls="--", label="mean")
            left.set(xlabel="Dice", ylabel="images", title="Dice per test image")
            left.legend()
            right.hist([float(r["hd95"]) for r in rows], bins=20)
            right.set(xlabel="HD95 (pixels)", title="HD95 per test image")
            plt.show()
            """
        ),
        md(
            """
            ## 4. Best and worst cases

            Means are made of individual images. Sorting the test images by Dice and looking at
            both ends is the fastest way to learn what a model gets wrong: missed lesions, a
            lesion found in the wrong place, a border leaking into similar tissue, a shadow
            taken for a lesion. (Green: the truth; red: the prediction.)
            """
        ),
        code(
            """
            from wavegms.viz import plot_cases
            from wavegms.widgets import browse

            test_items = build_datasets(config, run_dir)[0]["test"]  # the split saved with the run
            test = torch.utils.data.default_collate([test_items[i] for i in range(len(test_items))])
            test_probs = model.predict(test["image"]).cpu()
            per_image = segmentation_metrics(test_probs, test["mask"])
            order = per_image["dice"].argsort(descending=True).tolist()  # best first


            def draw_cases(rank=0):
                chosen = [order[rank], order[-1 - rank]]
                return plot_cases(
                    [test["image"][i] for i in chosen],
                    [test["mask"][i] for i in chosen],
                    [test_probs[i] > 0.5 for i in chosen],
                    [test["name"][i] for i in chosen],
                    [f"Dice {per_image['dice'][i]:.3f}, HD95 {per_image['hd95'][i]:.1f} px" for i in chosen],
                    row_labels=[f"best #{rank + 1}", f"worst #{rank + 1}"],
                )


            browse(draw_cases, {"rank": range(max(1, len(order) // 2))})
            """
        ),
        md(
            """
            ## 5. Cross-domain: the same model elsewhere

            A model is only as good as the images it was trained on. A hospital with another
            scanner produces images with other brightness, contrast and noise; the question is
            how much of the score survives. The paper trains on BUSI and tests on BUS (and the
            reverse): the GMS paper reports 80.3% Dice for BUSI -> BUS against 81.4% within BUSI.

            With synthetic data we play the same game: the model (trained on synthetic
            ultrasound) is tested on its own test images as a **different "scanner"** would show
            them (blurrier, brighter, lower contrast), and on **endoscopy** images, another
            modality entirely. With a real BUSI or BUS run, the other of the two is evaluated
            too when it is prepared.
            """
        ),
        code(
            """
            from kornia.filters import gaussian_blur2d

            from wavegms.data import SegmentationDataset, SyntheticDataset


            class OtherScanner(torch.utils.data.Dataset):
                \"\"\"The same images as another machine shows them: blurrier, brighter, flatter.\"\"\"

                def __init__(self, items):
                    self.items = items

                def __len__(self):
                    return len(self.items)

                def __getitem__(self, i):
                    item = dict(self.items[i])
                    blurred = gaussian_blur2d(item["image"][None], (7, 7), (1.5, 1.5))[0]
                    item["image"] = 0.25 + 0.6 * blurred.clamp(0, 1) ** 0.5
                    return item


            def score(model, items):
                \"\"\"Mean per-image metrics of `model` on `items` (the evaluation loop, in small).\"\"\"
                parts = []
                for batch in torch.utils.data.DataLoader(items, batch_size=16):
                    parts.append(segmentation_metrics(model.predict(batch["image"]), batch["mask"]))
                return summarize({key: torch.cat([p[key] for p in parts]) for key in parts[0]})


            n = len(test_items)
            domains = {f"{session.dataset} (test split)": summary}
            if session.synthetic:
                domains["same images, other scanner"] = score(model, OtherScanner(test_items))
                endoscopy = SyntheticDataset(n, config.image_size, kind="endoscopy", seed=7)
                domains["endoscopy (other modality)"] = score(model, endoscopy)
            other = {"busi": "bus", "bus": "busi"}.get(session.dataset)
            if other:
                try:
                    SegmentationDataset(session.data_dir / other)
                except FileNotFoundError:
                    print(f"{other} is not prepared: python -m data_download {other} --root {session.data_dir}")
                else:
                    domains[f"{other} (cross-domain)"] = evaluate(
                        run_dir,
                        dataset=other,
                        data_dir=session.data_dir,
                        out_dir=eval_dir / other,
                        device=device,
                        tiny_vae=vae,
                        progress=False,
                    )

            for name, r in domains.items():
                scores = f"Dice {r['dice_mean']:.3f} IoU {r['iou_mean']:.3f} HD95 {r['hd95_mean']:5.1f} px"
                print(f"{name:<28} {scores}")
            fig, ax = plt.subplots(figsize=(7, 2.6))
            ax.barh(list(domains), [r["dice_mean"] for r in domains.values()])
            ax.invert_yaxis()
            ax.set(xlabel="mean Dice", xlim=(0, 1), title="The domain gap")
            plt.show()
            """
        ),
        md(
            """
            Read the numbers with care. In the synthetic quick run, another scanner's brightness,
            contrast and sharpness cost little: the synthetic lesion stays the darkest, smoothest
            region of the image, which is what the model learned to find. Real scanners differ
            in more ways (speckle size, artefacts, the patients themselves), which is why BUSI ->
            BUS costs GMS several points. A new modality costs almost everything: nothing in
            the training data looked like an instrument in a colon. Augmentation narrows the gap
            for the changes it imitates; only data from the new domain closes it.

            ## 6. Reporting honestly

            - Select the checkpoint on validation data, evaluate the test split once (03, 04).
            - Report mean +- std over images and the pooled Dice; say how empty masks count.
            - Report HD95 in pixels *at a stated resolution* (224 px in the paper).
            - Compare with published numbers only when the protocol matches (the GMS and
              Wave-GMS tables select on the test split).
            """
        ),
        *exercise(
            1,
            """
            The threshold 0.5 is a convention. Sweep it from 0.1 to 0.9 on the test
            probabilities computed above: how much does the mean Dice change? Would choosing the
            best threshold on the test split be fair?
            """,
            """
            The Dice usually changes little around 0.5 because the decoder produces confident
            probabilities (close to 0 or 1) except along borders; the best threshold shifts the
            borders by a pixel or so. Choosing it on the **test** split would be the same
            mistake as choosing the checkpoint there: pick it on the validation split, then
            apply it to the test split once.
            """,
            """
            thresholds = torch.linspace(0.1, 0.9, 9)
            means = [dice_iou(test_probs > t, test["mask"] > 0.5)[0].mean().item() for t in thresholds]
            for t, m in zip(thresholds, means):
                print(f"threshold {t:.1f}: mean Dice {m:.3f}")
            """,
        ),
        *exercise(
            2,
            """
            Build two predictions where the **mean** Dice and the **pooled** Dice disagree
            strongly: a large lesion segmented well and a tiny lesion missed completely. Which
            number describes a screening tool better?
            """,
            """
            The pooled Dice counts pixels, so the large lesion dominates and the result looks
            good (~0.95); the mean Dice counts images, and the missed lesion pulls it to ~0.48.
            For screening, a missed small lesion is a failure of the whole image, so the
            per-image mean (and the count of misses) is the more honest summary.
            """,
            """
            big_truth, big_pred = disk(32, 32, 20), disk(33, 32, 20)
            tiny_truth, tiny_pred = disk(10, 10, 3), torch.zeros_like(disk(10, 10, 3))
            results = segmentation_metrics(
                torch.cat([big_pred, tiny_pred]).float(), torch.cat([big_truth, tiny_truth]).float()
            )
            totals = summarize(results)
            print(f"per image: {results['dice'].tolist()}")
            print(f"mean Dice {totals['dice_mean']:.3f} vs pooled Dice {totals['dice_pooled']:.3f}")
            """,
        ),
        md(
            """
            ## Summary

            - Dice and IoU measure overlap (and rank alike); HD95 measures outline distance.
            - Empty masks need explicit rules; ours score correct emptiness as perfect and
              misses as worst.
            - Look at distributions and at the worst cases, not only at the mean.
            - Domain shift costs accuracy; measure it before trusting a model elsewhere.

            Last: **05 · Inference on your images** runs the model on image files of any size.
            """
        ),
    ]


# ---- 05: inference -------------------------------------------------------------------------------

EXTRA_05 = """
IMAGES = None  # your image files or folders (a list, or one path); None: example images
CHECKPOINT = None  # a run folder from `wavegms train`; None: the run of notebook 03
UPLOAD = False  # in Colab, True opens a file picker to upload your own images
"""


def notebook_05() -> list:
    stem = "05_inference_on_your_images"
    return [
        *opening(
            stem,
            "05 · Inference on your own images",
            [
                "load a trained checkpoint and segment image files of any size and format",
                "follow what happens to an image on its way through the model and back",
                "write masks, probability maps and overlays, from Python or the command line",
                "estimate the cost per image on a CPU, and know the limits of a trained model",
            ],
            """
            A trained model is a folder. This notebook loads one (by default the run of notebook
            03, trained here if missing; or any run folder you give in `CHECKPOINT`) and segments
            image files: yours (`IMAGES`, or `UPLOAD = True` in Colab) or a few example files
            written for you. Everything runs on a CPU.
            """,
            extra=EXTRA_05,
        ),
        code(
            """
            import shutil
            import time
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import torch.nn.functional as F
            from PIL import Image

            from wavegms import load_tiny_vae
            from wavegms.checkpoint import load_model
            from wavegms.data import SegmentationDataset, Splits, SyntheticDataset, load_image
            from wavegms.predict import expand_inputs, predict_files, to_model_input

            vae = load_tiny_vae(device=device)
            if CHECKPOINT:
                run_dir = Path(CHECKPOINT).expanduser()
            else:
                config = course.course_config(
                    session, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, quick=QUICK
                )
                run_dir = course.ensure_trained(config, course.run_dir_for(session, config), tiny_vae=vae)
            model = load_model(run_dir, device=device, tiny_vae=vae)
            print(f"model from {run_dir}, input size {model.config.image_size} px, on {model.device}")
            """
        ),
        md(
            """
            ## 1. Your images

            Any PNG, JPEG, BMP or TIFF works, grey or colour, of any size. Without images of your
            own, we write three example files that look like what the model was trained on: for
            a synthetic run, new synthetic ultrasound images saved at odd sizes; for a real
            dataset, three images of its test split, copied at their original size.
            """
        ),
        code(
            """
            if IN_COLAB and UPLOAD:
                from google.colab import files

                uploads = session.out_dir / "my_images"
                uploads.mkdir(parents=True, exist_ok=True)
                for name, content in files.upload().items():
                    (uploads / name).write_bytes(content)
                inputs = [uploads]
            elif IMAGES:
                inputs = [IMAGES] if isinstance(IMAGES, str | Path) else list(IMAGES)
            else:  # example files, in a folder of their own per dataset
                examples = session.out_dir / "examples" / session.dataset
                examples.mkdir(parents=True, exist_ok=True)
                if session.synthetic:
                    new = SyntheticDataset(3, image_size=160, kind="ultrasound", seed=SEED + 100)
                    sizes = [(240, 160), (160, 160), (180, 270)]  # width x height, not the model's
                    for i, (item, size) in enumerate(zip(new, sizes)):
                        pixels = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                        suffix = "jpg" if i == 1 else "png"
                        resized = Image.fromarray(pixels).resize(size, Image.BILINEAR)
                        resized.save(examples / f"example_{i}.{suffix}")
                else:  # three test images the model has never seen, at their original size
                    root = session.data_dir / session.dataset
                    for name in Splits.load(run_dir / "splits.json").test[:3]:
                        shutil.copy(SegmentationDataset(root, names=[name]).image_path(0), examples)
                inputs = [examples]
            print("inputs:", [str(p) for p in inputs])
            """
        ),
        md(
            """
            ## 2. Segment them

            `predict_files` reads each file, resizes it to the model's input size, predicts,
            resizes the **probabilities** back to the file's own size (smooth borders, rather than
            blocky upscaled masks), thresholds at 0.5 and writes `<name>.png` (0 / 255), plus the
            probability map and an overlay on request. Unreadable files are reported and skipped.
            """
        ),
        code(
            """
            out = session.out_dir / "my_predictions"
            report = predict_files(model, inputs, out, save_probs=True, save_overlay=True, progress=False)
            print(report)
            for file, reason in report.failed:
                print("skipped", file, "-", reason)

            rows = len(report.written)
            fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
            for row, mask_path in enumerate(report.written):
                stem = mask_path.stem
                probability = np.asarray(Image.open(out / f"{stem}_prob.png")) / 255
                panels = [
                    (np.asarray(Image.open(out / f"{stem}_overlay.png")), f"{stem}: overlay"),
                    (probability, f"probability {probability.shape[1]}x{probability.shape[0]}"),
                    (np.asarray(Image.open(mask_path)), f"mask ({(probability > 0.5).mean():.1%} of pixels)"),
                ]
                for ax, (picture, title) in zip(axes[row], panels):
                    ax.imshow(picture, cmap="gray")
                    ax.set_title(title, fontsize=8)
                    ax.set_axis_off()
            plt.show()
            """
        ),
        md(
            """
            ## 3. Step by step

            The same path for one file, by hand: every shape on the way.
            """
        ),
        code(
            """
            files = expand_inputs(inputs)  # the image files, folders expanded
            image = load_image(files[0])  # [H, W, 3] float in [0, 1], whatever the file's format
            x = to_model_input(image, model.config.image_size)  # [3, S, S]: bilinear, antialiased
            probs = model.predict(x[None])  # [1, 1, S, S] in [0, 1]
            back = F.interpolate(probs.cpu(), size=image.shape[:2], mode="bilinear")
            print(f"{files[0].name}: file {image.shape} -> model input {tuple(x.shape)}")
            print(f"probabilities {tuple(probs.shape)} -> back at the file's size {tuple(back.shape)}")
            """
        ),
        md(
            """
            Change the threshold and see how the mask grows or shrinks (0.5 is what the model
            was trained and evaluated with):
            """
        ),
        code(
            """
            from wavegms.viz import overlay
            from wavegms.widgets import browse

            pictures = [load_image(file) for file in files[:6]]
            full_probs = []
            for picture in pictures:
                p = model.predict(to_model_input(picture, model.config.image_size)[None]).cpu()
                full_probs.append(F.interpolate(p, size=picture.shape[:2], mode="bilinear")[0, 0])


            def draw_threshold(image=0, threshold=0.5):
                fig, ax = plt.subplots(figsize=(4, 4))
                mask = full_probs[image] > threshold
                ax.imshow(overlay(pictures[image], mask))
                ax.set_title(f"threshold {threshold}: {mask.float().mean():.1%} of pixels", fontsize=9)
                ax.set_axis_off()
                return fig


            browse(draw_threshold, {"image": range(len(pictures)), "threshold": [0.5, 0.3, 0.7, 0.9, 0.1]})
            """
        ),
        md(
            """
            ## 4. How fast on a CPU?

            Inference is one encoder pass, one LMM pass and one TAESD decode, with no gradient.
            On the 2-core CPU of our CI machine a 224 px image takes about 0.15-0.2 s in fp32
            (measured; TAESD's decoder is about half of it), so a folder of a hundred images
            takes well under a minute. Where the CPU or GPU runs bf16 natively,
            `model.prepare_for_inference("auto")` (channels-last memory, bf16 weights) with
            `precision="auto"` takes about half that, and the tests check that its masks agree
            with fp32 on more than 98% of pixels. Where bf16 is not native, "auto" stays fp32.
            Here are both, at this model's size on your device:
            """
        ),
        code(
            """
            import copy

            from wavegms.device import resolve_precision


            def ms_per_image(net, precision):
                batch = torch.rand(8, 3, net.config.image_size, net.config.image_size)
                net.predict(batch[:1], precision=precision)  # warm-up
                began = time.perf_counter()
                net.predict(batch, precision=precision)
                return (time.perf_counter() - began) / len(batch) * 1000


            fast = copy.deepcopy(model).prepare_for_inference("auto")  # a copy: `model` stays fp32
            computes_in = resolve_precision("auto", fast.device) or torch.float32
            auto = f"auto ({str(computes_in).removeprefix('torch.')})"
            print(f"{model.config.image_size} px on {model.device}, ms per image:")
            print(f"  fp32            {ms_per_image(model, 'fp32'):6.1f}")
            print(f"  {auto:<15} {ms_per_image(fast, 'auto'):6.1f}")
            """
        ),
        md(
            """
            ## 5. From the command line

            The same in one command, for scripts and batch jobs (one mask PNG per image,
            exit status 1 if some file could not be read):

            ```
            wavegms predict --checkpoint RUN_DIR path/to/images/ --out masks/ --save-overlay
            ```
            """
        ),
        code(
            """
            from wavegms.cli import main as wavegms_command

            arguments = ["predict", "--checkpoint", str(run_dir), *map(str, inputs), "--out", str(out / "cli")]
            status = wavegms_command([*arguments, "--no-progress"])
            print("exit status", status)
            """
        ),
        md(
            """
            ## 6. Know the limits

            - A model knows only the domain it was trained on. The quick model has seen 32
              synthetic ultrasound images: it will not segment your photos, and a BUSI model is
              not a skin-lesion model. Check the modality, the view and the resolution first.
            - The probability is a score, not a calibrated confidence.
            - This is research and teaching code, **not a medical device**: never use its
              output for a clinical decision.
            """
        ),
        *exercise(
            1,
            """
            **Test-time augmentation.** Predict each example image and its horizontal mirror,
            flip the second prediction back, and average the two probabilities. Does the mask
            change? When could this help?
            """,
            """
            The two predictions differ a little (the network is not exactly symmetric), mostly
            along borders; averaging them smooths those disagreements and often gains a fraction
            of a Dice point for the price of a second forward pass. It helps most when the model
            is uncertain (small data, borderline cases) and costs twice the time.
            """,
            """
            for k, picture in enumerate(pictures):
                x = to_model_input(picture, model.config.image_size)[None]
                plain = model.predict(x)
                mirrored = model.predict(x.flip(-1)).flip(-1)
                averaged = (plain + mirrored) / 2
                changed = ((plain > 0.5) != (averaged > 0.5)).float().mean()
                print(f"image {k}: {changed:.2%} of pixels change label with flip averaging")
            """,
        ),
        *exercise(
            2,
            """
            Feed the model something it has never seen: a constant grey image, and random noise.
            What does it predict, and what does this tell you about using it on the wrong images?
            """,
            """
            The model always answers: it has no notion of "this is not an ultrasound image". On a
            flat image it typically predicts nothing or a blob; on noise, arbitrary shapes. A
            segmentation model needs a human (or another model) to check that its input belongs
            to its domain.
            """,
            """
            size = model.config.image_size
            strange = torch.stack([torch.full((3, size, size), 0.5), torch.rand(3, size, size)])
            found = (model.predict(strange) > 0.5).float().mean((1, 2, 3))
            print(f"grey image: {found[0]:.1%} of pixels called foreground; noise: {found[1]:.1%}")
            """,
        ),
        md(
            """
            ## The end of the course

            You have seen every part of Wave-GMS: the wavelet pyramid, the frozen Tiny-VAE and
            its mask latents, the LMM and its objective, honest evaluation, and inference. To go
            further: prepare BUSI (`python -m data_download busi --root data`), set
            `DATASET = "busi"`, `IMAGE_SIZE = 224`, `QUICK = False` on a GPU, and run 03 to 05
            again, or run the whole course at once with `wavegms course --profile full`.
            """
        ),
    ]


NOTEBOOK_CELLS = {
    "00_setup": notebook_00,
    "01_wavelets": notebook_01,
    "02_tiny_vae_latents": notebook_02,
    "03_lmm_training": notebook_03,
    "04_evaluation": notebook_04,
    "05_inference_on_your_images": notebook_05,
}


# ---- writing -------------------------------------------------------------------------------------


def build(stem: str) -> nbformat.NotebookNode:
    """The notebook ``stem`` with stable cell ids and no outputs."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = NOTEBOOK_CELLS[stem]()
    for number, cell in enumerate(notebook.cells):
        cell.id = f"{stem[:2]}-{number:03d}"
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",  # Colab opens it on a GPU runtime when one is free
        "colab": {"provenance": [], "gpuType": "T4"},
    }
    nbformat.validate(notebook)
    return notebook


def render(stem: str) -> str:
    """The exact text of ``notebooks/<stem>.ipynb``."""
    return nbformat.writes(build(stem)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        stem = name.removesuffix(".ipynb")
        if stem not in NOTEBOOK_CELLS:
            continue
        path = HERE / name
        text = render(stem)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python notebooks/build_notebooks.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
