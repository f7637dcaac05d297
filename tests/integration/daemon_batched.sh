#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Batched tables wait for --interval (here 4 s), both ways, and then go;
# an immediate change takes every batched change waiting with it.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub daemon_batched
INTERVAL=4
hub "CREATE TABLE now_t (id integer PRIMARY KEY, v text); SELECT sync_track('now_t');
	CREATE TABLE later (id integer PRIMARY KEY, v text); SELECT sync_track('later', 'batched');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE now_t (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('now_t');
	CREATE TABLE later (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('later', 'batched');" >/dev/null
start_daemon "$C" --control off --interval "$INTERVAL"

hub_count() { hub "SELECT count(*) FROM later"; }
client_count() { plain "$C" "SELECT count(*) FROM later"; }

# line up with the timer: an immediate change, so a sync just happened
cli "$C" "INSERT INTO now_t VALUES (1, 'x')" >/dev/null
wait_until 1 "the immediate change" '[ "$(hub "SELECT count(*) FROM now_t")" = 1 ]'
t0=$(now_ms)

note "batched changes both ways, from a connection with syncq, a plain one, the hub"
cli "$C" "INSERT INTO later VALUES (1, 'client, syncq loaded')" >/dev/null
plain "$C" "INSERT INTO later VALUES (2, 'client, plain')"
hub "INSERT INTO later VALUES (101, 'hub')"
sleep 1.5
expect_eq "batched client rows on the hub after 1.5 s" "$(hub "SELECT count(*) FROM later WHERE id < 100")" 0
expect_eq "batched hub rows on the client after 1.5 s" "$(plain "$C" "SELECT count(*) FROM later WHERE id > 100")" 0
wait_until $((INTERVAL + 2)) "the batched client rows on the hub" '[ "$(hub_count)" = 3 ]'
wait_until 1 "the batched hub row on the client" '[ "$(client_count)" = 3 ]'
waited=$(($(now_ms) - t0))
note "batched rows went after $waited ms (interval ${INTERVAL}000 ms)"
[ "$waited" -ge $((INTERVAL * 1000 - 1000)) ] || fail "batched rows went after $waited ms, before the interval"

note "an immediate change takes the batched ones with it"
cli "$C" "INSERT INTO later VALUES (3, 'waits')" >/dev/null
hub "INSERT INTO later VALUES (102, 'waits on the hub')"
sleep 0.5
expect_eq "not yet" "$(hub "SELECT count(*) FROM later WHERE id = 3")" 0
cli "$C" "INSERT INTO now_t VALUES (2, 'y')" >/dev/null
wait_until 1 "the batched row with the immediate one" '[ "$(hub "SELECT count(*) FROM later WHERE id = 3")" = 1 ]'
wait_until 1 "the hub's batched row with it" '[ "$(plain "$C" "SELECT count(*) FROM later WHERE id = 102")" = 1 ]'

daemon_alive
stop_daemon
expect_eq "pending" "$(pending "$C")" 0
echo ok
