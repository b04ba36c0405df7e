"""Desk sign-in, sessions, CSRF and the security audit: the agent desk's security core.

Theory of operation
-------------------
*Passwords* are hashed with argon2id (argon2-cffi); a hash made with weaker parameters than the
configured ones is replaced at the next successful sign-in. Generated passwords (first password,
administrator reset) must be changed at first sign-in (``must_change_password``); until then the
session may only change the password, read ``/api/auth/me`` and sign out.

*Sign-in* (``DeskAuth.login``) passes three gates, in order:

1. the in-memory ``RateLimiter``: at most ``addr_attempts`` attempts per client address and
   ``user_attempts`` per username within ``rate_window_s`` (429 with Retry-After). It slows
   password spraying across accounts from one address and guessing against one account from
   many addresses;
2. the account's lock: the administrator's ``disabled`` flag, or ``locked_until`` set
   automatically after ``max_failures`` consecutive wrong passwords (423). This lock is in the
   database, so it survives restarts and holds across service processes;
3. the password. A wrong one (or an unknown user) gives the same 401 and takes the same time
   (an unknown user is checked against a dummy hash), so usernames cannot be probed.

*Sessions* are rows in ``desk_sessions``. The cookie carries an opaque random token (256 bits);
the row is keyed by its SHA-256. The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure
when the request came over TLS (or always, by configuration). A session ends at the first of:
sign-out, ``idle_timeout_s`` without a request, ``absolute_timeout_s`` after sign-in, the user
being locked or their password reset. Each sign-in makes a new token (no session fixation).

*CSRF*: every session has a synchronizer token, handed to the page by ``/api/auth/login`` and
``/api/auth/me`` (same-origin JSON the attacker's page cannot read). A state-changing request
(anything but GET/HEAD/OPTIONS) authenticated by the session cookie must carry it in the
``X-CSRF-Token`` header, and, when the browser sends an ``Origin``, that must be this host.
The check runs inside ``session_authenticator``, so it guards every API that uses
``hotline.web.require`` (other features' APIs included), not only this package's routes.
Refusals are 403 JSON errors and are audited.

Every database call runs in a worker thread (``asyncio.to_thread``): the event loop never waits
on the database. ``AuthStore`` holds the synchronous database logic and is usable from the CLI.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import string
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent_desk.models import AuditEntry, DeskSession, DeskUser
from hotline.web import Principal, Role, json_error

log = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Requests a session that must change its password may still make.
PASSWORD_CHANGE_PATHS = frozenset({"/api/auth/password", "/api/auth/logout"})
DESK_ROLES = (Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR)
USERNAME_CHARS = frozenset(string.ascii_lowercase + string.digits + "._-")


@dataclass(frozen=True)
class DeskAuthConfig:
    """Security settings of the desk; defaults suit a production shift (12 h, 30 min idle)."""

    idle_timeout_s: float = 30 * 60
    absolute_timeout_s: float = 12 * 3600
    max_failures: int = 5  # consecutive wrong passwords before the automatic lock-out
    lockout_s: float = 15 * 60
    rate_window_s: float = 5 * 60
    addr_attempts: int = 30  # sign-in attempts per client address per window
    user_attempts: int = 10  # sign-in attempts per username per window
    cookie_name: str = "hotline_session"
    secure_cookies: Literal["auto", "always", "never"] = "auto"  # auto: when the request is TLS
    trust_forwarded_for: bool = False  # take the client address from X-Forwarded-For (proxy)
    password_min_length: int = 10
    generated_password_length: int = 16
    # argon2id parameters (argon2-cffi defaults: RFC 9106 low-memory profile).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    @classmethod
    def from_service(cls, service: object) -> DeskAuthConfig:
        """The ``desk`` section of the service's settings when there is one, else defaults."""
        section = getattr(getattr(service, "settings", None), "desk", None)
        if section is None:
            return cls()
        values = section.model_dump() if hasattr(section, "model_dump") else dict(section)
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# --- errors --------------------------------------------------------------------------------


