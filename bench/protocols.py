"""How the load generator speaks to each server: path, set-up, what a delivered message looks
like, how to publish, what acknowledges a publish."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.wsload import RawSocket


@dataclass(frozen=True)
class Protocol:
    name: str

    def path(self, room: str, token: str) -> str:
        return "/ws"

    def open_frames(self, room: str | None) -> list[str]:
        """Frames sent right after the handshake (joining `room`, if any)."""
        return []

    def wait_ready(self, ws: RawSocket, room: str | None) -> None:
        """Block until the server has answered the open frames."""
        return None

    def setup(self, ws: RawSocket, room: str | None) -> None:
        for frame in self.open_frames(room):
            ws.send_text(frame)
        self.wait_ready(ws, room)

    def is_message(self, payload: bytes) -> bool:
        return True

    def publish(self, room: str, body: str) -> str:
        return body

    def is_ack(self, payload: bytes) -> bool:
        """What tells a publisher its message was accepted (peers echo it to the sender)."""
        return True

    def reply(self, payload: bytes) -> str | None:
        """A protocol-level answer the client must send (Engine.IO pings)."""
        return None


class Switchboard(Protocol):
    def path(self, room: str, token: str) -> str:
        return f"/ws?token={token}"

    def open_frames(self, room: str | None) -> list[str]:
        return [json.dumps({"type": "join", "room": room})] if room else []

    def wait_ready(self, ws: RawSocket, room: str | None) -> None:
        ws.wait_for(lambda p: p.startswith(b'{"type":"ready"'))
        if room:
            ws.wait_for(lambda p: p.startswith(b'{"type":"joined"'))

    def is_message(self, payload: bytes) -> bool:
        return payload.startswith(b'{"type":"message"')

    def publish(self, room: str, body: str) -> str:
        return json.dumps({"type": "send", "room": room, "body": body})

    def is_ack(self, payload: bytes) -> bool:
        return payload.startswith(b'{"type":"ack"')


class SwitchboardSignals(Switchboard):
    """Signals instead of messages: the same room, ephemeral frames, no ack."""

    def is_message(self, payload: bytes) -> bool:
        return payload.startswith(b'{"type":"signal"')

    def publish(self, room: str, body: str) -> str:
        return json.dumps({"type": "signal", "room": room, "data": body})

    def is_ack(self, payload: bytes) -> bool:
        return False


class Naive(Protocol):
    """The FastAPI tutorial: every text frame is broadcast to every socket."""


class NaivePersist(Protocol):
    def path(self, room: str, token: str) -> str:
        return f"/ws/{room}"


class WebsocketsBroadcast(Protocol):
    def path(self, room: str, token: str) -> str:
        return "/"


class SocketIO(Protocol):
    def path(self, room: str, token: str) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def open_frames(self, room: str | None) -> list[str]:
        return ["40", "42" + json.dumps(["join", room])] if room else ["40"]

    def wait_ready(self, ws: RawSocket, room: str | None) -> None:
        ws.wait_for(lambda p: p.startswith(b"0{"))
        ws.wait_for(lambda p: p.startswith(b"40"))
        if room:
            ws.wait_for(lambda p: p.startswith(b'42["joined"'))

    def is_message(self, payload: bytes) -> bool:
        return payload.startswith(b'42["message"')

    def publish(self, room: str, body: str) -> str:
        return "42" + json.dumps(["message", {"room": room, "body": body}])

    def is_ack(self, payload: bytes) -> bool:
        return payload.startswith(b'42["message"')

    def reply(self, payload: bytes) -> str | None:
        return "3" if payload == b"2" else None


PROTOCOLS: dict[str, Protocol] = {
    "switchboard": Switchboard("switchboard"),
    "switchboard-signals": SwitchboardSignals("switchboard-signals"),
    "naive": Naive("naive"),
    "naive-persist": NaivePersist("naive-persist"),
    "websockets": WebsocketsBroadcast("websockets"),
    "socketio": SocketIO("socketio"),
}
