#!/usr/bin/env bash
# syncqd-asan
# Bad inputs against a real `syncqd serve` (replicator/http/serve*.c,
# link/proto.c):
# serve runs with a credentials file of two users (site-a, site-b) besides
# the admin of $AMRS_ADMIN_*, and --max-body 65536; a real client, syncing
# as site-a, has bound its node id. Then, with curl: a wrong password, an
# unknown user, no or a malformed Authorization → the same bare 401 with
# WWW-Authenticate; a body over --max-body with a Content-Length → 413, a
# chunked one → the connection cut off as it passes the limit, one of
# exactly --max-body bytes → 200; Content-Length with Transfer-Encoding →
# 400; truncated and
# malformed JSON → 400; payloads of the wrong shape (no node_id, an unknown
# op, wrong types, out of range, an upload whose origin is not its node_id,
# rows and keys as JSON text in strings, as protocol 1 sent them, ...) →
# 400; site-b acting for site-a's node id → 403; rows of a table the hub
# does not track → 404. Every error is a JSON {"error": ..., "status":
# ...}; after each one the hub's queue, clients, versions, errors,
# conflicts, node bindings, sequences and tables are exactly as before, and
# serve still answers a good request. At the end the real client still
# syncs both ways, serve's and syncqd's logs hold no password, hash or
# Authorization value, and serve stops cleanly (under ASan: without a leak
# or a sanitizer report).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
PY3=/usr/bin/python3
new_hub http_bad_input
T=$SYNCQ_TMP/bad
rm -rf "$T"
mkdir -p "$T"

hub "CREATE TABLE audit (id integer PRIMARY KEY, task text NOT NULL, done_on date);
	SELECT sync_track('audit');
	INSERT INTO audit VALUES (1, 'from the hub', '2025-07-23');" >/dev/null

note "serve with two users in a credentials file, the admin and --max-body 65536"
PW_A='pw-site-a: Tr0ub4dor&3'
PW_B='pw-site-b: correct horse'
PW_WRONG='not-the-password-9f2c'
CREDS=$T/credentials
printf '%s\n' "$PW_A" | "$SYNCQD" passwd site-a >"$CREDS"
printf '%s\n' "$PW_B" | "$SYNCQD" passwd site-b >>"$CREDS"
chmod 600 "$CREDS"
MAX_BODY=65536
start_serve --credentials "$CREDS" --max-body "$MAX_BODY"
URL=$ONLINE/api/sync/data

note "a real client, syncing as site-a, binds its node id"
A=$SYNCQ_TMP/a.db
rm -f "$A" "$A"-*
cli "$A" "CREATE TABLE audit (id INTEGER PRIMARY KEY, task TEXT NOT NULL, done_on TEXT);
	SELECT sync_track('audit');" >/dev/null
as_a() { AMRS_ADMIN_USERNAME=site-a AMRS_ADMIN_PASSWORD=$PW_A "$@"; }
as_a sync "$A"
expect_eq "the hub's row on the client" "$(plain "$A" "SELECT id, task FROM audit")" "1|from the hub"
NODE_A=$(plain "$A" "SELECT node_id FROM syncq_state")
expect_eq "node A bound to site-a" "$(hub "SELECT http_user FROM sync_http_nodes WHERE node_id = '$NODE_A'")" "site-a"
NODE_B=0b5e7a1c-2d3f-4a5b-8c9d-0e1f2a3b4c5d

# The hub's whole replication state and its tables, as one checksum.
state() {
	hub "SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
		SELECT 'queue ' || q::text FROM sync_queue q
		UNION ALL SELECT 'client ' || c::text FROM sync_clients c
		UNION ALL SELECT 'version ' || v::text FROM sync_versions v
		UNION ALL SELECT 'conflict ' || x::text FROM sync_conflicts x
		UNION ALL SELECT 'error ' || e::text FROM sync_errors e
		UNION ALL SELECT 'bound ' || n::text FROM sync_http_nodes n
		UNION ALL SELECT 'hub ' || h::text FROM sync_hub_state h
		UNION ALL SELECT 'tracked ' || t::text FROM sync_tables t
		UNION ALL SELECT 'node ' || s::text FROM sync_node s
		UNION ALL SELECT 'audit ' || a::text FROM audit a
		UNION ALL SELECT 'sequence ' || schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, '-')
			FROM pg_sequences
		UNION ALL SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' ' || c.relnatts
			FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace) s(x)"
}

