#!/usr/bin/env bash
# syncqd-http
# A malformed row in a client's sync_queue (written by hand or by a broken
# tool: a bad op, a key or row that is no JSON object, a changed_at that is
# no instant), or one that holds an app's value syncq cannot send (text
# that is not UTF-8, a NUL), is set aside in the file's sync_errors with the
# reason ("cannot be sent: ..."), and the changes before and after it still
# reach the hub (issue 11). It is set aside once, not tried again as a hub
# change, and survives the syncs after it. On the hub, sync_queue refuses
# such a row outright.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_queue_malformed

hub "CREATE TABLE item (id integer PRIMARY KEY, v text); SELECT sync_track('item')" >/dev/null
a=$SYNCQ_TMP/a.db
cli "$a" "CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('item')" >/dev/null
sync "$a"
node=$(plain "$a" "SELECT node_id FROM syncq_state")

note "good, four malformed rows, good; then nothing valid after a malformed one"
plain "$a" "INSERT INTO item VALUES (1, 'before')"
plain "$a" "INSERT INTO sync_queue(table_name, op, pk, row_data, changed_at, origin, priority) VALUES
	('item', 'X', '{\"id\":2}', '{\"id\":2,\"v\":\"x\"}', '2026-12-05T10:00:00.000000Z', '$node', 'batched'),
	('item', 'U', '[3]', '{\"id\":3,\"v\":\"x\"}', '2026-12-05T10:00:00.000000Z', '$node', 'batched'),
	('item', 'U', '{\"id\":4}', 'not json', '2026-12-05T10:00:00.000000Z', '$node', 'batched'),
	('item', 'D', '{\"id\":5}', NULL, 'yesterday', '$node', 'batched')"
plain "$a" "INSERT INTO item VALUES (6, 'after')"
sync "$a"
expect_eq "the hub's rows" "$(hub "SELECT id, v FROM item ORDER BY id")" "1|before
6|after"
expect_eq "set aside on a" "$(plain "$a" "SELECT op, pk, hub_seq < 0, error FROM sync_errors ORDER BY -hub_seq")" \
"X|{\"id\":2}|1|this node's queue row 2 cannot be sent: bad op \"X\"
U|[3]|1|this node's queue row 3 cannot be sent: bad pk JSON (expected a JSON object at offset 0)
U|{\"id\":4}|1|this node's queue row 4 cannot be sent: bad row JSON
D|{\"id\":5}|1|this node's queue row 5 cannot be sent: bad changed_at \"yesterday\""
expect_eq "nothing pending" "$(pending "$a")" "0"
expect_eq "nothing set aside on the hub" "$(hub "SELECT count(*) FROM sync_errors")" "0"

plain "$a" "INSERT INTO sync_queue(table_name, op, pk, row_data, changed_at, origin, priority) VALUES
	('item', 'I', '{\"id\":7', NULL, '2026-12-05T10:00:00.000000Z', '$node', 'batched')"
sync "$a"; sync "$a"
expect_eq "the tail's malformed row, set aside once" \
	"$(plain "$a" "SELECT count(*), min(error) FROM sync_errors WHERE pk = '{\"id\":7'")" \
	"1|this node's queue row 7 cannot be sent: bad pk JSON"
plain "$a" "UPDATE item SET v = 'later' WHERE id = 6"
sync "$a"; sync "$a"
expect_eq "the hub's rows after" "$(hub "SELECT id, v FROM item ORDER BY id")" "1|before
6|later"
expect_eq "set aside on a, kept" "$(plain "$a" "SELECT count(*) FROM sync_errors")" "5"
expect_eq "nothing pending after" "$(pending "$a")" "0"

note "an app's rows that hold what syncq cannot send: set aside as well, the next goes on"
plain "$a" "INSERT INTO item VALUES (8, CAST(x'6361fe' AS TEXT)); INSERT INTO item VALUES (9, CAST(x'610062' AS TEXT));
	INSERT INTO item VALUES (10, 'fine')"
sync "$a"
expect_eq "the app's rows set aside on a" \
	"$(plain "$a" "SELECT op, pk, hub_seq, error FROM sync_errors WHERE hub_seq < -7 ORDER BY -hub_seq")" \
"I|{\"id\":8}|-9|this node's queue row 9 cannot be sent: bad row JSON (text that is not UTF-8 at offset 15)
I|{\"id\":9}|-10|this node's queue row 10 cannot be sent: bad row JSON (\\u0000 is not allowed at offset 20)"
expect_eq "the hub's rows after the app's" "$(hub "SELECT id, v FROM item ORDER BY id")" "1|before
6|later
10|fine"
expect_eq "nothing pending after the app's" "$(pending "$a")" "0"

note "a row whose table name is not UTF-8: set aside as well (the hub could not even set it aside)"
plain "$a" "INSERT INTO sync_queue(table_name, op, pk, row_data, changed_at, origin, priority) VALUES
	(CAST(x'6974fe' AS TEXT), 'I', '{\"id\":11}', '{\"id\":11,\"v\":\"x\"}', '2026-12-05T10:00:00.000000Z', '$node', 'batched')"
plain "$a" "INSERT INTO item VALUES (12, 'next')"
sync "$a"
expect_eq "the row set aside on a" \
	"$(plain "$a" "SELECT hex(table_name), pk, error FROM sync_errors WHERE pk = '{\"id\":11}'")" \
	"6974FE|{\"id\":11}|this node's queue row 12 cannot be sent: bad table name (text that is not UTF-8 at offset 2)"
expect_eq "the hub's rows after the table name" "$(hub "SELECT id, v FROM item WHERE id > 10 ORDER BY id")" "12|next"
expect_eq "nothing set aside on the hub, at the end" "$(hub "SELECT count(*) FROM sync_errors")" "0"

note "the hub's queue refuses a malformed row"
for bad in "'[1]', NULL, 'D'" "'{\"id\":1}', '\"x\"', 'U'"; do
	if out=$(hub "INSERT INTO sync_queue(txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority)
		VALUES (pg_current_xact_id(), 'public', 'item', ${bad##*, }, ${bad%, *}, now(), sync_node_id(), 'batched')" 2>&1); then
		fail "the hub's queue took pk/row ${bad%, *}"
	fi
	case $out in *sync_queue_json_check*) ;; *) fail "unexpected refusal: $out" ;; esac
done
echo ok
