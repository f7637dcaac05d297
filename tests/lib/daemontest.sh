# tests/lib/daemontest.sh — helpers for the tests of syncqd running on
# (tests/integration/daemon_*.sh). Sources synctest.sh.
#
#   start_daemon FILE [ARG]...   syncqd on FILE against $HUB, in the
#                                background, log in $SYNCQ_TMP/daemon.log;
#                                sets DAEMON_PID; waits until it synced once
#   stop_daemon                  SIGTERM; fails unless it exits 0
#   wait_until SECONDS DESC CMD  run CMD every 20 ms until it succeeds; fail
#                                with DESC after SECONDS
#   free_port                    a free TCP port of 127.0.0.1
#   syncs_done                   how many syncs the daemon logged as done
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

DAEMON_PID=
DAEMON_LOG=$SYNCQ_TMP/daemon.log

# The app's connections wait for syncqd's short write transactions, as an
# app should (a busy timeout), instead of failing with "database is locked".
cli() {
	local f=$1; shift
	{ printf '.load %s\n.timeout 5000\n' "$SYNCQ_SQLITE_EXT"; printf '%s\n' "$@"; } |
		sqlite3 -bail -separator '|' "$f"
}
plain() { sqlite3 -bail -separator '|' -cmd '.timeout 5000' "$1" "$2"; }

# On the way out, never leave a daemon behind.
daemon_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
	fi
	serve_cleanup
}
trap daemon_cleanup EXIT

start_daemon() {
	local f=$1 n
	shift
	n=$(grep -c 'syncqd [0-9.]* running' "$DAEMON_LOG" 2>/dev/null || true)
	"$SYNCQD" --sqlite "$f" --online "$ONLINE" "$@" 2>>"$DAEMON_LOG" &
	DAEMON_PID=$!
	wait_until 10 "syncqd started" \
		'[ "$(grep -c "syncqd [0-9.]* running" "$DAEMON_LOG")" -gt "${n:-0}" ]'
	# a test that starts with a large backlog sets FIRST_SYNC_WAIT
	wait_until "${FIRST_SYNC_WAIT:-20}" "syncqd's first sync" 'grep -q "sync (start) done" "$DAEMON_LOG"'
}

stop_daemon() {
	local rc=0
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	[ "$rc" -eq 0 ] || { tail -n 30 "$DAEMON_LOG" >&2; fail "syncqd exited $rc on SIGTERM"; }
}

# The daemon must still be running.
daemon_alive() {
	kill -0 "$DAEMON_PID" 2>/dev/null || { tail -n 30 "$DAEMON_LOG" >&2; fail "syncqd is gone"; }
}

wait_until() {
	local secs=$1 desc=$2 cmd=$3 end
	end=$(($(now_ms) + $(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')))
	until eval "$cmd"; do
		if [ "$(now_ms)" -gt "$end" ]; then
			tail -n 20 "$DAEMON_LOG" >&2 2>/dev/null || true
			fail "timed out after $secs s waiting for: $desc"
		fi
		sleep 0.02
	done
}

# (below the kernel's range of ephemeral ports, from which every outgoing
# connection on the machine takes its local port: one of those could take
# the port between this check and the listen)
free_port() {
	local p lo
	lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$lo" -gt 12000 ] || lo=32768
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

syncs_done() { grep -c ') done in ' "$DAEMON_LOG" || true; }

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
