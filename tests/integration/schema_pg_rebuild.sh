#!/usr/bin/env bash
# syncqd-http
# A tracked table rebuilt on the hub in one transaction, from plain psql,
# synced by syncqd --once only (docs/migrating.md): new table, copy, DROP
# the old one, RENAME the new one into place (a column dropped, another
# given a wider type); then the other order, DROP the old one, CREATE the
# new one under its name, copy (a column dropped, one added). Each time the
# new table is tracked by itself with the old one's priority and key
# policy, the copied rows are not queued, the hub's writes after it (in the
# migration's session and in others) and the clients' (made before they
# migrated, carrying the dropped column) all arrive, nothing stays in
# sync_errors, and every node ends with every row and every value. A
# rebuild rolled back leaves the table tracked as it was; a table created
# under a tracked table's name in a later transaction than its DROP is not
# tracked.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub schema_pg_rebuild
hub "CREATE TABLE items (id integer PRIMARY KEY, name text, qty integer, note text, old text);
	SELECT sync_track('items', 'batched', 'natural');" >/dev/null
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
tracking() { hub "SELECT relid = 'items'::regclass, priority, keys FROM sync_tables WHERE table_name = 'items'"; }
last_seq() { hub "SELECT coalesce(max(seq), 0) FROM sync_queue"; }
queued_since() {	# queued_since SEQ: the hub's changes of items queued after SEQ
	hub "SELECT string_agg(op || pk::text, ',' ORDER BY seq) FROM sync_queue WHERE seq > $1 AND table_name = 'items'"
}

plain "$A" "INSERT INTO items VALUES (1, 'a1', 1, 'n1', 'o1')"
hub "INSERT INTO items VALUES (100, 'h100', 100, 'n100', 'o100')"
syncs
same_everywhere "id, name, qty, note, old"

note "rebuilt on the hub: new table, copy, DROP, RENAME into place (note dropped, qty made bigint)"
plain "$A" "INSERT INTO items VALUES (2, 'a2', 2, 'n2 (a has not synced)', 'o2')"
plain "$A" "UPDATE items SET name = 'a1 before the hub rebuilt' WHERE id = 1"
seq0=$(last_seq)
hub "BEGIN;
	CREATE TABLE items_new (id integer PRIMARY KEY, name text, qty bigint, old text);
	INSERT INTO items_new SELECT id, name, qty, old FROM items;
	DROP TABLE items;
	ALTER TABLE items_new RENAME TO items;
	INSERT INTO items VALUES (101, 'h101 in the migration', 5000000000, 'o101');
	COMMIT;"
expect_eq "the rebuilt table is tracked as the old one was" "$(tracking)" "t|batched|natural"
expect_eq "the copy is not queued, the migration's own write is" "$(queued_since "$seq0")" 'I{"id":101}'
expect_eq "the dropped column is recorded as gone" \
	"$(hub "SELECT column_name, renamed_to IS NULL FROM sync_columns_gone WHERE table_name = 'items'")" "note|t"
hub "INSERT INTO items VALUES (102, 'h102', 6000000000, 'o102')"
hub "UPDATE items SET name = 'h101 after the rebuild' WHERE id = 101"
expect_eq "another session's writes are queued" "$(queued_since "$seq0")" 'I{"id":101},I{"id":102},U{"id":101}'
plain "$B" "UPDATE items SET note = 'n100 by b', qty = 42 WHERE id = 100"
syncs
expect_eq "nothing set aside after the rebuild" "$(errors)" ""
grep -q 'column "note" of table "items" was dropped on the hub' "$SYNCQ_TMP/syncqd.log" "$SYNCQ_TMP/serve.log" 2>/dev/null ||
	fail "the dropped column is not in the log"
for f in "$A" "$B"; do plain "$f" "ALTER TABLE items DROP COLUMN note"; done
plain "$A" "UPDATE items SET qty = 7000000000 WHERE id = 2"
syncs
expect_eq "nothing set aside once the clients dropped it too" "$(errors)" ""
same_everywhere "id, name, qty, old"
expect_eq "every row after the first rebuild" \
	"$(hub "SELECT string_agg(id || '=' || name || '/' || qty || '/' || old, ',' ORDER BY id) FROM items")" \
	"1=a1 before the hub rebuilt/1/o1,2=a2/7000000000/o2,100=h100/42/o100,101=h101 after the rebuild/5000000000/o101,102=h102/6000000000/o102"