class AuthError(Exception):
    """A refused sign-in or user-management request, mapped to one JSON error response."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def response(self) -> web.Response:
        resp = json_error(self.status, self.code, self.message, **self.details)
        if "retry_after_s" in self.details:
            resp.headers["Retry-After"] = str(int(self.details["retry_after_s"]) + 1)
        return resp


# --- passwords -----------------------------------------------------------------------------

# No look-alikes (0/O, 1/l/I): a generated password is read off a screen and typed in.
_PASSWORD_ALPHABET = (
    "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI") + "-_!@#%+="
)


def generate_password(length: int = 16) -> str:
    """A random password with at least one lower, upper, digit and symbol."""
    while True:
        pw = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in pw)
            and any(c.isupper() for c in pw)
            and any(c.isdigit() for c in pw)
            and any(not c.isalnum() for c in pw)
        ):
            return pw


def hasher_for(config: DeskAuthConfig) -> PasswordHasher:
    return PasswordHasher(
        time_cost=config.argon2_time_cost,
        memory_cost=config.argon2_memory_kib,
        parallelism=config.argon2_parallelism,
    )


def check_password_policy(password: str, config: DeskAuthConfig, username: str = "") -> None:
    """Raise AuthError(400) unless ``password`` is long and varied enough."""
    problems = []
    if len(password) < config.password_min_length:
        problems.append(f"至少 {config.password_min_length} 个字符 (at least that many characters)")
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        problems.append("需包含大写、小写、数字、符号中的三类 (three of upper/lower/digit/symbol)")
    if username and username.lower() in password.lower():
        problems.append("不能包含用户名 (must not contain the username)")
    if problems:
        raise AuthError(400, "weak_password", "；".join(problems))


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not (2 <= len(name) <= 64) or not set(name) <= USERNAME_CHARS or not name[0].isalnum():
        raise AuthError(
            400,
            "invalid_username",
            "用户名须为 2-64 个小写字母、数字或 ._- (2-64 lower-case letters, digits or ._-)",
        )
    return name


def parse_role(value: object) -> Role:
    try:
        role = Role(str(value))
    except ValueError:
        role = None
    if role not in DESK_ROLES:
        raise AuthError(400, "invalid_role", f"role must be one of {[str(r) for r in DESK_ROLES]}")
    assert role is not None
    return role


# --- rate limiting (pure logic, injected clock) ---------------------------------------------


class RateLimiter:
    """Sliding-window attempt counter per key; bounded memory (oldest keys forgotten)."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return hits[0] + self.window_s - now

    def hit(self, key: str, now: float) -> None:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(now)
        while len(hits) > self.limit:
            hits.popleft()


# --- the database side (synchronous; the CLI uses it directly) -----------------------------


@dataclass(frozen=True)
class UserInfo:
    """A desk user as the API shows it (never the hash)."""

    username: str
    display_name: str
    role: str
    seat_id: str | None
    must_change_password: bool
    disabled: bool
    locked_until: datetime | None
    failed_attempts: int
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: DeskUser) -> UserInfo:
        return cls(
            user.username,
            user.display_name,
            user.role,
            user.seat_id,
            user.must_change_password,
            user.disabled,
            user.locked_until,
            user.failed_attempts,
            user.created_at,
            user.last_login_at,
        )

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        data = asdict(self)
        for key in ("locked_until", "created_at", "last_login_at"):
            data[key] = data[key].isoformat() if data[key] else None
        now = now or datetime.now(UTC)
        data["locked"] = self.disabled or bool(self.locked_until and self.locked_until > now)
        return data


@dataclass(frozen=True)
class SessionInfo:
    """A valid session: who, and the CSRF token the page must echo."""

    token_hash: str
    user: UserInfo
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    @property
    def principal(self) -> Principal:
        return Principal(
            id=self.user.username,
            role=Role(self.user.role),
            name=self.user.display_name,
            seat_id=self.user.seat_id,
        )


# The SessionInfo of a cookie-authenticated request.
SESSION_KEY = web.RequestKey("desk_session", SessionInfo)


