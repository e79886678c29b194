"""flagd-compatible bucketing, re-exported from ``schemas/bucketing.py`` (moved down a layer so the agent SDK in
``connectors/`` buckets with the same function)."""
from schemas.bucketing import MAX_WEIGHT_SUM, assign, bucketing_hash, distribution, fractional

__all__ = ["MAX_WEIGHT_SUM", "assign", "bucketing_hash", "distribution", "fractional"]
