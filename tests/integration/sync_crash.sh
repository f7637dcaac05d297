#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# syncqd killed with SIGKILL at random moments while a 20,000-row backlog
# ships, up and down; after a final sync every row is on the other side
# exactly once, and the hub relayed each client change exactly once.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_crash
N=20000
KILLS=${SYNCQ_CRASH_KILLS:-25}
RANDOM=777

hub "CREATE TABLE up (id integer PRIMARY KEY, v text NOT NULL);
	CREATE TABLE down (id integer PRIMARY KEY, v text NOT NULL);
	SELECT sync_track('up'); SELECT sync_track('down');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE up (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
	CREATE TABLE down (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
	SELECT sync_track('up'); SELECT sync_track('down');" >/dev/null
sync "$C"
origin=$(cli "$C" "SELECT sync_node_id()")

# the backlog: client rows in 200 transactions, hub rows in 200 transactions
for t in $(seq 0 199); do
	echo "BEGIN; INSERT INTO up SELECT value, 'c' || value FROM generate_series($((t * N / 200 + 1)), $(((t + 1) * N / 200))); COMMIT;"
done | sqlite3 "$C" 2>/dev/null || {
	# sqlite3 3.40 has no generate_series in the shell without the series extension
	for t in $(seq 0 199); do
		echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $((t * N / 200 + 1)) UNION ALL SELECT x + 1 FROM s WHERE x < $(((t + 1) * N / 200))) INSERT INTO up SELECT x, 'c' || x FROM s; COMMIT;"
	done | sqlite3 "$C"
}
for t in $(seq 0 199); do
	echo "INSERT INTO down SELECT i, 'h' || i FROM generate_series($((t * N / 200 + 1)), $(((t + 1) * N / 200))) i;"
done | psql -X -q -d "$HUB" >/dev/null
expect_eq "client backlog" "$(pending "$C")" "$N"

killed=0
for k in $(seq 1 "$KILLS"); do
	"$SYNCQD" --sqlite "$C" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 400)))"
	if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
	wait "$pid" 2>/dev/null || true
	# new work arrives between crashes too
	plain "$C" "INSERT INTO up VALUES ($((N + k)), 'late$k')"
	hub "INSERT INTO down VALUES ($((N + k)), 'late$k')" >/dev/null
done
note "$killed of $KILLS runs killed mid-sync"
[ "$killed" -ge 20 ] || fail "only $killed runs were killed mid-sync; the test proves nothing"
sync "$C"
sync "$C"

total=$((N + KILLS))
expect_eq "rows up on the hub" "$(hub "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM up")" "$total|$total|1|$total"
expect_eq "hub values" "$(hub "SELECT count(*) FROM up WHERE v <> CASE WHEN id <= $N THEN 'c' || id ELSE 'late' || (id - $N) END")" "0"
expect_eq "relayed once each" "$(hub "SELECT count(*), count(DISTINCT pk::text) FROM sync_queue WHERE origin = '$origin'")" "$total|$total"
expect_eq "rows down on the client" "$(plain "$C" "SELECT count(*), min(id), max(id) FROM down")" "$total|1|$total"
expect_eq "client values" "$(plain "$C" "SELECT count(*) FROM down WHERE v <> CASE WHEN id <= $N THEN 'h' || id ELSE 'late' || (id - $N) END")" "0"
expect_eq "client pending" "$(pending "$C")" "0"
echo ok
