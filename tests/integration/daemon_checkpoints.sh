#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The app's commits find the WAL short and do not checkpoint the file:
# syncqd checkpoints it itself after a sync once its own commits left 250
# frames or more (docs/daemon.md, Checkpoints are syncqd's). SQLite's
# automatic checkpoint runs in the commit that takes the WAL past 1,000
# frames, whichever connection's: with an app writing one row per
# transaction, each synced at once, that was one of syncqd's commits in the
# middle of a sync (the app saw 994-998 frames before this change, so the
# frames are what this test holds to), or the app's. The app here
# (tests/tools/app_checkpoints.c, the stock libsqlite3) counts the commits
# of its own that found 1,000 frames or more (none), and the most frames
# any of its commits found (a few hundred at most).
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_checkpoints
N=300
hub "CREATE TABLE lat (id integer PRIMARY KEY, v text); SELECT sync_track('lat');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE lat (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('lat');" >/dev/null
APP=$SYNCQ_TMP/app_checkpoints
${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -o "$APP" "$SYNCQ_ROOT/tests/tools/app_checkpoints.c" -lsqlite3

start_daemon "$C" --control off
# one row every 10 ms, each an immediate change synced on its own or with
# its neighbours: about ten frames of the app's and syncqd's each time
read -r n ckpt frames worst < <("$APP" "$C" "$SYNCQ_SQLITE_EXT" "$N" 10 1) || fail "the app failed"
note "the app wrote $n rows; its commits that checkpointed: $ckpt; most frames a commit of its found: $frames; its slowest commit: $worst ms"
wait_until 30 "the app's rows on the hub" '[ "$(hub "SELECT count(*) FROM lat")" = "$N" ]'
note "syncs: $(syncs_done)"
[ "$(syncs_done)" -ge 10 ] || fail "only $(syncs_done) syncs: the app's rows did not go up one or a few at a time"
expect_eq "commits of the app's that checkpointed the file" "$ckpt" 0
[ "$frames" -lt 500 ] || fail "a commit of the app's found $frames frames in the WAL (syncqd checkpoints after a sync from 250)"
daemon_alive
stop_daemon
echo ok
