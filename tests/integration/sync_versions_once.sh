#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The hub's version rows after uploads (hub/apply.c, lock_versions): a new
# key's row is made with the version its change would leave, and kept as it
# is when the change wins as sent, instead of being made as a placeholder
# and then written again. Whatever else happens to the key in that upload,
# each key ends with the version of its newest change in the hub's queue,
# and a key with no change there has no version row:
#   new rows, and a new row changed twice in one upload;
#   a new row a hub trigger writes again (a consequence, written over the
#   tentative version; the greater of the two stays);
#   a new row whose key meets a hub row that has no version (one written
#   with capture off; keys the hub assigns: renamed, and the tentative row
#   of the key it came with goes);
#   an insert stamped a year ahead (re-stamped: never tentative);
#   an insert that another node's upload of the same key beat (it waits for
#   the first upload's row lock, then loses).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_versions_once

# versions_match: every key's version row is the newest change of it in the
# hub's queue (corrections for one node aside), and no other version row
# exists; prints the keys that differ
versions_match() {
	hub "WITH q AS (
		SELECT DISTINCT ON (table_name, pk::text) table_name AS t, pk::text AS p,
		       (extract(epoch FROM changed_at) * 1000000)::bigint AS us, origin AS o, op = 'D' AS d
		  FROM sync_queue WHERE for_node IS NULL
		 ORDER BY table_name, pk::text, changed_at DESC, origin::text DESC)
	SELECT coalesce(q.t, v.table_name), coalesce(q.p, v.pk), q.us, v.ver_us, q.o, v.ver_origin, q.d, v.deleted
	  FROM q FULL JOIN sync_versions v ON v.table_name = q.t AND v.pk = q.p
	 WHERE (q.us, q.o, q.d) IS DISTINCT FROM (v.ver_us, v.ver_origin, v.deleted)
	 ORDER BY 1, 2"
}

hub "CREATE TABLE doc (id integer PRIMARY KEY, v text);
	CREATE TABLE note (id integer PRIMARY KEY, v text, seen text);
	CREATE TABLE item (id serial PRIMARY KEY, v text);
	INSERT INTO item (v) VALUES ('hub 1'), ('hub 2');
	SELECT sync_track('doc'); SELECT sync_track('note'); SELECT sync_track('item');
	CREATE FUNCTION note_seen() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		UPDATE note SET seen = 'by head office' WHERE id = NEW.id AND seen IS NULL;
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER note_seen AFTER INSERT ON note FOR EACH ROW EXECUTE FUNCTION note_seen();" >/dev/null
expect_eq "item 1 and 2 are the hub's, without version rows" \
	"$(hub "SELECT count(*) FROM sync_versions WHERE table_name = 'item'")" "0"
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
ddl="CREATE TABLE doc (id INTEGER PRIMARY KEY, v TEXT);
	CREATE TABLE note (id INTEGER PRIMARY KEY, v TEXT, seen TEXT);
	CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT);
	SELECT sync_track('doc'); SELECT sync_track('note'); SELECT sync_track('item');"
cli "$a" "$ddl" >/dev/null
cli "$b" "$ddl" >/dev/null
sync "$a"
sync "$b"
node_a=$(plain "$a" "SELECT node_id FROM syncq_state")

# (with capture off: no queue row, no version)
hub "SET session_replication_role = replica; INSERT INTO item VALUES (3, 'hub 3')" >/dev/null
note "a: 300 new docs, doc 1 changed twice, a note, item 3 (the hub has another)"
plain "$a" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 300)
	INSERT INTO doc SELECT x, 'a ' || x FROM s;
	UPDATE doc SET v = 'a 1 again' WHERE id = 1;
	INSERT INTO note VALUES (1, 'from a', NULL);
	INSERT INTO item VALUES (3, 'item of a');"
sync "$a"
expect_eq "every version row is its key's newest change" "$(versions_match)" ""
expect_eq "doc 1 and 300, as a sent them" \
	"$(hub "SELECT id, v FROM doc WHERE id IN (1, 300) ORDER BY id")" "1|a 1 again
