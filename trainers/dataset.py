"""Dataset builder: a pinned Delta snapshot -> filtered, deduplicated, leakage-free splits + a manifest.

Splits are made by conversation (every row of a conversation lands in the same split), so near-identical turns
of one conversation never sit on both sides of train/test. The manifest records exactly what was read (table,
Delta version, row counts, Kafka offset ranges) and a content hash of what came out, so a run can be rebuilt
and audited.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from streams.scrub.strict import strict_text
from trainers.config import DataSettings, Kind
from trainers.dedup import dedup_indices
from trainers.selection import (binary_entropy, curriculum_order, information_gain, select_by_information_gain,
                                select_random)

KEYS_FILE = "conversation_keys.json"  # next to the splits: which conversations (by erasure key) they include
Scorer = Callable[[list[dict[str, Any]]], np.ndarray]  # rows -> [members, rows] P(chosen beats rejected)


def read_snapshot(uri: str, version: int | None, storage_options: dict[str, str] | None = None
                  ) -> tuple[list[dict[str, Any]], int]:
    """Rows of a Delta table at ``version`` (latest when None) and the version actually read."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        if version is not None:  # an erasure removed the old versions: say so rather than "no table"
            from connectors.delta_erase import version_gone

            gone = version_gone(uri, version, storage_options)
            if gone:
                raise ValueError(gone) from None
        raise ValueError(f"no Delta table at {uri}; land data first (alignloop worker) or fix data.lake_root")
    except Exception as exc:  # deltalake raises a generic error for a version that does not exist
        if version is not None:
            raise ValueError(f"{uri} has no version {version}: {exc}") from None
        raise
    return dt.to_pyarrow_table().to_pylist(), int(dt.version())


@dataclass
class DatasetBundle:
    kind: Kind
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)
    # lineage (issue 17): split -> {conv_key: rows}, the pseudonymous keys of the conversations each split includes
    conversation_keys: dict[str, dict[str, int]] = field(default_factory=dict)

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / KEYS_FILE).write_text(json.dumps(self.conversation_keys, sort_keys=True) + "\n")
        for name in ("train", "val", "test"):
            with open(out_dir / f"{name}.jsonl", "w") as fh:
                for row in getattr(self, name):
                    fh.write(json.dumps(row, sort_keys=True) + "\n")
        path = out_dir / "dataset_manifest.json"
        path.write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        return path


