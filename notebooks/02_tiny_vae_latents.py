# %% [markdown]
# # 02 · The Tiny-VAE: images and masks as latents
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/02_tiny_vae_latents.ipynb)
#
# Wave-GMS does not predict a mask pixel by pixel. It predicts the **latent** of the
# mask: the 4-channel, 8x smaller code that a frozen autoencoder, TAESD, would give
# that mask; TAESD's decoder then turns the prediction into the mask. This notebook
# looks at that latent space, and shows why it makes segmentation easier.
#
# **In the paper.** This notebook teaches the frozen Tiny-VAE (TAESD) and its latent space, where the model encodes images (the alignment teacher) and masks (the targets). [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) names the paper's section and
# equation for each function it uses.
#
# **Learning objectives.** After this notebook you can:
# - encode and decode images and masks with TAESD, with the right value ranges
# - look at the 4 latent channels as images
# - measure round-trip quality: PSNR for images, Dice for masks
# - explain why mask latents are easy targets for a small model
#
# **Time.** CPU quick mode (the defaults): about 11 s (10.4-11.6 s in three runs of `wavegms course`, alone on a 2-core CPU, kernel start included). Colab T4, full run: under a minute (an estimate, not a measurement).

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
import torch
import torch.nn.functional as F

from wavegms import load_tiny_vae
from wavegms.engine.metrics import dice_iou

vae = load_tiny_vae(device=device)
from wavegms.course.samples import load_samples

SIZE = max(IMAGE_SIZE, 128)  # a little larger than the quick model input: nicer pictures
batch = course.sample_batch(session, 3, SIZE)  # the session's dataset (synthetic by default)
real = load_samples("busi", image_size=SIZE)[:3]  # real breast ultrasound shipped with wavegms
images = torch.cat([batch["image"], torch.stack([r["image"] for r in real])]).to(device)
masks = torch.cat([batch["mask"], torch.stack([r["mask"] for r in real])]).to(device)
names = batch["name"] + [f"{r['name']} (BUSI)" for r in real]
print("images", tuple(images.shape), "masks", tuple(masks.shape))  # [6, 3, S, S], [6, 1, S, S]
print("first three:", session.dataset, "| last three: real BUSI samples:", ", ".join(names[3:]))

# %% [markdown]
# ## 1. Encode and decode an image
#
# TAESD works with pixel values in **[-1, 1]**, so images in [0, 1] go in as
# `2 * x - 1`, and decoded outputs come back as `(y + 1) / 2`. A latent has 4 channels
# at 1/8 of the side: 3 x S x S numbers become 4 x S/8 x S/8, a 48-fold compression.
# TAESD's scaling factor is 1: no rescaling sits between the encoder and the decoder.

# %%
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

# %% [markdown]
# The shapes survive everywhere, but the PSNR differs (a good photo codec reaches 30 dB or
# more): on our synthetic images (the first three) it is low, on the real scans (the last
# three, downscaled, with far less pixel-level noise) much higher. The error maps tell why:
# the loss is mostly **speckle**, random pixel-level noise that no 48-fold compression can
# keep, and our synthetic images exaggerate it. The decoder does not
# return a smoothed image, though: it **re-creates** speckle-like texture of its own, in
# the wrong places (the cell below measures how much fine detail its outputs keep). That is
# fine for us: Wave-GMS never needs to reconstruct *images*, only masks. The image latent is
# still used, as the **teacher** of the alignment loss (notebook 03).

# %%
from wavegms.wavelets import haar_pyramid


def fine_detail(x):
    """Energy of the level-1 detail bands (H, V, D) of the Haar pyramid, per image."""
    return haar_pyramid(x)[0][:, 3:].square().sum((1, 2, 3))


kept = (fine_detail(decoded.clamp(0, 1).cpu()) / fine_detail(images.cpu())).mean()
print(f"the decoded images keep {kept:.0%} of the input's level-1 detail energy")
print("(a smoothed image would keep almost none: the texture is re-created, not kept)")
#
# ## 2. The latent channels, as images
#
# Each latent channel is a small image on a grid 8 times coarser: the latent space
# keeps the layout of the image. On smooth photographs the channels look like blurred,
# recoloured copies of the input; on our speckled ultrasound the speckle dominates and
# the lesion shows only faintly (look at channel 1).

# %%
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

# %% [markdown]
# ## 3. Masks as latents
#
# A mask becomes a 3-channel image in [-1, 1] (`2 * m - 1`, repeated over RGB: -1 is
# background, +1 foreground) and is encoded the same way. Its latent is the model's
# **target**. Decoding turns a latent back into a probability: the mean over the 3
# decoded channels, mapped from [-1, 1] to [0, 1]; thresholding at 0.5 gives the mask.
# This is exactly what `WaveGMS.encode_targets` and `WaveGMS.decode` do.
#
# The round trip mask -> latent -> mask is a **ceiling**: even a perfect latent
# prediction cannot beat the Dice of this round trip.

# %%
from wavegms import WaveGMS

model = WaveGMS(vae, image_size=SIZE).to(device)
with torch.no_grad():
    teacher_latents, mask_latents = model.encode_targets(images, masks)  # each [6, 4, S/8, S/8]
    round_trip = model.decode(mask_latents)  # [6, 1, S, S] probabilities
same = torch.allclose(teacher_latents, image_latents, atol=1e-4)
print("teacher latents are the image latents:", same)
dice, _ = dice_iou(round_trip > 0.5, masks)
print("round-trip Dice per mask:", [round(v, 4) for v in dice.tolist()])

