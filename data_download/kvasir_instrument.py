"""Kvasir-Instrument (Jha et al., 2021): 590 GI endoscopy frames with tool masks.

The archive holds ``kvasir-instrument/images.tar.gz`` (JPEG images) and ``masks.tar.gz``
(PNG masks), plus the official ``train.txt`` / ``test.txt`` (472 / 118), which are recorded in
info.json as ``official_split``. Items keep their file stems as names (as in GMS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .discover import describe, is_junk, pair_by_name
from .recipe import Recipe, Remote
from .staging import Discovery, PreparationError


def _read_split_file(path: Path) -> list[str]:
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        token = line.strip().split()[0] if line.strip() else ""
        if token:
            names.append(Path(token).stem)
    return names


def discover(roots: Sequence[Path]) -> Discovery:
    items, lonely_images, lonely_masks = pair_by_name(roots)
    if not items:
        raise PreparationError(
            "no Kvasir-Instrument image/mask pairs found in the source (expected images/*.jpg "
            "and masks/*.png, or the images.tar.gz / masks.tar.gz archives)."
        )
    if lonely_images or lonely_masks:
        raise PreparationError(
            "Kvasir-Instrument files without a partner: "
            f"images without a mask: {describe(lonely_images) or 'none'}; "
            f"masks without an image: {describe(lonely_masks) or 'none'}."
        )
    names = {it.name for it in items}
    split: dict[str, list[str]] = {}
    for root in roots:
        for part in ("train", "test"):
            for path in sorted(Path(root).rglob(f"{part}.txt")):
                if not is_junk(path) and part not in split:
                    split[part] = [n for n in _read_split_file(path) if n in names]
    extra = {"official_split": split} if len(split) == 2 else {}
    return Discovery(items, extra_info=extra)


RECIPE = Recipe(
    name="kvasir_instrument",
    title="Kvasir-Instrument: GI endoscopy tool segmentation",
    homepage="https://datasets.simula.no/kvasir-instrument/",
    licence="free for research and educational use; cite the paper",
    citation="Jha D, Ali S, Emanuelsen K, Hicks SA, Thambawita V, Garcia-Ceja E, Riegler MA, "
    "de Lange T, Schmidt PT, Johansen HD, Johansen D, Halvorsen P. Kvasir-Instrument: "
    "Diagnostic and therapeutic tool segmentation dataset in gastrointestinal endoscopy. "
    "MultiMedia Modeling (MMM 2021), LNCS 12573, pp. 218-229. "
    "https://doi.org/10.1007/978-3-030-67835-7_19",
    remote_files=lambda: [
        Remote(
            "kvasir-instrument.zip",
            ("https://datasets.simula.no/downloads/kvasir-instrument.zip",),
        ),
    ],
    discover=discover,
    expected_images=590,
    extracted_mb=500,  # a 170 MB zip holding two tar.gz, both unpacked
    name_pattern=r"c[a-z0-9]{24}",
)
