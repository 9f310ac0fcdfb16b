"""Idempotency keys: claimed before the work, answered after it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text, update

from api.repository.base import Repo, idem_t
from api.repository.rows import ClaimState, IdempotencyClaim

# An answered key is replayed for 24 hours (the usual promise of Idempotency-Key APIs); a
# claim that was never answered (its request died) is taken over after 60 seconds, longer
# than any request may run.
ANSWER_LIFETIME = "24 hours"
ABANDONED_CLAIM_AFTER = "60 seconds"

_CLAIM_KEY = text(f"""
    INSERT INTO idempotency_key (tenant_id, scope, key, response, created_at)
    VALUES (:t, :s, :k, NULL, now())
    ON CONFLICT (tenant_id, scope, key) DO UPDATE SET response = NULL, created_at = now()
      WHERE idempotency_key.created_at < now() - interval '{ANSWER_LIFETIME}'
         OR (idempotency_key.response IS NULL
             AND idempotency_key.created_at < now() - interval '{ABANDONED_CLAIM_AFTER}')
    RETURNING 1
""")


class IdempotencyRepo(Repo):
    def _key(self, scope: str, key: str) -> Any:
        return (
            (idem_t.c.tenant_id == self.tenant_id)
            & (idem_t.c.scope == scope)
            & (idem_t.c.key == key)
        )

    async def claim(self, scope: str, key: str) -> IdempotencyClaim:
        params = {"t": self.tenant_id, "s": scope, "k": key}
        if (await self.conn.execute(_CLAIM_KEY, params)).first() is not None:
            return IdempotencyClaim(ClaimState.CLAIMED)
        response = (
            await self.conn.execute(select(idem_t.c.response).where(self._key(scope, key)))
        ).scalar_one_or_none()
        if response is None:
            return IdempotencyClaim(ClaimState.BUSY)
        return IdempotencyClaim(ClaimState.DONE, response)

    async def answer(self, scope: str, key: str, response: dict[str, Any]) -> None:
        await self.conn.execute(
            update(idem_t).where(self._key(scope, key)).values(response=response)
        )

    async def release(self, scope: str, key: str) -> None:
        """Give up an unanswered claim (the work failed), so a retry may do it."""
        await self.conn.execute(
            delete(idem_t).where(self._key(scope, key), idem_t.c.response.is_(None))
        )
