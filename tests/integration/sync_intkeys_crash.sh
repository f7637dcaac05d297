#!/usr/bin/env bash
# syncqd-http
# Renames survive SIGKILL (issue 13): the hub and two clients make machines
# with parts under integer keys the database assigns, offline, so that
# every client's rows meet the others' keys; each client's syncqd is killed
# with SIGKILL at random points of its renaming syncs (before, in and
# after the hub's commit and the client's rename transaction), then synced
# to the end. Every machine and part exists on every node exactly once,
# under the same key, each part under its own machine, nothing in
# sync_conflicts or set aside. The seed is printed; SEED=<seed> tests/run
# sync_intkeys_crash replays it.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
SEED=${SEED:-$RANDOM}; note "seed $SEED"; RANDOM=$SEED
new_hub sync_intkeys_crash
ROUNDS=${ROUNDS:-6}

hub "CREATE TABLE machines (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
	CREATE TABLE parts (id serial PRIMARY KEY, machine_id integer NOT NULL REFERENCES machines(id), name text NOT NULL UNIQUE);
	SELECT sync_track('machines'); SELECT sync_track('parts');" >/dev/null
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE machines (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
		CREATE TABLE parts (id INTEGER PRIMARY KEY, machine_id INTEGER NOT NULL REFERENCES machines(id), name TEXT NOT NULL UNIQUE);
		SELECT sync_track('machines'); SELECT sync_track('parts');" >/dev/null
	sync "$f"
done

make_rows() {	# make_rows FILE|hub TAG: 2 machines with 2 parts each, one transaction each
	local i sql
	for i in 0 1; do
		sql="INSERT INTO machines (name) VALUES ('m $2.$i');
			INSERT INTO parts (machine_id, name) SELECT id, 'p $2.$i.' || n FROM machines, (SELECT 0 AS n UNION ALL SELECT 1) k WHERE name = 'm $2.$i';"
		if [ "$1" = hub ]; then hub "BEGIN; $sql COMMIT;" >/dev/null
		else plain "$1" "BEGIN; $sql COMMIT;"; fi
	done
}

killed_sync() {	# killed_sync FILE: syncqd --once, SIGKILLed after 0-499 ms
	local pid ms=$((RANDOM % 500))
	"$SYNCQD" --sqlite "$1" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/killed.log" & pid=$!
	sleep "$(printf '0.%03d' "$ms")"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

for r in $(seq "$ROUNDS"); do
	make_rows "$A" "a$r"
	make_rows "$B" "b$r"
	make_rows hub "h$r"
	for f in $( ((RANDOM % 2)) && echo "$A $B" || echo "$B $A"); do
		killed_sync "$f"
		killed_sync "$f"
		killed_sync "$f"
		sync "$f"
	done
done
for f in "$A" "$B" "$A"; do sync "$f"; done

note "$(grep -c 'sync done' "$SYNCQ_TMP/killed.log" || true) killed syncs ended before their kill;" \
	"$(grep -E -c '[1-9][0-9]* already there' "$SYNCQ_TMP/syncqd.log" || true) syncs after a kill re-sent changes the hub had committed"
note "every record once, on every node, under the same key"
want=$(for r in $(seq "$ROUNDS"); do for t in a b h; do for i in 0 1; do echo "m $t$r.$i"; done; done; done | sort)
expect_eq "machines on the hub" "$(hub "SELECT name FROM machines" | sort)" "$want"
expect_eq "parts under their machine on the hub" \
	"$(hub "SELECT count(*) FROM parts p JOIN machines m ON m.id = p.machine_id WHERE p.name LIKE 'p ' || substr(m.name, 3) || '.%'")" \
	"$((ROUNDS * 3 * 2 * 2))"
h=$(hub "SELECT p.id, p.name, m.id, m.name FROM parts p JOIN machines m ON m.id = p.machine_id ORDER BY p.id")
for f in "$A" "$B"; do
	expect_eq "$(basename "$f") = the hub" \
		"$(plain "$f" "SELECT p.id, p.name, m.id, m.name FROM parts p JOIN machines m ON m.id = p.machine_id ORDER BY p.id")" "$h"
	expect_eq "$(basename "$f")'s machines = the hub's" \
		"$(plain "$f" "SELECT id, name FROM machines ORDER BY id")" "$(hub "SELECT id, name FROM machines ORDER BY id")"
	expect_eq "$(basename "$f")'s conflicts" "$(plain "$f" "SELECT count(*) FROM sync_conflicts")" 0
	expect_eq "$(basename "$f")'s pending changes" "$(pending "$f")" 0
done
expect_eq "the hub's conflicts" "$(hub "SELECT count(*) FROM sync_conflicts")" 0
expect_eq "set aside" "$(set_aside "$A" "$B")" ""
hub "INSERT INTO machines (name) VALUES ('head office')" >/dev/null
note "ok (seed $SEED)"