# post WHO FILE [CURL-ARG]...: POST FILE to /api/sync/data as WHO (admin, a,
# b, none, or USER:PASSWORD); sets CODE; the reply in $T/reply, its headers
# in $T/headers.
post() {
	local who=$1 file=$2 auth=()
	shift 2
	case $who in
		admin) auth=(-u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD") ;;
		a) auth=(-u "site-a:$PW_A") ;;
		b) auth=(-u "site-b:$PW_B") ;;
		none) ;;
		*) auth=(-u "$who") ;;
	esac
	: >"$T/reply"
	: >"$T/headers"
	CODE=$(curl -sS --max-time 30 -o "$T/reply" -D "$T/headers" -w '%{http_code}' "${auth[@]}" \
		-H 'Content-Type: application/json' --data-binary @"$file" "$@" "$URL" 2>"$T/curl.err") ||
		CODE="curl failed: $(cat "$T/curl.err")"
}

# keep_reply CODE: keep the reply for check_replies, which checks them all
# at the end (one python3 start); print its error message.
NREPLY=0
mkdir -p "$T/replies"
keep_reply() {
	NREPLY=$((NREPLY + 1))
	cp "$T/reply" "$T/replies/$NREPLY-$1"
	ERROR=$(sed -n 's/^ *"error": *"\(.*\)",\{0,1\}$/\1/p' "$T/reply" | head -n 1 |
		sed 's/\\"/"/g; s/\\\\/\\/g')
}
# Every reply kept must be exactly a JSON object {"error": "...", "status": CODE}.
check_replies() {
	python3 - "$T/replies" <<'EOF' || fail "a reply is not a JSON error (see above)"
import json, os, sys
bad = 0
for name in sorted(os.listdir(sys.argv[1])):
    code = int(name.split("-")[1])
    path = os.path.join(sys.argv[1], name)
    try:
        o = json.load(open(path, encoding="utf-8"))
        assert isinstance(o, dict) and set(o) == {"error", "status"}, "keys"
        assert isinstance(o["error"], str) and o["error"], "error"
        assert o["status"] == code, "status"
    except Exception as e:
        print("reply %s: %r: %s" % (name, e, open(path, "rb").read()[:300]), file=sys.stderr)
        bad += 1
print("# %d error replies, each a JSON object {error, status}" % len(os.listdir(sys.argv[1])))
sys.exit(1 if bad else 0)
EOF
}

HELLO_A="{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_A\",\"retry_errors\":false}"
printf '%s' "$HELLO_A" >"$T/hello_a"
# alive: serve answers a good request (the admin's hello for node A) and
# has not died.
alive() {
	kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$SERVE_LOG" >&2; fail "serve died after $1"; }
	post admin "$T/hello_a"
	[ "$CODE" = 200 ] || fail "after $1, a good hello got $CODE: $(head -c 300 "$T/reply")"
	grep -q '"hub_node_id"' "$T/reply" || fail "after $1, the hello reply has no hub_node_id: $(head -c 300 "$T/reply")"
}

# bad_file NAME CODE WHO FILE [CURL-ARG]...: the body in FILE gets CODE with
# a JSON error, and the hub is still in STATE (changed nothing); serve still
# serves after it.
# ERROR holds the error message; the reply and its headers are kept in
# $T/bad_reply and $T/bad_headers.
bad_file() {
	local name=$1 code=$2 who=$3 file=$4
	shift 4
	post "$who" "$file" "$@"
	if [ "$CODE" != "$code" ]; then
		kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 25 "$SERVE_LOG" >&2; fail "$name: serve died (see above)"; }
		fail "$name: expected HTTP $code, got $CODE: $(head -c 300 "$T/reply")"
	fi
	keep_reply "$code"
	[ -n "$ERROR" ] || fail "$name: the reply has no error message: $(head -c 300 "$T/reply")"
	cp "$T/reply" "$T/bad_reply"
	cp "$T/headers" "$T/bad_headers"
	[ "$(state)" = "$STATE" ] || fail "$name: the hub changed"
	alive "$name"
	note "$name: $code ${ERROR:0:110}"
}
# bad NAME CODE WHO BODY [CURL-ARG]...: the same with the body given.
bad() {
	local name=$1 code=$2 who=$3 body=$4
	shift 4
	printf '%s' "$body" >"$T/body"
	bad_file "$name" "$code" "$who" "$T/body" "$@"
}
expect_error() {	# expect_error NAME TEXT: ERROR contains TEXT
	[[ $ERROR == *"$2"* ]] || fail "$1: the error does not say \"$2\": $ERROR"
}

