# %% [markdown]
# # 05 · Inference on your own images
#
# *⏱ This notebook, about 18 min in all: ~18 min to read and do (estimate: 1,566 words at 200 words/min + 2 exercises at 5 min), 9 s of computing (quick profile, measured on a 2-core Intel Xeon CPU on 2026-12-06).*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/05_inference_on_your_images.ipynb)
#
# A trained model is a folder. This notebook loads one (by default the run of notebook
# 03, trained here if missing; or any run folder you give in `CHECKPOINT`) and segments
# image files: yours (`IMAGES`, or `UPLOAD = True` in Colab) or a few example files
# written for you. Everything runs on a CPU.
#
# **In the paper.** This notebook teaches inference: the encoder's mean, the LMM's last head and the frozen decoder, thresholded at 0.5. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) follows the paper's pipeline step by step, names the function that implements each step, and numbers the equations written out in these notebooks (E1-E9).
#
# **Learning objectives.** After this notebook you can:
# - load a trained checkpoint and segment image files of any size and format
# - follow what happens to an image on its way through the model and back
# - score predictions against true masks, and write flip test-time augmentation yourself
# - write masks, probability maps and overlays, from Python or the command line
# - estimate the cost per image on a CPU, and know the limits of a trained model
#
# **Time.** CPU quick mode (the defaults): the line under the title, measured. Colab T4, full run: under a minute when the run of 03 exists (an estimate, not a measurement: the quick run takes 11 s on a 2-core CPU (measured), as Colab has; the full run's hundred or so predictions at 224 px are 40 GFLOP each, about 4 TFLOP, about a second on a T4 in fp32). In Colab, 03's run exists in this notebook's runtime only with `DRIVE_RUNS = True` in both (see Setup); otherwise this notebook trains it first.

# %% [markdown]
# ## Setup
#
# *⏱ About 1 min: ~1 min to read (estimate: 222 words at 200 words/min), 4 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
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
#
# **In Colab, keep the training run on Google Drive.** A Colab runtime that disconnects
# loses its files, the training run of 03 included, and each notebook runs in a runtime of
# its own. `DRIVE_RUNS = True` (in 03, 04 and 05 alike) mounts your Google Drive (Colab asks
# for permission) and keeps the run in `MyDrive/wavegms_runs`: running 03 again after a
# disconnect continues the run from its last finished epoch (prepare the dataset again
# first: it was lost with the runtime), and 04 and 05 use the run 03 trained instead of
# training it again. Outside Colab it changes nothing, and the fourth cell says so.

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
DRIVE_RUNS = False  # in Colab, True keeps the training run on Google Drive (see Setup)
IMAGES = None  # your image files or folders (a list, or one path); None: example images
CHECKPOINT = None  # a run folder from `wavegms train`; None: the run of notebook 03
UPLOAD = False  # in Colab, True opens a file picker to upload your own images

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

# %%
course.keep_runs_on_drive(session, DRIVE_RUNS)  # Colab: the run on Google Drive

# %%
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wavegms import load_tiny_vae
from wavegms.engine.checkpoint import load_model
from wavegms.data import SegmentationDataset, Splits, SyntheticDataset, load_image
from wavegms.data.tensors import resize_image
from wavegms.engine.predict import expand_inputs, predict_files, to_model_input

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

# %% [markdown]
# ## 1. Your images
#
# *⏱ About 1 min: ~1 min to read (estimate: 97 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Any PNG, JPEG, BMP or TIFF works, grey or colour, of any size. Without images of your
# own, we write three example files that look like what the model was trained on: for
# a synthetic run, new synthetic ultrasound images saved at odd sizes; for a real
# dataset, three images of its test split, copied at their original size. Their true masks
# go into a `masks/` folder beside them (same names), so that the predictions can be scored;
# a folder of your own images with such a `masks/` folder is scored the same way.

# %%
if IN_COLAB and UPLOAD:
    from google.colab import files

    uploads = session.out_dir / "my_images"
    uploads.mkdir(parents=True, exist_ok=True)
    for name, content in files.upload().items():
        (uploads / name).write_bytes(content)
    inputs = [uploads]
