"""`alignloop bench ui`: the labeling UI's numbers (→ bench/results/ui-<ts>.json).

1. queue → servable: items published to judge.human_queue (a trickle) until the consumer has them in the DB; p95
   of (DB insert − queued_at) against the 2 s target (needs a broker; skipped with a note when none answers).
2. page/API latency with ``--items`` queued and ``--annotators`` concurrent simulated annotators over real HTTP
   (uvicorn + httpx): p95 of every request against 200 ms, and zero lost / duplicated labels (client-counted
   successes = answers in the DB = unique outbox records).
3. reliability: simulated annotators of known reliability (good ones, one random, one always-left) — the
   agreement figures must single out the bad ones; adaptive overlap (Dawid–Skene stop) vs a fixed 3-way
   majority: consensus accuracy and labels per resolved item.
"""
from __future__ import annotations

import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

from alignloop.bench._label_sim import SimAnnotator, crowd, human_queue_item, truth_of

CONFIG = {"export_min_alpha": 0.5, "queues": [
    {"name": "pairs", "kind": "pairwise", "min_labels": 2, "max_labels": 3, "stop_confidence": 0.95,
     "gold_rate": 0.0, "repeat_rate": 0.1, "repeat_gap": 3, "correction": False, "lease_s": 300},
    {"name": "scores", "kind": "score_card", "min_labels": 2, "max_labels": 3,
     "dimensions": [{"name": "helpfulness"}, {"name": "safety", "scale": "binary"}]}]}


def p95(xs: list[float]) -> float | None:
    return round(statistics.quantiles(xs, n=20)[18], 4) if len(xs) >= 20 else (round(max(xs), 4) if xs else None)


def _cfg(**pairs: Any) -> Any:
    from schemas.labeling import LabelingConfig

    data = {**CONFIG, "queues": [{**CONFIG["queues"][0], **pairs}, CONFIG["queues"][1]]}
    return LabelingConfig.model_validate(data)


