"""`alignloop bench flags`: the agent SDK (``RolloutClient``) against a real broker.

(a) ``flag_propagation_p99_s``: ``--clients`` RolloutClients follow ``rollout.flags``; a producer publishes a
    sequence of new flag versions (ramp steps); for each version and client, the time from the produce ack to the
    client serving it. Baseline in the same run: clients that re-read the whole topic every ``--poll-interval``
    seconds (flagd's polling HTTP sync; its default interval is 5 s).
(b) ``mid_conversation_switches`` over a full ramp 5 -> 25 -> 50 -> 100 of ``--conversations`` conversations,
    each with several turns spread over the ramp, then a rollback: conversations that changed arm between turns
    during the ramp (target 0) and, separately, those the rollback moved (by design). Baseline: flagd's
    per-request evaluation of the same turns (no pins). Plus the cost of ``variant()`` in microseconds.
"""
from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console()
AGENT = "bench-bot"
RAMP = (5, 25, 50, 100)


def _flag(version: int, weight: int, stage: str | None = None) -> dict[str, Any]:
    return {"agent_id": AGENT, "rollout_id": "bench-r1", "version": version,
            "stage": stage or ("promoted" if weight == 100 else "canary"),
            "baseline": {"policy_id": "base-v1"},
            "candidate": {"policy_id": "cand-v2", "adapter_id": "bench@2", "adapter_hash": "sha256:bench2"},
            "weights": {"candidate": weight, "baseline": 100 - weight}}


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def _summary(xs: list[float]) -> dict[str, Any]:
    return {"n": len(xs), "p50": _pct(xs, 0.50), "p99": _pct(xs, 0.99), "max": max(xs) if xs else None,
            "mean": statistics.fmean(xs) if xs else None}


class _Poller:
    """The baseline: re-read the compacted topic every ``interval`` s (random phase), fold it, note when each
    version was first served."""

    def __init__(self, settings: Any, interval: float, rng: random.Random) -> None:
        self.settings, self.interval, self.phase = settings, interval, rng.random() * interval
        self.first_seen: dict[int, float] = {}
        self.reads = 0

    async def run(self, stop: threading.Event) -> None:
        from connectors.kafka import read_topic
        from streams.rollout.flags import fold_records

        await asyncio.sleep(self.phase)
        while not stop.is_set():
            tick = time.monotonic()
            msgs = await read_topic(self.settings, self.settings.topic("rollout.flags"), timeout_s=2.0)
            flags, _ = fold_records(m.value for m in msgs)
            self.reads += 1
            if (f := flags.get(AGENT)) is not None:
                now = time.monotonic()
                for v in range(1, f.version + 1):
                    self.first_seen.setdefault(v, now)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - tick)))


def _run_pollers(pollers: list[_Poller], stop: threading.Event) -> threading.Thread:
    async def main() -> None:
        await asyncio.gather(*(p.run(stop) for p in pollers))

    t = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    t.start()
    return t


async def _produce(settings: Any, flags: list[dict[str, Any]], gap_s: float) -> dict[int, tuple[float, float]]:
    """Publish each flag, ``gap_s`` apart; {version: (send start, ack)} in monotonic seconds."""
    from connectors.kafka import producer

    times: dict[int, tuple[float, float]] = {}
    async with producer(settings, linger_ms=0) as prod:
        for f in flags:
            t0 = time.monotonic()
            await prod.send_and_wait(settings.topic("rollout.flags"), json.dumps(f).encode(), key=AGENT.encode())
            times[f["version"]] = (t0, time.monotonic())
            await asyncio.sleep(gap_s)
    return times


