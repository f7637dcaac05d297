#!/usr/bin/env bash
# syncqd-asan
# A hub transaction larger than a page comes down over HTTP in pages
# (docs/http.md, The download): serve cuts a page after 20,000 changes
# even inside a transaction, and the client asks for the next page while it
# applies one. The client commits only where no hub transaction straddles
# the cut, so the app never sees part of one: sampled all along, the file
# holds none of the transaction's rows or all of them; a client killed
# between two pages keeps none, and its next sync brings them all, once.
# Always over HTTP (whatever SYNCQ_TRANSPORT).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

N=60000		# one hub transaction: three pages
new_hub http_txn_pages
[ -n "$SERVE_PID" ] || start_serve
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');" >/dev/null
C=$SYNCQ_TMP/c.db
D=$SYNCQ_TMP/d.db
for f in "$C" "$D"; do
	cli "$f" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
	sync "$f"
done
hub "BEGIN; INSERT INTO t SELECT g, 'big ' || g FROM generate_series(1, $N) g; COMMIT;
	BEGIN; INSERT INTO t SELECT g, 'small ' || g FROM generate_series(100001, 100010) g; COMMIT;"
want="$((N + 10)) $((N * (N + 1) / 2 + 1000055))"

note "C downloads the $N-row transaction while the app reads the file"
LOG=$SYNCQ_TMP/c.log
"$SYNCQD" --sqlite "$C" --online "$ONLINE" --once --log-level debug 2>"$LOG" &
pid=$!
seen=$SYNCQ_TMP/seen
: >"$seen"
while kill -0 "$pid" 2>/dev/null; do
	sqlite3 -cmd '.timeout 5000' "$C" "SELECT count(*) FROM t" >>"$seen" 2>/dev/null || true
	sleep 0.02
done
wait "$pid" || { tail -n 5 "$LOG" >&2; fail "syncqd --once on C failed"; }
bad=$(sort -u "$seen" | grep -vxE "0|$N|$((N + 10))" | head -n 3 | tr '\n' ' ' || true)
[ -z "$bad" ] || fail "the app saw part of a hub transaction: $bad rows"
note "  $(wc -l <"$seen") samples, counts seen: $(sort -un "$seen" | tr '\n' ' ')"
pages=$(grep -cE 'serve: (snapshot|changes): [0-9]+ bytes' "$LOG" || true)
[ "$pages" -ge 3 ] || { grep 'serve:' "$LOG" >&2; fail "the transaction came in $pages page(s), not in pages of 20,000"; }
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
