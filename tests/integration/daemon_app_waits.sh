#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The app is never made to wait long: while syncqd ships 100,000 rows down
# and 50,000 up, an app writing one row per transaction, trying for the
# write lock every 100 ms, never waits a second for it (3 s for syncqd
# under ASan), because syncqd applies a long download in parts (cut between
# two hub transactions, here of 1,000 rows each) and acknowledges a long
# upload 2,000 rows at a time, and after each 200 ms of holding the lock
# leaves it alone for longer than the app's 100 ms between tries, so the
# app cannot miss it.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_app_waits
DOWN=100000
UP=50000
hub "CREATE TABLE big (id integer PRIMARY KEY, v text); SELECT sync_track('big');
	CREATE TABLE mine (id integer PRIMARY KEY, v text); SELECT sync_track('mine');
	CREATE TABLE app (id integer PRIMARY KEY, v text); SELECT sync_track('app');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('big');
	CREATE TABLE mine (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('mine');
	CREATE TABLE app (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('app');" >/dev/null
sync "$C"

# the backlog, both ways, while syncqd is not running (the app's own bulk
# writes would make it wait too)
for t in $(seq 0 99); do
	echo "INSERT INTO big SELECT i, 'h' || i FROM generate_series($((t * DOWN / 100 + 1)), $(((t + 1) * DOWN / 100))) i;"
done | psql -X -q -d "$HUB" >/dev/null
for t in $(seq 0 9); do
	echo "BEGIN; WITH RECURSIVE s(x) AS (SELECT $((t * UP / 10 + 1)) UNION ALL SELECT x + 1 FROM s WHERE x < $(((t + 1) * UP / 10)))
		INSERT INTO mine SELECT x, 'c' || x FROM s; COMMIT;"
done | sqlite3 -cmd ".load $SYNCQ_SQLITE_EXT" -cmd '.timeout 5000' "$C" >/dev/null

# the app: one row per transaction for as long as $GO exists; prints how
# many it wrote and the longest wait, in ms. It waits for the write lock as
# SQLite's busy handler does at its slowest, a try every 100 ms (the
# handler's first tries come sooner): an app that tries that seldom is
# the one a short gap in syncqd's writes lets down (docs/daemon.md, The app
# always gets in)
GO=$SYNCQ_TMP/go
touch "$GO"
# on any way out, the app stops too: left running it would hold tests/run's
# lock (it inherits the descriptor) and every other run would wait for it
trap 'rm -f "$GO"; daemon_cleanup' EXIT
cat >"$SYNCQ_TMP/app.py" <<'PY'
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
n, worst = 0, 0.0
while os.path.exists(sys.argv[2]):
    t = time.monotonic()
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):
                raise
            time.sleep(0.1)
    db.execute("INSERT INTO app VALUES (?, 'x')", (n + 1,))
    db.execute("COMMIT")
    worst = max(worst, time.monotonic() - t)
    n += 1
    time.sleep(0.005)
print(n, round(worst * 1000))
PY
python3 "$SYNCQ_TMP/app.py" "$C" "$GO" >"$SYNCQ_TMP/app.out" &
app=$!
sleep 0.5

# syncqd ships it all while the app writes (its first sync is all of it)
FIRST_SYNC_WAIT=120 start_daemon "$C" --control off
wait_until 120 "the hub's rows on the client" '[ "$(plain "$C" "SELECT count(*) FROM big")" = "$DOWN" ]'
wait_until 120 "the client's rows on the hub" '[ "$(hub "SELECT count(*) FROM mine")" = "$UP" ]'
rm "$GO"
wait "$app"
read -r n worst <"$SYNCQ_TMP/app.out"
note "the app wrote $n rows meanwhile; its longest wait for the write lock: $worst ms"
[ "$n" -ge 20 ] || fail "the app wrote only $n rows"
# (1 s; 3 s for syncqd under ASan: tests/lib/synctest.sh)
LIMIT=$(app_wait_limit_ms)
[ "$worst" -lt "$LIMIT" ] || fail "the app waited $worst ms for the write lock (at most $LIMIT ms)"
wait_until 10 "the app's rows on the hub" '[ "$(hub "SELECT count(*) FROM app")" = "$n" ]'
expect_eq "no download cut short left behind" \
	"$(plain "$C" "SELECT count(*) FROM syncqd_state WHERE key IN ('down_target', 'down_done')")" 0
daemon_alive
stop_daemon
echo ok
