#!/usr/bin/env bash
# syncqd-asan
# A client user forging uploads against a real `syncqd serve` over HTTPS
# (docs/security.md, "values and keys"): site-a, a user of serve's
# credentials file, sends changes by hand (curl) as a node of its own.
#
#   row injection   json/jsonb text that closes its value and its row
#                   ({"x":1}},{"id":666,...) to add a hidden row, or one that
#                   adds columns ({"z":3},"id":500,...) to overwrite another
#                   row: set aside (200, "parked"), nothing else changes
#   key bypass      a change dated 1970 that names another row in its pk
#                   than the row it carries: set aside; one that spells an
#                   integer key as a string, or a uuid key in capitals:
#                   versioned as the row it names, so it loses to the hub's
#                   newer change (a conflict) and changes nothing
#   honest edges    json that holds the text of a row in a string, a key in
#                   another spelling that is newer: applied, one row, one
#                   version, under the hub's spelling of the key
#
# The same forged changes written into a client file's queue by hand and
# shipped over libpq are set aside the same way. Throughout, the hub's
# tables, versions and queue are checked by checksum; a real client keeps
# syncing through serve; serve stops cleanly (under ASan: no report).
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_upload

hub "CREATE TABLE docs (id integer PRIMARY KEY, doc jsonb, meta json, note text);
	CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL);
	CREATE TABLE tags (u uuid PRIMARY KEY, label text);
	SELECT sync_track('docs'), sync_track('people'), sync_track('tags');
	INSERT INTO docs VALUES (500, '{\"owner\": \"hub\"}', '[1]', 'the hub''s row 500');
	INSERT INTO people VALUES (880001, 'written on the hub');
	INSERT INTO tags VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'hub label');" >/dev/null
serve_tls
note "serve over HTTPS at $ONLINE"

A=$SYNCQ_TMP/a.db
rm -f "$A" "$A"-*
cli "$A" "CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT, meta TEXT, note TEXT);
	CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
	CREATE TABLE tags (u TEXT PRIMARY KEY, label TEXT);
	SELECT sync_track('docs'), sync_track('people'), sync_track('tags');" >/dev/null
as_a sync "$A"
NODE_A=$(plain "$A" "SELECT node_id FROM syncq_state")
expect_eq "the real client has the hub's rows" "$(plain "$A" "SELECT count(*) FROM docs") $(plain "$A" "SELECT name FROM people")" \
	"1 written on the hub"

# The attacker: site-a's own credentials, a node id of its own.
NODE_X=7a7a7a7a-0000-4000-8000-000000000001
DATA=("SELECT 'docs ' || d::text FROM docs d" "SELECT 'people ' || p::text FROM people p"
	"SELECT 'tags ' || t::text FROM tags t")
REPL=("SELECT 'version ' || v::text FROM sync_versions v"
	"SELECT 'queue ' || q.table_name || q.op || q.pk::text || coalesce(q.row_data::text, '') FROM sync_queue q")
CONFL=("SELECT 'conflict ' || c.table_name || c.pk::text || c.loser_op FROM sync_conflicts c")

