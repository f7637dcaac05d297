#!/usr/bin/env bash
# syncqd-http
# As users meet it: a SQLAlchemy app (tests/apps/parts_app.py, Debian's
# python3) writes on the hub and on two clients while the clients' syncqd
# run on their own and are killed with SIGKILL 12 times at random moments
# and started again. When the apps stop and the last syncs are done, every
# node holds the same rows, and they are exactly what the three apps last
# committed: nothing lost, nothing doubled, no edit undone.
# Replay a run with SEED=<the seed printed> tests/run daemon_kill_app.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
SEED=${SEED:-$RANDOM}; note "seed $SEED"; RANDOM=$SEED
PY=/usr/bin/python3
new_hub daemon_kill_app
A=$SYNCQ_TMP/a.db; B=$SYNCQ_TMP/b.db
hub "CREATE TABLE parts (id integer PRIMARY KEY, name varchar(40) NOT NULL, qty integer NOT NULL); SELECT sync_track('parts');" >/dev/null
for f in "$A" "$B"; do
	plain "$f" "CREATE TABLE parts (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INTEGER NOT NULL); PRAGMA journal_mode=wal;" >/dev/null
	cli "$f" "SELECT sync_track('parts');" >/dev/null
	sync "$f"
done
STOP=$SYNCQ_TMP/stop; PA= PB= PH= DA= DB=
cleanup() { touch "$STOP"; kill $PA $PB $PH $DA $DB 2>/dev/null || true; daemon_cleanup; }
trap cleanup EXIT
HUBURL="postgresql://postgres@/daemon_kill_app?host=$PGHOST&port=$PGPORT"
$PY "$SYNCQ_ROOT/tests/apps/parts_app.py" "$HUBURL" 1000000 "$STOP" $SYNCQ_TMP/h.json $SEED 2>$SYNCQ_TMP/h.err & PH=$!
$PY "$SYNCQ_ROOT/tests/apps/parts_app.py" "sqlite:///$A" 2000000 "$STOP" $SYNCQ_TMP/a.json $SEED 2>$SYNCQ_TMP/a.err & PA=$!
$PY "$SYNCQ_ROOT/tests/apps/parts_app.py" "sqlite:///$B" 3000000 "$STOP" $SYNCQ_TMP/b.json $SEED 2>$SYNCQ_TMP/b.err & PB=$!
startd() { "$SYNCQD" --sqlite "$1" --online "$ONLINE" --control off --log-level debug 2>>"$SYNCQ_TMP/d-$(basename "$1").log" & }
startd "$A"; DA=$!; startd "$B"; DB=$!
for i in $(seq 12); do
	sleep "0.$((RANDOM % 9 + 1))"
	if ((RANDOM % 2)); then kill -9 $DA; wait $DA 2>/dev/null || true; startd "$A"; DA=$!
	else kill -9 $DB; wait $DB 2>/dev/null || true; startd "$B"; DB=$!; fi
done
sleep 1
touch "$STOP"
for p in $PA $PB $PH; do wait $p || { cat "$SYNCQ_TMP"/?.err; fail "an app failed (above)"; }; done
PA= PB= PH=
kill $DA $DB; wait $DA $DB 2>/dev/null || true; DA= DB=
for f in "$A" "$B" "$A" "$B"; do sync "$f"; done
same_rows parts "id, name, qty" "$A" "$B"
h=$(hub "SELECT id, name, qty FROM parts ORDER BY id")
want=$($PY -c '
import json,sys
rows={}
for f in sys.argv[1:]: rows.update({int(k):v for k,v in json.load(open(f))["rows"].items()})
for k in sorted(rows): print("%d|%s|%d" % (k, rows[k]["name"], rows[k]["qty"]))' $SYNCQ_TMP/h.json $SYNCQ_TMP/a.json $SYNCQ_TMP/b.json)
expect_eq "hub = what the apps committed" "$h" "$want"
expect_eq "set aside" "$(set_aside "$A" "$B")" ""
note "rows: $(echo "$h" | wc -l); conflicts: hub $(hub 'SELECT count(*) FROM sync_conflicts')"
