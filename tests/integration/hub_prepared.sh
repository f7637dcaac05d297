#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The statements every sync runs stay prepared on syncqd's (or serve's) hub
# connections (hub_prep, docs/daemon.md "Latency"), and that changes
# nothing a user sees:
#   * a running daemon sees a tracked table's new column, a renamed column
#     and a newly tracked table at its next sync, both ways;
#   * a prepared statement whose result changes shape under it (the hub's
#     sync_clients.up_seq made numeric, as an upgrade of the extension
#     could) fails a sync, which names the cause; the next sync prepares it
#     again and everything arrives, once;
#   * prepared statements that vanish under it (a pooler that does not keep
#     a session's statements; here a trigger runs DEALLOCATE ALL in the
#     upload's transaction) fail one step; the connection then prepares
#     no more, and everything arrives, once.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
new_hub hub_prepared
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); SELECT sync_track('t');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');" >/dev/null
start_daemon "$C" --control off --log-level debug

on_hub() { [ "$(hub "$1")" = "$2" ]; }
on_client() { [ "$(plain "$C" "$1")" = "$2" ]; }

note "syncs with the statements prepared"
for i in 1 2 3 4 5 6 7; do		# past the server's 5 custom plans of a statement
	cli "$C" "INSERT INTO t VALUES ($i, 'c$i')" >/dev/null
	wait_until 10 "row $i on the hub" "on_hub 'SELECT v FROM t WHERE id = $i' c$i"
	hub "INSERT INTO t VALUES (10$i, 'h$i')"
	wait_until 10 "row 10$i on the client" "on_client 'SELECT v FROM t WHERE id = 10$i' h$i"
done

note "a column added under the running daemon"
hub "ALTER TABLE t ADD COLUMN w text"
plain "$C" "ALTER TABLE t ADD COLUMN w TEXT"
cli "$C" "INSERT INTO t VALUES (20, 'c20', 'w from the client')" >/dev/null
wait_until 10 "the new column's value on the hub" \
	"on_hub 'SELECT w FROM t WHERE id = 20' 'w from the client'"
hub "INSERT INTO t VALUES (21, 'h21', 'w from the hub')"
wait_until 10 "the new column's value on the client" \
	"on_client 'SELECT w FROM t WHERE id = 21' 'w from the hub'"

note "a column renamed under the running daemon"
hub "ALTER TABLE t RENAME COLUMN w TO note"
plain "$C" "ALTER TABLE t RENAME COLUMN w TO note"
cli "$C" "UPDATE t SET note = 'renamed, client' WHERE id = 20" >/dev/null
wait_until 10 "the renamed column's value on the hub" \
	"on_hub 'SELECT note FROM t WHERE id = 20' 'renamed, client'"
hub "UPDATE t SET note = 'renamed, hub' WHERE id = 21"
wait_until 10 "the renamed column's value on the client" \
	"on_client 'SELECT note FROM t WHERE id = 21' 'renamed, hub'"

note "a table tracked under the running daemon"
hub "CREATE TABLE u (id bigint PRIMARY KEY, s text); SELECT sync_track('u');" >/dev/null
cli "$C" "CREATE TABLE u (id INTEGER PRIMARY KEY, s TEXT); SELECT sync_track('u');" >/dev/null
cli "$C" "INSERT INTO u VALUES (1, 'u from the client')" >/dev/null
wait_until 10 "the new table's row on the hub" "on_hub 'SELECT s FROM u WHERE id = 1' 'u from the client'"
hub "INSERT INTO u VALUES (2, 'u from the hub')"
wait_until 10 "the new table's row on the client" "on_client 'SELECT s FROM u WHERE id = 2' 'u from the hub'"

note "a prepared statement's result changes shape under the running daemon"
hub "ALTER TABLE sync_clients ALTER COLUMN up_seq TYPE numeric"
for i in 30 31 32; do
	cli "$C" "INSERT INTO t (id, v) VALUES ($i, 'after the change $i')" >/dev/null
done
# each of serve's pooled connections may fail one request before it
# prepares again: the daemon's backoff (0.5 s, doubling) covers a few
wait_until 30 "the rows written after the change on the hub" \
	"on_hub 'SELECT count(*) FROM t WHERE id BETWEEN 30 AND 32' 3"
log=$DAEMON_LOG
[ "${SYNCQ_TRANSPORT:-}" = http ] && log=$SERVE_LOG
grep -q 'cached plan must not change result type' "$log" ||
	{ tail -n 20 "$log" >&2; fail "no sync met the changed result (the test did not test it)"; }
note "  $(grep -c 'cached plan must not change result type' "$log") failed step(s), then:"
hub "INSERT INTO t (id, v) VALUES (33, 'hub after the change')"
wait_until 10 "the hub's row after the change on the client" \
	"on_client 'SELECT v FROM t WHERE id = 33' 'hub after the change'"
cli "$C" "INSERT INTO t (id, v) VALUES (34, 'client, later')" >/dev/null
wait_until 10 "a later row on the hub" "on_hub 'SELECT v FROM t WHERE id = 34' 'client, later'"

note "the prepared statements vanish under the running daemon (as behind a pooler)"
# a trigger on the hub's t drops every prepared statement of the session
# that applies the upload, in the middle of its transaction
hub "CREATE FUNCTION test_dealloc() RETURNS trigger LANGUAGE plpgsql AS
	\$\$ BEGIN EXECUTE 'DEALLOCATE ALL'; RETURN NULL; END \$\$;
	CREATE TRIGGER test_dealloc AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION test_dealloc();"
cli "$C" "INSERT INTO t (id, v) VALUES (35, 'statements gone')" >/dev/null
wait_until 30 "the row written as the statements vanished on the hub" \
	"on_hub 'SELECT v FROM t WHERE id = 35' 'statements gone'"
grep -q 'prepared statement "syncq_[0-9a-f]*" does not exist' "$log" ||
	{ tail -n 20 "$log" >&2; fail "no step met its statement gone (the test did not test it)"; }
hub "DROP TRIGGER test_dealloc ON t"
cli "$C" "INSERT INTO t (id, v) VALUES (36, 'after the pooler')" >/dev/null
wait_until 10 "a later row on the hub" "on_hub 'SELECT v FROM t WHERE id = 36' 'after the pooler'"
hub "INSERT INTO t (id, v) VALUES (37, 'hub, later')"
wait_until 10 "a later hub row on the client" "on_client 'SELECT v FROM t WHERE id = 37' 'hub, later'"
note "  the step failed once, and the connection went on unprepared"
expect_eq "the hub's rows, each once" "$(hub "SELECT count(*), count(DISTINCT id) FROM t")" "24|24"
expect_eq "nothing pending on the client" "$(pending "$C")" 0
same_rows t "id, v, note" "$C"
note "  the next syncs prepared it again; every row arrived once"
stop_daemon
