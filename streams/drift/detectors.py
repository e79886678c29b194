"""river drift detectors by name. Wrapped, never re-implemented.

Continuous detectors (PageHinkley, ADWIN, KSWIN) read the standardised block mean (a z-score). The DDM family
reads an error stream of 0/1; for them a block counts as an "error" when its z-score is out of band, so DDM's
error rate is the rate of out-of-band blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from river import drift
from river.drift import binary

from streams.drift.detector_state import detector_state, restore_detector


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector kind: the river class, and parameters that suit standardised block means (the
    contract suite, tests/unit/test_drift_monitor_contract.py, checks every kind with them)."""

    cls: type
    binary: bool = False
    params: dict[str, Any] = field(default_factory=dict)


# Registering a detector = one line here; the contract suite then tests it.
DETECTORS: dict[str, DetectorSpec] = {
    "page_hinkley": DetectorSpec(drift.PageHinkley, params={"delta": 0.5, "threshold": 10.0, "min_instances": 1,
                                                            "alpha": 1.0}),
    "adwin": DetectorSpec(drift.ADWIN),
    "kswin": DetectorSpec(drift.KSWIN, params={"alpha": 0.0001, "seed": 1}),
    "ddm": DetectorSpec(binary.DDM, binary=True),
    "eddm": DetectorSpec(binary.EDDM, binary=True),
    "hddm_a": DetectorSpec(binary.HDDMA, binary=True),
    "hddm_w": DetectorSpec(binary.HDDMW, binary=True),
    "fhddm": DetectorSpec(binary.FHDDM, binary=True),
}
CONTINUOUS = {k: s.cls for k, s in DETECTORS.items() if not s.binary}
BINARY = {k: s.cls for k, s in DETECTORS.items() if s.binary}
OUT_OF_BAND_Z = 2.0  # |z| above this is an "error" for the binary detectors
ACCURACY_STYLE = {"fhddm"}  # read 1 = correct, and alarm when the rate of 1s drops


def make_detector(kind: str, params: dict[str, Any]) -> Any:
    """A fresh river detector; unknown names or bad arguments raise ValueError naming them."""
    spec = DETECTORS.get(kind)
    if spec is None:
        raise ValueError(f"unknown drift detector {kind!r}; known: {', '.join(DETECTORS)}")
    try:
        return spec.cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for {kind}: {exc}") from None


def detector_input(kind: str, z: float) -> float:
    if kind in BINARY:
        error = abs(z) > OUT_OF_BAND_Z
        return float(not error) if kind in ACCURACY_STYLE else float(error)
    return z


def dump_detector(det: Any) -> dict[str, Any]:
    """The detector's state as JSON-able data (see ``detector_state``)."""
    return detector_state(det)


def load_detector(kind: str, params: dict[str, Any], state: Any) -> Any:
    """A detector built from the configured ``params`` with ``state`` written over it; ValueError if it does
    not fit."""
    return restore_detector(make_detector(kind, params), state, kind)
