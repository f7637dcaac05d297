#!/usr/bin/env bash
# syncqd-http
# After a sync, the hub queue's index by transaction (sync_queue_txid_brin)
# has a summary for every page range of the queue (sync_summarize,
# docs/replication.md). A range without one matches every search of the
# index, so each sync's reads by transaction (where a download starts, the
# hub's changes an upload may have overtaken) would read every row queued
# since the last VACUUM. Autovacuum is off for the queue here, so only
# syncqd summarizes. While something else holds the queue's lock (a VACUUM,
# which summarizes too, or here a session that took it), a sync does not
# wait for it: the ranges wait for the next sync.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_queue_summarized
hub "CREATE EXTENSION pageinspect; ALTER TABLE sync_queue SET (autovacuum_enabled = off);
	CREATE TABLE item (id integer PRIMARY KEY, v text); SELECT sync_track('item')" >/dev/null
a=$SYNCQ_TMP/a.db
cli "$a" "CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('item')" >/dev/null

# the queue's page ranges (128 pages each), and those with a summary
ranges() { hub "SELECT ceil(pg_relation_size('sync_queue') / 8192 / 128.0)"; }
summarized() {
	hub "SELECT count(*) FROM brin_revmap_data(get_raw_page('sync_queue_txid_brin', 1)) AS r(pages)
	      WHERE pages <> '(0,0)'"
}

note "40,000 rows queued on the hub: ranges without a summary"
hub "INSERT INTO item SELECT i, 'hub ' || i FROM generate_series(1, 40000) i"
n=$(ranges)
[ "$n" -ge 4 ] || fail "the queue has $n page ranges, wanted at least 4"
# (the first has one: the index was made on the empty queue)
s=$(summarized)
[ "$s" -le 1 ] || fail "$s of $n ranges have a summary before a sync, wanted at most 1"

note "a sync: every range has one"
sync "$a"
plain "$a" "INSERT INTO item VALUES (100001, 'client')"
sync "$a"
expect_eq "rows on the client" "$(plain "$a" "SELECT count(*) FROM item")" "40001"
expect_eq "ranges with a summary after a sync" "$(summarized)" "$(ranges)"

note "the queue's lock held elsewhere: a sync does not wait for it"
hub "INSERT INTO item SELECT i, 'hub ' || i FROM generate_series(40001, 80000) i"
before=$(summarized)
[ "$before" -lt "$(ranges)" ] || fail "the new rows' ranges have a summary before any sync"
fifo=$SYNCQ_TMP/lock.fifo
mkfifo "$fifo"
psql -X -q -At -d "$HUB" <"$fifo" >"$SYNCQ_TMP/lock.out" 2>&1 &
holder=$!
exec 7>"$fifo"
trap 'exec 7>&-; kill $holder 2>/dev/null || true; serve_cleanup' EXIT
echo "BEGIN; LOCK TABLE sync_queue IN SHARE UPDATE EXCLUSIVE MODE; SELECT 'locked';" >&7
wait_locked() {
	local i
	for i in $(seq 1 100); do grep -q locked "$SYNCQ_TMP/lock.out" && return 0; sleep 0.1; done
	fail "the session did not take the queue's lock: $(cat "$SYNCQ_TMP/lock.out")"
}
wait_locked
plain "$a" "INSERT INTO item VALUES (100002, 'client')"
t0=$(date +%s)
timeout 60 "$SYNCQD" --sqlite "$a" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" ||
	fail "the sync failed while the queue's lock was held: $(tail -n 3 "$SYNCQ_TMP/syncqd.log")"
t1=$(date +%s)
[ $((t1 - t0)) -lt 30 ] || fail "the sync took $((t1 - t0)) s with the queue's lock held"
expect_eq "rows on the client, lock held" "$(plain "$a" "SELECT count(*) FROM item")" "80002"
expect_eq "client row on the hub, lock held" "$(hub "SELECT v FROM item WHERE id = 100002")" "client"
expect_eq "ranges with a summary, lock held" "$(summarized)" "$before"

note "the lock let go: the next sync summarizes them"
echo "COMMIT;" >&7
exec 7>&-
wait "$holder"
trap serve_cleanup EXIT
sync "$a"
expect_eq "ranges with a summary after the lock" "$(summarized)" "$(ranges)"
