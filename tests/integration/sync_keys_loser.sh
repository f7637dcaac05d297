#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The loser of an insert that meets another record's insert (issue 13,
# keys the app sets) is set aside on its own node too: two nodes insert
# one key offline; the hub keeps the first to arrive and sets the other
# aside in its sync_errors (sync_keys_create.sh); the upload's reply names
# those changes, and the loser's syncqd keeps each in its own file's
# sync_errors (hub_seq = minus its queue seq), its row as it sent it, with
# a message that names the table, the key and that another node's record
# reached the hub first. The entry goes when the hub's copy of it goes: a
# person deleted it there, or it went through once the other record left
# its key.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub sync_keys_loser

hub "CREATE TABLE machine (id integer PRIMARY KEY, model text, hours integer);
	CREATE TABLE part (code text PRIMARY KEY, name text);
	SELECT sync_track('machine'); SELECT sync_track('part');" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE machine (id INTEGER PRIMARY KEY, model TEXT, hours INTEGER);
		CREATE TABLE part (code TEXT PRIMARY KEY, name TEXT);
		SELECT sync_track('machine'); SELECT sync_track('part');" >/dev/null
	sync "$f"
done
node_a=$(plain "$a" "SELECT node_id FROM syncq_state")

note "a and b both create machine 1 and part P1 offline; b edits its machine 1 again"
plain "$a" "INSERT INTO machine VALUES (1, 'lathe of a', 10); INSERT INTO part VALUES ('P1', 'pump of a')"
sleep 0.01
plain "$b" "INSERT INTO machine VALUES (1, 'drill of b', 20); INSERT INTO part VALUES ('P1', 'valve of b')"
plain "$b" "UPDATE machine SET hours = 21 WHERE id = 1"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's machine 1 and part P1: a's" \
	"$(hub "SELECT (SELECT model FROM machine WHERE id = 1), (SELECT name FROM part WHERE code = 'P1')")" \
	"lathe of a|pump of a"
expect_eq "b's changes set aside on the hub" \
	"$(hub "SELECT table_name, op, pk::text FROM sync_errors ORDER BY seq")" \
	'machine|I|{"id":1}
part|I|{"code":"P1"}
machine|U|{"id":1}'
# (the queue ships the row as it is when it is read: both changes of b's machine 1 carry hours 21)
expect_eq "b's own sync_errors: the same changes, as b sent them, under minus their seq" \
	"$(plain "$b" "SELECT e.table_name, e.op, e.pk, coalesce(json_extract(e.row_data, '$.model'), json_extract(e.row_data, '$.name')),
			json_extract(e.row_data, '$.hours'),
			e.origin = s.node_id, e.ver_us > 0, e.attempts
		FROM sync_errors e, syncq_state s ORDER BY -e.hub_seq")" \
	'machine|I|{"id":1}|drill of b|21|1|1|1
part|I|{"code":"P1"}|valve of b||1|1|1
machine|U|{"id":1}|drill of b|21|1|1|1'
expect_eq "their seqs are the hub's" \
	"$(plain "$b" "SELECT group_concat(-hub_seq, ',') FROM (SELECT hub_seq FROM sync_errors ORDER BY hub_seq DESC)")" \
	"$(hub "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM sync_errors")"
why=$(plain "$b" "SELECT error FROM sync_errors WHERE table_name = 'machine' AND op = 'I'")
note "b's message: $why"
case $why in
*'row {"id":1} of "machine" was also created on another node'*"$node_a"*'this node'"'"'s row is set aside'*'insert it again under another key'*) ;;
*) fail "b's message does not name the table, the key and the node whose record reached the hub first: $why" ;;
esac
why=$(plain "$b" "SELECT error FROM sync_errors WHERE table_name = 'machine' AND op = 'U'")
case $why in
*'row {"id":1} of "machine" is this node'"'"'s own record, whose insert was set aside'*) ;;
*) fail "b's message for its later change of its machine 1 does not say it waits with the insert: $why" ;;
esac
expect_eq "b holds the hub's machine 1 and part P1 in their place" \
	"$(plain "$b" "SELECT (SELECT model FROM machine WHERE id = 1), (SELECT name FROM part WHERE code = 'P1')")" \
	"lathe of a|pump of a"
expect_eq "a set nothing aside" "$(plain "$a" "SELECT count(*) FROM sync_errors")" "0"
expect_eq "b's queue is acknowledged" "$(pending "$b")" "0"

note "b syncs again (the hub retries its changes): its entries stay, once each"
sleep 2.1	# (serve retries a node's set-aside changes at most every 2 s)
sync "$b"
expect_eq "retried on the hub" "$(hub "SELECT count(*) FROM sync_errors WHERE attempts > 1")" "3"
expect_eq "b's entries" "$(plain "$b" "SELECT table_name || ' ' || op FROM sync_errors ORDER BY -hub_seq")" \
	"machine I
part I
machine U"

