#!/usr/bin/env bash
# syncqd-asan
# What one address may take of a real `syncqd serve` over HTTPS (issue 18;
# docs/security.md, "limits"), each attack from another loopback address
# than the real client's (127.0.0.1), which syncs and says hello through
# them all in its normal time:
#
#   silent connections   300 TCP connections that send nothing, from one
#                        address: serve takes 256 (PER_ADDRESS), closes the
#                        rest at once and says so in its log; the ones it
#                        took it closes after 10 s of silence (AUTH_TIMEOUT_S)
#   password guessing    15 wrong passwords from one address: 401 for the
#                        first 10, then 429 with Retry-After (the window of
#                        60 s), logged; the real user, from its own address,
#                        is not held up
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_serve_limits
hub "CREATE TABLE t (id integer PRIMARY KEY, note text); SELECT sync_track('t');" >/dev/null
serve_tls
PORT=${ONLINE##*:}
A=$SYNCQ_TMP/a.db
rm -f "$A" "$A"-*
cli "$A" "CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT); SELECT sync_track('t');" >/dev/null
as_a sync "$A"
NODE_A=$(plain "$A" "SELECT node_id FROM syncq_state")
# a hello of the real client, timed: HELLO_MS
hello_ms() {
	local t0
	t0=$(now_ms)
	serve_alive "$1"
	HELLO_MS=$(($(now_ms) - t0))
}
hello_ms "the start"
note "a hello before the attacks: $HELLO_MS ms"

note "--- 300 silent connections from 127.0.0.2"
"$PY" "$SYNCQ_ROOT/tests/lib/flood.py" silent 127.0.0.1 "$PORT" 300 20 >"$T/silent" &
FLOOD=$!
sleep 3
hello_ms "silent connections held"
[ "$HELLO_MS" -lt 2000 ] || fail "a hello took $HELLO_MS ms while 256 silent connections were held"
note "a hello while they are held: $HELLO_MS ms"
as_a sync "$A"
wait "$FLOOD" || fail "flood.py silent failed"
note "silent: $(cat "$T/silent")"
expect_eq "taken, refused at once, still open after 20 s" \
	"$("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["taken"], r["refused"], r["still_open"])' "$T/silent")" \
	"256 44 0"
waited=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["waited"])' "$T/silent")
awk -v w="$waited" 'BEGIN { exit !(w >= 7 && w <= 15) }' || fail "the silent connections were closed after $waited s, not about 10"
grep -q 'serve: 127.0.0.2 holds 256 connections, the limit for one address' "$SERVE_LOG" ||
	fail "serve did not log the refused connections"

note "--- 15 wrong passwords from 127.0.0.3"
"$PY" "$SYNCQ_ROOT/tests/lib/flood.py" guess 127.0.0.1 "$PORT" 15 site-a --from 127.0.0.3 --cafile "$PKI/ca.pem" >"$T/guess"
note "guess: $(cat "$T/guess")"
expect_eq "401s and 429s" \
	"$("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["answers"].get("401"), r["answers"].get("429"), 50 <= r["retry_after"] <= 60)' "$T/guess")" \
	"10 5 True"
grep -q 'serve: 127.0.0.3 failed 10 password attempts in 60 s: its attempts get 429' "$SERVE_LOG" ||
	fail "serve did not log the guesser"
note "--- 16 wrong passwords from two addresses of one slot, in turn (127.0.0.4 and 127.0.0.141 hash alike)"
for i in 1 2 3 4 5 6 7 8; do
	for from in 127.0.0.4 127.0.0.141; do
		"$PY" "$SYNCQ_ROOT/tests/lib/flood.py" guess 127.0.0.1 "$PORT" 1 site-a --from "$from" --cafile "$PKI/ca.pem"
	done
done >"$T/turns"
expect_eq "401s, then 429s: taking turns resets nothing" \
	"$("$PY" -c 'import json, sys; rs = [json.loads(l)["answers"] for l in open(sys.argv[1])]; print(sum(r.get("401", 0) for r in rs), sum(r.get("429", 0) for r in rs))' "$T/turns")" \
	"10 6"
hello_ms "the guesser"
[ "$HELLO_MS" -lt 2000 ] || fail "a hello took $HELLO_MS ms after the guesser"
note "a hello from the real client's address: $HELLO_MS ms"
plain "$A" "INSERT INTO t VALUES (1, 'after the attacks')"
as_a sync "$A"
expect_eq "the real client's row on the hub" "$(hub "SELECT note FROM t WHERE id = 1")" "after the attacks"
serve_stop
echo "attack_serve_limits: ok"
