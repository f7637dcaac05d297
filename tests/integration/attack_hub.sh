#!/usr/bin/env bash
# syncqd-asan
# What one client user of a real `syncqd serve` (HTTPS) could do to the hub
# and to the other clients (docs/security.md, "the hub"):
#
#   node ids        the hub's own node id is no client's, not even the
#                   admin's (403); a libpq client's node id is bound to it at
#                   its first sync, and a node the hub knew before bindings
#                   were kept is no one's to claim: site-a gets 403 for
#                   both, and cannot read their set-aside changes
#   set aside       a node with 10,000 refused changes: a hello that retries
#                   them tries 200 (the oldest tried first), each batch a
#                   hub transaction of a fraction of a second; another at once tries
#                   none (once per 2 s per node); an upload that would set
#                   aside more than --max-set-aside gets 507 and changes
#                   nothing. While site-a asks for retries in a loop,
#                   site-b's immediate changes reach the hub in their normal
#                   time.
#
# (The trigger, the admin's alone, and user names of 255 bytes:
# attack_serve_users.)
. "$SYNCQ_ROOT/tests/lib/securitytest.sh"
new_hub attack_hub

hub "CREATE TABLE t (id integer PRIMARY KEY, note text NOT NULL CHECK (note <> 'refused'));
	SELECT sync_track('t');" >/dev/null
serve_tls --max-set-aside 10010
HUB_NODE=$(hub "SELECT sync_node_id()")

A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
C=$SYNCQ_TMP/c.db
for f in "$A" "$B" "$C"; do
	rm -f "$f" "$f"-*
	cli "$f" "CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
done
as_a sync "$A"
NODE_A=$(plain "$A" "SELECT node_id FROM syncq_state")

# hello WHO NODE [RETRY]: a hello as WHO for NODE; CODE, $T/reply
hello() {
	printf '{"v":2,"op":"hello","node_id":"%s","retry_errors":%s}' "$2" "${3:-false}" >"$T/body"
	post "$1" "$T/body"
}

note "--- node ids"
hello a "$HUB_NODE"
expect_eq "site-a as the hub's node" "$CODE" 403
grep -q "is the hub's own" "$T/reply" || fail "the 403 does not say why: $(cat "$T/reply")"
hello admin "$HUB_NODE"
expect_eq "the admin as the hub's node" "$CODE" 403
expect_eq "the hub's node id bound to no one" "$(hub "SELECT count(*) FROM sync_http_nodes WHERE node_id = '$HUB_NODE'")" 0
SYNCQD_ARGS= ONLINE=$HUB sync "$C"
NODE_C=$(plain "$C" "SELECT node_id FROM syncq_state")
expect_eq "a libpq client bound at its first sync" \
	"$(hub "SELECT http_user FROM sync_http_nodes WHERE node_id = '$NODE_C'")" "libpq:postgres"
hello a "$NODE_C"
expect_eq "site-a as the libpq client's node" "$CODE" 403
printf '{"v":2,"op":"errors","node_id":"%s","max":100}' "$NODE_C" >"$T/body"
post a "$T/body"
expect_eq "site-a reads the libpq client's set-aside changes" "$CODE" 403
# a node the hub knew before bindings were kept (0.1.0): no binding, a sync_clients row
OLD_NODE=0ddba11a-0000-4000-8000-000000000001
hub "INSERT INTO sync_clients (node_id) VALUES ('$OLD_NODE')" >/dev/null
hello a "$OLD_NODE"
expect_eq "site-a claims a node the hub knew before" "$CODE" 403
expect_eq "that node still bound to no one" "$(hub "SELECT count(*) FROM sync_http_nodes WHERE node_id = '$OLD_NODE'")" 0
hello admin "$OLD_NODE"
expect_eq "the admin acts for it" "$CODE" 200

