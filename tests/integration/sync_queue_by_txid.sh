#!/usr/bin/env bash
# syncqd-http
# A one-row sync each way reads a handful of queue rows, not the queue,
# though 40,000 rows are queued and PostgreSQL has never analyzed the
# queue (autovacuum is off for it here, as it lags behind a queue that
# grows fast): the hub finds a client's changes by transaction through
# sync_queue_txid, and where a download starts through
# sync_download_floor(), which no plan can turn into a scan of the whole
# queue (docs/replication.md, Housekeeping). Rows read are counted by
# pg_stat_user_tables (a sequential scan's rows and an index scan's).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_queue_by_txid
hub "ALTER TABLE sync_queue SET (autovacuum_enabled = off);
	CREATE TABLE item (id integer PRIMARY KEY, v text); SELECT sync_track('item')" >/dev/null
a=$SYNCQ_TMP/a.db
cli "$a" "CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('item')" >/dev/null
sync "$a"

# rows_read: into ROWS, the rows of sync_queue read so far, once every
# backend that read some has said so (a backend reports when it ends:
# serve's are ended by restarting it)
rows_read() {
	local i prev=
	[ "${SYNCQ_TRANSPORT:-}" = http ] && start_serve
	for i in $(seq 1 50); do
		ROWS=$(hub "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables
		             WHERE relname = 'sync_queue'")
		[ "$ROWS" = "$prev" ] && return 0
		prev=$ROWS
		sleep 0.2
	done
	fail "the queue's counts of rows read did not settle"
}

note "40,000 rows queued on the hub, downloaded"
hub "INSERT INTO item SELECT i, 'hub ' || i FROM generate_series(1, 40000) i"
# (with an upload, which folds those rows into sync_versions: once)
plain "$a" "INSERT INTO item VALUES (100000, 'client')"
sync "$a"
expect_eq "rows on the client" "$(plain "$a" "SELECT count(*) FROM item")" "40001"
expect_eq "the queue never analyzed" \
	"$(hub "SELECT coalesce(last_analyze, last_autoanalyze)::text FROM pg_stat_user_tables WHERE relname = 'sync_queue'")" ""

note "one row each way, one sync"
rows_read
before=$ROWS
plain "$a" "INSERT INTO item VALUES (100001, 'client')"
hub "INSERT INTO item VALUES (200001, 'hub')"
sync "$a"
rows_read
read=$((ROWS - before))
expect_eq "client row on the hub" "$(hub "SELECT v FROM item WHERE id = 100001")" "client"
expect_eq "hub row on the client" "$(plain "$a" "SELECT v FROM item WHERE id = 200001")" "hub"
note "$read queue rows read"
[ "$read" -lt 1000 ] || fail "the sync read $read queue rows, with 40,000 queued"
