"""Where the read-only shared material is: ``../shared`` from the repository root."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
BUSI_SAMPLE = SHARED / "data" / "busi_sample"
HAM_SAMPLE = SHARED / "data" / "ham10000_sample"
GMS_SPLITS = SHARED / "data" / "splits" / "gms"
