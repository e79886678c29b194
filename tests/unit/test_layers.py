"""The layers point one way (alignloop > trainers > streams > connectors > schemas), checked by import-linter, and
configuration reaches the lower layers as arguments, never through the environment."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAYERS = ["alignloop", "trainers", "streams", "connectors", "schemas"]


def test_layers_contract_is_declared_whole_and_without_exceptions() -> None:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert sorted(cfg["root_packages"]) == sorted(LAYERS)
    (contract,) = [c for c in cfg["contracts"] if c["type"] == "layers"]
    assert contract["layers"] == LAYERS
    assert not contract.get("ignore_imports")


def test_lint_imports_passes() -> None:
    """A module importing from a layer above it (TYPE_CHECKING imports included) fails here as in `make test`."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _env_uses(path: Path) -> list[str]:
    """``os.environ`` / ``os.getenv`` uses in a module, except setdefault of a third-party library's own switch."""
    tree = ast.parse(path.read_text(), str(path))
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "environ"
                and node.args and isinstance(node.args[0], ast.Constant)
                and not str(node.args[0].value).startswith("ALIGNLOOP_")):
            allowed.add(id(node.func.value))
    return [f"{path.relative_to(REPO)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
            and isinstance(node.value, ast.Name) and node.value.id == "os" and id(node) not in allowed]


def test_lower_layers_read_no_environment() -> None:
    """Settings (schemas/settings.py) read the environment; the composition root (alignloop/) loads the area
    configs once and passes them down. Nothing in streams/, trainers/ or connectors/ looks at os.environ."""
    uses = [u for layer in ("streams", "trainers", "connectors") for p in sorted((REPO / layer).rglob("*.py"))
            for u in _env_uses(p)]
    assert uses == []
