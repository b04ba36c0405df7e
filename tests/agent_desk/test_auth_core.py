"""The desk's security core without HTTP: passwords, lock-out, sessions, rate limits, schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from argon2 import PasswordHasher
from desk_server import FAST, PASSWORD
from sqlalchemy import inspect

import agent_desk.models  # noqa: F401 - registers the desk tables on Base.metadata
from agent_desk.auth import (
    AuthError,
    AuthStore,
    DeskAuthConfig,
    RateLimiter,
    check_password_policy,
    generate_password,
)
from agent_desk.models import DeskSession
from hotline.db import Base, make_engine, migrate
from hotline.db.testing import DbTarget
from hotline.web import Role

DESK_TABLES = {"desk_users", "desk_sessions", "desk_audit"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> AuthStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    migrate(engine)
    config = DeskAuthConfig(
        **{**FAST.__dict__, "idle_timeout_s": 60, "absolute_timeout_s": 300, "max_failures": 3}
    )
    s = AuthStore(engine, config, clock=clock)
    s.create_user("lawyer1", Role.SEAT_LAWYER, seat_id="s101", password=PASSWORD,
                  must_change_password=False)  # fmt: skip
    return s


def test_migration_matches_models(db: DbTarget) -> None:
    migrate(db.engine)
    assert DESK_TABLES <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    ours = [d for d in diff if any(t in repr(d) for t in DESK_TABLES)]
    assert ours == []


def test_password_is_stored_as_argon2id_hash(store: AuthStore) -> None:
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM desk_users").scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_generated_passwords_pass_the_policy() -> None:
    seen = {generate_password(16) for _ in range(50)}
    assert len(seen) == 50
    for pw in seen:
        check_password_policy(pw, DeskAuthConfig())


@pytest.mark.parametrize("weak", ["short1A!", "alllowercaseletters", "lawyer1-Strong-9"])
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(AuthError) as info:
        check_password_policy(weak, DeskAuthConfig(), "lawyer1")
    assert info.value.code == "weak_password"


def test_wrong_password_and_unknown_user_give_the_same_answer(store: AuthStore) -> None:
    errors = []
    for name in ("lawyer1", "nobody"):
        with pytest.raises(AuthError) as info:
            store.verify_login(name, "wrong-Password-1", "10.0.0.1")
        errors.append((info.value.status, info.value.code, info.value.message))
    assert errors[0] == errors[1] == (401, "invalid_credentials", errors[0][2])


def test_lock_out_after_repeated_failures_then_expires(store: AuthStore, clock: Clock) -> None:
    for _ in range(3):
        with pytest.raises(AuthError):
            store.verify_login("lawyer1", "wrong-Password-1", "10.0.0.1")
    # Now even the right password is refused until the lock-out ends.
    with pytest.raises(AuthError) as info:
        store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    assert (info.value.status, info.value.code) == (423, "account_locked")
    actions = [e["action"] for e in store.audit_entries()]
    assert "user.locked_out" in actions and "login.refused_locked" in actions

    clock.advance(store.config.lockout_s + 1)
    assert store.verify_login("lawyer1", PASSWORD, "10.0.0.1").username == "lawyer1"


def test_success_resets_the_failure_count(store: AuthStore) -> None:
    for _ in range(2):
        with pytest.raises(AuthError):
            store.verify_login("lawyer1", "wrong-Password-1", "10.0.0.1")
    store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    for _ in range(2):
        with pytest.raises(AuthError):
            store.verify_login("lawyer1", "wrong-Password-1", "10.0.0.1")
    assert store.verify_login("lawyer1", PASSWORD, "10.0.0.1")


def test_administrator_lock_ends_sessions_and_refuses_sign_in(store: AuthStore) -> None:
    user = store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    token = store.create_session(user, "10.0.0.1", "test").token
    store.set_disabled("lawyer1", True)
    assert store.load_session(token) is None
    with pytest.raises(AuthError) as info:
        store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    assert info.value.status == 423
    store.set_disabled("lawyer1", False)
    assert store.verify_login("lawyer1", PASSWORD, "10.0.0.1")


def test_session_idle_and_absolute_expiry(store: AuthStore, clock: Clock) -> None:
    user = store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    token = store.create_session(user, "10.0.0.1", "test").token
    # Activity every 50 s keeps it alive past the 60 s idle limit ...
    for _ in range(5):
        clock.advance(50)
        assert store.load_session(token) is not None
    # ... but not past the 300 s absolute limit.
    clock.advance(60)
    assert store.load_session(token) is None

    token = store.create_session(user, "10.0.0.1", "test").token
    clock.advance(61)
    assert store.load_session(token) is None
    reasons = [e["details"].get("reason") for e in store.audit_entries()
               if e["action"] == "session.expired"]  # fmt: skip
    assert reasons == ["idle", "absolute"]


def test_only_a_hash_of_the_session_token_is_stored(store: AuthStore) -> None:
    user = store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    result = store.create_session(user, "10.0.0.1", "test")
    assert len(result.token) >= 43  # 256 bits
    with store._sessions() as s:
        keys = [row.token_hash for row in s.query(DeskSession)]
    assert result.token not in keys and len(keys) == 1


def test_reset_password_must_be_changed_and_ends_sessions(store: AuthStore) -> None:
    user = store.verify_login("lawyer1", PASSWORD, "10.0.0.1")
    token = store.create_session(user, "10.0.0.1", "test").token
    new = store.reset_password("lawyer1")
    assert store.load_session(token) is None
    assert store.verify_login("lawyer1", new, "10.0.0.1").must_change_password
    with pytest.raises(AuthError):
        store.change_password("lawyer1", "not-it-Aa1", "Another-Good-1")
    store.change_password("lawyer1", new, "Another-Good-1")
    assert not store.verify_login("lawyer1", "Another-Good-1", "10.0.0.1").must_change_password


def test_weak_hash_is_upgraded_at_sign_in(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate(engine)
    weak = AuthStore(engine, FAST)
    weak.create_user("u1", Role.AUDITOR, password=PASSWORD, must_change_password=False)
    strong = AuthStore(engine, DeskAuthConfig(argon2_time_cost=2, argon2_memory_kib=2048,
                                              argon2_parallelism=1))  # fmt: skip
    strong.verify_login("u1", PASSWORD, "")
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM desk_users").scalar_one()
    assert not PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).check_needs_rehash(
        stored
    )
    engine.dispose()


def test_seat_lawyer_needs_a_seat_and_roles_are_checked(store: AuthStore) -> None:
    with pytest.raises(AuthError) as info:
        store.create_user("lawyer9", Role.SEAT_LAWYER)
    assert info.value.code == "seat_required"
    with pytest.raises(AuthError) as info:
        store.create_user("robot", "service")
    assert info.value.code == "invalid_role"
    with pytest.raises(AuthError) as info:
        store.create_user("LAWYER1", Role.AUDITOR)
    assert info.value.code == "user_exists"


def test_rate_limiter_sliding_window() -> None:
    limiter = RateLimiter(3, 10.0)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("k", t) == 0
        limiter.hit("k", t)
    assert limiter.retry_after("k", 3.0) == pytest.approx(7.0)
    assert limiter.retry_after("other", 3.0) == 0
    assert limiter.retry_after("k", 10.5) == 0  # the first hit left the window


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(1, 60.0, max_keys=100)
    for i in range(1000):
        limiter.hit(f"addr:{i}", 0.0)
    assert len(limiter._hits) == 100
