"""A replay's window: parsed from ``--from``/``--to`` and resolved per partition against what the broker holds.

Pure: the broker's answers (log start, high-water mark, offsets for times, first available timestamp) come in as
a ``Probe``; every problem a user can fix is a ``WindowError`` with one line naming the fix. Offsets are
inclusive (``0:0-99`` is 100 records); a time window is half-open, ``[from, to)``.

Time windows read ``[offset_for(from), offset_for(to))`` per partition (Kafka's offsets-for-times: the first offset
whose timestamp is >= the time) and keep only records whose own timestamp is in the window, since producer
timestamps can be out of order. Whatever the broker no longer holds (retention, deleted records) is reported
per partition as a gap, never silently skipped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


class WindowError(ValueError):
    """A window the user must fix (one line)."""


@dataclass(frozen=True)
class Spec:
    """A parsed window: times in ms (``to_ms`` None = up to the end) or offsets per partition (inclusive)."""

    kind: str                                     # "time" | "offsets"
    from_ms: int | None = None
    to_ms: int | None = None
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionProbe:
    """What the broker says about one partition."""

    log_start: int                 # first offset still held (> 0 after retention or deleted records)
    high_water: int                # next offset to be written
    first_ts_ms: int | None        # timestamp of the record at log_start (None: partition empty)
    from_offset: int | None = None  # offsets_for_times(from): None past the end
    to_offset: int | None = None    # offsets_for_times(to): None past the end


@dataclass
class PartitionWindow:
    partition: int
    requested: str
    start: int                     # first offset to read
    end: int                       # last offset to read, inclusive (start > end: nothing to read)
    log_start: int
    high_water: int
    gaps: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.start > self.end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(text: str) -> int:
    """ISO 8601 (naive = UTC; 'Z' allowed) or epoch milliseconds -> epoch ms."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{text!r} is neither a time (ISO 8601, e.g. 2026-12-01T10:00:00Z, or epoch ms) nor "
                          "offsets (p:start-end,... or p:offset,...)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _offsets(text: str) -> dict[int, tuple[int, int | None]]:
    """``p:start-end,...`` or ``p:offset,...`` -> {p: (start, end or None)}."""
    out: dict[int, tuple[int, int | None]] = {}
    for part in text.split(","):
        p, _, rng = part.strip().partition(":")
        lo, dash, hi = rng.partition("-")
        try:
            key, start, end = int(p), int(lo), (int(hi) if dash else None)
        except ValueError:
            raise WindowError(f"bad offsets {part.strip()!r}: write p:start-end (inclusive) or p:offset, "
                              "e.g. 0:0-499,1:0-499") from None
        if key < 0 or start < 0 or (end is not None and end < start):
            raise WindowError(f"bad offsets {part.strip()!r}: partitions and offsets are >= 0 and end >= start")
        if key in out:
            raise WindowError(f"partition {key} is named twice in {text!r}")
        out[key] = (start, end)
    return out


def _is_offsets(text: str) -> bool:
    return ":" in text and all(c.isdigit() or c in ":-, " for c in text)


def parse_window(frm: str, to: str | None) -> Spec:
    """``--from``/``--to`` -> a ``Spec``. Offsets: ``--from 0:0-99,1:0-99`` alone, or ``--from 0:0,1:0 --to
    0:99,1:99``; times: ``--from T [--to T]``."""
    if _is_offsets(frm):
        start = _offsets(frm)
        if to is None:
            missing = [p for p, (_, e) in start.items() if e is None]
            if missing:
                raise WindowError(f"no end offset for partition(s) {missing}: write p:start-end or give --to p:end")
            return Spec("offsets", offsets={p: (s, e) for p, (s, e) in start.items()})  # type: ignore[misc]
        if not _is_offsets(to):
            raise WindowError("--from is offsets, so --to must be offsets too (p:end,...)")
        ends = _offsets(to)
        if set(ends) != set(start) or any(e is not None for _, e in start.values()):
            raise WindowError("with --to, --from names p:start and --to p:end for the same partitions")
        out = {p: (start[p][0], ends[p][0]) for p in start}
        for p, (s, e) in out.items():
            if e < s:
                raise WindowError(f"partition {p}: --to offset {e} is before --from offset {s}")
        return Spec("offsets", offsets=out)
    from_ms = parse_time(frm)
    to_ms = parse_time(to) if to is not None else None
    if to is not None and _is_offsets(to):
        raise WindowError("--from is a time, so --to must be a time too")
    if to_ms is not None and to_ms <= from_ms:
        raise WindowError(f"--to ({to}) must be after --from ({frm})")
    return Spec("time", from_ms=from_ms, to_ms=to_ms)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()


def resolve(spec: Spec, probes: dict[int, PartitionProbe]) -> list[PartitionWindow]:
    """The offsets to read per partition, with gaps noted; ``WindowError`` for offsets beyond the end, unknown
    partitions, a window wholly older than retention, or a window with no records."""
    windows = _resolve_offsets(spec, probes) if spec.kind == "offsets" else _resolve_times(spec, probes)
    if all(w.empty for w in windows):
        gone = [w for w in windows if w.gaps]
        if gone:
            raise WindowError(f"the window is older than the topic's retention: {gone[0].gaps[0]}; pick a later "
                              "window (nothing older is held)")
        raise WindowError("the window holds no records on any partition; widen --from/--to")
    return windows


def _resolve_offsets(spec: Spec, probes: dict[int, PartitionProbe]) -> list[PartitionWindow]:
    out = []
    for p, (start, end) in sorted(spec.offsets.items()):
        if p not in probes:
            raise WindowError(f"partition {p} does not exist (the topic has partitions {sorted(probes)})")
        pr = probes[p]
        if end >= pr.high_water:
            raise WindowError(f"offsets beyond the end: partition {p} holds offsets up to {pr.high_water - 1} "
                              f"(you asked for {end}); lower the end offset")
        w = PartitionWindow(p, f"{start}-{end}", max(start, pr.log_start), end, pr.log_start, pr.high_water)
        if start < pr.log_start:
            w.gaps.append(f"partition {p}: offsets {start}-{min(end, pr.log_start - 1)} are gone (retention or "
                          f"deleted records); the first offset held is {pr.log_start}")
        out.append(w)
    return out


def _resolve_times(spec: Spec, probes: dict[int, PartitionProbe]) -> list[PartitionWindow]:
    assert spec.from_ms is not None
    out = []
    for p, pr in sorted(probes.items()):
        start = pr.high_water if pr.from_offset is None else pr.from_offset  # None: no record at or after from
        stop = pr.high_water if spec.to_ms is None or pr.to_offset is None else pr.to_offset
        w = PartitionWindow(p, f"{_iso(spec.from_ms)} .. {_iso(spec.to_ms) or 'end'}", max(start, pr.log_start),
                            stop - 1, pr.log_start, pr.high_water)
        if pr.log_start > 0 and pr.first_ts_ms is not None and pr.first_ts_ms > spec.from_ms:
            # the broker dropped offsets 0..log_start-1, and what it still holds starts after the window opened
            lost_to = spec.to_ms if spec.to_ms is not None and spec.to_ms < pr.first_ts_ms else pr.first_ts_ms
            w.gaps.append(f"partition {p}: records from {_iso(spec.from_ms)} to {_iso(lost_to)} may be gone "
                          f"(offsets below {pr.log_start} were removed by retention or deletion; the first record "
                          f"held is from {_iso(pr.first_ts_ms)})")
        out.append(w)
    return out
