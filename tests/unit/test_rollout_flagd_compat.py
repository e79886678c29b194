"""A flagd evaluator that is not alignloop's code assigns the same variant as alignloop, for 10,000 ids per weight.

Two independent evaluators read the file `alignloop rollout export` writes:
- flagd's own Go evaluator (github.com/open-feature/flagd/core v0.16.1, `tests/flagd_go/`), built here with `go`;
- the OpenFeature Python flagd provider in file mode (openfeature-provider-flagd 0.5.2 with
  openfeature-flagd-core 1.0.0: its own `fractional` on `mmh3`). Provider 0.6.x / core 2.x implements flagd's
  CBOR-encoding ADR, which flagd's Go evaluator does not yet; it agrees with Go on only chance-level shares.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignloop.cli import app
from streams.rollout.bucketing import assign
from streams.rollout.flags import parse_flag

WEIGHTS = [1, 5, 25, 50, 99]
IDS = [f"conv-{i:05d}-{i * 7919 % 10007}" for i in range(10_000)]
GO_DIR = Path(__file__).resolve().parent.parent / "flagd_go"


def _records() -> list[dict]:
    return [{"agent_id": f"agent-w{w}", "rollout_id": f"r-{w}", "version": 1, "stage": "canary",
             "baseline": {"policy_id": "base"},
             "candidate": {"policy_id": "cand", "adapter_id": f"ad-{w}", "adapter_hash": f"sha256:{w:04x}"},
             "weights": {"candidate": w, "baseline": 100 - w}, "updated_at": "2026-12-01T00:00:00Z"}
            for w in WEIGHTS]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("flagd")
    flags_in, out = tmp / "flags.json", tmp / "flagd.json"
    flags_in.write_text(json.dumps(_records()))
    res = CliRunner().invoke(app, ["rollout", "export", "--format", "flagd", "--flags", str(flags_in),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    ours = {}
    for rec in _records():
        flag = parse_flag(rec)
        ours[flag.agent_id] = {c: assign(flag, c) for c in IDS}
    return out, ours


def _check(theirs: dict[str, dict[str, str]], ours: dict[str, dict[str, str]]) -> None:
    for agent, mine in ours.items():
        disagree = [c for c in IDS if theirs[agent][c] != mine[c]]
        assert not disagree, f"{agent}: {len(disagree)} of {len(IDS)} differ, e.g. {disagree[:3]}"
        share = sum(v == "candidate" for v in mine.values()) / len(IDS)
        w = int(agent.removeprefix("agent-w"))
        assert abs(share - w / 100) < 0.02  # the ids really exercise both variants


def test_openfeature_python_flagd_provider_agrees(exported: tuple[Path, dict]) -> None:
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    path, ours = exported
    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
    try:
        client = api.get_client()
        theirs: dict[str, dict[str, str]] = {}
        for agent in ours:
            theirs[agent] = {}
            for c in IDS:
                d = client.get_object_details(agent, {}, EvaluationContext(targeting_key=c))
                theirs[agent][c] = d.variant
                assert d.value["policy_id"] == ("cand" if d.variant == "candidate" else "base")
        no_key = client.get_object_details("agent-w50", {}, EvaluationContext())
        assert (no_key.variant, no_key.value["policy_id"]) == ("baseline", "base")  # defaultVariant, as assign()
    finally:
        api.shutdown()
    _check(theirs, ours)


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to build flagd's evaluator")
def test_flagd_go_evaluator_agrees(exported: tuple[Path, dict], tmp_path: Path) -> None:
    path, ours = exported
    binary = tmp_path / "flagd_go"
    # -buildvcs=false: the module sits inside alignloop's git tree; stamping it would need git, and adds nothing.
    build = subprocess.run(["go", "build", "-buildvcs=false", "-o", str(binary), "."], cwd=GO_DIR,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    theirs: dict[str, dict[str, str]] = {}
    for agent in ours:
        run = subprocess.run([str(binary), str(path), agent], input="\n".join(IDS) + "\n", capture_output=True,
                             text=True, timeout=120, check=True)
        theirs[agent] = dict(line.split("\t") for line in run.stdout.splitlines())
    _check(theirs, ours)
