"""SIP against a real Asterisk: seat registration with digest auth (raw UDP SIP from Python),
and carrier-trunk calls reaching the Stasis application (sipp)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest

from hotline.testing import AsteriskInstance, free_port


class SipRegistrar:
    """A minimal UAC speaking just enough SIP over UDP to REGISTER a seat."""

    def __init__(self, server_port: int, user: str) -> None:
        self.server = ("127.0.0.1", server_port)
        self.user = user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def register(self, expires: int = 60, authorization: str | None = None) -> tuple[int, str]:
        """Send REGISTER, return (status code, whole response) of the final response."""
        self.cseq += 1
        host = f"127.0.0.1:{self.server[1]}"
        lines = [
            f"REGISTER sip:{host} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(6)}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{host}>;tag={self.tag}",
            f"To: <sip:{self.user}@{host}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
            f"Expires: {expires}",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        message = "\r\n".join([*lines, "Content-Length: 0", "", ""])
        self.sock.sendto(message.encode(), self.server)
        self.sock.settimeout(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = self.sock.recv(65535).decode()
            code = int(data.split(" ", 2)[1])
            if code >= 200:  # skip provisional responses
                return code, data
        raise TimeoutError("no final response to REGISTER")

    def authorization(self, challenge: str, password: str) -> str:
        """The Authorization header answering a 401's WWW-Authenticate (RFC 2617, MD5)."""
        header = re.search(r"^WWW-Authenticate:\s*Digest\s+(.*)$", challenge, re.M | re.I)
        assert header, challenge
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', header.group(1)))
        uri = f"sip:127.0.0.1:{self.server[1]}"
        ha1 = _md5(f"{self.user}:{params['realm']}:{password}")
        ha2 = _md5(f"REGISTER:{uri}")
        fields = {
            "username": self.user,
            "realm": params["realm"],
            "nonce": params["nonce"],
            "uri": uri,
            "algorithm": "MD5",
        }
        if "auth" in params.get("qop", "").split(","):
            cnonce, nc = secrets.token_hex(8), "00000001"
            fields |= {"qop": "auth", "nc": nc, "cnonce": cnonce}
            fields["response"] = _md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        else:
            fields["response"] = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        if "opaque" in params:
            fields["opaque"] = params["opaque"]
        unquoted = {"algorithm", "qop", "nc"}
        return "Digest " + ", ".join(
            f"{k}={v}" if k in unquoted else f'{k}="{v}"' for k, v in fields.items()
        )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@contextlib.contextmanager
def _registrar(instance: AsteriskInstance) -> Iterator[SipRegistrar]:
    client = SipRegistrar(instance.sip_port, instance.seat.name)
    try:
        yield client
    finally:
        client.close()


def test_seat_register_without_auth_is_challenged(asterisk_instance: AsteriskInstance) -> None:
    with _registrar(asterisk_instance) as client:
        code, response = client.register()
    assert code == 401
    assert 'realm="hotline"' in response


def test_seat_register_with_wrong_password_is_refused(asterisk_instance: AsteriskInstance) -> None:
    with _registrar(asterisk_instance) as client:
        _, challenge = client.register()
        code, _ = client.register(authorization=client.authorization(challenge, "wrong"))
    assert code in (401, 403)


def test_seat_digest_register_succeeds(asterisk_instance: AsteriskInstance) -> None:
    runtime, seat = asterisk_instance.runtime, asterisk_instance.seat
    with _registrar(asterisk_instance) as client:
        _, challenge = client.register()
        code, _ = client.register(authorization=client.authorization(challenge, seat.password))
        assert code == 200
        contact = f"{seat.name}@127.0.0.1:{client.port}"
        assert contact in runtime.cli(f"pjsip show aor {seat.name}")
        # Unregister so that later tests find the seat free.
        _, challenge = client.register(expires=0)
        code, _ = client.register(0, client.authorization(challenge, seat.password))
        assert code == 200
    assert contact not in runtime.cli(f"pjsip show aor {seat.name}")


@pytest.mark.parametrize(("number", "reason"), [("12348", "inbound"), ("4006123", "unknown")])
async def test_trunk_call_reaches_stasis_with_reason(
    asterisk_instance: AsteriskInstance, number: str, reason: str
) -> None:
    settings = asterisk_instance.settings.asterisk
    user, password = asterisk_instance.ari_auth
    ws_url = (
        f"ws://127.0.0.1:{settings.http_port}/ari/events"
        f"?app={settings.app_name}&api_key={user}:{password}"
    )
    headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(ws_url) as ws:
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sn", "uac", f"127.0.0.1:{settings.sip_port}", "-s", number,
            "-m", "1", "-i", "127.0.0.1", "-p", str(free_port("udp")),
            "-mi", "127.0.0.1", "-mp", str(free_port("udp")),
            "-nostdin", "-timeout", "20s", "-timeout_error",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with asyncio.timeout(10):
                async for message in ws:
                    event = json.loads(message.data)
                    if event["type"] == "StasisStart":
                        break
            channel = event["channel"]
            assert event["args"] == [reason, number]
            assert channel["name"].startswith("PJSIP/carrier-")  # identified by address
            assert channel["dialplan"]["exten"] == number
            url = f"{asterisk_instance.ari_url}/ari/channels/{channel['id']}"
            async with http.delete(url) as response:
                assert response.status == 204
            async with asyncio.timeout(10):
                await sipp.wait()
        finally:
            if sipp.returncode is None:
                sipp.kill()
                await sipp.wait()
    # Issue #5: the call's RTP made Asterisk resolve this machine's host name (acl.c); without
    # it in the root's /etc/hosts that was DNS from the SIP threads, blocking them 5 s per lost
    # query under load. It must be answered locally: no failed lookup is logged.
    log_text = (asterisk_instance.runtime.log_dir / "messages.log").read_text(errors="replace")
    assert "Unable to lookup" not in log_text
