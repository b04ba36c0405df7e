"""``hotline users``: desk accounts from the command line (set-up and operators).

``hotline users create-admin`` is what set-up runs: it creates the first administrator with a
generated password and prints the credentials once (the password is stored only as a hash;
a lost one is reset with ``hotline users reset``). Running it again when an administrator
exists changes nothing and says so, which keeps set-up idempotent.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from agent_desk.auth import DESK_ROLES, AuthError, AuthStore, DeskAuthConfig
from hotline.web import Role


def _store(settings: Any) -> AuthStore:
    from hotline.db import make_engine, migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    return AuthStore(engine, DeskAuthConfig.from_service(type("S", (), {"settings": settings})))


def _fail(exc: AuthError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(1)


@click.group(name="users")
def users() -> None:
    """Agent desk users (坐席律师, 班长, administrators, auditors)."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice([str(r) for r in DESK_ROLES]),
    help="seat_lawyer (坐席律师), supervisor (班长), administrator, auditor",
)
@click.option("--seat", "seat_id", default=None, help="the seat a seat lawyer works at")
@click.option("--name", "display_name", default=None, help="display name, e.g. 张律师")
@click.pass_obj
def add(settings: Any, username: str, role: str, seat_id: str | None, display_name: str | None):
    """Create a user; prints a generated first password once (to change at first sign-in)."""
    store = _store(settings)
    try:
        user, password = store.create_user(
            username, role, display_name=display_name, seat_id=seat_id
        )
    except AuthError as exc:
        _fail(exc)
        return
    store.audit("user.created", actor="cli", target=user.username, role=user.role, via="cli")
    click.echo(f"user {user.username} ({user.role}) created")
    click.echo(f"first password (shown once, change at first sign-in): {password}")


def ensure_first_admin(settings: Any, username: str = "admin") -> tuple[str, str] | None:
    """Create the first administrator unless one exists; returns (username, password) or None.

    For set-up (``hotline setup`` / ``make up``): print the credentials it returns, once.
    """
    store = _store(settings)
    try:
        if store.count_users(Role.ADMINISTRATOR) > 0:
            return None
        user, password = store.create_user(username, Role.ADMINISTRATOR, display_name="管理员")
        store.audit("user.created", actor="setup", target=user.username, role=user.role, via="cli")
        return user.username, password
    finally:
        store.engine.dispose()


@users.command("create-admin")
@click.option("--username", default="admin", show_default=True)
@click.pass_obj
def create_admin(settings: Any, username: str) -> None:
    """Create the first administrator (set-up runs this); a no-op when one exists."""
    try:
        created = ensure_first_admin(settings, username)
    except AuthError as exc:
        _fail(exc)
        return
    if created is None:
        click.echo("an administrator already exists; use `hotline users reset` if locked out")
        return
    url = f"http://{settings.service.bind}:{settings.service.port}/"
    click.echo(f"agent desk administrator: {created[0]}")
    click.echo(f"password (shown once, change at first sign-in): {created[1]}")
    click.echo(f"sign in at {url}")


@users.command("reset")
@click.argument("username")
@click.pass_obj
def reset(settings: Any, username: str) -> None:
    """Give a user a new generated password and unlock the account; ends their sessions."""
    store = _store(settings)
    try:
        password = store.reset_password(username)
        store.set_disabled(username, False)
    except AuthError as exc:
        _fail(exc)
        return
    store.audit("user.password_reset", actor="cli", target=username.lower(), via="cli")
    click.echo(f"new password for {username.lower()} (shown once): {password}")


@users.command("list")
@click.pass_obj
def list_(settings: Any) -> None:
    """List users, their roles, seats and locks."""
    store = _store(settings)
    for u in store.list_users():
        data = u.to_json()
        lock = " LOCKED" if data["locked"] else ""
        click.echo(f"{u.username:<20} {u.role:<14} {u.seat_id or '-':<10} {u.display_name}{lock}")
