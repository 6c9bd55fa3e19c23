# %% [markdown]
# # 03 · Training the Latent Mapping Model
#
# *⏱ This notebook, about 49 min in all: ~48 min to read and do (estimate: 2,648 words at 200 words/min + 7 exercises at 5 min), 47 s of computing (quick profile, measured on a 2-core Intel Xeon CPU on 2026-12-06).*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/03_lmm_training.ipynb)
#
# Time to put the pieces together. The **wavelet encoder** (notebook 01) turns an
# image into a latent at 1/8 of its size; the **Latent Mapping Model (LMM)**, a small
# UNet with attention that never changes resolution, maps that latent to the **mask
# latent** (notebook 02); the frozen TAESD decoder turns it into a mask. Only the
# encoder and the LMM learn.
#
# **In the paper.** This notebook teaches the whole pipeline: the multi-resolution encoder, the latent mapping model (residual blocks + spatial self-attention, deep supervision), the training objective (latent MSE + Dice through the frozen decoder + latent alignment) and the optimisation settings. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) follows the paper's pipeline step by step, names the function that implements each step, and numbers the equations written out in these notebooks (E1-E9).
#
# **Learning objectives.** After this notebook you can:
# - build Wave-GMS and account for its ~2.6M trainable parameters, module by module
# - write the LMM's spatial self-attention, the training objective, one optimisation step and
#   the learning-rate schedule yourself, and check them against the library
# - name the three terms of the training objective and say what each one is for
# - train the model, with its progress (a live bar in Jupyter, a line per epoch in a headless
#   run) and loss curves
# - watch predicted mask latents and decoded masks improve across epochs
# - explain why the best checkpoint is chosen on validation data, never on test data
#
# **Time.** CPU quick mode (the defaults): the line under the title, measured. Colab T4, full run: training takes about 35-60 minutes for 300 epochs of BUSI at 224 px, batch 12, with `PRECISION = "auto"` (fp16 on a T4), and about 2.4 hours in fp32 (an estimate, not a measurement: an epoch trains on 465 images at 247 GFLOP each and validates 52 at 40 GFLOP each, as `torch.utils.flop_counter` counts them, 117 TFLOP, so 35 PFLOP for 300 epochs; a T4 sustaining 10-16 TFLOP/s in fp16, 15-25% of its 65 TFLOP/s peak, needs 35-60 minutes, and 4 TFLOP/s in fp32, half its 8.1 TFLOP/s peak, 2.4 hours). In Colab, set `DRIVE_RUNS = True` (see Setup) so that a disconnect does not lose the run.

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
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import display

from wavegms import WaveGMS, load_tiny_vae
from wavegms.engine.curves import plot_training_curves
from wavegms.engine.run_data import build_datasets
from wavegms.losses import WaveGMSLoss

vae = load_tiny_vae(device=device)
config = course.course_config(
    session, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, quick=QUICK
)
datasets, splits = build_datasets(config)
sizes = {part: len(items) for part, items in datasets.items()}
print(f"{config.dataset} at {config.image_size} px: {sizes}")
augment = "on" if config.augment else "off"
print(f"{config.epochs} epochs, batch {config.batch_size}, augmentation {augment}")
print(
    f"AdamW: lr {config.lr:g}, weight decay {config.weight_decay:g}; "
    f"{config.warmup_epochs} warm-up epoch(s), then cosine"
)

# %% [markdown]
# ## 0. The whole pipeline, on one page
#
# *⏱ About 1 min: ~1 min to read (estimate: 34 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Blue boxes learn, grey ones are the frozen TAESD; dashed arrows exist only in training,
# where the three terms of the objective compare what they point at.

# %%
from wavegms.engine.viz import plot_pipeline

display(plot_pipeline())

# %% [markdown]
# ## 1. The model and its parameters
#
# *⏱ About 1 min: ~1 min to read (estimate: 78 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The paper counts **2,600,668** trainable parameters: 1,035,692 in the encoder
# (three per-level extractors of 258,204 and an aggregator of 261,080) and 1,564,976
# in the LMM. The LMM figure includes a fourth output head (4,864 parameters) that the
# authors' code builds but no loss uses; we leave it out, so we count **2,595,804**.
# TAESD's 2,445,063 parameters are frozen and not part of the model's parameters:
# they never reach the optimiser or the checkpoint.

