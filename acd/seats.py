"""The seat directory: create, list and change seats in the database; hand Asterisk their
credentials. Pure database work; the CLI and the API call it."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from acd.config import SeatConfig
from acd.models import SeatRow
from hotline.asterisk.render import SeatCredential, seat_credential

SEAT_ID = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
SKILL = re.compile(r"^([a-z][a-z0-9_]*):([1-9][0-9]?)$")


class SeatError(ValueError):
    """A seat request that cannot be done, worded for the operator."""


def parse_skills(text: str) -> dict[str, int]:
    """``labor:3,family:2`` → {"labor": 3, "family": 2}; a clear error names the bad part."""
    skills: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = SKILL.match(part)
        if match is None:
            raise SeatError(f"skill {part!r} is not NAME:LEVEL (e.g. labor:3, level 1-99)")
        skills[match.group(1)] = int(match.group(2))
    return skills


@dataclass(frozen=True)
class NewSeat:
    seat_id: str
    password: str  # shown once; only its digest is stored


def add_seat(
    engine: Engine,
    seat_id: str,
    *,
    skills: dict[str, int],
    region: str = "default",
    display_name: str = "",
    wrap_up_s: float | None = None,
) -> NewSeat:
    if not SEAT_ID.match(seat_id):
        raise SeatError(
            f"seat id {seat_id!r}: use 2-32 lower-case letters, digits, '-' or '_', "
            "starting with a letter (it is also the SIP user name)"
        )
    password = secrets.token_urlsafe(18)
    with Session(engine) as session, session.begin():
        if session.get(SeatRow, seat_id) is not None:
            raise SeatError(f"seat {seat_id!r} already exists")
        session.add(
            SeatRow(
                seat_id=seat_id,
                display_name=display_name or seat_id,
                skills=skills,
                region=region,
                wrap_up_s=wrap_up_s,
                md5_cred=seat_credential(seat_id, password).md5_cred,
                active=True,
            )
        )
    return NewSeat(seat_id, password)


def list_seats(engine: Engine, *, active_only: bool = True) -> list[SeatRow]:
    with Session(engine) as session:
        query = select(SeatRow).order_by(SeatRow.seat_id)
        if active_only:
            query = query.where(SeatRow.active.is_(True))
        return list(session.scalars(query))


def get_seat(engine: Engine, seat_id: str) -> SeatRow | None:
    with Session(engine) as session:
        return session.get(SeatRow, seat_id)


def seat_config(row: SeatRow) -> SeatConfig:
    return SeatConfig(
        seat_id=row.seat_id, skills=dict(row.skills), region=row.region, wrap_up_s=row.wrap_up_s
    )


def credentials(engine: Engine) -> list[SeatCredential]:
    """What Asterisk needs to authenticate the active seats."""
    return [SeatCredential(row.seat_id, row.md5_cred) for row in list_seats(engine)]


def update_seat(
    engine: Engine,
    seat_id: str,
    *,
    skills: dict[str, int] | None = None,
    region: str | None = None,
    display_name: str | None = None,
) -> SeatRow:
    """Change a seat's skills, region or name (what is None stays); returns the stored row."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.get(SeatRow, seat_id)
        if row is None:
            raise SeatError(f"no seat {seat_id!r}")
        if skills is not None:
            row.skills = dict(skills)
        if region is not None:
            row.region = region
        if display_name is not None:
            row.display_name = display_name or seat_id
    return row


def set_active(engine: Engine, seat_id: str, active: bool) -> SeatRow:
    """Disable (or enable again) a seat: a disabled seat has no SIP endpoint and cannot sign in."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.get(SeatRow, seat_id)
        if row is None:
            raise SeatError(f"no seat {seat_id!r}")
        row.active = active
    return row


def reset_password(engine: Engine, seat_id: str) -> NewSeat:
    """A new SIP password for a seat (a lost or leaked one); shown once, its digest stored."""
    password = secrets.token_urlsafe(18)
    with Session(engine) as session, session.begin():
        row = session.get(SeatRow, seat_id)
        if row is None:
            raise SeatError(f"no seat {seat_id!r}")
        row.md5_cred = seat_credential(seat_id, password).md5_cred
    return NewSeat(seat_id, password)
