"""river drift detectors by name. Wrapped, never re-implemented.

Continuous detectors (PageHinkley, ADWIN, KSWIN) read the standardised block mean (a z-score). The DDM family
reads an error stream of 0/1; for them a block counts as an "error" when its z-score is out of band, so DDM's
error rate is the rate of out-of-band blocks.
"""
from __future__ import annotations

from typing import Any

from river import drift
from river.drift import binary

CONTINUOUS = {"page_hinkley": drift.PageHinkley, "adwin": drift.ADWIN, "kswin": drift.KSWIN}
BINARY = {"ddm": binary.DDM, "eddm": binary.EDDM, "hddm_a": binary.HDDMA, "hddm_w": binary.HDDMW,
          "fhddm": binary.FHDDM}
OUT_OF_BAND_Z = 2.0  # |z| above this is an "error" for the binary detectors
ACCURACY_STYLE = {"fhddm"}  # read 1 = correct, and alarm when the rate of 1s drops


def make_detector(kind: str, params: dict[str, Any]) -> Any:
    """A fresh river detector; unknown names or bad arguments raise ValueError naming them."""
    cls = CONTINUOUS.get(kind) or BINARY.get(kind)
    if cls is None:
        raise ValueError(f"unknown drift detector {kind!r}; known: {', '.join([*CONTINUOUS, *BINARY])}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for {kind}: {exc}") from None


def detector_input(kind: str, z: float) -> float:
    if kind in BINARY:
        error = abs(z) > OUT_OF_BAND_Z
        return float(not error) if kind in ACCURACY_STYLE else float(error)
    return z