@dataclass
class LoginResult:
    token: str
    session: SessionInfo


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class AuthStore:
    """Users, sessions and audit rows in the database. Synchronous: call from a thread."""

    engine: Engine
    config: DeskAuthConfig = field(default_factory=DeskAuthConfig)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.hasher = hasher_for(self.config)
        self._dummy: str | None = None

    @property
    def _dummy_hash(self) -> str:
        """Verified against when the username is unknown, so the answer takes as long."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(16))
        return self._dummy

    # audit ---------------------------------------------------------------------------
    def audit(
        self,
        action: str,
        *,
        outcome: str = "ok",
        actor: str | None = None,
        actor_role: str | None = None,
        target: str | None = None,
        client_addr: str = "",
        db: Session | None = None,
        **details: Any,
    ) -> None:
        entry = AuditEntry(
            ts=self.clock(),
            actor=actor[:64] if actor else None,
            actor_role=actor_role,
            action=action,
            target=target[:128] if target else None,
            outcome=outcome,
            client_addr=client_addr[:64],
            details=details,
        )
        if db is not None:
            db.add(entry)
            return
        with self._sessions.begin() as s:
            s.add(entry)
        log.info("audit %s %s actor=%s target=%s", action, outcome, actor, target)

    def audit_entries(self, limit: int = 100, before_id: int | None = None) -> list[dict]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        with self._sessions() as s:
            rows = s.scalars(query).all()
        return [
            {
                "id": r.id,
                "ts": r.ts.isoformat(),
                "actor": r.actor,
                "actor_role": r.actor_role,
                "action": r.action,
                "target": r.target,
                "outcome": r.outcome,
                "client_addr": r.client_addr,
                "details": r.details,
            }
            for r in rows
        ]

    # users ---------------------------------------------------------------------------
    def create_user(
        self,
        username: str,
        role: Role | str,
        *,
        display_name: str | None = None,
        seat_id: str | None = None,
        password: str | None = None,
        must_change_password: bool = True,
    ) -> tuple[UserInfo, str]:
        """Create a user; returns it and its password (generated unless given)."""
        name = check_username(username)
        role = parse_role(role)
        if role is Role.SEAT_LAWYER and not seat_id:
            raise AuthError(
                400, "seat_required", "坐席律师必须指定坐席 (a seat lawyer needs a seat)"
            )
        if password is None:
            password = generate_password(self.config.generated_password_length)
        else:
            check_password_policy(password, self.config, name)
        now = self.clock()
        with self._sessions.begin() as s:
            if s.scalar(select(DeskUser.id).where(DeskUser.username == name)) is not None:
                raise AuthError(409, "user_exists", f"用户 {name} 已存在 (user exists)")
            user = DeskUser(
                username=name,
                display_name=(display_name or name).strip()[:128] or name,
                role=str(role),
                password_hash=self.hasher.hash(password),
                seat_id=seat_id or None,
                must_change_password=must_change_password,
                failed_attempts=0,
                locked_until=None,
                disabled=False,
                created_at=now,
                password_changed_at=now,
            )
            s.add(user)
            s.flush()
            return UserInfo.of(user), password

    def list_users(self) -> list[UserInfo]:
        with self._sessions() as s:
            return [UserInfo.of(u) for u in s.scalars(select(DeskUser).order_by(DeskUser.id))]

    def get_user(self, username: str) -> UserInfo | None:
        with self._sessions() as s:
            user = s.scalar(select(DeskUser).where(DeskUser.username == username.lower()))
            return UserInfo.of(user) if user else None

    def count_users(self, role: Role | None = None) -> int:
        with self._sessions() as s:
            query = select(DeskUser.id)
            if role is not None:
                query = query.where(DeskUser.role == str(role))
            return len(s.scalars(query).all())

    def _user_for_update(self, s: Session, username: str) -> DeskUser:
        user = s.scalar(select(DeskUser).where(DeskUser.username == username.lower()))
        if user is None:
            raise AuthError(404, "no_such_user", f"没有用户 {username} (no such user)")
        return user

    def reset_password(self, username: str) -> str:
        """A new generated password (to change at next sign-in); ends the user's sessions."""
        password = generate_password(self.config.generated_password_length)
        with self._sessions.begin() as s:
            user = self._user_for_update(s, username)
            user.password_hash = self.hasher.hash(password)
            user.must_change_password = True
            user.password_changed_at = self.clock()
            user.failed_attempts = 0
            user.locked_until = None
            s.execute(delete(DeskSession).where(DeskSession.user_id == user.id))
        return password

    def set_disabled(self, username: str, disabled: bool) -> UserInfo:
        """The administrator's lock (ends the user's sessions) or unlock (clears lock-out)."""
        with self._sessions.begin() as s:
            user = self._user_for_update(s, username)
            user.disabled = disabled
            if disabled:
                s.execute(delete(DeskSession).where(DeskSession.user_id == user.id))
            else:
                user.failed_attempts = 0
                user.locked_until = None
            return UserInfo.of(user)

    def change_password(self, username: str, old: str, new: str) -> None:
        with self._sessions.begin() as s:
            user = self._user_for_update(s, username)
            try:
                self.hasher.verify(user.password_hash, old)
            except (VerificationError, InvalidHashError):
                raise AuthError(
                    400, "wrong_password", "原密码不正确 (current password is wrong)"
                ) from None
            if old == new:
                raise AuthError(400, "same_password", "新密码不能与原密码相同 (must differ)")
            check_password_policy(new, self.config, user.username)
            user.password_hash = self.hasher.hash(new)
            user.must_change_password = False
            user.password_changed_at = self.clock()

    # sign-in -------------------------------------------------------------------------
    def verify_login(self, username: str, password: str, client_addr: str) -> UserInfo:
        """Check the password and the account's lock; count failures; audit the outcome.

        The failure count, the lock-out and the audit rows are committed before the refusal
        is raised (raising inside the transaction would roll them back).
        """
        name = username.strip().lower()[:64]
        now = self.clock()
        error: AuthError | None = None
        with self._sessions.begin() as s:
            user = s.scalar(select(DeskUser).where(DeskUser.username == name))
            if user is None:
                _verify(self.hasher, self._dummy_hash, password)
                self.audit(
                    "login.failed", outcome="failed", target=name, client_addr=client_addr,
                    db=s, reason="unknown_user",
                )  # fmt: skip
                error = _wrong_credentials()
            else:
                error = self._check_user(s, user, password, client_addr, now)
            info = UserInfo.of(user) if user is not None else None
        if error is not None:
            raise error
        assert info is not None
        return info

    def _check_user(
        self, s: Session, user: DeskUser, password: str, client_addr: str, now: datetime
    ) -> AuthError | None:
        name = user.username
        locked_until = user.locked_until if user.locked_until and user.locked_until > now else None
        if user.disabled or locked_until:
            self.audit(
                "login.refused_locked", outcome="denied", target=name,
                client_addr=client_addr, db=s, disabled=user.disabled,
            )  # fmt: skip
            retry = (locked_until - now).total_seconds() if locked_until else None
            return AuthError(
                423,
                "account_locked",
                "账户已锁定，请稍后再试或联系管理员 (account locked: try later or ask an "
                "administrator)",
                **({"retry_after_s": retry} if retry else {}),
            )
        if not _verify(self.hasher, user.password_hash, password):
            user.failed_attempts += 1
            details: dict[str, Any] = {"failures": user.failed_attempts}
            if user.failed_attempts >= self.config.max_failures:
                user.locked_until = now + timedelta(seconds=self.config.lockout_s)
                user.failed_attempts = 0
                details["locked_until"] = user.locked_until.isoformat()
                self.audit(
                    "user.locked_out", outcome="denied", target=name,
                    client_addr=client_addr, db=s, **details,
                )  # fmt: skip
            self.audit(
                "login.failed", outcome="failed", target=name, client_addr=client_addr,
                db=s, reason="wrong_password", **details,
            )  # fmt: skip
            return _wrong_credentials()
        user.failed_attempts = 0
        user.locked_until = None
        user.last_login_at = now
        if self.hasher.check_needs_rehash(user.password_hash):
            user.password_hash = self.hasher.hash(password)
        return None

    # sessions ------------------------------------------------------------------------
    def create_session(self, user: UserInfo, client_addr: str, user_agent: str) -> LoginResult:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._sessions.begin() as s:
            user_id = s.scalar(select(DeskUser.id).where(DeskUser.username == user.username))
            assert user_id is not None
            self._purge_expired(s, now)
            row = DeskSession(
                token_hash=token_hash(token),
                user_id=user_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=self.config.absolute_timeout_s),
                client_addr=client_addr[:64],
                user_agent=user_agent[:256],
            )
            s.add(row)
            self.audit(
                "login.ok", actor=user.username, actor_role=user.role,
                client_addr=client_addr, db=s,
            )  # fmt: skip
        return LoginResult(token, _session_info(row, user))

    def _purge_expired(self, s: Session, now: datetime) -> None:
        idle_edge = now - timedelta(seconds=self.config.idle_timeout_s)
        s.execute(
            delete(DeskSession).where(
                or_(DeskSession.expires_at <= now, DeskSession.last_seen_at <= idle_edge)
            )
        )

    def load_session(self, token: str, *, touch: bool = True) -> SessionInfo | None:
        """The live session for a cookie token, or None (and the row removed) when it ended."""
        if not token or len(token) > 128:
            return None
        key = token_hash(token)
        now = self.clock()
        with self._sessions.begin() as s:
            row = s.get(DeskSession, key)
            if row is None:
                return None
            user = s.get(DeskUser, row.user_id)
            idle_edge = now - timedelta(seconds=self.config.idle_timeout_s)
            why = None
            if row.expires_at <= now:
                why = "absolute"
            elif row.last_seen_at <= idle_edge:
                why = "idle"
            elif user is None or user.disabled:
                why = "user_locked"
            if why is not None:
                s.delete(row)
                self.audit(
                    "session.expired", actor=user.username if user else None,
                    actor_role=user.role if user else None, client_addr=row.client_addr,
                    db=s, reason=why,
                )  # fmt: skip
                return None
            assert user is not None
            # Writing on every request would make each page load a write; a coarse idle clock
            # (a tenth of the timeout, at most a minute) is precise enough.
            if touch and (now - row.last_seen_at).total_seconds() >= min(
                60.0, self.config.idle_timeout_s / 10
            ):
                row.last_seen_at = now
            return _session_info(row, UserInfo.of(user))

    def end_session(self, key: str) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(DeskSession).where(DeskSession.token_hash == key))

    def active_sessions(self) -> list[dict[str, Any]]:
        """Who is signed in now (for supervisors), one row per live session."""
        now = self.clock()
        idle_edge = now - timedelta(seconds=self.config.idle_timeout_s)
        query = (
            select(DeskSession, DeskUser)
            .join(DeskUser, DeskUser.id == DeskSession.user_id)
            .where(DeskSession.expires_at > now, DeskSession.last_seen_at > idle_edge)
            .order_by(DeskUser.username)
        )
        with self._sessions() as s:
            return [
                {
                    "username": u.username,
                    "display_name": u.display_name,
                    "role": u.role,
                    "seat_id": u.seat_id,
                    "since": row.created_at.isoformat(),
                    "last_seen": row.last_seen_at.isoformat(),
                }
                for row, u in s.execute(query).all()
            ]

    def clear_lockout(self, username: str) -> None:
        with self._sessions.begin() as s:
            s.execute(
                update(DeskUser)
                .where(DeskUser.username == username.lower())
                .values(failed_attempts=0, locked_until=None)
            )


