"""AudioSocket framing (sans-I/O) and the TCP server that routes a connection to its stream."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recordings.audiosocket import (
    AudioSocketServer,
    Frame,
    FrameParser,
    Kind,
    ProtocolError,
    encode_audio,
    encode_frame,
)


def test_parser_reassembles_frames_split_anywhere() -> None:
    conn = uuid.uuid4()
    wire = (
        encode_frame(Kind.UUID, conn.bytes)
        + encode_frame(Kind.AUDIO_16K, b"\x01\x00" * 160)
        + encode_frame(Kind.HANGUP)
    )
    for split in range(len(wire) + 1):
        parser = FrameParser()
        frames = parser.feed(wire[:split]) + parser.feed(wire[split:])
        assert [f.kind for f in frames] == [Kind.UUID, Kind.AUDIO_16K, Kind.HANGUP]
        assert frames[0].connection_id == conn
        assert frames[1].rate == 16000 and len(frames[1].payload) == 320
        assert parser.pending == 0


@given(st.lists(st.binary(max_size=700), max_size=8), st.integers(1, 50))
def test_parser_byte_by_byte_equals_whole(payloads: list[bytes], step: int) -> None:
    wire = b"".join(encode_frame(Kind.AUDIO, p) for p in payloads)
    parser = FrameParser()
    frames: list[Frame] = []
    for i in range(0, len(wire), step):
        frames += parser.feed(wire[i : i + step])
    assert [f.payload for f in frames] == payloads


def test_length_is_big_endian_and_unknown_kinds_are_errors() -> None:
    assert encode_frame(Kind.AUDIO, b"\x00" * 258)[:3] == b"\x10\x01\x02"
    with pytest.raises(ProtocolError, match="0x42"):
        FrameParser().feed(b"\x42\x00\x00")
    with pytest.raises(ProtocolError):
        _ = Frame(Kind.AUDIO, b"").connection_id


class Sink:
    def __init__(self) -> None:
        self.pcm = bytearray()
        self.rates: set[int] = set()
        self.reason: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def audio(self, pcm: bytes, rate: int) -> None:
        self.pcm += pcm
        self.rates.add(rate)

    def closed(self, reason: str) -> None:
        assert not self.reason.done(), "closed() called twice"
        self.reason.set_result(reason)


async def test_server_routes_audio_by_connection_id_until_hangup() -> None:
    async with AudioSocketServer() as server:
        conn, sink = uuid.uuid4(), Sink()
        server.expect(conn, sink)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        pcm = bytes(range(256)) * 500  # 128000 bytes: more than one frame
        writer.write(encode_frame(Kind.UUID, conn.bytes))
        for frame in encode_audio(pcm):
            writer.write(frame)
        writer.write(encode_frame(Kind.HANGUP))
        await writer.drain()
        assert await asyncio.wait_for(sink.reason, 5) == "hangup"
        assert bytes(sink.pcm) == pcm and sink.rates == {16000}
        assert await asyncio.wait_for(reader.read(), 5) == b""  # server closed it
        writer.close()


async def test_server_closes_unknown_connections_and_reports_eof() -> None:
    async with AudioSocketServer() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(encode_frame(Kind.UUID, uuid.uuid4().bytes))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert server.rejected == 1
        writer.close()

        conn, sink = uuid.uuid4(), Sink()
        server.expect(str(conn), sink)
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(encode_frame(Kind.UUID, conn.bytes) + encode_frame(Kind.AUDIO, b"\0\0"))
        await writer.drain()
        writer.close()
        assert await asyncio.wait_for(sink.reason, 5) == "eof"
        assert sink.rates == {8000}