# upload NAME CHANGES-JSON: site-a uploads CHANGES as NODE_X; sets CODE and
# the reply's counters APPLIED CONFLICTS PARKED, REFUSED (its refusals).
upload() {
	forge "$NODE_X" <<<"$2" >"$T/body"
	post a "$T/body"
	[ "$CODE" = 200 ] || fail "$1: the upload got $CODE: $(head -c 400 "$T/reply")"
	read -r APPLIED CONFLICTS PARKED REFUSED < <("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["applied"], r["conflicts"], r["parked"], " | ".join(r["refused"]))' "$T/reply")
}
# refused NAME CHANGES-JSON TEXT: refused and set aside, the refusal saying
# TEXT; the hub's tables, versions, queue and conflicts unchanged.
refused() {
	local before n
	before=$(hub_sum "${DATA[@]}" "${REPL[@]}" "${CONFL[@]}")
	n=$(hub "SELECT count(*) FROM sync_errors WHERE node_id = '$NODE_X'")
	upload "$1" "$2"
	expect_eq "$1: applied, overruled, set aside" "$APPLIED $CONFLICTS $PARKED" "0 0 1"
	[[ $REFUSED == *"$3"* ]] || fail "$1: the refusal does not say \"$3\": $REFUSED"
	expect_eq "$1: the hub's tables, versions, queue and conflicts" "$(hub_sum "${DATA[@]}" "${REPL[@]}" "${CONFL[@]}")" "$before"
	expect_eq "$1: one more change set aside" "$(hub "SELECT count(*) FROM sync_errors WHERE node_id = '$NODE_X'")" $((n + 1))
	serve_alive "$1"
	note "$1: set aside: ${REFUSED:0:150}"
}
# overruled NAME CHANGES-JSON: loses to the hub's newer change of the row it
# names: one conflict, the hub's tables, versions and queue unchanged.
overruled() {
	local before n
	before=$(hub_sum "${DATA[@]}" "${REPL[@]}")
	n=$(hub "SELECT count(*) FROM sync_conflicts")
	upload "$1" "$2"
	expect_eq "$1: applied, overruled, set aside" "$APPLIED $CONFLICTS $PARKED" "0 1 0"
	expect_eq "$1: the hub's tables, versions and queue" "$(hub_sum "${DATA[@]}" "${REPL[@]}")" "$before"
	expect_eq "$1: one conflict more" "$(hub "SELECT count(*) FROM sync_conflicts")" $((n + 1))
	serve_alive "$1"
	note "$1: overruled by the hub's newer change"
}
OLD=1000000					# 1970-01-01 00:00:01: loses to anything honest

note "--- row injection through json and jsonb values"
refused "a jsonb value that closes its row and adds row 666" \
	'[{"table":"docs","op":"I","pk":{"id":1},"row":{"id":1,"doc":"{\"x\":1}},{\"id\":666,\"doc\":null,\"meta\":null,\"note\":\"hidden row\"","meta":null,"note":"a"}}]' \
	'not one JSON value'
refused "a jsonb value that adds the columns of row 500" \
	'[{"table":"docs","op":"I","pk":{"id":2},"row":{"id":2,"doc":"{\"z\":3},\"id\":500,\"note\":\"overwritten\"","meta":null,"note":"b"}}]' \
	'not one JSON value'
refused "a json value that closes the array" \
	'[{"table":"docs","op":"I","pk":{"id":3},"row":{"id":3,"doc":null,"meta":"1}]; SELECT 1; --","note":"c"}}]' \
	'not one JSON value'
refused "json text with two values" \
	'[{"table":"docs","op":"I","pk":{"id":4},"row":{"id":4,"doc":"{} {}","meta":null,"note":"d"}}]' \
	'not one JSON value'
refused "an injection in a key of json type" \
	'[{"table":"docs","op":"D","pk":{"id":"500},{\"id\":501"}}]' \
	'invalid input syntax'
expect_eq "no hidden rows" "$(hub "SELECT count(*) FROM docs WHERE id IN (1, 2, 3, 4, 666)")" 0
expect_eq "row 500 as the hub wrote it" "$(hub "SELECT doc::text || ' ' || note FROM docs WHERE id = 500")" \
	'{"owner": "hub"} the hub'"'"'s row 500'

note "--- the key: the row a change carries is the row it names, in the hub's spelling"
refused "a change of row 880001 that names row 990001, dated 1970" \
	"[{\"table\":\"people\",\"op\":\"U\",\"pk\":{\"id\":990001},\"row\":{\"id\":880001,\"name\":\"forged\"},\"ver_us\":$OLD}]" \
	'names the row {"id":990001} in its pk, but carries the row {"id":880001}'
refused "a change that names its row in pk and another in the row, both as strings" \
	"[{\"table\":\"people\",\"op\":\"U\",\"pk\":{\"id\":\"990001\"},\"row\":{\"id\":\"880001\",\"name\":\"forged\"},\"ver_us\":$OLD}]" \
	'names the row {"id":990001}'
refused "a row without its key" \
	"[{\"table\":\"people\",\"op\":\"U\",\"pk\":{\"id\":880001},\"row\":{\"name\":\"forged\"},\"ver_us\":$OLD}]" \
	'has no value for column "id"'
overruled "row 880001 dated 1970, its key spelt as a string" \
	"[{\"table\":\"people\",\"op\":\"U\",\"pk\":{\"id\":\"880001\"},\"row\":{\"id\":\"880001\",\"name\":\"forged\"},\"ver_us\":$OLD}]"
overruled "row 880001 dated 1970, its key spelt with white space" \
	"[{\"table\":\"people\",\"op\":\"U\",\"pk\":{\"id\":\" 880001\"},\"row\":{\"id\":\"880001 \",\"name\":\"forged\"},\"ver_us\":$OLD}]"
overruled "a delete of row 880001 dated 1970, its key a string" \
	"[{\"table\":\"people\",\"op\":\"D\",\"pk\":{\"id\":\"880001\"},\"ver_us\":$OLD}]"
overruled "a uuid key in capitals, dated 1970" \
	"[{\"table\":\"tags\",\"op\":\"U\",\"pk\":{\"u\":\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\"},\"row\":{\"u\":\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\",\"label\":\"forged\"},\"ver_us\":$OLD}]"
overruled "a uuid key without dashes, dated 1970" \
	"[{\"table\":\"tags\",\"op\":\"D\",\"pk\":{\"u\":\"a0eebc999c0b4ef8bb6d6bb9bd380a11\"},\"ver_us\":$OLD}]"
expect_eq "row 880001 as the hub wrote it" "$(hub "SELECT name FROM people")" "written on the hub"
expect_eq "the tag as the hub wrote it" "$(hub "SELECT u || ' ' || label FROM tags")" \
	"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 hub label"
expect_eq "the conflicts name the rows in the hub's spelling" \
	"$(hub "SELECT DISTINCT pk::text FROM sync_conflicts ORDER BY 1")" \
	'{"id":880001}
{"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}'

note "--- honest edges go through"
NOW=$(($(date +%s) * 1000000 + 60000000))
upload "json holding row text in a string" \
	'[{"table":"docs","op":"I","pk":{"id":7},"row":{"id":7,"doc":"{\"a\": \"},{\\\"id\\\":667}\", \"b\": [1, {\"c\": null}]}","meta":"\"just a string\"","note":"e"}}]'
expect_eq "json with row text: applied" "$APPLIED $CONFLICTS $PARKED" "1 0 0"
expect_eq "json with row text: stored as sent" "$(hub "SELECT doc::text || ' ' || meta::text FROM docs WHERE id = 7")" \
	'{"a": "},{\"id\":667}", "b": [1, {"c": null}]} "just a string"'
expect_eq "no row 667" "$(hub "SELECT count(*) FROM docs WHERE id = 667")" 0
upload "a newer change of row 880001, its key a string" \
	"[{\"table\":\"people\",\"op\":\"U\",\"pk\":{\"id\":\"880001\"},\"row\":{\"id\":880001,\"name\":\"renamed by site-a\"},\"ver_us\":$NOW}]"
expect_eq "newer, key a string: applied" "$APPLIED $CONFLICTS $PARKED" "1 0 0"
expect_eq "one row 880001, renamed" "$(hub "SELECT id || ' ' || name FROM people")" "880001 renamed by site-a"
expect_eq "one version of row 880001, in the hub's spelling" \
	"$(hub "SELECT pk || ' ' || ver_us FROM sync_versions WHERE table_name = 'people'")" "{\"id\":880001} $NOW"
expect_eq "relayed with the hub's spelling of the key" \
	"$(hub "SELECT pk::text FROM sync_queue WHERE table_name = 'people' AND origin = '$NODE_X' AND for_node IS NULL")" '{"id":880001}'

note "--- the same forged changes over libpq, from a client file's queue"
B=$SYNCQ_TMP/b.db
rm -f "$B" "$B"-*
cli "$B" "CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT, meta TEXT, note TEXT);
	CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
	CREATE TABLE tags (u TEXT PRIMARY KEY, label TEXT);
	SELECT sync_track('docs'), sync_track('people'), sync_track('tags');" >/dev/null
SYNCQD_ARGS= ONLINE=$HUB sync "$B"
NODE_B=$(plain "$B" "SELECT node_id FROM syncq_state")
BEFORE=$(hub_sum "${DATA[@]}" "SELECT 'version ' || v::text FROM sync_versions v")
plain "$B" "INSERT INTO sync_queue (table_name, op, pk, row_data, changed_at, origin, priority) VALUES
	('docs', 'I', '{\"id\":11}', '{\"id\":11,\"doc\":\"{\\\"x\\\":1}},{\\\"id\\\":666,\\\"note\\\":\\\"hidden\\\"\",\"meta\":null,\"note\":\"f\"}',
	 '1970-01-01T00:00:01.000Z', '$NODE_B', 'immediate'),
	('people', 'U', '{\"id\":990001}', '{\"id\":880001,\"name\":\"forged over libpq\"}',
	 '1970-01-01T00:00:01.000Z', '$NODE_B', 'immediate'),
	('people', 'U', '{\"id\":\"880001\"}', '{\"id\":\"880001\",\"name\":\"forged over libpq\"}',
	 '1970-01-01T00:00:01.000Z', '$NODE_B', 'immediate')"
SYNCQD_ARGS= ONLINE=$HUB sync "$B"
expect_eq "over libpq: the hub's tables and versions" "$(hub_sum "${DATA[@]}" "SELECT 'version ' || v::text FROM sync_versions v")" "$BEFORE"
expect_eq "over libpq: set aside, with why" \
	"$(hub "SELECT seq_rank, error LIKE '%not one JSON value%' OR error LIKE '%names the row {\"id\":990001}%' FROM
		(SELECT rank() OVER (ORDER BY seq) AS seq_rank, error FROM sync_errors WHERE node_id = '$NODE_B') e")" \
	"1|t
2|t"
expect_eq "over libpq: the string key overruled" \
	"$(hub "SELECT count(*) FROM sync_conflicts WHERE loser_origin = '$NODE_B' AND pk::text = '{\"id\":880001}'")" 1

note "--- the real client still syncs both ways through serve"
plain "$A" "INSERT INTO docs VALUES (20, '{\"from\": \"a\"}', NULL, 'from the client')"
hub "INSERT INTO docs VALUES (21, '[2]', NULL, 'from the hub')" >/dev/null
as_a sync "$A"
expect_eq "the client's row on the hub" "$(hub "SELECT doc::text FROM docs WHERE id = 20")" '{"from": "a"}'
expect_eq "the hub's rows on the client" "$(plain "$A" "SELECT id FROM docs WHERE id IN (7, 21) ORDER BY id") $(plain "$A" "SELECT name FROM people")" \
	"7
21 renamed by site-a"
expect_eq "the client has no hidden row" "$(plain "$A" "SELECT count(*) FROM docs WHERE id IN (1, 2, 666, 667)")" 0
expect_eq "the client's changes all shipped" "$(pending "$A")" 0
serve_stop
echo "attack_upload: ok"
