#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# An upload the hub committed in one transaction of two pages (the first
# page ends inside a local transaction) and that this file acknowledged only
# up to its first mark (syncqd killed between two acknowledgements, or the
# second one failed: here a trigger refuses it). The re-send starts at that
# mark, so its pages end elsewhere, one at the end of a local transaction
# before the hub's position: it is not a cloned file, and must not be taken
# for one.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_ack_partial
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
sync "$C"
base=$(plain "$C" "SELECT coalesce(max(seq), 0) FROM sync_queue")
# one local transaction of 6,000 rows, then 30 of 200: the upload is one hub
# transaction up to base + 10,000 (pages of 5,000; marks every 2,000)
{
	echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 6000) INSERT INTO t SELECT x, 'c' || x FROM s; COMMIT;"
	for i in $(seq 0 29); do
		a=$((6001 + i * 200))
		echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $a UNION ALL SELECT x + 1 FROM s WHERE x < $((a + 199))) INSERT INTO t SELECT x, 'c' || x FROM s; COMMIT;"
	done
} | sqlite3 -cmd ".load $SYNCQ_SQLITE_EXT" "$C" >/dev/null
expect_eq "pending" "$(pending "$C")" 12000

# every acknowledgement after the first (up to base + 2,000) fails
stop="CAST(new.value AS INTEGER) > $((base + 2000))"
plain "$C" "CREATE TRIGGER test_ack_i BEFORE INSERT ON syncqd_state WHEN new.key = 'up_seq' AND $stop
	BEGIN SELECT RAISE(ABORT, 'test: acknowledgement refused'); END;
	CREATE TRIGGER test_ack_u BEFORE UPDATE ON syncqd_state WHEN new.key = 'up_seq' AND $stop
	BEGIN SELECT RAISE(ABORT, 'test: acknowledgement refused'); END;"
"$SYNCQD" --sqlite "$C" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" && fail "the refused acknowledgement went unnoticed"
grep -q "acknowledgement refused" "$SYNCQ_TMP/syncqd.log" || { tail -n 3 "$SYNCQ_TMP/syncqd.log" >&2; fail "syncqd failed otherwise"; }
expect_eq "acknowledged here" "$(plain "$C" "SELECT value FROM syncqd_state WHERE key = 'up_seq'")" $((base + 2000))
expect_eq "on the hub" "$(hub "SELECT up_seq FROM sync_clients")" $((base + 10000))
plain "$C" "DROP TRIGGER test_ack_i; DROP TRIGGER test_ack_u;"

sync "$C"
expect_eq "rows on the hub" "$(hub "SELECT count(*), min(id), max(id) FROM t")" "12000|1|12000"
expect_eq "relayed once each" "$(hub "SELECT count(*), count(DISTINCT pk::text) FROM sync_queue")" "12000|12000"
expect_eq "pending" "$(pending "$C")" 0
note "the re-send reached the hub's position: not taken for a clone; every row once"
