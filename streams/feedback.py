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


async def land_feedback(settings: Any, stop: Any, *, topic: str, model: type[M], table: str, writer: str,
                        group: str, id_column: str, row_of: Any, batch: int = 500, registry: Any = None) -> int:
    """Consume ``topic`` into the Delta ``table`` until ``stop`` is set; returns rows landed.

    One row per record id (``id_column``): ids are deterministic (SDK retries, LLM replays, the labeling UI's
    outbox), so a re-published record is not landed twice. A record that does not validate goes to feedback.dlq
    with its reason, counted in ``alignloop_feedback_dead_letters_total`` on ``registry``; the broker has every
    dead letter before the Delta commit, and the Delta commit comes before the consumer's, so nothing is lost."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from prometheus_client import CollectorRegistry

    from connectors.delta_sink import read_table, table_sink
    from connectors.kafka import aiokafka_client_kwargs, producer
    from schemas.topics import FEEDBACK_DLQ
    from schemas.verdict import SourceRef

    sink = table_sink(settings, table, writer)
    consumer = AIOKafkaConsumer(settings.topic(topic), **aiokafka_client_kwargs(settings), group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    seen: set[str] = set()
    existing = read_table(sink.uri, columns=[id_column], storage_options=sink.storage_options)
    if existing.num_columns:  # an absent table reads as empty
        seen.update(existing.column(id_column).to_pylist())
    landed = 0
    try:
        async with producer(settings) as prod:
            async def send(t: str, key: bytes | None, value: bytes, headers: Any = None) -> Any:
                return await prod.send(t, value=value, key=key, headers=headers)

            dead = FeedbackDeadLetters(send, settings.topic(FEEDBACK_DLQ), registry or CollectorRegistry())
            while not stop.is_set():
                got = await consumer.getmany(timeout_ms=500, max_records=batch)
                futures = []
                for tp, msgs in got.items():
                    for m in msgs:
                        src = SourceRef(topic=tp.topic, partition=tp.partition, offset=m.offset)
                        if not sink.is_new(src):
                            continue
                        rec = parse(model, m.value)
                        if isinstance(rec, tuple):
                            futures.append(await dead(m.value, m.key, tp.topic, tp.partition, m.offset, *rec))
                            sink.add(None, src)
                        elif getattr(rec, id_column) in seen:
                            sink.add(None, src)
                        else:
                            seen.add(getattr(rec, id_column))
                            sink.add(row_of(rec, src), src)
                if futures:
                    await asyncio.gather(*futures)
                if got:
                    landed += await asyncio.to_thread(sink.flush)
                    await consumer.commit()
    finally:
        await consumer.stop()
    return landed
