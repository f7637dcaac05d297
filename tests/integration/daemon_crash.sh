#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# syncqd running on, killed with SIGKILL at random moments while a
# 20,000-row backlog ships both ways, started again each time; between
# crashes the app adds 2,000 more rows on each side, so that every run has
# work under way when it is killed. In the end every row is on the other
# side exactly once, and the hub relayed each client change exactly once.
# Then SIGTERM in the middle of a long download: syncqd stops after the part
# at hand (exit 0), and the next one resumes where it stopped.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_crash
N=20000
MORE=2000
KILLS=${SYNCQ_CRASH_KILLS:-20}
RANDOM=4242

hub "CREATE TABLE up (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('up');
	CREATE TABLE down (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('down');
	CREATE TABLE lazy (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('lazy', 'batched');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE up (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('up');
	CREATE TABLE down (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('down');
	CREATE TABLE lazy (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('lazy', 'batched');" >/dev/null
sync "$C"
origin=$(plain "$C" "SELECT node_id FROM syncq_state")

# add_backlog FROM TO: rows FROM..TO on each side, in 10 transactions each,
# client rows alternately in an immediate and a batched table (from a
# connection with syncq loaded: its transactions have a txid, so syncqd can
# commit a long upload on the hub in parts)
add_backlog() {
	local from=$1 to=$2 t step=$((($2 - $1 + 1) / 10)) a b tbl
	for t in $(seq 0 9); do
		a=$((from + t * step))
		b=$((a + step - 1))
		tbl=up
		[ $((t % 2)) -eq 0 ] || tbl=lazy
		echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $a UNION ALL SELECT x + 1 FROM s WHERE x < $b)
			INSERT INTO $tbl SELECT x, 'c' || x FROM s; COMMIT;"
	done | sqlite3 -cmd ".load $SYNCQ_SQLITE_EXT" -cmd '.timeout 5000' "$C" >/dev/null
	for t in $(seq 0 9); do
		a=$((from + t * step))
		echo "INSERT INTO down SELECT i, 'h' || i FROM generate_series($a, $((a + step - 1))) i;"
	done | psql -X -q -d "$HUB" >/dev/null
}
add_backlog 1 "$N"
expect_eq "client backlog" "$(pending "$C")" "$N"

killed=0
for k in $(seq 1 "$KILLS"); do
	"$SYNCQD" --sqlite "$C" --online "$ONLINE" --control off 2>>"$DAEMON_LOG" &
	pid=$!
	sleep "$(awk -v r=$((RANDOM % 800)) 'BEGIN { printf "%.3f", r / 1000 }')"
	if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
	wait "$pid" 2>/dev/null || true
	add_backlog $((N + (k - 1) * MORE + 1)) $((N + k * MORE))
done
note "$killed of $KILLS daemons killed"
[ "$killed" -ge $((KILLS - 2)) ] || fail "only $killed daemons were killed; the test proves nothing"

# the whole backlog may still be there (no daemon before got through a
# sync): on a busy machine, under ASan, that first sync takes longer than 20 s
FIRST_SYNC_WAIT=120 start_daemon "$C" --control off
total=$((N + KILLS * MORE))
wait_until 60 "every client row on the hub" \
	'[ "$(hub "SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM lazy)")" = "$total" ]'
wait_until 30 "every hub row on the client" '[ "$(plain "$C" "SELECT count(*) FROM down")" = "$total" ]'
daemon_alive
stop_daemon

expect_eq "rows up on the hub" \
	"$(hub "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM (SELECT id FROM up UNION ALL SELECT id FROM lazy) u")" \
	"$total|$total|1|$total"
expect_eq "hub values" "$(hub "SELECT count(*) FROM (SELECT id, v FROM up UNION ALL SELECT id, v FROM lazy) u
	WHERE v <> 'c' || id")" 0
expect_eq "relayed once each" \
	"$(hub "SELECT count(*), count(DISTINCT table_name || pk::text) FROM sync_queue WHERE origin = '$origin'")" "$total|$total"
expect_eq "rows down on the client" "$(plain "$C" "SELECT count(*), min(id), max(id) FROM down")" "$total|1|$total"
expect_eq "client values" "$(plain "$C" "SELECT count(*) FROM down WHERE v <> 'h' || id")" 0
note "syncs done before a kill: $(grep -c "sync (start) done" "$DAEMON_LOG");" \
	"syncs that re-sent rows the hub had (killed between its commit and ours): $(grep -c " [1-9][0-9]* already there" "$DAEMON_LOG")"
expect_eq "client pending" "$(pending "$C")" 0

note "SIGTERM during a long download, then on"
hub "CREATE TABLE more (id integer PRIMARY KEY, v text); SELECT sync_track('more');" >/dev/null
cli "$C" "CREATE TABLE more (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('more');" >/dev/null
for t in $(seq 0 99); do
	echo "INSERT INTO more SELECT i, 'm' || i FROM generate_series($((t * 1000 + 1)), $(((t + 1) * 1000))) i;"
done | psql -X -q -d "$HUB" >/dev/null
"$SYNCQD" --sqlite "$C" --online "$ONLINE" --control off 2>>"$DAEMON_LOG" &
DAEMON_PID=$!
wait_until 30 "the download under way" '[ "$(plain "$C" "SELECT count(*) FROM more")" -gt 0 ]'
stop_daemon
got=$(plain "$C" "SELECT count(*) FROM more")
note "  stopped with $got of 100000 rows, $(plain "$C" "SELECT count(*) FROM syncqd_state WHERE key = 'down_target'") download cut short"
sync "$C"
expect_eq "rows after resuming" "$(plain "$C" "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM more")" "100000|100000|1|100000"
expect_eq "values" "$(plain "$C" "SELECT count(*) FROM more WHERE v <> 'm' || id")" 0
expect_eq "nothing cut short" "$(plain "$C" "SELECT count(*) FROM syncqd_state WHERE key IN ('down_target', 'down_done')")" 0
echo ok