300|a 300"
expect_eq "doc 1's version: a's update" \
	"$(hub "SELECT v.ver_origin, v.deleted FROM sync_versions v WHERE table_name = 'doc' AND pk::jsonb = '{\"id\": 1}'")" \
	"$node_a|f"
sync "$a"
expect_eq "note 1, as the hub trigger left it, on the hub and on a" \
	"$(hub "SELECT seen FROM note WHERE id = 1") $(plain "$a" "SELECT seen FROM note WHERE id = 1")" \
	"by head office by head office"
expect_eq "item: a's insert took a new key; 3 is still the hub's, unversioned" \
	"$(hub "SELECT string_agg(i.id || ':' || i.v || ':' || coalesce((v.ver_origin = '$node_a')::text, 'none'), ',' ORDER BY i.id)
		FROM item i LEFT JOIN sync_versions v ON v.table_name = 'item' AND v.pk::jsonb = jsonb_build_object('id', i.id)")" \
	"1:hub 1:none,2:hub 2:none,3:hub 3:none,4:item of a:true"
note "b, a year ahead: a new doc, re-stamped by the hub"
faketime -f '+365d' sqlite3 -bail "$b" "INSERT INTO doc VALUES (500, 'b from next year')"
sync "$b"
expect_eq "every version row is its key's newest change" "$(versions_match)" ""
expect_eq "doc 500's version is not a year ahead" \
	"$(hub "SELECT ver_us < (extract(epoch FROM now() + interval '1 day') * 1000000)::bigint
		FROM sync_versions WHERE table_name = 'doc' AND pk::jsonb = '{\"id\": 500}'")" "t"

note "a and b upload new doc 600 side by side; a transaction holds its version row first, so both wait"
plain "$a" "INSERT INTO doc VALUES (600, 'from a')"
sleep 0.01
plain "$b" "INSERT INTO doc VALUES (600, 'from b')"
hold=$SYNCQ_TMP/hold
mkfifo "$hold"
# a transaction locks doc 600's version row as an upload would, and rolls
# back: both uploads then take turns on it
psql -X -q -d "$HUB" -v ON_ERROR_STOP=1 <"$hold" >/dev/null &
hold_pid=$!
exec 7>"$hold"
k600=$(hub "SELECT pk FROM sync_versions WHERE table_name = 'doc' AND pk::jsonb = '{\"id\": 300}'")
k600=${k600/300/600}
echo "BEGIN; INSERT INTO sync_versions VALUES ('doc', '$k600', -1, '00000000-0000-0000-0000-000000000000');" >&7
sleep 0.3
sync "$a" &
pa=$!
sync "$b" &
pb=$!
sleep 1
echo "ROLLBACK;" >&7
exec 7>&-
wait "$hold_pid"
wait "$pa" || fail "a's sync failed"
wait "$pb" || fail "b's sync failed"
sync "$a"
sync "$b"
expect_eq "every version row is its key's newest change" "$(versions_match)" ""
# (keys the app sets: the first upload to take the lock keeps the key, the
# other's insert is set aside: sync_keys_loser.sh)
node_b=$(plain "$b" "SELECT node_id FROM syncq_state")
case $(hub "SELECT v || ' ' || (SELECT ver_origin FROM sync_versions WHERE table_name = 'doc' AND pk = '$k600') FROM doc WHERE id = 600") in
"from a $node_a" | "from b $node_b") ;;
*) fail "doc 600 is not one node's row under that node's version: $(hub "SELECT * FROM doc WHERE id = 600")" ;;
esac
expect_eq "the other's insert set aside" "$(hub "SELECT count(*) FROM sync_errors WHERE table_name = 'doc'")" "1"
expect_eq "a's items: the hub's it was sent, and its own under the new key" \
	"$(plain "$a" "SELECT group_concat(id || ':' || v, ',') FROM (SELECT * FROM item ORDER BY id)")" \
	"1:hub 1,2:hub 2,4:item of a"
echo "PASS"
