# %% [markdown]
# # 03 · Training the Latent Mapping Model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/wavegms/wavegms/blob/main/notebooks/student/03_lmm_training.ipynb)
#
# Time to put the pieces together. The **wavelet encoder** (notebook 01) turns an
# image into a latent at 1/8 of its size; the **Latent Mapping Model (LMM)**, a small
# UNet with attention that never changes resolution, maps that latent to the **mask
# latent** (notebook 02); the frozen TAESD decoder turns it into a mask. Only the
# encoder and the LMM learn.
#
# **In the paper.** This notebook teaches the whole pipeline: the multi-resolution encoder, the latent mapping model (residual blocks + spatial self-attention, deep supervision), the training objective (latent MSE + Dice through the frozen decoder + latent alignment) and the optimisation settings. [docs/paper_map.md](https://github.com/wavegms/wavegms/blob/main/docs/paper_map.md) names the paper's section and
# equation for each function it uses.
#
# **Learning objectives.** After this notebook you can:
# - build Wave-GMS and account for its ~2.6M trainable parameters, module by module
# - name the three terms of the training objective and say what each one is for
# - train the model with a live progress bar and loss curves
# - watch predicted mask latents and decoded masks improve across epochs
# - explain why the best checkpoint is chosen on validation data, never on test data
#
# **Time.** CPU quick mode (the defaults): about 52 s (48.8-53.0 s in three runs of `wavegms course`, alone on a 2-core CPU, kernel start included). Colab T4, full run: about 25 minutes for 300 epochs of BUSI at 224 px, batch 12 (estimate: ~0.1 s per training step on a T4, 39 steps and a validation pass per epoch) (an estimate, not a measurement).

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
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import display

from wavegms import WaveGMS, load_tiny_vae
from wavegms.engine.curves import plot_training_curves
from wavegms.losses import WaveGMSLoss
from wavegms.engine.run_data import build_datasets

vae = load_tiny_vae(device=device)
config = course.course_config(
    session, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, quick=QUICK
)
datasets, splits = build_datasets(config)
sizes = {part: len(items) for part, items in datasets.items()}
print(f"{config.dataset} at {config.image_size} px: {sizes}")
print(f"{config.epochs} epochs, batch {config.batch_size}, lr {config.lr}")
print(f"augmentation: {'on' if config.augment else 'off (quick mode)'}")

# %% [markdown]
# ## 0. The whole pipeline, on one page
#
# Blue boxes learn, grey ones are the frozen TAESD; dashed arrows exist only in training,
# where the three terms of the objective compare what they point at.

# %%
from wavegms.engine.viz import plot_pipeline

display(plot_pipeline())

# %% [markdown]
# ## 1. The model and its parameters
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

# %% [markdown]
# ## 2. One forward pass and the objective
#
# In training mode the encoder outputs a mean $\mu$ and a log-variance, and the LMM
# receives a *sample* $z = \mu + \sigma \epsilon$ (at evaluation it receives $\mu$, so
# predictions are deterministic). The LMM returns three mask latents, from three
# decoder depths (deep supervision); the last one is the prediction. With the masks,
# the model also computes TAESD's latents of the image (the *teacher*) and of the mask
# (the *target*), and decodes all three predictions.
#
# The loss adds, with all weights 1:
#
# - **latent**: the mean squared error between each predicted mask latent and the
#   target: learn the latent directly;
# - **mask**: the soft Dice loss between each decoded prediction and the true mask:
#   what we finally care about, with gradients flowing *through* the frozen decoder;
# - **align**: $0.9\,(1 - \cos(z, z_{teacher})) + 0.1\,\mathrm{SmoothL1}(z, z_{teacher})$:
#   pulls the encoder's latent towards TAESD's latent of the same image. The small
#   encoder thereby borrows structure from a network trained on millions of images,
#   and the LMM receives inputs that live in a known, well-behaved space (GMS, the
#   predecessor, fed its LMM the image latents of a large frozen Stable Diffusion
#   VAE directly). It acts as
#   distillation and as a regulariser, which matters with a few hundred images.
#
# There is no KL term: the encoder is VAE-shaped, but the alignment replaces the prior.

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
# ## 2b. Inside the LMM: one block in a few lines
#
# The LMM is a small UNet that never changes resolution: every stage is a **residual
# block** (two 3 x 3 convolutions that refine local shape, added to their input) followed
# by **spatial self-attention**, where every latent position looks at every other one, so
# that a lesion's border can depend on the whole image. Written out, one block is:

