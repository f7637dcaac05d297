#!/usr/bin/env bash
# The client's clock offset against the hub, as syncqd measures it at each
# sync, in the control API's status JSON ("clock": offset_seconds, text)
# and on the status page ("Clock: 1 h 02 min ahead of the hub"); the
# daemon runs under libfaketime (Debian's faketime) 62 minutes ahead.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_clock_status
LIBFT=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -r "$LIBFT" ] || fail "libfaketime (Debian package faketime) is not installed"
hub "CREATE TABLE doc (id integer PRIMARY KEY, v text); SELECT sync_track('doc');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE doc (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('doc');" >/dev/null
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

note "a client whose clock is 62 minutes ahead of the hub"
FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME=+62m LD_PRELOAD=$LIBFT \
	"$SYNCQD" --sqlite "$C" --online "$ONLINE" --control "127.0.0.1:$PORT" 2>>"$DAEMON_LOG" &
DAEMON_PID=$!
wait_until 20 "syncqd's first sync" 'grep -q "sync (start) done" "$DAEMON_LOG"'
s=$(curl -s "$URL/api/sync/status")
expect_eq "clock text" "$(echo "$s" | json 'd["clock"]["text"]')" "1 h 02 min ahead of the hub"
expect_eq "offset seconds" "$(echo "$s" | json '3720 <= d["clock"]["offset_seconds"] < 3730')" "True"
curl -s "$URL/" | grep -q "Clock: 1 h 02 min ahead of the hub" || fail "the status page does not show the clock offset"
stop_daemon

note "a client in step with the hub"
start_daemon "$C" --control "127.0.0.1:$PORT"
wait_until 10 "the clock in the status" \
	'[ "$(curl -s "$URL/api/sync/status" | json "(d[\"clock\"] or {}).get(\"text\")")" = "in step with the hub" ]'
stop_daemon
echo ok
