"""SDK log_preference publishes a Preference to feedback.preferences on a real broker."""
from __future__ import annotations

import asyncio

import pytest

from connectors.kafka import read_topic
from streams.sdk import OversightSDK
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


def test_preferences_land_in_delta_once(kafka_settings) -> None:
    from connectors.delta_sink import read_table
    from streams.curation.sink import land_preferences

    s = kafka_settings
    sdk = OversightSDK.from_settings(s)
    sdk.log_preference("q1", ["a", "b"], 0, {"annotator": "ana"})
    sdk.log_preference("q2", ["c", "d"], 1, {"annotator": "bo"})

    async def land(seconds: float) -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(land_preferences(s, stop))
        await asyncio.sleep(seconds)
        stop.set()
        return await task
    assert asyncio.run(land(6)) == 2
    sdk.log_preference("q1", ["a", "b"], 0, {"annotator": "ana"})  # a retried call: same pref_id, new offset
    asyncio.run(land(4))
    t = read_table(s.table_uri("preferences"))
    assert sorted(t.column("prompt").to_pylist()) == ["q1", "q2"]  # the retry (same deterministic id) is skipped