# %%
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

# %% tags=["claims"]
# claims: the counts the text above states
assert [count(m) for m in model.encoder.extractors] == [258_204] * 3
assert count(model.encoder.aggregator) == 261_080 and count(model.encoder) == 1_035_692
assert count(model.lmm) + 4_864 == 1_564_976 and count(model) == 2_595_804
shared = {id(p) for p in vae.parameters()} & {id(p) for p in model.parameters()}
assert count(vae) == 2_445_063 and not shared

# %% [markdown]
# ## 2. One forward pass and the objective
#
# *⏱ About 2 min: ~2 min to read (estimate: 324 words at 200 words/min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# In training mode the encoder outputs a mean $\mu$ and a log-variance $\log\sigma^2$, and the
# LMM receives a *sample* (at evaluation it receives $\mu$, so predictions are deterministic):
#
# $$z = \mu + \sigma \odot \epsilon, \qquad \sigma = \exp\big(\tfrac{1}{2}\log\sigma^2\big),
# \qquad \epsilon \sim \mathcal{N}(0, I). \tag{E3}$$
#
# The LMM returns three mask latents $\hat z_1, \hat z_2, \hat z_3$ from three decoder depths
# (deep supervision); the last one is the prediction. With the masks, the model also computes
# TAESD's latents of the image $x$ (the *teacher*) and of the mask $m$ (the *target*), and
# decodes all three predictions, as notebook 02 showed:
#
# $$z_x = E(2x - 1), \qquad z_m = E(2m - 1), \tag{E4}$$
#
# $$p_k = \mathrm{clamp}\Big(\tfrac{1}{2}\big(\mathrm{mean}_c\, D(\hat z_k) + 1\big),\, 0,\, 1\Big).
# \tag{E5}$$
#
# The objective adds three terms, all with weight 1, the first two summed over the heads:
#
# $$\mathcal{L} = \underbrace{\sum_{k=1}^{3} \mathrm{MSE}(\hat z_k, z_m)}_{\text{latent}}
# + \underbrace{\sum_{k=1}^{3} \mathcal{L}_{\mathrm{Dice}}(p_k, m)}_{\text{mask}}
# + \underbrace{0.9\,\big(1 - \overline{\cos}(z, z_x)\big)
# + 0.1\,\mathrm{SmoothL1}(z, z_x)}_{\text{align}}
# \tag{E6}$$
#
# where $\overline{\cos}$ is the cosine similarity over the 4 channels, averaged over the
# latent positions, and the soft Dice loss of probabilities $p$ against a mask $m$, for a
# batch of $B$ images with pixels $i$, is
#
# $$\mathcal{L}_{\mathrm{Dice}}(p, m) = \frac{1}{B} \sum_{b=1}^{B} \left(1 -
# \frac{2 \sum_i p_{b,i}\, m_{b,i} + s}{\sum_i p_{b,i} + \sum_i m_{b,i} + s}\right),
# \qquad s = 10^{-5}. \tag{E7}$$
#
# - **latent**: learn the mask latent directly;
# - **mask**: what we finally care about, the overlap with the true mask, with gradients
#   flowing *through* the frozen decoder;
# - **align**: pulls the encoder's latent towards TAESD's latent of the same image. The small
#   encoder thereby borrows structure from a network trained on millions of images, and the
#   LMM receives inputs that live in a known, well-behaved space (GMS, the predecessor, fed its
#   LMM the image latents of a large frozen Stable Diffusion VAE directly). It acts as
#   distillation and as a regulariser, which matters with a few hundred images.
#
# There is no KL term: the encoder is VAE-shaped, but the alignment replaces the prior.
# (The equation numbers are this project's, listed in docs/paper_map.md.)

# %%
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


