"""create_app(settings): the ASGI application and its lifespan (database, broker, hub,
persister)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from api.errors import install_error_handlers
from api.protocol import Close
from api.redact import install_log_redaction
from api.routes import admin, admin_integrations, auth, dms, integrations, ops, rooms, sse
from api.routes.socket_lane import SocketLane
from api.services import Services
from api.settings import Settings, get_settings


class SwitchboardApp(FastAPI):
    """FastAPI, with the sockets' own lane around the whole middleware stack."""

    def build_middleware_stack(self) -> ASGIApp:
        return SocketLane(super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_log_redaction()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings)
        app.state.services = services
        await services.start()
        tune_gc(settings.server.gc_threshold)
        try:
            yield
        finally:
            await services.hub.close_all(Close.SHUTDOWN)
            await services.stop()

    app = SwitchboardApp(
        title="Switchboard",
        version="0.1.0",
        lifespan=lifespan,
        description="Authenticated, multi-tenant realtime API.",
    )
    install_error_handlers(app)
    # /ws and /ws/rooms/{room} are served by the socket lane (routes/socket_lane.py)
    for module in (auth, rooms, dms, sse, admin, admin_integrations, integrations, ops):
        app.include_router(module.router)
    return app


def tune_gc(threshold: list[int]) -> None:
    """Full garbage collections walk every live object: with thousands of sockets that is a
    pause of 100+ ms, which shows up as the p99 of delivery (measured in bench/). Objects
    alive after start-up are frozen out of collection, and full collections made rare."""
    if threshold:
        gc.set_threshold(*threshold)
    gc.freeze()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options that are part of the contract (frame size -> 1009, heartbeats)."""
    return {
        "ws_max_size": settings.ws.max_message_bytes,
        "ws_ping_interval": settings.ws.ping_interval or None,
        "ws_ping_timeout": settings.ws.ping_timeout or None,
        # Compression costs ~90 KiB per socket and CPU per frame; chat frames are small.
        "ws_per_message_deflate": False,
        "access_log": settings.server.access_log,
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.server.forwarded_allow_ips),
        "ssl_certfile": settings.server.ssl_certfile or None,
        "ssl_keyfile": settings.server.ssl_keyfile or None,
        "timeout_graceful_shutdown": settings.server.graceful_shutdown_seconds,
        # uvicorn's own protocols, plus an answer to every handshake, a header deadline and
        # a clean close mid-message (docs/conformance.md: Autobahn passes).
        "http": "api.transport:HttpProtocol",
        "ws": "api.transport:WebSocketProtocol",
    }
