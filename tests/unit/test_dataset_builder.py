"""Dataset builder: pinned Delta versions, dedup, leakage-free splits, curriculum, selection, manifest."""
from __future__ import annotations

from pathlib import Path

import pytest

from trainers.config import DataSettings, SelectionSettings
from trainers.dataset import build_dataset, split_by_conversation
from trainers.dedup import dedup_indices, hamming, simhash
from trainers.synthetic import preference_rows, sft_rows, write_rows


def test_simhash_near_duplicates_are_close_and_unrelated_texts_far():
    a = "the refund policy allows returns within thirty days of purchase with a receipt"
    b = "the refund policy allows returns within thirty days of purchase with the receipt"
    c = "kafka partitions let consumers in one group share the work of a topic"
    assert hamming(simhash(a), simhash(b)) <= 12  # one word of 13 changed
    assert hamming(simhash(a), simhash(c)) > 20


def test_dedup_drops_exact_and_near_duplicates_keeps_first():
    texts = ["Hello there, how are you today my friend", "hello there how are you today my friend!",
             "completely different sentence about databases and tables", "hello there, how are you today my friend",
             "the quick brown fox jumps over the lazy dog near the river bank today",
             "the quick brown fox jumps over the lazy dog near the river bank yesterday"]
    keep, exact, near = dedup_indices(texts, max_bits=8)
    assert keep == [0, 2, 4]
    assert exact == 2 and near == 1
    keep0, _, near0 = dedup_indices(texts, max_bits=0)
    assert near0 == 0 and 5 in keep0


def test_split_by_conversation_is_deterministic_and_covers_all():
    convs = [f"c{i}" for i in range(50)]
    a = split_by_conversation(convs, 0.1, 0.2, seed=1)
    assert a == split_by_conversation(list(reversed(convs)), 0.1, 0.2, seed=1)
    assert set(a) == set(convs)
    assert sum(v == "test" for v in a.values()) == 10 and sum(v == "val" for v in a.values()) == 5
    assert a != split_by_conversation(convs, 0.1, 0.2, seed=2)


def test_pinned_version_manifest_offsets_and_no_leakage(tmp_path: Path):
    uri = str(tmp_path / "preferences")
    v0 = write_rows(uri, "preferences", preference_rows(60, seed=1, turns_per_conversation=3))
    v1 = write_rows(uri, "preferences", preference_rows(40, seed=2, offset0=1000))
    assert (v0, v1) == (0, 1)
    data = DataSettings(table="preferences", version=0, val_fraction=0.2, test_fraction=0.2)
    b0 = build_dataset("dpo", data, str(tmp_path), seed=7)
    m = b0.manifest
    assert m["delta_version"] == 0 and m["rows_read"] == 60
    assert sum(m["row_count"].values()) == m["rows_after_filters"] == len(b0.train) + len(b0.val) + len(b0.test)
    convs = {name: {r["conversation_id"] for r in getattr(b0, name)} for name in ("train", "val", "test")}
    assert not (convs["train"] & convs["val"]) and not (convs["train"] & convs["test"]) and not (convs["val"] & convs["test"])
    assert set(m["offset_ranges"]) == {"feedback.preferences"}
    assert all(lo <= hi < 1000 for lo, hi in m["offset_ranges"]["feedback.preferences"].values())
    # rebuilding the same version gives the same content; the next version differs and is pinned as such
    again = build_dataset("dpo", data, str(tmp_path), seed=7)
    assert again.manifest["content_hash"] == m["content_hash"]
    latest = build_dataset("dpo", data.model_copy(update={"version": None}), str(tmp_path), seed=7)
    assert latest.manifest["delta_version"] == 1 and latest.manifest["rows_read"] == 100
    assert latest.manifest["content_hash"] != m["content_hash"]
    assert max(hi for _, hi in latest.manifest["offset_ranges"]["feedback.preferences"].values()) >= 1000
    path = latest.write(tmp_path / "out")
    assert path.is_file() and (tmp_path / "out" / "train.jsonl").read_text().count("\n") == len(latest.train)


