#!/usr/bin/env bash
# syncqd-asan
# syncqd serve --replica: downloads and first syncs read from two real hot
# standbys (pg_basebackup -R of the test cluster), uploads go to the
# primary. A standby whose replay is paused is not read for what it lacks
# (nothing lost, nothing twice: every client ends with every row); a
# client served in turn by two standbys and the primary never goes back
# (it holds each hub write made before its sync, its position only grows);
# a standby that is stopped is skipped, and read again once it is back.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
. "$SYNCQ_ROOT/tests/lib/pgcluster.sh"
DB=serve_replica
new_hub $DB

STANDBYS=()
standbys_stop() {
	local d
	serve_cleanup
	for d in "${STANDBYS[@]}"; do
		pgc_stop "$d"
		psql -X -q -d postgres -c "SELECT pg_drop_replication_slot('$(slot_of "$d")')
			FROM pg_replication_slots WHERE slot_name = '$(slot_of "$d")'" >/dev/null 2>&1 || true
	done
}
trap standbys_stop EXIT

# slot_of DIR: the replication slot of the standby in DIR (it keeps the
# primary's WAL until the standby has it: another standby's base backup
# checkpoints, and the test cluster keeps no WAL of its own).
slot_of() { echo "serve_replica_$(basename "$1")_$$"; }

# make_standby DIR: a hot standby of the test cluster in DIR, with a
# replication slot, started; prints its port.
make_standby() {
	local dir=$1 port
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	pgc_as_owner "$PG_BINDIR/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres \
		-D "$dir/data" -R -X stream -c fast -C -S "$(slot_of "$dir")" >"$dir/basebackup.log" 2>&1 ||
		{ cat "$dir/basebackup.log" >&2; fail "pg_basebackup into $dir failed"; }
	while :; do
		port=$((20000 + RANDOM % 30000))
		pgc_port_free "$port" || continue
		pgc_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
			-o "-p $port -c unix_socket_directories='$dir'" -w -t 60 start >/dev/null 2>&1 && break
	done
	echo "$port" >"$dir/port"
	echo "$port"
}

# sb PORT SQL: run SQL on the standby at PORT.
sb() { psql -X -q -At -F'|' -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d $DB -c "$2"; }

