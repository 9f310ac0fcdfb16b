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

    def setup(self, ws: RawSocket, room: str) -> None:
        return None

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

    def setup(self, ws: RawSocket, room: str) -> None:
        ws.wait_for(lambda p: p.startswith(b'{"type":"ready"'))
        ws.send_text(json.dumps({"type": "join", "room": room}))
        ws.wait_for(lambda p: p.startswith(b'{"type":"joined"'))

    def is_message(self, payload: bytes) -> bool:
        return payload.startswith(b'{"type":"message"')

    def publish(self, room: str, body: str) -> str:
        return json.dumps({"type": "send", "room": room, "body": body})

    def is_ack(self, payload: bytes) -> bool:
        return payload.startswith(b'{"type":"ack"')


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

    def setup(self, ws: RawSocket, room: str) -> None:
        ws.wait_for(lambda p: p.startswith(b"0{"))
        ws.send_text("40")
        ws.wait_for(lambda p: p.startswith(b"40"))
        ws.send_text(json.dumps(["join", room]).join(("42", "")))
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
    "naive": Naive("naive"),
    "naive-persist": NaivePersist("naive-persist"),
    "websockets": WebsocketsBroadcast("websockets"),
    "socketio": SocketIO("socketio"),
}
