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
#     every node ends with it;
#   * the same without the sync in between: the laptop's change, stamped
#     an hour ahead, is re-stamped on arrival by the clock offset its
#     syncqd (under the same faketime) shows, and loses to head office's
#     later edit on every node, the laptop included;
#   * a laptop a year ahead: its change neither wins over head office's
#     later edit nor drags the hub's clock (sync_clock) a year forward.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_clock_skew
command -v faketime >/dev/null || fail "faketime (Debian package faketime) is not installed"

hub "CREATE TABLE doc (id integer PRIMARY KEY, v text);
	SELECT sync_track('doc');
	INSERT INTO doc VALUES (1, 'hub'), (2, 'hub'), (3, 'hub'), (4, 'hub'), (5, 'hub');" >/dev/null
behind=$SYNCQ_TMP/behind.db
ahead=$SYNCQ_TMP/ahead.db
other=$SYNCQ_TMP/other.db
year=$SYNCQ_TMP/year.db
for f in "$behind" "$ahead" "$other" "$year"; do
	cli "$f" "CREATE TABLE doc (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('doc');" >/dev/null
	sync "$f"
done

# skewed OFFSET FILE SQL: the app writes through a plain connection on a
# machine whose clock is OFFSET off (faketime -f: "-1h", "+1h").
skewed() { faketime -f "$1" sqlite3 -bail "$2" "$3"; }
# sync_skewed OFFSET FILE: that laptop's syncqd, on the same wrong clock
export FAKETIME_DONT_FAKE_MONOTONIC=1
sync_skewed() {
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 \
	faketime -f "$1" "$SYNCQD" --sqlite "$2" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" ||
		{ tail -n 5 "$SYNCQ_TMP/syncqd.log" >&2; fail "syncqd --once (clock $1) on $2 failed"; }
}
all_sync() {
	for round in 1 2; do
		sync "$behind"; sync_skewed +1h "$ahead"; sync "$other"; sync_skewed +365d "$year"
	done
}

note "a laptop 1 h behind syncs the hub's newer value, then edits the row"
hub "UPDATE doc SET v = 'head office' WHERE id = 1" >/dev/null
sync "$behind"
expect_eq "behind got the hub's edit" "$(plain "$behind" "SELECT v FROM doc WHERE id = 1")" "head office"
skewed -1h "$behind" "UPDATE doc SET v = 'laptop behind' WHERE id = 1"
all_sync
expect_eq "the hub holds the laptop's later edit" "$(hub "SELECT v FROM doc WHERE id = 1")" "laptop behind"
same_rows doc "id, v" "$behind" "$ahead" "$other" "$year"

note "a laptop 1 h ahead edits and syncs; a second later head office edits the row"
skewed +1h "$ahead" "UPDATE doc SET v = 'laptop ahead' WHERE id = 2"
sync_skewed +1h "$ahead"
expect_eq "the hub took the laptop's edit" "$(hub "SELECT v FROM doc WHERE id = 2")" "laptop ahead"
sleep 1
hub "UPDATE doc SET v = 'head office later' WHERE id = 2" >/dev/null
all_sync
expect_eq "the hub holds head office's later edit" "$(hub "SELECT v FROM doc WHERE id = 2")" "head office later"
same_rows doc "id, v" "$behind" "$ahead" "$other" "$year"

note "the laptop 1 h ahead edits again after it synced head office's edit: its edit is the last"
skewed +1h "$ahead" "UPDATE doc SET v = 'laptop ahead again' WHERE id = 2"
all_sync
expect_eq "the hub holds the laptop's last edit" "$(hub "SELECT v FROM doc WHERE id = 2")" "laptop ahead again"
same_rows doc "id, v" "$behind" "$ahead" "$other" "$year"

note "a laptop 1 h ahead edits; a second later, before it syncs, head office edits the row"
skewed +1h "$ahead" "UPDATE doc SET v = 'laptop ahead, offline' WHERE id = 4"
sleep 1
hub "UPDATE doc SET v = 'head office, after it' WHERE id = 4" >/dev/null
sync_skewed +1h "$ahead"
grep -q "clock is 1 h 00 min [0-9][0-9] s ahead of the hub" "$SYNCQ_TMP/syncqd.log" ||
	fail "syncqd did not log the laptop's clock offset"
all_sync
expect_eq "the hub holds head office's later edit" "$(hub "SELECT v FROM doc WHERE id = 4")" "head office, after it"
same_rows doc "id, v" "$behind" "$ahead" "$other" "$year"
expect_eq "the laptop's change is in the hub's sync_conflicts" \
	"$(hub "SELECT loser_row->>'v' FROM sync_conflicts WHERE pk->>'id' = '4'")" "laptop ahead, offline"

note "a laptop a year ahead edits and syncs; head office edits the row a second later"
skewed +365d "$year" "UPDATE doc SET v = 'laptop a year ahead' WHERE id = 5"
sync_skewed +365d "$year"
expect_eq "the hub took the laptop's edit" "$(hub "SELECT v FROM doc WHERE id = 5")" "laptop a year ahead"
expect_eq "the hub's clock stays within max_offset of now" \
	"$(hub "SELECT max(hlc) <= clock_timestamp() + max_offset FROM sync_clock, sync_hub_state GROUP BY max_offset")" "t"
sleep 1
hub "UPDATE doc SET v = 'head office, a second later' WHERE id = 5" >/dev/null
all_sync
expect_eq "the hub holds head office's later edit" "$(hub "SELECT v FROM doc WHERE id = 5")" "head office, a second later"
same_rows doc "id, v" "$behind" "$ahead" "$other" "$year"
expect_eq "no version a year ahead on the hub" \
	"$(hub "SELECT count(*) FROM sync_versions WHERE ver_us > (extract(epoch FROM clock_timestamp() + interval '1 day') * 1000000)::bigint")" "0"

expect_eq "nothing set aside" "$(set_aside "$behind" "$ahead" "$other" "$year")" ""
for f in "$behind" "$ahead" "$other" "$year"; do expect_eq "pending on $(basename "$f")" "$(pending "$f")" "0"; done
echo ok