alive "the first sync"
STATE=$(state)
UPLOAD_A="{\"v\":2,\"op\":\"upload\",\"node_id\":\"$NODE_A\",\"ack_seq\":0,\"ack_digest\":\"0\",\"changes\":[{\"seq\":900001,\"table\":\"audit\",\"op\":\"I\",\"pk\":{\"id\":77},\"row\":{\"id\":77,\"task\":\"forged\",\"done_on\":null},\"ver_us\":1753300000000000,\"origin\":\"$NODE_A\",\"immediate\":true}]}"

note "--- authentication: the same bare 401 whatever is wrong"
unauth() {		# unauth NAME WHO BODY [CURL-ARG]...
	local name=$1 who=$2 body=$3
	shift 3
	bad "$name" 401 "$who" "$body" "$@"
	expect_eq "$name: the 401's message" "$ERROR" "authentication required"
	grep -qi '^WWW-Authenticate: Basic realm="syncq"' "$T/bad_headers" ||
		fail "$name: no WWW-Authenticate: Basic header: $(cat "$T/bad_headers")"
	cp "$T/bad_reply" "$T/401-$name"
}
unauth "wrong password" "site-a:$PW_WRONG" "$HELLO_A"
unauth "the admin's name, site-a's password" "$AMRS_ADMIN_USERNAME:$PW_A" "$HELLO_A"
unauth "unknown user" "nobody:$PW_A" "$HELLO_A"
unauth "no Authorization" none "$HELLO_A"
unauth "empty password" "site-a:" "$HELLO_A"
unauth "another scheme" none "$HELLO_A" -H "Authorization: Bearer $PW_A"
unauth "bad base64" none "$HELLO_A" -H 'Authorization: Basic !!!not-base64!!!'
unauth "no colon" none "$HELLO_A" -H "Authorization: Basic $(printf 'site-a%s' "$PW_A" | base64 -w0)"
unauth "an overlong header" none "$HELLO_A" -H "Authorization: Basic $(head -c 3000 /dev/zero | tr '\0' 'A')"
unauth "an upload with a wrong password" "site-a:$PW_WRONG" "$UPLOAD_A"
for f in "$T"/401-*; do
	cmp -s "$f" "$T/401-wrong password" || fail "401 replies differ: $(basename "$f"): $(cat "$f")"
done
note "every 401 the same: $(tr -d '\n ' <"$T/401-wrong password")"

