"""`/rooms/*`: create, list, get, members, history, publish, presence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CHECKED_INPUT, CurrentPrincipal, Rooms
from api.errors import ValidationFailed, error_responses
from api.protocol import MAX_SEQ
from api.protocol import server as frames
from api.repository import RoomRow
from api.schemas import (
    HistoryOut,
    MemberIn,
    MessageOut,
    PostMessageIn,
    PresenceOut,
    PresenceUser,
    RoomIn,
    RoomOut,
)

router = APIRouter(
    prefix="/rooms",
    tags=["rooms"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 409, 422, 429, 503),
)
SeqQuery = Annotated[int | None, Query(ge=0, le=MAX_SEQ)]


def _room_out(room: RoomRow) -> RoomOut:
    return RoomOut(
        name=room.name, private=room.private, created_at=room.created_at, last_seq=room.last_seq
    )


@router.get("", response_model=list[RoomOut])
async def list_rooms(principal: CurrentPrincipal, rooms: Rooms) -> list[RoomOut]:
    return [_room_out(r) for r in await rooms.list_visible(principal)]


@router.post("", response_model=RoomOut, status_code=201)
async def create_room(body: RoomIn, principal: CurrentPrincipal, rooms: Rooms) -> RoomOut:
    return _room_out(await rooms.create(principal, body.name, body.private))


@router.get("/{room}", response_model=RoomOut)
async def get_room(room: str, principal: CurrentPrincipal, rooms: Rooms) -> RoomOut:
    return _room_out(await rooms.get(principal, room))


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
    return HistoryOut(
        messages=[MessageOut(**frames.message_dict(m)) for m in page.messages],
        has_more=page.has_more,
    )


@router.post("/{room}/messages", response_model=MessageOut, status_code=201)
async def post_message(
    room: str, body: PostMessageIn, principal: CurrentPrincipal, rooms: Rooms, response: Response
) -> MessageOut:
    target = await rooms.get(principal, room)
    stored, created = await rooms.post(principal, target, body.body, body.client_msg_id)
    if not created:
        response.status_code = 200
    return MessageOut(**frames.message_dict(stored.message))


@router.get("/{room}/presence", response_model=PresenceOut)
async def presence(room: str, principal: CurrentPrincipal, rooms: Rooms) -> PresenceOut:
    users = await rooms.presence(principal, room)
    return PresenceOut(
        room=room,
        users=[PresenceUser(username=u, connections=n) for u, n in sorted(users.items())],
    )
