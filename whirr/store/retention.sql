-- Queries of retention on SQLite (whirr/store/retention_sqlite.py). Each block is named
-- by its "-- name:" line; whirr.store.sql loads them once.

-- name: liveness_candidates
-- Liveness events recorded before :cutoff (µs) at positions in (:after, :below), in
-- position order: a walk along the primary key, never a scan of what it already passed.
SELECT position, recorded_us, stream, type, data FROM events
WHERE position > :after AND position < :below
  AND type IN ('job.heartbeat', 'worker.seen')
  AND recorded_us < :cutoff
ORDER BY position
LIMIT :limit;

-- name: remove_archived
-- The rows of a segment written and fsynced: only liveness events, by position (a row
-- already gone, after a crash, is simply not there).
DELETE FROM events
WHERE position IN (SELECT value FROM json_each(:positions))
  AND type IN ('job.heartbeat', 'worker.seen');

-- name: live_counts
SELECT type IN ('job.heartbeat', 'worker.seen') AS liveness, COUNT(*) FROM events GROUP BY 1;
