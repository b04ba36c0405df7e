"""``hotline users``: the click group the lead mounts on the ``hotline`` command."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from agent_desk.auth import AuthStore
from agent_desk.cli import users
from hotline.config import Settings
from hotline.db import make_engine


def run(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(users, list(args), obj=settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_create_admin_once_then_add_users(tmp_path: Path) -> None:
    settings = Settings(runtime_dir=tmp_path)
    out = run(settings, "create-admin")
    password = re.search(r"password \(shown once.*\): (\S+)", out)
    assert password, out
    assert "admin" in out and "http://127.0.0.1:8080/" in out
    # Idempotent: a second set-up does not make another administrator.
    assert "already exists" in run(settings, "create-admin")

    out = run(settings, "add", "lawyer1", "--role", "seat_lawyer", "--seat", "s101",
              "--name", "张律师")  # fmt: skip
    first = re.search(r"first password .*: (\S+)", out)
    assert first, out
    listing = run(settings, "list")
    assert "lawyer1" in listing and "s101" in listing and "张律师" in listing

    engine = make_engine(settings.database_url)
    store = AuthStore(engine)
    assert store.verify_login("admin", password.group(1), "").must_change_password
    assert store.verify_login("lawyer1", first.group(1), "").role == "seat_lawyer"
    new = re.search(r": (\S+)$", run(settings, "reset", "lawyer1").strip())
    assert new and new.group(1) != first.group(1)
    assert store.verify_login("lawyer1", new.group(1), "")
    engine.dispose()


def test_add_refuses_a_seat_lawyer_without_seat(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        users, ["add", "x1", "--role", "seat_lawyer"], obj=Settings(runtime_dir=tmp_path)
    )
    assert result.exit_code == 1
    assert "seat" in result.output
