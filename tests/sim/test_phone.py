"""Real pjsua2 phone workers calling each other over loopback (no Asterisk involved)."""

from __future__ import annotations

import asyncio
import os
import time
import wave
from pathlib import Path

import pytest

from sim.audio import correlation, is_silent, segment_correlation
from sim.phone import Phone, PhoneCommandError

Pair = tuple[Phone, Phone]


async def _connect(alice: Phone, bob: Phone, **call_opts: object) -> tuple[str, str]:
    """Alice calls Bob (who must auto-answer); returns both sides' call ids once media is up."""
    a_call = await alice.call(bob.uri, **call_opts)
    incoming = await bob.wait_event("incoming")
    await alice.wait_event("media_active", call=a_call)
    await bob.wait_event("call_state", call=incoming["call"], state="CONFIRMED")
    return a_call, incoming["call"]


async def test_audio_played_by_callee_reaches_caller_intact(
    pair: Pair, greeting_wav: Path, tmp_path: Path, record_property: object
) -> None:
    alice, bob = pair
    heard = tmp_path / "heard.wav"
    await bob.set_auto_answer("answer", play=greeting_wav)
    a_call, b_call = await _connect(alice, bob, record=heard)
    await bob.wait_event("play_done", call=b_call, timeout=20)
    await alice.hangup(a_call)
    await alice.wait_event("recording_done", call=a_call)

    with wave.open(str(heard)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    score = correlation(heard, greeting_wav)
    per_piece = segment_correlation(heard, greeting_wav)
    record_property("correlation", score)  # type: ignore[operator]
    record_property("segment_correlation", per_piece)  # type: ignore[operator]
    print(f"received vs played: correlation {score:.4f}, per 0.5 s piece {per_piece:.4f}")
    # On a quiet machine both are 0.999+. When the CPU is contended the receiving jitter
    # buffer inserts 20 ms frames mid-sentence; only the whole-file correlation is
    # sensitive to such timing slips, so the per-piece score is what is asserted.
    assert per_piece > 0.9


async def test_dtmf_arrives_in_order(pair: Pair) -> None:
    alice, bob = pair
    await bob.set_auto_answer("answer")
    a_call, b_call = await _connect(alice, bob)
    # Several waiters on one phone at once: none may miss its event.
    waits = [bob.wait_event("dtmf", call=b_call, digit=d, timeout=5) for d in "1234#"]
    await alice.dtmf(a_call, "1234#")
    await asyncio.gather(*waits)
    assert [e["digit"] for e in bob.find_events("dtmf", call=b_call)] == list("1234#")
    with pytest.raises(PhoneCommandError, match="invalid DTMF"):
        await alice.dtmf(a_call, "12x")


@pytest.mark.parametrize("who_hangs_up", ["caller", "callee"])
async def test_hangup_sets_local_flag_on_the_right_side(pair: Pair, who_hangs_up: str) -> None:
    alice, bob = pair
    await bob.set_auto_answer("answer")
    a_call, b_call = await _connect(alice, bob)
    if who_hangs_up == "caller":
        await alice.hangup(a_call)
    else:
        await bob.hangup(b_call)
    a_end = await alice.wait_event("disconnected", call=a_call)
    b_end = await bob.wait_event("disconnected", call=b_call)
    assert a_end["local_hangup"] is (who_hangs_up == "caller")
    assert b_end["local_hangup"] is (who_hangs_up == "callee")
    assert a_end["duration_s"] >= 0 and b_end["duration_s"] >= 0
    # The finished call can no longer be driven, and says so.
    with pytest.raises(PhoneCommandError, match="already ended"):
        await alice.hangup(a_call)


async def test_custom_headers_and_caller_number_arrive(pair: Pair) -> None:
    alice, bob = pair
    await alice.call(
        bob.uri,
        from_user="13800138000",
        headers={"X-Case-Id": "WO-2024-0001", "X-Caller-Name": "张三"},
    )
    incoming = await bob.wait_event("incoming")
    assert incoming["headers"]["X-Case-Id"] == "WO-2024-0001"
    assert incoming["headers"]["X-Caller-Name"] == "张三"
    assert "sip:13800138000@" in incoming["from"]
    assert "sip:13800138000@" in incoming["headers"]["From"]


async def test_fifth_simultaneous_call_is_refused_and_worker_keeps_running(pair: Pair) -> None:
    alice, bob = pair
    await bob.set_auto_answer("never")  # four calls left ringing
    calls = [await alice.call(bob.uri) for _ in range(4)]
    for call in calls:
        await alice.wait_event("call_state", call=call, state="EARLY")

    with pytest.raises(PhoneCommandError, match="at most 4") as refused:
        await alice.call(bob.uri)
    assert refused.value.event["event"] == "error"
    assert sorted(await alice.ping()) == sorted(calls)

    # Bob is full too: a fifth incoming call is turned away by pjsua, and Bob carries on.
    async with Phone.start("carol") as carol:
        extra = await carol.call(bob.uri)
        turned_away = await carol.wait_event("disconnected", call=extra)
        assert turned_away["code"] >= 400 and turned_away["local_hangup"] is False
    assert len(await bob.ping()) == 4

    # A slot freed is usable again, and the finished call in it does not disturb the new one.
    await alice.hangup(calls[0])
    await alice.wait_event("disconnected", call=calls[0])
    await bob.set_auto_answer("answer")
    again = await alice.call(bob.uri)
    await alice.wait_event("call_state", call=again, state="CONFIRMED")
    assert again not in calls
    for call in calls[1:]:
        await alice.hangup(call)
    await alice.hangup(again)
    for call in [*calls[1:], again]:
        ended = await alice.wait_event("disconnected", call=call)
        assert ended["local_hangup"] is True


async def test_never_answer_rings_until_the_caller_cancels(pair: Pair) -> None:
    alice, bob = pair
    await bob.set_auto_answer("never")
    a_call = await alice.call(bob.uri)
    incoming = await bob.wait_event("incoming")
    await alice.wait_event("call_state", call=a_call, state="EARLY", code=180)
    # Bounded negative check: nobody answers while we wait.
    with pytest.raises(TimeoutError):
        await alice.wait_event("call_state", call=a_call, state="CONFIRMED", timeout=1.5)
    await alice.hangup(a_call)  # CANCEL
    a_end = await alice.wait_event("disconnected", call=a_call)
    b_end = await bob.wait_event("disconnected", call=incoming["call"])
    assert a_end["local_hangup"] is True and b_end["local_hangup"] is False
    assert b_end["code"] == 487  # Request Terminated
    assert a_end["duration_s"] == 0
    assert not bob.find_events("call_state", call=incoming["call"], state="CONFIRMED")


async def test_reject_mode_and_manual_answer_after_delay(pair: Pair) -> None:
    alice, bob = pair
    await bob.set_auto_answer("reject", code=486)
    rejected = await alice.call(bob.uri)
    a_end = await alice.wait_event("disconnected", call=rejected)
    assert a_end["code"] == 486 and a_end["local_hangup"] is False
    b_end = await bob.wait_event("disconnected")
    assert b_end["local_hangup"] is True

    await bob.set_auto_answer("answer", delay_ms=300)
    started = time.monotonic()
    answered = await alice.call(bob.uri)
    await alice.wait_event("call_state", call=answered, state="CONFIRMED")
    assert time.monotonic() - started >= 0.3


async def test_sigterm_hangs_up_and_finalises_recording(greeting_wav: Path, tmp_path: Path) -> None:
    heard = tmp_path / "heard.wav"
    async with Phone.start("alice") as alice:
        bob = await Phone.spawn("bob")
        try:
            await bob.set_auto_answer("answer", play=greeting_wav, play_loop=True)
            a_call, _ = await _connect(alice, bob)
            await bob.wait_event("media_active")
            # Bob records what Alice sends (silence) too; the recorder must be finalised.
            bob_rec = tmp_path / "bob.wav"
            await bob.record(bob.find_events("incoming")[0]["call"], bob_rec)
            await alice.record(a_call, heard)
            await asyncio.sleep(0.5)  # let half a second of audio be recorded
            alice.terminate()
            await alice.wait_event("recording_done", call=a_call, timeout=5)
            assert await asyncio.wait_for(alice.proc.wait(), 5) == 0
            assert alice.find_events("stopped")
            ended = await bob.wait_event("disconnected")
            assert ended["local_hangup"] is False
            await bob.wait_event("recording_done")
        finally:
            assert await bob.stop() == 0
    with wave.open(str(heard)) as w:
        assert w.getnframes() > 8000 * 0.3
    assert not is_silent(heard)
    assert is_silent(bob_rec)


async def test_bad_commands_are_reported_not_fatal(pair: Pair) -> None:
    alice, _ = pair
    with pytest.raises(PhoneCommandError, match="unknown command"):
        await alice.command("fly")
    with pytest.raises(PhoneCommandError, match="no such call"):
        await alice.hangup("c99")
    with pytest.raises(PhoneCommandError, match="missing field"):
        await alice.command("call")
    with pytest.raises(PhoneCommandError, match="mode must be one of"):
        await alice.set_auto_answer("maybe")
    assert alice.proc.stdin is not None
    alice.proc.stdin.write(b"this is not json\n")
    await alice.wait_event("error", where=lambda e: "bad command line" in e["message"])
    assert await alice.ping() == []


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_idle_worker_costs(record_property: object) -> None:
    started = time.monotonic()
    async with Phone.start("idle") as phone:
        start_s = time.monotonic() - started
        await phone.ping()
        pid = phone.proc.pid
        cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(5)  # the measurement window itself
        cpu_share = (_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
        rss = _rss_mb(pid)
    for name, value in (("start_s", start_s), ("rss_mb", rss), ("idle_cpu_share", cpu_share)):
        record_property(name, value)  # type: ignore[operator]
    print(f"worker start {start_s:.3f} s, RSS {rss:.1f} MB, idle CPU {100 * cpu_share:.2f} %")
    assert start_s < 5
    assert cpu_share < 0.01  # under 1 % of a core while idle
    assert rss < 200


async def test_worker_exits_cleanly_when_stdin_closes() -> None:
    phone = await Phone.spawn("orphan")
    try:
        assert phone.proc.stdin is not None
        phone.proc.stdin.close()  # the controller went away without saying quit
        assert await asyncio.wait_for(phone.proc.wait(), 5) == 0
        await phone.wait_event("stopped")
    finally:
        await phone.stop()