# %% [markdown]
# ## 2b. Inside the LMM: one block
#
# *⏱ About 17 min: ~17 min to read and do (estimate: 373 words at 200 words/min + 3 exercises at 5 min), 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The LMM is a small UNet that never changes resolution: every stage is a **residual
# block** (two 3 x 3 convolutions that refine local shape, added to their input) followed
# by **spatial self-attention**, where every latent position looks at every other one, so
# that a lesion's border can depend on the whole image. For a latent $x$ with $c$ channels
# and $h w$ positions, a GroupNorm and four 1 x 1 convolutions $W_q, W_k, W_v, W_o$:
#
# $$Q = W_q\,\mathrm{GN}(x),\quad K = W_k\,\mathrm{GN}(x),\quad V = W_v\,\mathrm{GN}(x)
# \qquad (hw \times c \text{ each: one row per position}),$$
#
# $$\mathrm{Attn}(x) = x + W_o\left(\mathrm{softmax}\Big(\frac{Q K^\top}{\sqrt{c}}\Big)\,
# V\right),$$
#
# the softmax taken over each row: every position's weights over all positions sum to 1.
#
# ### Exercise 1: write the attention
#
# Complete `attention` from the formula: the scaffold names the intermediates and their
# shapes (`x.flatten(2)` gives `[B, c, h*w]`; `.transpose(1, 2)` swaps its last two axes). The
# check builds a `wavegms.lmm.SpatialSelfAttention` with random weights, passes you its parts
# and compares your output with the layer's on a rectangular latent.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
def attention(x, norm, q, k, v, proj):
    """Spatial self-attention with its residual: x [B, c, h, w] -> [B, c, h, w].

    norm is the block's GroupNorm; q, k, v and proj are 1 x 1 convolutions from c to c.
    """
    b, c, h, w = x.shape
    queries = keys = values = ...  # each [B, h*w, c]: q, k, v of norm(x), a row per position
    weights = ...  # [B, h*w, h*w]: softmax over the last axis of queries keys^T / sqrt(c)
    attended = ...  # [B, c, h, w]: weights @ values, put back in the layout of x
    out = ...  # x + proj(attended)
    # BEGIN SOLUTION
    x_norm = norm(x)
    queries, keys, values = (f(x_norm).flatten(2).transpose(1, 2) for f in (q, k, v))
    weights = torch.softmax(queries @ keys.transpose(1, 2) / c**0.5, dim=-1)
    attended = (weights @ values).transpose(1, 2).reshape(b, c, h, w)
    out = x + proj(attended)
    # END SOLUTION
    return out


# %% tags=["check"]
from wavegms.course.exercises.training import check_attention

check_attention(attention)

# %% [markdown]
# ### Exercise 2: write the objective
#
# Write the objective (E6) for a forward pass's `output` and the `masks`, with the soft Dice
# loss (E7) written out (a few tensor sums; `torch.nn.functional` has `mse_loss`,
# `cosine_similarity` and `smooth_l1_loss`). The check runs your function on a random
# output of three images, one of them with an empty mask, and compares each term with
# `wavegms.losses.WaveGMSLoss`; an objective that calls `WaveGMSLoss` is refused.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
import torch.nn.functional as F


def objective(output, masks):
    """The loss terms of (E6): a dict of scalar tensors "latent", "mask", "align", "total".

    output.mask_latents: 3 x [B, 4, h, w]; output.mask_latent (the target z_m), output.latent
    (z) and output.teacher_latent (z_x): [B, 4, h, w]; output.mask_probs: [3, B, 1, H, W] in
    [0, 1]; masks: [B, 1, H, W] in {0, 1}.
    """
    latent = ...  # the sum over the 3 heads of the MSE against output.mask_latent
    mask = ...  # the sum over the 3 heads of the soft Dice loss (E7) against masks
    align = ...  # 0.9 (1 - mean cosine over the channels) + 0.1 SmoothL1, z against z_x
    total = ...
    # BEGIN SOLUTION
    latent = sum(F.mse_loss(z, output.mask_latent) for z in output.mask_latents)
    s, pixels = 1e-5, (1, 2, 3)
    mask = 0
    for probs in output.mask_probs:  # [B, 1, H, W] per head
        overlap = 2 * (probs * masks).sum(pixels) + s
        mask = mask + (1 - overlap / (probs.sum(pixels) + masks.sum(pixels) + s)).mean()
    z, teacher = output.latent, output.teacher_latent
    cosine = F.cosine_similarity(z, teacher, dim=1)  # [B, h, w]
    align = 0.9 * (1 - cosine).mean() + 0.1 * F.smooth_l1_loss(z, teacher)
    total = latent + mask + align
    # END SOLUTION
    return {"latent": latent, "mask": mask, "align": align, "total": total}


