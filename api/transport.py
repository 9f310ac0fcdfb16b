"""uvicorn's protocols, with what they lack (issue 13, defect 9, and RFC 6455 conformance):

- a way to write many text frames in one system call (`SEND_TEXTS`, an ASGI extension in
  the scope): the fan-out's write round uses it, and falls back to ASGI `send` without it;

- a WebSocket handshake that websockets cannot parse (a request line over 8 KiB, say a
  long `?token=`; too many or too long headers) gets an HTTP answer (414, 431 or 400) and is
  closed; uvicorn used to leave it open with no answer at all;
- a client that never finishes its request headers is answered 408 and dropped after
  `server.header_timeout_seconds` (a slowloris holds no connection forever).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import SecurityError
from websockets.frames import Frame, Opcode
from websockets.http11 import MAX_LINE_LENGTH
from websockets.protocol import State
from websockets.server import ServerProtocol

# The scope extension holding `WebSocketProtocol.send_texts` for this socket.
SEND_TEXTS = "switchboard.send_texts"
HEADER_TIMEOUT_SECONDS = 10.0  # the default; uvicorn does not pass our settings to protocols


def _http_answer(status: int, phrase: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class CloseMidMessage(ServerProtocol):
    """websockets fails a close that arrives in the middle of a fragmented message with
    1002; RFC 6455 only says the unfinished message is dropped, and the closing handshake
    goes on normally (Autobahn case 7.1.5, which wsproto and legacy websockets pass)."""

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None  # the unfinished message is dropped
        super().recv_frame(frame)


def text_frame(text: str) -> bytes:
    """A server's text frame on the wire (unmasked, no extension): the same bytes for every
    socket, so a fan-out serializes it once."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """Every handshake gets an answer; a close mid-message is a normal close; many frames
    leave in one write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.__class__ = CloseMidMessage  # same state, one method different
        self._head = b""  # the first bytes, until the handshake, to tell 414 from 431

    def data_received(self, data: bytes) -> None:
        if not self.handshake_initiated and len(self._head) <= MAX_LINE_LENGTH:
            self._head += data[: MAX_LINE_LENGTH + 1]
        super().data_received(data)
        failure = self.conn.handshake_exc
        if failure is not None and not self.handshake_initiated and not self.transport.is_closing():
            self.transport.write(self._refusal(failure))
            self.transport.close()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][SEND_TEXTS] = self.send_texts

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake's request and response (their headers, ~2 KiB) are never read
            # again; a socket keeps them for its whole life otherwise. The scope has the
            # request's headers.
            del self.request, self.response

    def send_texts(self, texts: deque[str], encode: Callable[[str], bytes]) -> bool:
        """Write every text in `texts` as a frame, in one write, and empty it: True. False
        (and `texts` left alone) when the socket cannot take them now: not accepted yet,
        closing, or paused by flow control. Then the caller falls back to ASGI `send`,
        which waits."""
        conn = self.conn
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or conn.state is not State.OPEN
            or conn.expect_continuation_frame
        ):
            return False
        if conn.extensions:  # never negotiated by our app, but a frame then differs per socket
            for text in texts:
                conn.send_text(text.encode())
            data = b"".join(conn.data_to_send())
        else:
            data = b"".join([encode(text) for text in texts])
        texts.clear()
        self.transport.write(data)
        return True

    def _refusal(self, failure: BaseException) -> bytes:
        cause = failure.__cause__ or failure
        if isinstance(cause, SecurityError):
            first_line = self._head.split(b"\r\n", 1)[0]
            if len(first_line) > MAX_LINE_LENGTH:
                return _http_answer(414, "URI Too Long", "the request line is too long")
            return _http_answer(431, "Request Header Fields Too Large", "headers too large")
        return _http_answer(400, "Bad Request", "not a valid WebSocket handshake")


class HttpProtocol(HttpToolsProtocol):
    """A deadline for the first request's headers."""

    header_timeout = HEADER_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout, self._headers_too_slow
        )

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.write(
                _http_answer(408, "Request Timeout", "the request headers took too long")
            )
            self.transport.close()
