#!/usr/bin/env bash
# syncqd-asan
# A sync over HTTP in two requests (docs/http.md): a syncqd daemon whose
# app writes sends the upload (the hello folded in) and the snapshot (the
# first page of the hub's changes come along); a sync with nothing to send
# is the snapshot alone. Counted from the daemon's own log of every POST,
# sync by sync. Also: a download of several pages goes on from the first
# page; the hub's tables changed between two syncs (the folded hello finds
# another digest: nothing is applied, the sync starts again with the new
# tables, the row with its new column arrives whole); the position a
# download stored is told with the next snapshot, and by `done` as the
# daemon stops; --once. Always over HTTP (whatever SYNCQ_TRANSPORT).
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"

new_hub http_requests
[ -n "$SERVE_PID" ] || start_serve
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL);
	SELECT sync_track('t', 'immediate');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
start_daemon "$C" --control off --log-level debug

hub_has() { [ "$(hub "SELECT v FROM t WHERE id = $1")" = "$2" ]; }
client_has() { [ "$(plain "$C" "SELECT v FROM t WHERE id = $1")" = "$2" ]; }

# The requests of each sync the daemon logged after line $1 of its log, one
# line per sync: "N op op ..." (the sync's steps; errors, the status's
# count of set-aside changes, is no step of a sync).
requests_per_sync() {
	tail -n +"$(($1 + 1))" "$DAEMON_LOG" | awk '
		/serve: [a-z]+: [0-9]+ bytes sent/ {
			op = $0; sub(/.*serve: /, "", op); sub(/:.*/, "", op)
			if (op != "errors") { n++; ops = ops " " op }
		}
		/\) done in / { print n + 0 ops; n = 0; ops = "" }'
}

# expect_requests FROM MAX WHAT: every sync since log line FROM took at
# most MAX requests, and at least one sync ran.
expect_requests() {
	local per
	per=$(requests_per_sync "$1")
	note "  requests per sync, $3: $(echo "$per" | tr '\n' ',' | sed 's/,$//')"
	[ -n "$per" ] || fail "$3: no sync logged"
	echo "$per" | awk -v max="$2" '$1 > max { bad = 1 } END { exit bad }' ||
		fail "$3: a sync took more than $2 requests: $per"
}

# The syncs since log line $1 are over (the last one logged its end).
settled() {
	sleep 0.3
	[ "$(requests_per_sync "$1" | wc -l)" -ge 1 ] &&
		[ "$(tail -n 1 "$DAEMON_LOG" | grep -c ') done in ')" = 1 ]
}

note "the app writes: upload and snapshot, 2 requests"
for i in 1 2 3; do
	from=$(wc -l <"$DAEMON_LOG")
	cli "$C" "INSERT INTO t VALUES ($i, 'client $i')" >/dev/null
	wait_until 5 "row $i on the hub" "hub_has $i 'client $i'"
	wait_until 5 "the sync's end" "settled $from"
	expect_requests "$from" 2 "row $i up"
	requests_per_sync "$from" | grep -q '^2 upload snapshot$' ||
		fail "row $i: no sync of an upload and a snapshot: $(requests_per_sync "$from")"
done

note "the hub writes: the snapshot with the first page, 1 request"
for i in 11 12 13; do
	from=$(wc -l <"$DAEMON_LOG")
	hub "INSERT INTO t VALUES ($i, 'hub $i')"
	wait_until 5 "row $i on the client" "client_has $i 'hub $i'"
	wait_until 5 "the sync's end" "settled $from"
	expect_requests "$from" 1 "row $i down"
done

note "both write: 2 requests"
from=$(wc -l <"$DAEMON_LOG")
hub "INSERT INTO t VALUES (21, 'hub 21')"
cli "$C" "INSERT INTO t VALUES (22, 'client 22')" >/dev/null
wait_until 5 "row 21 on the client" "client_has 21 'hub 21'"
wait_until 5 "row 22 on the hub" "hub_has 22 'client 22'"
wait_until 5 "the sync's end" "settled $from"
expect_requests "$from" 2 "rows 21 and 22"

