"""`alignloop simulate`: synthetic agent traffic to agent.traces."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console()


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        n: int = typer.Option(1000, "--n", min=1, help="Records to publish."),
        rate: float = typer.Option(None, "--rate", min=1, help="Records per second (default: as fast as possible)."),
        seed: int = typer.Option(0, "--seed", help="Same seed, same traffic."),
        malformed: float = typer.Option(0.0, "--malformed", min=0.0, max=1.0, help="Fraction of malformed records."),
        size_bytes: int = typer.Option(0, "--size-bytes", min=0, help="Pad traces to about this size."),
        drift: list[str] = typer.Option([], "--drift", help="at=<i>[,ramp=<n>],<knob>=<v>... (repeatable)."),
        truth_out: Path = typer.Option(None, "--truth-out", help="Write ground truth as JSONL here."),
        fleet: bool = typer.Option(False, "--fleet", help="Simulated agents that obey rollout.flags (the SDK) and "
                                   "behave per variant from --profile; --n, --malformed, --drift do not apply."),
        profile: str = typer.Option("same", "--profile", help="Fleet: a configs/fleet/ name or a YAML path."),
        agent: list[str] = typer.Option(["support-bot"], "--agent", help="Fleet: agent id (repeatable)."),
        conversations: int = typer.Option(500, "--conversations", min=1, help="Fleet: conversations per agent."),
        turns: str = typer.Option("2-6", "--turns", help="Fleet: turns per conversation, MIN-MAX."),
        open_conversations: int = typer.Option(20, "--open", min=1, help="Fleet: conversations in flight per agent."),
    ) -> None:
        """Publish realistic synthetic agent traces (PII, unsafe asks, tool failures) with a progress bar."""
        if fleet:
            from alignloop.fleet import run_fleet_command

            run_fleet_command(profile=profile, agents=agent, conversations=conversations, turns=turns,
                              open_per_agent=open_conversations, rate=rate, seed=seed, console=console)
            return

        from alignloop.errors import UserError
        from alignloop.commands.broker import _run
        from alignloop.publish import publish
        from schemas.settings import load_settings
        from alignloop.simulate import Drift, Knobs, Simulator, truth_dict
        from schemas.topics import TRACES

        s = load_settings()
        try:
            drifts = [Drift.parse(d) for d in drift]
        except ValueError as exc:
            raise UserError(str(exc)) from None
        sim = Simulator(seed=seed, knobs=Knobs(size_bytes=size_bytes), drifts=drifts, rate_hint=rate or 100.0)
        kinds: Counter[str] = Counter()
        truths = []

        def records():
            for key, value, truth, kind in sim.records(n, malformed=malformed, max_bytes=s.max_record_bytes):
                if kind:
                    kinds[f"malformed:{kind}"] += 1
                else:
                    kinds["bad" if truth.bad else "good"] += 1
                    truths.append(truth)
                yield key, value

        with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("publish", total=n)
            sent = _run(publish(s, s.topic(TRACES), records(), rate=rate,
                                on_sent=lambda k: progress.advance(task, k)), s)
        if truth_out:
            truth_out.parent.mkdir(parents=True, exist_ok=True)
            truth_out.write_text("".join(json.dumps(truth_dict(t)) + "\n" for t in truths))
        console.print(f"published {sent} records to {s.topic(TRACES)} on {s.kafka_bootstrap}: " +
                      ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
