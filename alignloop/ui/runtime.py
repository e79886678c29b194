"""``alignloop ui`` at run time: the web server plus its background tasks in one process — the human-queue consumer,
the outbox drain (labels, preferences, audit entries, corrections), the labels and preferences landers, and the
agreement refresher (Dawid–Skene refit, figures for the page, Prometheus gauges, the ``agreement`` table)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alignloop.ui.app import UiState
from alignloop.ui.security import Signer, db_url, secret_key
from connectors.labeling_db import LabelStore
from streams.agreement_summary import fit_model, summarise

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger("alignloop.ui")


class UiMetrics:
    def __init__(self, registry: CollectorRegistry):
        r = registry
        self.answers = Counter("alignloop_ui_answers_total", "Answers submitted, by queue.", ["queue"], registry=r)
        self.items = Gauge("alignloop_ui_items", "Items by queue and status.", ["queue", "status"], registry=r)
        self.ingested = Counter("alignloop_ui_items_ingested_total", "New items from judge.human_queue.", registry=r)
        self.unservable = Counter("alignloop_ui_items_unservable_total", "Queue records that could not be served, "
                                  "by reason.", ["reason"], registry=r)
        self.ingest_s = Histogram("alignloop_ui_ingest_batch_seconds", "Seconds to make a batch servable.",
                                  registry=r)
        self.alpha = Gauge("alignloop_ui_agreement_alpha", "Krippendorff's alpha by queue and dimension.",
                           ["queue", "dimension"], registry=r)
        self.consistency = Gauge("alignloop_ui_annotator_self_consistency", "Share of hidden repeats answered the "
                                 "same.", ["queue", "annotator"], registry=r)
        self.left_rate = Gauge("alignloop_ui_annotator_left_rate", "Share of pairwise answers picking the left "
                               "side (0.5 = no position bias).", ["queue", "annotator"], registry=r)
        self.gold = Gauge("alignloop_ui_annotator_gold_accuracy", "Share of gold items answered right.",
                          ["queue", "annotator"], registry=r)
        self.judge = Gauge("alignloop_ui_judge_human_agreement", "Agreement of a judge's pass/fail with the human "
                           "consensus.", ["queue", "judge"], registry=r)

    def batch(self, new: int, skipped: dict[str, int], seconds: float) -> None:
        self.ingested.inc(new)
        self.ingest_s.observe(seconds)
        for reason, n in skipped.items():
            self.unservable.labels(reason).inc(n)

    def show(self, stats: dict[str, Any], counts: dict[str, dict[str, int]]) -> None:
        for q, by in counts.items():
            for st, n in by.items():
                self.items.labels(q, st).set(n)
        for q, s in stats.items():
            for dim, a in s["alpha"].items():
                if a is not None:
                    self.alpha.labels(q, dim).set(a)
            for who, v in s["self_consistency"].items():
                self.consistency.labels(q, who).set(v["consistency"])
            for who, v in s["position_bias"].items():
                self.left_rate.labels(q, who).set(v["left_rate"])
            for who, v in s["gold_accuracy"].items():
                self.gold.labels(q, who).set(v["accuracy"])
            for judge, v in s["judge_agreement"].items():
                self.judge.labels(q, judge).set(v["agreement"])


def build_state(settings: "Settings", *, registry: CollectorRegistry | None = None) -> UiState:
    from schemas.labeling import load_labeling_config

    registry = registry or CollectorRegistry()
    ui = UiState(settings=settings, store=LabelStore(db_url(settings)),
                 cfg=load_labeling_config(settings.labeling_config),
                 signer=Signer(secret_key(settings), settings.ui_session_ttl_s), registry=registry)
    ui.metrics = UiMetrics(registry)
    return ui


def figures(url: str, cfg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each queue's annotator model and agreement figures, from the DB at ``url``: the CPU-heavy part of a refresh
    (crowd-kit's Dawid–Skene, scikit-learn, krippendorff; ~1.3 CPU-s at 1,600 answers), run in a child process by
    ``refresher`` so it never holds the web server's GIL."""
    store = LabelStore(url)
    try:
        models: dict[str, Any] = {}
        stats: dict[str, Any] = {}
        for q in cfg.queues:
            rows = store.done_answers(q.name)
            models[q.name], stats[q.name] = fit_model(q, rows), summarise(q, rows)
        return models, stats
    finally:
        store.close()


def apply(ui: UiState, models: dict[str, Any], stats: dict[str, Any], *, write_table: bool = False
          ) -> dict[str, Any]:
    """Install refitted models and figures; update the gauges (and write the ``agreement`` table)."""
    ui.finisher.models.update(models)
    ui.stats.update(stats)
    if ui.metrics is not None:
        ui.metrics.show(ui.stats, ui.store.counts())
    if write_table:
        from connectors.agreement_table import write_agreement

        write_agreement(ui.settings, [s for s in ui.stats.values() if s["labels"]])
    return ui.stats


