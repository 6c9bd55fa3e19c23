# %% [markdown]
# # 04 · Evaluation: Dice, IoU, HD95, and where the model fails
#
# *⏱ This notebook, about 32 min in all: ~32 min to read and do (estimate: 2,390 words at 200 words/min + 4 exercises at 5 min), 14 s of computing (quick profile, measured on a 2-core Intel Xeon CPU on 2026-12-06).*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/04_evaluation.ipynb)
#
# A single number hides a lot. This notebook evaluates the model trained in 03 on its
# **test split**, once, and looks behind the mean: how the metrics are defined, how
# they treat empty masks, how scores spread over images, which images fail, and what
# happens on data from another domain. If 03 has not run with the same parameters, a
# model is trained first (in quick mode, the time 03's training section states).
#
# **In the paper.** This notebook teaches the evaluation: Dice, IoU and HD95, per-image means, model selection, and the cross-domain experiments. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) follows the paper's pipeline step by step, names the function that implements each step, and numbers the equations written out in these notebooks (E1-E9).
#
# **Learning objectives.** After this notebook you can:
# - write Dice, IoU and HD95 yourself, with the empty-mask rules, and check them against the
#   library
# - handle empty masks the way this library does, and see what changes otherwise
# - read a per-image distribution, pooled versus mean Dice, and the best and worst cases
# - see how the threshold changes a mask and its Dice
# - measure a domain gap: the same model on images from another scanner or modality
#
# **Time.** CPU quick mode (the defaults): the line under the title, measured. Colab T4, full run: about 1 minute when the run of 03 exists (an estimate, not a measurement: the quick run takes 16 s on a 2-core CPU (measured), as Colab has; the full run predicts BUSI's 130 test images twice, and BUS's when it is prepared, at 40 GFLOP each, 10-20 TFLOP, a few seconds on a T4 in fp32). In Colab, 03's run exists in this notebook's runtime only with `DRIVE_RUNS = True` in both (see Setup); otherwise this notebook trains it first.

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
import csv

import matplotlib.pyplot as plt
import torch

from wavegms import load_tiny_vae
from wavegms.engine.checkpoint import load_model
from wavegms.engine.evaluate import evaluate
from wavegms.engine.metrics import dice_iou, hausdorff, hd95, segmentation_metrics, summarize
from wavegms.engine.run_data import build_datasets

vae = load_tiny_vae(device=device)
config = course.course_config(
    session, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, quick=QUICK
)
run_dir = course.ensure_trained(config, course.run_dir_for(session, config), tiny_vae=vae)
model = load_model(run_dir, device=device, tiny_vae=vae)  # best/: chosen on validation


def predict_all(model, items, batch_size=16):
    """The probabilities [N, 1, S, S] and masks of `items`, predicted batch by batch: memory
    stays bounded by one batch of activations, however many items there are."""
    probs, masks = [], []
    for batch in torch.utils.data.DataLoader(items, batch_size=batch_size):
        probs.append(model.predict(batch["image"]).cpu())
        masks.append(batch["mask"])
    return torch.cat(probs), torch.cat(masks)


# %% [markdown]
# ## 1. The metrics, by hand
#
# *⏱ About 1 min: ~1 min to read (estimate: 254 words at 200 words/min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# For a predicted mask $P$ and the truth $T$ (sets of pixels):
#
# $$\mathrm{Dice}(P, T) = \frac{2\,|P \cap T|}{|P| + |T|}, \qquad
# \mathrm{IoU}(P, T) = \frac{|P \cap T|}{|P \cup T|}. \tag{E8}$$
#
# Both are 1 for a perfect mask and 0 without overlap; they rank predictions identically,
# since $\mathrm{IoU} = \mathrm{Dice} / (2 - \mathrm{Dice})$. **HD95** measures how far the
# outlines $\partial P$ and $\partial T$ stray from each other. With
# $d_{95}(A \to B)$ the 95th percentile, over the pixels $a$ of $A$, of the distance from $a$
# to the nearest pixel of $B$:
#
# $$\mathrm{HD95}(P, T) = \max\big(d_{95}(\partial P \to \partial T),\;
# d_{95}(\partial T \to \partial P)\big) \tag{E9}$$
#
# in pixels: the **larger** of the two directed percentiles (MONAI's definition, which
# `wavegms.engine.metrics.hd95` uses; the cell below computes it by hand and compares). Dice
# measures overlap, HD95 measures *how far off* the worst (5%-trimmed) parts of the outline
# are. The plain Hausdorff distance is the maximum, and one stray pixel decides it: the
# percentile makes it robust to a few.

