-- Queries over a database written by the original whirr (0.5.3), read-only. Each block is
-- named by its "-- name:" line; whirr.store.sql loads them.

-- name: is_original
-- The original's jobs table has command_argv as a column (this whirr keeps jobs as views).
SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'command_argv';

-- name: has_events
SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events';

-- name: jobs
SELECT id, name, command_argv, workdir, config, status, tags, attempt, parent_job_id,
       created_at, started_at, finished_at, worker_id, heartbeat_at, pid, exit_code,
       error_message, run_id
FROM jobs ORDER BY id;

-- name: runs
SELECT id, job_id, name, config, tags, status, started_at, finished_at, duration_seconds,
       summary, git_hash, git_dirty, hostname, run_dir
FROM runs ORDER BY started_at, id;
