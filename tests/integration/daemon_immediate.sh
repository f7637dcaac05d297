#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# syncqd running on: an immediate change crosses within 1 s each way, from
# a connection that loaded syncq (the wake file), from a plain connection
# (PRAGMA data_version) and from the hub (NOTIFY); a burst of commits ships
# in a few syncs, not one per commit; sync_trigger() on either side wakes
# it; a second syncqd on the same file refuses to start; SIGHUP reopens the
# log file; SIGTERM exits 0.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_immediate
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
start_daemon "$C" --control off --log-level debug

hub_has() { [ "$(hub "SELECT v FROM t WHERE id = $1")" = "$2" ]; }
client_has() { [ "$(plain "$C" "SELECT v FROM t WHERE id = $1")" = "$2" ]; }

note "client -> hub, a connection that loaded syncq (the wake file)"
for i in 1 2 3; do
	t0=$(now_ms)
	cli "$C" "INSERT INTO t VALUES ($i, 'ext $i')" >/dev/null
	wait_until 1 "row $i on the hub" "hub_has $i 'ext $i'"
	note "  row $i: $(($(now_ms) - t0)) ms (with the polling of this test)"
done

note "client -> hub, a plain connection (PRAGMA data_version)"
for i in 4 5 6; do
	t0=$(now_ms)
	plain "$C" "INSERT INTO t VALUES ($i, 'plain $i')"
	wait_until 1 "row $i on the hub" "hub_has $i 'plain $i'"
	note "  row $i: $(($(now_ms) - t0)) ms"
done

note "hub -> client (NOTIFY)"
for i in 7 8 9; do
	t0=$(now_ms)
	hub "INSERT INTO t VALUES ($i, 'hub $i')"
	wait_until 1 "row $i on the client" "client_has $i 'hub $i'"
	note "  row $i: $(($(now_ms) - t0)) ms"
done

note "an update and a delete each way"
cli "$C" "UPDATE t SET v = 'ext 1 again' WHERE id = 1" >/dev/null
wait_until 1 "update on the hub" "hub_has 1 'ext 1 again'"
hub "DELETE FROM t WHERE id = 7"
wait_until 1 "delete on the client" '[ "$(plain "$C" "SELECT count(*) FROM t WHERE id = 7")" = 0 ]'

note "a burst of 200 commits ships in a few syncs"
before=$(syncs_done)
{
	printf '.load %s\n.timeout 5000\n' "$SYNCQ_SQLITE_EXT"
	for i in $(seq 100 299); do echo "INSERT INTO t VALUES ($i, 'burst');"; done
} | sqlite3 "$C"
wait_until 5 "the burst on the hub" '[ "$(hub "SELECT count(*) FROM t WHERE v = '"'burst'"'")" = 200 ]'
sleep 0.3
n=$(($(syncs_done) - before))
note "  200 commits, $n syncs"
[ "$n" -ge 1 ] && [ "$n" -le 50 ] || fail "a burst of 200 commits took $n syncs"

note "sync_trigger() on the hub and on the client wake syncqd"
hub "SELECT sync_trigger()" >/dev/null
wait_until 1 "a sync for the hub's sync_trigger()" 'grep -q "sync (sync_trigger() on the hub) done" "$DAEMON_LOG"'
cli "$C" "SELECT sync_trigger()" >/dev/null
wait_until 1 "a sync for the client's sync_trigger()" 'grep -q "sync (sync_trigger() on the client) done" "$DAEMON_LOG"'

note "a second syncqd on the same file refuses to start"
rc=0
"$SYNCQD" --sqlite "$C" --online "$ONLINE" --control off 2>"$SYNCQ_TMP/second.err" || rc=$?
expect_eq "second syncqd's exit status" "$rc" 1
grep -q "another syncqd (pid $DAEMON_PID) is already running on" "$SYNCQ_TMP/second.err" ||
	fail "second syncqd: $(cat "$SYNCQ_TMP/second.err")"
rc=0
"$SYNCQD" --sqlite "$C" --online "$ONLINE" --once 2>"$SYNCQ_TMP/second.err" || rc=$?
expect_eq "syncqd --once beside it" "$rc" 1
daemon_alive

note "SIGTERM: exit 0"
stop_daemon
grep -q "stopping on request" "$DAEMON_LOG" || fail "no stop logged"

note "--log-file, reopened on SIGHUP"
DAEMON_LOG=$SYNCQ_TMP/rotated.log
start_daemon "$C" --control off --log-file "$DAEMON_LOG"
mv "$DAEMON_LOG" "$DAEMON_LOG.1"
kill -HUP "$DAEMON_PID"
wait_until 2 "the log file reopened" '[ -f "$DAEMON_LOG" ] && grep -q "reopened" "$DAEMON_LOG"'
cli "$C" "INSERT INTO t VALUES (1000, 'after rotation')" >/dev/null
wait_until 1 "row 1000 on the hub" "hub_has 1000 'after rotation'"
wait_until 1 "the sync logged in the new file" 'grep -q "sync (the wake file) done" "$DAEMON_LOG"'
grep -q "sync (start) done" "$DAEMON_LOG.1" || fail "the old file lost its lines"
stop_daemon

expect_eq "client and hub agree" "$(plain "$C" "SELECT count(*), sum(length(v)) FROM t")" \
	"$(hub "SELECT count(*), sum(length(v)) FROM t")"
expect_eq "pending" "$(pending "$C")" 0
echo ok