# --- 1. queue -> servable -------------------------------------------------------------------------------------
async def queue_latency(n: int, rate: float) -> dict[str, Any]:
    import uuid

    from connectors.kafka import create_topics, producer
    from connectors.labeling_db import Item, LabelStore
    from schemas.settings import load_settings
    from schemas.topics import HUMAN_QUEUE
    from streams.labeling_feed import consume_queue

    s = load_settings(topic_prefix=f"bench-ui-{uuid.uuid4().hex[:6]}.", app_id=f"bench-ui-{uuid.uuid4().hex[:6]}")
    try:
        await asyncio.wait_for(create_topics(s), 15)
    except Exception as exc:
        return {"skipped": f"no broker at {s.kafka_bootstrap} ({type(exc).__name__}); `alignloop broker start`"}
    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-q-"))
    store = LabelStore(f"sqlite:///{tmp / 'q.db'}")
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(consume_queue(s, store, _cfg(), stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 60)  # the consumer has joined its group: measure serving, not joining
    await asyncio.sleep(1)
    async with producer(s) as prod:
        for i in range(n):
            hq = human_queue_item(i, pair=i % 2 == 0, tag="q")
            await prod.send(s.topic(HUMAN_QUEUE), hq.model_dump_json().encode(), key=hq.trace_id.encode())
            await asyncio.sleep(1 / rate)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(sum(v.values()) for v in store.counts().values()) < n:
        await asyncio.sleep(0.2)
    stop.set()
    await task
    with store.Session() as sess:
        from sqlalchemy import select

        rows = list(sess.execute(select(Item.created_at, Item.queued_at)))
    lat = [(c.replace(tzinfo=None) - q.replace(tzinfo=None)).total_seconds() for c, q in rows]
    store.close()
    return {"items": n, "servable": len(rows), "rate_per_s": rate, "p50_s": round(statistics.median(lat), 4),
            "p95_s": p95(lat), "target_p95_s": 2.0, "met": bool(lat) and p95(lat) <= 2.0 and len(rows) == n}


# --- 2. page latency under load -------------------------------------------------------------------------------
def _load_items(store: Any, n: int) -> float:
    from streams.labeling import item_from_queue

    cfg = _cfg()
    t0 = time.perf_counter()
    batch = []
    for i in range(n):
        batch.append(item_from_queue(human_queue_item(i, pair=True, tag="p"), cfg))
        if len(batch) == 5000:
            store.add_items(batch)
            batch = []
    store.add_items(batch)
    return time.perf_counter() - t0


THINK_S = (2.0, 10.0)
"""Seconds a simulated annotator reads an item before answering, drawn uniformly. Silent reading runs at about
238 words a minute (Brysbaert 2019, "How many words do we read per minute? A review and meta-analysis of reading
rate", Journal of Memory and Language 109, 104047); a bench item (question, response, two candidates, a tool call
and two judge verdicts) is 40–60 words, i.e. 10–15 s to read, plus the keystrokes. 2–10 s (mean 6 s) is faster
than that, so it errs towards more load. ``--think-s 0`` is the closed loop with no reading at all: a load test,
reported beside it."""


async def _annotator(c: Any, sim: SimAnnotator, seconds: float, lat: dict[str, list[float]],
                     ok: list[tuple[str, str]], errors: list[str], think: tuple[float, float]) -> None:
    """One annotator on its own HTTP client ``c`` (made beforehand: an httpx client's set-up would stall the
    event loop that times everyone else's requests): log in, then take an item, read it, answer it, until
    ``seconds`` are up."""
    import httpx

    rng = random.Random(f"think:{sim.name}")
    async with c:
        async def timed(what: str, method: str, url: str, **kw: Any) -> Any:
            t0 = time.perf_counter()
            r = await c.request(method, url, **kw)
            lat[what].append(time.perf_counter() - t0)
            return r

        if think[1]:  # annotators arrive over a few seconds, not in the same millisecond
            await asyncio.sleep(rng.uniform(0, think[1]))
        page = await timed("login", "GET", "/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = await timed("login", "POST", "/login", data={"csrf": token, "name": sim.name, "password": "bench-password"})
        if r.status_code != 303:
            errors.append(f"login {sim.name}: {r.status_code}")
            return
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                r = await timed("item_page", "GET", "/label/pairs", headers={"accept": "text/html"})
                m = re.search(r'action="(/label/pairs/(\d+))"', r.text)
                if not m:
                    break
                csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
                item = re.search(r'data-item="([^"]+)"', r.text).group(1)
                swapped = "Call support" in re.search(r'id="side-1">([^<]*)<', r.text).group(1)
                form = {"csrf": csrf, **sim.pairwise(truth_of(item), swapped)}
                if think[1]:
                    await asyncio.sleep(rng.uniform(*think))
                r = await timed("submit", "POST", m.group(1), data=form)
            except httpx.HTTPError as exc:  # a timeout is an error, not a label; the DB says what landed
                errors.append(f"{type(exc).__name__}")
                continue
            if r.status_code == 303:
                ok.append((item, sim.name))
            else:
                errors.append(f"{r.status_code}: {r.text[:80]}")


def bench_app() -> Any:
    """The app one uvicorn worker serves in the page-latency run (``uvicorn --factory --workers N``): the bench's
    DB from ``ALIGNLOOP_BENCH_UI_DB``, its queue config without hidden repeats, a fixed signing key — and, as a
    ``web_app`` worker does, the annotator-model refresher every 10 s (its fitting in a child process)."""
    import os

    from prometheus_client import CollectorRegistry

    from alignloop.ui import security
    from alignloop.ui.app import UiState, create_app
    from alignloop.ui.runtime import refreshing
    from connectors.labeling_db import LabelStore
    from schemas.settings import Settings

    db = Path(os.environ["ALIGNLOOP_BENCH_UI_DB"])
    ui = UiState(settings=Settings(home=db.parent, metrics_port=0), store=LabelStore(f"sqlite:///{db}"),
                 cfg=_cfg(repeat_rate=0.0), signer=security.Signer("bench-key" * 4, 3600),
                 registry=CollectorRegistry())
    return create_app(ui, lifespan=refreshing(ui))


def _serve(db: Path, port: int, workers: int) -> Any:
    """uvicorn with ``workers`` processes over the bench DB, in its own process group (the clients stay in this
    process, off the server's GIL). Returns the Popen once /healthz answers."""
    import os
    import subprocess
    import sys

    import httpx

    env = {**os.environ, "ALIGNLOOP_BENCH_UI_DB": str(db)}
    cmd = [sys.executable, "-m", "uvicorn", "alignloop.bench.ui:bench_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, cwd=os.getcwd(), start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bench's UI server exited ({proc.returncode}): {' '.join(cmd)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                # every worker must be up before the clocks start: wait until several answers came back
                time.sleep(1.0 + 0.5 * workers)
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the bench's UI server did not answer /healthz in 120 s")


def _stop(proc: Any) -> None:
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: uvicorn's supervisor and its workers
        proc.wait(20)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _page_run(db: Path, sims: list[SimAnnotator], seconds: float, port: int, workers: int,
              think: tuple[float, float]) -> dict[str, Any]:
    from sqlalchemy import func, select

    from connectors.labeling_db import Assignment, LabelStore, Outbox, User

    import httpx

    by: dict[str, list[float]] = {"login": [], "item_page": [], "submit": []}
    ok: list[tuple[str, str]] = []
    errors: list[str] = []
    proc = _serve(db, port, workers)
    cpu0 = _cpu_of(proc.pid)
    try:
        async def run_all() -> float:
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)  # a browser tab's keep-alive
            clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits)
                       for _ in sims]
            t0 = time.perf_counter()
            await asyncio.gather(*[_annotator(c, sim, seconds, by, ok, errors, think)
                                   for c, sim in zip(clients, sims)])
            return time.perf_counter() - t0
        wall = asyncio.run(run_all())
        server_cpu = _cpu_of(proc.pid) - cpu0
    finally:
        _stop(proc)
    store = LabelStore(f"sqlite:///{db}")
    with store.Session() as s:
        landed = set(s.execute(select(Assignment.item_id, User.name).join(User, User.id == Assignment.user_id)
                               .where(Assignment.status == "done")).tuples())
        done = s.scalar(select(func.count()).select_from(Assignment).where(Assignment.status == "done"))
        pairs = s.execute(select(Assignment.item_id, Assignment.user_id, func.count()).where(
            Assignment.status == "done").group_by(Assignment.item_id, Assignment.user_id).having(func.count() > 1))
        dup_pairs = len(list(pairs))
        every = [k for (k,) in s.execute(select(Outbox.key).where(Outbox.kind == "preference"))]
    store.close()
    keys = [k for k in every if k.startswith("human:")]  # one per answer; "consensus:<item>" when one resolves
    consensus = [k for k in every if k.startswith("consensus:")]
    lat = [x for xs in by.values() for x in xs]
    p95_ms = round(p95(lat) * 1000, 1)
    return {"think_s": list(think) if think[1] else 0, "workers": workers, "seconds": round(wall, 1),
            "requests": len(lat), "requests_per_s": round(len(lat) / wall, 1),
            "server_cpu_ms_per_request": round(server_cpu / max(1, len(lat)) * 1000, 2),
            "p50_ms": round(statistics.median(lat) * 1000, 1), "p95_ms": p95_ms,
            "p99_ms": round(statistics.quantiles(lat, n=100)[98] * 1000, 1), "target_p95_ms": 200,
            "p95_ms_by_request": {k: round(p95(v) * 1000, 1) for k, v in by.items() if v},
            "labels_client_ok": len(ok), "labels_in_db": done, "labels_published": len(keys),
            "consensus_published": len(consensus), "lost": len(set(ok) - landed), "unacknowledged": done - len(ok),
            "duplicated": (len(keys) - len(set(keys))) + (len(consensus) - len(set(consensus))) + dup_pairs,
            "errors": len(errors),
            "error_sample": errors[:3],
            "met": p95_ms <= 200 and not set(ok) - landed and done == len(set(keys)) == len(keys)
            and len(consensus) == len(set(consensus))}


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children, from /proc (the uvicorn workers)."""
    tick = 100.0
    total = 0.0
    try:
        import os

        tick = float(os.sysconf("SC_CLK_TCK"))
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for p in [str(pid), *kids]:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
    except OSError:
        pass
    return total


def page_latency(n_items: int, n_annotators: int, seconds: float, port: int, workers: int = 2,
                 think: tuple[float, float] = THINK_S) -> dict[str, Any]:
    """Load ``n_items``, then two runs on copies of that DB: annotators who read for ``think`` seconds before each
    answer (the target's run) and a closed loop with no think time (a load test), each over real HTTP against
    ``workers`` uvicorn processes, the clients in this process."""
    import shutil

    from argon2 import PasswordHasher

    from alignloop.ui import security
    from connectors.labeling_db import LabelStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    store = LabelStore(f"sqlite:///{tmp / 'base.db'}")
    load_s = _load_items(store, n_items)
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # logins are not the subject
    pw = cheap.hash("bench-password")  # verification reads the parameters from the hash itself
    assert security.check_password(pw, "bench-password")
    rng = random.Random(5)
    sims = [SimAnnotator(f"a{i:02d}", rng.choice([0.9, 0.8, 0.7]), seed=i) for i in range(n_annotators)]
    for sim in sims:
        store.add_user(sim.name, "annotator", pw)
    store.close()  # the last connection closing checkpoints the WAL into base.db
    runs: dict[str, Any] = {}
    for name, th in (("reading", think), ("closed_loop", (0.0, 0.0))):
        if name == "reading" and not think[1]:
            continue
        db = tmp / f"{name}.db"
        shutil.copy(tmp / "base.db", db)
        runs[name] = _page_run(db, sims, seconds, port, workers, th)
    main = runs.get("reading") or runs["closed_loop"]
    return {"items_queued": n_items, "load_s": round(load_s, 2), "annotators": n_annotators, **main,
            "closed_loop": runs["closed_loop"], "met": main["met"]}


# --- 3. reliability -------------------------------------------------------------------------------------------
def simulate(n_items: int, adaptive: bool, seed: int) -> dict[str, Any]:
    from connectors.labeling_db import LabelStore
    from streams.agreement import majority
    from streams.agreement_summary import fit_model, summarise
    from streams.labeling import Finisher, item_from_queue

    cfg = _cfg(min_labels=2 if adaptive else 3, max_labels=3, repeat_rate=0.1)  # adaptive: stop early at 2
    q = cfg.queue("pairs")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-sim-"))
    store = LabelStore(f"sqlite:///{tmp / 'sim.db'}")
    store.add_items([item_from_queue(human_queue_item(i, pair=True, tag="s"), cfg) for i in range(n_items)])
    sims = crowd(seed)
    ids = {s.name: store.add_user(s.name, "annotator", "x").id for s in sims}
    fin = Finisher(cfg)
    rng = random.Random(seed)
    answered = 0
    active = list(sims)
    while active:
        sim = rng.choice(active)
        lease = store.next_item(ids[sim.name], "pairs", lease_s=600)
        if lease is None:
            active.remove(sim)
            continue
        form = sim.pairwise(truth_of(lease.item_id), lease.swapped)
        from streams.labeling import parse_answer

        store.submit(ids[sim.name], lease.assignment_id, parse_answer(q, form, lease.swapped), fin,
                     repeat_rate=q.repeat_rate, repeat_gap=q.repeat_gap)
        answered += 1
        if adaptive and answered % 200 == 0:
            fin.models["pairs"] = fit_model(q, store.done_answers("pairs"))
    rows = store.done_answers("pairs")
    by_item: dict[str, list[tuple[str, int]]] = {}
    for item_id, who, kind, _sw, ans, _it in rows:
        if kind == "label":
            by_item.setdefault(item_id, []).append((who, ans["chosen"]))
    if adaptive:
        consensus = {}
        for item_id, votes in by_item.items():
            it = store.item(item_id)
            consensus[item_id] = it.consensus["decision"] if it.consensus else majority([v for _, v in votes])
        method = "dawid_skene adaptive 2-3"
    else:
        consensus = {i: majority([v for _, v in votes]) for i, votes in by_item.items()}
        method = "majority fixed 3"
    correct = sum(consensus[i] == truth_of(i) for i in consensus)
    labels = sum(len(v) for v in by_item.values())
    summary = summarise(q, rows)
    store.close()
    return {"method": method, "items": len(by_item), "labels": labels,
            "labels_per_resolved_item": round(labels / max(1, len(by_item)), 3),
            "consensus_accuracy": round(correct / max(1, len(by_item)), 4), "summary": summary}


def reliability(n_items: int, seed: int) -> dict[str, Any]:
    adaptive, fixed = simulate(n_items, True, seed), simulate(n_items, False, seed)
    s = fixed["summary"]
    cons = {w: v["consistency"] for w, v in s["self_consistency"].items()}
    left = {w: v["left_rate"] for w, v in s["position_bias"].items()}
    kappa_with_good: dict[str, list[float]] = {}
    for pair, v in s["kappa"].items():
        a, b = pair.split("|")
        k = v.get("decision", {}).get("kappa")
        if k is None:
            continue
        for me, other in ((a, b), (b, a)):
            if other.startswith("good"):
                kappa_with_good.setdefault(me, []).append(k)
    mean_kappa = {w: round(statistics.mean(v), 3) for w, v in kappa_with_good.items()}
    good = [w for w in cons if w.startswith("good")]
    singled = {"random_lowest_kappa": min(mean_kappa, key=mean_kappa.get) in ("random", "lefty")
               and all(mean_kappa[w] > mean_kappa["random"] for w in good),
               "lefty_position_bias": left.get("lefty") == 1.0 and all(abs(left[w] - 0.5) < 0.1 for w in good),
               "random_lower_self_consistency": all(cons.get("random", 1) < cons[w] for w in good)}
    return {"items": n_items, "adaptive": {k: v for k, v in adaptive.items() if k != "summary"},
            "fixed_3": {k: v for k, v in fixed.items() if k != "summary"}, "self_consistency": cons,
            "left_rate": left, "mean_kappa_with_good": mean_kappa, "alpha": s["alpha"], "singled_out": singled,
            "adaptive_fewer_labels": adaptive["labels_per_resolved_item"] < fixed["labels_per_resolved_item"],
            "adaptive_accuracy_gap": round(adaptive["consensus_accuracy"] - fixed["consensus_accuracy"], 4)}


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("ui")
    def ui(items: int = typer.Option(100_000, help="Items queued for the page-latency run."),
           annotators: int = typer.Option(50, help="Concurrent simulated annotators."),
           seconds: float = typer.Option(30.0, help="How long the annotators label."),
           sim_items: int = typer.Option(600, help="Items in each reliability simulation."),
           queue_items: int = typer.Option(300, help="Items trickled through judge.human_queue."),
           queue_rate: float = typer.Option(50.0, help="Their rate per second."),
           port: int = typer.Option(8791, help="Port for the bench's UI server."),
           workers: int = typer.Option(2, help="uvicorn worker processes for the page-latency run."),
           think_s: str = typer.Option("2,10", help="Seconds each annotator reads an item before answering, "
                                       "uniform MIN,MAX (docs: Brysbaert 2019 reading rate); 0 = only the "
                                       "closed-loop load test. The closed loop is always run and reported too."),
           seed: int = typer.Option(7),
           parts: str = typer.Option("queue,page,reliability", help="Which parts to run (comma-separated).")) -> None:
        """Queue→servable p95, page p95 under load with zero lost/duplicated labels, and whether agreement
        figures single out unreliable annotators; adaptive vs fixed overlap."""
        from alignloop.bench._results import print_table, write_result

        want = {x.strip() for x in parts.split(",")}
        figures: dict[str, Any] = {"parts": sorted(want)}
        if "queue" in want:
            figures["queue_to_servable"] = asyncio.run(queue_latency(queue_items, queue_rate))
        if "page" in want:
            lo, _, hi = think_s.partition(",")
            think = (float(lo), float(hi or lo))
            figures["page_latency"] = page_latency(items, annotators, seconds, port, workers, think)
        if "reliability" in want:
            figures["reliability"] = reliability(sim_items, seed)
        q = figures.get("queue_to_servable", {"skipped": "not run"})
        p = figures.get("page_latency", {k: None for k in ("p95_ms", "requests_per_s", "labels_client_ok",
                                                           "labels_in_db", "labels_published", "lost", "duplicated")})
        r = figures.get("reliability", {"adaptive": {}, "fixed_3": {}, "singled_out": None})
        print_table("labeling UI", [
            ("queue→servable p95 s (≤ 2)", q.get("p95_s", q.get("skipped"))),
            ("page p95 ms (≤ 200), annotators reading", p["p95_ms"]), ("requests/s", p["requests_per_s"]),
            ("closed loop, no think time: p95 ms, req/s", f"{p.get('closed_loop', {}).get('p95_ms')}, "
                                                         f"{p.get('closed_loop', {}).get('requests_per_s')}"),
            ("labels ok / in db / published", f"{p['labels_client_ok']} / {p['labels_in_db']} / {p['labels_published']}"),
            ("lost / duplicated", f"{p['lost']} / {p['duplicated']}"),
            ("adaptive labels/item, accuracy", f"{r['adaptive'].get('labels_per_resolved_item')}, "
                                               f"{r['adaptive'].get('consensus_accuracy')}"),
            ("fixed-3 labels/item, accuracy", f"{r['fixed_3'].get('labels_per_resolved_item')}, "
                                              f"{r['fixed_3'].get('consensus_accuracy')}"),
            ("bad annotators singled out", r["singled_out"])])
        typer.echo(f"wrote {write_result('ui', figures)}")
