#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Foreign keys on SQLite (issue 11): a hub change is checked against the
# foreign keys the client's table declares, whatever PRAGMA foreign_keys
# says (syncqd writes with it off, so a local child never cascades away).
# For ON DELETE CASCADE, RESTRICT and NO ACTION on the hub (each foreign key
# DEFERRABLE INITIALLY DEFERRED, as Django declares them; NO ACTION is then
# checked at the end, not when the delete runs):
#   * a child the hub wrote before its parent in one transaction (deferred
#     keys) applies with it: the parent counts when it comes later in the
#     same part of the download;
#   * client a deletes a machine, the hub adds a part to it, a syncs: the
#     hub's CASCADE relays the part's delete (or its RESTRICT or NO ACTION
#     overrules the delete into the hub's sync_conflicts and sends the
#     machine back: never the whole upload refused at COMMIT) and a
#     ends as the hub, nothing set aside there or on a;
#   * the same while a's upload is refused (serve --max-body): the part is
#     set aside in a's sync_errors, its reason naming the missing machine,
#     not applied as an orphan; once a's delete reaches the hub, the part
#     leaves a's sync_errors (gone with the cascade, or applied once the
#     machine is back); every node ends with the same rows;
#   * the hub deletes a machine while a adds a part to it: the part is set
#     aside in the hub's sync_errors, a drops it, the part a wrote after it
#     applies;
#   * NO ACTION: a delete the hub set aside for another reason (a trigger
#     refused it) and then refuses for the part (23503) when it retries it
#     is overruled then too: it leaves the hub's sync_errors, a gets the
#     machine back and its set-aside part applies.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

# the clients' link as this run's transport has it
normal_link() {
	if [ "${SYNCQ_TRANSPORT:-}" = http ]; then start_serve; else ONLINE=$HUB; fi
}

# sync_upload_refused FILE: a sync whose upload serve refuses (--max-body
# 1024); its download goes on.
sync_upload_refused() {
	local n
	n=$(grep -c "upload failed, downloading anyway" "$SYNCQ_TMP/syncqd.log" || true)
	start_serve --max-body 1024
	"$SYNCQD" --sqlite "$1" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &&
		fail "syncqd --once succeeded though its upload was refused"
	[ "$(grep -c "upload failed, downloading anyway" "$SYNCQ_TMP/syncqd.log")" -gt "${n:-0}" ] ||
		{ tail -n 5 "$SYNCQ_TMP/syncqd.log" >&2; fail "the upload was not refused"; }
	normal_link
}

rows_hub() {
	hub "SELECT 'm', id, name FROM machine ORDER BY id; SELECT 'p', id, machine_id, note FROM part ORDER BY id"
}
rows_cli() {
	plain "$1" "SELECT 'm', id, name FROM machine ORDER BY id; SELECT 'p', id, machine_id, note FROM part ORDER BY id"
}
all_same() {
	local want f
	want=$(rows_hub)
	for f in "$a" "$b"; do expect_eq "$1: $(basename "$f" .db) holds the hub's rows" "$(rows_cli "$f")" "$want"; done
}
client_errors() { plain "$1" "SELECT table_name, op, pk, error FROM sync_errors"; }

