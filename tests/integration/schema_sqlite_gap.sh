#!/usr/bin/env bash
# syncqd-asan
# A client table rebuilt (new table, copy, DROP, RENAME into place) by a
# connection that never loaded syncq and never calls sync_repair(): SQLite
# drops the capture triggers with the old table, and the app (a plain
# connection too) inserts, updates and deletes rows of the rebuilt table
# before syncqd looks — in the rebuild's own transaction and after it.
# syncqd --once (and then the running daemon) finds the writes by the row
# sums it keeps (docs/sqlite_capture.md, Row sums): every write reaches the
# hub, once; rows the rebuild only copied are not sent again, so head-office
# edits made meanwhile to other rows (one the client wrote, one the hub
# wrote) survive; a change queued before the rebuild and not yet shipped
# goes once, with its own version. The rebuild drops a column (dropped on the
# hub first) and changes a column's type affinity ('7' becomes 7: the same
# value). Then the same with Alembic's batch mode (tests/alembic, run without
# syncq: its env.py calls no sync_repair()) on a third client.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub schema_sqlite_gap
hub "CREATE TABLE items (id integer PRIMARY KEY, name text, qty integer, note text);
	SELECT sync_track('items');" >/dev/null
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db	# syncs seldom: the hub keeps A's changes for it
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty TEXT, note TEXT);
		SELECT sync_track('items');" >/dev/null
done
sync "$B"
plain "$A" "INSERT INTO items VALUES (1, 'a1', '1', 'n1'), (2, 'a2', '2', 'n2'), (3, 'a3', '3', 'n3'),
	(4, 'a4', '4', 'n4'), (5, 'a5', '5', 'n5'), (7, 'a7', '7', 'n7')"
hub "INSERT INTO items VALUES (100, 'h100', 100, 'n100'), (101, 'h101', 101, 'n101')"
sync "$A"
sync "$A"
expect_eq "first sync" "$(plain "$A" "SELECT count(*) FROM items")|$(hub "SELECT count(*) FROM items")" "8|8"

