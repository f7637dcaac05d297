#!/usr/bin/env bash
# syncqd-http
# A first sync is applied in parts (issue 15): an app writing to the file
# meanwhile waits for one part at most, not for the whole first sync; a
# first sync killed half-way goes on where it was cut (from the start of
# the table it was in) and ends with the hub's rows, the app's rows kept.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_first_parts
N=${SYNCQ_FIRST_ROWS:-300000}
hub "CREATE TABLE big (id integer PRIMARY KEY, v text);
	CREATE TABLE note (id text PRIMARY KEY, body text);
	SELECT sync_track('big', 'batched'); SELECT sync_track('note');
	INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, $N) g" >/dev/null
mkclient() {
	cli "$1" "PRAGMA journal_mode = WAL;
		CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
		CREATE TABLE note (id TEXT PRIMARY KEY, body TEXT);
		SELECT sync_track('big', 'batched'); SELECT sync_track('note');" >/dev/null
}
# app FILE TAG: the app writes a note every 20 ms while syncqd runs (pid
# in SYNCQD_PID), through Python's stock sqlite3 (busy timeout 10 s), and
# prints how many it wrote and the longest wait for one, in ms
app() {
	/usr/bin/python3 - "$1" "$2" "$SYNCQD_PID" <<'PY'
import os, sqlite3, sys, time
db, tag, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db, timeout=10, isolation_level=None)
n, worst = 0, 0.0
def alive():
    try:
        os.kill(pid, 0)
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split()[2] != 'Z'
    except OSError:
        return False
while alive():
    t = time.monotonic()
    con.execute("INSERT INTO note VALUES (?, 'written during the first sync')", ('%s-%d' % (tag, n),))
    worst = max(worst, time.monotonic() - t)
    n += 1
    time.sleep(0.02)
print(n, int(worst * 1000))
PY
}

# (the app's connection may still be closing: wait for the lock)
plain() { sqlite3 -bail -cmd '.timeout 5000' -separator '|' "$1" "$2"; }

a=$SYNCQ_TMP/a.db
mkclient "$a"
note "first sync of $N rows while the app writes"
"$SYNCQD" --sqlite "$a" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
SYNCQD_PID=$!
read -r n worst < <(app "$a" a)
wait "$SYNCQD_PID" || fail "the first sync failed: $(tail -n 3 "$SYNCQ_TMP/syncqd.log")"
note "the app wrote $n notes meanwhile, the longest wait $worst ms"
[ "$n" -ge 5 ] || fail "the app wrote only $n notes"
# (1 s; 3 s for syncqd under ASan: tests/lib/synctest.sh)
LIMIT=$(app_wait_limit_ms)
[ "$worst" -lt "$LIMIT" ] || fail "the app waited $worst ms for one write, more than $LIMIT ms (the first sync in one transaction?)"
expect_eq "a's rows" "$(plain "$a" "SELECT count(*), sum(id) FROM big")" "$(hub "SELECT count(*), sum(id) FROM big")"
sync "$a"
expect_eq "the app's notes reach the hub" "$(hub "SELECT count(*) FROM note")" "$n"

note "a first sync killed half-way goes on"
b=$SYNCQ_TMP/b.db
mkclient "$b"
plain "$b" "INSERT INTO note VALUES ('b-before', 'written before the first sync')"
"$SYNCQD" --sqlite "$b" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
pid=$!
for i in $(seq 500); do
	[ "$(plain "$b" "SELECT count(*) FROM big" 2>/dev/null || echo 0)" -gt 0 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.01
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
got=$(plain "$b" "SELECT count(*) FROM big")
note "killed with $got rows written"
[ "$got" -lt "$N" ] || fail "the first sync ended before the kill; make SYNCQ_FIRST_ROWS larger"
expect_eq "where it was cut" "$(plain "$b" "SELECT group_concat(key) FROM (SELECT key FROM syncqd_state WHERE key LIKE 'first_%' ORDER BY key)")" "first_snapshot,first_table"
plain "$b" "INSERT INTO note VALUES ('b-between', 'written between the two')"
hub "UPDATE big SET v = 'changed after' WHERE id IN (1, $N); DELETE FROM big WHERE id = 2"
sync "$b"
grep -q "going on with the first sync cut short" "$SYNCQ_TMP/syncqd.log" || fail "the first sync did not go on"
expect_eq "b's rows" "$(plain "$b" "SELECT count(*), sum(id), sum(v = 'changed after') FROM big")" \
	"$(hub "SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'changed after') FROM big")"
expect_eq "no first sync state left" "$(plain "$b" "SELECT count(*) FROM syncqd_state WHERE key LIKE 'first_%'")" "0"
sync "$b"
expect_eq "b's own notes on the hub" "$(hub "SELECT string_agg(id, ',' ORDER BY id) FROM note WHERE id LIKE 'b-%'")" "b-before,b-between"
echo ok
