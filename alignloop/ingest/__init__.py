"""Ingest: OTLP/HTTP GenAI spans and OpenAI-format logs -> ``agent.traces`` (mapping logic in ``streams.ingest``)."""
