"""`alignloop erase --conversation C | --agent-user PSEUDONYM [--dry-run] [--retrain]`: forget a person's data."""
from __future__ import annotations

import json
from typing import Optional

import typer

from alignloop.errors import UserError, exits_now


def register(app: typer.Typer) -> None:
    app.command("erase")(exits_now(erase_cmd))


def _summary(report: dict) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [(f"rows deleted: {n}", t["rows_deleted"]) for n, t in report["tables"].items()]
    rows += [("bytes rewritten", report["bytes_rewritten"]),
             ("files deleted", sum(t["files_deleted"] for t in report["tables"].values())),
             ("log files deleted", sum(t["log_files_deleted"] for t in report["tables"].values())),
             ("datasets trained on it", len(report["datasets"])),
             ("adapters marked trained_on_erased_data", len(report["adapters_marked"])),
             ("broker partitions deleted", sum(h["action"] == "deleted" for h in report["kafka"])),
             ("broker partitions pending", sum(h["action"] == "pending" for h in report["kafka"])),
             ("last broker copy expires by", report["kafka_last_copy_expires_by"] or "-"),
             ("broker copies kept (no expiry)", ", ".join(report["kafka_kept_forever"]) or "-"),
             ("drift-monitor state entries removed", report["drift_state"]["entries_removed"]),
             ("drift monitors that applied it / scrubbed here",
              f"{len(report['drift_state']['applied_by_monitors'])} / {len(report['drift_state']['cleaned_here'])}"),
             ("drift.state records still holding it (rerun)", report["drift_state"]["remaining"]),
             ("labeling items / answers deleted", "-" if not report["labeling_db"] else
              f"{report['labeling_db']['items']} / {report['labeling_db']['assignments']}"),
             ("retrain requests", len(report["retrain_requests"])), ("audit seq", report["audit_seq"])]
    return rows


def erase_cmd(conversation: Optional[str] = typer.Option(None, "--conversation", help="Conversation id to erase."),
              agent_user: Optional[str] = typer.Option(None, "--agent-user", help=(
                  "A user's scrubber pseudonym (e.g. <EMAIL_1a2b3c4d>): erase every conversation that mentions it.")),
              dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be erased; write nothing."),
              retrain: bool = typer.Option(False, "--retrain", help=(
                  "Publish a train.requests record per affected adapter, pinned to the data without the rows.")),
              keep_topics: bool = typer.Option(False, "--keep-topics", help=(
                  "Do not delete broker records; only report when retention removes them.")),
              kafka_wait_s: float = typer.Option(10.0, "--kafka-wait-s", min=0, help=(
                  "How long to wait for consumer groups to commit past the records before calling them pending.")),
              json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Delete a conversation from every Delta table (live and replay) and the broker, provably (docs/erasure.md)."""
    from alignloop.bench._results import print_table
    from alignloop.erasure import execute, pending, plan
    from schemas.settings import load_settings

    settings = load_settings()
    finished = 0
    if not dry_run:
        for erasure_id, saved in pending(settings):  # an interrupted erasure: its rows may be gone already
            try:
                done = execute(settings, saved, truncate_topics=not keep_topics, kafka_wait_s=kafka_wait_s,
                               erasure_id=erasure_id)
            except Exception as exc:  # broker down, lake unreachable: nothing is lost, the plan is kept
                raise UserError(f"could not finish the interrupted erasure {erasure_id} ({exc.__class__.__name__}: "
                                f"{exc}); fix that and rerun `alignloop erase`") from None
            typer.echo(f"finished the interrupted erasure {erasure_id}: {done['report_path']}")
            finished += 1
    try:
        p = plan(settings, conversation=conversation, agent_user=agent_user)
    except ValueError as exc:
        if finished and str(exc).startswith("no rows"):
            typer.echo("nothing more to erase")
            return
        raise UserError(str(exc)) from None
    if dry_run:
        out = {"dry_run": True, "subject": p.subject, "conv_keys": p.conv_keys,
               "tables": {n: t["rows"] for n, t in p.tables.items()}, "datasets": p.datasets,
               "adapters": [a["adapter_id"] for a in p.adapters]}
        typer.echo(json.dumps(out, indent=2, sort_keys=True, default=str))
        return
    try:
        report = execute(settings, p, retrain=retrain, truncate_topics=not keep_topics, kafka_wait_s=kafka_wait_s)
    except Exception as exc:  # broker down, lake unreachable: the saved plan lets a rerun finish it
        raise UserError(f"the erasure was interrupted ({exc.__class__.__name__}: {exc}); fix that and rerun "
                        f"`alignloop erase` (it finishes the interrupted erasure first)") from None
    if json_out:
        typer.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
        return
    print_table(f"erasure {report['erasure_id']} ({p.kind}, {len(p.conv_keys)} conversation(s))", _summary(report))
    typer.echo(f"report: {report['report_path']}")
