# %% [markdown]
# # 02 · The Tiny-VAE: images and masks as latents
#
# *⏱ This notebook, about 29 min in all: ~29 min to read and do (estimate: 1,789 words at 200 words/min + 4 exercises at 5 min), 10 s of computing (quick profile, measured on a 2-core Intel Xeon CPU on 2026-12-06).*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/02_tiny_vae_latents.ipynb)
#
# Wave-GMS does not predict a mask pixel by pixel. It predicts the **latent** of the
# mask: the 4-channel, 8x smaller code that a frozen autoencoder, TAESD, would give
# that mask; TAESD's decoder then turns the prediction into the mask. This notebook
# looks at that latent space, and shows why it makes segmentation easier.
#
# **In the paper.** This notebook teaches the frozen Tiny-VAE (TAESD) and its latent space,
# where the model encodes images (the alignment teacher) and masks (the targets), and how a
# predicted latent becomes a mask. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md)
# numbers the equations used here, (E4) and (E5), and names the function that implements
# each step of the method.
#
# **Learning objectives.** After this notebook you can:
# - encode and decode images and masks with TAESD, with the right value ranges, and write
#   the mask latent and the decode formula yourself
# - look at the 4 latent channels as images
# - measure round-trip quality: PSNR for images, Dice for masks
# - explain why mask latents are easy targets for a small model, and what noise and
#   blending do to them
#
# **Time.** CPU quick mode (the defaults): the line under the title, measured. Colab T4, full run: under a minute (an estimate, not a measurement: the quick run takes 12 s on a 2-core CPU (measured), as Colab has; at 224 px its figures encode and decode a few images with TAESD, 23 and 27 GFLOP each, milliseconds on a T4).

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
import torch
import torch.nn.functional as F

from wavegms import WaveGMS, load_samples, load_tiny_vae
from wavegms.course.exercises import latents as exercises
from wavegms.engine.metrics import dice_iou

vae = load_tiny_vae(device=device)
model = WaveGMS(vae, image_size=IMAGE_SIZE).to(device).eval()  # untrained: we use TAESD only

SIZE = max(IMAGE_SIZE, 128)  # a little larger than the quick model input: nicer pictures
batch = course.sample_batch(session, 3, SIZE)  # the session's dataset (synthetic by default)
real = load_samples("busi", image_size=SIZE)[:3]  # real breast ultrasound shipped with wavegms
images = torch.cat([batch["image"], torch.stack([r["image"] for r in real])]).to(device)
masks = torch.cat([batch["mask"], torch.stack([r["mask"] for r in real])]).to(device)
names = batch["name"] + [f"{r['name']} (BUSI)" for r in real]
kind = "synthetic" if session.synthetic else session.dataset
print("images", tuple(images.shape), "masks", tuple(masks.shape))  # [6, 3, S, S], [6, 1, S, S]
print(f"first three: {kind} | last three: real BUSI samples:", ", ".join(names[3:]))

# %% [markdown]
# ## 1. Encode and decode an image
#
# *⏱ About 1 min: ~1 min to read (estimate: 213 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# TAESD works with pixel values in **[-1, 1]**: its encoder $E$ takes an image $x$ in
# [0, 1] as $2x - 1$, and its decoder $D$ returns values in [-1, 1] that map back as
# $(y + 1)/2$:
#
# $$ z_x = E(2x - 1), \qquad \hat{x} = \tfrac{D(z_x) + 1}{2} \tag{E4} $$
#
# A latent has 4 channels at 1/8 of the side, and there is no scaling factor between the
# encoder and the decoder (the cell prints both). The figure shows all six images, their
# round trip, and where the round trip differs (the error, 5 times brighter).

# %%
with torch.no_grad():
    image_latents = vae.encode(images * 2 - 1).latents  # [6, 4, S/8, S/8]
    decoded = ((vae.decode(image_latents).sample + 1) / 2).clamp(0, 1)
low, high = image_latents.min().item(), image_latents.max().item()
print(f"image latents {tuple(image_latents.shape)}, values in [{low:.2f}, {high:.2f}]")
print(f"compression: {images[0].numel() / image_latents[0].numel():.0f}x; TAESD's scaling "
      f"factor: {vae.config.scaling_factor}")  # fmt: skip
