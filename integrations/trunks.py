"""Partner SIP trunks (110, 12345, ...): what a call transferred in or out carries, pure logic.

Theory of operation
-------------------
A partner hotline that transfers a caller to us sends the call on its SIP trunk with a few
headers of context (names per partner in ``SipTrunk.headers``; defaults ``X-Partner-Case-Id``,
``X-Original-Caller``, ``X-Case-Summary``). Asterisk identifies the trunk (by source address, or
by digest user), and the trunk's dialplan context hands the channel to our Stasis app with the
arguments ``partner,<partner id>,<dialled>``. The call controller reads the headers from the
channel (``PJSIP_HEADER(read,NAME)`` through ARI) and gives them to ``parse_partner_call``:
headers are untrusted input, so every value is decoded, stripped of control characters and
capped (``clean_text``); a missing or garbled header gives an empty field, never an error.

Routing (``inbound_route``): a partner with a ``queue`` that the ACD knows skips the IVR: a
short greeting (``transferred_in``) and then its queue at its priority (``PartnerIntake``, a
dialogue like the IVR's). Without one (or for a partner we do not know) the call runs the IVR
flow with ``origin`` = the partner id, so the flow's ``origin`` condition decides.

Transfers out (a seat's transfer to ``number:110``, the IVR's ``transfer`` node, the
``back_to_partner`` fallback) dial ``PJSIP/<trunk endpoint>/<transfer_uri>`` and add our
headers on the new channel (``outbound_variables``: ARI channel variables
``PJSIP_HEADER(add,NAME)``): the partner's case id when the call came from them, our work-order
number (or our call id), the original caller and a summary. Non-ASCII text is percent-encoded
(UTF-8) so that a header stays 7-bit; inbound we accept both forms.

This module does no I/O but reading/writing the trunk secrets (``trunk_passwords``).
"""

from __future__ import annotations

import re
import secrets as _secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from hotline import secrets as secrets_file
from hotline.privacy import mask_number
from integrations.config import Partner
from ivr import interpreter as ivr

# Key in the runtime secrets file for the trunks' digest passwords (by partner id).
SIP_SECRETS_KEY = "partner_sip_secrets"

# Caps on what a partner may put in our records and on a seat's screen.
MAX_CASE_ID = 64
MAX_SUMMARY = 200
MAX_NUMBER_DIGITS = 20
# Header values we send: SIP has no hard limit, but proxies do; keep them short.
MAX_OUT_VALUE = 400

_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_NUMBER = re.compile(r"^\+?\d{3,20}$")
# Printable ASCII kept as is in an outgoing header value; the rest is %XX (UTF-8).
_SAFE_OUT = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '%"\\')


def clean_text(value: object, limit: int) -> str:
    """An untrusted header value made safe to log and show: percent-decoded (when it looks
    encoded), control and format characters dropped, whitespace collapsed, at most ``limit``
    characters."""
    if value is None:
        return ""
    text = str(value)
    if _PERCENT.search(text):
        text = unquote(text, errors="replace")
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            kept.append(" ")
        else:
            kept.append(char)
    return " ".join("".join(kept).split())[:limit]


def clean_number(value: object) -> str:
    """A phone number from a header: digits with an optional leading +, else empty."""
    text = clean_text(value, 40).replace(" ", "").replace("-", "")
    return text if _NUMBER.match(text) and len(text.lstrip("+")) <= MAX_NUMBER_DIGITS else ""


def header_value_out(text: str, limit: int = MAX_OUT_VALUE) -> str:
    """A value for a header we send: cleaned, then non-ASCII percent-encoded (UTF-8)."""
    return quote(clean_text(text, limit), safe=_SAFE_OUT)[:limit]


@dataclass(frozen=True)
class PartnerCall:
    """A call transferred in by a partner: who, and the context its headers carried."""

    partner_id: str
    partner_name: str
    case_id: str = ""
    original_caller: str = field(default="", repr=False)  # clear: in memory only, never logged
    summary: str = ""
    known: bool = True  # False: the dialplan named a partner not in the configuration

    @property
    def original_caller_masked(self) -> str:
        return mask_number(self.original_caller) if self.original_caller else ""

    def attached(self) -> dict[str, Any]:
        """What the event log and the seat's screen pop get (the caller masked)."""
        data: dict[str, Any] = {"partner": self.partner_id, "partner_name": self.partner_name}
        if self.case_id:
            data["case_id"] = self.case_id
        if self.summary:
            data["summary"] = self.summary
        if self.original_caller:
            data["original_caller"] = self.original_caller_masked
        return data


def header_names(partner: Partner | None) -> dict[str, str]:
    """Field → SIP header name to read for this partner (defaults for an unknown one)."""
    from integrations.config import SipHeaders

    names = partner.sip.headers if partner is not None else SipHeaders()
    return {
        "case_id": names.case_id,
        "original_caller": names.original_caller,
        "summary": names.summary,
    }


def parse_partner_call(
    partner_id: str, partner: Partner | None, headers: Mapping[str, object]
) -> PartnerCall:
    """The context of a transferred-in call from the raw header values (by field name, as
    ``header_names`` lists them); any value may be missing or hostile."""
    pid = clean_text(partner_id, 32) or "unknown"
    return PartnerCall(
        partner_id=pid,
        partner_name=partner.name if partner is not None else pid,
        case_id=clean_text(headers.get("case_id"), MAX_CASE_ID),
        original_caller=clean_number(headers.get("original_caller")),
        summary=clean_text(headers.get("summary"), MAX_SUMMARY),
        known=partner is not None,
    )


