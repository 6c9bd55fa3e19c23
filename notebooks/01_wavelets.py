# %% [markdown]
# # 01 · The Haar wavelet pyramid: what the encoder sees
#
# *⏱ This notebook, about 35 min in all: ~35 min to read and do (estimate: 2,060 words at 200 words/min + 5 exercises at 5 min), 5 s of computing (quick profile, measured on a 2-core Intel Xeon CPU on 2026-12-06).*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/01_wavelets.ipynb)
#
# A segmentation model must see both the big picture (where is the lesion?) and fine
# detail (where exactly is its border?). Wave-GMS does not learn this split from
# scratch: it feeds its encoder a **Haar wavelet pyramid**, a lossless re-arrangement
# of the image into coarse approximations and edge-like details at three scales.
#
# **In the paper.** This notebook teaches the multi-resolution encoder's input: the 2-D Haar
# wavelet decomposition into three levels, the division of level l by 2^l, and the encoder's
# sampled latent. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md)
# numbers the equations used here, (E1) to (E3), and names the function that implements each
# step of the method.
#
# **Learning objectives.** After this notebook you can:
# - write one level of the 2-D Haar transform and the three-level pyramid yourself
# - read the four sub-bands (LL, H, V, D) of each level on a real breast ultrasound scan
# - explain why Wave-GMS divides level l by 2^l
# - say exactly what tensors the multi-resolution encoder receives, and write how it pools,
#   concatenates and samples its latent
#
# **Time.** CPU quick mode (the defaults): the line under the title, measured. Colab T4, full run: under a minute (an estimate, not a measurement: the quick run takes 6 s on a 2-core CPU (measured), as Colab has; the full parameters change only the dataset its four images come from and the size of one batch of 2 images that an untrained encoder reads once on the CPU).

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

# %%
import matplotlib.pyplot as plt
import ptwt
import torch
import torch.nn.functional as F

from wavegms import load_samples
from wavegms.course.exercises import wavelets as exercises
from wavegms.wavelets import BANDS, HAAR, haar_pyramid

SIZE = 256  # larger than the model input, so that level 3 (SIZE / 8 px) is still readable
batch = course.sample_batch(session, 4, SIZE)
images = batch["image"]  # [4, 3, SIZE, SIZE] in [0, 1]
kind = "synthetic" if session.synthetic else session.dataset
print(f"images: {tuple(images.shape)} ({kind}) | {', '.join(batch['name'])}")
# Real breast ultrasound shipped with wavegms (BUSI, Al-Dhabyani et al., 2020), with masks.
scans = {s["name"]: s for s in load_samples("busi", image_size=SIZE)}
scan = scans["benign_96"]  # a benign lesion with a clear dark interior
print(
    f"real scan: {scan['name']} {tuple(scan['image'].shape)}, lesion mask {tuple(scan['mask'].shape)}"
)


# %% [markdown]
# ## 1. One level, by hand
#
# *⏱ About 6 min: ~6 min to read and do (estimate: 241 words at 200 words/min + 1 exercise at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Cut the image into 2 x 2 blocks $\begin{smallmatrix} a & b \\ c & d \end{smallmatrix}$.
# The orthonormal Haar transform replaces each block by four numbers, one per **band**:
#
# $$
# \mathrm{LL} = \tfrac{a + b + c + d}{2}, \quad
# \mathrm{H} = \tfrac{a + b - c - d}{2}, \quad
# \mathrm{V} = \tfrac{a - b + c - d}{2}, \quad
# \mathrm{D} = \tfrac{a - b - c + d}{2}
# \tag{E1}
# $$
#
# | band | responds to |
# |---|---|
# | LL (approximation) | the local average (a half-size image) |
# | H (horizontal detail) | top minus bottom: **horizontal** edges |
# | V (vertical detail) | left minus right: **vertical** edges |
# | D (diagonal detail) | checkerboard patterns, corners, noise |
#
# The four rows form an orthogonal matrix (its rows are orthogonal and have length 1), so the
# transform keeps the energy $\sum x^2$ and can be inverted exactly. (Equation numbers such
# as (E1) are the course's own; [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md)
# lists them with the function that implements each.)