note "--- 10,000 changes set aside for one node of site-a"
NODE_X=7a7a7a7a-0000-4000-8000-000000000003
hello a "$NODE_X"
expect_eq "site-a's second node" "$CODE" 200
hub "INSERT INTO sync_errors (node_id, seq, table_name, op, pk, row_data, changed_at, origin, priority, error, sqlstate)
	SELECT '$NODE_X', g, 't', 'I', json_build_object('id', g), json_build_object('id', g, 'note', 'refused'),
	       now(), '$NODE_X', 'immediate', 'new row for relation \"t\" violates check constraint', '23514'
	  FROM generate_series(1, 10000) g;
	INSERT INTO sync_clients (node_id, up_seq) VALUES ('$NODE_X', 10000)
	ON CONFLICT (node_id) DO UPDATE SET up_seq = 10000" >/dev/null
start=$(now_ms)
hello a "$NODE_X" true
took=$(($(now_ms) - start))
expect_eq "a hello that retries" "$CODE" 200
expect_eq "200 tried, all refused again" "$(hub "SELECT count(*) FROM sync_errors WHERE node_id = '$NODE_X' AND attempts = 2")" 200
[ "$took" -lt 3000 ] || fail "a hello retrying 200 of 10,000 set-aside changes took $took ms"
note "a hello with 10,000 set aside: 200 retried in $took ms"
hello a "$NODE_X" true
expect_eq "another hello at once" "$CODE" 200
expect_eq "tried none more" "$(hub "SELECT count(*) FROM sync_errors WHERE node_id = '$NODE_X' AND attempts > 1")" 200

note "--- more set aside than --max-set-aside: 507"
STATE=("SELECT 't ' || t::text FROM t" "SELECT 'e ' || e.seq || e.attempts FROM sync_errors e"
	"SELECT 'c ' || c.node_id || c.up_seq || c.up_digest FROM sync_clients c" "SELECT 'q ' || q.seq FROM sync_queue q")
BEFORE=$(hub_sum "${STATE[@]}")
"$PY" -c 'import json; print(json.dumps([{"table": "t", "op": "I", "pk": {"id": i}, "row": {"id": i, "note": "refused"}} for i in range(20001, 20021)]))' |
	forge "$NODE_X" >"$T/body"
post a "$T/body"
expect_eq "20 more refused changes" "$CODE" 507
grep -q "at most 10010 are kept" "$T/reply" || fail "the 507 does not say why: $(cat "$T/reply")"
expect_eq "the hub after the 507" "$(hub_sum "${STATE[@]}")" "$BEFORE"
grep -q "has 10000 changes set aside" "$SERVE_LOG" || fail "serve did not log the 507"
"$PY" -c 'import json; print(json.dumps([{"table": "t", "op": "I", "pk": {"id": i}, "row": {"id": i, "note": "refused"}} for i in range(20001, 20011)]))' |
	forge "$NODE_X" >"$T/body"
post a "$T/body"
expect_eq "10 more: up to the limit" "$CODE" 200

note "--- site-b's immediate changes while site-a retries in a loop"
as_b start_daemon "$B" --control off --cacert "$PKI/ca.pem"
"$PY" "$SYNCQ_ROOT/tests/lib/latency.py" "$B" "$HUB" t 1000 10 "$T/before" | sed 's/^/# before: /'
(
	# every hello asks to retry; as many as serve answers, for 15 s
	end=$(($(date +%s) + 15))
	while [ "$(date +%s)" -lt "$end" ]; do
		printf '{"v":2,"op":"hello","node_id":"%s","retry_errors":true}' "$NODE_X" |
			curl -sS --cacert "$PKI/ca.pem" -o /dev/null -u "site-a:$PW_A" --data-binary @- "$URL" || true
	done
) &
LOOP=$!
sleep 1
"$PY" "$SYNCQ_ROOT/tests/lib/latency.py" "$B" "$HUB" t 2000 20 "$T/during" | sed 's/^/# during: /'
wait "$LOOP"
before=$(sort -n "$T/before" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
during=$(sort -n "$T/during" | tail -n 1)
awk -v b="$before" -v d="$during" 'BEGIN { exit !(d <= 4 * b + 250) }' ||
	fail "site-b's changes took up to $during ms while site-a asked for retries (median before: $before ms)"
expect_eq "each set-aside change of site-a's node retried at most twice more in those 15 s" \
	"$(hub "SELECT max(attempts) <= 4 FROM sync_errors WHERE node_id = '$NODE_X'")" t
stop_daemon
serve_stop
echo "attack_hub: ok"
