"""docs/protocol.md stays true to api/protocol: every frame type both ways, every close of
the close table (with its action) and every error code is documented."""

from __future__ import annotations

import inspect
import json
import typing
from datetime import UTC, datetime
from pathlib import Path

from api import errors
from api.protocol import ClientFrame, Close
from api.protocol import server as frames

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_every_client_frame_is_documented() -> None:
    union = typing.get_args(typing.get_args(ClientFrame)[0])
    for model in union:
        kind = typing.get_args(model.model_fields["type"].annotation)[0]
        assert f"| `{kind}` |" in DOC, kind
        for field in model.model_fields:
            if field not in ("type", "ref"):
                assert f"`{field}`" in DOC, (kind, field)


def test_every_server_frame_is_documented() -> None:
    encoders = [
        frames.ready(user="u", tenant="t", role="member", expires_at=1),
        frames.joined("r", 1, 1, last_read=0, unread=1),
        frames.signal("r", "u", '{"typing":true}'),
        frames.read("r", "u", 1),
        frames.left("r"),
        frames.ack("r", 1, None),
        frames.PONG,
        frames.presence("r", "u", "join", 1),
        frames.broadcast(1, "b", datetime.now(UTC)),
        frames.error("c", "d"),
    ]
    for encoded in encoders:
        kind = json.loads(encoded)["type"]
        assert f"| `{kind}` |" in DOC, kind
    assert "| `message` |" in DOC


def test_every_close_is_documented_with_its_action() -> None:
    for close in Close:
        row = f"| {int(close.code)} | `{close.reason}` | {close.action.value} |"
        assert row in DOC, row


def test_every_error_code_is_documented() -> None:
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.APIError):
            assert f"`{cls.code}`" in DOC, cls.code
    for code in ("unknown_type", "internal"):
        assert f"`{code}`" in DOC