def _to_example(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    conv = row.get("conversation_id") or row.get("trace_id") or row.get("pref_id") or row.get("example_id")
    # the strict scrub tier again at export: rows may predate it or come from elsewhere (defence in depth)
    if kind == "sft":
        return {"id": row["example_id"], "conversation_id": conv, "prompt": strict_text(row["prompt"]),
                "completion": strict_text(row["response"]), "ease": row.get("confidence")}
    return {"id": row["pref_id"], "conversation_id": conv, "prompt": strict_text(row["prompt"]),
            "chosen": strict_text(row["chosen"]), "rejected": strict_text(row["rejected"]),
            "ease": row.get("strength")}


def _dedup_text(kind: Kind, ex: dict[str, Any]) -> str:
    if kind == "sft":
        return f"{ex['prompt']}\n{ex['completion']}"
    return f"{ex['prompt']}\n{ex['chosen']}\n{ex['rejected']}"


def _failing_traces(labels: list[dict[str, Any]]) -> set[str]:
    """Traces whose latest label says failed (a later passing label overrides an earlier failing one)."""
    latest: dict[str, dict[str, Any]] = {}
    for lab in labels:
        tid = lab.get("trace_id")
        if tid and (tid not in latest or lab["created_at"] >= latest[tid]["created_at"]):
            latest[tid] = lab
    return {tid for tid, lab in latest.items() if lab.get("passed") is False}


def split_by_conversation(conversations: list[str], val_fraction: float, test_fraction: float, seed: int
                          ) -> dict[str, str]:
    """conversation_id -> 'train' | 'val' | 'test'; deterministic for a seed and a set of conversations."""
    convs = sorted(set(conversations))
    random.Random(seed).shuffle(convs)
    n = len(convs)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if n >= 3:  # a small set still gets one conversation per requested split
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
    out = {c: "test" for c in convs[:n_test]}
    out.update({c: "val" for c in convs[n_test:n_test + n_val]})
    out.update({c: "train" for c in convs[n_test + n_val:]})
    return out


def _offset_ranges(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    ranges: dict[str, dict[str, list[int]]] = {}
    for r in rows:
        if r.get("src_topic") is None or r.get("src_offset") is None:
            continue
        part = ranges.setdefault(r["src_topic"], {}).setdefault(str(r.get("src_partition", 0)), [r["src_offset"]] * 2)
        part[0], part[1] = min(part[0], r["src_offset"]), max(part[1], r["src_offset"])
    return ranges


def content_hash(splits: dict[str, list[dict[str, Any]]]) -> str:
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        for row in splits[name]:
            h.update(name.encode())
            h.update(json.dumps(row, sort_keys=True, default=str).encode())
    return h.hexdigest()


def build_dataset(kind: Kind, data: DataSettings, lake_root: str, seed: int, *,
                  storage_options: dict[str, str] | None = None, scorer: Scorer | None = None) -> DatasetBundle:
    """Read, filter, dedup, split, order and select; returns the splits and their manifest."""
    table = data.table or ("sft_examples" if kind == "sft" else "preferences")
    uri = f"{lake_root.rstrip('/')}/{table}"
    if data.replay is not None:  # a replay's curated table, pinned by version like any other
        from connectors.replay_store import replay_table_uri

        uri = replay_table_uri(lake_root, data.replay, table)
    raw, version = read_snapshot(uri, data.version, storage_options)
    filters: list[str] = []
    rows = sorted(raw, key=lambda r: (r["created_at"], r.get("src_offset") or 0))
    if data.max_rows is not None and len(rows) > data.max_rows:
        rows = rows[:data.max_rows]
        filters.append(f"max_rows={data.max_rows}")
    labels_version = None
    if kind == "sft":
        if data.min_score is not None:
            rows = [r for r in rows if r.get("score") is not None and r["score"] >= data.min_score]
            filters.append(f"score>={data.min_score}")
        if data.min_confidence is not None:
            rows = [r for r in rows if r.get("confidence") is not None and r["confidence"] >= data.min_confidence]
            filters.append(f"confidence>={data.min_confidence}")
        if data.use_labels:
            try:
                labels, labels_version = read_snapshot(f"{lake_root.rstrip('/')}/labels", data.labels_version,
                                                       storage_options)
            except ValueError:
                labels = []  # no labels landed yet: nothing to veto
            if labels_version is not None:
                failing = _failing_traces(labels)
                rows = [r for r in rows if r.get("trace_id") not in failing]
                filters.append(f"labels@{labels_version}:drop_failed")
    else:
        if data.min_strength is not None:
            rows = [r for r in rows if r.get("strength") is not None and r["strength"] >= data.min_strength]
            filters.append(f"strength>={data.min_strength}")
        if data.sources:
            rows = [r for r in rows if r.get("source") in set(data.sources)]
            filters.append(f"source in {sorted(data.sources)}")
    examples = [_to_example(kind, r) for r in rows]
    exact = near = 0
    if data.dedup:
        keep, exact, near = dedup_indices([_dedup_text(kind, e) for e in examples], data.near_dup_bits)
        rows, examples = [rows[i] for i in keep], [examples[i] for i in keep]
        filters.append(f"dedup(simhash<={data.near_dup_bits})")

    assignment = split_by_conversation([e["conversation_id"] for e in examples], data.val_fraction,
                                       data.test_fraction, seed)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    split_rows: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for row, ex in zip(rows, examples):
        splits[assignment[ex["conversation_id"]]].append(ex)
        split_rows[assignment[ex["conversation_id"]]].append(row)

    selection: dict[str, Any] | None = None
    budget = data.selection.budget
    if budget is not None and budget < len(splits["train"]):
        train = splits["train"]
        if data.selection.strategy == "random":
            idx = select_random(len(train), budget, seed)
            how = "random"
        elif scorer is not None:
            idx = select_by_information_gain(information_gain(scorer(train)), budget)
            how = "information_gain:ensemble"
        else:
            idx = select_by_information_gain(binary_entropy(np.array([_label_prob(kind, e) for e in train])), budget)
            how = "information_gain:label_entropy"
        splits["train"] = [train[i] for i in idx]
        split_rows["train"] = [split_rows["train"][i] for i in idx]
        selection = {"strategy": how, "budget": budget, "candidates": len(train)}
        filters.append(f"select({how},budget={budget})")
    if data.curriculum:
        order = curriculum_order([e["ease"] for e in splits["train"]])
        splits["train"] = [splits["train"][i] for i in order]
        filters.append("curriculum(easy->hard)")

    kept = split_rows["train"] + split_rows["val"] + split_rows["test"]
    keys = {name: _key_counts(part) for name, part in split_rows.items()}
    manifest = {
        "kind": kind, "table": table, "uri": uri, "delta_version": version, "labels_version": labels_version,
        "replay": data.replay,
        "rows_read": len(raw), "rows_after_filters": len(examples), "duplicates_dropped": {"exact": exact, "near": near},
        "row_count": {k: len(v) for k, v in splits.items()}, "content_hash": content_hash(splits),
        "offset_ranges": _offset_ranges(kept), "filters": filters, "seed": seed, "selection": selection,
        "curriculum": data.curriculum, "conversations": {k: len({e["conversation_id"] for e in v})
                                                         for k, v in splits.items()},
        "built_at": datetime.now(timezone.utc).isoformat(),
        "conversation_keys": {"count": len({k for part in keys.values() for k in part}),
                              "rows_without_key": sum(r.get("conv_key") is None for r in kept)},
    }
    return DatasetBundle(kind=kind, train=splits["train"], val=splits["val"], test=splits["test"], manifest=manifest,
                         conversation_keys=keys)


def _key_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        k = r.get("conv_key")
        if k:
            out[k] = out.get(k, 0) + 1
    return out


def _label_prob(kind: Kind, ex: dict[str, Any]) -> float:
    """How sure the label is, as a probability: strength s -> 0.5 + s/2; judge confidence as is; unknown -> 0.5."""
    ease = ex.get("ease")
    if ease is None:
        return 0.5
    return 0.5 + ease / 2 if kind != "sft" else float(ease)

