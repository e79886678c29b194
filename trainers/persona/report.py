"""The synth quality report (seed 003 §6.4): histograms of length, style score and refusal fraction, as JSON and
as PNG plots (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def histogram(values: Sequence[float], bins: int | Sequence[float] = 10) -> dict[str, Any]:
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if not len(vals):
        return {"n": 0, "counts": [], "edges": []}
    counts, edges = np.histogram(vals, bins=bins)
    return {"n": int(len(vals)), "counts": counts.tolist(), "edges": [round(float(e), 4) for e in edges],
            "mean": round(float(vals.mean()), 4), "p50": round(float(np.median(vals)), 4),
            "p95": round(float(np.percentile(vals, 95)), 4)}


def refusal_by_domain(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, list[bool]] = {}
    for r in rows:
        out.setdefault(r["metadata"]["domain"], []).append(bool(r["metadata"].get("refusal")))
    return {d: round(float(np.mean(v)), 4) for d, v in sorted(out.items())}


def histograms(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    lengths = [r["metadata"]["quality_scores"].get("len") for r in rows]
    styles = [r["metadata"]["quality_scores"].get("style") for r in rows]
    refusals = [1.0 if r["metadata"].get("refusal") else 0.0 for r in rows]
    return {"length_words": histogram(lengths, 12), "style_score": histogram(styles, np.linspace(-0.2, 1.0, 13)),
            "refusal": {**histogram(refusals, [0, 0.5, 1.0]), "fraction": round(float(np.mean(refusals)), 4)
                        if refusals else 0.0, "by_domain": refusal_by_domain(rows)}}


def plot(report: dict[str, Any], out_dir: Path) -> list[str]:
    """One PNG per histogram; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    hists = report["histograms"]
    for key, title in (("length_words", "output length (words)"), ("style_score", "style score (cosine)")):
        h = hists[key]
        fig, ax = plt.subplots(figsize=(5, 3))
        if h["counts"]:
            edges = h["edges"]
            ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", edgecolor="black")
        if key == "style_score":
            ax.axvline(report["thresholds"]["style_min"], color="red", linestyle="--", label="style_min")
            ax.legend()
        ax.set_title(f"{report['persona']}: {title}")
        ax.set_ylabel("rows")
        fig.tight_layout()
        fig.savefig(out_dir / f"{key}.png", dpi=80)
        plt.close(fig)
        names.append(f"{key}.png")
    by = hists["refusal"]["by_domain"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(by), list(by.values()))
    lo, hi = report["refusal_band"]
    ax.axhspan(lo, hi, color="green", alpha=0.2, label="band")
    ax.axhline(hists["refusal"]["fraction"], color="black", linestyle=":", label="overall")
    ax.set_title(f"{report['persona']}: refusal fraction by domain")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "refusal_fraction.png", dpi=80)
    plt.close(fig)
    return [*names, "refusal_fraction.png"]
