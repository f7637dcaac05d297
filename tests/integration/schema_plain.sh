#!/usr/bin/env bash
# syncqd-http
# Schema changes in plain SQL on both engines, from connections that never
# loaded syncq (the sqlite3 shell without .load, psql), synced only by
# syncqd --once: ADD COLUMN, DROP COLUMN (on the hub first, and on a client
# first), RENAME COLUMN, a column's type changed (ALTER TYPE on the hub, a
# table rebuilt on the clients: new table, copy, drop, rename; written to
# once syncqd has seen it, see docs/migrating.md), with rows written on
# every node in between. Nothing is lost, nothing is written with NULL for a value that
# was set, nothing stays in sync_errors, and every node ends with the same
# rows. Then the case sync_repair() used to get wrong: a client's change
# queued before a head-office edit of the same row, and an ALTER TABLE on
# the client: the head-office edit survives everywhere.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub schema_plain
hub "CREATE TABLE items (id integer PRIMARY KEY, name text, qty integer, note text, old text);
	SELECT sync_track('items');" >/dev/null
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, note TEXT, old TEXT);
		SELECT sync_track('items');" >/dev/null
	sync "$f"
done
syncs() { sync "$A"; sync "$B"; sync "$A"; sync "$B"; }
errors() { set_aside "$A" "$B"; }
same_everywhere() { same_rows items "$1" "$A" "$B"; }	# COLUMNS

plain "$A" "INSERT INTO items VALUES (1, 'a1', 1, 'n1', 'o1')"
hub "INSERT INTO items VALUES (100, 'h100', 100, 'n100', 'o100')"
syncs
same_everywhere "id, name, qty, note, old"

note "ADD COLUMN: a client first (the hub sets its changes aside until it has the column), then the hub, then the other client"
plain "$A" "ALTER TABLE items ADD COLUMN color TEXT"
plain "$A" "INSERT INTO items VALUES (2, 'a2', 2, 'n2', 'o2', 'red')"
plain "$A" "UPDATE items SET color = 'blue' WHERE id = 1"
sync "$A"
hub "SELECT error FROM sync_errors WHERE pk::text = '{\"id\":2}'" | grep -q 'column "color" of table "items" does not exist on the hub' ||
	fail "a column the hub does not have yet: $(errors)"
hub "ALTER TABLE items ADD COLUMN color text"
hub "INSERT INTO items VALUES (101, 'h101', 101, 'n101', 'o101', 'green')"
sync "$A"	# the set-aside changes go through now
sync "$B"	# b has no color yet: the hub's change waits
plain "$B" "SELECT error FROM sync_errors" | grep -q 'column "color" of table "items" does not exist here' ||
	fail "b: a column it does not have yet: $(errors)"
plain "$B" "ALTER TABLE items ADD COLUMN color TEXT"
syncs
expect_eq "nothing set aside after ADD COLUMN" "$(errors)" ""
same_everywhere "id, name, qty, note, old, color"
expect_eq "colors" "$(hub "SELECT string_agg(id || '=' || color, ',' ORDER BY id) FROM items WHERE color IS NOT NULL")" "1=blue,2=red,101=green"

note "DROP COLUMN on the hub first: clients' changes that still carry it apply without it"
hub "ALTER TABLE items DROP COLUMN note"
plain "$A" "INSERT INTO items VALUES (3, 'a3', 3, 'n3', 'o3', 'c3')"
plain "$B" "UPDATE items SET name = 'h100 by b', note = 'gone soon' WHERE id = 100"
syncs
expect_eq "nothing set aside: the dropped column left the changes" "$(errors)" ""
grep -q 'column "note" of table "items" was dropped on the hub' "$SYNCQ_TMP/syncqd.log" "$SYNCQ_TMP/serve.log" 2>/dev/null ||
	fail "the drop is not in the log"
plain "$A" "ALTER TABLE items DROP COLUMN note"
plain "$B" "ALTER TABLE items DROP COLUMN note"
plain "$A" "UPDATE items SET name = 'a3+' WHERE id = 3"
syncs
same_everywhere "id, name, qty, old, color"

note "DROP COLUMN on a client first (SQLite lets a tracked table's column go): the hub's changes apply there without it"
plain "$B" "ALTER TABLE items DROP COLUMN old"
plain "$B" "INSERT INTO items VALUES (4, 'b4', 4, 'c4')"
hub "INSERT INTO items VALUES (102, 'h102', 102, 'o102', 'c102')"
hub "UPDATE items SET name = 'a1 by hub', old = 'o1+' WHERE id = 1"
syncs
expect_eq "nothing set aside after a client dropped a column" "$(errors)" ""
grep -q 'column "old" of table "items" was dropped here' "$SYNCQ_TMP/syncqd.log" || fail "the client's drop is not in the log"
hub "ALTER TABLE items DROP COLUMN old"
plain "$A" "ALTER TABLE items DROP COLUMN old"
syncs
same_everywhere "id, name, qty, color"

