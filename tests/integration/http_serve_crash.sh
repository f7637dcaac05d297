#!/usr/bin/env bash
# syncqd-asan
# syncqd serve killed with SIGKILL at random moments while a client ships a
# 20,000-row backlog through it, up and down, and started again; after a
# final sync every row is on the other side exactly once, and the hub
# relayed each client change exactly once. (The client side's SIGKILLs over
# HTTP are sync_crash's, run with SYNCQ_TRANSPORT=http.)
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub http_serve_crash
start_serve
N=20000
KILLS=${SYNCQ_CRASH_KILLS:-15}
RANDOM=4242

hub "CREATE TABLE up (id integer PRIMARY KEY, v text NOT NULL);
	CREATE TABLE down (id integer PRIMARY KEY, v text NOT NULL);
	SELECT sync_track('up'); SELECT sync_track('down');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE up (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
	CREATE TABLE down (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
	SELECT sync_track('up'); SELECT sync_track('down');" >/dev/null
sync "$C"
origin=$(cli "$C" "SELECT sync_node_id()")

for t in $(seq 0 99); do
	echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $((t * N / 100 + 1)) UNION ALL SELECT x + 1 FROM s WHERE x < $(((t + 1) * N / 100))) INSERT INTO up SELECT x, 'c' || x FROM s; COMMIT;"
done | sqlite3 "$C"
for t in $(seq 0 99); do
	echo "INSERT INTO down SELECT i, 'h' || i FROM generate_series($((t * N / 100 + 1)), $(((t + 1) * N / 100))) i;"
done | psql -X -q -d "$HUB" >/dev/null

killed=0
for k in $(seq 1 "$KILLS"); do
	"$SYNCQD" --sqlite "$C" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 500)))"
	if kill -0 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
	kill -9 "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	start_serve
	plain "$C" "INSERT INTO up VALUES ($((N + k)), 'late$k')"
	hub "INSERT INTO down VALUES ($((N + k)), 'late$k')" >/dev/null
done
note "$killed of $KILLS kills of serve came while the client was syncing"
[ "$killed" -ge 10 ] || fail "only $killed kills came mid-sync; the test proves nothing"
grep -q "Connection refused\|Couldn't connect\|Empty reply\|Recv failure\|Server returned nothing\|Connection reset" "$SYNCQ_TMP/syncqd.log" ||
	fail "no client saw serve go away"
sync "$C"
sync "$C"

total=$((N + KILLS))
expect_eq "rows up on the hub" "$(hub "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM up")" "$total|$total|1|$total"
expect_eq "hub values" "$(hub "SELECT count(*) FROM up WHERE v <> CASE WHEN id <= $N THEN 'c' || id ELSE 'late' || (id - $N) END")" "0"
expect_eq "relayed once each" "$(hub "SELECT count(*), count(DISTINCT pk::text) FROM sync_queue WHERE origin = '$origin'")" "$total|$total"
expect_eq "rows down on the client" "$(plain "$C" "SELECT count(*), min(id), max(id) FROM down")" "$total|1|$total"
expect_eq "client values" "$(plain "$C" "SELECT count(*) FROM down WHERE v <> CASE WHEN id <= $N THEN 'h' || id ELSE 'late' || (id - $N) END")" "0"
expect_eq "client pending" "$(pending "$C")" "0"