# %% [markdown]
# ### Exercise 1: one Haar step
#
# Write (E1) as a function: `x` is a batch `[B, C, H, W]`; `a`, `b`, `c`, `d` are the four
# corners of every 2 x 2 block, each `[B, C, H/2, W/2]`. Compute the four bands and return
# them concatenated along the channels, in the order LL, H, V, D: `[B, 4C, H/2, W/2]`.
#
# Write your answer in the next cell; the cell after it checks it against `ptwt` (PyWavelets'
# Haar filters, in PyTorch) on images it draws itself.

# %% tags=["solution"]
def haar_step(x):
    """One orthonormal Haar step (E1): [B, C, H, W] -> [B, 4C, H/2, W/2] (LL, H, V, D)."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]  # each 2 x 2 block:  a b
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]  #                    c d
    ll = h = v = diag = ...  # each [B, C, H/2, W/2]
    # BEGIN SOLUTION
    ll = (a + b + c + d) / 2
    h = (a + b - c - d) / 2
    v = (a - b + c - d) / 2
    diag = (a - b - c + d) / 2
    # END SOLUTION
    return torch.cat([ll, h, v, diag], dim=1)


# %% tags=["check"]
exercises.check_haar_step(haar_step)

# %% [markdown]
# The energy is kept: on a tiny 4 x 4 image, `ptwt`'s single level holds exactly the energy
# of the image.

# %%
x = torch.arange(16.0).reshape(1, 1, 4, 4)  # a tiny 4 x 4 image
approx, (horizontal, vertical, diagonal) = ptwt.wavedec2(x, HAAR, level=1, mode="zero")
one_level = torch.cat([approx, horizontal, vertical, diagonal], 1)
print(f"energy: image {x.square().sum():.1f}, bands {one_level.square().sum():.1f}")

# %% tags=["claims"]
# Claims: the sentence above, checked on this run's numbers (the course's tests fail if not).
assert torch.isclose(x.square().sum(), one_level.square().sum())


# %% [markdown]
# ## 2. The pyramid: three levels
#
# *⏱ About 7 min: ~7 min to read and do (estimate: 477 words at 200 words/min + 1 exercise at 5 min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Level 2 applies the same step to LL of level 1, level 3 to LL of level 2; Wave-GMS then
# divides every band of level $l$ by $2^l$ (section 3 says why). With $\mathrm{LL}_0 = x$:
#
# $$
# (\mathrm{LL}_l, \mathrm{H}_l, \mathrm{V}_l, \mathrm{D}_l) = \mathrm{Haar}(\mathrm{LL}_{l-1}),
# \qquad
# W_l = \tfrac{1}{2^l}\,[\mathrm{LL}_l, \mathrm{H}_l, \mathrm{V}_l, \mathrm{D}_l],
# \qquad l = 1, 2, 3
# \tag{E2}
# $$
#
# The recursion runs on the *undivided* $\mathrm{LL}_{l-1}$. Each level halves the
# resolution: for a 224 px image, 112, 56 and 28 px, and 28 px is exactly the size of
# TAESD's latents (notebook 02). `wavegms.wavelets.haar_pyramid` returns $W_1, W_2, W_3$:
# per level, the 4 bands of each colour channel stacked, 12 channels.

# %% [markdown]
# ### Exercise 2: the pyramid
#
# Write (E2) with your `haar_step`: `pyramid(images)` returns the list
# `[W_1, W_2, W_3]`, each `[B, 4C, H/2^l, W/2^l]`. In the loop, `bands` is the step of the
# previous approximation; keep its LL (the first C channels), undivided, for the next level.
#
# Write your answer in the next cell; the cell after it checks it against `haar_pyramid`.

# %% tags=["solution"]
def pyramid(images, levels=3):
    """(E2): the list [W_1, ..., W_levels] of `images` [B, C, H, W]."""
    out = []
    approx = images  # LL_0 = x
    for level in range(1, levels + 1):
        bands = ...  # Haar(LL_{level-1}): [B, 4C, H / 2^level, W / 2^level]
        # BEGIN SOLUTION
        bands = haar_step(approx)
        out.append(bands / 2**level)
        approx = bands[:, : images.shape[1]]  # LL_level, undivided
        # END SOLUTION
    return out


# %% tags=["check"]
exercises.check_pyramid(pyramid)


# %% [markdown]
# The figure shows the pyramid of the real scan, one row per level (from here on, the course
# uses the library's `haar_pyramid`). Grey maps are approximations; blue/red maps are details
# (red positive, blue negative, white zero), on a colour scale that clips the brightest 0.5%
# of each band; the green line on the scan is the lesion's outline, from its mask. Two things
# to look for, and the numbers below the figure that measure them:
#
# - **Tissue layers run horizontally** in a breast scan, so their edges are horizontal: they
#   draw horizontal stripes in H, and H holds more energy than V at every level.
# - **The lesion's outline**: its edges draw arcs in H and V at levels 1 and 2 (at level 3
#   the blocks are 8 px wide and the arcs coarse). The blocks that the outline crosses hold
#   a larger share of the detail energy than of the image's area, at every level.

# %%
def detail_limit(values):
    """A symmetric colour limit that ignores the brightest 0.5% (a few extreme pixels at the
    scan's frame would otherwise wash everything else out)."""
    return values.abs().flatten().quantile(0.995).clamp(min=1e-6)


def show_band(ax, levels, level, band):
    """Band `band` (LL, H, V, D) of colour channel 0 at `level` of the pyramid `levels`."""
    values = levels[level - 1][0, BANDS.index(band) * 3]
    if band == "LL":
        ax.imshow(values, cmap="gray", vmin=0, vmax=1)
    else:  # details are signed: a symmetric colour scale keeps zero white
        limit = detail_limit(values)
        ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"level {level} {band}  {tuple(values.shape)}", fontsize=8)
    ax.set_axis_off()


