# %% [markdown]
# # 00 · Setting up: is everything in place?
#
# *⏱ This notebook, about 17 min in all: ~17 min to read and do (estimate: 1,430 words at 200 words/min + 2 exercises at 5 min), 5 s of computing (quick profile, measured on a 2-core Intel Xeon CPU on 2026-12-06).*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/00_setup.ipynb)
#
# Welcome! This course rebuilds **Wave-GMS** ([arXiv 2510.03216](https://arxiv.org/abs/2510.03216)),
# a segmentation model with only ~2.6M trainable parameters that predicts masks in
# the latent space of a small frozen autoencoder. Six notebooks, one idea each:
#
# | notebook | idea |
# |---|---|
# | 00 setup | the environment works (this one) |
# | 01 wavelets | the Haar wavelet pyramid: what the encoder sees |
# | 02 Tiny-VAE latents | images and masks as TAESD latents; why mask latents are easy targets |
# | 03 LMM training | the model, its loss, training it and watching it learn |
# | 04 evaluation | Dice, IoU, HD95, empty masks, failure cases, domain shift |
# | 05 inference | segmenting your own images |
#
# **In Colab:** *Runtime > Change runtime type > T4 GPU* first, then *Runtime > Run all*.
# **Locally:** `pip install -e ".[notebooks]"` in a clone of the repository, then open
# the notebooks in Jupyter. This notebook only reads and checks; it trains nothing.
#
# **In the paper.** This notebook teaches the method overview (the frozen Tiny-VAE that
# Wave-GMS is built around, and the model's parameter budget).
# [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) names the
# function that implements each step of the method, and numbers the equations the later
# notebooks write out, (E1) to (E9).
#
# **Learning objectives.** After this notebook you can:
# - check that the Python packages of the course are installed, and fix them if not
# - tell whether PyTorch sees a GPU, and get one in Colab
# - check that interactive widgets render (the notebooks work without them too)
# - load the frozen Tiny-VAE (TAESD) that Wave-GMS is built around
# - find or prepare the datasets, and know what the synthetic dataset is
# - measure where a prediction spends its compute
#
# **Time.** CPU quick mode (the defaults): the line under the title, measured. Colab T4, full run: about 2 minutes, most of it the install (an estimate, not a measurement: pip fetches wavegms and the few packages Colab lacks, such as monai, kornia and ptwt, and TAESD's 9 MB of weights are downloaded; the notebook's own work is the quick run's at 224 instead of 64 px, a handful of predictions of 40 GFLOP each, under a second on a T4).

# %% [markdown]
# ## Setup
#
# *⏱ About 1 min: ~1 min to read (estimate: 117 words at 200 words/min), 4 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The first cell installs the package when you are in Colab (locally it only checks
# that `wavegms` is importable). The second holds the **parameters**: the defaults
# run a quick version on any CPU with synthetic images; set `DATASET` to a real
# dataset once you have prepared it, and `QUICK = False` on a GPU. The third cell
# seeds everything, picks the device and how training computes (`PRECISION = "auto"`
# and `CHANNELS_LAST = None`: on an NVIDIA GPU, mixed precision, fp16 on a T4 and bf16
# on newer ones, in the channels-last memory format; elsewhere plain fp32), and falls back to
# synthetic data (saying how to prepare the real one) when the dataset you asked for is
# not there yet.

# %% tags=["install"]
# Install: in Colab, install wavegms from GitHub (once); locally, only check that it is there.
import importlib
import importlib.metadata as metadata
import subprocess
import sys

WAVEGMS_URL = "git+https://github.com/wavegms/wavegms"  # where the package comes from
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB and importlib.util.find_spec("wavegms") is None:
    # Plain `wavegms`, never `wavegms[notebooks]`: Colab ships its own torch, ipykernel,
    # IPython and ipywidgets, and replacing them under a running kernel breaks it. Colab's
    # torch satisfies wavegms's torch>=2.2, so pip keeps it.
    loaded = {n: metadata.version(n) for n in ("numpy", "scipy", "pillow") if n in sys.modules}
    command = [sys.executable, "-m", "pip", "install", "-q", f"wavegms @ {WAVEGMS_URL}"]
    subprocess.run(command, check=True)
    importlib.invalidate_caches()
    changed = [n for n, v in loaded.items() if metadata.version(n) != v]
    if changed:  # a package this kernel had already imported was replaced
        print(f"pip updated {', '.join(changed)}: Runtime > Restart session, then run all again.")
