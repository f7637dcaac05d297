#!/usr/bin/env bash
# syncqd-http
# An insert that meets another record's insert is never an overwrite
# (issue 13), for keys the app makes (text, composite, or an integer key
# tracked with keys 'natural'): two nodes that insert one key without
# having seen each other's insert: the first insert to reach the hub keeps
# the key, the later one is set aside in sync_errors with its row and a
# message naming the other node, and its node is given the hub's record.
# An INSERT OR REPLACE over a row the node had seen is an update (last
# writer wins), and a retry stays set aside while the other record lives.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_natural_meets

hub "CREATE TABLE machine (code text PRIMARY KEY, name text);
	CREATE TABLE slot (rack text, pos integer, what text, PRIMARY KEY (rack, pos));
	SELECT sync_track('machine'); SELECT sync_track('slot')" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE machine (code TEXT PRIMARY KEY, name TEXT);
		CREATE TABLE slot (rack TEXT, pos INTEGER, what TEXT, PRIMARY KEY (rack, pos));
		SELECT sync_track('machine'); SELECT sync_track('slot')" >/dev/null
	sync "$f"
done
na=$(plain "$a" "SELECT node_id FROM syncq_state")
nb=$(plain "$b" "SELECT node_id FROM syncq_state")
nh=$(hub "SELECT sync_node_id()")

note "a and b both create machine M1 and slot (r1, 1) offline; a syncs first"
plain "$a" "INSERT INTO machine VALUES ('M1', 'press of a'); INSERT INTO slot VALUES ('r1', 1, 'drill of a')"
sleep 0.01
plain "$b" "INSERT INTO machine VALUES ('M1', 'lathe of b'); INSERT INTO slot VALUES ('r1', 1, 'saw of b')"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub keeps the first" "$(hub "SELECT code, name FROM machine")" "M1|press of a"
expect_eq "the hub's slot" "$(hub "SELECT rack, pos, what FROM slot")" "r1|1|drill of a"
for f in "$a" "$b"; do
	expect_eq "$(basename "$f")'s machine" "$(plain "$f" "SELECT code, name FROM machine")" "M1|press of a"
	expect_eq "$(basename "$f")'s slot" "$(plain "$f" "SELECT rack, pos, what FROM slot")" "r1|1|drill of a"
done
expect_eq "b's inserts, set aside with their rows" \
	"$(hub "SELECT table_name, op, pk::text, row_data->>'name', row_data->>'what' FROM sync_errors WHERE node_id = '$nb' ORDER BY table_name")" \
	"machine|I|{\"code\":\"M1\"}|lathe of b|
slot|I|{\"rack\":\"r1\",\"pos\":1}||saw of b"
hub "SELECT error FROM sync_errors WHERE table_name = 'machine'" | grep -q "^\"machine\" {\"code\":\"M1\"} was also created on node $na, and that insert reached the hub first" ||
	fail "the reason: $(hub "SELECT error FROM sync_errors")"
expect_eq "no conflict recorded for them" "$(hub "SELECT count(*) FROM sync_conflicts")" "0"

note "retried, b's insert stays set aside"
hub "UPDATE sync_errors SET last_failed = now() - interval '1 minute'"
[ "${SYNCQ_TRANSPORT:-}" != http ] || sleep 2.1
sync "$b"
expect_eq "tried again, still set aside" "$(hub "SELECT count(*), min(attempts) FROM sync_errors WHERE node_id = '$nb'")" "2|2"
expect_eq "the hub's machine after the retry" "$(hub "SELECT name FROM machine")" "press of a"

note "an INSERT OR REPLACE over a row b had seen is an update: last writer wins"
plain "$b" "INSERT OR REPLACE INTO machine VALUES ('M1', 'press, renamed by b')"
sync "$b"; sync "$a"
expect_eq "the hub's machine" "$(hub "SELECT name FROM machine")" "press, renamed by b"
expect_eq "a's machine" "$(plain "$a" "SELECT name FROM machine")" "press, renamed by b"
expect_eq "nothing more set aside" "$(hub "SELECT count(*) FROM sync_errors")" "2"

note "the hub's own app creates M2 while a creates it offline"
hub "INSERT INTO machine VALUES ('M2', 'mill of the hub')"
plain "$a" "INSERT INTO machine VALUES ('M2', 'mill of a')"
sync "$a"
expect_eq "the hub keeps its own" "$(hub "SELECT name FROM machine WHERE code = 'M2'")" "mill of the hub"
expect_eq "a holds the hub's" "$(plain "$a" "SELECT name FROM machine WHERE code = 'M2'")" "mill of the hub"
hub "SELECT error FROM sync_errors WHERE node_id = '$na'" | grep -q "was also created on node $nh" ||
	fail "a's reason: $(hub "SELECT error FROM sync_errors WHERE node_id = '$na'")"

note "a delete, then an insert of the key by a node that saw the delete: a new record, no meeting"
plain "$a" "DELETE FROM slot"
sync "$a"; sync "$b"
plain "$b" "INSERT INTO slot VALUES ('r1', 1, 'vise of b')"
sync "$b"; sync "$a"
expect_eq "the hub's slot" "$(hub "SELECT what FROM slot")" "vise of b"
same_rows_text() { for f in "$a" "$b"; do expect_eq "$(basename "$f") = hub" "$(plain "$f" "SELECT $2 FROM $1 ORDER BY 1")" "$(hub "SELECT $2 FROM $1 ORDER BY 1")"; done; }
same_rows_text machine "code, name"
same_rows_text slot "rack, pos, what"
echo ok
