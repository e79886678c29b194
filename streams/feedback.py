"""Feedback records (``feedback.labels``, ``feedback.preferences``) read by the monitor and the lander: parsed,
or dead-lettered to ``feedback.dlq`` with a reason, like bad traces.

A bad label or preference is not the worker's problem and must not vanish either: the dead letter keeps the
original key and bytes (Kafka Connect's convention, ``schemas.dlq.DeadLetter`` in the ``alignloop.dlq`` header),
so a fixed consumer can replay it. Reasons are the trace DLQ's: ``invalid_utf8``, ``invalid_json``,
``not_an_object``, ``unsupported_schema_version`` (newer than this worker reads), ``validation_error``.
"""
from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.dlq import DeadLetter, validation_detail, validation_reason
from schemas.record import Record

log = logging.getLogger("alignloop.feedback")
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: bytes | None) -> M | tuple[str, str]:
    """The record, or (reason, error) for the dead-letter topic. Every feedback model bounds its
    ``schema_version`` by the newest this code reads (``schemas.versions``), so a newer record fails validation
    and comes back as ``unsupported_schema_version``."""
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        return validation_reason(exc, raw or b""), validation_detail(exc)
    except ValueError as exc:  # pydantic-core raises a plain ValueError on some broken input
        return "invalid_json", f"{type(exc).__name__}: {exc}"


def dead_letter(raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int, reason: str,
                error: str) -> DeadLetter:
    return DeadLetter.of(Record(topic, partition, offset, key, raw or b""), stage="validate", reason=reason,
                         error=error)


async def send_dead_letter(send: Any, dlq_topic: str, dl: DeadLetter) -> Any:
    """Publish through a worker's ``send(topic, key, value, headers=...)``; returns its delivery future."""
    return await send(dlq_topic, dl.key, dl.value, headers=dl.headers())


class FeedbackDeadLetters:
    """Dead-letters bad feedback records through ``send`` and counts them
    (``alignloop_feedback_dead_letters_total{topic,reason}``). One per process and registry: when several
    followers read the same labels (drift calibration, learning judge), only one of them dead-letters."""

    def __init__(self, send: Any, dlq_topic: str, registry: Any):
        from prometheus_client import Counter

        self.send, self.dlq_topic = send, dlq_topic
        self.counter = Counter("alignloop_feedback_dead_letters_total", "Bad labels/preferences sent to "
                               "feedback.dlq, by source topic and reason.", ["topic", "reason"], registry=registry)

    async def __call__(self, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
                       reason: str, error: str) -> Any:
        log.warning("dead-lettering a bad record at %s:%d@%d (%s): %s", topic, partition, offset, reason,
                    error.splitlines()[0][:200] if error else "")
        self.counter.labels(topic, reason).inc()
        return await send_dead_letter(self.send, self.dlq_topic,
                                      dead_letter(raw, key, topic, partition, offset, reason, error))
