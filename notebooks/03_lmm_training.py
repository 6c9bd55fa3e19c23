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
# **Learning objectives.** After this notebook you can:
# - build Wave-GMS and account for its ~2.6M trainable parameters, module by module
# - name the three terms of the training objective and say what each one is for
# - train the model with a live progress bar and loss curves
# - watch predicted mask latents and decoded masks improve across epochs
# - explain why the best checkpoint is chosen on validation data, never on test data
#
# **Time.** CPU quick mode (the defaults): about 25 s (measured on a 2-core CPU). Colab T4, full run: about 25 minutes for 300 epochs of BUSI at 224 px, batch 12 (estimate: ~0.1 s per training step on a T4, 39 steps and a validation pass per epoch) (an estimate, not a measurement).

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
# Install: in Colab, install wavegms from GitHub; locally, only check that it is installed.
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    # wavegms asks for torch>=2.2, which Colab's own torch satisfies: pip keeps it (never
    # reinstall torch in Colab, it is built for Colab's GPU drivers).
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "wavegms[notebooks] @ git+https://github.com/wavegms/wavegms"],
        check=True,
    )  # fmt: skip
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
EPOCHS = 4  # training epochs (the paper: 1000 for BUSI)
BATCH_SIZE = 4  # images per training step (the paper: 12)
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
model.eval()

# %% [markdown]
# ## 3. Train, and watch
#
# `wavegms.train.train` runs the whole loop: AdamW (lr 2e-3, weight decay 0.01), a
# warm-up then a cosine schedule, validation after each epoch, and checkpoints in a
# run folder (`best/` by validation Dice, `last/` with everything needed to resume).
# It accepts **callbacks**, called after every epoch with the model in evaluation
# mode. We use two: one keeps the predictions for four validation images (snapshots),
# one redraws the curves while training runs.
#
# (The quick mode trains without augmentation: over four epochs it only slows learning
# down; in a full run it is what keeps the model from memorising the training set.)
# If this run was already trained in `OUT_DIR`, it is reused, not trained again.

# %%
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

# %%
history = course.read_history(run_dir)
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
# epoch 0 the untrained model outputs noise; the first thing it learns is "mostly
# background", then where the lesion is, then its shape. (If the run was reused from
# an earlier execution, only the snapshots saved with it are shown.)

# %%
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

# %% [markdown]
# The model predicts latents, not pixels: compare the predicted latent (one channel)
# with the target, the TAESD latent of the true mask. Pick an epoch with the slider.

# %%
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

# %% [markdown]
# ## 6. Where the time goes
#
# On a CPU, about 70-80% of a training step is spent in the *frozen* TAESD: two encodes
# (mask and image, no gradient) and, above all, decoding three heads at full
# resolution with gradients for the Dice loss. The 2.6M trainable parameters are the
# cheap part. This is why the quick mode uses 64 px images, and why a GPU helps so much:
# a full 224 px step takes about 0.1 s on a T4 (an estimate) instead of several seconds.

# %% [markdown]
# ### Exercise 1
#
# The authors' code predicts from a **sampled** latent `mu + sigma * eps` even at test
# time; we use `mu`. Load the trained model, draw 8 samples for the watched images,
# decode them, and measure how much the masks disagree. What does this say about
# reporting results from sampled predictions?
#
# <details><summary><b>Solution</b> (try first!)</summary>
#
# Every sample gives a slightly different mask, so a score computed from one sample
# is itself random: running the same evaluation twice gives different numbers, and
# picking the best run inflates them. The spread shrinks as training makes sigma
# small, but it never vanishes. With `mu`, the prediction is a deterministic function
# of the image: evaluations are reproducible.
#
# </details>

# %%
# Worked solution
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

# %% [markdown]
# ### Exercise 2
#
# Halve the LMM's width: `WaveGMS(vae, lmm_base_channels=16)`. How many parameters
# does the LMM lose, and why is it about three quarters rather than one half?
#
# <details><summary><b>Solution</b> (try first!)</summary>
#
# A convolution from C_in to C_out channels has about 9 * C_in * C_out weights, so
# halving every width divides the count by about 4 (the attention's 1x1 convolutions
# scale the same way). The LMM shrinks to about a quarter: it loses ~75%. The encoder
# is untouched, so the total drops from 2.6M to about 1.4M.
#
# </details>

# %%
# Worked solution
narrow = WaveGMS(vae, image_size=config.image_size, lmm_base_channels=16)
share = count(narrow.lmm) / count(model.lmm)
print(f"LMM: {count(model.lmm):,} -> {count(narrow.lmm):,} ({share:.0%})")
print(f"total: {count(model):,} -> {count(narrow):,}")

# %% [markdown]
# ### Exercise 3
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
