"""BUS (UDIAT "Dataset B", Yap et al., 2018): 163 breast ultrasound images with lesion masks.

Only available on request from its authors, so it is prepared from ``--source`` only: a
folder or archive holding the images and masks in two folders (officially ``original/`` and
``GT/``), paired by file name (``000001.png`` ... ``000163.png``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .discover import describe, pair_by_name
from .recipe import ManualDownloadRequired, Recipe, Remote
from .staging import Discovery, PreparationError

HOMEPAGE = "http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php"

HOW_TO_REQUEST = f"""\
BUS (UDIAT Dataset B) cannot be downloaded automatically: its authors share it on request,
for research use only.

1. Request it from its authors (Moi Hoon Yap, Manchester Metropolitan University, with
   the UDIAT Diagnostic Centre, Sabadell), following the instructions on
   {HOMEPAGE}
   (a signed licence agreement is usually asked for).
2. When you have the archive (or its extracted folder, with the images in original/ and the
   masks in GT/), prepare it with:

   python -m data_download bus --root DATA_DIR --source PATH/TO/DatasetB.zip
"""


def discover(roots: Sequence[Path]) -> Discovery:
    items, lonely_images, lonely_masks = pair_by_name(roots)
    if not items:
        raise PreparationError(
            "no BUS image/mask pairs found in the source. Expected two folders (e.g. original/ "
            "and GT/) holding files with the same names (000001.png ...)."
        )
    if lonely_images or lonely_masks:
        raise PreparationError(
            "BUS files without a partner: "
            + (f"images without a mask: {describe(lonely_images)}. " if lonely_images else "")
            + (f"masks without an image: {describe(lonely_masks)}." if lonely_masks else "")
        )
    return Discovery(items)


def _no_download() -> list[Remote]:
    raise ManualDownloadRequired(HOW_TO_REQUEST)


RECIPE = Recipe(
    name="bus",
    title="BUS: UDIAT breast ultrasound Dataset B",
    homepage=HOMEPAGE,
    licence="research use only, on request from the authors",
    citation="Yap MH, Pons G, Marti J, Ganau S, Sentis M, Zwiggelaar R, Davison AK, Marti R. "
    "Automated breast ultrasound lesions detection using convolutional neural networks. "
    "IEEE Journal of Biomedical and Health Informatics 22(4):1218-1226 (2018). "
    "https://doi.org/10.1109/JBHI.2017.2731873",
    remote_files=_no_download,
    discover=discover,
    expected_images=163,
    extracted_mb=50,  # 163 PNG images and masks, about 20 MB
    name_pattern=r"\d{6}",
)
