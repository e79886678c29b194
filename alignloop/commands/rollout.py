"""`alignloop rollout ...`: export the current flags for flagd, and show which variant serves a conversation.

The current flags come from ``--flags FILE.json`` (a JSON list of `RolloutFlag` records, or one record, or
``{"flags": [...]}``, folded in order, latest version per agent; any bad record is an error), or, without
``--flags``, from the compacted ``rollout.flags`` topic (read to its end with a group-less consumer; bad
records there are skipped with a warning, the last good flag of that agent staying in force).
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

from alignloop.errors import UserError

rollout_app = typer.Typer(help="Rollouts: flagd export, variant assignment.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")


def load_flags(path: Path) -> dict:
    """Agent id -> current `RolloutFlag` from a JSON file; a bad record is a `UserError` naming it."""
    from streams.rollout.flags import FlagError, apply, parse_flag

    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read --flags {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"--flags {path} is not JSON: {exc}") from None
    records = doc.get("flags", doc) if isinstance(doc, dict) else doc
    records = [records] if isinstance(records, dict) else records
    if not isinstance(records, list):
        raise UserError(f"--flags {path}: expected a list of RolloutFlag records")
    current: dict = {}
    for i, record in enumerate(records):
        try:
            apply(current, parse_flag(record))
        except FlagError as exc:
            raise UserError(f"--flags {path} record {i}: {exc}") from None
    return current


def load_flags_from_topic(timeout_s: float) -> dict:
    import asyncio
    import sys

    from alignloop.rollout_store import read_committed
    from schemas.settings import load_settings
    from schemas.topics import ROLLOUT
    from streams.rollout.flags import fold_records

    settings = load_settings()
    topic = settings.topic(ROLLOUT)
    try:  # read_committed: the controller writes flags in transactions; an aborted attempt is never a flag
        records = asyncio.run(asyncio.wait_for(read_committed(settings, topic), timeout_s + 10))
    except Exception as exc:  # any client error is one line for the user (broker down, auth, ...)
        raise UserError(f"cannot read {topic} from {settings.kafka_bootstrap}: {exc}") from None
    current, skipped = fold_records(r.value for r in records)
    for reason in skipped:
        print(f"alignloop: skipped {topic} {reason}", file=sys.stderr)
    return current


def _current(flags: Path | None, timeout_s: float) -> dict:
    return load_flags(flags) if flags is not None else load_flags_from_topic(timeout_s)


def _select(current: dict, agents: list[str] | None) -> list:
    if not agents:
        return list(current.values())
    missing = [a for a in agents if a not in current]
    if missing:
        raise UserError(f"no flag for agent {', '.join(missing)} (known: {', '.join(sorted(current)) or 'none'})")
    return [current[a] for a in agents]


@rollout_app.command("export")
def export(
    agent: list[str] = typer.Option(None, "--agent", help="Agent id (repeatable); default every agent."),
    fmt: str = typer.Option("flagd", "--format", help="Output format: flagd."),
    out: Path = typer.Option(None, "--out", help="File to write; default stdout."),
    flags: Path = typer.Option(None, "--flags", help="JSON file of RolloutFlag records; default: the topic."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the topic."),
) -> None:
    """Write a flagd flag-definition file: OpenFeature flagd clients then pick the same variant as alignloop."""
    from streams.rollout.flagd import dumps, export_flagd

    if fmt != "flagd":
        raise UserError(f"--format {fmt!r} is not supported (supported: flagd)")
    text = dumps(export_flagd(_select(_current(flags, timeout_s), agent)))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)


@rollout_app.command("assign")
def assign(
    agent: str = typer.Option(..., "--agent", help="Agent id."),
    keys: Path = typer.Option(..., "--keys", help="File with one conversation id per line ('-' for stdin)."),
    flags: Path = typer.Option(None, "--flags", help="JSON file of RolloutFlag records; default: the topic."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the topic."),
) -> None:
    """Print `key<TAB>variant` for each conversation id, from the current flags."""
    import sys

    from streams.rollout.bucketing import assign as assign_variant

    (flag,) = _select(_current(flags, timeout_s), [agent])
    try:
        lines = sys.stdin.read().splitlines() if str(keys) == "-" else keys.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read --keys {keys}: {exc.strerror}") from None
    out = sys.stdout
    for key in lines:
        if key:
            out.write(f"{key}\t{assign_variant(flag, key)}\n")


# --- the controller and the operator actions (alignloop/rollout_ops.py, alignloop/rollout_controller.py) ---------

def _actor(actor: str | None) -> str:
    import getpass

    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (a container)
        return "cli"


def _steps(steps: str | None) -> list[int] | None:
    if steps is None:
        return None
    try:
        return [int(x) for x in steps.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--steps must be comma-separated integers such as 5,25,50,100 (got {steps!r})") from None


def _print_flag(flag, what: str) -> None:
    c = flag.candidate
    typer.echo(f"{what}: agent {flag.agent_id} rollout {flag.rollout_id} {flag.stage} at "
               f"{flag.candidate_weight}% candidate {c.adapter_id if c else '-'} (flag version {flag.version})")


def _settings():
    from schemas.settings import load_settings

    return load_settings()


ActorOpt = typer.Option(None, "--actor", help="Who is acting (recorded in the audit trail); default cli:$USER.")


@rollout_app.command("start")
def start_cmd(
    agent: str = typer.Option(..., "--agent", help="Agent id (the flag key)."),
    adapter: str = typer.Option(..., "--adapter", help="Registry adapter id (<name>@<version>) or name."),
    steps: str = typer.Option(None, "--steps", help="Candidate weights, e.g. 5,25,50,100 (default: config)."),
    min_conversations: int = typer.Option(None, "--min-conversations", min=1,
                                          help="Conversations per arm before any step (default: config)."),
    actor: str = ActorOpt,
) -> None:
    """Start a canary of a gate-passed adapter; `alignloop rollout controller` then steps it."""
    from alignloop.rollout_ops import start

    _print_flag(start(_settings(), agent, adapter, actor=_actor(actor), steps=_steps(steps),
                      min_conversations=min_conversations), "started")


@rollout_app.command("pause")
def pause_cmd(agent: str = typer.Option(..., "--agent"), actor: str = ActorOpt) -> None:
    """Freeze the weights; the controller takes no step until `resume`."""
    from alignloop.rollout_ops import pause

    _print_flag(pause(_settings(), agent, actor=_actor(actor)), "paused")


@rollout_app.command("resume")
def resume_cmd(agent: str = typer.Option(..., "--agent"), actor: str = ActorOpt) -> None:
    from alignloop.rollout_ops import resume

    _print_flag(resume(_settings(), agent, actor=_actor(actor)), "resumed")


@rollout_app.command("promote")
def promote_cmd(agent: str = typer.Option(..., "--agent"), actor: str = ActorOpt) -> None:
    """Serve the candidate to every conversation now (the previous policy stays ready for a rollback)."""
    from alignloop.rollout_ops import promote

    _print_flag(promote(_settings(), agent, actor=_actor(actor)), "promoted")


@rollout_app.command("rollback")
def rollback_cmd(agent: str = typer.Option(..., "--agent"),
                 reason: str = typer.Option(..., "--reason", help="Why (recorded with the decision)."),
                 actor: str = ActorOpt) -> None:
    """Serve the baseline to every conversation now (also undoes a promotion)."""
    from alignloop.rollout_ops import rollback

    _print_flag(rollback(_settings(), agent, actor=_actor(actor), reason=reason), "rolled back")


@rollout_app.command("status")
def status_cmd(agent: str = typer.Option(..., "--agent"),
               as_json: bool = typer.Option(False, "--json", help="Print the whole status as JSON.")) -> None:
    """The agent's flag, its rollout's decisions and the latest per-metric analysis."""
    from alignloop.rollout_ops import status

    st = status(_settings(), agent)
    if as_json:
        typer.echo(json.dumps(st, indent=2, default=str))
        return
    c = st["candidate"] or {}
    typer.echo(f"agent {agent}: rollout {st['rollout_id'] or '-'} {st['stage']} at "
               f"{st['weights'].get('candidate', 0)}% candidate {c.get('adapter_id') or '-'} "
               f"(flag version {st['version']}), baseline {st['baseline']['policy_id']}")
    for d in st["decisions"]:
        typer.echo(f"  v{d['flag_version']:<4} {d['action']:<9} {d['weight'][0]:>3}% -> {d['weight'][1]:>3}%  "
                   f"{d['actor']}: {d['reason']}")
    counts = st["counts"]
    if counts:
        typer.echo("  conversations: " + ", ".join(f"{arm} {c['conversations']} ({c['judged']} judged)"
                                                  for arm, c in counts.items()))
    for m in st["metrics"]:
        delta = "-" if m["delta"] is None else f"{m['delta']:+.4f}"
        typer.echo(f"  {m['name']:<24} {m['verdict']:<13} delta {delta} (margin {m['margin']})")


@rollout_app.command("controller")
def controller_cmd(
    metrics_port: int = typer.Option(None, help="Prometheus /metrics port (default: settings; 0 disables)."),
    loglevel: str = typer.Option("warning", help="debug | info | warning | error"),
    once: bool = typer.Option(False, "--once", help="One look at every rollout, then exit."),
) -> None:
    """Follow every active rollout's judged traffic; step, promote, roll back or hold it."""
    import asyncio
    import logging

    from prometheus_client import CollectorRegistry

    from alignloop.configs import load_rollout_config
    from alignloop.preflight import check_loglevel, check_port, require_broker, start_metrics
    from alignloop.rollout_controller import run_controller
    from alignloop.rollout_metrics import RolloutMetrics

    level = check_loglevel(loglevel)
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = _settings()
    cfg = load_rollout_config(s)
    port = check_port(s.metrics_port if metrics_port is None else metrics_port)
    registry = CollectorRegistry()
    start_metrics(port, registry)
    require_broker(s)
    async def main():
        import signal

        stop = asyncio.Event()  # SIGTERM/SIGINT: finish the current look (its commit, row and audit entry)
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await run_controller(s, cfg, metrics=RolloutMetrics(registry), stop=stop,
                                    until=(lambda _c: True) if once else None)

    ctl = asyncio.run(main())
    typer.echo(f"rollout controller: {len(ctl.decisions)} decision(s) this run", err=True)
