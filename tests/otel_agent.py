"""The instrumented agent of the ingest tests (shared with `alignloop bench ingest`)."""
from alignloop.bench._otel_turn import EMAIL, PHONE, agent_turn

__all__ = ["EMAIL", "PHONE", "agent_turn"]
