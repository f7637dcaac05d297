#!/usr/bin/env bash
# syncqd-http
# pg_dump_restore.sh — a hub saved with pg_dump (custom format) and restored
# with pg_restore into a new database of the same cluster is the same hub:
# its node id, every row of every table of the extension (the queue, the
# clients' positions, versions, conflicts, set-aside changes, the hub's
# state and settings) and every sequence (no seq or id handed out twice);
# and its clients, with changes pending on both sides, go on syncing with
# the restored hub: every row alike on every node and as made, nothing
# lost, nothing doubled.
# (Positions are transaction ids of the cluster: restoring into another
# cluster is not covered, see README "Upgrade".)
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
cd "$SYNCQ_ROOT"

new_hub dump_src
SRC=$HUB
hub "CREATE TABLE items (id integer PRIMARY KEY, name text, qty integer);
	CREATE TABLE notes (k text PRIMARY KEY, body text);
	SELECT sync_track('items'), sync_track('notes', 'batched');
	INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 6) g;
	UPDATE sync_hub_state SET retention = '7 days'" >/dev/null
A=$SYNCQ_TMP/a.db B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);" \
		"CREATE TABLE notes (k TEXT PRIMARY KEY, body TEXT);" \
		"SELECT sync_track('items'); SELECT sync_track('notes', 'batched');" >/dev/null
	sync "$f"
done
# a conflict (A's older change overruled by the hub's) and a set-aside
# change (B's, refused by a constraint), so those tables have rows too
cli "$A" "UPDATE items SET name = 'a loses' WHERE id = 6;" >/dev/null
sleep 0.01
hub "UPDATE items SET name = 'hub wins' WHERE id = 6" >/dev/null
sync "$A"
hub "ALTER TABLE items ADD CONSTRAINT qty_small CHECK (qty < 1000)" >/dev/null
cli "$B" "UPDATE items SET qty = 5000 WHERE id = 5;" >/dev/null
sync "$B"
# changes pending everywhere
hub "UPDATE items SET name = 'hub one' WHERE id = 1; INSERT INTO items VALUES (3001, 'hub 3001', 1)" >/dev/null
sync "$A"
hub "DELETE FROM items WHERE id = 2; INSERT INTO notes VALUES ('h', 'hub note')" >/dev/null
cli "$A" "INSERT INTO items VALUES (1001, 'a 1001', 1); UPDATE items SET name = 'a three' WHERE id = 3;" \
	"INSERT INTO notes VALUES ('a', 'a note');" >/dev/null
plain "$B" "INSERT INTO items VALUES (2001, 'b 2001', 1); DELETE FROM items WHERE id = 4;"
expect_eq "conflicts before the dump" "$(hub "SELECT count(*) FROM sync_conflicts")" 1
expect_eq "set aside before the dump" "$(hub "SELECT count(*) FROM sync_errors")" 1
[ "$(pending "$A")" -gt 0 ] && [ "$(pending "$B")" -gt 0 ] || fail "no pending client changes"

# every table and sequence of the extension, as text
members() {	# members DB KIND(r|S): the extension's tables or sequences
	psql -X -At -d "$1" -c "SELECT c.oid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
		WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
		  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'syncq') AND c.relkind = '$2'
		ORDER BY 1::text"
}
state() {	# state DB: node id, every row of every table, every sequence
	local t
	psql -X -At -d "$1" -c "SELECT 'node ' || sync_node_id()"
	for t in $(members "$1" r); do
		echo "== $t"
		psql -X -At -d "$1" -c "SELECT x::text FROM $t x ORDER BY 1"
	done
	for t in $(members "$1" S); do
		psql -X -At -d "$1" -c "SELECT '$t ' || last_value || ' ' || is_called FROM $t"
	done
}
state dump_src >"$SYNCQ_TMP/before.txt"
grep -q '^== sync_queue$' "$SYNCQ_TMP/before.txt" || fail "no sync_queue among the extension's tables"

# dump, restore into a new database, retire the old one
pg_dump -Fc -f "$SYNCQ_TMP/hub.dump" -d "$SRC" || fail "pg_dump"
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS dump_dst WITH (FORCE)" \
	-c "CREATE DATABASE dump_dst" >/dev/null
pg_restore --exit-on-error -d "host=$PGHOST port=$PGPORT user=postgres dbname=dump_dst" "$SYNCQ_TMP/hub.dump" \
	>"$SYNCQ_TMP/restore.log" 2>&1 || { cat "$SYNCQ_TMP/restore.log"; fail "pg_restore"; }
state dump_dst >"$SYNCQ_TMP/after.txt"
diff -u "$SYNCQ_TMP/before.txt" "$SYNCQ_TMP/after.txt" >"$SYNCQ_TMP/state.diff" ||
	{ head -n 40 "$SYNCQ_TMP/state.diff"; fail "the restored hub differs (above: - dumped, + restored)"; }
note "restored: node id, $(grep -c '^== ' "$SYNCQ_TMP/after.txt") tables and $(grep -vc -e '^== ' -e '^node ' "$SYNCQ_TMP/after.txt") rows and sequences alike"
serve_cleanup	# (over HTTP: serve's connections to the old hub)
psql -X -q -d postgres -c "ALTER DATABASE dump_src RENAME TO dump_old" -c "ALTER DATABASE dump_old ALLOW_CONNECTIONS false" >/dev/null
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=dump_dst"
ONLINE=$HUB
[ "${SYNCQ_TRANSPORT:-}" = http ] && start_serve

# the restored hub goes on: its own changes, a new conflict, both clients
seq_max=$(hub "SELECT max(seq) FROM sync_queue")
hub "INSERT INTO items VALUES (3002, 'hub 3002', 2)" >/dev/null
[ "$(hub "SELECT max(seq) FROM sync_queue")" -gt "$seq_max" ] || fail "the restored queue handed out an old seq"
cli "$B" "UPDATE items SET name = 'b loses' WHERE id = 1;" >/dev/null
sleep 0.01
hub "UPDATE items SET name = 'hub one again' WHERE id = 1" >/dev/null
hub "ALTER TABLE items DROP CONSTRAINT qty_small" >/dev/null
for f in "$A" "$B" "$A" "$B"; do sync "$f"; done
expect_eq "conflicts after" "$(hub "SELECT count(*) FROM sync_conflicts")" 2
expect_eq "set aside after (retried once the constraint went)" "$(hub "SELECT count(*) FROM sync_errors")" 0
want='1|hub one again|10
3|a three|30
5|item 5|5000
6|hub wins|60
1001|a 1001|1
2001|b 2001|1
3001|hub 3001|1
3002|hub 3002|2'
expect_eq "items on the restored hub" "$(hub "SELECT * FROM items ORDER BY 1")" "$want"
expect_eq "notes on the restored hub" "$(hub "SELECT * FROM notes ORDER BY 1")" "a|a note
h|hub note"
for t in items notes; do
	for f in "$A" "$B"; do
		expect_eq "$t on $(basename "$f")" "$(plain "$f" "SELECT * FROM $t ORDER BY 1")" "$(hub "SELECT * FROM $t ORDER BY 1")"
	done
done
for f in "$A" "$B"; do expect_eq "pending on $(basename "$f")" "$(pending "$f")" 0; done
expect_eq "hub node id kept" "$(hub "SELECT sync_node_id()")" "$(sed -n 's/^node //p' "$SYNCQ_TMP/before.txt")"
note "clients synced with the restored hub: every row alike and as made"
psql -X -q -d postgres -c "DROP DATABASE dump_old" >/dev/null
echo ok
