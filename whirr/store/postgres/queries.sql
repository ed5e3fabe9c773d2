-- Queries of the PostgreSQL backend. Each block is named by its "-- name:" line;
-- whirr.store.sql loads them once. Python never builds SQL: the one identifier that
-- varies (a LISTEN channel) is filled in with psycopg.sql.Identifier, and every value
-- travels as a bound parameter.

-- name: configure_session
SET TIME ZONE 'UTC';
SET idle_in_transaction_session_timeout = '60s';

-- name: current_schema
SELECT current_schema();

-- name: begin
BEGIN;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: advisory_xact_lock
SELECT pg_advisory_xact_lock(%(key)s);

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: schema_version
SELECT COALESCE(MAX(version), 0) FROM schema_version;

-- name: record_version
INSERT INTO schema_version (version) VALUES (%(version)s);

-- name: migrate_v1
-- The log: positions are assigned under the append lock (see store.py), dense from 1.
-- Event and view bodies are `json`, not `jsonb`: json keeps the encoded text exactly
-- (jsonb would turn 1e20 into an integer and -0.0 into 0), so what decodes is what was
-- appended.
CREATE TABLE events (
    position    bigint      PRIMARY KEY,
    stream      text        NOT NULL,
    type        text        NOT NULL,
    recorded_at timestamptz NOT NULL,
    data        json        NOT NULL
);
CREATE INDEX events_stream ON events (stream, position);
CREATE TABLE jobs (
    id            bigint      PRIMARY KEY,
    status        text        NOT NULL,
    priority      bigint      NOT NULL,
    lease_expires timestamptz,
    data          json        NOT NULL
);
CREATE INDEX jobs_claim ON jobs (priority DESC, id) WHERE status = 'queued';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_lease ON jobs (lease_expires) WHERE status = 'running';
-- Text keys sort by code point ("C"), like the SQLite and memory backends.
CREATE TABLE runs (
    id         text COLLATE "C" PRIMARY KEY,
    status     text        NOT NULL,
    started_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    tags       text[]      NOT NULL,
    data       json        NOT NULL
);
CREATE INDEX runs_newest ON runs (started_at DESC, version DESC);
CREATE TABLE workers (
    id   text COLLATE "C" PRIMARY KEY,
    data json NOT NULL
);

-- name: migrate_v2
-- Scheduling: jobs waiting on a dependency (blocked) or a retry backoff (not_before) stay
-- out of the claim query, so they never fill the claim window; the queue's pause state.
ALTER TABLE jobs ADD COLUMN blocked boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN not_before timestamptz;
DROP INDEX IF EXISTS jobs_claim;
CREATE INDEX jobs_ready ON jobs (priority DESC, id) WHERE status = 'queued' AND NOT blocked;
CREATE TABLE queue_state (
    id   text COLLATE "C" PRIMARY KEY,
    data json NOT NULL
);

-- name: migrate_v3
-- The views' epoch, bumped by every rebuild: a store's writer caches the views it wrote
-- while the head stays where it left it, and a rebuild rewrites views without moving the
-- head (view_cache.py).
CREATE TABLE views_epoch (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch bigint  NOT NULL
);
INSERT INTO views_epoch (epoch) VALUES (0);
-- The claim candidates: the first rows of the jobs_ready index, in its order, and no
-- more. The planner picks that plan only when its statistics know how many jobs are
-- queued; they rarely do (the queue fills and drains far faster than autovacuum analyzes
-- it), and with an estimate of a few rows it prefers to fetch every queued job, sort them
-- all and keep the first few: a sort of the whole queue on every claim. Sorting is
-- switched off inside these functions only, which leaves the ordered index scan.
CREATE FUNCTION claimable_jobs(lim bigint, at timestamptz)
RETURNS TABLE (id bigint, data text) LANGUAGE sql STABLE SET enable_sort = off AS $$
    SELECT j.id, j.data::text FROM jobs j
    WHERE j.status = 'queued' AND NOT j.blocked
      AND (at IS NULL OR j.not_before IS NULL OR j.not_before <= at)
    ORDER BY j.priority DESC, j.id
    LIMIT lim
