"""
Driving a sans-IO server core (L{txpulse.core.connection.Connection}) and
checking how it failed.
"""

from __future__ import annotations

from txpulse.core.connection import Connection, Side, State
from txpulse.core.frames import Opcode

from .frames import client_frame


def server_with(data: bytes, **kwargs: object) -> Connection:
    """
    A server core fed C{data} in one piece.
    """
    conn = Connection(Side.SERVER, **kwargs)  # type: ignore[arg-type]
    conn.receive_data(data)
    return conn


def close_code_sent(conn: Connection, *, after_data: bool = False) -> int | None:
    """
    The code of the close frame a server core queued, parsed from its
    output; with C{after_data}, the (unmasked) frames queued before it are
    skipped, otherwise the close must come first.
    """
    out = b"".join(conn.data_to_send())
    assert out, "nothing was queued"
    while after_data and out and out[0] != 0x88:
        length = out[1] & 0x7F
        start = 2 if length < 126 else 4 if length == 126 else 10
        if length == 126:
            length = int.from_bytes(out[2:4], "big")
        elif length == 127:
            length = int.from_bytes(out[2:10], "big")
        out = out[start + length :]
    assert out, "no close frame was queued"
    assert out[0] == 0x88, f"expected a close frame, got {out[:2].hex()}"
    return int.from_bytes(out[2:4], "big") if out[1] >= 2 else None


def assert_failed(conn: Connection, code: int, *, after_data: bool = False) -> None:
    """
    The server core failed the connection with C{code}: the close frame went
    out (see L{close_code_sent} for C{after_data}), the transport must
    close, and later input is ignored.
    """
    assert close_code_sent(conn, after_data=after_data) == code
    assert conn.should_close_transport()
    assert conn.state is State.CLOSED
    assert conn.error is not None and conn.error.closeCode == code
    conn.receive_data(client_frame(Opcode.TEXT, b"ignored"))
    assert "ignored" not in conn.events_received()
