#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Row injection through a json/jsonb value (issue 18; docs/security.md):
# SQLite holds JSON as text, and the hub puts that text into the JSON array
# json_populate_recordset reads. A client's text that is not exactly one
# JSON value could end its row there: {"x":1}},{"id":666,...} would add a
# row 666, {"z":3},"id":500,... would overwrite row 500, with no version
# check. Each such change is set aside in sync_errors, naming the column;
# no other row changes; good JSON text beside them arrives.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub attack_json_values
hub "CREATE TABLE docs (id integer PRIMARY KEY, doc jsonb, note json);
	SELECT sync_track('docs');
	INSERT INTO docs VALUES (500, '{\"v\": \"hub\"}', NULL);" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT, note TEXT); SELECT sync_track('docs');" >/dev/null
sync "$C"
expect_eq "row 500 on the client" "$(plain "$C" "SELECT doc FROM docs WHERE id = 500")" '{"v": "hub"}'

note "client: rows whose json text breaks out of its value, and good ones"
cli "$C" "INSERT INTO docs VALUES (1, '{\"x\":1}},{\"id\":666,\"doc\":{\"y\":2}', NULL);
	INSERT INTO docs VALUES (2, '{\"z\":3},\"id\":500,\"doc\":{\"owned\":true}', NULL);
	INSERT INTO docs VALUES (4, '[1,2]', '{\"a\":1} {\"b\":2}');
	INSERT INTO docs VALUES (3, '{\"ok\":[1,2,{\"n\":null}]}', '\"text\"');" >/dev/null
sync "$C"
expect_eq "the hub's rows" "$(hub "SELECT string_agg(id || ' ' || coalesce(doc::text, '-') || ' ' || coalesce(note::text, '-'), '; ' ORDER BY id) FROM docs")" \
	'3 {"ok": [1, 2, {"n": null}]} "text"; 500 {"v": "hub"} -'
expect_eq "set aside on the hub" "$(hub "SELECT string_agg(pk::text || ' ' || (error LIKE '%not one JSON value%')::text, '; ' ORDER BY pk::text) FROM sync_errors")" \
	'{"id":1} true; {"id":2} true; {"id":4} true'
hub "SELECT error FROM sync_errors WHERE pk::text = '{\"id\":1}'" | grep -q 'column "doc" (jsonb) of table "docs"' ||
	fail "the error does not name the column: $(hub "SELECT error FROM sync_errors")"
hub "SELECT error FROM sync_errors WHERE pk::text = '{\"id\":4}'" | grep -q 'column "note" (json)' ||
	fail "the error does not name the json column: $(hub "SELECT error FROM sync_errors")"
origin=$(plain "$C" "SELECT node_id FROM syncq_state")
expect_eq "versions of the client's for rows 500 or 666" \
	"$(hub "SELECT count(*) FROM sync_versions WHERE table_name = 'docs' AND ver_origin = '$origin' AND pk::text NOT IN ('{\"id\":3}')")" 0
