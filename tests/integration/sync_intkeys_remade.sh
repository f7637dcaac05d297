#!/usr/bin/env bash
# Keys the hub assigns (issue 13): a row deleted and made again under its
# key on one node (SQLite reuses the largest rowid) while another node
# deletes it later and syncs first. The hub takes the new insert as a new
# record (its key is free there); the other node's newer delete was of the
# old record, so every node, the deleting one too, ends with the new row:
# the hub re-stamps the insert above that delete (docs/replication.md).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_intkeys_remade

hub "CREATE TABLE machines (id serial PRIMARY KEY, name text NOT NULL);
	SELECT sync_track('machines');
	INSERT INTO machines (name) VALUES ('lathe'), ('press');" >/dev/null
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE machines (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		SELECT sync_track('machines');" >/dev/null
	sync "$f"
done

note "B deletes press (2) and makes a drill, which SQLite gives id 2; A deletes press later and syncs first"
plain "$B" "DELETE FROM machines WHERE id = 2; INSERT INTO machines (name) VALUES ('drill')"
expect_eq "B's drill took id 2" "$(plain "$B" "SELECT id FROM machines WHERE name = 'drill'")" "2"
sleep 0.01
plain "$A" "DELETE FROM machines WHERE id = 2"
sync "$A"; sync "$B"; sync "$A"
expect_eq "the hub's machines" "$(hub "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM machines")" "1=lathe,2=drill"
for f in "$A" "$B"; do
	expect_eq "$(basename "$f")'s machines" "$(plain "$f" "SELECT group_concat(id || '=' || name, ',') FROM (SELECT * FROM machines ORDER BY id)")" "1=lathe,2=drill"
done
expect_eq "conflicts on the hub: B's delete of press lost to A's later one" \
	"$(hub "SELECT count(*) FROM sync_conflicts")" "1"

note "the hub's app inserts again without an error"
hub "INSERT INTO machines (name) VALUES ('saw')" >/dev/null
echo ok
