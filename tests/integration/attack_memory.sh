#!/usr/bin/env bash
# Memory per request (docs/security.md, "Memory per request"): one upload
# of 5,000 rows of ten 1 KB text values (~35 MiB, under --max-body) from a
# client user of a real `syncqd serve` over HTTPS. serve's peak memory
# (VmHWM in /proc/PID/status) may grow by less than 2 times the body (1.3
# measured; 4.7 before the rows were read page by page, 5.9 before the body
# was sized): the body is read into one buffer of its Content-Length, and
# the hub reads the rows of one page of it at a time. A second upload of
# the same size leaves the peak where the first left it (within one body).
# The rows arrive whole. Under ASan the figures are not serve's own, so the
# script runs on the plain build only. attack_memory_shapes.sh tries other
# shapes of body.
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_memory

cols=""
for i in $(seq 10); do cols="$cols, c$i text"; done
hub "CREATE TABLE wide (id integer PRIMARY KEY$cols); SELECT sync_track('wide');" >/dev/null
serve_tls --max-body 67108864
NODE_X=7a7a7a7a-0000-4000-8000-00000000e001
NODE_A=$NODE_X

# body FIRST: 5,000 rows of NODE_X from id FIRST, each of ten 1 KB values
body() {
	"$PY" -c '
import json, sys
first = int(sys.argv[1])
print(json.dumps([{"table": "wide", "op": "I", "pk": {"id": i},
                   "row": dict({"id": i}, **{"c%d" % k: ("%04d-%d " % (i, k)) * 100 for k in range(1, 11)})}
                  for i in range(first, first + 5000)]))' "$1" | forge "$NODE_X" >"$T/body"
}
hwm() { awk '/^VmHWM/ {print $2 * 1024}' "/proc/$SERVE_PID/status"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

printf '{"v":2,"op":"hello","node_id":"%s"}' "$NODE_X" >"$T/hello"
post a "$T/hello"
[ "$CODE" = 200 ] || fail "hello: $CODE $(head -c 300 "$T/reply")"
body 1
size=$(stat -c %s "$T/body")
h0=$(hwm)
post a "$T/body"
[ "$CODE" = 200 ] || fail "the upload got $CODE: $(head -c 300 "$T/reply")"
h1=$(hwm)
note "one upload of $(mib "$size"): serve's VmHWM $(mib "$h0") -> $(mib "$h1"): +$(awk -v a="$h0" -v b="$h1" -v s="$size" 'BEGIN {printf "%.2f", (b - a) / s}') x the body"
expect_eq "the rows on the hub" "$(hub "SELECT count(*), sum(length(c10)) FROM wide")" "5000|$((5000 * 800))"
[ $((h1 - h0)) -lt $((2 * size)) ] || fail "serve's peak grew by $(mib $((h1 - h0))) for a body of $(mib "$size") (less than 2x)"

body 5001
post a "$T/body"
[ "$CODE" = 200 ] || fail "the second upload got $CODE: $(head -c 300 "$T/reply")"
h2=$(hwm)
note "a second upload: VmHWM $(mib "$h2")"
[ $((h2 - h1)) -lt "$size" ] || fail "the second upload raised serve's peak by $(mib $((h2 - h1)))"
expect_eq "the rows on the hub" "$(hub "SELECT count(*) FROM wide")" 10000
serve_alive "the uploads"
serve_stop
echo "attack_memory: ok"
