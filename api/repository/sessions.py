"""Sessions, WebSocket tickets and the login throttle."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.repository.base import Repo, seconds, session_t, throttle_t, ticket_t
from api.repository.rows import SessionSecrets, SessionView, TicketRedemption, session_view

# Used tickets are kept this long after expiry, then swept when new ones are made: long
# enough to answer "already used" to a replay, short enough to keep the table small.
TICKET_RETENTION_SECONDS = 3600

# The session check behind every request and socket is one SQL function (migration
# c3d5e7f9a1b2), called on the raw asyncpg connection: one round trip, no ORM.
SESSION_VIEW_SQL = "SELECT * FROM switchboard_session_view($1, $2)"


async def fetch_session_view(raw: Any, tenant_id: int, session_id: uuid.UUID) -> SessionView | None:
    """`raw` is an asyncpg connection (pooled, or the one under a SQLAlchemy transaction)."""
    row = await raw.fetchrow(SESSION_VIEW_SQL, tenant_id, session_id)
    return session_view(row) if row else None


class SessionRepo(Repo):
    async def create(
        self,
        user_id: int,
        session_id: uuid.UUID,
        refresh_hash: bytes,
        cookie_hash: bytes,
        ttl_seconds: int,
    ) -> None:
        await self.conn.execute(
            insert(session_t).values(
                id=session_id,
                tenant_id=self.tenant_id,
                user_id=user_id,
                refresh_hash=refresh_hash,
                cookie_hash=cookie_hash,
                expires_at=func.now() + seconds(ttl_seconds),
            )
        )

    async def ensure(self, user_id: int, session_id: uuid.UUID, ttl_seconds: int) -> None:
        """A session that no refresh token or cookie can use (random hashes nobody holds):
        the anchor of tokens minted for a user whose password lives elsewhere."""
        await self.conn.execute(
            pg_insert(session_t)
            .values(
                id=session_id,
                tenant_id=self.tenant_id,
                user_id=user_id,
                refresh_hash=os.urandom(32),
                cookie_hash=os.urandom(32),
                expires_at=func.now() + seconds(ttl_seconds),
            )
            .on_conflict_do_nothing()
        )

    async def view(self, session_id: uuid.UUID) -> SessionView | None:
        raw = await self.conn.get_raw_connection()
        return await fetch_session_view(raw.driver_connection, self.tenant_id, session_id)

    async def secrets_for_update(self, session_id: uuid.UUID) -> SessionSecrets | None:
        """The session's secret hashes, row-locked (refresh rotation is one at a time)."""
        row = (
            await self.conn.execute(
                select(session_t.c.refresh_hash, session_t.c.cookie_hash)
                .where(session_t.c.tenant_id == self.tenant_id, session_t.c.id == session_id)
                .with_for_update()
            )
        ).one_or_none()
        return SessionSecrets(row.refresh_hash, row.cookie_hash) if row else None

    async def rotate_refresh(
        self, session_id: uuid.UUID, new_hash: bytes, ttl_seconds: int
    ) -> None:
        await self.conn.execute(
            update(session_t)
            .where(session_t.c.tenant_id == self.tenant_id, session_t.c.id == session_id)
            .values(refresh_hash=new_hash, expires_at=func.now() + seconds(ttl_seconds))
        )

    async def revoke(self, session_id: uuid.UUID) -> None:
        await self.conn.execute(
            update(session_t)
            .where(
                session_t.c.tenant_id == self.tenant_id,
                session_t.c.id == session_id,
                session_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
        )

    async def revoke_user(self, user_id: int) -> list[uuid.UUID]:
        rows = await self.conn.execute(
            update(session_t)
            .where(
                session_t.c.tenant_id == self.tenant_id,
                session_t.c.user_id == user_id,
                session_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
            .returning(session_t.c.id)
        )
        return list(rows.scalars())


class TicketRepo(Repo):
    async def create(self, session_id: uuid.UUID, token_hash: bytes, ttl_seconds: int) -> None:
        await self.conn.execute(
            insert(ticket_t).values(
                token_hash=token_hash,
                tenant_id=self.tenant_id,
                session_id=session_id,
                expires_at=func.now() + seconds(ttl_seconds),
            )
        )
        await self.conn.execute(
            delete(ticket_t).where(
                ticket_t.c.tenant_id == self.tenant_id,
                ticket_t.c.expires_at < func.now() - seconds(TICKET_RETENTION_SECONDS),
            )
        )

    async def redeem(self, token_hash: bytes) -> TicketRedemption | None:
        """Marks the ticket used; None if it is unknown or was used before."""
        row = (
            await self.conn.execute(
                update(ticket_t)
                .where(
                    ticket_t.c.tenant_id == self.tenant_id,
                    ticket_t.c.token_hash == token_hash,
                    ticket_t.c.used_at.is_(None),
                )
                .values(used_at=func.now())
                .returning(
                    ticket_t.c.session_id, (ticket_t.c.expires_at > func.now()).label("fresh")
                )
            )
        ).one_or_none()
        return TicketRedemption(row.session_id, bool(row.fresh)) if row else None


# Count one attempt per key (a new window when the old one is over) and return the counts:
# the row lock makes concurrent attempts count one after the other.
_RESERVE = text("""
    INSERT INTO login_throttle (key, failures, window_start)
    SELECT k, 1, now() FROM unnest(CAST(:keys AS text[])) AS k
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN login_throttle.window_start + make_interval(secs => :w) < now()
                      THEN 1 ELSE login_throttle.failures + 1 END,
      window_start = CASE WHEN login_throttle.window_start + make_interval(secs => :w) < now()
                          THEN now() ELSE login_throttle.window_start END
    RETURNING key, failures,
              extract(epoch FROM window_start + make_interval(secs => :w) - now()) AS left
""")


class ThrottleRepo(Repo):
    """Failed logins, keyed by name and by address (not tenant-owned: an unknown tenant is
    throttled too)."""

    async def reserve(
        self, keys: Sequence[str], limits: Sequence[int], window_seconds: int
    ) -> float:
        """Count this attempt against every key *before* the password is checked, so that
        concurrent attempts cannot all pass a check made before any of them failed. Returns
        the seconds until the most-limited key may try again (0 when the attempt may go on)."""
        rows = await self.conn.execute(_RESERVE, {"keys": list(keys), "w": window_seconds})
        limit_of = dict(zip(keys, limits, strict=True))
        over = [float(r.left) for r in rows if r.failures > limit_of[r.key]]
        return max((max(left, 0.001) for left in over), default=0.0)

    async def release(self, key: str) -> None:
        """Give back a reserved attempt that succeeded (for a key that is not cleared)."""
        await self.conn.execute(
            update(throttle_t)
            .where(throttle_t.c.key == key)
            .values(failures=func.greatest(throttle_t.c.failures - 1, 0))
        )

    async def clear(self, key: str) -> None:
        await self.conn.execute(delete(throttle_t).where(throttle_t.c.key == key))