mse = (decoded - images).square().flatten(1).mean(1)
psnr = 10 * torch.log10(1 / mse)
print("round-trip PSNR per image (dB):", [round(v, 1) for v in psnr.tolist()])

fig, axes = plt.subplots(3, 6, figsize=(11, 5.8))
for col in range(6):
    axes[0, col].imshow(images[col].permute(1, 2, 0).cpu())
    axes[0, col].set_title(names[col].replace(" (BUSI)", "\n(BUSI)"), fontsize=7)
    axes[1, col].imshow(decoded[col].permute(1, 2, 0).cpu())
    axes[1, col].set_title(f"{psnr[col]:.1f} dB", fontsize=8)
    error = (decoded[col] - images[col]).abs().mean(0).cpu()
    axes[2, col].imshow(error * 5, cmap="magma", vmin=0, vmax=1)
for ax, label in zip(axes[:, 0], ["image", "decoded", "|error| x 5"]):
    ax.set_ylabel(label)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# The shapes survive everywhere, but the PSNR differs: in the quick profile, the synthetic
# images (the first three) come back worse than the real scans (the last three, downscaled,
# with far less pixel-level noise). The error maps tell why: the loss is mostly
# **speckle**, random pixel-level noise that no 48-fold compression can keep, and our
# synthetic images exaggerate it. The decoder does not return a smoothed image, though: it
# **re-creates** texture of its own, in the wrong places (the next cell measures how much
# fine detail its outputs keep). That is fine for us: Wave-GMS never needs to reconstruct
# *images*, only masks. The image latent is still used, as the **teacher** of the
# alignment loss (notebook 03).

# %%
from wavegms.wavelets import haar_pyramid


def fine_detail(x):
    """Energy of the level-1 detail bands (H, V, D) of the Haar pyramid, per image."""
    return haar_pyramid(x)[0][:, 3:].square().sum((1, 2, 3))


kept = (fine_detail(decoded.cpu()) / fine_detail(images.cpu())).mean().item()
print(f"the decoded images keep {kept:.0%} of the input's level-1 detail energy")
print("(a smoothed image would keep almost none: the texture is re-created, not kept)")

# %% tags=["claims"]
# Claims: the paragraph above, on this run's numbers (the course's tests fail if not).
if session.synthetic:
    assert psnr[3:].min() > psnr[:3].max(), psnr
assert kept > 0.2, kept


# %% [markdown]
# ## 2. The latent channels, as images
#
# *⏱ About 1 min: ~1 min to read (estimate: 91 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Each latent channel is a small image on a grid 8 times coarser: the latent space keeps
# the layout of the image. The rows below are the first image of this session and the
# three real scans; the green line is the lesion's outline. On ultrasound the channels are
# dominated by texture: the lesion shows only faintly, as lower values in channel 1. The
# printed correlations measure it: per image, between channel 1 and the share of each 8 x 8
# block inside the lesion.

# %%
def lesion_share(mask):
    """The share of each 8 x 8 block inside the lesion: [..., S/8, S/8]."""
    return F.avg_pool2d(mask, 8)


rows = [0, 3, 4, 5]
fig, axes = plt.subplots(len(rows), 5, figsize=(10, 2.1 * len(rows)))
for ax_row, i in zip(axes, rows):
    ax_row[0].imshow(images[i].permute(1, 2, 0).cpu())
    ax_row[0].contour(masks[i, 0].cpu(), [0.5], colors="limegreen", linewidths=0.8)
    ax_row[0].set_title(names[i], fontsize=8)
    for c, ax in enumerate(ax_row[1:]):
        ax.imshow(image_latents[i, c].cpu(), cmap="viridis")
        ax.set_title(f"image latent ch {c}", fontsize=8)
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

share = lesion_share(masks).flatten(1)  # [6, (S/8)^2]
correlation = {}
for i in rows:
    if share[i].std() > 0:  # an image with a lesion
        pair = torch.stack([share[i], image_latents[i, 1].flatten()])
        correlation[names[i]] = torch.corrcoef(pair)[0, 1].item()
print("correlation of channel 1 with the lesion share:",
      ", ".join(f"{n} {r:+.2f}" for n, r in correlation.items()))  # fmt: skip

