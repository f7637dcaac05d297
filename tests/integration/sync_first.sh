#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# First sync of a 100,000-row hub into an empty client: a consistent copy;
# a client missing a table or a column is told which and gets nothing.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_first
N=100000
hub "CREATE TABLE item (id bigint PRIMARY KEY, name text NOT NULL, qty integer, price numeric(10,2), seen timestamptz);
	SELECT sync_track('item');
	CREATE TABLE extra (k text PRIMARY KEY, v text);
	SELECT sync_track('extra');
	INSERT INTO item SELECT i, 'item ' || i, i % 97, (i % 1000) / 4.0, '2025-01-01'::timestamptz + i * interval '1 minute'
	  FROM generate_series(1, $N) i;
	INSERT INTO extra VALUES ('a', 'b');" >/dev/null

note "a client missing a table is refused, and nothing is applied"
M=$SYNCQ_TMP/missing.db
cli "$M" "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price NUMERIC, seen TEXT);
	SELECT sync_track('item');" >/dev/null
if out=$("$SYNCQD" --sqlite "$M" --online "$ONLINE" --once 2>&1); then fail "a client without table extra synced"; fi
echo "$out" | grep -q 'table "extra" is tracked on the hub but does not exist' || fail "unclear message: $out"
expect_eq "nothing applied" "$(plain "$M" "SELECT count(*) FROM item")" "0"

note "a client missing a column is refused"
cli "$M" "CREATE TABLE extra (k TEXT PRIMARY KEY);" >/dev/null
if out=$("$SYNCQD" --sqlite "$M" --online "$ONLINE" --once 2>&1); then fail "a client without column extra.v synced"; fi
echo "$out" | grep -q 'column "v" of table "extra" exists on the hub but not' || fail "unclear message: $out"

note "first sync of $N rows"
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price NUMERIC, seen TEXT);
	CREATE TABLE extra (k TEXT PRIMARY KEY, v TEXT);
	SELECT sync_track('item'); SELECT sync_track('extra');" >/dev/null
start=$(date +%s.%N)
sync "$C"
note "first sync took $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}') s: $(last_log)"
expect_eq "rows" "$(plain "$C" "SELECT count(*), sum(qty), min(name), max(id) FROM item")" \
	"$(hub "SELECT count(*), sum(qty), min(name), max(id) FROM item")"
expect_eq "a row" "$(plain "$C" "SELECT name, qty, price, seen FROM item WHERE id = 12345")" \
	"item 12345|26|86.25|2025-01-09 13:45:00"
expect_eq "nothing pending after the first sync" "$(pending "$C")" "0"

note "then changes flow as usual"
hub "UPDATE item SET qty = -1 WHERE id = 5" >/dev/null
sync "$C"
expect_eq "update after first sync" "$(plain "$C" "SELECT qty FROM item WHERE id = 5")" "-1"

note "housekeeping: a client away longer than the retention window is re-bootstrapped"
A=$SYNCQ_TMP/away.db
cp "$C" "$A"
"$SYNCQD" --sqlite "$A" --reidentify >/dev/null
sync "$A"
hub "UPDATE item SET qty = -2 WHERE id = 6" >/dev/null
sync "$C"
away=$(cli "$A" "SELECT sync_node_id()")
hub "UPDATE sync_clients SET last_seen = now() - interval '31 days' WHERE node_id = '$away';
	UPDATE sync_hub_state SET pruned_at = NULL" >/dev/null
hub "SELECT sync_prune()" >/dev/null
expect_eq "queue pruned up to the active client" "$(hub "SELECT count(*) FROM sync_queue WHERE pk::text = '{\"id\":6}'")" "0"
sync "$A"
last_log | grep -q "(first sync)" || fail "the stale client did not take a first sync: $(last_log)"
expect_eq "stale client caught up" "$(plain "$A" "SELECT qty FROM item WHERE id IN (5, 6) ORDER BY id" | tr '\n' ' ')" "-1 -2 "
echo ok