# %%
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
measured = {}
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
for ax, (name, pred) in zip(axes, cases.items()):
    d = dice_iou(pred, truth)[0].item()
    h95 = hd95(pred, truth).item()
    h100 = hausdorff(pred, truth).item()  # the plain maximum
    measured[name] = d, h95, h100
    ax.imshow(truth[0, 0].float() + 2 * pred[0, 0].float(), cmap="viridis")
    ax.set_title(f"{name}\nDice {d:.3f} HD95 {h95:.1f} max {h100:.1f}", fontsize=9)
    ax.set_axis_off()
fig.suptitle("blue: truth only, green: prediction only, yellow: both", fontsize=9)
plt.show()

# HD95 by hand, on the stray-blob case: the larger of the two directed 95th percentiles.
import numpy as np
from scipy import ndimage


def boundary(mask):
    """The outline of a bool [H, W] mask: its pixels with a neighbour outside it."""
    m = mask.numpy()
    return m & ~ndimage.binary_erosion(m)


def directed(a, b):
    """Distances from each outline pixel of mask a to the nearest outline pixel of mask b."""
    return ndimage.distance_transform_edt(~boundary(b))[boundary(a)]


forward, backward = (
    directed(four_pixels[0, 0], truth[0, 0]),
    directed(truth[0, 0], four_pixels[0, 0]),
)
by_hand = max(np.percentile(forward, 95), np.percentile(backward, 95))
pooled = np.percentile(np.concatenate([forward, backward]), 95)
library_hd95 = hd95(four_pixels, truth).item()
print(f"HD95 by hand {by_hand:.2f} px, wavegms.engine.metrics.hd95 {library_hd95:.2f} px")
print("HD95 by hand equals wavegms.engine.metrics.hd95:", bool(abs(by_hand - library_hd95) < 1e-3))
print(f"(the 95th percentile of both directions pooled would say {pooled:.2f} px)")
outline = int(boundary(four_pixels[0, 0]).sum())
print(f"the predicted outline has {outline} pixels: 5% of them is {0.05 * outline:.1f}")

# %% tags=["claims"]
# claims: what the next paragraph says about the three cases
(d0, h0, m0), (d1, h1, m1), (d4, h4, m4) = measured.values()
assert abs(d1 - d0) < 0.005 and h1 == h0 and m0 < 10 < 25 < m1  # only the maximum jumps
assert abs(d4 - d0) < 0.01 and h4 > h0 + 1  # a 2 x 2 blob: HD95 moves, the Dice hardly
assert 0.05 * outline < 4  # the percentile trims fewer pixels than the blob has


# %% [markdown]
# One stray pixel leaves Dice and HD95 as they were but sends the maximum Hausdorff
# distance from a few pixels to more than 25. Four stray pixels, still invisible in the Dice,
# already move HD95: the predicted outline has fewer than 80 pixels (printed above), so the
# 5% that the percentile sets aside is fewer than the blob's 4. HD95 forgives a *very* few
# outliers, not a stray blob. The two metrics answer different questions
# (how much overlaps, how far off the outline strays), which is why papers report both.
#
# ## 2. Empty masks: a pitfall with consequences
#
# *⏱ About 12 min: ~12 min to read and do (estimate: 348 words at 200 words/min + 2 exercises at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# What is the Dice of an empty prediction for an image without a lesion? The formula
# gives 0/0. This library (`wavegms.engine.metrics`) decides every case explicitly:
#
# | truth | prediction | Dice, IoU | HD95 |
# |---|---|---|---|
# | empty | empty | 1 (a correct "nothing here") | 0 |
# | empty | not empty | 0 (a false alarm) | the image diagonal (worst possible) |
# | not empty | empty | 0 (a missed lesion) | the image diagonal |
# | not empty | not empty | the formulas | the formula |
#
# The authors' published code scores empty/empty as Dice 0 and gives HD95 = 0, *the
# best value*, whenever either mask is empty. Let us compare the two on each case.