def refresh(ui: UiState, *, write_table: bool = False) -> dict[str, Any]:
    """Refit each queue's annotator model, recompute its agreement figures, update the gauges (and write the
    ``agreement`` table), in this process. Returns the figures."""
    models, stats = figures(ui.store.url, ui.cfg)
    return apply(ui, models, stats, write_table=write_table)


async def refresher(ui: UiState, stop: asyncio.Event, *, every_s: float = 10.0, table_every_s: float = 60.0) -> None:
    """Refresh every ``every_s``: the fitting in one child process (spawned once, kept), the results applied
    here — a refresh in a thread held the GIL for ~1.3 s every 10 s and stalled every page meanwhile."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    last_table = 0.0
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with_parent,
                               initargs=(os.getpid(),))
    child: int | None = None
    try:
        child = await loop.run_in_executor(pool, os.getpid)  # the child's pid, to end it mid-fit on shutdown
        while not stop.is_set():
            try:
                due = time.monotonic() - last_table >= table_every_s
                models, stats = await loop.run_in_executor(pool, figures, ui.store.url, ui.cfg)
                await asyncio.to_thread(apply, ui, models, stats, write_table=due)
                if due:
                    last_table = time.monotonic()
            except Exception as exc:  # figures are advisory: a bad refresh must not stop the labeling
                log.warning("agreement refresh failed: %s", exc)
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except asyncio.TimeoutError:
                pass
    finally:  # end the child with the server, even mid-fit (its figures are advisory); else it outlives us
        pool.shutdown(wait=False, cancel_futures=True)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """In the refit child: exit once the server that spawned it is gone (``kill -9`` runs no ``finally``; the
    orphan would otherwise live on, holding the database open)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def web_app() -> Any:
    """More web workers beside ``alignloop ui``, for a team: ``uvicorn --factory alignloop.ui.runtime:web_app
    --workers N --port P`` with the same ``ALIGNLOOP_*`` settings (the same DB: PostgreSQL by
    ``ALIGNLOOP_UI_DB_URL``, or SQLite on the same host). They serve pages only; the queue consumer, the outbox
    drain and the landers stay in ``alignloop ui``. Each worker refits its own annotator model every 10 s (the
    adaptive stop), leaving the ``agreement`` table to ``alignloop ui``."""
    from alignloop.ui.app import create_app
    from schemas.settings import load_settings

    ui = build_state(load_settings())
    return create_app(ui, lifespan=refreshing(ui))


def refreshing(ui: UiState) -> Any:
    """A lifespan that runs ``refresher`` (agreement table left to ``alignloop ui``) and closes the store."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(refresher(ui, stop, table_every_s=float("inf")))
        try:
            yield
        finally:
            stop.set()
            await task
            ui.store.close()

    return lifespan


async def supervised(name: str, job: Any, stop: asyncio.Event, *, backoff_s: float = 2.0) -> None:
    """Run ``job()`` until ``stop``, restarting it after a failure (a broker outage must not end the UI)."""
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:
            log.warning("background task %s failed (%s); restarting in %.0f s", name, exc, backoff_s)
            try:
                await asyncio.wait_for(stop.wait(), backoff_s)
            except asyncio.TimeoutError:
                pass


async def serve(settings: "Settings", *, host: str = "127.0.0.1", port: int | None = None, land: bool = True,
                ready: Any = None) -> None:
    """Run the app and its tasks until interrupted."""
    import uvicorn

    from alignloop.ui.app import create_app
    from connectors.audit import AuditTrail
    from streams.curation.sink import land_preferences
    from streams.labeling_feed import OutboxDrain, consume_queue, land_labels

    ui = build_state(settings)
    await asyncio.to_thread(refresh, ui)
    trail = AuditTrail(settings)
    stop = asyncio.Event()
    drain = OutboxDrain(settings, ui.store, audit=trail)
    jobs = {"queue": lambda: consume_queue(settings, ui.store, ui.cfg, stop, on_batch=ui.metrics.batch),
            "outbox": lambda: drain.run(stop), "agreement": lambda: refresher(ui, stop)}
    if land:
        jobs["labels"] = lambda: land_labels(settings, stop, registry=ui.registry)
        jobs["preferences"] = lambda: land_preferences(settings, stop)
    tasks = [asyncio.create_task(supervised(name, job, stop)) for name, job in jobs.items()]
    server = uvicorn.Server(uvicorn.Config(create_app(ui), host=host, port=port or settings.ui_port,
                                           log_level="warning", access_log=False))
    try:
        await server.serve()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await trail.close()
        ui.store.close()
