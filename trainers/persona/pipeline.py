"""``synthesize``: persona -> raw rows (resumable) -> filters -> refusal banding -> JSONL + run dir + report.

Refusal banding (seed 003 §6.4) re-samples towards the middle of the persona's band: below it, extra
safety-edge rows are generated (and filtered like the rest) and their refusals added; above it, the surplus
refusals are dropped (newest first). Extra rows get plan indices after ``n`` and live in the same raw store, so a
resumed run reuses them too.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from schemas.persona import Persona, load_persona
from schemas.synth_config import SynthConfig
from trainers.persona.filters import FILTERS, FilterOutcome, apply_filters, banding_need, refusal_fraction
from trainers.persona.synth import Generator, LlmGenerator, OfflineGenerator, Planned, RawStore, extra_plan, plan

REJECTION_TARGET = 0.20  # seed 003 §13: rejection rate < 20% on v0 (the hard filters)
HARD = ("malformed", "empty", "length", "markup", "redline")


@dataclass
class SynthResult:
    out: Path
    run_dir: Path
    rows: list[dict[str, Any]]
    report: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def _generate(gen: Generator, store: RawStore, todo: list[Planned], progress: bool, what: str) -> None:
    from tqdm import tqdm

    with tqdm(total=len(todo), desc=what, unit="row", disable=not progress or not todo, leave=False) as bar:
        for i in range(0, len(todo), 32):
            chunk = todo[i:i + 32]
            for row in gen.generate(chunk):
                store.add(row)
            bar.update(len(chunk))


def _band(persona: Persona, accepted: list[dict[str, Any]], gen: Generator, store: RawStore, n: int, seed: int,
          cfg: SynthConfig, style: Any, progress: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    band = persona.refusal_policy.band
    info: dict[str, Any] = {"band": list(band), "before": round(refusal_fraction(accepted), 4), "added": 0,
                            "dropped": 0, "rounds": 0, "extra_generated": 0}
    nxt = n
    for _ in range(cfg.filters.banding_rounds):
        refused = sum(bool(r["metadata"].get("refusal")) for r in accepted)
        action, k = banding_need(len(accepted) - refused, refused, band)
        if action == "ok":
            break
        info["rounds"] += 1
        if action == "drop":
            drop = {id(r) for r in sorted((r for r in accepted if r["metadata"].get("refusal")),
                                          key=lambda r: -r["metadata"]["index"])[:k]}
            accepted = [r for r in accepted if id(r) not in drop]
            info["dropped"] += len(drop)
            break
        ask = extra_plan(nxt, max(2 * k, 4), "safety-edge", seed, cfg)
        nxt += len(ask)
        _generate(gen, store, [p for p in ask if p.index not in store.rows], progress, "banding")
        extra = [copy.deepcopy(store.rows[p.index]) for p in ask if p.index in store.rows]
        info["extra_generated"] += len(extra)
        seen = [f"{r['instruction']}\n{r['output']}" for r in accepted]
        new = [r for r in apply_filters(extra, persona, cfg.filters, style, seen=seen).accepted
               if r["metadata"].get("refusal")][:k]
        accepted = accepted + new
        info["added"] += len(new)
    info["after"] = round(refusal_fraction(accepted), 4)
    info["in_band"] = band[0] <= info["after"] <= band[1]
    return accepted, info


def _mix(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["metadata"][key]] = out.get(r["metadata"][key], 0) + 1
    return {k: round(v / len(rows), 4) for k, v in sorted(out.items())} if rows else {}


def synthesize(persona_path: str | Path, n: int, out: str | Path, seed: int, *, cfg: SynthConfig | None = None,
               client: Any = None, runs_dir: str | Path = "runs", fresh: bool = False,
               style: Callable[..., Any] | None | bool = True, progress: bool = False,
               plots: bool = True) -> SynthResult:
    """Generate ``n`` planned rows (resuming what ``<out stem>.raw.jsonl`` holds), filter, band, write ``out``.

    ``client``: a ``connectors.llm_chat.ChatClient`` for the endpoint generator; None: offline templates.
    ``style``: True builds the MiniLM scorer, False/None skips the style filter, or pass a scorer.
    ``plots``: write the PNG histograms (matplotlib; the JSON histograms are always written).
    """
    from trainers.persona.report import histograms, plot
    from trainers.persona.rundir import new_run_dir, write_run

    cfg = cfg or SynthConfig()
    persona = load_persona(persona_path)
    out = Path(out)
    gen: Generator = LlmGenerator(persona, seed, cfg, client) if client is not None else OfflineGenerator(persona, seed)
    identity = {"persona": persona.tag, "persona_hash": persona.content_hash(), "seed": seed, "source": gen.source,
                "model": cfg.endpoint.model if client is not None and cfg.endpoint else None}
    raw_path = out.with_name(out.stem + ".raw.jsonl")
    if fresh:
        raw_path.unlink(missing_ok=True)
        raw_path.with_name(raw_path.name + ".meta.json").unlink(missing_ok=True)
    store = RawStore(raw_path, identity)
    try:
        planned = plan(n, seed, cfg)
        resumed = sum(p.index in store.rows for p in planned)
        t0 = time.perf_counter()
        _generate(gen, store, [p for p in planned if p.index not in store.rows], progress, f"synth {persona.id}")
        gen_s = time.perf_counter() - t0
        primary = [copy.deepcopy(store.rows[p.index]) for p in planned if p.index in store.rows]
        t1 = time.perf_counter()
        if style is True:
            from trainers.persona.style import StyleScorer

            scorer: Any = StyleScorer(persona) if cfg.filters.style else None
        else:
            scorer = style or None
        fo: FilterOutcome = apply_filters(primary, persona, cfg.filters, scorer)
        filter_s = time.perf_counter() - t1
        rows, banding = _band(persona, fo.accepted, gen, store, n, seed, cfg, scorer, progress)
    finally:
        store.close()
        if isinstance(gen, LlmGenerator):
            gen.close()
    rows.sort(key=lambda r: r["metadata"]["index"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    made = len(primary)
    rejected = len(fo.rejected)
    report = {
        "persona": persona.id, "persona_version": persona.version, "persona_hash": persona.content_hash(),
        "generator": gen.source, "seed": seed, "n_requested": n, "n_generated": made, "resumed_rows": resumed,
        "missing_rows": n - made, "accepted_before_banding": len(fo.accepted), "rows_out": len(rows),
        "rejected": rejected, "rejection_rate": round(rejected / made, 4) if made else None,
        "rejection_rate_v0": round(sum(fo.counts[f] for f in HARD) / made, 4) if made else None,
        "rejection_rate_v1": round(sum(fo.counts[f] for f in FILTERS if f not in HARD) / made, 4) if made else None,
        "rejection_target": REJECTION_TARGET, "rejected_by_filter": {f: fo.counts[f] for f in FILTERS},
        "rejection_rate_by_filter": {f: round(fo.counts[f] / made, 4) if made else None for f in FILTERS},
        "banding": banding, "refusal_band": list(persona.refusal_policy.band),
        "domains": _mix(rows, "domain"), "difficulty": _mix(rows, "difficulty"),
        "histograms": histograms(rows), "thresholds": cfg.filters.model_dump(), "endpoint_counts": {
            **gen.counts, **(getattr(client, "counts", {}) if client is not None else {})},
        "timings": {"generate_s": round(gen_s, 3), "filter_s": round(filter_s, 3),
                    "generated_rows_per_s": round((made - resumed) / gen_s, 1) if gen_s > 0 else None,
                    "filtered_rows_per_s": round(made / filter_s, 1) if filter_s > 0 else None},
        "out": str(out), "raw": str(raw_path),
    }
    problems = []
    if report["missing_rows"]:
        problems.append(f"{report['missing_rows']} of {n} rows could not be generated (endpoint failures: "
                        f"{json.dumps(gen.counts)}); run the same command again to resume")
    if made and report["rejection_rate_v0"] >= REJECTION_TARGET:
        problems.append(f"hard-filter (v0) rejection rate {report['rejection_rate_v0']:.1%} is not under the "
                        f"{REJECTION_TARGET:.0%} target")
    if not banding["in_band"]:
        problems.append(f"refusal fraction {banding['after']} is outside the band {banding['band']}")
    report["problems"] = problems
    run_dir = new_run_dir(runs_dir, "synth")
    report["plots"] = plot(report, run_dir) if plots else []
    write_run(run_dir, config={"command": "data synth", "persona_file": str(persona_path), "n": n, "seed": seed,
                               "out": str(out), "persona": persona.model_dump(mode="json"),
                               "synth": json.loads(cfg.model_dump_json())},
              files={"synth_report.json": report}, samples=rows[:50])
    with open(run_dir / "samples" / "rejected.jsonl", "w") as fh:
        for r, why in fo.rejected[:200]:
            fh.write(json.dumps({"reason": why, **r}, ensure_ascii=False) + "\n")
    return SynthResult(out, run_dir, rows, report, problems)