note "a download of several pages goes on from the one the snapshot brought"
# (the daemon held still while the hub commits, so that one download
# takes all three transactions: a page ends after 20,000 changes)
from=$(wc -l <"$DAEMON_LOG")
kill -STOP "$DAEMON_PID"
hub "BEGIN; INSERT INTO t SELECT g, 'page' FROM generate_series(1000, 12999) g; COMMIT;
	BEGIN; INSERT INTO t SELECT g, 'page' FROM generate_series(13000, 24999) g; COMMIT;
	BEGIN; INSERT INTO t SELECT g, 'page' FROM generate_series(25000, 36999) g; COMMIT;"
kill -CONT "$DAEMON_PID"
wait_until 60 "36,000 rows on the client" \
	'[ "$(plain "$C" "SELECT count(*) FROM t WHERE v = '"'page'"'")" = 36000 ]'
wait_until 10 "the sync's end" "settled $from"
per=$(requests_per_sync "$from")
note "  requests per sync: $(echo "$per" | tr '\n' ',')"
echo "$per" | grep -q 'snapshot changes' || fail "no download went on past its first page: $per"
expect_eq "the client's rows, as the hub's" \
	"$(plain "$C" "SELECT count(*), sum(id) FROM t")" "$(hub "SELECT count(*), sum(id) FROM t")"

note "the hub's tables changed between two syncs: the sync starts again with the new ones"
hub "ALTER TABLE t ADD COLUMN note text" >/dev/null
plain "$C" "ALTER TABLE t ADD COLUMN note TEXT"
from=$(wc -l <"$DAEMON_LOG")
cli "$C" "INSERT INTO t VALUES (41, 'client 41', 'a note')" >/dev/null
wait_until 10 "row 41 on the hub" '[ "$(hub "SELECT v || '"'/'"' || note FROM t WHERE id = 41")" = "client 41/a note" ]'
grep -q "the hub's tracked tables changed: syncing again" <(tail -n +"$((from + 1))" "$DAEMON_LOG") ||
	fail "the folded hello did not find the tables changed: $(tail -n +"$((from + 1))" "$DAEMON_LOG" | grep -v DEBUG | tail -n 5)"
expect_eq "set aside on the hub" "$(hub "SELECT count(*) FROM sync_errors")" "0"
hub "UPDATE t SET note = 'hub note' WHERE id = 41"
wait_until 5 "the hub's note on the client" '[ "$(plain "$C" "SELECT note FROM t WHERE id = 41")" = "hub note" ]'

note "the position a download stored: told with the next snapshot, and as the daemon stops"
from=$(wc -l <"$DAEMON_LOG")
hub "INSERT INTO t VALUES (51, 'hub 51', NULL)"
wait_until 5 "row 51 on the client" "client_has 51 'hub 51'"
wait_until 5 "the sync's end" "settled $from"
stored=$(plain "$C" "SELECT value FROM syncqd_state WHERE key = 'down_snapshot'")
node=$(hub "SELECT node_id FROM sync_clients")		# (the one client)
told=$(hub "SELECT down_snapshot FROM sync_clients WHERE node_id = '$node'")
[ "$told" != "$stored" ] || note "  (told already: a later sync ran)"
stop_daemon
grep -q 'serve: done: ' <(tail -n +"$((from + 1))" "$DAEMON_LOG") || fail "no done as the daemon stopped"
expect_eq "the position the hub notes for the client" \
	"$(hub "SELECT down_snapshot FROM sync_clients WHERE node_id = '$node'")" "$stored"

note "--once: a hello (the link's first), the upload, the snapshot, done at the end"
: >"$SYNCQ_TMP/syncqd.log"
plain "$C" "INSERT INTO t VALUES (61, 'client 61', NULL)"
SYNCQD_ARGS="--log-level debug" sync "$C"
ops=$(grep -o 'serve: [a-z]*: [0-9]* bytes sent' "$SYNCQ_TMP/syncqd.log" | awk '{ print $2 }' | tr -d ':' | tr '\n' ' ')
note "  --once: $ops"
expect_eq "--once's requests" "$ops" "hello upload snapshot done "
expect_eq "row 61 on the hub" "$(hub "SELECT v FROM t WHERE id = 61")" "client 61"