def propagation(settings: Any, work: Path, *, clients: int, versions: int, gap_s: float, pollers: int,
                poll_interval: float, seed: int) -> dict[str, Any]:
    from connectors.rollout_client import RolloutClient

    stable = {**_flag(1, 0, "stable"), "candidate": None, "rollout_id": None, "weights": {"baseline": 100}}
    asyncio.run(_produce(settings, [stable], 0))
    arrivals: dict[tuple[int, int], float] = {}

    def on_apply(i: int):
        return lambda flag: arrivals.setdefault((i, flag.version), time.monotonic())

    fleet = [RolloutClient(settings, cache_path=work / f"client-{i}.json", on_apply=on_apply(i))
             for i in range(clients)]
    for c in fleet:
        c.start()
    ready = all(c.wait_ready(60) for c in fleet)
    rng = random.Random(seed)
    polls = [_Poller(settings, poll_interval, rng) for _ in range(pollers)]
    stop = threading.Event()
    poll_thread = _run_pollers(polls, stop) if polls else None
    time.sleep(poll_interval + 1 if polls else 0.5)  # every poller has read the topic once
    steps = [_flag(2 + k, w) for k, w in enumerate((list(RAMP) * versions)[:versions])]
    console.print(f"propagation: {clients} clients (ready: {ready}), {pollers} pollers every {poll_interval:g} s, "
                  f"{versions} versions {gap_s:g} s apart …")
    sent = asyncio.run(_produce(settings, steps, gap_s))
    last = steps[-1]["version"]
    deadline = time.monotonic() + 30 + poll_interval
    while time.monotonic() < deadline and not (
            all(c.flag(AGENT) and c.flag(AGENT).version == last for c in fleet)
            and all(last in p.first_seen for p in polls)):
        time.sleep(0.05)
    stop.set()
    for c in fleet:
        c._stopping.set()  # noqa: SLF001 - signal all first so the joins below overlap
    for c in fleet:
        c.stop()
    if poll_thread is not None:
        poll_thread.join(poll_interval + 10)
    stream_ack = [max(0.0, arrivals[(i, v)] - sent[v][1]) for i in range(clients) for v in sent
                  if (i, v) in arrivals]
    stream_send = [arrivals[(i, v)] - sent[v][0] for i in range(clients) for v in sent if (i, v) in arrivals]
    poll_ack = [max(0.0, p.first_seen[v] - sent[v][1]) for p in polls for v in sent if v in p.first_seen]
    missed = clients * len(sent) - len(stream_ack)
    return {"clients": clients, "versions": len(sent), "gap_s": gap_s, "all_ready": ready,
            "served_after_ack_s": _summary(stream_ack), "served_after_send_s": _summary(stream_send),
            "ack_s": _summary([a - s for s, a in sent.values()]), "missed": missed,
            "served_before_ack": sum(arrivals[(i, v)] < sent[v][1] for i in range(clients) for v in sent
                                     if (i, v) in arrivals),
            "poll_baseline": {"pollers": pollers, "interval_s": poll_interval, "reads": sum(p.reads for p in polls),
                              "served_after_ack_s": _summary(poll_ack),
                              "missed": pollers * len(sent) - len(poll_ack)}}


