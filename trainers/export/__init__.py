"""Exporters: every format ``alignloop export`` writes. Registering one here gets it the contract tests
(tests/unit/test_export_contract.py)."""
from __future__ import annotations

from trainers.export.argilla_records import ArgillaExport
from trainers.export.base import Exporter
from trainers.export.formats import HfDataset, OpenAIDpo, OpenAIRft, OpenAISft, TrlPreference, TrlSft

EXPORTERS: dict[str, type[Exporter]] = {e.name: e for e in (TrlSft, TrlPreference, HfDataset, OpenAISft,
                                                             OpenAIDpo, OpenAIRft, ArgillaExport)}

__all__ = ["EXPORTERS", "Exporter"]
