-- Queries of retention on PostgreSQL (whirr/store/postgres/retention.py). Each block is
-- named by its "-- name:" line; whirr.store.sql loads them once.

-- name: liveness_candidates
-- Liveness events recorded before %(cutoff)s at positions in (%(after)s, %(below)s), in
-- position order: a walk along the primary key, never a scan of what it already passed.
SELECT position, recorded_at, stream, type, data::text FROM events
WHERE position > %(after)s AND position < %(below)s
  AND type IN ('job.heartbeat', 'worker.seen')
  AND recorded_at < %(cutoff)s
ORDER BY position
LIMIT %(limit)s;

-- name: create_archive_segments
-- The segments whose rows left this log: recorded in the transaction that deletes the
-- rows, so a replay knows which files it needs even where it cannot see the data dir.
CREATE TABLE IF NOT EXISTS archive_segments (
    name           text PRIMARY KEY,
    first_position bigint NOT NULL,
    last_position  bigint NOT NULL
);

-- name: archive_segments_exist
SELECT to_regclass('archive_segments') IS NOT NULL;

-- name: archive_segments
SELECT name, first_position, last_position FROM archive_segments ORDER BY first_position, name;

-- name: remove_archived
-- The rows of a segment written and fsynced: only liveness events, by position (a row
-- already gone, after a crash, is simply not there).
DELETE FROM events
WHERE position = ANY(%(positions)s::bigint[])
  AND type IN ('job.heartbeat', 'worker.seen');

-- name: record_segment
INSERT INTO archive_segments (name, first_position, last_position)
VALUES (%(name)s, %(first)s, %(last)s)
ON CONFLICT (name) DO NOTHING;

-- name: live_counts
SELECT type IN ('job.heartbeat', 'worker.seen') AS liveness, COUNT(*) FROM events GROUP BY 1;
