"""Seats (坐席) as stored: the source of truth for the seat lawyers' SIP endpoints and skills.

Only the digest hash of a seat's SIP password is stored (what Asterisk's ``password_digest``
needs); the clear password is shown once, when the seat is created or its password is reset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db.models import Base, JSONData, UTCDateTime


class SeatRow(Base):
    __tablename__ = "seats"

    seat_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the SIP user name
    display_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    skills: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False, default=dict)
    region: Mapped[str] = mapped_column(String(64), nullable=False, default="default")
    wrap_up_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    md5_cred: Mapped[str] = mapped_column(String(32), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=lambda: datetime.now(UTC)
    )
