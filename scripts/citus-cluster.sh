#!/usr/bin/env bash
# A Citus cluster for development and tests: a coordinator and two workers on loopback ports,
# using the Citus that is installed into this machine's PostgreSQL 15 (docs/citus.md says how to
# install it). Nothing here builds or installs Citus.
#
#   scripts/citus-cluster.sh start            initdb if needed, start the three nodes
#   scripts/citus-cluster.sh createdb NAME    a database on every node, with the extension and the workers added
#   scripts/citus-cluster.sh dropdb NAME
#   scripts/citus-cluster.sh status           nodes, ports and the workers the coordinator knows
#   scripts/citus-cluster.sh url [NAME]       the coordinator's connection string
#   scripts/citus-cluster.sh stop
#
# CHATSTORE_CITUS_DIR (default /tmp/chatstore-citus-UID) holds the nodes; CHATSTORE_CITUS_PORT
# (default 9700) is the coordinator's port, the workers use the next two; CHATSTORE_CITUS_SHARD_COUNT
# sets the shards per distributed table of databases made by createdb (Citus's default is 32).
# Exit codes: 0 ok, 1 failure, 2 Citus is not installed.
set -euo pipefail
pgbin=${PG_BIN:-/usr/lib/postgresql/15/bin}
dir=${CHATSTORE_CITUS_DIR:-/tmp/chatstore-citus-$(id -u)}
port0=${CHATSTORE_CITUS_PORT:-9700}
nodes=(coordinator worker1 worker2)
port() { echo $((port0 + $1)); }

as_owner() { # run as postgres when we are root (PostgreSQL refuses to run as root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

need_citus() {
  local libdir sharedir
  libdir=$("$pgbin/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
  sharedir=$("$pgbin/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
  if [ ! -x "$pgbin/postgres" ]; then
    echo "citus-cluster: PostgreSQL 15 is not installed at $pgbin (run scripts/install-deps.sh)" >&2; exit 2
  fi
  if [ ! -f "$libdir/citus.so" ] || [ ! -f "$sharedir/extension/citus.control" ]; then
    echo "citus-cluster: Citus is not installed into PostgreSQL 15 (no $libdir/citus.so); see docs/citus.md, \"Installing Citus\"" >&2
    exit 2
  fi
}

psql_node() { # INDEX DB SQL...
  local i=$1 db=$2; shift 2
  as_owner "$pgbin/psql" -qAtX -h 127.0.0.1 -p "$(port "$i")" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"
}

start() {
  need_citus
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  for i in 0 1 2; do
    local d="$dir/${nodes[$i]}"
    if [ ! -f "$d/PG_VERSION" ]; then
      mkdir -p "$d"
      [ "$(id -u)" = 0 ] && chown postgres "$d"
      as_owner "$pgbin/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >> "$d/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
port = $(port "$i")
unix_socket_directories = '$d'
fsync = off
synchronous_commit = off
max_connections = 200
max_prepared_transactions = 200
max_worker_processes = 64
CONF
    fi
    if ! as_owner "$pgbin/pg_ctl" -D "$d" status >/dev/null 2>&1; then
      as_owner "$pgbin/pg_ctl" -D "$d" -l "$d/server.log" -w start >/dev/null
    fi
  done
  echo "citus cluster running in $dir: coordinator 127.0.0.1:$(port 0), workers $(port 1), $(port 2)"
}

createdb() { # NAME (one at a time: concurrent CREATE EXTENSION citus collide)
  exec 9>"$dir/.createdb.lock"; flock 9
  local db=$1
  for i in 0 1 2; do
    psql_node "$i" postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    psql_node "$i" "$db" -c "CREATE EXTENSION citus" >/dev/null
  done
  if [ -n "${CHATSTORE_CITUS_SHARD_COUNT:-}" ]; then # shards per distributed table (Citus default 32)
    psql_node 0 postgres -c "ALTER DATABASE \"$db\" SET citus.shard_count = ${CHATSTORE_CITUS_SHARD_COUNT//[^0-9]/}" >/dev/null
  fi
  psql_node 0 "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $(port 0))" >/dev/null
  for i in 1 2; do psql_node 0 "$db" -c "SELECT citus_add_node('127.0.0.1', $(port "$i"))" >/dev/null; done
}

dropdb() { # NAME
  for i in 0 1 2; do psql_node "$i" postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null; done
}

status() {
  need_citus
  local up=0
  for i in 0 1 2; do
    if as_owner "$pgbin/pg_ctl" -D "$dir/${nodes[$i]}" status >/dev/null 2>&1; then
      echo "${nodes[$i]}: running on 127.0.0.1:$(port "$i")"; up=$((up + 1))
    else
      echo "${nodes[$i]}: stopped"
    fi
  done
  [ "$up" = 3 ] || exit 1
  echo "citus $(psql_node 0 postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'citus'")"
}

stop() {
  for i in 0 1 2; do
    local d="$dir/${nodes[$i]}"
    [ -f "$d/PG_VERSION" ] && as_owner "$pgbin/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
  done
  echo "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  createdb) [ -n "${2:-}" ] || { echo "usage: $0 createdb NAME" >&2; exit 64; }; createdb "$2" ;;
  dropdb) [ -n "${2:-}" ] || { echo "usage: $0 dropdb NAME" >&2; exit 64; }; dropdb "$2" ;;
  url) echo "host=127.0.0.1 port=$(port 0) user=postgres dbname=${2:-postgres}" ;;
  *) echo "usage: $0 start|stop|status|createdb NAME|dropdb NAME|url [NAME]" >&2; exit 64 ;;
esac