def draw_pyramid(picture, levels, title, outline=None):
    fig, axes = plt.subplots(3, 5, figsize=(11, 6.6))
    for row in range(3):
        axes[row, 0].imshow(picture.permute(1, 2, 0))
        if outline is not None:
            axes[row, 0].contour(outline[0, 0], [0.5], colors="limegreen", linewidths=0.8)
        axes[row, 0].set_title(title if row == 0 else "", fontsize=8)
        axes[row, 0].set_axis_off()
        for col, band in enumerate(BANDS, 1):
            show_band(axes[row, col], levels, row + 1, band)
    fig.suptitle("Haar pyramid: one row per level")
    return fig


scan_levels = haar_pyramid(scan["image"][None])  # 3 tensors [1, 12, SIZE / 2^l, SIZE / 2^l]
lesion = scan["mask"][None]  # [1, 1, SIZE, SIZE]
draw_pyramid(scan["image"], scan_levels, f"{scan['name']} (BUSI)", outline=lesion)
plt.show()


def band_energy(levels, level, band):
    """Energy of `band` at `level` on the orthonormal scale (undoing the 1 / 2^l)."""
    k = BANDS.index(band)
    return (levels[level - 1][0, 3 * k : 3 * k + 3] * 2**level).square().sum().item()


def border_blocks(mask, level):
    """The blocks of `level` that the outline of `mask` crosses (neither all in nor all out),
    and their 8 neighbours."""
    inside = F.avg_pool2d(mask, 2**level)  # share of each block inside the lesion
    partial = (inside > 0) & (inside < 1)
    return F.max_pool2d(partial.float(), 3, stride=1, padding=1)[0, 0] > 0


layers, outline = {}, {}
for level in (1, 2, 3):
    layers[level] = band_energy(scan_levels, level, "H") / band_energy(scan_levels, level, "V")
    near = border_blocks(lesion, level)
    details = (scan_levels[level - 1][0, 3:] * 2**level).square().sum(0)  # [h, w]
    outline[level] = (near.float().mean().item(), (details[near].sum() / details.sum()).item())
    print(f"level {level}: H holds {layers[level]:.1f}x the energy of V | the border blocks "
          f"cover {outline[level][0]:.0%} of the area and hold {outline[level][1]:.0%} of the "
          "detail energy")  # fmt: skip

# %% tags=["claims"]
# Claims: the two bullets above, on this run's numbers.
for level in (1, 2, 3):
    assert layers[level] > 1.5, f"level {level}: H/V = {layers[level]:.2f}"
    area, energy = outline[level]
    assert energy > 1.5 * area, f"level {level}: border energy {energy:.2f}, area {area:.2f}"


