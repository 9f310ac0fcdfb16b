"""`/rooms/*`: create, list, get, members, history, publish, presence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import CHECKED_INPUT, CurrentPrincipal, PublisherPrincipal, Rooms, ServicesDep
from api.errors import ValidationFailed, error_responses
from api.protocol import MAX_SEQ
from api.protocol import server as frames
from api.repository import MessageRow, ReadState, RoomForUser, RoomRow
from api.schemas import (
    EditIn,
    HistoryOut,
    MemberIn,
    MessageOut,
    PostMessageIn,
    PresenceOut,
    PresenceUser,
    ReadIn,
    ReadOut,
    RoomIn,
    RoomOut,
    RoomPatchIn,
)

router = APIRouter(
    prefix="/rooms",
    tags=["rooms"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 409, 422, 429, 503),
)
SeqQuery = Annotated[int | None, Query(ge=0, le=MAX_SEQ)]
SeqPath = Annotated[int, Path(ge=1, le=MAX_SEQ)]


def room_out(seen: RoomForUser) -> RoomOut:
    """A room as its caller sees it: the same shape in every listing."""
    room = seen.room
    return RoomOut.model_validate(
        {
            "name": room.name,
            "private": room.private,
            "created_at": room.created_at,
            "last_seq": room.last_seq,
            "first_seq": room.first_seq,
            "retention_days": room.retention_days,
            "last_read": seen.read.last_read,
            "unread": seen.read.unread,
            "dm": {"with": seen.dm_with} if seen.dm_with is not None else None,
        }
    )


def _new_room_out(room: RoomRow) -> RoomOut:
    return room_out(RoomForUser(room, ReadState(0, 0), None))


def _message_out(message: MessageRow) -> MessageOut:
    return MessageOut(**frames.message_dict(message))


@router.get("", response_model=list[RoomOut])
async def list_rooms(principal: CurrentPrincipal, rooms: Rooms) -> list[RoomOut]:
    return [room_out(r) for r in await rooms.list_visible(principal)]


@router.post("", response_model=RoomOut, status_code=201)
async def create_room(body: RoomIn, principal: CurrentPrincipal, rooms: Rooms) -> RoomOut:
    return _new_room_out(await rooms.create(principal, body.name, body.private))


@router.get("/{room}", response_model=RoomOut)
async def get_room(room: str, principal: CurrentPrincipal, rooms: Rooms) -> RoomOut:
    return room_out(await rooms.describe(principal, room))


@router.patch("/{room}", response_model=RoomOut)
async def patch_room(
    room: str, body: RoomPatchIn, principal: CurrentPrincipal, services: ServicesDep
) -> RoomOut:
    """A tenant admin sets the room's retention (days; 0 keeps forever; null: the default)."""
    await services.retention.set_room_retention(principal, room, body.retention_days)
    return room_out(await services.rooms.describe(principal, room))


@router.put("/{room}/read", response_model=ReadOut)
async def mark_read(
    room: str, body: ReadIn, principal: CurrentPrincipal, services: ServicesDep
) -> ReadOut:
    target = await services.rooms.get(principal, room)
    last_read, _ = await services.reads.advance(principal, target, body.seq)
    return ReadOut(room=target.name, last_read=last_read)


@router.post("/{room}/members", status_code=204)
async def add_member(
    room: str, body: MemberIn, principal: CurrentPrincipal, rooms: Rooms
) -> Response:
    await rooms.add_member(principal, room, body.username)
    return Response(status_code=204)


@router.delete("/{room}/members/{username}", status_code=204)
async def remove_member(
    room: str, username: str, principal: CurrentPrincipal, rooms: Rooms
) -> Response:
    await rooms.remove_member(principal, room, username)
    return Response(status_code=204)


@router.get("/{room}/messages", response_model=HistoryOut)
async def history(
    room: str,
    principal: CurrentPrincipal,
    rooms: Rooms,
    after: SeqQuery = None,
    before: SeqQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> HistoryOut:
    if after is not None and before is not None and before <= after + 1:
        raise ValidationFailed("`before` must be greater than `after` + 1")
    page = await rooms.history(principal, room, after=after, before=before, limit=limit)
    return HistoryOut(messages=[_message_out(m) for m in page.messages], has_more=page.has_more)


@router.post("/{room}/messages", response_model=MessageOut, status_code=201)
async def post_message(
    room: str, body: PostMessageIn, principal: PublisherPrincipal, rooms: Rooms, response: Response
) -> MessageOut:
    """A person, or an app's backend with a `publish` API key (the sender is `@<key name>`)."""
    target = await rooms.get(principal, room)
    stored, created = await rooms.post(principal, target, body.body, body.client_msg_id)
    if not created:
        response.status_code = 200
    return _message_out(stored.message)


@router.patch("/{room}/messages/{seq}", response_model=MessageOut)
async def edit_message(
    room: str, seq: SeqPath, body: EditIn, principal: CurrentPrincipal, services: ServicesDep
) -> MessageOut:
    """Stored as the room's next entry (kind `edit`); returns that entry."""
    target = await services.rooms.get(principal, room)
    return _message_out(await services.amend.edit(principal, target, seq, body.body))


@router.delete("/{room}/messages/{seq}", response_model=MessageOut)
async def delete_message(
    room: str, seq: SeqPath, principal: CurrentPrincipal, services: ServicesDep
) -> MessageOut:
    """Stored as the room's next entry (kind `delete`); returns that entry. The deleted text
    is erased from the database."""
    target = await services.rooms.get(principal, room)
    return _message_out(await services.amend.delete(principal, target, seq))


@router.get("/{room}/presence", response_model=PresenceOut)
async def presence(room: str, principal: CurrentPrincipal, rooms: Rooms) -> PresenceOut:
    users = await rooms.presence(principal, room)
    return PresenceOut(
        room=room,
        users=[PresenceUser(username=u, connections=n) for u, n in sorted(users.items())],
    )