# %% [markdown]
# ## 4. Why mask latents are easy targets
#
# An image latent must encode texture, brightness and shape. A mask has none of the
# first two: it is one smooth region. So its latent should be almost a simple
# function of *how much of each 8 x 8 block is foreground*. Let us test that: fit,
# per channel, a straight line from the block's foreground fraction to the latent
# value, and see how much of the variance it explains (R^2, 1 = all of it), for mask
# latents and, for comparison, for image latents.

# %%
fraction = F.avg_pool2d(masks, 8).flatten()  # foreground share of each 8x8 block


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

# %% [markdown]
# Mask latents are **nearly a low-resolution copy of the mask**, in four "colours":
# two clusters (all background, all foreground) joined by a ramp along the border.
# Image latents are not explained by the mask at all. So the Latent Mapping Model has
# to turn an image representation into something close to a small probability map,
# an easier regression than predicting pixels of an image.
#
# There is a second reason: the decoder **forgives errors**. Add noise to perfect
# mask latents and decode: the masks stay almost intact until the noise is large.

# %%
generator = torch.Generator(device="cpu").manual_seed(SEED)
spread = mask_latents.std().item()
print(f"spread (std) of the mask latents: {spread:.2f}")
for sigma in [0.0, 0.25, 0.5, 1.0]:
    noise = torch.randn(mask_latents.shape, generator=generator).to(device) * sigma * spread
    with torch.no_grad():
        noisy = model.decode(mask_latents + noise) > 0.5
    print(f"noise {sigma:4.2f} x spread -> mean Dice {dice_iou(noisy, masks)[0].mean():.3f}")

# %% [markdown]
# ## 5. Explore the latents side by side
#
# For every image: the image, one channel of its latent, the mask, the same channel
# of the mask latent, and the decoded mask. Change the channel with the slider.

# %%
from wavegms.course.widgets import browse


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

# %% [markdown]
# ### Exercise 1
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
from wavegms.course.exercises import check, close

# The same two masks through the model's own target encoder.
constant_masks = torch.tensor([0.0, 1.0], device=device).view(2, 1, 1, 1).expand(2, 1, 64, 64)
with torch.no_grad():
    _, reference = model.encode_targets(torch.zeros(2, 3, 64, 64, device=device), constant_masks)
check(
    "Exercise 1",
    constant_latents,
    lambda answer: close(
        torch.tensor([answer["background"], answer["foreground"]]),
        reference.mean((2, 3)).cpu(),
        atol=1e-3,
    ),
)

# %% [markdown] tags=["solution"]
# **Answer.** Both are (almost) constant latents: one 4-vector for "nothing here" and another for
# "all lesion". They are the two ends of the ramp in the scatter plot: a mask latent
# is, to a good approximation, a blend of these two vectors weighted by the local
# foreground fraction. A model that outputs the background vector everywhere predicts
# an empty mask.

# %% [markdown]
# ### Exercise 2
#
# Is the latent space smooth? Interpolate between the mask latents of the first two
# images, `(1 - t) * z0 + t * z1` for t = 0, 0.25, 0.5, 0.75, 1, and decode each.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
blended = ...  # [5, 1, H, W]: the decoded probabilities for t = 0, 0.25, 0.5, 0.75, 1
# BEGIN SOLUTION
steps = torch.linspace(0, 1, 5, device=device)
blend = torch.stack([(1 - t) * mask_latents[0] + t * mask_latents[1] for t in steps])
with torch.no_grad():
    blended = model.decode(blend)
# END SOLUTION

# %% tags=["check"]
with torch.no_grad():
    ends = model.decode(mask_latents[:2])
check(
    "Exercise 2",
    blended,
    lambda answer: close(answer[[0, -1]], ends, atol=1e-3),
    success="The figure below shows them.",
)
if not isinstance(blended, type(...)):
    grey = ((blended > 0.2) & (blended < 0.8)).float().mean((1, 2, 3))
    fig, axes = plt.subplots(1, 5, figsize=(9, 2.2))
    for ax, t, picture, share in zip(axes, torch.linspace(0, 1, 5), blended, grey):
        ax.imshow(picture[0].cpu(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"t = {t:.2f}: {share:.0%} grey", fontsize=9)
        ax.set_axis_off()
    plt.show()

# %% [markdown] tags=["solution"]
# **Answer.** The decoded masks change gradually, but they are **not** sharp masks on the way: in
# between, the two shapes cross-fade as grey, half-certain probabilities (the titles count
# the pixels between 0.2 and 0.8), and only the ends are crisp. The latent space is smooth,
# small steps give small changes, which is what makes a regression onto these latents with
# an MSE loss meaningful; but the average of two mask latents is not a mask. A model unsure
# between two shapes predicts such a blur, and the Dice term of the objective (notebook 03)
# is what pushes it to commit.

# %% [markdown]
# ## Summary
#
# - TAESD maps [-1, 1] images to 4 x H/8 x W/8 latents and back; it stays frozen.
# - Mask latents are nearly an affine function of the local foreground fraction:
#   a low-resolution mask in disguise. The round-trip Dice is the ceiling.
# - The decoder cleans up imperfect latents, so predicting them is forgiving.
#
# Next, **03 · Training the Latent Mapping Model** puts it together: the wavelet
# encoder of 01 produces a latent, the LMM maps it to a mask latent, and TAESD
# decodes it.