# %%
import torch.nn.functional as F
from torch import nn

from wavegms.lmm import ResAttentionBlock


class Block(nn.Module):
    """One LMM block: x + res(x), then x + attention(x). Shapes stay [B, c, h, w]."""

    def __init__(self, c):
        super().__init__()
        self.res = nn.Sequential(
            nn.GroupNorm(16, c, eps=1e-6), nn.PReLU(), nn.Conv2d(c, c, 3, padding=1),
            nn.GroupNorm(16, c, eps=1e-6), nn.PReLU(), nn.Conv2d(c, c, 3, padding=1),
        )  # fmt: skip
        self.norm = nn.GroupNorm(16, c, eps=1e-6)
        self.qkv, self.proj = nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        x = x + self.res(x)  # the residual block
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1)  # [B, hw, c]
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        return x + self.proj(attended.transpose(1, 2).reshape(b, c, h, w))


# The library's block with the same weights gives the same output.
library = ResAttentionBlock(64, 64).eval()
mine = Block(64).eval()
residual, attention = library
mine.res.load_state_dict(residual.block.state_dict())
mine.norm.load_state_dict(attention.norm.state_dict())
mine.proj.load_state_dict(attention.proj.state_dict())
with torch.no_grad():
    mine.qkv.weight.copy_(torch.cat([attention.q.weight, attention.k.weight, attention.v.weight]))
    mine.qkv.bias.copy_(torch.cat([attention.q.bias, attention.k.bias, attention.v.bias]))
    x = torch.randn(2, 64, 8, 8)
    print(
        "same output as wavegms.lmm.ResAttentionBlock:",
        torch.allclose(mine(x), library(x), atol=1e-4),
    )
print(f"{count(mine):,} parameters at 64 channels (library: {count(library):,})")


# %% [markdown]
# ### Exercise 1: write the objective
#
# Write the Wave-GMS objective from the description in section 2, for the `output` and
# `masks` of the forward pass above: `latent` (the MSE of each of the three predicted
# mask latents against the target, summed over the heads), `mask` (the soft Dice loss,
# smooth 1e-5 on both sides, of each decoded head against the mask, averaged over the
# images, summed over the heads), `align` (0.9 times the mean over positions of
# 1 - cosine similarity over the 4 channels, plus 0.1 times the SmoothL1 loss, between
# `output.latent` and `output.teacher_latent`) and `total`, their sum. Hints:
# `torch.nn.functional` has `mse_loss`, `cosine_similarity` and `smooth_l1_loss`;
# `monai.losses.DiceLoss` computes the soft Dice loss.
#
# Write your answer in the next cell; the cell after it checks it against
# `wavegms.losses.WaveGMSLoss`.

# %% tags=["solution"]
def objective(output, masks):
    """The Wave-GMS loss terms: a dict with "latent", "mask", "align" and "total"."""
    # BEGIN SOLUTION
    from monai.losses import DiceLoss

    dice = DiceLoss(smooth_nr=1e-5, smooth_dr=1e-5)  # per image, averaged over the batch
    latent = sum(F.mse_loss(z, output.mask_latent) for z in output.mask_latents)
    mask = sum(dice(probs, masks) for probs in output.mask_probs)
    z, teacher = output.latent, output.teacher_latent
    cosine = F.cosine_similarity(z, teacher, dim=1)  # [B, h, w]
    align = 0.9 * (1 - cosine).mean() + 0.1 * F.smooth_l1_loss(z, teacher)
    return {"latent": latent, "mask": mask, "align": align, "total": latent + mask + align}
    # END SOLUTION


