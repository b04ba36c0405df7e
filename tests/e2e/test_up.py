"""`hotline up` (what `make up` runs): set-up, a working hotline, and Ctrl-C stopping both."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
import yaml

from hotline.testing import (
    DEFAULT_TEST_ASTERISK_ROOT,
    PROMPT_CACHE,
    REPO_ROOT,
    free_port,
    reserve_ports,
)
from sim.phone import Phone

pytestmark = pytest.mark.e2e


async def _read_until(stream: asyncio.StreamReader, needle: str, limit: float, seen: list[str]):
    async def read() -> str:
        while True:
            line = (await stream.readline()).decode(errors="replace")
            if not line:
                raise AssertionError("hotline up exited early:\n" + "".join(seen[-30:]))
            seen.append(line)
            if needle in line:
                return line

    return await asyncio.wait_for(read(), limit)


async def test_up_answers_12348_and_ctrl_c_stops_everything(tmp_path):
    with reserve_ports(202) as ports:
        config = {
            "runtime_dir": str(tmp_path / "runtime"),
            "asterisk": {
                "root_dir": str(DEFAULT_TEST_ASTERISK_ROOT),
                "instance": f"up{os.getpid()}",
                "rtp_start": ports.base,
                "rtp_end": ports.base + 199,
                "sip_port": ports.base + 200,
                "http_port": ports.base + 201,
            },
            "service": {"port": free_port()},
            "prompts": {"cache_dir": str(PROMPT_CACHE)},
        }
        config_path = tmp_path / "hotline.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hotline",
            "--config",
            str(config_path),
            "up",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        seen: list[str] = []
        try:
            banner = await _read_until(process.stdout, "hotline ready", 180, seen)
            assert f"sip:12348@127.0.0.1:{ports.base + 200}" in banner
            await _read_until(process.stdout, "ARI event socket connected", 30, seen)
            async with Phone.start("caller") as phone:
                call = await phone.call(
                    f"sip:12348@127.0.0.1:{ports.base + 200}", from_user="13900000000"
                )
                await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
                await phone.hangup(call)
                await phone.wait_event("disconnected", call=call, timeout=10)
            process.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        output = "".join(seen) + (await process.stdout.read()).decode(errors="replace")
        assert "stopped" in output
        # Asterisk is gone too: its control socket no longer answers.
        from hotline.asterisk.runtime import AsteriskRuntime
        from hotline.config import load_settings
        from hotline.secrets import load_or_create

        settings = load_settings(config_path)
        runtime = AsteriskRuntime(settings, load_or_create(settings.runtime_path))
        assert not runtime.status().running
        import shutil

        shutil.rmtree(runtime.instance_dir, ignore_errors=True)
