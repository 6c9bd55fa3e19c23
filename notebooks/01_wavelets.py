# %% [markdown]
# # 01 · The Haar wavelet pyramid: what the encoder sees
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/01_wavelets.ipynb)
#
# A segmentation model must see both the big picture (where is the lesion?) and fine
# detail (where exactly is its border?). Wave-GMS does not learn this split from
# scratch: it feeds its encoder a **Haar wavelet pyramid**, a lossless re-arrangement
# of the image into coarse approximations and edge-like details at three scales.
#
# **In the paper.** This notebook teaches the multi-resolution encoder's input: the 2-D Haar wavelet decomposition into three levels and the division of level l by 2^l. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) names the paper's section and
# equation for each function it uses.
#
# **Learning objectives.** After this notebook you can:
# - compute one level of the 2-D Haar transform by hand and with `ptwt`
# - read the four sub-bands (LL, H, V, D) of each level on ultrasound-like and real images
# - explain why Wave-GMS divides level l by 2^l
# - say exactly what tensors the multi-resolution encoder receives
#
# **Time.** CPU quick mode (the defaults): about 7 s (6.4-7.8 s in three runs of `wavegms course`, alone on a 2-core CPU, kernel start included). Colab T4, full run: under a minute (an estimate, not a measurement).

# %% [markdown]
# ## Setup
#
# The first cell installs the package when you are in Colab (locally it only checks
# that `wavegms` is importable). The second holds the **parameters**: the defaults
# run a quick version on any CPU with synthetic images; set `DATASET` to a real
# dataset once you have prepared it, and `QUICK = False` on a GPU. The third cell
# seeds everything, picks the device, and falls back to synthetic data (saying how
# to prepare the real one) when the dataset you asked for is not there yet.

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
SEED = 0  # seeds everything (the paper: 2333)
# OUT_DIR: runs and figures; None: build/course/work in a checkout, else
# ./wavegms_course (never inside notebooks/)
OUT_DIR = None

# %% tags=["start"]
from wavegms import course

session = course.start(DATASET, DATA_DIR, device=DEVICE, seed=SEED, out_dir=OUT_DIR)
device = session.device

# %%
import matplotlib.pyplot as plt
import ptwt
import torch
import torch.nn.functional as F

from wavegms.wavelets import BANDS, HAAR, haar_pyramid

SIZE = max(IMAGE_SIZE, 128)  # larger than the model input, so level 3 is still visible
batch = course.sample_batch(session, 4, SIZE)
images = batch["image"]  # [4, 3, SIZE, SIZE] in [0, 1]
print("images:", tuple(images.shape), "|", ", ".join(batch["name"]))

# %% [markdown]
# ## 1. One level, by hand
#
# Cut the image into 2 x 2 blocks $\begin{smallmatrix} a & b \\ c & d \end{smallmatrix}$.
# The orthonormal Haar transform replaces each block by four numbers:
#
# | band | formula | responds to |
# |---|---|---|
# | LL (approximation) | $(a + b + c + d) / 2$ | the local average (a half-size image) |
# | H (horizontal detail) | $(a + b - c - d) / 2$ | top minus bottom: **horizontal** edges |
# | V (vertical detail) | $(a - b + c - d) / 2$ | left minus right: **vertical** edges |
# | D (diagonal detail) | $(a - b - c + d) / 2$ | checkerboard patterns, corners, noise |
#
# The four rows form an orthogonal matrix (its rows are orthogonal and have length 1),
# so the transform keeps the energy $\sum x^2$ and can be inverted exactly. Let us
# check our formulas against `ptwt` (PyWavelets' filters, in PyTorch).

# %%
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

# %% [markdown]
# ## 2. The pyramid: three levels
#
# Level 2 applies the same transform to LL of level 1, level 3 to LL of level 2. Each
# level halves the resolution: for a 224 px image, 112, 56 and 28 px, and 28 px is
# exactly the size of TAESD's latents (notebook 02). `haar_pyramid` returns, per level,
# the 4 bands of each colour channel stacked: 12 channels.
#
# In the figure, grey maps are approximations; blue/red maps are details (red
# positive, blue negative, white zero). Look for the horizontal tissue layers in H,
# the speckle in level-1 details, and the lesion's outline at levels 2 and 3.

# %%
pyramid = haar_pyramid(images)  # 3 tensors [B, 12, SIZE / 2^l, SIZE / 2^l]
for level, bands in enumerate(pyramid, 1):
    print(f"level {level}: {tuple(bands.shape)}")


