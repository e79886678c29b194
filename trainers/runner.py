"""Trainer runner: consume ``train.requests``, run each job as a local subprocess, commit the offset after it ends.

A request is JSON: ``{"request_id", "kind": "sft"|"dpo"|"reward", "config": "configs/train/x.yaml",
"overrides": {"data.version": 7}, "reason": "drift:...", "evalset": "...", "gate": "..."}`` (only ``kind`` is
required; ``config`` defaults to configs/train/<kind>.yaml). With ``evalset`` the runner gates the new adapter
right after training. Offsets are committed only after the job finished, so a crashed runner re-runs the job
(at-least-once); requests for the same (kind, config, overrides) inside one poll are coalesced into one job.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import ValidationError

from schemas.drift import TRAIN_REQUEST_SCHEMA_VERSION, TrainRequest
from schemas.versions import newer_schema_version

if TYPE_CHECKING:
    from schemas.settings import Settings


@dataclass
class JobResult:
    request_id: str
    kind: str
    returncode: int
    seconds: float
    log_path: str
    coalesced: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def parse_request(raw: bytes) -> TrainRequest:
    """The request this runner can run, else ValueError saying why (the caller logs and skips it)."""
    try:
        req = TrainRequest(**json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
        raise ValueError("train request is not a JSON object") from None
    except ValidationError as exc:
        newer = newer_schema_version(exc)
        if newer is not None:
            raise ValueError(f"train request schema_version {newer} is newer than this runner understands "
                             f"(max {TRAIN_REQUEST_SCHEMA_VERSION}); upgrade the runner") from None
        err = exc.errors()[0]
        raise ValueError(f"bad train request field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if req.kind is None:
        raise ValueError("bad train request field kind: Field required")
    return req


def job_commands(req: TrainRequest, publish: bool) -> list[list[str]]:
    cli = [sys.executable, "-m", "alignloop.cli"]
    pub = ["--publish" if publish else "--no-publish"]
    train = [*cli, "train", req.kind, "--config", req.config_path(), *pub]
    overrides = dict(req.overrides)
    if req.replay is not None:  # the request names a replay: the recipe reads its namespace
        overrides.setdefault("data.replay", req.replay)
    for k, v in sorted(overrides.items()):
        train += ["--set", f"{k}={json.dumps(v)}"]
    cmds = [train]
    if req.evalset:
        gate = ["--gate", req.gate] if req.gate else []
        cmds.append([*cli, "eval", "--adapter", "{adapter_dir}", "--evalset", req.evalset, *gate, *pub])
    return cmds


def run_job(req: TrainRequest, log_dir: Path, *, publish: bool, timeout_s: float = 6 * 3600,
            cwd: str | Path | None = None, env: dict[str, str] | None = None) -> JobResult:
    """Run the request's commands in order; stop at the first failure. Output goes to <log_dir>/<id>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{req.request_id}.log"
    started = time.monotonic()
    rc = 0
    adapter_dir = ""
    with open(log_path, "w") as log:
        for cmd in job_commands(req, publish):
            cmd = [adapter_dir if c == "{adapter_dir}" else c for c in cmd]
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      timeout=timeout_s, cwd=cwd, env=env)
            except subprocess.TimeoutExpired:
                log.write(f"timed out after {timeout_s}s\n")
                rc = 124
                break
            log.write(proc.stdout)
            rc = proc.returncode
            for line in proc.stdout.splitlines():  # `alignloop train` prints "adapter: <dir>"
                if line.startswith("adapter: "):
                    adapter_dir = line.split(": ", 1)[1].strip()
            if rc != 0:
                break
    return JobResult(req.request_id, req.kind, rc, time.monotonic() - started, str(log_path))


def coalesce(requests: list[TrainRequest]) -> list[tuple[TrainRequest, list[str]]]:
    """One job per distinct (kind, config, overrides, evalset); later duplicates ride along."""
    out: dict[str, tuple[TrainRequest, list[str]]] = {}
    for r in requests:
        if r.dedup_key() in out:
            out[r.dedup_key()][1].append(r.request_id)
        else:
            out[r.dedup_key()] = (r, [])
    return list(out.values())


async def serve(settings: "Settings", env: Mapping[str, str], *, max_jobs: int | None = None,
                idle_timeout_s: float | None = None, publish: bool = True, log_dir: Path | None = None,
                group: str | None = None, on_result: Any = None) -> list[JobResult]:
    """Consume train.requests until ``max_jobs`` jobs ran or nothing arrived for ``idle_timeout_s``. Jobs run
    with ``env``, the environment the composition root wrote ``settings`` into (``alignloop.runner.settings_env``),
    so they load the same settings."""
    from aiokafka import AIOKafkaConsumer

    from connectors.kafka import aiokafka_client_kwargs
    from schemas.topics import TRAIN_REQUESTS

    log_dir = log_dir or settings.home / "trainer-runner"
    env = dict(env)
    consumer = AIOKafkaConsumer(settings.topic(TRAIN_REQUESTS), **aiokafka_client_kwargs(settings),
                                group_id=group or f"{settings.app_id}-trainer-runner", enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_interval_ms=24 * 3600 * 1000)
    await consumer.start()
    results: list[JobResult] = []
    last_seen = time.monotonic()
    try:
        while max_jobs is None or len(results) < max_jobs:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50)
            records = [m for msgs in batch.values() for m in msgs]
            if not records:
                if idle_timeout_s is not None and time.monotonic() - last_seen > idle_timeout_s:
                    break
                continue
            last_seen = time.monotonic()
            requests = []
            for m in records:
                try:
                    requests.append(parse_request(m.value))
                except ValueError as exc:  # a bad request is logged and skipped, never a crashed runner
                    print(f"skipping {m.topic}:{m.partition}@{m.offset}: {exc}", file=sys.stderr)
            for req, dups in coalesce(requests):
                res = await asyncio.to_thread(run_job, req, log_dir, publish=publish, env=env)
                res.coalesced = dups
                results.append(res)
                if on_result is not None:
                    on_result(res)
            await consumer.commit()
            last_seen = time.monotonic()
    finally:
        await consumer.stop()
    return results
