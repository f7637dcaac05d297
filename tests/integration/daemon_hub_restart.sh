#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The hub goes away for 10 s while the app keeps writing, then comes back:
# syncqd never exits, reconnects (backoff), and every change arrives exactly
# once, both ways. Runs its own PostgreSQL cluster, so that stopping it
# disturbs no other test.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
. "$SYNCQ_ROOT/tests/lib/pgcluster.sh"
OWN=$SYNCQ_TMP/pg
trap 'daemon_cleanup; pgc_stop "$OWN"' EXIT
pgc_start "$OWN" >/dev/null
new_hub daemon_hub_restart
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');
	CREATE TABLE h (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('h');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');
	CREATE TABLE h (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('h');" >/dev/null
PORT=$(free_port)
start_daemon "$C" --control "127.0.0.1:$PORT"
origin=$(plain "$C" "SELECT node_id FROM syncq_state")
status() { curl -s "http://127.0.0.1:$PORT/api/sync/status"; }

# the app writes a row every 50 ms until told to stop, alternating a plain
# connection and one that loaded syncq
WRITING=$SYNCQ_TMP/writing
touch "$WRITING"
(
	i=0
	while [ -f "$WRITING" ]; do
		i=$((i + 1))
		if [ $((i % 2)) -eq 0 ]; then
			plain "$C" "INSERT INTO t VALUES ($i, 'row $i')"
		else
			cli "$C" "INSERT INTO t VALUES ($i, 'row $i')" >/dev/null
		fi
		sleep 0.05
	done
	echo "$i" >"$SYNCQ_TMP/written"
) &
writer=$!

hub "INSERT INTO h VALUES (1, 'before')"
sleep 2
note "hub down for 10 s"
pgc_stop "$OWN"
stopped_at=$(now_ms)
sleep 3
status | grep -q '"connected": false' || fail "the status does not say the hub is gone: $(status)"
sleep 7
daemon_alive
grep -q "sync (.*) failed" "$DAEMON_LOG" || fail "no failed sync logged while the hub was down"
note "hub back after $(($(now_ms) - stopped_at)) ms"
pgc_restart "$OWN"
hub "INSERT INTO h VALUES (2, 'after')"
sleep 2
rm "$WRITING"
wait "$writer"
n=$(cat "$SYNCQ_TMP/written")
note "the app wrote $n rows"
[ "$n" -ge 100 ] || fail "the writer wrote only $n rows"

wait_until 45 "every row on the hub" '[ "$(hub "SELECT count(*) FROM t")" = "$n" ]'
wait_until 5 "the hub's rows on the client" '[ "$(plain "$C" "SELECT count(*) FROM h")" = 2 ]'
daemon_alive
grep -q "connected again to the hub" "$DAEMON_LOG" || fail "no reconnect logged"
expect_eq "hub rows" "$(hub "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t")" "$n|$n|1|$n"
expect_eq "hub values" "$(hub "SELECT count(*) FROM t WHERE v <> 'row ' || id")" 0
expect_eq "relayed once each" "$(hub "SELECT count(*), count(DISTINCT pk::text) FROM sync_queue WHERE origin = '$origin'")" "$n|$n"
expect_eq "client pending" "$(pending "$C")" 0
wait_until 5 "the status: connected" 'status | grep -q "\"connected\": true"'
stop_daemon
echo ok
