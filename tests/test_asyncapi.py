"""docs/asyncapi.yaml is generated from the protocol's models and served at /asyncapi.yaml;
the server frame models describe exactly what the encoders send."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from api import asyncapi
from api.protocol import server as frames
from api.protocol.schema import (
    AckFrame,
    BroadcastFrame,
    ErrorFrame,
    JoinedFrame,
    LeftFrame,
    MessageFrame,
    PongFrame,
    PresenceFrame,
    ReadPositionFrame,
    ReadyFrame,
    SignalEventFrame,
)
from api.repository import MessageRow
from tests.support import LiveServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC)
MESSAGE = MessageRow("general", 7, "alice", "hi", NOW, "user", "c-1")
EDIT = MessageRow("general", 8, "alice", "hello", NOW, "edit", None, target=7)
EDITED = MessageRow("general", 7, "alice", "", NOW, "user", None, edited_at=NOW, deleted=True)


@pytest.mark.parametrize(
    ("encoded", "model"),
    [
        (frames.ready(user="u", tenant="t", role="admin", expires_at=1), ReadyFrame),
        (frames.joined("general", 3, 2, last_read=1, unread=2), JoinedFrame),
        (frames.joined("general", 3, 2, last_read=0, unread=2, first_seq=2), JoinedFrame),
        (frames.message(EDIT), MessageFrame),
        (frames.message(EDITED), MessageFrame),
        (frames.signal("general", "bob", '{"typing":true}'), SignalEventFrame),
        (frames.read("general", "bob", 3), ReadPositionFrame),
        (frames.left("general"), LeftFrame),
        (frames.left("general", reason="removed"), LeftFrame),
        (frames.ack("general", 3, "c-1", ref="r"), AckFrame),
        (frames.ack("general", 3, None), AckFrame),
        (frames.message(MESSAGE), MessageFrame),
        (frames.presence("general", "bob", "leave", 1), PresenceFrame),
        (frames.broadcast(4, "maintenance", NOW), BroadcastFrame),
        (frames.PONG, PongFrame),
        (frames.error("rate_limited", "slow down", "r", retry_after=0.5), ErrorFrame),
    ],
)
def test_encoders_match_their_models(encoded: str, model: type[BaseModel]) -> None:
    model.model_validate(json.loads(encoded))  # extra="forbid": no undocumented field


def test_committed_document_is_generated_and_served(server: LiveServer) -> None:
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text()
    assert committed == asyncapi.render(), "run: python -m api.asyncapi > docs/asyncapi.yaml"
    with server.http() as client:
        r = client.get("/asyncapi.yaml")
    assert r.status_code == 200 and r.text == committed
    assert r.headers["content-type"].startswith("application/yaml")
    doc = asyncapi.document()
    assert doc["asyncapi"] == "3.0.0"
    names = set(doc["components"]["messages"])
    assert {"client.send", "client.join", "server.message", "server.ack"} <= names


def test_the_built_web_client_is_served(server: LiveServer) -> None:
    with server.http() as client:
        r = client.get("/client/index.js")
        assert r.status_code == 200 and "export class Switchboard" in r.text
        assert r.headers["content-type"].startswith("text/javascript")
        for bad in ("../../api/settings.py", "index.d.ts", "__init__.py", "nope.js"):
            missing = client.get(f"/client/{bad}")
            assert missing.status_code == 404 and missing.json()["error"] == "not_found", bad
        page = client.get("/")
        assert 'from "/client/index.js"' in page.text  # the demo is built on the client
