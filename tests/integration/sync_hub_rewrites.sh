#!/usr/bin/env bash
# syncqd-http
# What the hub does to a client's change, when it is not a plain store
# (issue 11, found by review): every node ends with the hub's rows.
#   * a hub trigger changes a row earlier in the upload, and the upload's
#     own change of that row comes after: the capture stamps the change
#     afresh (after the trigger's), and the uploader gets the row as the
#     hub holds it (it never downloads its own change, only the trigger's);
#   * a BEFORE trigger drops an insert (RETURN NULL) or moves it to another
#     key: the others never get it as sent, the uploader drops it;
#   * an orphan refused by the hub whose key the client spelt otherwise
#     (an upper-case uuid) leaves the client too;
#   * a laptop whose clock drifts from 4 min to 6 min ahead (max_offset
#     5 min): its later edit, re-stamped on arrival, still comes after its
#     earlier one, kept as it came in the upload before; and its offset
#     is measured against the hub's wall clock, not the hub's clock that
#     the kept change raised.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_hub_rewrites
command -v faketime >/dev/null || fail "faketime (Debian package faketime) is not installed"

hub "CREATE TABLE grp (id integer PRIMARY KEY, name text);
	CREATE TABLE item (id integer PRIMARY KEY, grp_id integer REFERENCES grp ON DELETE CASCADE,
		note text, touched integer NOT NULL DEFAULT 0);
	CREATE TABLE tag (id uuid PRIMARY KEY, grp_id integer REFERENCES grp ON DELETE CASCADE, label text);
	CREATE TABLE msg (id integer PRIMARY KEY, body text);
	CREATE FUNCTION grp_touch() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		UPDATE item SET touched = touched + 1 WHERE grp_id = NEW.id;
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER grp_touch AFTER UPDATE ON grp FOR EACH ROW EXECUTE FUNCTION grp_touch();
	CREATE FUNCTION msg_filter() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.body LIKE 'spam%' THEN RETURN NULL; END IF;
		IF NEW.body LIKE 'move%' THEN NEW.id := NEW.id + 1000; END IF;
		RETURN NEW;
	END \$\$;
	CREATE TRIGGER msg_filter BEFORE INSERT OR UPDATE ON msg FOR EACH ROW EXECUTE FUNCTION msg_filter();
	SELECT sync_track('grp'); SELECT sync_track('item'); SELECT sync_track('tag'); SELECT sync_track('msg');
	INSERT INTO grp VALUES (1, 'one'), (2, 'two');
	INSERT INTO item VALUES (1, 1, 'first', 0), (2, 2, 'second', 0);" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE grp (id INTEGER PRIMARY KEY, name TEXT);
		CREATE TABLE item (id INTEGER PRIMARY KEY, grp_id INTEGER REFERENCES grp ON DELETE CASCADE,
			note TEXT, touched INTEGER NOT NULL DEFAULT 0);
		CREATE TABLE tag (id TEXT PRIMARY KEY, grp_id INTEGER REFERENCES grp ON DELETE CASCADE, label TEXT);
		CREATE TABLE msg (id INTEGER PRIMARY KEY, body TEXT);
		SELECT sync_track('grp'); SELECT sync_track('item'); SELECT sync_track('tag'); SELECT sync_track('msg');" >/dev/null
	sync "$f"
done
rows_hub() {
	hub "SELECT 'g', id, name FROM grp ORDER BY id;
		SELECT 'i', id, grp_id, note, touched FROM item ORDER BY id;
		SELECT 't', id, grp_id, label FROM tag ORDER BY id;
		SELECT 'm', id, body FROM msg ORDER BY id"
}
rows_cli() {
	plain "$1" "SELECT 'g', id, name FROM grp ORDER BY id;
		SELECT 'i', id, grp_id, note, touched FROM item ORDER BY id;
		SELECT 't', lower(id), grp_id, label FROM tag ORDER BY id;
		SELECT 'm', id, body FROM msg ORDER BY id"
}
all_same() {
	local want
	want=$(rows_hub)
	for f in "$a" "$b"; do expect_eq "$1: $(basename "$f" .db) holds the hub's rows" "$(rows_cli "$f")" "$want"; done
}

note "a renames group 1 (the hub's trigger touches its item), then edits that item, in one upload"
plain "$a" "UPDATE grp SET name = 'one, renamed' WHERE id = 1;
	UPDATE item SET note = 'first, edited on a' WHERE id = 1"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's item 1" "$(hub "SELECT note, touched FROM item WHERE id = 1")" "first, edited on a|0"
all_same "after the trigger and the later edit"

note "a inserts a message the hub's trigger drops, and one it moves to another key"
plain "$a" "INSERT INTO msg VALUES (1, 'spam, buy now'), (2, 'move me'), (3, 'plain')"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's messages" "$(hub "SELECT id, body FROM msg ORDER BY id")" "3|plain
1002|move me"
all_same "after the dropped and the moved insert"

note "a tags group 2 with an upper-case uuid while b deletes group 2: the orphan leaves a"
T=5A0C1E2D-3F4B-4C5D-8E6F-7A8B9C0D1E2F
plain "$a" "INSERT INTO tag VALUES ('$T', 2, 'red')"
plain "$b" "DELETE FROM item WHERE grp_id = 2; DELETE FROM grp WHERE id = 2"
sync "$b"; sync "$a"; sync "$b"; sync "$a"
expect_eq "a's tags" "$(plain "$a" "SELECT count(*) FROM tag")" "0"
all_same "after the orphan"
hub "SELECT error FROM sync_errors WHERE table_name = 'tag'" | grep -q 'is not present in table "grp"' ||
	fail "the hub did not set the orphan aside: $(hub "SELECT table_name, error FROM sync_errors")"

note "a's clock drifts from 4 min to 6 min ahead (max_offset 5 min): its later edits win"
export FAKETIME_DONT_FAKE_MONOTONIC=1
skewed() { faketime -f "$1" sqlite3 -bail "$2" "$3"; }
sync_skewed() {
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 \
	faketime -f "$1" "$SYNCQD" --sqlite "$2" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" ||
		{ tail -n 5 "$SYNCQ_TMP/syncqd.log" >&2; fail "syncqd --once (clock $1) on $2 failed"; }
}
expect_eq "max_offset" "$(hub "SELECT max_offset FROM sync_hub_state")" "00:05:00"
skewed +240 "$a" "UPDATE grp SET name = 'at +4 min' WHERE id = 1"
sync_skewed +240 "$a"
skewed +360 "$a" "UPDATE grp SET name = 'at +6 min' WHERE id = 1"
sync_skewed +360 "$a"
expect_eq "the hub's group 1" "$(hub "SELECT name FROM grp WHERE id = 1")" "at +6 min"
sync "$b"; sync_skewed +360 "$a"
tail -n 2 "$SYNCQ_TMP/syncqd.log" | grep -Eq "clock is 0 h 0(5 min 5[0-9]|6 min 0[0-9]) s ahead of the hub's" ||
	fail "a's clock offset is measured against the hub's clock as raised by a's own change, not its wall clock: $(tail -n 2 "$SYNCQ_TMP/syncqd.log")"
all_same "after the drifting clock"
expect_eq "a's overruled changes" "$(plain "$a" "SELECT count(*) FROM sync_conflicts WHERE table_name = 'grp'")" "0"
echo ok