$$;
CREATE FUNCTION claimable_jobs_locked(lim bigint, at timestamptz)
RETURNS TABLE (id bigint, data text) LANGUAGE sql VOLATILE SET enable_sort = off AS $$
    SELECT j.id, j.data::text FROM jobs j
    WHERE j.status = 'queued' AND NOT j.blocked
      AND (at IS NULL OR j.not_before IS NULL OR j.not_before <= at)
    ORDER BY j.priority DESC, j.id
    LIMIT lim
    FOR UPDATE SKIP LOCKED
$$;

-- name: migrate_v4
-- Reads that do not grow with history (issue 19; see the SQLite store's schema_v3).
-- job_counts: the jobs per status column; run_tags: a run's tags, a row each (a table
-- rather than a GIN index on runs.tags: the planner has no estimate for a tag absent from
-- its statistics, guessed a few percent of the runs and walked the runs newest first to
-- find a page of them, reading all 100k for a tag no run has). Both are kept by
-- write_decision in the same statement as the jobs and runs. heard_at: when a worker was
-- last heard from, so that listings leave out the ones long gone.
CREATE TABLE job_counts (
    status text   PRIMARY KEY,
    n      bigint NOT NULL
);
INSERT INTO job_counts (status, n) SELECT status, COUNT(*) FROM jobs GROUP BY status;
CREATE TABLE run_tags (
    tag    text COLLATE "C" NOT NULL,
    run_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (tag, run_id)
);
CREATE INDEX run_tags_run ON run_tags (run_id);
INSERT INTO run_tags (tag, run_id)
SELECT DISTINCT t.tag, r.id FROM runs r, unnest(r.tags) AS t(tag);
ALTER TABLE workers ADD COLUMN heard_at timestamptz NOT NULL DEFAULT 'epoch';
UPDATE workers SET heard_at = (data->>'heartbeat_at')::timestamptz;
CREATE INDEX workers_heard ON workers (heard_at);

-- name: head
SELECT COALESCE(MAX(position), 0) FROM events;

-- name: batch_start
-- Read after the append lock, in a statement of its own (store.py says why).
SELECT (SELECT COALESCE(MAX(position), 0) FROM events), (SELECT epoch FROM views_epoch);

-- name: bump_views_epoch
UPDATE views_epoch SET epoch = epoch + 1;

-- name: insert_event
INSERT INTO events (position, stream, type, recorded_at, data)
VALUES (%s, %s, %s, %s, %s::json);

-- name: notify
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: read_events
SELECT position, recorded_at, stream, data::text FROM events
WHERE position > %(after)s
  AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
ORDER BY position
LIMIT %(limit)s;

-- name: read_stream_events
SELECT position, recorded_at, stream, data::text FROM events
WHERE stream = %(stream)s AND position > %(after)s
  AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
ORDER BY position
LIMIT %(limit)s;

-- name: clear_projections
DELETE FROM jobs;
DELETE FROM runs;
DELETE FROM workers;
DELETE FROM queue_state;
DELETE FROM job_counts;
DELETE FROM run_tags;

-- name: copy_jobs
COPY jobs (id, status, priority, lease_expires, blocked, not_before, data) FROM STDIN;

-- name: copy_runs
COPY runs (id, status, started_at, version, tags, data) FROM STDIN;

-- name: copy_workers
COPY workers (id, heard_at, data) FROM STDIN;

-- name: copy_queue_state
COPY queue_state (id, data) FROM STDIN;

-- name: get_job
SELECT data::text FROM jobs WHERE id = %s;

