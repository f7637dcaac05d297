#!/usr/bin/env bash
# syncqd-http
# RENAME TABLE in plain SQL on both engines, from connections that never
# loaded syncq, synced by syncqd --once only: the hub first (clients'
# changes under the old name, made before they renamed, apply to the
# renamed table), then a client first (its changes wait on the hub until
# the hub renames too, then apply; the hub's and the other client's under
# the old name apply on the renamed client). Rows are written on every node in
# between; at the end nothing is in sync_errors and every node holds the
# same rows.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub schema_rename_table
hub "CREATE TABLE items (id integer PRIMARY KEY, name text);
	SELECT sync_track('items');" >/dev/null
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
		SELECT sync_track('items');" >/dev/null
	sync "$f"
done
syncs() { sync "$A"; sync "$B"; sync "$A"; sync "$B"; }
errors() { set_aside "$A" "$B"; }
same_everywhere() { same_rows "$1" "id, name" "$A" "$B"; }	# TABLE

plain "$A" "INSERT INTO items VALUES (1, 'a1')"
hub "INSERT INTO items VALUES (100, 'h100')"
syncs
same_everywhere items

note "RENAME TABLE on the hub first: the clients' changes under the old name apply to the renamed table"
hub "ALTER TABLE items RENAME TO goods"
hub "INSERT INTO goods VALUES (101, 'h101')"
plain "$A" "INSERT INTO items VALUES (2, 'a2')"
plain "$B" "UPDATE items SET name = 'h100 by b' WHERE id = 100"
syncs
plain "$A" "ALTER TABLE items RENAME TO goods"
plain "$A" "INSERT INTO goods VALUES (3, 'a3')"
syncs
plain "$B" "ALTER TABLE items RENAME TO goods"
plain "$B" "INSERT INTO goods VALUES (4, 'b4')"
syncs
expect_eq "nothing set aside after the hub renamed first" "$(errors)" ""
grep -q 'table "items" was renamed to "goods" on the hub' "$SYNCQ_TMP/syncqd.log" "$SYNCQ_TMP/serve.log" 2>/dev/null ||
	fail "the rename is not in the log"
same_everywhere goods
expect_eq "every row" "$(hub "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM goods")" \
	"1=a1,2=a2,3=a3,4=b4,100=h100 by b,101=h101"

note "RENAME TABLE on a client first: its changes wait on the hub until the hub renames too, the hub's under the old name apply on the client"
plain "$A" "ALTER TABLE goods RENAME TO wares"
plain "$A" "INSERT INTO wares VALUES (5, 'a5')"
plain "$A" "UPDATE wares SET name = 'a1+' WHERE id = 1"
plain "$B" "INSERT INTO goods VALUES (6, 'b6')"
hub "INSERT INTO goods VALUES (102, 'h102')"
syncs
hub "SELECT error FROM sync_errors WHERE pk::text = '{\"id\":5}'" | grep -q 'table "wares" is not tracked on the hub' ||
	fail "a table the hub does not have yet: $(errors)"
grep -q 'table "goods" was renamed to "wares" here' "$SYNCQ_TMP/syncqd.log" ||
	fail "the client's rename is not in the log"
hub "ALTER TABLE goods RENAME TO wares"
hub "INSERT INTO wares VALUES (103, 'h103')"
plain "$B" "INSERT INTO goods VALUES (7, 'b7')"
syncs
plain "$B" "ALTER TABLE goods RENAME TO wares"
syncs
# serve retries a node's set-aside changes at most every 2 s: a later sync
# applies what these quick ones could not
for i in 1 2 3; do [ -z "$(errors)" ] && break; sleep 1.1; syncs; done
expect_eq "nothing set aside after a client renamed first" "$(errors)" ""
same_everywhere wares
expect_eq "every row" "$(hub "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM wares")" \
	"1=a1+,2=a2,3=a3,4=b4,5=a5,6=b6,7=b7,100=h100 by b,101=h101,102=h102,103=h103"
echo "ok"
