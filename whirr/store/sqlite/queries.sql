-- Queries of the SQLite backend. Each block is named by its "-- name:" line;
-- whirr.store.sql loads them once. Python never builds SQL.

-- name: schema_v1
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY,
    stream      TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    recorded_us INTEGER NOT NULL,
    data        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, position);
CREATE TABLE IF NOT EXISTS jobs (
    id            INTEGER PRIMARY KEY,
    status        TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    lease_expires REAL,
    data          BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, priority DESC, id);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires) WHERE lease_expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    data       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_newest ON runs (started_us DESC, version DESC);
CREATE TABLE IF NOT EXISTS workers (
    id   TEXT PRIMARY KEY,
    data BLOB NOT NULL
);

-- name: schema_v2
-- Scheduling: jobs waiting on a dependency (blocked) or a retry backoff (not_before) stay
-- out of the claim query, so they never fill the claim window; the queue's pause state.
ALTER TABLE jobs ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN not_before REAL;
DROP INDEX IF EXISTS jobs_claim;
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (status, blocked, priority DESC, id);
CREATE TABLE IF NOT EXISTS queue_state (
    id   TEXT PRIMARY KEY,
    data BLOB NOT NULL
);

-- name: schema_v3
-- Reads that do not grow with history (issue 19). job_counts: the jobs per status column,
-- kept by every job write (upsert_job), so that a status count reads a handful of rows
-- instead of counting the jobs. run_tags: a run's tags, one row each, kept by every run
-- write (upsert_run), so that a tag filter is an index lookup instead of reading every
-- run's JSON. heard_us: when a worker was last heard from (registered, seen, a job's
-- heartbeat, stopped), so that listings leave out the ones long gone with an index range.
CREATE TABLE IF NOT EXISTS job_counts (
    status TEXT    PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO job_counts (status, n) SELECT status, COUNT(*) FROM jobs GROUP BY status;
CREATE TABLE IF NOT EXISTS run_tags (
    tag    TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (tag, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_tags_run ON run_tags (run_id);
INSERT OR IGNORE INTO run_tags (tag, run_id)
SELECT t.value, r.id FROM runs r, json_each(CAST(r.data AS TEXT), '$.tags') t;
ALTER TABLE workers ADD COLUMN heard_us INTEGER NOT NULL DEFAULT 0;
UPDATE workers SET heard_us = CAST(
    (julianday(json_extract(CAST(data AS TEXT), '$.heartbeat_at')) - 2440587.5)
    * 86400000000 AS INTEGER);
CREATE INDEX IF NOT EXISTS workers_heard ON workers (heard_us);

-- name: drop_projections
DELETE FROM jobs;
DELETE FROM runs;
DELETE FROM workers;
DELETE FROM queue_state;
DELETE FROM job_counts;
DELETE FROM run_tags;

-- name: head
SELECT COALESCE(MAX(position), 0) FROM events;

-- name: insert_event
INSERT INTO events (stream, type, recorded_us, data) VALUES (?, ?, ?, ?);

-- name: read_events
SELECT position, recorded_us, stream, data FROM events
WHERE position > :after
  AND (:stream IS NULL OR stream = :stream)
  AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
ORDER BY position
LIMIT :limit;

-- name: upsert_job
-- The job's old status column counted one less and its new one one more (job_counts).
UPDATE job_counts SET n = n - 1 WHERE status = (SELECT status FROM jobs WHERE id = :id);
INSERT OR REPLACE INTO jobs (id, status, priority, lease_expires, blocked, not_before, data)
VALUES (:id, :status, :priority, :lease_expires, :blocked, :not_before, :data);
INSERT INTO job_counts (status, n) VALUES (:status, 1)
ON CONFLICT (status) DO UPDATE SET n = n + 1;

-- name: upsert_queue_state
INSERT OR REPLACE INTO queue_state (id, data) VALUES (?, ?);

-- name: get_queue_state
SELECT data FROM queue_state WHERE id = ?;

-- name: upsert_run
-- run_tags follows the run's tags (:tags, a JSON list): the rows of tags it lost go.
DELETE FROM run_tags
WHERE run_id = :id AND tag NOT IN (SELECT value FROM json_each(:tags));
INSERT OR IGNORE INTO run_tags (tag, run_id) SELECT value, :id FROM json_each(:tags);
INSERT OR REPLACE INTO runs (id, status, started_us, version, data)
VALUES (:id, :status, :started_us, :version, :data);

-- name: upsert_worker
INSERT OR REPLACE INTO workers (id, heard_us, data) VALUES (?, ?, ?);

-- name: get_job
SELECT data FROM jobs WHERE id = ?;

-- name: jobs_all
-- A job ``whirr clean`` dropped has the status column 'cleaned' (its view keeps its
-- outcome): it is left out of every listing and count, and still read by id.
SELECT data FROM jobs WHERE status <> 'cleaned' ORDER BY id DESC LIMIT :limit;

-- name: jobs_by_status
SELECT data FROM jobs WHERE status IN (SELECT value FROM json_each(:statuses))
ORDER BY id DESC LIMIT :limit;

-- name: claimable_jobs
SELECT data FROM jobs
WHERE status = 'queued' AND blocked = 0
  AND (:now IS NULL OR not_before IS NULL OR not_before <= :now)
ORDER BY priority DESC, id
LIMIT :limit;

-- name: expired_leases
SELECT data FROM jobs WHERE lease_expires IS NOT NULL AND lease_expires < ? AND status = 'running';

-- name: job_counts
-- From the counts view (a row per status ever seen), not by counting the jobs.
SELECT status, n FROM job_counts WHERE n > 0 AND status <> 'cleaned';

-- name: job_counts_counted
-- What job_counts must always equal (tests compare them).
SELECT status, COUNT(*) FROM jobs WHERE status <> 'cleaned' GROUP BY status;

-- name: max_job_id
-- New jobs are numbered above every job view and above the queue view's job_id_floor:
-- the ids of job streams whose events replay skipped (they do not decode), and an
-- earlier history's (project.created's job_id_floor, whirr init --force-new-history),
-- so that no job takes an id, or a run directory, the log already gave out. The first
-- event is read too, for a log whose queue view predates job_id_floor (until a rebuild).
-- CAST: SQLite reads a BLOB as JSONB.
SELECT MAX(
    COALESCE((SELECT MAX(id) FROM jobs), 0),
    COALESCE((SELECT json_extract(CAST(data AS TEXT), '$.job_id_floor') FROM queue_state
              WHERE id = 'queue'), 0),
    COALESCE((SELECT json_extract(CAST(data AS TEXT), '$.job_id_floor') FROM events
              WHERE position = 1 AND type = 'project.created'), 0)
);

-- name: get_run
-- A deleted run's view stays as a row with status 'deleted' (a tombstone) that no read
-- returns: the run is gone from every view, and a rebuild agrees.
SELECT data FROM runs WHERE id = ? AND status <> 'deleted';

-- name: get_run_view
-- The projection's own read of a run's row, the tombstone included: it stays a tombstone
-- whatever comes after (a deleted run's id is never started again).
SELECT data FROM runs WHERE id = ?;

-- name: runs
-- Without a tag (runs_tagged filters by one).
SELECT data FROM runs
WHERE status <> 'deleted'
  AND (:status IS NULL OR status = :status)
  AND (:archived IS NULL
       OR COALESCE(json_extract(CAST(data AS TEXT), '$.archived'), 0) = :archived)
ORDER BY started_us DESC, version DESC
LIMIT :limit;

-- name: runs_page
-- One page of the runs table, filtered and sorted here (whirr/store/runs_page.py says the
-- order: missing values last, numbers before text, ties newest first); the window count
-- is how many runs match in all. :words is a JSON array of lowercased words that the id,
-- name, tags and status must all hold. Ids only: the sort holds no run's whole view, and
-- runs_by_ids reads the page's.
WITH found AS (
  SELECT started_us, id,
    CASE :sort
      WHEN 'started_at' THEN started_us
      -- In whole microseconds, as exact as the views' times ("...T12:00:00.123456Z").
      WHEN 'duration' THEN (
        SELECT CAST(strftime('%s', substr(f, 1, 19)) AS INTEGER) * 1000000
               + CASE WHEN substr(f, 20, 1) = '.'
                      THEN CAST(substr(rtrim(substr(f, 21), 'Z') || '000000', 1, 6) AS INTEGER)
                      ELSE 0 END
               - started_us
        FROM (SELECT json_extract(j, '$.finished_at') AS f) WHERE f IS NOT NULL)
      WHEN 'tags' THEN (SELECT group_concat(value, ',') FROM json_each(j, '$.tags'))
      ELSE json_extract(j, :path)
    END AS v
  FROM (SELECT started_us, id, status, CAST(data AS TEXT) AS j FROM runs) AS r
  WHERE status <> 'deleted'
    AND (:status IS NULL OR status = :status)
    AND (:tag IS NULL OR EXISTS (SELECT 1 FROM json_each(j, '$.tags') WHERE value = :tag))
    -- Not archived, quickly: a view (msgspec's compact JSON) without the text
    -- "archived":true anywhere is not archived, and reading its JSON is what costs here.
    AND (:archived IS NULL
         OR (:archived = 0 AND instr(j, '"archived":true') = 0)
         OR COALESCE(json_extract(j, '$.archived'), 0) = :archived)
    AND NOT EXISTS (
      SELECT 1 FROM json_each(:words) AS w
      -- r.id, not id: json_each has a column of that name.
      WHERE instr(lower(r.id || ' ' || COALESCE(json_extract(j, '$.name'), '') || ' '
                        || COALESCE((SELECT group_concat(t.value, ' ')
                                     FROM json_each(j, '$.tags') AS t), '')
                        || ' ' || r.status), w.value) = 0)
), flagged AS (
  SELECT started_us, id, v, v IS NULL OR v = '' AS missing FROM found
), keyed AS (
  SELECT started_us, id, missing,
    NOT missing AND typeof(v) = 'text' AS is_text,
    CASE WHEN missing THEN NULL WHEN typeof(v) = 'text' THEN lower(v) ELSE v END AS k
  FROM flagged
)
SELECT id, count(*) OVER () FROM keyed
ORDER BY missing, is_text,
  CASE WHEN :descending THEN NULL ELSE k END ASC,
  CASE WHEN :descending THEN k END DESC,
  started_us DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: runs_tagged
-- The runs query for one tag, led by run_tags: as fast for a tag no run has as for a
-- tag few have, whatever the number of runs (the plan is checked in a test).
SELECT r.data FROM run_tags t JOIN runs r ON r.id = t.run_id
WHERE t.tag = :tag
  AND r.status <> 'deleted'
  AND (:status IS NULL OR r.status = :status)
  AND (:archived IS NULL
       OR COALESCE(json_extract(CAST(r.data AS TEXT), '$.archived'), 0) = :archived)
ORDER BY r.started_us DESC, r.version DESC
LIMIT :limit;

-- name: runs_page_newest
-- runs_page's most asked page (newest first, no tag or words), read along runs_newest:
-- only the rows up to the page's end are looked at.
SELECT id FROM runs
WHERE status <> 'deleted'
  AND (:status IS NULL OR status = :status)
  AND (:archived IS NULL
       OR (:archived = 0 AND instr(CAST(data AS TEXT), '"archived":true') = 0)
       OR COALESCE(json_extract(CAST(data AS TEXT), '$.archived'), 0) = :archived)
ORDER BY started_us DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: run_status_counts
SELECT status, COUNT(*) FROM runs
WHERE status <> 'deleted'
  AND (:archived IS NULL
       OR (:archived = 0 AND instr(CAST(data AS TEXT), '"archived":true') = 0)
       OR COALESCE(json_extract(CAST(data AS TEXT), '$.archived'), 0) = :archived)
GROUP BY status;

-- name: runs_by_ids
SELECT id, data FROM runs
WHERE id IN (SELECT value FROM json_each(:ids)) AND status <> 'deleted';

-- name: runs_by_prefix
SELECT data FROM runs WHERE id >= :prefix AND id < :prefix || char(1114111)
  AND status <> 'deleted' ORDER BY id LIMIT :limit;

-- name: get_worker
SELECT data FROM workers WHERE id = ?;

-- name: workers
-- Workers heard from at or after :since_us (0: all of them). INDEXED BY: without
-- statistics SQLite would rather walk the id index to skip the sort, reading every worker.
SELECT data FROM workers INDEXED BY workers_heard WHERE heard_us >= :since_us ORDER BY id;

-- name: event_stamp
-- What identifies the event at one position of this log (a checkpoint records it).
SELECT recorded_us, type, data FROM events WHERE position = ?;

-- name: checkpoint_stamp_create
-- A checkpoint file is a whirr database whose log is empty: its view tables hold the
-- views at the position its one stamp row names (checkpoint.py).
CREATE TABLE IF NOT EXISTS checkpoint_stamp (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    data BLOB NOT NULL
);

-- name: checkpoint_stamp_put
INSERT OR REPLACE INTO checkpoint_stamp (id, data) VALUES (1, ?);

-- name: checkpoint_stamp_clear
DELETE FROM checkpoint_stamp;

-- name: checkpoint_stamp_get
SELECT data FROM checkpoint_stamp WHERE id = 1;

-- name: attach_checkpoint
ATTACH DATABASE ? AS ck;

-- name: detach_checkpoint
DETACH DATABASE ck;

-- name: restore_projections
-- The views of the checkpoint attached as "ck", after drop_projections (one table per
-- projection: the same tables as drop_projections; a test checks both name them all).
INSERT INTO main.jobs SELECT * FROM ck.jobs;
INSERT INTO main.runs SELECT * FROM ck.runs;
INSERT INTO main.workers SELECT * FROM ck.workers;
INSERT INTO main.queue_state SELECT * FROM ck.queue_state;
INSERT INTO main.job_counts SELECT * FROM ck.job_counts;
INSERT INTO main.run_tags SELECT * FROM ck.run_tags;