# %% tags=["claims"]
# Claims: faint (|r| < 0.6), and lower inside the lesion (r < 0), for the real scans.
for name in names[3:]:
    assert -0.6 < correlation[name] < 0, correlation


# %% [markdown]
# ## 3. Masks as latents
#
# *⏱ About 11 min: ~11 min to read and do (estimate: 247 words at 200 words/min + 2 exercises at 5 min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# A mask $m \in \{0, 1\}$ is encoded like an image: repeated over the 3 colour channels and
# mapped to [-1, 1] (-1 background, +1 foreground). Its latent is the model's **target**.
# Decoding turns a latent back into a probability: the mean of the 3 decoded channels,
# mapped from [-1, 1] to [0, 1] and clamped there; thresholding at 0.5 gives the mask:
#
# $$ z_m = E(2m - 1) \tag{E4} $$
#
# $$ p = \mathrm{clamp}\Big(\tfrac{\frac{1}{3}\sum_{c=1}^{3} D(\hat{z})_c + 1}{2},\ 0,\ 1\Big),
# \qquad \text{mask} = [\,p > 0.5\,] \tag{E5} $$
#
# This is what `WaveGMS.encode_targets` and `WaveGMS.decode` do.

# %% [markdown]
# ### Exercise 1: the mask latent
#
# Write $z_m = E(2m - 1)$: `masks` is `[B, 1, H, W]` in {0, 1}; `masks3` repeats it over 3
# channels, `pixels` maps it to [-1, 1]; `vae.encode(pixels).latents` is the latent.
#
# Write your answer in the next cell; the cell after it checks it against
# `WaveGMS.encode_targets` on masks it draws itself.

# %% tags=["solution"]
def mask_latent(vae, masks):
    """(E4): masks [B, 1, H, W] in {0, 1} -> their TAESD latents [B, 4, H/8, W/8]."""
    masks3 = pixels = ...  # [B, 3, H, W]: the mask over 3 channels, then mapped to [-1, 1]
    # BEGIN SOLUTION
    masks3 = masks.expand(-1, 3, -1, -1)
    pixels = 2 * masks3 - 1
    # END SOLUTION
    return vae.encode(pixels).latents


# %% tags=["check"]
exercises.check_mask_latent(mask_latent, model)


# %% [markdown]
# ### Exercise 2: from a latent to a probability
#
# Write (E5): decode the latents with `vae.decode(latents).sample` (`rgb`,
# `[B, 3, H, W]` in about [-1, 1]), average its 3 channels keeping the channel axis
# (`mean`, `[B, 1, H, W]`), map to [0, 1] and clamp.
#
# Write your answer in the next cell; the cell after it checks it against
# `WaveGMS.decode` on latents it draws itself, some far from any mask.

# %% tags=["solution"]
def decode(vae, latents):
    """(E5): latents [B, 4, h, w] -> foreground probabilities [B, 1, 8h, 8w] in [0, 1]."""
    rgb = vae.decode(latents).sample
    mean = probability = ...
    # BEGIN SOLUTION
    mean = rgb.mean(dim=1, keepdim=True)
    probability = ((mean + 1) / 2).clamp(0, 1)
    # END SOLUTION
    return probability


# %% tags=["check"]
exercises.check_decode(decode, model)

# %% [markdown]
# The round trip mask -> latent -> mask is a **ceiling**: even a perfect latent prediction
# cannot beat the Dice of this round trip. The cell computes it with the library's
# `encode_targets` and `decode`, for the six masks.

# %%
with torch.no_grad():
    teacher_latents, mask_latents = model.encode_targets(images, masks)  # each [6, 4, S/8, S/8]
    round_trip = model.decode(mask_latents)  # [6, 1, S, S] probabilities
same = torch.allclose(teacher_latents, image_latents, atol=1e-4)
print("teacher latents are the image latents:", same)
dice, _ = dice_iou(round_trip > 0.5, masks)
print("round-trip Dice per mask:", [round(v, 4) for v in dice.tolist()])
print(f"lowest: {dice.min():.3f}")

# %% tags=["claims"]
assert same and dice.min() > 0.95, dice

