"""Agent desk tables: desk users, their server-side sessions, and the security audit log.

This module owns the *shape* of the three tables; ``agent_desk.auth`` is the only writer.
The schema is created by migration ``0005_desk`` (keep the two in step: tests/agent_desk
compares them on SQLite and PostgreSQL).

* ``desk_users``: one row per person who signs in to the desk (seat lawyer, supervisor,
  administrator, auditor). Only an argon2id hash of the password is stored. ``failed_attempts``
  and ``locked_until`` implement the automatic lock-out after repeated wrong passwords;
  ``disabled`` is the administrator's lock, which only an administrator lifts.
* ``desk_sessions``: the cookie holds an opaque random token; the table keeps only its SHA-256
  (a copy of the table does not let anyone take over a session), the CSRF token, and the times
  that implement idle and absolute expiry.
* ``desk_audit``: append-only record of security-relevant actions (sign-in, failures, lock-outs,
  user management, refused requests), with who, from where and the outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db.models import Base, BigIntId, JSONData, UTCDateTime


class DeskUser(Base):
    __tablename__ = "desk_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(128), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)  # hotline.web.Role value
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    seat_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A generated password (first one, or after a reset) must be replaced at first sign-in.
    must_change_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    def __repr__(self) -> str:
        return f"DeskUser({self.username!r}, role={self.role!r}, seat={self.seat_id!r})"


class DeskSession(Base):
    __tablename__ = "desk_sessions"

    # SHA-256 hex of the cookie token: the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("desk_users.id", ondelete="CASCADE"), nullable=False
    )
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)  # absolute
    client_addr: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    user_agent: Mapped[str] = mapped_column(String(256), nullable=False, default="")

    __table_args__ = (
        Index("ix_desk_sessions_user_id", "user_id"),
        Index("ix_desk_sessions_expires_at", "expires_at"),
    )


class AuditEntry(Base):
    __tablename__ = "desk_audit"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)  # username or None
    actor_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)  # e.g. "login.failed"
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # ok | denied | failed
    client_addr: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False, default=dict)

    __table_args__ = (
        Index("ix_desk_audit_ts", "ts"),
        Index("ix_desk_audit_action_ts", "action", "ts"),
    )
