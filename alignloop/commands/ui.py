"""`alignloop ui [--port P]` (the labeling web app) and `alignloop users add NAME --role ROLE | list | role`."""
from __future__ import annotations

import sys

import typer

from alignloop.errors import UserError

users_app = typer.Typer(help="Labeling UI users: add (password from stdin), list, change a role.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")

    @app.command("ui")
    def ui_cmd(port: int = typer.Option(None, "--port", min=1, max=65535, help="Listen here (default "
                                                                                   "ALIGNLOOP_UI_PORT, 8700)."),
               host: str = typer.Option("127.0.0.1", "--host", help="Bind address; 0.0.0.0 behind a TLS proxy."),
               land: bool = typer.Option(True, "--land/--no-land", help="Also land feedback.labels and "
                                                                         "feedback.preferences in Delta.")) -> None:
        """Serve the labeling UI on judge.human_queue: leases, overlap, gold, hidden repeats, adaptive stop,
        agreement, roles, audit trail. Labels go to feedback.labels / feedback.preferences."""
        import asyncio

        from alignloop.ui.runtime import serve

        s = _settings()
        if not _store(s).users():
            raise UserError("no users yet; add an admin first: echo PASSWORD | alignloop users add NAME --role admin")
        typer.echo(f"labeling UI on http://{host}:{port or s.ui_port} (db {_redact(_url(s))})")
        try:
            asyncio.run(serve(s, host=host, port=port))
        except KeyboardInterrupt:
            pass


def _settings():  # noqa: ANN202
    from schemas.settings import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _url(s) -> str:  # noqa: ANN001
    from alignloop.ui.security import db_url

    return db_url(s)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _store(s):  # noqa: ANN001, ANN202
    from connectors.labeling_db import LabelStore

    try:
        return LabelStore(_url(s))
    except Exception as exc:  # a bad URL, a server down: one line
        raise UserError(f"cannot open the labeling DB {_redact(_url(s))}: {str(exc).splitlines()[0]}; "
                        "check ALIGNLOOP_UI_DB_URL") from None


@users_app.command("add")
def add(name: str = typer.Argument(..., help="Login name."),
        role: str = typer.Option(..., "--role", help="annotator | reviewer | admin")) -> None:
    """Add a user; the password is read from stdin (one line)."""
    from alignloop.ui.security import hash_password
    from connectors.labeling_db import StoreError
    from streams.labeling import audit_record

    password = sys.stdin.readline().rstrip("\n")
    try:
        pw = hash_password(password)
    except ValueError as exc:
        raise UserError(f"{exc}; pipe it in: echo PASSWORD | alignloop users add {name} --role {role}") from None
    s = _settings()
    store = _store(s)
    try:
        store.add_user(name, role, pw)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    # audit via the outbox: `alignloop ui` publishes it (a CLI without a broker still works)
    store.record([audit_record("cli", "ui.user_add", None, subject=f"user:{name}", role=role)])
    typer.echo(f"added {name} ({role})")


@users_app.command("list")
def list_users() -> None:
    """Name, role, active, answers."""
    for u in _store(_settings()).users():
        typer.echo(f"{u.name}\t{u.role}\t{'active' if u.active else 'disabled'}\t{u.n_done} answers")


@users_app.command("role")
def set_role(name: str = typer.Argument(...), role: str = typer.Option(..., "--role"),
             disable: bool = typer.Option(False, "--disable", help="Also disable the login.")) -> None:
    """Change a user's role (or disable them)."""
    from connectors.labeling_db import StoreError
    from streams.labeling import audit_record

    store = _store(_settings())
    try:
        store.set_user(name, role=role, active=not disable, records=[
            audit_record("cli", "ui.role_change", None, subject=f"user:{name}", role=role, active=not disable)])
    except StoreError as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"{name} is now {role}{' (disabled)' if disable else ''}")
