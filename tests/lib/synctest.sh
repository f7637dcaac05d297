# tests/lib/synctest.sh — helpers for the replication tests. Sourced by
# tests/integration/sync_*.sh, which tests/run starts with PGHOST/PGPORT,
# SYNCQD, SYNCQ_SQLITE_EXT and SYNCQ_TMP set.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*"; }

# With SYNCQ_TRANSPORT=http (tests/run runs a script marked "# syncqd-http"
# a second time so), clients reach the hub through a real `syncqd serve` on
# loopback that new_hub starts: ONLINE is what clients are given, HUB stays
# the hub's conninfo for psql.
SERVE_PID=
SERVE_LOG=$SYNCQ_TMP/serve.log
export AMRS_ADMIN_USERNAME=syncq-admin AMRS_ADMIN_PASSWORD='test pw: s3cret!'
serve_cleanup() {
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -KILL "$SERVE_PID" 2>/dev/null || true
	fi
}
trap serve_cleanup EXIT

# start_serve [ARG]...: (re)start syncqd serve for $HUB; sets ONLINE.
start_serve() {
	local n port i
	serve_cleanup
	n=$(grep -c 'serve listening on' "$SERVE_LOG" 2>/dev/null || true)
	"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 "$@" 2>>"$SERVE_LOG" &
	SERVE_PID=$!
	for i in $(seq 500); do
		[ "$(grep -c 'serve listening on' "$SERVE_LOG" 2>/dev/null || true)" -gt "${n:-0}" ] && break
		kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 5 "$SERVE_LOG" >&2; fail "syncqd serve did not start"; }
		sleep 0.02
	done
	port=$(grep 'serve listening on' "$SERVE_LOG" | tail -n 1 | sed -E 's/.*listening on [^ ]*:([0-9]+) .*/\1/')
	[ -n "$port" ] || fail "syncqd serve did not say where it listens"
	ONLINE=http://127.0.0.1:$port
	[[ " $* " == *" --tls-cert "* ]] && ONLINE=https://localhost:$port
	return 0
}

# new_hub NAME: a fresh database with the extension; sets HUB (conninfo)
# and ONLINE (what syncqd clients are given).
new_hub() {
	# (the ASan pass of a test runs the same script again on the same cluster)
	psql -X -q -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
	HUB="host=$PGHOST port=$PGPORT user=postgres dbname=$1"
	ONLINE=$HUB
	hub "CREATE EXTENSION syncq" >/dev/null
	if [ "${SYNCQ_TRANSPORT:-}" = http ]; then start_serve; fi
}

# hub SQL: run SQL on the hub, unaligned output, stop on error.
hub() { psql -X -q -At -F'|' -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }

# cli FILE SQL: run SQL on a client through a connection that loaded syncq.
cli() {
	local f=$1; shift
	{ printf '.load %s\n' "$SYNCQ_SQLITE_EXT"; printf '%s\n' "$@"; } | sqlite3 -bail -separator '|' "$f"
}

# plain FILE SQL: a connection that never loaded the extension (the app).
plain() { sqlite3 -bail -separator '|' "$1" "$2"; }

# sync FILE: one syncqd --once; its log goes to $SYNCQ_TMP/syncqd.log.
sync() {
	"$SYNCQD" --sqlite "$1" --online "$ONLINE" --once ${SYNCQD_ARGS:-} 2>>"$SYNCQ_TMP/syncqd.log" ||
		{ tail -n 5 "$SYNCQ_TMP/syncqd.log" >&2; fail "syncqd --once on $1 failed"; }
}

# app_wait_limit_ms: how long an app may wait for the write lock while
# syncqd applies in parts (daemon_app_waits, sync_first_parts): 1 s, and
# 3 s for syncqd under AddressSanitizer, whose parts take 2-3 times as long
# (and a loaded CI machine stretches them again: 1 s failed there).
app_wait_limit_ms() { case $SYNCQD in */build/asan/*) echo 3000 ;; *) echo 1000 ;; esac; }

# The last line syncqd logged.
last_log() { tail -n 1 "$SYNCQ_TMP/syncqd.log"; }

expect_eq() {		# expect_eq WHAT GOT WANT
	[ "$2" == "$3" ] || fail "$1: expected
$3
got
$2"
}

set_aside() {		# set_aside FILE...: what the hub and each client file set aside
	{ hub "SELECT 'hub', table_name, op, pk::text, error FROM sync_errors"
	  for f in "$@"; do
		plain "$f" "SELECT '$(basename "$f" .db)', table_name, op, pk, error FROM sync_errors"
	  done; } | sed '/^$/d'
}

same_rows() {		# same_rows TABLE COLUMNS FILE...: each client file holds the hub's rows
	local t=$1 cols=$2 h f
	shift 2
	h=$(hub "SELECT $cols FROM $t ORDER BY id")
	for f in "$@"; do
		expect_eq "client $(basename "$f" .db)'s $t = the hub's" \
			"$(plain "$f" "SELECT $cols FROM $t ORDER BY id")" "$h"
	done
}

# pending FILE: this node's changes not yet acknowledged by the hub. (The
# capture keeps the newest queue row so that its seq is never reused, so an
# empty queue is not the test.)
pending() {
	plain "$1" "SELECT count(*) FROM sync_queue
		WHERE origin = (SELECT node_id FROM syncq_state)
		  AND seq > coalesce((SELECT CAST(value AS INTEGER) FROM syncqd_state WHERE key = 'up_seq'), 0)"
}

# faketime (Debian's wrapper) names its shared memory and semaphore after its
# own pid, and leaves them when it is killed; a later faketime that gets the
# same pid (pid_max is often 32768) then fails ("sem_open: File exists").
# Those of processes gone are removed first.
faketime() {
	local f p
	for f in /dev/shm/faketime_shm_* /dev/shm/sem.faketime_sem_*; do
		[ -e "$f" ] || continue
		p=${f##*_}
		kill -0 "$p" 2>/dev/null || rm -f "$f"
	done
	command faketime "$@"
}

# download_sampled FILE ONLINE COUNT_SQL COUNTS: syncqd --once (its log in
# FILE's name .log) while the app runs COUNT_SQL every 20 ms; every count
# seen must be one of COUNTS (a grep -E alternation), and some must be seen
download_sampled() {
	local f=$1 log=$SYNCQ_TMP/$(basename "$1" .db).log seen=$SYNCQ_TMP/seen pid bad
	"$SYNCQD" --sqlite "$f" --online "$2" --once --log-level debug 2>"$log" &
	pid=$!
	: >"$seen"
	while kill -0 "$pid" 2>/dev/null; do
		sqlite3 -cmd '.timeout 5000' "$f" "$3" >>"$seen" 2>/dev/null || true
		sleep 0.02
	done
	wait "$pid" || { tail -n 5 "$log" >&2; fail "syncqd --once on $f failed"; }
	[ -s "$seen" ] || fail "the app could not read $(basename "$f") while it synced: $3"
	bad=$(sort -u "$seen" | grep -vxE "$4" | head -n 3 | tr '\n' ' ' || true)
	[ -z "$bad" ] || fail "the app saw part of a hub transaction in $(basename "$f"): $bad rows"
	note "  $(basename "$f"): $(wc -l <"$seen") samples, counts seen: $(sort -un "$seen" | tr '\n' ' ')"
}
