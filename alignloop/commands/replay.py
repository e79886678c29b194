"""`alignloop replay`: re-judge a window of history into a replay namespace; `replay diff`, `replay curate`."""
from __future__ import annotations

import json
from pathlib import Path

import typer


def _print_manifest(m: dict) -> None:
    from rich.console import Console

    c = Console()
    counts = m["counts"]
    c.print(f"replay [bold]{m['name']}[/]: read {counts['read']}, landed {counts['landed']}, invalid "
            f"{counts['invalid']} (in its dlq table), filtered by time {counts['filtered']}; "
            f"{counts.get('reused', 0)} landed from the live rows' scrubbed text (scrub version "
            f"{m.get('scrub_version')}), {counts.get('rescrubbed', 0)} scrubbed again; "
            f"{m['processes']} process(es), {m['wall_s']} s")
    for p, w in sorted(m["partitions"].items(), key=lambda kv: int(kv[0])):
        c.print(f"  partition {p}: requested {w['requested']}, read {w['start']}-{w['end']}, actual "
                f"{w['actual']}, {w['read']} record(s)")
    for g in m["gaps"]:
        c.print(f"  [yellow]gap[/]: {g}")
    c.print(f"content hash {m['content_hash']}; code {m['code_version']}")
    c.print(json.dumps(m, indent=2, sort_keys=True, default=str))


def _print_diff(d: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    c.print(f"replay [bold]{d['name']}[/] vs live: {d['matched']} traces matched on trace_id, "
            f"{d['only_in_replay']} only in the replay")
    t = Table(title="pass/fail per judge and slice")
    for col in ("judge", "slice", "n", "pass→fail", "fail→pass", "kappa", "examples"):
        t.add_column(col)
    for judge, cuts in d["judges"].items():
        for cut, f in cuts.items():
            if cut == "all" or f["pass_to_fail"] or f["fail_to_pass"]:
                ex = ", ".join(i for ids in f["examples"].values() for i in ids[:2])
                t.add_row(judge, cut, str(f["n"]), str(f["pass_to_fail"]), str(f["fail_to_pass"]),
                          "-" if f["kappa"] is None else f"{f['kappa']:.3f}", ex)
    c.print(t)
    t = Table(title="mean score shift per judge, dimension and slice (non-zero shifts and 'all')")
    for col in ("judge", "dimension", "slice", "n", "live", "replay", "shift"):
        t.add_column(col)
    for r in d["dimensions"]:
        if r["slice"] == "all" or abs(r["mean_shift"]) > 1e-9:
            t.add_row(r["judge"], r["dimension"], r["slice"], str(r["n"]), f"{r['mean_live']:.3f}",
                      f"{r['mean_replay']:.3f}", f"{r['mean_shift']:+.3f}")
    c.print(t)
    for table, ch in d["curated"].items():
        c.print(f"{table}: {ch}")


def register(app: typer.Typer) -> None:
    replay_app = typer.Typer(help="Re-judge a window of history into a replay namespace; compare and curate it.",
                             invoke_without_command=True)
    app.add_typer(replay_app, name="replay")

    @replay_app.callback()
    def replay(
        ctx: typer.Context,
        topic: str = typer.Option("agent.traces", "--topic", help="agent.traces (or agent.traces.dlq)."),
        frm: str = typer.Option(None, "--from", help="A time (ISO 8601 / epoch ms) or offsets p:start-end,... "
                                                     "(inclusive) or p:offset,... with --to."),
        to: str = typer.Option(None, "--to", help="A time (exclusive; default: the end) or offsets p:end,..."),
        judges_config: Path = typer.Option(None, "--judges-config", help="Judges config (default: the live one)."),
        policy: Path = typer.Option(None, "--policy", help="Policy file (default: the live one)."),
        scrub_config: Path = typer.Option(None, "--scrub-config", help="Scrub config (default: the live one)."),
        into: str = typer.Option(None, "--into", help="Replay name: tables land under <lake>/replay/NAME/."),
        processes: int = typer.Option(2, "--processes", min=1, max=64, help="Processes; partitions are split."),
        batch: int = typer.Option(5000, "--batch", min=1, help="Records per step batch and Delta commit."),
        rescrub: bool = typer.Option(False, "--rescrub", help="Scrub every record again, even where the live row "
                                                             "was scrubbed under the same scrub version."),
        json_out: bool = typer.Option(False, "--json", help="Print only the manifest, as JSON."),
    ) -> None:
        """Re-run the scrub + judge step over a window of a topic (by time or offsets, per partition), landing
        new Delta versions under <lake>/replay/NAME (never the live tables), with a manifest. kill -9 safe:
        re-run the same command to resume."""
        if ctx.invoked_subcommand is not None:
            return
        from alignloop.errors import UserError
        from alignloop.replay import run_replay
        from schemas.settings import load_settings

        if frm is None or into is None:
            raise UserError("give --from (and --to) for the window and --into NAME for the replay")
        settings = load_settings()
        from rich.progress import Progress

        with Progress(transient=True, disable=json_out) as bar:
            task = bar.add_task(f"replaying into {into}", total=None)
            manifest = run_replay(settings, topic=topic, frm=frm, to=to, into=into, processes=processes,
                                  batch=batch, policy=policy, judges=judges_config, scrub=scrub_config,
                                  rescrub=rescrub, progress=lambda n, total: bar.update(task, completed=n, total=total))
        if json_out:
            print(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        else:
            _print_manifest(manifest)
        from alignloop.errors import exit_now

        exit_now(0)  # the replay is committed and reported: nothing is left for interpreter teardown to do

    @replay_app.command("diff")
    def diff(name: str = typer.Argument(..., help="Replay name."),
             examples: int = typer.Option(5, "--examples", min=0, help="Example trace ids per flip."),
             json_out: bool = typer.Option(False, "--json", help="Print the diff as JSON.")) -> None:
        """Live verdicts vs the replay's: mean shift, pass/fail flips, kappa per judge/dimension/slice, and the
        curated rows the replay would add or drop."""
        from alignloop.replay_views import diff_replay
        from schemas.settings import load_settings

        d = diff_replay(load_settings(), name, examples=examples)
        if json_out:
            print(json.dumps(d, indent=2, sort_keys=True, default=str))
        else:
            _print_diff(d)

    @replay_app.command("curate")
    def curate(name: str = typer.Argument(..., help="Replay name.")) -> None:
        """Land sft_examples / preferences from the replay (the live curation rules) in its namespace."""
        from alignloop.replay_views import curate as run
        from schemas.settings import load_settings

        got = run(load_settings(), name)
        print(json.dumps(got, sort_keys=True))
