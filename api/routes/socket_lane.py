"""The WebSocket routes' own lane through the app.

A socket lives for hours, and every layer its ASGI call passes through stays on its stack
for as long: FastAPI's exception, exit-stack, telemetry and body-limit middleware and its
router hold about 7 KiB per idle socket (measured with tracemalloc in bench/). This
outer layer sends `/ws` and `/ws/rooms/{room}` straight to their handler; the handler answers
its own errors (error frames and close codes), so those layers had nothing to do for it.
Every other request, and any other WebSocket path, goes through the app as usual.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from api.routes.ws import serve_socket

ROOM_PREFIX = "/ws/rooms/"


class SocketLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            if path == "/ws":
                await serve_socket(WebSocket(scope, receive, send), None)
                return
            room = path[len(ROOM_PREFIX) :] if path.startswith(ROOM_PREFIX) else ""
            if room and "/" not in room:
                await serve_socket(WebSocket(scope, receive, send), room)
                return
        await self.app(scope, receive, send)
