#!/usr/bin/env bash
# sqlite_schema_upgrade.sh — a SQLite file made by syncq 0.1.0 (built from
# the tag v0.1.0) is brought to this version's schema on first use, in one
# transaction, keeping its queued changes and node id: by a connection that
# loads syncq, and by syncqd when it opens the file. A file of a newer
# syncq is refused with a message naming both versions, and left as it was.
set -euo pipefail
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
cd "$SYNCQ_ROOT"

old=$SYNCQ_TMP/v0.1.0
rev=
for r in v0.1.0 5f55ede; do
	if git rev-parse -q --verify "$r^{commit}" >/dev/null 2>&1; then rev=$r; break; fi
done
[ -n "$rev" ] || fail "neither the tag v0.1.0 nor its commit 5f55ede is in this clone (a shallow clone?)"
mkdir -p "$old"
git archive "$rev" sqlite_ext | tar -x -C "$old"
${CC:-cc} -std=c11 -O1 -fPIC -shared -DSYNCQ_SQLITE_EXTENSION -o "$old/syncq.so" "$old"/sqlite_ext/*.c
note "syncq 0.1.0's SQLite extension built from $rev"

old_cli() { local f=$1; shift; { printf '.load %s\n' "$old/syncq.so"; printf '%s\n' "$@"; } | sqlite3 -bail -separator '|' "$f"; }
plain() { local f=$1; shift; printf '%s\n' "$@" | sqlite3 -bail -separator '|' "$f"; }

make_old() {	# make_old FILE: a 0.1.0 file with two tracked tables and queued changes
	old_cli "$1" "CREATE TABLE sites(id INTEGER PRIMARY KEY, name TEXT, photo BLOB);" \
		"CREATE TABLE notes(k TEXT PRIMARY KEY, body TEXT);" \
		"SELECT sync_track('sites');" "SELECT sync_track('notes', 'batched');" \
		"INSERT INTO sites VALUES (1, 'North', x'00ff'), (2, 'South', NULL);" \
		"UPDATE sites SET name = 'North 2' WHERE id = 1;" \
		"INSERT INTO notes VALUES ('a', 'one');" "DELETE FROM sites WHERE id = 2;" >/dev/null
}
# (the upgrade writes 0.1.0's millisecond changed_at in the microsecond form
# of versions: .123Z becomes .123000Z, the same instant)
queue_of() { plain "$1" "SELECT seq, table_name, op, pk, row_data,
	CASE WHEN length(changed_at) = 24 THEN substr(changed_at, 1, 23) || '000Z' ELSE changed_at END,
	origin, priority FROM sync_queue ORDER BY seq;"; }

# 1. a connection that loads this syncq migrates the file
f=$SYNCQ_TMP/a.db
make_old "$f"
[ "$(plain "$f" "SELECT count(*) FROM sqlite_schema WHERE name = 'syncq_schema'")" = 0 ] || fail "0.1.0 made syncq_schema?"
before=$(queue_of "$f")
node=$(plain "$f" "SELECT node_id FROM syncq_state")
got=$(cli "$f" "SELECT sync_node_id();")
[ "$got" = "$node" ] || fail "node id changed in the upgrade: $node -> $got"
[ "$(plain "$f" "SELECT version || ' ' || release FROM syncq_schema")" = "4 $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)" ] ||
	fail "syncq_schema after upgrade: $(plain "$f" "SELECT * FROM syncq_schema")"
[ "$(queue_of "$f")" = "$before" ] || fail "queued changes changed in the upgrade"
# the row sums (schema 4) start from the rows as they are, judging nothing
[ "$(plain "$f" "SELECT group_concat(table_name || '=' || summed || '/' || (SELECT count(*) FROM syncq_rowsums s
	WHERE s.table_name = t.table_name), ',') FROM (SELECT * FROM syncq_tracked ORDER BY 1) AS t")" = "notes=1/1,sites=1/1" ] ||
	fail "row sums after the upgrade: $(plain "$f" "SELECT table_name, summed FROM syncq_tracked")"
[ "$(plain "$f" "SELECT count(*) FROM sync_queue WHERE changed_at NOT GLOB '*.[0-9][0-9][0-9][0-9][0-9][0-9]Z'")" = 0 ] ||
	fail "changed_at not in the microsecond form after the upgrade: $(plain "$f" "SELECT changed_at FROM sync_queue")"
# the triggers are this version's: what sync_repair() would write finds nothing to do
[ "$(cli "$f" "SELECT sync_repair();")" = 0 ] || fail "triggers left stale by the upgrade"
# and a plain connection is captured by them
plain "$f" "INSERT INTO sites VALUES (3, 'East', NULL);"
[ "$(plain "$f" "SELECT count(*) FROM sync_queue WHERE table_name = 'sites' AND pk = '{\"id\":3}'")" = 1 ] ||
	fail "a write after the upgrade was not captured"
note "a 0.1.0 file upgraded by a connection that loaded syncq: queue and node id kept"

# 2. syncqd opening a 0.1.0 file migrates it before it syncs
new_hub upgrade_hub
hub "CREATE TABLE sites(id integer PRIMARY KEY, name text, photo bytea)" \
	>/dev/null
hub "CREATE TABLE notes(k text PRIMARY KEY, body text)" >/dev/null
hub "SELECT sync_track('sites'), sync_track('notes', 'batched')" >/dev/null
f=$SYNCQ_TMP/b.db
make_old "$f"
"$SYNCQD" --sqlite "$f" --online "$ONLINE" --once >"$SYNCQ_TMP/b.log" 2>&1 || { cat "$SYNCQ_TMP/b.log"; fail "syncqd --once on a 0.1.0 file"; }
[ "$(plain "$f" "SELECT version FROM syncq_schema")" = 4 ] || fail "syncqd did not migrate the file"
[ "$(hub "SELECT id || ':' || name || ':' || coalesce(encode(photo, 'hex'), '') FROM sites ORDER BY id")" = "1:North 2:00ff" ] ||
	fail "hub after syncing an upgraded file: $(hub "SELECT * FROM sites")"
[ "$(hub "SELECT k || ':' || body FROM notes")" = "a:one" ] || fail "hub notes: $(hub "SELECT * FROM notes")"
note "syncqd migrated a 0.1.0 file and shipped its queued changes"

# 3. a file of a newer syncq is refused, and left as it was
plain "$f" "UPDATE syncq_schema SET version = 99, release = '9.9.9';"
before=$(plain "$f" ".dump")
if out=$(cli "$f" "SELECT sync_track('sites');" 2>&1); then fail "a newer file was accepted: $out"; fi
[[ $out == *"syncq 9.9.9 (schema 99), newer than this syncq"* ]] || fail "message for a newer file: $out"
if "$SYNCQD" --sqlite "$f" --online "$ONLINE" --once >"$SYNCQ_TMP/c.log" 2>&1; then fail "syncqd accepted a newer file"; fi
grep -q 'newer than this syncq' "$SYNCQ_TMP/c.log" || { cat "$SYNCQ_TMP/c.log"; fail "syncqd's message for a newer file"; }
[ "$(plain "$f" ".dump")" = "$before" ] || fail "a refused newer file was changed"
note "a newer file refused: $out"
echo ok
