"""asyncio controller for one SIP phone worker process (``sim.phone_worker``).

This module owns the controller side of the JSON-lines protocol: it spawns the worker, sends
commands, and keeps every event the worker reported in an ordered history. It never imports
pjsua2, so tests and the load simulator can drive many phones from one event loop.

Waiting on events: ``wait_event(kind, **match)`` scans the history from the phone's cursor
(see ``mark()``) for the first matching event that no earlier ``wait_event`` returned, and
otherwise waits for one to arrive. Because the history is kept, an event that arrived before
the wait began is never missed, waits may be made in any order, and waiting twice for the same
kind returns two successive events. If the worker dies, waiters fail at once with its stderr.

Usage::

    async with Phone.start("alice") as a, Phone.start("bob") as b:
        await b.set_auto_answer("answer", play="prompt.wav")
        call = await a.call(b.uri, record="heard.wav")
        await a.wait_event("media_active", call=call)
        await a.hangup(call)
        await a.wait_event("recording_done", call=call)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

Event = dict[str, Any]


class PhoneError(RuntimeError):
    """The worker failed: it exited, never became ready, or rejected a command."""


class PhoneCommandError(PhoneError):
    """The worker answered a command with an ``error`` event (the worker keeps running)."""

    def __init__(self, message: str, event: Event) -> None:
        super().__init__(message)
        self.event = event


def _matches(
    event: Event, kind: str, match: dict[str, Any], where: Callable[[Event], bool] | None
) -> bool:
    if event.get("event") != kind:
        return False
    if any(event.get(k, _MISSING) != v for k, v in match.items()):
        return False
    return where is None or bool(where(event))


_MISSING = object()


class Phone:
    """A running phone worker; create it with ``Phone.start(...)`` or ``await Phone.spawn(...)``."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.sip_port = 0
        self._history: list[Event] = []
        self._consumed: set[int] = set()
        self._cursor = 0
        self._waiters: set[asyncio.Future[None]] = set()  # woken by every new event
        self._stderr: deque[str] = deque(maxlen=200)
        self._ids = itertools.count(1)
        self._eof = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    # -- life cycle --------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        name: str,
        *,
        sip_port: int = 0,
        rtp_port: int = 0,
        registrar: str | None = None,
        user: str | None = None,
        password: str | None = None,
        log_level: int = 1,
        start_timeout: float = START_TIMEOUT_S,
    ) -> AsyncIterator[Phone]:
        """Spawn a worker, wait for ``ready``, and stop it when the block ends."""
        phone = await cls.spawn(
            name,
            sip_port=sip_port,
            rtp_port=rtp_port,
            registrar=registrar,
            user=user,
            password=password,
            log_level=log_level,
            start_timeout=start_timeout,
        )
        try:
            yield phone
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await phone.stop()
            exc.add_note(phone.diagnostics())
            raise
        await phone.stop(check=True)

    @classmethod
    async def spawn(
        cls,
        name: str,
        *,
        sip_port: int = 0,
        rtp_port: int = 0,
        registrar: str | None = None,
        user: str | None = None,
        password: str | None = None,
        log_level: int = 1,
        start_timeout: float = START_TIMEOUT_S,
    ) -> Phone:
        """Start a worker and return once it is ready; the caller must ``await phone.stop()``.

        ``sip_port=0`` lets the worker take any free UDP port (``phone.sip_port`` tells which);
        ``rtp_port=0`` lets pjsua pick RTP ports. Give explicit RTP bases to keep a simulator's
        media apart from Asterisk's RTP range.
        """
        argv = [
            "-m",
            "sim.phone_worker",
            "--name",
            name,
            "--sip-port",
            str(sip_port),
            "--rtp-port",
            str(rtp_port),
            "--log-level",
            str(log_level),
        ]
        if registrar:
            argv += ["--registrar", registrar]
        if user:
            argv += ["--user", user]
        if password:
            argv += [f"--password={password}"]  # "=": a password may begin with "-"
        env = dict(os.environ)
        # Run the worker from the same source tree as this controller.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=1 << 20,
        )
        phone = cls(name, proc)
        phone._tasks = [
            asyncio.create_task(phone._read_events(), name=f"phone-{name}-events"),
            asyncio.create_task(phone._read_stderr(), name=f"phone-{name}-stderr"),
        ]
        try:
            ready = await phone.wait_event("ready", timeout=start_timeout)
        except BaseException:
            await phone.stop()
            raise
        phone.sip_port = int(ready["sip_port"])
        return phone

    async def stop(
        self,
        *,
        timeout: float = STOP_TIMEOUT_S,  # noqa: ASYNC109
        check: bool = False,
    ) -> int | None:
        """Ask the worker to quit (it hangs up its calls), kill it after ``timeout``.

        With ``check``, raise ``PhoneError`` (with the worker's stderr) if it exited badly.
        """
        if self._stopped:
            return self.proc.returncode
        self._stopped = True
        proc = self.proc
        killed = False
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.write(b'{"cmd": "quit"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            killed = True
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 2)
        for task in self._tasks:
            task.cancel()
        if check and (killed or proc.returncode != 0):
            how = "was killed after not quitting" if killed else f"exited with {proc.returncode}"
            raise PhoneError(f"phone {self.name} {how}\n{self.diagnostics()}")
        return proc.returncode

    def terminate(self) -> None:
        """Send SIGTERM (for tests of the worker's own clean shutdown)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)

    # -- reading the worker --------------------------------------------------------------------

    async def _read_events(self) -> None:
        assert self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    self._stderr.append(f"[non-JSON on stdout] {line}")
                    continue
                self._history.append(event)
                self._wake()
        finally:
            self._eof = True
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _read_stderr(self) -> None:
        """Keep the worker's stderr drained (a full pipe would block it), last lines kept."""
        assert self.proc.stderr is not None
        pending = b""
        while chunk := await self.proc.stderr.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            self._stderr.extend(line.decode("utf-8", errors="replace") for line in lines)
            if len(pending) > 65536:  # an endless line: keep its start only
                self._stderr.append(pending[:4096].decode("utf-8", errors="replace") + "...")
                pending = b""
        if pending:
            self._stderr.append(pending.decode("utf-8", errors="replace"))

    # -- events --------------------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """Every event received so far, oldest first (a copy)."""
        return list(self._history)

    @property
    def uri(self) -> str:
        """This phone's direct SIP URI, for peer-to-peer calls without a registrar."""
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def mark(self) -> int:
        """Move the cursor to the end: later ``wait_event`` calls ignore what came before."""
        self._cursor = len(self._history)
        return self._cursor

    def find_events(self, kind: str, **match: Any) -> list[Event]:
        """All events of ``kind`` matching the given fields, without waiting or consuming."""
        return [e for e in self._history if _matches(e, kind, match, None)]

    async def wait_event(
        self,
        kind: str,
        timeout: float = 10.0,  # noqa: ASYNC109 - the tests' API: one deadline per wait
        *,
        since: int | None = None,
        where: Callable[[Event], bool] | None = None,
        **match: Any,
    ) -> Event:
        """Return the first not-yet-returned ``kind`` event whose fields equal ``match``.

        Looks from ``since`` (default: the cursor set by ``mark()``, initially the start) and
        then waits up to ``timeout`` seconds. Raises ``TimeoutError`` naming what was awaited,
        or ``PhoneError`` if the worker exits first.
        """
        what = self._describe(kind, match, where)
        index = self._cursor if since is None else since
        _, event = await self._await_history(
            lambda e: _matches(e, kind, match, where), index, timeout, what
        )
        return event

    async def _await_history(
        self,
        pred: Callable[[Event], bool],
        index: int,
        timeout: float,  # noqa: ASYNC109
        what: str,
    ) -> tuple[int, Event]:
        """First unconsumed event from ``index`` on that satisfies ``pred``; marks it consumed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while index < len(self._history):
                event = self._history[index]
                if index not in self._consumed and pred(event):
                    self._consumed.add(index)
                    return index, event
                index += 1
            if self._eof:
                await self._reap()
                raise PhoneError(
                    f"phone {self.name} exited (code {self.proc.returncode}) while waiting for "
                    f"{what}\n{self.diagnostics()}"
                )
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(
                    f"phone {self.name}: no {what} within {timeout:g} s\n{self.diagnostics()}"
                )
            # Registered before yielding to the loop, so no event can slip past this waiter.
            fut = loop.create_future()
            self._waiters.add(fut)
            try:
                await asyncio.wait_for(fut, left)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(fut)

    async def _reap(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 2)
        # Let the stderr reader take in the worker's last words.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._tasks[1]), 1)

    @staticmethod
    def _describe(kind: str, match: dict[str, Any], where: Callable[[Event], bool] | None) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in match.items())
        extra = " and the given predicate" if where is not None else ""
        return f"{kind!r} event" + (f" with {fields}" if fields else "") + extra

    def diagnostics(self, events: int = 12, stderr_lines: int = 30) -> str:
        """The last events and stderr lines of this worker, for failure messages."""
        recent = self._history[-events:]
        last = "\n".join(f"    {json.dumps(e, ensure_ascii=False)}" for e in recent)
        err = "\n".join(f"    {line}" for line in list(self._stderr)[-stderr_lines:])
        return (
            f"  last events of phone {self.name}:\n{last or '    (none)'}\n"
            f"  stderr of phone {self.name}:\n{err or '    (empty)'}"
        )

    # -- commands --------------------------------------------------------------------------------

    async def command(
        self,
        cmd: str,
        timeout: float = COMMAND_TIMEOUT_S,  # noqa: ASYNC109
        **fields: Any,
    ) -> Event:
        """Send one command and return its ``ack``; raise ``PhoneCommandError`` on ``error``."""
        if self.proc.returncode is not None or self._eof or self.proc.stdin is None:
            raise PhoneError(f"phone {self.name} is not running\n{self.diagnostics()}")
        cid = next(self._ids)
        args = {k: _jsonable(v) for k, v in fields.items() if v is not None}
        payload = {"cmd": cmd, "id": cid, **args}
        since = len(self._history)
        self.proc.stdin.write((json.dumps(payload, ensure_ascii=False) + "\n").encode())
        await self.proc.stdin.drain()
        _, reply = await self._await_history(
            lambda e: e.get("id") == cid and e.get("event") in ("ack", "error"),
            since,
            timeout,
            f"reply to {cmd} (id {cid})",
        )
        if reply["event"] == "error":
            raise PhoneCommandError(
                f"phone {self.name}: {cmd} failed: {reply.get('message')}", reply
            )
        return reply

    async def call(
        self,
        uri: str,
        *,
        from_user: str | None = None,
        headers: dict[str, str] | None = None,
        play: str | Path | None = None,
        play_loop: bool = False,
        record: str | Path | None = None,
    ) -> str:
        """Place a call; returns the worker's call id (e.g. "c3") once the INVITE is sent."""
        ack = await self.command(
            "call",
            uri=uri,
            from_user=from_user,
            headers=headers,
            play=play,
            play_loop=play_loop,
            record=record,
        )
        return str(ack["call"])

    async def answer(self, call: str, code: int = 200) -> None:
        await self.command("answer", call=call, code=code)

    async def reject(self, call: str, code: int = 486) -> None:
        await self.command("reject", call=call, code=code)

    async def hangup(self, call: str, code: int | None = None) -> None:
        await self.command("hangup", call=call, code=code)

    async def dtmf(self, call: str, digits: str) -> None:
        await self.command("dtmf", call=call, digits=digits)

    async def play(self, call: str, wav: str | Path, loop: bool = False) -> None:
        await self.command("play", call=call, wav=wav, loop=loop)

    async def stop_play(self, call: str) -> None:
        await self.command("stop_play", call=call)

    async def record(self, call: str, wav: str | Path) -> None:
        await self.command("record", call=call, wav=wav)

    async def stop_record(self, call: str) -> None:
        await self.command("stop_record", call=call)

    async def set_auto_answer(
        self,
        mode: str = "answer",
        *,
        delay_ms: int = 0,
        code: int = 486,
        play: str | Path | None = None,
        play_loop: bool = False,
        record: str | Path | None = None,
    ) -> None:
        """How to treat incoming calls: "answer" (after delay_ms), "never" (ring), "reject".

        ``record`` is used for every incoming call, so give it a fresh name per call if more
        than one is expected.
        """
        await self.command(
            "set_auto_answer",
            mode=mode,
            delay_ms=delay_ms,
            code=code,
            play=play,
            play_loop=play_loop,
            record=record,
        )

    async def ping(self) -> list[str]:
        """Round-trip to the worker; returns the ids of its live calls."""
        return list((await self.command("ping"))["calls"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value.resolve())  # the worker's cwd is not ours to assume
    return value