# %% tags=["check"]
from wavegms.course.exercises.training import check_objective

check_objective(objective)


# %% [markdown]
# ### Exercise 3: one optimisation step
#
# Write one step of training: clear the gradients left by the previous step, run the model
# on `images` and `masks` (in training mode it samples $z$ and returns what the objective
# needs), compute the loss terms with `WaveGMSLoss()`, backpropagate `total`, and let the
# optimiser update the weights. Return the loss terms. The check runs your step and the
# engine's (what `train()` calls) on two copies of the model that hold the gradients of an
# earlier batch, as in training, from the same random state, and compares the weights after
# the update.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
def step(model, optimizer, images, masks):
    """One optimisation step of (E6); returns the dict of loss terms."""
    losses = ...  # WaveGMSLoss()(model(images, masks), masks), once old gradients are cleared
    # BEGIN SOLUTION
    optimizer.zero_grad()
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["total"].backward()
    optimizer.step()
    # END SOLUTION
    return losses


# %% tags=["check"]
from wavegms.course.exercises.training import check_step

check_step(step, model, images, masks, lr=config.lr, weight_decay=config.weight_decay)
_ = model.eval()  # back to evaluation mode (and no module listing printed)

# %% [markdown]
# ## 3. Train, and watch
#
# *⏱ About 7 min: ~6 min to read and do (estimate: 261 words at 200 words/min + 1 exercise at 5 min), 30 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# `wavegms.engine.train.train` runs the whole loop: AdamW (the setup cell printed this run's
# learning rate and weight decay; the paper: lr 2e-3, weight decay 0.01, 5 warm-up epochs), a
# warm-up then a cosine schedule stepped once per epoch, validation after each epoch, and
# checkpoints in a run folder (`best/` by validation Dice, `last/` with everything needed to
# resume). With base rate $\eta$, $W$ warm-up epochs and $E$ epochs, epoch $e = 0, \dots, E-1$
# trains at
#
# $$\eta_e = \eta \cdot \begin{cases} \dfrac{e + 1}{W + 1} & e < W \\[6pt]
# \dfrac{1}{2}\left(1 + \cos \dfrac{\pi\,(e - W)}{E - W}\right) & e \ge W \end{cases}
# \qquad \text{with } W \text{ capped at } E - 1.$$
#
# The warm-up starts above zero (the authors' starts at 0, and their first epoch learns
# nothing), and the cap leaves at least one epoch at the full rate.
#
# ### Exercise 4: the schedule
#
# Write `lr_at` from the formula. The check compares it with `wavegms.engine.schedule` at
# every epoch of a short run, a long one, a run whose warm-up is as long as the run, and one
# without warm-up.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
import math


def lr_at(epoch, base_lr, warmup_epochs, epochs):
    """The learning rate of the 0-based `epoch` (a float)."""
    warmup = ...  # warmup_epochs, capped at epochs - 1
    lr = ...
    # BEGIN SOLUTION
    warmup = min(warmup_epochs, epochs - 1)
    if epoch < warmup:
        lr = base_lr * (epoch + 1) / (warmup + 1)
    else:
        lr = base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))
    # END SOLUTION
    return lr


# %% tags=["check"]
from wavegms.course.exercises.training import check_schedule

check_schedule(lr_at)

# %% [markdown]
# `train` accepts **callbacks**, called after every epoch with the model in evaluation
# mode. We use two: one keeps the predictions for four validation images (snapshots), one
# redraws the curves while training runs. (The quick mode trains without augmentation: over
# a few epochs it only slows learning down; in a full run it is what keeps the model from
# memorising the training set.) If this run was already trained in `OUT_DIR`, it is reused,
# not trained again.

