#!/usr/bin/env bash
# A download and a first sync over HTTP read from a hot standby
# (syncqd serve --replica) beside the same read from the primary, in one
# run, on one hub: two serve processes, one with --replica, two clients.
set -euo pipefail
. "$SYNCQ_ROOT/bench/lib/sync.sh"
. "$SYNCQ_ROOT/tests/lib/pgcluster.sh"
N=100000
FIRST=200000
T=$SYNCQ_TMP
DB=bench_replica
export AMRS_ADMIN_USERNAME=bench AMRS_ADMIN_PASSWORD=bench-pw
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=$DB"
hub() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }

psql -X -q -d postgres -c "CREATE DATABASE $DB"
hub "CREATE EXTENSION syncq;
	CREATE TABLE down (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
	CREATE TABLE big (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
	SELECT sync_track('down'); SELECT sync_track('big');" >/dev/null

# a hot standby with a replication slot
# beside the primary (bench/run: in tmpfs when there is room), so that the
# two are read from the same kind of storage
SB=${SYNCQ_PG_PARENT:-$T}/standby
SLOT=bench_replica_$$
SERVES=()
cleanup() {
	local p
	for p in "${SERVES[@]}"; do kill "$p" 2>/dev/null || true; done
	pgc_stop "$SB"
	psql -X -q -d postgres -c "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots
		WHERE slot_name = '$SLOT'" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mkdir -p "$SB"
[ "$(id -u)" -eq 0 ] && chown postgres: "$SB"
pgc_as_owner "$PG_BINDIR/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$SB/data" \
	-R -X stream -c fast -C -S "$SLOT" >"$SB/basebackup.log" 2>&1 || { cat "$SB/basebackup.log"; exit 1; }
while :; do
	SP=$((20000 + RANDOM % 30000))
	pgc_port_free "$SP" || continue
	pgc_as_owner "$PG_BINDIR/pg_ctl" -D "$SB/data" -l "$SB/server.log" \
		-o "-p $SP -c unix_socket_directories='$SB'" -w -t 60 start >/dev/null 2>&1 && break
done
caught_up() {		# wait until the standby replayed what the primary has now
	local lsn i
	lsn=$(hub "SELECT pg_current_wal_insert_lsn()")
	for i in $(seq 3000); do
		[ "$(psql -X -At -h 127.0.0.1 -p "$SP" -U postgres -d $DB -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && return 0
		sleep 0.02
	done
	echo "the standby did not catch up"
	exit 1
}

start_serve() {		# start_serve LOG [ARG]...: sets URL
	local log=$1 i
	shift
	"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 --log-level debug "$@" >/dev/null 2>"$log" &
	SERVES+=($!)
	for i in $(seq 200); do grep -q 'listening on' "$log" && break; sleep 0.05; done
	URL="http://127.0.0.1:$(sed -nE 's/.*listening on [^ ]*:([0-9]+) .*/\1/p' "$log")"
}
start_serve "$T/serve-primary.log"
URL_P=$URL
start_serve "$T/serve-replica.log" --replica "host=127.0.0.1 port=$SP user=postgres dbname=$DB"
URL_R=$URL

ddl="CREATE TABLE down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	SELECT sync_track('down'); SELECT sync_track('big');"
for f in P R P2 R2; do printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$T/$f.db" >/dev/null; done
timed "$T/P.db" "$URL_P" >/dev/null
timed "$T/R.db" "$URL_R" >/dev/null

# down: a backlog of N rows on the hub, read by each client
hub "INSERT INTO down SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0 FROM generate_series(1, $N) i"
caught_up
down_p=$(timed "$T/P.db" "$URL_P")
down_r=$(timed "$T/R.db" "$URL_R")
[ "$(sqlite3 "$T/R.db" "SELECT count(*) FROM down")" = $N ] || { echo "replica client: down incomplete"; exit 1; }

# first sync of FIRST (+ N) rows into an empty client
hub "INSERT INTO big SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0 FROM generate_series(1, $FIRST) i"
caught_up
first_p=$(timed "$T/P2.db" "$URL_P")
first_r=$(timed "$T/R2.db" "$URL_R")
FIRST=$((FIRST + N))
[ "$(sqlite3 "$T/R2.db" "SELECT (SELECT count(*) FROM big) + (SELECT count(*) FROM down)")" = "$FIRST" ] ||
	{ echo "replica client: first sync incomplete"; exit 1; }
steps_r=$(grep -c 'read from replica' "$T/serve-replica.log" || true)
steps_p=$(grep -c 'read from the primary' "$T/serve-replica.log" || true)

echo "### A download read from a hot standby (serve --replica) beside the same from the primary (one hub, HTTP on loopback)"
echo
echo "| work | rows | primary s | primary rows/s | standby s | standby rows/s | standby / primary (rows/s) |"
echo "|---|---|---|---|---|---|---|"
echo "| down: hub backlog to client | $N | $down_p | $(rate $N "$down_p") | $down_r | $(rate $N "$down_r") | $(ratio "$down_p" "$down_r") |"
echo "| first sync into an empty client | $FIRST | $first_p | $(rate $FIRST "$first_p") | $first_r | $(rate $FIRST "$first_r") | $(ratio "$first_p" "$first_r") |"
echo
echo "(serve --replica read $steps_r changes and rows pages from the standby, $steps_p from the primary.)"
