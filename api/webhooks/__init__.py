"""Webhooks: endpoints (service), the delivery worker, and the address checks (SSRF)."""

EVENT_TYPES = frozenset(
    {
        "message.created",
        "message.unseen",
        "presence.online",
        "presence.offline",
        "room.created",
        "user.disabled",
    }
)
