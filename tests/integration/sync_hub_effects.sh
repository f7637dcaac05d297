#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The hub's row as stored is the truth (issue 11): what PostgreSQL does to a
# client's change reaches every client, the uploader included, and
# nothing else is echoed back.
#   * a uuid key sent in upper case is one row everywhere (the hub's
#     lower-case spelling), its parts' references too;
#   * numeric(12,4) rounds 1.23456 to 1.2346 on every node;
#   * a BEFORE trigger's writes (name trimmed, updated_at set) reach every
#     node; a trigger writing another tracked table is relayed;
#   * a parent deleted on a client: ON DELETE CASCADE and SET NULL on the
#     hub reach every node, the deleting client included;
#   * a change the hub stores as sent gets no correction;
#   * a part added on one client while another deletes its machine: the
#     hub refuses the orphan (sync_errors), and the client that added it
#     drops it too.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_hub_effects

hub "CREATE TABLE machine (id uuid PRIMARY KEY, name text NOT NULL, price numeric(12,4),
		updated_at timestamptz);
	CREATE TABLE part (id integer PRIMARY KEY,
		machine_id uuid REFERENCES machine ON DELETE CASCADE,
		backup_id uuid REFERENCES machine ON DELETE SET NULL, note text);
	CREATE TABLE machine_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		machine_id uuid, what text);
	CREATE FUNCTION machine_touch() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		NEW.name := trim(NEW.name);
		NEW.updated_at := date_trunc('second', now());
		RETURN NEW;
	END \$\$;
	CREATE TRIGGER machine_touch BEFORE INSERT OR UPDATE ON machine
		FOR EACH ROW EXECUTE FUNCTION machine_touch();
	CREATE FUNCTION machine_logged() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		INSERT INTO machine_log (machine_id, what) VALUES (NEW.id, 'renamed to ' || NEW.name);
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER machine_logged AFTER UPDATE OF name ON machine
		FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION machine_logged();
	SELECT sync_track('machine'); SELECT sync_track('part'); SELECT sync_track('machine_log');" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE machine (id TEXT PRIMARY KEY, name TEXT NOT NULL, price REAL, updated_at TEXT);
		CREATE TABLE part (id INTEGER PRIMARY KEY, machine_id TEXT REFERENCES machine ON DELETE CASCADE,
			backup_id TEXT REFERENCES machine ON DELETE SET NULL, note TEXT);
		CREATE TABLE machine_log (id INTEGER PRIMARY KEY, machine_id TEXT, what TEXT);
		SELECT sync_track('machine'); SELECT sync_track('part'); SELECT sync_track('machine_log');" >/dev/null
	sync "$f"
done
node_a=$(plain "$a" "SELECT node_id FROM syncq_state")
node_b=$(plain "$b" "SELECT node_id FROM syncq_state")
M1=8E5B5D52-0C4B-4F8E-9D9A-6B1C2D3E4F50
M2=9f6c6e63-1d5c-4a9f-8eab-7c2d3e4f5061
m1=$(echo "$M1" | tr A-F a-f)

# rows NODE: every table, in one text, as the app reads it (updated_at to
# the second, so that the hub's and a client's text forms compare)
rows_hub() {
	hub "SELECT 'm', id, name, price::float8, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM machine ORDER BY id;
		SELECT 'p', id, machine_id, backup_id, note FROM part ORDER BY id;
		SELECT 'l', machine_id, what FROM machine_log ORDER BY id"
}
rows_cli() {
	plain "$1" "SELECT 'm', id, name, price, strftime('%Y-%m-%d %H:%M:%S', updated_at) FROM machine ORDER BY id;
		SELECT 'p', id, machine_id, backup_id, note FROM part ORDER BY id;
		SELECT 'l', machine_id, what FROM machine_log ORDER BY id"
}
all_same() {
	local want
	want=$(rows_hub)
	for f in "$a" "$b"; do expect_eq "$1: $(basename "$f" .db) holds the hub's rows" "$(rows_cli "$f")" "$want"; done
}
corrections() { hub "SELECT count(*) FROM sync_queue WHERE for_node = '$1'"; }

note "a inserts machines (one uuid in upper case, a price with 5 decimals, a name with blanks) and parts"
plain "$a" "INSERT INTO machine VALUES ('$M1', '  press  ', 1.23456, NULL), ('$M2', 'lathe', 2.5, NULL);
	INSERT INTO part VALUES (1, '$M1', NULL, 'on press'), (2, '$M2', '$M1', 'on lathe, press as backup')"
sync "$a"
expect_eq "the hub stores the uuid in lower case, the price rounded, the name trimmed" \
	"$(hub "SELECT id, name, price, updated_at IS NOT NULL FROM machine ORDER BY id")" \
	"$m1|press|1.2346|t
$M2|lathe|2.5000|t"
sync "$b"
sync "$a"
all_same "after a's insert"
expect_eq "a holds one row of the upper-case machine" "$(plain "$a" "SELECT count(*) FROM machine WHERE upper(id) = '$M1'")" "1"
[ "$(corrections "$node_a")" -gt 0 ] || fail "a got no correction"

note "b renames a machine with blanks: the trim and the log row of a hub trigger reach both"
plain "$b" "UPDATE machine SET name = ' lathe two ' WHERE id = '$M2'"
sync "$b"; sync "$a"; sync "$b"
expect_eq "the hub logged the rename" "$(hub "SELECT what FROM machine_log")" "renamed to lathe two"
all_same "after b's rename"

note "b changes a note as the hub stores it: no correction for b"
before=$(corrections "$node_b")
plain "$b" "UPDATE part SET note = 'lathe, checked' WHERE id = 2"
sync "$b"
expect_eq "corrections for b" "$(corrections "$node_b")" "$before"

note "b deletes the press: the hub's CASCADE and SET NULL reach a and b"
plain "$b" "DELETE FROM machine WHERE id = '$m1'"
sync "$b"; sync "$a"; sync "$b"
expect_eq "the hub's parts" "$(hub "SELECT id, machine_id, coalesce(backup_id::text, 'null') FROM part ORDER BY id")" "2|$M2|null"
all_same "after b's delete"

note "a adds a part to the lathe while b deletes the lathe: the orphan leaves a, the insert waits in sync_errors"
plain "$a" "PRAGMA foreign_keys = ON; INSERT INTO part VALUES (3, '$M2', NULL, 'new belt')"
plain "$b" "DELETE FROM machine WHERE id = '$M2'"
sync "$b"; sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's parts" "$(hub "SELECT count(*) FROM part")" "0"
all_same "after the race"
expect_eq "set aside on the hub" "$(hub "SELECT table_name, op, pk::text FROM sync_errors")" 'part|I|{"id":3}'
hub "SELECT error FROM sync_errors" | grep -q "Key (machine_id)=($M2) is not present in table \"machine\"" ||
	fail "the reason does not name the missing machine: $(hub "SELECT error FROM sync_errors")"
expect_eq "set aside on the clients" "$(set_aside "$a" "$b" | grep -v '^hub|' | grep -v '^DETAIL' || true)" ""

for f in "$a" "$b"; do expect_eq "pending on $(basename "$f")" "$(pending "$f")" "0"; done
echo ok