def band_image(level, band, index=0, channel=0):
    """One sub-band as a 2-D tensor: colour channel `channel` of band `band` (LL, H, V, D)."""
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


# %% [markdown]
# **Where does the energy go?** Because the transform is orthonormal, the energy of
# the image splits exactly into the energy of LL at level 3 plus all the detail
# bands. (We undo the division by 2^l here; section 3 explains it.) The large
# approximation share is why images compress so well; the speckle of ultrasound
# shows up as energy in the fine (level-1) details.

# %%
def energy_shares(pyramid, index=0):
    """Fraction of the image energy in LL_3 and in each detail band (orthonormal scale)."""
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

# %% [markdown]
# ## 3. Why divide level l by 2^l?
#
# In the orthonormal transform LL is *twice* the block average ($(a+b+c+d)/2$ versus
# $(a+b+c+d)/4$). Each level multiplies by 2 again, so a constant image $c$ has
# $LL_l = c \cdot 2^l$: values up to 8 at level 3 for an image in [0, 1]. Dividing
# level $l$ by $2^l$ makes $LL_l$ **exactly the average of the $2^l \times 2^l$
# pixel blocks**, a small copy of the image in the image's own range.
#
# Why it matters: every level has its own feature extractor whose first layer is a
# plain convolution. With the division, all three receive inputs of the same scale
# (approximations in [0, 1], details of comparable size), so the same initialisation
# and learning rate suit them all, and no level dominates the others through sheer
# magnitude when their features are averaged together.

# %%
for level, bands in enumerate(pyramid, 1):
    approx = bands[:, :3]  # LL of the 3 colour channels, already divided by 2^level
    block_mean = F.avg_pool2d(images, 2**level)
    raw = approx * 2**level
    print(f"level {level}: LL_l / 2^l == {2**level}x{2**level} block average: "
          f"{torch.allclose(approx, block_mean, atol=1e-5)} | without the division "
          f"LL would reach {raw.max():.2f}")  # fmt: skip

# %% [markdown]
# ## 4. A real ultrasound scan beside a synthetic one
#
# wavegms ships a handful of downscaled breast ultrasound images from BUSI (Al-Dhabyani
# et al., 2020) with their masks, so this section works offline: the second row is one of
# them, beside the first image above. Compare the level-1 details. Our synthetic images
# exaggerate speckle; at this size the real scan keeps far less of its energy in the
# finest details (the numbers below the figure), and its structure, the tissue layers and
# the lesion's border, shows in the coarser levels 2 and 3, which the encoder also sees.

# %%
from wavegms.course.samples import load_samples

sample = load_samples("busi", image_size=SIZE)[0]  # {"image": [3, S, S], "mask", "name", ...}
real = sample["image"][None]
real_name = f"{sample['name']} (BUSI sample)"
first_name = f"{batch['name'][0]} ({'synthetic' if session.synthetic else session.dataset})"
real_pyramid = haar_pyramid(real)

fig, axes = plt.subplots(2, 5, figsize=(11, 4.6))
for row, (name, pyr, picture) in enumerate(
    [(first_name, pyramid, images[0]), (real_name, real_pyramid, real[0])]
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
for name, s in [(first_name, shares), (real_name, real_shares)]:
    print(f"{name}: level-1 details hold {s['H1'] + s['V1'] + s['D1']:.2%} of the energy")

# %% [markdown]
# ## 5. What the encoder really receives
#
# `WaveGMS` calls `haar_pyramid` on the image batch and gives level *l* to its own
# small UNet-like feature extractor (separate weights per level). For a batch of B
# images of H x W pixels:
#
# | level | tensor | channels |
# |---|---|---|
# | 1 | `[B, 12, H/2, W/2]` | LL, H, V, D for R, G, B, each divided by 2 |
# | 2 | `[B, 12, H/4, W/4]` | the same, divided by 4 |
# | 3 | `[B, 12, H/8, W/8]` | the same, divided by 8 |
#
# The extractors keep their resolution; level 1 is then average-pooled by 4 and
# level 2 by 2, so all three meet at **H/8**, TAESD's latent resolution, where an
# aggregator turns the 36 channels into a 4-channel mean and log-variance. (Grey
# images are repeated to 3 channels, so their R, G and B bands are identical.)
#
# Nothing is lost on the way in: the inverse transform rebuilds the image exactly
# from the level-1 bands.

# %%
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

# %% [markdown]
# ## 6. Explore
#
# Pick an image, a level and a band. With widgets, the controls above the figure redraw
# it; without them (or in a headless run) it is drawn once, for the first image.

# %%
from wavegms.course.widgets import browse


def draw_band(image=0, level=1, band="H"):
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.4))
    left.imshow(images[image].permute(1, 2, 0))
    left.set_title(batch["name"][image], fontsize=9)
    left.set_axis_off()
    show_band(right, level, band, image)
    return fig