# %% tags=["check"]
from wavegms.course.exercises import check, close

reference = WaveGMSLoss()(output, masks)
mine = objective(output, masks)
check(
    "Exercise 1",
    mine,
    lambda answer: close({key: answer[key] for key in reference}, reference, rtol=1e-4),
    success="Your objective equals WaveGMSLoss term by term.",
)


# %% [markdown]
# ### Exercise 2: one optimisation step
#
# Write one step of training: clear the gradients, run the model on `images` and `masks`
# (in training mode it samples `z` and returns what the objective needs), compute the loss
# with `WaveGMSLoss()`, backpropagate `total`, and let the optimiser update the weights.
# Return the loss terms. The check runs your step and `wavegms.engine.train.optimisation_step`
# (what `train()` calls) on two copies of the model, from the same random state, and
# compares the weights after the update.
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
def step(model, optimizer, images, masks):
    """One optimisation step; returns the dict of loss terms."""
    # BEGIN SOLUTION
    optimizer.zero_grad()
    losses = WaveGMSLoss()(model(images, masks), masks)
    losses["total"].backward()
    optimizer.step()
    return losses
    # END SOLUTION


# %% tags=["check"]
import copy

from wavegms.engine.train import optimisation_step


def after_one_step(run):
    net = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    torch.manual_seed(SEED)  # the same noise in z for both
    losses = run(net, optimizer)
    return losses, torch.cat([p.detach().flatten() for p in net.parameters()])


mine, mine_weights = after_one_step(lambda net, opt: step(net, opt, images, masks))
_, weights = after_one_step(
    lambda net, opt: optimisation_step(net, WaveGMSLoss(), opt, images, masks)
)
check(
    "Exercise 2",
    None if mine is None else mine_weights,
    lambda answer: close(answer, weights, rtol=1e-4, atol=1e-6),
    success="After your step the weights equal those after the engine's step.",
)
_ = model.eval()  # back to evaluation mode (and no module listing printed)

# %% [markdown]
# ## 3. Train, and watch
#
# `wavegms.engine.train.train` runs the whole loop: AdamW (lr 2e-3, weight decay 0.01), a
# warm-up then a cosine schedule, validation after each epoch, and checkpoints in a
# run folder (`best/` by validation Dice, `last/` with everything needed to resume).
# It accepts **callbacks**, called after every epoch with the model in evaluation
# mode. We use two: one keeps the predictions for four validation images (snapshots),
# one redraws the curves while training runs.
#
# (The quick mode trains without augmentation: over a few epochs it only slows learning
# down; in a full run it is what keeps the model from memorising the training set.)
# If this run was already trained in `OUT_DIR`, it is reused, not trained again.

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
# All losses should fall; the validation Dice should rise, noisily. The run keeps as
# `best/` the epoch with the highest **validation** Dice. Why not the test split? The
# published code picks its checkpoint on the test split, and then reports the test
# score of that checkpoint: the test images have helped choose the model, so the
# number is optimistic (it is the maximum over many noisy epochs). Here the test split
# is touched once, in notebook 04, by a model chosen without it.

# %% tags=["curves"]
history = course.read_history(run_dir)
if curves.handle is None:  # a reused run: the live figure above was not drawn
    display(plot_training_curves(history))
validated = [r for r in history if r.get("val_dice") is not None]
best = max(validated, key=lambda r: r["val_dice"])
print(f"best validation Dice {best['val_dice']:.3f} at epoch {best['epoch']}: {run_dir / 'best'}")
seconds = sum(r["train_time_s"] for r in history) / len(history)
print(f"{seconds:.1f} s of training per epoch on {device}")