note "--- size: --max-body $MAX_BODY"
# padded N FILE: a good hello padded with spaces to exactly N bytes
padded() {
	printf '%s%*s}' "${HELLO_A%\}}" $(($1 - ${#HELLO_A})) '' >"$2"
}
padded "$MAX_BODY" "$T/exact"
padded $((MAX_BODY + 1)) "$T/over"
head -c $((4 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/huge"
expect_eq "the exact file's size" "$(stat -c %s "$T/exact")" "$MAX_BODY"
post admin "$T/exact"
[ "$CODE" = 200 ] || fail "a body of exactly --max-body bytes got $CODE: $(head -c 300 "$T/reply")"
note "a body of exactly $MAX_BODY bytes: 200"
bad_file "one byte over, with Content-Length" 413 admin "$T/over"
expect_error "413" "larger than $MAX_BODY bytes"
bad_file "4 MiB, with Content-Length" 413 admin "$T/huge"
# A chunked body says its size only as it comes: the connection ends as soon
# as it passes --max-body (libmicrohttpd cannot queue a reply in the middle
# of a body), with nothing answered and nothing read past it.
cut_off() {		# cut_off NAME WHO FILE
	post "$2" "$3" -H 'Transfer-Encoding: chunked'
	[[ $CODE == "curl failed"* ]] || [ "$CODE" = 000 ] || fail "$1: expected the connection cut off, got $CODE: $(head -c 300 "$T/reply")"
	[ "$(state)" = "$STATE" ] || fail "$1: the hub changed"
	alive "$1"
	note "$1: cut off"
}
cut_off "one byte over, chunked" admin "$T/over"
cut_off "4 MiB, chunked" admin "$T/huge"
cut_off "4 MiB from site-b, chunked" b "$T/huge"
grep -q "closed a connection: its request body passed --max-body" "$SERVE_LOG" || fail "serve did not log the bodies cut off"
# Content-Length and Transfer-Encoding both: a proxy in front could read
# another request than serve does (request smuggling)
"$PY3" - "${ONLINE#http://}" "$HELLO_A" >"$T/both" <<'PYEOF' || fail "Content-Length with Transfer-Encoding: $(cat "$T/both")"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
body = sys.argv[2].encode()
chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"POST /api/sync/data HTTP/1.1\r\nHost: " + sys.argv[1].encode() +
          b"\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
reply = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    reply += d
line = reply.split(b"\r\n", 1)[0].decode()
print(line)
sys.exit(0 if line.startswith("HTTP/1.1 400") and b"both Content-Length and Transfer-Encoding" in reply else 1)
PYEOF
[ "$(state)" = "$STATE" ] || fail "Content-Length with Transfer-Encoding: the hub changed"
alive "Content-Length with Transfer-Encoding"
note "Content-Length with Transfer-Encoding: $(cat "$T/both")"
bad_file "4 MiB with a wrong password" 401 "site-a:$PW_WRONG" "$T/huge"
post admin "$T/exact" -H 'Transfer-Encoding: chunked'
[ "$CODE" = 200 ] || fail "a chunked body of exactly --max-body bytes got $CODE"

note "--- malformed JSON: 400"
bad "empty body" 400 a ""
expect_error "empty body" "not JSON"
bad "truncated hello" 400 a "${HELLO_A:0:40}"
expect_error "truncated hello" "not JSON"
bad "truncated upload" 400 a "${UPLOAD_A:0:$((${#UPLOAD_A} / 2))}"
bad "upload without its last brace" 400 a "${UPLOAD_A%\}}"
bad "not JSON at all" 400 a "hello, serve"
bad "trailing garbage" 400 a "$HELLO_A xyz"
bad "two objects" 400 a "$HELLO_A$HELLO_A"
bad "single quotes" 400 a "{'v':2,'op':'hello','node_id':'$NODE_A'}"
bad "a trailing comma" 400 a "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_A\",}"
bad "invalid UTF-8" 400 a "$(printf '{"v":2,"op":"hello\xff\xfe","node_id":"%s"}' "$NODE_A")"
printf '{"v":2,"op":"hel\0lo","node_id":"%s"}' "$NODE_A" >"$T/nul"
bad_file "a NUL byte in the body" 400 a "$T/nul"
bad "an escaped NUL in a string" 400 a "{\"v\":2,\"op\":\"hello\\u0000\",\"node_id\":\"$NODE_A\"}"
bad "a lone surrogate" 400 a "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_A\",\"x\":\"\\ud800\"}"
bad "duplicate keys" 400 a "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_A\",\"node_id\":\"$NODE_B\"}"
bad "deep nesting" 400 a "$(printf '[%.0s' $(seq 5000))"
bad "an integer too big for JSON" 400 a "{\"v\":99999999999999999999999,\"op\":\"hello\",\"node_id\":\"$NODE_A\"}"

note "--- wrong shape: 400"
bad "an array, not an object" 400 a "[$HELLO_A]"
bad "a string, not an object" 400 a "\"hello\""
bad "null" 400 a "null"
bad "missing node_id" 400 a '{"v":2,"op":"hello"}'
expect_error "missing node_id" '"node_id" is missing'
bad "null node_id" 400 a '{"v":2,"op":"hello","node_id":null}'
bad "missing op" 400 a "{\"v\":2,\"node_id\":\"$NODE_A\"}"
bad "unknown op" 400 a "{\"v\":2,\"op\":\"drop_table\",\"node_id\":\"$NODE_A\"}"
expect_error "unknown op" "unknown op"
bad "op of another case" 400 a "{\"v\":2,\"op\":\"HELLO\",\"node_id\":\"$NODE_A\"}"
bad "op a number" 400 a "{\"v\":2,\"op\":1,\"node_id\":\"$NODE_A\"}"
bad "node_id a number" 400 a '{"v":2,"op":"hello","node_id":42}'
bad "node_id not a UUID" 400 a '{"v":2,"op":"hello","node_id":"site-a"}'
bad "node_id a UUID with SQL" 400 a "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_A'; DROP TABLE audit; --\"}"
bad "node_id an object" 400 a "{\"v\":2,\"op\":\"hello\",\"node_id\":{\"id\":\"$NODE_A\"}}"
bad "version 0" 400 a "{\"v\":0,\"op\":\"hello\",\"node_id\":\"$NODE_A\"}"
expect_error "version 0" "protocol version 0 is not spoken here (this serve speaks 2): this syncqd is older than syncqd serve"
bad "version 3" 400 a "{\"v\":3,\"op\":\"hello\",\"node_id\":\"$NODE_A\"}"
expect_error "version 3" "protocol version 3 is not spoken here (this serve speaks 2): syncqd serve is older than this syncqd: upgrade syncqd serve"
# protocol 1 (syncq 0.1.0's syncqd): pk and row are strings of JSON text
up1() {		# up1 PK ROW: an upload of node A in protocol 1
	printf '{"v":1,"op":"upload","node_id":"%s","ack_seq":0,"ack_digest":"0","changes":[{"seq":900001,"table":"audit","op":"I","pk":%s,"row":%s,"ver_us":1753300000000000,"origin":"%s","immediate":true}]}' \
		"$NODE_A" "$1" "$2" "$NODE_A"
}
bad "version 1: pk an object (as in 2)" 400 a "$(up1 '{"id":77}' '"{\"id\":77}"')"
expect_error "version 1: pk an object" '"pk" must be a string'
bad "version 1: pk the text of an array" 400 a "$(up1 '"[77]"' '"{\"id\":77}"')"
expect_error "version 1: pk an array" '"pk" must hold the text of a JSON object (protocol 1)'
bad "version 1: row text with more after the object" 400 a "$(up1 '"{\"id\":77}"' '"{\"id\":77} {}"')"
expect_error "version 1: row text with more" '"row"'
bad "version 1: row text not JSON" 400 a "$(up1 '"{\"id\":77}"' '"{\"id\":77"')"
expect_error "version 1: row text not JSON" '"row"'
bad "version a string" 400 a "{\"v\":\"1\",\"op\":\"hello\",\"node_id\":\"$NODE_A\"}"
bad "retry_errors a string" 400 a "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_A\",\"retry_errors\":\"yes\"}"
up() {		# up EXTRA CHANGES: an upload of node A
	printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":0,"ack_digest":"0"%s,"changes":[%s]}' "$NODE_A" "$1" "$2"
}
chg() {		# chg [KEY=JSON]...: one change of node A; KEY=DROP leaves KEY out
	local -A c=([seq]=900001 [table]='"audit"' [op]='"I"' [pk]='{"id":77}'
		[row]='{"id":77,"task":"forged","done_on":null}'
		[ver_us]=1753300000000000 [origin]="\"$NODE_A\"" [immediate]=true)
	local kv k sep=
	for kv; do
		k=${kv%%=*}
		if [ "${kv#*=}" = DROP ]; then unset "c[$k]"; else c[$k]=${kv#*=}; fi
	done
	printf '{'
	for k in seq table op pk row ver_us origin immediate; do
		[ -n "${c[$k]+set}" ] || continue
		printf '%s"%s":%s' "$sep" "$k" "${c[$k]}"
		sep=,
	done
	printf '}'
}
bad "upload: origin is not node_id" 400 a "$(up "" "$(chg origin="\"$NODE_B\"")")"
expect_error "origin" "a node uploads only its own changes"
bad "upload: origin of the second change" 400 a "$(up "" "$(chg)","$(chg seq=900002 origin="\"$NODE_B\"")")"
bad "upload: no origin" 400 a "$(up "" "$(chg origin=DROP)")"
bad "upload: no changes" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":0,"ack_digest":"0"}' "$NODE_A")"
bad "upload: empty changes" 400 a "$(up "" "")"
bad "upload: changes an object" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":0,"ack_digest":"0","changes":%s}' "$NODE_A" "$(chg)")"
bad "upload: a change not an object" 400 a "$(up "" '"I"')"
bad "upload: no ack_seq" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_digest":"0","changes":[%s]}' "$NODE_A" "$(chg)")"
bad "upload: ack_seq a string" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":"0","ack_digest":"0","changes":[%s]}' "$NODE_A" "$(chg)")"
bad "upload: negative ack_seq" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":-1,"ack_digest":"0","changes":[%s]}' "$NODE_A" "$(chg)")"
bad "upload: ack_digest not hex" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":0,"ack_digest":"xyz","changes":[%s]}' "$NODE_A" "$(chg)")"
bad "upload: ack_digest too long" 400 a "$(printf '{"v":2,"op":"upload","node_id":"%s","ack_seq":0,"ack_digest":"00000000000000000","changes":[%s]}' "$NODE_A" "$(chg)")"
bad "upload: seq a string" 400 a "$(up "" "$(chg seq='"900001"')")"
bad "upload: seq 0" 400 a "$(up "" "$(chg seq=0)")"
bad "upload: seq not after ack_seq" 400 a "$(up "" "$(chg seq=5)" | sed 's/"ack_seq":0/"ack_seq":5/')"
bad "upload: seqs not rising" 400 a "$(up "" "$(chg)","$(chg seq=900001)")"
bad "upload: op X" 400 a "$(up "" "$(chg op='"X"')")"
bad "upload: op a number" 400 a "$(up "" "$(chg op=1)")"
bad "upload: pk not JSON" 400 a "$(up "" "$(chg pk='{id:77}')")"
expect_error "pk not JSON" "not JSON"
bad "upload: pk as JSON text, not an object (protocol 1)" 400 a "$(up "" "$(chg pk='"{\"id\":77}"')")"
expect_error "pk as text" '"pk" must be a JSON object'
bad "upload: empty pk" 400 a "$(up "" "$(chg pk='{}')")"
bad "upload: an insert without a row" 400 a "$(up "" "$(chg row=null)")"
bad "upload: row not an object" 400 a "$(up "" "$(chg row='[1,2]')")"
bad "upload: row as JSON text (protocol 1)" 400 a "$(up "" "$(chg row='"{\"id\":77}"')")"
bad "upload: a row that is not JSON" 400 a "$(up "" "$(chg row='{"id":77,"task":"x","done_on":1e}')")"
bad "upload: empty table name" 400 a "$(up "" "$(chg table='""')")"
bad "upload: a 64-byte table name" 400 a "$(up "" "$(chg table="\"$(printf 'a%.0s' $(seq 64))\"")")"
bad "upload: ver_us a float" 400 a "$(up "" "$(chg ver_us=1.5)")"
bad "upload: ver_us a string" 400 a "$(up "" "$(chg ver_us='"2025-07-24"')")"
bad "upload: immediate a string" 400 a "$(up "" "$(chg immediate='"yes"')")"
bad "snapshot: position not a snapshot" 400 a "{\"v\":2,\"op\":\"snapshot\",\"node_id\":\"$NODE_A\",\"position\":\"1:2:3; SELECT 1\"}"
bad "snapshot: position a number" 400 a "{\"v\":2,\"op\":\"snapshot\",\"node_id\":\"$NODE_A\",\"position\":100}"
bad "changes: no target" 400 a "{\"v\":2,\"op\":\"changes\",\"node_id\":\"$NODE_A\",\"position\":\"1:1:\"}"
bad "changes: limit 0" 400 a "{\"v\":2,\"op\":\"changes\",\"node_id\":\"$NODE_A\",\"position\":\"1:1:\",\"target\":\"1:1:\",\"limit\":0}"
bad "changes: limit too big" 400 a "{\"v\":2,\"op\":\"changes\",\"node_id\":\"$NODE_A\",\"position\":\"1:1:\",\"target\":\"1:1:\",\"limit\":50001}"
bad "changes: negative after" 400 a "{\"v\":2,\"op\":\"changes\",\"node_id\":\"$NODE_A\",\"position\":\"1:1:\",\"target\":\"1:1:\",\"after\":-1}"
bad "rows: no table" 400 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\"}"
bad "rows: after not an object" 400 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"audit\",\"after\":[1]}"
bad "rows: after as JSON text (protocol 1)" 400 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"audit\",\"after\":\"{\\\"id\\\":1}\"}"
bad "rows: after names a column that is not the key" 400 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"audit\",\"after\":{\"task\":1}}"
bad "done: no position" 400 a "{\"v\":2,\"op\":\"done\",\"node_id\":\"$NODE_A\"}"
bad "errors: max too big" 400 a "{\"v\":2,\"op\":\"errors\",\"node_id\":\"$NODE_A\",\"max\":1001}"

note "--- a time no date can hold: 400"
# An upload that is right in every other way (the hub's acknowledgement of
# node A), whose ver_us is the smallest 64-bit integer: it must be refused
# like any other value out of range, not turned into a date (it once
# overflowed in format_instant_us(), which stopped serve under UBSan).
IFS='|' read -r ACK_SEQ ACK_DIGEST <<<"$(hub "SELECT up_seq, up_digest FROM sync_clients WHERE node_id = '$NODE_A'")"
bad "upload: ver_us -2^63" 400 a "$(up "" "$(chg ver_us=-9223372036854775808)" |
	sed "s/\"ack_seq\":0,\"ack_digest\":\"0\"/\"ack_seq\":$ACK_SEQ,\"ack_digest\":\"$ACK_DIGEST\"/")"

note "--- unknown table: 404"
bad "rows of an unknown table" 404 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"no_such_table\",\"limit\":10}"
expect_error "unknown table" "is not tracked on the hub"
bad "rows of a table that exists but is not tracked" 404 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"sync_http_nodes\",\"limit\":10}"
bad "rows of a quoted name" 404 a "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"audit\\\" --\",\"limit\":10}"

note "--- another user's node id: 403"
# site-b binds a node id of its own first, which works
printf '%s' "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_B\"}" >"$T/hello_b"
post b "$T/hello_b"
[ "$CODE" = 200 ] || fail "site-b's own hello got $CODE: $(head -c 300 "$T/reply")"
expect_eq "node B bound to site-b" "$(hub "SELECT http_user FROM sync_http_nodes WHERE node_id = '$NODE_B'")" "site-b"
STATE=$(state)
bad "site-b says hello as node A" 403 b "$HELLO_A"
expect_error "403" "node $NODE_A belongs to another user"
bad "site-b uploads as node A" 403 b "$UPLOAD_A"
bad "site-b reads node A's errors" 403 b "{\"v\":2,\"op\":\"errors\",\"node_id\":\"$NODE_A\",\"max\":20,\"conflicts\":true}"
bad "site-b moves node A's position" 403 b "{\"v\":2,\"op\":\"done\",\"node_id\":\"$NODE_A\",\"position\":\"1:1:\"}"
bad "site-b reads rows as node A" 403 b "{\"v\":2,\"op\":\"rows\",\"node_id\":\"$NODE_A\",\"table\":\"audit\"}"
bad "site-a says hello as node B" 403 a "{\"v\":2,\"op\":\"hello\",\"node_id\":\"$NODE_B\"}"
bad "site-b says hello as node A in capitals" 403 b "{\"v\":2,\"op\":\"hello\",\"node_id\":\"${NODE_A^^}\"}"

note "--- the rest of the API"
for m in GET PUT DELETE; do
	before=$(state)
	CODE=$(curl -sS --max-time 30 -o "$T/reply" -w '%{http_code}' -u "site-a:$PW_A" -X "$m" "$URL")
	expect_eq "$m /api/sync/data" "$CODE" 405
	keep_reply 405
	expect_eq "$m changed nothing" "$(state)" "$before"
done
CODE=$(curl -sS --max-time 30 -o "$T/reply" -w '%{http_code}' -u "site-a:$PW_A" --path-as-is "$ONLINE/api/sync/../../etc/passwd")
[ "$CODE" = 404 ] || [ "$CODE" = 400 ] || fail "a path outside the API got $CODE"
CODE=$(curl -sS --max-time 30 -o "$T/reply" -w '%{http_code}' -u "site-a:$PW_A" "$ONLINE/api/sync/status")
expect_eq "the hub's status for site-a" "$CODE" 403
keep_reply 403
CODE=$(curl -sS --max-time 30 -o "$T/reply" -w '%{http_code}' "$ONLINE/api/sync/status")
expect_eq "the hub's status without credentials" "$CODE" 401
keep_reply 401
CODE=$(curl -sS --max-time 30 -o "$T/reply" -w '%{http_code}' -u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" "$ONLINE/api/sync/status")
expect_eq "the hub's status for the admin" "$CODE" 200
note "GET /api/sync/wait with counters out of range"
# The long poll's counters come from the query string: a negative one must
# not index the ring of recent wake-ups out of its bounds (it once did,
# which stopped serve under UBSan). Either an answer or a 400 will do.
ID=$(curl -sS --max-time 30 -u "site-a:$PW_A" "$ONLINE/api/sync/wait?serve=-" |
	sed -n 's/.*"serve": *"\([0-9a-f]*\)".*/\1/p')
[ -n "$ID" ] || fail "GET /api/sync/wait gave no serve id"
for q in "changes=-5" "changes=-9223372036854775808" "changes=-1&requests=-9223372036854775808"; do
	: >"$T/reply"
	CODE=$(curl -sS --max-time 40 -o "$T/reply" -w '%{http_code}' -u "site-a:$PW_A" \
		"$ONLINE/api/sync/wait?serve=$ID&$q&node=$NODE_A" 2>"$T/curl.err") || CODE="no answer ($(cat "$T/curl.err"))"
	kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$SERVE_LOG" >&2; fail "serve died on GET /api/sync/wait?$q"; }
	[ "$CODE" = 200 ] || [ "$CODE" = 400 ] || fail "GET /api/sync/wait?$q got $CODE: $(head -c 300 "$T/reply")"
	alive "GET /api/sync/wait?$q"
done
alive "the rest of the API"

check_replies

note "the real client still syncs both ways"
plain "$A" "INSERT INTO audit VALUES (2, 'from the client', '2025-07-24')"
hub "INSERT INTO audit VALUES (3, 'from the hub again', NULL)" >/dev/null
as_a sync "$A"
expect_eq "the client's row on the hub" "$(hub "SELECT id, task FROM audit ORDER BY id")" \
	"1|from the hub
2|from the client
3|from the hub again"
expect_eq "the hub's row on the client" "$(plain "$A" "SELECT id, task FROM audit ORDER BY id")" \
	"1|from the hub
2|from the client
3|from the hub again"
expect_eq "nothing forged reached the hub" "$(hub "SELECT count(*) FROM audit WHERE id = 77")" 0
expect_eq "client pending after sync" "$(pending "$A")" 0
expect_eq "no set-aside changes" "$(hub "SELECT count(*) FROM sync_errors")" 0

note "serve stops cleanly, and no secret is in a log"
kill -TERM "$SERVE_PID"
rc=0
wait "$SERVE_PID" || rc=$?
SERVE_PID=
grep -A 30 'Sanitizer\|runtime error:' "$SERVE_LOG" >&2 && fail "serve: a sanitizer report (see above)"
[ "$rc" -eq 0 ] || { tail -n 20 "$SERVE_LOG" >&2; fail "serve exited $rc on SIGTERM"; }
grep -q "stopping on request" "$SERVE_LOG" || fail "serve did not log its stop"
secrets=("$PW_A" "$PW_B" "$PW_WRONG" "$AMRS_ADMIN_PASSWORD"
	"$(printf 'site-a:%s' "$PW_A" | base64 -w0)" "$(printf 'site-b:%s' "$PW_B" | base64 -w0)"
	"$(printf '%s:%s' "$AMRS_ADMIN_USERNAME" "$AMRS_ADMIN_PASSWORD" | base64 -w0)"
	"$(printf 'site-a:%s' "$PW_WRONG" | base64 -w0)" "Authorization" "Basic ")
while IFS=: read -r _ hash; do secrets+=("$hash" "${hash##*\$}"); done <"$CREDS"
for s in "${secrets[@]}"; do
	for log in "$SERVE_LOG" "$SYNCQ_TMP/syncqd.log"; do
		! grep -qiF -- "$s" "$log" || fail "a secret in $(basename "$log"): $(grep -iF -- "$s" "$log" | head -n 3)"
	done
done
note "serve's log: $(wc -l <"$SERVE_LOG") lines, none with a password, hash or Authorization"
echo "http_bad_input: ok"
