#!/usr/bin/env bash
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
if out=$("$SYNCQD" --sqlite "$M" --online "$HUB" --once 2>&1); then fail "a client without table extra synced"; fi
echo "$out" | grep -q 'table "extra" is tracked on the hub but does not exist' || fail "unclear message: $out"
expect_eq "nothing applied" "$(plain "$M" "SELECT count(*) FROM item")" "0"

note "a client missing a column is refused"
cli "$M" "CREATE TABLE extra (k TEXT PRIMARY KEY);" >/dev/null
if out=$("$SYNCQD" --sqlite "$M" --online "$HUB" --once 2>&1); then fail "a client without column extra.v synced"; fi
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
	"item 12345|26|86.25|2025-01-09T13:45:00+00:00"
expect_eq "nothing pending after the first sync" "$(pending "$C")" "0"

note "then changes flow as usual"
hub "UPDATE item SET qty = -1 WHERE id = 5" >/dev/null
sync "$C"
expect_eq "update after first sync" "$(plain "$C" "SELECT qty FROM item WHERE id = 5")" "-1"
echo ok
