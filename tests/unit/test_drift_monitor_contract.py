"""One contract suite over every registered drift detector (river-style generic checks).

A detector kind added to ``streams.drift.detectors.DETECTORS`` is tested without new test code, inside the
``DriftMonitor`` that feeds it standardised block means: the ``update(x)`` / ``drift_detected`` protocol, a
bounded false-alarm rate on a stationary stream, an alarm within a bounded number of samples after a clear shift,
an exact round trip through the data snapshot (same future alarms), and no exception on NaN, inf or huge values
(ignored and counted).
"""
from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from streams.drift.config import MonitorConfig
from streams.drift.detectors import DETECTORS, make_detector
from streams.drift.monitor import DriftAlarm, DriftMonitor
from schemas.drift_state import MonitorState

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
KINDS = sorted(DETECTORS)
BLOCK, WARMUP = 20, 20
STABLE_BLOCKS = 2000  # per seed
MAX_FALSE_ALARMS_PER_1000_BLOCKS = 1.0
SHIFT_WITHIN = 2000  # samples (100 blocks) after a one-sigma shift of every trace (4.5 sigma of a block mean)


def monitor(kind: str) -> DriftMonitor:
    cfg = MonitorConfig(detector=kind, params=DETECTORS[kind].params, block=BLOCK, warmup_blocks=WARMUP)
    return DriftMonitor("s", "p", cfg)


def feed(m: DriftMonitor, values, start: int = 0) -> list[tuple[int, DriftAlarm]]:
    out = []
    for i, x in enumerate(values, start):
        a = m.update(x, f"t{i}", T0 + timedelta(seconds=i / 500))
        assert isinstance(m.drift_detected, bool)
        if a is not None:
            assert isinstance(a, DriftAlarm) and m.drift_detected
            out.append((i, a))
    return out


def gauss(seed: int, mu: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mu, 1.0) for _ in range(n)]


@pytest.mark.parametrize("kind", KINDS)
def test_protocol(kind):
    det = make_detector(kind, DETECTORS[kind].params)
    det.update(0.0)
    assert isinstance(det.drift_detected, bool)
    m = monitor(kind)
    assert m.warming and feed(m, gauss(0, 0.0, BLOCK * WARMUP)) == [] and not m.warming


@pytest.mark.parametrize("kind", KINDS)
def test_stationary_stream_false_alarm_rate_is_bounded(kind):
    alarms = 0
    for seed in range(3):
        m = monitor(kind)
        alarms += len(feed(m, gauss(seed, 0.0, BLOCK * (WARMUP + STABLE_BLOCKS))))
    assert alarms <= MAX_FALSE_ALARMS_PER_1000_BLOCKS * 3 * STABLE_BLOCKS / 1000, (kind, alarms)


@pytest.mark.parametrize("kind", KINDS)
def test_clear_shift_alarms_within_a_bounded_delay(kind):
    for seed in range(3):
        m = monitor(kind)
        feed(m, gauss(seed, 0.0, BLOCK * 200))
        alarms = feed(m, gauss(100 + seed, 1.0, SHIFT_WITHIN), start=BLOCK * 200)
        assert alarms, (kind, seed)
        assert alarms[0][1].z > 0 and alarms[0][1].magnitude > 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_round_trip_gives_the_same_future_alarms(kind):
    m = monitor(kind)
    feed(m, gauss(7, 0.0, BLOCK * 150 + 7))  # mid-block, detector warm
    text = m.state().model_dump_json()  # through JSON text, as stored
    r = DriftMonitor.from_state(MonitorState.model_validate_json(text), m.cfg)
    future = gauss(8, 0.0, BLOCK * 100) + gauss(9, 1.0, BLOCK * 100) + gauss(10, 0.0, BLOCK * 100)
    a, b = feed(m, future), feed(r, future)
    assert a, kind
    assert [(i, x.z, x.since) for i, x in a] == [(i, x.z, x.since) for i, x in b]
    assert r.state() == m.state()


@pytest.mark.parametrize("kind", KINDS)
def test_nan_inf_and_huge_values_are_ignored_and_counted(kind):
    m = monitor(kind)
    bad = [math.nan, math.inf, -math.inf, 1e300, -1e308, 1e13]
    values = [x for pair in zip(gauss(11, 0.0, BLOCK * 60), bad * (BLOCK * 10)) for x in pair]
    feed(m, values)  # never raises
    assert m.rejected == BLOCK * 60
    assert not m.warming and math.isfinite(m.ref_mean) and math.isfinite(m.last_z)
    assert feed(m, gauss(12, 1.0, SHIFT_WITHIN), start=len(values)), "still detects after the garbage"
    assert json.loads(m.state().model_dump_json())  # and still snapshots
