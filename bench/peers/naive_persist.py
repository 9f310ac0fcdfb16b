"""The usual FastAPI chat example with a database: each message is stored with an ORM
`session.add` + `commit`, then broadcast to the room. Run: uvicorn bench.peers.naive_persist:app"""

import os
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from sqlalchemy import DateTime, String, Text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.db import to_asyncpg_url

engine = create_async_engine(to_asyncpg_url(os.environ["DATABASE_URL"]))
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class ChatMessage(Base):
    __tablename__ = "bench_naive_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    room: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
rooms: defaultdict[str, list[WebSocket]] = defaultdict(list)


@app.websocket("/ws/{room}")
async def websocket_endpoint(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    rooms[room].append(websocket)
    try:
        while True:
            data = await websocket.receive_text()
            async with SessionLocal() as session:
                session.add(ChatMessage(room=room, body=data, created_at=datetime.now(UTC)))
                await session.commit()
            for connection in rooms[room]:
                await connection.send_text(data)
    except WebSocketDisconnect:
        rooms[room].remove(websocket)