# %%
def authors_rule(pred, truth):
    """Dice and HD95 as the published code computes them (for comparison only)."""
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
print(f"{'case':<14} {'our Dice':>9} {'our HD95':>9} {'authors Dice':>12} {'authors HD95':>12}")
for name, (pred, target) in pairs.items():
    ours = dice_iou(pred, target)[0].item(), hd95(pred, target).item()
    theirs = authors_rule(pred, target)
    print(f"{name:<14} {ours[0]:>9.3f} {ours[1]:>9.1f} {theirs[0]:>12.3f} {theirs[1]:>12.1f}")


# %% [markdown]
# Under the authors' rule a model that *misses* a lesion gets the best possible HD95,
# and one that correctly finds nothing in a normal image gets Dice 0. Averaged over a
# dataset with normal images (BUSI has 133 of 780), the two rules can tell opposite
# stories. The paper's protocol leaves BUSI's normal images out of training and testing
# (the pretrained model below was trained that way), but empty masks still turn up: the
# synthetic test split can hold some (the evaluation counts them, `n_gt_empty`), and two of
# the BUSI samples in section 3c are normal scans. Wherever they appear, the rules above
# decide their score.
#
# ### Exercise 1: Dice and IoU with the empty-mask rules
#
# Write `dice_and_iou(pred, truth)` for two bool masks `[H, W]`: the Dice and IoU of (E8),
# with the rules of the table when a mask is empty. The check compares it with
# `wavegms.engine.metrics.dice_iou` on every case of the table and on overlapping shapes.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
def dice_and_iou(pred, truth):
    """(Dice, IoU) of two bool masks [H, W], as floats in [0, 1]."""
    overlap = ...  # |P n T|
    size = ...  # |P| + |T|
    dice = iou = ...
    # BEGIN SOLUTION
    overlap = (pred & truth).sum().item()
    size = pred.sum().item() + truth.sum().item()
    if size == 0:  # both empty: a correct "nothing here"
        dice = iou = 1.0
    else:  # one empty gives 0 / size = 0 by itself
        dice, iou = 2 * overlap / size, overlap / (size - overlap)
    # END SOLUTION
    return dice, iou


# %% tags=["check"]
from wavegms.course.exercises.evaluation import check_dice_iou

check_dice_iou(dice_and_iou)


# %% [markdown]
# ### Exercise 2: HD95 with the empty-mask rules
#
# Write `hd95_by_hand(pred, truth)` for two bool masks `[H, W]`: (E9) in pixels, using
# `directed` from section 1, with the rules of the table: 0 when both masks are empty, the
# image diagonal $\sqrt{H^2 + W^2}$ when exactly one is. The check compares it with
# `wavegms.engine.metrics.hd95` on every case of the table and on overlapping shapes.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
def hd95_by_hand(pred, truth):
    """HD95 of two bool masks [H, W] in pixels (a float)."""
    distance = ...
    # BEGIN SOLUTION
    if not pred.any() and not truth.any():
        distance = 0.0
    elif not pred.any() or not truth.any():
        distance = float(np.hypot(*pred.shape))  # the worst possible
    else:
        forward, backward = directed(pred, truth), directed(truth, pred)
        distance = max(np.percentile(forward, 95), np.percentile(backward, 95))
    # END SOLUTION
    return distance


# %% tags=["check"]
from wavegms.course.exercises.evaluation import check_hd95

check_hd95(hd95_by_hand)

# %% [markdown]
# ## 3. The test split, evaluated once
#
# *⏱ About 1 min: ~1 min to read (estimate: 68 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# `wavegms.engine.evaluate.evaluate` predicts every test image with the `best/` checkpoint, in
# batches, and writes `summary.json`, `per_image.csv` and `cases.png`. Besides the mean and
# standard deviation over images, it reports the **pooled** Dice: all pixels of the split
# counted together, as if the test set were one big image. Large lesions weigh more in the
# pooled Dice; every image weighs the same in the mean.

# %%
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

