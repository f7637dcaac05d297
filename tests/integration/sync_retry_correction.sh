#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# A set-aside change that goes through on a retry reaches its own node too
# (docs/replication.md, "The hub's row as stored is the truth"). The hub
# relays it to every other node, and its own node, which holds the hub's
# row in its place (the correction it got when the change was set aside,
# then the hub's later changes of the row), gets a correction with the
# row as the hub holds it now. That correction went with the last change
# of the row in the retry's batch, and where that one was refused again
# (or superseded) no correction went at all: the node ended without a
# row every other node holds (found by converge.py --set-asides).
#   * keys the app sets: b's insert of machine m1 meets a's record and is
#     set aside; b deletes the hub's record and inserts m1 again, which
#     meets the record too (the hub's app edited it meanwhile). a deletes
#     m1: b's first insert goes through, the second stays set aside (a
#     live row is the record it met), and b holds m1 as every node does.
#   * a missing parent: b's part 20 under machine m2, which a deleted,
#     is set aside (23503); so is b's part 20 again, under m9, which no
#     node has. a creates m2 again: the first goes through, the second
#     stays set aside (m9 is still missing), and b holds part 20 as every
#     node does.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_retry_correction

hub "CREATE TABLE machine (id text PRIMARY KEY, name text);
	CREATE TABLE part (id integer PRIMARY KEY,
		machine_id text REFERENCES machine ON DELETE CASCADE, note text);
	SELECT sync_track('machine'); SELECT sync_track('part');" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE machine (id TEXT PRIMARY KEY, name TEXT);
		CREATE TABLE part (id INTEGER PRIMARY KEY,
			machine_id TEXT REFERENCES machine ON DELETE CASCADE, note TEXT);
		SELECT sync_track('machine'); SELECT sync_track('part');" >/dev/null
	sync "$f"
done

# retry_sync FILE: a sync after the hub's pause between retries of a
# node's set-aside changes (serve: at most every 2 s)
retry_sync() { sleep 2.1; sync "$1"; }

note "keys the app sets: a and b both create machine m1; a's reaches the hub first"
plain "$a" "INSERT INTO machine VALUES ('m1', 'lathe of a')"
plain "$b" "INSERT INTO machine VALUES ('m1', 'drill of b')"
sync "$a"; sync "$b"
expect_eq "b's insert set aside on the hub" \
	"$(hub "SELECT op, pk::text, sqlstate FROM sync_errors ORDER BY seq")" 'I|{"id":"m1"}|SQ505'
expect_eq "b holds a's m1" "$(plain "$b" "SELECT name FROM machine WHERE id = 'm1'")" "lathe of a"

note "b deletes the hub's m1 and inserts its own again; the hub's app edits m1 after that"
plain "$b" "DELETE FROM machine WHERE id = 'm1'; INSERT INTO machine VALUES ('m1', 'press of b')"
sleep 0.01
hub "UPDATE machine SET name = 'lathe of the hub' WHERE id = 'm1'" >/dev/null
retry_sync "$b"
expect_eq "b's two inserts set aside on the hub (its delete overruled)" \
	"$(hub "SELECT op || ' ' || (row_data->>'name') FROM sync_errors ORDER BY seq")" \
	"I drill of b
I press of b"
expect_eq "b holds the hub's m1" "$(plain "$b" "SELECT name FROM machine WHERE id = 'm1'")" "lathe of the hub"

note "a deletes m1: b's first insert goes through on the retry, the second stays set aside"
plain "$a" "DELETE FROM machine WHERE id = 'm1'"
sync "$a"
retry_sync "$b"
expect_eq "the hub's m1: b's first insert" "$(hub "SELECT name FROM machine WHERE id = 'm1'")" "drill of b"
expect_eq "b's second insert still set aside on the hub" \
	"$(hub "SELECT op || ' ' || (row_data->>'name') FROM sync_errors ORDER BY seq")" "I press of b"
# (the hub's log: syncqd's own over libpq, serve's over HTTP)
cat "$SYNCQ_TMP"/*.log | grep -q 'set-aside change [0-9]* of "machine" (I {"id":"m1"}) went through' ||
	fail "syncqd did not log that b's insert went through"
sync "$a"; sync "$b"
same_rows machine "id, name" "$a" "$b"
expect_eq "b's version of m1: the hub's" \
	"$(plain "$b" "SELECT ver_us || ' ' || ver_origin FROM sync_versions WHERE table_name = 'machine' AND pk = '{\"id\":\"m1\"}'")" \
	"$(hub "SELECT ver_us || ' ' || ver_origin FROM sync_versions WHERE table_name = 'machine' AND pk = '{\"id\":\"m1\"}'")"
expect_eq "b's own entries: the second insert only" \
	"$(plain "$b" "SELECT op || ' ' || json_extract(row_data, '$.name') FROM sync_errors")" "I press of b"

note "a missing parent: a deletes machine m2 (b has it still) and b adds part 20 under m2"
plain "$a" "INSERT INTO machine VALUES ('m2', 'saw')"
sync "$a"; sync "$b"
plain "$a" "DELETE FROM machine WHERE id = 'm2'"
sync "$a"
plain "$b" "INSERT INTO part VALUES (20, 'm2', 'pump of b')"
retry_sync "$b"
expect_eq "b's part 20 set aside on the hub (23503)" \
	"$(hub "SELECT op || ' ' || sqlstate FROM sync_errors WHERE table_name = 'part'")" "I 23503"
expect_eq "b dropped its orphan, and m2" "$(plain "$b" "SELECT (SELECT count(*) FROM part) + (SELECT count(*) FROM machine WHERE id = 'm2')")" "0"

note "b adds part 20 again, under machine m9, which no node has"
plain "$b" "INSERT INTO part VALUES (20, 'm9', 'valve of b')"
retry_sync "$b"
expect_eq "both of b's part 20 set aside on the hub (23503)" \
	"$(hub "SELECT op || ' ' || (row_data->>'machine_id') || ' ' || sqlstate FROM sync_errors WHERE table_name = 'part' ORDER BY seq")" \
	"I m2 23503
I m9 23503"
expect_eq "b dropped that orphan too" "$(plain "$b" "SELECT count(*) FROM part")" "0"

note "a creates m2 again: b's first part 20 goes through on the retry, the second stays set aside"
plain "$a" "INSERT INTO machine VALUES ('m2', 'saw again')"
sync "$a"
retry_sync "$b"
expect_eq "the hub's part 20: b's first" "$(hub "SELECT machine_id || ' ' || note FROM part WHERE id = 20")" "m2 pump of b"
expect_eq "b's second part 20 still set aside on the hub" \
	"$(hub "SELECT op || ' ' || (row_data->>'machine_id') FROM sync_errors WHERE table_name = 'part'")" "I m9"
sync "$a"; sync "$b"
same_rows machine "id, name" "$a" "$b"
same_rows part "id, machine_id, note" "$a" "$b"
echo ok
