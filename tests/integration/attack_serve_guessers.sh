#!/usr/bin/env bash
# syncqd-asan
# Password guessing for one user name from many addresses (issue 18;
# docs/security.md "Connections, time, passwords"), against a real
# `syncqd serve` over HTTPS: 5 wrong passwords for site-a from each of 5
# addresses, under the limit of one address (10 a minute). serve counts the
# name's failures from all of them: the first 20 get 401, the rest 429 with
# Retry-After, logged once; site-a's right password from a new address
# gets 429 too, and its attempt is not checked; but the real site-a client,
# from the address it signed in from before, says hello and syncs in its
# normal time, and site-b is not held up. A name no credential has is
# counted the same way (its 429 does not tell which names exist).
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_serve_guessers
hub "CREATE TABLE t (id integer PRIMARY KEY, note text); SELECT sync_track('t');" >/dev/null
serve_tls
PORT=${ONLINE##*:}
A=$SYNCQ_TMP/a.db
rm -f "$A" "$A"-*
cli "$A" "CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT); SELECT sync_track('t');" >/dev/null
as_a sync "$A"
NODE_A=$(plain "$A" "SELECT node_id FROM syncq_state")
hello_ms() {
	local t0
	t0=$(now_ms)
	serve_alive "$1"
	HELLO_MS=$(($(now_ms) - t0))
}
hello_ms "the start"
note "a hello before the guessing: $HELLO_MS ms"

# guessers USER FIRST-ADDRESS: 5 wrong passwords from each of 5 addresses; "401s 429s"
guessers() {
	local base=${2%.*} last=${2##*.}
	for i in 0 1 2 3 4; do
		"$PY" "$SYNCQ_ROOT/tests/lib/flood.py" guess 127.0.0.1 "$PORT" 5 "$1" --from "$base.$((last + i))" --cafile "$PKI/ca.pem"
	done >"$T/guess-$1"
	"$PY" -c 'import json, sys; rs = [json.loads(l)["answers"] for l in open(sys.argv[1])]; print(sum(r.get("401", 0) for r in rs), sum(r.get("429", 0) for r in rs))' "$T/guess-$1"
}

note "--- 25 wrong passwords for site-a from 127.0.0.50-54"
expect_eq "site-a: 401s, then 429s" "$(guessers site-a 127.0.0.50)" "20 5"
grep -q 'serve: user "site-a" failed 20 password attempts in 60 s: attempts for it get 429' "$SERVE_LOG" ||
	fail "serve did not log the guessed user: $(grep -i 'password attempts' "$SERVE_LOG" | head -n 3)"
printf '{"v":2,"op":"hello","node_id":"%s"}' "$NODE_A" >"$T/hello-a"
post a "$T/hello-a" --interface 127.0.0.60
expect_eq "site-a's right password from a new address" "$CODE" 429
grep -q 'for this user name' "$T/reply" || fail "the 429 does not say why: $(cat "$T/reply")"
printf '{"v":2,"op":"hello","node_id":"7a7a7a7a-0000-4000-8000-0000000000b1"}' >"$T/hello-b"
post b "$T/hello-b" --interface 127.0.0.60
expect_eq "site-b from that address" "$CODE" 200
hello_ms "the guessing"
[ "$HELLO_MS" -lt 2000 ] || fail "the real site-a's hello took $HELLO_MS ms"
note "the real site-a's hello, from its own address: $HELLO_MS ms"
plain "$A" "INSERT INTO t VALUES (1, 'while site-a is guessed')"
as_a sync "$A"
expect_eq "the real client's row on the hub" "$(hub "SELECT note FROM t WHERE id = 1")" "while site-a is guessed"

note "--- 25 wrong passwords for a name no one has, from 127.0.0.70-74"
expect_eq "nobody: 401s, then 429s" "$(guessers nobody 127.0.0.70)" "20 5"
serve_stop
echo "attack_serve_guessers: ok"
