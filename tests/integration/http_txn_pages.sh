#!/usr/bin/env bash
# syncqd-asan
# A hub transaction larger than a page comes down over HTTP in pages
# (docs/http.md, The download): serve cuts a page after 20,000 changes
# even inside a transaction, and the client asks for the next page while it
# applies one. The client commits only where no hub transaction straddles
# the cut, so the app never sees part of one: sampled all along, the file
# holds none of the transaction's rows or all of them; a client killed
# between two pages keeps none, and its next sync brings them all, once.
# Two transactions whose rows interleave (one written while the other
# waited) come down the same way: the pages cut through both, and the app
# sees neither until both are whole, over HTTP and over libpq (one cursor
# over the whole download). Always over HTTP otherwise (whatever
# SYNCQ_TRANSPORT).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

N=60000		# one hub transaction: three pages
new_hub http_txn_pages
[ -n "$SERVE_PID" ] || start_serve
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');" >/dev/null
C=$SYNCQ_TMP/c.db
D=$SYNCQ_TMP/d.db
E=$SYNCQ_TMP/e.db
F=$SYNCQ_TMP/f.db
for f in "$C" "$D" "$E" "$F"; do
	cli "$f" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
	sync "$f"
done
hub "BEGIN; INSERT INTO t SELECT g, 'big ' || g FROM generate_series(1, $N) g; COMMIT;
	BEGIN; INSERT INTO t SELECT g, 'small ' || g FROM generate_series(100001, 100010) g; COMMIT;"
want="$((N + 10)) $((N * (N + 1) / 2 + 1000055))"

note "C downloads the $N-row transaction while the app reads the file"
download_sampled "$C" "$ONLINE" "SELECT count(*) FROM t" "0|$N|$((N + 10))"
pages=$(grep -cE 'serve: (snapshot|changes): [0-9]+ bytes' "$SYNCQ_TMP/c.log" || true)
[ "$pages" -ge 3 ] || { grep 'serve:' "$SYNCQ_TMP/c.log" >&2; fail "the transaction came in $pages page(s), not in pages of 20,000"; }
note "  $pages pages (the snapshot's and the changes requests)"
expect_eq "C's rows" "$(plain "$C" "SELECT count(*) || ' ' || sum(id) FROM t")" "$want"

note "D is killed between two pages of the transaction"
LOG=$SYNCQ_TMP/d.log
"$SYNCQD" --sqlite "$D" --online "$ONLINE" --once --log-level debug 2>"$LOG" &
pid=$!
for _ in $(seq 1500); do
	grep -qE 'serve: changes: [0-9]+ bytes' "$LOG" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.01
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
got=$(plain "$D" "SELECT count(*) FROM t")
case $got in
0) note "  killed mid-transaction: D kept none of it" ;;
"$N" | "$((N + 10))") note "  (the download ended before the kill: $got rows)" ;;
*) fail "D kept part of a hub transaction after a kill: $got rows" ;;
esac
sync "$D"
expect_eq "D's rows after the next sync" "$(plain "$D" "SELECT count(*) || ' ' || sum(id) FROM t")" "$want"
expect_eq "nothing set aside" "$(set_aside "$C" "$D")" ""
note "every row arrived once"

note "E (over HTTP) and F (over libpq) download two transactions whose rows interleave"
sync "$E"
ONLINE=$HUB sync "$F"
# A writes 25,000 rows, waits (for an advisory lock the test holds) while
# B writes 25,000 and commits, then writes 25,000 more and commits: B's
# rows lie between A's
psql -X -q -d "$HUB" -c "SELECT pg_advisory_lock(7331), pg_sleep(300)" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 1500); do
	[ "$(hub "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7331 AND granted")" = 1 ] && break
	sleep 0.02
done
hub "BEGIN; INSERT INTO t SELECT g, 'a ' || g FROM generate_series(200001, 225000) g;
	SELECT pg_advisory_lock(7331); SELECT pg_advisory_unlock(7331);
	INSERT INTO t SELECT g, 'a ' || g FROM generate_series(225001, 250000) g; COMMIT;" >/dev/null &
a=$!
for _ in $(seq 1500); do
	[ "$(hub "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7331 AND NOT granted")" = 1 ] && break
	sleep 0.02
done
hub "BEGIN; INSERT INTO t SELECT g, 'b ' || g FROM generate_series(300001, 325000) g; COMMIT;"
hub "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null || true
wait "$a" || fail "transaction A failed"
expect_eq "B's rows lie between A's in the hub's queue" \
	"$(hub "WITH x AS (SELECT txid, min(seq) AS lo, max(seq) AS hi FROM sync_queue WHERE row_data->>'v' LIKE 'a %' OR row_data->>'v' LIKE 'b %' GROUP BY txid ORDER BY lo)
		SELECT count(*) = 2 AND min(lo) < max(lo) AND max(hi) = (SELECT hi FROM x ORDER BY lo LIMIT 1) FROM x")" "t"
ab="$(( (200001 + 250000) * 25000 + (300001 + 325000) * 12500 ))"
download_sampled "$E" "$ONLINE" "SELECT count(*) FROM t WHERE id > 200000" "0|75000"
expect_eq "e.db's rows" "$(plain "$E" "SELECT count(*) || ' ' || sum(id) FROM t WHERE id > 200000")" "75000 $ab"
pages=$(grep -cE 'serve: (snapshot|changes): [0-9]+ bytes' "$SYNCQ_TMP/e.log" || true)
[ "$pages" -ge 4 ] || fail "75,000 rows came in $pages page(s), not in pages of 20,000"
note "  over HTTP in $pages pages"
download_sampled "$F" "$HUB" "SELECT count(*) FROM t WHERE id > 200000" "0|75000"
expect_eq "f.db's rows" "$(plain "$F" "SELECT count(*) || ' ' || sum(id) FROM t WHERE id > 200000")" "75000 $ab"
expect_eq "nothing set aside on E and F" "$(set_aside "$E" "$F")" ""
