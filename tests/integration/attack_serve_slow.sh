#!/usr/bin/env bash
# syncqd-asan
# Connections that are never silent for long but never finish a request
# (slowloris; issue 18, docs/security.md "Connections, time, passwords"),
# against a real `syncqd serve` over HTTPS, each kind from its own loopback
# address while the real client (127.0.0.1) says hello and syncs in its
# normal time. Each sends one byte every 2 s, so the silence limit (10 s)
# never closes it:
#
#   handshake   8 TCP connections trickling a TLS ClientHello
#   headers     8 TLS connections trickling a request's headers
#   body        2 TLS connections of a signed-in user (site-a) that sent
#               whole headers and trickle a 1 MB body
#
# serve closes the handshakes after 10 s (a handshake not done counts as
# silence: AUTH_TIMEOUT_S), the headers 20 s (HEADER_TIMEOUT_S) after the
# connection began, the bodies 20 s (BODY_TIMEOUT_S) after their headers,
# as their average stays below 1024 bytes/s (BODY_MIN_RATE), and logs the
# last two, with the address. Without the time limits on headers and
# bodies those stay open for the 40 s watched.
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_serve_slow
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
note "a hello before the attack: $HELLO_MS ms"

note "--- trickling connections: 8 handshakes (127.0.0.5), 8 headers (127.0.0.6), 2 bodies (127.0.0.7)"
flood() { "$PY" "$SYNCQ_ROOT/tests/lib/flood.py" slow 127.0.0.1 "$PORT" "$@" --cafile "$PKI/ca.pem"; }
flood handshake 8 2 40 --from 127.0.0.5 >"$T/handshake" &
F1=$!
flood headers 8 2 40 --from 127.0.0.6 >"$T/headers" &
F2=$!
FLOOD_PASSWORD=$PW_A flood body 2 2 40 --from 127.0.0.7 --user site-a >"$T/body" &
F3=$!
for i in 1 2 3; do
	sleep 4
	hello_ms "trickling connections held ($i)"
	[ "$HELLO_MS" -lt 2000 ] || fail "a hello took $HELLO_MS ms while the trickling connections were held"
	note "a hello while they are held: $HELLO_MS ms"
done
plain "$A" "INSERT INTO t VALUES (1, 'during the attack')"
as_a sync "$A"
expect_eq "the real client's row on the hub, during the attack" "$(hub "SELECT note FROM t WHERE id = 1")" "during the attack"
wait "$F1" || fail "flood.py slow handshake failed"
wait "$F2" || fail "flood.py slow headers failed"
wait "$F3" || fail "flood.py slow body failed"
for k in handshake headers body; do
	note "$k: $(cat "$T/$k")"
	read -r opened closed first last < <("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["opened"], r["closed"], r["first"], r["last"])' "$T/$k")
	expect_eq "$k: connections closed by serve within 40 s" "$closed" "$opened"
	lo=19
	[ "$k" = handshake ] && lo=9
	awk -v f="$first" -v l="$last" -v lo="$lo" 'BEGIN { exit !(f >= lo && l <= lo + 7) }' ||
		fail "$k: serve closed the connections after $first to $last s, not about $((lo + 1))"
done
grep -q 'serve: closed [0-9]* connections\? of 127.0.0.6 that sent no whole request headers within 20 s' "$SERVE_LOG" ||
	fail "serve did not log the trickled headers"
grep -q 'serve: closed [0-9]* connections\? of 127.0.0.7 whose request body came slower than 1024 bytes/s (after 20 s)' "$SERVE_LOG" ||
	fail "serve did not log the trickled bodies"
note "serve's log: $(grep -c 'serve: closed' "$SERVE_LOG") lines of closed connections"
hello_ms "the attack"
[ "$HELLO_MS" -lt 2000 ] || fail "a hello took $HELLO_MS ms after the attack"
plain "$A" "INSERT INTO t VALUES (2, 'after the attack')"
as_a sync "$A"
expect_eq "the real client's row on the hub, after" "$(hub "SELECT note FROM t WHERE id = 2")" "after the attack"
serve_stop
echo "attack_serve_slow: ok"