# %% [markdown]
# ## 4. Why mask latents are easy targets
#
# *⏱ About 7 min: ~7 min to read and do (estimate: 492 words at 200 words/min + 1 exercise at 5 min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# An image latent must encode texture, brightness and shape. A mask has none of the first
# two: it is one smooth region. So is its latent a simple function of *how much of each
# 8 x 8 block is foreground*? Let us test it: fit, per channel, a straight line from the
# block's foreground share to the latent value, and see how much of the variance it
# explains ($R^2$, 1 = all of it), for mask latents and, for comparison, image latents.

# %%
fraction = lesion_share(masks).flatten()  # foreground share of each 8x8 block, all images


def r_squared(latents):
    """Per channel: the share of variance a straight line of `fraction` explains."""
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
left.set(xlabel="latent channel", ylabel="R^2 of a line", ylim=(0, 1.25), yticks=[0, 0.5, 1])
left.set_title("Explained by the foreground share")
left.legend(loc="upper center", ncol=2, fontsize=8)  # above the bars, which stop at 1
# Background blocks next to a lesion (the ring) against background far from any.
near = (F.max_pool2d(lesion_share(masks), 3, 1, 1) > 0) & (lesion_share(masks) == 0)
far = F.max_pool2d(lesion_share(masks), 5, 1, 2) == 0
ring = [mask_latents[:, c : c + 1][near].mean().item() for c in range(4)]
background = [mask_latents[:, c : c + 1][far].mean().item() for c in range(4)]
right.scatter(fraction.cpu(), mask_latents[:, 0].flatten().cpu(), s=5, alpha=0.5)
right.axhline(background[0], color="grey", linestyle="--", linewidth=1)
right.text(0.5, background[0], "background far from a lesion", fontsize=8, va="bottom")
right.set(xlabel="foreground share of the 8x8 block", ylabel="mask latent, channel 0")
right.set_title("Mask latents, channel 0")
plt.show()
print("R^2 of mask latents: ", [round(v, 2) for v in r2_mask])
print("R^2 of image latents:", [round(v, 2) for v in r2_image])
print("mask latent, background far from a lesion:", [round(v, 2) for v in background])
print("mask latent, background next to a lesion: ", [round(v, 2) for v in ring])

# %% [markdown]
# The line explains much of the mask latents' variance in every channel (at least a third),
# and almost nothing of the image latents' (the printed $R^2$). A mask latent is close to a **low-resolution
# picture of the mask in four "colours"**: one 4-vector for background, another for the
# inside of a lesion (exercise 3 measures them), a ramp between them along the border. The
# picture is not exact, and the scatter plot shows where: blocks with no foreground at all
# (share 0) spread below the dashed line, the background's value in channel 0. They are the
# background next to a lesion: in channel 0 the mask latent overshoots there (the printed
# means), so each lesion sits in a darker ring (see the mask latents in section 6). A line
# of the foreground share cannot know about neighbours, hence the $R^2$ below 1.
#
# So the Latent Mapping Model has to turn an image representation into something close to
# a small probability map, an easier regression than predicting an image.

# %% tags=["claims"]
# Claims: mask R^2 high and above the image latents' in every channel; the ring in ch 0.
assert min(r2_mask) > 1 / 3 and max(r2_image) < 0.2, (r2_mask, r2_image)
assert all(m > i + 0.2 for m, i in zip(r2_mask, r2_image)), (r2_mask, r2_image)
assert ring[0] < background[0] - 0.2, (ring, background)

# %% [markdown]
# ### Exercise 3
#
# What are the latents of an **all-background** and an **all-foreground** mask? Encode
# both (at 64 px, as 3-channel images in [-1, 1] like the masks above) and take the mean
# of each latent channel. Compare with the two clusters of the scatter plot above.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
constant_latents = ...  # {"background": [4 channel means], "foreground": [4 channel means]}
# BEGIN SOLUTION
constant_latents = {}
with torch.no_grad():
    for value, name in [(0.0, "background"), (1.0, "foreground")]:
        constant = torch.full((1, 1, 64, 64), value, device=device)
        latent = vae.encode(constant.expand(-1, 3, -1, -1) * 2 - 1).latents
        constant_latents[name] = latent.mean((0, 2, 3)).tolist()
        print(f"all {name}: channel means {[round(v, 2) for v in constant_latents[name]]}")
# END SOLUTION

# %% tags=["check"]
exercises.check_constant_latents(constant_latents, model)

