"""Prometheus metrics of the serving runtime and its HTTP server; the registry is passed in, never a global."""
from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ATTACH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServingMetrics:
    """Requests, tokens and latency per adapter; attach/detach time; resident adapters."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.requests = Counter("alignloop_serve_requests", "Chat completion requests, by adapter and outcome.",
                                ["adapter", "status"], registry=registry)
        self.tokens = Counter("alignloop_serve_tokens", "Tokens processed, by adapter and kind (prompt/completion).",
                              ["adapter", "kind"], registry=registry)
        self.latency = Histogram("alignloop_serve_request_latency_seconds", "Request latency, by adapter.",
                                 ["adapter"], buckets=LATENCY_BUCKETS, registry=registry)
        self.attach = Histogram("alignloop_serve_attach_seconds", "Adapter attach time (read, check, load into "
                                "the model), without warm-up.", buckets=ATTACH_BUCKETS, registry=registry)
        self.warm = Histogram("alignloop_serve_warm_seconds", "Adapter warm-up time on the golden prompts.",
                              buckets=LATENCY_BUCKETS, registry=registry)
        self.detach = Histogram("alignloop_serve_detach_seconds", "Adapter detach (eviction) time.",
                                buckets=ATTACH_BUCKETS, registry=registry)
        self.attach_failures = Counter("alignloop_serve_attach_failures", "Adapters that failed to attach, by code.",
                                       ["code"], registry=registry)
        self.resident = Gauge("alignloop_serve_resident_adapters", "Adapters resident in the model (ready).",
                              registry=registry)
        self.disconnects = Counter("alignloop_serve_client_disconnects", "Streams whose client went away.",
                                   registry=registry)
