"""SDK log_preference publishes a Preference to feedback.preferences on a real broker."""
from __future__ import annotations

import asyncio

import pytest

from connectors.kafka import read_topic
from connectors.sdk import OversightSDK
from schemas.preference import Preference
from schemas.topics import PREFERENCES

pytestmark = pytest.mark.integration


def test_log_preference_publishes(kafka_settings) -> None:
    sdk = OversightSDK.from_settings(kafka_settings)
    sent = sdk.log_preference("Which is better?", ["terse", "clear and complete"], 1,
                              {"annotator": "ana", "rationale": "more complete", "model_versions": ["base"]})
    got = [Preference.model_validate_json(m.value)
           for m in asyncio.run(read_topic(kafka_settings, kafka_settings.topic(PREFERENCES)))]
    assert len(got) == 1 and got[0].pref_id == sent.pref_id
    p = got[0]
    assert p.chosen_idx == 1 and p.rejected_idx == 0 and p.rationale == "more complete"
    assert p.metadata == {"source": "sdk", "annotator": "ana", "model_versions": ["base"]}