# %% [markdown]
# <details><summary>Show the answer</summary>
#
# Both are (almost) constant latents: one 4-vector for "nothing here" and another for "all
# lesion". They are the two clusters at share 0 and share 1 of the scatter plot (channel 0
# there): a mask latent is, away from the borders, one of these two vectors. A model that
# outputs the background vector everywhere predicts an empty mask.
#
# </details>

# %% [markdown]
# **The decoder forgives errors.** Add noise to the perfect mask latents of the three real
# scans and decode: how large can the noise be before the masks break? The noise is
# $\sigma$ times the spread (standard deviation) of the mask latents. With widgets, the
# slider sets $\sigma$ and the figure decodes again; headless, the figure shows
# $\sigma = 0.5$, where the slider starts. The printed table gives the mean Dice for
# every $\sigma$ the slider offers.

# %%
from wavegms.course.widgets import browse

real_latents, real_masks = mask_latents[3:], masks[3:]
spread = real_latents.std().item()
generator = torch.Generator().manual_seed(SEED)
noise = torch.randn(real_latents.shape, generator=generator).to(device)  # one draw, scaled
SIGMAS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
with torch.no_grad():  # every sigma in one batch: [7 * 3, 4, S/8, S/8] -> [7, 3, 1, S, S]
    scaled = torch.tensor(SIGMAS, device=device).view(-1, 1, 1, 1, 1) * spread * noise
    decoded_noisy = model.decode((real_latents + scaled).flatten(0, 1)).unflatten(0, (7, 3))
noisy_masks = dict(zip(SIGMAS, decoded_noisy > 0.5))
noisy_dice = {sigma: dice_iou(noisy_masks[sigma], real_masks)[0] for sigma in SIGMAS}
print(f"spread (std) of the mask latents: {spread:.2f}")
for sigma, scores in noisy_dice.items():
    print(f"noise {sigma:4.2f} x spread -> mean Dice {scores.mean():.3f}")