note "b's status counts them once: the hub's copies (errors.up), not its own entries again (errors.down)"
port=$(free_port)
start_daemon "$b" --control "127.0.0.1:$port"
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
wait_until 10 "the hub's set-aside changes in b's status" \
	'[ "$(curl -s "http://127.0.0.1:$port/api/sync/status" | json "d['"'"'errors'"'"']['"'"'up'"'"']['"'"'count'"'"']")" = 3 ]'
expect_eq "b's errors: count, up, down" \
	"$(curl -s "http://127.0.0.1:$port/api/sync/status" | json "d['errors']['count'], d['errors']['up']['count'], d['errors']['down']['count']")" \
	"3 3 0"
stop_daemon

note "a person deletes b's machine 1 changes from the hub's sync_errors"
hub "DELETE FROM sync_errors WHERE table_name = 'machine'" >/dev/null
sync "$b"
expect_eq "b's machine entries left with the hub's" \
	"$(plain "$b" "SELECT table_name || ' ' || op FROM sync_errors")" "part I"
grep -q 'left the hub' "$SYNCQ_TMP/syncqd.log" || fail "syncqd did not log that the entries went"

note "a queue row that cannot be sent stays in b's sync_errors whatever the hub holds"
plain "$b" "INSERT INTO sync_queue (table_name, op, pk, row_data, changed_at, origin, priority)
	SELECT 'part', 'I', 'not json', NULL, '2025-01-01T00:00:00Z', node_id, 'batched' FROM syncq_state"
sync "$b"
expect_eq "b's entries" "$(plain "$b" "SELECT table_name || ' ' || op || ' ' || (ver_us = 0) FROM sync_errors ORDER BY id")" \
	"part I 0
part I 1"

note "the hub's app gives a's part P1 another key: b's P1, retried, goes through, and its entry goes"
hub "UPDATE part SET code = 'P1-a' WHERE code = 'P1'" >/dev/null
for _ in 1 2 3; do
	sleep 1.1	# (serve retries a node's set-aside changes at most every 2 s)
	sync "$b"
	[ "$(hub "SELECT count(*) FROM sync_errors")" = 0 ] && break
done
expect_eq "the hub's parts" "$(hub "SELECT string_agg(code || '=' || name, ',' ORDER BY code) FROM part")" \
	"P1=valve of b,P1-a=pump of a"
sync "$b"
expect_eq "b's entries: the queue row that could not be sent only" \
	"$(plain "$b" "SELECT table_name || ' ' || op || ' ' || (ver_us = 0) FROM sync_errors")" "part I 1"
sync "$a"
same_rows part "code AS id, name" "$a" "$b"

note "the acknowledgement lost: a and b both create machine 2; b's file is taken back to before its sync, and it syncs again"
plain "$a" "INSERT INTO machine VALUES (2, 'press of a', 1)"
plain "$b" "INSERT INTO machine VALUES (2, 'saw of b', 2)"
sync "$a"
plain "$b" ".backup '$SYNCQ_TMP/b-before.db'"
sync "$b"
expect_eq "b's entry of its machine 2" "$(plain "$b" "SELECT count(*) FROM sync_errors WHERE pk = '{\"id\":2}'")" "1"
plain "$b" ".restore '$SYNCQ_TMP/b-before.db'"
expect_eq "b's entry, gone with the file's copy" "$(plain "$b" "SELECT count(*) FROM sync_errors WHERE pk = '{\"id\":2}'")" "0"
sync "$b"
expect_eq "the resent upload: the hub had it (nothing set aside twice)" \
	"$(hub "SELECT count(*) FROM sync_errors WHERE pk::jsonb = '{\"id\":2}'")" "1"
why=$(plain "$b" "SELECT json_extract(row_data, '$.model') || ': ' || error FROM sync_errors WHERE pk = '{\"id\":2}'")
case $why in
'saw of b: set aside on the hub, whose reason is: row {"id":2} of "machine" is another record on the hub'*) ;;
*) fail "b's entry of its machine 2, after the resent upload: $why" ;;
esac
expect_eq "b's machine 2: a's" "$(plain "$b" "SELECT model FROM machine WHERE id = 2")" "press of a"

note "a long key: the message shows its first 300 bytes, not half a character (PostgreSQL refused such a message, and b's uploads failed at every sync)"
code=$(/usr/bin/python3 -c "print('x' * 290 + '\u00e9' * 20)")
plain "$a" "INSERT INTO part VALUES ('$code', 'of a')"
plain "$b" "INSERT INTO part VALUES ('$code', 'of b')"
sync "$a"
sync "$b"
expect_eq "b's long part: set aside on the hub and in b's file" \
	"$(hub "SELECT count(*) FROM sync_errors WHERE length(pk->>'code') = 310"),$(plain "$b" "SELECT count(*) FROM sync_errors WHERE CASE WHEN json_valid(pk) THEN length(json_extract(pk, '$.code')) END = 310")" "1,1"
sync "$b"
expect_eq "b's next sync goes through: the long part still set aside once" \
	"$(hub "SELECT count(*) FROM sync_errors WHERE length(pk->>'code') = 310")" "1"
echo ok
