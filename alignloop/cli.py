"""The one `alignloop` CLI. Commands parse, load settings once, call a function.

Each module in ``alignloop/commands/`` contributes commands through ``register(app)``, and each module in
``alignloop/bench/`` a ``alignloop bench <name>`` through ``register(bench_app)``, so areas do not share a file.
"""
from __future__ import annotations

import importlib
import pkgutil
import os
import sys

import typer

from alignloop.errors import UserError, exit_now
from schemas.settings import ConfigError

__all__ = ["UserError", "app", "bench_app", "main"]

app = typer.Typer(help="alignloop: continuous alignment of LLM agents from production traffic.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Benchmarks: print a table, write bench/results/<name>-<timestamp>.json.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _discover(package: str, target: typer.Typer) -> None:
    pkg = importlib.import_module(package)
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(target)


_discover("alignloop.commands", app)
_discover("alignloop.bench", bench_app)


def main() -> None:
    from schemas.settings import check_env

    try:
        check_env(os.environ)  # a mistyped ALIGNLOOP_* name fails every command, not only those that load settings
        app()
    except (ConfigError, UserError) as exc:
        print(f"alignloop: {exc}", file=sys.stderr)
        # Skip interpreter teardown: native threads of deltalake/pyarrow can abort it ("terminate called without
        # an active exception") and turn a clean exit 2 into SIGABRT.
        exit_now(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