def draw_noise(sigma):
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
    for ax, predicted, truth, name, score in zip(
        axes, noisy_masks[sigma], real_masks, names[3:], noisy_dice[sigma]
    ):
        ax.imshow(predicted[0].cpu(), cmap="gray", vmin=0, vmax=1)
        ax.contour(truth[0].cpu(), [0.5], colors="limegreen", linewidths=0.8)
        ax.set_title(f"{name}: Dice {score:.2f}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"decoded with noise {sigma} x spread (green: the true outline)", fontsize=9)
    return fig


browse(draw_noise, {"sigma": SIGMAS}, static={"sigma": 0.5})

# %% [markdown]
# Up to half the spread, the decoded masks keep a mean Dice above 0.9: small errors in a
# predicted latent cost little. From about one spread on they fall apart (mean Dice below
# 0.9 at 1.0 and below 0.75 at 1.5).

# %% tags=["claims"]
means = {sigma: scores.mean().item() for sigma, scores in noisy_dice.items()}
assert min(means[s] for s in SIGMAS if s <= 0.5) > 0.9, means
assert means[1.0] < 0.9 and means[1.5] < 0.75, means

# %% [markdown]
# ## 5. Between two masks
#
# *⏱ About 6 min: ~6 min to read and do (estimate: 224 words at 200 words/min + 1 exercise at 5 min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Is the latent space smooth? Take the mask latents of two real scans, $z_0$ (benign_82)
# and $z_1$ (benign_96), and decode the straight line between them,
# $(1 - t)\,z_0 + t\,z_1$.
#
# ### Exercise 4
#
# Decode the blends for t = 0, 0.25, 0.5, 0.75, 1 (one batch of five latents).
#
# Write your answer in the next cell; the cell after it checks all five frames.

# %% tags=["solution"]
z0, z1 = mask_latents[3], mask_latents[5]  # [4, S/8, S/8] each
blended = ...  # [5, 1, S, S]: the decoded probabilities for t = 0, 0.25, 0.5, 0.75, 1
# BEGIN SOLUTION
steps = torch.linspace(0, 1, 5, device=device)
blend = torch.stack([(1 - t) * z0 + t * z1 for t in steps])
with torch.no_grad():
    blended = model.decode(blend)
# END SOLUTION

# %% tags=["check"]
exercises.check_interpolation(blended, model, mask_latents[3], mask_latents[5])

# %% [markdown]
# Move $t$ yourself: the figure decodes the blend, shows where the probability is uncertain
# (between 0.2 and 0.8: grey), outlines both masks (green: $z_0$'s, orange: $z_1$'s), and
# scores the thresholded blend against each. Headless, it shows $t = 0.5$, where the
# slider starts; the printed table covers every $t$ the slider offers.

# %%
ends = masks[3], masks[5]
STEPS = [round(0.1 * k, 1) for k in range(11)]


with torch.no_grad():  # every t in one batch
    t = torch.tensor(STEPS, device=device).view(-1, 1, 1, 1)
    blends = dict(zip(STEPS, model.decode((1 - t) * mask_latents[3] + t * mask_latents[5])))
table = {}
for t, p in blends.items():
    grey = ((p > 0.2) & (p < 0.8)).float().mean().item()
    scores = [dice_iou((p > 0.5)[None], end[None])[0].item() for end in ends]
    table[t] = (grey, *scores, (p > 0.5).float().mean().item())
    print(f"t = {t:.1f}: {grey:5.1%} grey | Dice with z0's mask {scores[0]:.2f}, with z1's "
          f"{scores[1]:.2f} | foreground {table[t][3]:.1%} of the image")  # fmt: skip


def draw_blend(t):
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.imshow(blends[t][0].cpu(), cmap="gray", vmin=0, vmax=1)
    for end, colour in zip(ends, ["limegreen", "orange"]):
        ax.contour(end[0].cpu(), [0.5], colors=colour, linewidths=0.8)
    grey, dice0, dice1, _ = table[t]
    ax.set_title(f"t = {t}: {grey:.0%} grey, Dice {dice0:.2f} / {dice1:.2f}", fontsize=9)
    ax.set_axis_off()
    return fig


browse(draw_blend, {"t": STEPS}, static={"t": 0.5})

# %% tags=["claims"]
# Claims of the answer below: near the ends the thresholded blend is one of the two masks;
# at t = 0.5 it is almost empty (a fifth of either mask at most), and mostly grey.
assert all(table[t][1] > 0.8 for t in STEPS if t <= 0.3), table
assert all(table[t][2] > 0.8 for t in STEPS if t >= 0.7), table
smaller = min(end.float().mean().item() for end in ends)
assert table[0.5][3] < 0.2 * smaller, (table[0.5], smaller)
assert table[0.5][0] > 5 * max(table[0.0][0], table[1.0][0]), table


# %% [markdown]
# <details><summary>Show the answer</summary>
#
# The latent space is smooth in one sense: small steps in $t$ give small changes of the
# probabilities. But the decoded masks do **not** morph from one shape into the other.
# Thresholded, the blend stays $z_0$'s mask up to $t \approx 0.3$ and is $z_1$'s mask from
# $t \approx 0.7$ (Dice above 0.8 with it); around $t = 0.5$ both shapes are half-certain
# grey, and the thresholded mask is almost empty. The average of two mask latents is not a
# mask. A model unsure between two shapes predicts such a grey blur, and the Dice term of
# the objective (notebook 03) is what pushes it to commit.
#
# </details>

# %% [markdown]
# ## 6. Explore the latents side by side
#
# *⏱ About 1 min: ~1 min to read (estimate: 43 words at 200 words/min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# For every image: the image, one channel of its latent, the mask, the same channel of the
# mask latent, and the decoded mask. Change the channel with the slider (headless: channel
# 0, where the slider starts).

# %%
def draw_latents(channel):
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

# %% [markdown]
# ## Summary
#
# *⏱ About 1 min: ~1 min to read (estimate: 118 words at 200 words/min).*
#
# - TAESD maps [-1, 1] images to 4 x H/8 x W/8 latents and back, (E4); it stays frozen.
# - A mask latent $E(2m - 1)$ is close to a low-resolution picture of the mask: one vector
#   for background, one for lesion, a ramp and a ring at the border. Decoding, (E5), takes
#   the mean of the 3 output channels; the round-trip Dice is the ceiling.
# - The decoder forgives small errors in a latent, and a blend of two mask latents decodes
#   to grey uncertainty, not to an intermediate shape.
#
# Next, **03 · Training the Latent Mapping Model** puts it together: the wavelet
# encoder of 01 produces a latent, the LMM maps it to a mask latent, and TAESD
# decodes it.
