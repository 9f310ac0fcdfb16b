"""The asyncio client: one WebSocket, reconnected with backoff, rooms resumed with `since`,
sends kept in an outbox until acked, tokens refreshed in-band, dead links detected by a
ping with a deadline. The behaviour follows docs/protocol.md's client algorithm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any, Literal

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, WebSocketException

from switchboard_client.auth import AuthFailed, GetToken
from switchboard_client.backoff import full_jitter
from switchboard_client.http import SwitchboardError, call, ws_ticket
from switchboard_client.room import Room

State = Literal["connecting", "live", "reconnecting", "closed"]
# Close reasons after which reconnecting cannot help (the protocol's close table).
TERMINAL_REASONS = {
    "invalid_token",
    "revoked",
    "origin_not_allowed",
    "auth_timeout",
    "too_many_sockets",
    "removed",
    "idle",
}
# Errors worth retrying a send for; any other error fails the send.
RETRYABLE = {"unavailable", "rate_limited", "not_joined", "internal"}


class Closed(Exception):
    """The client stopped (closed by the app, or a terminal close from the server)."""


class Client:
    def __init__(
        self,
        url: str,
        *,
        get_token: GetToken,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 15.0,
        refresh_margin: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.ws_url = "ws" + self.url[len("http") :] if self.url.startswith("http") else self.url
        self.get_token = get_token
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.refresh_margin = refresh_margin
        self.state: State = "connecting"
        self.rooms: dict[str, Room] = {}
        self.outbox: dict[str, tuple[str, str, asyncio.Future[dict[str, Any]]]] = {}
        self.errors: asyncio.Queue[SwitchboardError] = asyncio.Queue()
        self.close_reason: str | None = None
        self._refused: AuthFailed | None = None  # why the credentials were refused, if so
        self._ws: Any = None
        self._live = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_frame = 0.0
        self._expires_at = 0.0  # of the socket's credential (epoch seconds), from `ready`
        self._pending: set[asyncio.Task[None]] = set()
        self._requests: dict[str, asyncio.Future[dict[str, Any]]] = {}  # by ref: edits, deletes
        self.username: str | None = None  # from `ready`

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start the connection loop and wait until the first `ready`."""
        self._task = asyncio.ensure_future(self._run())
        waiter = asyncio.ensure_future(self._live.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiter.cancel()
            self._task.result()
            if self._refused is not None:
                raise self._refused
            raise Closed(self.close_reason or "closed")

    async def close(self) -> None:
        self.state = "closed"
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._fail_outbox(Closed("client closed"))

    async def join(self, name: str, since: int | None = None) -> Room:
        room = self.rooms.get(name) or Room(self, name, since)
        self.rooms[name] = room
        if self._live.is_set():
            await self._send_frame(room._join_frame())
        await room.joined.wait()
        if room.join_error is not None:  # refused (no such room, private, too many rooms)
            self.rooms.pop(name, None)
            raise room.join_error
        return room

    async def open_dm(self, username: str) -> dict[str, Any]:
        """The direct room with `username` (created on first use); join it by its `name`."""
        room: dict[str, Any] = await self._http("POST", "/dms", json={"username": username})
        return room

    async def dms(self) -> list[dict[str, Any]]:
        """Direct rooms: `name`, `with`, `last_seq`, `last_read`, `unread`."""
        found: list[dict[str, Any]] = await self._http("GET", "/dms")
        return found

    # internals used by Room ----------------------------------------------------------
    async def _request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """A frame answered by an `ack` or an `error` with its ref. Not resent after a
        reconnect (an edit is not idempotent): a lost connection fails it."""
        if not self._live.is_set():
            raise SwitchboardError("offline", "not connected")
        ref = f"r:{secrets.token_urlsafe(9)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[ref] = future
        try:
            await self._ws.send(json.dumps({**frame, "ref": ref}))
            return await future
        finally:
            self._requests.pop(ref, None)

    async def _outbox_send(self, room: str, body: str, cmid: str) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.outbox[cmid] = (room, body, future)
        if self._live.is_set():
            await self._send_frame(_send(room, body, cmid))
        return await future

    async def _leave(self, room: Room) -> None:
        self.rooms.pop(room.name, None)
        if self._live.is_set():
            await self._send_frame({"type": "leave", "room": room.name})

    async def _http(self, method: str, path: str, **kw: Any) -> Any:
        return await call(self.url, await self.get_token(), method, path, **kw)

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # a dead socket: the loop reconnects and resends
            await self._ws.send(json.dumps(frame))

    # the connection loop --------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while not self._stopped():
            self.state = "connecting" if attempt == 0 else "reconnecting"
            try:
                await self._session()
                attempt = 0
            except AuthFailed as exc:
                self._refused = exc
                return self._stop(f"auth_failed: {exc}")
            except ConnectionClosed as exc:
                reason = exc.rcvd.reason if exc.rcvd else ""
                if reason in TERMINAL_REASONS:
                    return self._stop(reason)
            except (OSError, WebSocketException, TimeoutError, httpx.HTTPError, ValueError):
                pass  # the network or a restarting server: back off and reconnect
            finally:
                self._live.clear()
                self._ws = None
                for future in self._requests.values():  # unanswered: the app decides
                    if not future.done():
                        future.set_exception(SwitchboardError("disconnected", "connection lost"))
            if self._stopped():
                return
            self.state = "reconnecting"
            await asyncio.sleep(full_jitter(attempt, self.backoff_base, self.backoff_cap))
            attempt += 1

    def _stopped(self) -> bool:
        return self.state == "closed"

    def _stop(self, reason: str) -> None:
        self.state, self.close_reason = "closed", reason
        self._fail_outbox(Closed(reason))

    async def _ticket(self) -> str:
        """A single-use ticket: a long-lived token never goes into a URL."""
        return await ws_ticket(self.url, await self.get_token())

    async def _session(self) -> None:
        ticket = await self._ticket()
        async with websockets.connect(
            f"{self.ws_url}/ws?ticket={ticket}", open_timeout=10, ping_interval=None
        ) as ws:
            self._ws = ws
            ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if ready.get("type") != "ready":
                raise ValueError(f"expected ready, got {ready!r}")
            self._last_frame = time.monotonic()
            self._expires_at = float(ready["expires_at"])
            self.username = ready["user"]
            for room in self.rooms.values():
                await ws.send(json.dumps(room._join_frame()))
            for cmid, (room_name, body, _) in list(self.outbox.items()):
                await ws.send(json.dumps(_send(room_name, body, cmid)))
            self.state = "live"
            self._live.set()
            keepers = [
                asyncio.ensure_future(self._keep_alive(ws)),
                asyncio.ensure_future(self._keep_token(ws)),
            ]
            try:
                async for text in ws:
                    self._last_frame = time.monotonic()
                    self._on_frame(json.loads(text))
            finally:
                for task in keepers:
                    task.cancel()
            await ws.wait_closed()
            raise ConnectionClosed(ws.protocol.close_rcvd, ws.protocol.close_sent)

    async def _keep_alive(self, ws: Any) -> None:
        """An app-level ping with a deadline: a phone that slept, or a NAT that forgot us,
        shows up as silence, and the socket is dropped so the loop reconnects."""
        while True:
            await asyncio.sleep(self.ping_interval)
            await ws.send('{"type":"ping"}')
            await asyncio.sleep(self.ping_timeout)
            if time.monotonic() - self._last_frame > self.ping_timeout:
                await ws.close(4000, "ping timeout")
                return

    async def _keep_token(self, ws: Any) -> None:
        """Refresh the credential in-band before it expires; the server's new `ready`
        moves `_expires_at`, and with it the next refresh."""
        while True:
            due = self._expires_at - self.refresh_margin
            await asyncio.sleep(max(due - time.time(), 1.0))
            if self._expires_at - self.refresh_margin > time.time():
                continue  # a `ready` arrived meanwhile and moved the deadline
            token = await self.get_token()
            await ws.send(json.dumps({"type": "auth", "token": token}))
            await asyncio.sleep(self.refresh_margin / 2)  # give the `ready` time to arrive

    def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        room = self.rooms.get(frame.get("room", ""))
        request = self._requests.get(str(frame.get("ref")))
        if request is not None and kind in ("ack", "error") and not request.done():
            if kind == "ack":
                request.set_result(frame)
            else:
                request.set_exception(SwitchboardError(frame["code"], frame.get("detail", "")))
        elif kind == "ready":
            self._expires_at = float(frame["expires_at"])
            self.username = frame["user"]
        elif kind == "message" and room is not None:
            room._on_message(frame)
        elif kind in ("signal", "read") and room is not None:
            room._on_event(frame)
        elif kind == "ack":
            entry = self.outbox.pop(frame.get("client_msg_id") or "", None)
            if entry is not None and not entry[2].done():
                entry[2].set_result(frame)
        elif kind == "joined" and room is not None:
            room._on_joined(frame)
        elif kind == "presence" and room is not None:
            room._on_presence(frame)
        elif kind == "error":
            self._on_error(frame)

    def _on_error(self, frame: dict[str, Any]) -> None:
        error = SwitchboardError(frame.get("code", "error"), frame.get("detail", ""))
        ref = str(frame.get("ref"))
        entry = self.outbox.get(ref)
        joining = next((r for r in self.rooms.values() if r.join_ref == ref), None)
        if joining is not None and not joining.joined.is_set():
            joining.join_error = error
            joining.joined.set()
            return
        if entry is None:
            self.errors.put_nowait(error)
            return
        if error.code in RETRYABLE:  # resend later, same client_msg_id
            delay = float(frame.get("retry_after") or 1.0)
            asyncio.get_running_loop().call_later(delay, self._resend, str(frame["ref"]))
            return
        self.outbox.pop(str(frame["ref"]))
        if not entry[2].done():
            entry[2].set_exception(error)

    def _resend(self, cmid: str) -> None:
        entry = self.outbox.get(cmid)
        if entry is not None and self._live.is_set():
            task = asyncio.ensure_future(self._send_frame(_send(entry[0], entry[1], cmid)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _fail_outbox(self, exc: Exception) -> None:
        for _, _, future in self.outbox.values():
            if not future.done():
                future.set_exception(exc)
        self.outbox.clear()


def _send(room: str, body: str, cmid: str) -> dict[str, Any]:
    return {"type": "send", "room": room, "body": body, "client_msg_id": cmid, "ref": cmid}