# %% [markdown]
# ## 3b. The baseline: one constant mask for every image
#
# *⏱ About 1 min: ~1 min to read (estimate: 85 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Before praising a Dice, ask what a model that looks at nothing would score. The best
# **constant** prediction is the training split's mean mask, thresholded where it scores
# best on the training split (`wavegms.engine.prior`); it knows *where* lesions usually are and
# nothing about what they look like. A model that does not beat it by a clear margin has
# learned the location prior, not the lesions. (`wavegms evaluate` prints the same
# baseline as `prior_dice_mean` in `summary.json`.)

# %%
from wavegms.engine.prior import constant_mask_prior, prior_dice

splits = build_datasets(config, run_dir)[0]  # the splits saved with the run
train_masks = torch.stack([splits["train"][i]["mask"] for i in range(len(splits["train"]))])
test_probs, test_masks = predict_all(model, splits["test"])  # also used by exercise 3
mean_mask, threshold = constant_mask_prior(train_masks)
baseline = prior_dice(mean_mask, threshold, test_masks).mean().item()
print(f"model:         mean test Dice {summary['dice_mean']:.3f}")
print(f"constant mask: mean test Dice {baseline:.3f} (mean training mask > {threshold:.2f})")
print(f"evaluate's summary.json: prior_dice_mean {summary['prior_dice_mean']:.3f}")
print(f"the model's margin over the constant mask: {summary['dice_mean'] - baseline:+.3f}")

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(mean_mask[0], cmap="magma", vmin=0, vmax=1)
axes[0].set_title("mean training mask", fontsize=9)
axes[1].imshow(mean_mask[0] > threshold, cmap="gray")
axes[1].set_title(f"the constant prediction (> {threshold:.2f})", fontsize=9)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## 3c. A model trained for real: the pretrained BUSI model
#
# *⏱ About 1 min: ~1 min to read (estimate: 176 words at 200 words/min), 3 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The quick model has seen a few dozen synthetic images for a few epochs, at 64 px: too few
# pixels to see what goes wrong. wavegms ships a Wave-GMS model trained on the real BUSI
# training images on a CPU (its model card, `wavegms/pretrained/busi/README.md`, says how and
# for how long), and eleven BUSI sample scans with their masks: nine lesions and two normal
# scans. Here it segments them at 224 px. The baseline beside it is the constant mask of the
# *other* samples, scored on each one in turn.
#
# Be honest about these images: the nine lesion scans are **validation** images of the
# pretrained model. It never trained on them, but they chose its checkpoint, so its score on
# them is optimistic. Its model card (`wavegms/pretrained/busi/README.md`) gives its score on
# the 130 BUSI test images, which were never on the training machine and are scored
# independently. When you have prepared BUSI
# (`python -m data_download busi --root data`), the cell also evaluates it on that test split.

# %%
from IPython.display import display

from wavegms.course.samples import load_samples
from wavegms.pretrained import list_pretrained, load_pretrained

if "busi" in list_pretrained():
    pretrained = load_pretrained("busi", device=device)
    size = pretrained.config.image_size
    samples = load_samples("busi", image_size=size)
    sample_probs, sample_masks = predict_all(pretrained, samples, batch_size=4)
    sample_scores = segmentation_metrics(sample_probs, sample_masks)
    lesions = [i for i, s in enumerate(samples) if s["mask"].any()]
    normal = [i for i in range(len(samples)) if i not in lesions]
    print(f"pretrained BUSI model on the {len(samples)} BUSI samples at {size} px:")
    print(f"  mean Dice {sample_scores['dice'].mean():.3f} over all {len(samples)}")
    print(
        f"  mean Dice {sample_scores['dice'][lesions].mean():.3f} over the {len(lesions)} lesions"
    )
    for i in normal:  # an empty truth: 1 for a correct "nothing here", 0 for a false alarm
        found = (sample_probs[i] > 0.5).float().mean().item()
        name, dice = samples[i]["name"], sample_scores["dice"][i]
        print(f"  {name} (normal scan): Dice {dice:.0f}, {found:.1%} of it predicted as lesion")
    others = [torch.cat([sample_masks[:i], sample_masks[i + 1 :]]) for i in range(len(samples))]
    sample_prior = torch.cat(
        [prior_dice(*constant_mask_prior(o), sample_masks[i : i + 1]) for i, o in enumerate(others)]
    )
    print(
        f"  constant mask of the other samples: mean Dice {sample_prior[lesions].mean():.3f}"
        " over the lesions"
    )
    if (session.data_dir / "busi").is_dir():  # the real test split, prepared by the student
        from wavegms.cli import main as wavegms_command

        out = session.out_dir / "evaluation" / "pretrained_busi"
        wavegms_command(
            ["evaluate", "--pretrained", "busi", "--dataset", "busi"]
            + ["--data", str(session.data_dir), "--out", str(out), "--no-progress"]
        )
