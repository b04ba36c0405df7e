"""What partners send us and what we answer: pydantic models of the work-order exchange.

``integrations/api.yml`` describes the same shapes for partners; ``tests/integrations`` checks
the two agree. Every text field refuses NUL, other control characters (tab and newlines are
fine) and lone surrogates: none of them is meaningful in an order, and PostgreSQL and UTF-8
encoders would fail on some of them *after* validation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from workorders.lifecycle import State

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (lone surrogate)") from None
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("time out of range") from None


def _text(max_length: int) -> Any:
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(_clean)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CallerIn(_Model):
    name: _text(64) | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{2,23}$")] | None = None


class PartnerWorkOrderIn(_Model):
    """A work order a partner hands over to 12348 (e.g. a legal question 12345 received)."""

    case_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    title: _text(200)
    description: _text(5000)
    topic: _text(64) | None = None
    urgency: Literal["normal", "urgent"] = "normal"
    caller: CallerIn | None = None
    region: _text(64) | None = None
    due_at: Annotated[AwareDatetime, AfterValidator(_utc)] | None = None
    call_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] | None = None


# Where a partner's order is: received (stored, not yet one of our work orders), rejected (we
# will not handle it), then the states of our work-order lifecycle.
RECEIVED = "received"
REJECTED = "rejected"
ORDER_STATUSES: tuple[str, ...] = (RECEIVED, REJECTED, *(s.value for s in State))


def order_view(row: Any) -> dict[str, Any]:
    """The JSON answer for a stored partner order (``PartnerWorkOrderRow``)."""
    return {
        "id": row.id,
        "partner": row.partner,
        "case_id": row.case_id,
        "status": row.status,
        "work_order_id": row.work_order_id,
        "received_at": row.received_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