note "rebuilt on the hub the other way: DROP, CREATE under the same name, copy (old dropped, color added)"
plain "$B" "UPDATE items SET old = 'o1 by b', name = 'a1 by b' WHERE id = 1"
plain "$A" "INSERT INTO items VALUES (3, 'a3', 3, 'o3')"
seq0=$(last_seq)
hub "BEGIN;
	CREATE TEMP TABLE items_old AS SELECT * FROM items;
	DROP TABLE items;
	CREATE TABLE items (id integer PRIMARY KEY, name text, qty bigint, color text);
	INSERT INTO items (id, name, qty) SELECT id, name, qty FROM items_old;
	UPDATE items SET color = 'red' WHERE id = 100;
	DELETE FROM items WHERE id = 102;
	COMMIT;"
expect_eq "the table created under the name is tracked as the old one was" "$(tracking)" "t|batched|natural"
expect_eq "the copy is not queued, the migration's update and delete are" "$(queued_since "$seq0")" 'U{"id":100},D{"id":102}'
expect_eq "both dropped columns are recorded as gone" \
	"$(hub "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM sync_columns_gone WHERE table_name = 'items' AND renamed_to IS NULL")" "note,old"
hub "INSERT INTO items VALUES (103, 'h103', 103, 'blue')"
expect_eq "an insert of a later transaction is queued" "$(queued_since "$seq0")" 'U{"id":100},D{"id":102},I{"id":103}'
syncs
for f in "$A" "$B"; do
	plain "$f" "SELECT error FROM sync_errors" | grep -q 'column "color" of table "items" does not exist here' ||
		fail "$(basename "$f"): the hub's new column should wait: $(errors)"
	plain "$f" "ALTER TABLE items DROP COLUMN old; ALTER TABLE items ADD COLUMN color TEXT"
done
plain "$A" "UPDATE items SET color = 'green' WHERE id = 3"
syncs
expect_eq "nothing set aside after the second rebuild" "$(errors)" ""
same_everywhere "id, name, qty, color"
expect_eq "every row after the second rebuild" \
	"$(hub "SELECT string_agg(id || '=' || name || '/' || qty || '/' || coalesce(color, '-'), ',' ORDER BY id) FROM items")" \
	"1=a1 by b/1/-,2=a2/7000000000/-,3=a3/3/green,100=h100/42/red,101=h101 after the rebuild/5000000000/-,103=h103/103/blue"

note "a rebuild rolled back leaves the table tracked as it was"
relid=$(hub "SELECT 'items'::regclass::oid")
hub "BEGIN;
	CREATE TABLE items_new (id integer PRIMARY KEY, name text, qty bigint);
	INSERT INTO items_new SELECT id, name, qty FROM items;
	DROP TABLE items;
	ALTER TABLE items_new RENAME TO items;
	ROLLBACK;"
expect_eq "still the same table, tracked as before" \
	"$(hub "SELECT relid::oid, priority, keys FROM sync_tables WHERE table_name = 'items'")" "$relid|batched|natural"
seq0=$(last_seq)
hub "INSERT INTO items VALUES (104, 'h104', 104, 'white')"
expect_eq "its changes are queued" "$(queued_since "$seq0")" 'I{"id":104}'
syncs
expect_eq "nothing set aside after the rollback" "$(errors)" ""
same_everywhere "id, name, qty, color"
expect_eq "nothing left of the drops" "$(hub "SELECT count(*) FROM sync_tables_dropped")" "0"

note "a table created under the name in a later transaction than the DROP is not tracked"
hub "DROP TABLE items"
hub "CREATE TABLE items (id integer PRIMARY KEY, name text)"
expect_eq "not tracked" \
	"$(hub "SELECT count(*) FROM sync_tables")|$(hub "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass")" "0|0"
seq0=$(last_seq)
hub "INSERT INTO items VALUES (200, 'not tracked')"
expect_eq "nothing queued" "$(queued_since "$seq0")" ""
echo "ok"