# %% [markdown]
# **Where does the energy go?** Because the transform is orthonormal, the energy of an image
# splits exactly into the energy of $\mathrm{LL}_3$ plus that of all the detail bands. The
# bars compare the first image of this session's dataset with the real scan (both at
# `SIZE` px; the scale is logarithmic). The printed shares say how much sits in
# $\mathrm{LL}_3$, a 1/64-size copy of the image, and how much in the finest details.

# %%
def energy_shares(levels, index=0):
    """Fraction of the image energy in LL_3 and in each detail band (orthonormal scale)."""
    shares = {}
    for level, bands in enumerate(levels, 1):
        raw = bands[index] * 2**level  # the orthonormal coefficients
        for k, band in enumerate(BANDS):
            if band != "LL" or level == len(levels):
                shares[f"{band}{level}"] = raw[3 * k : 3 * k + 3].square().sum().item()
    total = sum(shares.values())
    return {name: value / total for name, value in shares.items()}


first_name = f"{batch['name'][0]} ({kind})"
shares = {first_name: energy_shares(haar_pyramid(images)), scan["name"]: energy_shares(scan_levels)}
fig, ax = plt.subplots(figsize=(8, 2.8))
for offset, (name, share) in zip((-0.2, 0.2), shares.items()):
    ax.bar(torch.arange(len(share)) + offset, list(share.values()), 0.4, label=name)
ax.set_xticks(range(len(share)), list(share))
ax.set_yscale("log")
ax.set(ylabel="share of energy", title="Energy per band (log scale)")
ax.legend(fontsize=8)
plt.show()
fine = {name: s["H1"] + s["V1"] + s["D1"] for name, s in shares.items()}
coarse = {name: s["H3"] + s["V3"] + s["D3"] for name, s in shares.items()}
for name, share in shares.items():
    print(f"{name}: LL3 holds {share['LL3']:.1%} of the energy; level-1 details "
          f"{fine[name]:.2%}, level-3 details {coarse[name]:.2%}")  # fmt: skip

# %% [markdown]
# In both, $\mathrm{LL}_3$ holds most of the energy: that is why images compress so well.
# The details differ. Our synthetic images (the quick profile's) are covered in pixel-level
# speckle, which is level-1 detail: they hold more detail energy at level 1 than at level 3,
# several times the real scan's share at level 1. The real scan, downscaled, is the other
# way round: its structure (tissue layers, the lesion's border) puts more energy into the
# level-3 details than into the level-1 ones.

# %% tags=["claims"]
# Claims: the paragraph above, on this run's numbers.
assert all(share["LL3"] > 0.5 for share in shares.values()), shares
assert coarse[scan["name"]] > fine[scan["name"]], (coarse, fine)
if session.synthetic:
    assert fine[first_name] > coarse[first_name], (coarse, fine)
    assert fine[first_name] > 3 * fine[scan["name"]], fine

# %% [markdown]
# ## 3. Why divide level l by 2^l?
#
# *⏱ About 6 min: ~6 min to read and do (estimate: 294 words at 200 words/min + 1 exercise at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# In the orthonormal transform LL is *twice* the block average ($(a+b+c+d)/2$ versus
# $(a+b+c+d)/4$). Each level multiplies by 2 again, so a constant image $c$ has
# $\mathrm{LL}_l = c \cdot 2^l$: values up to 8 at level 3 for an image in [0, 1]. Dividing
# level $l$ by $2^l$ makes $\mathrm{LL}_l / 2^l$ **exactly the average of the
# $2^l \times 2^l$ pixel blocks**, a small copy of the image in the image's own range (the
# cell below checks it).
#
# Why it matters: every level has its own feature extractor whose first layer is a plain
# convolution. With the division, all three receive inputs of the same scale (approximations
# in [0, 1], details of comparable size), so the same initialisation and learning rate suit
# them all, and no level dominates the others through sheer magnitude when their features
# are combined.

# %%
for level, bands in enumerate(haar_pyramid(images), 1):
    approx = bands[:, :3]  # LL of the 3 colour channels, already divided by 2^level
    block_mean = F.avg_pool2d(images, 2**level)
    print(f"level {level}: LL_l / 2^l == {2**level}x{2**level} block average: "
          f"{torch.allclose(approx, block_mean, atol=1e-5)} | without the division "
          f"LL would reach {(approx * 2**level).max():.2f}")  # fmt: skip

# %% [markdown]
# ### Exercise 3
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
exercises.check_pattern_energy(where)

