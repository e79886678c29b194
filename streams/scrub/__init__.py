"""PII and secret scrubbing: structured tier (regex + checksums), unstructured tier (names, places, orgs,
addresses, DOB by heuristics) and typed, keyed pseudonyms.

``build_scrubber(settings, config)`` is the one way the stream and library callers (exports, replay) get a scrubber, so
both produce the same result for the same config and key.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.scrub.base import Finding, Scrubber, ScrubResult
from streams.scrub.config import ScrubConfig, load_scrub_config
from streams.scrub.pseudonym import Pseudonymizer
from streams.scrub.regex import RegexScrubber
from streams.scrub.strict import StrictScrubber
from streams.scrub.tiered import TieredScrubber
from streams.scrub.trace import scrub_trace
from streams.scrub.version import scrub_version

__all__ = ["Finding", "Pseudonymizer", "RegexScrubber", "SCRUBBERS", "ScrubConfig", "ScrubResult", "Scrubber",
           "StrictScrubber", "TieredScrubber", "build_scrubber", "load_scrub_config", "scrub_trace", "scrub_version"]

# Every scrubber kind, built from a pseudonymizer: tests/unit/test_scrubber_contract.py checks each one, so a new
# scrubber registered here is tested without new test code.
SCRUBBERS: dict[str, Callable[[Pseudonymizer], Scrubber]] = {
    "regex": RegexScrubber,
    "tiered": TieredScrubber,
    "strict": StrictScrubber,
}


def build_scrubber(settings: Any, config: ScrubConfig) -> Scrubber:
    """The configured scrubber for ``settings.pii_hmac_key`` and a loaded scrub config."""
    cfg = config
    pseudo = Pseudonymizer(settings.pii_hmac_key, surrogates=cfg.surrogates)
    enabled = cfg.enabled()
    if cfg.tier == "structured" or not set(enabled) - set(RegexScrubber.supported):
        scrubber: Scrubber = RegexScrubber(pseudo, enabled, thresholds=cfg.thresholds,
                                           default_threshold=cfg.default_threshold)
    else:
        scrubber = TieredScrubber(pseudo, enabled, thresholds=cfg.thresholds, default_threshold=cfg.default_threshold)
    scrubber.fields = tuple(cfg.fields)  # type: ignore[attr-defined]  # read by scrub_trace
    scrubber.max_depth = cfg.max_depth  # type: ignore[attr-defined]
    scrubber.version = scrub_version(cfg, pseudo.key_id)  # stamped on every judged trace (JudgedTrace.scrub_version)
    return scrubber
