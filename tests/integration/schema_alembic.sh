#!/usr/bin/env bash
# Schema migrations with a real migration tool while the app keeps writing
# on every node: Alembic (tests/alembic: batch mode on SQLite, where drop,
# rename and a type change rebuild the table) takes the hub and two SQLite
# clients through: add a column, drop a column, rename a column, change a
# column's type. The hub migrates first for the first three steps, the
# clients first for the last. The apps (tests/alembic/app.py: psycopg2 on
# the hub, Python's sqlite3 on the clients, which never loads syncq) write
# all along. Client a syncs by syncqd --once between the steps, client b
# has syncqd running. Afterwards every node holds every row with every
# value the apps wrote, and nothing is left in sync_errors.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
PY=/usr/bin/python3
AL=$SYNCQ_ROOT/tests/alembic
new_hub schema_alembic
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
HUBURL="postgresql://postgres@/schema_alembic?host=$PGHOST&port=$PGPORT"
migrate() {	# migrate NODE REVISION
	local url
	case $1 in hub) url=$HUBURL ;; a) url=sqlite:///$A ;; b) url=sqlite:///$B ;; esac
	SYNCQ_SQLITE_EXT=$SYNCQ_SQLITE_EXT "$PY" "$AL/migrate.py" "$url" "$2" 2>>"$SYNCQ_TMP/alembic.log" ||
		{ tail -n 20 "$SYNCQ_TMP/alembic.log" >&2; fail "alembic upgrade $2 on $1"; }
}
errors() { set_aside "$A" "$B"; }

for n in hub a b; do migrate "$n" r1; done
hub "SELECT sync_track('items')" >/dev/null
cli "$A" "SELECT sync_track('items');" >/dev/null
cli "$B" "SELECT sync_track('items');" >/dev/null
sync "$A"
sync "$B"
PORT=$(free_port)
start_daemon "$B" --control "127.0.0.1:$PORT"

STOP=$SYNCQ_TMP/stop
rm -f "$STOP"
P1= P2= P3=
apps_cleanup() {	# on the way out, never leave an app writing
	touch "$STOP"
	for p in $P1 $P2 $P3; do kill "$p" 2>/dev/null || true; done
	daemon_cleanup
}
trap apps_cleanup EXIT
"$PY" "$AL/app.py" pg "$HUB" 1000000 "$STOP" "$SYNCQ_TMP/app-hub.json" 2>"$SYNCQ_TMP/app-hub.err" & P1=$!
"$PY" "$AL/app.py" sqlite "$A" 2000000 "$STOP" "$SYNCQ_TMP/app-a.json" 2>"$SYNCQ_TMP/app-a.err" & P2=$!
"$PY" "$AL/app.py" sqlite "$B" 3000000 "$STOP" "$SYNCQ_TMP/app-b.json" 2>"$SYNCQ_TMP/app-b.err" & P3=$!
step() {	# step REVISION NODE...: migrate the nodes in this order, the apps writing
	local n
	for n in "${@:2}"; do
		sleep 0.4
		migrate "$n" "$1"
		sync "$A"
	done
	note "$1 applied to ${*:2}"
}
step r2 hub a b		# add a column
step r3 hub a b		# drop a column
step r4 hub a b		# rename a column
step r5 a b hub		# change a column's type
sleep 0.5
touch "$STOP"
wait "$P1" || { cat "$SYNCQ_TMP/app-hub.err" >&2; fail "the hub's app failed"; }
wait "$P2" || { cat "$SYNCQ_TMP/app-a.err" >&2; fail "client a's app failed"; }
wait "$P3" || { cat "$SYNCQ_TMP/app-b.err" >&2; fail "client b's app failed"; }
P1= P2= P3=
note "the apps wrote $(cat "$SYNCQ_TMP"/app-*.json | grep -o '"writes": [0-9]*' | awk '{ s += $2 } END { print s }') times"

# the last changes: the daemon's client b, then --once rounds
curl -s -X POST "http://127.0.0.1:$PORT/api/sync/trigger" >/dev/null
sleep 1
stop_daemon
for i in 1 2; do sync "$A"; sync "$B"; done
expect_eq "nothing set aside at the end" "$(errors)" ""
"$PY" "$AL/check.py" "$HUB" "$A" "$B" "$SYNCQ_TMP"/app-*.json || fail "not every value everywhere"
echo "ok"
