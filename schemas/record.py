"""One consumed Kafka record, as the spine passes it: whole, from the consumer to the step, the sink and the DLQ."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    """Where a record came from (``topic``, ``partition``, ``offset``) and what it holds (``key``, ``value``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None

    @property
    def source(self) -> tuple[str, int]:
        """The (topic, partition) this record's offset counts in."""
        return (self.topic, self.partition)
