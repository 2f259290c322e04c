"""
The hardening suite's framing cases over an HTTP/2 stream: every RFC 6455
framing violation and bad close frame of L{tests.support.hostileframes} (the
hardening suite's),
sent inside DATA frames of an extended CONNECT stream, is answered with the
same close code, then the stream ends (END_STREAM), the application hears of
it, and the connection's other streams go on.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from wsproto.frame_protocol import Opcode

from ..support.apps import RecordingFactory
from ..support.frames import client_frame, raw_frame
from ..support.hostileframes import BAD_CLOSES, VIOLATIONS
from .peer import H2Peer

pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")

call = H2Peer.call

CASES = [*VIOLATIONS, *(pytest.param(raw_frame(0x88, p.values[0]), 1002, id=f"close-{p.id}") for p in BAD_CLOSES)]


@pytest.mark.parametrize(("attack", "code"), CASES)
@pytest_twisted.ensureDeferred
async def test_framing_violation_over_a_stream_closes_with_its_code(
    serve: Any, peers: Any, recorder: RecordingFactory, attack: bytes, code: int
) -> None:
    """
    The violation gets its close code inside the stream, then END_STREAM;
    nothing reached the application, which sees the code it sent; a second
    stream on the same connection still echoes.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    await call(peer.send, stream, attack)
    await call(peer.pump, lambda: peer.ended(stream), "the end of the stream")
    frames = await call(peer.frames, stream, 1)
    assert (frames[-1].opcode, frames[-1].payload[0]) == (Opcode.CLOSE, code)
    app = recorder.built[0]
    closed = await app.closed()
    assert (closed.codeSent, closed.clean) == (code, False)
    assert app.messages == []
    other = await call(peer.connect)
    await call(peer.response, other)
    await call(peer.send, other, client_frame(Opcode.TEXT, b"fine"))
    assert [f.payload for f in await call(peer.frames, other, 1)] == ["fine"]
