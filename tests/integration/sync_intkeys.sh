#!/usr/bin/env bash
# syncqd-http
# Integer keys made offline (issue 13): a SQLAlchemy app (tests/intkeys/app.py,
# default ORM mapping, keys the database assigns) on the hub and two
# clients creates machines with parts, maintenance records, operators and
# an association row while offline; every node gives them the same keys.
# After syncing, in either order, every record is on every node exactly
# once under the same key, every child under its own parent, nothing in
# sync_conflicts, and the hub's app inserts again. Then: a renamed row
# edited and deleted after it was renamed, and one made, edited and deleted
# before its first sync; `syncqd status` (sync log) says what was renamed.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_intkeys
PY=/usr/bin/python3
APP=$SYNCQ_ROOT/tests/intkeys/app.py
HUBURL="postgresql+psycopg2://postgres@/sync_intkeys?host=$PGHOST&port=$PGPORT"
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
TABLES="machines parts maintenance operators machine_operators"

app() { "$PY" "$APP" "$@" || fail "app.py $* failed"; }
track() {	# track: sync_track every table on the hub and both clients
	local t
	for t in $TABLES; do
		hub "SELECT sync_track('$t')" >/dev/null
		cli "$A" "SELECT sync_track('$t')" >/dev/null
		cli "$B" "SELECT sync_track('$t')" >/dev/null
	done
}
dump() { "$PY" "$APP" "$1" dump || fail "$1: a record under another's parent:
$("$PY" "$APP" "$1" dump)"; }
same_everywhere() {	# same_everywhere WHAT: one dump on the hub, A and B
	local h
	h=$(dump "$HUBURL")
	expect_eq "$1: A = the hub" "$(dump "sqlite:///$A")" "$h"
	expect_eq "$1: B = the hub" "$(dump "sqlite:///$B")" "$h"
}
machines() { dump "$HUBURL" | sed -n 's/^machine \(.*\) = .*/\1/p' | tr '\n' ' '; }
no_conflicts() {
	expect_eq "$1: the hub's sync_conflicts" "$(hub "SELECT count(*) FROM sync_conflicts")" 0
	expect_eq "$1: A's sync_conflicts" "$(plain "$A" "SELECT count(*) FROM sync_conflicts")" 0
	expect_eq "$1: B's sync_conflicts" "$(plain "$B" "SELECT count(*) FROM sync_conflicts")" 0
	expect_eq "$1: set aside" "$(set_aside "$A" "$B")" ""
}

app "$HUBURL" schema
app "sqlite:///$A" schema
app "sqlite:///$B" schema
track
sync "$A"
sync "$B"

note "round 1: the hub, A and B each make 2 machines offline (keys 1, 2 everywhere); A syncs first"
expect_eq "A's first keys" "$(app "sqlite:///$A" create A 2 | tr '\n' ' ')" "1 2 "
expect_eq "B's first keys" "$(app "sqlite:///$B" create B 2 | tr '\n' ' ')" "1 2 "
expect_eq "the hub's first keys" "$(app "$HUBURL" create H 2 | tr '\n' ' ')" "1 2 "
sync "$A"
sync "$B"
sync "$A"
expect_eq "machines" "$(machines)" "machine A0 machine A1 machine B0 machine B1 machine H0 machine H1 "
same_everywhere "round 1"
no_conflicts "round 1"
grep -q "renamed to the key the hub gave" "$SYNCQ_TMP/syncqd.log" ||
	fail "the sync log does not say that rows were renamed"

note "the hub's app inserts again: no duplicate key"
app "$HUBURL" create H2- 1 >/dev/null

note "round 2: everyone offline again; B syncs first"
app "sqlite:///$A" create A2- 2 >/dev/null
app "sqlite:///$B" create B2- 2 >/dev/null
app "$HUBURL" create H3- 1 >/dev/null
sync "$B"
sync "$A"
sync "$B"
expect_eq "machines" "$(machines)" \
	"machine A0 machine A1 machine A2-0 machine A2-1 machine B0 machine B1 machine B2-0 machine B2-1 machine H0 machine H1 machine H2-0 machine H3-0 "
same_everywhere "round 2"
no_conflicts "round 2"
app "$HUBURL" create H4- 1 >/dev/null

note "a renamed row edited and then deleted by the app after the rename"
app "sqlite:///$A" create A3- 1 >/dev/null
app "sqlite:///$B" create B3- 1 >/dev/null
sync "$B"
sync "$A"			# A's machine A3-0 met B3-0's key: renamed
app "sqlite:///$A" edit "machine A3-0" "record A3-0 edited on A"
sync "$A"
sync "$B"
expect_eq "the edit on B" "$(plain "$B" "SELECT note FROM maintenance WHERE machine_id = (SELECT id FROM machines WHERE name = 'machine A3-0')")" "record A3-0 edited on A"
app "sqlite:///$A" drop "machine A3-0"
sync "$A"
sync "$B"
sync "$A"
same_everywhere "after the drop"
dump "$HUBURL" | grep -q "^machine machine A3-0" && fail "machine A3-0 is still on the hub"

note "a row made, edited and deleted before its first sync, and one made and edited"
app "sqlite:///$B" create B4- 2 >/dev/null
app "sqlite:///$A" create A4- 2 >/dev/null
app "sqlite:///$A" edit "machine A4-0" "record A4-0 edited before the sync"
app "sqlite:///$A" drop "machine A4-1"
sync "$B"
sync "$A"
sync "$B"
same_everywhere "made, edited, deleted offline"
expect_eq "the offline edit" "$(hub "SELECT note FROM maintenance WHERE machine_id = (SELECT id FROM machines WHERE name = 'machine A4-0')")" "record A4-0 edited before the sync"
dump "$HUBURL" | grep -q "^machine machine A4-1" && fail "machine A4-1 is on the hub"
no_conflicts "the end"
app "$HUBURL" create H5- 1 >/dev/null
sync "$A"
sync "$B"
same_everywhere "the end"
expect_eq "renames A recorded" "$(plain "$A" "SELECT count(*) > 0 FROM syncqd_key_renames")" 1
note "ok"