if IN_COLAB:
    from google.colab import output

    output.enable_custom_widget_manager()  # lets ipywidgets 8 render in Colab
try:
    import wavegms
except ImportError as error:
    raise ImportError(
        "wavegms is not installed in this kernel. From a clone of the repository run\n"
        '    pip install -e ".[notebooks]"\n'
        "then restart the kernel (Kernel > Restart) and run this notebook again."
    ) from error
print(f"wavegms {wavegms.__version__}" + (" (Colab)" if IN_COLAB else ""))

# %% tags=["parameters"]
# Parameters: `wavegms course` (papermill) overrides them; these defaults are the
# CPU quick mode. Real data: python -m data_download busi --root data
DATASET = "synthetic"  # "synthetic", or a prepared real dataset: "busi", "bus", "kvasir_instrument", "ham10000"
DATA_DIR = "data"  # the folder holding prepared <dataset>/ folders
IMAGE_SIZE = 64  # model input side in pixels, a multiple of 8 (the paper: 224)
EPOCHS = 5  # training epochs (the paper: 1000 for BUSI)
BATCH_SIZE = 2  # images per training step (the paper: 12)
QUICK = True  # small and fast for a CPU; False for the real run on a GPU
DEVICE = "auto"  # "auto" (a GPU when there is one), "cpu", "cuda" or "mps"
PRECISION = "auto"  # training: "auto" (CUDA GPU: bf16 on recent ones, fp16 on a T4; else fp32), "fp32", "bf16", "fp16"
CHANNELS_LAST = None  # training memory format: None (on a CUDA GPU yes, else no), True or False
THREADS = None  # CPU threads: None (the cores other work leaves free), or a number
SEED = 0  # seeds everything (the paper: 2333)
# OUT_DIR: runs and figures; None: build/course/work in a checkout, else
# ./wavegms_course (never inside notebooks/)
OUT_DIR = None

# %% tags=["start"]
from wavegms import course

session = course.start(
    DATASET,
    DATA_DIR,
    device=DEVICE,
    precision=PRECISION,
    channels_last=CHANNELS_LAST,
    seed=SEED,
    out_dir=OUT_DIR,
    threads=THREADS,
)
device = session.device

# %% [markdown]
# ## 1. Packages
#
# *⏱ About 1 min: ~1 min to read (estimate: 35 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Each line says what a package is for. A `MISSING` line is fixed by the install
# command printed below the table; restart the kernel afterwards
# (*Kernel > Restart* or, in Colab, *Runtime > Restart session*).

# %%
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
    print(f"\nFix: {fix}, then restart the kernel.")
checks["packages"] = not missing

# %% [markdown]
# ## 2. GPU or CPU?
#
# *⏱ About 1 min: ~1 min to read (estimate: 48 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Every notebook asks `wavegms.get_device(DEVICE)` where to compute: `"auto"` takes
# a CUDA GPU if PyTorch sees one, else Apple's MPS where it works, else the CPU. The
# quick mode is made for a CPU; the full run (224 px, hundreds of epochs) needs a GPU.

# %%
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

# %% [markdown]
# ## 3. Do widgets render?
#
# *⏱ About 1 min: ~1 min to read (estimate: 37 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Notebooks 01 to 04 add sliders to browse wavelet bands, latents, training snapshots
# and cases. They always draw a static figure first, so nothing is lost without
# widgets; with them, you can explore.

# %%
from wavegms.course.widgets import check_widgets

checks["widgets"] = check_widgets()

# %% [markdown]
# ## 4. The frozen Tiny-VAE (TAESD)
#
# *⏱ About 1 min: ~1 min to read (estimate: 68 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Wave-GMS never trains its autoencoder: it borrows **TAESD**, a tiny distilled
# version of Stable Diffusion's VAE (its encoder and its decoder hold about 1.2M parameters
# each: the cell prints them). It comes from the Hugging Face hub (`madebyollin/taesd`), or
# from a local folder named by the environment variable `WAVEGMS_TAESD` (offline machines,
# CI). If this cell fails, its message says how to fix it.

# %%
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

# %% tags=["claims"]
# Claims: the sentence above, on this run's numbers (the course's tests fail if not).
assert all(1.1e6 < n < 1.3e6 for n in (n_encoder, n_decoder)), (n_encoder, n_decoder)

