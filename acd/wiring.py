"""The ACD's configuration for a deployment: one queue per queue node of the IVR flow, with the
operator's defaults and per-queue overrides from the settings, and the seats from the database;
plus one queue per partner trunk that skips the IVR (``partner_queues``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from acd.config import AcdConfig, OverflowRule, QueueConfig, RelaxationStep, SeatConfig
from hotline.config import AcdSettings, ConfigError, Settings
from integrations.config import Partner, load_for_runtime
from ivr.flow import Flow, QueueNode

log = logging.getLogger(__name__)


def flow_queues(flow: Flow) -> dict[str, str]:
    """Queue name → the skill it needs, for every queue node of the flow."""
    return {n.queue: n.skill for n in flow.nodes.values() if isinstance(n, QueueNode)}


def build_config(flow: Flow, settings: AcdSettings, seats: list[SeatConfig]) -> AcdConfig:
    queues = flow_queues(flow)
    configs = []
    for name, skill in sorted(queues.items()):
        fields: dict[str, Any] = {
            "name": name,
            "topic": skill,
            "ring_timeout_s": settings.ring_timeout_s,
            "wrap_up_s": settings.wrap_up_s,
            "announce_interval_s": settings.announce_interval_s,
            "max_wait_s": settings.max_wait_s,
            "callback_offer_after_s": settings.callback_offer_after_s,
            # A specialist queue accepts lower levels after 30 s, any of its lawyers after 60 s.
            "relaxation": (
                RelaxationStep(after_s=30, level_drop=1),
                RelaxationStep(after_s=60, any_seat=True),
            ),
        }
        if settings.overflow_to and settings.overflow_to in queues and name != settings.overflow_to:
            fields["overflow"] = OverflowRule(
                after_s=settings.overflow_after_s, to_queue=settings.overflow_to
            )
        fields.update(settings.queues.get(name, {}))
        configs.append(QueueConfig(**fields))
    return AcdConfig(queues=tuple(configs), seats=tuple(seats))


def partner_queue_name(partner: Partner) -> str:
    """The queue of a partner's transferred-in calls: ``<its queue>.<partner id>``."""
    return f"{partner.sip.queue}.{partner.id}"


def partner_queues(
    config: AcdConfig, partners: Iterable[Partner]
) -> tuple[AcdConfig, dict[str, str]]:
    """Add one queue per partner whose calls skip the IVR; returns the configuration and
    partner id → queue name.

    A partner's queue is a copy of its configured queue (same skill, so the same seats serve
    it; its calls compete with that queue's callers by priority) whose timers carry the
    partner's ``answer_timeout_s`` and ``fallback``, so that the core decides them like any
    other queue rule: ``overflow`` is an overflow rule to ``overflow_queue``; ``callback`` a
    maximum wait ending in a callback that keeps the place; ``back_to_partner`` a maximum wait
    whose "message" action the adapter turns into a transfer back through the trunk.
    """
    queues = {q.name: q for q in config.queues}
    added: list[QueueConfig] = []
    routes: dict[str, str] = {}
    for partner in partners:
        sip = partner.sip
        if not sip.enabled or not sip.queue:
            continue
        base = queues.get(sip.queue)
        if base is None:
            log.warning("partner %s: queue %r is not an ACD queue: its calls go through the IVR "
                        "flow", partner.id, sip.queue)  # fmt: skip
            continue
        fields = base.model_dump()
        fields.update(
            name=partner_queue_name(partner),
            overflow=None,
            callback_offer_after_s=None,
            join_empty="join",
            leave_empty="stay",
        )
        if sip.fallback == "overflow":
            if sip.overflow_queue not in queues:
                log.warning("partner %s: overflow_queue %r is not an ACD queue: no overflow",
                            partner.id, sip.overflow_queue)  # fmt: skip
            else:
                fields["overflow"] = OverflowRule(
                    after_s=sip.answer_timeout_s, to_queue=str(sip.overflow_queue)
                )
        else:
            fields["max_wait_s"] = sip.answer_timeout_s
            fields["on_max_wait"] = "callback" if sip.fallback == "callback" else "message"
        added.append(QueueConfig(**fields))
        routes[partner.id] = partner_queue_name(partner)
    if not added:
        return config, routes
    return config.model_copy(update={"queues": (*config.queues, *added)}), routes


def load_partners(settings: Settings) -> list[Partner]:
    """The partners with a SIP trunk or a transfer URI; a broken partners file means none (the
    integrations part reports it)."""
    try:
        partners = load_for_runtime(settings.runtime_path).partners
    except ConfigError as exc:
        log.error("partner trunks disabled: %s", exc)
        return []
    return [p for p in partners if p.sip.enabled or p.sip.transfer_uri]


def outbound_routes(settings: Settings) -> dict[str, Any]:
    """The adapter's outbound dial strings (``AcdService(..., **outbound_routes(settings))``).

    ``callback_dial`` reaches callers: the configured dial string, else the carrier trunk when
    it has an outbound contact (``asterisk.carrier_contact``). ``transfer_dial`` reaches partner
    numbers (12345, 110) through ``acd.transfer_trunk``; without one, such transfers get 409.
    ``partners``: the partner trunks (a transfer to a partner's number goes to its
    ``transfer_uri`` through its own trunk, with our headers; its calls in skip the IVR).
    """
    callback = settings.acd.callback_dial
    if callback is None and settings.asterisk.carrier_contact:
        callback = "PJSIP/{number}@carrier"
    trunk = settings.acd.transfer_trunk
    return {
        "callback_dial": callback,
        "transfer_dial": f"PJSIP/{{number}}@{trunk}" if trunk else None,
        "partners": load_partners(settings),
    }
