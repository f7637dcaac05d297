#!/usr/bin/env bash
# syncqd-asan
# A client killed while `syncqd serve` applies its upload (docs/http.md,
# A client that goes away): serve rolls the upload back before its next
# page instead of applying the rest for nobody, so the node's row is free
# for the client's next upload at once, and that upload brings every
# change, once. Always over HTTP (whatever SYNCQ_TRANSPORT).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

N=60000		# one local transaction: one upload of 12 pages
new_hub http_client_gone
[ -n "$SERVE_PID" ] || start_serve
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
sync "$C"
cli "$C" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $N)
	INSERT INTO t SELECT x, 'row ' || x FROM s;" >/dev/null

# serve's connection is in a transaction that wrote: the upload's (the
# request was read whole before serve took a hub connection). Only serve's
# connections: an autovacuum ANALYZE holds a transaction id too, and a
# kill then would stop the client before it sent anything.
applying() {
	[ "$(hub "SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND application_name = 'syncqd' AND backend_type = 'client backend'
		  AND backend_xid IS NOT NULL")" -gt 0 ]
}
"$SYNCQD" --sqlite "$C" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
pid=$!
seen=
for _ in $(seq 1500); do
	if applying; then seen=1; break; fi
	kill -0 "$pid" 2>/dev/null || fail "syncqd --once ended before the hub applied its upload"
	sleep 0.02
done
[ -n "$seen" ] || fail "the hub never applied the upload"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
note "killed syncqd while the hub applied its upload"

gone="its client closed the connection: upload of $N changes not applied"
for _ in $(seq 600); do
	grep -q "$gone" "$SERVE_LOG" && break
	sleep 0.05
done
grep -q "$gone" "$SERVE_LOG" || { tail -n 5 "$SERVE_LOG" >&2; fail "serve did not give up the upload of a killed client"; }
expect_eq "rows on the hub after the killed upload" "$(hub "SELECT count(*) FROM t")" 0
expect_eq "version rows after the killed upload" "$(hub "SELECT count(*) FROM sync_versions WHERE table_name = 't'")" 0

sync "$C"
expect_eq "rows on the hub" "$(hub "SELECT count(*) || ' ' || sum(id) FROM t")" "$N $((N * (N + 1) / 2))"
expect_eq "version rows" "$(hub "SELECT count(*) FROM sync_versions WHERE table_name = 't'")" "$N"
expect_eq "what the client has to send" "$(pending "$C")" 0
note "the next sync brought all $N rows, once"
