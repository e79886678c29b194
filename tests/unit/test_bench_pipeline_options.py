"""bench pipeline's --only: 'system' is the one value; anything else is refused before a broker or a trace is touched."""
from __future__ import annotations

from typer.testing import CliRunner

from alignloop.cli import app


def test_only_refuses_an_unknown_figure() -> None:
    res = CliRunner().invoke(app, ["bench", "pipeline", "--only", "spines"])
    assert res.exit_code == 2
    assert "--only takes 'system'" in res.output
