"""The agreement gate: human labels leave only when the recorded Krippendorff alpha clears the configured minimum."""
from __future__ import annotations

from datetime import datetime, timezone

import krippendorff
import numpy as np
import pytest

from connectors.agreement_table import write_agreement
from schemas.settings import Settings
from trainers.export.agreement import recorded_alpha
from trainers.export.run import ExportError, run_export
from tests.export_tables import seed


def _record(s: Settings, alpha: float, when: int, scope: str = "preference") -> None:
    """As the labeling UI records it (connectors.agreement_table, the one writer of the table)."""
    write_agreement(s, [{"queue": scope, "kind": "pairwise", "labels": 80, "items": 40, "alpha": {"choice": alpha}}],
                    now=datetime(2026, 11, when, tzinfo=timezone.utc))


@pytest.fixture
def settings(tmp_path):
    s = Settings(home=tmp_path / "h", lake_root=str(tmp_path / "lake"))
    seed(s, pref_source="human")
    return s


def test_no_recorded_agreement_exports_and_says_the_gate_was_not_applied(settings, tmp_path):
    res = run_export(settings, "trl-preference", "preferences", out=tmp_path / "p.jsonl")
    assert res.lineage["agreement_gate"]["applied"] is False and res.lineage["row_count"] == 12


def test_low_agreement_refuses_and_the_latest_figure_decides(settings, tmp_path):
    # two annotators who disagree on most items: alpha from the krippendorff package, as the labeling UI computes it
    low = float(krippendorff.alpha(reliability_data=np.array([[1, 0, 1, 0, 1, 0], [0, 1, 1, 1, 0, 0]]),
                                   level_of_measurement="nominal"))
    assert low < 0.667
    _record(settings, 0.9, when=1)
    _record(settings, low, when=2)
    with pytest.raises(ExportError, match=r"human labels refused: recorded agreement alpha=-?0\.\d+"):
        run_export(settings, "openai-dpo", "preferences", out=tmp_path / "d.jsonl")
    assert not (tmp_path / "d.jsonl").exists()
    # the same export passes with a lower gate, and when the newest figure is good again
    assert run_export(settings, "openai-dpo", "preferences", out=tmp_path / "d.jsonl", min_alpha=-1.0).files
    _record(settings, 0.8, when=3)
    res = run_export(settings, "openai-dpo", "preferences", out=tmp_path / "e.jsonl")
    gate = res.lineage["agreement_gate"]
    assert gate["applied"] and gate["alpha"] == 0.8 and gate["min_alpha"] == 0.667


def test_every_scope_must_clear_and_labels_from_judges_are_not_gated(settings, tmp_path):
    write_agreement(settings, [  # one snapshot of every queue, as the UI writes it
        {"queue": "helpfulness", "kind": "score", "labels": 80, "items": 40, "alpha": {"helpfulness": 0.9}},
        {"queue": "safety", "kind": "score", "labels": 80, "items": 40, "alpha": {"safety": 0.3, "tone": 0.8}}],
        now=datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert recorded_alpha(settings.table_uri("agreement"))["scope"] == "safety"
    with pytest.raises(ExportError, match="scope safety"):
        run_export(settings, "trl-preference", "preferences", out=tmp_path / "p.jsonl")
    res = run_export(settings, "trl-preference", "preferences", out=tmp_path / "q.jsonl",
                     where=["source <> 'human'"])
    assert res.lineage["row_count"] == 0 and res.lineage["agreement_gate"]["applied"] is False
