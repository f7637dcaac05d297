#!/usr/bin/env bash
# release_upgrade.sh — the real upgrade: a hub and two clients made and
# synced by syncq 0.1.0 (built from the tag v0.1.0: its SQLite extension
# and syncqd; the hub runs sql/syncq--0.1.0.sql, which this version's
# package installs, CREATE EXTENSION syncq VERSION '0.1.0', on this
# version's syncq.so), with changes pending in every queue (the hub's for
# both clients, each client's own), upgraded to this version in both
# orders: the hub first (ALTER EXTENSION syncq UPDATE), and a client first
# (this syncqd migrates its SQLite file on open). Then this syncqd syncs
# every client and every row of every tracked table is the same on the hub
# and both clients, and is what the changes made: nothing lost, nothing
# doubled.
#
# Mixed versions on the way, as decided (README "Upgrade"):
#   * 0.1.0 syncqd -> 0.2.0 hub, over libpq and through a 0.2.0 serve
#     (which still speaks 0.1.0's protocol 1: rows and keys as JSON text in
#     strings): works (the hub is upgraded first, the clients at their own
#     pace); a first sync of a new 0.1.0 client through it too, in pages;
#   * this syncqd -> 0.1.0 hub over libpq, or through a 0.1.0 serve: stops
#     with a message saying to upgrade the hub (ALTER EXTENSION syncq
#     UPDATE) or serve; its queue waits and goes once the hub is upgraded;
#   * this serve on a 0.1.0 hub: refuses to start, saying ALTER EXTENSION.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
cd "$SYNCQ_ROOT"
cur=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)

# --- syncq 0.1.0, from the tag ----------------------------------------------
old=$SYNCQ_TMP/v0.1.0
rev=
for r in v0.1.0 5f55ede; do
	if git rev-parse -q --verify "$r^{commit}" >/dev/null 2>&1; then rev=$r; break; fi
done
[ -n "$rev" ] || fail "neither the tag v0.1.0 nor its commit 5f55ede is in this clone (a shallow clone?)"
mkdir -p "$old"
git archive "$rev" | tar -x -C "$old"
make -s -C "$old" -j2 sqlite replicator CFLAGS="-O1 -g0" >"$SYNCQ_TMP/build-0.1.0.log" 2>&1 ||
	{ tail -n 20 "$SYNCQ_TMP/build-0.1.0.log"; fail "building syncq 0.1.0 from $rev"; }
OLD_SYNCQD=$old/replicator/syncqd
OLD_EXT=$old/sqlite_ext/syncq.so
expect_eq "the old syncqd" "$("$OLD_SYNCQD" --version)" "syncqd 0.1.0"
note "syncq 0.1.0 (SQLite extension, syncqd) built from $rev"

ocli() { local f=$1; shift; { printf '.load %s\n' "$OLD_EXT"; printf '%s\n' "$@"; } | sqlite3 -bail -separator '|' "$f"; }
osync() {	# osync FILE [URL]: one sync by the 0.1.0 syncqd
	"$OLD_SYNCQD" --sqlite "$1" --online "${2:-$HUB}" --once 2>>"$SYNCQ_TMP/syncqd.log" ||
		{ tail -n 5 "$SYNCQ_TMP/syncqd.log" >&2; fail "syncqd 0.1.0 --once on $1"; }
}
nsync() {	# nsync FILE [URL]: one sync by this syncqd
	"$SYNCQD" --sqlite "$1" --online "${2:-$HUB}" --once 2>>"$SYNCQ_TMP/syncqd.log" ||
		{ tail -n 5 "$SYNCQ_TMP/syncqd.log" >&2; fail "syncqd $cur --once on $1"; }
}
stop_serve() { kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=; }
extversion() { hub "SELECT extversion FROM pg_extension WHERE extname = 'syncq'"; }

# new_client FILE: a SQLite file of 0.1.0 tracking the tables
new_client() {
	ocli "$1" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);" \
		"CREATE TABLE notes (k TEXT PRIMARY KEY, body TEXT);" "CREATE TABLE bulk (k TEXT PRIMARY KEY, n INTEGER);" \
		"SELECT sync_track('items'); SELECT sync_track('notes', 'batched'); SELECT sync_track('bulk');" >/dev/null
}

