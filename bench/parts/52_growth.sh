#!/usr/bin/env bash
# The hub's queue growing from empty to STEPS x 2 x ROWS rows while one
# syncqd over libpq and one over HTTP (through syncqd serve) keep running,
# as a hub with an offline laptop keeps its queue: before the first step
# and after each, the latency of immediate changes each way on each link,
# and how long the step's rows took to reach every node. A plan PostgreSQL
# kept from when the queue was small (a prepared statement's generic plan,
# a PL/pgSQL function's plan) shows here as a latency that grows with the
# queue (docs/daemon.md, Measured).
#   env: PGHOST/PGPORT (a throwaway cluster), SYNCQD, SYNCQ_SQLITE_EXT,
#        SYNCQ_TMP; SYNCQ_BENCH_GROW_STEPS (default 10),
#        SYNCQ_BENCH_GROW_ROWS (rows each way per step, default 50000),
#        SYNCQ_BENCH_GROW_CHANGES (changes timed per way and link, default 30)
set -euo pipefail
: "${SYNCQD:?}" "${SYNCQ_SQLITE_EXT:?}" "${SYNCQ_TMP:?}"
. "$SYNCQ_ROOT/bench/lib/sync.sh"
T=$SYNCQ_TMP
STEPS=${SYNCQ_BENCH_GROW_STEPS:-10}
ROWS=${SYNCQ_BENCH_GROW_ROWS:-50000}
CHANGES=${SYNCQ_BENCH_GROW_CHANGES:-30}
SPACING_MS=60			# as in 50_daemon.sh, which says why

psql -X -q -d postgres -c "CREATE DATABASE bench_growth"
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=bench_growth"
hub() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }
hub "CREATE EXTENSION syncq;
	CREATE TABLE lat (id bigint PRIMARY KEY, v text); SELECT sync_track('lat');
	CREATE TABLE grow_up (id bigint PRIMARY KEY, name text, qty integer); SELECT sync_track('grow_up');
	CREATE TABLE grow_down (id bigint PRIMARY KEY, name text, qty integer); SELECT sync_track('grow_down');" >/dev/null
ddl="CREATE TABLE lat (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lat');
	CREATE TABLE grow_up (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); SELECT sync_track('grow_up');
	CREATE TABLE grow_down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); SELECT sync_track('grow_down');"
P=$T/libpq.db H=$T/http.db O=$T/offline.db
for f in "$P" "$H" "$O"; do printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$f" >/dev/null; done
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$T/lat" "$SYNCQ_ROOT/bench/lib/lat.c" -lpq -lsqlite3

# the laptop that synced once and went offline: the hub keeps the queue
"$SYNCQD" --sqlite "$O" --online "$HUB" --once 2>>"$T/offline.log"

export AMRS_ADMIN_USERNAME=bench AMRS_ADMIN_PASSWORD=bench-pw
"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 2>"$T/serve.log" &
spid=$!
trap 'kill $spid ${ppid:-} ${hpid:-} 2>/dev/null || true' EXIT
URL=$(serve_url "$T/serve.log")
"$SYNCQD" --sqlite "$P" --online "$HUB" --control off 2>>"$T/libpq.log" &
ppid=$!
"$SYNCQD" --sqlite "$H" --online "$URL" --control off 2>>"$T/http.log" &
hpid=$!
for log in "$T/libpq.log" "$T/http.log"; do
	for _ in $(seq 1 100); do grep -q "sync (start) done" "$log" && break; sleep 0.1; done
	grep -q "sync (start) done" "$log" || { echo "no first sync: $(tail -n 3 "$log")"; exit 1; }
done

next_id=1
lat() {		# lat VAR MODE FILE: VAR="p50 / max" of CHANGES changes
	"$T/lat" "$2" "$3" "$HUB" "$SYNCQ_SQLITE_EXT" "$CHANGES" "$SPACING_MS" "$next_id" >"$T/lat.us" || exit 1
	next_id=$((next_id + CHANGES))
	printf -v "$1" '%s / %s' "$(pct "$T/lat.us" 50)" "$(pct "$T/lat.us" 100)"
}
rows=()
row() {		# row QUEUE_ROWS SHIPPED_S: one line of the table
	local a b c d
	lat a up-ext "$P"; lat b down "$P"; lat c up-ext "$H"; lat d down "$H"
	rows+=("| $1 | $2 | $a | $b | $c | $d |")
}
alive() { kill -0 "$ppid" && kill -0 "$hpid" && kill -0 "$spid"; }

row "$(hub "SELECT count(*) FROM sync_queue")" -
for s in $(seq 1 "$STEPS"); do
	lo=$(((s - 1) * ROWS + 1)) hi=$((s * ROWS))
	start=$(date +%s.%N)
	# ROWS up from the libpq client in 10 transactions, ROWS written on the hub in 10
	{
		printf '.load %s\n' "$SYNCQ_SQLITE_EXT"
		for t in $(seq 0 9); do
			echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $((lo + t * ROWS / 10)) UNION ALL SELECT x + 1 FROM s WHERE x < $((lo + (t + 1) * ROWS / 10 - 1)))
				INSERT INTO grow_up SELECT x, 'item ' || x, x % 97 FROM s; COMMIT;"
		done
	} | sqlite3 -cmd '.timeout 10000' "$P" >/dev/null
	for t in $(seq 0 9); do
		echo "INSERT INTO grow_down SELECT i, 'item ' || i, i % 97 FROM generate_series($((lo + t * ROWS / 10)), $((lo + (t + 1) * ROWS / 10 - 1))) i;"
	done | psql -X -q -d "$HUB" >/dev/null
	until [ "$(hub "SELECT count(*) FROM grow_up")" = "$hi" ] &&
		[ "$(sqlite3 "$P" "SELECT count(*) FROM grow_down")" = "$hi" ] &&
		[ "$(sqlite3 "$H" "SELECT count(*) FROM grow_down")" = "$hi" ] &&
		[ "$(sqlite3 "$H" "SELECT count(*) FROM grow_up")" = "$hi" ]; do
		alive || { echo "a syncqd died: $(tail -n 2 "$T"/*.log)"; exit 1; }
		sleep 0.2
	done
	shipped=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	row "$(hub "SELECT count(*) FROM sync_queue")" "$shipped"
done
kill -TERM "$ppid" "$hpid" && wait "$ppid" "$hpid"
kill -TERM "$spid" && wait "$spid"
trap - EXIT

echo "### A growing queue: latency of one change, p50 / max in ms ($CHANGES changes each)"
echo
echo "| queue rows | step shipped in s | client → hub, libpq | hub → client, libpq | client → hub, HTTP | hub → client, HTTP |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "(each step: $ROWS rows uploaded by the libpq client in 10 transactions and $ROWS written on the hub in 10, shipped to every running node; an offline node keeps them queued. Aim: the last line's p50s within 1.5x of the first's; over HTTP client → hub p50 < 10 ms, p99 < 50 ms)"