# %% tags=["train"]
n_watch = min(4, len(datasets["val"]))  # a few validation images to watch
watch = torch.utils.data.default_collate([datasets["val"][i] for i in range(n_watch)])
watch_images = watch["image"].to(device)
with torch.no_grad():
    _, target_latents = model.encode_targets(watch_images, watch["mask"].to(device))


class Snapshots:
    """A train() callback keeping the predictions for the watched images."""

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
    """A train() callback redrawing the curves in place as epochs end."""

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

# %% [markdown]
# ## 4. The curves, and which checkpoint to keep
#
# *⏱ About 1 min: ~1 min to read (estimate: 106 words at 200 words/min), under 1 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The training loss falls and the validation Dice rises (the cell below checks both on this
# run; over a long run the Dice rises noisily). The run keeps as `best/` the epoch with the highest **validation** Dice. Why not
# the test split? The published code picks its checkpoint on the test split, and then reports
# the test score of that checkpoint: the test images have helped choose the model, so the
# number is optimistic (it is the maximum over many noisy epochs). Here the test split is
# touched once, in notebook 04, by a model chosen without it.

# %% tags=["curves"]
from wavegms.engine.schedule import lr_factor

history = course.read_history(run_dir)
if curves.handle is None:  # a reused run: the live figure above was not drawn
    display(plot_training_curves(history))
validated = [r for r in history if r.get("val_dice") is not None]
best = max(validated, key=lambda r: r["val_dice"])
print(f"best validation Dice {best['val_dice']:.3f} at epoch {best['epoch']}: {run_dir / 'best'}")
print("learning rate per epoch (log.jsonl):", ", ".join(f"{r['lr']:.3g}" for r in history))
seconds = sum(r["train_time_s"] for r in history) / len(history)
print(f"{seconds:.1f} s of training per epoch on {device}")

# %% tags=["claims"]
# claims: the loss fell, the validation Dice rose, and the rate followed the schedule above
assert history[-1]["train_loss"] < history[0]["train_loss"], history
assert best["val_dice"] > validated[0]["val_dice"], validated
factors = [lr_factor(e, config.warmup_epochs, config.epochs) for e in range(config.epochs)]
schedule = [config.lr * factor for factor in factors]
assert all(math.isclose(r["lr"], lr, rel_tol=1e-6) for r, lr in zip(history, schedule))

# %% [markdown]
# ## 5. Watching it learn
#
# *⏱ About 1 min: ~1 min to read (estimate: 153 words at 200 words/min), 6 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# Each row is one snapshot: the decoded probability for four validation images, each titled
# with its Dice at threshold 0.5. The untrained model (epoch 0) outputs a texture unrelated to
# the lesions; by the last epoch the predictions overlap the true outlines (green) far better,
# on average, than the best constant mask does (the cell prints both, and checks it). Since
# no single place would score well, the model has learned what a lesion looks like, not only
# where lesions usually are. The titles give each image's Dice: look for the lesions it still
# misses. (If the run was reused from an earlier execution, the snapshots saved with it are
# shown.)

# %%
from wavegms.engine.checkpoint import atomic_torch_save
from wavegms.engine.metrics import dice_iou
from wavegms.engine.prior import constant_mask_prior, prior_dice

saved = run_dir / "snapshots.pt"
if len(snapshots.epochs) > 1:
    atomic_torch_save(vars(snapshots), saved)
elif saved.is_file():  # a reused run: its snapshots were saved when it was trained
    vars(snapshots).update(torch.load(saved, weights_only=True))
truth = watch["mask"] > 0.5
scores = [dice_iou(probs > 0.5, truth)[0] for probs in snapshots.probs]
train_masks = torch.stack([datasets["train"][i]["mask"] for i in range(len(datasets["train"]))])
constant = prior_dice(*constant_mask_prior(train_masks), watch["mask"])  # one mask for all
for epoch, dice in zip(snapshots.epochs, scores):
    print(f"epoch {epoch}: mean Dice {dice.mean():.3f} on the {n_watch} watched images")
