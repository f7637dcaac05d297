#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The control API: GET /api/sync/status (role, node ids, queue depth per
# table, last sync, lag, errors, conflicts, time zone), POST
# /api/sync/trigger (syncs now; a second within 5 s gets 429 with
# Retry-After), and bad requests answered with a 4xx JSON error while the
# daemon carries on.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_control
hub "CREATE TABLE now_t (id integer PRIMARY KEY, v text); SELECT sync_track('now_t');
	CREATE TABLE lazy (id integer PRIMARY KEY, v text); SELECT sync_track('lazy', 'batched');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE now_t (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('now_t');
	CREATE TABLE lazy (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lazy', 'batched');" >/dev/null
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start_daemon "$C" --control "127.0.0.1:$PORT"
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
status() { curl -s "$URL/api/sync/status"; }
# req METHOD PATH [CURL ARGS]: "code|body"
req() {
	local m=$1 p=$2
	shift 2
	curl -s -X "$m" -o "$SYNCQ_TMP/body" -w '%{http_code}' "$@" "$URL$p"
	printf '|%s' "$(tr -d '\n' <"$SYNCQ_TMP/body")"
}

note "status"
cli "$C" "INSERT INTO lazy VALUES (1, 'a'), (2, 'b'); INSERT INTO lazy VALUES (3, 'c');" >/dev/null
sleep 0.5
s=$(status)
expect_eq "role" "$(echo "$s" | json 'd["role"]')" client
expect_eq "node id" "$(echo "$s" | json 'd["node_id"]')" "$(plain "$C" "SELECT node_id FROM syncq_state")"
expect_eq "hub node id" "$(echo "$s" | json 'd["hub_node_id"]')" "$(hub "SELECT sync_node_id()")"
expect_eq "queue depth" "$(echo "$s" | json 'd["queue_depth"], d["queue"]["total"], d["queue"]["tables"]["lazy"]')" \
	"{'lazy': 3} 3 {'immediate': 0, 'batched': 3, 'total': 3}"
echo "$s" | json 'd["lag_seconds"] > 0.3 and d["last_successful_sync"].endswith("Z")' | grep -q True ||
	fail "lag or last sync: $s"
expect_eq "state" "$(echo "$s" | json 'd["state"], d["hub"]["connected"]')" "idle True"
expect_eq "errors, conflicts" "$(echo "$s" | json 'd["errors"]["count"], d["conflicts"]["count"]')" "0 0"
tz=$(echo "$s" | json 'd["timezone"]["zone"], d["timezone"]["utc_offset"], d["timezone"]["eastern_date"], d["timezone"]["now"]')
note "  timezone: $tz"
[[ $tz =~ ^America/New_York\ -0[45]:00\ [0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9T:.-]+-0[45]:00$ ]] || fail "timezone: $tz"
expect_eq "eastern_date" "$(echo "$s" | json 'd["timezone"]["eastern_date"]')" "$(cli "$C" "SELECT eastern_date()")"
expect_eq "HEAD" "$(curl -s -I -o /dev/null -w '%{http_code}' "$URL/api/sync/status")" 200

note "trigger: syncs now, then 429 with Retry-After for 5 s"
r=$(req POST /api/sync/trigger)
expect_eq "trigger" "${r%%|*}" 202
wait_until 2 "the batched rows shipped by the trigger" '[ "$(hub "SELECT count(*) FROM lazy")" = 3 ]'
wait_until 1 "an empty queue in the status" '[ "$(status | json "d[\"queue\"][\"total\"]")" = 0 ]'
code=$(curl -s -D "$SYNCQ_TMP/headers" -o "$SYNCQ_TMP/body" -w '%{http_code}' -X POST "$URL/api/sync/trigger")
expect_eq "second trigger" "$code" 429
after=$(sed -n 's/^Retry-After: *\([0-9]*\).*/\1/ip' "$SYNCQ_TMP/headers")
[ -n "$after" ] && [ "$after" -ge 1 ] && [ "$after" -le 5 ] || fail "Retry-After: $(cat "$SYNCQ_TMP/headers")"
json 'd["error"]' <"$SYNCQ_TMP/body" | grep -q "try again in" || fail "429 body: $(cat "$SYNCQ_TMP/body")"
cli "$C" "INSERT INTO lazy VALUES (4, 'd')" >/dev/null
sleep "$after"
r=$(req POST /api/sync/trigger -H 'Content-Type: application/json' -d '{"reason": "test"}')
expect_eq "trigger after Retry-After, with a JSON object" "${r%%|*}" 202
wait_until 2 "row 4 shipped by the trigger" '[ "$(hub "SELECT count(*) FROM lazy")" = 4 ]'

note "bad requests: 4xx with a JSON error"
check_error() {		# check_error WANT_CODE METHOD PATH [CURL ARGS]
	local want=$1 r
	shift
	r=$(req "$@")
	expect_eq "$* answers" "${r%%|*}" "$want"
	echo "${r#*|}" | json 'd["error"]' >/dev/null || fail "$*: not a JSON error: ${r#*|}"
}
check_error 405 GET /api/sync/trigger
check_error 405 POST /api/sync/status
check_error 405 DELETE /api/sync/status
check_error 405 PUT /api/sync/trigger
check_error 404 GET /index.html
check_error 404 GET /api/sync/status/extra
check_error 404 GET "/api/sync/%00%ff"
check_error 400 POST /api/sync/trigger -d 'not json'
check_error 400 POST /api/sync/trigger -d '[1, 2]'
check_error 400 POST /api/sync/trigger -d '{"unterminated": '
check_error 413 POST /api/sync/trigger --data-binary "@$SYNCQ_ROOT/README.md" -H 'Content-Type: text/plain'
curl -s -I "$URL/api/sync/trigger" | grep -qi '^Allow: POST' || fail "no Allow header on 405"

note "garbage on the socket, a flood of requests: the daemon carries on"
for junk in 'GARBAGE\r\n\r\n' 'GET\r\n\r\n' 'GET /api/sync/status HTTP/9.9\r\n\r\n' \
	'POST /api/sync/trigger HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc' \
	'GET /api/sync/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'; do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf "$junk" >&3 && timeout 2 cat <&3 >/dev/null) 2>/dev/null || true
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || true	# connect and hang up
long=$(printf 'x%.0s' $(seq 1 20000))
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/$long")
[[ $code == 4* ]] || fail "a 20,000-byte path got $code"
pids=()
for i in $(seq 1 50); do
	curl -s -o /dev/null "$URL/api/sync/status" &
	pids+=($!)
done
wait "${pids[@]}" || true
daemon_alive
expect_eq "status after all that" "$(status | json 'd["role"]')" client

note "a second syncqd on the same port (another file) cannot start"
D=$SYNCQ_TMP/d.db
cli "$D" "CREATE TABLE now_t (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('now_t');
	CREATE TABLE lazy (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lazy', 'batched');" >/dev/null
rc=0
"$SYNCQD" --sqlite "$D" --online "$ONLINE" --control "127.0.0.1:$PORT" 2>"$SYNCQ_TMP/second.err" || rc=$?
expect_eq "exit status" "$rc" 1
grep -q "cannot listen on 127.0.0.1:$PORT" "$SYNCQ_TMP/second.err" || fail "$(cat "$SYNCQ_TMP/second.err")"

note "bad --control values"
for bad in "nohost" "127.0.0.1:99999" "127.0.0.1:" "no.such.host.invalid:8765"; do
	rc=0
	"$SYNCQD" --sqlite "$D" --online "$ONLINE" --control "$bad" 2>"$SYNCQ_TMP/bad.err" || rc=$?
	expect_eq "--control $bad" "$rc" 1
	note "  $(head -n 1 "$SYNCQ_TMP/bad.err" | sed 's/^.*syncqd [a-z]*: //')"
done

stop_daemon
echo ok
