import random
from datetime import datetime, timedelta, timezone

import pytest

from streams.drift.config import MonitorConfig, load_drift_config
from streams.drift.detectors import BINARY, CONTINUOUS, make_detector
from streams.drift.monitor import DriftMonitor

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def feed(mon, values, start=0):
    alarms = []
    for i, x in enumerate(values, start):
        a = mon.update(x, f"t{i}", T0 + timedelta(seconds=i / 500))
        if a:
            alarms.append((i, a))
    return alarms


def bernoulli(rng, p, n):
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def test_stable_stream_raises_no_alarm_and_a_shift_is_found_quickly():
    rng = random.Random(1)
    mon = DriftMonitor("tool_error", "base", MonitorConfig())
    assert feed(mon, bernoulli(rng, 0.15, 200_000)) == []
    assert not mon.warming
    assert mon.ref_mean == pytest.approx(0.15, abs=0.01)
    alarms = feed(mon, bernoulli(rng, 0.25, 20_000), start=200_000)
    assert alarms, "a 0.15 -> 0.25 shift must be detected"
    i, a = alarms[0]
    assert 200_000 <= i < 205_000
    assert a.magnitude == pytest.approx(0.10, abs=0.03)
    assert a.z > 3
    assert a.since >= T0 + timedelta(seconds=199_000 / 500)  # onset dated near the change
    assert all(int(t[1:]) >= 199_000 for t in a.example_trace_ids)
    assert len(alarms) == 1  # re-learns the new regime, so the same change is reported once
    assert mon.ref_mean == pytest.approx(0.25, abs=0.015)


def test_no_alarm_during_warmup_even_for_a_huge_change():
    mon = DriftMonitor("latency", "base", MonitorConfig(block=10, warmup_blocks=20))
    assert feed(mon, [0.0] * 100 + [100.0] * 90) == []  # 19 of 20 warm-up blocks
    assert mon.warming


def test_decrease_is_detected_by_two_sided_and_ignored_by_one_sided():
    rng = random.Random(3)
    two = DriftMonitor("s", "p", MonitorConfig(block=20, warmup_blocks=20))
    one = DriftMonitor("s", "p", MonitorConfig(block=20, warmup_blocks=20), one_sided=True)
    base = [rng.gauss(5, 1) for _ in range(2000)]
    low = [rng.gauss(4, 1) for _ in range(2000)]
    assert feed(two, base) == [] and feed(one, base) == []
    assert feed(two, low, 2000)
    assert feed(one, low, 2000) == []


@pytest.mark.parametrize("kind", sorted([*CONTINUOUS, *BINARY]))
def test_every_wrapped_river_detector_runs_and_reacts_to_a_big_shift(kind):
    params = {"page_hinkley": {"delta": 0.5, "threshold": 10.0}, "kswin": {"alpha": 0.0001, "seed": 1}}.get(kind, {})
    mon = DriftMonitor("s", "p", MonitorConfig(detector=kind, params=params, block=20, warmup_blocks=20))
    rng = random.Random(5)
    feed(mon, [rng.gauss(0, 1) for _ in range(4000)])
    assert feed(mon, [rng.gauss(3, 1) for _ in range(20_000)], 4000), kind


def test_bad_detector_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="bad parameters for adwin"):
        make_detector("adwin", {"nope": 1})
    bad = tmp_path / "drift.yaml"
    bad.write_text("monitor:\n  block: 0\n")
    with pytest.raises(ValueError, match="monitor.block"):
        load_drift_config(bad)
    with pytest.raises(ValueError, match="not found"):
        load_drift_config(tmp_path / "missing.yaml")
