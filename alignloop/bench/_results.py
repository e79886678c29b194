"""Writing benchmark results: bench/results/<name>-<timestamp>.json, plus a printed table."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def write_result(name: str, figures: dict[str, Any], *, out_dir: Path | None = None) -> Path:
    out_dir = out_dir or Path(os.environ.get("ALIGNLOOP_BENCH_DIR", "bench/results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "benchmark": name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "commit": _commit(),
        **figures,
    }
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def _commit() -> str | None:
    """The code's git commit (with ``+dirty`` when the tree has changes), so a result names what it measured."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if head and dirty else head or None


def print_table(title: str, rows: list[tuple[str, Any]], console: Console | None = None) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, f"{v:,.3f}" if isinstance(v, float) else str(v))
    (console or Console()).print(table)