# %% [markdown]
# ## 5. Watching it learn
#
# Each row is one snapshot: the decoded probability for four validation images. At
# epoch 0 the untrained model outputs noise. In the quick run (seed 0) it then learns
# "background everywhere" (epochs 1-2: Dice 0); at epoch 3 faint blobs appear where the
# lesions are, still below the 0.5 threshold (Dice 0), and at epochs 4-5 they are bright,
# in a different place in each image: it has learned what a lesion looks like, since no
# single place would do (a constant mask scores Dice ~0.1 here, notebook 04). After 80
# steps the blobs are rounder than the lesions, and a small lesion near the border is
# still missed. (If the run was reused from
# an earlier execution, only the snapshots saved with it are shown.)

# %%
from wavegms.engine.checkpoint import atomic_torch_save
from wavegms.engine.metrics import dice_iou

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

# %% [markdown]
# The model predicts latents, not pixels: compare the predicted latent (one channel)
# with the target, the TAESD latent of the true mask. Pick an epoch with the slider.

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
    static={"epoch": snapshots.epochs[-1]},  # the trained model first
)

# %% [markdown]
# ## 5b. Your model and the pretrained one, on the same real scans
#
# The quick model learned from synthetic images. wavegms also ships a model trained on real
# BUSI scans (see `wavegms/pretrained/busi/README.md`), and a few BUSI sample scans with
# their masks. Both models segment the same samples below (yours at its own input size,
# the probabilities resized back): what a model learns depends on what it was shown.

# %%
from wavegms.engine.checkpoint import load_model
from wavegms.engine.metrics import dice_iou
from wavegms.pretrained import list_pretrained, load_pretrained
from wavegms.course.samples import load_samples

