"""python-socketio (ASGI, under uvicorn) with a room emit.
Run: uvicorn bench.peers.socketio_peer:app"""

from typing import Any

import socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)


@sio.event
async def join(sid: str, room: str) -> None:
    await sio.enter_room(sid, room)
    await sio.emit("joined", room, to=sid)


@sio.event
async def message(sid: str, data: dict[str, Any]) -> None:
    await sio.emit("message", data, room=data["room"])
