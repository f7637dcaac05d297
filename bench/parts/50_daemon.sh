#!/usr/bin/env bash
# syncqd running on: how soon an immediate change reaches the other side
# (p50/p99 over 1,000 changes each way: from a SQLite connection with syncq
# loaded, which writes the wake file; from a plain one, which syncqd sees
# through PRAGMA data_version; from the hub, by NOTIFY), the CPU a running
# syncqd uses when nothing happens, and its memory after shipping
# 1,000,000 rows (half up, half down) while running. The latency driver is
# C (bench/lib/lat.c), so that no shell overhead is timed.
#   env: PGHOST/PGPORT (a throwaway cluster), SYNCQD, SYNCQ_SQLITE_EXT,
#        SYNCQ_TMP; SYNCQ_BENCH_CHANGES (default 1000),
#        SYNCQ_BENCH_ROWS (rows each way, default 500000),
#        SYNCQ_BENCH_IDLE_S (default 60)
set -euo pipefail
: "${SYNCQD:?}" "${SYNCQ_SQLITE_EXT:?}" "${SYNCQ_TMP:?}"
. "$SYNCQ_ROOT/bench/lib/sync.sh"
T=$SYNCQ_TMP
CHANGES=${SYNCQ_BENCH_CHANGES:-1000}
ROWS=${SYNCQ_BENCH_ROWS:-500000}
IDLE=${SYNCQ_BENCH_IDLE_S:-60}
# Changes are spaced so that each is a change of its own: syncqd lets at
# least 25 ms pass between the end of a sync and a wake-up sync, so that a
# burst of commits shares one, and a sync goes on after its change is
# visible on the other side (over HTTP, the snapshot after the upload:
# 10-20 ms). The driver waits SPACING_MS after a change arrived before the
# next: 40 ms left 15 ms for that, and over HTTP a change then often
# waited for the gap (p50 14 ms in one run, 45 ms in the next).
SPACING_MS=60

psql -X -q -d postgres -c "CREATE DATABASE bench_daemon"
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=bench_daemon"
hub() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }
hub "CREATE EXTENSION syncq;
	CREATE TABLE lat (id bigint PRIMARY KEY, v text); SELECT sync_track('lat');
	CREATE TABLE bulk (id bigint PRIMARY KEY, name text, qty integer); SELECT sync_track('bulk');
	CREATE TABLE bulk_down (id bigint PRIMARY KEY, name text, qty integer); SELECT sync_track('bulk_down');" >/dev/null
C=$T/client.db
printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" \
	"CREATE TABLE lat (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lat');
	CREATE TABLE bulk (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); SELECT sync_track('bulk');
	CREATE TABLE bulk_down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); SELECT sync_track('bulk_down');" |
	sqlite3 "$C" >/dev/null

cc -std=c11 -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$T/lat" "$SYNCQ_ROOT/bench/lib/lat.c" -lpq -lsqlite3

LOG=$T/syncqd.log
"$SYNCQD" --sqlite "$C" --online "$HUB" --control off 2>>"$LOG" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
# first_sync_done LOG SECONDS: wait for syncqd's first sync, or stop the
# bench saying so (measuring latencies while a first sync still runs would
# time the first sync: the rows wait behind it)
first_sync_done() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		grep -q "sync (start) done" "$1" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "syncqd died: $(tail -n 3 "$1")"; exit 1; }
		sleep 0.1
	done
	echo "syncqd's first sync did not end within $2 s: $(tail -n 3 "$1")"
	exit 1
}
first_sync_done "$LOG" 10


lat_row() {		# lat_row MODE FIRST_ID LABEL
	"$T/lat" "$1" "$C" "$HUB" "$SYNCQ_SQLITE_EXT" "$CHANGES" "$SPACING_MS" "$2" >"$T/$1.us" || exit 1
	echo "| $3 | $CHANGES | $(pct "$T/$1.us" 50) ms | $(pct "$T/$1.us" 99) ms | $(pct "$T/$1.us" 100) ms |"
}
lat_up_ext=$(lat_row up-ext 1 "client → hub, app with syncq loaded (wake file)")
lat_up_plain=$(lat_row up-plain $((CHANGES + 1)) "client → hub, plain app connection (data_version)")
lat_down=$(lat_row down $((2 * CHANGES + 1)) "hub → client (NOTIFY)")

