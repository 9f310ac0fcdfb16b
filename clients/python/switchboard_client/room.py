"""A joined room: every message once, in seq order, across reconnects; presence; sends."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchboard_client.client import Client

Handler = Callable[[dict[str, Any]], None]


class Room:
    def __init__(self, client: Client, name: str, since: int | None) -> None:
        self.client = client
        self.name = name
        self.last_seq: int | None = since  # the last seq delivered to the app
        self.online: dict[str, bool] = {}
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._handlers: dict[str, list[Handler]] = {}
        self.joined = asyncio.Event()
        self.join_error: Exception | None = None  # why the first join was refused
        self.join_ref = f"join:{name}"  # the `ref` of join frames, echoed by a refusal
        self.last_read = 0  # this user's read position, from `joined` and `read` frames
        self.unread = 0  # from `joined`, then counted as messages from others arrive
        self.first_seq: int | None = None  # set when a join was truncated by retention
        self._joined_seq = 0  # entries up to it are counted in `joined.unread` already

    # app-facing --------------------------------------------------------------------
    def on(self, event: str, handler: Handler) -> None:
        """`message` (every entry, edits and deletions included), `edit`, `delete`,
        `presence`, `signal`, `read`, `unread` ({"unread", "last_read"}): called for each,
        in order."""
        self._handlers.setdefault(event, []).append(handler)

    async def signal(self, data: Any) -> None:
        """An ephemeral event (typing, a cursor) for the room's other connections."""
        await self.client._send_frame({"type": "signal", "room": self.name, "data": data})

    async def read(self, seq: int | None = None) -> None:
        """Move the read position to `seq` (default: the last delivered message)."""
        upto = seq if seq is not None else self.last_seq or 0
        await self.client._send_frame({"type": "read", "room": self.name, "seq": upto})

    async def edit(self, seq: int, body: str) -> dict[str, Any]:
        """Replace one's own message; resolves with the ack of the `edit` entry."""
        return await self.client._request(
            {"type": "edit", "room": self.name, "seq": seq, "body": body}
        )

    async def delete(self, seq: int) -> dict[str, Any]:
        return await self.client._request({"type": "delete", "room": self.name, "seq": seq})

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Each message once, in seq order, whatever happens to the connection."""
        while True:
            yield await self._queue.get()

    async def send(self, body: str, client_msg_id: str | None = None) -> dict[str, Any]:
        """Resolves with the ack (`seq`) after the server committed the message; retried
        across reconnects with the same client_msg_id, so it is stored exactly once."""
        cmid = client_msg_id or secrets.token_urlsafe(12)
        return await self.client._outbox_send(self.name, body, cmid)

    async def history(self, *, before: int | None = None, limit: int = 50) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        found: dict[str, Any] = await self.client._http(
            "GET", f"/rooms/{self.name}/messages", params=params
        )
        return found

    async def leave(self) -> None:
        await self.client._leave(self)

    # from the client ---------------------------------------------------------------
    def _join_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "join", "room": self.name, "ref": self.join_ref}
        if self.last_seq is not None:
            frame["since"] = self.last_seq
        return frame

    def _on_joined(self, frame: dict[str, Any]) -> None:
        if self.last_seq is None:  # first join without `since`: start at the live edge
            self.last_seq = frame["seq"]
        self.online = {}
        self._joined_seq = frame["seq"]
        self.first_seq = frame.get("first_seq") if frame.get("truncated") else None
        self._set_unread(frame.get("unread", 0), frame.get("last_read", 0))
        self.joined.set()

    def _on_message(self, frame: dict[str, Any]) -> None:
        seq = frame["seq"]
        if self.last_seq is not None and seq <= self.last_seq:
            return  # already delivered (a resend or a replay overlapping live delivery)
        self.last_seq = seq
        message = {k: v for k, v in frame.items() if k != "type"}
        self._queue.put_nowait(message)
        self._emit("message", message)
        if message["kind"] in ("edit", "delete"):
            self._emit(message["kind"], message)
        elif seq <= self._joined_seq:
            pass  # a replay: `joined.unread` counted it
        elif message["sender"] == self.client.username:
            self._set_unread(0, seq)  # sending moved this user's read position
        else:
            self._set_unread(self.unread + 1, self.last_read)

    def _on_event(self, frame: dict[str, Any]) -> None:
        """`signal` and `read` frames; this user's own `read` clears the unread count when
        it reaches the last delivered message."""
        if frame["type"] == "read" and frame["user"] == self.client.username:
            caught_up = frame["seq"] >= (self.last_seq or 0)
            self._set_unread(0 if caught_up else self.unread, max(self.last_read, frame["seq"]))
        self._emit(frame["type"], frame)

    def _set_unread(self, unread: int, last_read: int) -> None:
        if (unread, last_read) != (self.unread, self.last_read):
            self.unread, self.last_read = unread, last_read
            self._emit("unread", {"unread": unread, "last_read": last_read})

    def _on_presence(self, frame: dict[str, Any]) -> None:
        if frame["event"] == "join":
            self.online[frame["user"]] = True
        else:
            self.online.pop(frame["user"], None)
        self._emit("presence", frame)

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        for handler in self._handlers.get(event, []):
            handler(payload)
