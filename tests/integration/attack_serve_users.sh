#!/usr/bin/env bash
# syncqd-asan
# What one site's user may do on `syncqd serve` (issue 18): a user name of
# 255 bytes (the longest `syncqd passwd` takes) signs in and syncs (it got
# 401 while serve kept 127 bytes of a name); POST /api/sync/trigger, which
# makes every client sync and retry its set-aside changes, is the admin's
# alone: a site's user gets 403 and nothing is asked of the hub, the admin
# gets 202. A password given in --postgres is hidden from serve's command
# line (/proc/PID/cmdline) as serve starts, with a warning; so is one in a
# client's --online. An --online http:// URL of another machine gets a
# warning that the password travels in clear text (the loopback's none).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub attack_serve_users
T=$SYNCQ_TMP/users
rm -rf "$T"
mkdir -p "$T"
hub "CREATE TABLE t (id integer PRIMARY KEY, v text); SELECT sync_track('t');
	INSERT INTO t VALUES (1, 'hub');" >/dev/null
LONG=$(printf 'site-%0250d' 7)
PW_A='pw-site-a: Tr0ub4dor&3'
PW_L='pw-long: staple battery'
CREDS=$T/credentials
printf '%s\n' "$PW_A" | "$SYNCQD" passwd site-a >"$CREDS"
printf '%s\n' "$PW_L" | "$SYNCQD" passwd "$LONG" >>"$CREDS"
chmod 600 "$CREDS"
expect_eq "the long name's length" "${#LONG}" 255
start_serve --credentials "$CREDS"

note "a user name of 255 bytes syncs"
C=$SYNCQ_TMP/c.db
rm -f "$C" "$C"-*
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('t');" >/dev/null
AMRS_ADMIN_USERNAME=$LONG AMRS_ADMIN_PASSWORD=$PW_L sync "$C"
expect_eq "the hub's row on the client" "$(plain "$C" "SELECT id, v FROM t")" "1|hub"
NODE=$(plain "$C" "SELECT node_id FROM syncq_state")
expect_eq "the node bound to the long name" "$(hub "SELECT http_user FROM sync_http_nodes WHERE node_id = '$NODE'")" "$LONG"

note "the trigger: 403 for a site's user, 202 for the admin"
trigger() {
	curl -sS --max-time 30 -o "$T/reply" -w '%{http_code}' -u "$1" -X POST "$ONLINE/api/sync/trigger"
}
expect_eq "site-a's trigger" "$(trigger "site-a:$PW_A")" 403
grep -q '"error": "a sync of every client is for the admin user' "$T/reply" || fail "403 without its reason: $(cat "$T/reply")"
expect_eq "the long user's trigger" "$(trigger "$LONG:$PW_L")" 403
expect_eq "the admin's trigger" "$(trigger "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD")" 202
kill -0 "$SERVE_PID" || fail "serve died"

note "a password in --postgres: hidden from the command line, and a warning"
start_serve --credentials "$CREDS" --postgres "$HUB password=pg-secret-77"
tr '\0' ' ' </proc/"$SERVE_PID"/cmdline >"$T/cmdline"
! grep -q 'pg-secret-77' "$T/cmdline" || fail "the password is in serve's command line: $(cat "$T/cmdline")"
grep -q 'serve --postgres .* --postgres \*\*\*\*' "$T/cmdline" || fail "serve's command line: $(cat "$T/cmdline")"
grep -q 'warning: --postgres holds a password, which every local user could read' "$SERVE_LOG" ||
	fail "no warning of the password: $(tail -n 3 "$SERVE_LOG")"
! grep -q 'pg-secret-77' "$SERVE_LOG" || fail "the password is in serve's log"
expect_eq "the admin's hello with serve on that conninfo" \
	"$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" "$ONLINE/api/sync/status")" 200

note "a password in a client's --online: hidden from the command line, and a warning"
D=$SYNCQ_TMP/d.db
rm -f "$D" "$D"-*
cli "$D" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('t');" >/dev/null
"$SYNCQD" --sqlite "$D" --online "$HUB password=pg-secret-88" --control off 2>"$T/daemon.log" &
DPID=$!
for i in $(seq 250); do
	grep -q 'running' "$T/daemon.log" && break
	kill -0 "$DPID" 2>/dev/null || { cat "$T/daemon.log" >&2; fail "syncqd did not start"; }
	sleep 0.02
done
tr '\0' ' ' </proc/"$DPID"/cmdline >"$T/dcmdline"
for i in $(seq 250); do
	[ "$(plain "$D" "SELECT count(*) FROM t")" = 1 ] && break
	sleep 0.02
done
kill -TERM "$DPID"
wait "$DPID" || fail "syncqd exited $? on SIGTERM"
! grep -q 'pg-secret-88' "$T/dcmdline" || fail "the password is in syncqd's command line: $(cat "$T/dcmdline")"
grep -q 'warning: --online holds a password, which every local user could read' "$T/daemon.log" ||
	fail "no warning of the password: $(head -n 3 "$T/daemon.log")"
! grep -q 'pg-secret-88' "$T/daemon.log" || fail "the password is in syncqd's log"
expect_eq "the hub's row, synced by that daemon" "$(plain "$D" "SELECT id, v FROM t")" "1|hub"

note "--online http:// to another machine: a warning that the password goes in clear text"
! "$SYNCQD" --sqlite "$D" --online "http://0.0.0.0:1" --once --control off 2>"$T/clear.log" ||
	fail "syncqd --once reached a serve on 0.0.0.0:1?"
grep -q 'warning: --online is http://, not https://: the password of $AMRS_ADMIN_USERNAME goes to 0.0.0.0:1 in clear text' "$T/clear.log" ||
	fail "no warning of clear text: $(head -n 3 "$T/clear.log")"
! grep -q 'in clear text' "$SYNCQ_TMP/syncqd.log" 2>/dev/null || fail "a warning of clear text for the loopback"