for act in CASCADE RESTRICT 'NO ACTION'; do
	v=$(echo "$act" | tr 'A-Z ' 'a-z_')
	note "---- ON DELETE $act"
	new_hub "sync_client_fk_$v"
	hub "CREATE TABLE machine (id integer PRIMARY KEY, name text NOT NULL);
		CREATE TABLE part (id integer PRIMARY KEY,
			machine_id integer REFERENCES machine ON DELETE $act DEFERRABLE INITIALLY DEFERRED,
			note text);
		SELECT sync_track('machine'); SELECT sync_track('part');" >/dev/null
	a=$SYNCQ_TMP/a_$v.db
	b=$SYNCQ_TMP/b_$v.db
	for f in "$a" "$b"; do
		cli "$f" "CREATE TABLE machine (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
			CREATE TABLE part (id INTEGER PRIMARY KEY,
				machine_id INTEGER REFERENCES machine(id) ON DELETE $act, note TEXT);
			SELECT sync_track('machine'); SELECT sync_track('part');" >/dev/null
		sync "$f"
	done
	hub "INSERT INTO machine VALUES (1, 'press'), (2, 'lathe'), (3, 'drill');
		INSERT INTO part VALUES (1, 1, 'ram')"
	sync "$a"; sync "$b"
	all_same "$act: to start"

	note "$act: the hub writes a part before its machine in one transaction: both apply on a"
	hub "BEGIN; INSERT INTO part VALUES (10, 4, 'child first'); INSERT INTO machine VALUES (4, 'mill'); COMMIT"
	sync "$a"
	expect_eq "$act: a's part 10" "$(plain "$a" "SELECT id, machine_id FROM part WHERE id = 10")" "10|4"
	expect_eq "$act: set aside on a" "$(client_errors "$a")" ""
	last_log | grep -q "down 2 rows, 2 applied, 0 overruled$" || fail "$act: the held part counted otherwise: $(last_log)"

	if [ "$act" = CASCADE ]; then
		note "a row that is its own parent applies; a key to a table the file lacks is not checked, said once a run"
		hub "CREATE TABLE node (id integer PRIMARY KEY, parent_id integer REFERENCES node, ghost_id integer);
			SELECT sync_track('node')" >/dev/null
		for f in "$a" "$b"; do
			plain "$f" "CREATE TABLE node (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES node(id),
				ghost_id INTEGER REFERENCES ghost(id))"
			cli "$f" "SELECT sync_track('node')" >/dev/null
		done
		hub "INSERT INTO node VALUES (1, 1, 7); INSERT INTO node VALUES (2, 1, NULL)"
		sync "$a"
		hub "INSERT INTO node VALUES (3, 2, 8)"
		sync "$a"
		expect_eq "a's nodes" "$(plain "$a" "SELECT id, parent_id, ghost_id FROM node ORDER BY id")" "1|1|7
2|1|
3|2|8"
		expect_eq "the ghost key said once a run (two syncqd --once)" \
			"$(grep -c 'refers to "ghost", which cannot be read' "$SYNCQ_TMP/syncqd.log")" "2"
	fi

	note "$act: a deletes the drill while the hub adds a part to it; a syncs"
	plain "$a" "DELETE FROM machine WHERE id = 3"
	hub "INSERT INTO part VALUES (30, 3, 'drill bit')"
	sync "$a"
	if [ "$act" = CASCADE ]; then
		expect_eq "$act: the hub cascaded" \
			"$(hub "SELECT (SELECT count(*) FROM machine WHERE id = 3) + (SELECT count(*) FROM part WHERE id = 30)")" "0"
	else
		expect_eq "$act: the hub kept the drill and its part" \
			"$(hub "SELECT (SELECT count(*) FROM machine WHERE id = 3) + (SELECT count(*) FROM part WHERE id = 30)")" "2"
		expect_eq "$act: a has the drill back" "$(plain "$a" "SELECT id, name FROM machine WHERE id = 3")" "3|drill"
		expect_eq "$act: a's delete is no set-aside change on the hub" \
			"$(hub "SELECT table_name, op, pk::text FROM sync_errors")" ""
		expect_eq "$act: a's delete is a conflict on the hub" \
			"$(hub "SELECT table_name, pk->>'id', loser_op FROM sync_conflicts")" 'machine|3|D'
		last_log | grep -q "up 0 applied, 1 overruled, 0 already there" || fail "$act: the delete counted otherwise: $(last_log)"
	fi
	expect_eq "$act: set aside on a" "$(client_errors "$a")" ""
	sync "$b"
	all_same "$act: after the race in one sync"

	note "$act: a deletes the lathe, its upload is refused; the hub adds a part to the lathe"
	plain "$a" "DELETE FROM machine WHERE id = 2;
		UPDATE machine SET name = 'press ' || hex(zeroblob(800)) WHERE id = 1"
	hub "INSERT INTO part VALUES (20, 2, 'new belt')"
	sync "$b"
	sync_upload_refused "$a"
	expect_eq "$act: a holds no orphan" "$(plain "$a" "SELECT count(*) FROM part WHERE id = 20")" "0"
	expect_eq "$act: set aside on a" "$(plain "$a" "SELECT table_name, op, pk FROM sync_errors")" 'part|I|{"id":20}'
	why=$(plain "$a" "SELECT error FROM sync_errors")
	[[ "$why" == *'"part" {"id":20}: its machine_id 2 is not in "machine" here'* ]] ||
		fail "$act: the reason does not name the missing machine: $why"
	grep -q 'set aside in sync_errors: "part" {"id":20}: its machine_id 2' "$SYNCQ_TMP/syncqd.log" ||
		fail "$act: the set-aside part is not in the log"

	note "$act: a's delete reaches the hub"
	sync "$a"
	[ "${SYNCQ_TRANSPORT:-}" != http ] || sleep 2.1	# serve retries set-aside changes every 2 s at most
	sync "$a"
	sync "$b"
	sync "$a"
	if [ "$act" = CASCADE ]; then
		expect_eq "$act: the lathe and its parts are gone on the hub" \
			"$(hub "SELECT (SELECT count(*) FROM machine WHERE id = 2) + (SELECT count(*) FROM part WHERE machine_id = 2)")" "0"
	else
		expect_eq "$act: the hub kept the lathe and its new part" \
			"$(hub "SELECT (SELECT count(*) FROM machine WHERE id = 2) + (SELECT count(*) FROM part WHERE id = 20)")" "2"
	fi
	all_same "$act: after the race"
	for f in "$a" "$b"; do
		expect_eq "$act: set aside on $(basename "$f" .db)" "$(client_errors "$f")" ""
		expect_eq "$act: pending on $(basename "$f" .db)" "$(pending "$f")" "0"
	done
	expect_eq "$act: set aside on the hub" "$(hub "SELECT table_name, op, pk::text FROM sync_errors")" ""
	if [ "$act" != CASCADE ]; then
		expect_eq "$act: a's deletes are conflicts on the hub" \
			"$(hub "SELECT table_name, pk->>'id', loser_op FROM sync_conflicts ORDER BY pk->>'id'")" 'machine|2|D
