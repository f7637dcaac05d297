#!/usr/bin/env bash
# syncqd-asan
# Request bodies of one signed-in user at once (docs/security.md, "Memory
# per request"): a user's bodies being received or worked on count against
# that user, at most BODIES_PER_USER (2) times --max-body, so that one site
# cannot make serve hold memory without bound, nor hold it against another
# site. Against a real `syncqd serve` over HTTPS with --max-body 1 MiB:
#   - site-a sends two bodies of 1,000,000 bytes slowly (2 KB/s, above the
#     minimum rate, so serve keeps them);
#   - meanwhile site-a's small hello still gets 200 (2,000,070 bytes in
#     all), a 200 KB body of site-a gets 503 with Retry-After, logged;
#   - site-b's requests, small and of 200 KB, are not held back;
#   - once site-a's slow bodies end, its 200 KB body is taken again.
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_serve_bodies
serve_tls --max-body 1048576
NODE_A=7a7a7a7a-0000-4000-8000-00000000e0a1
NODE_B=7a7a7a7a-0000-4000-8000-00000000e0b1

head -c 1000000 /dev/zero | tr '\0' ' ' >"$T/big"
{ printf '{"v":2,"op":"hello","node_id":"%s","pad":"' "$NODE_A"; head -c 200000 /dev/zero | tr '\0' x; printf '"}'; } >"$T/mid-a"
{ printf '{"v":2,"op":"hello","node_id":"%s","pad":"' "$NODE_B"; head -c 200000 /dev/zero | tr '\0' x; printf '"}'; } >"$T/mid-b"
printf '{"v":2,"op":"hello","node_id":"%s"}' "$NODE_A" >"$T/hello-a"
printf '{"v":2,"op":"hello","node_id":"%s"}' "$NODE_B" >"$T/hello-b"

post a "$T/hello-a"
[ "$CODE" = 200 ] || fail "site-a's first hello: $CODE $(head -c 300 "$T/reply")"

slow=()
for i in 1 2; do
	curl -sS --max-time 120 --cacert "$PKI/ca.pem" -u "site-a:$PW_A" --limit-rate 2k \
		-H 'Content-Type: application/json' --data-binary @"$T/big" -o /dev/null "$URL" 2>/dev/null &
	slow+=($!)
done
sleep 3

post a "$T/hello-a"
[ "$CODE" = 200 ] || fail "site-a's small hello beside its two slow bodies: $CODE $(head -c 300 "$T/reply")"
# (a client asks before it sends a large body, as curl does past 1 MB:
# the 503 then comes before the body is sent)
post a "$T/mid-a" -H 'Expect: 100-continue'
[ "$CODE" = 503 ] || fail "site-a's 200 KB body beside its two slow bodies of 1 MB: $CODE, not 503: $(head -c 300 "$T/reply")"
grep -q 'request bodies (2 times --max-body)' "$T/reply" || fail "the 503 does not say why: $(head -c 300 "$T/reply")"
grep -q 'site-a.*2 times --max-body of request bodies' "$SERVE_LOG" || fail "the 503 is not logged"
post b "$T/hello-b"
[ "$CODE" = 200 ] || fail "site-b's hello while site-a is held back: $CODE $(head -c 300 "$T/reply")"
post b "$T/mid-b"
[ "$CODE" = 200 ] || fail "site-b's 200 KB body while site-a is held back: $CODE, not 200: $(head -c 300 "$T/reply")"

kill "${slow[@]}" 2>/dev/null
wait "${slow[@]}" 2>/dev/null || true
sleep 1
post a "$T/mid-a"
[ "$CODE" = 200 ] || fail "site-a's 200 KB body once its slow bodies ended: $CODE, not 200: $(head -c 300 "$T/reply")"
serve_alive "the slow bodies"
serve_stop
echo "attack_serve_bodies: ok"