print(f"the best constant mask (notebook 04): mean Dice {constant.mean():.3f} on them")

rows = len(snapshots.epochs) + 1
fig, axes = plt.subplots(rows, n_watch, figsize=(1.9 * n_watch, 1.9 * rows), squeeze=False)
for col in range(n_watch):
    axes[0, col].imshow(watch["image"][col].permute(1, 2, 0))
    axes[0, col].contour(truth[col, 0], levels=[0.5], colors="lime", linewidths=1)
    axes[0, col].set_title("image + true outline", fontsize=8)
    for row, (epoch, probs) in enumerate(zip(snapshots.epochs, snapshots.probs), 1):
        axes[row, col].imshow(probs[col, 0], cmap="gray", vmin=0, vmax=1)
        axes[row, col].contour(truth[col, 0], levels=[0.5], colors="lime", linewidths=0.6)
        axes[row, col].set_title(f"epoch {epoch}: Dice {scores[row - 1][col]:.2f}", fontsize=8)
for ax in axes.flat:
    ax.set_axis_off()
fig.tight_layout()
plt.show()

# %% tags=["claims"]
# claims: by the last epoch the model beats both its untrained self and the constant mask
if len(snapshots.epochs) > 1:
    assert scores[-1].mean() > scores[0].mean() + 0.2, [s.mean() for s in scores]
    assert scores[-1].mean() > constant.mean() + 0.2, (scores[-1].mean(), constant.mean())

# %% [markdown]
# The model predicts latents, not pixels: compare the predicted latent (one channel)
# with the target, the TAESD latent of the true mask. Pick an epoch and a channel with the
# sliders (without widgets: the last epoch, channel 1).

# %%
from wavegms.course.widgets import browse


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


browse(
    draw_snapshot,
    {"epoch": snapshots.epochs, "channel": [0, 1, 2, 3]},
    static={"epoch": snapshots.epochs[-1], "channel": 1},  # draw_snapshot's own defaults
)

# %% [markdown]
# ## 5b. Your model and the pretrained one, on the same real scans
#
# *⏱ About 1 min: ~1 min to read (estimate: 142 words at 200 words/min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# The quick model learned from synthetic images. wavegms also ships a model trained on real
# BUSI scans (its model card: `wavegms/pretrained/busi/README.md`), and a few BUSI sample scans
# with their masks. Both models segment four of the samples below (yours at its own input size,
# the probabilities resized back). A model trained on synthetic images scores far below the
# one trained on real scans (checked below when your run is synthetic): what a model learns
# depends on what it was shown.
#
# The samples are **validation** images of the pretrained model: it never trained on them,
# but they chose its checkpoint, so its score on them is optimistic. Its model card
# (`wavegms/pretrained/busi/README.md`) gives its score on the 130 BUSI test images, which
# were never on the training machine and are scored independently.

# %%
from wavegms.course.samples import load_samples
from wavegms.engine.checkpoint import load_model
from wavegms.pretrained import list_pretrained, load_pretrained

