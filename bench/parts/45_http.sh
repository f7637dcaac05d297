#!/usr/bin/env bash
# syncqd over HTTP through `syncqd serve` beside syncqd over libpq, in one
# run, each on a hub database of its own set up alike: rows/s up and down
# for a 100,000-row backlog and a 400,000-row first sync. (serve with 50
# clients at once: 47_serve_many.sh.)
set -euo pipefail
. "$SYNCQ_ROOT/bench/lib/sync.sh"
N=100000
FIRST=200000
T=$SYNCQ_TMP
export AMRS_ADMIN_USERNAME=bench AMRS_ADMIN_PASSWORD=bench-pw
# two hubs alike: one the libpq client syncs with directly, one behind serve
for db in bench_pg bench_http; do
	psql -X -q -d postgres -c "CREATE DATABASE $db"
	psql -X -q -At -v ON_ERROR_STOP=1 -d "host=$PGHOST port=$PGPORT user=postgres dbname=$db" -c "CREATE EXTENSION syncq;
		CREATE TABLE up (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
		CREATE TABLE down (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
		CREATE TABLE big (id bigint PRIMARY KEY, name text, qty integer, price numeric(10,2));
		SELECT sync_track('up'); SELECT sync_track('down'); SELECT sync_track('big');" >/dev/null
done
HUB_P="host=$PGHOST port=$PGPORT user=postgres dbname=bench_pg"
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=bench_http"
hub() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }
both() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB_P" -c "$1" >/dev/null; hub "$1" >/dev/null; }

"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 2>"$T/serve.log" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for i in $(seq 200); do grep -q 'listening on' "$T/serve.log" && break; sleep 0.05; done
URL=http://127.0.0.1:$(sed -nE 's/.*listening on [^ ]*:([0-9]+) .*/\1/p' "$T/serve.log")


ddl="CREATE TABLE up (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	CREATE TABLE down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price NUMERIC);
	SELECT sync_track('up'); SELECT sync_track('down'); SELECT sync_track('big');"
P=$T/libpq.db
H=$T/http.db
for f in "$P" "$H"; do printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$f" >/dev/null; done
timed "$P" "$HUB_P" >/dev/null
timed "$H" "$URL" >/dev/null

# up: the same 100k rows queued on both clients
for f in "$P" "$H"; do
	sqlite3 "$f" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $N)
		INSERT INTO up SELECT x, 'item ' || x, x % 97, (x % 1000) / 4.0 FROM s;"
done
up_p=$(timed "$P" "$HUB_P")
up_h=$(timed "$H" "$URL")
[ "$(hub "SELECT count(*) FROM up")" = $N ] || { echo "http: upload incomplete"; exit 1; }
# down: 100k rows written on each hub
both "INSERT INTO down SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0 FROM generate_series(1, $N) i"
down_p=$(timed "$P" "$HUB_P")
down_h=$(timed "$H" "$URL")
[ "$(sqlite3 "$H" "SELECT count(*) FROM down")" = $N ] || { echo "http client: down incomplete"; exit 1; }

# first sync of FIRST rows (and the 200k above) into an empty client
both "INSERT INTO big SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0 FROM generate_series(1, $FIRST) i"
for f in P2 H2; do printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$T/$f.db" >/dev/null; done
first_p=$(timed "$T/P2.db" "$HUB_P")
first_h=$(timed "$T/H2.db" "$URL")
FIRST=$((FIRST + 2 * N))
[ "$(sqlite3 "$T/H2.db" "SELECT (SELECT count(*) FROM big) + (SELECT count(*) FROM up) + (SELECT count(*) FROM down)")" = "$FIRST" ] ||
	{ echo "http first sync incomplete"; exit 1; }

echo "### syncqd over HTTP (syncqd serve on loopback) beside libpq (one run, two hub databases alike)"
echo
echo "| work | rows | libpq s | libpq rows/s | HTTP s | HTTP rows/s | HTTP / libpq (rows/s) |"
echo "|---|---|---|---|---|---|---|"
echo "| up: client backlog to hub | $N | $up_p | $(rate $N "$up_p") | $up_h | $(rate $N "$up_h") | $(ratio "$up_p" "$up_h") |"
echo "| down: hub backlog to client | $N | $down_p | $(rate $N "$down_p") | $down_h | $(rate $N "$down_h") | $(ratio "$down_p" "$down_h") |"
echo "| first sync into an empty client | $FIRST | $first_p | $(rate $FIRST "$first_p") | $first_h | $(rate $FIRST "$first_h") | $(ratio "$first_p" "$first_h") |"
