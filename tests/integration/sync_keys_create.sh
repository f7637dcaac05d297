#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Keys the app sets (issue 13: text, uuid, composite, an integer with no
# sequence behind it), under the default key policy 'auto': an insert is a
# new record, so two nodes that insert one key offline never write one
# record over the other. The first insert to reach the hub keeps the key;
# the later one is set aside in sync_errors with a reason a person reads,
# and its node gets the hub's record in place of its own, with its later
# changes of that row set aside too (they are edits of its own record, not
# of the hub's). A row that is all key (an association table's) is the
# same record whoever made it. 'natural' keeps last writer wins
# (sync_keys_natural.sh).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_keys_create

hub "CREATE TABLE part (code text PRIMARY KEY, name text, qty integer);
	CREATE TABLE operator (id integer PRIMARY KEY, name text);
	CREATE TABLE part_operator (code text, operator_id integer, PRIMARY KEY (code, operator_id));
	CREATE TABLE bin (code char(4) PRIMARY KEY, v text);
	CREATE TABLE setting (name text PRIMARY KEY, v text);
	SELECT sync_track('part'); SELECT sync_track('operator'); SELECT sync_track('part_operator');
	SELECT sync_track('bin'); SELECT sync_track('setting', 'immediate', 'natural');
	INSERT INTO part VALUES ('P0', 'seed', 1);" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE part (code TEXT PRIMARY KEY, name TEXT, qty INTEGER);
		CREATE TABLE operator (id INTEGER PRIMARY KEY, name TEXT);
		CREATE TABLE part_operator (code TEXT, operator_id INTEGER, PRIMARY KEY (code, operator_id));
		CREATE TABLE bin (code CHAR(4) PRIMARY KEY, v TEXT);
		CREATE TABLE setting (name TEXT PRIMARY KEY, v TEXT);
		SELECT sync_track('part'); SELECT sync_track('operator'); SELECT sync_track('part_operator');
		SELECT sync_track('bin'); SELECT sync_track('setting', 'immediate', 'natural');" >/dev/null
	sync "$f"
done

note "a and b both create part P1 offline, b later; b edits its P1 again; both link P0 to operator 7"
plain "$a" "INSERT INTO part VALUES ('P1', 'pump of a', 3); INSERT INTO operator VALUES (7, 'ann');
	INSERT INTO part_operator VALUES ('P0', 7); INSERT INTO bin VALUES ('B1', 'a');
	INSERT INTO setting VALUES ('theme', 'dark')"
sleep 0.01
plain "$b" "INSERT INTO part VALUES ('P1', 'valve of b', 5); INSERT INTO operator VALUES (7, 'bob');
	INSERT INTO part_operator VALUES ('P0', 7); INSERT INTO bin VALUES ('B1', 'b');
	INSERT INTO setting VALUES ('theme', 'light')"
plain "$b" "UPDATE part SET qty = 6 WHERE code = 'P1'"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's P1: a's, the first to arrive (b's was later, and last writer wins would have kept b's)" \
	"$(hub "SELECT name, qty FROM part WHERE code = 'P1'")" "pump of a|3"
expect_eq "the hub's operator 7 (an integer key with no sequence is the app's too)" \
	"$(hub "SELECT name FROM operator WHERE id = 7")" "ann"
expect_eq "b's changes set aside on the hub: its insert and its update of its own P1, its operator, its bin" \
	"$(hub "SELECT table_name, op, pk::text, sqlstate FROM sync_errors ORDER BY seq")" \
	'part|I|{"code":"P1"}|SQ505
operator|I|{"id":7}|SQ505
bin|I|{"code":"B1"}|SQ505
part|U|{"code":"P1"}|SQ505'
expect_eq "the setting ('natural': one key, one record), last writer wins" \
	"$(hub "SELECT v FROM setting WHERE name = 'theme'")" "light"
why=$(hub "SELECT error FROM sync_errors WHERE op = 'I' AND table_name = 'part'")
note "the reason: $why"
case $why in
*'row {"code":"P1"} of "part" is another record on the hub (its last change by node '*'an insert never writes over another record'*) ;;
*) fail "the reason does not say which record met which: $why" ;;
esac
expect_eq "b's row of its own P1, kept in sync_errors" \
	"$(hub "SELECT row_data->>'name' FROM sync_errors WHERE op = 'I' AND table_name = 'part'")" "valve of b"
expect_eq "the link, all key, is one record: nothing set aside for it" \
	"$(hub "SELECT count(*) FROM sync_errors WHERE table_name = 'part_operator'")" "0"