else:
    print("This installation has no pretrained BUSI model (wavegms.pretrained.list_pretrained()")
    print("is empty): update wavegms to get it.")

# %% tags=["claims"]
# claims: the samples hold 9 lesions and 2 normal scans, and the model beats the baseline
if "busi" in list_pretrained():
    assert len(lesions) == 9 and len(normal) == 2
    assert sample_scores["dice"][lesions].mean() > sample_prior[lesions].mean() + 0.2

# %% [markdown]
# ## 4. Best and worst cases
#
# *⏱ About 1 min: ~1 min to read (estimate: 139 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Means are made of individual images. Sorting the images by Dice and looking at both ends
# is the fastest way to learn what a model gets wrong: a missed lesion, a lesion found in the
# wrong place, a border leaking into similar tissue, a shadow taken for a lesion? Below, the
# pretrained model's best and worst lesion samples at 224 px (the normal scans are left out:
# an empty truth scores 1 or 0 by rule, which says nothing about an outline). Green: the
# truth; red: the prediction. "area" is the prediction's area as a share of the truth's:
# above 100%, the prediction leaks out; below, it misses part of the lesion. (Evaluating a
# model of your own on real data, `evaluate` drew the same figure for its test split, in
# `cases.png` beside `summary.json`.)

# %%
from wavegms.course.widgets import browse
from wavegms.engine.viz import plot_cases

