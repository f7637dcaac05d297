#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Wrong clocks (issue 11): a change made after its node saw another change
# of the row wins over it on every node, whatever the wall clocks say. The
# apps on the field laptops write under libfaketime (Debian's faketime):
#   * a laptop 1 h behind syncs (it gets the hub's newer value), then edits
#     the row: its edit is the last, and every node ends with it;
#   * a laptop 1 h ahead edits a row and syncs; a second later head office
#     edits the same row on the hub: head office's edit is the last, and
#     every node ends with it.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_clock_skew
command -v faketime >/dev/null || fail "faketime (Debian package faketime) is not installed"

hub "CREATE TABLE doc (id integer PRIMARY KEY, v text);
	SELECT sync_track('doc');
	INSERT INTO doc VALUES (1, 'hub'), (2, 'hub'), (3, 'hub');" >/dev/null
behind=$SYNCQ_TMP/behind.db
ahead=$SYNCQ_TMP/ahead.db
other=$SYNCQ_TMP/other.db
for f in "$behind" "$ahead" "$other"; do
	cli "$f" "CREATE TABLE doc (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('doc');" >/dev/null
	sync "$f"
done

# skewed OFFSET FILE SQL: the app writes through a plain connection on a
# machine whose clock is OFFSET off (faketime -f: "-1h", "+1h").
skewed() { faketime -f "$1" sqlite3 -bail "$2" "$3"; }
all_sync() { for f in "$behind" "$ahead" "$other" "$behind" "$ahead" "$other"; do sync "$f"; done; }

note "a laptop 1 h behind syncs the hub's newer value, then edits the row"
hub "UPDATE doc SET v = 'head office' WHERE id = 1" >/dev/null
sync "$behind"
expect_eq "behind got the hub's edit" "$(plain "$behind" "SELECT v FROM doc WHERE id = 1")" "head office"
skewed -1h "$behind" "UPDATE doc SET v = 'laptop behind' WHERE id = 1"
all_sync
expect_eq "the hub holds the laptop's later edit" "$(hub "SELECT v FROM doc WHERE id = 1")" "laptop behind"
same_rows doc "id, v" "$behind" "$ahead" "$other"

note "a laptop 1 h ahead edits and syncs; a second later head office edits the row"
skewed +1h "$ahead" "UPDATE doc SET v = 'laptop ahead' WHERE id = 2"
sync "$ahead"
expect_eq "the hub took the laptop's edit" "$(hub "SELECT v FROM doc WHERE id = 2")" "laptop ahead"
sleep 1
hub "UPDATE doc SET v = 'head office later' WHERE id = 2" >/dev/null
all_sync
expect_eq "the hub holds head office's later edit" "$(hub "SELECT v FROM doc WHERE id = 2")" "head office later"
same_rows doc "id, v" "$behind" "$ahead" "$other"

note "the laptop 1 h ahead edits again after it synced head office's edit: its edit is the last"
skewed +1h "$ahead" "UPDATE doc SET v = 'laptop ahead again' WHERE id = 2"
all_sync
expect_eq "the hub holds the laptop's last edit" "$(hub "SELECT v FROM doc WHERE id = 2")" "laptop ahead again"
same_rows doc "id, v" "$behind" "$ahead" "$other"

expect_eq "nothing set aside" "$(set_aside "$behind" "$ahead" "$other")" ""
for f in "$behind" "$ahead" "$other"; do expect_eq "pending on $(basename "$f")" "$(pending "$f")" "0"; done
echo ok