machine|3|D'
	fi
	expect_eq "$act: conflicts on a" "$(plain "$a" "SELECT table_name, pk, loser_op FROM sync_conflicts")" ""

	note "$act: the hub deletes a machine while a adds a part to it; a syncs"
	hub "INSERT INTO machine VALUES (6, 'grinder')"
	sync "$a"
	hub "DELETE FROM machine WHERE id = 6"
	plain "$a" "INSERT INTO part VALUES (60, 6, 'wheel'); INSERT INTO part VALUES (61, 1, 'spring')"
	sync "$a"
	expect_eq "$act: the orphan set aside on the hub, the part after it applied" \
		"$(hub "SELECT table_name, op, pk->>'id', sqlstate FROM sync_errors; SELECT id FROM part WHERE id >= 60")" "part|I|60|23503
61"
	expect_eq "$act: a dropped its orphan" "$(plain "$a" "SELECT count(*) FROM part WHERE id = 60")" "0"
	hub "DELETE FROM sync_errors"
	sync "$b"
	all_same "$act: after the orphan"
done

note "$act: a delete set aside for another reason is overruled at the retry the part refuses"
hub "INSERT INTO machine VALUES (5, 'saw')"
sync "$a"; sync "$b"
hub "INSERT INTO part VALUES (50, 5, 'blade');
	CREATE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS
		'BEGIN RAISE EXCEPTION ''deletes of machines are off''; END';
	CREATE TRIGGER no_delete BEFORE DELETE ON machine FOR EACH ROW EXECUTE FUNCTION no_delete()"
plain "$a" "DELETE FROM machine WHERE id = 5"
sync "$a"
expect_eq "$act: the trigger's refusal is set aside on the hub" \
	"$(hub "SELECT table_name, op, pk->>'id', split_part(error, E'\n', 1) FROM sync_errors")" 'machine|D|5|deletes of machines are off'
expect_eq "$act: a's part 50 waits for its machine" "$(plain "$a" "SELECT table_name, op, pk FROM sync_errors")" 'part|I|{"id":50}'
hub "DROP TRIGGER no_delete ON machine"
[ "${SYNCQ_TRANSPORT:-}" != http ] || sleep 2.1	# serve retries set-aside changes every 2 s at most
sync "$a"
grep -q 'set-aside change [0-9]* of "machine" (D {"id":5}) was overruled: the hub keeps the row, .*still referenced from table "part"' \
	"${SERVE_LOG:-$SYNCQ_TMP/syncqd.log}" "$SYNCQ_TMP/syncqd.log" 2>/dev/null || fail "$act: the retried delete was not overruled in the log"
expect_eq "$act: set aside on the hub, after the retry" "$(hub "SELECT table_name, op, pk::text FROM sync_errors")" ""
expect_eq "$act: the retried delete is a conflict on the hub" \
	"$(hub "SELECT table_name, pk->>'id', loser_op FROM sync_conflicts WHERE pk->>'id' = '5'")" 'machine|5|D'
sync "$a"; sync "$b"
expect_eq "$act: a's saw and blade" "$(plain "$a" "SELECT 'm', id, name FROM machine WHERE id = 5; SELECT 'p', id, machine_id FROM part WHERE id = 50")" "m|5|saw
p|50|5"
all_same "$act: after the retry"
for f in "$a" "$b"; do
	expect_eq "$act: set aside on $(basename "$f" .db), at the end" "$(client_errors "$f")" ""
done
echo ok