# %% [markdown]
# ## 5. Data
#
# *⏱ About 1 min: ~1 min to read (estimate: 162 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The course runs on a **synthetic dataset** out of the box: ultrasound-like images
# with no lesion, one or two, dark or bright, anywhere and of any size (and
# endoscopy-like images with instruments), generated in milliseconds, with exact masks.
# Because lesions can be anywhere, a model can only find them by how they look: the
# best constant mask, which knows only where lesions usually are, scores a low Dice on
# them (notebook 04 measures it). It lets everything run anywhere, but it is a toy: for
# real results, prepare a real dataset once:
#
# ```
# python -m data_download busi --root data    # in Colab: !python -m data_download busi --root data
# ```
#
# | dataset | images | access |
# |---|---|---|
# | BUSI (breast ultrasound) | 780 | public download, CC0 |
# | BUS (UDIAT "Dataset B") | 163 | on request from its authors only |
# | Kvasir-Instrument (endoscopy tools) | 590 | public download, research/education |
# | HAM10000 (dermoscopy) | 10,015 | public download, CC BY-NC 4.0 |
#
# Then set `DATASET = "busi"` (and `DATA_DIR` if you chose another folder) in the
# parameters cell of any notebook.

# %%
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

# %%
import matplotlib.pyplot as plt

from wavegms.data import SyntheticDataset
from wavegms.engine.viz import overlay

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

# %% [markdown]
# ## 6. A first forward pass
#
# *⏱ About 1 min: ~1 min to read (estimate: 37 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Finally, build the whole model around TAESD and segment a few synthetic images. It
# is untrained, so the masks are meaningless: we only check shapes and that it runs on
# your device.

# %%
from wavegms import WaveGMS

model = WaveGMS(vae, image_size=IMAGE_SIZE).to(device)
trainable = sum(p.numel() for p in model.parameters())
batch = course.sample_batch(session, 4, IMAGE_SIZE)
probs = model.predict(batch["image"])
print(f"trainable parameters: {trainable:,} (the paper: ~2.6M)")
print(f"input {tuple(batch['image'].shape)} -> probabilities {tuple(probs.shape)} "
      f"in [{probs.min():.2f}, {probs.max():.2f}] on {probs.device}")  # fmt: skip
checks["model"] = tuple(probs.shape) == (4, 1, IMAGE_SIZE, IMAGE_SIZE)

# %% [markdown]
# ## Summary
#
# *⏱ About 12 min: ~12 min to read and do (estimate: 351 words at 200 words/min + 2 exercises at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*

# %%
for name, result in checks.items():
    if result is None:  # switched off on purpose (headless runs): nothing to fix
        print(f"--   {name}: off")
    else:
        print(f"{'ok ' if result is not False else 'FIX'}  {name}: {result}")

# %% [markdown]
# ### Exercise 1
#
# `get_device` reads the environment variable `WAVEGMS_DEVICE` when `DEVICE` is
# `"auto"`. Which wins when both are set: `DEVICE = "cpu"` or `WAVEGMS_DEVICE=cuda`?
# Find out in code without needing a GPU: set the variable to `meta` (a device type every
# PyTorch has, on which nothing is computed), compare `get_device("cpu")` with
# `get_device("auto")`, and put the variable back as it was. Then answer `"DEVICE"` or
# `"WAVEGMS_DEVICE"`.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
winner = ...  # "DEVICE" or "WAVEGMS_DEVICE": which one decides when both are set?
# BEGIN SOLUTION
import os

from wavegms import get_device

saved = os.environ.get("WAVEGMS_DEVICE")
os.environ["WAVEGMS_DEVICE"] = "meta"
try:
    explicit, automatic = get_device("cpu"), get_device("auto")
finally:
    if saved is None:
        os.environ.pop("WAVEGMS_DEVICE")
    else:
        os.environ["WAVEGMS_DEVICE"] = saved
print(f"with WAVEGMS_DEVICE=meta: get_device('cpu') -> {explicit}, 'auto' -> {automatic}")
winner = "DEVICE" if explicit.type == "cpu" else "WAVEGMS_DEVICE"
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises import setup as exercises

exercises.check_device_winner(winner)

# %% [markdown]
# <details><summary>Show the answer</summary>
#
# An explicit choice always wins: `WAVEGMS_DEVICE` only replaces `"auto"`. So
# `get_device("cpu")` is the CPU whatever the variable says, while `get_device("auto")`
# follows the variable (here to `meta`). Setting the variable to `cpu` could not have told
# the two apart: both calls would have answered `cpu`.
#
# </details>

