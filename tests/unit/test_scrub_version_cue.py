"""Regression: an IP after a word ending in "ver" ("server.") was taken for a version number and leaked."""
from schemas.settings import Settings
from streams.scrub import build_scrubber, load_scrub_config


def test_ip_after_server_is_scrubbed_but_versions_are_not():
    s = build_scrubber(Settings(), load_scrub_config(None))  # configs/scrub.yaml, as the stream runs
    assert [f.kind for f in s.scrub("the build server. 10.7.182.18").findings] == ["IP_ADDRESS"]
    assert s.scrub("upgraded to version 10.7.182.18").findings == []
    assert [f.kind for f in s.scrub("build\n\x1f\n10.7.182.18").findings] == ["IP_ADDRESS"]  # batch separator
