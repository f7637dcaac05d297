#!/usr/bin/env bash
# syncqd-http
# Keys the app sets (issue 13): a node whose insert met another record on
# the hub (sync_keys_create.sh) edits its row again before the hub's record
# has reached it. That edit is of its own record, set aside on the hub, not
# of the hub's record, and must never be written over the hub's record:
#  1. made after syncqd read the queue for the upload, while that upload
#     was under way: the hub's record, arriving in the same sync's
#     download, drops the edit from the queue (said in the log);
#  2. uploaded before the hub's record reached the node (the sync that
#     set the insert aside did not get to acknowledge it, let alone
#     download): the hub sets the edit aside with the insert.
# A hub transaction holding the fold's row (sync_hub_state), which an
# upload waits for as it begins when the hub's own changes wait to be
# folded (the hub's app writes one first), and the app's own write lock
# (held past syncqd's 2 s busy wait) open the windows.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_keys_create_window

hub "CREATE TABLE part (code text PRIMARY KEY, name text, qty integer);
	SELECT sync_track('part');
	CREATE TABLE note (id integer PRIMARY KEY, body text);
	SELECT sync_track('note');" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE part (code TEXT PRIMARY KEY, name TEXT, qty INTEGER);
		SELECT sync_track('part');
		CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT);
		SELECT sync_track('note');" >/dev/null
	sync "$f"
done
# hold_upload_lock SECONDS: the hub's app writes a row (of another table),
# then a hub transaction holds sync_hub_state's row that long, in the
# background: an upload begins with a fold of the hub's own changes
# (hub/apply.c, hub_apply_begin), which has that row to fold and waits for
# it (a fold with nothing to fold takes no lock)
hold_upload_lock() {
	hub "INSERT INTO note VALUES ((SELECT coalesce(max(id), 0) + 1 FROM note), 'hub')" >/dev/null
	psql -X -q -d "$HUB" -c "BEGIN" -c "SELECT 1 FROM sync_hub_state FOR UPDATE" \
		-c "SELECT pg_sleep($1)" -c "COMMIT" >/dev/null &
	HOLDER=$!
	for _ in $(seq 100); do
		[ "$(hub "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($1)' AND state = 'active'")" = 1 ] && return
		sleep 0.05
	done
	fail "the hub transaction did not take sync_hub_state's row"
}
# upload_waits: syncqd's upload (its queue read, the fill done) waits for it
upload_waits() {
	for _ in $(seq 100); do
		[ "$(hub "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT sync_fold_local()' AND wait_event_type = 'Lock'")" = 1 ] && return
		sleep 0.05
	done
	fail "syncqd's upload did not wait for the fold's row"
}

note "1. a and b both create P1; b edits its P1 while its upload waits for the hub"
plain "$a" "INSERT INTO part VALUES ('P1', 'pump of a', 1)"
sync "$a"
plain "$b" "INSERT INTO part VALUES ('P1', 'valve of b', 5)"
hold_upload_lock 2
"$SYNCQD" --sqlite "$b" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
syncqd=$!
upload_waits
plain "$b" "UPDATE part SET qty = 6 WHERE code = 'P1'"
wait "$syncqd" || fail "b's sync failed"
wait "$HOLDER"
grep -q "1 change of row {\"code\":\"P1\"} of \"part\" not uploaded yet dropped" "$SYNCQ_TMP/syncqd.log" ||
	fail "b's edit made during the sync was not dropped"
expect_eq "b's P1: the hub's record" "$(plain "$b" "SELECT name, qty FROM part")" "pump of a|1"
sync "$b"; sync "$a"
expect_eq "the hub's P1 stays a's" "$(hub "SELECT name, qty FROM part")" "pump of a|1"
expect_eq "b's insert waits on the hub, whole" \
	"$(hub "SELECT op, row_data->>'name', row_data->>'qty' FROM sync_errors ORDER BY seq")" "I|valve of b|5"
same_rows part "code AS id, name, qty" "$a" "$b"

note "a person deletes b's set-aside P1 (else b's next sync would retry it first)"
hub "DELETE FROM sync_errors" >/dev/null

note "2. a and b both create P2; b's sync is cut off after the hub set its insert aside; b edits; b syncs"
plain "$a" "INSERT INTO part VALUES ('P2', 'gate of a', 1)"
sync "$a"
plain "$b" "INSERT INTO part VALUES ('P2', 'belt of b', 7)"
hold_upload_lock 2
"$SYNCQD" --sqlite "$b" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
syncqd=$!
upload_waits
# the app's transaction holds b's write lock past syncqd's busy wait, so
# that syncqd cannot acknowledge its upload (nor download)
/usr/bin/python3 - "$b" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE part SET qty = 8 WHERE code = 'P2'")
time.sleep(4.5)
db.execute("COMMIT")
PY
wait "$syncqd" && note "(b's sync ended well: the app's transaction came too late to cut it off)"
wait "$HOLDER"
expect_eq "b's insert of P2 set aside on the hub" \
	"$(hub "SELECT count(*) FROM sync_errors WHERE pk::jsonb = '{\"code\":\"P2\"}' AND op = 'I'")" "1"
sync "$b"; sync "$a"
expect_eq "the hub's P2 stays a's" "$(hub "SELECT name, qty FROM part WHERE code = 'P2'")" "gate of a|1"
expect_eq "b's changes of P2 wait on the hub, its edit with its insert" \
	"$(hub "SELECT op, row_data->>'qty' FROM sync_errors WHERE pk::jsonb = '{\"code\":\"P2\"}' ORDER BY seq")" "I|7
U|8"
same_rows part "code AS id, name, qty" "$a" "$b"

note "3. b edits the hub's P2 now that it holds it: that goes through"
plain "$b" "UPDATE part SET qty = 9 WHERE code = 'P2'"
sync "$b"; sync "$a"
expect_eq "the hub's P2 after b's edit" "$(hub "SELECT name, qty FROM part WHERE code = 'P2'")" "gate of a|9"
same_rows part "code AS id, name, qty" "$a" "$b"
echo ok