note "RENAME COLUMN on the hub first: clients' changes under the old name land in the renamed column"
hub "ALTER TABLE items RENAME COLUMN qty TO quantity"
plain "$A" "INSERT INTO items VALUES (5, 'a5', 5, 'c5')"
plain "$B" "UPDATE items SET qty = 44 WHERE id = 4"
hub "INSERT INTO items VALUES (103, 'h103', 103, 'c103')"
syncs
expect_eq "renamed on the hub: changes under the new name wait on the clients (not yet there)" \
	"$(errors | cut -d'|' -f1,4 | sort)" "a|{\"id\":103}
a|{\"id\":4}
b|{\"id\":103}
b|{\"id\":5}"
plain "$A" "ALTER TABLE items RENAME COLUMN qty TO quantity"
plain "$B" "ALTER TABLE items RENAME COLUMN qty TO quantity"
plain "$B" "UPDATE items SET quantity = 444 WHERE id = 4"
syncs
expect_eq "nothing set aside after RENAME COLUMN" "$(errors)" ""
same_everywhere "id, name, quantity, color"
expect_eq "quantities" "$(hub "SELECT string_agg(id || '=' || quantity, ',' ORDER BY id) FROM items")" \
	"1=1,2=2,3=3,4=444,5=5,100=100,101=101,102=102,103=103"

note "a column's type: ALTER TYPE on the hub, the table rebuilt on the clients (new table, copy, drop, rename)"
hub "ALTER TABLE items ALTER COLUMN quantity TYPE bigint"
hub "INSERT INTO items VALUES (104, 'h104', 9007199254740993, 'c104')"
for f in "$A" "$B"; do
	plain "$f" "BEGIN;
		CREATE TABLE items_new (id INTEGER PRIMARY KEY, name TEXT, quantity BIGINT, color TEXT);
		INSERT INTO items_new SELECT id, name, quantity, color FROM items;
		DROP TABLE items;
		ALTER TABLE items_new RENAME TO items;
		COMMIT;"
done
syncs	# syncqd sees the rebuilt tables and puts their triggers back before it reads
expect_eq "capture is back on the rebuilt tables" \
	"$(plain "$A" "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'")|$(plain "$B" "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'")" "4|4"
plain "$A" "UPDATE items SET name = 'a2 after the rebuild' WHERE id = 2"
plain "$A" "INSERT INTO items VALUES (6, 'a6', 6000000000, 'c6')"
plain "$B" "UPDATE items SET quantity = 7000000000 WHERE id = 4"
syncs
expect_eq "nothing set aside after the type change" "$(errors)" ""
same_everywhere "id, name, quantity, color"
expect_eq "big quantities" "$(hub "SELECT string_agg(id || '=' || quantity, ',' ORDER BY id) FROM items WHERE quantity > 2147483647")" \
	"4=7000000000,6=6000000000,104=9007199254740993"

note "a client's change queued before a head-office edit, then an ALTER TABLE and a repair on the client: the head-office edit survives"
plain "$A" "UPDATE items SET name = 'stale client copy' WHERE id = 5"
sleep 0.05
hub "UPDATE items SET name = 'head office' WHERE id = 5"
plain "$A" "ALTER TABLE items ADD COLUMN extra TEXT"
cli "$A" "SELECT sync_repair();" >/dev/null
[ "$(plain "$A" "SELECT count(*) FROM sync_queue WHERE pk = '{\"id\":5}' AND seq > (SELECT CAST(value AS INTEGER) FROM syncqd_state WHERE key = 'up_seq')")" = 1 ] ||
	fail "sync_repair() queued the row again: $(plain "$A" "SELECT * FROM sync_queue")"
hub "ALTER TABLE items ADD COLUMN extra text"
plain "$B" "ALTER TABLE items ADD COLUMN extra TEXT"
syncs
expect_eq "the head-office edit everywhere" \
	"$(hub "SELECT name FROM items WHERE id = 5")|$(plain "$A" "SELECT name FROM items WHERE id = 5")|$(plain "$B" "SELECT name FROM items WHERE id = 5")" \
	"head office|head office|head office"
expect_eq "the client's stale change is kept as overruled" \
	"$(hub "SELECT count(*) FROM sync_conflicts WHERE pk::text = '{\"id\":5}' AND loser_row::text LIKE '%stale client copy%'")" "1"
expect_eq "nothing set aside at the end" "$(errors)" ""
same_everywhere "id, name, quantity, color, extra"
echo "ok"
