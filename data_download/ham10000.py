"""HAM10000 (Tschandl et al., 2018): 10,015 dermoscopy images with lesion masks.

Downloaded from Harvard Dataverse (doi:10.7910/DVN/DBW86T): the two image archives
``HAM10000_images_part_{1,2}.zip`` (``ISIC_xxxxxxx.jpg``), the masks
``HAM10000_segmentations_lesion_tschandl.zip`` (``ISIC_xxxxxxx_segmentation.png``) and the
metadata table, whose diagnosis column (``dx``) becomes each item's class. File ids and MD5
checksums come from the Dataverse API, so every file is verified.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .discover import describe, image_files, is_junk, pair_by_name
from .download import download
from .recipe import Recipe, Remote
from .staging import Discovery, PreparationError

DATAVERSE = "https://dataverse.harvard.edu"
DOI = "doi:10.7910/DVN/DBW86T"
WANTED = (
    "HAM10000_images_part_1.zip",
    "HAM10000_images_part_2.zip",
    "HAM10000_segmentations_lesion_tschandl.zip",
)
METADATA = "HAM10000_metadata"  # ingested by Dataverse as a .tab; we ask for the original


def remote_files_from_listing(listing: dict) -> list[Remote]:
    """Turn a Dataverse dataset JSON (``/api/datasets/:persistentId``) into downloads."""
    files = listing["data"]["latestVersion"]["files"]
    by_name: dict[str, dict] = {}
    for f in files:
        data = f.get("dataFile", {})
        for key in ("filename", "originalFileName"):
            if data.get(key):
                by_name[data[key]] = data
    out = []
    for wanted in WANTED:
        data = by_name.get(wanted)
        if data is None:
            raise PreparationError(
                f"{wanted} is not listed in the Dataverse record {DOI} any more. Download the "
                "files by hand from its page and use --source FOLDER."
            )
        md5 = data.get("md5") or (data.get("checksum") or {}).get("value")
        out.append(Remote(wanted, (f"{DATAVERSE}/api/access/datafile/{data['id']}",), md5=md5))
    meta = next((d for n, d in by_name.items() if n.startswith(METADATA)), None)
    if meta is not None:
        # Ingested tables are served re-encoded unless format=original; checksums refer to the
        # original upload, so the re-encoded variant cannot be verified: skip the checksum.
        out.append(
            Remote(
                f"{METADATA}.csv",
                (f"{DATAVERSE}/api/access/datafile/{meta['id']}?format=original",),
                optional=True,
            )
        )
    return out


def remote_files() -> list[Remote]:
    url = f"{DATAVERSE}/api/datasets/:persistentId/?persistentId={DOI}"
    with tempfile.TemporaryDirectory() as tmp:
        path = download(url, Path(tmp) / "listing.json", progress=False)
        listing = json.loads(path.read_text(encoding="utf-8"))
    return remote_files_from_listing(listing)


def read_metadata_classes(roots: Sequence[Path]) -> dict[str, str]:
    """``image_id -> dx`` from a HAM10000 metadata table (CSV or Dataverse TAB), if present."""
    for root in roots:
        root = Path(root)
        candidates = [root] if root.is_file() else sorted(root.rglob(f"{METADATA}*"))
        for path in candidates:
            if is_junk(path) or path.suffix.lower() not in (".csv", ".tab", ".tsv", ".txt"):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            delimiter = "\t" if text.split("\n", 1)[0].count("\t") else ","
            rows = csv.DictReader(text.splitlines(), delimiter=delimiter)
            classes = {
                row["image_id"].strip('"'): row["dx"].strip('"')
                for row in rows
                if row.get("image_id") and row.get("dx")
            }
            if classes:
                return classes
    return {}


def discover(roots: Sequence[Path]) -> Discovery:
    classes = read_metadata_classes(roots)
    items, lonely_images, lonely_masks = pair_by_name(roots, classes=classes)
    items = [it for it in items if it.name.startswith("ISIC_")]
    if not items:
        found = [p for _, _, p in image_files(roots)][:3]
        raise PreparationError(
            "no HAM10000 image/mask pairs (ISIC_xxxxxxx.jpg + ISIC_xxxxxxx_segmentation.png) "
            f"found in the source{'; found e.g. ' + describe(found) if found else ''}."
        )
    extra: dict = {}
    if lonely_images:
        # The Dataverse record also carries ISIC 2018 test images, which have no masks.
        print(
            f"note: {len(lonely_images)} images without a mask were skipped "
            f"(e.g. {describe(lonely_images, 2)})"
        )
        extra["skipped_images_without_mask"] = len(lonely_images)
    if lonely_masks:
        raise PreparationError(f"HAM10000 masks without an image: {describe(lonely_masks)}")
    return Discovery(items, extra_info=extra)


RECIPE = Recipe(
    name="ham10000",
    title="HAM10000: dermoscopic images of pigmented skin lesions, with lesion masks",
    homepage=f"https://dataverse.harvard.edu/dataset.xhtml?persistentId={DOI}",
    licence="CC BY-NC 4.0",
    citation="Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of "
    "multi-source dermatoscopic images of common pigmented skin lesions. Scientific Data 5, "
    "180161 (2018). https://doi.org/10.1038/sdata.2018.161",
    remote_files=remote_files,
    discover=discover,
    expected_images=10015,
    extracted_mb=3500,  # the three zips are about 3 GB
    name_pattern=r"ISIC_\d{7}",
)
