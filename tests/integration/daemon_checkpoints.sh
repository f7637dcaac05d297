#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The app's commits do not checkpoint the file: while the app writes,
# syncqd checkpoints the WAL itself after its own commits once it holds 250
# frames (docs/daemon.md, Checkpoints are syncqd's). SQLite's automatic
# checkpoint runs in the commit of whichever connection takes the WAL past
# 1,000 frames; with an app writing one row per transaction, each synced at
# once, that was now and then the app's commit (101-125 ms at worst in a
# bench run, against 28-43 ms after). The app here (tests/tools/
# app_checkpoints.c, the stock libsqlite3) counts the commits of its own
# that found 1,000 frames or more in the WAL: none; and the WAL it saw
# never held more than a few hundred frames (994-998 before).
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
[ "$(syncs_done)" -ge 20 ] || fail "only $(syncs_done) syncs: the app's rows did not go up one or a few at a time"
expect_eq "commits of the app's that checkpointed the file" "$ckpt" 0
[ "$frames" -lt 500 ] || fail "a commit of the app's found $frames frames in the WAL (syncqd checkpoints at 250 while the app writes)"
daemon_alive
stop_daemon
echo ok
