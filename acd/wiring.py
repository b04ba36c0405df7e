"""The ACD's configuration for a deployment: one queue per queue node of the IVR flow, with the
operator's defaults and per-queue overrides from the settings, and the seats from the database."""

from __future__ import annotations

from typing import Any

from acd.config import AcdConfig, OverflowRule, QueueConfig, RelaxationStep, SeatConfig
from hotline.config import AcdSettings, Settings
from ivr.flow import Flow, QueueNode


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


def outbound_routes(settings: Settings) -> dict[str, str | None]:
    """The adapter's outbound dial strings (``AcdService(..., **outbound_routes(settings))``).

    ``callback_dial`` reaches callers: the configured dial string, else the carrier trunk when
    it has an outbound contact (``asterisk.carrier_contact``). ``transfer_dial`` reaches partner
    numbers (12345, 110) through ``acd.transfer_trunk``; without one, such transfers get 409.
    """
    callback = settings.acd.callback_dial
    if callback is None and settings.asterisk.carrier_contact:
        callback = "PJSIP/{number}@carrier"
    trunk = settings.acd.transfer_trunk
    return {
        "callback_dial": callback,
        "transfer_dial": f"PJSIP/{{number}}@{trunk}" if trunk else None,
    }
