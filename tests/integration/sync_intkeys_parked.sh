#!/usr/bin/env bash
# syncqd-http
# Keys the hub assigns (issue 13), for inserts the hub set aside first (a
# column it lacks yet: the migrate-the-client-first order README allows):
# * an insert whose integer key another record holds on the hub gets its new
#   key in the same upload's reply, waits under it, and applies under it once
#   the hub has the column: both records on every node, the child with its
#   own parent;
# * an insert set aside while its key was free, whose key another node took
#   meanwhile, stays set aside when retried, with a reason naming the key,
#   rather than overwrite that record (last writer wins would).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_intkeys_parked

hub "CREATE TABLE machines (id serial PRIMARY KEY, name text NOT NULL);
	CREATE TABLE visits (id serial PRIMARY KEY, machine_id integer REFERENCES machines (id), note text);
	SELECT sync_track('machines'); SELECT sync_track('visits');" >/dev/null
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE machines (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		CREATE TABLE visits (id INTEGER PRIMARY KEY, machine_id INTEGER REFERENCES machines (id), note TEXT);
		SELECT sync_track('machines'); SELECT sync_track('visits');" >/dev/null
	sync "$f"
done

note "A's machine 1 reaches the hub; B, migrated first, makes its own machine 1 with a visit"
plain "$A" "INSERT INTO machines (id, name) VALUES (1, 'a1')"
sync "$A"
plain "$B" "ALTER TABLE machines ADD COLUMN color TEXT"
plain "$B" "INSERT INTO machines (id, name, color) VALUES (1, 'b1', 'red');
	INSERT INTO visits (id, machine_id, note) VALUES (1, 1, 'b1 visit')"
sync "$B"
expect_eq "B's machine set aside on the hub under a new key" \
	"$(hub "SELECT pk::text FROM sync_errors WHERE table_name = 'machines'")" '{"id":2}'
expect_eq "B renamed its machine" "$(plain "$B" "SELECT id FROM machines WHERE name = 'b1'")" "2"
expect_eq "B's visit waits on the hub for its parent, renamed too" \
	"$(hub "SELECT row_data->>'machine_id' FROM sync_errors WHERE table_name = 'visits'")" "2"
expect_eq "A's machine 1 untouched on the hub" "$(hub "SELECT name FROM machines WHERE id = 1")" "a1"

note "B sets aside machine 5 while 5 is free; A then makes its own machine 5"
plain "$B" "INSERT INTO machines (id, name, color) VALUES (5, 'b5', 'blue')"
sync "$B"
plain "$A" "INSERT INTO machines (id, name) VALUES (5, 'a5')"
sync "$A"

note "the hub gets the column: the set-aside changes are retried"
hub "ALTER TABLE machines ADD COLUMN color text" >/dev/null
sync "$B"
sync "$B"
expect_eq "machines on the hub" "$(hub "SELECT string_agg(id || '=' || name || ':' || coalesce(color, ''), ',' ORDER BY id) FROM machines")" \
	"1=a1:,2=b1:red,5=a5:"
expect_eq "B's visit under its own machine on the hub" "$(hub "SELECT machine_id FROM visits WHERE note = 'b1 visit'")" "2"
expect_eq "and on B" "$(plain "$B" "SELECT machine_id FROM visits WHERE note = 'b1 visit'")" "2"
expect_eq "B's machine 5 still set aside, with its reason" \
	"$(hub "SELECT pk::text FROM sync_errors WHERE table_name = 'machines'")" '{"id":5}'
hub "SELECT error FROM sync_errors WHERE table_name = 'machines'" |
	grep -q 'id 5 of "machines" is another record on the hub now' ||
	fail "no reason for machine 5: $(hub "SELECT error FROM sync_errors")"
expect_eq "nothing overwritten: no conflict recorded" "$(hub "SELECT count(*) FROM sync_conflicts")" "0"
plain "$A" "ALTER TABLE machines ADD COLUMN color TEXT"
sync "$A"
expect_eq "A holds both machines 1 and 2, and its own 5" \
	"$(plain "$A" "SELECT group_concat(id || '=' || name, ',') FROM (SELECT * FROM machines ORDER BY id)")" "1=a1,2=b1,5=a5"

note "a rename the hub's reply gives for a table that is not tracked here is refused"
plain "$B" "CREATE TABLE secrets (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO secrets VALUES (7, 'mine')"
NODE_B=$(plain "$B" "SELECT node_id FROM syncq_state")
hub "INSERT INTO sync_key_renames (node_id, seq, table_name, key_column, old_key, new_key)
	VALUES ('$NODE_B', 1000000, 'secrets', 'id', 7, 70)" >/dev/null
plain "$B" "INSERT INTO machines (id, name, color) VALUES (9, 'b9', 'grey')"
if "$SYNCQD" --sqlite "$B" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log"; then
	fail "a rename of an untracked table was taken"
fi
grep -q 'renames column "id" of table "secrets", which is not the one-column key of a tracked table here' "$SYNCQ_TMP/syncqd.log" ||
	fail "no reason for the refused rename: $(tail -n 3 "$SYNCQ_TMP/syncqd.log")"
expect_eq "the untracked table untouched" "$(plain "$B" "SELECT id, v FROM secrets")" "7|mine"
hub "DELETE FROM sync_key_renames WHERE table_name = 'secrets'" >/dev/null
sync "$B"
expect_eq "then B's machine 9 on the hub" "$(hub "SELECT name FROM machines WHERE id = 9")" "b9"
note "ok"
