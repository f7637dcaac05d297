#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Poison changes: a change the other side refuses (a CHECK constraint, a
# column it does not have) is set aside in sync_errors (the hub's for
# uploads, the client's for downloads), shows in the status and the log,
# and the changes after it still arrive. Fixing the cause (dropping the
# constraint, adding the column, changing the row again) lets it through.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_poison
hub "CREATE TABLE items (id integer PRIMARY KEY, qty integer CONSTRAINT qty_ok CHECK (qty >= 0));
	CREATE TABLE notes (id integer PRIMARY KEY, body text);
	CREATE TABLE tags (id integer PRIMARY KEY, name text);
	CREATE TABLE wide (id integer PRIMARY KEY, v text);
	SELECT sync_track('items'); SELECT sync_track('notes'); SELECT sync_track('tags'); SELECT sync_track('wide');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER);
	CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, color TEXT);
	CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT CHECK (length(name) <= 5));
	CREATE TABLE wide (id INTEGER PRIMARY KEY, v TEXT);
	SELECT sync_track('items'); SELECT sync_track('notes'); SELECT sync_track('tags'); SELECT sync_track('wide');" >/dev/null
sync "$C"
hub "ALTER TABLE wide ADD COLUMN extra text"	# the hub's schema moves on
PORT=$(free_port)
start_daemon "$C" --control "127.0.0.1:$PORT"
origin=$(plain "$C" "SELECT node_id FROM syncq_state")
status() { curl -s "http://127.0.0.1:$PORT/api/sync/status"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
hub_ids() { hub "SELECT string_agg(id::text, ',' ORDER BY id) FROM $1"; }

note "up: a row the hub's CHECK refuses, then good rows behind it"
cli "$C" "INSERT INTO items VALUES (1, -1)" >/dev/null
cli "$C" "INSERT INTO items VALUES (2, 5)" >/dev/null
cli "$C" "INSERT INTO items VALUES (3, 7)" >/dev/null
wait_until 2 "the good rows on the hub" '[ "$(hub_ids items)" = "2,3" ]'
expect_eq "set aside on the hub" "$(hub "SELECT node_id, seq > 0, table_name, op, pk::text, sqlstate, error LIKE '%qty_ok%' FROM sync_errors")" \
	"$origin|t|items|I|{\"id\":1}|23514|t"

note "up: a column the hub does not have"
cli "$C" "INSERT INTO notes VALUES (1, 'hello', 'red')" >/dev/null
cli "$C" "INSERT INTO items VALUES (4, 9)" >/dev/null
wait_until 2 "the row after it" '[ "$(hub "SELECT count(*) FROM items WHERE id = 4")" = 1 ]'
hub "SELECT error FROM sync_errors WHERE table_name = 'notes'" |
	grep -q 'column "color" of table "notes" does not exist on the hub' ||
	fail "notes change not set aside: $(hub "SELECT * FROM sync_errors")"

note "down: a row the client's CHECK refuses, then a good row"
hub "INSERT INTO tags VALUES (1, 'toolong')"
hub "INSERT INTO tags VALUES (2, 'ok')"
wait_until 2 "the good row on the client" '[ "$(plain "$C" "SELECT group_concat(id) FROM tags")" = "2" ]'
wait_until 1 "set aside on the client" '[ "$(plain "$C" "SELECT count(*) FROM sync_errors WHERE table_name = '"'tags'"'")" = 1 ]'
plain "$C" "SELECT error FROM sync_errors WHERE table_name = 'tags'" | grep -q "CHECK constraint failed" ||
	fail "tags: $(plain "$C" "SELECT * FROM sync_errors")"

note "down: a column the client does not have"
hub "INSERT INTO wide VALUES (1, 'w', 'more')"
hub "INSERT INTO tags VALUES (3, 'fine')"
wait_until 2 "the row after it" '[ "$(plain "$C" "SELECT count(*) FROM tags WHERE id = 3")" = 1 ]'
plain "$C" "SELECT error FROM sync_errors WHERE table_name = 'wide'" | grep -q 'column "extra" of table "wide" does not exist here' ||
	fail "wide: $(plain "$C" "SELECT * FROM sync_errors")"

note "the status and the log tell"
wait_until 2 "four errors in the status" '[ "$(status | json "d[\"errors\"][\"count\"]")" = 4 ]'
s=$(status)
expect_eq "errors up" "$(echo "$s" | json 'd["errors"]["up"]["count"], sorted(e["table"] for e in d["errors"]["up"]["changes"])')" "2 ['items', 'notes']"
expect_eq "errors down" "$(echo "$s" | json 'd["errors"]["down"]["count"], sorted(e["table"] for e in d["errors"]["down"]["changes"])')" "2 ['tags', 'wide']"
grep -q "set aside in the hub's sync_errors: new row for relation \"items\" violates check constraint \"qty_ok\"" "$DAEMON_LOG" ||
	fail "the log does not name the refused upload"
grep -q "set aside in sync_errors: .*CHECK constraint failed" "$DAEMON_LOG" || fail "the log does not name the refused download"

note "fixing the causes lets them through"
hub "ALTER TABLE items DROP CONSTRAINT qty_ok"
hub "ALTER TABLE notes ADD COLUMN color text"
plain "$C" "ALTER TABLE wide ADD COLUMN extra TEXT"
hub "UPDATE tags SET name = 'short' WHERE id = 1"	# a later change of the refused row
wait_until 2 "the hub's later change of tag 1" '[ "$(plain "$C" "SELECT name FROM tags WHERE id = 1")" = short ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/api/sync/trigger")
expect_eq "trigger" "$code" 202
wait_until 3 "item 1 on the hub" '[ "$(hub "SELECT qty FROM items WHERE id = 1")" = -1 ]'
wait_until 3 "note 1 on the hub" '[ "$(hub "SELECT color FROM notes WHERE id = 1")" = red ]'
wait_until 3 "wide 1 on the client" '[ "$(plain "$C" "SELECT v, extra FROM wide WHERE id = 1")" = "w|more" ]'
wait_until 3 "the hub's sync_errors empty" '[ "$(hub "SELECT count(*) FROM sync_errors")" = 0 ]'
wait_until 3 "the client's sync_errors empty" '[ "$(plain "$C" "SELECT count(*) FROM sync_errors")" = 0 ]'
wait_until 3 "no errors in the status" '[ "$(status | json "d[\"errors\"][\"count\"]")" = 0 ]'
expect_eq "tag 1 kept its later name" "$(plain "$C" "SELECT name FROM tags WHERE id = 1")" short
expect_eq "no conflicts for superseded changes" "$(plain "$C" "SELECT count(*) FROM sync_conflicts")" 0

note "everything agrees"
expect_eq "items" "$(hub "SELECT string_agg(id || ':' || qty, ',' ORDER BY id) FROM items")" \
	"$(plain "$C" "SELECT group_concat(id || ':' || qty, ',') FROM (SELECT * FROM items ORDER BY id)")"
expect_eq "tags" "$(hub "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM tags")" \
	"$(plain "$C" "SELECT group_concat(id || ':' || name, ',') FROM (SELECT * FROM tags ORDER BY id)")"
daemon_alive
stop_daemon
echo ok