# idle: nothing to do for IDLE seconds
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
sleep 2
t0=$(ticks)
sleep "$IDLE"
t1=$(ticks)
idle_cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v s="$IDLE" 'BEGIN { printf "%.2f", 100 * t / hz / s }')
rss_idle=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")

# ROWS rows up (1,000 transactions) and ROWS down (100 statements), shipped
# by the running daemon
start=$(date +%s.%N)
{
	printf '.load %s\n' "$SYNCQ_SQLITE_EXT"
	for t in $(seq 0 999); do
		echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $((t * ROWS / 1000 + 1)) UNION ALL SELECT x + 1 FROM s WHERE x < $(((t + 1) * ROWS / 1000)))
			INSERT INTO bulk SELECT x, 'item ' || x, x % 97 FROM s; COMMIT;"
	done
} | sqlite3 -cmd '.timeout 10000' "$C" >/dev/null
for t in $(seq 0 99); do
	echo "INSERT INTO bulk_down SELECT i, 'item ' || i, i % 97 FROM generate_series($((t * ROWS / 100 + 1)), $(((t + 1) * ROWS / 100))) i;"
done | psql -X -q -d "$HUB" >/dev/null
until [ "$(hub "SELECT count(*) FROM bulk")" = "$ROWS" ] &&
	[ "$(sqlite3 "$C" "SELECT count(*) FROM bulk_down")" = "$ROWS" ]; do
	kill -0 "$pid" || { echo "syncqd died"; exit 1; }
	sleep 0.5
done
ship_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
sleep 1
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid"
trap - EXIT

# the same latencies over HTTP: a second client through syncqd serve
export AMRS_ADMIN_USERNAME=bench AMRS_ADMIN_PASSWORD=bench-pw
"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 2>"$T/serve.log" &
spid=$!
trap 'kill "$spid" 2>/dev/null || true' EXIT
URL=$(serve_url "$T/serve.log")
C2=$T/client_http.db
printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" \
	"CREATE TABLE lat (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lat');
	CREATE TABLE bulk (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); SELECT sync_track('bulk');
	CREATE TABLE bulk_down (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); SELECT sync_track('bulk_down');" |
	sqlite3 "$C2" >/dev/null
"$SYNCQD" --sqlite "$C2" --online "$URL" --control off 2>>"$T/syncqd_http.log" &
pid=$!
trap 'kill "$pid" "$spid" 2>/dev/null || true' EXIT
# (its first sync copies the 2 x ROWS rows shipped above)
first_sync_done "$T/syncqd_http.log" 600
C_LIBPQ=$C
C=$C2
lat_http_up=$(lat_row up-ext $((3 * CHANGES + 1)) "client → hub over HTTP, app with syncq loaded (wake file)")
lat_http_down=$(lat_row down $((4 * CHANGES + 1)) "hub → client over HTTP (long poll)")
C=$C_LIBPQ
kill -TERM "$pid" && wait "$pid"
kill -TERM "$spid" && wait "$spid"
trap - EXIT

echo "### syncqd running on: latency, idle cost, memory"
echo
echo "| immediate change | changes | p50 | p99 | max |"
echo "|---|---|---|---|---|"
echo "$lat_up_ext"
echo "$lat_up_plain"
echo "$lat_down"
echo "$lat_http_up"
echo "$lat_http_down"
echo
echo "(from commit to visible on the other side, one change every ${SPACING_MS} ms; aim: p50 < 20 ms, p99 < 100 ms)"
echo
echo "| running syncqd | value | aim |"
echo "|---|---|---|"
echo "| CPU over ${IDLE} s with nothing to do | ${idle_cpu}% of a core | < 1% |"
echo "| RSS, idle | $((rss_idle / 1024)) MB | |"
echo "| RSS after shipping $((2 * ROWS)) rows, $ROWS up and $ROWS down (${ship_s} s) | $((rss / 1024)) MB (peak $((hwm / 1024)) MB) | < 50 MB |"
