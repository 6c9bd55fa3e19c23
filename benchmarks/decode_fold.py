"""Does folding the channel mean into TAESD's last convolution pay off in ``predict``?

    WAVEGMS_TAESD=/path/to/taesd python benchmarks/decode_fold.py [--repeats 40] [--calls 5]

``WaveGMS.decode`` goes through diffusers' public ``AutoencoderTiny.decode`` and then takes the
channel mean of the RGB output. Diffusers' decoder is ``tanh(z / 3) * 3 -> layers -> 2y - 1``,
so the probability ``(mean(2y - 1) + 1) / 2`` is ``mean(y)``, the channel mean of the last 3x3
conv: one conv with the mean filter (:func:`folded_decode`), which runs a 1-channel conv
instead of the RGB one and three elementwise passes, but reaches into ``decoder.layers``.

This times ``WaveGMS.predict`` at batch 1 (224 px, CPU, fp32, TAESD from ``$WAVEGMS_TAESD``)
with each decode, in rounds that alternate which goes first, in one process, and prints the
median over rounds of the time ratio folded / public. The folded decode earns its place only
below 0.97 (more than 3% of ``predict`` saved). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from wavegms.model import WaveGMS
from wavegms.tiny_vae import load_tiny_vae

WORTH_IT = 0.97  # keep the folded decode only if predict takes less than this ratio of the time


class FoldedWaveGMS(WaveGMS):
    """:class:`WaveGMS` with the channel mean folded into TAESD's last convolution."""

    def decode(self, mask_latents: torch.Tensor) -> torch.Tensor:
        *layers, to_rgb = self.tiny_vae.decoder.layers
        x = torch.tanh(mask_latents / 3) * 3
        for layer in layers:
            x = layer(x)
        mean_filter = to_rgb.weight.mean(dim=0, keepdim=True)
        mean_bias = to_rgb.bias.mean(dim=0, keepdim=True)
        return F.conv2d(x, mean_filter, mean_bias, to_rgb.stride, to_rgb.padding).clamp(0, 1)


def seconds(model: WaveGMS, image: torch.Tensor, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        model.predict(image)
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=40, help="A/B rounds")
    parser.add_argument("--calls", type=int, default=5, help="predict calls per variant a round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per variant")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    public = WaveGMS(load_tiny_vae(), image_size=args.image_size).eval()
    folded = FoldedWaveGMS(public.tiny_vae, image_size=args.image_size).eval()
    folded.load_state_dict(public.state_dict())
    image = torch.rand(1, 3, args.image_size, args.image_size)
    difference = (public.predict(image) - folded.predict(image)).abs().max().item()
    if difference > 1e-4:
        raise SystemExit(f"the two decodes disagree by {difference:g}: nothing to compare")
    models = {"public": public, "folded": folded}
    for model in models.values():
        for _ in range(args.warmup):
            model.predict(image)

    times: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(args.repeats):
        order = list(models) if round_ % 2 == 0 else list(reversed(models))
        for name in order:
            times[name].append(seconds(models[name], image, args.calls))
    ratio = statistics.median(f / p for f, p in zip(times["folded"], times["public"]))

    print(
        f"predict, batch 1, {args.image_size} px, CPU fp32, {torch.get_num_threads()} threads, "
        f"{args.repeats} rounds x {args.calls} calls"
    )
    for name, values in times.items():
        print(f"  {name:<7} decode: median {1000 * statistics.median(values):8.2f} ms/call")
    verdict = "keep the folded decode" if ratio < WORTH_IT else "the public decode stays"
    print(f"median ratio folded / public: {ratio:.3f} ({1 - ratio:+.1%} saved): {verdict}")
    return ratio


if __name__ == "__main__":
    main()
