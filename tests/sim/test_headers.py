"""The worker's SIP header parsing (pure logic)."""

from __future__ import annotations

from sim.phone_worker import parse_sip_headers

INVITE = (
    "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    "f: <sip:13800138000@127.0.0.1>;tag=1\r\n"
    "t: <sip:bob@127.0.0.1>\r\n"
    "i: abc@127.0.0.1\r\n"
    "X-Case-Id: 42\r\n"
    "X-Long: first part\r\n"
    "  second part\r\n"
    "Record-Route: <sip:p1>\r\n"
    "Record-Route: <sip:p2>\r\n"
    "Content-Length: 3\r\n"
    "\r\n"
    "v=0"
)


def test_compact_folded_and_repeated_headers() -> None:
    headers = parse_sip_headers(INVITE)
    assert headers["From"] == "<sip:13800138000@127.0.0.1>;tag=1"
    assert headers["To"] == "<sip:bob@127.0.0.1>"
    assert headers["Call-ID"] == "abc@127.0.0.1"
    assert headers["X-Case-Id"] == "42"
    assert headers["X-Long"] == "first part second part"
    assert headers["Record-Route"] == "<sip:p1>, <sip:p2>"
    assert "v=0" not in headers.values()
