#!/usr/bin/env bash
# syncqd over libpq: rows/s shipped up and down for a 100,000-row backlog and
# the time of a 1,000,000-row first sync, each beside the floor of the same
# work done directly (COPY into PostgreSQL; one-transaction insert into
# SQLite), with syncqd's peak RSS.
set -euo pipefail
. "$SYNCQ_ROOT/bench/lib/sync.sh"
N=100000
FIRST=1000000
T=$SYNCQ_TMP
psql -X -q -d postgres -c "CREATE DATABASE bench_sync"
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=bench_sync"
hub() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }

# run syncqd --once, printing "seconds peak_rss_kib"
timed_sync() {
	local start peak=0 v pid
	start=$(now)
	"$SYNCQD" --sqlite "$1" --online "$HUB" --once 2>>"$T/syncqd.log" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		[ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
		sleep 0.02
	done
	wait "$pid" || { tail -n 3 "$T/syncqd.log" >&2; return 1; }
	echo "$(elapsed "$start") $peak"
}

hub "CREATE EXTENSION syncq;
	CREATE TABLE up (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
	CREATE TABLE down (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
	CREATE TABLE big (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
	CREATE TABLE floor_up (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
	SELECT sync_track('up'); SELECT sync_track('down'); SELECT sync_track('big');" >/dev/null
ddl="CREATE TABLE up (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	CREATE TABLE down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	SELECT sync_track('up'); SELECT sync_track('down'); SELECT sync_track('big');"
C=$T/client.db
printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$C" >/dev/null
timed_sync "$C" >/dev/null		# empty first sync

# --- up: 100k changes queued on the client ----------------------------------
sqlite3 "$C" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $N)
	INSERT INTO up SELECT x, 'item ' || x, x % 97, (x % 1000) / 4.0 FROM s;"
read -r up_s up_rss < <(timed_sync "$C")
seq 1 $N | awk '{ printf "%d\titem %d\t%d\t%.2f\n", $1, $1, $1 % 97, ($1 % 1000) / 4.0 }' >"$T/up.tsv"
start=$(now)
psql -X -q -d "$HUB" -c "\\copy floor_up FROM '$T/up.tsv'"
up_floor=$(elapsed "$start")

# --- down: 100k changes queued on the hub -----------------------------------
hub "INSERT INTO down SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0 FROM generate_series(1, $N) i" >/dev/null
read -r down_s down_rss < <(timed_sync "$C")
sqlite3 "$T/floor.db" "CREATE TABLE down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);"
start=$(now)
sqlite3 "$T/floor.db" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $N)
	INSERT INTO down SELECT x, 'item ' || x, x % 97, (x % 1000) / 4.0 FROM s;"
down_floor=$(elapsed "$start")

# --- first sync: 1M rows into an empty client -------------------------------
hub "INSERT INTO big SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0 FROM generate_series(1, $FIRST) i" >/dev/null
F=$T/fresh.db
printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$F" >/dev/null
read -r first_s first_rss < <(timed_sync "$F")
start=$(now)
psql -X -q -d "$HUB" -c "\\copy big TO '$T/big.tsv'"
sqlite3 "$T/floor.db" "CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);"
printf '.mode tabs\n.import %s big\n' "$T/big.tsv" | sqlite3 "$T/floor.db"
first_floor=$(elapsed "$start")

[ "$(sqlite3 "$F" "SELECT count(*) FROM big")" = "$FIRST" ] || { echo "first sync incomplete"; exit 1; }
[ "$(hub "SELECT count(*) FROM up")" = "$N" ] || { echo "upload incomplete"; exit 1; }

echo "### syncqd over libpq (one run; floor = the same rows written directly)"
echo
echo "| work | rows | syncqd s | rows/s | floor s | floor | time ratio | syncqd peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
echo "| up: client backlog to hub | $N | $up_s | $(rate $N "$up_s") | $up_floor | COPY into PostgreSQL | $(ratio "$up_s" "$up_floor") | $((up_rss / 1024)) MB |"
echo "| down: hub backlog to client | $N | $down_s | $(rate $N "$down_s") | $down_floor | one-transaction SQLite insert | $(ratio "$down_s" "$down_floor") | $((down_rss / 1024)) MB |"
echo "| first sync into an empty client | $FIRST | $first_s | $(rate $FIRST "$first_s") | $first_floor | COPY out + SQLite .import | $(ratio "$first_s" "$first_floor") | $((first_rss / 1024)) MB |"
