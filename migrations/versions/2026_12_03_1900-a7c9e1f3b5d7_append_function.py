"""switchboard_append(...): a batch of messages stored in one call, one round trip.

The persister's batch used to cost three round trips, each waiting for the busy event loop
to read its answer: BEGIN with the tenant stamp and the room locks, the append statement,
COMMIT. Called on its own, this function is its own transaction (committed when the call
returns), so a batch costs one. For each tenant in the batch, in id order, it:
- stamps the tenant with set_config(..., true) (row-level security applies, SECURITY
  INVOKER),
- locks the tenant's rooms FOR UPDATE in id order (concurrent writers never deadlock),
- finds the messages already stored under the same (sender, client_msg_id): a retry
  returns the original (only when a message carries a key; that query is planned on each
  call, because a plan kept from when the table was small would read all of it),
- advances each room's last_seq, inserts the rest with the next seqs in batch order, moves
  each sender's read position to their message and writes the `message.created` outbox
  rows for the tenant's endpoints (none, in one index probe, for a tenant without one),
  for the kinds the caller names readable (api/repository/rows.py, READABLE_KINDS).

One row comes back per input message, by its 1-based position `ord`: `created` with its
new `seq`, or the stored original (`created` false, with its room and fields).
`wants_unseen` says whether the tenant has a `message.unseen` endpoint (the caller adds
those rows, which need the broker's presence, before its own COMMIT). A message whose room
is not its tenant's (deleted since it was sent) fails the whole call with
`foreign_key_violation`, as the foreign key would.

PL/pgSQL keeps each statement's plan across calls, planned for arrays of a guessed size:
a first version that joined the batch's arrays to `room` and to each other went quadratic
(100 x 100 rows scanned per join). The statements here find a room's position with
array_position and touch tables only through index lookups.

The SQL lives here, not in api/: a change to how a batch is stored is a new migration
that replaces this function (CREATE OR REPLACE).

Revision ID: a7c9e1f3b5d7
Revises: f6a8c0e2b4d6
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a7c9e1f3b5d7"
down_revision: str | None = "f6a8c0e2b4d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "switchboard_append(bigint[], bigint[], bigint[], text[], text[], text[], text[], "
    "timestamptz, text[])"
)
MESSAGE_JSON = "switchboard_message_json(text, bigint, text, text, timestamptz, text, text)"


def upgrade() -> None:
    # The contract's message object for the webhook outbox (the fields of
    # api.protocol.server.message_dict): `message.created` here, `message.unseen` in
    # api/repository/message_store.py. One SQL expression, inlined by the planner.
    op.execute("""
        CREATE FUNCTION switchboard_message_json(
            p_room text, p_seq bigint, p_sender text, p_body text, p_ts timestamptz,
            p_kind text, p_client_msg_id text)
        RETURNS jsonb LANGUAGE sql STABLE AS $$
          SELECT jsonb_strip_nulls(jsonb_build_object(
            'room', p_room, 'seq', p_seq, 'sender', p_sender, 'body', p_body,
            'ts', to_char(p_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'kind', p_kind, 'client_msg_id', p_client_msg_id))
        $$
    """)
    op.execute(f"GRANT EXECUTE ON FUNCTION {MESSAGE_JSON} TO switchboard_app")
    op.execute("""
        CREATE FUNCTION switchboard_append(
            p_tenant_ids bigint[], p_room_ids bigint[], p_sender_ids bigint[],
            p_senders text[], p_bodies text[], p_kinds text[], p_client_msg_ids text[],
            p_ts timestamptz, p_readable_kinds text[])
        RETURNS TABLE (ord bigint, created boolean, room_id bigint, room_name text,
                       seq bigint, sender text, body text, kind text,
                       created_at timestamptz, client_msg_id text, target bigint,
                       edited_at timestamptz, deleted_at timestamptz, wants_unseen boolean)
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        #variable_conflict use_column
        DECLARE
          t bigint;
          unseen boolean;
          locked bigint[];     -- the tenant's rooms in this batch, in id order
          bases bigint[];      -- their last_seq when locked
          counted bigint[];    -- the rooms that get new messages
          counts bigint[];     -- how many each
          retried bigint[];    -- positions of messages stored before (retries)
          prior record;
        BEGIN
          -- Every statement below avoids joins on the batch's arrays: in a plan kept
          -- across calls the planner guesses their size, and a wrong guess made joins
          -- quadratic. Rooms are found by array_position, rows by index lookups.
          FOR t IN SELECT DISTINCT x FROM unnest(p_tenant_ids) AS x ORDER BY x LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}'),
                   coalesce(array_agg(r.last_seq ORDER BY r.id), '{}')
              INTO locked, bases
              FROM (SELECT id, last_seq FROM room
                    WHERE tenant_id = t AND id = ANY (p_room_ids)
                    ORDER BY id FOR UPDATE) AS r;
            IF EXISTS (SELECT 1 FROM unnest(p_tenant_ids, p_room_ids) AS u(tid, rid)
                       WHERE u.tid = t AND NOT (u.rid = ANY (locked))) THEN
              -- a room that is not the tenant's (or was deleted since): store none
              RAISE EXCEPTION 'a message''s room does not exist in its tenant'
                USING ERRCODE = 'foreign_key_violation';
            END IF;
            unseen := EXISTS (SELECT 1 FROM webhook_endpoint w
                              WHERE w.tenant_id = t AND 'message.unseen' = ANY (w.events));
            -- Retries: messages already stored under the same (sender, client_msg_id).
            -- Planned on each call (EXECUTE): the table grows, and a plan kept from when
            -- it was small would read all of it. Skipped when no message carries a key.
            retried := '{}';
            IF EXISTS (SELECT 1 FROM unnest(p_tenant_ids, p_client_msg_ids) AS k(tid, cmid)
                       WHERE k.tid = t AND k.cmid IS NOT NULL) THEN
              FOR prior IN EXECUTE
                'SELECT m.ord, x.room_id, r.name::text AS room_name, x.seq,
                        x.sender::text AS sender, x.body, x.kind::text AS kind, x.created_at,
                        x.client_msg_id::text AS client_msg_id, x.target, x.edited_at,
                        x.deleted_at
                 FROM unnest($1, $2, $3) WITH ORDINALITY AS m(tid, sender_id, cmid, ord)
                 JOIN message x ON x.tenant_id = $4 AND x.sender_id = m.sender_id
                               AND x.client_msg_id = m.cmid
                 JOIN room r ON r.tenant_id = $4 AND r.id = x.room_id
                 WHERE m.tid = $4 AND m.cmid IS NOT NULL'
                USING p_tenant_ids, p_sender_ids, p_client_msg_ids, t
              LOOP
                retried := retried || prior.ord;
                ord := prior.ord; created := false; room_id := prior.room_id;
                room_name := prior.room_name; seq := prior.seq; sender := prior.sender;
                body := prior.body; kind := prior.kind; created_at := prior.created_at;
                client_msg_id := prior.client_msg_id; target := prior.target;
                edited_at := prior.edited_at; deleted_at := prior.deleted_at;
                wants_unseen := unseen;
                RETURN NEXT;
              END LOOP;
            END IF;
            SELECT coalesce(array_agg(c.rid), '{}'), coalesce(array_agg(c.k), '{}')
              INTO counted, counts
              FROM (SELECT u.rid, count(*) AS k
                    FROM unnest(p_tenant_ids, p_room_ids) WITH ORDINALITY AS u(tid, rid, ord)
                    WHERE u.tid = t AND u.ord <> ALL (retried)
                    GROUP BY u.rid) AS c;
            UPDATE room SET last_seq = room.last_seq + counts[array_position(counted, room.id)]
              WHERE room.tenant_id = t AND room.id = ANY (counted);
            RETURN QUERY
            WITH numbered AS (
              -- the next seqs of each room, in batch order, above its last_seq when locked
              SELECT m.room_id, m.sender_id, m.sender, m.body, m.kind, m.client_msg_id, m.ord,
                     bases[array_position(locked, m.room_id)]
                       + row_number() OVER (PARTITION BY m.room_id ORDER BY m.ord) AS seq
              FROM unnest(p_tenant_ids, p_room_ids, p_sender_ids, p_senders, p_bodies,
                          p_kinds, p_client_msg_ids) WITH ORDINALITY
                AS m(tenant_id, room_id, sender_id, sender, body, kind, client_msg_id, ord)
              WHERE m.tenant_id = t AND m.ord <> ALL (retried)
            ), inserted AS (
              INSERT INTO message (tenant_id, room_id, seq, sender_id, sender, body, kind,
                                   client_msg_id, created_at)
              SELECT t, n.room_id, n.seq, n.sender_id, n.sender, n.body, n.kind,
                     n.client_msg_id, p_ts
              FROM numbered n
              RETURNING room_id, sender_id, seq, sender, body, kind, client_msg_id
            ), sender_read AS (
              -- sending moves the sender's read position to its message (only forward)
              INSERT INTO read_position (tenant_id, room_id, user_id, last_read)
              SELECT t, i.room_id, i.sender_id, max(i.seq) FROM inserted i
              WHERE i.sender_id IS NOT NULL
              GROUP BY i.room_id, i.sender_id
              ON CONFLICT (tenant_id, room_id, user_id) DO UPDATE
              SET last_read = GREATEST(read_position.last_read, EXCLUDED.last_read),
                  updated_at = now()
            ), created_events AS (
              -- the webhook outbox, in the same transaction: rows only for an endpoint
              INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, type, data,
                                            created_at)
              SELECT 'evt_m' || i.room_id || '_' || i.seq, e.id, t, 'message.created',
                     switchboard_message_json(
                       (SELECT r.name FROM room r WHERE r.tenant_id = t AND r.id = i.room_id),
                       i.seq, i.sender, i.body, p_ts, i.kind, i.client_msg_id),
                     p_ts
              FROM webhook_endpoint e CROSS JOIN inserted i
              WHERE e.tenant_id = t AND 'message.created' = ANY (e.events)
                AND i.kind = ANY (p_readable_kinds)
            )
            SELECT n.ord, true, n.room_id, NULL::text, n.seq, NULL::text, NULL::text,
                   NULL::text, NULL::timestamptz, NULL::text, NULL::bigint,
                   NULL::timestamptz, NULL::timestamptz, unseen
            FROM numbered n;
          END LOOP;
        END $$
    """)
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO switchboard_app")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute(f"DROP FUNCTION {MESSAGE_JSON}")