def test_filters_dedup_and_labels_veto(tmp_path: Path):
    rows = sft_rows(30, seed=3)
    dup = dict(rows[0], example_id="dup", trace_id="tr-dup", conversation_id="conv-dup")
    rows.append(dup)
    write_rows(str(tmp_path / "sft_examples"), "sft_examples", rows)
    from datetime import datetime, timezone

    now = datetime(2026, 2, 1, tzinfo=timezone.utc)
    labels = [{"label_id": "l1", "trace_id": rows[1]["trace_id"], "passed": False, "date": "2026-02-01", "created_at": now},
              {"label_id": "l2", "trace_id": rows[2]["trace_id"], "passed": False, "date": "2026-02-01", "created_at": now},
              {"label_id": "l3", "trace_id": rows[2]["trace_id"], "passed": True, "date": "2026-02-01",
               "created_at": now.replace(day=2)}]
    write_rows(str(tmp_path / "labels"), "labels", labels)
    b = build_dataset("sft", DataSettings(table="sft_examples", min_score=0.0), str(tmp_path), seed=1)
    ids = {r["id"] for r in b.train + b.val + b.test}
    assert "dup" not in ids and b.manifest["duplicates_dropped"]["exact"] == 1
    assert rows[1]["example_id"] not in ids          # failing label vetoes
    assert rows[2]["example_id"] in ids              # a later passing label overrides
    assert any(f.startswith("labels@0") for f in b.manifest["filters"])
    strict = build_dataset("sft", DataSettings(table="sft_examples", min_score=0.99, dedup=False), str(tmp_path), seed=1)
    assert strict.manifest["rows_after_filters"] < b.manifest["rows_after_filters"]


def test_curriculum_orders_easy_to_hard_and_information_gain_picks_uncertain(tmp_path: Path):
    write_rows(str(tmp_path / "preferences"), "preferences", preference_rows(80, seed=4))
    cur = build_dataset("dpo", DataSettings(table="preferences", curriculum=True), str(tmp_path), seed=2)
    ease = [r["ease"] for r in cur.train]
    assert ease == sorted(ease, reverse=True)
    base = build_dataset("dpo", DataSettings(table="preferences"), str(tmp_path), seed=2)
    sel = build_dataset("dpo", DataSettings(table="preferences", selection=SelectionSettings(budget=10)),
                        str(tmp_path), seed=2)
    assert len(sel.train) == 10 and sel.val == base.val and sel.test == base.test
    cutoff = sorted(r["ease"] for r in base.train)[9]
    assert all(r["ease"] <= cutoff for r in sel.train)  # lowest strength = most informative labels
    assert sel.manifest["selection"]["strategy"] == "information_gain:label_entropy"

    def ensemble(rows):  # two members that disagree only on rows whose prompt mentions kafka
        import numpy as np

        a = np.array([0.9 if "kafka" in r["prompt"] else 0.7 for r in rows])
        b = np.array([0.1 if "kafka" in r["prompt"] else 0.7 for r in rows])
        return np.stack([a, b])

    n_kafka = sum("kafka" in r["prompt"] for r in base.train)
    assert 0 < n_kafka < len(base.train)
    picked = build_dataset("dpo", DataSettings(table="preferences", selection=SelectionSettings(budget=n_kafka)),
                           str(tmp_path), seed=2, scorer=ensemble)
    assert all("kafka" in r["prompt"] for r in picked.train)


def test_missing_table_and_version_are_clear_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="no Delta table"):
        build_dataset("dpo", DataSettings(table="preferences"), str(tmp_path), seed=1)
    write_rows(str(tmp_path / "preferences"), "preferences", preference_rows(5, seed=1))
    with pytest.raises(ValueError, match="no version 9"):
        build_dataset("dpo", DataSettings(table="preferences", version=9), str(tmp_path), seed=1)