names = [(name, i) for i, name in enumerate(batch["name"])]  # (label, value): names shown
browse(draw_band, {"image": names, "level": [1, 2, 3], "band": list(BANDS)})

# %% [markdown]
# ### Exercise 1
#
# Build a 32 x 32 **checkerboard** (pixels alternating 0 and 1) and a pattern of
# **horizontal stripes** one pixel high. Before running anything: into which detail band
# of which level does each put its energy? Then check with `haar_pyramid` and answer with
# a dict such as `{"checkerboard": ("V", 2), "stripes": ("D", 3)}`.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
where = ...  # {pattern name: (band, level)} of the detail band holding its energy
# BEGIN SOLUTION
rows = torch.arange(32)[:, None]
cols = torch.arange(32)[None, :]
patterns = {
    "checkerboard": ((rows + cols) % 2).float(),
    "stripes": (rows % 2 == 0).float().expand(32, 32),
}
where = {}
for name, pattern in patterns.items():
    levels = haar_pyramid(pattern.expand(1, 3, -1, -1))
    details = {}
    for level, bands in enumerate(levels, 1):
        raw = bands[0, ::3] * 2**level  # LL, H, V, D of the first colour channel
        for k, band in enumerate(BANDS[1:], 1):
            details[(band, level)] = raw[k].square().sum().item()
    where[name] = max(details, key=details.get)
    print(f"{name:>12}: most detail energy in {where[name]}")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises import check, close

check(
    "Exercise 1",
    where,
    lambda answer: (
        answer == {"checkerboard": ("D", 1), "stripes": ("H", 1)}
        or "recompute the energy of each detail band at each level"
    ),
)

# %% [markdown] tags=["solution"]
# **Answer.** In every 2 x 2 block the checkerboard is $\begin{smallmatrix} 0 & 1 \\ 1 & 0 \end{smallmatrix}$:
# LL = 1, H = 0, V = 0, D = -1. So apart from the constant average (LL), all its
# energy is in **D at level 1**, and the blocks are identical, so levels 2 and 3 see a
# constant image with no detail at all. Stripes one pixel high give blocks
# $\begin{smallmatrix} 1 & 1 \\ 0 & 0 \end{smallmatrix}$: the energy goes to **H
# at level 1** (top minus bottom).

# %% [markdown]
# ### Exercise 2
#
# Why must the image size be divisible by 8? Try `haar_pyramid` on a 60 x 60 image and
# read the error. Then find the smallest side of at least 60 that it accepts. What would
# break later in the model if we padded instead?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
smallest = ...  # the smallest side >= 60 that haar_pyramid accepts
# BEGIN SOLUTION
try:
    haar_pyramid(torch.rand(1, 3, 60, 60))
except ValueError as error:
    print("ValueError:", error)
smallest = 60
while True:
    try:
        haar_pyramid(torch.rand(1, 3, smallest, smallest))
        break
    except ValueError:
        smallest += 1
print("smallest accepted side:", smallest)
# END SOLUTION

# %% tags=["check"]
check("Exercise 2", smallest, lambda answer: answer == 64 or f"{answer} is not the smallest")

# %% [markdown] tags=["solution"]
# **Answer.** Three Haar levels halve the size three times, so the side must be divisible by
# 2^3 = 8: 60 is not (60 / 8 = 7.5), 64 is. And TAESD's latents are exactly H/8: the
# coarsest level, the pooled features and the mask latents must all have the same
# size, so padding would only move the problem (the prediction would have to be
# cropped back, and the pad would be part of what the model learns from).

# %% [markdown]
# ## Summary
#
# - The Haar transform turns each 2 x 2 block into an average (LL) and three edge
#   detectors (H, V, D); it is orthonormal, so nothing is lost.
# - Three levels give approximations and details at 1/2, 1/4 and 1/8 of the size.
# - Dividing level l by 2^l makes LL_l the block average, in the image's range.
# - The encoder sees 3 tensors of 12 channels; its output lives at 1/8 of the
#   image size, the size of TAESD's latents: **02 · Tiny-VAE latents** is next.