# setup NAME: a 0.1.0 hub and clients $A, $B, synced once, then changes
# pending everywhere: the hub's (some already downloaded by A, none by B),
# A's and B's own, in an immediate and a batched table.
setup() {
	psql -X -q -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
	HUB="host=$PGHOST port=$PGPORT user=postgres dbname=$1"
	hub "CREATE EXTENSION syncq VERSION '0.1.0'" >/dev/null
	expect_eq "the hub's version" "$(extversion)" 0.1.0
	hub "CREATE TABLE items (id integer PRIMARY KEY, name text, qty integer);
		CREATE TABLE notes (k text PRIMARY KEY, body text);
		CREATE TABLE bulk (k text PRIMARY KEY, n integer);
		SELECT sync_track('items'), sync_track('notes', 'batched'), sync_track('bulk');
		INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 6) g;" >/dev/null
	A=$SYNCQ_TMP/$1-a.db B=$SYNCQ_TMP/$1-b.db
	for f in "$A" "$B"; do
		rm -f "$f"*
		new_client "$f"
		osync "$f"
	done
	hub "UPDATE items SET name = 'hub one' WHERE id = 1; INSERT INTO items VALUES (3001, 'hub 3001', 1)" >/dev/null
	osync "$A"
	hub "DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (3002, 'hub 3002', 2);
		INSERT INTO notes VALUES ('h', 'hub note')" >/dev/null
	ocli "$A" "INSERT INTO items VALUES (1001, 'a 1001', 1), (1002, 'a 1002', 2);" \
		"UPDATE items SET name = 'a three' WHERE id = 3;" "INSERT INTO notes VALUES ('a', 'a note');" >/dev/null
	# the app's own driver, without the extension
	plain "$B" "INSERT INTO items VALUES (2001, 'b 2001', 1); DELETE FROM items WHERE id = 4;
		UPDATE items SET qty = 55 WHERE id = 5; INSERT INTO notes VALUES ('b', 'b note');"
	[ "$(pending "$A")" -gt 0 ] && [ "$(pending "$B")" -gt 0 ] || fail "no pending client changes at 0.1.0"
	[ "$(hub "SELECT count(*) FROM sync_queue WHERE origin = sync_node_id()")" -gt 0 ] || fail "no hub changes queued"
}

# What the changes of setup() (and ROW_AFTER, if set) make of every table.
expected_items() {
	printf '%s\n' "1|hub one|10" "3|a three|30" "5|item 5|55" "6|item 6|60" \
		"1001|a 1001|1" "1002|a 1002|2" ${EXTRA_A:+"$EXTRA_A"} "2001|b 2001|1" "3001|hub 3001|1" "3002|hub 3002|2"
}
expected_notes() { printf '%s\n' "a|a note" "b|b note" "h|hub note"; }

# compare WHAT: every tracked table alike on the hub and both clients, and
# as expected; no client has a change left to send
compare() {
	local t h f
	for t in $(hub "SELECT table_name FROM sync_tables ORDER BY 1"); do
		h=$(hub "SELECT * FROM $t ORDER BY 1")
		for f in "$A" "$B"; do
			expect_eq "$1: $t on $(basename "$f") and the hub" "$(plain "$f" "SELECT * FROM $t ORDER BY 1")" "$h"
		done
	done
	expect_eq "$1: items" "$(hub "SELECT * FROM items ORDER BY 1")" "$(expected_items)"
	expect_eq "$1: notes" "$(hub "SELECT * FROM notes ORDER BY 1")" "$(expected_notes)"
	for f in "$A" "$B"; do
		expect_eq "$1: changes of $(basename "$f") not acknowledged" "$(pending "$f")" 0
		expect_eq "$1: $(basename "$f")'s schema" "$(plain "$f" "SELECT release FROM syncq_schema")" "$cur"
	done
	expect_eq "$1: conflicts" "$(hub "SELECT count(*) FROM sync_conflicts")" 0
	expect_eq "$1: set aside" "$(hub "SELECT count(*) FROM sync_errors")" 0
}

# --- 1. the hub first ---------------------------------------------------------
note "hub first"
EXTRA_A=
setup up_hubfirst
hub "ALTER EXTENSION syncq UPDATE" >/dev/null
expect_eq "ALTER EXTENSION syncq UPDATE" "$(extversion)" "$cur"
expect_eq "syncq_version() after the update" "$(hub "SELECT syncq_version()")" "$cur"
# a 0.1.0 client goes on syncing with the upgraded hub, over libpq
osync "$A"
expect_eq "0.1.0 syncqd -> $cur hub: A's changes arrived" "$(hub "SELECT name FROM items WHERE id IN (1001, 3) ORDER BY id")" "a three
a 1001"
expect_eq "0.1.0 syncqd -> $cur hub: the hub's changes arrived" "$(plain "$A" "SELECT count(*) FROM items WHERE id IN (2, 3002)")" 1
# ... and through this version's serve (protocol 1): B uploads and downloads
start_serve
osync "$B" "$ONLINE"
expect_eq "0.1.0 syncqd -> $cur serve: B's changes arrived" "$(hub "SELECT name FROM items WHERE id = 2001")" "b 2001"
expect_eq "0.1.0 syncqd -> $cur serve: the hub's changes arrived" "$(plain "$B" "SELECT count(*) FROM items WHERE id IN (2, 3002)")" 1
# a new 0.1.0 client's first sync through it: a table of more rows than
# 0.1.0 asks for in one page (20000), read with "after" and "last"
hub "INSERT INTO bulk SELECT 'k' || g, g FROM generate_series(1, 20005) g" >/dev/null
C=$SYNCQ_TMP/up_hubfirst-c.db
rm -f "$C"*
new_client "$C"
osync "$C" "$ONLINE"
for t in items notes bulk; do
	expect_eq "0.1.0 syncqd's first sync through a $cur serve: $t" \
		"$(plain "$C" "SELECT * FROM $t ORDER BY 1")" "$(hub "SELECT * FROM $t ORDER BY 1")"
