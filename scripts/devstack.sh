#!/usr/bin/env bash
# devstack.sh: make sure a PostgreSQL and a Redis answer on loopback, then
# print their URLs as shell exports.
#
#   eval "$(scripts/devstack.sh)"
#
# It uses the servers that already answer. Where one does not, it starts the
# installed one, or (as root) installs it with apt-get first. It never touches
# a server it did not need to start. Progress goes to stderr; stdout carries
# only the exports.
set -euo pipefail

PGHOST=${NEO_PGHOST:-127.0.0.1}
PGPORT=${NEO_PGPORT:-5432}
REDIS_HOST=${NEO_REDIS_HOST:-127.0.0.1}
REDIS_PORT=${NEO_REDIS_PORT:-6379}
DATABASES=(test neo_events_demo)

log() { echo "devstack: $*" >&2; }
die() { echo "devstack: ERROR: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do
    port_open "$1" "$2" && return 0
    sleep 0.5
  done
  return 1
}

apt_updated=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "$* missing and not root: install it yourself (apt-get install $*)"
  if [ $apt_updated = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sh -c "$1"; fi
}

ensure_postgres() {
  if ! port_open "$PGHOST" "$PGPORT"; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql postgresql-contrib
    fi
    command -v pg_ctlcluster >/dev/null || apt_install postgresql-common
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    # A dev stack on loopback only: let local TCP clients in without a
    # password, like the CI machines do.
    if [ -w "$hba" ] && ! grep -q "neo-events devstack" "$hba"; then
      log "allowing trust auth on loopback in $hba"
      { echo "# neo-events devstack: trust on loopback"
        echo "host all all 127.0.0.1/32 trust"
        echo "host all all ::1/128 trust"
        cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba"
      chown postgres:postgres "$hba" 2>/dev/null || true
    fi
    log "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || pg_ctlcluster "$ver" main start >&2 || true
    wait_port "$PGHOST" "$PGPORT" || die "PostgreSQL did not come up on $PGHOST:$PGPORT"
  fi
  command -v psql >/dev/null || apt_install postgresql-client
  for db in "${DATABASES[@]}"; do
    if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -tAc "select 1 from pg_database where datname='$db'" 2>/dev/null | grep -q 1; then
      log "creating database $db"
      psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -qc "CREATE DATABASE $db" >&2 \
        || as_postgres "psql -qc 'CREATE DATABASE $db'" >&2
    fi
  done
  psql -h "$PGHOST" -p "$PGPORT" -U postgres -d test -tAc 'select 1' >/dev/null \
    || die "PostgreSQL on $PGHOST:$PGPORT refuses user postgres without a password: allow trust on loopback in pg_hba.conf"
}

ensure_redis() {
  if port_open "$REDIS_HOST" "$REDIS_PORT"; then return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting Redis on $REDIS_HOST:$REDIS_PORT"
  mkdir -p /tmp/neo-events-redis
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/neo-events-redis --logfile /tmp/neo-events-redis/redis.log >&2
  wait_port "$REDIS_HOST" "$REDIS_PORT" || die "Redis did not come up on $REDIS_HOST:$REDIS_PORT"
}

ensure_postgres
ensure_redis
# redis-server is what the durability tests start on their own ports.
command -v redis-server >/dev/null || apt_install redis-server

echo "export TEST_DATABASE_URL='postgres://postgres@$PGHOST:$PGPORT/test?sslmode=disable'"
echo "export TEST_REDIS_URL='redis://$REDIS_HOST:$REDIS_PORT/0'"
echo "export NEO_EVENTS_POSTGRES_URL='postgres://postgres@$PGHOST:$PGPORT/neo_events_demo?sslmode=disable'"
echo "export NEO_EVENTS_REDIS_URL='redis://$REDIS_HOST:$REDIS_PORT/0'"
log "PostgreSQL on $PGHOST:$PGPORT, Redis on $REDIS_HOST:$REDIS_PORT: ready"
