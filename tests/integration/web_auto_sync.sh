#!/usr/bin/env bash
# syncqd-asan
# web/auto_sync.js in real Chromium against a real syncqd, and the status
# page GET /.
#
# A page of another origin (python3 -m http.server on a second loopback
# port) loads auto_sync.js from syncqd's control port (built into syncqd)
# with data-syncqd: it asks for exactly one sync about 1 s after load,
# shows a small notice in the corner that goes away after about 3 s, asks
# for none when online/focus/visibilitychange come within the 5-second
# cooldown or while offline, one when the browser comes back online past
# it, and stays silent on a 429 (tests/browser/web_check.js, Debian's
# chromium driven by playwright-core). Then the status page: its fields
# (role, node id, last sync, lag, queue depth, errors, conflicts, time
# zone), HTML-escaped, a screenshot; a hub's status rendered by
# statuspage.c; and that page under ASan + UBSan for status documents with
# every field missing, null or of the wrong type.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
BROWSER=$SYNCQ_ROOT/tests/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "no $CHROMIUM: run make deps (deps/debian-packages.txt)"
[ -d "$BROWSER/node_modules/playwright-core" ] || fail "no tests/browser/node_modules: run make deps"
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

new_hub web_auto_sync
hub "CREATE TABLE now_t (id integer PRIMARY KEY, v text); SELECT sync_track('now_t');
	CREATE TABLE lazy (id integer PRIMARY KEY, v text); SELECT sync_track('lazy', 'batched');
	CREATE TABLE items (id integer PRIMARY KEY, qty integer CONSTRAINT \"qty<ok>\" CHECK (qty >= 0));
	SELECT sync_track('items');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE now_t (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('now_t');
	CREATE TABLE lazy (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lazy', 'batched');
	CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER); SELECT sync_track('items');
	INSERT INTO now_t VALUES (1, 'first');" >/dev/null
sync "$C"
# a conflict for the status page: the same row changed on both sides before
# they meet, the hub's change the later one
cli "$C" "UPDATE now_t SET v = 'client' WHERE id = 1" >/dev/null
sleep 0.05
hub "UPDATE now_t SET v = 'hub' WHERE id = 1"
PORT=$(free_port)
PPORT=$(free_port)
while [ "$PPORT" = "$PORT" ]; do PPORT=$(free_port); done
URL=http://127.0.0.1:$PORT
# the app's pages: the page server below, and the origin of the preflight check
start_daemon "$C" --control "127.0.0.1:$PORT" --allow-origin "http://127.0.0.1:$PPORT" --allow-origin http://app.example
status() { curl -s "$URL/api/sync/status"; }
wait_until 5 "the conflict in the status" '[ "$(status | json "d[\"conflicts\"][\"count\"]")" -ge 1 ]'
# an error for the status page: a row the hub's CHECK refuses
cli "$C" "INSERT INTO items VALUES (1, -1)" >/dev/null
wait_until 5 "the set-aside change in the status" '[ "$(status | json "d[\"errors\"][\"count\"]")" = 1 ]'

note "GET /auto_sync.js: web/auto_sync.js as built in; CORS on the API"
curl -s -D "$SYNCQ_TMP/js.headers" -o "$SYNCQ_TMP/auto_sync.js" "$URL/auto_sync.js"
cmp -s "$SYNCQ_TMP/auto_sync.js" "$SYNCQ_ROOT/web/auto_sync.js" || fail "GET /auto_sync.js is not web/auto_sync.js"
grep -qi '^Content-Type: text/javascript; charset=utf-8' "$SYNCQ_TMP/js.headers" || fail "$(cat "$SYNCQ_TMP/js.headers")"
code=$(curl -s -D "$SYNCQ_TMP/pre.headers" -o /dev/null -w '%{http_code}' -X OPTIONS \
	-H 'Origin: http://app.example' -H 'Access-Control-Request-Method: POST' \
	-H 'Access-Control-Request-Headers: content-type' "$URL/api/sync/trigger")
expect_eq "preflight" "$code" 204
for h in 'Access-Control-Allow-Origin: http://app.example' 'Access-Control-Allow-Methods: POST' 'Access-Control-Allow-Headers: Content-Type'; do
	grep -qi "^$h" "$SYNCQ_TMP/pre.headers" || fail "preflight without $h: $(cat "$SYNCQ_TMP/pre.headers")"
done
curl -s -D - -o /dev/null -H 'Origin: http://app.example' "$URL/api/sync/status" |
	grep -qi '^Access-Control-Allow-Origin: http://app.example' || fail "no Access-Control-Allow-Origin on the status"
code=$(curl -s -D "$SYNCQ_TMP/pre.headers" -o /dev/null -w '%{http_code}' -X OPTIONS \
	-H 'Origin: http://elsewhere.example' -H 'Access-Control-Request-Method: POST' "$URL/api/sync/trigger")
expect_eq "preflight of an origin not allowed" "$code" 403
! grep -qi '^Access-Control-Allow-Origin' "$SYNCQ_TMP/pre.headers" || fail "CORS for an origin not allowed"
curl -s -D - -o /dev/null "$URL/" | grep -qi '^Content-Type: text/html; charset=utf-8' || fail "GET /: not text/html"
expect_eq "HEAD /" "$(curl -s -I -o /dev/null -w '%{http_code}' "$URL/")" 200
expect_eq "POST /" "$(curl -s -X POST -o /dev/null -w '%{http_code}' "$URL/")" 405

note "the app's page on another origin"
SITE=$SYNCQ_TMP/site
mkdir -p "$SITE"
cat >"$SITE/index.html" <<EOF
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>An app page</title>
<script src="$URL/auto_sync.js" data-syncqd="$URL" async></script>
</head><body><h1>Audit completions</h1><p>The app's own page.</p></body></html>
EOF
python3 -m http.server --bind 127.0.0.1 --directory "$SITE" "$PPORT" >"$SYNCQ_TMP/http.log" 2>&1 &
HTTP_PID=$!
trap 'kill "$HTTP_PID" 2>/dev/null || true; daemon_cleanup' EXIT
wait_until 10 "the page server" 'curl -sf -o /dev/null "http://127.0.0.1:$PPORT/index.html"'

requested() { grep -c 'sync requested over the control API' "$DAEMON_LOG" || true; }
syncs_ok() { status | json 'd["syncs"]["ok"]'; }
req0=$(requested)
ok0=$(syncs_ok)
SYNCQD_URL=$URL PAGE_URL=http://127.0.0.1:$PPORT/index.html CHROMIUM=$CHROMIUM \
	node "$BROWSER/web_check.js" autosync | tee "$SYNCQ_TMP/autosync.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "auto_sync.js in Chromium"
accepted=$(sed -n 's/^# accepted: \([0-9]*\).*/\1/p' "$SYNCQ_TMP/autosync.out")
expect_eq "sync requests syncqd logged" "$(($(requested) - req0))" "$accepted"
wait_until 5 "the syncs done" '[ "$(($(syncs_ok) - ok0))" -ge "$accepted" ]'
daemon_alive

note "the status page"
cli "$C" "INSERT INTO lazy VALUES (1, 'a'), (2, 'b'), (3, 'c')" >/dev/null
wait_until 2 "the queue in the status" '[ "$(status | json "d[\"queue_depth\"].get(\"lazy\")")" = 3 ]'
s=$(status)
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
build_render() {	# build_render OUT [FLAGS]
	local out=$1
	shift
	cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O1 -g "$@" -I"$(pg_config --includedir)" \
		-I"$SYNCQ_ROOT/replicator" -I"$SYNCQ_ROOT/sqlite_ext" -I"$SYNCQ_ROOT/common" -o "$out" \
		"$SYNCQ_ROOT/tests/tools/statuspage_render.c" "$SYNCQ_ROOT/replicator/http/statuspage.c" \
		"$SYNCQ_ROOT"/replicator/base/*.c "$SYNCQ_ROOT/common/tz.c" \
		-ljansson -lsqlite3 || fail "cannot build $out"
}
build_render "$SYNCQ_TMP/render"
# shellcheck disable=SC2086
build_render "$SYNCQ_TMP/render_asan" $SAN
HUB_JSON='{"role": "hub", "version": "0.1.0", "node_id": "7d3c5a10-0f4e-4b7e-9a51-2c1e8f0b6d42",
 "database": "ops", "uptime_seconds": 93784.5, "queue_depth": {"audit_completions": 12, "audit_log": 340},
 "clients": [{"node_id": "0b6a2f4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b", "last_seen": "2026-11-24T21:31:08.250Z", "lag_seconds": 0.8},
  {"node_id": "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9", "last_seen": "2026-11-23 09:02:11+00", "lag_seconds": 131000},
  {"node_id": null, "last_seen": null}],
 "errors": {"count": 2, "changes": [{"seq": 1042, "node_id": "0b6a2f4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b", "table": "audit_log",
   "op": "I", "pk": "{\"id\": 7}", "error": "boom <b>bold</b> & \"quoted\"", "last_failed": "2026-11-24T21:30:00Z", "attempts": 4},
  {"seq": null, "table": "items"}]},
 "conflicts": {"count": 1, "recent": [{"table": "audit_completions", "pk": {"id": 3},
   "winner_origin": "7d3c5a10-0f4e-4b7e-9a51-2c1e8f0b6d42", "loser_origin": "0b6a2f4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
   "at": "2026-11-24T20:00:00Z"}]},
 "requests": {"served": 18211, "failed": 3},
 "timezone": {"zone": "America/New_York", "utc_offset": "-05:00", "utc_offset_seconds": -18000,
   "eastern_date": "2026-11-24", "now": "2026-11-24T16:31:09.000000-05:00"}}'
echo "$HUB_JSON" | tr -d '\n' | "$SYNCQ_TMP/render" | sed '/<!-- page end -->/d' >"$SITE/hub.html"
SYNCQD_URL=$URL OUT=$SYNCQ_TMP CHROMIUM=$CHROMIUM \
	NODE_ID=$(echo "$s" | json 'd["node_id"]') EASTERN_DATE=$(echo "$s" | json 'd["timezone"]["eastern_date"]') \
	HUB_PAGE_URL=http://127.0.0.1:$PPORT/hub.html \
	node "$BROWSER/web_check.js" statuspage || fail "the status page in Chromium"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(not (d[:8] == b"\x89PNG\r\n\x1a\n" and len(d) > 10000))' \
	"$SYNCQ_TMP/status-client.png" || fail "no screenshot of the status page"

note "the page of every status with a field missing, null or of another type (ASan + UBSan)"
CLIENT_JSON=$s HUB_JSON=$HUB_JSON python3 -c '
import json, os
docs = [json.loads(os.environ["CLIENT_JSON"]), json.loads(os.environ["HUB_JSON"])]
odd = [None, 0, -1, 1.5, 1e300, True, "", "x<y>&", [], {}, [None], {"a": None}]
def paths(v, p=()):
    yield p
    if isinstance(v, dict):
        for k in v: yield from paths(v[k], p + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v): yield from paths(x, p + (i,))
def variant(d, p, new):
    d = json.loads(json.dumps(d))
    if not p: return new
    o = d
    for k in p[:-1]: o = o[k]
    if new is KeyError: del o[p[-1]]
    else: o[p[-1]] = new
    return d
out = [json.dumps(x) for x in odd] + ["not json", "{\"role\": \"hub\", \"trunc"]
for d in docs:
    for p in paths(d):
        if p:
            out.append(json.dumps(variant(d, p, KeyError)))
        for x in odd:
            out.append(json.dumps(variant(d, p, x)))
print("\n".join(out))
' >"$SYNCQ_TMP/variants.ndjson"
"$SYNCQ_TMP/render_asan" <"$SYNCQ_TMP/variants.ndjson" >"$SYNCQ_TMP/variants.html" 2>"$SYNCQ_TMP/variants.err" ||
	{ head -n 40 "$SYNCQ_TMP/variants.err"; fail "the status page under ASan + UBSan"; }
[ ! -s "$SYNCQ_TMP/variants.err" ] || { head -n 40 "$SYNCQ_TMP/variants.err"; fail "the renderer said something"; }
expect_eq "pages" "$(grep -c '^</body></html>$' "$SYNCQ_TMP/variants.html")" "$(wc -l <"$SYNCQ_TMP/variants.ndjson")"
note "  $(wc -l <"$SYNCQ_TMP/variants.ndjson") status documents rendered"

stop_daemon
echo ok