done
# a key the hub assigns (serial) that a 0.1.0 client's insert meets: the
# hub does not give it a new key (protocol 1's reply cannot say so, and the
# client would keep the old one): last writer wins, as at 0.1.0, alike on
# every node
hub "CREATE TABLE machines (id serial PRIMARY KEY, name text); SELECT sync_track('machines');
	INSERT INTO machines (name) VALUES ('hub m')" >/dev/null
for f in "$A" "$B"; do ocli "$f" "CREATE TABLE machines (id INTEGER PRIMARY KEY, name TEXT); SELECT sync_track('machines');" >/dev/null; done
plain "$B" "INSERT INTO machines VALUES (1, 'b m')"
osync "$B" "$ONLINE"
expect_eq "0.1.0 syncqd -> $cur serve: an insert meeting a hub-assigned key" \
	"$(hub "SELECT * FROM machines ORDER BY 1")|$(plain "$B" "SELECT * FROM machines ORDER BY 1")" "1|b m|1|b m"
stop_serve
note "  a 0.1.0 syncqd syncs with the $cur hub, directly and through serve (protocol 1)"
# now the clients: this syncqd migrates each file and syncs
for f in "$A" "$B" "$A" "$B"; do nsync "$f"; done
compare "hub first"
note "  every row alike on the hub and both clients"

# --- 2. a client first --------------------------------------------------------
note "a client first"
setup up_clientfirst
before=$(plain "$A" "SELECT seq, table_name, op, pk, row_data FROM sync_queue ORDER BY seq")
# this syncqd on A: the file is migrated, the 0.1.0 hub is refused with a
# message to upgrade it, and A's queue waits
if "$SYNCQD" --sqlite "$A" --online "$HUB" --once >"$SYNCQ_TMP/refused.log" 2>&1; then
	fail "syncqd $cur synced with a 0.1.0 hub"
fi
grep -q "is at version 0.1.0, older than this syncqd ($cur): run ALTER EXTENSION syncq UPDATE there" "$SYNCQ_TMP/refused.log" ||
	{ cat "$SYNCQ_TMP/refused.log"; fail "syncqd $cur -> 0.1.0 hub: the message"; }
note "  syncqd $cur -> 0.1.0 hub: $(tail -n 1 "$SYNCQ_TMP/refused.log")"
expect_eq "A migrated on open" "$(plain "$A" "SELECT release FROM syncq_schema")" "$cur"
expect_eq "A's queue after the refusal" "$(plain "$A" "SELECT seq, table_name, op, pk, row_data FROM sync_queue ORDER BY seq")" "$before"
# this serve on the 0.1.0 hub refuses to start
if timeout 20 "$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 >"$SYNCQ_TMP/serve-refused.log" 2>&1; then
	fail "syncqd serve $cur started on a 0.1.0 hub"
fi
grep -q "run ALTER EXTENSION syncq UPDATE there" "$SYNCQ_TMP/serve-refused.log" ||
	{ cat "$SYNCQ_TMP/serve-refused.log"; fail "serve $cur on a 0.1.0 hub: the message"; }
note "  serve $cur on a 0.1.0 hub: $(tail -n 1 "$SYNCQ_TMP/serve-refused.log")"
# through a 0.1.0 serve: refused, saying to upgrade serve
SYNCQD=$OLD_SYNCQD start_serve
if "$SYNCQD" --sqlite "$A" --online "$ONLINE" --once >"$SYNCQ_TMP/refused-http.log" 2>&1; then
	fail "syncqd $cur synced through a 0.1.0 serve"
fi
grep -q "runs syncq 0.1.0 or older, older than this syncqd ($cur): upgrade syncqd serve there" "$SYNCQ_TMP/refused-http.log" ||
	{ cat "$SYNCQ_TMP/refused-http.log"; fail "syncqd $cur -> 0.1.0 serve: the message"; }
note "  syncqd $cur -> 0.1.0 serve: $(tail -n 1 "$SYNCQ_TMP/refused-http.log")"
# B, still 0.1.0, syncs with the 0.1.0 hub through the 0.1.0 serve meanwhile
osync "$B" "$ONLINE"
stop_serve
expect_eq "B at 0.1.0 meanwhile" "$(hub "SELECT name FROM items WHERE id = 2001")" "b 2001"
# A's app writes on at the new schema, with its stock driver
plain "$A" "INSERT INTO items VALUES (1003, 'a 1003', 3)"
EXTRA_A="1003|a 1003|3"
# then the hub, then everyone syncs with this syncqd
hub "ALTER EXTENSION syncq UPDATE" >/dev/null
expect_eq "ALTER EXTENSION syncq UPDATE" "$(extversion)" "$cur"
for f in "$A" "$B" "$A" "$B"; do nsync "$f"; done
compare "a client first"
note "  every row alike on the hub and both clients"
echo ok