# %% [markdown]
# ### Exercise 2: where does the compute go?
#
# Wave-GMS trains its encoder and LMM (the ~2.6M parameters above) and borrows TAESD's
# frozen decoder to turn latents into masks. Which does more of the work in a prediction?
# Guess first. Then count the floating-point operations (FLOPs) of one prediction,
# `model.predict(image)` on one image of `IMAGE_SIZE` pixels, and of the decoder alone,
# `model.decode(latent)` on a latent of that image's size, with
# `torch.utils.flop_counter.FlopCounterMode` (it counts the operations of convolutions and
# matrix products as they run: no timing, so a busy machine gives the same answer). Answer
# the decoder's share of the total, a number between 0 and 1.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
from torch.utils.flop_counter import FlopCounterMode

image = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
latent = torch.zeros(1, 4, IMAGE_SIZE // 8, IMAGE_SIZE // 8, device=device)
decoder_share = ...  # FLOPs of model.decode(latent) / FLOPs of model.predict(image)
# BEGIN SOLUTION
with FlopCounterMode(display=False) as counter:
    model.predict(image)
total = counter.get_total_flops()
with FlopCounterMode(display=False) as counter, torch.no_grad():
    model.decode(latent)
decoder = counter.get_total_flops()
print(f"one prediction: {total / 1e9:.2f} GFLOP, the decoder's part {decoder / 1e9:.2f} GFLOP")
decoder_share = decoder / total
# END SOLUTION

# %% tags=["check"]
exercises.check_decoder_share(decoder_share, model, IMAGE_SIZE)

# %% tags=["claims"]
# Claims: the answer below says the decoder does most of the work.
assert exercises.decoder_share(model, IMAGE_SIZE) > 0.5

# %% [markdown]
# <details><summary>Show the answer</summary>
#
# The frozen decoder does most of the work (the check prints its share) although it holds
# fewer parameters than the trainable parts: it runs at the image's full resolution (64
# channels at up to H x W pixels), while the encoder's extractors work at H/2 and below and
# the LMM at H/8. A convolution's FLOPs grow with its pixels, so the share hardly changes
# with the image size. Training is heavier still on the decoder side: the objective decodes
# each of the LMM's three heads and backpropagates through the decoder (notebook 03). Time
# does not follow FLOPs exactly: at small sizes, fixed costs per layer weigh more.
#
# </details>

# %% [markdown]
# ## Troubleshooting
#
# *⏱ About 1 min: ~1 min to read (estimate: 211 words at 200 words/min).*
#
# - **No GPU** (section 2 says `cpu`): in Colab, *Runtime > Change runtime type > T4 GPU*,
#   then *Runtime > Run all*. The quick mode (the defaults) runs on a CPU anyway.
# - **Widgets show as text or not at all** (section 3): in Colab run the install cell again,
#   it switches Colab's widget manager on; in JupyterLab install the `notebooks` extra in
#   the server's environment and reload the page. Every figure is drawn without widgets
#   too. A saved notebook reopened later shows its figures and sliders (still, until you
#   run the cell again): installing wavegms turns on *Settings > Save Widget State
#   Automatically* in its environment. If your Jupyter runs from another environment and
#   shows "Error displaying widget: model not found", turn that setting on there.
# - **TAESD cannot be downloaded** (section 4, offline or behind a firewall): download it
#   once elsewhere (`hf download madebyollin/taesd --local-dir taesd`), copy the folder,
#   and set `os.environ["WAVEGMS_TAESD"] = "/path/to/taesd"` before the start cell.
# - **Out of memory**: lower `BATCH_SIZE`, or `IMAGE_SIZE` (a multiple of 8), in the
#   parameters cell.
# - **Version drift** (an odd `ImportError` after Colab updated its packages): never upgrade
#   Colab's torch, ipykernel or IPython; if the install cell says so, *Runtime > Restart
#   session*, then run all again (the install is kept). Locally:
#   `pip install -e ".[notebooks]"` and restart the kernel.

# %% [markdown]
# ## Next
#
# *⏱ About 1 min: ~1 min to read (estimate: 21 words at 200 words/min).*
#
# Everything is in place: continue with **01 · The Haar wavelet pyramid**, which
# opens up the input side of the model.
