"""`alignloop demo` (the README's main job) against the test broker: spine and monitor processes, every valid
trace landed once, every malformed one dead-lettered, and the monitor's outputs (escalations, curated SFT rows)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import settings_env

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_demo_lands_everything_and_the_monitor_works(make_settings) -> None:
    s = make_settings(metrics_port=0)
    from alignloop.runner import REPO

    proc = subprocess.run([sys.executable, "-m", "alignloop.cli", "demo", "--n", "1500", "--seed", "5",
                           "--timeout", "240"], cwd=REPO, env={**settings_env(s), "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    landed = re.search(r"([\d,]+) of ([\d,]+) valid traces landed in Delta `traces` exactly once; ([\d,]+) of "
                       r"([\d,]+) malformed records in the DLQ", out)
    assert landed, out[-3000:]
    valid, total_valid, dlq, total_bad = (int(g.replace(",", "")) for g in landed.groups())
    assert valid == total_valid > 1400 and dlq == total_bad > 0
    monitor = re.search(r"monitor: ([\d,]+) traces escalated .* and ([\d,]+) SFT candidates curated", out)
    assert monitor, out[-3000:]
    escalated, sft = (int(g.replace(",", "")) for g in monitor.groups())
    assert 0 < escalated <= 0.08 * total_valid + 1  # within the escalation budget
    assert sft > 0