def switches(settings: Any, work: Path, *, conversations: int, turns: int, seed: int) -> dict[str, Any]:
    """Every conversation's turns over consecutive ramp phases (each turn stays or advances one phase), the
    client asked on each turn after the phase's flag has reached it; then a rollback."""
    from connectors.rollout_client import RolloutClient
    from schemas.bucketing import assign
    from schemas.rollout import RolloutFlag

    rng = random.Random(seed)
    plan: dict[int, list[str]] = {p: [] for p in range(len(RAMP) + 1)}
    for i in range(conversations):
        conv, phase = f"conv-{seed}-{i:06d}", rng.randrange(len(RAMP))
        for _ in range(turns):
            plan[phase].append(conv)
            phase = min(len(RAMP) - 1, phase + (rng.random() < 0.5))
        if phase == len(RAMP) - 1 and rng.random() < 0.5:
            plan[len(RAMP)].append(conv)  # still open when the rollback lands
    base_version = 1000
    flags = [_flag(base_version + k, w) for k, w in enumerate(RAMP)]
    flags.append(_flag(base_version + len(RAMP), 0, "rolled_back"))
    client = RolloutClient(settings, cache_path=work / "switches.json").start(wait_s=60)
    seen: dict[str, list[str]] = {}
    bare: dict[str, list[str]] = {}
    cost_ns: list[int] = []
    assign_ns: list[int] = []
    try:
        for phase, f in enumerate(flags):
            asyncio.run(_produce(settings, [f], 0))
            end = time.monotonic() + 30
            while (client.flag(AGENT) is None or client.flag(AGENT).version < f["version"]) and time.monotonic() < end:
                time.sleep(0.01)
            model = RolloutFlag.model_validate(f)
            order = plan[phase][:]
            rng.shuffle(order)
            for conv in order:
                t0 = time.perf_counter_ns()
                got = client.variant(AGENT, conv)
                t1 = time.perf_counter_ns()
                flagd = assign(model, conv)
                t2 = time.perf_counter_ns()
                cost_ns.append(t1 - t0)
                assign_ns.append(t2 - t1)
                seen.setdefault(conv, []).append(got[0] if got else "none")
                bare.setdefault(conv, []).append(flagd)
        stats = client.stats
    finally:
        client.stop()

    def moved(hist: dict[str, list[str]], rollback: set[str]) -> tuple[int, int]:
        ramp_moves = rb_moves = 0
        for conv, h in hist.items():
            n_ramp = len(h) - (conv in rollback)
            ramp_moves += len(set(h[:n_ramp])) > 1
            rb_moves += conv in rollback and h[-1] != h[n_ramp - 1]
        return ramp_moves, rb_moves

    at_rollback = set(plan[len(RAMP)])
    sdk_ramp, sdk_rb = moved(seen, at_rollback)
    flagd_ramp, flagd_rb = moved(bare, at_rollback)
    us = [n / 1000 for n in cost_ns]
    return {"conversations": conversations, "turns_per_conversation": turns, "variant_calls": len(cost_ns),
            "mid_conversation_switches": sdk_ramp, "rollback_moves": sdk_rb,
            "open_at_rollback": len(at_rollback), "client_moves": stats["moves"],
            "flagd_per_request_baseline": {"mid_conversation_switches": flagd_ramp, "rollback_moves": flagd_rb},
            "variant_us": {"p50": _pct(us, 0.5), "p99": _pct(us, 0.99), "max": max(us)},
            "flagd_assign_us": {"p50": _pct([n / 1000 for n in assign_ns], 0.5),
                                "p99": _pct([n / 1000 for n in assign_ns], 0.99)}}


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("flags")
    def flags(
        clients: int = typer.Option(50, "--clients", min=1, help="RolloutClients following the topic."),
        versions: int = typer.Option(12, "--versions", min=1, help="Flag versions published (ramp steps)."),
        gap: float = typer.Option(1.5, "--gap", min=0.05, help="Seconds between two versions."),
        pollers: int = typer.Option(5, "--pollers", min=0, help="Baseline clients re-reading the topic."),
        poll_interval: float = typer.Option(5.0, "--poll-interval", min=0.1, help="Baseline re-read interval (s)."),
        conversations: int = typer.Option(10_000, "--conversations", min=1, help="Conversations over the ramp."),
        turns: int = typer.Option(4, "--turns", min=2, help="Turns per conversation."),
        seed: int = typer.Option(14, "--seed"),
        keep: bool = typer.Option(False, "--keep", help="Keep the bench topic."),
    ) -> None:
        """Flag propagation to 50 SDK clients and conversation stickiness over a ramp, on a real broker."""
        from alignloop.bench._cleanup import delete_topics
        from alignloop.bench._results import print_table, write_result
        from alignloop.errors import UserError
        from alignloop.runner import ensure_local_broker
        from connectors.kafka import create_topics
        from schemas.settings import load_settings
        from schemas.topics import ROLLOUT

        base = load_settings()
        if note := ensure_local_broker(base):
            console.print(note)
        s = base.model_copy(update={"topic_prefix": f"bench-flags-{uuid.uuid4().hex[:6]}."})
        try:
            asyncio.run(create_topics(s, names=[ROLLOUT]))
        except Exception as exc:
            raise UserError(f"cannot create the bench topic on {s.kafka_bootstrap}: {exc}") from None
        work = Path(tempfile.mkdtemp(prefix="alignloop-bench-flags-"))
        started = time.monotonic()
        try:
            prop = propagation(s, work, clients=clients, versions=versions, gap_s=gap, pollers=pollers,
                               poll_interval=poll_interval, seed=seed)
            console.print(f"switches: {conversations:,} conversations x {turns} turns over the ramp "
                          f"{'/'.join(map(str, RAMP))}, then a rollback …")
            sw = switches(s, work, conversations=conversations, turns=turns, seed=seed)
        finally:
            if not keep:
                delete_topics(s)
        stream_p99 = prop["served_after_ack_s"]["p99"]
        poll_p99 = prop["poll_baseline"]["served_after_ack_s"]["p99"]
        figures = {
            "flag_propagation_p99_s": stream_p99,
            "flag_propagation_p50_s": prop["served_after_ack_s"]["p50"],
            "flag_propagation_max_s": prop["served_after_ack_s"]["max"],
            "poll_baseline_propagation_p99_s": poll_p99,
            "propagation_p99_ratio_poll_over_stream": (poll_p99 / stream_p99) if stream_p99 and poll_p99 else None,
            "mid_conversation_switches": sw["mid_conversation_switches"],
            "rollback_moves": sw["rollback_moves"],
            "flagd_per_request_mid_conversation_switches": sw["flagd_per_request_baseline"][
                "mid_conversation_switches"],
            "variant_us_p50": sw["variant_us"]["p50"], "variant_us_p99": sw["variant_us"]["p99"],
            "propagation": prop, "switches": sw, "wall_s": round(time.monotonic() - started, 1),
            "targets": {"flag_propagation_p99_s": "<= 1.0", "mid_conversation_switches": "== 0"},
        }
        path = write_result("flags", figures)
        print_table("bench flags", [(k, v) for k, v in figures.items() if not isinstance(v, dict)])
        console.print(f"wrote {path}")
