"""Prometheus metrics of the stream worker. The registry is passed in, never a hidden global."""
from __future__ import annotations

from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.dlq import DeadLetter
from schemas.verdict import JudgedTrace
from streams.encoding import summarize

STAGES = ("validate", "scrub", "judge", "sink")


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.records_in = Counter("alignloop_pipeline_records_in_total", "Records entering a stage.", ["stage"],
                                  registry=registry)
        self.records_out = Counter("alignloop_pipeline_records_out_total", "Records leaving a stage.", ["stage"],
                                   registry=registry)
        self.dlq = Counter("alignloop_pipeline_dlq_total", "Records dead-lettered, by stage and reason.",
                           ["stage", "reason"], registry=registry)
        self.pii = Counter("alignloop_pipeline_pii_findings_total", "PII findings, by entity kind.", ["kind"],
                           registry=registry)
        self.verdicts = Counter("alignloop_pipeline_verdicts_total", "Fast-judge verdicts.",
                                ["judge", "status", "passed"], registry=registry)
        self.outcomes = Counter("alignloop_pipeline_outcomes_total", "Aggregate outcome per trace.", ["outcome"],
                                registry=registry)
        self.skipped = Counter("alignloop_sink_skipped_total", "Redelivered records already in the table.",
                               ["table"], registry=registry)
        self.batch_rows = Histogram("alignloop_sink_batch_rows", "Rows per Delta commit.", ["table"],
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000), registry=registry)
        self.commit_seconds = Histogram("alignloop_sink_commit_seconds", "Delta commit latency.", ["table"],
                                        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10), registry=registry)
        self.batch_seconds = Histogram("alignloop_pipeline_batch_seconds", "Step time per consumed batch.",
                                       buckets=(.005, .01, .05, .1, .25, .5, 1, 2.5, 5), registry=registry)
        self.lag = Gauge("alignloop_worker_consumer_lag", "Records behind the high-water mark.",
                         ["topic", "partition"], registry=registry)
        self.landed_ts = Gauge("alignloop_sink_last_commit_timestamp_seconds", "Unix time of the last commit.",
                               ["table"], registry=registry)
        for stage in STAGES:  # export zeros from the start so rate() works on fresh workers
            self.records_in.labels(stage)
            self.records_out.labels(stage)

    def tally(self) -> "BatchTally":
        """A per-batch counter: ``add`` each outcome as it is made, ``flush`` once per batch."""
        return BatchTally(self)


class BatchTally:
    """A batch's outcomes counted locally as they are made (a labelled-child lookup per record is slow, and the
    worker need not keep every outcome of a batch alive just to count it), then added to the metrics at once."""

    __slots__ = ("metrics", "stage_in", "stage_out", "dlq", "pii", "summaries", "results")

    def __init__(self, metrics: PipelineMetrics) -> None:
        self.metrics = metrics
        self.stage_in: Tally[str] = Tally()
        self.stage_out: Tally[str] = Tally()
        self.dlq: Tally[tuple[str, str]] = Tally()
        self.pii: Tally[str] = Tally()
        self.summaries: Tally[Any] = Tally()  # verdicts' labels (judge, status, passed)... -> traces; counted at flush
        self.results: Tally[str] = Tally()

    def add(self, o: JudgedTrace | DeadLetter, summary: Any = None) -> None:
        """Count an outcome. Its verdicts are counted per distinct label tuple (most traces share a few) at
        ``flush``; pass the ``streams.encoding.summarize`` of its verdicts when it is already made."""
        self.stage_in["validate"] += 1
        if isinstance(o, DeadLetter):
            self.dlq[(o.stage, o.reason)] += 1
            last = STAGES.index(o.stage)  # it went through the stages before, and into this one
            for stage in STAGES[:last]:
                self.stage_out[stage] += 1
            for stage in STAGES[1:last + 1]:
                self.stage_in[stage] += 1
            return
        for p in o.pii:
            self.pii[p.kind] += p.count
        self.summaries[(summary if summary is not None else summarize(o.verdicts)).labels] += 1
        self.results[o.outcome] += 1

    def flush(self) -> None:
        m = self.metrics
        n_ok = sum(self.results.values())
        for stage in ("scrub", "judge"):
            self.stage_in[stage] += n_ok
        for stage in ("validate", "scrub", "judge"):
            self.stage_out[stage] += n_ok
        for counter, tally in ((m.records_in, self.stage_in), (m.records_out, self.stage_out), (m.pii, self.pii),
                               (m.outcomes, self.results)):
            for label, n in tally.items():
                counter.labels(label).inc(n)
        for (stage, reason), n in self.dlq.items():
            m.dlq.labels(stage, reason).inc(n)
        verdicts: Tally[tuple[str, str, bool]] = Tally()  # (judge, status, passed)
        for labelled, n in self.summaries.items():
            for labels in labelled:
                verdicts[labels] += n
        for (judge, status, passed), n in verdicts.items():
            m.verdicts.labels(judge, status, "true" if passed else "false").inc(n)