# catch_up PORT...: wait until these standbys replayed what the primary has now.
catch_up() {
	local lsn p i
	lsn=$(hub "SELECT pg_current_wal_insert_lsn()")
	for p in "$@"; do
		for i in $(seq 1000); do
			[ "$(sb "$p" "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && continue 2
			sleep 0.02
		done
		fail "standby on port $p did not replay to $lsn"
	done
}

# reads WHERE: how many download steps serve read from WHERE (a log count).
reads() { grep -c "read from $1" "$SERVE_LOG" || true; }

# read_again PORT FILE: sync FILE until serve has read a step from the
# standby at PORT (it reads one that has replayed what the step needs,
# which a loaded machine may delay), 30 syncs at most.
read_again() {
	local n i
	n=$(reads "replica 127.0.0.1:$1")
	for i in $(seq 30); do
		sync "$2"
		[ "$(reads "replica 127.0.0.1:$1")" -gt "$n" ] && return 0
		sleep 0.1
	done
	fail "serve read nothing from the standby on port $1 in 30 syncs"
}

client() {			# client FILE: a client with the item table, tracked
	cli "$1" "CREATE TABLE item (id INTEGER PRIMARY KEY, v INTEGER, who TEXT);
		SELECT sync_track('item');" >/dev/null
}

hub "CREATE TABLE item (id integer PRIMARY KEY, v integer, who text);
	SELECT sync_track('item');
	INSERT INTO item SELECT i, i, 'hub' FROM generate_series(1, 300) i;" >/dev/null

note "two hot standbys of the hub, serve with --replica for each"
S1=$SYNCQ_TMP/standby1
S2=$SYNCQ_TMP/standby2
STANDBYS=("$S1" "$S2")
P1=$(make_standby "$S1")
P2=$(make_standby "$S2")
expect_eq "standby 1 is in recovery" "$(sb "$P1" "SELECT pg_is_in_recovery()")" "t"
expect_eq "standby 2 is in recovery" "$(sb "$P2" "SELECT pg_is_in_recovery()")" "t"
R1="host=127.0.0.1 port=$P1 user=postgres dbname=$DB"
R2="host=127.0.0.1 port=$P2 user=postgres dbname=$DB"
start_serve --replica "$R1" --replica "$R2" --log-level debug
grep -q "replica 127.0.0.1:$P1: database \"$DB\", replayed to" "$SERVE_LOG" || fail "serve did not say it uses standby 1"
grep -q "replica 127.0.0.1:$P2: database \"$DB\", replayed to" "$SERVE_LOG" || fail "serve did not say it uses standby 2"

A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
C=$SYNCQ_TMP/c.db
D=$SYNCQ_TMP/d.db
for f in "$A" "$B" "$C" "$D"; do client "$f"; done

note "first syncs and syncs both ways, standbys caught up"
catch_up "$P1" "$P2"
sync "$A"
sync "$B"
plain "$A" "UPDATE item SET v = -v, who = 'a' WHERE id <= 10; INSERT INTO item VALUES (2001, 1, 'a')"
plain "$B" "UPDATE item SET v = 0, who = 'b' WHERE id BETWEEN 11 AND 20; DELETE FROM item WHERE id = 300"
hub "UPDATE item SET v = v + 1000, who = 'hub' WHERE id BETWEEN 21 AND 30" >/dev/null
for i in 1 2 3; do sync "$A"; sync "$B"; done
same_rows item "id, v, who" "$A" "$B"
read_again "$P1" "$A"
read_again "$P2" "$B"
note "$(reads replica) steps read from a standby, $(reads 'the primary') from the primary"

note "both standbys paused: what they lack is read from the primary, nothing lost"
sb "$P1" "SELECT pg_wal_replay_pause()" >/dev/null
sb "$P2" "SELECT pg_wal_replay_pause()" >/dev/null
refused=$(grep -c "replica 127.0.0.1:$P1 has replayed to" "$SERVE_LOG" || true)
hub "UPDATE item SET v = v + 1, who = 'hub-paused' WHERE id BETWEEN 31 AND 60;
	INSERT INTO item SELECT i, i, 'hub-paused' FROM generate_series(1001, 1050) i;
	DELETE FROM item WHERE id BETWEEN 61 AND 70" >/dev/null
plain "$A" "UPDATE item SET v = 7, who = 'a-paused' WHERE id = 100; INSERT INTO item VALUES (2002, 2, 'a-paused')"
sync "$A"
sync "$B"
sync "$C"			# a first sync while neither standby has the hub's rows
last_log | grep -q "(first sync)" || fail "client c did not take a first sync: $(last_log)"
sync "$A"
same_rows item "id, v, who" "$A" "$B" "$C"
expect_eq "the paused standby still lacks the hub's writes" \
	"$(sb "$P1" "SELECT count(*) FROM item WHERE who = 'hub-paused'")" "0"
[ "$(grep -c "replica 127.0.0.1:$P1 has replayed to" "$SERVE_LOG" || true)" -gt "$refused" ] ||
	fail "serve did not ask the paused standby 1 and find it behind"

note "standbys paused and resumed in turn: a client served by either or the primary never goes back"
sb "$P1" "SELECT pg_wal_replay_resume()" >/dev/null
sb "$P2" "SELECT pg_wal_replay_resume()" >/dev/null
catch_up "$P1" "$P2"
prev=0
for i in $(seq 1 12); do
	# 1-2 both read, 3-4 standby 1, 5-6 neither (the primary), 7-8 standby 2, 9-12 both
	hub "UPDATE item SET v = $i, who = 'turn' WHERE id = 1" >/dev/null
	[ "$i" -eq 3 ] && sb "$P2" "SELECT pg_wal_replay_pause()" >/dev/null
	[ "$i" -eq 5 ] && sb "$P1" "SELECT pg_wal_replay_pause()" >/dev/null
	[ "$i" -eq 7 ] && sb "$P2" "SELECT pg_wal_replay_resume()" >/dev/null
	[ "$i" -eq 9 ] && sb "$P1" "SELECT pg_wal_replay_resume()" >/dev/null
	sync "$D"
	expect_eq "turn $i: client d holds the hub's write made before its sync" \
		"$(plain "$D" "SELECT v FROM item WHERE id = 1")" "$i"
	xmax=$(plain "$D" "SELECT value FROM syncqd_state WHERE key = 'down_snapshot'" | cut -d: -f2)
	[ "$xmax" -ge "$prev" ] || fail "turn $i: client d's position went back ($prev, then $xmax)"
	prev=$xmax
done
read_again "$P1" "$D"

note "writes on the hub and on clients while they sync, standby 2 paused meanwhile"
(
	for i in $(seq 1 60); do
		hub "UPDATE item SET v = v + 1, who = 'busy' WHERE id = $((i % 40 + 101))" >/dev/null
		[ "$i" -eq 20 ] && sb "$P2" "SELECT pg_wal_replay_pause()" >/dev/null
		[ "$i" -eq 40 ] && sb "$P2" "SELECT pg_wal_replay_resume()" >/dev/null
		sleep 0.02
	done
) &
writer=$!
for i in $(seq 1 6); do
	plain "$A" "UPDATE item SET v = v + 1, who = 'a' WHERE id = $((i + 140))"
	plain "$B" "INSERT INTO item VALUES ($((3000 + i)), $i, 'b')"
	sync "$A"
	sync "$B"
	sync "$C"
done
wait "$writer"

note "a standby that stops is skipped, and read again once it is back"
pgc_stop "$S2"
hub "UPDATE item SET v = 42, who = 'hub-down' WHERE id = 2" >/dev/null
sync "$A"
sync "$B"
expect_eq "client b has the hub's write made while standby 2 was down" \
	"$(plain "$B" "SELECT v, who FROM item WHERE id = 2")" "42|hub-down"
grep -q "replica 127.0.0.1:$P2: .*skipped for" "$SERVE_LOG" || fail "serve did not say it skips the stopped standby"
pgc_as_owner "$PG_BINDIR/pg_ctl" -D "$S2/data" -l "$S2/server.log" \
	-o "-p $P2 -c unix_socket_directories='$S2'" -w -t 60 start >/dev/null
catch_up "$P2"
sleep 5				# REPLICA_REST_S
read_again "$P2" "$C"

note "at the end every node holds the same rows"
for i in 1 2; do for f in "$A" "$B" "$C" "$D"; do sync "$f"; done; done
same_rows item "id, v, who" "$A" "$B" "$C" "$D"
catch_up "$P1" "$P2"
expect_eq "standby 1 holds the hub's rows" "$(sb "$P1" "SELECT id, v, who FROM item ORDER BY id")" \
	"$(hub "SELECT id, v, who FROM item ORDER BY id")"
expect_eq "standby 2 holds the hub's rows" "$(sb "$P2" "SELECT id, v, who FROM item ORDER BY id")" \
	"$(hub "SELECT id, v, who FROM item ORDER BY id")"
expect_eq "nothing set aside" "$(set_aside "$A" "$B" "$C" "$D")" ""
note "$(reads replica) steps read from a standby, $(reads 'the primary') from the primary"
grep -q 'Sanitizer\|runtime error' "$SERVE_LOG" && fail "serve: sanitizer report"
echo ok