@dataclass(frozen=True)
class InboundRoute:
    """Where a transferred-in call goes: straight to a queue, or through the IVR flow."""

    kind: Literal["queue", "flow"]
    queue: str = ""
    priority: int = 0
    topic: str = ""


def inbound_route(partner: Partner | None, queue_for: Mapping[str, str]) -> InboundRoute:
    """``queue_for``: partner id → the ACD queue its calls join (``acd.wiring``); a partner
    without one, or unknown, goes through the flow (whose ``origin`` condition sees it)."""
    if partner is None or partner.id not in queue_for:
        return InboundRoute("flow")
    return InboundRoute(
        "queue",
        queue=queue_for[partner.id],
        priority=partner.sip.priority,
        topic=f"{partner.name} 转入",
    )


def outbound_variables(
    partner: Partner,
    *,
    reference: str,
    summary: str,
    case_id: str = "",
    original_caller: str = "",
) -> dict[str, str]:
    """ARI channel variables that add our headers to the INVITE sent to ``partner``:
    our reference (work-order number, else call id), their case id if the call came from them,
    the original caller (the partner needs the number to call back) and a summary."""
    names = partner.sip.headers
    values = {
        names.work_order_id: header_value_out(reference, MAX_CASE_ID),
        names.summary: header_value_out(summary, MAX_SUMMARY * 3),
    }
    if case_id:
        values[names.case_id] = header_value_out(case_id, MAX_CASE_ID * 3)
    number = clean_number(original_caller)
    if number:
        values[names.original_caller] = number
    return {f"PJSIP_HEADER(add,{name})": value for name, value in values.items() if value}


def dial_string(partner: Partner) -> str | None:
    """The ARI endpoint for a call to the partner: its trunk endpoint and ``transfer_uri``;
    without one, a digest trunk's registered contact; else None (no way to reach it)."""
    if partner.sip.transfer_uri:
        return f"PJSIP/{partner.endpoint}/{partner.sip.transfer_uri}"
    if partner.sip.username:
        return f"PJSIP/{partner.endpoint}"
    return None


def trunk_partners(partners: Iterable[Partner]) -> list[Partner]:
    """The partners with a SIP trunk (addresses or a digest user)."""
    return [p for p in partners if p.sip.enabled or p.sip.transfer_uri]


def trunk_passwords(runtime_dir: Path, partners: Iterable[Partner]) -> dict[str, str]:
    """Each digest-authenticated trunk's password (partner id → password), generating and
    keeping the missing ones in the runtime secrets file."""
    wanted = [p for p in partners if p.sip.username]
    if not wanted:
        return {}
    with secrets_file.edit(runtime_dir) as data:
        stored = data.get(SIP_SECRETS_KEY)
        if not isinstance(stored, dict):
            stored = {}
        for partner in wanted:
            if not stored.get(partner.id):
                stored[partner.id] = _new_password()
        data[SIP_SECRETS_KEY] = stored
        return {p.id: str(stored[p.id]) for p in wanted}


def _new_password() -> str:
    # Not starting with "-": SIP clients' command lines take that for an option.
    while (password := _secrets.token_urlsafe(24)).startswith("-"):
        pass
    return password


class PartnerIntake:
    """The dialogue of a transferred-in call that skips the IVR: a short greeting, then the
    partner's queue. A queue that refuses the call hands it back to the partner (``TransferOut``)
    and, if that fails too, the caller hears ``system_busy``. Keys are ignored (no menus)."""

    def __init__(self, route: InboundRoute, partner_id: str) -> None:
        self.route = route
        self.partner_id = partner_id
        self.state: Literal["greeting", "queued", "returning", "closing", "ended"] = "greeting"

    def start(self) -> list[ivr.Command]:
        return [
            ivr.Log("ivr.node_entered", {"node": "partner_intake", "node_type": "partner"}),
            ivr.Play(("transferred_in",), interruptible=False),
        ]

    def handle(self, event: ivr.Event) -> list[ivr.Command]:
        match (self.state, event):
            case (_, ivr.CallerHungUp()):
                self.state = "ended"
            case ("greeting", ivr.PromptFinished()):
                self.state = "queued"
                return [
                    ivr.Log("ivr.action", {"node": "partner_intake", "action": "queue",
                                           "queue": self.route.queue,
                                           "priority": self.route.priority}),
                    ivr.EnterQueue(self.route.queue, "", self.route.priority, self.route.topic),
                ]  # fmt: skip
            case ("queued", ivr.ActionFailed(reason=reason)):
                self.state = "returning"
                return [
                    ivr.Log("ivr.action_failed", {"node": "partner_intake", "action": "queue",
                                                  "reason": reason}),
                    ivr.TransferOut(self.partner_id, self.partner_id),
                ]  # fmt: skip
            case ("returning", ivr.ActionFailed(reason=reason)):
                self.state = "closing"
                return [
                    ivr.Log("ivr.action_failed", {"node": "partner_intake", "action": "transfer",
                                                  "reason": reason}),
                    ivr.Play(("system_busy",), interruptible=False),
                ]  # fmt: skip
            case ("closing", ivr.PromptFinished()):
                self.state = "ended"
                return [ivr.Hangup("system_busy")]
        return []  # keys, stale timers, late failures: nothing to do
