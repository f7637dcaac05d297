#!/usr/bin/env bash
# syncqd-asan
# The client's control API against other pages of the browser (issue 18;
# docs/security.md, "the control API"): a DNS-rebinding page (its own name
# in Host) and a page of an origin the app did not give (--allow-origin)
# get 403 and nothing of the status; the JSON answers name an allowed
# origin in Access-Control-Allow-Origin, never "*"; the status carries row
# values (the key of a set-aside change, the value a hub error quotes) only
# for an allowed origin or the person who asked for the page
# (Sec-Fetch-Site: none), "…" in their place for anyone else.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub attack_control
hub "CREATE TABLE people (id integer PRIMARY KEY, born date); SELECT sync_track('people');" >/dev/null
C=$SYNCQ_TMP/c.db
rm -f "$C" "$C"-*
cli "$C" "CREATE TABLE people (id INTEGER PRIMARY KEY, born TEXT); SELECT sync_track('people');" >/dev/null
sync "$C"
cli "$C" "INSERT INTO people VALUES (4242, 'SSN 078-05-1120')" >/dev/null
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start_daemon "$C" --control "127.0.0.1:$PORT" --allow-origin http://app.example --allow-origin https://ops.example:8443
# get NAME [CURL-ARG]...: GET /api/sync/status; CODE, the body in $SYNCQ_TMP/body, headers in .../headers
get() {
	shift
	CODE=$(curl -s -D "$SYNCQ_TMP/headers" -o "$SYNCQ_TMP/body" -w '%{http_code}' "$@" "$URL/api/sync/status")
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
wait_until 10 "the set-aside change in the status" \
	'[ "$(curl -s "$URL/api/sync/status" | json "d[\"errors\"][\"up\"][\"count\"]")" = 1 ]'
NODE=$(plain "$C" "SELECT node_id FROM syncq_state")

note "a page of another name (DNS rebinding) and a page of another origin: 403, nothing said"
for args in "-H Host:evil.example:$PORT" "-H Host:evil.example" "-H Host:127.0.0.1:1" \
	"-H Origin:http://evil.example" "-H Origin:null" "-H Origin:http://app.example.evil" \
	"-H Origin:https://app.example"; do
	# shellcheck disable=SC2086
	get x $args
	expect_eq "$args" "$CODE" 403
	! grep -q "$NODE\|4242\|SSN\|$C" "$SYNCQ_TMP/body" || fail "$args: the 403 tells: $(cat "$SYNCQ_TMP/body")"
	! grep -qi '^Access-Control-Allow-Origin' "$SYNCQ_TMP/headers" || fail "$args: CORS for it"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Host: evil.example:$PORT" "$URL/api/sync/trigger")
expect_eq "a trigger from a rebinding page" "$code" 403
code=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://evil.example' \
	-H 'Access-Control-Request-Method: POST' "$URL/api/sync/trigger")
expect_eq "the preflight of another origin" "$code" 403
grep -q 'control API: a request refused: the Host header does not name this control API' "$DAEMON_LOG" ||
	fail "the refusal is not logged"

note "no Origin (a program, or a page's navigation): the status without row values"
get x
expect_eq "plain GET" "$CODE" 200
! grep -qi '^Access-Control-Allow-Origin' "$SYNCQ_TMP/headers" || fail "CORS without an Origin"
expect_eq "the set-aside change's key" "$(json 'd["errors"]["up"]["changes"][0]["pk"]' <"$SYNCQ_TMP/body")" None
! grep -q 'SSN\|4242' "$SYNCQ_TMP/body" || fail "row values in the status: $(grep -o '.\{60\}SSN.\{20\}' "$SYNCQ_TMP/body")"
json 'd["errors"]["up"]["changes"][0]["error"]' <"$SYNCQ_TMP/body" | grep -q 'type date: "…"' ||
	fail "the error without its value: $(json 'd["errors"]["up"]["changes"][0]["error"]' <"$SYNCQ_TMP/body")"
for h in "Host: localhost:$PORT" "Host: 127.0.0.1"; do
	get x -H "$h"
	expect_eq "$h" "$CODE" 200
done

note "an allowed origin, this API's own page, the person: row values, CORS for the origin alone"
for o in http://app.example https://ops.example:8443 "http://127.0.0.1:$PORT"; do
	get x -H "Origin: $o"
	expect_eq "Origin $o" "$CODE" 200
	grep -qi "^Access-Control-Allow-Origin: $o" "$SYNCQ_TMP/headers" || fail "Origin $o: no CORS for it: $(cat "$SYNCQ_TMP/headers")"
	expect_eq "Origin $o: the key" "$(json 'd["errors"]["up"]["changes"][0]["pk"]' <"$SYNCQ_TMP/body")" '{"id":4242}'
	grep -q 'SSN 078-05-1120' "$SYNCQ_TMP/body" || fail "Origin $o: the hub's error as it is: $(cat "$SYNCQ_TMP/body")"
done
get x -H 'Sec-Fetch-Site: none'
expect_eq "the person's own request" "$(json 'd["errors"]["up"]["changes"][0]["pk"]' <"$SYNCQ_TMP/body")" '{"id":4242}'
code=$(curl -s -D "$SYNCQ_TMP/headers" -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://app.example' \
	-H 'Access-Control-Request-Method: POST' "$URL/api/sync/trigger")
expect_eq "the preflight of an allowed origin" "$code" 204
grep -qi '^Access-Control-Allow-Origin: http://app.example' "$SYNCQ_TMP/headers" || fail "preflight: $(cat "$SYNCQ_TMP/headers")"

note "--allow-origin takes an origin, nothing else"
for bad in 'app.example' 'http://app.example/page' 'ftp://app.example' 'http://user@app.example' 'http://'; do
	"$SYNCQD" --sqlite "$C" --online "$ONLINE" --allow-origin "$bad" --once 2>"$SYNCQ_TMP/bad.err" &&
		fail "--allow-origin $bad was taken"
	grep -q "invalid --allow-origin" "$SYNCQ_TMP/bad.err" || fail "--allow-origin $bad: $(cat "$SYNCQ_TMP/bad.err")"
done
daemon_alive
stop_daemon
echo "attack_control: ok"