same_rows part "code AS id, name, qty" "$a" "$b"
same_rows operator "id, name" "$a" "$b"
expect_eq "b's links" "$(plain "$b" "SELECT code || ':' || operator_id FROM part_operator")" "P0:7"
expect_eq "conflicts on the hub (none: nothing was overruled)" "$(hub "SELECT count(*) FROM sync_conflicts")" "0"
expect_eq "pending on b" "$(pending "$b")" "0"
sleep 2.1	# (serve retries a node's set-aside changes at most every 2 s)
sync "$b"
expect_eq "retried, b's changes stay set aside" "$(hub "SELECT count(*) FROM sync_errors WHERE attempts > 1")" "4"
expect_eq "and the hub's P1 stays a's" "$(hub "SELECT name, qty FROM part WHERE code = 'P1'")" "pump of a|3"

note "b edits the hub's P1 now that it has it: that is the hub's record's edit, last writer wins"
plain "$b" "UPDATE part SET qty = 9 WHERE code = 'P1'"
sync "$b"; sync "$a"
expect_eq "the hub's P1 after b's edit" "$(hub "SELECT name, qty FROM part WHERE code = 'P1'")" "pump of a|9"
same_rows part "code AS id, name, qty" "$a" "$b"
sync "$b"
expect_eq "b's own P1 still set aside (b's edit of the hub's P1 does not make that b's)" \
	"$(hub "SELECT count(*) FROM sync_errors WHERE table_name = 'part'")" "2"

note "the hub's app creates P2 while a creates P2 offline"
hub "INSERT INTO part VALUES ('P2', 'made at head office', 1)" >/dev/null
plain "$a" "INSERT INTO part VALUES ('P2', 'made on a', 2)"
sync "$a"
expect_eq "the hub's P2 stays the hub's" "$(hub "SELECT name FROM part WHERE code = 'P2'")" "made at head office"
case $(hub "SELECT error FROM sync_errors WHERE pk::jsonb = '{\"code\":\"P2\"}'") in
*'(made by the hub'"'"'s app)'*) ;;
*) fail "a's P2 is not set aside as meeting the hub's app's record" ;;
esac
expect_eq "a's P2 is the hub's" "$(plain "$a" "SELECT name FROM part WHERE code = 'P2'")" "made at head office"

note "a deletes and creates P0 again, a row it had: the delete goes first, the insert is a new record"
plain "$a" "DELETE FROM part WHERE code = 'P0'; INSERT INTO part VALUES ('P0', 'new seed', 2)"
sync "$a"; sync "$b"
expect_eq "the hub's P0" "$(hub "SELECT name, qty FROM part WHERE code = 'P0'")" "new seed|2"
same_rows part "code AS id, name, qty" "$a" "$b"

note "the hub's app deletes a's P1: b's own P1, retried, is a new record now, and goes through with its edit"
hub "DELETE FROM part WHERE code = 'P1'" >/dev/null
for _ in 1 2 3; do
	sync "$b"
	[ "$(hub "SELECT count(*) FROM part WHERE code = 'P1'")" = 1 ] && break
	sleep 1.1		# (serve retries a node's set-aside changes at most every 2 s)
done
sync "$a"
expect_eq "the hub's parts" "$(hub "SELECT string_agg(code || '=' || name || ':' || qty, ',' ORDER BY code) FROM part")" \
	"P0=new seed:2,P1=valve of b:6,P2=made at head office:1"
expect_eq "b's P1 left sync_errors" "$(hub "SELECT count(*) FROM sync_errors WHERE table_name = 'part' AND pk::jsonb = '{\"code\":\"P1\"}'")" "0"
same_rows part "code AS id, name, qty" "$a" "$b"

note "b deletes P0 and makes it again offline; a deletes P0 later, and syncs first: b's P0 is a new record, over a's newer delete, on every node"
sync "$b"
plain "$b" "DELETE FROM part WHERE code = 'P0'; INSERT INTO part VALUES ('P0', 'remade by b', 9)"
sleep 0.01
plain "$a" "DELETE FROM part WHERE code = 'P0'"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's P0: b's new record" "$(hub "SELECT name, qty FROM part WHERE code = 'P0'")" "remade by b|9"
same_rows part "code AS id, name, qty" "$a" "$b"
expect_eq "a's P0 (it deleted the old record, not b's new one)" "$(cli "$a" "SELECT name FROM part WHERE code = 'P0'")" "remade by b"
echo ok
