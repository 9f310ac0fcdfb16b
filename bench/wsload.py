"""A minimal, fast WebSocket client for load generation: plain sockets and a selector.

A Python client that parses every frame as JSON would measure itself, not the server, on a
2-core machine. This one reads frame headers only, and looks inside a frame only when it must
(to classify it, or to read a latency timestamp).
"""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable


class Handshake(Exception):
    pass


class RawSocket:
    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        wait: bool = True,
    ) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        self.pending: list[tuple[int, bytes]] = []  # parsed, not yet consumed by wait_for
        self.closed = False
        if wait:
            self.finish_handshake()

    def finish_handshake(self) -> None:
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Handshake("connection closed during handshake")
            response += chunk
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise Handshake(head.split(b"\r\n", 1)[0].decode(errors="replace"))

    def send_text(self, text: str) -> None:
        self.sock.sendall(encode_frame(text.encode()))

    def frames(self) -> list[tuple[int, bytes]]:
        """Take the complete frames out of the buffer: (opcode, payload)."""
        buf = self.buffer
        out, self.pending = self.pending, []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            head = 2
            if b1 == 126:
                if end - pos < 4:
                    break
                b1 = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif b1 == 127:
                if end - pos < 10:
                    break
                b1 = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if end - pos < head + b1:
                break
            out.append((buf[pos] & 0x0F, buf[pos + head : pos + head + b1]))
            pos += head + b1
        self.buffer = buf[pos:]
        return out

    def read_some(self) -> bool:
        """One recv into the buffer; False when the peer closed."""
        try:
            chunk = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 30) -> bytes:
        """Blocking: read until a text frame satisfies `predicate` (set-up only)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while time.monotonic() < deadline:
            frames = self.frames()
            for i, (opcode, payload) in enumerate(frames):
                if opcode == 1 and predicate(payload):
                    self.pending = frames[i + 1 :]  # keep what came after it
                    return payload
                if opcode == 8:
                    raise Handshake(f"closed: {payload[:2].hex()} {payload[2:]!r}")
                if opcode == 9:
                    self.sock.sendall(encode_frame(payload, opcode=10))
            if not self.read_some():
                raise Handshake("closed while waiting")
        raise TimeoutError("frame not received in time")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def encode_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    m = int.from_bytes(mask, "big")
    padded = payload + b"\0" * (-n % 4)
    words = struct.unpack(f"!{len(padded) // 4}I", padded)
    masked = struct.pack(f"!{len(words)}I", *(w ^ m for w in words))[:n]
    return header + mask + masked


def pump(
    sockets: list[RawSocket],
    on_frame: Callable[[RawSocket, int, bytes], None],
    until: Callable[[], bool],
) -> None:
    """Read every socket as data arrives, calling on_frame for each frame, until `until()`."""
    sel = selectors.DefaultSelector()
    for s in sockets:
        s.sock.setblocking(False)
        sel.register(s.sock, selectors.EVENT_READ, s)
    try:
        while not until():
            for key, _ in sel.select(0.05):
                ws: RawSocket = key.data
                if not ws.read_some():
                    sel.unregister(ws.sock)
                    continue
                for opcode, payload in ws.frames():
                    if opcode == 9:  # ping -> pong, as a browser would
                        with contextlib.suppress(OSError):
                            ws.sock.sendall(encode_frame(payload, opcode=10))
                    on_frame(ws, opcode, payload)
    finally:
        sel.close()