-- name: jobs_all
-- A job ``whirr clean`` dropped has the status column 'cleaned': left out of listings
-- and counts, still read by id (see the SQLite store's queries).
SELECT data::text FROM jobs WHERE status <> 'cleaned' ORDER BY id DESC LIMIT %(limit)s;

-- name: jobs_by_status
SELECT data::text FROM jobs WHERE status = ANY(%(statuses)s::text[])
ORDER BY id DESC LIMIT %(limit)s;

-- name: claimable_jobs
SELECT id, data FROM claimable_jobs(%(limit)s, %(now)s);

-- name: claimable_jobs_locked
-- Inside a write transaction: lock the candidate rows, skipping any that another
-- transaction holds (see PgViews.claimable_jobs for why both locks exist).
SELECT id, data FROM claimable_jobs_locked(%(limit)s, %(now)s);

-- name: expired_leases
SELECT data::text FROM jobs WHERE status = 'running' AND lease_expires < %s ORDER BY id;

-- name: job_counts
-- From the counts view (a row per status ever seen), not by counting the jobs.
SELECT status, n FROM job_counts WHERE n > 0 AND status <> 'cleaned';

-- name: job_counts_counted
-- What job_counts must always equal (tests compare them).
SELECT status, COUNT(*) FROM jobs WHERE status <> 'cleaned' GROUP BY status;

-- name: max_job_id
-- Above every job view and the queue view's job_id_floor (the ids of job streams whose
-- events replay skipped, an earlier history's): see the SQLite store's query.
SELECT GREATEST(
    COALESCE((SELECT MAX(id) FROM jobs), 0),
    COALESCE((SELECT (data->>'job_id_floor')::bigint FROM queue_state WHERE id = 'queue'), 0)
);

-- name: get_run
-- A deleted run's row (status 'deleted', a tombstone) is read by no query.
SELECT data::text FROM runs WHERE id = %s AND status <> 'deleted';

-- name: get_run_view
-- The projection's own read of a run's row, the tombstone included: it stays a tombstone
-- whatever comes after (a deleted run's id is never started again).
SELECT data::text FROM runs WHERE id = %s;

-- name: runs
-- Without a tag (runs_tagged filters by one).
SELECT data::text FROM runs
WHERE status <> 'deleted'
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(archived)s::boolean IS NULL
       OR COALESCE((data->>'archived')::boolean, false) = %(archived)s::boolean)
ORDER BY started_at DESC, version DESC
LIMIT %(limit)s;

-- name: runs_page
-- One page of the runs table, filtered and sorted here (whirr/store/runs_page.py says the
-- order: missing values last, numbers before text, ties newest first); the window count
-- is how many runs match in all. Text compares by code point, as on SQLite. Ids only:
-- runs_by_ids reads the page's views.
WITH found AS (
  SELECT started_at, id,
    CASE %(sort)s::text
      WHEN 'started_at' THEN to_jsonb(extract(epoch FROM started_at))
      WHEN 'duration' THEN to_jsonb(extract(epoch FROM
                                    (data->>'finished_at')::timestamptz - started_at))
      WHEN 'tags' THEN to_jsonb(array_to_string(tags, ','))
      ELSE (data #> %(path)s::text[])::jsonb
    END AS v
  FROM runs
  WHERE status <> 'deleted'
    AND (%(status)s::text IS NULL OR status = %(status)s::text)
    AND (%(tag)s::text IS NULL OR %(tag)s::text = ANY(tags))
    AND (%(archived)s::boolean IS NULL
         OR COALESCE((data->>'archived')::boolean, false) = %(archived)s::boolean)
    AND NOT EXISTS (
      SELECT 1 FROM unnest(%(words)s::text[]) AS w
      WHERE strpos(lower(id || ' ' || COALESCE(data->>'name', '') || ' '
                         || array_to_string(tags, ' ') || ' ' || status), w) = 0)
), flagged AS (
  SELECT started_at, id, v,
    v IS NULL OR v = 'null'::jsonb OR v = '""'::jsonb AS missing
  FROM found
), keyed AS (
  SELECT started_at, id, missing,
    NOT missing AND jsonb_typeof(v) NOT IN ('number', 'boolean') AS is_text,
    CASE WHEN missing THEN NULL
         WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::float8
         WHEN jsonb_typeof(v) = 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1 ELSE 0 END
    END AS num,
    CASE WHEN missing THEN NULL
         WHEN jsonb_typeof(v) = 'string' THEN lower(v #>> '{}') COLLATE "C"
         WHEN jsonb_typeof(v) IN ('array', 'object') THEN v::text COLLATE "C"
    END AS txt
  FROM flagged
)
SELECT id, count(*) OVER () FROM keyed
ORDER BY missing, is_text,
  CASE WHEN %(descending)s THEN NULL ELSE num END ASC,
  CASE WHEN %(descending)s THEN num END DESC,
  CASE WHEN %(descending)s THEN NULL ELSE txt END ASC,
  CASE WHEN %(descending)s THEN txt END DESC,
  started_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: run_status_counts
SELECT status, COUNT(*) FROM runs
WHERE status <> 'deleted'
  AND (%(archived)s::boolean IS NULL
       OR COALESCE((data->>'archived')::boolean, false) = %(archived)s::boolean)
GROUP BY status;

-- name: runs_by_ids
SELECT id, data::text FROM runs WHERE id = ANY(%(ids)s::text[]) AND status <> 'deleted';

-- name: runs_tagged
-- The runs query for one tag, led by run_tags (the plan is checked in a test).
SELECT r.data::text FROM run_tags t JOIN runs r ON r.id = t.run_id
WHERE t.tag = %(tag)s::text
  AND r.status <> 'deleted'
  AND (%(status)s::text IS NULL OR r.status = %(status)s::text)
  AND (%(archived)s::boolean IS NULL
       OR COALESCE((r.data->>'archived')::boolean, false) = %(archived)s::boolean)
ORDER BY r.started_at DESC, r.version DESC
LIMIT %(limit)s;

-- name: runs_by_prefix
SELECT data::text FROM runs WHERE starts_with(id, %(prefix)s) AND status <> 'deleted'
ORDER BY id LIMIT %(limit)s;

-- name: get_worker
SELECT data::text FROM workers WHERE id = %s;

-- name: workers
-- Workers heard from at or after %(since)s (NULL: all of them).
SELECT data::text FROM workers
WHERE %(since)s::timestamptz IS NULL OR heard_at >= %(since)s::timestamptz
ORDER BY id;

-- name: get_queue_state
SELECT data::text FROM queue_state WHERE id = %s;

-- name: listen
LISTEN {channel};

-- name: keepalive
SELECT 1;

-- name: write_decision
-- Everything one decision appends, in one statement: its events and the view rows they
-- changed, each table's rows as one JSON array of objects (empty arrays write nothing;
-- one JSON text per table costs the client far less than an array parameter per
-- column). One statement is atomic by itself, so a decision of a group-committed batch
-- needs no savepoint: it wrote all of this or nothing (writer.py says why that matters).
-- Event and view bodies travel as JSON strings and are cast to json here, so the text
-- stored is exactly the text encoded.
-- job_counts moves by the statuses the written jobs leave (their rows as this statement
-- found them: every part of one statement sees the same snapshot) and enter.
WITH new_events AS (
    INSERT INTO events (position, stream, type, recorded_at, data)
    SELECT position, stream, type, recorded_at, data::json
    FROM json_to_recordset(%(events)s::json)
         AS e(position bigint, stream text, type text, recorded_at timestamptz, data text)
), written_jobs AS (
    SELECT * FROM json_to_recordset(%(jobs)s::json)
         AS j(id bigint, status text, priority bigint, lease_expires timestamptz,
              blocked boolean, not_before timestamptz, data text)
), new_job_counts AS (
    INSERT INTO job_counts (status, n)
    SELECT status, SUM(d) FROM (
        SELECT status, 1 AS d FROM written_jobs
        UNION ALL
        SELECT old.status, -1 FROM jobs old JOIN written_jobs w ON w.id = old.id
    ) moves
    GROUP BY status HAVING SUM(d) <> 0
    ON CONFLICT (status) DO UPDATE SET n = job_counts.n + EXCLUDED.n
), new_jobs AS (
    INSERT INTO jobs (id, status, priority, lease_expires, blocked, not_before, data)
    SELECT id, status, priority, lease_expires, blocked, not_before, data::json
    FROM written_jobs
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, priority = EXCLUDED.priority,
        lease_expires = EXCLUDED.lease_expires, blocked = EXCLUDED.blocked,
        not_before = EXCLUDED.not_before, data = EXCLUDED.data
), written_runs AS (
    SELECT * FROM json_to_recordset(%(runs)s::json)
         AS r(id text, status text, started_at timestamptz, version bigint, tags text[],
              data text)
), lost_run_tags AS (
    -- The rows of the tags a run lost; those it keeps or gains are inserted below (the
    -- two touch different rows, as one statement must).
    DELETE FROM run_tags t USING written_runs w
    WHERE t.run_id = w.id AND NOT (t.tag = ANY(w.tags))
), new_run_tags AS (
    INSERT INTO run_tags (tag, run_id)
    SELECT DISTINCT t.tag, w.id FROM written_runs w, unnest(w.tags) AS t(tag)
    ON CONFLICT DO NOTHING
), new_runs AS (
    INSERT INTO runs (id, status, started_at, version, tags, data)
    SELECT id, status, started_at, version, tags, data::json
    FROM written_runs
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, started_at = EXCLUDED.started_at,
        version = EXCLUDED.version, tags = EXCLUDED.tags, data = EXCLUDED.data
), new_workers AS (
    INSERT INTO workers (id, heard_at, data)
    SELECT id, heard_at, data::json FROM json_to_recordset(%(workers)s::json)
         AS w(id text, heard_at timestamptz, data text)
    ON CONFLICT (id) DO UPDATE SET heard_at = EXCLUDED.heard_at, data = EXCLUDED.data
), new_queue_state AS (
    INSERT INTO queue_state (id, data)
    SELECT id, data::json FROM json_to_recordset(%(queue)s::json) AS q(id text, data text)
    ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data
)
SELECT 1;

-- name: event_stamp
-- What identifies the event at one position of this log (a checkpoint records it).
SELECT recorded_at, type, data::text FROM events WHERE position = %s;

-- name: checkpoint_exists
-- Whether a checkpoint was ever taken in this schema (checkpoint.py).
SELECT to_regclass('checkpoint_stamp') IS NOT NULL;

-- name: checkpoint_stamp
SELECT data::text FROM checkpoint_stamp;

-- name: checkpoint_restore
-- The views at the checkpoint's position, after clear_projections. The checkpoint tables
-- are made LIKE the view tables, and the stamp's schema version says they still are.
INSERT INTO jobs SELECT * FROM checkpoint_jobs;
INSERT INTO runs SELECT * FROM checkpoint_runs;
INSERT INTO workers SELECT * FROM checkpoint_workers;
INSERT INTO queue_state SELECT * FROM checkpoint_queue_state;
INSERT INTO job_counts SELECT * FROM checkpoint_job_counts;
INSERT INTO run_tags SELECT * FROM checkpoint_run_tags;

-- name: checkpoint_write
-- The views, copied as the checkpoint, inside the rebuild's transaction (all of it or
-- none). Made afresh each time, LIKE the view tables of this schema version. Every
-- view table is named here and in checkpoint_restore (a test checks it).
DROP TABLE IF EXISTS checkpoint_jobs, checkpoint_runs, checkpoint_workers,
    checkpoint_queue_state, checkpoint_job_counts, checkpoint_run_tags, checkpoint_stamp;
CREATE TABLE checkpoint_jobs (LIKE jobs INCLUDING DEFAULTS);
CREATE TABLE checkpoint_runs (LIKE runs INCLUDING DEFAULTS);
CREATE TABLE checkpoint_workers (LIKE workers INCLUDING DEFAULTS);
CREATE TABLE checkpoint_queue_state (LIKE queue_state INCLUDING DEFAULTS);
CREATE TABLE checkpoint_job_counts (LIKE job_counts INCLUDING DEFAULTS);
CREATE TABLE checkpoint_run_tags (LIKE run_tags INCLUDING DEFAULTS);
INSERT INTO checkpoint_jobs SELECT * FROM jobs;
INSERT INTO checkpoint_runs SELECT * FROM runs;
INSERT INTO checkpoint_workers SELECT * FROM workers;
INSERT INTO checkpoint_queue_state SELECT * FROM queue_state;
INSERT INTO checkpoint_job_counts SELECT * FROM job_counts;
INSERT INTO checkpoint_run_tags SELECT * FROM run_tags;
CREATE TABLE checkpoint_stamp (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    data json    NOT NULL
);

-- name: checkpoint_stamp_put
INSERT INTO checkpoint_stamp (data) VALUES (%s::json);
