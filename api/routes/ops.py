"""Operations: liveness, readiness, metrics, and the demo page."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api import asyncapi
from api.deps import ServicesDep
from api.errors import NotFound, error_response, error_responses
from api.metrics import count_tasks, exposition

router = APIRouter(tags=["operations"])
WEB_CLIENT_FILE = re.compile(r"[a-z]+\.js")
STATIC = Path(__file__).resolve().parent.parent / "static"
# The built JavaScript client: clients/js/dist, installed as the package api.webclient.
WEB_CLIENT = Path(str(resources.files("api.webclient")))


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = {
        "database": "ok" if await services.db.ping() else "down",
        "broker": "ok" if await services.broker.ping() else "down",
    }
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", **checks})
    down = ", ".join(k for k, v in checks.items() if v != "ok")
    return error_response(503, "unavailable", f"not ready: {down} unreachable")


@router.get("/asyncapi.yaml", include_in_schema=False)
async def asyncapi_document() -> Response:
    """The WebSocket protocol as AsyncAPI 3 (beside /openapi.json for HTTP)."""
    return Response(asyncapi.render(), media_type="application/yaml")


@router.get("/client/{name}", include_in_schema=False)
async def web_client(name: str) -> Response:
    """The JavaScript client, as built in clients/js (the demo page imports it)."""
    source = WEB_CLIENT / name
    if not WEB_CLIENT_FILE.fullmatch(name) or not source.is_file():
        raise NotFound("no such client file")
    # FileResponse reads the file off the event loop.
    return FileResponse(source, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/metrics")
async def metrics() -> Response:
    count_tasks()
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def demo_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")
