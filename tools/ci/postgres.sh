#!/usr/bin/env bash
# Start a PostgreSQL server for whirr's tests and print the URL they connect with.
#
#   eval "$(tools/ci/postgres.sh)"     # exports WHIRR_TEST_POSTGRES_URL
#
# Runs as root on Debian: installs the `postgresql` package when no server binaries are
# present, creates a cluster when none exists, starts it with pg_ctlcluster (the server
# itself runs as the `postgres` user; it refuses to run as root), then creates a login
# role with CREATEDB (each test clones its own database) and a database it owns.
# Idempotent: a second run finds everything in place and prints the same line.
# Only the `export ...` line goes to stdout; progress goes to stderr.
#
# Settings (environment): WHIRR_PG_ROLE (whirr), WHIRR_PG_PASSWORD (whirr),
# WHIRR_PG_DATABASE (whirr_test), WHIRR_PG_CLUSTER (main).
set -euo pipefail

role=${WHIRR_PG_ROLE:-whirr}
password=${WHIRR_PG_PASSWORD:-whirr}
database=${WHIRR_PG_DATABASE:-whirr_test}
cluster=${WHIRR_PG_CLUSTER:-main}

log() { echo "postgres.sh: $*" >&2; }
as_postgres() { runuser -u postgres -- "$@"; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs packages and starts the server as user postgres)"
    exit 1
fi

newest_version() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null \
        | sort -n | tail -n 1)
    [ -n "$dir" ] && [ -x "/usr/lib/postgresql/$dir/bin/postgres" ] && echo "$dir"
}

version=$(newest_version || true)
if [ -z "$version" ] || ! command -v pg_ctlcluster >/dev/null; then
    log "no PostgreSQL server found; installing the postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    version=$(newest_version)
fi

if ! pg_lsclusters -h "$version" "$cluster" >/dev/null 2>&1; then
    log "creating cluster $version/$cluster"
    pg_createcluster "$version" "$cluster" >&2
fi

# pg_lsclusters -h prints: version cluster port status owner datadir logfile
read -r _ _ port status _ < <(pg_lsclusters -h "$version" "$cluster")
if [[ "$status" != online* ]]; then
    log "starting cluster $version/$cluster on port $port"
    pg_ctlcluster "$version" "$cluster" start >&2
fi

for _ in $(seq 1 60); do
    if as_postgres pg_isready -q -p "$port"; then
        break
    fi
    sleep 0.5
done
as_postgres pg_isready -q -p "$port" || { log "server did not become ready on port $port"; exit 1; }

# Identifiers and the password reach SQL only through format(%I / %L), never spliced.
as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres \
    -v role="$role" -v password="$password" -v database="$database" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SQL

url="postgresql://${role}:${password}@127.0.0.1:${port}/${database}"
log "PostgreSQL $version ready: $url"
echo "export WHIRR_TEST_POSTGRES_URL='$url'"