def _verify(hasher: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _wrong_credentials() -> AuthError:
    return AuthError(401, "invalid_credentials", "用户名或密码错误 (wrong username or password)")


def _session_info(row: DeskSession, user: UserInfo) -> SessionInfo:
    return SessionInfo(row.token_hash, user, row.csrf_token, row.created_at, row.expires_at)


# --- the asyncio side: sign-in, cookies, authenticator -------------------------------------


class DeskAuth:
    """What the HTTP handlers use: async wrappers, rate limits, cookies and CSRF checks."""

    def __init__(
        self,
        store: AuthStore,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = store.config
        self.monotonic = monotonic
        self.addr_limiter = RateLimiter(self.config.addr_attempts, self.config.rate_window_s)
        self.user_limiter = RateLimiter(self.config.user_attempts, self.config.rate_window_s)

    # request helpers ---------------------------------------------------------------------
    def client_addr(self, request: web.Request) -> str:
        if self.config.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                return forwarded.split(",")[0].strip()[:64]
        return (request.remote or "")[:64]

    def cookie_secure(self, request: web.Request) -> bool:
        if self.config.secure_cookies == "always":
            return True
        if self.config.secure_cookies == "never":
            return False
        return request.secure

    def set_cookie(self, response: web.StreamResponse, request: web.Request, token: str) -> None:
        response.set_cookie(
            self.config.cookie_name,
            token,
            httponly=True,
            samesite="Strict",
            secure=self.cookie_secure(request),
            path="/",
            # A session cookie (no Max-Age): closing the browser forgets it; the server-side
            # expiry is what counts.
        )

    def clear_cookie(self, response: web.StreamResponse, request: web.Request) -> None:
        response.del_cookie(
            self.config.cookie_name,
            path="/",
            secure=self.cookie_secure(request),
            httponly=True,
            samesite="Strict",
        )

    async def audit(self, request: web.Request | None, action: str, **kw: Any) -> None:
        if request is not None:
            kw.setdefault("client_addr", self.client_addr(request))
            session: SessionInfo | None = request.get(SESSION_KEY)
            if session is not None:
                kw.setdefault("actor", session.user.username)
                kw.setdefault("actor_role", session.user.role)
        await asyncio.to_thread(self.store.audit, action, **kw)

    # sign-in -----------------------------------------------------------------------------
    async def login(self, request: web.Request, username: str, password: str) -> LoginResult:
        addr = self.client_addr(request)
        name = username.strip().lower()[:64]
        now = self.monotonic()
        wait = max(
            self.addr_limiter.retry_after(f"addr:{addr}", now),
            self.user_limiter.retry_after(f"user:{name}", now),
        )
        if wait > 0:
            await self.audit(
                request, "login.throttled", outcome="denied", target=name, retry_after_s=wait
            )
            raise AuthError(
                429,
                "too_many_attempts",
                "尝试次数过多，请稍后再试 (too many attempts: try again later)",
                retry_after_s=round(wait, 1),
            )
        self.addr_limiter.hit(f"addr:{addr}", now)
        self.user_limiter.hit(f"user:{name}", now)
        user = await asyncio.to_thread(self.store.verify_login, name, password, addr)
        return await asyncio.to_thread(
            self.store.create_session, user, addr, request.headers.get("User-Agent", "")
        )

    async def session_of(self, request: web.Request, *, touch: bool = True) -> SessionInfo | None:
        token = request.cookies.get(self.config.cookie_name)
        if not token:
            return None
        return await asyncio.to_thread(self.store.load_session, token, touch=touch)

    # the authenticator for hotline.web ---------------------------------------------------
    async def session_authenticator(self, request: web.Request) -> Principal | None:
        """hotline.web Authenticator: the principal of a valid session cookie, else None.

        For a state-changing request it also enforces CSRF and same-origin, and the pending
        password change, by raising a 403 JSON error (``web.HTTPForbidden``).
        """
        session = await self.session_of(request)
        if session is None:
            return None
        request[SESSION_KEY] = session
        if request.method not in SAFE_METHODS:
            await self.check_csrf(request, session)
            if session.user.must_change_password and request.path not in PASSWORD_CHANGE_PATHS:
                raise _forbidden(
                    "password_change_required",
                    "请先修改初始密码 (change your generated password first)",
                )
        return session.principal

    async def check_csrf(self, request: web.Request, session: SessionInfo) -> None:
        given = request.headers.get(CSRF_HEADER, "")
        if not same_origin(request):
            await self.audit(
                request, "csrf.rejected", outcome="denied", target=request.path,
                reason="cross_origin", origin=request.headers.get("Origin", ""),
            )  # fmt: skip
            raise _forbidden("cross_origin", "跨站请求被拒绝 (cross-origin request refused)")
        if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
            await self.audit(
                request, "csrf.rejected", outcome="denied", target=request.path,
                reason="missing_token" if not given else "wrong_token",
            )  # fmt: skip
            raise _forbidden(
                "csrf_failed", "安全令牌缺失或无效，请刷新页面 (missing or invalid CSRF token)"
            )


def same_origin(request: web.Request) -> bool:
    """True unless the browser says the request comes from another origin (Origin header)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser cross-origin request (curl, the CLI, same-origin GET)
    if origin == "null":
        return False
    scheme = "https" if request.secure else "http"
    return origin.rstrip("/") == f"{scheme}://{request.host}"


def _forbidden(code: str, message: str) -> web.HTTPForbidden:
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
    return web.HTTPForbidden(text=body, content_type="application/json")