elif IMAGES:
    inputs = [IMAGES] if isinstance(IMAGES, str | Path) else list(IMAGES)
else:  # example files, in a folder of their own per dataset, their true masks in masks/
    examples = session.out_dir / "examples" / session.dataset
    (examples / "masks").mkdir(parents=True, exist_ok=True)
    if session.synthetic:
        new = SyntheticDataset(3, image_size=160, kind="ultrasound", seed=SEED + 100)
        sizes = [(240, 160), (160, 160), (180, 270)]  # width x height, not the model's
        for i, (item, size) in enumerate(zip(new, sizes)):
            pixels = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            suffix = "jpg" if i == 1 else "png"
            resized = Image.fromarray(pixels).resize(size, Image.BILINEAR)
            resized.save(examples / f"example_{i}.{suffix}")
            mask = Image.fromarray((item["mask"][0].numpy() * 255).astype(np.uint8))
            mask.resize(size, Image.NEAREST).save(examples / "masks" / f"example_{i}.png")
    else:  # three test images the model has never seen, at their original size
        root = session.data_dir / session.dataset
        for name in Splits.load(run_dir / "splits.json").test[:3]:
            item = SegmentationDataset(root, names=[name])
            shutil.copy(item.image_path(0), examples)
            mask = item.mask_path(0)
            shutil.copy(mask, examples / "masks" / f"{item.image_path(0).stem}{mask.suffix}")
    inputs = [examples]
print("inputs:", [str(p) for p in inputs])

# %% [markdown]
# ## 2. Segment them
#
# *⏱ About 1 min: ~1 min to read (estimate: 105 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# `predict_files` reads each file, resizes it to the model's input size, predicts,
# resizes the **probabilities** back to the file's own size (smooth borders, rather than
# blocky upscaled masks), thresholds at 0.5 and writes `<name>.png` (0 / 255), plus the
# probability map and an overlay on request. Unreadable files are reported and skipped.
# Where a true mask is known, the prediction is scored against it: the Dice in the titles,
# the true outline in green.

# %%
out = session.out_dir / "my_predictions"
report = predict_files(model, inputs, out, save_probs=True, save_overlay=True, progress=False)
print(report)
for file, reason in report.failed:
    print("skipped", file, "-", reason)

from wavegms.engine.metrics import dice_iou


def true_mask(stem):
    """The true mask [1, 1, H, W] of the input file named `stem`, from a masks/ folder beside
    the inputs; None when there is none."""
    folders = [Path(p) / "masks" for p in inputs if Path(p).is_dir()]
    found = [m for folder in folders for m in sorted(folder.glob(f"{stem}.*"))]
    return torch.from_numpy(np.asarray(Image.open(found[0])) > 127)[None, None] if found else None


rows = len(report.written)
example_dice = {}
fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
for row, mask_path in enumerate(report.written):
    stem = mask_path.stem
    probability = np.asarray(Image.open(out / f"{stem}_prob.png")) / 255
    predicted = np.asarray(Image.open(mask_path))
    truth = true_mask(stem)
    scored = ""
    if truth is not None:
        predicted_t = torch.from_numpy(predicted > 127)[None, None]
        example_dice[stem] = dice_iou(predicted_t, truth)[0].item()
        scored = f", Dice {example_dice[stem]:.2f}"
        axes[row, 0].contour(truth[0, 0], levels=[0.5], colors="lime", linewidths=1)
    panels = [
        (np.asarray(Image.open(out / f"{stem}_overlay.png")), f"{stem}: overlay{scored}"),
        (probability, f"probability {probability.shape[1]}x{probability.shape[0]}"),
        (predicted, f"mask ({(probability > 0.5).mean():.1%} of pixels)"),
    ]
    for ax, (picture, title) in zip(axes[row], panels):
        ax.imshow(picture, cmap="gray")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
plt.show()
for stem, dice in example_dice.items():
    print(f"{stem}: Dice {dice:.3f} against its true mask")