if "busi" in list_pretrained():
    pretrained = load_pretrained("busi", device=device)
    ours = load_model(run_dir, device=device, tiny_vae=vae)
    samples = load_samples("busi", image_size=pretrained.config.image_size)
    real = [s for s in samples if s["mask"].any()][:4]  # four lesions
    real_images = torch.stack([r["image"] for r in real])
    real_masks = torch.stack([r["mask"] for r in real]) > 0.5
    small = F.interpolate(real_images, size=config.image_size, mode="bilinear", antialias=True)
    yours = ours.predict(small.to(device)).cpu()
    probs = {  # short name: (what it is, probabilities at 224 px)
        "yours": (
            f"your model ({config.dataset}, {config.image_size} px)",
            F.interpolate(yours, size=real_images.shape[-2:], mode="bilinear"),
        ),
        "pretrained": (
            f"pretrained BUSI model ({pretrained.config.image_size} px)",
            pretrained.predict(real_images.to(device)).cpu(),
        ),
    }
    real_dice = {}
    fig, axes = plt.subplots(3, len(real), figsize=(2.6 * len(real), 8.4), squeeze=False)
    for col, item in enumerate(real):
        axes[0, col].imshow(item["image"].permute(1, 2, 0))
        axes[0, col].contour(real_masks[col, 0], levels=[0.5], colors="lime", linewidths=1)
        axes[0, col].set_title(item["name"], fontsize=9)
    for row, (short, (label, p)) in enumerate(probs.items(), 1):
        real_dice[short] = dice = dice_iou(p > 0.5, real_masks)[0]
        print(f"{label}: mean Dice {dice.mean():.3f} on these {len(real)} BUSI samples")
        for col in range(len(real)):
            axes[row, col].imshow(p[col, 0], cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{short}: Dice {dice[col]:.2f}", fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()
    plt.show()
else:
    print("This installation has no pretrained BUSI model (wavegms.pretrained.list_pretrained()")
    print("is empty): update wavegms to get it.")

# %% tags=["claims"]
# claims: on real scans the model trained on synthetic images scores far below the BUSI model
if "busi" in list_pretrained() and session.synthetic:
    assert real_dice["pretrained"].mean() > real_dice["yours"].mean() + 0.2, real_dice

# %% [markdown]
# ## 6. Where the computation goes
#
# *⏱ About 18 min: ~18 min to read and do (estimate: 514 words at 200 words/min + 3 exercises at 5 min), 2 s of computing (quick profile, measured on a 2-core Intel Xeon CPU).*
#
# A training step runs the frozen TAESD three times: it encodes the mask and the image (no
# gradient), and it decodes the three heads at full resolution, with gradients flowing back
# through the decoder for the Dice term. The cell below counts the floating-point operations
# of one step with PyTorch's `FlopCounterMode`, and those of the trainable encoder and LMM
# alone (forward and backward): most of the arithmetic is the frozen TAESD's, while the
# 2.6M trainable parameters are the cheap part. This is why the quick mode uses 64 px images,
# and why a GPU helps so much.

# %%
from torch.utils.flop_counter import FlopCounterMode


def flops(run):
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops()


def whole_step():  # what a training step computes: forward, objective, backward
    WaveGMSLoss()(model(images, masks), masks)["total"].backward()


def trainable_parts():  # the encoder and the LMM alone, forward and backward
    mu, logvar = model.encoder(images)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    sum(head.sum() for head in model.lmm(z)).backward()


model.train()
step_flops, trainable_flops = flops(whole_step), flops(trainable_parts)
model.zero_grad(set_to_none=True)
_ = model.eval()
taesd_share = 1 - trainable_flops / step_flops
print(
    f"one training step, batch {len(images)} at {config.image_size} px: "
    f"{step_flops / 1e9:.1f} GFLOP, {taesd_share:.0%} of them in the frozen TAESD"
)

# %% tags=["claims"]
assert taesd_share > 0.5, taesd_share  # "most of the arithmetic"

# %% [markdown]
# ### Exercise 5
#
# The authors' code predicts from a **sampled** latent $z = \mu + \sigma\epsilon$ (E3) even at
# test time; we use $\mu$. Load the trained model, decode 8 samples for the watched images
# with the noise `noise[0]`, ..., `noise[7]` given below (so that the check can recompute your
# number), and measure the fraction of pixels whose label (probability > 0.5) is not the same
# in all 8 samples. What does this say about reporting results from sampled predictions?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
trained = load_model(run_dir, device=device, tiny_vae=vae)
with torch.no_grad():
    mu, logvar = trained.encoder(watch_images)
generator = torch.Generator().manual_seed(SEED)
noise = torch.randn(8, *mu.shape, generator=generator).to(device)  # 8 draws of eps
disagree = ...  # the fraction of pixels whose label differs between the 8 samples
# BEGIN SOLUTION
with torch.no_grad():
    sigma = torch.exp(0.5 * logvar)
    labels = torch.stack([trained.decode(trained.lmm(mu + sigma * eps)[-1]) > 0.5 for eps in noise])
disagree = (labels != labels[0]).any(0).float().mean().item()
print(f"mean sigma {sigma.mean():.3f}")
print(f"{disagree:.2%} of pixels change label between samples")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises.training import check_sampling

check_sampling(disagree, trained, watch_images, noise)

# %% [markdown]
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# Wherever samples disagree (the check printed the fraction for this run), a score computed
# from one sample is itself random: running the same evaluation twice gives different numbers,
# and picking the best run inflates them. The spread shrinks as training makes $\sigma$ small,
# and it is there as long as $\sigma$ is not 0. With $\mu$, the prediction is a deterministic
# function of the image: evaluations are reproducible.
#
# </details>

# %% [markdown]
# ### Exercise 6
#
# Halve the LMM's width: `WaveGMS(vae, lmm_base_channels=16)`. What share of its
# parameters does the LMM keep, and why is it about a quarter rather than a half?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
share = ...  # parameters of the narrow LMM / parameters of the paper's LMM
# BEGIN SOLUTION
narrow = WaveGMS(vae, image_size=config.image_size, lmm_base_channels=16)
share = count(narrow.lmm) / count(model.lmm)
print(f"LMM: {count(model.lmm):,} -> {count(narrow.lmm):,} ({share:.0%})")
print(f"total: {count(model):,} -> {count(narrow):,}")
# END SOLUTION

# %% tags=["check"]
from wavegms.course.exercises.training import check_narrow_share

check_narrow_share(share)

# %% [markdown]
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# A convolution from $C_{in}$ to $C_{out}$ channels has about $9\,C_{in} C_{out}$ weights, so
# halving every width divides the count by about 4 (the attention's 1 x 1 convolutions scale
# the same way). The LMM keeps about a quarter: it loses about 75%. The encoder is untouched,
# so the total drops from 2.6M to about 1.4M (the cell below checks these numbers).
#
# </details>

# %% tags=["claims"]
from wavegms.lmm import LatentMappingModel

narrow_lmm = LatentMappingModel(base_channels=16)  # the LMM of WaveGMS(lmm_base_channels=16)
assert abs(count(narrow_lmm) / count(model.lmm) - 0.25) < 0.01
assert round(count(model) / 1e6, 1) == 2.6
assert round((count(model.encoder) + count(narrow_lmm)) / 1e6, 1) == 1.4

# %% [markdown]
# ### Exercise 7
#
# (On a GPU.) Train longer: set `EPOCHS = 100` (and `QUICK = False` for augmentation)
# and run the notebook again. How does the gap between the training loss and the
# validation Dice behave? How would you continue an interrupted run?
#
# <details><summary><b>Show the answer</b> (try first!)</summary>
#
# With more epochs the validation Dice keeps rising long after the quick mode stops,
# then flattens while the training loss still falls: the model starts fitting the
# training images more than it generalises. That is why `best/` (chosen on validation)
# and `last/` can differ. An interrupted run is continued exactly where it stopped by
# running this notebook again with the same parameters: it resumes the run folder of the
# same settings (in Colab after a disconnect too, with `DRIVE_RUNS = True`; from a terminal, `wavegms train --out RUN_DIR --resume` does the same, and
# `--resume --epochs N` extends a finished run).
#
# </details>

# %% [markdown]
# ## Summary
#
# *⏱ About 1 min: ~1 min to read (estimate: 84 words at 200 words/min).*
#
# - Wave-GMS trains 2.6M parameters (encoder ~1.0M, LMM ~1.6M) around a frozen 2.4M TAESD.
# - The objective (E6): latent MSE + Dice (E7) through the decoder, on three heads, plus the
#   alignment of the encoder's latent with TAESD's latent of the image.
# - You wrote the attention, the objective, the step and the schedule; the library's
#   versions are `wavegms.lmm.SpatialSelfAttention`, `wavegms.losses.WaveGMSLoss`,
#   `wavegms.engine.train.optimisation_step` and `wavegms.engine.schedule`.
# - The run folder keeps `best/` by validation Dice and `last/` for resuming.
#
# Next, **04 · Evaluation** measures the chosen model on the test split, honestly.