# %% [markdown]
# <details><summary>Show the answer</summary>
#
# In every 2 x 2 block the checkerboard is $\begin{smallmatrix} 0 & 1 \\ 1 & 0 \end{smallmatrix}$:
# LL = 1, H = 0, V = 0, D = -1. So apart from the constant average (LL), all its energy is in
# **D at level 1**, and the blocks are identical, so levels 2 and 3 see a constant image
# with no detail at all. Stripes one pixel high give blocks
# $\begin{smallmatrix} 1 & 1 \\ 0 & 0 \end{smallmatrix}$: the energy goes to **H at level 1**
# (top minus bottom).
#
# </details>

# %% [markdown]
# ## 4. What the encoder receives, and what it returns
#
# *⏱ About 7 min: ~7 min to read and do (estimate: 384 words at 200 words/min + 1 exercise at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# `WaveGMS` calls `haar_pyramid` on the image batch and gives level $l$ to its own small
# UNet-like feature extractor $F_l$ (separate weights per level). For a batch of B images of
# H x W pixels:
#
# | level | tensor $W_l$ | channels |
# |---|---|---|
# | 1 | `[B, 12, H/2, W/2]` | LL, H, V, D for R, G, B, each divided by 2 |
# | 2 | `[B, 12, H/4, W/4]` | the same, divided by 4 |
# | 3 | `[B, 12, H/8, W/8]` | the same, divided by 8 |
#
# The extractors keep their resolution; level 1 is then average-pooled by 4 and level 2 by
# 2, so all three meet at **H/8**, TAESD's latent resolution. An aggregator $A$ turns their
# 36 concatenated channels into a 4-channel mean $\mu$ and log-variance $\log\sigma^2$
# (clamped to [-30, 20]), and in training the latent is a sample:
#
# $$
# [\mu, \log\sigma^2] = A\big(\mathrm{pool}_4 F_1(W_1) \,\|\, \mathrm{pool}_2 F_2(W_2) \,\|\, F_3(W_3)\big),
# \qquad
# z = \mu + \sigma \odot \varepsilon, \quad \sigma = e^{\log\sigma^2 / 2}, \quad
# \varepsilon \sim \mathcal{N}(0, I)
# \tag{E3}
# $$
#
# ($\|$ concatenates along the channels.) At evaluation Wave-GMS uses $z = \mu$. Grey images
# are repeated to 3 channels, so their R, G and B bands are identical. Nothing is lost on
# the way in: the inverse transform rebuilds the image from the level-1 bands (the cell
# below prints the largest error).

# %%
from wavegms.encoder import MultiResolutionEncoder

encoder = MultiResolutionEncoder()  # untrained: we only look at shapes
small = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)  # a model-sized batch
with torch.no_grad():
    mu, logvar = encoder(small)
for level, extractor in enumerate(encoder.extractors, 1):
    print(f"level-{level} extractor: {sum(p.numel() for p in extractor.parameters()):,} parameters")
print(f"aggregator: {sum(p.numel() for p in encoder.aggregator.parameters()):,} parameters")
print(f"images {tuple(small.shape)} -> mu {tuple(mu.shape)}, logvar {tuple(logvar.shape)}")

level1 = haar_pyramid(images)[0] * 2  # back to the orthonormal scale
rebuilt = ptwt.waverec2((level1[:, :3], (level1[:, 3:6], level1[:, 6:9], level1[:, 9:])), HAAR)
print(f"inverse transform of level 1: max error {(rebuilt - images).abs().max():.1e}")

# %% tags=["claims"]
assert (rebuilt - images).abs().max() < 1e-5  # nothing is lost


# %% [markdown]
# ### Exercise 4: the encoder's pooling, concatenation and sampling
#
# Write the end of (E3). `features` holds $F_1(W_1), F_2(W_2), F_3(W_3)$, each
# `[B, 12, H/2^l, W/2^l]`. Bring them to H/8 (`F.avg_pool2d`), concatenate them in level
# order (`stacked`, `[B, 36, H/8, W/8]`), split the aggregator's output into `mu` and
# `logvar` (`encoder.aggregator(stacked).chunk(2, dim=1)`), clamp `logvar` to [-30, 20], and
# return `z` for the given noise `eps`.
#
# Write your answer in the next cell; the cell after it checks it against
# `MultiResolutionEncoder` on a fresh encoder, fresh images and fresh noise.