if example_dice:
    print(f"mean Dice {np.mean(list(example_dice.values())):.3f} over {len(example_dice)} images")

# %% [markdown]
# The titles say how well each predicted mask (red) matches the true one (green outline). Section 2b
# shows what a model trained on real scans does on real ones.

# %% [markdown]
# ## 2b. Real ultrasound with the pretrained model
#
# *⏱ About 1 min: ~1 min to read (estimate: 114 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The quick model only knows synthetic images. For real breast ultrasound, use the model
# wavegms ships, trained on BUSI (`wavegms predict --pretrained busi IMAGES --out DIR` does
# the same from the command line). Here it segments three of the BUSI sample files that
# come with wavegms, at their own size, and we score them against their masks. These samples
# are **validation** images of the pretrained model: it never trained on them, but they chose
# its checkpoint, so its score on them is optimistic. Its model card
# (`wavegms/pretrained/busi/README.md`) gives its score on the 130 BUSI test images, which
# were never on the training machine and are scored independently.

# %%
from wavegms.course.samples import load_samples, samples_dir
from wavegms.pretrained import list_pretrained, load_pretrained

if "busi" in list_pretrained():
    pretrained = load_pretrained("busi", device=device)
    real = load_samples("busi")[:3]  # native size: [3, H, W] images, [1, H, W] masks
    real_files = [next((samples_dir("busi") / "images").glob(f"{item['name']}.*")) for item in real]
    real_out = session.out_dir / "pretrained_predictions"
    real_report = predict_files(pretrained, real_files, real_out, save_overlay=True, progress=False)
    print(real_report)
    fig, axes = plt.subplots(1, len(real), figsize=(3.2 * len(real), 3.4), squeeze=False)
    real_dice = []
    for ax, item, mask_path in zip(axes[0], real, real_report.written):
        predicted = torch.from_numpy(np.asarray(Image.open(mask_path)) > 127)[None, None]
        real_dice.append(dice_iou(predicted, item["mask"][None] > 0.5)[0].item())
        ax.imshow(np.asarray(Image.open(real_out / f"{mask_path.stem}_overlay.png")))
        ax.contour(item["mask"][0], levels=[0.5], colors="lime", linewidths=1)
        ax.set_title(f"{item['name']}: Dice {real_dice[-1]:.2f}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("pretrained BUSI model (red) and the true outline (green)", fontsize=9)
    plt.show()
    print(f"mean Dice {np.mean(real_dice):.3f} on these {len(real)} validation samples")
else:
    print("This installation has no pretrained BUSI model (wavegms.pretrained.list_pretrained()")
    print("is empty): update wavegms to get it.")

# %% [markdown]
# ## 3. Step by step
#
# *⏱ About 1 min: ~1 min to read (estimate: 38 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The same path for one file, by hand: every shape on the way.

# %%
files = expand_inputs(inputs)  # the image files, folders expanded
image = load_image(files[0])  # [H, W, 3] float in [0, 1], whatever the file's format
x = to_model_input(image, model.config.image_size)  # [3, S, S]: bilinear, antialiased
probs = model.predict(x[None])  # [1, 1, S, S] in [0, 1]
back = F.interpolate(probs.cpu(), size=image.shape[:2], mode="bilinear")
print(f"{files[0].name}: file {image.shape} -> model input {tuple(x.shape)}")
print(f"probabilities {tuple(probs.shape)} -> back at the file's size {tuple(back.shape)}")

# %% [markdown]
# Change the threshold and see how the mask grows or shrinks (0.5 is what the model
# was trained and evaluated with):

# %%
from wavegms.engine.viz import overlay
from wavegms.course.widgets import browse

pictures = [load_image(file) for file in files[:6]]
full_probs = []
for picture in pictures:
    p = model.predict(to_model_input(picture, model.config.image_size)[None]).cpu()
    full_probs.append(F.interpolate(p, size=picture.shape[:2], mode="bilinear")[0, 0])


def draw_threshold(image=0, threshold=0.5):
    fig, ax = plt.subplots(figsize=(4, 4.3))
    mask = full_probs[image] > threshold
    ax.imshow(overlay(pictures[image], mask))
    ax.set_title(
        f"{files[image].name}\nthreshold {threshold}: {mask.float().mean():.1%} of pixels",
        fontsize=9,
    )
    ax.set_axis_off()
    return fig


browse(
    draw_threshold,
    {
        "image": [(file.name, k) for k, file in enumerate(files[: len(pictures)])],
        "threshold": [0.1, 0.3, 0.5, 0.7, 0.9],
    },
    static={"threshold": 0.5},  # what the model was trained and evaluated with
)

# %% [markdown]
# ## 4. How fast on a CPU?
#
# *⏱ About 1 min: ~1 min to read (estimate: 135 words at 200 words/min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Inference is one encoder pass, one LMM pass and one TAESD decode, with no gradient.
# The README's *Performance* table (`benchmarks/bench.py` on the 2-core CI machine,
# medians over rounds) gives 141 ms per 224 px image in fp32 at batch 1, about twice the
# 74 ms of TAESD's decoder alone, so a folder of a hundred images takes well under a
# minute. Where the CPU or GPU runs bf16 natively, `model.prepare_for_inference("auto")`
# (channels-last memory, bf16 weights) with `precision="auto"` took 74 ms there, and the
# tests check that its masks agree with fp32 on more than 98% of pixels. Where bf16 is not
# native, "auto" stays fp32. Here are both, at this model's size on your device (the
# median of 5 timed batches after a warm-up; a busy machine shows larger numbers):

# %%
import copy

from wavegms.utils.device import resolve_precision


def ms_per_image(net, precision, repeats=5):
    import statistics

    batch = torch.rand(8, 3, net.config.image_size, net.config.image_size)
    net.predict(batch[:1], precision=precision)  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        net.predict(batch, precision=precision)
        times.append((time.perf_counter() - began) / len(batch) * 1000)
    return statistics.median(times)


fast = copy.deepcopy(model).prepare_for_inference("auto")  # a copy: `model` stays fp32
computes_in = resolve_precision("auto", fast.device) or torch.float32
auto = f"auto ({str(computes_in).removeprefix('torch.')})"
print(f"{model.config.image_size} px on {model.device}, ms per image:")
print(f"  fp32            {ms_per_image(model, 'fp32'):6.1f}")
print(f"  {auto:<15} {ms_per_image(fast, 'auto'):6.1f}")

# %% [markdown]
# ## 5. From the command line
#
# *⏱ About 1 min: ~1 min to read (estimate: 38 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The same in one command, for scripts and batch jobs (one mask PNG per image,
# exit status 1 if some file could not be read):
#
# ```
# wavegms predict --checkpoint RUN_DIR path/to/images/ --out masks/ --save-overlay
# ```

# %%
from wavegms.cli import main as wavegms_command

arguments = ["predict", "--checkpoint", str(run_dir), *map(str, inputs), "--out", str(out / "cli")]
status = wavegms_command([*arguments, "--no-progress"])
print("exit status", status)

# %% [markdown]
# ## 6. Know the limits
#
# *⏱ About 12 min: ~12 min to read and do (estimate: 474 words at 200 words/min + 2 exercises at 5 min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# - A model knows only the domain it was trained on. The quick model has seen a few dozen
#   synthetic ultrasound images: it will not segment your photos, and a BUSI model is
#   not a skin-lesion model. Check the modality, the view and the resolution first.
# - The probability is a score, not a calibrated confidence.
# - This is research and teaching code, **not a medical device**: never use its
#   output for a clinical decision.
#
# The pretrained BUSI model was trained, as the paper's protocol says, on scans that all hold a
# lesion: BUSI's normal scans are left out. So it has never learned to answer "nothing here".
# The cell below shows it the two lesion-free scans among the samples: it marks a part of each
# as lesion. Their true masks are empty, so all of that is false alarm (and their Dice is 0). Its model card
# (`wavegms/pretrained/busi/README.md`, "Limits") gives the same measure on all of BUSI's
# normal scans.

# %%
if "busi" in list_pretrained():
    normal = [item for item in load_samples("busi") if item["name"].startswith("normal")]
    marked = {}
    for item in normal:
        image = resize_image(item["image"], pretrained.config.image_size)[None].to(device)
        marked[item["name"]] = (pretrained.predict(image) > 0.5).float().mean().item()
    shares = ", ".join(f"{name}: {share:.1%}" for name, share in marked.items())
    print(f"share of the pixels marked as lesion on lesion-free scans: {shares}")
    assert all(share > 0 for share in marked.values())  # what the text above says it does


# %% [markdown]
# ### Exercise 1: flip test-time augmentation
#
# Predict each image and its left-right mirror, mirror the second prediction back, and
# average the two probabilities: `predict_flipped(model, images)`, for a batch `[B, 3, S, S]`
# at the model's size (`torch.flip` or `images.flip(-1)` mirrors the last axis). The check
# compares your function with the average it computes on two asymmetric images. Then: what
# fraction of each example image's pixels changes label? When could this help?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
def predict_flipped(model, images):
    """Flip test-time augmentation: images [B, 3, S, S] in [0, 1] -> [B, 1, S, S] in [0, 1]."""
    plain = ...  # model.predict of the images
    mirrored = ...  # model.predict of the mirrored images, mirrored back
    averaged = ...
    # BEGIN SOLUTION
    plain = model.predict(images)
    mirrored = model.predict(images.flip(-1)).flip(-1)
    averaged = (plain + mirrored) / 2
    # END SOLUTION
    return averaged


# BEGIN SOLUTION
for picture, file in zip(pictures, files):
    x = to_model_input(picture, model.config.image_size)[None]
    changed = (model.predict(x) > 0.5) != (predict_flipped(model, x) > 0.5)
    print(f"{file.name}: {changed.float().mean():.2%} of pixels change label with flip averaging")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises.inference import check_flip_tta

check_flip_tta(predict_flipped, model)

# %% [markdown]
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# A network is not exactly symmetric, so the mirrored image gives a slightly different
# probability map. A label changes only where the two predictions fall on different sides
# of 0.5 after averaging: where the model is unsure (the solution prints how many pixels
# that is for each example). Averaging smooths those disagreements; it can help most where
# the model is uncertain (small data, borderline cases), and it costs a second forward
# pass. Whether it helps is an empirical question: measure it on validation data.
#
# </details>

# %% [markdown]
# ### Exercise 2
#
# Feed the model something it has never seen: a flat grey image, and random noise
# (`strange_images` below makes both at the model's size). What fraction of each does it
# call foreground, and what does this tell you about using it on the wrong images?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
from wavegms.course.exercises.inference import strange_images

unlike = strange_images(model.config.image_size)  # [2, 3, S, S]: flat grey, then noise
found = ...  # [2]: the fraction of pixels called foreground (> 0.5) on each
# BEGIN SOLUTION
found = (model.predict(unlike) > 0.5).float().mean((1, 2, 3))
print(f"grey image: {found[0]:.1%} of pixels called foreground; noise: {found[1]:.1%}")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises.inference import check_strange_images

check_strange_images(found, model)

# %% [markdown]
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# Whatever the fractions are (the check printed them), they are an answer: the model has no
# output for "this is not an ultrasound image". An empty prediction on the grey image or the
# noise is not a judgement that the input is wrong, only what the model makes of those
# pixels; another unlike image may give a confident blob. A segmentation model needs a human
# (or another model) to check that its input belongs to its domain.
#
# </details>

# %% [markdown]
# ## The end of the course
#
# *⏱ About 1 min: ~1 min to read (estimate: 70 words at 200 words/min).*
#
# You have seen every part of Wave-GMS: the wavelet pyramid, the frozen Tiny-VAE and
# its mask latents, the LMM and its objective, honest evaluation, and inference. To go
# further: prepare BUSI (`python -m data_download busi --root data`), set
# `DATASET = "busi"`, `IMAGE_SIZE = 224`, `QUICK = False` on a GPU, and run 03 to 05
# again, or run the whole course at once with `wavegms course --profile full`.
