"""docs/asyncapi.yaml: an AsyncAPI 3 document of `/ws`, its frames' JSON Schemas generated
from the protocol's pydantic models. Served at /asyncapi.yaml; a test fails when the
committed file differs (regenerate: `python -m api.asyncapi > docs/asyncapi.yaml`)."""

from __future__ import annotations

import typing
from functools import lru_cache
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.protocol import ClientFrame, Close
from api.protocol.schema import SERVER_FRAMES

REF = "#/components/schemas/{model}"
ARROWS = {"client": "client → server", "server": "server → client"}


def _frame_type(model: type[BaseModel]) -> str:
    return str(typing.get_args(model.model_fields["type"].annotation)[0])


def client_frame_models() -> tuple[type[BaseModel], ...]:
    return typing.get_args(typing.get_args(ClientFrame)[0])


def document() -> dict[str, Any]:
    client = client_frame_models()
    _, schemas = models_json_schema(
        [(m, "validation") for m in (*client, *SERVER_FRAMES)], ref_template=REF
    )
    messages: dict[str, Any] = {}
    for direction, models in (("client", client), ("server", SERVER_FRAMES)):
        for model in models:
            name = f"{direction}.{_frame_type(model)}"
            messages[name] = {
                "name": _frame_type(model),
                "title": f"{_frame_type(model)} ({ARROWS[direction]})",
                "contentType": "application/json",
                "payload": {"$ref": REF.format(model=model.__name__)},
            }
            if model.__doc__:
                messages[name]["summary"] = " ".join(model.__doc__.split())
    closes = "\n".join(
        f"- {int(c.code)} `{c.reason}`: {c.action.value} ({c.meaning})" for c in Close
    )

    def refs(direction: str) -> list[dict[str, str]]:
        return [
            {"$ref": f"#/channels/ws/messages/{name}"}
            for name in messages
            if name.startswith(direction + ".")
        ]

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard WebSocket API",
            "version": "0.1.0",
            "description": "One WebSocket per client: join rooms, send and receive messages "
            "with gap-free per-room seqs. See docs/protocol.md.\n\nClose codes:\n" + closes,
        },
        "servers": {
            "local": {"host": "127.0.0.1:8000", "protocol": "ws", "description": "serve --demo"}
        },
        "channels": {
            "ws": {
                "address": "/ws",
                "description": "Authenticate with ?ticket= or ?token=, the session cookie, "
                "or a first `auth` frame; then exchange JSON text frames.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": {
            "clientFrames": {
                "action": "receive",
                "summary": "Frames the server receives from a client.",
                "channel": {"$ref": "#/channels/ws"},
                "messages": refs("client"),
            },
            "serverFrames": {
                "action": "send",
                "summary": "Frames the server sends to a client.",
                "channel": {"$ref": "#/channels/ws"},
                "messages": refs("server"),
            },
        },
        "components": {"messages": messages, "schemas": schemas["$defs"]},
    }


@lru_cache(maxsize=1)
def render() -> str:
    text: str = yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
    return text


if __name__ == "__main__":
    print(render(), end="")