# %% tags=["solution"]
def encode(encoder, images, eps):
    """(E3): the latent z [B, 4, H/8, W/8] of `images` [B, 3, H, W] for the noise `eps`."""
    levels = haar_pyramid(images)  # W_1, W_2, W_3
    features = [extract(w) for extract, w in zip(encoder.extractors, levels)]
    pooled = stacked = mu = logvar = sigma = z = ...
    # BEGIN SOLUTION
    pooled = [F.avg_pool2d(f, 2 ** (3 - level)) for level, f in enumerate(features, 1)]
    stacked = torch.cat(pooled, dim=1)  # [B, 36, H/8, W/8]
    mu, logvar = encoder.aggregator(stacked).chunk(2, dim=1)
    logvar = logvar.clamp(-30, 20)
    sigma = torch.exp(logvar / 2)
    z = mu + sigma * eps
    # END SOLUTION
    return z


# %% tags=["check"]
exercises.check_encode(encode)

# %% [markdown]
# <details><summary>Why sample in training, and why exp(logvar / 2)?</summary>
#
# The aggregator predicts a distribution, not a point: $\log\sigma^2$ is the log of the
# *variance*, so the standard deviation is $\sigma = \sqrt{e^{\log\sigma^2}} =
# e^{\log\sigma^2/2}$. Writing the sample as $\mu + \sigma\varepsilon$ with the noise drawn
# outside (the reparameterisation trick) keeps it differentiable in $\mu$ and $\sigma$, so
# the encoder learns through it. Sampling makes the model see slightly different latents
# of the same image, a form of regularisation; at evaluation the noise would only make
# predictions random, so Wave-GMS uses $\mu$ there.
#
# </details>

# %% [markdown]
# ## 5. Explore
#
# *⏱ About 6 min: ~6 min to read and do (estimate: 189 words at 200 words/min + 1 exercise at 5 min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Pick an image (this session's, or one of three real scans), a level and a band. With
# widgets, the controls above the figure redraw it; without them (or in a headless run) it
# is drawn once, for the first image, level 1, band H: the same values the controls start
# from.

# %%
from wavegms.course.widgets import browse

gallery = {name: image for name, image in zip(batch["name"], images)}
gallery.update({f"{n} (BUSI)": scans[n]["image"] for n in ("benign_82", "benign_92", "benign_96")})
gallery_levels = {name: haar_pyramid(image[None]) for name, image in gallery.items()}


def draw_band(image, level, band):
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.4))
    left.imshow(gallery[image].permute(1, 2, 0))
    left.set_title(image, fontsize=9)
    left.set_axis_off()
    show_band(right, gallery_levels[image], level, band)
    return fig


browse(
    draw_band,
    {"image": list(gallery), "level": [1, 2, 3], "band": list(BANDS)},
    static={"band": "H"},
)

# %% [markdown]
# ### Exercise 5
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
exercises.check_smallest_side(smallest)

# %% [markdown]
# <details><summary>Show the answer</summary>
#
# Three Haar levels halve the size three times, so the side must be divisible by 2^3 = 8:
# 60 is not (60 / 8 = 7.5), 64 is. And TAESD's latents are exactly H/8: the coarsest level,
# the pooled features and the mask latents must all have the same size, so padding would
# only move the problem (the prediction would have to be cropped back, and the pad would be
# part of what the model learns from).
#
# </details>

# %% [markdown]
# ## Summary
#
# *⏱ About 1 min: ~1 min to read (estimate: 113 words at 200 words/min).*
#
# - The Haar transform turns each 2 x 2 block into an average (LL) and three edge
#   detectors (H, V, D), (E1); it is orthonormal, so nothing is lost.
# - Three levels, each the step applied to the previous LL, give approximations and details
#   at 1/2, 1/4 and 1/8 of the size, (E2); on a real scan, tissue layers show in H and the
#   lesion's border in the details of every level.
# - Dividing level l by 2^l makes LL_l the block average, in the image's range.
# - The encoder pools its three levels to 1/8 of the image size, the size of TAESD's
#   latents, and samples $z = \mu + \sigma\varepsilon$, (E3): **02 · Tiny-VAE latents** is
#   next.