rebuild() {	# rebuild FILE [SQL run in the rebuild's transaction after the rename]
	plain "$1" "BEGIN;
		CREATE TABLE items_new (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
		INSERT INTO items_new SELECT id, name, qty FROM items;
		DROP TABLE items;
		ALTER TABLE items_new RENAME TO items;
		${2:-}
		COMMIT;"
}
hub_rows() { hub "SELECT string_agg(id || '=' || name || '/' || qty, ',' ORDER BY id) FROM items"; }

note "--once: rebuilt by a plain connection, written before syncqd looks"
hub "ALTER TABLE items DROP COLUMN note"
MARK=$(hub "SELECT coalesce(max(seq), 0) FROM sync_queue")
plain "$A" "UPDATE items SET name = 'a5 queued' WHERE id = 5"	# captured, not shipped yet
rebuild "$A" "INSERT INTO items VALUES (6, 'a6 in the migration', 6);"
expect_eq "the rebuild took the triggers" "$(plain "$A" "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'")" "0"
plain "$A" "INSERT INTO items VALUES (8, 'a8', 8)"
plain "$A" "UPDATE items SET name = 'a2 after' WHERE id = 2"
plain "$A" "UPDATE items SET qty = 1010 WHERE id = 101"
plain "$A" "DELETE FROM items WHERE id = 4"
plain "$A" "UPDATE items SET id = 9 WHERE id = 1"
sleep 0.05
hub "UPDATE items SET name = 'head office 3' WHERE id = 3"
hub "UPDATE items SET name = 'head office 100' WHERE id = 100"
hub "UPDATE items SET name = 'head office 7' WHERE id = 7"
sync "$A"
expect_eq "the hub after --once" "$(hub_rows)" \
	"2=a2 after/2,3=head office 3/3,5=a5 queued/5,6=a6 in the migration/6,7=head office 7/7,8=a8/8,9=a1/1,100=head office 100/100,101=h101/1010"
expect_eq "each write went once, and nothing else" \
	"$(hub "SELECT string_agg(id || ':' || ops, ',' ORDER BY id) FROM (SELECT (pk->>'id')::int AS id, string_agg(op, '' ORDER BY seq) AS ops
		FROM sync_queue WHERE origin = '$(plain "$A" "SELECT node_id FROM syncq_state")' AND seq > $MARK GROUP BY 1) AS c")" \
	"1:D,2:U,4:D,5:U,6:I,8:I,9:I,101:U"
sync "$A"
same_rows items "id, name, qty" "$A"
expect_eq "nothing set aside" "$(set_aside "$A")" ""
expect_eq "nothing pending, nothing queued again by a second repair" "$(pending "$A")" "0"
expect_eq "capture is back" "$(plain "$A" "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'")" "4"

sync "$B"	# b holds what syncqd wrote from the hub only

origin_changes() {	# origin_changes FILE: the ids of its changes on the hub after $MARK
	hub "SELECT string_agg(DISTINCT pk->>'id', ',' ORDER BY pk->>'id') FROM sync_queue
		WHERE origin = '$(plain "$1" "SELECT node_id FROM syncq_state")' AND seq > $MARK"
}
note "the daemon: a rebuild with writes in its own transaction and right after it"
MARK=$(hub "SELECT coalesce(max(seq), 0) FROM sync_queue")
start_daemon "$A" --control off
rebuild "$A" "INSERT INTO items VALUES (10, 'a10 in the migration', 10); UPDATE items SET qty = 22 WHERE id = 2; DELETE FROM items WHERE id = 8;"
plain "$A" "INSERT INTO items VALUES (11, 'a11', 11)"
wait_until 20 "the daemon shipped the writes around the rebuild" \
	'[ "$(hub "SELECT string_agg(id::text, '"','"' ORDER BY id) FROM items WHERE id IN (2, 8, 10, 11) AND (id <> 2 OR qty = 22)")" = "2,10,11" ]'
stop_daemon
sync "$A"
expect_eq "a's changes with the daemon: its writes only (the hub's edits it applied are no gap writes)" \
	"$(origin_changes "$A")" "10,11,2,8"
rebuild "$B"
sync "$B"
expect_eq "b's changes after its rebuild: none (every row is as syncqd wrote it)" "$(origin_changes "$B")" ""
same_rows items "id, name, qty" "$A" "$B"
expect_eq "nothing set aside after the daemon" "$(set_aside "$A" "$B")" ""
expect_eq "head-office edits kept" "$(hub "SELECT string_agg(name, ',' ORDER BY id) FROM items WHERE id IN (3, 7, 100)")" \
	"head office 3,head office 7,head office 100"

note "Alembic batch mode on a client, syncq not loaded in the migration (no sync_repair()), the app writing before syncqd looks"
C=$SYNCQ_TMP/c.db
env -u SYNCQ_SQLITE_EXT /usr/bin/python3 "$SYNCQ_ROOT/tests/alembic/migrate.py" "sqlite:///$C" r1 2>>"$SYNCQ_TMP/alembic.log" ||
	{ tail -n 20 "$SYNCQ_TMP/alembic.log" >&2; fail "alembic upgrade r1"; }
cli "$C" "SELECT sync_track('items');" >/dev/null
sync "$C"
hub "ALTER TABLE items ADD COLUMN color text"	# r2 on the hub (r3 drops note, which the hub dropped already)
MARK=$(hub "SELECT coalesce(max(seq), 0) FROM sync_queue")
env -u SYNCQ_SQLITE_EXT /usr/bin/python3 "$SYNCQ_ROOT/tests/alembic/migrate.py" "sqlite:///$C" r3 2>>"$SYNCQ_TMP/alembic.log" ||
	{ tail -n 20 "$SYNCQ_TMP/alembic.log" >&2; fail "alembic upgrade r3"; }
expect_eq "alembic's rebuild took the triggers" "$(plain "$C" "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'")" "0"
plain "$C" "INSERT INTO items(id, name, qty, color) VALUES (20, 'c20', 20, 'red')"
plain "$C" "UPDATE items SET color = 'blue', qty = 222 WHERE id = 2"
plain "$C" "DELETE FROM items WHERE id = 9"
sleep 0.05
hub "UPDATE items SET name = 'head office 3 again' WHERE id = 3"
sync "$C"
sync "$C"
expect_eq "c's changes after the Alembic rebuild: its writes only" "$(origin_changes "$C")" "2,20,9"
expect_eq "the hub after c's sync" \
	"$(hub "SELECT string_agg(id || '=' || name || '/' || qty || '/' || coalesce(color, '-'), ',' ORDER BY id) FROM items WHERE id IN (2, 3, 9, 20)")" \
	"2=a2 after/222/blue,3=head office 3 again/3/-,20=c20/20/red"
same_rows items "id, name, qty, color" "$C"
expect_eq "nothing set aside on c" "$(set_aside "$C")" ""
