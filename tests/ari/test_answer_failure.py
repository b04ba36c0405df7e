from __future__ import annotations

import asyncio

from ari_fake import APP, PASSWORD, USER, FakeAsterisk
from ari_payloads import stasis_start

from hotline.ari import AriClient
from hotline.db import make_engine, migrate
from hotline.events.log import CallEventLog, events_for_call
from hotline.prompts import load_catalogue
from hotline.testing import async_wait_for
from ivr.app import ANSWER_FAILED_REASON, CallController
from ivr.flow import DEFAULT_FLOW, FlowStore


async def test_a_stalled_answer_rejects_and_hangs_up_the_call(
    fake_asterisk: FakeAsterisk, tmp_path
) -> None:
    answer = ("POST", "/channels/in-1/answer")
    fake_asterisk.delays[answer] = 2.0  # both tries time out: Asterisk is stalled
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    migrate(engine)
    log = CallEventLog(engine, spool_dir=tmp_path / "spool")
    await log.start()
    async with AriClient(fake_asterisk.url, USER, PASSWORD, APP, request_timeout=0.3) as ari:
        controller = CallController(
            ari,
            log,
            prompt_media=lambda lang, prompt: f"sound:{prompt}",
            phone_hash_key="k" * 32,
            flows=FlowStore(DEFAULT_FLOW, load_catalogue()),
        )
        ari.add_handler(controller.handle)
        events_task = asyncio.create_task(ari.run())
        await fake_asterisk.wait_sockets(1)
        await fake_asterisk.send(stasis_start("in-1", "inbound", "12348"))

        def hung_up() -> bool:
            return any(
                r.method == "DELETE" and r.path == "/channels/in-1" for r in fake_asterisk.requests
            )

        await async_wait_for(hung_up, 10, message="the unanswered caller to be hung up")
        delete = next(r for r in fake_asterisk.requests if r.method == "DELETE")
        assert delete.query.get("reason") == ANSWER_FAILED_REASON
        call_id = controller.sessions["in-1"].call_id  # until StasisEnd ends the record
        # Nothing was played to a channel that was never answered.
        assert not any("/play" in r.path for r in fake_asterisk.requests)
        await ari.close()
        await asyncio.gather(events_task, return_exceptions=True)
    await log.flush()
    events = events_for_call(engine, call_id)
    types = [str(e.type) for e in events]
    assert "call.entered" in types and "call.answered" not in types
    rejected = [e for e in events if str(e.type) == "call.rejected"]
    assert [e.data["reason"] for e in rejected] == ["answer_failed"]
    await log.close()
    engine.dispose()