if "busi" in list_pretrained():
    pretrained = load_pretrained("busi", device=device)
    ours = load_model(run_dir, device=device, tiny_vae=vae)
    real = load_samples("busi", image_size=pretrained.config.image_size)[:4]
    real_images = torch.stack([r["image"] for r in real])
    real_masks = torch.stack([r["mask"] for r in real]) > 0.5
    small = F.interpolate(real_images, size=config.image_size, mode="bilinear", antialias=True)
    probs = {
        f"your model ({config.dataset}, {config.image_size} px)": F.interpolate(
            ours.predict(small.to(device)).cpu(), size=real_images.shape[-2:], mode="bilinear"
        ),
        f"pretrained BUSI model ({pretrained.config.image_size} px)": pretrained.predict(
            real_images.to(device)
        ).cpu(),
    }
    fig, axes = plt.subplots(3, len(real), figsize=(2.2 * len(real), 7), squeeze=False)
    for col, item in enumerate(real):
        axes[0, col].imshow(item["image"].permute(1, 2, 0))
        axes[0, col].contour(real_masks[col, 0], levels=[0.5], colors="lime", linewidths=1)
        axes[0, col].set_title(item["name"], fontsize=8)
    for row, (label, p) in enumerate(probs.items(), 1):
        dice = dice_iou(p > 0.5, real_masks)[0]
        print(f"{label}: mean Dice {dice.mean():.3f} on these {len(real)} BUSI samples")
        for col in range(len(real)):
            axes[row, col].imshow(p[col, 0], cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{label.split(' (')[0]}: Dice {dice[col]:.2f}", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    plt.show()
else:
    print("This installation has no pretrained BUSI model (wavegms.pretrained.list_pretrained()")
    print("is empty): update wavegms to get it.")

# %% [markdown]
# ## 6. Where the time goes
#
# On a CPU, about 70-80% of a training step is spent in the *frozen* TAESD: two encodes
# (mask and image, no gradient) and, above all, decoding three heads at full
# resolution with gradients for the Dice loss. The 2.6M trainable parameters are the
# cheap part. This is why the quick mode uses 64 px images, and why a GPU helps so much:
# a full 224 px step takes about 0.1 s on a T4 (an estimate) instead of several seconds.

# %% [markdown]
# ### Exercise 3
#
# The authors' code predicts from a **sampled** latent `mu + sigma * eps` even at test
# time; we use `mu`. Load the trained model, draw 8 samples for the watched images,
# decode them, and measure the fraction of pixels whose label (> 0.5) changes between
# samples. What does this say about reporting results from sampled predictions?
#
# Write your answer in the next cell; the cell after it checks it.

# %% tags=["solution"]
disagree = ...  # the fraction of pixels whose label differs between the 8 samples
# BEGIN SOLUTION
from wavegms.engine.checkpoint import load_model

trained = load_model(run_dir, device=device, tiny_vae=vae)
with torch.no_grad():
    mu, logvar = trained.encoder(watch_images)
    samples = []
    for _ in range(8):
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        samples.append(trained.decode(trained.lmm(z)[-1]) > 0.5)
disagree = torch.stack(samples).float().std(0).gt(0).float().mean().item()
print(f"mean sigma {torch.exp(0.5 * logvar).mean():.3f}")
print(f"{disagree:.2%} of pixels change label between samples")
# END SOLUTION

# %% tags=["check"]
check(
    "Exercise 3",
    disagree,
    lambda answer: 0.0 <= float(answer) <= 1.0 or "a fraction of pixels is between 0 and 1",
    success=lambda answer: f"{float(answer):.2%} of the pixels change label.",
)

# %% [markdown] tags=["solution"]
# **Answer.** Every sample gives a slightly different mask, so a score computed from one sample
# is itself random: running the same evaluation twice gives different numbers, and
# picking the best run inflates them. The spread shrinks as training makes sigma
# small, but it never vanishes. With `mu`, the prediction is a deterministic function
# of the image: evaluations are reproducible.

# %% [markdown]
# ### Exercise 4
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
narrow_lmm = WaveGMS(vae, image_size=config.image_size, lmm_base_channels=16).lmm
expected = sum(p.numel() for p in narrow_lmm.parameters()) / count(model.lmm)
check("Exercise 4", share, lambda answer: close(answer, expected, rtol=1e-3))

# %% [markdown] tags=["solution"]
# **Answer.** A convolution from C_in to C_out channels has about 9 * C_in * C_out weights, so
# halving every width divides the count by about 4 (the attention's 1x1 convolutions
# scale the same way). The LMM keeps about a quarter: it loses ~75%. The encoder
# is untouched, so the total drops from 2.6M to about 1.4M.

# %% [markdown]
# ### Exercise 5
#
# (On a GPU.) Train longer: set `EPOCHS = 100` (and `QUICK = False` for augmentation)
# and run the notebook again. How does the gap between the training loss and the
# validation Dice behave? How would you continue an interrupted run?
#
# <details><summary><b>Solution</b> (try first!)</summary>
#
# With more epochs the validation Dice keeps rising long after the quick mode stops,
# then flattens while the training loss still falls: the model starts fitting the
# training images more than it generalises. That is why `best/` (chosen on validation)
# and `last/` can differ. An interrupted run is continued exactly where it stopped with
# `wavegms train --out RUN_DIR --resume` (or by running this notebook again: it resumes
# the run folder of the same settings), and `--resume --epochs N` extends a finished one.
#
# </details>

# %% [markdown]
# ## Summary
#
# - Wave-GMS trains 2.6M parameters (encoder ~1.0M, LMM ~1.6M) around a frozen 2.4M TAESD.
# - The objective: latent MSE + Dice through the decoder, on three heads, plus the
#   alignment of the encoder's latent with TAESD's latent of the image.
# - The run folder keeps `best/` by validation Dice and `last/` for resuming.
#
# Next, **04 · Evaluation** measures the chosen model on the test split, honestly.