if "busi" in list_pretrained():
    order = sorted(lesions, key=lambda i: -sample_scores["dice"][i].item())  # best first

    def describe(i):
        area = sample_scores["pred_size"][i] / sample_scores["target_size"][i]
        dice, distance = sample_scores["dice"][i], sample_scores["hd95"][i]
        return f"Dice {dice:.2f}, HD95 {distance:.0f} px,\narea {area:.0%}"

    def draw_cases(case=0):
        chosen = [order[case], order[-1 - case]]
        return plot_cases(
            [samples[i]["image"] for i in chosen],
            [sample_masks[i] for i in chosen],
            [sample_probs[i] > 0.5 for i in chosen],
            [samples[i]["name"] for i in chosen],
            [describe(i) for i in chosen],
            row_labels=[f"best #{case + 1}", f"worst #{case + 1}"],
        )

    # The slider shows #1, #2, ... as the figure does; draw_cases receives 0, 1, ...
    browse(draw_cases, {"case": [(f"#{k + 1}", k) for k in range(len(order) // 2)]})
    for rank, i in enumerate(order, 1):
        print(f"{rank}. {samples[i]['name']}: {describe(i)}".replace(",\n", ", "))

# %% [markdown]
# ## 4b. The threshold, live
#
# *⏱ About 1 min: ~1 min to read (estimate: 67 words at 200 words/min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# A mask is the probability thresholded at 0.5, a convention. Move the slider: the masks of
# the best, a middle and the worst lesion sample grow as the threshold falls and shrink as it
# rises, and the curve on the right gives the mean Dice over the nine lesions at every
# threshold, with its value at the one you chose (without widgets: 0.5).

# %%
from wavegms.engine.viz import overlay

grid = [round(0.05 * k, 2) for k in range(1, 20)]  # 0.05, 0.1, ..., 0.95

if "busi" in list_pretrained():
    lesion_probs, lesion_masks = sample_probs[lesions], sample_masks[lesions] > 0.5
    curve = [dice_iou(lesion_probs > t, lesion_masks)[0].mean().item() for t in grid]
    shown = [order[0], order[len(order) // 2], order[-1]]

    def draw_threshold(threshold=0.5):
        fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), width_ratios=[1, 1, 1, 1.3])
        for ax, i in zip(axes, shown):
            mask = sample_probs[i, 0] > threshold
            dice = dice_iou(mask[None, None], sample_masks[i : i + 1] > 0.5)[0].item()
            ax.imshow(overlay(samples[i]["image"], mask))
            ax.contour(sample_masks[i, 0], levels=[0.5], colors="lime", linewidths=1)
            ax.set_title(f"{samples[i]['name']}: Dice {dice:.2f}", fontsize=9)
            ax.set_axis_off()
        at = dice_iou(lesion_probs > threshold, lesion_masks)[0].mean().item()
        axes[3].plot(grid, curve)
        axes[3].plot([threshold], [at], "o", color="C3")
        axes[3].set(xlabel="threshold", ylabel="mean Dice (9 lesions)", ylim=(0, 1))
        axes[3].set_title(f"threshold {threshold}: mean Dice {at:.3f}", fontsize=9)
        fig.tight_layout()
        return fig

    browse(
        draw_threshold,
        {"threshold": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]},
        static={"threshold": 0.5},
    )
    best_t = grid[max(range(len(grid)), key=curve.__getitem__)]
    print(
        f"mean Dice over the lesions: {curve[grid.index(0.5)]:.3f} at 0.5, "
        f"{max(curve):.3f} at best ({best_t})"
    )

# %% [markdown]
# ## 5. Cross-domain: the same model elsewhere
#
# *⏱ About 1 min: ~1 min to read (estimate: 233 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# A model is only as good as the images it was trained on. A hospital with another
# scanner produces images with other brightness, contrast and noise; the question is
# how much of the score survives. The paper trains on BUSI and tests on BUS (and the
# reverse): the GMS paper reports 80.3% Dice for BUSI -> BUS against 81.4% within BUSI.
#
# With synthetic data we play the same game: the model (trained on synthetic
# ultrasound) is tested on its own test images as a **different "scanner"** would show
# them (blurrier, brighter, lower contrast), and on **endoscopy** images, another
# modality entirely. With a real BUSI or BUS run, the other of the two is evaluated
# too when it is prepared.

# %%
from kornia.filters import gaussian_blur2d

from wavegms.data import SegmentationDataset, SyntheticDataset


class OtherScanner(torch.utils.data.Dataset):
    """The same images as another machine shows them: blurrier, brighter, flatter."""

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
    """Mean per-image metrics of `model` on `items` (the evaluation loop, in small)."""
    return summarize(segmentation_metrics(*predict_all(model, items)))


test_items = splits["test"]
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

# %% tags=["claims"]
# claims: in the synthetic run, the other scanner costs a clear part of the score and the
# other modality costs more
if session.synthetic:
    own, scanner, modality = (r["dice_mean"] for r in domains.values())
    assert scanner < own - 0.1 and modality < scanner, domains

# %% [markdown]
# Read the numbers with care. In the synthetic quick run, another scanner's blur, brightness
# and contrast alone cost a clear part of the score (more than 0.1 of Dice; the cell above
# checks it): the model learned the contrast and texture of one "machine", and a gentle change
# of both moves its outlines. Real scanners differ in more ways (speckle size, artefacts, the
# patients themselves), which is why BUSI -> BUS costs GMS points too. A new modality costs
# more still: nothing in the training data looked like an instrument in a colon. Augmentation
# narrows the gap for the changes it imitates; only data from the new domain closes it.
#
# ## 6. Reporting honestly
#
# *⏱ About 12 min: ~12 min to read and do (estimate: 407 words at 200 words/min + 2 exercises at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# - Select the checkpoint on validation data, evaluate the test split once (03, 04).
# - Say which images chose the checkpoint: the BUSI samples above chose the pretrained
#   model's, so its score on them is optimistic; its test score is in its model card.
# - Report mean +- std over images and the pooled Dice; say how empty masks count.
# - Report HD95 in pixels *at a stated resolution* (224 px in the paper).
# - Compare with published numbers only when the protocol matches (the GMS and
#   Wave-GMS tables select on the test split).

# %% [markdown]
# ### Exercise 3
#
# The threshold 0.5 is a convention, and section 4b showed that it moves the pretrained
# model's masks. Sweep it from 0.1 to 0.9 (steps of 0.1) for **your** model on its test split:
# `test_probs` and `test_masks` (section 3b) hold its probabilities and masks. How much does the
# mean Dice change? Would choosing the best threshold on the test split be fair?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
means = ...  # the mean test Dice at thresholds 0.1, 0.2, ..., 0.9 (9 numbers)
# BEGIN SOLUTION
thresholds = [round(0.1 * k, 1) for k in range(1, 10)]
means = [dice_iou(test_probs > t, test_masks > 0.5)[0].mean().item() for t in thresholds]
for t, m in zip(thresholds, means):
    print(f"threshold {t:.1f}: mean Dice {m:.3f}")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises.evaluation import check_threshold_sweep

check_threshold_sweep(means, test_probs, test_masks)

# %%
sweep = [dice_iou(test_probs > k / 10, test_masks > 0.5)[0].mean().item() for k in range(1, 10)]
best = max(range(9), key=sweep.__getitem__)
print(f"your model's mean test Dice: {sweep[0]:.3f} at 0.1, {sweep[4]:.3f} at 0.5, ", end="")
print(f"{sweep[8]:.3f} at 0.9; the best of the nine: {sweep[best]:.3f} at {(best + 1) / 10}")

# %% tags=["claims"]
# claims: the quick model's Dice moves a lot with the threshold (the answer below says so)
if QUICK and session.synthetic:
    assert max(sweep) - min(sweep) > 0.1, sweep

# %% [markdown]
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# The cell above prints how much your model's mean Dice depends on the threshold. A model whose
# probabilities are confident (close to 0 or 1 except along borders) barely changes; an
# undertrained one, like the quick model, produces many probabilities in between, and its Dice
# moves a lot. Choosing the threshold on the **test** split would be the same mistake as
# choosing the checkpoint there: the test images would help tune the model, and the score
# would be optimistic. Pick it on the validation split, then apply it to the test split once.
#
# </details>

# %% [markdown]
# ### Exercise 4
#
# Build two predictions where the **mean** Dice and the **pooled** Dice disagree
# strongly: a large lesion segmented well and a tiny lesion (at least ten times smaller)
# missed completely. Use `disk` from section 1; the answer is the predicted masks and the
# true masks of the two images. Which number describes a screening tool better?
#
# Write your answer in the next cell; the cell after it checks it (it computes both Dice
# from your masks).

# %% tags=["solution"]
preds = truths = ...  # each [2, 1, 64, 64] bool: the large lesion first, the tiny one second
# BEGIN SOLUTION
truths = torch.cat([disk(32, 32, 20), disk(10, 10, 3)])
preds = torch.cat([disk(33, 32, 20), torch.zeros_like(disk(10, 10, 3))])
totals = summarize(segmentation_metrics(preds.float(), truths.float()))
print(f"mean Dice {totals['dice_mean']:.3f} vs pooled Dice {totals['dice_pooled']:.3f}")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises.evaluation import check_mean_vs_pooled

check_mean_vs_pooled((preds, truths))

# %% [markdown]
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# The pooled Dice counts pixels, so the large lesion dominates and the result looks good; the
# mean Dice counts images, and the missed lesion pulls it to about half (the check printed
# both). For screening, a missed small lesion is a failure of the whole image, so the
# per-image mean (and the count of misses) is the more honest summary.
#
# </details>

# %% [markdown]
# ## Summary
#
# *⏱ About 1 min: ~1 min to read (estimate: 90 words at 200 words/min).*
#
# - Dice and IoU (E8) measure overlap (and rank alike); HD95 (E9) measures outline distance.
# - Empty masks need explicit rules; ours score correct emptiness as perfect and
#   misses as worst.
# - Look at distributions and at the worst cases, not only at the mean; say which images
#   chose the model.
# - The threshold is part of the model: choose it on validation data, like the checkpoint.
# - Domain shift costs accuracy; measure it before trusting a model elsewhere.
#
# Last: **05 · Inference on your images** runs the model on image files of any size.
