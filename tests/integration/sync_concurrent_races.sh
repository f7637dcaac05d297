#!/usr/bin/env bash
# syncqd-asan
# Uploads side by side (docs/replication.md, Uploads side by side): two
# interleavings forced with locks held by hand, each of which lost a record
# or a version in a first version of the change that removed the hub's
# global upload lock.
#  1. A key the hub draws for a client's row (Keys the hub assigns) that
#     another upload has just inserted, above the sequence, and not yet
#     committed: the draw waits for that upload and takes the next key;
#     both records stay.
#  2. A change of the hub's app that committed while an upload waited for
#     its locks, older than the upload's change: the upload compares with
#     it and wins, and the next fold leaves the row alone (it re-stamped it
#     as a fresh change of the hub's, overruling the client's edit
#     everywhere).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_concurrent_races

# waiting PATTERN: a hub backend whose query matches PATTERN (LIKE) waits
# for a lock
waiting() {
	for _ in $(seq 200); do
		[ "$(hub "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '$1' AND wait_event_type = 'Lock'")" -ge 1 ] && return
		sleep 0.05
	done
	fail "no hub query like '$1' waited for a lock"
}
# hold SQL SECONDS: a hub transaction runs SQL, then holds what it locked
# or wrote that long, in the background ($! its pid)
hold() {
	psql -X -q -d "$HUB" -c "BEGIN" -c "$1" -c "SELECT pg_sleep($2)" -c "COMMIT" >/dev/null &
}
# holding SECONDS: a transaction of hold has run its SQL (it sleeps now)
holding() {
	for _ in $(seq 200); do
		[ "$(hub "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($1)' AND state = 'active'")" -ge 1 ] && return
		sleep 0.02
	done
	fail "no hub transaction of hold came to its sleep of $1 s"
}

note "1. a drawn key that another upload has just inserted"
hub "CREATE TABLE item (id serial PRIMARY KEY, name text); SELECT sync_track('item');" >/dev/null
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT); SELECT sync_track('item');" >/dev/null
	sync "$f"
done
hub "INSERT INTO item (name) VALUES ('hub one')" >/dev/null
plain "$a" "INSERT INTO item VALUES (2, 'a two')"
plain "$b" "INSERT INTO item VALUES (1, 'b one')"
# a's upload inserts 2, above the sequence (at 1), then waits to set the
# sequence ahead (hub_seqs_ahead's lock, held here)
hold "SELECT pg_advisory_xact_lock(1937337955, ('item_id_seq'::regclass::oid::bigint - 2147483648)::int)" 2
holder=$!
holding 2
"$SYNCQD" --sqlite "$a" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
sync_a=$!
waiting '%pg_advisory_xact_lock(1937337955%'
# b's 1 meets the hub's record: the hub draws 2 for it, which a's upload holds
"$SYNCQD" --sqlite "$b" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
sync_b=$!
wait "$holder"
wait "$sync_a" || fail "a's sync failed"
wait "$sync_b" || fail "b's sync failed"
expect_eq "the hub holds three records" \
	"$(hub "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM item")" "1=hub one,2=a two,3=b one"
sync "$a"; sync "$b"; sync "$a"
same_rows item "id, name" "$a" "$b"

note "2. a hub change that committed while an upload waited for its locks"
hub "CREATE TABLE kv (id int PRIMARY KEY, v text); SELECT sync_track('kv');
	INSERT INTO kv VALUES (1, 'seed');" >/dev/null
c=$SYNCQ_TMP/c.db
cli "$c" "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT); SELECT sync_track('item');
	CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('kv');" >/dev/null
sync "$c"
hub "SELECT sync_fold_local()" >/dev/null
# the hub's app writes row 1 first (its version is older), and commits 3 s
# later
hold "UPDATE kv SET v = 'hub' WHERE id = 1" 3
app=$!
holding 3	# (its change is stamped before the client's, on a loaded machine too)
sleep 0.05
plain "$c" "UPDATE kv SET v = 'client' WHERE id = 1"
# row 1's version row held until after the app commits: the upload folds
# (the app's change not committed yet), then waits for it
hold "SELECT 1 FROM sync_versions WHERE table_name = 'kv' AND pk = '{\"id\":1}' FOR UPDATE" 4
holder=$!
holding 4
"$SYNCQD" --sqlite "$c" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &
sync_c=$!
waiting '%INSERT INTO sync_versions%'	# (lock_versions: WITH k AS (...) INSERT ...)
wait "$app"
wait "$holder"
wait "$sync_c" || fail "c's sync failed"
expect_eq "the client's newer change stands on the hub" "$(hub "SELECT v FROM kv WHERE id = 1")" "client"
cnode=$(plain "$c" "SELECT node_id FROM syncq_state")
hub "SELECT sync_fold_local()" >/dev/null
expect_eq "the fold did not queue the row again as the hub's" \
	"$(hub "SELECT count(*) FROM sync_queue WHERE table_name = 'kv' AND pk->>'id' = '1' AND origin = sync_node_id()
		AND seq > (SELECT max(seq) FROM sync_queue WHERE table_name = 'kv' AND origin = '$cnode')")" "0"
expect_eq "the row's version is the client's" \
	"$(hub "SELECT ver_origin FROM sync_versions WHERE table_name = 'kv' AND pk = '{\"id\":1}'")" "$cnode"
sync "$c"
expect_eq "the client keeps its value" "$(plain "$c" "SELECT v FROM kv WHERE id = 1")" "client"
echo ok
